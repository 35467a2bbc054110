#pragma once
// EncoderCausal3D (official hyvideo/vae/vae.py, docs/model.md#vae-encoder-and-decoder):
// video [N, 3, T, H, W] -> [N, 2·latent, 1 + (T−1)/4, ⌈H/8⌉, ⌈W/8⌉] (mean and log-variance channels,
// before quant_conv).
//
//   conv_in -> down_blocks (resnets, then a causal downsampler where the block halves T or H, W)
//           -> mid_block -> SiLU(conv_norm_out) -> conv_out
#include <string>
#include <vector>

#include "hyvideo/vae/config.hpp"
#include "hyvideo/vae/mid_block.hpp"
#include "hyvideo/vae/resnet_block.hpp"
#include "hyvideo/vae/sampling.hpp"

namespace hyvideo {

// DownEncoderBlockCausal3D: `layers` resnets (the first changes the channel count), then the
// downsampler if the block has one.
template <Backend B>
struct DownEncoderBlockCausal3D {
    using backend = B;
    std::vector<ResnetBlockCausal3D<B>> resnets;
    std::optional<DownsampleCausal3D<B>> downsampler;  // downsamplers.0

    DownEncoderBlockCausal3D() = default;
    DownEncoderBlockCausal3D(std::int64_t in, std::int64_t out, std::int64_t layers, std::int64_t groups,
                             std::array<std::int64_t, 3> stride) {
        for (std::int64_t i = 0; i < layers; ++i) resnets.emplace_back(i == 0 ? in : out, out, groups);
        if (stride != std::array<std::int64_t, 3>{1, 1, 1}) downsampler.emplace(out, stride);
    }

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        for (std::size_t i = 0; i < resnets.size(); ++i)
            resnets[i].parameters(prefix + "resnets." + std::to_string(i) + ".", visit);
        if (downsampler) downsampler->parameters(prefix + "downsamplers.0.", visit);
    }

    Tensor forward(Tensor h) const {
        for (const auto& r : resnets) h = r.forward(h);
        return downsampler ? downsampler->forward(h) : h;
    }
};

template <Backend B>
struct EncoderCausal3D {
    using backend = B;
    CausalConv3d<B> conv_in;
    std::vector<DownEncoderBlockCausal3D<B>> down_blocks;
    UNetMidBlockCausal3D<B> mid_block;
    GroupNorm<B> conv_norm_out;
    CausalConv3d<B> conv_out;

    EncoderCausal3D() = default;
    explicit EncoderCausal3D(const AutoencoderKLCausal3DConfig& c) {
        c.validate();
        const auto& ch = c.block_out_channels;
        conv_in = CausalConv3d<B>(c.in_channels, ch.front(), 3);
        for (std::size_t i = 0; i < ch.size(); ++i)
            down_blocks.emplace_back(i == 0 ? ch.front() : ch[i - 1], ch[i], c.layers_per_block, c.norm_num_groups,
                                     c.sampling_factor(i));
        mid_block = UNetMidBlockCausal3D<B>(ch.back(), c.norm_num_groups, ch.back(), c.mid_block_add_attention);
        conv_norm_out = GroupNorm<B>(c.norm_num_groups, ch.back());
        conv_out = CausalConv3d<B>(ch.back(), 2 * c.latent_channels, 3);  // double_z: mean and log-variance
    }

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        conv_in.parameters(prefix + "conv_in.", visit);
        for (std::size_t i = 0; i < down_blocks.size(); ++i)
            down_blocks[i].parameters(prefix + "down_blocks." + std::to_string(i) + ".", visit);
        mid_block.parameters(prefix + "mid_block.", visit);
        conv_norm_out.parameters(prefix + "conv_norm_out.", visit);
        conv_out.parameters(prefix + "conv_out.", visit);
    }

    Tensor forward(const Tensor& x) const {
        Tensor h = conv_in.forward(x);
        for (const auto& block : down_blocks) h = block.forward(std::move(h));
        h = mid_block.forward(h);
        return conv_out.forward(h, conv_norm_out.silu_into_conv(h));
    }
};

}  // namespace hyvideo
