#pragma once
// The text token refiner (official modules/token_refiner.py): SingleTokenRefiner, the model's
// `txt_in` when text_projection == "single_refiner", with its IndividualTokenRefinerBlocks.
#include <cmath>
#include <string>
#include <vector>

#include "hyvideo/backend/attention_mask.hpp"
#include "hyvideo/models/dit_parts.hpp"
#include "hyvideo/models/text_projection.hpp"
#include "hyvideo/nn/layer_norm.hpp"
#include "hyvideo/nn/mlp.hpp"
#include "hyvideo/nn/qk_norm.hpp"
#include "hyvideo/nn/timestep_embedder.hpp"

namespace hyvideo {

// One refiner block: gated self-attention and a gated SiLU MLP, both on affine LayerNorms, with
// gates (no shift/scale) from adaLN_modulation(SiLU(c)). The QK norm (none in HunyuanVideo) and the MLP
// activation (SiLU) come from the refiner's parts (TokenRefinerParts, models/dit_parts.hpp).
template <Backend B, class RefinerParts = TokenRefinerParts<>>
    requires RefinerPartsFor<RefinerParts, B>
struct IndividualTokenRefinerBlock {
    using backend = B;
    using QKNorm = typename RefinerParts::template QKNorm<B>;
    std::int64_t hidden_size = 0, heads_num = 0;
    LayerNorm<B> norm1, norm2;
    Linear<B> self_attn_qkv, self_attn_proj;
    QKNorm self_attn_q_norm, self_attn_k_norm;
    MLP<B, typename RefinerParts::MlpActivation> mlp;
    Linear<B> adaLN_modulation;  // Sequential(SiLU, Linear): index 1

    IndividualTokenRefinerBlock() = default;
    IndividualTokenRefinerBlock(std::int64_t hidden, std::int64_t heads, double mlp_width_ratio, bool qkv_bias = true)
        : hidden_size(hidden), heads_num(heads), norm1(hidden, true, 1e-6f), norm2(hidden, true, 1e-6f),
          self_attn_qkv(hidden, 3 * hidden, qkv_bias), self_attn_proj(hidden, hidden, qkv_bias),
          self_attn_q_norm(hidden / heads), self_attn_k_norm(hidden / heads),
          mlp(hidden, static_cast<std::int64_t>(hidden * mlp_width_ratio)), adaLN_modulation(hidden, 2 * hidden) {}

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        norm1.parameters(prefix + "norm1.", visit);
        self_attn_qkv.parameters(prefix + "self_attn_qkv.", visit);
        self_attn_q_norm.parameters(prefix + "self_attn_q_norm.", visit);
        self_attn_k_norm.parameters(prefix + "self_attn_k_norm.", visit);
        self_attn_proj.parameters(prefix + "self_attn_proj.", visit);
        norm2.parameters(prefix + "norm2.", visit);
        mlp.parameters(prefix + "mlp.", visit);
        adaLN_modulation.parameters(prefix + "adaLN_modulation.1.", visit);
    }

    // x [B, L, hidden], c [B, hidden]; `mask` is the refiner's attention rule.
    Tensor forward(const Tensor& x, const Tensor& c, const AttentionMask& mask) const {
        const Tensor gates = adaLN_modulation.forward(B::silu(c));
        const Tensor gate_msa = gates.slice(1, 0, hidden_size), gate_mlp = gates.slice(1, hidden_size, 2 * hidden_size);
        const std::int64_t N = x.size(0), L = x.size(1), D = hidden_size / heads_num;
        const Tensor qkv = self_attn_qkv.forward(norm1.forward(x)).reshape({N, L, 3, heads_num, D});
        const Tensor q = self_attn_q_norm.forward(qkv.select(2, 0));
        const Tensor k = self_attn_k_norm.forward(qkv.select(2, 1));
        const Tensor attn = B::attention(q, k, qkv.select(2, 2), mask, 1.0f / std::sqrt(static_cast<float>(D)));
        Tensor h = B::gated_add(x, self_attn_proj.forward(attn.reshape({N, L, hidden_size})), gate_msa);
        return B::gated_add(h, mlp.forward(norm2.forward(h)), gate_mlp);
    }
};

