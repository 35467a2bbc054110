#pragma once
// GroupNorm on [N, C, ...] f32 tensors (torch.nn.GroupNorm), optionally followed by SiLU, and the
// per-channel map it amounts to, for a convolution to apply while it reads its input.
//
// Statistics per sample and group of C/G channels, over those channels and every position: the mean
// and the biased variance, from one pass of shifted sums in double (so a large mean costs no
// precision, see channel_sums). Sums are formed per channel (channels-first) or per block of 2048
// pixels (channels-last), each by one thread, and combined in a fixed order, so the result does not
// depend on the thread count. Normalisation is then the per-channel affine map y = x·a_c + b_c with
// a_c = γ_c·rstd_g and b_c = β_c − mean_g·a_c (how PyTorch's kernel applies it), computed in double
// and rounded to float once.
//
// Layouts: channels-first contiguous and channels-last (channels_last.hpp) tensors are read as they
// are and the output keeps the input's layout; any other view is made contiguous first.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "hyvideo/backend/cpu/channel_map.hpp"
#include "hyvideo/backend/cpu/channels_last.hpp"
#include "hyvideo/backend/cpu/elementwise.hpp"
#include "hyvideo/core/parallel.hpp"
#include "hyvideo/core/tensor.hpp"

namespace hyvideo::cpu_detail {

namespace group_norm_internal {

// Elements per parallel chunk of a pass: enough that waking a thread pays off.
inline constexpr std::int64_t kGrain = std::int64_t{1} << 15;
// Pixels per partial sum of a channels-last tensor.
inline constexpr std::int64_t kPixelBlock = 2048;

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

// A tensor as the passes read it: channels-last [N][P][C], or channels-first [N][C][P].
struct View {
    Tensor t;
    bool channels_last;
    std::int64_t N, C, P;
};

inline View view_of(const Tensor& x) {
    const bool cl = is_channels_last(x);
    View v{cl ? x : x.contiguous(), cl, x.size(0), x.size(1), 0};
    v.P = v.N * v.C == 0 ? 0 : x.numel() / (v.N * v.C);
    return v;
}

// Per (n, c), in one pass over the tensor: s1 = Σ (x − p) and s2 = Σ (x − p)² over the channel's P
// values, shifted by a pivot p, the channel's first value. Shifting by a value of the data keeps the
// later s2 − s1²/P free of cancellation whatever the mean (the relative error grows with the squared
// distance of p from the mean in standard deviations, and p is one of the values).
struct ChannelSums {
    std::vector<double> pivot, s1, s2;  // N·C each
};

inline ChannelSums channel_sums(const View& v) {
    const float* x = v.t.data<const float>();
    const auto NC = static_cast<std::size_t>(v.N * v.C);
    ChannelSums r{std::vector<double>(NC), std::vector<double>(NC, 0.0), std::vector<double>(NC, 0.0)};
    if (!v.channels_last) {
        const std::int64_t grain = std::max<std::int64_t>(1, kGrain / std::max<std::int64_t>(v.P, 1));
        parallel_for(0, v.N * v.C, [&](std::int64_t nc) {
            const float* row = x + nc * v.P;
            const double p = v.P > 0 ? row[0] : 0.0;
            double s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
            for (std::int64_t i = 0; i < v.P; ++i) {
                const double d = row[i] - p;
                s1 += d;
                s2 += d * d;
            }
            const auto k = static_cast<std::size_t>(nc);
            r.pivot[k] = p;
            r.s1[k] = s1;
            r.s2[k] = s2;
        }, grain);
        return r;
    }
    // Channels-last: per-channel partial sums of fixed pixel blocks, vectorised across channels (the
    // pivots are the first pixel), then added up block by block in order.
    for (std::int64_t n = 0; n < v.N; ++n)
        for (std::int64_t c = 0; c < v.C; ++c)
            r.pivot[static_cast<std::size_t>(n * v.C + c)] = v.P > 0 ? x[n * v.P * v.C + c] : 0.0;
    const std::int64_t blocks = (v.P + kPixelBlock - 1) / kPixelBlock;
    std::vector<double> partial(static_cast<std::size_t>(2 * v.N * blocks * v.C), 0.0);
    const std::int64_t grain = std::max<std::int64_t>(1, kGrain / (kPixelBlock * v.C));
    parallel_for(0, v.N * blocks, [&](std::int64_t nb) {
        const std::int64_t n = nb / blocks, p0 = (nb % blocks) * kPixelBlock, p1 = std::min(v.P, p0 + kPixelBlock);
        double* a1 = partial.data() + 2 * nb * v.C;
        double* a2 = a1 + v.C;
        const double* pivot = r.pivot.data() + n * v.C;
        for (std::int64_t p = p0; p < p1; ++p) {
            const float* px = x + (n * v.P + p) * v.C;
#pragma omp simd
            for (std::int64_t c = 0; c < v.C; ++c) {
                const double d = px[c] - pivot[c];
                a1[c] += d;
                a2[c] += d * d;
            }
        }
    }, grain);
    for (std::int64_t n = 0; n < v.N; ++n)
        for (std::int64_t b = 0; b < blocks; ++b)
            for (std::int64_t c = 0; c < v.C; ++c) {
                const auto k = static_cast<std::size_t>(n * v.C + c);
                const auto at = static_cast<std::size_t>(2 * (n * blocks + b) * v.C + c);
                r.s1[k] += partial[at];
                r.s2[k] += partial[at + static_cast<std::size_t>(v.C)];
            }
    return r;
}

// scale and shift [2, N, C] of the normalisation (with weight and bias, if given). The group's
// moments are the channels' shifted sums moved to a common origin, the group mean:
// Σ (x − m)² = Σ_c [s2_c + 2·(p_c − m)·s1_c + P·(p_c − m)²].
inline Tensor affine(const View& v, const Tensor& weight, const Tensor& bias, std::int64_t groups, float eps) {
    const std::int64_t cpg = v.C / groups;
    const double P = static_cast<double>(v.P), count = static_cast<double>(cpg) * P;
    const ChannelSums sums = channel_sums(v);
    std::vector<double> mean(static_cast<std::size_t>(v.N * groups)), rstd(mean.size());
    for (std::int64_t ng = 0; ng < v.N * groups; ++ng) {
        double total = 0;
        for (std::int64_t c = ng * cpg; c < (ng + 1) * cpg; ++c) {
            const auto k = static_cast<std::size_t>(c);
            total += sums.s1[k] + P * sums.pivot[k];
        }
        const double m = total / count;
        double sq = 0;
        for (std::int64_t c = ng * cpg; c < (ng + 1) * cpg; ++c) {
            const auto k = static_cast<std::size_t>(c);
            const double shift = sums.pivot[k] - m;
            sq += sums.s2[k] + 2.0 * shift * sums.s1[k] + P * shift * shift;
        }
        mean[static_cast<std::size_t>(ng)] = m;
        rstd[static_cast<std::size_t>(ng)] = 1.0 / std::sqrt(std::max(sq, 0.0) / count + eps);
    }

    Tensor out = Tensor::empty({2, v.N, v.C});
    float* scale = out.data<float>();
    float* shift = scale + v.N * v.C;
    const float* w = weight.defined() ? weight.data<const float>() : nullptr;
    const float* b = bias.defined() ? bias.data<const float>() : nullptr;
    for (std::int64_t nc = 0; nc < v.N * v.C; ++nc) {
        const auto g = static_cast<std::size_t>(nc / cpg);
        const std::int64_t c = nc % v.C;
        const double a = rstd[g] * (w ? w[c] : 1.0f);
        scale[nc] = static_cast<float>(a);
        shift[nc] = static_cast<float>((b ? b[c] : 0.0f) - mean[g] * a);
    }
    return out;
}

}  // namespace group_norm_internal

// The per-channel map of GroupNorm for x [N, C, ...]: [2, N, C] holding scale (index 0) and shift
// (index 1), so that GroupNorm(x)[n, c, ...] = x[n, c, ...]·scale[n, c] + shift[n, c].
inline Tensor group_norm_affine(const Tensor& x, const Tensor& weight, const Tensor& bias, std::int64_t groups,
                                float eps) {
    group_norm_internal::check(x, weight, bias, groups, "group_norm_affine");
    return group_norm_internal::affine(group_norm_internal::view_of(x), weight.defined() ? weight.contiguous() : weight,
                                       bias.defined() ? bias.contiguous() : bias, groups, eps);
}

// x [N, C, ...] -> the same shape and layout; weight and bias [C] (or both undefined: no affine).
inline Tensor group_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, std::int64_t groups, float eps,
                         bool silu = false) {
    using namespace group_norm_internal;
    check(x, weight, bias, groups, silu ? "group_norm_silu" : "group_norm");
    const View v = view_of(x);
    Tensor out = v.channels_last ? empty_channels_last(x.shape()) : Tensor::empty(x.shape());
    if (out.numel() == 0) return out;
    const Tensor ab = affine(v, weight.defined() ? weight.contiguous() : weight, bias.defined() ? bias.contiguous() : bias,
                             groups, eps);
    const float* scale = ab.data<const float>();
    const float* shift = scale + v.N * v.C;
    const float* in = v.t.data<const float>();
    float* o = out.data<float>();
    if (v.channels_last) {
        // Chunks of pixels of one sample, the channels' maps as vectors.
        const std::int64_t rows = std::max<std::int64_t>(1, kGrain / v.C), chunks = (v.P + rows - 1) / rows;
        parallel_for(0, v.N * chunks, [&](std::int64_t i) {
            const std::int64_t n = i / chunks, p0 = (i % chunks) * rows, pn = std::min(rows, v.P - p0);
            const ChannelMap m{scale + n * v.C, shift + n * v.C, true, silu};
            map_channels(in + (n * v.P + p0) * v.C, v.C, o + (n * v.P + p0) * v.C, v.C, DType::f32, pn, v.C, m);
        });
    } else {
        const std::int64_t grain = std::max<std::int64_t>(1, kGrain / std::max<std::int64_t>(v.P, 1));
        parallel_for(0, v.N * v.C, [&](std::int64_t nc) {
            const ChannelMap m{scale + nc, shift + nc, false, silu};
            map_channels(in + nc * v.P, v.P, o + nc * v.P, v.P, DType::f32, 1, v.P, m);
        }, grain);
    }
    return out;
}

}  // namespace hyvideo::cpu_detail
