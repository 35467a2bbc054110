#pragma once
// ModulateDiT (official modules/modulate_layers.py): linear(SiLU(vec)), split by the caller into
// `factor` chunks of hidden size (shift, scale, gate, ...). The chunks are views, not copies.
#include <string>
#include <vector>

#include "hyvideo/nn/linear.hpp"

namespace hyvideo {

template <Backend B>
struct ModulateDiT {
    using backend = B;
    std::int64_t hidden_size = 0, factor = 0;
    Linear<B> linear;

    ModulateDiT() = default;
    ModulateDiT(std::int64_t hidden, std::int64_t f) : hidden_size(hidden), factor(f), linear(hidden, f * hidden) {}

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        linear.parameters(prefix + "linear.", visit);
    }

    // vec [B, hidden] -> `factor` views [B, hidden], in the official chunk order.
    std::vector<Tensor> forward(const Tensor& vec) const {
        const Tensor m = linear.forward(B::silu(vec));
        std::vector<Tensor> chunks;
        for (std::int64_t i = 0; i < factor; ++i) chunks.push_back(m.slice(1, i * hidden_size, (i + 1) * hidden_size));
        return chunks;
    }
};

// modulate(x, shift, scale) where the first `tr_tokens` tokens take their shift and scale from the
// token_replace chunks tr[idx], tr[idx + 1] instead (official modulate_tr of HunyuanVideo-I2V).
template <Backend B>
Tensor modulate_tokens(const Tensor& x, const Tensor& shift, const Tensor& scale, const std::vector<Tensor>& tr,
                       std::size_t idx, std::int64_t tr_tokens) {
    if (tr.empty() || tr_tokens == 0) return B::modulate(x, shift, scale);
    HYVIDEO_CHECK(tr_tokens <= x.size(1), "token_replace: ", tr_tokens, " first-frame tokens of ", x.size(1));
    return B::cat({B::modulate(x.slice(1, 0, tr_tokens), tr[idx], tr[idx + 1]),
                   B::modulate(x.slice(1, tr_tokens, x.size(1)), shift, scale)},
                  1);
}

// x + gate ⊙ y, with the token_replace gate tr[idx] on the first `tr_tokens` tokens (apply_gate_tr).
template <Backend B>
Tensor gate_tokens(const Tensor& x, const Tensor& y, const Tensor& gate, const std::vector<Tensor>& tr,
                   std::size_t idx, std::int64_t tr_tokens) {
    if (tr.empty() || tr_tokens == 0) return B::gated_add(x, y, gate);
    const std::int64_t L = x.size(1);
    return B::cat({B::gated_add(x.slice(1, 0, tr_tokens), y.slice(1, 0, tr_tokens), tr[idx]),
                   B::gated_add(x.slice(1, tr_tokens, L), y.slice(1, tr_tokens, L), gate)},
                  1);
}

}  // namespace hyvideo
