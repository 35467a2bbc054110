#pragma once
// Hyper-parameters of the text encoders, under the keys of the Hugging Face config.json files that come
// with the released weights (text_encoder/config.json is a LlamaConfig, text_encoder_2/config.json a
// CLIPConfig, the I2V llava folder a LlavaConfig holding both). The golden fixtures' `config` metadata
// uses the same keys, so one reader serves both.
#include <cmath>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "hyvideo/core/error.hpp"

namespace hyvideo {

namespace text_config_detail {

// A value of `j` under `key`, or `fallback` when the key is absent (HF configs omit defaults).
template <class T>
T value_or(const nlohmann::json& j, const char* key, T fallback, const std::string& what) {
    if (!j.is_object() || !j.contains(key) || j.at(key).is_null()) return fallback;
    try {
        return j.at(key).get<T>();
    } catch (const nlohmann::json::exception&) {
        throw Error(what + ": '" + key + "' is " + j.at(key).dump() + ", of the wrong type");
    }
}

template <class T>
T required(const nlohmann::json& j, const char* key, const std::string& what) {
    HYVIDEO_CHECK(j.is_object() && j.contains(key), what, ": no '", key, "'");
    return value_or<T>(j, key, T{}, what);
}

inline void check_positive(std::int64_t v, const char* key, const std::string& what, std::int64_t limit = 1 << 20) {
    HYVIDEO_CHECK(v >= 1 && v <= limit, what, ": '", key, "' = ", v, " is outside [1, ", limit, "]");
}

}  // namespace text_config_detail

// transformers' LlamaConfig: the LLM of llava-llama-3-8b (HunyuanVideo's text_encoder).
struct LlamaConfig {
    std::int64_t hidden_size = 4096;
    std::int64_t intermediate_size = 14336;
    std::int64_t num_hidden_layers = 32;
    std::int64_t num_attention_heads = 32;
    std::int64_t num_key_value_heads = 8;
    std::int64_t head_dim = 128;
    std::int64_t vocab_size = 128320;
    float rms_norm_eps = 1e-5f;
    double rope_theta = 500000.0;

    // Reads a LlamaConfig (or a llava config's text_config); `what` names it in errors.
    static LlamaConfig from_json(const nlohmann::json& j, const std::string& what = "Llama config") {
        using namespace text_config_detail;
        LlamaConfig c;
        c.hidden_size = required<std::int64_t>(j, "hidden_size", what);
        c.intermediate_size = required<std::int64_t>(j, "intermediate_size", what);
        c.num_hidden_layers = required<std::int64_t>(j, "num_hidden_layers", what);
        c.num_attention_heads = required<std::int64_t>(j, "num_attention_heads", what);
        c.num_key_value_heads = value_or<std::int64_t>(j, "num_key_value_heads", c.num_attention_heads, what);
        c.vocab_size = required<std::int64_t>(j, "vocab_size", what);
        c.rms_norm_eps = value_or<float>(j, "rms_norm_eps", 1e-6f, what);
        c.rope_theta = value_or<double>(j, "rope_theta", 10000.0, what);
        check_positive(c.hidden_size, "hidden_size", what);
        check_positive(c.num_attention_heads, "num_attention_heads", what, 4096);
        c.head_dim = value_or<std::int64_t>(j, "head_dim", c.hidden_size / c.num_attention_heads, what);
        const std::string act = value_or<std::string>(j, "hidden_act", "silu", what);
        HYVIDEO_CHECK(act == "silu", what, ": hidden_act '", act, "' (only silu, Llama's, is supported)");
        HYVIDEO_CHECK(!value_or<bool>(j, "attention_bias", false, what), what,
                      ": attention_bias is true; Llama 3 has no attention biases");
        HYVIDEO_CHECK(!value_or<bool>(j, "mlp_bias", false, what), what, ": mlp_bias is true; Llama 3 has no MLP biases");
        if (j.contains("rope_scaling") && !j.at("rope_scaling").is_null())
            throw Error(what + ": rope_scaling " + j.at("rope_scaling").dump() +
                        " is not supported (llava-llama-3-8b has none)");
        c.validate(what);
        return c;
    }

