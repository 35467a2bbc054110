#pragma once
// adaLN modulation kernels of the DiT: modulate, gated residual, and LayerNorm fused with modulate.
#include <cmath>
#include <cstdint>

#include "hyvideo/backend/cpu/elementwise.hpp"

namespace hyvideo::cpu_detail {

namespace detail {
// shift/scale/gate are [B, C] views, typically chunks of one modulation output (row stride k·C).
inline void check_mod_vector(const Tensor& v, std::int64_t B, std::int64_t C, const char* what) {
    require_f32(v, what);
    HYVIDEO_CHECK(v.dim() == 2 && v.size(0) == B && v.size(1) == C && v.stride(1) == 1, what,
                  ": expected a [", B, ", ", C, "] row-contiguous vector, got ", shape_str(v.shape()));
}
}  // namespace detail

// x * (1 + scale) + shift with [B, C] shift/scale broadcast over the L tokens of x [B, L, C].
inline Tensor modulate(const Tensor& x, const Tensor& shift, const Tensor& scale) {
    require_f32(x, "modulate");
    HYVIDEO_CHECK(x.dim() == 3, "modulate: x must be [B, L, C], got ", shape_str(x.shape()));
    const std::int64_t B = x.size(0), L = x.size(1), C = x.size(2);
    detail::check_mod_vector(shift, B, C, "modulate shift");
    detail::check_mod_vector(scale, B, C, "modulate scale");
    Tensor src = x.contiguous();
    Tensor out = Tensor::empty(x.shape());
    const float* in = src.data<const float>();
    float* o = out.data<float>();
    parallel_for_chunks(0, B * L, 16, [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
            const std::int64_t b = r / L;
            const float* sh = shift.data<const float>() + b * shift.stride(0);
            const float* sc = scale.data<const float>() + b * scale.stride(0);
            for (std::int64_t c = 0; c < C; ++c) o[r * C + c] = in[r * C + c] * (1.0f + sc[c]) + sh[c];
        }
    });
    return out;
}

// x + gate * y, gate [B, C] broadcast over tokens (the DiT's gated residual; no tanh).
inline Tensor gated_add(const Tensor& x, const Tensor& y, const Tensor& gate) {
    require_f32(x, "gated_add");
    require_f32(y, "gated_add");
    HYVIDEO_CHECK(x.dim() == 3 && x.shape() == y.shape(), "gated_add: x ", shape_str(x.shape()), " and y ",
                  shape_str(y.shape()), " must both be [B, L, C]");
    const std::int64_t B = x.size(0), L = x.size(1), C = x.size(2);
    detail::check_mod_vector(gate, B, C, "gated_add gate");
    Tensor xs = x.contiguous(), ys = y.contiguous();
    Tensor out = Tensor::empty(x.shape());
    const float* px = xs.data<const float>();
    const float* py = ys.data<const float>();
    float* o = out.data<float>();
    parallel_for_chunks(0, B * L, 16, [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
            const float* g = gate.data<const float>() + (r / L) * gate.stride(0);
            for (std::int64_t c = 0; c < C; ++c) o[r * C + c] = px[r * C + c] + g[c] * py[r * C + c];
        }
    });
    return out;
}

}  // namespace hyvideo::cpu_detail
