#pragma once
// Conv3dSpec: how a 3-D convolution walks its input, described once for every backend.
//
// A backend's conv3d(x, weight, bias, spec) computes torch.nn.functional.conv3d of the padded input,
// where the padding is part of the spec rather than a separate tensor: the causal VAE pads with edge
// copies (replicate), two frames in front and none behind (docs/model.md#vae-causal-padding), and a
// backend that applies the padding while it stages the input never materialises the padded video.
#include <array>
#include <cstdint>
#include <string>

#include "hyvideo/core/error.hpp"
#include "hyvideo/core/tensor.hpp"

namespace hyvideo {

enum class PadMode : std::uint8_t {
    zeros,      // F.pad(mode="constant"), what nn.Conv3d(padding=...) does
    replicate,  // F.pad(mode="replicate"): out-of-range positions read the nearest edge element
};

struct Conv3dSpec {
    std::array<std::int64_t, 3> stride{1, 1, 1};  // (t, h, w)
    // Elements added before and after each axis: (t_front, t_back, h_top, h_bottom, w_left, w_right).
    // (F.pad lists the same six numbers from the last axis backwards: W, H, T.)
    std::array<std::int64_t, 6> padding{0, 0, 0, 0, 0, 0};
    PadMode pad_mode = PadMode::zeros;

    // CausalConv3d (docs/model.md#vae-causal-padding): replicate padding of k/2 on both sides of H
    // and W and k−1 frames in front of T, so output frame t sees input frames t−k+1 .. t and never a
    // later one.
    static Conv3dSpec causal(std::int64_t kernel, std::array<std::int64_t, 3> stride = {1, 1, 1}) {
        const std::int64_t s = kernel / 2;
        return {stride, {kernel - 1, 0, s, s, s, s}, PadMode::replicate};
    }

    // The output shape for x [N, Cin, T, H, W] and weight [Cout, Cin, kt, kh, kw]; throws with both
    // shapes when they do not describe a convolution.
    Shape output_shape(const Shape& x, const Shape& weight) const {
        HYVIDEO_CHECK(x.size() == 5, "conv3d: input must be [N, C, T, H, W], got ", shape_str(x));
        HYVIDEO_CHECK(weight.size() == 5, "conv3d: weight must be [Cout, Cin, kT, kH, kW], got ", shape_str(weight));
        HYVIDEO_CHECK(weight[1] == x[1], "conv3d: weight ", shape_str(weight), " expects ", weight[1],
                      " input channels, the input ", shape_str(x), " has ", x[1]);
        Shape out{x[0], weight[0], 0, 0, 0};
        for (int d = 0; d < 3; ++d) {
            HYVIDEO_CHECK(stride[d] >= 1, "conv3d: stride must be positive, got ", stride[d]);
            HYVIDEO_CHECK(padding[2 * d] >= 0 && padding[2 * d + 1] >= 0, "conv3d: negative padding");
            HYVIDEO_CHECK(weight[2 + d] >= 1, "conv3d: empty kernel ", shape_str(weight));
            // Replicate padding needs an element to copy; zero padding of an empty axis is still empty input.
            HYVIDEO_CHECK(x[2 + d] >= 1 || pad_mode == PadMode::zeros, "conv3d: replicate padding of an empty axis in ",
                          shape_str(x));
            const std::int64_t padded = x[2 + d] + padding[2 * d] + padding[2 * d + 1];
            HYVIDEO_CHECK(padded >= weight[2 + d], "conv3d: padded input ", shape_str(x), " is smaller than the kernel ",
                          shape_str(weight), " along axis ", 2 + d);
            out[2 + d] = (padded - weight[2 + d]) / stride[d] + 1;
        }
        return out;
    }
};

// What a convolution computes around itself, so that the tensors in between never exist:
//   on its input   x' = x·in_scale[n, c] + in_shift[n, c], then SiLU if in_silu — GroupNorm and the
//                  activation after it (docs/model.md#vae-resnet-block-and-groupnorm) — before the
//                  padding reads x' (replicate padding copies mapped values, zero padding stays zero);
//   on its output  y = conv(x') + bias + residual.
struct Conv3dFusion {
    Tensor in_scale, in_shift;  // [N, Cin] each, or both undefined: no map
    bool in_silu = false;
    Tensor residual;            // the output's shape, or undefined
};

}  // namespace hyvideo
