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

// transformers' quick_gelu, x·sigmoid(1.702x): CLIP's hidden_act.
struct QuickGELU {
    template <Backend B>
    static Tensor apply(const Tensor& x) { return B::quick_gelu(x); }
};

// nn.GELU() with erf: the llava projector's activation.
struct GELU {
    template <Backend B>
    static Tensor apply(const Tensor& x) { return B::gelu(x); }
};

}  // namespace hyvideo
