#pragma once
// diffusers_names: the diffusers names of HunyuanVideo's weights, mapped to the official ones.
//
// diffusers (HunyuanVideoTransformer3DModel, AutoencoderKLHunyuanVideo; the hunyuanvideo-community
// repositories) renames the transformer's modules and splits two kinds of fused matrices:
//
//   * the fused q/k/v projections (`img_attn_qkv`, `txt_attn_qkv`, the refiner's `self_attn_qkv`) become
//     three matrices, and the single block's `linear1` four (q, k, v and the MLP input): loading
//     concatenates them back along dim 0, in that order (docs/model.md#fused-projections: fused
//     channel = k·3072 + ...);
//   * the final layer's modulation `final_layer.adaLN_modulation.1` produces (shift, scale), diffusers'
//     `norm_out.linear` produces (scale, shift): loading swaps the two halves back.
//
// Every other tensor is a rename. The VAE's diffusers names are the official ones, so it needs no
// table (checked against diffusers 0.42: AutoencoderKLHunyuanVideo's state_dict has exactly the 180
// names of the vae_tiny fixture, and the model decodes the fixture to 1e-6). The transformer table was
// checked the same way: tools/make_test_checkpoints.py --check-diffusers loads the mapped tiny model
// into diffusers' HunyuanVideoTransformer3DModel with strict=True and reproduces the official output
// (relative L2 1e-5), and agrees tensor for tensor with diffusers' own converter
// (single_file_utils.convert_hunyuan_video_transformer_to_diffusers). The I2V variants
// (image_condition_type token_replace / latent_concat) use the same names.
//
// The rules are written once, diffusers → official, as templates: `{i}` is a block index and `{s}`
// the parameter (weight or bias). checkpoint/checkpoint.hpp uses them in both directions: to name the official
// tensor a diffusers tensor belongs to, and to list the diffusers tensors an official one is made of.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hyvideo::diffusers {

// How the diffusers tensors of one official tensor combine.
enum class Combine : std::uint8_t {
    rename,       // one tensor, the same values
    concat,       // `parts` tensors concatenated along dim 0 (q, k, v [, mlp])
    swap_halves,  // one tensor whose two halves along dim 0 are exchanged: (scale, shift) -> (shift, scale)
};

struct NameRule {
    std::string_view diffusers;  // template: "transformer_blocks.{i}.attn.to_q.{s}"
    std::string_view official;   // template: "double_blocks.{i}.img_attn_qkv.{s}"
    std::uint8_t part = 0;       // for concat: this tensor's place among the parts
    std::uint8_t parts = 1;
    Combine combine = Combine::rename;
};

