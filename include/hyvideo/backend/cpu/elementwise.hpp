#pragma once
// Elementwise kernels on f32 CPU tensors: activations and broadcasting arithmetic.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "hyvideo/backend/shape_rules.hpp"
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
    const Shape shape = cat_shape(parts, dim);  // backend/shape_rules.hpp
    const Tensor& first = parts.front();
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
