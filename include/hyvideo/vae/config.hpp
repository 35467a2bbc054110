#pragma once
// AutoencoderKLCausal3D hyper-parameters under the official config.json keys, the released "884-16c-hy"
// preset (docs/model.md#vae-configuration), and what follows from them: the per-block down/up sampling
// factors and the tile sizes. Read as strictly as the DiT's configuration (models/config.hpp): every
// key's type and range is checked, and validate() bounds every size and divisor.
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyvideo/core/config_fields.hpp"
#include "hyvideo/core/error.hpp"
#include "hyvideo/io/json_file.hpp"

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

    // Throws, naming the parameter and its value, when the configuration cannot describe this model or
    // describes one larger than config_detail's bounds. Every divisor and ratio is checked before it
    // is used.
    void validate() const {
        using namespace config_detail;
        const auto in_range = [](const char* name, std::int64_t v, std::int64_t lo, std::int64_t hi) {
            HYVIDEO_CHECK(v >= lo && v <= hi, "VAE config: ", name, " must be in [", lo, ", ", hi, "], got ", v);
        };
        const auto n = static_cast<std::int64_t>(block_out_channels.size());
        HYVIDEO_CHECK(n >= 1 && n <= max_blocks, "VAE config: block_out_channels must have 1 to ", max_blocks, " entries, got ", n);
        HYVIDEO_CHECK(static_cast<std::int64_t>(down_block_types.size()) == n &&
                          static_cast<std::int64_t>(up_block_types.size()) == n,
                      "VAE config: down_block_types and up_block_types need one entry per block_out_channels (", n, ")");
        for (const auto& t : down_block_types)
            HYVIDEO_CHECK(t == "DownEncoderBlockCausal3D", "VAE config: down block type ", string_text(t),
                          " is not supported (DownEncoderBlockCausal3D)");
        for (const auto& t : up_block_types)
            HYVIDEO_CHECK(t == "UpDecoderBlockCausal3D", "VAE config: up block type ", string_text(t),
                          " is not supported (UpDecoderBlockCausal3D)");
        HYVIDEO_CHECK(act_fn == "silu", "VAE config: act_fn ", string_text(act_fn), " is not supported (silu)");
        in_range("in_channels", in_channels, 1, max_channels);
        in_range("out_channels", out_channels, 1, max_channels);
        in_range("latent_channels", latent_channels, 1, max_channels);
        in_range("layers_per_block", layers_per_block, 1, max_layers_per_block);
        in_range("norm_num_groups", norm_num_groups, 1, max_channels);
        for (auto c : block_out_channels) {
            in_range("block_out_channels entry", c, 1, max_channels);
            HYVIDEO_CHECK(c % norm_num_groups == 0, "VAE config: block_out_channels entry ", c,
                          " does not split into norm_num_groups = ", norm_num_groups);
        }
        HYVIDEO_CHECK(std::isfinite(scaling_factor) && scaling_factor > 0,
                      "VAE config: scaling_factor must be a positive finite number, got ", scaling_factor);
        // The official model supports exactly this temporal ratio (its constructor raises otherwise).
        HYVIDEO_CHECK(time_compression_ratio == 4, "VAE config: time_compression_ratio must be 4, got ", time_compression_ratio);
        const std::int64_t spatial_log2 = log2_exact(spatial_compression_ratio, "spatial_compression_ratio");
        HYVIDEO_CHECK(spatial_log2 < n && log2_exact(time_compression_ratio, "time_compression_ratio") < n,
                      "VAE config: spatial_compression_ratio ", spatial_compression_ratio, " and time_compression_ratio ",
                      time_compression_ratio, " need more blocks than ", n);
        HYVIDEO_CHECK(sample_size > 0 && sample_size <= max_tile && sample_size % spatial_compression_ratio == 0,
                      "VAE config: sample_size must be a positive multiple of spatial_compression_ratio ",
                      spatial_compression_ratio, " up to ", max_tile, ", got ", sample_size);
        HYVIDEO_CHECK(sample_tsize > 0 && sample_tsize <= max_tile && sample_tsize % time_compression_ratio == 0,
                      "VAE config: sample_tsize must be a positive multiple of time_compression_ratio ",
                      time_compression_ratio, " up to ", max_tile, ", got ", sample_tsize);
        const long double params = parameter_count_exact();
        HYVIDEO_CHECK(params <= max_parameters, "VAE config: block_out_channels, layers_per_block ", layers_per_block,
                      " and the channel counts give ", static_cast<double>(params), " parameters, more than the ",
                      static_cast<double>(max_parameters), " a configuration may describe");
    }

    // The number of parameters AutoencoderKLCausal3D has for this configuration (encoder, decoder and
    // the two 1x1x1 convolutions between them), computed without building it. Throws what validate()
    // throws.
    std::int64_t parameter_count() const {
        validate();
        return static_cast<std::int64_t>(parameter_count_exact());
    }

    // Reads the keys present in j over the defaults of the official constructor (keys of other
    // tools, like "_class_name" or "force_upcast", are ignored). `context`, when given, names the
    // input (a file) at the start of every error.
    static AutoencoderKLCausal3DConfig from_json(const nlohmann::json& j, const std::string& context = {}) {
        AutoencoderKLCausal3DConfig c;
        // The official class defaults where the released config.json relies on them.
        c.block_out_channels = {64};
        c.down_block_types = {"DownEncoderBlockCausal3D"};
        c.up_block_types = {"UpDecoderBlockCausal3D"};
        c.layers_per_block = 1;
        c.latent_channels = 4;
        c.sample_size = 32;
        c.scaling_factor = 0.18215;
        return from_json(j, c, context);
    }
    static AutoencoderKLCausal3DConfig from_json(const nlohmann::json& j, AutoencoderKLCausal3DConfig c,
                                                 const std::string& context = {}) {
        using namespace config_detail;
        const JsonFields f(j, context.empty() ? "VAE config" : context + ": VAE config");
        f.integer("in_channels", c.in_channels, 1, max_channels);
        f.integer("out_channels", c.out_channels, 1, max_channels);
        f.strings("down_block_types", c.down_block_types, max_blocks);
        f.strings("up_block_types", c.up_block_types, max_blocks);
        f.integers("block_out_channels", c.block_out_channels, 1, max_blocks, 1, max_channels);
        f.integer("layers_per_block", c.layers_per_block, 1, max_layers_per_block);
        f.string("act_fn", c.act_fn);
        f.integer("latent_channels", c.latent_channels, 1, max_channels);
        f.integer("norm_num_groups", c.norm_num_groups, 1, max_channels);
        f.integer("sample_size", c.sample_size, 1, max_tile);
        f.integer("sample_tsize", c.sample_tsize, 1, max_tile);
        f.real("scaling_factor", c.scaling_factor);
        f.integer("time_compression_ratio", c.time_compression_ratio, 1, max_tile);
        f.integer("spatial_compression_ratio", c.spatial_compression_ratio, 1, max_tile);
        f.boolean("mid_block_add_attention", c.mid_block_add_attention);
        try {
            c.validate();
        } catch (const Error& e) {
            if (context.empty()) throw;
            throw Error(context + ": " + e.what());
        }
        return c;
    }

    // A JSON file of the official config.json keys (what `hyvideo generate --vae-config` takes);
    // every error names the file.
    static AutoencoderKLCausal3DConfig from_file(const std::filesystem::path& path) {
        return from_json(read_json_file(path, "VAE config", 16u << 20), path.string());
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

    // Beyond the released 4 blocks, 2 layers and 64-frame / 256-pixel tiles, with room to spare.
    static constexpr std::int64_t max_blocks = 16;
    static constexpr std::int64_t max_layers_per_block = 64;
    static constexpr std::int64_t max_tile = std::int64_t{1} << 16;

private:
    // k with 2^k = v; throws, naming the parameter, when v is not a power of two (0 and negative
    // values included).
    static std::int64_t log2_exact(std::int64_t v, const char* what) {
        HYVIDEO_CHECK(v >= 1 && (v & (v - 1)) == 0, "VAE config: ", what, " must be a power of two, got ", v);
        std::int64_t k = 0;
        while ((std::int64_t{1} << k) < v) ++k;
        return k;
    }

    // Exact while the fields are within validate()'s per-field bounds (each term has at most three
    // factors below 2^17 and 27). Follows vae/encoder.hpp and vae/decoder.hpp; tests compare it with
    // the built model.
    long double parameter_count_exact() const {
        using L = long double;
        const auto conv = [](L in, L out, L kernel_volume) { return in * out * kernel_volume + out; };
        const auto norm = [](L ch) { return 2 * ch; };  // GroupNorm: weight and bias
        const auto resnet = [&](L in, L out) {
            return norm(in) + conv(in, out, 27) + norm(out) + conv(out, out, 27) + (in != out ? conv(in, out, 1) : 0);
        };
        const auto mid = [&](L ch) {
            return 2 * resnet(ch, ch) + (mid_block_add_attention ? norm(ch) + 4 * (ch * ch + ch) : 0);
        };
        const auto& ch = block_out_channels;
        const auto n = ch.size();
        const L layers = static_cast<L>(layers_per_block);
        const L latent = static_cast<L>(latent_channels);
        L total = conv(static_cast<L>(in_channels), static_cast<L>(ch.front()), 27);
        for (std::size_t i = 0; i < n; ++i) {
            const L in = static_cast<L>(i == 0 ? ch.front() : ch[i - 1]), out = static_cast<L>(ch[i]);
            total += resnet(in, out) + (layers - 1) * resnet(out, out);
            if (sampling_factor(i) != std::array<std::int64_t, 3>{1, 1, 1}) total += conv(out, out, 27);
        }
        total += mid(static_cast<L>(ch.back())) + norm(static_cast<L>(ch.back())) + conv(static_cast<L>(ch.back()), 2 * latent, 27);
        // The decoder runs the blocks in reverse, with one resnet more each.
        total += conv(latent, static_cast<L>(ch.back()), 27) + mid(static_cast<L>(ch.back()));
        for (std::size_t i = 0; i < n; ++i) {
            const L in = static_cast<L>(i == 0 ? ch[n - 1] : ch[n - i]), out = static_cast<L>(ch[n - 1 - i]);
            total += resnet(in, out) + layers * resnet(out, out);
            if (sampling_factor(i) != std::array<std::int64_t, 3>{1, 1, 1}) total += conv(out, out, 27);
        }
        total += norm(static_cast<L>(ch.front())) + conv(static_cast<L>(ch.front()), static_cast<L>(out_channels), 27);
        return total + conv(2 * latent, 2 * latent, 1) + conv(latent, latent, 1);  // quant_conv, post_quant_conv
    }
};

}  // namespace hyvideo
