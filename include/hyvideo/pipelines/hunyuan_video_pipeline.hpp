#pragma once
// The sampling loop of HunyuanVideo (official pipelines/pipeline_hunyuan_video.py) and of
// HunyuanVideo-I2V: per step, the DiT predicts a velocity from the latents (with the embedded
// guidance tensor, true CFG if asked), the Euler step moves the latents along it; at the end the VAE
// decodes them into a video in [0, 1].
//
// Text-to-video:   x ← noise;  for t in timesteps: x ← x + DiT(x, t)·(σ_{i+1} − σ_i)
// token_replace:   frame 0 is the clean image latent before every step and is never stepped
// latent_concat:   the DiT sees [x | image latent in frame 0 | mask] on channels; all frames stepped
//
// The solver is a policy (schedulers/flow_solver.hpp): FlowMatchDiscreteScheduler by default, built
// from SamplingOptions' flow_shift and flow_reverse; another is given to the constructor and carries
// its own settings.
#include <cmath>
#include <concepts>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "hyvideo/core/host_allocator.hpp"
#include "hyvideo/models/hunyuan_video.hpp"
#include "hyvideo/pipelines/guidance.hpp"
#include "hyvideo/pipelines/step_cache.hpp"
#include "hyvideo/schedulers/flow_match_discrete.hpp"
#include "hyvideo/schedulers/flow_solver.hpp"
#include "hyvideo/vae/distribution.hpp"

namespace hyvideo {

// The text encoders' outputs for one prompt (or a batch of prompts of equal padded length).
struct PromptEmbeds {
    Tensor text_states;    // [B, L, 4096]: LLM hidden states (layer −3), cropped and padded
    Tensor text_mask;      // [B, L] int64, 1 = valid (a prefix)
    Tensor text_states_2;  // [B, 768]: CLIP-L pooled output
};

// HunyuanVideo-I2V conditioning: the image latent (VAE mode × scaling factor), [B, C, 1, h, w].
struct ImageCondition {
    I2VConditionType type = I2VConditionType::token_replace;  // the DiT's config must say the same
    Tensor img_latents;
};

struct SamplingOptions {
    std::int64_t infer_steps = 50;
    float flow_shift = 7.0f;
    bool flow_reverse = true;  // the official CLI's default is off, which gives noise: see the scheduler
    std::optional<float> embedded_cfg_scale = 6.0f;  // guidance-distilled models only
    float cfg_scale = 1.0f;                          // true classifier-free guidance when > 1
    float guidance_rescale = 0.0f;
    // The official bf16 run rounds the guidance scale to bf16 before the ×1000 (6.0 -> 6016); the
    // fp32 reference fixtures use the exact product (6000).
    bool guidance_bf16_rounding = false;
    // Skip the DiT's blocks on steps whose input changed little (TeaCache, First-Block-Cache; off by
    // default): pipelines/step_cache.hpp.
    StepCacheOptions step_cache;
};

// Called after every step with (step index, timestep, latents); return false to stop the run early
// (the latents so far are returned).
using StepCallback = std::function<bool(std::int64_t step, float t, const Tensor& latents)>;

// What a run may add to the prompt, by name: pipe.denoise(latents, prompt, opt, {.negative = neg}).
struct DenoiseConditions {
    std::optional<PromptEmbeds> negative;  // required when cfg_scale > 1: the unconditional branch
    std::optional<ImageCondition> image;   // HunyuanVideo-I2V
    StepCallback on_step;
};

// The guidance tensor value the DiT receives for an embedded CFG scale.
inline float embedded_guidance_value(float scale, bool bf16_rounding) {
    if (!bf16_rounding) return scale * 1000.0f;
    const float s = bf16_to_f32(f32_to_bf16(scale));
    return bf16_to_f32(f32_to_bf16(s * 1000.0f));
}

template <class DiT, class Scheduler = FlowMatchDiscreteScheduler>
    requires FlowSolver<Scheduler, typename DiT::backend>
class HunyuanVideoPipeline {
public:
    using B = typename DiT::backend;

    // The default solver, FlowMatchDiscreteScheduler, from each run's SamplingOptions (flow_shift,
    // flow_reverse).
    explicit HunyuanVideoPipeline(const DiT& dit)
        requires std::constructible_from<Scheduler, float, bool>
        : dit_(dit) {}
    // A solver of the caller's, with its own settings (SamplingOptions' flow_shift and flow_reverse
    // are then not used); each run starts from a copy of it.
    HunyuanVideoPipeline(const DiT& dit, Scheduler scheduler) : dit_(dit), scheduler_(std::move(scheduler)) {}

