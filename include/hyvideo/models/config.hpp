#pragma once
// HYVideoDiffusionTransformer hyper-parameters, named as the official constructor arguments, with
// the official presets (HUNYUAN_VIDEO_CONFIG) and JSON in the same keys.
//
// Configurations come from files the toolkit did not write (a --dit-config, a config.json beside
// downloaded weights, a safetensors file's metadata), so reading one is strict (core/config_fields.hpp):
// a value of the wrong JSON type, a float or an out-of-range number for an integer, or a document that
// is not an object is refused with one hyvideo::Error naming the input and the key. validate() then bounds
// every size, generously for any real variant but tightly enough that the parameter count is exact in
// 64-bit arithmetic, so that nothing sized by a config can allocate more than a real model would.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyvideo/core/config_fields.hpp"
#include "hyvideo/core/error.hpp"
#include "hyvideo/io/json_file.hpp"

namespace hyvideo {

// How HunyuanVideo-I2V feeds the reference image to the DiT (official i2v_condition_type): none (T2V),
// token_replace (frame 0's tokens are the clean image latent, with their own modulation) or
// latent_concat (the image latent and a mask are concatenated to the input channels).
enum class I2VConditionType : std::uint8_t { none, token_replace, latent_concat };

// The official spelling ("" for none).
constexpr std::string_view i2v_condition_name(I2VConditionType t) {
    switch (t) {
        case I2VConditionType::none: return "";
        case I2VConditionType::token_replace: return "token_replace";
        case I2VConditionType::latent_concat: return "latent_concat";
    }
    return "?";
}

inline std::optional<I2VConditionType> parse_i2v_condition_type(std::string_view s) {
    for (auto t : {I2VConditionType::none, I2VConditionType::token_replace, I2VConditionType::latent_concat})
        if (i2v_condition_name(t) == s) return t;
    return std::nullopt;
}

namespace config_detail {
// Reads an I2VConditionType in its official spelling.
inline void read_i2v_condition(const JsonFields& f, const char* key, I2VConditionType& field) {
    f.choice(key, field, parse_i2v_condition_type, "must be \"token_replace\", \"latent_concat\" or \"\"");
}
}  // namespace config_detail

struct HYVideoConfig {
    std::array<std::int64_t, 3> patch_size{1, 2, 2};
    std::int64_t in_channels = 16;
    std::int64_t out_channels = 16;
    std::int64_t hidden_size = 3072;
    std::int64_t heads_num = 24;
    double mlp_width_ratio = 4.0;
    std::string mlp_act_type = "gelu_tanh";
    std::int64_t mm_double_blocks_depth = 20;
    std::int64_t mm_single_blocks_depth = 40;
    std::vector<std::int64_t> rope_dim_list{16, 56, 56};
    bool qkv_bias = true;
    bool qk_norm = true;
    std::string qk_norm_type = "rms";
    bool guidance_embed = false;
    std::string text_projection = "single_refiner";
    bool use_attention_mask = true;
    std::int64_t text_states_dim = 4096;
    std::int64_t text_states_dim_2 = 768;
    float rope_theta = 256.0f;
    I2VConditionType i2v_condition_type = I2VConditionType::none;  // HunyuanVideo-I2V: how the image enters
    std::int64_t refiner_depth = 2;  // SingleTokenRefiner depth (fixed to 2 in the official model)

    std::int64_t head_dim() const { return heads_num > 0 ? hidden_size / heads_num : 0; }
    // The MLP width of every block, as the official int(hidden_size * mlp_width_ratio).
    std::int64_t mlp_hidden_dim() const { return static_cast<std::int64_t>(static_cast<double>(hidden_size) * mlp_width_ratio); }