    void validate(const std::string& what = "Llama config") const {
        using namespace text_config_detail;
        check_positive(hidden_size, "hidden_size", what);
        check_positive(intermediate_size, "intermediate_size", what);
        check_positive(num_hidden_layers, "num_hidden_layers", what, 1024);
        check_positive(num_attention_heads, "num_attention_heads", what, 4096);
        check_positive(num_key_value_heads, "num_key_value_heads", what, 4096);
        check_positive(head_dim, "head_dim", what, 4096);
        check_positive(vocab_size, "vocab_size", what, 1 << 24);
        HYVIDEO_CHECK(num_attention_heads % num_key_value_heads == 0, what, ": num_attention_heads ",
                      num_attention_heads, " is not a multiple of num_key_value_heads ", num_key_value_heads);
        HYVIDEO_CHECK(head_dim % 2 == 0, what, ": head_dim ", head_dim, " must be even for RoPE");
        HYVIDEO_CHECK(std::isfinite(rms_norm_eps) && rms_norm_eps > 0, what, ": rms_norm_eps ", rms_norm_eps,
                      " must be positive");
        HYVIDEO_CHECK(std::isfinite(rope_theta) && rope_theta > 1, what, ": rope_theta ", rope_theta,
                      " must be greater than 1");
    }
};

// transformers' CLIPTextConfig / CLIPVisionConfig: the transformer both towers share.
struct CLIPEncoderConfig {
    std::int64_t hidden_size = 768;
    std::int64_t intermediate_size = 3072;
    std::int64_t num_hidden_layers = 12;
    std::int64_t num_attention_heads = 12;
    float layer_norm_eps = 1e-5f;

    void read(const nlohmann::json& j, const std::string& what) {
        using namespace text_config_detail;
        hidden_size = value_or<std::int64_t>(j, "hidden_size", hidden_size, what);
        intermediate_size = value_or<std::int64_t>(j, "intermediate_size", intermediate_size, what);
        num_hidden_layers = value_or<std::int64_t>(j, "num_hidden_layers", num_hidden_layers, what);
        num_attention_heads = value_or<std::int64_t>(j, "num_attention_heads", num_attention_heads, what);
        layer_norm_eps = value_or<float>(j, "layer_norm_eps", layer_norm_eps, what);
        const std::string act = value_or<std::string>(j, "hidden_act", "quick_gelu", what);
        HYVIDEO_CHECK(act == "quick_gelu", what, ": hidden_act '", act, "' (CLIP-L uses quick_gelu)");
    }

    void validate(const std::string& what) const {
        using namespace text_config_detail;
        check_positive(hidden_size, "hidden_size", what);
        check_positive(intermediate_size, "intermediate_size", what);
        check_positive(num_hidden_layers, "num_hidden_layers", what, 1024);
        check_positive(num_attention_heads, "num_attention_heads", what, 4096);
        HYVIDEO_CHECK(hidden_size % num_attention_heads == 0, what, ": hidden_size ", hidden_size,
                      " is not a multiple of num_attention_heads ", num_attention_heads);
        HYVIDEO_CHECK(std::isfinite(layer_norm_eps) && layer_norm_eps > 0, what, ": layer_norm_eps ",
                      layer_norm_eps, " must be positive");
    }
    std::int64_t head_dim() const { return hidden_size / num_attention_heads; }
};

// CLIPTextConfig (text_encoder_2 = openai/clip-vit-large-patch14's text_config).
struct CLIPTextConfig : CLIPEncoderConfig {
    std::int64_t vocab_size = 49408;
    std::int64_t max_position_embeddings = 77;

    static CLIPTextConfig from_json(const nlohmann::json& j, const std::string& what = "CLIP text config") {
        using namespace text_config_detail;
        CLIPTextConfig c;
        c.read(j, what);
        c.vocab_size = value_or<std::int64_t>(j, "vocab_size", c.vocab_size, what);
        c.max_position_embeddings = value_or<std::int64_t>(j, "max_position_embeddings", c.max_position_embeddings, what);
        c.validate(what);
        return c;
    }
    void validate(const std::string& what = "CLIP text config") const {
        CLIPEncoderConfig::validate(what);
        text_config_detail::check_positive(vocab_size, "vocab_size", what, 1 << 24);
        text_config_detail::check_positive(max_position_embeddings, "max_position_embeddings", what, 1 << 16);
    }
};

// CLIPVisionConfig (the llava vision tower, ViT-L/14-336).
struct CLIPVisionConfig : CLIPEncoderConfig {
    std::int64_t image_size = 336;
    std::int64_t patch_size = 14;
    std::int64_t num_channels = 3;

    CLIPVisionConfig() {
        hidden_size = 1024;
        intermediate_size = 4096;
        num_hidden_layers = 24;
        num_attention_heads = 16;
    }

