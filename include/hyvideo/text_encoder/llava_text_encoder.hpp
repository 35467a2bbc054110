#pragma once
// HunyuanVideo-I2V's text encoder (TextEncoder "llm-i2v" in i2v_mode): the prompt in the
// dit-llm-encode-video-i2v template and the reference image go through llava together, and the hidden
// states of layer L - skip are split into thinned image rows and the prompt's rows (i2v_prompt_split.hpp).
// The CFG negative prompt is encoded with a black image of the same size (black_image), as the
// official pipeline does.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "hyvideo/text/llama_tokenizer.hpp"
#include "hyvideo/text/prompt_template.hpp"
#include "hyvideo/text_encoder/clip_image_processor.hpp"
#include "hyvideo/text_encoder/i2v_prompt_split.hpp"
#include "hyvideo/text_encoder/llava.hpp"
#include "hyvideo/text_encoder/llm_text_encoder.hpp"

namespace hyvideo {

template <Backend B>
struct LlavaTextEncoder {
    using backend = B;
    LlavaForConditionalGeneration<B> model;
    CLIPImageProcessor processor;
    PromptFormat prompt_template_video = text::prompt_template("dit-llm-encode-video-i2v");
    std::int64_t text_len = 256;
    std::int64_t hidden_state_skip_layer = 2;
    bool apply_final_norm = false;
    I2VSplit split;  // image_embed_interleave: 4 (token_replace) or 2 (latent_concat)

    LlavaTextEncoder() = default;
    explicit LlavaTextEncoder(const LlavaConfig& c) : model(c) {
        split.image_emb_len = c.vision_config.num_patches();
        split.image_emb_end = split.image_emb_start + split.image_emb_len;
    }

    std::int64_t max_length() const { return text_len + prompt_template_video.crop_start; }

    TokenBatch tokenize(const text::LlamaTokenizer& tokenizer, const std::vector<std::string>& prompts,
                        std::vector<std::size_t>* truncated = nullptr) const {
        std::vector<text::TokenizedText> rows;
        for (const auto& p : prompts) {
            rows.push_back(tokenizer.encode_padded(text::python_format(prompt_template_video.text, p),
                                                   static_cast<std::size_t>(max_length())));
            if (truncated) truncated->push_back(rows.back().truncated);
        }
        return token_batch(rows);
    }

    // image: uint8 [H, W, 3] RGB on the host -> projected image features [1, P, D] on the device.
    Tensor image_features(const Tensor& image) const {
        return model.image_features(model.vision_hidden_state(processor.preprocess(image).pixel_values));
    }

    // Tokenized prompts (one image each: `features` [N, P, D]) -> what the I2V DiT receives.
    I2VPromptEmbeds encode(const TokenBatch& tokens, const Tensor& features,
                           const std::function<void(std::int64_t, const Tensor&)>& observe = {}) const {
        const std::int64_t L = model.config.text_config.num_hidden_layers;
        HYVIDEO_CHECK(hidden_state_skip_layer >= 0 && hidden_state_skip_layer <= L, "hidden_state_skip_layer ",
                      hidden_state_skip_layer, " must be in [0, ", L, "] for a ", L, "-layer LLM");
        const LlavaMerged merged = model.merge(tokens.input_ids, tokens.attention_mask, features);
        Tensor h = model.hidden_state(merged, L - hidden_state_skip_layer, observe);
        if (hidden_state_skip_layer > 0 && apply_final_norm) h = model.language_model.norm.forward(h);
        I2VSplit s = split;
        s.crop_start = prompt_template_video.crop_start;
        return split_i2v_prompt<B>(h, tokens.input_ids, tokens.attention_mask, s);
    }

    I2VPromptEmbeds encode(const text::LlamaTokenizer& tokenizer, const std::string& prompt, const Tensor& image,
                           std::vector<std::size_t>* truncated = nullptr) const {
        return encode(tokenize(tokenizer, {prompt}, truncated), image_features(image));
    }
};

}  // namespace hyvideo
