#pragma once
// UNetMidBlockCausal3D (official unet_causal_3d_blocks.py, docs/model.md#vae-mid-block): resnets.0, then
// for each layer an attention and another resnet.
//
// The attention is diffusers' `Attention` as the mid block configures it: heads of
// attention_head_dim channels (one head of 512 in the released VAE), a GroupNorm applied to the
// tokens first, biases, a residual connection and output rescale 1, over the tokens of the whole
// clip in (f, h, w) order with a frame-causal mask: a token sees its own frame and every earlier one.
//
//   s = GroupNorm(x);  q, k, v = to_q(s), to_k(s), to_v(s)
//   out = to_out.0(softmax(q·kᵀ/√d + M)·v) + x,   M[i, j] = 0 if frame(j) <= frame(i) else −inf
//
// GroupNorm of the token matrix [B, C, L] is GroupNorm of the video [B, C, T, H, W] (the same
// groups over the same values), so it runs before the rearrange. The mask is a rule handed to the
// backend's attention (AttentionMask::block_causal), never a T·H·W square matrix.
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "hyvideo/nn/linear.hpp"
#include "hyvideo/vae/group_norm.hpp"
#include "hyvideo/vae/resnet_block.hpp"

namespace hyvideo {

template <Backend B>
struct CausalFrameAttention {
    using backend = B;
    std::int64_t channels = 0, heads = 1;
    GroupNorm<B> group_norm;
    Linear<B> to_q, to_k, to_v, to_out;  // to_out is nn.ModuleList([Linear, Dropout]): index 0

    CausalFrameAttention() = default;
    CausalFrameAttention(std::int64_t ch, std::int64_t head_dim, std::int64_t groups, float eps = 1e-6f)
        : channels(ch), heads(ch / head_dim), group_norm(groups, ch, eps), to_q(ch, ch), to_k(ch, ch), to_v(ch, ch),
          to_out(ch, ch) {
        HYVIDEO_CHECK(head_dim >= 1 && ch % head_dim == 0, "CausalFrameAttention: ", ch,
                      " channels do not split into heads of ", head_dim);
    }

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        group_norm.parameters(prefix + "group_norm.", visit);
        to_q.parameters(prefix + "to_q.", visit);
        to_k.parameters(prefix + "to_k.", visit);
        to_v.parameters(prefix + "to_v.", visit);
        to_out.parameters(prefix + "to_out.0.", visit);
    }

    // x [N, C, T, H, W] -> same shape.
    Tensor forward(const Tensor& x) const {
        HYVIDEO_CHECK(x.dim() == 5 && x.size(1) == channels, "CausalFrameAttention: expected [N, ", channels,
                      ", T, H, W], got ", shape_str(x.shape()));
        const std::int64_t N = x.size(0), T = x.size(2), H = x.size(3), W = x.size(4), L = T * H * W;
        const std::int64_t D = channels / heads;
        // Tokens [N, L, C] in (f, h, w) order: a view of channels-last activations, a copy otherwise.
        auto tokens = [&](const Tensor& v) { return B::contiguous(v.permute({0, 2, 3, 4, 1})).reshape({N, L, channels}); };
        const Tensor s = tokens(group_norm.forward(x));
        const Tensor q = to_q.forward(s).reshape({N, L, heads, D});
        const Tensor k = to_k.forward(s).reshape({N, L, heads, D});
        const Tensor v = to_v.forward(s).reshape({N, L, heads, D});
        const Tensor a = B::attention(q, k, v, AttentionMask::block_causal(H * W), 1.0f / std::sqrt(static_cast<float>(D)));
        const Tensor out = B::add(tokens(x), to_out.forward(a.reshape({N, L, channels})));
        return out.reshape({N, T, H, W, channels}).permute({0, 4, 1, 2, 3});  // channels-last
    }
};

template <Backend B>
struct UNetMidBlockCausal3D {
    using backend = B;
    std::vector<CausalFrameAttention<B>> attentions;  // empty without mid_block_add_attention
    std::vector<ResnetBlockCausal3D<B>> resnets;

    UNetMidBlockCausal3D() = default;
    UNetMidBlockCausal3D(std::int64_t channels, std::int64_t groups, std::int64_t attention_head_dim,
                         bool add_attention = true, std::int64_t num_layers = 1, float eps = 1e-6f) {
        resnets.emplace_back(channels, channels, groups, eps);
        for (std::int64_t i = 0; i < num_layers; ++i) {
            if (add_attention) attentions.emplace_back(channels, attention_head_dim, groups, eps);
            resnets.emplace_back(channels, channels, groups, eps);
        }
    }

    // The checkpoint lists the attentions first (the official module registers them first).
    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        for (std::size_t i = 0; i < attentions.size(); ++i)
            attentions[i].parameters(prefix + "attentions." + std::to_string(i) + ".", visit);
        for (std::size_t i = 0; i < resnets.size(); ++i)
            resnets[i].parameters(prefix + "resnets." + std::to_string(i) + ".", visit);
    }

    Tensor forward(const Tensor& x) const {
        Tensor h = resnets[0].forward(x);
        for (std::size_t i = 1; i < resnets.size(); ++i) {
            if (!attentions.empty()) h = attentions[i - 1].forward(h);
            h = resnets[i].forward(h);
        }
        return h;
    }
};

}  // namespace hyvideo
