#pragma once
// Positional embedding of image tokens, as a template parameter of the blocks: HunyuanVideo rotates
// q and k with 3D RoPE (after QK-norm, image tokens only); NoPositionalEmbedding is the ablation.
#include "hyvideo/backend/backend.hpp"
#include "hyvideo/nn/rope3d.hpp"

namespace hyvideo {

struct Rope3DEmbedding {
    template <Backend B>
    static Tensor apply(const Tensor& x, const RopeTables& rope) {
        return B::apply_rope(x, rope.cos, rope.sin);
    }
};

struct NoPositionalEmbedding {
    template <Backend B>
    static Tensor apply(const Tensor& x, const RopeTables&) { return x; }
};

}  // namespace hyvideo
