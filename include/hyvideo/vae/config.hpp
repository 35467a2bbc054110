#pragma once
// AutoencoderKLCausal3D hyper-parameters under the official config.json keys, the released
// "884-16c-hy" preset (SPEC §7), and what follows from them: the per-block down/up sampling factors
// and the tile sizes.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyvideo/core/error.hpp"

namespace hyvideo {

struct AutoencoderKLCausal3DConfig {
    std::int64_t in_channels = 3;
    std::int64_t out_channels = 3;
    std::vector<std::string> down_block_types = std::vector<std::string>(4, "DownEncoderBlockCausal3D");
    std::vector<std::string> up_block_types = std::vector<std::string>(4, "UpDecoderBlockCausal3D");
    std::vector<std::int64_t> block_out_channels{128, 256, 512, 512};
    std::int64_t layers_per_block = 2;
    std::string act_fn = "silu";
    std::int64_t latent_channels = 16;
    std::int64_t norm_num_groups = 32;
    std::int64_t sample_size = 256;   // the spatial tile of tiled encode/decode, in pixels
    std::int64_t sample_tsize = 64;   // the temporal tile, in frames
    double scaling_factor = 0.476986;
    std::int64_t time_compression_ratio = 4;
    std::int64_t spatial_compression_ratio = 8;
    bool mid_block_add_attention = true;

    // The released VAE of HunyuanVideo (T2V and I2V): 246,478,803 parameters.
    static AutoencoderKLCausal3DConfig preset(const std::string& name) {
        HYVIDEO_CHECK(name == "884-16c-hy", "unknown VAE preset '", name, "' (884-16c-hy)");
        return {};
    }

    // Blocks that halve H and W: the first log2(spatial ratio). Blocks that halve T: the
    // log2(time ratio) blocks before the last (official EncoderCausal3D / DecoderCausal3D); the
    // decoder's up block i mirrors the encoder's down block i.
    bool spatial_sampling(std::size_t block) const {
        return static_cast<std::int64_t>(block) < log2_exact(spatial_compression_ratio, "spatial_compression_ratio");
    }
    bool temporal_sampling(std::size_t block) const {
        const auto n = static_cast<std::int64_t>(block_out_channels.size());
        const auto i = static_cast<std::int64_t>(block);
        return i >= n - 1 - log2_exact(time_compression_ratio, "time_compression_ratio") && i != n - 1;
    }
    std::array<std::int64_t, 3> sampling_factor(std::size_t block) const {
        const std::int64_t s = spatial_sampling(block) ? 2 : 1;
        return {temporal_sampling(block) ? 2 : 1, s, s};
    }

    // Throws with the offending values when the configuration cannot describe this model.
    void validate() const {
        const auto n = static_cast<std::int64_t>(block_out_channels.size());
        HYVIDEO_CHECK(n >= 1, "block_out_channels is empty");
        HYVIDEO_CHECK(static_cast<std::int64_t>(down_block_types.size()) == n &&
                          static_cast<std::int64_t>(up_block_types.size()) == n,
                      "down_block_types and up_block_types need one entry per block_out_channels (", n, ")");
        for (const auto& t : down_block_types)
            HYVIDEO_CHECK(t == "DownEncoderBlockCausal3D", "down block type '", t, "' is not supported");
        for (const auto& t : up_block_types)
            HYVIDEO_CHECK(t == "UpDecoderBlockCausal3D", "up block type '", t, "' is not supported");
        HYVIDEO_CHECK(act_fn == "silu", "act_fn '", act_fn, "' is not supported (silu)");
        HYVIDEO_CHECK(in_channels >= 1 && out_channels >= 1 && latent_channels >= 1 && layers_per_block >= 1,
                      "channel counts and layers_per_block must be positive");
        for (auto c : block_out_channels)
            HYVIDEO_CHECK(c >= 1 && c % norm_num_groups == 0, "block_out_channels entry ", c,
                          " does not split into norm_num_groups = ", norm_num_groups);
        // The official model supports exactly this temporal ratio (its constructor raises otherwise).
        HYVIDEO_CHECK(time_compression_ratio == 4, "time_compression_ratio must be 4, got ", time_compression_ratio);
        HYVIDEO_CHECK(log2_exact(spatial_compression_ratio, "spatial_compression_ratio") < n &&
                          log2_exact(time_compression_ratio, "time_compression_ratio") < n,
                      "the compression ratios need more blocks than ", n);
        HYVIDEO_CHECK(sample_size % spatial_compression_ratio == 0 && sample_size > 0, "sample_size ", sample_size,
                      " must be a positive multiple of ", spatial_compression_ratio);
        HYVIDEO_CHECK(sample_tsize % time_compression_ratio == 0 && sample_tsize > 0, "sample_tsize ", sample_tsize,
                      " must be a positive multiple of ", time_compression_ratio);
    }

