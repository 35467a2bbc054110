#pragma once
// Nearest-neighbour upsampling of [N, C, T, H, W] f32 tensors by integer factors, as
// F.interpolate(mode="nearest") with an integer scale_factor: output (t, h, w) copies input
// (t / ft, h / fh, w / fw).
//
// With `causal`, frame 0 is upsampled in space only and the other frames in time and space, so
// T_out = 1 + ft·(T − 1): the causal VAE's UpsampleCausal3D, which splits off the first frame,
// interpolates it as an image and concatenates it in front of the interpolated rest
// (docs/model.md#vae-sampling). Here it is one pass with no concatenation.
//
// A channels-last input gives a channels-last output (whole pixels are copied); anything else is
// read as channels-first contiguous and gives that.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

#include "hyvideo/backend/cpu/channels_last.hpp"
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
    const bool cl = is_channels_last(x_in);
    const Tensor x = cl ? x_in : x_in.contiguous();
    const std::int64_t N = x.size(0), C = x.size(1), T = x.size(2), H = x.size(3), W = x.size(4);
    const std::int64_t To = causal ? (T == 0 ? 0 : 1 + ft * (T - 1)) : ft * T, Ho = fh * H, Wo = fw * W;
    const Shape out_shape{N, C, To, Ho, Wo};
    Tensor out = cl ? empty_channels_last(out_shape) : Tensor::empty(out_shape);
    if (out.numel() == 0) return out;
    const float* in = x.data<const float>();
    float* o = out.data<float>();
    auto source_frame = [&](std::int64_t to) { return causal ? (to == 0 ? 0 : 1 + (to - 1) / ft) : to / ft; };
    // One unit of work is an output frame (of one channel, channels-first). Each input row is
    // widened once and copied to the fh output rows it feeds.
    if (cl) {
        const std::int64_t row = Wo * C;  // floats per output row
        const std::int64_t grain = std::max<std::int64_t>(1, (std::int64_t{1} << 15) / (Ho * row));
        parallel_for(0, N * To, [&](std::int64_t r) {
            const std::int64_t n = r / To, to = r % To;
            const float* src = in + ((n * T + source_frame(to)) * H) * W * C;
            float* dst = o + r * Ho * row;
            for (std::int64_t h = 0; h < H; ++h) {
                float* orow = dst + h * fh * row;
                for (std::int64_t w = 0; w < W; ++w)
                    for (std::int64_t k = 0; k < fw; ++k)
                        std::memcpy(orow + (w * fw + k) * C, src + (h * W + w) * C, static_cast<std::size_t>(C) * 4);
                for (std::int64_t k = 1; k < fh; ++k) std::memcpy(orow + k * row, orow, static_cast<std::size_t>(row) * 4);
            }
        }, grain);
        return out;
    }
    const std::int64_t grain = std::max<std::int64_t>(1, (std::int64_t{1} << 15) / (Ho * Wo));
    parallel_for(0, N * C * To, [&](std::int64_t r) {
        const std::int64_t nc = r / To, to = r % To;
        const float* src = in + (nc * T + source_frame(to)) * H * W;
        float* dst = o + r * Ho * Wo;
        for (std::int64_t h = 0; h < H; ++h) {
            float* orow = dst + h * fh * Wo;
            for (std::int64_t w = 0; w < W; ++w) std::fill_n(orow + w * fw, fw, src[h * W + w]);
            for (std::int64_t k = 1; k < fh; ++k) std::memcpy(orow + k * Wo, orow, static_cast<std::size_t>(Wo) * 4);
        }
    }, grain);
    return out;
}

}  // namespace hyvideo::cpu_detail
