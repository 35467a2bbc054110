#pragma once
// Golden case `timestep_embedder`: the sinusoidal frequencies and the TimestepEmbedder MLP.
#include "hyvideo/golden/case_result.hpp"
#include "hyvideo/golden/fixture.hpp"
#include "hyvideo/nn/timestep_embedder.hpp"

namespace hyvideo::golden {

template <Backend B>
CaseResult run_timestep_embedder(const Fixture& f) {
    const auto& c = f.config();
    TimestepEmbedder<B> emb(Fixture::get<std::int64_t>(c, "hidden_size"),
                            Fixture::get<std::int64_t>(c, "frequency_embedding_size"),
                            Fixture::get<float>(c, "max_period"));
    load_weights_strict(emb, f.params());
    const Tensor t = B::upload(f.input("t"));
    CaseResult r;
    r.outputs["freq"] = B::download(emb.frequency_embedding(t));
    r.outputs["emb"] = B::download(emb.forward(t));
    return r;
}

}  // namespace hyvideo::golden
