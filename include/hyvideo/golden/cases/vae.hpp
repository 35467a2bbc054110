#pragma once
// Golden cases of the causal 3D VAE: `vae_blocks` (CausalConv3d with stride 1 and 2, the resnet,
// the samplers and the mid block, each under its own weight prefix), `vae_tiny` (untiled encode and
// decode of a small AutoencoderKLCausal3D) and `vae_tiled` (the same with spatial and temporal
// tiling at the official ratios, and the untiled decode of the same latents).
#include <array>
#include <string>

#include "hyvideo/golden/case_result.hpp"
#include "hyvideo/golden/fixture.hpp"
#include "hyvideo/vae/autoencoder_kl_causal_3d.hpp"

namespace hyvideo::golden {

template <Backend B>
CaseResult run_vae_blocks(const Fixture& f) {
    using Triple = std::array<std::int64_t, 3>;
    const auto& c = f.config();
    CaseResult r;
    const Tensor conv_x = B::upload(f.input("conv_x")), resnet_x = B::upload(f.input("resnet_x"));

    for (const char* name : {"conv", "conv_s2"}) {
        const auto& cc = c.at(name);
        if (cc.contains("pad_mode"))
            HYVIDEO_CHECK(Fixture::get<std::string>(cc, "pad_mode") == "replicate", "vae_blocks: ", name,
                          " pad_mode is not replicate");
        const std::int64_t s = Fixture::get<std::int64_t>(cc, "stride");
        CausalConv3d<B> conv(Fixture::get<std::int64_t>(cc, "in"), Fixture::get<std::int64_t>(cc, "out"),
                             Fixture::get<std::int64_t>(cc, "kernel"), {s, s, s});
        load_weights_strict(conv, f.params(), std::string(name) + ".");
        r.outputs[name] = B::download(conv.forward(conv_x));
    }

    const auto& rc = c.at("resnet");
    ResnetBlockCausal3D<B> resnet(Fixture::get<std::int64_t>(rc, "in"), Fixture::get<std::int64_t>(rc, "out"),
                                  Fixture::get<std::int64_t>(rc, "groups"), Fixture::get<float>(rc, "eps"));
    load_weights_strict(resnet, f.params(), "resnet.");
    r.outputs["resnet"] = B::download(resnet.forward(resnet_x));

    for (const char* name : {"up_t", "up_s"}) {
        const auto& uc = c.at(name);
        UpsampleCausal3D<B> up(Fixture::get<std::int64_t>(uc, "channels"), Fixture::get<Triple>(uc, "factor"));
        load_weights_strict(up, f.params(), std::string(name) + ".");
        r.outputs[name] = B::download(up.forward(resnet_x));
    }
    for (const char* name : {"down_t", "down_s"}) {
        const auto& dc = c.at(name);
        DownsampleCausal3D<B> down(Fixture::get<std::int64_t>(dc, "channels"), Fixture::get<Triple>(dc, "stride"));
        // Not strict: built with the official default name "conv", the fixture's module also lists
        // its convolution as the alias `Conv2d_0` (see DownsampleCausal3D).
        load_weights(down, f.params(), std::string(name) + ".");
        r.outputs[name] = B::download(down.forward(resnet_x));
    }

    const auto& mc = c.at("mid");
    HYVIDEO_CHECK(!mc.contains("causal_frame_mask") || Fixture::get<bool>(mc, "causal_frame_mask"),
                  "vae_blocks: the mid block's attention is frame-causal");
    UNetMidBlockCausal3D<B> mid(Fixture::get<std::int64_t>(mc, "channels"), Fixture::get<std::int64_t>(mc, "groups"),
                                Fixture::get<std::int64_t>(mc, "attention_head_dim"), true, 1,
                                Fixture::get<float>(mc, "eps"));
    load_weights_strict(mid, f.params(), "mid.");
    r.outputs["mid"] = B::download(mid.forward(B::upload(f.input("mid_x"))));
    return r;
}

template <Backend B>
CaseResult run_vae_tiny(const Fixture& f) {
    AutoencoderKLCausal3D<B> vae(AutoencoderKLCausal3DConfig::from_json(f.config()));
    load_weights_strict(vae, f.params());
    const auto posterior = vae.encode(B::upload(f.input("video")));
    CaseResult r;
    r.outputs["mean"] = B::download(posterior.mean);
    r.outputs["logvar"] = B::download(posterior.logvar);
    r.outputs["decoded"] = B::download(vae.decode(B::upload(f.input("z"))));
    return r;
}

template <Backend B>
CaseResult run_vae_tiled(const Fixture& f) {
    const auto& c = f.config();
    AutoencoderKLCausal3D<B> vae(AutoencoderKLCausal3DConfig::from_json(c));
    load_weights_strict(vae, f.params());
    const Tensor z = B::upload(f.input("z"));
    CaseResult r;
    r.outputs["decoded_untiled"] = B::download(vae.decode(z));

    vae.tiling.spatial = Fixture::get<bool>(c, "spatial_tiling");
    vae.tiling.temporal = Fixture::get<bool>(c, "temporal_tiling");
    vae.tiling.tile_overlap_factor = Fixture::get<double>(c, "tile_overlap_factor");
    const auto posterior = vae.encode(B::upload(f.input("video")));
    r.outputs["mean"] = B::download(posterior.mean);
    r.outputs["logvar"] = B::download(posterior.logvar);
    r.outputs["decoded"] = B::download(vae.decode(z));
    return r;
}

}  // namespace hyvideo::golden
