#pragma once
// GroupNorm on [N, C, ...] f32 tensors (torch.nn.GroupNorm), optionally followed by SiLU, and the
// per-channel map it amounts to, for a convolution to apply while it reads its input.
//
// Statistics per sample and group of C/G channels, over those channels and every position: the
// mean, then the biased variance around it (two passes in double, so a large mean costs no
// precision). Sums are formed per channel (channels-first) or per block of 2048 pixels
// (channels-last), each by one thread, and combined in a fixed order, so the result does not depend
// on the thread count. Normalisation is then the per-channel affine map y = x·a_c + b_c with
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

// Per (n, c): Σ f(x) over the channel's P values, f(x) = x − center[n·C + c], squared if `square`.
// (center nullptr: f(x) = x.) Returned as N·C doubles.
inline std::vector<double> channel_sums(const View& v, const std::vector<double>* center, bool square) {
    const float* x = v.t.data<const float>();
    std::vector<double> sums(static_cast<std::size_t>(v.N * v.C), 0.0);
    if (!v.channels_last) {
        const std::int64_t grain = std::max<std::int64_t>(1, kGrain / std::max<std::int64_t>(v.P, 1));
        parallel_for(0, v.N * v.C, [&](std::int64_t nc) {
            const float* row = x + nc * v.P;
            const double m = center ? (*center)[static_cast<std::size_t>(nc)] : 0.0;
            double s = 0;
            if (square) {
#pragma omp simd reduction(+ : s)
                for (std::int64_t i = 0; i < v.P; ++i) s += (row[i] - m) * (row[i] - m);
            } else {
#pragma omp simd reduction(+ : s)
                for (std::int64_t i = 0; i < v.P; ++i) s += row[i] - m;
            }
            sums[static_cast<std::size_t>(nc)] = s;
        }, grain);
        return sums;
    }
    // Channels-last: per-channel partial sums of fixed pixel blocks, vectorised across channels,
    // then added up block by block in order.
    const std::int64_t blocks = (v.P + kPixelBlock - 1) / kPixelBlock;
    std::vector<double> partial(static_cast<std::size_t>(v.N * blocks * v.C), 0.0);
    const std::int64_t grain = std::max<std::int64_t>(1, kGrain / (kPixelBlock * v.C));
    parallel_for(0, v.N * blocks, [&](std::int64_t nb) {
        const std::int64_t n = nb / blocks, p0 = (nb % blocks) * kPixelBlock, p1 = std::min(v.P, p0 + kPixelBlock);
        double* acc = partial.data() + nb * v.C;
        const double* m = center ? center->data() + n * v.C : nullptr;
        for (std::int64_t p = p0; p < p1; ++p) {
            const float* px = x + (n * v.P + p) * v.C;
            if (square) {
#pragma omp simd
                for (std::int64_t c = 0; c < v.C; ++c) acc[c] += (px[c] - m[c]) * (px[c] - m[c]);
            } else if (m) {
#pragma omp simd
                for (std::int64_t c = 0; c < v.C; ++c) acc[c] += px[c] - m[c];
            } else {
#pragma omp simd
                for (std::int64_t c = 0; c < v.C; ++c) acc[c] += px[c];
            }
        }
    }, grain);
    for (std::int64_t n = 0; n < v.N; ++n)
        for (std::int64_t b = 0; b < blocks; ++b)
            for (std::int64_t c = 0; c < v.C; ++c)
                sums[static_cast<std::size_t>(n * v.C + c)] += partial[static_cast<std::size_t>((n * blocks + b) * v.C + c)];
    return sums;
}

// scale and shift [2, N, C] of the normalisation (with weight and bias, if given).
inline Tensor affine(const View& v, const Tensor& weight, const Tensor& bias, std::int64_t groups, float eps) {
    const std::int64_t cpg = v.C / groups;
    const double count = static_cast<double>(cpg * v.P);
    auto group_totals = [&](const std::vector<double>& per_channel) {
        std::vector<double> g(static_cast<std::size_t>(v.N * groups), 0.0);
        for (std::int64_t nc = 0; nc < v.N * v.C; ++nc) g[static_cast<std::size_t>(nc / cpg)] += per_channel[static_cast<std::size_t>(nc)];
        return g;
    };
    std::vector<double> mean = group_totals(channel_sums(v, nullptr, false));
    for (auto& m : mean) m /= count;
    std::vector<double> center(static_cast<std::size_t>(v.N * v.C));
    for (std::int64_t nc = 0; nc < v.N * v.C; ++nc) center[static_cast<std::size_t>(nc)] = mean[static_cast<std::size_t>(nc / cpg)];
    const std::vector<double> sq = group_totals(channel_sums(v, &center, true));

    Tensor out = Tensor::empty({2, v.N, v.C});
    float* scale = out.data<float>();
    float* shift = scale + v.N * v.C;
    const float* w = weight.defined() ? weight.data<const float>() : nullptr;
    const float* b = bias.defined() ? bias.data<const float>() : nullptr;
    for (std::int64_t nc = 0; nc < v.N * v.C; ++nc) {
        const auto g = static_cast<std::size_t>(nc / cpg);
        const std::int64_t c = nc % v.C;
        const double rstd = 1.0 / std::sqrt(sq[g] / count + eps);
        const double a = rstd * (w ? w[c] : 1.0f);
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