    static CLIPVisionConfig from_json(const nlohmann::json& j, const std::string& what = "CLIP vision config") {
        using namespace text_config_detail;
        CLIPVisionConfig c;
        c.read(j, what);
        c.image_size = value_or<std::int64_t>(j, "image_size", c.image_size, what);
        c.patch_size = value_or<std::int64_t>(j, "patch_size", c.patch_size, what);
        c.num_channels = value_or<std::int64_t>(j, "num_channels", c.num_channels, what);
        c.validate(what);
        return c;
    }
    void validate(const std::string& what = "CLIP vision config") const {
        CLIPEncoderConfig::validate(what);
        text_config_detail::check_positive(patch_size, "patch_size", what, 4096);
        text_config_detail::check_positive(image_size, "image_size", what, 16384);
        HYVIDEO_CHECK(num_channels == 3, what, ": num_channels ", num_channels, " (RGB images only)");
        HYVIDEO_CHECK(image_size % patch_size == 0, what, ": image_size ", image_size, " is not a multiple of patch_size ",
                      patch_size);
    }
    std::int64_t num_patches() const { return (image_size / patch_size) * (image_size / patch_size); }
};

// LlavaConfig (xtuner/llava-llama-3-8b-v1_1-transformers, HunyuanVideo-I2V's text_encoder_i2v).
struct LlavaConfig {
    LlamaConfig text_config;
    CLIPVisionConfig vision_config;
    std::int64_t vision_feature_layer = -2;
    std::int64_t image_token_index = 128257;
    std::int64_t pad_token_id = 128258;

    static LlavaConfig from_json(const nlohmann::json& j, const std::string& what = "llava config") {
        using namespace text_config_detail;
        HYVIDEO_CHECK(j.is_object() && j.contains("text_config") && j.contains("vision_config"), what,
                      ": a llava config has 'text_config' and 'vision_config'");
        LlavaConfig c;
        c.text_config = LlamaConfig::from_json(j.at("text_config"), what + " text_config");
        c.vision_config = CLIPVisionConfig::from_json(j.at("vision_config"), what + " vision_config");
        c.vision_feature_layer = value_or<std::int64_t>(j, "vision_feature_layer", -2, what);
        c.image_token_index = value_or<std::int64_t>(j, "image_token_index", 128257, what);
        c.pad_token_id = value_or<std::int64_t>(j, "pad_token_id", 128258, what);
        const std::string strategy = value_or<std::string>(j, "vision_feature_select_strategy", "default", what);
        HYVIDEO_CHECK(strategy == "default", what, ": vision_feature_select_strategy '", strategy,
                      "' (only 'default', which drops the CLS row, is supported)");
        const std::string act = value_or<std::string>(j, "projector_hidden_act", "gelu", what);
        HYVIDEO_CHECK(act == "gelu", what, ": projector_hidden_act '", act, "' (llava uses gelu)");
        HYVIDEO_CHECK(c.vision_feature_layer < 0 && -c.vision_feature_layer <= c.vision_config.num_hidden_layers + 1,
                      what, ": vision_feature_layer ", c.vision_feature_layer, " is not a layer of the ",
                      c.vision_config.num_hidden_layers, "-layer vision tower");
        return c;
    }
};

// The configurations as JSON under the same keys (what `hyvideo inspect --json` prints); reading the
// result back with from_json gives the same configuration.
inline nlohmann::json config_to_json(const LlamaConfig& c) {
    return {{"model_type", "llama"},
            {"hidden_size", c.hidden_size},
            {"intermediate_size", c.intermediate_size},
            {"num_hidden_layers", c.num_hidden_layers},
            {"num_attention_heads", c.num_attention_heads},
            {"num_key_value_heads", c.num_key_value_heads},
            {"head_dim", c.head_dim},
            {"vocab_size", c.vocab_size},
            {"rms_norm_eps", c.rms_norm_eps},
            {"rope_theta", c.rope_theta}};
}
inline nlohmann::json config_to_json(const CLIPEncoderConfig& c) {
    return {{"hidden_size", c.hidden_size},
            {"intermediate_size", c.intermediate_size},
            {"num_hidden_layers", c.num_hidden_layers},
            {"num_attention_heads", c.num_attention_heads},
            {"layer_norm_eps", c.layer_norm_eps}};
}
inline nlohmann::json config_to_json(const CLIPTextConfig& c) {
    nlohmann::json j = config_to_json(static_cast<const CLIPEncoderConfig&>(c));
    j["model_type"] = "clip_text_model";
    j["vocab_size"] = c.vocab_size;
    j["max_position_embeddings"] = c.max_position_embeddings;
    return j;
}
inline nlohmann::json config_to_json(const CLIPVisionConfig& c) {
    nlohmann::json j = config_to_json(static_cast<const CLIPEncoderConfig&>(c));
    j["model_type"] = "clip_vision_model";
    j["image_size"] = c.image_size;
    j["patch_size"] = c.patch_size;
    j["num_channels"] = c.num_channels;
    return j;
}
inline nlohmann::json config_to_json(const LlavaConfig& c) {
    return {{"model_type", "llava"},
            {"text_config", config_to_json(c.text_config)},
            {"vision_config", config_to_json(c.vision_config)},
            {"vision_feature_layer", c.vision_feature_layer},
            {"image_token_index", c.image_token_index},
            {"pad_token_id", c.pad_token_id}};
}

}  // namespace hyvideo
