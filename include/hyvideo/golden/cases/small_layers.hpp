#pragma once
// Golden case `small_layers`: vector_in (MLPEmbedder), final_layer (FinalLayer), img_in
// (PatchEmbed), RMSNorm and the GELU-tanh MLP, each under its own weight prefix.
#include <array>

#include "hyvideo/golden/case_result.hpp"
#include "hyvideo/golden/fixture.hpp"
#include "hyvideo/models/final_layer.hpp"
#include "hyvideo/nn/mlp.hpp"
#include "hyvideo/nn/mlp_embedder.hpp"
#include "hyvideo/nn/patch_embed.hpp"
#include "hyvideo/nn/rms_norm.hpp"

namespace hyvideo::golden {

template <Backend B>
CaseResult run_small_layers(const Fixture& f) {
    using Patch = std::array<std::int64_t, 3>;
    const auto& c = f.config();
    CaseResult r;

    const auto& vi = c.at("vector_in");
    MLPEmbedder<B> vector_in(Fixture::get<std::int64_t>(vi, "in"), Fixture::get<std::int64_t>(vi, "hidden"));
    load_weights(vector_in, f.params(), "vector_in.");
    r.outputs["vector_in"] = B::download(vector_in.forward(B::upload(f.input("text_states_2"))));

    const auto& fl = c.at("final_layer");
    FinalLayer<B> final_layer(Fixture::get<std::int64_t>(fl, "hidden"), Fixture::get<Patch>(fl, "patch"),
                              Fixture::get<std::int64_t>(fl, "out_channels"));
    load_weights(final_layer, f.params(), "final_layer.");
    r.outputs["final_layer"] =
        B::download(final_layer.forward(B::upload(f.input("final_x")), B::upload(f.input("final_c"))));

    const auto& ii = c.at("img_in");
    PatchEmbed<B> img_in(Fixture::get<Patch>(ii, "patch"), Fixture::get<std::int64_t>(ii, "in_channels"),
                         Fixture::get<std::int64_t>(ii, "hidden"));
    load_weights(img_in, f.params(), "img_in.");
    r.outputs["img_in"] = B::download(img_in.forward(B::upload(f.input("latent"))));

    const auto& rc = c.at("rms");
    RMSNorm<B> rms(Fixture::get<std::int64_t>(rc, "dim"), Fixture::get<float>(rc, "eps"));
    load_weights(rms, f.params(), "rms.");
    r.outputs["rms"] = B::download(rms.forward(B::upload(f.input("rms_x"))));

    const auto& mc = c.at("mlp");
    HYVIDEO_CHECK(Fixture::get<std::string>(mc, "act") == "gelu_tanh", "small_layers: mlp act ", mc.at("act").dump(),
                  " is not gelu_tanh");
    MLP<B, GeluTanh> mlp(Fixture::get<std::int64_t>(mc, "in"), Fixture::get<std::int64_t>(mc, "hidden"));
    load_weights(mlp, f.params(), "mlp.");
    r.outputs["mlp"] = B::download(mlp.forward(B::upload(f.input("mlp_x"))));
    return r;
}

}  // namespace hyvideo::golden
