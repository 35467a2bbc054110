// Tensor (core/tensor.hpp): construction and ownership, the views (slice, select, permute, transpose,
// unsqueeze, reshape) and the copies (contiguous, clone, to, copy_to). Expected values come from
// xtensor applied to the same data through the zero-copy adaptors (interop/xtensor.hpp): a permuted
// view must equal xt::transpose of the original, a slice xt::view, and so on.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <numeric>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xbuilder.hpp>
#include <xtensor/xmanipulation.hpp>
#include <xtensor/xview.hpp>

#include "hyvideo/core/dtype_convert.hpp"
#include "hyvideo/core/tensor.hpp"
#include "hyvideo/interop/xtensor.hpp"
#include "../support/tensors.hpp"

using namespace hyvideo;
using hyvideo::test::iota;

namespace {

// Same shape and the same values (xt::equal alone would broadcast).
template <class A, class B>
bool same(const A& a, const B& b) {
    const auto& sa = a.shape();
    const auto& sb = b.shape();
    return std::equal(sa.begin(), sa.end(), sb.begin(), sb.end()) && xt::all(xt::equal(a, b));
}

}  // namespace

TEST_CASE("tensor: empty, zeros, full and from_vector give contiguous host tensors") {
    const Tensor e = Tensor::empty({2, 3, 4}, DType::bf16);
    CHECK(e.defined());
    CHECK(e.dtype() == DType::bf16);
    CHECK(e.device() == Device::cpu);
    CHECK(e.shape() == Shape{2, 3, 4});
    CHECK(e.strides() == Shape{12, 4, 1});
    CHECK(e.nbytes() == 48);
    CHECK(e.is_contiguous());

    const Tensor z = Tensor::zeros({3, 2});
    CHECK(same(as_xtensor<float>(z), xt::zeros<float>({3, 2})));
    const Tensor f = Tensor::full({2, 2}, 1.5f);
    CHECK(same(as_xtensor<float>(f), xt::xarray<float>{{1.5f, 1.5f}, {1.5f, 1.5f}}));

    const Tensor v = Tensor::from_vector<std::int64_t>({2, 2}, {1, -2, 3, -4});
    CHECK(v.dtype() == DType::i64);
    CHECK(same(as_xtensor<std::int64_t>(v), xt::xarray<std::int64_t>{{1, -2}, {3, -4}}));
    CHECK_THROWS_AS(Tensor::from_vector<float>({2, 2}, {1.0f, 2.0f, 3.0f}), Error);
    CHECK_THROWS_AS(Tensor::empty({2, -1}), Error);

    // A 0-d tensor holds one element; a shape with a zero holds none.
    const Tensor s = Tensor::full({}, 7.0f);
    CHECK(s.numel() == 1);
    CHECK(s.item() == 7.0f);
    CHECK(Tensor::empty({0, 5}).numel() == 0);
    CHECK_FALSE(Tensor{}.defined());
}

TEST_CASE("tensor: wrap shares the owner's memory and copies of the handle keep it alive") {
    auto values = std::make_shared<std::vector<float>>(std::vector<float>{1, 2, 3, 4, 5, 6});
    const std::weak_ptr<std::vector<float>> watch = values;
    Tensor t = Tensor::wrap(values, values->data(), {2, 3}, DType::f32);
    CHECK(t.raw_data() == values->data());
    CHECK(t.strides() == Shape{3, 1});

    // Zero-copy: writes through the tensor (here through its xtensor adaptor) reach the owner's memory.
    {
        auto x = as_xtensor<float>(t);
        x(1, 2) = 60.0f;
    }
    CHECK((*values)[5] == 60.0f);

    // Views and copies of the handle share the owner; the memory lives as long as any of them.
    const Tensor view = t.slice(1, 1, 3);
    CHECK(view.owner() == t.owner());
    values.reset();
    t = Tensor{};
    CHECK_FALSE(watch.expired());
    CHECK(same(as_xtensor<float>(view), xt::xarray<float>{{2, 3}, {5, 60}}));
}

