#pragma once
// GroupNorm on [N, C, ...] f32 tensors (torch.nn.GroupNorm), optionally fused with the SiLU that
// follows it in every block of the causal VAE.
//
// Statistics per sample and group of C/G channels, over those channels and every position: the
// mean, then the biased variance around it (two passes in double, so a large mean costs no
// precision), reduced channel by channel in channel order. Each channel's sum is computed whole by
// one thread, so the result does not depend on the thread count. Normalisation is then the
// per-channel affine map y = x·a_c + b_c with a_c = γ_c·rstd_g and b_c = β_c − mean_g·a_c (how
// PyTorch's kernel applies it too), and with `silu` y·sigmoid(y) in the same pass.
//
// SiLU uses silu_fast(): an exp written as range reduction plus polynomial, which the compiler
// vectorises (std::exp would be a scalar libm call per element, several times the cost of the rest
// of the pass at the VAE's sizes). It is within 2 ulp of std::exp; results differ from the scalar
// silu() in the last bits only.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include "hyvideo/backend/cpu/elementwise.hpp"
#include "hyvideo/core/parallel.hpp"
#include "hyvideo/core/tensor.hpp"

namespace hyvideo::cpu_detail {

// e^x for finite x, within 2 ulp, overflow to +inf above ~88.7 and flush to 0 below ~-87.3, NaN
// propagated; branch-free so that loops over it vectorise.
inline float exp_fast(float x) {
    constexpr float kLog2e = 1.44269504088896341f;
    constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;  // ln 2 split (Cephes)
    const float xc = std::min(std::max(x, -87.3f), 88.7f);
    // n = round(x / ln 2) by the 1.5·2^23 trick (exact for |x·log2e| < 2^22).
    const float n = (xc * kLog2e + 12582912.0f) - 12582912.0f;
    const float r = (xc - n * kLn2Hi) - n * kLn2Lo;  // |r| <= ln2 / 2
    // e^r by its degree-6 Taylor-like minimax polynomial (Cephes expf coefficients).
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    // Scale by 2^n in two halves, so that n = 128 (x near 88.7) does not overflow the exponent field.
    const std::int32_t ni = static_cast<std::int32_t>(n);
    const float half1 = std::bit_cast<float>(static_cast<std::int32_t>((ni / 2 + 127) << 23));
    const float half2 = std::bit_cast<float>(static_cast<std::int32_t>((ni - ni / 2 + 127) << 23));
    const float y = p * half1 * half2;
    return x != x ? x : (x > 88.7f ? INFINITY : y);
}

// x·sigmoid(x) = x / (1 + e^−x).
inline float silu_fast(float x) { return x / (1.0f + exp_fast(-x)); }

namespace group_norm_internal {

inline void check(const Tensor& x, const Tensor& weight, const Tensor& bias, std::int64_t groups, const char* what) {
    require_f32(x, what);
    HYVIDEO_CHECK(x.dim() >= 2, what, ": x must be [N, C, ...], got ", shape_str(x.shape()));
    const std::int64_t C = x.size(1);
    HYVIDEO_CHECK(groups >= 1 && C % groups == 0, what, ": ", C, " channels do not split into ", groups, " groups");
    HYVIDEO_CHECK(weight.defined() == bias.defined(), what, ": weight and bias must both be given or both be absent");
    if (weight.defined()) {
        require_f32(weight, what);
        require_f32(bias, what);
        HYVIDEO_CHECK(weight.shape() == Shape{C} && bias.shape() == Shape{C}, what, ": weight and bias must be [", C,
                      "], got ", shape_str(weight.shape()), " and ", shape_str(bias.shape()));
    }
}

}  // namespace group_norm_internal

// x [N, C, ...] -> same shape; weight and bias [C] (or both undefined: no affine).
inline Tensor group_norm(const Tensor& x_in, const Tensor& weight, const Tensor& bias, std::int64_t groups, float eps,
                         bool silu = false) {
    group_norm_internal::check(x_in, weight, bias, groups, silu ? "group_norm_silu" : "group_norm");
    const Tensor x = x_in.contiguous();
    Tensor out = Tensor::empty(x.shape());
    if (out.numel() == 0) return out;
    const std::int64_t N = x.size(0), C = x.size(1), S = x.numel() / (N * C), cpg = C / groups;
    const float* in = x.data<const float>();
    float* o = out.data<float>();

    // Pass 1: per-channel sums, then group means.
    std::vector<double> channel(static_cast<std::size_t>(N * C));
    parallel_for(0, N * C, [&](std::int64_t nc) {
        const float* row = in + nc * S;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (std::int64_t i = 0; i < S; ++i) s += row[i];
        channel[static_cast<std::size_t>(nc)] = s;
    });
    const double count = static_cast<double>(cpg * S);
    std::vector<double> mean(static_cast<std::size_t>(N * groups)), rstd(mean.size());
    for (std::int64_t ng = 0; ng < N * groups; ++ng) {
        double s = 0;
        for (std::int64_t c = 0; c < cpg; ++c) s += channel[static_cast<std::size_t>(ng * cpg + c)];
        mean[static_cast<std::size_t>(ng)] = s / count;
    }
    // Pass 2: per-channel squared deviations from the group mean, then the group's rstd.
    parallel_for(0, N * C, [&](std::int64_t nc) {
        const float* row = in + nc * S;
        const double m = mean[static_cast<std::size_t>(nc / cpg)];
        double q = 0;
#pragma omp simd reduction(+ : q)
        for (std::int64_t i = 0; i < S; ++i) q += (row[i] - m) * (row[i] - m);
        channel[static_cast<std::size_t>(nc)] = q;
    });
    for (std::int64_t ng = 0; ng < N * groups; ++ng) {
        double q = 0;
        for (std::int64_t c = 0; c < cpg; ++c) q += channel[static_cast<std::size_t>(ng * cpg + c)];
        rstd[static_cast<std::size_t>(ng)] = 1.0 / std::sqrt(q / count + eps);
    }

    // Pass 3: the per-channel affine map, and SiLU.
    const float* w = weight.defined() ? weight.data<const float>() : nullptr;
    const float* b = bias.defined() ? bias.data<const float>() : nullptr;
    parallel_for(0, N * C, [&](std::int64_t nc) {
        const std::int64_t c = nc % C;
        const auto g = static_cast<std::size_t>(nc / cpg);
        const float scale = static_cast<float>(rstd[g] * (w ? w[c] : 1.0f));
        const float shift = static_cast<float>((b ? b[c] : 0.0f) - mean[g] * rstd[g] * (w ? w[c] : 1.0f));
        const float* row = in + nc * S;
        float* dst = o + nc * S;
        if (silu) {
#pragma omp simd
            for (std::int64_t i = 0; i < S; ++i) dst[i] = silu_fast(row[i] * scale + shift);
        } else {
#pragma omp simd
            for (std::int64_t i = 0; i < S; ++i) dst[i] = row[i] * scale + shift;
        }
    });
    return out;
}

}  // namespace hyvideo::cpu_detail