    // Throws, naming the parameter and its value, when the configuration cannot describe a model or
    // describes one larger than config_detail's bounds.
    void validate() const {
        using namespace config_detail;
        const auto in_range = [](const char* name, std::int64_t v, std::int64_t lo, std::int64_t hi) {
            HYVIDEO_CHECK(v >= lo && v <= hi, "model config: ", name, " must be in [", lo, ", ", hi, "], got ", v);
        };
        for (auto p : patch_size) in_range("patch_size entry", p, 1, max_patch);
        in_range("in_channels", in_channels, 1, max_channels);
        in_range("out_channels", out_channels, 1, max_channels);
        in_range("hidden_size", hidden_size, 1, max_width);
        in_range("heads_num", heads_num, 1, hidden_size);
        HYVIDEO_CHECK(hidden_size % heads_num == 0, "model config: hidden_size ", hidden_size,
                      " must be divisible by heads_num ", heads_num);
        // Checked before the product is converted to an integer, which is undefined beyond its range.
        HYVIDEO_CHECK(std::isfinite(mlp_width_ratio) && mlp_width_ratio > 0 &&
                          static_cast<double>(hidden_size) * mlp_width_ratio < static_cast<double>(max_width) + 1 &&
                          mlp_hidden_dim() >= 1,
                      "model config: mlp_width_ratio must be a positive number with int(hidden_size * mlp_width_ratio) in [1, ",
                      max_width, "], got ", mlp_width_ratio, " with hidden_size ", hidden_size);
        in_range("mm_double_blocks_depth", mm_double_blocks_depth, 0, max_depth);
        in_range("mm_single_blocks_depth", mm_single_blocks_depth, 0, max_depth);
        in_range("refiner_depth", refiner_depth, 0, max_depth);
        in_range("text_states_dim", text_states_dim, 1, max_width);
        in_range("text_states_dim_2", text_states_dim_2, 1, max_width);
        // RoPE rotates pairs of channels, so each axis needs an even, positive share of a head.
        std::int64_t rope_sum = 0;
        bool rope_ok = rope_dim_list.size() == 3;
        for (auto d : rope_dim_list) {
            rope_ok = rope_ok && d > 0 && d % 2 == 0 && d <= max_width;
            if (rope_ok) rope_sum += d;
        }
        HYVIDEO_CHECK(rope_ok && rope_sum == head_dim(), "model config: rope_dim_list must be 3 positive even entries summing to head_dim ",
                      head_dim(), ", got ", rope_list_text());
        HYVIDEO_CHECK(std::isfinite(rope_theta) && rope_theta > 0, "model config: rope_theta must be a positive finite number, got ",
                      rope_theta);
        // The activations hyvideo has a part for (models/dit_parts.hpp); the model checks that the
        // config's is the one it was built with.
        HYVIDEO_CHECK(mlp_act_type == "gelu_tanh" || mlp_act_type == "gelu" || mlp_act_type == "silu", "model config: mlp_act_type ",
                      string_text(mlp_act_type), " is not supported (gelu_tanh, gelu, silu)");
        HYVIDEO_CHECK(qk_norm_type == "rms" || qk_norm_type == "layer", "model config: qk_norm_type ",
                      string_text(qk_norm_type), " is not supported (rms, layer)");
        HYVIDEO_CHECK(text_projection == "single_refiner" || text_projection == "linear", "model config: text_projection ",
                      string_text(text_projection), " is not supported (single_refiner, linear)");
        const long double n = parameter_count_exact();
        HYVIDEO_CHECK(n <= max_parameters, "model config: hidden_size ", hidden_size, ", mlp_width_ratio ", mlp_width_ratio,
                      ", mm_double_blocks_depth ", mm_double_blocks_depth, ", mm_single_blocks_depth ", mm_single_blocks_depth,
                      ", refiner_depth ", refiner_depth, ", in/out_channels ", in_channels, "/", out_channels,
                      " and text_states_dim(_2) ", text_states_dim, "/", text_states_dim_2, " give ",
                      static_cast<double>(n), " parameters, more than the ", static_cast<double>(max_parameters),
                      " a configuration may describe");
    }

