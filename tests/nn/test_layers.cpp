// nn::Linear and nn::RMSNorm against their definitions written as xtensor expressions over the same
// tensors (interop/xtensor.hpp).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>

#include <xtensor/xarray.hpp>
#include <xtensor/xbuilder.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/interop/xtensor.hpp"
#include "hyvideo/nn/linear.hpp"
#include "hyvideo/nn/rms_norm.hpp"

using namespace hyvideo;

namespace {

// Smooth deterministic values in [-1, 1], different for each seed.
xt::xarray<float> wave(std::initializer_list<std::size_t> shape, float seed) {
    xt::xarray<float> a = xt::zeros<float>(shape);
    for (std::size_t i = 0; i < a.size(); ++i) a.flat(i) = std::sin(seed + 0.37f * static_cast<float>(i));
    return a;
}

}  // namespace

TEST_CASE("nn Linear: y = x·Wᵀ + b over the last dimension") {
    const xt::xarray<float> x = wave({2, 3, 5}, 0.1f), w = wave({4, 5}, 1.3f), b = wave({4}, 2.7f);
    Linear<cpu> lin(5, 4);
    lin.weight = from_xtensor(w);
    lin.bias = from_xtensor(b);
    const Tensor y = lin.forward(from_xtensor(x));
    REQUIRE(y.shape() == Shape{2, 3, 4});

    // y[i, j, o] = Σ_k x[i, j, k]·w[o, k] + b[o]
    const xt::xarray<float> expected =
        xt::sum(xt::view(x, xt::all(), xt::all(), xt::newaxis(), xt::all()) * w, {3}) + b;
    CHECK(xt::allclose(as_xtensor<float>(y), expected, 1e-5, 1e-6));

    Linear<cpu> no_bias(5, 4, false);
    no_bias.weight = lin.weight;
    const Tensor y0 = no_bias.forward(from_xtensor(x));
    CHECK(xt::allclose(as_xtensor<float>(y0), expected - b, 1e-5, 1e-6));
}

TEST_CASE("nn RMSNorm: x·rsqrt(mean(x²) + eps)·weight over the last dimension") {
    const xt::xarray<float> x = wave({3, 8}, 0.5f) * 3.0f, w = wave({8}, 4.0f);
    const float eps = 1e-6f;
    RMSNorm<cpu> norm(8, eps);
    norm.weight = from_xtensor(w);
    const Tensor y = norm.forward(from_xtensor(x));
    REQUIRE(y.shape() == Shape{3, 8});

    const xt::xarray<float> ms = xt::mean(x * x, {1}, xt::keep_dims);
    const xt::xarray<float> expected = x / xt::sqrt(ms + eps) * w;
    CHECK(xt::allclose(as_xtensor<float>(y), expected, 1e-5, 1e-6));
}