    // Reads the keys present in j over the defaults of the official constructor (keys of other
    // tools, like "_class_name" or "force_upcast", are ignored).
    static AutoencoderKLCausal3DConfig from_json(const nlohmann::json& j) {
        AutoencoderKLCausal3DConfig c;
        // The official class defaults where the released config.json relies on them.
        c.block_out_channels = {64};
        c.down_block_types = {"DownEncoderBlockCausal3D"};
        c.up_block_types = {"UpDecoderBlockCausal3D"};
        c.layers_per_block = 1;
        c.latent_channels = 4;
        c.sample_size = 32;
        c.scaling_factor = 0.18215;
        return from_json(j, c);
    }
    static AutoencoderKLCausal3DConfig from_json(const nlohmann::json& j, AutoencoderKLCausal3DConfig c) {
        try {
            auto get = [&](const char* key, auto& field) {
                if (j.contains(key) && !j.at(key).is_null())
                    field = j.at(key).get<std::remove_reference_t<decltype(field)>>();
            };
            get("in_channels", c.in_channels);
            get("out_channels", c.out_channels);
            get("down_block_types", c.down_block_types);
            get("up_block_types", c.up_block_types);
            get("block_out_channels", c.block_out_channels);
            get("layers_per_block", c.layers_per_block);
            get("act_fn", c.act_fn);
            get("latent_channels", c.latent_channels);
            get("norm_num_groups", c.norm_num_groups);
            get("sample_size", c.sample_size);
            get("sample_tsize", c.sample_tsize);
            get("scaling_factor", c.scaling_factor);
            get("time_compression_ratio", c.time_compression_ratio);
            get("spatial_compression_ratio", c.spatial_compression_ratio);
            get("mid_block_add_attention", c.mid_block_add_attention);
        } catch (const nlohmann::json::exception& e) {
            throw Error(std::string("VAE config: ") + e.what());
        }
        c.validate();
        return c;
    }

    nlohmann::json to_json() const {
        return {{"in_channels", in_channels},
                {"out_channels", out_channels},
                {"down_block_types", down_block_types},
                {"up_block_types", up_block_types},
                {"block_out_channels", block_out_channels},
                {"layers_per_block", layers_per_block},
                {"act_fn", act_fn},
                {"latent_channels", latent_channels},
                {"norm_num_groups", norm_num_groups},
                {"sample_size", sample_size},
                {"sample_tsize", sample_tsize},
                {"scaling_factor", scaling_factor},
                {"time_compression_ratio", time_compression_ratio},
                {"spatial_compression_ratio", spatial_compression_ratio},
                {"mid_block_add_attention", mid_block_add_attention}};
    }

private:
    static std::int64_t log2_exact(std::int64_t v, const char* what) {
        std::int64_t k = 0;
        while ((std::int64_t{1} << k) < v) ++k;
        HYVIDEO_CHECK(v >= 1 && (std::int64_t{1} << k) == v, what, " must be a power of two, got ", v);
        return k;
    }
};

}  // namespace hyvideo