    // Runs the denoising loop from `latents` (the initial noise, or the stability mix for I2V) and
    // returns the final latents. `c.negative` is required when options.cfg_scale > 1. The step cache
    // is the one opt.step_cache names.
    Tensor denoise(Tensor latents, const PromptEmbeds& prompt, const SamplingOptions& opt,
                   const DenoiseConditions& c = {}) const {
        opt.step_cache.validate();
        switch (opt.step_cache.kind) {
            case StepCacheOptions::Kind::teacache: {
                TeaCache cache(opt.step_cache.threshold);
                return denoise(std::move(latents), prompt, opt, c, cache);
            }
            case StepCacheOptions::Kind::first_block: {
                FirstBlockCache cache(opt.step_cache.threshold);
                return denoise(std::move(latents), prompt, opt, c, cache);
            }
            case StepCacheOptions::Kind::none: break;
        }
        NoStepCache cache;
        return denoise(std::move(latents), prompt, opt, c, cache);
    }

    // The same with a step cache policy of the caller's (opt.step_cache is not used), which keeps what
    // it counted when the run returns.
    template <StepCachePolicy<DiT> Cache>
    Tensor denoise(Tensor latents, const PromptEmbeds& prompt, const SamplingOptions& opt, const DenoiseConditions& c,
                   Cache& cache) const {
        const PromptEmbeds* negative = c.negative ? &*c.negative : nullptr;
        const ImageCondition* image = c.image ? &*c.image : nullptr;
        const StepCallback& callback = c.on_step;
        // Every step allocates the blocks' activations again: keep up to 2 GiB of them for reuse while
        // sampling (10-12 % of a block's time at 2,304 + 256 tokens, docs/performance.md), released before
        // the decode, which does not repeat its sizes.
        const HostCacheScope host_cache(std::size_t{2} << 30);
        const bool cfg = opt.cfg_scale > 1.0f;
        HYVIDEO_CHECK(!cfg || negative, "cfg_scale ", opt.cfg_scale, " > 1 needs negative prompt embeddings");
        HYVIDEO_CHECK(latents.dim() == 5, "latents must be [B, C, T, H, W], got ", shape_str(latents.shape()));
        const std::int64_t N = latents.size(0);
        if (image) check_image(*image, latents);

        Scheduler scheduler = make_scheduler(opt);
        scheduler.set_timesteps(opt.infer_steps);

        DiTInputs in;
        const PromptEmbeds text = cfg ? concat(*negative, prompt) : prompt;
        in.text_states = text.text_states;
        in.text_mask = text.text_mask;
        in.text_states_2 = text.text_states_2;
        in.text_lengths = text_lengths_of(B::download(text.text_mask));  // once per run, not per step
        const std::int64_t rows = cfg ? 2 * N : N;
        if (dit_.config.guidance_embed) {
            HYVIDEO_CHECK(opt.embedded_cfg_scale.has_value(), "this model embeds guidance: set embedded_cfg_scale");
            in.guidance = B::full({rows}, embedded_guidance_value(*opt.embedded_cfg_scale, opt.guidance_bf16_rounding));
        }
        const bool token_replace = image && image->type == I2VConditionType::token_replace;
        const RopeTables rope = dit_.rope_tables(latents.shape());
        for (std::int64_t i = 0; i < scheduler.num_inference_steps(); ++i) {
            const float t = scheduler.timestep(i);
            if (token_replace) latents = B::cat({image->img_latents, latents.slice(2, 1, latents.size(2))}, 2);
            Tensor x = latents;
            if (image && image->type == I2VConditionType::latent_concat) x = latent_concat_input(latents, image->img_latents);
            in.x = cfg ? B::cat({x, x}, 0) : x;
            in.t = B::full({rows}, t);
            Tensor v = cache.forward(dit_, in, rope, i, scheduler.num_inference_steps());
            if (cfg) v = classifier_free_guidance<B>(v.slice(0, 0, N), v.slice(0, N, 2 * N), opt.cfg_scale, opt.guidance_rescale);
            if (token_replace) {
                const std::int64_t T = latents.size(2);
                latents = B::cat({image->img_latents,
                                  scheduler.template step<B>(v.slice(2, 1, T), i, latents.slice(2, 1, T))},
                                 2);
            } else {
                latents = scheduler.template step<B>(v, i, latents);
            }
            if (callback && !callback(i, t, latents)) break;
        }
        return latents;
    }

