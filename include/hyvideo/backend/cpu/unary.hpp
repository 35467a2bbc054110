#pragma once
// Unary maps beyond the activations of elementwise.hpp: clamp and exp for the VAE's latent
// distribution (the log-variance's [−30, 20], its standard deviation), and the text encoders'
// activations, CLIP's quick_gelu and llava's projector GELU.
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

// transformers' QuickGELUActivation: x·sigmoid(1.702·x), written as PyTorch evaluates it.
inline Tensor quick_gelu(const Tensor& x) {
    return map_unary(x, "quick_gelu", [](float v) { return v * (1.0f / (1.0f + std::exp(-1.702f * v))); });
}

// nn.GELU() without approximation: x·Φ(x) = 0.5·x·(1 + erf(x/√2)).
inline Tensor gelu_erf(const Tensor& x) {
    return map_unary(x, "gelu", [](float v) { return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f)); });
}

}  // namespace hyvideo::cpu_detail
