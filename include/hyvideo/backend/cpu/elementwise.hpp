#pragma once
// Elementwise kernels on f32 CPU tensors: activations and broadcasting arithmetic.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "hyvideo/backend/cpu/channel_map.hpp"
#include "hyvideo/backend/cpu/row_matrix.hpp"
#include "hyvideo/core/parallel.hpp"
#include "hyvideo/core/tensor.hpp"

namespace hyvideo::cpu_detail {

inline void require_f32(const Tensor& t, const char* what) {
    HYVIDEO_CHECK(t.defined(), what, ": undefined tensor");
    HYVIDEO_CHECK(t.dtype() == DType::f32, what, ": expected float32, got ", dtype_name(t.dtype()));
    HYVIDEO_CHECK(t.device() == Device::cpu, what, ": expected a CPU tensor");
}

// Applies fn to every element of a contiguous copy; the grain keeps tiny tensors on one thread.
template <class F>
Tensor map_unary(const Tensor& x, const char* what, F fn) {
    require_f32(x, what);
    Tensor src = x.contiguous();
    Tensor out = Tensor::empty(x.shape());
    const float* in = src.data<const float>();
    float* o = out.data<float>();
    parallel_for_chunks(0, x.numel(), 1 << 14, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) o[i] = fn(in[i]);
    });
    return out;
}

// An activation over every element, through the vectorised maps of channel_map.hpp (their own exp:
// libm's tanhf/expf do not vectorise, and took 15 % of a single-stream block in bf16).
// A view whose rows have one stride (the MLP half of a single block's fused linear1 output) is read
// in place rather than copied first.
inline Tensor map_activation(const Tensor& x, const char* what, const ChannelMap& m) {
    require_f32(x, what);
    Tensor out = Tensor::empty(x.shape());
    if (out.numel() == 0) return out;
    float* o = out.data<float>();
    if (x.dim() == 0 || x.is_contiguous()) {
        const Tensor src = x.contiguous();
        const float* in = src.data<const float>();
        parallel_for_chunks(0, x.numel(), 1 << 14, [&](std::int64_t b, std::int64_t e) {
            map_channels(in + b, 0, o + b, 0, DType::f32, 1, e - b, m);
        });
        return out;
    }
    Tensor keep_alive;
    const RowMatrix rows = as_row_matrix(x, keep_alive);
    const std::int64_t n = x.size(-1);
    const auto* in = static_cast<const float*>(rows.data);
    parallel_for_chunks(0, rows.rows, std::max<std::int64_t>(1, (1 << 14) / n), [&](std::int64_t r0, std::int64_t r1) {
        map_channels(in + r0 * rows.row_stride, rows.row_stride, o + r0 * n, n, DType::f32, r1 - r0, n, m);
    });
    return out;
}

// x·sigmoid(x).
inline Tensor silu(const Tensor& x) { return map_activation(x, "silu", ChannelMap{.silu = true}); }
// PyTorch's GELU(approximate="tanh"), within a few float ulps (see gelu_tanh_in_place).
inline Tensor gelu_tanh(const Tensor& x) { return map_activation(x, "gelu_tanh", ChannelMap{.gelu_tanh = true}); }

// NumPy broadcasting of two shapes; throws with both shapes when they are incompatible.
inline Shape broadcast_shape(const Shape& a, const Shape& b) {
    const std::size_t n = std::max(a.size(), b.size());
    Shape out(n);
    for (std::size_t i = 0; i < n; ++i) {
        const std::int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
        const std::int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
        HYVIDEO_CHECK(da == db || da == 1 || db == 1, "cannot broadcast ", shape_str(a), " with ", shape_str(b));
        out[i] = da == 1 ? db : da;
    }
    return out;
}

// Strides of `t` seen through the broadcast shape `to` (0 along broadcast dimensions).
inline Shape broadcast_strides(const Tensor& t, const Shape& to) {
    Shape st(to.size(), 0);
    const std::size_t off = to.size() - t.shape().size();
    for (std::size_t i = 0; i < t.shape().size(); ++i)
        st[i + off] = t.shape()[i] == 1 ? 0 : t.strides()[i];
    return st;
}