    // The I2V stability initialisation: 0.999·noise + 0.001·image latent (broadcast over frames).
    static Tensor stability_init(const Tensor& noise, const Tensor& img_latents) {
        return B::add(B::scale(noise, 0.999f), B::scale(img_latents, 0.001f));
    }

    // [x | image latent in frame 0, zeros after | mask 1 in frame 0, 0 after] on channels.
    static Tensor latent_concat_input(const Tensor& x, const Tensor& img_latents) {
        const std::int64_t N = x.size(0), T = x.size(2), H = x.size(3), W = x.size(4);
        Tensor cond = B::zeros({N, img_latents.size(1), T, H, W});
        B::assign(cond.slice(2, 0, 1), img_latents);
        Tensor mask = B::zeros({N, 1, T, H, W});
        B::assign(mask.slice(2, 0, 1), B::full({N, 1, 1, H, W}, 1.0f));
        return B::cat({x, cond, mask}, 1);
    }

private:
    static PromptEmbeds concat(const PromptEmbeds& neg, const PromptEmbeds& pos) {
        HYVIDEO_CHECK(neg.text_states.shape() == pos.text_states.shape() && neg.text_mask.shape() == pos.text_mask.shape() &&
                          neg.text_states_2.shape() == pos.text_states_2.shape(),
                      "negative embeddings ", shape_str(neg.text_states.shape()), " must match the prompt's ",
                      shape_str(pos.text_states.shape()), " (same padded length)");
        return {B::cat({neg.text_states, pos.text_states}, 0), B::cat({neg.text_mask, pos.text_mask}, 0),
                B::cat({neg.text_states_2, pos.text_states_2}, 0)};
    }

    void check_image(const ImageCondition& image, const Tensor& latents) const {
        HYVIDEO_CHECK(image.type != I2VConditionType::none, "an image condition of type none");
        HYVIDEO_CHECK(image.type == dit_.config.i2v_condition_type, "the model was configured for i2v_condition_type '",
                      i2v_condition_name(dit_.config.i2v_condition_type), "', the run asks for '",
                      i2v_condition_name(image.type), "'");
        const Tensor& l = image.img_latents;
        HYVIDEO_CHECK(l.defined() && l.dim() == 5 && l.size(0) == latents.size(0) && l.size(1) == latents.size(1) &&
                          l.size(2) == 1 && l.size(3) == latents.size(3) && l.size(4) == latents.size(4),
                      "image latent must be [", latents.size(0), ", ", latents.size(1), ", 1, ", latents.size(3), ", ",
                      latents.size(4), "], got ", l.defined() ? shape_str(l.shape()) : "nothing");
    }

    // Without the default constructor's solver type, the only constructor takes a solver: scheduler_ is set.
    Scheduler make_scheduler(const SamplingOptions& opt) const {
        if constexpr (std::constructible_from<Scheduler, float, bool>)
            if (!scheduler_) return Scheduler(opt.flow_shift, opt.flow_reverse);
        return *scheduler_;
    }

    const DiT& dit_;
    std::optional<Scheduler> scheduler_;  // none: the default solver from each run's SamplingOptions
};

// The VAE's video for final latents, in [0, 1]: clamp(decode(latents / scaling_factor)/2 + 0.5).
template <class VAE>
Tensor decode_video(const VAE& vae, const Tensor& latents) {
    using B = typename VAE::backend;
    const Tensor video = vae.decode(B::scale(latents, 1.0f / vae.config.scaling_factor));
    return B::clamp(B::affine(video, 0.5f, 0.5f), 0.0f, 1.0f);
}

// The image latent of I2V: the posterior's mode (mean) × scaling_factor for an image in [−1, 1],
// [B, 3, 1, h, w] (untiled: the official first encode runs before tiling is enabled).
template <class VAE>
Tensor encode_image_latents(const VAE& vae, const Tensor& image) {
    using B = typename VAE::backend;
    return B::scale(DiagonalGaussianDistribution<B>(vae.encode_untiled(image)).mode(), vae.config.scaling_factor);
}

}  // namespace hyvideo
