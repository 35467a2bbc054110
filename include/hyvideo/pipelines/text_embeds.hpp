#pragma once
// The text-embeddings file of `hyvideo generate --text-embeds`: a safetensors file holding what the
// two text encoders produce for a prompt (and optionally a negative prompt), so that embeddings can be
// made once (`hyvideo encode-text`, or another program) and reused. docs/usage.md documents the format:
//
//   text_states              F32/BF16/F16 [1, L, text_states_dim]   LLM hidden states (layer −3)
//   text_mask                I64/BOOL/F32 [1, L]                    1 for valid tokens (a prefix)
//   text_states_2            F32/BF16/F16 [1, text_states_dim_2]    CLIP-L pooled output
//   negative_text_states     (optional, for --cfg-scale > 1) same shapes as the prompt's
//   negative_text_mask
//   negative_text_states_2
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hyvideo/io/safetensors.hpp"
#include "hyvideo/models/config.hpp"
#include "hyvideo/pipelines/hunyuan_video_pipeline.hpp"

namespace hyvideo {

struct TextEmbedsFile {
    PromptEmbeds prompt;
    std::optional<PromptEmbeds> negative;
};

namespace detail {
// The first non-finite value of an f32 tensor, as "[i, j, k] (value)", or nothing. A NaN or Inf in the
// text states would only surface as a NaN video after the whole sampling run.
inline std::optional<std::string> first_non_finite(const Tensor& t) {
    const Tensor f = t.contiguous();
    const auto v = f.span<const float>();
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (std::isfinite(v[i])) continue;
        // The multi-index, which locates the value in the file's [1, L, dim] tensor.
        std::vector<std::size_t> index(static_cast<std::size_t>(t.dim()));
        std::size_t rest = i;
        for (std::size_t d = index.size(); d-- > 0;) {
            const auto n = static_cast<std::size_t>(t.size(static_cast<std::int64_t>(d)));
            index[d] = rest % n;  // n > 0: the tensor holds element i
            rest /= n;
        }
        std::string at;
        for (std::size_t d = 0; d < index.size(); ++d) at += (d ? ", " : "") + std::to_string(index[d]);
        return detail::concat("[", at, "] (", v[i], ")");
    }
    return std::nullopt;
}

inline PromptEmbeds read_prompt_embeds(const SafetensorsFile& f, const std::string& prefix, const HYVideoConfig& c) {
    const std::string file = f.path().string();
    auto need = [&](const std::string& name) {
        HYVIDEO_CHECK(f.contains(prefix + name), file, ": missing tensor '", prefix + name, "'");
        return f.tensor(prefix + name);
    };
    PromptEmbeds e;
    const Tensor states = need("text_states"), mask = need("text_mask"), pooled = need("text_states_2");
    HYVIDEO_CHECK(states.dim() == 3 && states.size(0) == 1 && states.size(2) == c.text_states_dim, file, ": '",
                  prefix, "text_states' must be [1, L, ", c.text_states_dim, "], got ", shape_str(states.shape()));
    const std::int64_t L = states.size(1);
    HYVIDEO_CHECK(mask.shape() == (Shape{1, L}), file, ": '", prefix, "text_mask' must be [1, ", L, "], got ",
                  shape_str(mask.shape()));
    HYVIDEO_CHECK(pooled.shape() == (Shape{1, c.text_states_dim_2}), file, ": '", prefix, "text_states_2' must be [1, ",
                  c.text_states_dim_2, "], got ", shape_str(pooled.shape()));
    HYVIDEO_CHECK(is_floating(states.dtype()) && is_floating(pooled.dtype()), file, ": text states must be floats");
    e.text_states = states.to(DType::f32);
    e.text_states_2 = pooled.to(DType::f32);
    for (const auto& [name, t] : {std::pair<const char*, const Tensor&>{"text_states", e.text_states}, {"text_states_2", e.text_states_2}}) {
        const auto bad = first_non_finite(t);
        HYVIDEO_CHECK(!bad, file, ": '", prefix, name, "' holds a non-finite value at ", *bad);
    }
    // The mask is read as 0 or 1 exactly: anything else (a NaN, 0.5, 2) has no meaning the official
    // pipeline gives it, and would otherwise count as a valid token.
    const auto m = mask.to_vector();
    std::int64_t valid = 0;
    bool prefix_ok = true;
    for (std::int64_t i = 0; i < L; ++i) {
        const float v = m[static_cast<std::size_t>(i)];
        HYVIDEO_CHECK(v == 0.0f || v == 1.0f, file, ": '", prefix, "text_mask' must hold 0 or 1, got ", v, " at [0, ", i, "]");
        if (v == 1.0f) {
            prefix_ok = prefix_ok && valid == i;
            ++valid;
        }
    }
    HYVIDEO_CHECK(valid > 0, file, ": '", prefix, "text_mask' has no valid token");
    HYVIDEO_CHECK(prefix_ok, file, ": '", prefix, "text_mask' must mark a prefix of valid tokens (right padding)");
    std::vector<std::int64_t> mi(static_cast<std::size_t>(L));
    for (std::int64_t i = 0; i < L; ++i) mi[static_cast<std::size_t>(i)] = m[static_cast<std::size_t>(i)] == 1.0f;
    e.text_mask = Tensor::from_vector<std::int64_t>({1, L}, mi);
    return e;
}
}  // namespace detail

// Reads and checks the file against the model's text dimensions, refusing non-finite states and masks
// other than a prefix of ones; errors name the file, the tensor and, for values, the first bad index.
inline TextEmbedsFile read_text_embeds(const std::filesystem::path& path, const HYVideoConfig& c) {
    const SafetensorsFile f = SafetensorsFile::open(path);
    TextEmbedsFile out;
    out.prompt = detail::read_prompt_embeds(f, "", c);
    const bool any_negative = f.contains("negative_text_states") || f.contains("negative_text_mask") ||
                              f.contains("negative_text_states_2");
    if (any_negative) out.negative = detail::read_prompt_embeds(f, "negative_", c);
    for (const auto& name : f.names()) {
        const bool known = name == "text_states" || name == "text_mask" || name == "text_states_2" ||
                           name == "negative_text_states" || name == "negative_text_mask" ||
                           name == "negative_text_states_2";
        HYVIDEO_CHECK(known, path.string(), ": unexpected tensor '", name,
                      "' (expected text_states, text_mask, text_states_2 and optional negative_* ones)");
    }
    return out;
}

// Writes the file read_text_embeds reads: float32 states, int64 masks; `metadata` (the prompts, the
// encoders) goes into the header. The file appears only once it is complete (save_safetensors).
inline void write_text_embeds(const std::filesystem::path& path, const TextEmbedsFile& embeds,
                              const std::map<std::string, std::string>& metadata = {}) {
    std::vector<std::pair<std::string, Tensor>> tensors;
    auto add = [&](const std::string& prefix, const PromptEmbeds& e) {
        tensors.emplace_back(prefix + "text_states", e.text_states.to(DType::f32).contiguous());
        tensors.emplace_back(prefix + "text_mask", e.text_mask.to(DType::i64).contiguous());
        tensors.emplace_back(prefix + "text_states_2", e.text_states_2.to(DType::f32).contiguous());
    };
    add("", embeds.prompt);
    if (embeds.negative) add("negative_", *embeds.negative);
    save_safetensors(path, tensors, metadata);
}

}  // namespace hyvideo
