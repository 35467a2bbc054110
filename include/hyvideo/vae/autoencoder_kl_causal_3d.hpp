#pragma once
// AutoencoderKLCausal3D (official hyvideo/vae/autoencoder_kl_causal_3d.py), HunyuanVideo's causal
// video VAE: 4× in time and 8× in space, 16 latent channels in the released "884-16c-hy" model.
//
//   encode:  video [N, 3, T, H, W] -> quant_conv(encoder(video)) = moments -> posterior (mean, logvar)
//   decode:  z [N, 16, T', h, w]   -> decoder(post_quant_conv(z)) = video [N, 3, 1 + 4(T'−1), 8h, 8w]
//
// Like the official encode()/decode(), these take and return unscaled latents: the pipeline multiplies
// the posterior's mode by config.scaling_factor after encoding and divides by it before decoding. Tiling
// is off by default; enable_tiling() turns on both axes with the config's tile sizes
// (docs/model.md#vae-tiling, vae/tiling.hpp), and `tiling` can be set to other sizes and overlaps.
//
// Batches are encoded and decoded whole: GroupNorm is per sample, so the official `use_slicing`
// (one sample at a time) gives the same numbers and is not needed as a mode.
#include <cstdint>
#include <string>
#include <utility>

#include "hyvideo/vae/config.hpp"
#include "hyvideo/vae/decoder.hpp"
#include "hyvideo/vae/distribution.hpp"
#include "hyvideo/vae/encoder.hpp"
#include "hyvideo/vae/tiling.hpp"

namespace hyvideo {

template <Backend B>
struct AutoencoderKLCausal3D {
    using backend = B;
    AutoencoderKLCausal3DConfig config;
    EncoderCausal3D<B> encoder;
    DecoderCausal3D<B> decoder;
    Conv3d<B> quant_conv, post_quant_conv;  // 1×1×1, on the moments and on the latents
    TilingOptions tiling;

    // Builds the structure without touching weight memory: parameter_list() of a fresh model is the
    // checkpoint's manifest, and load_weights() fills it.
    explicit AutoencoderKLCausal3D(const AutoencoderKLCausal3DConfig& cfg)
        : config(cfg), encoder(cfg), decoder(cfg),
          quant_conv(2 * cfg.latent_channels, 2 * cfg.latent_channels, {1, 1, 1}),
          post_quant_conv(cfg.latent_channels, cfg.latent_channels, {1, 1, 1}) {
        tiling.tile_sample_min_size = cfg.sample_size;
        tiling.tile_sample_min_tsize = cfg.sample_tsize;
    }

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        encoder.parameters(prefix + "encoder.", visit);
        decoder.parameters(prefix + "decoder.", visit);
        quant_conv.parameters(prefix + "quant_conv.", visit);
        post_quant_conv.parameters(prefix + "post_quant_conv.", visit);
    }

    // The official enable_tiling(): spatial and temporal, with the tile sizes `tiling` holds.
    void enable_tiling(bool on = true) { tiling.spatial = tiling.temporal = on; }
    void disable_tiling() { enable_tiling(false); }

    // ---- shapes -------------------------------------------------------------------------------------

    // The moments' shape for a video: per sampling block T -> ⌊(T−1)/2⌋ + 1 and H, W -> ⌈·/2⌉.
    Shape moments_shape(const Shape& video) const {
        check_video(video);
        Shape s{video[0], 2 * config.latent_channels, video[2], video[3], video[4]};
        for (std::size_t i = 0; i < config.block_out_channels.size(); ++i) {
            const auto [ft, fh, fw] = config.sampling_factor(i);
            s[2] = (s[2] - 1) / ft + 1;
            s[3] = (s[3] + fh - 1) / fh;
            s[4] = (s[4] + fw - 1) / fw;
        }
        return s;
    }

    // The decoded video's shape for latents: per sampling block T -> 1 + 2(T−1) and H, W -> 2·.
    Shape video_shape(const Shape& latents) const {
        check_latents(latents);
        Shape s{latents[0], config.out_channels, latents[2], latents[3], latents[4]};
        for (std::size_t i = 0; i < config.block_out_channels.size(); ++i) {
            const auto [ft, fh, fw] = config.sampling_factor(i);
            s[2] = 1 + ft * (s[2] - 1);
            s[3] *= fh;
            s[4] *= fw;
        }
        return s;
    }

    // ---- encode -------------------------------------------------------------------------------------

