#pragma once
// DownsampleCausal3D and UpsampleCausal3D (official unet_causal_3d_blocks.py,
// docs/model.md#vae-sampling).
//
// Down: a k = 3 causal convolution with stride (sT, 2, 2); T_out = ⌊(T−1)/sT⌋ + 1, H_out = ⌈H/2⌉.
// Up: nearest upsampling, frame 0 in space only and the other frames in time and space (so with
// factor (2, 2, 2) T_out = 1 + 2(T−1): f0 f1 f1 f2 f2 ...), then a k = 3 causal convolution.
#include <array>
#include <string>

#include "hyvideo/vae/causal_conv3d.hpp"

namespace hyvideo {

template <Backend B>
struct DownsampleCausal3D {
    using backend = B;
    CausalConv3d<B> conv;

    DownsampleCausal3D() = default;
    DownsampleCausal3D(std::int64_t channels, std::array<std::int64_t, 3> stride) : conv(channels, channels, 3, stride) {}

    // The checkpoint names it downsamplers.0.conv.conv.*. (A module built with the official default
    // name="conv" also registers the same convolution as `Conv2d_0`, a diffusers legacy alias that
    // the encoder's blocks, built with name="op", do not have.)
    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        conv.parameters(prefix + "conv.", visit);
    }

    Tensor forward(const Tensor& x) const { return conv.forward(x); }
};

template <Backend B>
struct UpsampleCausal3D {
    using backend = B;
    std::array<std::int64_t, 3> upsample_factor{2, 2, 2};
    CausalConv3d<B> conv;

    UpsampleCausal3D() = default;
    UpsampleCausal3D(std::int64_t channels, std::array<std::int64_t, 3> factor)
        : upsample_factor(factor), conv(channels, channels, 3) {}

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        conv.parameters(prefix + "conv.", visit);
    }

    Tensor forward(const Tensor& x) const { return conv.forward(B::upsample_nearest(x, upsample_factor, true)); }
};

}  // namespace hyvideo
