#pragma once
// Golden cases of the sampling pipelines: `pipeline_tiny` (text-to-video, once with embedded
// guidance only and once with true CFG against negative embeddings) and the pipeline outputs of
// `i2v_token_replace` and `i2v_latent_concat` (image latent, and the loop from plain noise and from
// the stability initialisation), each decoded to video.
#include "hyvideo/golden/case_result.hpp"
#include "hyvideo/golden/cases/transformer.hpp"
#include "hyvideo/golden/fixture.hpp"
#include "hyvideo/pipelines/hunyuan_video_pipeline.hpp"
#include "hyvideo/vae/autoencoder_kl_causal_3d.hpp"

namespace hyvideo::golden {

namespace detail {
inline SamplingOptions sampling_options(const nlohmann::json& c) {
    SamplingOptions o;
    o.infer_steps = Fixture::get<std::int64_t>(c, "num_inference_steps");
    o.flow_shift = Fixture::get<float>(c, "flow_shift");
    o.flow_reverse = Fixture::get<bool>(c, "flow_reverse");
    o.embedded_cfg_scale = Fixture::get<float>(c, "embedded_guidance_scale");
    return o;  // guidance = scale·1000 in f32, as the fixtures are made (6000)
}

template <Backend B>
PromptEmbeds prompt_embeds(const Fixture& f, const std::string& prefix = "") {
    return {B::upload(f.input(prefix + "text_states")), B::upload(f.input(prefix + "text_mask")),
            B::upload(f.input(prefix + "text_states_2"))};
}
}  // namespace detail

template <Backend B>
CaseResult run_pipeline_tiny(const Fixture& f) {
    HYVideoDiffusionTransformer<B> dit(HYVideoConfig::from_json(f.config().at("dit")));
    load_weights(dit, f.params());
    AutoencoderKLCausal3D<B> vae(AutoencoderKLCausal3DConfig::from_json(f.config().at("vae")));
    load_weights(vae, f.params(), "vae.");
    const HunyuanVideoPipeline<HYVideoDiffusionTransformer<B>> pipe(dit);
    const PromptEmbeds prompt = detail::prompt_embeds<B>(f), negative = detail::prompt_embeds<B>(f, "neg_");
    const Tensor noise = B::upload(f.input("latents"));

    SamplingOptions opt = detail::sampling_options(f.config());
    CaseResult r;
    const Tensor embedded = pipe.denoise(noise, prompt, opt);
    r.outputs["latents_embedded"] = B::download(embedded);
    r.outputs["video_embedded"] = B::download(decode_video(vae, embedded));
    opt.cfg_scale = Fixture::get<float>(f.config(), "cfg_scale_for_cfg_run");
    const Tensor cfg = pipe.denoise(noise, prompt, opt, {.negative = negative});
    r.outputs["latents_cfg"] = B::download(cfg);
    r.outputs["video_cfg"] = B::download(decode_video(vae, cfg));
    return r;
}

template <Backend B>
CaseResult run_i2v(const Fixture& f) {
    HYVideoDiffusionTransformer<B> dit(HYVideoConfig::from_json(f.config().at("dit")));
    load_weights(dit, f.params());
    AutoencoderKLCausal3D<B> vae(AutoencoderKLCausal3DConfig::from_json(f.config().at("vae")));
    load_weights(vae, f.params(), "vae.");
    const HunyuanVideoPipeline<HYVideoDiffusionTransformer<B>> pipe(dit);
    const PromptEmbeds prompt = detail::prompt_embeds<B>(f);
    const SamplingOptions opt = detail::sampling_options(f.config());

    CaseResult r;
    r.outputs["forward"] = i2v_forward<B>(f);
    const ImageCondition image{dit.config.i2v_condition_type, encode_image_latents(vae, B::upload(f.input("image")))};
    r.outputs["img_latents"] = B::download(image.img_latents);
    const Tensor noise = B::upload(f.input("noise"));
    const Tensor plain = pipe.denoise(noise, prompt, opt, {.image = image});
    r.outputs["latents_plain"] = B::download(plain);
    r.outputs["video_plain"] = B::download(decode_video(vae, plain));
    const Tensor stable = pipe.denoise(pipe.stability_init(noise, image.img_latents), prompt, opt, {.image = image});
    r.outputs["latents_stability"] = B::download(stable);
    r.outputs["video_stability"] = B::download(decode_video(vae, stable));
    return r;
}

}  // namespace hyvideo::golden
