#pragma once
// nn.GroupNorm over [N, C, ...] (channels on dim 1), the causal VAE's only normalisation: eps 1e-6
// and 32 groups in the released model, statistics over every position of the tensor it is given
// (so over the whole tile when tiling, docs/model.md#vae-resnet-block-and-groupnorm).
#include <string>

#include "hyvideo/backend/backend.hpp"
#include "hyvideo/nn/module.hpp"

namespace hyvideo {

template <Backend B>
struct GroupNorm {
    using backend = B;
    std::int64_t num_groups = 32, num_channels = 0;
    float eps = 1e-6f;
    Tensor weight, bias;

    GroupNorm() = default;
    GroupNorm(std::int64_t groups, std::int64_t channels, float e = 1e-6f)
        : num_groups(groups), num_channels(channels), eps(e) {
        HYVIDEO_CHECK(groups >= 1 && channels % groups == 0, "GroupNorm: ", channels, " channels do not split into ",
                      groups, " groups");
    }

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        visit(prefix + "weight", Shape{num_channels}, weight);
        visit(prefix + "bias", Shape{num_channels}, bias);
    }

    Tensor forward(const Tensor& x) const { return B::group_norm(x, weight, bias, num_groups, eps); }
    // SiLU(GroupNorm(x)), the pair every resnet and the encoder's and decoder's outputs apply, in one
    // pass over memory.

    // SiLU(GroupNorm(x)) as the input map of the convolution that reads it: GroupNorm is a
    // per-channel affine map once its statistics are known, so the convolution can apply it (and
    // SiLU) while it stages its input, and the normalised activations never exist as a tensor.
    Conv3dFusion silu_into_conv(const Tensor& x) const {
        const Tensor map = B::group_norm_affine(x, weight, bias, num_groups, eps);  // [2, N, C]
        return {map.select(0, 0), map.select(0, 1), true, {}};
    }
};

}  // namespace hyvideo
