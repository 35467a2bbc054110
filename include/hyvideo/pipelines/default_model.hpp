#pragma once
// The built-in model of `hyvideo generate`: HunyuanVideo's exact architecture (token refiner, 3D RoPE,
// double and single stream blocks, embedded guidance, the causal 3D VAE with its mid-block attention)
// at a tiny width, so that the whole pipeline runs in seconds on a fresh machine without downloading
// 25 GB of weights.
//
// Two sets of weights share that structure:
//   - learned: trained by tools/builtin_model/train.py on a synthetic world of coloured shapes crossing
//     a plain background, shipped in assets/models/builtin (BuiltinModelFiles), prompted through the
//     tiny text encoders of PromptEncoder::builtin. `generate` without --dit/--vae runs it.
//     docs/builtin_model.md tells how it was trained and what it can draw.
//   - pseudo-random: init_weights with kDefaultWeightSeed, reproducible byte for byte from the seed and
//     independent of any file; the tests use it, and image-to-video runs it (the learned model never saw
//     an image condition).
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "hyvideo/core/error.hpp"
#include "hyvideo/io/json_file.hpp"

#include "hyvideo/models/config.hpp"
#include "hyvideo/nn/init.hpp"
#include "hyvideo/pipelines/hunyuan_video_pipeline.hpp"
#include "hyvideo/pipelines/noise.hpp"
#include "hyvideo/vae/config.hpp"

namespace hyvideo {

inline constexpr std::uint64_t kDefaultWeightSeed = 20241203;  // HunyuanVideo's release date

// What the learned built-in model draws when no prompt is given; its captions all read
// "a {colour} {shape} moving {motion} on a {background} background".
inline constexpr const char* kBuiltinPrompt = "a red circle moving from left to right on a black background";

// The learned model's training clips: 64x64, 33 frames (latents 9x8x8).
inline constexpr std::int64_t kBuiltinVideoSide = 64;
inline constexpr std::int64_t kBuiltinVideoFrames = 33;

// The files of the learned built-in model, as tools/builtin_model/train.py writes them: weights under
// the official names (the DiT in bf16, the VAE in f32) and their configs in the official keys.
// sampling.json holds the sampler settings the model was judged with (see BuiltinSampling).
struct BuiltinModelFiles {
    std::filesystem::path transformer, transformer_config, vae, vae_config, sampling;

    static BuiltinModelFiles in(const std::filesystem::path& dir) {
        BuiltinModelFiles f{dir / "transformer.safetensors", dir / "transformer_config.json", dir / "vae.safetensors",
                            dir / "vae_config.json", dir / "sampling.json"};
        for (const auto* p : {&f.transformer, &f.transformer_config, &f.vae, &f.vae_config, &f.sampling}) {
            std::error_code ec;
            HYVIDEO_CHECK(std::filesystem::is_regular_file(*p, ec), "the built-in model: '", p->string(),
                          "' is missing (it ships in assets/models/builtin; tools/builtin_model/train.py makes it)");
        }
        return f;
    }
};

// The sampler settings `generate` uses for the learned model unless --flow-shift / --cfg-scale are
// given. They travel with the weights rather than in the code because they belong to one training run:
// train.py trains the DiT with caption dropout so that classifier-free guidance works, and the export
// writes the settings under which tests/tools/test_builtin_model.cpp judged the model.
struct BuiltinSampling {
    float flow_shift = 7.0f;
    float cfg_scale = 1.0f;

    static BuiltinSampling from_file(const std::filesystem::path& path) {
        const std::string what = "the built-in model's sampling settings";
        const nlohmann::json j = read_json_file(path, what, 1u << 16);
        const std::string name = what + " '" + path.string() + "'";
        BuiltinSampling s;
        const auto number = [&](const char* key, float& out) {
            const auto it = j.is_object() ? j.find(key) : j.end();
            HYVIDEO_CHECK(it != j.end() && it->is_number(), name, ": needs a number \"", key, "\"");
            out = it->get<float>();
            HYVIDEO_CHECK(std::isfinite(out), name, ": \"", key, "\" must be finite");
        };
        number("flow_shift", s.flow_shift);
        number("cfg_scale", s.cfg_scale);
        HYVIDEO_CHECK(s.flow_shift > 0, name, ": \"flow_shift\" must be positive");
        return s;
    }
};

inline HYVideoConfig default_dit_config() {
    HYVideoConfig c;  // T/2-cfgdistill's structure
    c.guidance_embed = true;
    c.hidden_size = 128;
    c.heads_num = 4;
    c.rope_dim_list = {8, 12, 12};
    c.mm_double_blocks_depth = 2;
    c.mm_single_blocks_depth = 2;
    c.text_states_dim = 64;
    c.text_states_dim_2 = 32;
    return c;
}

inline AutoencoderKLCausal3DConfig default_vae_config() {
    AutoencoderKLCausal3DConfig c;  // 884-16c's structure: 4x time, 8x space, 16 latent channels
    c.block_out_channels = {16, 32, 32, 32};
    c.layers_per_block = 1;
    c.norm_num_groups = 8;
    return c;
}

// Text embeddings of a `length`-token padded prompt with `valid` real tokens.
inline PromptEmbeds default_prompt_embeds(const HYVideoConfig& c, std::uint64_t seed, std::int64_t length = 16,
                                          std::int64_t valid = 11) {
    PromptEmbeds e;
    e.text_states = randn({1, length, c.text_states_dim}, seed * 2 + 1, false);
    std::vector<std::int64_t> mask(static_cast<std::size_t>(length), 0);
    for (std::int64_t i = 0; i < valid && i < length; ++i) mask[static_cast<std::size_t>(i)] = 1;
    e.text_mask = Tensor::from_vector<std::int64_t>({1, length}, mask);
    e.text_states_2 = randn({1, c.text_states_dim_2}, seed * 2 + 2, false);
    return e;
}

}  // namespace hyvideo
