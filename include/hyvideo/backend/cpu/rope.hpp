#pragma once
// Rotary embedding applied to q or k in [B, S, H, D] layout with interleaved pairs (2j, 2j+1).
#include <cstdint>

#include "hyvideo/backend/cpu/elementwise.hpp"

namespace hyvideo::cpu_detail {

// out[2j] = x[2j]cos[2j] - x[2j+1]sin[2j];  out[2j+1] = x[2j+1]cos[2j+1] + x[2j]sin[2j+1].
// x may be a strided view (a slice of a fused qkv projection); the result is contiguous.
inline Tensor apply_rope(const Tensor& x, const Tensor& cos, const Tensor& sin) {
    require_f32(x, "apply_rope");
    require_f32(cos, "apply_rope cos");
    require_f32(sin, "apply_rope sin");
    HYVIDEO_CHECK(x.dim() == 4, "apply_rope: x must be [B, S, H, D], got ", shape_str(x.shape()));
    const std::int64_t B = x.size(0), S = x.size(1), H = x.size(2), D = x.size(3);
    HYVIDEO_CHECK(D % 2 == 0, "apply_rope: head dim ", D, " must be even");
    HYVIDEO_CHECK(cos.shape() == (Shape{S, D}) && sin.shape() == (Shape{S, D}), "apply_rope: tables ",
                  shape_str(cos.shape()), "/", shape_str(sin.shape()), " do not match [S, D] = [", S, ", ", D,
                  "]");
    HYVIDEO_CHECK(x.stride(3) == 1, "apply_rope: x must be contiguous in the head dimension");
    Tensor c = cos.contiguous(), s = sin.contiguous();
    Tensor out = Tensor::empty(x.shape());
    const float* px = x.data<const float>();
    const float* pc = c.data<const float>();
    const float* ps = s.data<const float>();
    float* o = out.data<float>();
    parallel_for_chunks(0, B * S, 16, [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
            const std::int64_t b = r / S, si = r % S;
            const float* cr = pc + si * D;
            const float* sr = ps + si * D;
            for (std::int64_t h = 0; h < H; ++h) {
                const float* xr = px + b * x.stride(0) + si * x.stride(1) + h * x.stride(2);
                float* orow = o + (r * H + h) * D;
                for (std::int64_t j = 0; j < D; j += 2) {
                    orow[j] = xr[j] * cr[j] - xr[j + 1] * sr[j];
                    orow[j + 1] = xr[j + 1] * cr[j + 1] + xr[j] * sr[j + 1];
                }
            }
        }
    });
    return out;
}

}  // namespace hyvideo::cpu_detail