    DiagonalGaussianDistribution<B> encode(const Tensor& x) const { return DiagonalGaussianDistribution<B>(encode_moments(x)); }

    // Moments [N, 2·latent, T', h, w], tiled as `tiling` says: temporally if T exceeds the temporal
    // tile, spatially (also inside each temporal tile) if H or W exceeds the spatial tile.
    Tensor encode_moments(const Tensor& x) const {
        const Shape out_shape = moments_shape(x.shape());
        const TilePlan plan = tile_plan();
        auto encode_tile = [&](const Tensor& tile) {
            if (tiling.spatial && (tile.size(3) > plan.encode_space.tile || tile.size(4) > plan.encode_space.tile))
                return tiled_in_space<B>(tile, plan.encode_space, moments_shape(tile.shape()),
                                         [&](const Tensor& t) { return encode_untiled(t); });
            return encode_untiled(tile);
        };
        if (!(tiling.temporal && x.size(2) > plan.encode_time.tile - 1)) return encode_tile(x);
        Tensor out = B::empty(out_shape, DType::f32);
        const std::int64_t n = tiled_in_time<B>(x, plan.encode_time, encode_tile, [&](std::int64_t t0, const Tensor& part) {
            B::assign(out.slice(2, t0, t0 + part.size(2)), part);
        });
        HYVIDEO_CHECK(n == out_shape[2], "encode: temporal tiles produced ", n, " of ", out_shape[2], " latents");
        return out;
    }

    // quant_conv(encoder(x)), no tiling. (The backend may keep activations in another memory order;
    // what the autoencoder returns is contiguous.)
    Tensor encode_untiled(const Tensor& x) const { return B::contiguous(quant_conv.forward(encoder.forward(x))); }

    // ---- decode -------------------------------------------------------------------------------------

    // The video for latents z, tiled as `tiling` says.
    Tensor decode(const Tensor& z) const {
        Tensor out = B::empty(video_shape(z.shape()), DType::f32);
        decode_frames(z, [&](std::int64_t t0, const Tensor& frames) {
            B::assign(out.slice(2, t0, t0 + frames.size(2)), frames);
        });
        return out;
    }

    // Streams the decoded video to sink(t0, frames), frames [N, C, n, H, W] covering output frames
    // [t0, t0 + n), in order, each as soon as it is final. With temporal tiling, memory stays that of
    // one temporal tile however long the video is. Returns the number of frames.
    template <class Sink>
    std::int64_t decode_frames(const Tensor& z, Sink&& sink) const {
        const Shape out_shape = video_shape(z.shape());
        const TilePlan plan = tile_plan();
        auto decode_tile = [&](const Tensor& tile) {
            if (tiling.spatial && (tile.size(3) > plan.decode_space.tile || tile.size(4) > plan.decode_space.tile))
                return tiled_in_space<B>(tile, plan.decode_space, video_shape(tile.shape()),
                                         [&](const Tensor& t) { return decode_untiled(t); });
            return decode_untiled(tile);
        };
        if (!(tiling.temporal && z.size(2) > plan.decode_time.tile - 1)) {
            const Tensor frames = decode_tile(z);
            sink(std::int64_t{0}, frames);
            return frames.size(2);
        }
        const std::int64_t n = tiled_in_time<B>(z, plan.decode_time, decode_tile, sink);
        HYVIDEO_CHECK(n == out_shape[2], "decode: temporal tiles produced ", n, " of ", out_shape[2], " frames");
        return n;
    }

    // decoder(post_quant_conv(z)), no tiling.
    Tensor decode_untiled(const Tensor& z) const { return B::contiguous(decoder.forward(post_quant_conv.forward(z))); }

    TilePlan tile_plan() const {
        return TilePlan::make(tiling, config.spatial_compression_ratio, config.time_compression_ratio);
    }

private:
    void check_video(const Shape& s) const {
        HYVIDEO_CHECK(s.size() == 5 && s[1] == config.in_channels && s[2] >= 1 && s[3] >= 1 && s[4] >= 1,
                      "VAE encode: expected a video [N, ", config.in_channels, ", T, H, W], got ", shape_str(s));
    }
    void check_latents(const Shape& s) const {
        HYVIDEO_CHECK(s.size() == 5 && s[1] == config.latent_channels && s[2] >= 1 && s[3] >= 1 && s[4] >= 1,
                      "VAE decode: expected latents [N, ", config.latent_channels, ", T, h, w], got ", shape_str(s));
    }
};

}  // namespace hyvideo
