#pragma once
// MLPEmbedder (official modules/mlp_layers.py), used as `vector_in` for the pooled CLIP state:
// out_layer(SiLU(in_layer(y))).
#include <string>

#include "hyvideo/nn/linear.hpp"

namespace hyvideo {

template <Backend B>
struct MLPEmbedder {
    using backend = B;
    Linear<B> in_layer, out_layer;

    MLPEmbedder() = default;
    MLPEmbedder(std::int64_t in_dim, std::int64_t hidden_dim) : in_layer(in_dim, hidden_dim), out_layer(hidden_dim, hidden_dim) {}

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        in_layer.parameters(prefix + "in_layer.", visit);
        out_layer.parameters(prefix + "out_layer.", visit);
    }

    Tensor forward(const Tensor& y) const { return out_layer.forward(B::silu(in_layer.forward(y))); }
};

}  // namespace hyvideo
