#pragma once
// What inferring a model's configuration from its weights needs, whatever the model: the stored shapes
// by name (ShapeLookup: no tensor is read, assembled or dequantised to size a model), the result with
// notes on what the weights did not decide (ConfigGuess), and the comparison of a given configuration
// against the weights' (ConfigComparison). Each model's inference sits beside its configuration
// (models/config_from_weights.hpp, vae/config_from_weights.hpp).
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyvideo/core/config_fields.hpp"
#include "hyvideo/core/error.hpp"
#include "hyvideo/core/tensor.hpp"
#include "hyvideo/core/weight_source.hpp"

namespace hyvideo {

template <class Config>
struct ConfigGuess {
    Config config;
    bool complete = true;            // false: a value the weights do not determine had to be assumed
    std::vector<std::string> notes;  // where each value not read from the weights came from
};

// A tensor's shape by its official name; nullopt where there is no such tensor.
using ShapeLookup = std::function<std::optional<Shape>(const std::string&)>;

// The shapes of any source of official names (a golden fixture's params, a test's tensors), read
// without reading, assembling or dequantising a tensor. `w` must outlive the lookup.
inline ShapeLookup shapes_of(const WeightSource& w) {
    return [&w](const std::string& name) -> std::optional<Shape> {
        if (!w.contains(name)) return std::nullopt;
        return w.shape(name);
    };
}

namespace detail {

// How many of name(0), name(1), ... exist, counting from 0 until the first gap.
template <class Lookup, class F>
std::int64_t count_blocks(const Lookup& shape, F name) {
    std::int64_t n = 0;
    while (shape(name(n))) ++n;
    return n;
}

inline std::string bool_text(bool b) { return b ? "true" : "false"; }

// Whether a config.json was written by diffusers (its keys differ from the official ones).
inline bool is_diffusers_json(const nlohmann::json& j) {
    return j.contains("_diffusers_version") ||
           (j.contains("_class_name") && j["_class_name"].is_string() &&
            (j["_class_name"] == "HunyuanVideoTransformer3DModel" || j["_class_name"] == "AutoencoderKLHunyuanVideo"));
}

// Runs `check` on a configuration inferred from weights (and `json`, when given), naming both sources
// in any error it throws.
template <class F>
void check_inferred(F&& check, const nlohmann::json* json, const std::string& json_name) {
    try {
        check();
    } catch (const Error& e) {
        throw Error(concat("the configuration from the weights", json ? " and " + json_name : std::string(), " is not valid: ",
                           e.what()));
    }
}

// "the given config's <field> <given> disagrees with the weights' <stored> (<tensor>)", for the first
// field that differs.
struct ConfigComparison {
    template <class T>
    const ConfigComparison& operator()(const char* field, const T& given, const T& stored, const std::string& tensor) const {
        if (given == stored) return *this;
        if constexpr (std::is_same_v<T, bool>)
            throw Error(concat("the given config's ", field, " ", bool_text(given), " disagrees with the weights' ",
                               bool_text(stored), " (", tensor, ")"));
        else if constexpr (std::is_same_v<T, std::string>)
            throw Error(concat("the given config's ", field, " ", config_detail::string_text(given), " disagrees with the weights' ",
                               config_detail::string_text(stored), " (", tensor, ")"));
        else if constexpr (std::is_integral_v<T>)
            throw Error(concat("the given config's ", field, " ", given, " disagrees with the weights' ", stored, " (", tensor, ")"));
        else
            throw Error(concat("the given config's ", field, " ", nlohmann::json(given).dump(), " disagrees with the weights' ",
                               nlohmann::json(stored).dump(), " (", tensor, ")"));
    }
};

}  // namespace detail

}  // namespace hyvideo
