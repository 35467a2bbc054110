#pragma once
// HunyuanVideo's LLM text encoder (hyvideo/text_encoder TextEncoder with text_encoder_type "llm"): the
// prompt goes into a chat template, is tokenized to max_length = text_len + crop_start of the video
// template with right padding, runs through Llama, and the encoder returns hidden_states[-(skip + 1)]
// (the output of layer L - skip; the last `skip` layers never run) without the template's first
// crop_start tokens, together with the attention mask cropped the same way. That is what the DiT's
// token refiner receives (text_states, text_mask).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "hyvideo/text/llama_tokenizer.hpp"
#include "hyvideo/text/prompt_template.hpp"
#include "hyvideo/text_encoder/llama.hpp"
#include "hyvideo/text_encoder/token_batch.hpp"

namespace hyvideo {

// The official data_type: the template for one frame ("image") or for a video.
enum class PromptKind { image, video };

// A template the encoder owns: one of HunyuanVideo's, or a custom one (--prompt-template-video with a
// JSON file) with its own crop_start.
struct PromptFormat {
    std::string name;
    std::string text;         // a Python format string with one "{}"
    std::int64_t crop_start;  // tokens before the prompt, BOS included

    PromptFormat() = default;
    PromptFormat(std::string n, std::string t, std::int64_t crop) : name(std::move(n)), text(std::move(t)), crop_start(crop) {
        HYVIDEO_CHECK(crop_start >= 0, "prompt template '", name, "': crop_start ", crop_start, " is negative");
        (void)text::python_format(text, "");  // a malformed template is refused now, not at the first prompt
    }
    PromptFormat(const text::PromptTemplate& t)  // NOLINT: every built-in template is a format
        : PromptFormat(std::string(t.name), std::string(t.text), static_cast<std::int64_t>(t.crop_start)) {}
};

// What an encoder gives the DiT for a batch of prompts.
struct TextEncoderOutput {
    Tensor hidden_state;    // [N, L, D] on the device
    Tensor attention_mask;  // int64 [N, L] on the host
};

template <Backend B>
struct LLMTextEncoder {
    using backend = B;
    LlamaModel<B> model;
    PromptFormat prompt_template = text::prompt_template("dit-llm-encode");
    PromptFormat prompt_template_video = text::prompt_template("dit-llm-encode-video");
    std::int64_t text_len = 256;
    std::int64_t hidden_state_skip_layer = 2;
    bool apply_final_norm = false;

    LLMTextEncoder() = default;
    explicit LLMTextEncoder(const LlamaConfig& c) : model(c) {}

    // The official max_length: text_len + the video template's crop_start, for both templates.
    std::int64_t max_length() const { return text_len + prompt_template_video.crop_start; }

    const PromptFormat& template_for(PromptKind kind) const {
        return kind == PromptKind::video ? prompt_template_video : prompt_template;
    }

    // TextEncoder.text2tokens. `truncated`, when given, receives the tokens each prompt lost.
    TokenBatch tokenize(const text::LlamaTokenizer& tokenizer, const std::vector<std::string>& prompts, PromptKind kind,
                        std::vector<std::size_t>* truncated = nullptr) const {
        check_settings();
        std::vector<text::TokenizedText> rows;
        for (const auto& p : prompts) {
            rows.push_back(tokenizer.encode_padded(text::python_format(template_for(kind).text, p),
                                                   static_cast<std::size_t>(max_length())));
            if (truncated) truncated->push_back(rows.back().truncated);
        }
        return token_batch(rows);
    }

    // TextEncoder.encode on tokenized prompts. `observe` sees every hidden state the model computes.
    TextEncoderOutput encode(const TokenBatch& tokens, PromptKind kind,
                             const std::function<void(std::int64_t, const Tensor&)>& observe = {}) const {
        check_settings();
        const Tensor& ids = tokens.input_ids;
        HYVIDEO_CHECK(ids.dim() == 2 && ids.dtype() == DType::i64 && tokens.attention_mask.shape() == ids.shape(),
                      "LLMTextEncoder: ids and mask must be int64 [N, S] alike");
        const std::int64_t N = ids.size(0), S = ids.size(1);
        const RotaryTables host = llama_rotary_tables(arange_positions(N, S), model.config.head_dim,
                                                      model.config.rope_theta);
        const RotaryTables rope{B::upload(host.cos), B::upload(host.sin)};
        const std::int64_t index = model.config.num_hidden_layers - hidden_state_skip_layer;
        Tensor h = model.hidden_state(model.embed(ids), rope, AttentionMask::causal(tokens.attention_mask), index, observe);
        if (hidden_state_skip_layer > 0 && apply_final_norm) h = model.norm.forward(h);
        const std::int64_t crop = template_for(kind).crop_start;
        HYVIDEO_CHECK(crop < S, "LLMTextEncoder: crop_start ", crop, " leaves nothing of ", S, " tokens");
        return {B::contiguous(h.slice(1, crop, S)), tokens.attention_mask.slice(1, crop, S).contiguous()};
    }

    TextEncoderOutput encode(const text::LlamaTokenizer& tokenizer, const std::vector<std::string>& prompts,
                             PromptKind kind, std::vector<std::size_t>* truncated = nullptr) const {
        return encode(tokenize(tokenizer, prompts, kind, truncated), kind);
    }

private:
    void check_settings() const {
        const std::int64_t L = model.config.num_hidden_layers;
        HYVIDEO_CHECK(hidden_state_skip_layer >= 0 && hidden_state_skip_layer <= L, "hidden_state_skip_layer ",
                      hidden_state_skip_layer, " must be in [0, ", L, "] for a ", L, "-layer LLM");
        HYVIDEO_CHECK(text_len >= 1 && text_len <= 65536, "text_len ", text_len, " must be in [1, 65536]");
    }
};

}  // namespace hyvideo
