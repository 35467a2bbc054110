#pragma once
// Golden cases of the text encoders (tests/data/golden/text/README.md): `text_llm` (the T2V LLM
// encoder), `text_clip` (CLIP-L text) and `text_llava_i2v` (the I2V llava encoder with its image
// path). The encoders run from the fixture's token ids, so a fixture made with other prompts, sizes or
// seeds runs the same way; tokenization has its own fixture (tokenize.json).
#include <string>
#include <vector>

#include "hyvideo/golden/case_result.hpp"
#include "hyvideo/golden/fixture.hpp"
#include "hyvideo/text_encoder/clip_text_encoder.hpp"
#include "hyvideo/text_encoder/llava_text_encoder.hpp"
#include "hyvideo/text_encoder/llm_text_encoder.hpp"

namespace hyvideo::golden {

namespace text_case_detail {

inline LlamaConfig llama_config(const nlohmann::json& c) {
    HYVIDEO_CHECK(c.contains("llama"), "fixture config lacks 'llama'");
    return LlamaConfig::from_json(c.at("llama"), "fixture config 'llama'");
}

}  // namespace text_case_detail

template <Backend B>
CaseResult run_text_llm(const Fixture& f) {
    using namespace text_case_detail;
    const auto& c = f.config();
    LLMTextEncoder<B> enc(llama_config(c));
    enc.text_len = Fixture::get<std::int64_t>(c, "text_len");
    enc.hidden_state_skip_layer = Fixture::get<std::int64_t>(c, "hidden_state_skip_layer");
    enc.apply_final_norm = Fixture::get<bool>(c, "apply_final_norm");
    const auto& templates = c.at("templates");
    enc.prompt_template = text::prompt_template(Fixture::get<std::string>(templates.at("image"), "name"));
    enc.prompt_template_video = text::prompt_template(Fixture::get<std::string>(templates.at("video"), "name"));
    HYVIDEO_CHECK(enc.prompt_template.crop_start == Fixture::get<std::int64_t>(templates.at("image"), "crop_start") &&
                      enc.prompt_template_video.crop_start ==
                          Fixture::get<std::int64_t>(templates.at("video"), "crop_start"),
                  "text_llm: the fixture's crop_start differs from the template's");
    load_weights_strict(enc.model, f.params(), "model.");

    CaseResult r;
    const TokenBatch video{f.input("input_ids"), f.input("attention_mask")};
    HYVIDEO_CHECK(video.input_ids.size(1) == enc.max_length(), "text_llm: ", video.input_ids.size(1),
                  " tokens, the encoder's max_length is ", enc.max_length());
    // hidden_states of prompt 0, taken from the video batch: the model is run to its end once for it.
    std::vector<Tensor> all;
    const std::int64_t L = enc.model.config.num_hidden_layers;
    {
        const TokenBatch first{video.input_ids.slice(0, 0, 1).contiguous(), video.attention_mask.slice(0, 0, 1).contiguous()};
        const RotaryTables host = llama_rotary_tables(arange_positions(1, first.input_ids.size(1)),
                                                      enc.model.config.head_dim, enc.model.config.rope_theta);
        enc.model.hidden_state(enc.model.embed(first.input_ids), {B::upload(host.cos), B::upload(host.sin)},
                               AttentionMask::causal(first.attention_mask), L,
                               [&](std::int64_t, const Tensor& h) { all.push_back(h); });
    }
    r.outputs["all_hidden_states"] = B::download(B::cat(all, 0));

    const TextEncoderOutput v = enc.encode(video, PromptKind::video);
    r.outputs["hidden_state"] = B::download(v.hidden_state);
    r.outputs["attention_mask"] = v.attention_mask;
    const TextEncoderOutput i = enc.encode(TokenBatch{f.input("input_ids_image"), f.input("attention_mask_image")},
                                           PromptKind::image);
    r.outputs["hidden_state_image"] = B::download(i.hidden_state);
    r.outputs["attention_mask_image"] = i.attention_mask;
    return r;
}

template <Backend B>
CaseResult run_text_clip(const Fixture& f) {
    const auto& c = f.config();
    HYVIDEO_CHECK(c.contains("clip_text"), "fixture config lacks 'clip_text'");
    CLIPTextEncoder<B> enc(CLIPTextConfig::from_json(c.at("clip_text"), "fixture config 'clip_text'"));
    load_weights_strict(enc.model, f.params(), "text_model.");
    const auto out = enc.model.forward(f.input("input_ids"), f.input("attention_mask"));
    CaseResult r;
    r.outputs["pooler_output"] = B::download(out.pooler_output);
    r.outputs["last_hidden_state"] = B::download(out.last_hidden_state);
    r.outputs["pooled_index"] = Tensor::from_vector({static_cast<std::int64_t>(out.pooled_index.size())}, out.pooled_index);
    return r;
}

template <Backend B>
CaseResult run_text_llava_i2v(const Fixture& f) {
    const auto& c = f.config();
    LlavaConfig cfg;
    cfg.text_config = text_case_detail::llama_config(c);
    HYVIDEO_CHECK(c.contains("clip_vision"), "fixture config lacks 'clip_vision'");
    cfg.vision_config = CLIPVisionConfig::from_json(c.at("clip_vision"), "fixture config 'clip_vision'");
    cfg.vision_feature_layer = Fixture::get<std::int64_t>(c, "vision_feature_layer");
    cfg.image_token_index = Fixture::get<std::int64_t>(c, "image_token_index");
    cfg.pad_token_id = Fixture::get<std::int64_t>(c, "pad_token_id");
    LlavaTextEncoder<B> enc(cfg);
    enc.processor = CLIPImageProcessor::from_json(c.at("image_processor"), "fixture config 'image_processor'");
    enc.prompt_template_video = text::prompt_template(Fixture::get<std::string>(c, "template"));
    HYVIDEO_CHECK(enc.prompt_template_video.crop_start == Fixture::get<std::int64_t>(c, "crop_start"),
                  "text_llava_i2v: the fixture's crop_start differs from the template's");
    enc.hidden_state_skip_layer = Fixture::get<std::int64_t>(c, "hidden_state_skip_layer");
    enc.split.image_emb_start = Fixture::get<std::int64_t>(c, "image_emb_start");
    enc.split.image_emb_end = Fixture::get<std::int64_t>(c, "image_emb_end");
    enc.split.image_emb_len = Fixture::get<std::int64_t>(c, "image_emb_len");
    enc.split.double_return_token_id = Fixture::get<std::int64_t>(c, "double_return_token_id");
    enc.model.load(f.params());
    HYVIDEO_CHECK(enc.max_length() == Fixture::get<std::int64_t>(c, "max_length"), "text_llava_i2v: max_length ",
                  c.at("max_length").dump(), ", the encoder's is ", enc.max_length());

    CaseResult r;
    const Tensor image = f.input("image");
    const ProcessedImage processed = enc.processor.preprocess(image);
    r.outputs["resized_image"] = processed.resized;
    r.outputs["cropped_image"] = processed.cropped;
    r.outputs["pixel_values"] = processed.pixel_values;
    const Tensor vision = enc.model.vision_hidden_state(processed.pixel_values);
    r.outputs["vision_hidden_state"] = B::download(vision);
    const Tensor features = enc.model.image_features(vision);
    r.outputs["image_features"] = B::download(features);

    const TokenBatch tokens{f.input("input_ids"), f.input("attention_mask")};
    const LlavaMerged merged = enc.model.merge(tokens.input_ids, tokens.attention_mask, features);
    r.outputs["inputs_embeds"] = B::download(merged.inputs_embeds);
    r.outputs["merged_attention_mask"] = merged.attention_mask;
    r.outputs["position_ids"] = merged.position_ids;
    std::vector<Tensor> all;
    enc.model.hidden_state(merged, cfg.text_config.num_hidden_layers,
                           [&](std::int64_t, const Tensor& h) { all.push_back(h); });
    r.outputs["all_hidden_states"] = B::download(B::cat(all, 0));

    // Each prompt_embeds* output with the interleave the fixture names for it.
    const auto& interleave = c.at("interleave");
    auto emit = [&](const std::string& suffix, const TokenBatch& t, const Tensor& feats) {
        enc.split.interleave = Fixture::get<std::int64_t>(interleave, "output.prompt_embeds" + suffix);
        const I2VPromptEmbeds e = enc.encode(t, feats);
        r.outputs["prompt_embeds" + suffix] = B::download(e.prompt_embeds);
        r.outputs["prompt_mask" + suffix] = e.prompt_mask;
    };
    emit("", tokens, features);
    emit("_i2", tokens, features);
    emit("_long", TokenBatch{f.input("input_ids_long"), f.input("attention_mask_long")}, features);
    const Tensor black = black_image(image.size(0), image.size(1));
    emit("_neg", TokenBatch{f.input("input_ids_neg"), f.input("attention_mask_neg")}, enc.image_features(black));
    return r;
}

}  // namespace hyvideo::golden
