// Tiled VAE decoding: how a long, large video is decoded in pieces whose seams do not show.
//
// The decoder's memory grows with the video, so the official code decodes overlapping tiles (in
// space: 32×32 latents with 8 of overlap; in time: 16 latents with 4 of overlap) and cross-fades each
// seam: the first E outputs of a tile become a·(1 − y/E) + b·(y/E) with the previous tile's outputs
// a. Here a tiny VAE with random weights decodes the same latents untiled and tiled (tiles scaled
// down), and we look at the sizes, the seam weights and how far the two results are apart.
#include <cmath>
#include <cstdio>

#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/nn/init.hpp"
#include "hyvideo/pipelines/noise.hpp"
#include "hyvideo/vae/autoencoder_kl_causal_3d.hpp"

using namespace hyvideo;

int main() {
    // The seam weights of a blend over E = 4 positions: the new tile fades in linearly.
    std::printf("seam of 4: weight of the new tile");
    for (int y = 0; y < 4; ++y) std::printf(" %.2f", y / 4.0);
    std::printf(" (the previous tile gets 1 minus that)\n");

    AutoencoderKLCausal3DConfig cfg;
    cfg.block_out_channels = {8, 16, 16, 16};
    cfg.layers_per_block = 1;
    cfg.norm_num_groups = 4;
    cfg.latent_channels = 4;
    cfg.sample_size = 32;   // spatial tile: 32 px = 4 latents
    cfg.sample_tsize = 16;  // temporal tile: 16 frames = 4 latents
    AutoencoderKLCausal3D<cpu> vae(cfg);
    init_weights(vae, 3);

    const Tensor z = randn({1, 4, 9, 6, 7}, 11, false);  // 9 latent frames of 6×7
    const Tensor untiled = vae.decode(z);
    vae.enable_tiling();
    const TilePlan plan = vae.tile_plan();
    std::printf("decode tiles: space %lld latents every %lld (blend %lld px), time %lld latents every %lld "
                "(blend %lld frames)\n",
                static_cast<long long>(plan.decode_space.tile), static_cast<long long>(plan.decode_space.step),
                static_cast<long long>(plan.decode_space.blend), static_cast<long long>(plan.decode_time.tile),
                static_cast<long long>(plan.decode_time.step), static_cast<long long>(plan.decode_time.blend));
    std::int64_t pieces = 0;
    const std::int64_t frames = vae.decode_frames(z, [&](std::int64_t t0, const Tensor& part) {
        std::printf("  temporal tile %lld: frames %lld..%lld are final\n", static_cast<long long>(pieces++),
                    static_cast<long long>(t0), static_cast<long long>(t0 + part.size(2) - 1));
    });
    const Tensor tiled = vae.decode(z);
    std::printf("untiled %s, tiled %s (%lld frames): same size\n", shape_str(untiled.shape()).c_str(),
                shape_str(tiled.shape()).c_str(), static_cast<long long>(frames));
    // GroupNorm statistics are per tile, so tiled and untiled differ a little everywhere.
    double diff = 0, norm = 0;
    const auto a = untiled.to_vector(), b = tiled.to_vector();
    for (std::size_t i = 0; i < a.size(); ++i) {
        diff += (a[i] - b[i]) * (a[i] - b[i]);
        norm += a[i] * a[i];
    }
    std::printf("relative difference tiled vs untiled: %.3f (per-tile GroupNorm statistics; the reference "
                "differs the same way)\n",
                std::sqrt(diff / norm));
    return 0;
}
