#pragma once
// ResnetBlockCausal3D (official unet_causal_3d_blocks.py), as the VAE builds it: no time embedding,
// output scale 1, no dropout at inference (docs/model.md#vae-resnet-block-and-groupnorm).
//
//   out = shortcut(x) + conv2(SiLU(norm2(conv1(SiLU(norm1(x))))))
//
// conv1 and conv2 are k = 3 causal convolutions; conv_shortcut, a k = 1 one, exists only when the
// block changes the channel count.
#include <optional>
#include <string>

#include "hyvideo/vae/causal_conv3d.hpp"
#include "hyvideo/vae/group_norm.hpp"

namespace hyvideo {

template <Backend B>
struct ResnetBlockCausal3D {
    using backend = B;
    std::int64_t in_channels = 0, out_channels = 0;
    GroupNorm<B> norm1, norm2;
    CausalConv3d<B> conv1, conv2;
    std::optional<CausalConv3d<B>> conv_shortcut;

    ResnetBlockCausal3D() = default;
    ResnetBlockCausal3D(std::int64_t in, std::int64_t out, std::int64_t groups, float eps = 1e-6f)
        : in_channels(in), out_channels(out), norm1(groups, in, eps), norm2(groups, out, eps), conv1(in, out, 3),
          conv2(out, out, 3) {
        if (in != out) conv_shortcut.emplace(in, out, 1);
    }

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        norm1.parameters(prefix + "norm1.", visit);
        conv1.parameters(prefix + "conv1.", visit);
        norm2.parameters(prefix + "norm2.", visit);
        conv2.parameters(prefix + "conv2.", visit);
        if (conv_shortcut) conv_shortcut->parameters(prefix + "conv_shortcut.", visit);
    }

    // x [N, in, T, H, W] -> [N, out, T, H, W]. Each SiLU(GroupNorm(·)) is applied by the convolution
    // that reads it and the residual is added by the one that writes the output, so besides the input
    // and the output only conv1's result exists: at the VAE's output resolution one activation is
    // hundreds of megabytes.
    Tensor forward(const Tensor& x) const {
        const Tensor h = conv1.forward(x, norm1.silu_into_conv(x));
        Conv3dFusion f = norm2.silu_into_conv(h);
        f.residual = conv_shortcut ? conv_shortcut->forward(x) : x;
        return conv2.forward(h, f);
    }
};

}  // namespace hyvideo