template <Backend B, class RefinerParts = TokenRefinerParts<>>
struct SingleTokenRefiner {
    using backend = B;
    std::int64_t in_channels = 0, hidden_size = 0;
    Linear<B> input_embedder;
    TimestepEmbedder<B> t_embedder;
    TextProjection<B> c_embedder;
    std::vector<IndividualTokenRefinerBlock<B, RefinerParts>> blocks;  // individual_token_refiner.blocks

    SingleTokenRefiner() = default;
    SingleTokenRefiner(std::int64_t in_ch, std::int64_t hidden, std::int64_t heads, std::int64_t depth,
                       double mlp_width_ratio = 4.0, bool qkv_bias = true)
        : in_channels(in_ch), hidden_size(hidden), input_embedder(in_ch, hidden), t_embedder(hidden),
          c_embedder(in_ch, hidden) {
        for (std::int64_t i = 0; i < depth; ++i) blocks.emplace_back(hidden, heads, mlp_width_ratio, qkv_bias);
    }

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        input_embedder.parameters(prefix + "input_embedder.", visit);
        t_embedder.parameters(prefix + "t_embedder.", visit);
        c_embedder.parameters(prefix + "c_embedder.", visit);
        for (std::size_t i = 0; i < blocks.size(); ++i)
            blocks[i].parameters(prefix + "individual_token_refiner.blocks." + std::to_string(i) + ".", visit);
    }

    // x [B, L, in] raw text-encoder states, t [B] timesteps, mask [B, L] (1 = valid; undefined = all
    // valid) -> [B, L, hidden].
    Tensor forward(const Tensor& x, const Tensor& t, const Tensor& mask) const {
        return refine(x, t, mask, mask.defined() ? AttentionMask::refiner(B::download(mask)) : AttentionMask::full());
    }

    // The same for a prefix mask whose valid tokens per sample, `lengths`, the caller knows on the
    // host (the DiT's forward): nothing is read back from the device. `mask` must agree with them.
    Tensor forward(const Tensor& x, const Tensor& t, const Tensor& mask, const std::vector<std::int64_t>& lengths) const {
        HYVIDEO_CHECK(mask.defined(), "SingleTokenRefiner: lengths without a mask");
        HYVIDEO_CHECK(static_cast<std::int64_t>(lengths.size()) == x.size(0), "SingleTokenRefiner: ", lengths.size(),
                      " lengths for ", x.size(0), " samples");
        for (std::int64_t n : lengths)
            HYVIDEO_CHECK(n >= 0 && n <= x.size(1), "SingleTokenRefiner: ", n, " valid tokens of ", x.size(1));
        return refine(x, t, mask, AttentionMask::refiner(lengths));
    }

private:
    // `mask` undefined: every token valid.
    Tensor refine(const Tensor& x, const Tensor& t, const Tensor& mask, const AttentionMask& attn_mask) const {
        HYVIDEO_CHECK(x.dim() == 3 && x.size(2) == in_channels, "SingleTokenRefiner: text states must be [B, L, ",
                      in_channels, "], got ", shape_str(x.shape()));
        const Tensor weights = mask.defined() ? B::to_float(mask) : B::full({x.size(0), x.size(1)}, 1.0f);
        HYVIDEO_CHECK(weights.shape() == (Shape{x.size(0), x.size(1)}), "SingleTokenRefiner: mask ", shape_str(weights.shape()),
                      " for text states ", shape_str(x.shape()));
        // Context: the masked mean of the raw states, in f32 (the reference's mask_float path).
        const Tensor pooled = B::masked_mean(x, weights);  // [B, in]
        const Tensor c = B::add(t_embedder.forward(t), c_embedder.forward(pooled));
        Tensor h = input_embedder.forward(x);
        for (const auto& blk : blocks) h = blk.forward(h, c, attn_mask);
        return h;
    }
};

}  // namespace hyvideo
