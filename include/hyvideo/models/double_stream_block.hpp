#pragma once
// MMDoubleStreamBlock (official modules/models.py): separate image and text weights, one joint
// attention over [image; text] tokens. Attention, QK-norm, positional embedding and MLP activation come
// from the parts bundle (models/dit_parts.hpp), HunyuanVideo's by default, so an ablation is a type change.
#include <string>
#include <utility>

#include "hyvideo/models/dit_parts.hpp"
#include "hyvideo/models/modulate_dit.hpp"
#include "hyvideo/nn/attention.hpp"
#include "hyvideo/nn/layer_norm.hpp"
#include "hyvideo/nn/mlp.hpp"
#include "hyvideo/nn/positional_embedding.hpp"
#include "hyvideo/nn/qk_norm.hpp"

namespace hyvideo {

// What every block of one forward shares: the conditioning vector, the RoPE tables of the image
// tokens and the token layout. For HunyuanVideo-I2V token_replace, `vec_tr` is the t = 0
// conditioning that modulates the first `tr_tokens` image tokens (the first latent frame).
struct BlockContext {
    Tensor vec;        // [B, hidden]
    RopeTables rope;   // [img_len, head_dim] each
    TokenLayout layout;
    Tensor vec_tr;     // optional, [B, hidden]
    std::int64_t tr_tokens = 0;
    // The attention products' operands: bf16 in the bf16 compute mode (the model's attention_operands).
    DType attention_operands = DType::f32;
};

template <Backend B, class Parts = HunyuanVideoParts>
    requires BlockPartsFor<Parts, B>
struct MMDoubleStreamBlock {
    using backend = B;
    using Attention = typename Parts::Attention;
    using QKNorm = typename Parts::template QKNorm<B>;
    using PosEmb = typename Parts::PositionalEmbedding;
    std::int64_t hidden_size = 0, heads_num = 0;
    ModulateDiT<B> img_mod, txt_mod;
    LayerNorm<B> img_norm1, img_norm2, txt_norm1, txt_norm2;  // no affine parameters
    Linear<B> img_attn_qkv, img_attn_proj, txt_attn_qkv, txt_attn_proj;
    QKNorm img_attn_q_norm, img_attn_k_norm, txt_attn_q_norm, txt_attn_k_norm;
    MLP<B, typename Parts::MlpActivation> img_mlp, txt_mlp;

    MMDoubleStreamBlock() = default;
    MMDoubleStreamBlock(std::int64_t hidden, std::int64_t heads, double mlp_width_ratio, bool qkv_bias = true)
        : hidden_size(hidden), heads_num(heads), img_mod(hidden, 6), txt_mod(hidden, 6), img_norm1(hidden),
          img_norm2(hidden), txt_norm1(hidden), txt_norm2(hidden), img_attn_qkv(hidden, 3 * hidden, qkv_bias),
          img_attn_proj(hidden, hidden, qkv_bias), txt_attn_qkv(hidden, 3 * hidden, qkv_bias),
          txt_attn_proj(hidden, hidden, qkv_bias), img_attn_q_norm(hidden / heads), img_attn_k_norm(hidden / heads),
          txt_attn_q_norm(hidden / heads), txt_attn_k_norm(hidden / heads),
          img_mlp(hidden, static_cast<std::int64_t>(hidden * mlp_width_ratio)),
          txt_mlp(hidden, static_cast<std::int64_t>(hidden * mlp_width_ratio)) {
        HYVIDEO_CHECK(heads > 0 && hidden % heads == 0, "MMDoubleStreamBlock: hidden ", hidden,
                      " not divisible by heads ", heads);
    }

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        img_mod.parameters(prefix + "img_mod.", visit);
        img_attn_qkv.parameters(prefix + "img_attn_qkv.", visit);
        img_attn_q_norm.parameters(prefix + "img_attn_q_norm.", visit);
        img_attn_k_norm.parameters(prefix + "img_attn_k_norm.", visit);
        img_attn_proj.parameters(prefix + "img_attn_proj.", visit);
        img_mlp.parameters(prefix + "img_mlp.", visit);
        txt_mod.parameters(prefix + "txt_mod.", visit);
        txt_attn_qkv.parameters(prefix + "txt_attn_qkv.", visit);
        txt_attn_q_norm.parameters(prefix + "txt_attn_q_norm.", visit);
        txt_attn_k_norm.parameters(prefix + "txt_attn_k_norm.", visit);
        txt_attn_proj.parameters(prefix + "txt_attn_proj.", visit);
        txt_mlp.parameters(prefix + "txt_mlp.", visit);
    }

    // img [B, Li, hidden], txt [B, Lt, hidden] -> updated (img, txt).
    std::pair<Tensor, Tensor> forward(const Tensor& img, const Tensor& txt, const BlockContext& ctx) const {
        const std::int64_t N = img.size(0), Li = img.size(1), Lt = txt.size(1), H = heads_num, D = hidden_size / H;
        const auto im = img_mod.forward(ctx.vec);  // shift1, scale1, gate1, shift2, scale2, gate2
        const auto tm = txt_mod.forward(ctx.vec);
        std::vector<Tensor> im_tr;
        if (ctx.vec_tr.defined()) im_tr = img_mod.forward(ctx.vec_tr);

        // The image stream's modulation, split at the token_replace boundary when there is one.
        auto img_modulate = [&](const Tensor& x, int k) {
            return modulate_tokens<B>(x, im[3 * k], im[3 * k + 1], im_tr, 3 * k, ctx.tr_tokens);
        };
        auto img_gate = [&](const Tensor& x, const Tensor& y, int k) {
            return gate_tokens<B>(x, y, im[3 * k + 2], im_tr, 3 * k + 2, ctx.tr_tokens);
        };

        const Tensor iqkv = img_attn_qkv.forward(img_modulate(img_norm1.forward(img), 0)).reshape({N, Li, 3, H, D});
        const Tensor iq = PosEmb::template apply<B>(img_attn_q_norm.forward(iqkv.select(2, 0)), ctx.rope);
        const Tensor ik = PosEmb::template apply<B>(img_attn_k_norm.forward(iqkv.select(2, 1)), ctx.rope);
        const Tensor tqkv =
            txt_attn_qkv.forward(B::modulate(txt_norm1.forward(txt), tm[0], tm[1])).reshape({N, Lt, 3, H, D});
        const Tensor tq = txt_attn_q_norm.forward(tqkv.select(2, 0));
        const Tensor tk = txt_attn_k_norm.forward(tqkv.select(2, 1));

        const Tensor q = B::cat({iq, tq}, 1), k = B::cat({ik, tk}, 1);
        const Tensor v = B::cat({iqkv.select(2, 2), tqkv.select(2, 2)}, 1);
        const Tensor attn = apply_attention<Attention, B>(q, k, v, ctx.layout, ctx.attention_operands)
                                .reshape({N, Li + Lt, hidden_size});

        Tensor img_out = img_gate(img, img_attn_proj.forward(attn.slice(1, 0, Li)), 0);
        img_out = img_gate(img_out, img_mlp.forward(img_modulate(img_norm2.forward(img_out), 1)), 1);
        Tensor txt_out = B::gated_add(txt, txt_attn_proj.forward(attn.slice(1, Li, Li + Lt)), tm[2]);
        txt_out = B::gated_add(txt_out, txt_mlp.forward(B::modulate(txt_norm2.forward(txt_out), tm[3], tm[4])), tm[5]);
        return {img_out, txt_out};
    }
};

}  // namespace hyvideo
