#pragma once
// Golden cases of the whole DiT: `transformer_tiny` (T2V, batch 2 with different text masks) and the
// model forward of the HunyuanVideo-I2V cases (`output.forward` of i2v_token_replace and
// i2v_latent_concat; their pipeline outputs are produced by the pipeline cases).
#include "hyvideo/golden/case_result.hpp"
#include "hyvideo/golden/fixture.hpp"
#include "hyvideo/models/hunyuan_video.hpp"

namespace hyvideo::golden {

template <Backend B>
DiTInputs dit_inputs(const Fixture& f, const Tensor& x, const Tensor& t, const Tensor& guidance) {
    DiTInputs in;
    in.x = B::upload(x);
    in.t = B::upload(t);
    in.text_states = B::upload(f.input("text_states"));
    in.text_mask = B::upload(f.input("text_mask"));
    in.text_states_2 = B::upload(f.input("text_states_2"));
    if (guidance.defined()) in.guidance = B::upload(guidance);
    return in;
}

template <Backend B>
CaseResult run_transformer_tiny(const Fixture& f) {
    HYVideoDiffusionTransformer<B> model(HYVideoConfig::from_json(f.config()));
    load_weights_strict(model, f.params());
    CaseResult r;
    r.outputs["x"] = B::download(model.forward(
        dit_inputs<B>(f, f.input("x"), f.input("t"), model.config.guidance_embed ? f.input("guidance") : Tensor{})));
    return r;
}

// The DiT forward of an I2V fixture at t = 900 on input.x (the fixture notes), with the embedded
// guidance of its config (·1000, in f32 as the fixtures are made).
template <Backend B>
Tensor i2v_forward(const Fixture& f) {
    HYVideoDiffusionTransformer<B> model(HYVideoConfig::from_json(f.config().at("dit")));
    load_weights(model, f.params());  // the fixture also holds the VAE, under vae.
    const std::int64_t N = f.input("x").size(0);
    const Tensor t = Tensor::full({N}, 900.0f);
    Tensor g;
    if (model.config.guidance_embed)
        g = Tensor::full({N}, Fixture::get<float>(f.config(), "embedded_guidance_scale") * 1000.0f);
    return B::download(model.forward(dit_inputs<B>(f, f.input("x"), t, g)));
}

}  // namespace hyvideo::golden
