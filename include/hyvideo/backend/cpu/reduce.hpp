#pragma once
// Reductions over the token dimension.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

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

// Unbiased (N−1) standard deviation of each sample x[b] over all its elements, in double.
inline std::vector<double> sample_std(const Tensor& x) {
    require_f32(x, "sample_std");
    HYVIDEO_CHECK(x.dim() >= 1 && x.numel() / std::max<std::int64_t>(x.size(0), 1) > 1,
                  "sample_std: need more than one element per sample, got ", shape_str(x.shape()));
    const Tensor xs = x.contiguous();
    const std::int64_t N = x.size(0), n = x.numel() / N;
    std::vector<double> out(static_cast<std::size_t>(N));
    for (std::int64_t b = 0; b < N; ++b) {
        const float* p = xs.data<const float>() + b * n;
        double mean = 0, sq = 0;
        for (std::int64_t i = 0; i < n; ++i) mean += p[i];
        mean /= static_cast<double>(n);
        for (std::int64_t i = 0; i < n; ++i) sq += (p[i] - mean) * (p[i] - mean);
        out[b] = std::sqrt(sq / static_cast<double>(n - 1));
    }
    return out;
}

// Mean of |x| over every element, summed in double in element order (so the result does not depend
// on the thread count).
inline double mean_abs(const Tensor& x) {
    require_f32(x, "mean_abs");
    HYVIDEO_CHECK(x.numel() > 0, "mean_abs: an empty tensor ", shape_str(x.shape()));
    const Tensor xs = x.contiguous();
    const float* p = xs.data<const float>();
    double sum = 0;
    for (std::int64_t i = 0; i < xs.numel(); ++i) sum += std::fabs(static_cast<double>(p[i]));
    return sum / static_cast<double>(xs.numel());
}

}  // namespace hyvideo::cpu_detail
