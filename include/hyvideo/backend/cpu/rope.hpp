#pragma once
// Rotary embedding applied to q or k in [B, S, H, D] layout, in either pairing (backend/rope_layout.hpp).
#include <cstdint>

#include "hyvideo/backend/cpu/elementwise.hpp"
#include "hyvideo/backend/rope_layout.hpp"

namespace hyvideo::cpu_detail {

// cos and sin are [S, D] (every sample at the same positions) or [B, S, D] (a position per sample and
// token, as llava's merged sequences have). x may be a strided view (a slice of a fused qkv
// projection); the result is contiguous.
inline Tensor apply_rope(const Tensor& x, const Tensor& cos, const Tensor& sin,
                         RopeLayout layout = RopeLayout::interleaved) {
    require_f32(x, "apply_rope");
    require_f32(cos, "apply_rope cos");
    require_f32(sin, "apply_rope sin");
    HYVIDEO_CHECK(x.dim() == 4, "apply_rope: x must be [B, S, H, D], got ", shape_str(x.shape()));
    const std::int64_t B = x.size(0), S = x.size(1), H = x.size(2), D = x.size(3);
    HYVIDEO_CHECK(D % 2 == 0, "apply_rope: head dim ", D, " must be even");
    const bool per_sample = cos.dim() == 3;
    const Shape table = per_sample ? Shape{B, S, D} : Shape{S, D};
    HYVIDEO_CHECK(cos.shape() == table && sin.shape() == table, "apply_rope: tables ", shape_str(cos.shape()), "/",
                  shape_str(sin.shape()), " do not match ", shape_str(table), " for x ", shape_str(x.shape()));
    HYVIDEO_CHECK(x.stride(3) == 1, "apply_rope: x must be contiguous in the head dimension");
    Tensor c = cos.contiguous(), s = sin.contiguous();
    Tensor out = Tensor::empty(x.shape());
    const float* px = x.data<const float>();
    const float* pc = c.data<const float>();
    const float* ps = s.data<const float>();
    float* o = out.data<float>();
    const std::int64_t half = D / 2;
    parallel_for_chunks(0, B * S, 16, [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
            const std::int64_t b = r / S, si = r % S;
            const std::int64_t row = per_sample ? r : si;
            const float* cr = pc + row * D;
            const float* sr = ps + row * D;
            for (std::int64_t h = 0; h < H; ++h) {
                const float* xr = px + b * x.stride(0) + si * x.stride(1) + h * x.stride(2);
                float* orow = o + (r * H + h) * D;
                if (layout == RopeLayout::interleaved) {
                    for (std::int64_t j = 0; j < D; j += 2) {
                        orow[j] = xr[j] * cr[j] - xr[j + 1] * sr[j];
                        orow[j + 1] = xr[j + 1] * cr[j + 1] + xr[j] * sr[j + 1];
                    }
                } else {
                    for (std::int64_t j = 0; j < half; ++j) {
                        orow[j] = xr[j] * cr[j] - xr[j + half] * sr[j];
                        orow[j + half] = xr[j + half] * cr[j + half] + xr[j] * sr[j + half];
                    }
                }
            }
        }
    });
    return out;
}

}  // namespace hyvideo::cpu_detail
