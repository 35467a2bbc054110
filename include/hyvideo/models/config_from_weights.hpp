#pragma once
// A DiT's configuration from its weights (docs/checkpoints.md): the sizes from the stored shapes (by
// official name, so any checkpoint layout, a golden fixture or a test's tensors), what shapes cannot say
// from a config.json (official or diffusers keys), else from the released presets. And the check of a
// configuration the user gave against the weights, before any model is built.
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "hyvideo/core/checked_math.hpp"
#include "hyvideo/core/config_guess.hpp"
#include "hyvideo/core/error.hpp"
#include "hyvideo/core/tensor.hpp"
#include "hyvideo/core/weight_source.hpp"
#include "hyvideo/models/config.hpp"

namespace hyvideo {

namespace detail {

// A mlp_width_ratio that gives back `width` through the official int(hidden * ratio): width / hidden
// itself can land one ulp low and truncate to width - 1. Widths beyond the bound are left to
// validate(), which refuses them before anything converts the product.
inline double mlp_ratio_for(std::int64_t width, std::int64_t hidden) {
    double r = static_cast<double>(width) / static_cast<double>(hidden);
    if (width > config_detail::max_width || hidden > config_detail::max_width) return r;
    for (int i = 0; i < 4 && static_cast<std::int64_t>(static_cast<double>(hidden) * r) < width; ++i)
        r = std::nextafter(r, std::numeric_limits<double>::infinity());
    return r;
}

}  // namespace detail

// What the stored shapes alone say about a DiT: every size (see infer_dit_config), not validated.
struct DitShapes {
    HYVideoConfig config;
    std::string heads_from;     // the QK-norm weight that sized the heads
    std::string mlp_from;       // the MLP weight that sized mlp_width_ratio; empty: no block has one
    std::string qkv_bias_from;  // the bias that decided qkv_bias; empty: no block has a QKV projection
};

inline DitShapes dit_shapes(const ShapeLookup& shape) {
    DitShapes out;
    HYVideoConfig& c = out.config;
    // Every shape is checked for its rank before it is indexed: a file may hold anything under any name.
    const auto need = [&](const std::string& name, std::size_t rank) {
        const auto s = shape(name);
        HYVIDEO_CHECK(s, "not a complete HunyuanVideo DiT: no ", name);
        HYVIDEO_CHECK(s->size() == rank, name, " has shape ", shape_str(*s), ", not the ", rank, "-d tensor of a DiT");
        return *s;
    };
    const auto optional = [&](const std::string& name, std::size_t rank) {
        const auto s = shape(name);
        return s && s->size() == rank ? s : std::nullopt;
    };
    const Shape img_in = need("img_in.proj.weight", 5);
    c.hidden_size = img_in[0];
    c.in_channels = img_in[1];
    c.patch_size = {img_in[2], img_in[3], img_in[4]};
    const Shape final_linear = need("final_layer.linear.weight", 2);
    auto patch_volume = detail::checked_mul<std::int64_t>(img_in[2], img_in[3]);
    if (patch_volume) patch_volume = detail::checked_mul<std::int64_t>(*patch_volume, img_in[4]);
    HYVIDEO_CHECK(patch_volume, "img_in.proj.weight has shape ", shape_str(img_in), ", whose patch overflows");
    // A patch with a zero side is left for validate() to name.
    c.out_channels = 0;
    if (*patch_volume > 0) {
        HYVIDEO_CHECK(final_linear[0] % *patch_volume == 0, "final_layer.linear.weight has shape ", shape_str(final_linear),
                      ": its ", final_linear[0], " outputs are not a whole number of channels of the ", *patch_volume,
                      "-pixel patch of img_in.proj.weight");
        c.out_channels = final_linear[0] / *patch_volume;
    }
    c.mm_double_blocks_depth = detail::count_blocks(shape, [](auto i) { return "double_blocks." + std::to_string(i) + ".img_attn_qkv.weight"; });
    c.mm_single_blocks_depth = detail::count_blocks(shape, [](auto i) { return "single_blocks." + std::to_string(i) + ".linear1.weight"; });
    c.refiner_depth = detail::count_blocks(shape, [](auto i) {
        return "txt_in.individual_token_refiner.blocks." + std::to_string(i) + ".self_attn_qkv.weight";
    });
    const std::string refiner0 = "txt_in.individual_token_refiner.blocks.0.";

    // Heads from the per-head QK norm; a norm with a bias is the "layer" kind.
    out.heads_from = optional("double_blocks.0.img_attn_q_norm.weight", 1) ? "double_blocks.0.img_attn_q_norm"
                                                                           : "single_blocks.0.q_norm";
    const auto qnorm = optional(out.heads_from + ".weight", 1);
    HYVIDEO_CHECK(qnorm && (*qnorm)[0] > 0, "not a complete HunyuanVideo DiT: no QK-norm weight to size the heads by");
    HYVIDEO_CHECK(c.hidden_size % (*qnorm)[0] == 0, out.heads_from, ".weight has ", (*qnorm)[0],
                  " entries, which do not divide the hidden size ", c.hidden_size, " of img_in.proj.weight into heads");
    c.heads_num = c.hidden_size / (*qnorm)[0];
    c.qk_norm_type = shape(out.heads_from + ".bias").has_value() ? "layer" : "rms";
    out.heads_from += ".weight";

    // Every block has an MLP of the same width; the first one stored sizes it.
    if (c.hidden_size > 0) {
        if (const auto fc1 = optional("double_blocks.0.img_mlp.fc1.weight", 2)) {
            c.mlp_width_ratio = detail::mlp_ratio_for((*fc1)[0], c.hidden_size);
            out.mlp_from = "double_blocks.0.img_mlp.fc1.weight";
        } else if (const auto l1 = optional("single_blocks.0.linear1.weight", 2);
                   l1 && c.hidden_size <= config_detail::max_width && (*l1)[0] > 3 * c.hidden_size) {
            c.mlp_width_ratio = detail::mlp_ratio_for((*l1)[0] - 3 * c.hidden_size, c.hidden_size);  // rows: q, k, v, mlp
            out.mlp_from = "single_blocks.0.linear1.weight";
        } else if (const auto rfc1 = optional(refiner0 + "mlp.fc1.weight", 2)) {
            c.mlp_width_ratio = detail::mlp_ratio_for((*rfc1)[0], c.hidden_size);
            out.mlp_from = refiner0 + "mlp.fc1.weight";
        }
    }
    // The QKV bias (and the attention projection's, which follows it); single blocks' linear1 always has one.
    if (shape("double_blocks.0.img_attn_qkv.weight")) {
        c.qkv_bias = shape("double_blocks.0.img_attn_qkv.bias").has_value();
        out.qkv_bias_from = "double_blocks.0.img_attn_qkv.bias";
    } else if (shape(refiner0 + "self_attn_qkv.weight")) {
        c.qkv_bias = shape(refiner0 + "self_attn_qkv.bias").has_value();
        out.qkv_bias_from = refiner0 + "self_attn_qkv.bias";
    }
    c.guidance_embed = shape("guidance_in.mlp.0.weight").has_value();
    if (shape("txt_in.input_embedder.weight").has_value()) {
        c.text_projection = "single_refiner";
        c.text_states_dim = need("txt_in.input_embedder.weight", 2)[1];
    } else {
        c.text_projection = "linear";
        c.text_states_dim = need("txt_in.linear_1.weight", 2)[1];
    }
    c.text_states_dim_2 = need("vector_in.in_layer.weight", 2)[1];
    return out;
}

// The configuration: the sizes from the shapes, everything else from `json` (a config.json; named
// `json_name` in errors about its keys) when given, else from the released presets where the sizes
// identify one. Throws when the shapes are not a DiT's or the result is not a valid configuration.
inline ConfigGuess<HYVideoConfig> infer_dit_config(const ShapeLookup& shape, const nlohmann::json* json,
                                                               const std::string& json_name = "config.json") {
    ConfigGuess<HYVideoConfig> g;
    const DitShapes sizes = dit_shapes(shape);
    g.config = sizes.config;
    HYVideoConfig& c = g.config;
    if (sizes.mlp_from.empty()) g.notes.push_back("mlp_width_ratio: no block stores an MLP; 4 assumed");

    const std::int64_t head_dim = c.head_dim();
    bool rope_known = false;
    if (json != nullptr) {
        // config.json decides what shapes cannot: RoPE, theta, the I2V condition type. Its keys are read
        // as strictly as a model config, and errors name it and the key.
        const config_detail::JsonFields f(*json, json_name);
        const bool diffusers = detail::is_diffusers_json(*json);
        const char* rope_key = diffusers ? "rope_axes_dim" : "rope_dim_list";
        f.integers(rope_key, c.rope_dim_list, 3, 3, 1, config_detail::max_width);
        rope_known = f.has(rope_key);
        f.real("rope_theta", c.rope_theta);
        config_detail::read_i2v_condition(f, diffusers ? "image_condition_type" : "i2v_condition_type", c.i2v_condition_type);
        if (!diffusers) f.boolean("use_attention_mask", c.use_attention_mask);
        const char* depth_key = diffusers ? "num_layers" : "mm_double_blocks_depth";
        if (const auto* d = f.find(depth_key); d && *d != nlohmann::json(c.mm_double_blocks_depth))
            g.notes.push_back(detail::concat(json_name, "'s ", depth_key, " disagrees with the weights (", c.mm_double_blocks_depth,
                                             " double blocks); the weights win"));
        g.notes.push_back("rope_dim_list, rope_theta and the I2V condition type from " + json_name);
    }
    if (!rope_known) {
        // The released presets (docs/model.md#dit-presets) fix RoPE by head size.
        if (head_dim == 128) c.rope_dim_list = {16, 56, 56}, rope_known = true;
        else if (head_dim == 96) c.rope_dim_list = {12, 42, 42}, rope_known = true;
        if (rope_known)
            g.notes.push_back(detail::concat("rope_dim_list ", shape_str({c.rope_dim_list.begin(), c.rope_dim_list.end()}),
                                             " and rope_theta 256 from the preset with head_dim ", head_dim));
    }
    if (!rope_known) {
        // A placeholder that validates (three even shares of the head) where the head allows one; the
        // weights hold nothing that could decide it.
        const std::int64_t share = 2 * (head_dim / 6);
        c.rope_dim_list = {head_dim - 2 * share, share, share};
        g.complete = false;
        g.notes.push_back(detail::concat("rope_dim_list is not stored in the weights and no preset has head_dim ", head_dim,
                                         ": give it in a config"));
    }
    const bool i2v_in_json = json != nullptr && (json->contains("image_condition_type") || json->contains("i2v_condition_type"));
    if (!i2v_in_json) {
        if (c.in_channels == 2 * c.out_channels + 1) {
            c.i2v_condition_type = I2VConditionType::latent_concat;
            g.notes.push_back("in_channels = 2·out + 1: HunyuanVideo-I2V latent_concat");
        } else if (c.in_channels == c.out_channels) {
            g.notes.push_back("i2v_condition_type: none assumed; HunyuanVideo-I2V token_replace has identical tensors");
        }
    }
    detail::check_inferred([&] { c.validate(); }, json, json_name);
    return g;
}

inline ConfigGuess<HYVideoConfig> infer_dit_config(const WeightSource& w, const nlohmann::json* json = nullptr) {
    return infer_dit_config(shapes_of(w), json);
}

// Checks a configuration the user gave against the weights: validate(), then every field the shapes
// determine (sizes, depths, biases, guidance, text input path), by the same reading as dit_shapes.
// Throws naming the first field that disagrees, both values and the tensor that decides it. Reads no
// weight and allocates nothing sized by `c`.
inline void check_dit_config(const HYVideoConfig& c, const ShapeLookup& shape) {
    c.validate();
    const DitShapes sizes = dit_shapes(shape);
    const HYVideoConfig& w = sizes.config;
    const detail::ConfigComparison same;
    same("hidden_size", c.hidden_size, w.hidden_size, "img_in.proj.weight")
        ("in_channels", c.in_channels, w.in_channels, "img_in.proj.weight")
        ("patch_size", c.patch_size, w.patch_size, "img_in.proj.weight")
        ("out_channels", c.out_channels, w.out_channels, "final_layer.linear.weight")
        ("heads_num", c.heads_num, w.heads_num, sizes.heads_from)
        ("qk_norm", c.qk_norm, true, sizes.heads_from)
        ("qk_norm_type", c.qk_norm_type, w.qk_norm_type, sizes.heads_from)
        ("mm_double_blocks_depth", c.mm_double_blocks_depth, w.mm_double_blocks_depth, "double_blocks.<i>.img_attn_qkv.weight")
        ("mm_single_blocks_depth", c.mm_single_blocks_depth, w.mm_single_blocks_depth, "single_blocks.<i>.linear1.weight")
        ("text_projection", c.text_projection, w.text_projection, "txt_in.input_embedder.weight / txt_in.linear_1.weight")
        ("text_states_dim", c.text_states_dim, w.text_states_dim,
         w.text_projection == "linear" ? "txt_in.linear_1.weight" : "txt_in.input_embedder.weight")
        ("text_states_dim_2", c.text_states_dim_2, w.text_states_dim_2, "vector_in.in_layer.weight")
        ("guidance_embed", c.guidance_embed, w.guidance_embed, "guidance_in.mlp.0.weight");
    if (c.text_projection == "single_refiner")
        same("refiner_depth", c.refiner_depth, w.refiner_depth, "txt_in.individual_token_refiner.blocks.<i>.self_attn_qkv.weight");
    // The ratio as the blocks use it: equal widths are the same model, whatever the ratio's digits.
    if (!sizes.mlp_from.empty())
        same("MLP width int(hidden_size * mlp_width_ratio)", c.mlp_hidden_dim(), w.mlp_hidden_dim(), sizes.mlp_from);
    if (!sizes.qkv_bias_from.empty()) same("qkv_bias", c.qkv_bias, w.qkv_bias, sizes.qkv_bias_from);
}

}  // namespace hyvideo
