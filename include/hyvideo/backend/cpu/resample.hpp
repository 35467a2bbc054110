#pragma once
// Nearest-neighbour upsampling of [N, C, T, H, W] f32 tensors by integer factors, as
// F.interpolate(mode="nearest") with an integer scale_factor: output (t, h, w) copies input
// (t / ft, h / fh, w / fw).
//
// With `causal`, frame 0 is upsampled in space only and the other frames in time and space, so
// T_out = 1 + ft·(T − 1): the causal VAE's UpsampleCausal3D, which splits off the first frame,
// interpolates it as an image and concatenates it in front of the interpolated rest (SPEC §7.3).
// Here it is one pass with no concatenation.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

#include "hyvideo/backend/cpu/elementwise.hpp"
#include "hyvideo/core/parallel.hpp"
#include "hyvideo/core/tensor.hpp"

namespace hyvideo::cpu_detail {

inline Tensor upsample_nearest(const Tensor& x_in, std::array<std::int64_t, 3> factor, bool causal) {
    require_f32(x_in, "upsample_nearest");
    HYVIDEO_CHECK(x_in.dim() == 5, "upsample_nearest: x must be [N, C, T, H, W], got ", shape_str(x_in.shape()));
    const auto [ft, fh, fw] = factor;
    HYVIDEO_CHECK(ft >= 1 && fh >= 1 && fw >= 1, "upsample_nearest: factors must be positive, got [", ft, ", ", fh,
                  ", ", fw, "]");
    const Tensor x = x_in.contiguous();
    const std::int64_t NC = x.size(0) * x.size(1), T = x.size(2), H = x.size(3), W = x.size(4);
    const std::int64_t To = causal ? (T == 0 ? 0 : 1 + ft * (T - 1)) : ft * T, Ho = fh * H, Wo = fw * W;
    Tensor out = Tensor::empty({x.size(0), x.size(1), To, Ho, Wo});
    if (out.numel() == 0) return out;
    const float* in = x.data<const float>();
    float* o = out.data<float>();
    // One unit of work: an output frame of one channel. Each input row is widened once, and copied
    // to the fh output rows it feeds.
    parallel_for_chunks(0, NC * To, 1, [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
            const std::int64_t nc = r / To, to = r % To;
            const std::int64_t ti = causal ? (to == 0 ? 0 : 1 + (to - 1) / ft) : to / ft;
            const float* src = in + (nc * T + ti) * H * W;
            float* dst = o + r * Ho * Wo;
            for (std::int64_t h = 0; h < H; ++h) {
                float* row = dst + h * fh * Wo;
                for (std::int64_t w = 0; w < W; ++w) std::fill_n(row + w * fw, fw, src[h * W + w]);
                for (std::int64_t k = 1; k < fh; ++k) std::memcpy(row + k * Wo, row, static_cast<std::size_t>(Wo) * 4);
            }
        }
    });
    return out;
}

}  // namespace hyvideo::cpu_detail
