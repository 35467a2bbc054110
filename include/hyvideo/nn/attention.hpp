#pragma once
// Attention as a swappable part of the blocks.
//
// An attention policy turns q, k, v [B, S, H, D] into [B, S, H, D] given the batch's token layout
// (how many leading tokens of each sample are valid). HunyuanVideo's choice is VarlenAttention, the
// semantics of its flash-attn varlen call; FullAttention ignores padding, for ablations.
#include <cmath>
#include <cstdint>
#include <vector>

#include "hyvideo/backend/attention_mask.hpp"
#include "hyvideo/backend/backend.hpp"

namespace hyvideo {

// Valid tokens per sample of a joint sequence: image tokens plus the unpadded text prefix.
struct TokenLayout {
    std::int64_t img_len = 0;              // image tokens, first in every sequence
    std::vector<std::int64_t> valid_len;   // per sample: img_len + valid text tokens
};

// Valid (image + unpadded text) tokens attend only to valid tokens; padded text attends only among
// itself and never reaches a valid token (official get_cu_seqlens + flash_attn_varlen_func).
// `operands` is the products' operand dtype (B::attention): bf16 in the bf16 compute mode.
struct VarlenAttention {
    static constexpr bool keeps_padding_apart = true;  // attention_keeps_padding_apart below
    template <Backend B>
    static Tensor apply(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout,
                        DType operands = DType::f32) {
        const float scale = 1.0f / std::sqrt(static_cast<float>(q.size(3)));
        return B::attention(q, k, v, AttentionMask::segments(layout.valid_len), scale, operands);
    }
};

// Every token attends every token, padding included: an ablation of the masking.
struct FullAttention {
    template <Backend B>
    static Tensor apply(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout&,
                        DType operands = DType::f32) {
        const float scale = 1.0f / std::sqrt(static_cast<float>(q.size(3)));
        return B::attention(q, k, v, AttentionMask::full(), scale, operands);
    }
};

// Whether attention part A keeps padded text tokens from ever reaching a valid token: a part says so
// with `static constexpr bool keeps_padding_apart = true` (VarlenAttention does; a part derived from it
// inherits the claim and may set it false). The DiT then runs its blocks on the text up to the batch's
// longest valid prompt, since no output it reads depends on the rest. A part that says nothing gets
// every token.
template <class A>
inline constexpr bool attention_keeps_padding_apart = requires { requires A::keeps_padding_apart; };

// Runs the attention part A, handing it the operand dtype of the compute mode where it takes one; a
// part written without that parameter computes as it always does.
template <class A, Backend B>
Tensor apply_attention(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& layout, DType operands) {
    if constexpr (requires { A::template apply<B>(q, k, v, layout, operands); })
        return A::template apply<B>(q, k, v, layout, operands);
    else
        return A::template apply<B>(q, k, v, layout);
}

}  // namespace hyvideo