TEST_CASE("tensor: a wrapped tensor carries its device and index through every view") {
    auto block = std::make_shared<std::vector<float>>(24, 0.0f);  // stands in for a device allocation
    const Tensor t = Tensor::wrap(block, block->data(), {2, 3, 4}, DType::f32, Device::cuda, 2);
    for (const Tensor& v : {t, t.slice(2, 1, 3), t.select(0, 1), t.permute({2, 0, 1}), t.reshape({6, 4}), t.unsqueeze(0)}) {
        CHECK(v.device() == Device::cuda);
        CHECK(v.device_index() == 2);
    }
    CHECK(Tensor::zeros({2}).device_index() == 0);
    // Host-side copies refuse device memory rather than read it as host memory.
    CHECK_THROWS_AS(t.slice(2, 1, 3).contiguous(), Error);
    CHECK_THROWS_AS(t.clone(), Error);
    CHECK_THROWS_WITH_AS(Tensor::wrap(block, block->data(), {24}, DType::f32, Device::cpu, 1),
                         doctest::Contains("device index 1 for cpu"), Error);
    CHECK_THROWS_AS(Tensor::wrap(block, block->data(), {24}, DType::f32, Device::cuda, -1), Error);
}

TEST_CASE("tensor: slice and select are views with the original strides, as xt::view") {
    Tensor t = iota({2, 3, 4});
    const auto x = as_xtensor<float>(t);

    const Tensor s = t.slice(2, 1, 3);
    CHECK(s.shape() == Shape{2, 3, 2});
    CHECK(s.strides() == t.strides());
    CHECK(s.owner() == t.owner());
    CHECK_FALSE(s.is_contiguous());
    CHECK(same(as_xtensor<float>(s), xt::view(x, xt::all(), xt::all(), xt::range(1, 3))));

    const Tensor row = t.select(1, 2);
    CHECK(row.shape() == Shape{2, 4});
    CHECK(row.strides() == Shape{12, 1});
    CHECK(same(as_xtensor<float>(row), xt::view(x, xt::all(), 2, xt::all())));

    // Negative dims count from the end; a slice of a slice composes.
    const Tensor last = t.select(-1, 3).slice(-1, 1, 3);
    CHECK(same(as_xtensor<float>(last), xt::view(x, xt::all(), xt::range(1, 3), 3)));

    // An empty slice, and a slice along a leading dimension, which stays contiguous.
    CHECK(t.slice(1, 2, 2).numel() == 0);
    CHECK(t.slice(0, 1, 2).is_contiguous());

    // A view writes into the tensor it views.
    Tensor col = t.select(2, 0);
    as_xtensor<float>(col) = xt::zeros<float>({2, 3});
    CHECK(t.item({1, 2, 0}) == 0.0f);
    CHECK(t.item({1, 2, 1}) == 21.0f);

    CHECK_THROWS_AS(t.slice(1, 2, 4), Error);
    CHECK_THROWS_AS(t.slice(1, 2, 1), Error);
    CHECK_THROWS_AS(t.select(0, 2), Error);
    CHECK_THROWS_AS(t.select(3, 0), Error);
}

TEST_CASE("tensor: permute and transpose are views, as xt::transpose") {
    const Tensor t = iota({2, 3, 4});
    const auto x = as_xtensor<float>(t);

    const Tensor p = t.permute({2, 0, 1});
    CHECK(p.shape() == Shape{4, 2, 3});
    CHECK(p.strides() == Shape{1, 12, 4});
    CHECK(p.raw_data() == t.raw_data());
    CHECK_FALSE(p.is_contiguous());
    CHECK(same(as_xtensor<float>(p), xt::transpose(x, {2, 0, 1})));

    const Tensor tr = t.transpose(0, -1);
    CHECK(same(as_xtensor<float>(tr), xt::transpose(x, {2, 1, 0})));

    // Permuting back restores the original strides.
    const Tensor back = p.permute({1, 2, 0});
    CHECK(back.strides() == t.strides());
    CHECK(back.is_contiguous());

    CHECK_THROWS_AS(t.permute({0, 1}), Error);
    CHECK_THROWS_AS(t.permute({0, 1, 1}), Error);
    CHECK_THROWS_AS(t.permute({0, 1, 3}), Error);
}

