#pragma once
// Strict reading of configuration documents (a --dit-config, a config.json beside downloaded weights, a
// safetensors file's metadata, a text encoder's config): the files were not written by the toolkit, so a
// value of the wrong JSON type, a float or an out-of-range number for an integer, or a document that is
// not an object is refused with one hyvideo::Error naming the input and the key, never converted. The
// bounds here are shared by every model's configuration.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyvideo/core/error.hpp"

namespace hyvideo {

namespace config_detail {

// Bounds shared by the DiT's and the VAE's configurations. The largest released models use a width
// of 3072, 16 latent channels, patches of 2, 60 blocks and 13e9 parameters; each bound leaves two or
// more orders of magnitude above that, and the parameter bound keeps every count below 2^40.
inline constexpr std::int64_t max_width = std::int64_t{1} << 20;     // hidden sizes, text dims, MLP widths
inline constexpr std::int64_t max_channels = std::int64_t{1} << 16;  // image/latent/VAE channels
inline constexpr std::int64_t max_patch = 64;
inline constexpr std::int64_t max_depth = 4096;                      // blocks of one kind
inline constexpr long double max_parameters = 1e12L;
// JSON configurations are a few levels deep; deeper documents are refused before anything recurses
// into them (copying or printing a json value recurses once per level).
inline constexpr int max_json_depth = 32;

// A value for an error message: short, one line, never recursing into a deep document.
inline std::string json_text(const nlohmann::json& v) {
    constexpr std::size_t max_chars = 80;
    std::string s;
    if (v.is_array()) {
        bool flat = v.size() <= 16;
        for (const auto& e : v) flat = flat && e.is_primitive();
        s = flat ? v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                 : "an array of " + std::to_string(v.size()) + " entries";
    } else if (v.is_object()) {
        s = "an object";
    } else {
        s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
    if (s.size() > max_chars) s = s.substr(0, max_chars) + "...";
    return s;
}

// A string from the input for an error message: cut short, and with control characters escaped so
// that the message stays one line.
inline std::string string_text(std::string_view s) {
    constexpr std::size_t max_chars = 64;
    constexpr char hex[] = "0123456789abcdef";
    std::string out = "'";
    for (std::size_t i = 0; i < s.size() && i < max_chars; ++i) {
        const auto ch = static_cast<unsigned char>(s[i]);
        if (ch < 0x20 || ch == 0x7f) out += {'\\', 'x', hex[ch >> 4], hex[ch & 15]};
        else out += s[i];
    }
    return out + (s.size() > max_chars ? "...'" : "'");
}

// Whether `j` nests no deeper than `limit` containers, checked without recursion.
inline bool within_depth(const nlohmann::json& j, int limit) {
    std::vector<std::pair<const nlohmann::json*, int>> todo{{&j, 1}};
    while (!todo.empty()) {
        const auto [v, depth] = todo.back();
        todo.pop_back();
        if (!v->is_structured()) continue;
        if (depth > limit) return false;
        for (const auto& e : *v)
            if (e.is_structured()) todo.emplace_back(&e, depth + 1);
    }
    return true;
}

// Reads the typed fields of one JSON object. Every error names `what` (the input) and the key; a key
// that is absent or null leaves its field as it was (the official configs write None as null).
class JsonFields {
public:
    JsonFields(const nlohmann::json& j, std::string what) : j_(j), what_(std::move(what)) {
        HYVIDEO_CHECK(j_.is_object(), what_, " is not a JSON object (got ", json_text(j_), ")");
        HYVIDEO_CHECK(within_depth(j_, max_json_depth), what_, " nests deeper than ", max_json_depth, " levels");
    }

    const nlohmann::json* find(const char* key) const {
        const auto it = j_.find(key);
        return it == j_.end() || it->is_null() ? nullptr : &*it;
    }
    bool has(const char* key) const { return find(key) != nullptr; }

    void integer(const char* key, std::int64_t& field, std::int64_t lo, std::int64_t hi) const {
        const nlohmann::json* v = find(key);
        if (v == nullptr) return;
        if (const auto x = as_integer(*v, lo, hi)) {
            field = *x;
            return;
        }
        fail(key, detail::concat("must be an integer in [", lo, ", ", hi, "]"), *v);
    }
    // Any finite JSON number; what range the field needs is validate()'s to say.
    void real(const char* key, double& field) const {
        const nlohmann::json* v = find(key);
        if (v == nullptr) return;
        if (!v->is_number() || !std::isfinite(v->get<double>())) fail(key, "must be a finite number", *v);
        field = v->get<double>();
    }
    void real(const char* key, float& field) const {
        const nlohmann::json* v = find(key);
        if (v == nullptr) return;
        // Beyond the range the value would become Inf; below it, a non-zero value would become 0.
        const double x = v->is_number() ? v->get<double>() : 0.0;
        if (!v->is_number() || !(std::abs(x) <= std::numeric_limits<float>::max()) ||
            (x != 0.0 && static_cast<float>(x) == 0.0f))
            fail(key, "must be a finite number within the range of a float", *v);
        field = static_cast<float>(x);
    }
    void boolean(const char* key, bool& field) const {
        const nlohmann::json* v = find(key);
        if (v == nullptr) return;
        if (!v->is_boolean()) fail(key, "must be true or false", *v);
        field = v->get<bool>();
    }
    void string(const char* key, std::string& field) const {
        const nlohmann::json* v = find(key);
        if (v == nullptr) return;
        if (!v->is_string()) fail(key, "must be a string", *v);
        field = v->get<std::string>();
    }
    // One of an enumeration's spellings: `parse` maps a string to the value (nullopt: no such choice),
    // `rule` says which spellings there are.
    template <class E, class Parse>
    void choice(const char* key, E& field, Parse parse, const char* rule) const {
        const nlohmann::json* v = find(key);
        if (v == nullptr) return;
        const std::optional<E> parsed = v->is_string() ? parse(v->get<std::string>()) : std::nullopt;
        if (!parsed) fail(key, rule, *v);
        field = *parsed;
    }
    // A list of between min_count and max_count integers, each in [lo, hi].
    void integers(const char* key, std::vector<std::int64_t>& field, std::size_t min_count, std::size_t max_count,
                  std::int64_t lo, std::int64_t hi) const {
        const nlohmann::json* v = find(key);
        if (v == nullptr) return;
        std::vector<std::int64_t> out;
        bool ok = v->is_array() && v->size() >= min_count && v->size() <= max_count;
        for (std::size_t i = 0; ok && i < v->size(); ++i) {
            const auto x = as_integer((*v)[i], lo, hi);
            ok = x.has_value();
            if (ok) out.push_back(*x);
        }
        if (!ok) {
            if (min_count == max_count)
                fail(key, detail::concat("must be a list of ", min_count, " integers in [", lo, ", ", hi, "]"), *v);
            fail(key, detail::concat("must be a list of ", min_count, " to ", max_count, " integers in [", lo, ", ", hi, "]"), *v);
        }
        field = std::move(out);
    }
    template <std::size_t N>
    void integers(const char* key, std::array<std::int64_t, N>& field, std::int64_t lo, std::int64_t hi) const {
        std::vector<std::int64_t> v(field.begin(), field.end());
        integers(key, v, N, N, lo, hi);
        std::copy(v.begin(), v.end(), field.begin());
    }
    void strings(const char* key, std::vector<std::string>& field, std::size_t max_count) const {
        const nlohmann::json* v = find(key);
        if (v == nullptr) return;
        bool ok = v->is_array() && v->size() <= max_count;
        for (std::size_t i = 0; ok && i < v->size(); ++i) ok = (*v)[i].is_string();
        if (!ok) fail(key, detail::concat("must be a list of at most ", max_count, " strings"), *v);
        field = v->get<std::vector<std::string>>();
    }

    const std::string& what() const { return what_; }

    // "<what>: '<key>' <rule>, got <value>".
    [[noreturn]] void fail(const char* key, const std::string& rule, const nlohmann::json& got) const {
        throw Error(detail::concat(what_, ": '", key, "' ", rule, ", got ", json_text(got)));
    }

private:
    // An integer of JSON in [lo, hi] (lo >= 0 or not, hi >= 0); floats (even 16.0) are not integers.
    static std::optional<std::int64_t> as_integer(const nlohmann::json& v, std::int64_t lo, std::int64_t hi) {
        if (v.is_number_unsigned()) {
            const auto u = v.get<std::uint64_t>();
            if (hi >= 0 && u <= static_cast<std::uint64_t>(hi) && static_cast<std::int64_t>(u) >= lo)
                return static_cast<std::int64_t>(u);
        } else if (v.is_number_integer()) {
            const auto s = v.get<std::int64_t>();
            if (s >= lo && s <= hi) return s;
        }
        return std::nullopt;
    }

    const nlohmann::json& j_;
    std::string what_;
};

}  // namespace config_detail

}  // namespace hyvideo
