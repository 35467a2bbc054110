#pragma once
// Small but complete configurations of both models (every structural part present, a few channels wide),
// for tests that build, describe or write models without caring about their size.
#include "hyvideo/models/config.hpp"
#include "hyvideo/vae/config.hpp"

namespace hyvideo::test {

inline HYVideoConfig small_dit() {
    HYVideoConfig c;
    c.hidden_size = 64;
    c.heads_num = 4;
    c.rope_dim_list = {4, 6, 6};
    c.mm_double_blocks_depth = 2;
    c.mm_single_blocks_depth = 2;
    c.text_states_dim = 32;
    c.text_states_dim_2 = 24;
    return c;
}

inline AutoencoderKLCausal3DConfig small_vae() {
    auto c = AutoencoderKLCausal3DConfig::preset("884-16c-hy");
    c.block_out_channels = {8, 16, 16, 16};
    c.norm_num_groups = 4;
    c.latent_channels = 4;
    c.layers_per_block = 1;
    return c;
}

}  // namespace hyvideo::test