TEST_CASE("tensor: unsqueeze adds a size-1 dimension without moving data") {
    const Tensor t = iota({2, 3});
    const auto x = as_xtensor<float>(t);
    const Tensor a = t.unsqueeze(0), b = t.unsqueeze(1), c = t.unsqueeze(-1);
    CHECK(a.shape() == Shape{1, 2, 3});
    CHECK(b.shape() == Shape{2, 1, 3});
    CHECK(c.shape() == Shape{2, 3, 1});
    for (const Tensor* u : {&a, &b, &c}) {
        CHECK(u->is_contiguous());
        CHECK(u->raw_data() == t.raw_data());
    }
    CHECK(same(as_xtensor<float>(b), xt::expand_dims(x, 1)));
    // Of a strided view: the new dimension keeps the view's layout.
    const Tensor tt = t.transpose(0, 1);
    const Tensor u = tt.unsqueeze(1);
    CHECK(same(as_xtensor<float>(u), xt::expand_dims(xt::transpose(x), 1)));
    CHECK_THROWS_AS(t.unsqueeze(3), Error);
}

TEST_CASE("tensor: reshape is always a view; where the strides cannot express it, it throws") {
    const Tensor t = iota({2, 3, 4});
    const auto x = as_xtensor<float>(t);

    const Tensor r = t.reshape({4, -1});
    CHECK(r.shape() == Shape{4, 6});
    CHECK(r.raw_data() == t.raw_data());
    CHECK(same(as_xtensor<float>(r), xt::reshape_view(x, {4, 6})));
    CHECK(t.flatten().shape() == Shape{24});
    CHECK(t.flatten().raw_data() == t.raw_data());

    // A permuted view: splitting a dimension, or merging dimensions whose strides still chain, stays a
    // view of the same memory, with the values xtensor's row-major reshape of the transpose reads.
    const Tensor p = t.permute({1, 0, 2});  // [3, 2, 4], strides [4, 12, 1]
    const xt::xarray<float> transposed = xt::transpose(x, {1, 0, 2});
    const Tensor split = p.reshape({3, 2, 2, 2});
    CHECK(split.raw_data() == t.raw_data());
    CHECK(split.strides() == Shape{4, 12, 2, 1});
    CHECK(same(as_xtensor<float>(split), xt::reshape_view(transposed, {3, 2, 2, 2})));
    const Tensor ones = p.reshape({1, 3, 2, 1, 4});
    CHECK(ones.raw_data() == t.raw_data());
    CHECK(same(as_xtensor<float>(ones), xt::reshape_view(transposed, {1, 3, 2, 1, 4})));
    // Merging the two dimensions the permute swapped has no strides: refused, naming both shapes, and
    // the copy is made where it is visible.
    CHECK_THROWS_WITH_AS(p.reshape({3, 8}), doctest::Contains("reshape: a strided view [3, 2, 4]"), Error);
    const Tensor rp = p.contiguous().reshape({3, 8});
    CHECK(rp.raw_data() != t.raw_data());
    CHECK(same(as_xtensor<float>(rp), xt::reshape_view(transposed, {3, 8})));

    // A slice along the last dimension: its leading dimensions merge (their strides chain), the sliced
    // rows do not.
    const Tensor s = t.slice(2, 0, 2);  // [2, 3, 2], strides [12, 4, 1]
    const xt::xarray<float> sliced = xt::view(x, xt::all(), xt::all(), xt::range(0, 2));
    const Tensor rows = s.reshape({6, 2});
    CHECK(rows.raw_data() == t.raw_data());
    CHECK(same(as_xtensor<float>(rows), xt::reshape_view(sliced, {6, 2})));
    CHECK_THROWS_AS(s.reshape({-1}), Error);
    const Tensor flat = s.contiguous().reshape({-1});
    CHECK(same(as_xtensor<float>(flat), xt::flatten(sliced)));
    // A slice of the last dimension split into heads, as the single stream block's qkv: a view.
    const Tensor heads = t.slice(2, 1, 3).reshape({2, 3, 2, 1});
    CHECK(static_cast<const float*>(heads.raw_data()) == t.data<float>() + 1);
    CHECK(same(as_xtensor<float>(heads), xt::reshape_view(xt::xarray<float>(xt::view(x, xt::all(), xt::all(), xt::range(1, 3))), {2, 3, 2, 1})));

    CHECK_THROWS_AS(t.reshape({5, -1}), Error);
    CHECK_THROWS_AS(t.reshape({-1, -1}), Error);
    CHECK_THROWS_AS(t.reshape({2, 3, 5}), Error);
}

