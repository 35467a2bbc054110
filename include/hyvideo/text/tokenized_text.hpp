#pragma once
// What the text encoders receive: ids of fixed length and the mask of the real (non-padding) tokens,
// as HF's tokenizer(..., truncation=True, padding="max_length") returns them. int64, like the torch
// tensors the official code feeds its models.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "hyvideo/core/error.hpp"

namespace hyvideo::text {

struct TokenizedText {
    std::vector<std::int64_t> input_ids;
    std::vector<std::int64_t> attention_mask;  // 1 for real tokens, 0 for padding
    std::size_t truncated = 0;                 // tokens cut off to fit max_length (the official code drops them too)
};

// ids (already truncated to at most max_length) padded on the right with pad_id.
inline TokenizedText pad_right(std::vector<std::int64_t> ids, std::size_t max_length, std::int64_t pad_id) {
    HYVIDEO_CHECK(ids.size() <= max_length, "pad_right: ", ids.size(), " ids exceed max_length ", max_length);
    TokenizedText t;
    t.attention_mask.assign(max_length, 0);
    std::fill(t.attention_mask.begin(), t.attention_mask.begin() + static_cast<std::ptrdiff_t>(ids.size()), 1);
    ids.resize(max_length, pad_id);
    t.input_ids = std::move(ids);
    return t;
}

}  // namespace hyvideo::text
