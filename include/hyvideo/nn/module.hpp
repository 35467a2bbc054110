#pragma once
// Parameters and loading, shared by every component.
//
// A component lists its weights once, in `parameters(prefix, visit)`, calling visit(name, shape,
// slot) with the official state_dict name. Everything else is derived from that list: loading from
// any WeightSource (with shape checks and clear errors), strict loading that also reports unexpected
// tensors, and the name/shape manifest of a configuration without allocating a single weight.
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "hyvideo/core/tensor.hpp"
#include "hyvideo/core/weight_source.hpp"

namespace hyvideo {

struct ParameterInfo {
    std::string name;
    Shape shape;
};

// Names and shapes of every parameter of module m, in declaration order; no memory is touched.
template <class M>
std::vector<ParameterInfo> parameter_list(M& m, const std::string& prefix = "") {
    std::vector<ParameterInfo> out;
    m.parameters(prefix, [&](const std::string& name, const Shape& shape, Tensor&) {
        out.push_back({name, shape});
    });
    return out;
}

template <class M>
std::int64_t parameter_count(M& m) {
    std::int64_t n = 0;
    for (const auto& p : parameter_list(m)) n += shape_numel(p.shape);
    return n;
}

// The dtype a parameter is computed in: GEMM matrices and convolution kernels (rank >= 2) in
// `matmul` (f32, or bf16 for the bf16 compute mode), everything else (biases, norm weights) in f32.
inline DType compute_dtype(const Shape& shape, DType matmul) { return shape.size() >= 2 ? matmul : DType::f32; }

namespace module_detail {

inline void check_weight(const WeightSource& src, const std::string& name, const Shape& shape) {
    HYVIDEO_CHECK(src.contains(name), "missing weight '", name, "' (expected shape ", shape_str(shape), ")");
    const Shape stored = src.shape(name);
    HYVIDEO_CHECK(stored == shape, "weight '", name, "' has shape ", shape_str(stored), ", expected ", shape_str(shape));
}

// Loads the parameters whose full name `keep` accepts.
template <class M, class Keep>
void load_parameters(M& m, const WeightSource& src, const std::string& prefix, DType matmul, Keep&& keep) {
    using B = typename M::backend;
    m.parameters(prefix, [&](const std::string& name, const Shape& shape, Tensor& slot) {
        if (!keep(name)) return;
        check_weight(src, name, shape);
        slot = B::weight(src.get(name), compute_dtype(shape, matmul));
    });
}

// A model whose attention follows the compute mode (a public `attention_operands`) learns the mode with
// its matrices: bf16 matrices give bf16 attention operands, anything else f32.
template <class M>
void note_matmul_dtype(M& m, DType matmul) {
    if constexpr (requires { m.attention_operands = DType::f32; })
        m.attention_operands = matmul == DType::bf16 ? DType::bf16 : DType::f32;
}

}  // namespace module_detail

// Fills every parameter of m from src (names prefix + official name), converting each to its compute
// dtype (compute_dtype: matrices in `matmul`, the rest f32); a weight stored in that dtype is used in
// place. Throws naming the tensor when one is missing or has the wrong shape.
template <class M>
void load_weights(M& m, const WeightSource& src, const std::string& prefix = "", DType matmul = DType::f32) {
    if constexpr (requires { m.streamed; }) m.streamed.reset();  // it holds every weight now
    module_detail::load_parameters(m, src, prefix, matmul, [](const std::string&) { return true; });
    module_detail::note_matmul_dtype(m, matmul);
}

// load_weights into the buffers m already holds where a conversion is needed (B::weight_into): for a
// streamed layer whose previous occupant's weights are no longer used. Names and shapes are checked
// as load_weights checks them.
template <class M>
void load_weights_into(M& m, const WeightSource& src, const std::string& prefix, DType matmul) {
    using B = typename M::backend;
    m.parameters(prefix, [&](const std::string& name, const Shape& shape, Tensor& slot) {
        module_detail::check_weight(src, name, shape);
        slot = B::weight_into(src.get(name), compute_dtype(shape, matmul), std::move(slot));
    });
}

// Checks, without reading any weight, that src holds every parameter of m with its shape and, under
// `prefix`, nothing else: a checkpoint with extra tensors belongs to another configuration.
template <class M>
void check_weights_strict(M& m, const WeightSource& src, const std::string& prefix = "") {
    std::set<std::string> expected;
    for (const auto& p : parameter_list(m, prefix)) {
        module_detail::check_weight(src, p.name, p.shape);
        expected.insert(p.name);
    }
    std::vector<std::string> unexpected;
    for (const auto& name : src.names())
        if (name.rfind(prefix, 0) == 0 && !expected.count(name)) unexpected.push_back(name);
    if (!unexpected.empty()) {
        std::string list;
        for (std::size_t i = 0; i < unexpected.size() && i < 10; ++i) list += (i ? ", " : "") + unexpected[i];
        if (unexpected.size() > 10) list += ", ... (" + std::to_string(unexpected.size()) + " in all)";
        throw Error("unexpected weights for this configuration: " + list);
    }
}

// check_weights_strict, then load_weights: nothing is loaded from a checkpoint that does not match.
template <class M>
void load_weights_strict(M& m, const WeightSource& src, const std::string& prefix = "", DType matmul = DType::f32) {
    check_weights_strict(m, src, prefix);
    load_weights(m, src, prefix, matmul);
}

// Stores every matrix (and convolution kernel) of m in `dtype`, which selects the GEMM operand type
// of the backend: bf16 gives the bf16 compute mode (bf16 operands, f32 accumulation; in the DiT also
// the attention's operands, see note_matmul_dtype) while biases, norm weights, activations and the
// residual stream stay f32. A model that streams weights it does
// not hold (HYVideoDiffusionTransformer::load_streamed) converts them to `dtype` as it streams them.
template <class M>
void set_matmul_dtype(M& m, DType dtype) {
    using B = typename M::backend;
    m.parameters("", [&](const std::string&, const Shape& shape, Tensor& slot) {
        if (shape.size() >= 2 && slot.defined() && slot.dtype() != dtype) slot = B::cast(slot, dtype);
    });
    if constexpr (requires { m.streamed; })
        if (m.streamed) m.streamed->matmul = dtype;
    module_detail::note_matmul_dtype(m, dtype);
}

}  // namespace hyvideo