// HunyuanVideoTransformer3DModel ↔ HYVideoDiffusionTransformer.
inline constexpr NameRule dit_rules[] = {
    {"x_embedder.proj.{s}", "img_in.proj.{s}"},
    // Text token refiner (txt_in): diffusers' HunyuanVideoTokenRefiner.
    {"context_embedder.proj_in.{s}", "txt_in.input_embedder.{s}"},
    {"context_embedder.time_text_embed.timestep_embedder.linear_1.{s}", "txt_in.t_embedder.mlp.0.{s}"},
    {"context_embedder.time_text_embed.timestep_embedder.linear_2.{s}", "txt_in.t_embedder.mlp.2.{s}"},
    {"context_embedder.time_text_embed.text_embedder.linear_1.{s}", "txt_in.c_embedder.linear_1.{s}"},
    {"context_embedder.time_text_embed.text_embedder.linear_2.{s}", "txt_in.c_embedder.linear_2.{s}"},
    {"context_embedder.token_refiner.refiner_blocks.{i}.norm1.{s}", "txt_in.individual_token_refiner.blocks.{i}.norm1.{s}"},
    {"context_embedder.token_refiner.refiner_blocks.{i}.norm2.{s}", "txt_in.individual_token_refiner.blocks.{i}.norm2.{s}"},
    {"context_embedder.token_refiner.refiner_blocks.{i}.attn.to_q.{s}", "txt_in.individual_token_refiner.blocks.{i}.self_attn_qkv.{s}", 0, 3, Combine::concat},
    {"context_embedder.token_refiner.refiner_blocks.{i}.attn.to_k.{s}", "txt_in.individual_token_refiner.blocks.{i}.self_attn_qkv.{s}", 1, 3, Combine::concat},
    {"context_embedder.token_refiner.refiner_blocks.{i}.attn.to_v.{s}", "txt_in.individual_token_refiner.blocks.{i}.self_attn_qkv.{s}", 2, 3, Combine::concat},
    {"context_embedder.token_refiner.refiner_blocks.{i}.attn.to_out.0.{s}", "txt_in.individual_token_refiner.blocks.{i}.self_attn_proj.{s}"},
    {"context_embedder.token_refiner.refiner_blocks.{i}.ff.net.0.proj.{s}", "txt_in.individual_token_refiner.blocks.{i}.mlp.fc1.{s}"},
    {"context_embedder.token_refiner.refiner_blocks.{i}.ff.net.2.{s}", "txt_in.individual_token_refiner.blocks.{i}.mlp.fc2.{s}"},
    // The refiner's adaLN gives gates only (no shift/scale), so no halves swap here.
    {"context_embedder.token_refiner.refiner_blocks.{i}.norm_out.linear.{s}", "txt_in.individual_token_refiner.blocks.{i}.adaLN_modulation.1.{s}"},
    // Conditioning vector: diffusers' CombinedTimestepGuidanceTextProjEmbeddings.
    {"time_text_embed.timestep_embedder.linear_1.{s}", "time_in.mlp.0.{s}"},
    {"time_text_embed.timestep_embedder.linear_2.{s}", "time_in.mlp.2.{s}"},
    {"time_text_embed.guidance_embedder.linear_1.{s}", "guidance_in.mlp.0.{s}"},
    {"time_text_embed.guidance_embedder.linear_2.{s}", "guidance_in.mlp.2.{s}"},
    {"time_text_embed.text_embedder.linear_1.{s}", "vector_in.in_layer.{s}"},
    {"time_text_embed.text_embedder.linear_2.{s}", "vector_in.out_layer.{s}"},
    // MMDoubleStreamBlock: image stream = attn.to_*, norm1, ff; text stream = attn.add_*, norm1_context, ff_context.
    {"transformer_blocks.{i}.norm1.linear.{s}", "double_blocks.{i}.img_mod.linear.{s}"},
    {"transformer_blocks.{i}.norm1_context.linear.{s}", "double_blocks.{i}.txt_mod.linear.{s}"},
    {"transformer_blocks.{i}.attn.to_q.{s}", "double_blocks.{i}.img_attn_qkv.{s}", 0, 3, Combine::concat},
    {"transformer_blocks.{i}.attn.to_k.{s}", "double_blocks.{i}.img_attn_qkv.{s}", 1, 3, Combine::concat},
    {"transformer_blocks.{i}.attn.to_v.{s}", "double_blocks.{i}.img_attn_qkv.{s}", 2, 3, Combine::concat},
    {"transformer_blocks.{i}.attn.add_q_proj.{s}", "double_blocks.{i}.txt_attn_qkv.{s}", 0, 3, Combine::concat},
    {"transformer_blocks.{i}.attn.add_k_proj.{s}", "double_blocks.{i}.txt_attn_qkv.{s}", 1, 3, Combine::concat},
    {"transformer_blocks.{i}.attn.add_v_proj.{s}", "double_blocks.{i}.txt_attn_qkv.{s}", 2, 3, Combine::concat},
    {"transformer_blocks.{i}.attn.norm_q.{s}", "double_blocks.{i}.img_attn_q_norm.{s}"},
    {"transformer_blocks.{i}.attn.norm_k.{s}", "double_blocks.{i}.img_attn_k_norm.{s}"},
    {"transformer_blocks.{i}.attn.norm_added_q.{s}", "double_blocks.{i}.txt_attn_q_norm.{s}"},
    {"transformer_blocks.{i}.attn.norm_added_k.{s}", "double_blocks.{i}.txt_attn_k_norm.{s}"},
    {"transformer_blocks.{i}.attn.to_out.0.{s}", "double_blocks.{i}.img_attn_proj.{s}"},
    {"transformer_blocks.{i}.attn.to_add_out.{s}", "double_blocks.{i}.txt_attn_proj.{s}"},
    {"transformer_blocks.{i}.ff.net.0.proj.{s}", "double_blocks.{i}.img_mlp.fc1.{s}"},
    {"transformer_blocks.{i}.ff.net.2.{s}", "double_blocks.{i}.img_mlp.fc2.{s}"},
    {"transformer_blocks.{i}.ff_context.net.0.proj.{s}", "double_blocks.{i}.txt_mlp.fc1.{s}"},
    {"transformer_blocks.{i}.ff_context.net.2.{s}", "double_blocks.{i}.txt_mlp.fc2.{s}"},
    // MMSingleStreamBlock: linear1 = [q | k | v | mlp input] (docs/model.md#fused-projections), split
    // four ways by diffusers.
    {"single_transformer_blocks.{i}.attn.to_q.{s}", "single_blocks.{i}.linear1.{s}", 0, 4, Combine::concat},
    {"single_transformer_blocks.{i}.attn.to_k.{s}", "single_blocks.{i}.linear1.{s}", 1, 4, Combine::concat},
    {"single_transformer_blocks.{i}.attn.to_v.{s}", "single_blocks.{i}.linear1.{s}", 2, 4, Combine::concat},
    {"single_transformer_blocks.{i}.proj_mlp.{s}", "single_blocks.{i}.linear1.{s}", 3, 4, Combine::concat},
    {"single_transformer_blocks.{i}.proj_out.{s}", "single_blocks.{i}.linear2.{s}"},
    {"single_transformer_blocks.{i}.attn.norm_q.{s}", "single_blocks.{i}.q_norm.{s}"},
    {"single_transformer_blocks.{i}.attn.norm_k.{s}", "single_blocks.{i}.k_norm.{s}"},
    {"single_transformer_blocks.{i}.norm.linear.{s}", "single_blocks.{i}.modulation.linear.{s}"},
    // FinalLayer: diffusers' AdaLayerNormContinuous orders its modulation (scale, shift).
    {"proj_out.{s}", "final_layer.linear.{s}"},
    {"norm_out.linear.{s}", "final_layer.adaLN_modulation.1.{s}", 0, 1, Combine::swap_halves},
};

