#pragma once
// The built-in default model of `hyvideo generate`: HunyuanVideo's exact architecture (token
// refiner, 3D RoPE, double and single stream blocks, embedded guidance, the causal 3D VAE with its
// mid-block attention) at a tiny width, with deterministic pseudo-random weights, and deterministic
// pseudo-random text embeddings in place of the text encoders.
//
// It is not a trained model: its videos are structured noise. It exists so that the whole pipeline
// runs end to end in seconds on a fresh machine without downloading 25 GB of weights, and so that
// its output is reproducible byte for byte from the seed.
#include <cstdint>

#include "hyvideo/models/config.hpp"
#include "hyvideo/nn/init.hpp"
#include "hyvideo/pipelines/hunyuan_video_pipeline.hpp"
#include "hyvideo/pipelines/noise.hpp"
#include "hyvideo/vae/config.hpp"

namespace hyvideo {

inline constexpr std::uint64_t kDefaultWeightSeed = 20241203;  // HunyuanVideo's release date

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
