// Tiled encoding and decoding. The seams are checked against stand-ins for the encoder and decoder
// whose tiles are exactly parts of the untiled result (nearest upsampling, strided subsampling):
// tiling them must change nothing, at any tile size and overlap, which holds only if every tile
// keeps, drops and blends the right positions. The real autoencoder then keeps the untiled frame
// count and size over a sweep of tile sizes and overlaps, and its decode streams.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/golden/compare.hpp"
#include "hyvideo/nn/init.hpp"
#include "hyvideo/vae/autoencoder_kl_causal_3d.hpp"

using namespace hyvideo;

namespace {

Tensor random_tensor(const Shape& shape, std::uint64_t seed) {
    Tensor t = Tensor::empty(shape);
    float* p = t.data<float>();
    for (std::int64_t i = 0; i < t.numel(); ++i)
        p[i] = hyvideo::detail::uniform_pm1(hyvideo::detail::splitmix64(seed * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(i)));
    return t;
}

double rel_l2(const Tensor& a, const Tensor& b) { return golden::compare(a, b).rel_l2; }

// A "decoder" whose tiles are exactly parts of its untiled output: output frame 0 is latent 0, frames
// 4m−3 .. 4m are latent m, and every latent pixel becomes an 8×8 block.
Tensor stand_in_decode(const Tensor& z) { return cpu::upsample_nearest(z, {4, 8, 8}, true); }

// An "encoder" of the same kind: latent m is frame 4m, latent pixel (i, j) is pixel (8i, 8j) — a
// strided 1×1×1 identity convolution, which yields the real encoder's ⌊(T−1)/4⌋+1 × ⌈H/8⌉ × ⌈W/8⌉.
Tensor stand_in_encode(const Tensor& x) {
    const std::int64_t C = x.size(1);
    Tensor eye = Tensor::zeros({C, C, 1, 1, 1});
    for (std::int64_t c = 0; c < C; ++c) eye.data<float>()[c * C + c] = 1.0f;
    return cpu::conv3d(x, eye, Tensor{}, Conv3dSpec{{4, 8, 8}, {0, 0, 0, 0, 0, 0}, PadMode::zeros});
}

Shape decoded_shape(const Shape& z) { return {z[0], z[1], 1 + 4 * (z[2] - 1), 8 * z[3], 8 * z[4]}; }
Shape encoded_shape(const Shape& x) { return {x[0], x[1], (x[2] - 1) / 4 + 1, (x[3] + 7) / 8, (x[4] + 7) / 8}; }

AutoencoderKLCausal3DConfig tiny_config() {
    AutoencoderKLCausal3DConfig c;
    c.block_out_channels = {8, 8, 8, 8};
    c.layers_per_block = 1;
    c.latent_channels = 4;
    c.norm_num_groups = 4;
    c.sample_size = 32;
    c.sample_tsize = 16;
    return c;
}

}  // namespace

TEST_CASE("tiling: the official constants scaled down are the golden fixture's tiles") {
    TilingOptions o;
    o.tile_sample_min_size = 32;
    o.tile_sample_min_tsize = 16;
    const TilePlan p = TilePlan::make(o, 8, 4);
    CHECK(p.decode_space.tile == 4);
    CHECK(p.decode_space.step == 3);
    CHECK(p.decode_space.keep == 24);
    CHECK(p.decode_space.blend == 8);
    CHECK(p.decode_time.tile == 5);
    CHECK(p.decode_time.step == 3);
    CHECK(p.decode_time.keep == 12);
    CHECK(p.decode_time.blend == 4);
    CHECK(p.encode_time.step == 12);
    CHECK(p.encode_time.keep == 3);
    CHECK(p.encode_time.blend == 1);
    // A blend wider than the tiles overlap is clamped to the overlap.
    o.tile_sample_min_size = 24;  // 3 latents, step 2, overlap 1 latent = 8 px, ⌊0.25·24⌋ = 6 px
    CHECK(TilePlan::make(o, 8, 4).decode_space.blend == 6);
    o.tile_overlap_factor = 0.6;  // step 1, overlap 2 latents = 16 px > ⌊0.6·24⌋ = 14 px
    CHECK(TilePlan::make(o, 8, 4).decode_space.blend == 14);
    o.tile_overlap_factor = 1.0;
    CHECK_THROWS_AS(TilePlan::make(o, 8, 4), Error);
    o.tile_overlap_factor = 0.25;
    o.tile_sample_min_size = 20;
    CHECK_THROWS_AS(TilePlan::make(o, 8, 4), Error);
}

