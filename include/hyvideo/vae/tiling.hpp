#pragma once
// Tiled encoding and decoding (official AutoencoderKLCausal3D spatial_tiled_* / temporal_tiled_*,
// docs/model.md#vae-tiling), as algorithms over a tile function, so the same seams serve the decoder,
// the encoder and the tests' stand-ins.
//
// An axis is cut into tiles that start every `step` input positions and read `tile` positions (the
// last ones fewer). Each tile's output keeps its first `keep` positions; at every seam the next
// tile's first `blend` outputs are cross-faded with the previous tile's outputs at the same
// positions (B::blend: weights 1 − y/E and y/E), in place, and the blended tile is what later seams
// see — the official blends mutate their tiles too, and process them row-major.
//
// The temporal axis has one more rule: a tile's first output frame (or latent) is the causal
// encoding of its first input frame alone, a "first frame" only for the first tile, so every later
// tile drops it.
//
// Where these agree with the official code, and where they do not. The official code keeps
// S − ⌊f·S⌋ outputs per tile while it strides ⌊(1−f)·L⌋ inputs (S the tile in outputs, L in inputs,
// f the overlap factor) and blends the last E outputs of the previous tile, counted from its end.
// For the official ratios (and the golden fixtures') those are the same numbers as here:
// keep = ratio·step, and the last E outputs of the previous tile are exactly the ones at the blended
// positions. For other tile sizes the official frame counts drift (docs/model.md#vae-tiling); here keep
// is always ratio·step (one more for the first temporal tile), the blend extent is clamped to the real
// overlap, and the previous tile's outputs are taken at the blended positions, so the result always has
// the untiled size and the seams always line up.
//
// Memory. Tiles are decoded one at a time; of a finished tile only its tails are kept (the outputs
// past `keep`, which the next row, column or temporal tile blends with), and kept outputs go straight
// to their destination. Temporal tiling streams: the caller receives each temporal tile's kept
// frames as soon as they are final, so decoding holds one temporal tile's frames plus one tail
// however long the video is.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "hyvideo/backend/backend.hpp"

namespace hyvideo {

// Tiling as the official enable_tiling() / use_*_tiling switches configure it. Sizes are in
// samples (pixels and frames); the latent tile is the sample tile divided by the compression ratio.
struct TilingOptions {
    bool spatial = false;
    bool temporal = false;
    std::int64_t tile_sample_min_size = 256;   // pixels per spatial tile (config sample_size)
    std::int64_t tile_sample_min_tsize = 64;   // frames per temporal tile (config sample_tsize)
    double tile_overlap_factor = 0.25;
};

// One axis of a tiling, in the units of the tile function's input (starts, tile) and output (keep,
// blend, drop_first).
struct TileAxis {
    std::int64_t tile = 0;        // input positions per tile (fewer for the last tiles)
    std::int64_t step = 0;        // input positions between tile starts
    std::int64_t keep = 0;        // outputs kept per tile (the first tile keeps keep + drop_first)
    std::int64_t blend = 0;       // outputs cross-faded at each seam
    std::int64_t drop_first = 0;  // outputs dropped from the front of every tile but the first

    // Tile starts for an axis of n input positions: 0, step, 2·step, ... < n (the official loops).
    std::vector<std::int64_t> starts(std::int64_t n) const {
        HYVIDEO_CHECK(step >= 1 && tile >= 1, "tiling: tiles of ", tile, " every ", step, " positions do not advance");
        std::vector<std::int64_t> s;
        for (std::int64_t i = 0; i < n; i += step) s.push_back(i);
        return s;
    }
};

namespace tiling_detail {

inline std::int64_t floor_product(std::int64_t n, double factor) { return static_cast<std::int64_t>(n * factor); }

inline void check_options(const TilingOptions& o, std::int64_t spatial_ratio, std::int64_t time_ratio) {
    HYVIDEO_CHECK(o.tile_overlap_factor >= 0.0 && o.tile_overlap_factor < 1.0, "tiling: tile_overlap_factor ",
                  o.tile_overlap_factor, " is outside [0, 1)");
    HYVIDEO_CHECK(o.tile_sample_min_size > 0 && o.tile_sample_min_size % spatial_ratio == 0,
                  "tiling: tile_sample_min_size ", o.tile_sample_min_size, " must be a positive multiple of ",
                  spatial_ratio);
    HYVIDEO_CHECK(o.tile_sample_min_tsize > 0 && o.tile_sample_min_tsize % time_ratio == 0,
                  "tiling: tile_sample_min_tsize ", o.tile_sample_min_tsize, " must be a positive multiple of ",
                  time_ratio);
}

// The latent step of a tile of `latent` positions: ⌊(1 − f)·latent⌋ as the official code computes
// it, at least 1 so that every tiling moves forward.
inline std::int64_t latent_step(std::int64_t latent, double f) { return std::max<std::int64_t>(1, floor_product(latent, 1.0 - f)); }

}  // namespace tiling_detail

// The four axes of the official tiling, generalised as described at the top of this file.
// `latent` tile = sample tile / ratio; step in latents = ⌊(1 − f)·latent⌋;
//   decode space:  tile latent,        step,        keep ratio·step,  blend min(⌊f·sample⌋, ratio·(latent − step))
//   decode time:   tile latent + 1,    step,        keep ratio·step,  blend min(⌊f·sample⌋, ratio·(latent − step)), drop 1
//   encode space:  tile sample,        ratio·step,  keep step,        blend min(⌊f·latent⌋, latent − step)
//   encode time:   tile sample + 1,    ratio·step,  keep step,        blend min(⌊f·latent⌋, latent − step), drop 1
struct TilePlan {
    TileAxis decode_space, decode_time, encode_space, encode_time;

