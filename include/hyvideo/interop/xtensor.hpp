#pragma once
// Zero-copy adaptors between hyvideo::Tensor and xtensor, for research code and tests.
//
//   Tensor t = ...;                                 // host tensor, any strides
//   auto x = as_xtensor<float>(t);                  // an xtensor strided view of t's memory, no copy
//   x += 1.0f;                                      // writes through to t
//   Tensor y = from_xtensor(xt::transpose(x) * 2);  // evaluates into a new contiguous host Tensor
//
// This header is optional: nothing else in hyvideo includes it, and the core library does not need
// xtensor. A program that includes it links xtensor itself; in hyvideo's own build the INTERFACE
// target hyvideo::xtensor_interop (defined when find_package(xtensor) succeeds) carries both
// hyvideo::hyvideo and xtensor. Debian: libxtensor-dev.
//
// Lifetime: an adaptor does not keep the tensor's memory alive (it holds a raw pointer, like a span).
// Adapt a named Tensor whose memory outlives the adaptor; adapting a temporary is refused at compile
// time, since a temporary may be the only owner.
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xexpression.hpp>
#include <xtensor/xnoalias.hpp>
#include <xtensor/xstrided_view.hpp>

#include "hyvideo/core/error.hpp"
#include "hyvideo/core/tensor.hpp"

namespace hyvideo {

namespace xtensor_detail {

// The view's shape and strides for t, and the number of elements its memory spans. Strides of size-1
// dimensions are set to 0, xtensor's convention: its broadcasting steps such a dimension by its
// stride, which must then not move.
struct Geometry {
    std::vector<std::size_t> shape;
    std::vector<std::ptrdiff_t> strides;
    std::size_t span = 0;
    bool contiguous = true;
};

template <class T>
Geometry geometry(const Tensor& t, const char* what) {
    HYVIDEO_CHECK(t.defined(), what, ": undefined tensor");
    HYVIDEO_CHECK(t.device() == Device::cpu, what, ": a ", device_name(t.device()),
                  " tensor; adapt host tensors only (download it first)");
    HYVIDEO_CHECK(t.dtype() == dtype_of_v<T>, what, ": tensor holds ", dtype_name(t.dtype()), ", adapted as ",
                  dtype_name(dtype_of_v<T>));
    Geometry g;
    g.shape.reserve(t.shape().size());
    g.strides.reserve(t.shape().size());
    std::int64_t last = 0;
    bool empty = false;
    for (std::size_t d = 0; d < t.shape().size(); ++d) {
        const auto n = t.shape()[d];
        const auto s = t.strides()[d];
        HYVIDEO_CHECK(s >= 0, what, ": negative stride in ", shape_str(t.strides()));
        g.shape.push_back(static_cast<std::size_t>(n));
        g.strides.push_back(n == 1 ? 0 : static_cast<std::ptrdiff_t>(s));
        if (n == 0) empty = true;
        else last += (n - 1) * s;
    }
    g.span = empty ? 0 : static_cast<std::size_t>(last + 1);
    g.contiguous = t.is_contiguous();
    return g;
}

// A strided view over a flat adaptor of the memory the tensor spans. Not an xarray_adaptor with
// strides: xtensor containers assign through a temporary copied linearly into their storage, which
// for a sliced tensor would write the elements between its rows. A strided view assigns element by
// element along its own strides, and xtensor still takes its linear fast paths when the tensor is
// contiguous (the row-major layout is then passed on).
template <class T>
auto adapt(T* data, Geometry g) {
    auto flat = xt::adapt(static_cast<T*>(data), g.span, xt::no_ownership(), std::vector<std::size_t>{g.span});
    const auto layout = g.contiguous ? xt::layout_type::row_major : xt::layout_type::dynamic;
    return xt::strided_view(std::move(flat), std::move(g.shape), std::move(g.strides), 0, layout);
}

}  // namespace xtensor_detail

// A writable xtensor view of a host tensor's memory, with its shape and strides (no copy). T must be
// the tensor's element type (float for f32, std::int64_t for i64, std::uint8_t for u8, bool, or the
// 16/8-bit storage structs); a mismatch, a device tensor or an undefined tensor throws hyvideo::Error.
template <class T>
auto as_xtensor(Tensor& t) {
    auto g = xtensor_detail::geometry<T>(t, "as_xtensor");
    return xtensor_detail::adapt(t.data<T>(), std::move(g));
}

// A read-only xtensor view of a host tensor's memory.
template <class T>
auto as_xtensor(const Tensor& t) {
    auto g = xtensor_detail::geometry<T>(t, "as_xtensor");
    return xtensor_detail::adapt(static_cast<const T*>(t.data<T>()), std::move(g));
}

// A temporary Tensor may be the only owner of its memory, which would be freed under the adaptor.
template <class T>
auto as_xtensor(Tensor&& t) = delete;
template <class T>
auto as_xtensor(const Tensor&& t) = delete;

// Evaluates an xtensor expression into a new contiguous host Tensor of the same shape. The dtype
// follows the expression's value type: float -> f32, std::int64_t -> i64, std::uint8_t -> u8,
// bool -> boolean. Other value types do not compile; cast first (xt::cast<float>(e)).
template <class E>
Tensor from_xtensor(const xt::xexpression<E>& expr) {
    const E& e = expr.derived_cast();
    using V = std::remove_cv_t<typename E::value_type>;
    static_assert(std::is_same_v<V, float> || std::is_same_v<V, std::int64_t> || std::is_same_v<V, std::uint8_t> ||
                      std::is_same_v<V, bool>,
                  "from_xtensor: the expression's value type must be float, std::int64_t, std::uint8_t or bool "
                  "(use xt::cast<float>(e))");
    Shape shape(e.shape().begin(), e.shape().end());
    Tensor t = Tensor::empty(std::move(shape), dtype_of_v<V>);
    auto out = as_xtensor<V>(t);
    // noalias: the new tensor's memory cannot overlap the expression's operands, so no temporary.
    xt::noalias(out) = e;
    return t;
}

}  // namespace hyvideo
