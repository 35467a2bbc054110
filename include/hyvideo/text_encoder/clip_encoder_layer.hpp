#pragma once
// The transformer layer both CLIP towers share (transformers' CLIPEncoderLayer): pre-LayerNorm
// self-attention and a quick_gelu MLP, every linear with a bias.
#include <cmath>
#include <cstdint>
#include <string>

#include "hyvideo/backend/attention_mask.hpp"
#include "hyvideo/nn/activation.hpp"
#include "hyvideo/nn/layer_norm.hpp"
#include "hyvideo/nn/linear.hpp"
#include "hyvideo/nn/mlp.hpp"
#include "hyvideo/text_encoder/config.hpp"

namespace hyvideo {

template <Backend B>
struct CLIPAttention {
    using backend = B;
    std::int64_t num_heads = 0, head_dim = 0;
    Linear<B> q_proj, k_proj, v_proj, out_proj;

    CLIPAttention() = default;
    explicit CLIPAttention(const CLIPEncoderConfig& c)
        : num_heads(c.num_attention_heads), head_dim(c.head_dim()), q_proj(c.hidden_size, c.hidden_size),
          k_proj(c.hidden_size, c.hidden_size), v_proj(c.hidden_size, c.hidden_size),
          out_proj(c.hidden_size, c.hidden_size) {}

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        k_proj.parameters(prefix + "k_proj.", visit);
        v_proj.parameters(prefix + "v_proj.", visit);
        q_proj.parameters(prefix + "q_proj.", visit);
        out_proj.parameters(prefix + "out_proj.", visit);
    }

    Tensor forward(const Tensor& x, const AttentionMask& mask) const {
        const std::int64_t N = x.size(0), S = x.size(1);
        const Shape heads{N, S, num_heads, head_dim};
        const Tensor attn = B::attention(q_proj.forward(x).reshape(heads), k_proj.forward(x).reshape(heads),
                                         v_proj.forward(x).reshape(heads), mask,
                                         1.0f / std::sqrt(static_cast<float>(head_dim)));
        return out_proj.forward(attn.reshape({N, S, num_heads * head_dim}));
    }
};

template <Backend B>
struct CLIPEncoderLayer {
    using backend = B;
    CLIPAttention<B> self_attn;
    LayerNorm<B> layer_norm1, layer_norm2;
    MLP<B, QuickGELU> mlp;  // fc1, fc2: the names of CLIPMLP

    CLIPEncoderLayer() = default;
    explicit CLIPEncoderLayer(const CLIPEncoderConfig& c)
        : self_attn(c), layer_norm1(c.hidden_size, true, c.layer_norm_eps),
          layer_norm2(c.hidden_size, true, c.layer_norm_eps), mlp(c.hidden_size, c.intermediate_size) {}

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        self_attn.parameters(prefix + "self_attn.", visit);
        layer_norm1.parameters(prefix + "layer_norm1.", visit);
        mlp.parameters(prefix + "mlp.", visit);
        layer_norm2.parameters(prefix + "layer_norm2.", visit);
    }

    Tensor forward(const Tensor& x, const AttentionMask& mask) const {
        const Tensor h = B::add(x, self_attn.forward(layer_norm1.forward(x), mask));
        return B::add(h, mlp.forward(layer_norm2.forward(h)));
    }
};

}  // namespace hyvideo
