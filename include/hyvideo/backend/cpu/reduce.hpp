#pragma once
// Reductions over the token dimension.
#include <cstdint>

#include "hyvideo/backend/cpu/elementwise.hpp"

namespace hyvideo::cpu_detail {

// Σ_l w[b,l]·x[b,l,:] / Σ_l w[b,l] for x [B, L, C], w [B, L] -> [B, C]: the token refiner's masked
// mean of the raw text states. Sums are in float in token order, like the reference's (x·mask).sum(1).
inline Tensor masked_mean(const Tensor& x, const Tensor& w) {
    require_f32(x, "masked_mean");
    require_f32(w, "masked_mean weights");
    HYVIDEO_CHECK(x.dim() == 3 && w.shape() == (Shape{x.size(0), x.size(1)}), "masked_mean: x ", shape_str(x.shape()),
                  " with weights ", shape_str(w.shape()));
    const std::int64_t N = x.size(0), L = x.size(1), C = x.size(2);
    Tensor xs = x.contiguous(), ws = w.contiguous();
    Tensor out = Tensor::zeros({N, C});
    const float* px = xs.data<const float>();
    const float* pw = ws.data<const float>();
    float* po = out.data<float>();
    for (std::int64_t b = 0; b < N; ++b) {
        float total = 0;
        for (std::int64_t l = 0; l < L; ++l) total += pw[b * L + l];
        HYVIDEO_CHECK(total != 0.0f, "masked_mean: sample ", b, " has no valid token");
        for (std::int64_t l = 0; l < L; ++l)
            for (std::int64_t c = 0; c < C; ++c) po[b * C + c] += px[(b * L + l) * C + c] * pw[b * L + l];
        for (std::int64_t c = 0; c < C; ++c) po[b * C + c] /= total;
    }
    return out;
}

}  // namespace hyvideo::cpu_detail