    // The number of parameters HYVideoDiffusionTransformer (with the RMS QK norm and the text input
    // path text_projection names) has for this configuration, computed without building it: what a
    // caller can check before allocating anything. Throws what validate() throws.
    std::int64_t parameter_count() const {
        validate();
        return static_cast<std::int64_t>(parameter_count_exact());
    }

    // "HYVideo-T/2", "HYVideo-T/2-cfgdistill" (the released T2V model) or "HYVideo-S/2".
    static HYVideoConfig preset(const std::string& name) {
        HYVideoConfig c;
        if (name == "HYVideo-T/2" || name == "HYVideo-T/2-cfgdistill") {
            c.guidance_embed = name == "HYVideo-T/2-cfgdistill";
        } else if (name == "HYVideo-S/2") {
            c.mm_double_blocks_depth = 6;
            c.mm_single_blocks_depth = 12;
            c.rope_dim_list = {12, 42, 42};
            c.hidden_size = 480;
            c.heads_num = 5;
        } else {
            throw Error("unknown model preset " + config_detail::string_text(name) +
                        " (HYVideo-T/2, HYVideo-T/2-cfgdistill, HYVideo-S/2)");
        }
        return c;
    }

    // Reads the keys present in j over the defaults (the official argument names; other keys are
    // ignored, as the official argument dumps and the fixtures carry more). `context`, when given,
    // names the input (a file) at the start of every error.
    static HYVideoConfig from_json(const nlohmann::json& j, const std::string& context = {}) {
        return from_json(j, HYVideoConfig{}, context);
    }
    static HYVideoConfig from_json(const nlohmann::json& j, HYVideoConfig c, const std::string& context = {}) {
        using namespace config_detail;
        const JsonFields f(j, context.empty() ? "model config" : context + ": model config");
        // diffusers' keys (num_layers, attention_head_dim, ...) are all unknown here: read as official,
        // such a file would silently describe the default model.
        if (const auto* cls = f.find("_class_name"); cls && *cls == "HunyuanVideoTransformer3DModel")
            throw Error(f.what() + ": this is diffusers' config.json (HunyuanVideoTransformer3DModel), not the official "
                                   "argument names read here; leave it beside the weights, where the checkpoint reads it");
        f.integers("patch_size", c.patch_size, 1, max_patch);
        f.integer("in_channels", c.in_channels, 1, max_channels);
        f.integer("out_channels", c.out_channels, 1, max_channels);
        f.integer("hidden_size", c.hidden_size, 1, max_width);
        f.integer("heads_num", c.heads_num, 1, max_width);
        f.real("mlp_width_ratio", c.mlp_width_ratio);
        f.string("mlp_act_type", c.mlp_act_type);
        f.integer("mm_double_blocks_depth", c.mm_double_blocks_depth, 0, max_depth);
        f.integer("mm_single_blocks_depth", c.mm_single_blocks_depth, 0, max_depth);
        f.integer("refiner_depth", c.refiner_depth, 0, max_depth);
        f.integers("rope_dim_list", c.rope_dim_list, 3, 3, 1, max_width);
        f.boolean("qkv_bias", c.qkv_bias);
        f.boolean("qk_norm", c.qk_norm);
        f.string("qk_norm_type", c.qk_norm_type);
        f.boolean("guidance_embed", c.guidance_embed);
        f.string("text_projection", c.text_projection);
        f.boolean("use_attention_mask", c.use_attention_mask);
        f.integer("text_states_dim", c.text_states_dim, 1, max_width);
        f.integer("text_states_dim_2", c.text_states_dim_2, 1, max_width);
        f.real("rope_theta", c.rope_theta);
        read_i2v_condition(f, "i2v_condition_type", c.i2v_condition_type);
        try {
            c.validate();
        } catch (const Error& e) {
            if (context.empty()) throw;
            throw Error(context + ": " + e.what());
        }
        return c;
    }

