#pragma once
// Unary maps beyond the activations of elementwise.hpp, for the VAE's latent distribution: clamp
// (the log-variance's [−30, 20]) and exp (its standard deviation).
#include <algorithm>
#include <cmath>

#include "hyvideo/backend/cpu/elementwise.hpp"

namespace hyvideo::cpu_detail {

// torch.clamp: min(max(x, lo), hi), NaN kept.
inline Tensor clamp(const Tensor& x, float lo, float hi) {
    HYVIDEO_CHECK(lo <= hi, "clamp: lower bound ", lo, " above upper bound ", hi);
    return map_unary(x, "clamp", [lo, hi](float v) { return v != v ? v : std::min(std::max(v, lo), hi); });
}

inline Tensor exp(const Tensor& x) {
    return map_unary(x, "exp", [](float v) { return std::exp(v); });
}

}  // namespace hyvideo::cpu_detail
