#pragma once
// HunyuanVideo's second text encoder (TextEncoder with text_encoder_type "clipL"): the raw prompt,
// no template, tokenized by CLIP's tokenizer to 77 tokens and encoded by CLIP-L's text tower; the DiT
// receives the pooled output (text_states_2, 768 wide) through its vector_in.
#include <cstdint>
#include <string>
#include <vector>

#include "hyvideo/text/clip_tokenizer.hpp"
#include "hyvideo/text_encoder/clip_text_model.hpp"
#include "hyvideo/text_encoder/token_batch.hpp"

namespace hyvideo {

template <Backend B>
struct CLIPTextEncoder {
    using backend = B;
    CLIPTextModel<B> model;
    std::int64_t max_length = 77;

    CLIPTextEncoder() = default;
    explicit CLIPTextEncoder(const CLIPTextConfig& c) : model(c), max_length(c.max_position_embeddings) {}

    TokenBatch tokenize(const text::ClipTokenizer& tokenizer, const std::vector<std::string>& prompts,
                        std::vector<std::size_t>* truncated = nullptr) const {
        std::vector<text::TokenizedText> rows;
        for (const auto& p : prompts) {
            rows.push_back(tokenizer.encode(p, static_cast<std::size_t>(max_length)));
            if (truncated) truncated->push_back(rows.back().truncated);
        }
        return token_batch(rows);
    }

    // pooler_output [N, hidden] on the device.
    Tensor encode(const TokenBatch& tokens) const { return model.forward(tokens.input_ids, tokens.attention_mask).pooler_output; }

    Tensor encode(const text::ClipTokenizer& tokenizer, const std::vector<std::string>& prompts,
                  std::vector<std::size_t>* truncated = nullptr) const {
        return encode(tokenize(tokenizer, prompts, truncated));
    }
};

}  // namespace hyvideo
