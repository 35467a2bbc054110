#pragma once
// Step caching: sampler policies that skip the DiT's blocks on steps where its input has changed little
// since the last computed step, and reuse the blocks' last effect on the image tokens instead. Off by
// default; docs/usage.md#step-caching says what they save and cost.
//
//   TeaCache (Liu et al., "Timestep Embedding Tells: It's Time to Cache for Video Diffusion Model",
//   2024; its HunyuanVideo variant). The signal is the first double block's modulated image input. Its
//   relative L1 change since the previous step, rescaled by a polynomial the authors fitted to
//   HunyuanVideo, is summed over the steps since the last computed one; a step is computed once the sum
//   reaches the threshold (which resets it), and always on the first and the last step. A skipped step
//   adds the residual of the last computed one (image tokens after the blocks minus before) to the
//   embedded image tokens.
//
//   First-Block-Cache (the FBCache of ParaAttention). The first double block always runs; its residual
//   on the image tokens is compared with the one of the last computed step (relative L1). Below the
//   threshold, the remaining blocks are skipped and their last residual added to the first block's
//   output.
//
// A policy is any type with forward(dit, inputs, rope, step, steps) -> velocity (StepCachePolicy), so a
// researcher's own slots in beside these: HunyuanVideoPipeline::denoise takes one, or builds TeaCache /
// FirstBlockCache from SamplingOptions::step_cache. A policy keeps state across the steps of one run.
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "hyvideo/core/error.hpp"
#include "hyvideo/models/hunyuan_video.hpp"

namespace hyvideo {

template <class C, class DiT>
concept StepCachePolicy = requires(C& c, const DiT& dit, const DiTInputs& in, const RopeTables& rope, std::int64_t step) {
    { c.forward(dit, in, rope, step, step) } -> std::same_as<Tensor>;
};

// Every step computed: the plain forward.
struct NoStepCache {
    template <class DiT>
    Tensor forward(const DiT& dit, const DiTInputs& in, const RopeTables& rope, std::int64_t, std::int64_t) {
        return dit.forward(in, rope);
    }
};

// Which built-in policy a run uses, and its threshold (SamplingOptions::step_cache, `hyvideo generate
// --teacache / --fbcache`).
struct StepCacheOptions {
    enum class Kind : std::uint8_t { none, teacache, first_block };
    Kind kind = Kind::none;
    double threshold = 0.0;  // > 0; 0 with a policy computes every step

    void validate() const {
        HYVIDEO_CHECK(kind == Kind::none || (threshold >= 0.0 && threshold <= 1e6),
                      "step cache threshold ", threshold, ": must be a number in [0, 1e6]");
    }
};

namespace step_cache_detail {
// mean|a − b| / mean|b|, with mean|b| = 0 read as a change as large as any.
template <class B>
double relative_l1(const Tensor& a, const Tensor& b) {
    const double base = B::mean_abs(b);
    if (!(base > 0.0)) return std::numeric_limits<double>::infinity();
    return B::mean_abs(B::sub(a, b)) / base;
}

// Runs the double blocks from `first` on and every single block on `s`; returns their residual on
// the image tokens (after minus before), what a skipped step adds back.
template <class DiT, class State>
Tensor run_blocks_from(const DiT& dit, State& s, std::size_t first) {
    using B = typename DiT::backend;
    const Tensor before = s.img;
    dit.run_double_blocks(s, first, dit.double_blocks.size());
    dit.run_single_blocks(s);
    return B::sub(s.img, before);
}
}  // namespace step_cache_detail

struct TeaCache {
    // HunyuanVideo's rescaling polynomial, highest power first (the TeaCache authors' fit).
    static constexpr std::array<double, 5> hunyuan_video_coefficients{7.33226126e2, -4.01131952e2, 6.75869174e1, -3.149878,
                                                                       9.61237896e-2};

    double threshold = 0.15;
    std::array<double, 5> coefficients = hunyuan_video_coefficients;

    // What the last run did.
    std::int64_t computed = 0, skipped = 0;

    explicit TeaCache(double thresh = 0.15) : threshold(thresh) {}

    double rescale(double rel_l1) const {
        double y = 0.0;
        for (double c : coefficients) y = y * rel_l1 + c;
        return y;
    }

    template <class DiT>
    Tensor forward(const DiT& dit, const DiTInputs& in, const RopeTables& rope, std::int64_t step, std::int64_t steps) {
        using B = typename DiT::backend;
        if (step == 0) reset();
        auto s = dit.embed(in, rope);
        const Tensor signal = dit.first_block_modulated_input(s);
        bool compute = true;
        if (step == 0 || step + 1 >= steps || !previous_residual_.defined() ||
            previous_signal_.shape() != signal.shape()) {
            accumulated_ = 0.0;
        } else {
            accumulated_ += rescale(step_cache_detail::relative_l1<B>(signal, previous_signal_));
            if (accumulated_ < threshold) compute = false;
            else accumulated_ = 0.0;
        }
        previous_signal_ = signal;
        if (compute) {
            previous_residual_ = step_cache_detail::run_blocks_from(dit, s, 0);
            ++computed;
        } else {
            s.img = B::add(s.img, previous_residual_);
            ++skipped;
        }
        return dit.output(s);
    }

private:
    void reset() {
        computed = skipped = 0;
        accumulated_ = 0.0;
        previous_signal_ = previous_residual_ = Tensor{};
    }

    double accumulated_ = 0.0;
    Tensor previous_signal_, previous_residual_;
};

struct FirstBlockCache {
    double threshold = 0.1;

    // What the last run did.
    std::int64_t computed = 0, skipped = 0;

    explicit FirstBlockCache(double thresh = 0.1) : threshold(thresh) {}

    template <class DiT>
    Tensor forward(const DiT& dit, const DiTInputs& in, const RopeTables& rope, std::int64_t step, std::int64_t) {
        using B = typename DiT::backend;
        HYVIDEO_CHECK(!dit.double_blocks.empty(), "FirstBlockCache: the model has no double block");
        if (step == 0) reset();
        auto s = dit.embed(in, rope);
        const Tensor before = s.img;
        dit.run_double_blocks(s, 0, 1);
        const Tensor first_residual = B::sub(s.img, before);
        const bool reuse = first_residual_.defined() && first_residual_.shape() == first_residual.shape() &&
                           step_cache_detail::relative_l1<B>(first_residual, first_residual_) < threshold;
        if (reuse) {
            s.img = B::add(s.img, rest_residual_);
            ++skipped;
        } else {
            rest_residual_ = step_cache_detail::run_blocks_from(dit, s, 1);
            first_residual_ = first_residual;
            ++computed;
        }
        return dit.output(s);
    }

private:
    void reset() {
        computed = skipped = 0;
        first_residual_ = rest_residual_ = Tensor{};
    }

    Tensor first_residual_, rest_residual_;  // of the last computed step
};

}  // namespace hyvideo
