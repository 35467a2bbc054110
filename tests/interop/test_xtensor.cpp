// The xtensor adaptors (interop/xtensor.hpp): zero-copy views of a tensor's memory with its strides,
// writes through them, the refusals, and from_xtensor's evaluation into new tensors.
#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <numeric>
#include <type_traits>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xbuilder.hpp>
#include <xtensor/xmanipulation.hpp>
#include <xtensor/xview.hpp>

#include "hyvideo/interop/xtensor.hpp"
#include "../support/tensors.hpp"

using namespace hyvideo;
using hyvideo::test::iota;

// Adapting a temporary would leave the adaptor pointing at freed memory when it was the only owner.
static_assert(!std::is_invocable_v<decltype([](auto&& t) -> decltype(as_xtensor<float>(std::move(t))) {
                                       return as_xtensor<float>(std::move(t));
                                   }),
                                   Tensor>);

TEST_CASE("xtensor interop: adaptors view the tensor's memory with its shape and strides") {
    Tensor t = iota({2, 3, 4});
    auto x = as_xtensor<float>(t);
    CHECK(x.dimension() == 3);
    CHECK(x.shape()[0] == 2);
    CHECK(x.shape()[2] == 4);
    CHECK(&x(1, 2, 3) == t.data<float>() + 23);

    // A strided view: element addresses follow the tensor's strides.
    Tensor s = t.slice(2, 1, 3).permute({1, 0, 2});  // [3, 2, 2], strides [4, 12, 1]
    auto xs = as_xtensor<float>(s);
    CHECK(&xs(2, 1, 1) == t.data<float>() + 2 * 4 + 1 * 12 + (1 + 1));

    // Writes through a strided adaptor touch only the view's elements, also for assignments that go
    // through a temporary (operator=, +=), which a strided xarray_adaptor would copy linearly.
    xs += 100.0f;
    xs = xs * 2.0f;
    const xt::xarray<float> original = xt::reshape_view(xt::arange<float>(24.0f), {2, 3, 4});
    xt::xarray<float> expected = original;
    xt::view(expected, xt::all(), xt::all(), xt::range(1, 3)) =
        (xt::view(original, xt::all(), xt::all(), xt::range(1, 3)) + 100.0f) * 2.0f;
    CHECK(xt::all(xt::equal(x, expected)));

    // Broadcasting against a view with size-1 dimensions.
    Tensor row = t.slice(1, 0, 1);  // [2, 1, 4]
    auto xr = as_xtensor<float>(row);
    const xt::xarray<float> sum = xr + xt::zeros<float>({2, 3, 4});
    CHECK(xt::all(xt::equal(xt::view(sum, xt::all(), 2, xt::all()), xt::view(x, xt::all(), 0, xt::all()))));

    // The read-only adaptor of a const tensor, and of 0-d and empty tensors.
    const Tensor& ct = t;
    const auto cx = as_xtensor<float>(ct);
    static_assert(std::is_const_v<std::remove_reference_t<decltype(*cx.begin())>>);
    CHECK(cx(0, 0, 0) == 0.0f);
    Tensor scalar = Tensor::full({}, 3.0f);
    CHECK(as_xtensor<float>(scalar)() == 3.0f);
    Tensor empty = Tensor::zeros({0, 3});
    CHECK(as_xtensor<float>(empty).size() == 0);
}

TEST_CASE("xtensor interop: a dtype mismatch, a device tensor or an undefined tensor is refused") {
    Tensor i = Tensor::from_vector<std::int64_t>({2}, {1, 2});
    CHECK_THROWS_WITH_AS(as_xtensor<float>(i), "as_xtensor: tensor holds int64, adapted as float32", Error);
    CHECK_NOTHROW(as_xtensor<std::int64_t>(i));

    auto memory = std::make_shared<std::vector<float>>(4);
    Tensor device = Tensor::wrap(memory, memory->data(), {4}, DType::f32, Device::cuda);
    CHECK_THROWS_AS(as_xtensor<float>(device), Error);
    const Tensor& const_device = device;
    CHECK_THROWS_AS(as_xtensor<float>(const_device), Error);

    Tensor undefined;
    CHECK_THROWS_AS(as_xtensor<float>(undefined), Error);
}

TEST_CASE("xtensor interop: from_xtensor evaluates an expression into a new tensor of its value type") {
    Tensor t = iota({2, 3});
    const auto x = as_xtensor<float>(t);
    const Tensor y = from_xtensor(xt::transpose(x) * 2.0f + 1.0f);
    CHECK(y.dtype() == DType::f32);
    CHECK(y.shape() == Shape{3, 2});
    CHECK(y.is_contiguous());
    CHECK(y.raw_data() != t.raw_data());
    CHECK(y.to_vector() == std::vector<float>{1, 7, 3, 9, 5, 11});

    const Tensor i = from_xtensor(xt::xarray<std::int64_t>{4, 5});
    CHECK(i.dtype() == DType::i64);
    CHECK(i.shape() == Shape{2});
    const Tensor u8 = from_xtensor(xt::xarray<std::uint8_t>{{1, 2}, {3, 255}});
    CHECK(u8.dtype() == DType::u8);
    CHECK(u8.item({1, 1}) == 255.0f);
    const Tensor mask = from_xtensor(x > 2.5f);
    CHECK(mask.dtype() == DType::boolean);
    CHECK(mask.to_vector() == std::vector<float>{0, 0, 0, 1, 1, 1});

    // A 0-d expression gives a 0-d tensor.
    const Tensor s = from_xtensor(xt::xarray<float>(2.5f));
    CHECK(s.dim() == 0);
    CHECK(s.item() == 2.5f);
}
