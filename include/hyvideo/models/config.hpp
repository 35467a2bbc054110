#pragma once
// HYVideoDiffusionTransformer hyper-parameters, named as the official constructor arguments, with
// the official presets (HUNYUAN_VIDEO_CONFIG) and JSON in the same keys.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyvideo/core/error.hpp"

namespace hyvideo {

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
    std::string i2v_condition_type;  // "", "token_replace" or "latent_concat" (HunyuanVideo-I2V)
    std::int64_t refiner_depth = 2;  // SingleTokenRefiner depth (fixed to 2 in the official model)

    std::int64_t head_dim() const { return hidden_size / heads_num; }

    // Throws with the offending values when the configuration cannot describe a model.
    void validate() const {
        HYVIDEO_CHECK(heads_num > 0 && hidden_size % heads_num == 0, "hidden_size ", hidden_size,
                      " must be divisible by heads_num ", heads_num);
        std::int64_t rope_sum = 0;
        for (auto d : rope_dim_list) rope_sum += d;
        HYVIDEO_CHECK(rope_dim_list.size() == 3 && rope_sum == head_dim(), "rope_dim_list must have 3 entries summing to head_dim ",
                      head_dim(), ", got sum ", rope_sum);
        HYVIDEO_CHECK(mlp_act_type == "gelu_tanh", "mlp_act_type '", mlp_act_type, "' is not supported (gelu_tanh)");
        HYVIDEO_CHECK(i2v_condition_type.empty() || i2v_condition_type == "token_replace" ||
                          i2v_condition_type == "latent_concat",
                      "unknown i2v_condition_type '", i2v_condition_type, "'");
        for (auto p : patch_size) HYVIDEO_CHECK(p > 0, "patch sizes must be positive");
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
            throw Error("unknown model preset '" + name + "' (HYVideo-T/2, HYVideo-T/2-cfgdistill, HYVideo-S/2)");
        }
        return c;
    }

    // Reads the keys present in j over the defaults (the official argument names).
    static HYVideoConfig from_json(const nlohmann::json& j) { return from_json(j, HYVideoConfig{}); }
    static HYVideoConfig from_json(const nlohmann::json& j, HYVideoConfig c) {
        try {
            auto get = [&](const char* key, auto& field) {
                if (j.contains(key) && !j.at(key).is_null()) field = j.at(key).get<std::remove_reference_t<decltype(field)>>();
            };
            get("patch_size", c.patch_size);
            get("in_channels", c.in_channels);
            get("out_channels", c.out_channels);
            get("hidden_size", c.hidden_size);
            get("heads_num", c.heads_num);
            get("mlp_width_ratio", c.mlp_width_ratio);
            get("mlp_act_type", c.mlp_act_type);
            get("mm_double_blocks_depth", c.mm_double_blocks_depth);
            get("mm_single_blocks_depth", c.mm_single_blocks_depth);
            get("rope_dim_list", c.rope_dim_list);
            get("qkv_bias", c.qkv_bias);
            get("qk_norm", c.qk_norm);
            get("qk_norm_type", c.qk_norm_type);
            get("guidance_embed", c.guidance_embed);
            get("text_projection", c.text_projection);
            get("use_attention_mask", c.use_attention_mask);
            get("text_states_dim", c.text_states_dim);
            get("text_states_dim_2", c.text_states_dim_2);
            get("rope_theta", c.rope_theta);
            get("i2v_condition_type", c.i2v_condition_type);
        } catch (const nlohmann::json::exception& e) {
            throw Error(std::string("model config: ") + e.what());
        }
        c.validate();
        return c;
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
                {"i2v_condition_type", i2v_condition_type}};
    }
};

}  // namespace hyvideo
