#pragma once
// Tokenized prompts as the int64 [N, S] tensors the encoders take (what the official code gets from
// tokenizer(..., return_tensors="pt")).
#include <cstdint>
#include <vector>

#include "hyvideo/core/tensor.hpp"
#include "hyvideo/text/tokenized_text.hpp"

namespace hyvideo {

struct TokenBatch {
    Tensor input_ids;       // int64 [N, S], host
    Tensor attention_mask;  // int64 [N, S], host
};

inline TokenBatch token_batch(const std::vector<text::TokenizedText>& rows) {
    HYVIDEO_CHECK(!rows.empty(), "token_batch: no prompts");
    const auto N = static_cast<std::int64_t>(rows.size());
    const auto S = static_cast<std::int64_t>(rows.front().input_ids.size());
    TokenBatch b{Tensor::empty({N, S}, DType::i64), Tensor::empty({N, S}, DType::i64)};
    auto* ids = b.input_ids.data<std::int64_t>();
    auto* mask = b.attention_mask.data<std::int64_t>();
    for (std::int64_t n = 0; n < N; ++n) {
        const auto& r = rows[static_cast<std::size_t>(n)];
        HYVIDEO_CHECK(static_cast<std::int64_t>(r.input_ids.size()) == S && r.attention_mask.size() == r.input_ids.size(),
                      "token_batch: prompt ", n, " has ", r.input_ids.size(), " tokens, prompt 0 has ", S);
        std::copy(r.input_ids.begin(), r.input_ids.end(), ids + n * S);
        std::copy(r.attention_mask.begin(), r.attention_mask.end(), mask + n * S);
    }
    return b;
}

}  // namespace hyvideo
