#pragma once
// Which HunyuanVideo models a checkpoint's names hold: each found by an anchor tensor (img_in.proj.weight
// for the official DiT, x_embedder.proj.weight for diffusers', decoder/encoder.conv_in.conv.weight for
// the VAE); whatever precedes the anchor is the model's prefix.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hyvideo {

enum class ModelKind : std::uint8_t { dit, vae };
enum class NameScheme : std::uint8_t { official, diffusers };

inline std::string_view model_kind_name(ModelKind k) { return k == ModelKind::dit ? "DiT" : "VAE"; }

// A model found among raw names: its kind, naming and prefix.
struct ModelLocation {
    ModelKind kind;
    NameScheme scheme;
    std::string prefix;

    bool operator==(const ModelLocation&) const = default;
};

// Every model whose anchor tensor appears among `names`, ordered by prefix.
inline std::vector<ModelLocation> find_models(const std::vector<std::string>& names) {
    static const std::pair<std::string_view, ModelLocation> anchors[] = {
        {"img_in.proj.weight", {ModelKind::dit, NameScheme::official, ""}},
        {"x_embedder.proj.weight", {ModelKind::dit, NameScheme::diffusers, ""}},
        {"decoder.conv_in.conv.weight", {ModelKind::vae, NameScheme::official, ""}},
        {"encoder.conv_in.conv.weight", {ModelKind::vae, NameScheme::official, ""}},
    };
    std::vector<ModelLocation> out;
    for (const auto& name : names)
        for (const auto& [anchor, loc] : anchors) {
            if (!name.ends_with(anchor)) continue;
            std::string prefix = name.substr(0, name.size() - anchor.size());
            if (!prefix.empty() && prefix.back() != '.') continue;  // "xdecoder.conv_in..." is no anchor
            ModelLocation found = loc;
            found.prefix = std::move(prefix);
            if (std::find(out.begin(), out.end(), found) == out.end()) out.push_back(found);
        }
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.prefix < b.prefix; });
    return out;
}

}  // namespace hyvideo