// out = fn(a, b) with broadcasting; rows of the last dimension are the unit of parallel work.
template <class F>
Tensor map_binary(const Tensor& a, const Tensor& b, const char* what, F fn) {
    require_f32(a, what);
    require_f32(b, what);
    const Shape shape = broadcast_shape(a.shape(), b.shape());
    Tensor out = Tensor::empty(shape);
    if (out.numel() == 0) return out;
    if (a.shape() == b.shape() && a.is_contiguous() && b.is_contiguous()) {
        const float* pa = a.data<const float>();
        const float* pb = b.data<const float>();
        float* po = out.data<float>();
        parallel_for_chunks(0, out.numel(), 1 << 14, [&](std::int64_t s, std::int64_t e) {
            for (std::int64_t i = s; i < e; ++i) po[i] = fn(pa[i], pb[i]);
        });
        return out;
    }
    const Shape sa = broadcast_strides(a, shape), sb = broadcast_strides(b, shape);
    const std::int64_t nd = static_cast<std::int64_t>(shape.size());
    const std::int64_t inner = nd ? shape.back() : 1;
    const std::int64_t rows = out.numel() / inner;
    const float* pa = a.data<const float>();
    const float* pb = b.data<const float>();
    float* po = out.data<float>();
    parallel_for_chunks(0, rows, 64, [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
            std::int64_t rem = r, oa = 0, ob = 0;
            for (std::int64_t d = nd - 2; d >= 0; --d) {
                const std::int64_t i = rem % shape[d];
                rem /= shape[d];
                oa += i * sa[d];
                ob += i * sb[d];
            }
            const std::int64_t ia = nd ? sa[nd - 1] : 0, ib = nd ? sb[nd - 1] : 0;
            float* o = po + r * inner;
            for (std::int64_t i = 0; i < inner; ++i) o[i] = fn(pa[oa + i * ia], pb[ob + i * ib]);
        }
    });
    return out;
}

inline Tensor add(const Tensor& a, const Tensor& b) {
    return map_binary(a, b, "add", [](float x, float y) { return x + y; });
}
inline Tensor sub(const Tensor& a, const Tensor& b) {
    return map_binary(a, b, "sub", [](float x, float y) { return x - y; });
}
inline Tensor mul(const Tensor& a, const Tensor& b) {
    return map_binary(a, b, "mul", [](float x, float y) { return x * y; });
}
inline Tensor scale(const Tensor& a, float s) {
    return map_unary(a, "scale", [s](float x) { return x * s; });
}

// a·x + b. Two roundings (the build has -ffp-contract=off), the same bits as scale then add.
inline Tensor affine(const Tensor& x, float a, float b) {
    return map_unary(x, "affine", [a, b](float v) { return v * a + b; });
}

}  // namespace hyvideo::cpu_detail

namespace hyvideo::cpu_detail {

// Concatenation along `dim` of tensors equal in every other dimension.
inline Tensor cat(const std::vector<Tensor>& parts, std::int64_t dim) {
    HYVIDEO_CHECK(!parts.empty(), "cat: no tensors");
    const Tensor& first = parts.front();
    const std::int64_t nd = first.dim();
    if (dim < 0) dim += nd;
    HYVIDEO_CHECK(0 <= dim && dim < nd, "cat: dim out of range for ", shape_str(first.shape()));
    Shape shape = first.shape();
    shape[dim] = 0;
    for (const Tensor& p : parts) {
        HYVIDEO_CHECK(p.dim() == nd && p.dtype() == first.dtype(), "cat: ", shape_str(p.shape()), " ",
                      dtype_name(p.dtype()), " does not match ", shape_str(first.shape()), " ",
                      dtype_name(first.dtype()));
        for (std::int64_t d = 0; d < nd; ++d)
            HYVIDEO_CHECK(d == dim || p.size(d) == first.size(d), "cat along ", dim, ": ", shape_str(p.shape()),
                          " vs ", shape_str(first.shape()));
        shape[dim] += p.size(dim);
    }
    Tensor out = Tensor::empty(shape, first.dtype());
    std::int64_t at = 0;
    for (const Tensor& p : parts) {
        Tensor dst = out.slice(dim, at, at + p.size(dim));
        p.copy_to(dst);
        at += p.size(dim);
    }
    return out;
}

}  // namespace hyvideo::cpu_detail
