#pragma once
// A VAE's configuration from its weights (docs/checkpoints.md): the sizes and which blocks sample from
// the stored shapes, the rest from a config.json (official or diffusers keys) or the 884-16c-hy preset.
// And the check of a configuration the user gave against the weights, before any model is built.
#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyvideo/core/config_guess.hpp"
#include "hyvideo/core/error.hpp"
#include "hyvideo/core/tensor.hpp"
#include "hyvideo/core/weight_source.hpp"
#include "hyvideo/vae/config.hpp"

namespace hyvideo {

// What the stored shapes alone say about a VAE, with which blocks have a down/up sampler, and which
// parts are stored.
struct VaeShapes {
    AutoencoderKLCausal3DConfig config;
    std::vector<bool> sampled;  // per block (encoder order)
    bool encoder = false;       // in_channels is known
    bool decoder_out = false;   // out_channels is known
};

inline VaeShapes vae_shapes(const ShapeLookup& shape) {
    VaeShapes out;
    AutoencoderKLCausal3DConfig& c = out.config;
    // Every VAE tensor read here is a Conv3d kernel [out, in, t, h, w]; its rank is checked before use.
    const auto need = [&](const std::string& name) {
        const auto s = shape(name);
        HYVIDEO_CHECK(s, "not a complete HunyuanVideo VAE: no ", name);
        HYVIDEO_CHECK(s->size() == 5, name, " has shape ", shape_str(*s), ", not a Conv3d kernel");
        return *s;
    };
    const auto enc = [](std::int64_t i, const std::string& rest) { return "encoder.down_blocks." + std::to_string(i) + "." + rest; };
    const auto dec = [](std::int64_t i, const std::string& rest) { return "decoder.up_blocks." + std::to_string(i) + "." + rest; };
    const std::int64_t blocks = detail::count_blocks(shape, [&](auto i) { return enc(i, "resnets.0.conv1.conv.weight"); });
    const std::int64_t up_blocks = detail::count_blocks(shape, [&](auto i) { return dec(i, "resnets.0.conv1.conv.weight"); });
    c.block_out_channels.clear();
    if (blocks > 0) {
        for (std::int64_t i = 0; i < blocks; ++i) {
            c.block_out_channels.push_back(need(enc(i, "resnets.0.conv1.conv.weight"))[0]);
            out.sampled.push_back(shape(enc(i, "downsamplers.0.conv.conv.weight")).has_value());
        }
        c.layers_per_block = detail::count_blocks(shape, [&](auto j) { return enc(0, "resnets." + std::to_string(j) + ".conv1.conv.weight"); });
        c.in_channels = need("encoder.conv_in.conv.weight")[1];
        const std::int64_t moments = need("encoder.conv_out.conv.weight")[0];
        HYVIDEO_CHECK(moments % 2 == 0, "encoder.conv_out.conv.weight has ", moments,
                      " output channels, not a latent's mean and log-variance (an even number)");
        c.latent_channels = moments / 2;
        out.encoder = true;
    } else {
        // A decoder-only file: the decoder's blocks mirror the encoder's, with one more resnet each; up
        // block i samples where down block i would.
        for (std::int64_t i = up_blocks; i-- > 0;) c.block_out_channels.push_back(need(dec(i, "resnets.0.conv1.conv.weight"))[0]);
        for (std::int64_t i = 0; i < up_blocks; ++i) out.sampled.push_back(shape(dec(i, "upsamplers.0.conv.conv.weight")).has_value());
        c.layers_per_block = detail::count_blocks(shape, [&](auto j) { return dec(0, "resnets." + std::to_string(j) + ".conv1.conv.weight"); }) - 1;
        c.latent_channels = need("decoder.conv_in.conv.weight")[1];
    }
    HYVIDEO_CHECK(!c.block_out_channels.empty(), "not a HunyuanVideo VAE: no encoder.down_blocks or decoder.up_blocks");
    if (shape("decoder.conv_out.conv.weight").has_value()) {
        c.out_channels = need("decoder.conv_out.conv.weight")[0];
        out.decoder_out = true;
    }
    c.down_block_types.assign(c.block_out_channels.size(), "DownEncoderBlockCausal3D");
    c.up_block_types.assign(c.block_out_channels.size(), "UpDecoderBlockCausal3D");
    c.mid_block_add_attention = shape("decoder.mid_block.attentions.0.to_q.weight").has_value() ||
                                shape("encoder.mid_block.attentions.0.to_q.weight").has_value();
    // The blocks that sample in time (two in the released 4× model) also sample in space in the
    // official layout, so the samplers count the spatial halvings; check_vae_sampling verifies it.
    const auto sampling = std::count(out.sampled.begin(), out.sampled.end(), true);
    c.spatial_compression_ratio = std::int64_t{1} << std::min<std::int64_t>(sampling, 30);
    return out;
}

// Throws unless the blocks that sample in `c` are the blocks that hold a sampler in the weights.
inline void check_vae_sampling(const AutoencoderKLCausal3DConfig& c, const std::vector<bool>& sampled) {
    for (std::size_t i = 0; i < sampled.size() && i < c.block_out_channels.size(); ++i) {
        const bool samples = c.sampling_factor(i) != std::array<std::int64_t, 3>{1, 1, 1};
        HYVIDEO_CHECK(samples == sampled[i], "spatial_compression_ratio ", c.spatial_compression_ratio,
                      " and time_compression_ratio ", c.time_compression_ratio, " give block ", i,
                      samples ? " a sampler, which the weights do not have" : " no sampler, but the weights have one",
                      " (encoder.down_blocks.", i, ".downsamplers.0 / decoder.up_blocks.", i, ".upsamplers.0)");
    }
}

// The configuration: the sizes from the shapes, the rest from `json` (named `json_name` in errors) when
// given, else from the 884-16c-hy preset (complete only when the sizes are the released model's).
inline ConfigGuess<AutoencoderKLCausal3DConfig> infer_vae_config(const ShapeLookup& shape, const nlohmann::json* json,
                                                                             const std::string& json_name = "config.json") {
    ConfigGuess<AutoencoderKLCausal3DConfig> g;
    const VaeShapes sizes = vae_shapes(shape);
    g.config = sizes.config;
    AutoencoderKLCausal3DConfig& c = g.config;

    const AutoencoderKLCausal3DConfig preset = AutoencoderKLCausal3DConfig::preset("884-16c-hy");
    if (json != nullptr) {
        // Refuses a non-object or a too deep document before the copy below recurses into it.
        const config_detail::JsonFields f(*json, json_name);
        nlohmann::json j = *json;
        if (detail::is_diffusers_json(j) && j.contains("temporal_compression_ratio"))
            j["time_compression_ratio"] = j["temporal_compression_ratio"];  // diffusers' spelling
        // The weights' shapes decide the sizes; config.json adds what shapes cannot say.
        for (const char* key : {"block_out_channels", "layers_per_block", "latent_channels", "in_channels",
                                "out_channels", "down_block_types", "up_block_types", "mid_block_add_attention"}) {
            if (j.contains(key) && key == std::string_view("block_out_channels") && j[key] != nlohmann::json(c.block_out_channels))
                g.notes.push_back(json_name + "'s block_out_channels disagree with the weights; the weights win");
            j.erase(key);
        }
        c = AutoencoderKLCausal3DConfig::from_json(j, c, json_name);
        g.notes.push_back(j.contains("sample_size") ? "norm_num_groups, tile sizes and scaling_factor from " + json_name
                                                    : "norm_num_groups and scaling_factor from " + json_name +
                                                          "; tile sizes from the 884-16c-hy preset (diffusers' config has none)");
    } else {
        // Not stored in the weights: the preset's 32 where every block splits into 32 groups, else the
        // largest power of two that divides them all, so that the guess is at least a valid config.
        c.norm_num_groups = preset.norm_num_groups;
        for (auto ch : c.block_out_channels)
            while (c.norm_num_groups > 1 && ch % c.norm_num_groups != 0) c.norm_num_groups /= 2;
        c.sample_size = preset.sample_size;
        c.sample_tsize = preset.sample_tsize;
        c.scaling_factor = preset.scaling_factor;
        const bool released = c.block_out_channels == preset.block_out_channels && c.latent_channels == preset.latent_channels;
        g.notes.push_back(released ? "norm_num_groups, tile sizes and scaling_factor from the 884-16c-hy preset"
                                   : detail::concat("norm_num_groups (", c.norm_num_groups,
                                                    "), tile sizes and scaling_factor are not stored in the weights and "
                                                    "were assumed: give a config.json"));
        g.complete = released;
    }
    detail::check_inferred(
        [&] {
            c.validate();
            check_vae_sampling(c, sizes.sampled);
        },
        json, json_name);
    return g;
}

inline ConfigGuess<AutoencoderKLCausal3DConfig> infer_vae_config(const WeightSource& w, const nlohmann::json* json = nullptr) {
    return infer_vae_config(shapes_of(w), json);
}

// Checks a configuration the user gave against the weights: validate(), then every field the shapes
// determine, which blocks sample included. Throws naming the first field that disagrees.
inline void check_vae_config(const AutoencoderKLCausal3DConfig& c, const ShapeLookup& shape) {
    c.validate();
    const VaeShapes sizes = vae_shapes(shape);
    const AutoencoderKLCausal3DConfig& w = sizes.config;
    const char* blocks = sizes.encoder ? "encoder.down_blocks.<i>.resnets.0.conv1.conv.weight"
                                       : "decoder.up_blocks.<i>.resnets.0.conv1.conv.weight";
    const detail::ConfigComparison same;
    same("block_out_channels", c.block_out_channels, w.block_out_channels, blocks)
        ("layers_per_block", c.layers_per_block, w.layers_per_block,
         sizes.encoder ? "encoder.down_blocks.0.resnets.<j>" : "decoder.up_blocks.0.resnets.<j>")
        ("latent_channels", c.latent_channels, w.latent_channels,
         sizes.encoder ? "encoder.conv_out.conv.weight" : "decoder.conv_in.conv.weight")
        ("mid_block_add_attention", c.mid_block_add_attention, w.mid_block_add_attention, "*.mid_block.attentions.0");
    if (sizes.encoder) same("in_channels", c.in_channels, w.in_channels, "encoder.conv_in.conv.weight");
    if (sizes.decoder_out) same("out_channels", c.out_channels, w.out_channels, "decoder.conv_out.conv.weight");
    check_vae_sampling(c, sizes.sampled);
}

}  // namespace hyvideo
