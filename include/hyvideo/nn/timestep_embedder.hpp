#pragma once
// TimestepEmbedder (official modules/embed_layers.py): mlp.2(SiLU(mlp.0(sinusoid(t)))), used as
// time_in, guidance_in and the token refiner's t_embedder.
#include <string>

#include "hyvideo/nn/linear.hpp"

namespace hyvideo {

template <Backend B>
struct TimestepEmbedder {
    using backend = B;
    std::int64_t hidden_size = 0;
    std::int64_t frequency_embedding_size = 256;
    float max_period = 10000.0f;
    Linear<B> mlp0, mlp2;  // nn.Sequential(Linear, SiLU, Linear): indices 0 and 2

    TimestepEmbedder() = default;
    explicit TimestepEmbedder(std::int64_t hidden, std::int64_t freq_size = 256, float period = 10000.0f,
                              std::int64_t out_size = 0)
        : hidden_size(hidden), frequency_embedding_size(freq_size), max_period(period),
          mlp0(freq_size, hidden), mlp2(hidden, out_size ? out_size : hidden) {}

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        mlp0.parameters(prefix + "mlp.0.", visit);
        mlp2.parameters(prefix + "mlp.2.", visit);
    }

    // The sinusoidal features alone, [N, frequency_embedding_size].
    Tensor frequency_embedding(const Tensor& t) const {
        return B::timestep_embedding(t, frequency_embedding_size, max_period);
    }
    // t: [N] float timesteps (0..1000), -> [N, hidden].
    Tensor forward(const Tensor& t) const { return mlp2.forward(B::silu(mlp0.forward(frequency_embedding(t)))); }
};

}  // namespace hyvideo