TEST_CASE("tensor: contiguous() copies only strided tensors, clone() always copies") {
    const Tensor t = iota({3, 4});
    CHECK(t.contiguous().raw_data() == t.raw_data());

    const Tensor tr = t.transpose(0, 1);
    const Tensor c = tr.contiguous();
    CHECK(c.is_contiguous());
    CHECK(c.strides() == Shape{3, 1});
    CHECK(c.raw_data() != t.raw_data());
    CHECK(same(as_xtensor<float>(c), xt::transpose(as_xtensor<float>(t))));

    // A clone is independent memory with the same values: writing one leaves the other.
    Tensor k = t.clone();
    CHECK(k.raw_data() != t.raw_data());
    CHECK(same(as_xtensor<float>(k), as_xtensor<float>(t)));
    as_xtensor<float>(k) *= 2.0f;
    CHECK(t.item({2, 3}) == 11.0f);
    CHECK(k.item({2, 3}) == 22.0f);

    // copy_to writes into a strided destination, converting the dtype when it differs.
    Tensor dst = Tensor::zeros({4, 6});
    Tensor window = dst.slice(1, 1, 4);  // [4, 3], strided
    tr.copy_to(window);
    const auto xd = as_xtensor<float>(dst);
    CHECK(same(xt::view(xd, xt::all(), xt::range(1, 4)), xt::transpose(as_xtensor<float>(t))));
    CHECK(same(xt::view(xd, xt::all(), 0), xt::zeros<float>({4})));
    Tensor dst16 = Tensor::zeros({4, 3}, DType::bf16);
    tr.copy_to(dst16);
    CHECK(dst16.to_vector() == c.to_vector());  // small integers are exact in bf16
    Tensor wrong = Tensor::zeros({3, 4});
    CHECK_THROWS_AS(tr.copy_to(wrong), Error);
}

TEST_CASE("tensor: to(dtype) converts with dtype_convert's rounding, from any layout") {
    const Tensor t = Tensor::from_vector<float>({2, 3}, {0.1f, -1.0f / 3.0f, 1e-3f, 65504.0f, 3.0e38f, -0.0f});
    const Tensor bf = t.to(DType::bf16);
    CHECK(bf.dtype() == DType::bf16);
    CHECK(bf.shape() == t.shape());
    const auto xb = as_xtensor<bf16_t>(bf);
    const auto xt_ = as_xtensor<float>(t);
    for (std::size_t i = 0; i < 2; ++i)
        for (std::size_t j = 0; j < 3; ++j) CHECK(xb(i, j).bits == f32_to_bf16(xt_(i, j)));

    // Through a strided view: the transposed values, converted.
    const Tensor tr = t.transpose(0, 1);
    const Tensor back = tr.to(DType::bf16).to(DType::f32);
    const Tensor round_trip = bf.to(DType::f32);
    CHECK(same(as_xtensor<float>(back), xt::transpose(as_xtensor<float>(round_trip))));

    // to() of the same dtype is a copy, not the tensor itself.
    const Tensor same_dtype = t.to(DType::f32);
    CHECK(same_dtype.raw_data() != t.raw_data());
    CHECK(same(as_xtensor<float>(same_dtype), xt_));

    // Integers widen exactly.
    const Tensor i = Tensor::from_vector<std::int64_t>({3}, {-2, 0, 7});
    const Tensor fi = i.to(DType::f32);
    CHECK(same(as_xtensor<float>(fi), xt::xarray<float>{-2, 0, 7}));
}
