#pragma once
// RMSNorm (official modules/norm_layers.py): x·rsqrt(mean(x²) + eps), then × weight.
#include <string>

#include "hyvideo/backend/backend.hpp"
#include "hyvideo/nn/module.hpp"

namespace hyvideo {

template <Backend B>
struct RMSNorm {
    using backend = B;
    std::int64_t dim = 0;
    float eps = 1e-6f;
    bool elementwise_affine = true;
    Tensor weight;

    RMSNorm() = default;
    explicit RMSNorm(std::int64_t d, float e = 1e-6f, bool affine = true) : dim(d), eps(e), elementwise_affine(affine) {}

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        if (elementwise_affine) visit(prefix + "weight", Shape{dim}, weight);
    }

    Tensor forward(const Tensor& x) const { return B::rms_norm(x, weight, eps); }
};

}  // namespace hyvideo
