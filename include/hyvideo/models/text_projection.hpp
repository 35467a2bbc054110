#pragma once
// TextProjection (official modules/embed_layers.py): linear_2(SiLU(linear_1(x))). It is the token
// refiner's c_embedder, and the whole text input path when text_projection == "linear".
#include <cstdint>
#include <string>
#include <vector>

#include "hyvideo/nn/linear.hpp"

namespace hyvideo {

template <Backend B>
struct TextProjection {
    using backend = B;
    Linear<B> linear_1, linear_2;

    TextProjection() = default;
    TextProjection(std::int64_t in_channels, std::int64_t hidden) : linear_1(in_channels, hidden), linear_2(hidden, hidden) {}

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        linear_1.parameters(prefix + "linear_1.", visit);
        linear_2.parameters(prefix + "linear_2.", visit);
    }

    Tensor forward(const Tensor& x) const { return linear_2.forward(B::silu(linear_1.forward(x))); }

    // As the model's txt_in: the same signatures as SingleTokenRefiner, ignoring t and the mask.
    Tensor forward(const Tensor& x, const Tensor& /*t*/, const Tensor& /*mask*/) const { return forward(x); }
    Tensor forward(const Tensor& x, const Tensor& /*t*/, const Tensor& /*mask*/, const std::vector<std::int64_t>& /*lengths*/) const {
        return forward(x);
    }
};

}  // namespace hyvideo
