#pragma once
// Convolutions of the causal VAE (official hyvideo/vae/unet_causal_3d_blocks.py).
//
// Conv3d is nn.Conv3d with zero padding: the VAE's quant_conv and post_quant_conv (1×1×1), and the
// module inside every CausalConv3d. CausalConv3d pads with edge copies, k/2 on both sides of H and W and
// k−1 frames in front of T only (docs/model.md#vae-causal-padding), so an output frame never sees a
// later input frame; the official module F.pad()s and then calls its `conv`, here the padding is handed
// to the backend's conv3d, which applies it while staging the input instead of copying the video.
#include <array>
#include <string>

#include "hyvideo/backend/backend.hpp"
#include "hyvideo/nn/module.hpp"

namespace hyvideo {

template <Backend B>
struct Conv3d {
    using backend = B;
    std::int64_t in_channels = 0, out_channels = 0;
    std::array<std::int64_t, 3> kernel_size{1, 1, 1}, stride{1, 1, 1}, padding{0, 0, 0};
    Tensor weight, bias;  // [out, in, kt, kh, kw], [out]

    Conv3d() = default;
    Conv3d(std::int64_t in, std::int64_t out, std::array<std::int64_t, 3> kernel,
           std::array<std::int64_t, 3> stride_ = {1, 1, 1}, std::array<std::int64_t, 3> padding_ = {0, 0, 0})
        : in_channels(in), out_channels(out), kernel_size(kernel), stride(stride_), padding(padding_) {}

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        visit(prefix + "weight", Shape{out_channels, in_channels, kernel_size[0], kernel_size[1], kernel_size[2]},
              weight);
        visit(prefix + "bias", Shape{out_channels}, bias);
    }

    Conv3dSpec spec() const {
        const auto [pt, ph, pw] = padding;
        return {stride, {pt, pt, ph, ph, pw, pw}, PadMode::zeros};
    }

    // `fusion`: an input map and a residual the backend applies as it reads and writes (Conv3dFusion).
    Tensor forward(const Tensor& x, const Conv3dFusion& fusion = {}) const {
        return B::conv3d(x, weight, bias, spec(), fusion);
    }
};

template <Backend B>
struct CausalConv3d {
    using backend = B;
    Conv3d<B> conv;  // unpadded; weight "conv.weight" as in the checkpoint

    CausalConv3d() = default;
    CausalConv3d(std::int64_t in, std::int64_t out, std::int64_t kernel, std::array<std::int64_t, 3> stride = {1, 1, 1})
        : conv(in, out, {kernel, kernel, kernel}, stride) {}

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        conv.parameters(prefix + "conv.", visit);
    }

    Tensor forward(const Tensor& x, const Conv3dFusion& fusion = {}) const {
        return B::conv3d(x, conv.weight, conv.bias, Conv3dSpec::causal(conv.kernel_size[0], conv.stride), fusion);
    }
};

}  // namespace hyvideo
