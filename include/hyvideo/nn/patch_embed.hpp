#pragma once
// PatchEmbed (official modules/embed_layers.py, `img_in`): a Conv3d whose kernel equals its stride,
// then flatten to tokens in (t, h, w) order. Because kernel == stride, the convolution is exactly a
// matrix product over non-overlapping patches: patchify (a view plus one copy) and one GEMM.
#include <array>
#include <string>

#include "hyvideo/nn/linear.hpp"

namespace hyvideo {

// [B, C, T, H, W] -> [B, T'·H'·W', C·pt·ph·pw], patch channels ordered (c, pt, ph, pw) like a
// Conv3d weight's trailing dims. Remainders that do not fill a patch are dropped, as Conv3d does.
template <Backend B>
Tensor patchify(const Tensor& x, std::array<std::int64_t, 3> patch) {
    HYVIDEO_CHECK(x.dim() == 5, "patchify: expected [B, C, T, H, W], got ", shape_str(x.shape()));
    const auto [pt, ph, pw] = patch;
    const std::int64_t N = x.size(0), C = x.size(1);
    const std::int64_t T = x.size(2) / pt, H = x.size(3) / ph, W = x.size(4) / pw;
    HYVIDEO_CHECK(T > 0 && H > 0 && W > 0, "patchify: input ", shape_str(x.shape()), " smaller than patch [", pt,
                  ", ", ph, ", ", pw, "]");
    Tensor v = B::contiguous(x.slice(2, 0, T * pt).slice(3, 0, H * ph).slice(4, 0, W * pw))
                   .reshape({N, C, T, pt, H, ph, W, pw})
                   .permute({0, 2, 4, 6, 1, 3, 5, 7});
    return B::contiguous(v).reshape({N, T * H * W, C * pt * ph * pw});
}

// The inverse for the final layer's output: [B, T·H·W, C·pt·ph·pw] -> [B, C, T·pt, H·ph, W·pw]
// (official HYVideoDiffusionTransformer.unpatchify, einsum "nthwcopq->nctohpwq").
template <Backend B>
Tensor unpatchify(const Tensor& y, std::int64_t channels, std::array<std::int64_t, 3> grid,
                  std::array<std::int64_t, 3> patch) {
    const auto [T, H, W] = grid;
    const auto [pt, ph, pw] = patch;
    HYVIDEO_CHECK(y.dim() == 3 && y.size(1) == T * H * W && y.size(2) == channels * pt * ph * pw,
                  "unpatchify: expected [B, ", T * H * W, ", ", channels * pt * ph * pw, "], got ",
                  shape_str(y.shape()));
    const std::int64_t N = y.size(0);
    Tensor v = B::contiguous(y).reshape({N, T, H, W, channels, pt, ph, pw}).permute({0, 4, 1, 5, 2, 6, 3, 7});
    return B::contiguous(v).reshape({N, channels, T * pt, H * ph, W * pw});
}

template <Backend B>
struct PatchEmbed {
    using backend = B;
    std::array<std::int64_t, 3> patch_size{1, 2, 2};
    std::int64_t in_channels = 0, embed_dim = 0;
    Tensor weight, bias;  // proj.weight [embed, C, pt, ph, pw], proj.bias [embed]

    PatchEmbed() = default;
    PatchEmbed(std::array<std::int64_t, 3> patch, std::int64_t in_ch, std::int64_t dim)
        : patch_size(patch), in_channels(in_ch), embed_dim(dim) {}

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        visit(prefix + "proj.weight", Shape{embed_dim, in_channels, patch_size[0], patch_size[1], patch_size[2]},
              weight);
        visit(prefix + "proj.bias", Shape{embed_dim}, bias);
    }

    // x [B, C, T, H, W] -> tokens [B, T'·H'·W', embed_dim].
    Tensor forward(const Tensor& x) const {
        HYVIDEO_CHECK(x.dim() == 5 && x.size(1) == in_channels, "PatchEmbed: expected [B, ", in_channels,
                      ", T, H, W], got ", shape_str(x.shape()));
        const Tensor w = weight.reshape({embed_dim, -1});
        return B::linear(patchify<B>(x, patch_size), w, bias);
    }
};

}  // namespace hyvideo
