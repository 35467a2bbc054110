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
#include "hyvideo/io/weight_source.hpp"

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

// Fills every parameter of m from src (names prefix + official name), converting each to the
// backend's compute form. Throws naming the tensor when one is missing or has the wrong shape.
template <class M>
void load_weights(M& m, const WeightSource& src, const std::string& prefix = "") {
    using B = typename M::backend;
    m.parameters(prefix, [&](const std::string& name, const Shape& shape, Tensor& slot) {
        HYVIDEO_CHECK(src.contains(name), "missing weight '", name, "' (expected shape ", shape_str(shape), ")");
        Tensor t = src.get(name);
        HYVIDEO_CHECK(t.shape() == shape, "weight '", name, "' has shape ", shape_str(t.shape()), ", expected ",
                      shape_str(shape));
        slot = B::weight(t);
    });
}

// load_weights, and additionally every tensor of src under `prefix` must have been consumed: a
// checkpoint with extra tensors belongs to another configuration, which strict loading reports.
template <class M>
void load_weights_strict(M& m, const WeightSource& src, const std::string& prefix = "") {
    load_weights(m, src, prefix);
    std::set<std::string> expected;
    for (const auto& p : parameter_list(m, prefix)) expected.insert(p.name);
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

// Stores every matrix (and convolution kernel) of m in `dtype`, which selects the GEMM operand type
// of the backend: bf16 gives the bf16 compute mode (bf16 operands, f32 accumulation) while biases,
// norm weights, activations and the residual stream stay f32.
template <class M>
void set_matmul_dtype(M& m, DType dtype) {
    using B = typename M::backend;
    m.parameters("", [&](const std::string&, const Shape& shape, Tensor& slot) {
        if (shape.size() >= 2 && slot.defined() && slot.dtype() != dtype) slot = B::cast(slot, dtype);
    });
}

}  // namespace hyvideo