namespace detail {

struct Captures {
    std::string_view index, param;
};

// Matches `name` against a template; fills the captures. A block index is 1-9 digits without a
// leading zero (so "01" never aliases "1"); a parameter is "weight" or "bias".
inline bool match(std::string_view tmpl, std::string_view name, Captures& cap) {
    while (!tmpl.empty()) {
        if (tmpl.starts_with("{i}")) {
            std::size_t n = 0;
            while (n < name.size() && n < 10 && name[n] >= '0' && name[n] <= '9') ++n;
            if (n == 0 || n > 9 || (n > 1 && name[0] == '0')) return false;
            cap.index = name.substr(0, n);
            name.remove_prefix(n);
            tmpl.remove_prefix(3);
        } else if (tmpl.starts_with("{s}")) {
            std::size_t n = name.starts_with("weight") ? 6 : name.starts_with("bias") ? 4 : 0;
            if (n == 0) return false;
            cap.param = name.substr(0, n);
            name.remove_prefix(n);
            tmpl.remove_prefix(3);
        } else {
            if (name.empty() || name[0] != tmpl[0]) return false;
            name.remove_prefix(1);
            tmpl.remove_prefix(1);
        }
    }
    return name.empty();
}

inline std::string fill(std::string_view tmpl, const Captures& cap) {
    std::string out;
    while (!tmpl.empty()) {
        if (tmpl.starts_with("{i}")) {
            out += cap.index;
            tmpl.remove_prefix(3);
        } else if (tmpl.starts_with("{s}")) {
            out += cap.param;
            tmpl.remove_prefix(3);
        } else {
            out += tmpl[0];
            tmpl.remove_prefix(1);
        }
    }
    return out;
}

}  // namespace detail

// The official tensor a diffusers DiT tensor is (part of).
struct OfficialPart {
    std::string official;
    const NameRule* rule;
};

inline std::optional<OfficialPart> dit_official(std::string_view diffusers_name) {
    for (const NameRule& r : dit_rules) {
        detail::Captures cap;
        if (detail::match(r.diffusers, diffusers_name, cap)) return OfficialPart{detail::fill(r.official, cap), &r};
    }
    return std::nullopt;
}

// The diffusers tensors an official DiT tensor is made of, in concatenation order (empty if the
// official name has no diffusers counterpart).
inline std::vector<std::string> dit_diffusers(std::string_view official_name) {
    std::vector<std::string> out;
    for (const NameRule& r : dit_rules) {
        detail::Captures cap;
        if (!detail::match(r.official, official_name, cap)) continue;
        if (out.size() < r.parts) out.resize(r.parts);
        out[r.part] = detail::fill(r.diffusers, cap);
    }
    return out;
}

}  // namespace hyvideo::diffusers
