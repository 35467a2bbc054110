#pragma once
// nn.LayerNorm over the last dimension; HunyuanVideo's DiT blocks use it without affine parameters
// (eps 1e-6), the token refiner with them.
#include <string>

#include "hyvideo/backend/backend.hpp"
#include "hyvideo/nn/module.hpp"

namespace hyvideo {

template <Backend B>
struct LayerNorm {
    using backend = B;
    std::int64_t dim = 0;
    float eps = 1e-6f;
    bool elementwise_affine = false;
    Tensor weight, bias;

    LayerNorm() = default;
    explicit LayerNorm(std::int64_t d, bool affine = false, float e = 1e-6f) : dim(d), eps(e), elementwise_affine(affine) {}

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        if (!elementwise_affine) return;
        visit(prefix + "weight", Shape{dim}, weight);
        visit(prefix + "bias", Shape{dim}, bias);
    }

    Tensor forward(const Tensor& x) const { return B::layer_norm(x, weight, bias, eps); }
};

}  // namespace hyvideo
