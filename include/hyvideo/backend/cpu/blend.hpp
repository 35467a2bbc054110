#pragma once
// The seams of the tiled VAE (docs/model.md#vae-tiling): the cross-fade of two overlapping tiles, and
// writing a tile's kept part into the output.
#include <algorithm>
#include <cstdint>

#include "hyvideo/backend/cpu/elementwise.hpp"
#include "hyvideo/core/parallel.hpp"
#include "hyvideo/core/tensor.hpp"

namespace hyvideo::cpu_detail {

// a, b of equal shape -> out[..., y, ...] = a[..., y, ...]·(1 − y/n) + b[..., y, ...]·(y/n) along `dim`,
// n = a.size(dim): the official blend_v / blend_h / blend_t, whose weights are Python floats
// (y/n in double, then rounded to float when they multiply a float tensor).
inline Tensor blend(const Tensor& a_in, const Tensor& b_in, std::int64_t dim) {
    require_f32(a_in, "blend");
    require_f32(b_in, "blend");
    HYVIDEO_CHECK(a_in.shape() == b_in.shape(), "blend: shapes ", shape_str(a_in.shape()), " and ",
                  shape_str(b_in.shape()), " differ");
    if (dim < 0) dim += a_in.dim();
    HYVIDEO_CHECK(0 <= dim && dim < a_in.dim(), "blend: dim out of range for ", shape_str(a_in.shape()));
    const Tensor a = a_in.contiguous(), b = b_in.contiguous();
    Tensor out = Tensor::empty(a.shape());
    if (out.numel() == 0) return out;
    const std::int64_t n = a.size(dim);
    std::int64_t inner = 1;
    for (std::int64_t d = dim + 1; d < a.dim(); ++d) inner *= a.size(d);
    const std::int64_t outer = a.numel() / (n * inner);
    const float* pa = a.data<const float>();
    const float* pb = b.data<const float>();
    float* po = out.data<float>();
    const std::int64_t grain = std::max<std::int64_t>(1, (std::int64_t{1} << 15) / inner);
    parallel_for_chunks(0, outer * n, grain, [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
            const double t = static_cast<double>(r % n) / static_cast<double>(n);
            const float wa = static_cast<float>(1.0 - t), wb = static_cast<float>(t);
            const std::int64_t off = r * inner;
            for (std::int64_t i = 0; i < inner; ++i) po[off + i] = pa[off + i] * wa + pb[off + i] * wb;
        }
    });
    return out;
}

// Writes src into the view dst (same shape; dst's memory is shared with the tensor it views).
inline void assign(const Tensor& dst, const Tensor& src) {
    require_f32(dst, "assign");
    require_f32(src, "assign");
    HYVIDEO_CHECK(dst.shape() == src.shape(), "assign: ", shape_str(src.shape()), " into ", shape_str(dst.shape()));
    Tensor view = dst;
    src.copy_to(view);
}

}  // namespace hyvideo::cpu_detail
