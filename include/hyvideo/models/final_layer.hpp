#pragma once
// FinalLayer (official modules/models.py): shift, scale = adaLN_modulation(SiLU(c)) — shift first —
// then linear(modulate(LayerNorm(x), shift, scale)).
#include <array>
#include <string>

#include "hyvideo/nn/layer_norm.hpp"
#include "hyvideo/nn/linear.hpp"

namespace hyvideo {

template <Backend B>
struct FinalLayer {
    using backend = B;
    std::int64_t hidden_size = 0;
    LayerNorm<B> norm_final;
    Linear<B> linear;
    Linear<B> adaLN_modulation;  // nn.Sequential(SiLU, Linear): the Linear is index 1

    FinalLayer() = default;
    FinalLayer(std::int64_t hidden, std::array<std::int64_t, 3> patch, std::int64_t out_channels)
        : hidden_size(hidden), norm_final(hidden, false, 1e-6f),
          linear(hidden, patch[0] * patch[1] * patch[2] * out_channels), adaLN_modulation(hidden, 2 * hidden) {}

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        linear.parameters(prefix + "linear.", visit);
        adaLN_modulation.parameters(prefix + "adaLN_modulation.1.", visit);
    }

    // x [B, L, hidden], c [B, hidden] -> [B, L, pt·ph·pw·out_channels].
    Tensor forward(const Tensor& x, const Tensor& c) const {
        const Tensor mod = adaLN_modulation.forward(B::silu(c));
        const Tensor shift = mod.slice(1, 0, hidden_size), scale = mod.slice(1, hidden_size, 2 * hidden_size);
        return linear.forward(B::modulate(norm_final.forward(x), shift, scale));
    }
};

}  // namespace hyvideo