TEST_CASE("tiling: seams line up for every tile size and overlap (exact stand-ins)") {
    const Tensor z = random_tensor({1, 2, 9, 5, 7}, 1);
    const Tensor x = random_tensor({1, 2, 23, 37, 42}, 2);
    const Tensor decoded = stand_in_decode(z), encoded = stand_in_encode(x);
    for (std::int64_t size : {8, 16, 24, 32, 40, 64})
        for (std::int64_t tsize : {4, 8, 12, 16, 20, 40})
            for (double f : {0.0, 0.1, 0.25, 0.5, 0.7}) {
                TilingOptions o;
                o.tile_sample_min_size = size;
                o.tile_sample_min_tsize = tsize;
                o.tile_overlap_factor = f;
                const TilePlan p = TilePlan::make(o, 8, 4);
                INFO("tile ", size, " px, ", tsize, " frames, overlap ", f);

                // Decode: temporal tiles, each spatially tiled.
                Tensor out = Tensor::empty(decoded.shape());
                std::int64_t next = 0;
                const std::int64_t frames = tiled_in_time<cpu>(
                    z, p.decode_time,
                    [&](const Tensor& zt) { return tiled_in_space<cpu>(zt, p.decode_space, decoded_shape(zt.shape()), stand_in_decode); },
                    [&](std::int64_t t0, const Tensor& part) {
                        CHECK(t0 == next);  // in order, no gaps
                        next = t0 + part.size(2);
                        cpu::assign(out.slice(2, t0, next), part);
                    });
                REQUIRE(frames == decoded.size(2));
                CHECK(rel_l2(out, decoded) < 1e-6);

                // Encode: the same, from pixels to latents.
                Tensor lat = Tensor::empty(encoded.shape());
                const std::int64_t latents = tiled_in_time<cpu>(
                    x, p.encode_time,
                    [&](const Tensor& xt) { return tiled_in_space<cpu>(xt, p.encode_space, encoded_shape(xt.shape()), stand_in_encode); },
                    [&](std::int64_t t0, const Tensor& part) { cpu::assign(lat.slice(2, t0, t0 + part.size(2)), part); });
                REQUIRE(latents == encoded.size(2));
                CHECK(rel_l2(lat, encoded) < 1e-6);
            }
}

TEST_CASE("tiling: the autoencoder keeps the untiled frame count and size for every tile size") {
    AutoencoderKLCausal3D<cpu> vae(tiny_config());
    init_weights(vae, 3);
    const Tensor z = random_tensor({1, 4, 6, 4, 5}, 4);
    const Tensor x = random_tensor({1, 3, 17, 28, 36}, 5);  // H, W, T - 1 not multiples of the ratios
    const Shape video = vae.video_shape(z.shape()), moments = vae.moments_shape(x.shape());
    CHECK(video == Shape{1, 3, 21, 32, 40});
    CHECK(moments == Shape{1, 8, 5, 4, 5});
    for (std::int64_t size : {8, 24, 40})
        for (std::int64_t tsize : {4, 12})
            for (double f : {0.0, 0.3, 0.5}) {
                vae.tiling = {true, true, size, tsize, f};
                INFO("tile ", size, " px, ", tsize, " frames, overlap ", f);
                CHECK(vae.decode(z).shape() == video);
                CHECK(vae.encode_moments(x).shape() == moments);
            }
}

TEST_CASE("tiling: a tile covering everything is the untiled result, and the decode streams") {
    AutoencoderKLCausal3D<cpu> vae(tiny_config());
    init_weights(vae, 6);
    const Tensor z = random_tensor({1, 4, 9, 5, 6}, 7);
    const Tensor untiled = vae.decode(z);
    vae.tiling = {true, true, 64, 64, 0.25};  // 8×8 latents, 16 latent frames: one tile
    CHECK(rel_l2(vae.decode(z), untiled) == 0.0);

    // Streaming: chunks arrive in order, cover the video once, and assemble to decode()'s result.
    vae.tiling = {true, true, 32, 16, 0.25};
    const Tensor tiled = vae.decode(z);
    CHECK(rel_l2(tiled, untiled) > 1e-4);  // per-tile GroupNorm: tiled is not untiled
    Tensor assembled = Tensor::empty(tiled.shape());
    std::int64_t next = 0, chunks = 0;
    const std::int64_t n = vae.decode_frames(z, [&](std::int64_t t0, const Tensor& frames) {
        CHECK(t0 == next);
        next = t0 + frames.size(2);
        ++chunks;
        cpu::assign(assembled.slice(2, t0, next), frames);
    });
    CHECK(n == tiled.size(2));
    CHECK(chunks == 3);  // latent tiles start at 0, 3, 6
    CHECK(rel_l2(assembled, tiled) == 0.0);
}
