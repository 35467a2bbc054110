#pragma once
// DecoderCausal3D (official hyvideo/vae/vae.py, docs/model.md#vae-encoder-and-decoder):
// latents [N, latent, T, h, w] -> video [N, 3, 1 + 4(T−1), 8h, 8w].
//
//   conv_in -> mid_block -> up_blocks (resnets, then a causal upsampler where the block doubles T or
//   H, W) -> SiLU(conv_norm_out) -> conv_out
#include <string>
#include <vector>

#include "hyvideo/vae/config.hpp"
#include "hyvideo/vae/mid_block.hpp"
#include "hyvideo/vae/resnet_block.hpp"
#include "hyvideo/vae/sampling.hpp"

namespace hyvideo {

// UpDecoderBlockCausal3D: `layers` resnets (the first changes the channel count), then the
// upsampler if the block has one.
template <Backend B>
struct UpDecoderBlockCausal3D {
    using backend = B;
    std::vector<ResnetBlockCausal3D<B>> resnets;
    std::optional<UpsampleCausal3D<B>> upsampler;  // upsamplers.0

    UpDecoderBlockCausal3D() = default;
    UpDecoderBlockCausal3D(std::int64_t in, std::int64_t out, std::int64_t layers, std::int64_t groups,
                           std::array<std::int64_t, 3> factor) {
        for (std::int64_t i = 0; i < layers; ++i) resnets.emplace_back(i == 0 ? in : out, out, groups);
        if (factor != std::array<std::int64_t, 3>{1, 1, 1}) upsampler.emplace(out, factor);
    }

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        for (std::size_t i = 0; i < resnets.size(); ++i)
            resnets[i].parameters(prefix + "resnets." + std::to_string(i) + ".", visit);
        if (upsampler) upsampler->parameters(prefix + "upsamplers.0.", visit);
    }

    Tensor forward(Tensor h) const {
        for (const auto& r : resnets) h = r.forward(h);
        return upsampler ? upsampler->forward(h) : h;
    }
};

template <Backend B>
struct DecoderCausal3D {
    using backend = B;
    CausalConv3d<B> conv_in;
    std::vector<UpDecoderBlockCausal3D<B>> up_blocks;
    UNetMidBlockCausal3D<B> mid_block;
    GroupNorm<B> conv_norm_out;
    CausalConv3d<B> conv_out;

    DecoderCausal3D() = default;
    explicit DecoderCausal3D(const AutoencoderKLCausal3DConfig& c) {
        c.validate();
        const std::vector<std::int64_t> ch(c.block_out_channels.rbegin(), c.block_out_channels.rend());
        conv_in = CausalConv3d<B>(c.latent_channels, ch.front(), 3);
        mid_block = UNetMidBlockCausal3D<B>(ch.front(), c.norm_num_groups, ch.front(), c.mid_block_add_attention);
        // One resnet more per block than the encoder; up block i mirrors down block i.
        for (std::size_t i = 0; i < ch.size(); ++i)
            up_blocks.emplace_back(i == 0 ? ch.front() : ch[i - 1], ch[i], c.layers_per_block + 1, c.norm_num_groups,
                                   c.sampling_factor(i));
        conv_norm_out = GroupNorm<B>(c.norm_num_groups, ch.back());
        conv_out = CausalConv3d<B>(ch.back(), c.out_channels, 3);
    }

    // Checkpoint order: the official decoder registers up_blocks before mid_block.
    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        conv_in.parameters(prefix + "conv_in.", visit);
        for (std::size_t i = 0; i < up_blocks.size(); ++i)
            up_blocks[i].parameters(prefix + "up_blocks." + std::to_string(i) + ".", visit);
        mid_block.parameters(prefix + "mid_block.", visit);
        conv_norm_out.parameters(prefix + "conv_norm_out.", visit);
        conv_out.parameters(prefix + "conv_out.", visit);
    }

    Tensor forward(const Tensor& z) const {
        Tensor h = mid_block.forward(conv_in.forward(z));
        for (const auto& block : up_blocks) h = block.forward(std::move(h));
        return conv_out.forward(h, conv_norm_out.silu_into_conv(h));
    }
};

}  // namespace hyvideo
