#pragma once
// MMSingleStreamBlock (official modules/models.py): one stream over x = [image; text] tokens, with a
// fused linear1 producing qkv and the MLP input, and linear2 consuming [attention; act(mlp)] (GELU-tanh
// in HunyuanVideo; the parts bundle's MlpActivation).
#include <string>

#include "hyvideo/models/double_stream_block.hpp"

namespace hyvideo {

template <Backend B, class Parts = HunyuanVideoParts>
    requires BlockPartsFor<Parts, B>
struct MMSingleStreamBlock {
    using backend = B;
    using Attention = typename Parts::Attention;
    using QKNorm = typename Parts::template QKNorm<B>;
    using PosEmb = typename Parts::PositionalEmbedding;
    using MlpActivation = typename Parts::MlpActivation;
    std::int64_t hidden_size = 0, heads_num = 0, mlp_hidden_dim = 0;
    Linear<B> linear1, linear2;
    QKNorm q_norm, k_norm;
    LayerNorm<B> pre_norm;  // no affine parameters
    ModulateDiT<B> modulation;

    MMSingleStreamBlock() = default;
    MMSingleStreamBlock(std::int64_t hidden, std::int64_t heads, double mlp_width_ratio)
        : hidden_size(hidden), heads_num(heads), mlp_hidden_dim(static_cast<std::int64_t>(hidden * mlp_width_ratio)),
          linear1(hidden, 3 * hidden + mlp_hidden_dim), linear2(hidden + mlp_hidden_dim, hidden),
          q_norm(hidden / heads), k_norm(hidden / heads), pre_norm(hidden), modulation(hidden, 3) {
        HYVIDEO_CHECK(heads > 0 && hidden % heads == 0, "MMSingleStreamBlock: hidden ", hidden,
                      " not divisible by heads ", heads);
    }

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        linear1.parameters(prefix + "linear1.", visit);
        linear2.parameters(prefix + "linear2.", visit);
        q_norm.parameters(prefix + "q_norm.", visit);
        k_norm.parameters(prefix + "k_norm.", visit);
        modulation.parameters(prefix + "modulation.", visit);
    }

    // x [B, Li + Lt, hidden] with the image tokens first (Li = ctx.layout.img_len).
    Tensor forward(const Tensor& x, const BlockContext& ctx) const {
        const std::int64_t N = x.size(0), L = x.size(1), Li = ctx.layout.img_len, H = heads_num,
                           D = hidden_size / H;
        HYVIDEO_CHECK(Li <= L, "MMSingleStreamBlock: ", Li, " image tokens in a sequence of ", L);
        const auto m = modulation.forward(ctx.vec);  // shift, scale, gate
        std::vector<Tensor> m_tr;
        if (ctx.vec_tr.defined()) m_tr = modulation.forward(ctx.vec_tr);

        const Tensor u = linear1.forward(modulate_tokens<B>(pre_norm.forward(x), m[0], m[1], m_tr, 0, ctx.tr_tokens));
        const Tensor qkv = u.slice(2, 0, 3 * hidden_size).reshape({N, L, 3, H, D});
        const Tensor mlp = u.slice(2, 3 * hidden_size, 3 * hidden_size + mlp_hidden_dim);
        Tensor q = q_norm.forward(qkv.select(2, 0)), k = k_norm.forward(qkv.select(2, 1));
        // RoPE rotates only the image tokens; the text tokens keep their normalised q and k.
        q = B::cat({PosEmb::template apply<B>(q.slice(1, 0, Li), ctx.rope), q.slice(1, Li, L)}, 1);
        k = B::cat({PosEmb::template apply<B>(k.slice(1, 0, Li), ctx.rope), k.slice(1, Li, L)}, 1);
        const Tensor attn = apply_attention<Attention, B>(q, k, qkv.select(2, 2), ctx.layout, ctx.attention_operands)
                                .reshape({N, L, hidden_size});
        const Tensor out = linear2.forward(B::cat({attn, MlpActivation::template apply<B>(mlp)}, 2));
        return gate_tokens<B>(x, out, m[2], m_tr, 2, ctx.tr_tokens);
    }
};

}  // namespace hyvideo
