#pragma once
// nn.Linear: y = x·Wᵀ + b, weight [out, in] as in PyTorch state_dicts.
#include <string>

#include "hyvideo/backend/backend.hpp"
#include "hyvideo/nn/module.hpp"

namespace hyvideo {

template <Backend B>
struct Linear {
    using backend = B;
    std::int64_t in_features = 0, out_features = 0;
    bool has_bias = true;
    Tensor weight, bias;

    Linear() = default;
    Linear(std::int64_t in, std::int64_t out, bool with_bias = true)
        : in_features(in), out_features(out), has_bias(with_bias) {}

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        visit(prefix + "weight", Shape{out_features, in_features}, weight);
        if (has_bias) visit(prefix + "bias", Shape{out_features}, bias);
    }

    Tensor forward(const Tensor& x) const { return B::linear(x, weight, bias); }
};

}  // namespace hyvideo
