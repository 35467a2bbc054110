#pragma once
// Initial noise for sampling, reproducible from a seed on any machine and thread count.
//
// The official pipeline draws fp16 noise from a CUDA torch.Generator (Philox); bit-identical noise
// would need that RNG replayed, which nothing here needs: any standard normal field is a valid
// starting point. We draw N(0, 1) from a counter-based hash (SplitMix64 of seed and element index)
// through Box–Muller, then round to fp16 as the official noise is, so that a seed names the same
// latents everywhere.
#include <cmath>
#include <cstdint>
#include <numbers>

#include "hyvideo/core/tensor.hpp"
#include "hyvideo/nn/init.hpp"

namespace hyvideo {

inline Tensor randn(const Shape& shape, std::uint64_t seed, bool round_to_f16 = true) {
    Tensor t = Tensor::empty(shape);
    float* p = t.data<float>();
    const std::uint64_t base = detail::splitmix64(seed ^ 0x6E6F697365ull);  // "noise"
    const std::int64_t n = t.numel();
    for (std::int64_t i = 0; i < n; i += 2) {
        const std::uint64_t h1 = detail::splitmix64(base + static_cast<std::uint64_t>(i));
        const std::uint64_t h2 = detail::splitmix64(h1 ^ 0xA5A5A5A5A5A5A5A5ull);
        // u1 in (0, 1]: never 0, so the log is finite.
        const double u1 = (static_cast<double>(h1 >> 11) + 1.0) / 9007199254740992.0;
        const double u2 = static_cast<double>(h2 >> 11) / 9007199254740992.0;
        const double r = std::sqrt(-2.0 * std::log(u1));
        p[i] = static_cast<float>(r * std::cos(2.0 * std::numbers::pi * u2));
        if (i + 1 < n) p[i + 1] = static_cast<float>(r * std::sin(2.0 * std::numbers::pi * u2));
    }
    if (round_to_f16)
        for (std::int64_t i = 0; i < n; ++i) p[i] = f16_to_f32(f32_to_f16(p[i]));
    return t;
}

}  // namespace hyvideo
