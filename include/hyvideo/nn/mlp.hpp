#pragma once
// MLP (official modules/mlp_layers.py::MLP): fc2(act(fc1(x))), no norm, no dropout at inference.
#include <string>

#include "hyvideo/nn/activation.hpp"
#include "hyvideo/nn/linear.hpp"

namespace hyvideo {

template <Backend B, class Act = GeluTanh>
struct MLP {
    using backend = B;
    Linear<B> fc1, fc2;

    MLP() = default;
    MLP(std::int64_t in, std::int64_t hidden, std::int64_t out = 0, bool bias = true)
        : fc1(in, hidden, bias), fc2(hidden, out ? out : in, bias) {}

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        fc1.parameters(prefix + "fc1.", visit);
        fc2.parameters(prefix + "fc2.", visit);
    }

    Tensor forward(const Tensor& x) const { return fc2.forward(Act::template apply<B>(fc1.forward(x))); }
};

}  // namespace hyvideo