    static TilePlan make(const TilingOptions& o, std::int64_t spatial_ratio, std::int64_t time_ratio) {
        using namespace tiling_detail;
        check_options(o, spatial_ratio, time_ratio);
        const double f = o.tile_overlap_factor;
        TilePlan p;
        {
            const std::int64_t sample = o.tile_sample_min_size, latent = sample / spatial_ratio;
            const std::int64_t step = latent_step(latent, f);
            const std::int64_t overlap = std::max<std::int64_t>(0, latent - step);
            p.decode_space = {latent, step, spatial_ratio * step,
                              std::min(floor_product(sample, f), spatial_ratio * overlap), 0};
            p.encode_space = {sample, spatial_ratio * step, step, std::min(floor_product(latent, f), overlap), 0};
        }
        {
            const std::int64_t sample = o.tile_sample_min_tsize, latent = sample / time_ratio;
            const std::int64_t step = latent_step(latent, f);
            const std::int64_t overlap = std::max<std::int64_t>(0, latent - step);
            p.decode_time = {latent + 1, step, time_ratio * step, std::min(floor_product(sample, f), time_ratio * overlap),
                             1};
            p.encode_time = {sample + 1, time_ratio * step, step, std::min(floor_product(latent, f), overlap), 1};
        }
        return p;
    }
};

namespace tiling_detail {

// The seam: cross-fades the first E' = min(E, |tail|, |b|) positions of b along `dim` with the
// same positions of the previous tile (its tail), in place.
template <Backend B>
void blend_seam(const Tensor& tail, const Tensor& b, std::int64_t dim, std::int64_t extent) {
    const std::int64_t e = std::min({extent, tail.size(dim), b.size(dim)});
    if (e <= 0) return;
    const Tensor head = b.slice(dim, 0, e);
    B::assign(head, B::blend(tail.slice(dim, 0, e), head, dim));
}

}  // namespace tiling_detail

// Spatial tiling over H (dim 3) and W (dim 4) of in [N, C, T, H, W]: tiles of in go through fn, and
// their kept parts, blended, fill a new tensor of out_shape (the untiled result's shape; the kept
// parts cover it exactly, which is checked).
template <Backend B, class TileFn>
Tensor tiled_in_space(const Tensor& in, const TileAxis& axis, const Shape& out_shape, TileFn&& fn) {
    const std::int64_t H = in.size(3), W = in.size(4);
    const std::vector<std::int64_t> rows = axis.starts(H), cols = axis.starts(W);
    Tensor out = B::empty(out_shape, DType::f32);
    std::vector<Tensor> above(cols.size());  // bottom tails of the previous row's tiles
    std::int64_t oh = 0;
    for (const std::int64_t i : rows) {
        Tensor left;  // right tail of the previous tile in this row
        std::int64_t ow = 0, kept_rows = 0;
        for (std::size_t c = 0; c < cols.size(); ++c) {
            const std::int64_t j = cols[c];
            const Tensor tile = fn(in.slice(3, i, std::min(i + axis.tile, H)).slice(4, j, std::min(j + axis.tile, W)));
            if (above[c].defined()) tiling_detail::blend_seam<B>(above[c], tile, 3, axis.blend);
            if (left.defined()) tiling_detail::blend_seam<B>(left, tile, 4, axis.blend);
            const std::int64_t kh = std::min(axis.keep, tile.size(3)), kw = std::min(axis.keep, tile.size(4));
            HYVIDEO_CHECK(oh + kh <= out_shape[3] && ow + kw <= out_shape[4], "tiled_in_space: tiles overrun ",
                          shape_str(out_shape));
            B::assign(out.slice(3, oh, oh + kh).slice(4, ow, ow + kw), tile.slice(3, 0, kh).slice(4, 0, kw));
            above[c] = B::contiguous(tile.slice(3, kh, tile.size(3)));
            left = B::contiguous(tile.slice(4, kw, tile.size(4)));
            ow += kw;
            kept_rows = kh;
        }
        HYVIDEO_CHECK(ow == out_shape[4], "tiled_in_space: tiles cover ", ow, " of ", out_shape[4], " columns");
        oh += kept_rows;
    }
    HYVIDEO_CHECK(oh == out_shape[3], "tiled_in_space: tiles cover ", oh, " of ", out_shape[3], " rows");
    return out;
}

// Temporal tiling over T (dim 2) of in [N, C, T, H, W]: tiles go through fn, and emit(t0, part)
// receives the kept, blended outputs in order, part covering output positions [t0, t0 + size).
// Returns the number of outputs emitted.
template <Backend B, class TileFn, class Emit>
std::int64_t tiled_in_time(const Tensor& in, const TileAxis& axis, TileFn&& fn, Emit&& emit) {
    const std::int64_t T = in.size(2);
    Tensor tail;
    std::int64_t emitted = 0;
    bool first = true;
    for (const std::int64_t s : axis.starts(T)) {
        Tensor tile = fn(in.slice(2, s, std::min(s + axis.tile, T)));
        const std::int64_t drop = first ? 0 : std::min(axis.drop_first, tile.size(2));
        tile = tile.slice(2, drop, tile.size(2));
        if (tail.defined()) tiling_detail::blend_seam<B>(tail, tile, 2, axis.blend);
        const std::int64_t k = std::min(axis.keep + (first ? axis.drop_first : 0), tile.size(2));
        if (k > 0) emit(emitted, tile.slice(2, 0, k));
        emitted += k;
        tail = B::contiguous(tile.slice(2, k, tile.size(2)));
        first = false;
    }
    return emitted;
}

}  // namespace hyvideo
