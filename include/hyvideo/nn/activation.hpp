#pragma once
// Activation functions as types, so that a component's activation is a template parameter.
#include "hyvideo/backend/backend.hpp"

namespace hyvideo {

struct SiLU {
    template <Backend B>
    static Tensor apply(const Tensor& x) { return B::silu(x); }
};

// GELU with the tanh approximation (nn.GELU(approximate="tanh")), HunyuanVideo's "gelu_tanh".
struct GeluTanh {
    template <Backend B>
    static Tensor apply(const Tensor& x) { return B::gelu_tanh(x); }
};

}  // namespace hyvideo
