// Compose an ablation of HunyuanVideo's DiT from the same parts, and run it next to the original.
//
// The transformer's structure is one bundle of parts (attention, QK-norm, positional embedding, MLP
// activation, text input path; models/dit_parts.hpp) with HunyuanVideo's choices as defaults; sizes
// come from the config. Here the variant drops RoPE, normalises q/k with an affine LayerNorm instead of
// RMSNorm, and replaces the token refiner by the plain linear TextProjection: one alias. Both models
// get deterministic random weights and the same inputs.
#include <cmath>
#include <cstdio>

#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/models/hunyuan_video.hpp"
#include "hyvideo/nn/init.hpp"

using namespace hyvideo;

// HunyuanVideo's parts with three exchanged.
using Variant = HYVideoDiffusionTransformer<cpu, HunyuanVideoParts::with_positional_embedding<NoPositionalEmbedding>
                                                     ::with_qk_norm<LayerNormQK>
                                                     ::with_text_input<TextProjection>>;

int main() {
    HYVideoConfig cfg;  // a small HunyuanVideo: 2 double + 2 single blocks, hidden 128, 4 heads
    cfg.hidden_size = 128;
    cfg.heads_num = 4;
    cfg.rope_dim_list = {8, 12, 12};
    cfg.mm_double_blocks_depth = 2;
    cfg.mm_single_blocks_depth = 2;
    cfg.text_states_dim = 64;
    cfg.text_states_dim_2 = 32;
    cfg.guidance_embed = true;

    HYVideoDiffusionTransformer<cpu> original(cfg);

    // The config records the structure (qk_norm_type, text_projection, ...) and the model checks it
    // against its parts; structured() writes the parts' fields into the same sizes.
    const HYVideoConfig variant_cfg = Variant::structured(cfg);
    Variant variant(variant_cfg);
    std::printf("variant config: qk_norm_type %s, text_projection %s\n", variant_cfg.qk_norm_type.c_str(),
                variant_cfg.text_projection.c_str());

    std::printf("original: %lld parameters, variant: %lld parameters\n",
                static_cast<long long>(parameter_count(original)), static_cast<long long>(parameter_count(variant)));
    for (const auto& p : parameter_list(variant))
        if (p.name.rfind("txt_in.", 0) == 0 || p.name.rfind("double_blocks.0.img_attn_q_norm", 0) == 0)
            std::printf("  variant weight %-40s %s\n", p.name.c_str(), shape_str(p.shape).c_str());

    init_weights(original, 2024);
    init_weights(variant, 2024);

    DiTInputs in;
    in.x = Tensor::empty({1, 16, 3, 8, 8});  // 3 latent frames of 8x8 -> 3*4*4 = 48 image tokens
    for (std::int64_t i = 0; i < in.x.numel(); ++i) in.x.data<float>()[i] = std::sin(0.1f * static_cast<float>(i));
    in.t = Tensor::full({1}, 900.0f);
    in.text_states = Tensor::full({1, 6, 64}, 0.5f);
    in.text_mask = Tensor::from_vector<std::int64_t>({1, 6}, {1, 1, 1, 1, 0, 0});  // 4 valid text tokens
    in.text_states_2 = Tensor::full({1, 32}, 0.25f);
    in.guidance = Tensor::full({1}, 6000.0f);

    const Tensor a = original.forward(in), b = variant.forward(in);
    double diff = 0, norm = 0;
    const auto va = a.to_vector(), vb = b.to_vector();
    for (std::size_t i = 0; i < va.size(); ++i) {
        diff += (va[i] - vb[i]) * (va[i] - vb[i]);
        norm += va[i] * va[i];
    }
    std::printf("velocity %s from both; relative difference of the variant: %.3f\n", shape_str(a.shape()).c_str(),
                std::sqrt(diff / norm));
    return 0;
}
