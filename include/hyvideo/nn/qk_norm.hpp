#pragma once
// Per-head normalisation of q and k, as a template parameter of the blocks. Each type is built from
// the head dim and exposes the official weight names of its kind: RMSNorm (HunyuanVideo, weight
// only), LayerNormQK (qk_norm_type "layer": weight and bias) or NoQKNorm (qk_norm=False).
#include <string>

#include "hyvideo/nn/layer_norm.hpp"
#include "hyvideo/nn/rms_norm.hpp"

namespace hyvideo {

template <Backend B>
struct LayerNormQK : LayerNorm<B> {
    LayerNormQK() = default;
    explicit LayerNormQK(std::int64_t head_dim) : LayerNorm<B>(head_dim, true, 1e-6f) {}
};

template <Backend B>
struct NoQKNorm {
    using backend = B;
    NoQKNorm() = default;
    explicit NoQKNorm(std::int64_t) {}
    template <class V>
    void parameters(const std::string&, V&&) {}
    Tensor forward(const Tensor& x) const { return x; }
};

}  // namespace hyvideo
