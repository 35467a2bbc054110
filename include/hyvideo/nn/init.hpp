#pragma once
// Deterministic weight initialisation, for models without a checkpoint (tests, ablations, the
// built-in default model). The generator is a fixed-formula counter hash, so the same seed gives
// the same weights on every platform, compiler and thread count.
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

#include "hyvideo/nn/module.hpp"

namespace hyvideo {

namespace detail {
// SplitMix64: a bijective 64-bit mix; hashing (seed, parameter index, element index) keeps every
// weight independent of the order in which parameters are visited or threads run.
constexpr std::uint64_t splitmix64(std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
// Uniform in [-1, 1) from the top 24 bits (exactly representable in float).
constexpr float uniform_pm1(std::uint64_t h) { return static_cast<float>(h >> 40) / 8388608.0f - 1.0f; }
}  // namespace detail

// Fills every parameter of m: matrices and convolution kernels uniform in ±gain/sqrt(fan_in) (the
// scale nn.Linear's default init has), biases uniform in ±0.02, and 1-D weights (norm scales) as
// 1 ± 0.02. `gain_of(name)` gives each matrix its gain; the draws do not depend on it, so changing one
// parameter's gain leaves every other parameter as it was. Returns m for chaining.
template <class M, class GainOf>
    requires std::is_invocable_r_v<float, GainOf, const std::string&>
M& init_weights(M& m, std::uint64_t seed, GainOf gain_of) {
    using B = typename M::backend;
    if constexpr (requires { m.streamed; }) m.streamed.reset();  // it holds every weight now
    std::uint64_t param = 0;
    m.parameters("", [&](const std::string& name, const Shape& shape, Tensor& slot) {
        Tensor t = Tensor::empty(shape);
        float* p = t.data<float>();
        const bool is_bias = name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0;
        const std::int64_t fan_in = shape.size() >= 2 ? shape_numel(shape) / shape[0] : 1;
        const float bound = shape.size() >= 2 ? gain_of(name) / std::sqrt(static_cast<float>(fan_in)) : 0.02f;
        const std::uint64_t base = detail::splitmix64(seed ^ detail::splitmix64(++param));
        for (std::int64_t i = 0; i < t.numel(); ++i) {
            const float u = detail::uniform_pm1(detail::splitmix64(base + static_cast<std::uint64_t>(i)));
            p[i] = (shape.size() == 1 && !is_bias) ? 1.0f + 0.02f * u : bound * u;
        }
        slot = B::weight(t, DType::f32);
    });
    return m;
}

template <class M>
M& init_weights(M& m, std::uint64_t seed, float gain = 1.0f) {
    return init_weights(m, seed, [gain](const std::string&) { return gain; });
}

}  // namespace hyvideo