    // A JSON file of official argument names (what `hyvideo generate --dit-config` takes); every error
    // names the file.
    static HYVideoConfig from_file(const std::filesystem::path& path) {
        return from_json(read_json_file(path, "model config", 16u << 20), path.string());
    }

    nlohmann::json to_json() const {
        return {{"patch_size", patch_size},
                {"in_channels", in_channels},
                {"out_channels", out_channels},
                {"hidden_size", hidden_size},
                {"heads_num", heads_num},
                {"mlp_width_ratio", mlp_width_ratio},
                {"mlp_act_type", mlp_act_type},
                {"mm_double_blocks_depth", mm_double_blocks_depth},
                {"mm_single_blocks_depth", mm_single_blocks_depth},
                {"refiner_depth", refiner_depth},
                {"rope_dim_list", rope_dim_list},
                {"qkv_bias", qkv_bias},
                {"qk_norm", qk_norm},
                {"qk_norm_type", qk_norm_type},
                {"guidance_embed", guidance_embed},
                {"text_projection", text_projection},
                {"use_attention_mask", use_attention_mask},
                {"text_states_dim", text_states_dim},
                {"text_states_dim_2", text_states_dim_2},
                {"rope_theta", rope_theta},
                {"i2v_condition_type", std::string(i2v_condition_name(i2v_condition_type))}};
    }

private:
    std::string rope_list_text() const {
        std::string s = "[";
        for (std::size_t i = 0; i < rope_dim_list.size() && i < 8; ++i) s += (i ? ", " : "") + std::to_string(rope_dim_list[i]);
        return s + (rope_dim_list.size() > 8 ? ", ...]" : "]");
    }

    // Exact while the fields are within validate()'s per-field bounds: every product has at most three
    // factors below 2^21, so each term and the sum stay below 2^64, which a long double holds exactly.
    // Follows the module structure of models/hunyuan_video.hpp; tests compare it with the built model.
    long double parameter_count_exact() const {
        using L = long double;
        const auto linear = [](L in, L out, bool bias = true) { return in * out + (bias ? out : 0); };
        const L H = static_cast<L>(hidden_size), M = static_cast<L>(mlp_hidden_dim()), D = static_cast<L>(head_dim());
        const L patch = static_cast<L>(patch_size[0]) * static_cast<L>(patch_size[1]) * static_cast<L>(patch_size[2]);
        const L T1 = static_cast<L>(text_states_dim), T2 = static_cast<L>(text_states_dim_2);
        const L qk = !qk_norm ? 0 : qk_norm_type == "rms" ? D : 2 * D;  // one norm: weight (and bias)
        const L mlp = linear(H, M) + linear(M, H);
        const L timestep_embedder = linear(256, H) + linear(H, H);  // frequency embedding of 256
        const L text_projection_params = linear(T1, H) + linear(H, H);

        L txt_in = 0;
        if (text_projection == "linear") {
            txt_in = text_projection_params;
        } else {
            const L refiner_block = 2 * (2 * H) + linear(H, 3 * H, qkv_bias) + linear(H, H, qkv_bias) + mlp + linear(H, 2 * H);
            txt_in = linear(T1, H) + timestep_embedder + text_projection_params +
                     static_cast<L>(refiner_depth) * refiner_block;
        }
        const L stream = linear(H, 6 * H) + linear(H, 3 * H, qkv_bias) + 2 * qk + linear(H, H, qkv_bias) + mlp;
        const L single = linear(H, 3 * H + M) + linear(H + M, H) + 2 * qk + linear(H, 3 * H);
        return static_cast<L>(in_channels) * patch * H + H  // img_in: Conv3d with kernel = stride = patch
               + txt_in + timestep_embedder + linear(T2, H) + linear(H, H) + (guidance_embed ? timestep_embedder : 0) +
               static_cast<L>(mm_double_blocks_depth) * 2 * stream + static_cast<L>(mm_single_blocks_depth) * single +
               linear(H, patch * static_cast<L>(out_channels)) + linear(H, 2 * H);
    }
};

}  // namespace hyvideo
