#pragma once
// fp8: weights stored as float8_e4m3fn with a scale (docs/model.md#fp8-weights): the official
// dequantisation every reader of such a file applies (the DiT's fp8 checkpoints, the text encoders'
// fp8 files), and the reference quantiser that `hyvideo convert --fp8` and the test checkpoints use.
// Which layers a HunyuanVideo checkpoint stores so is the checkpoint's business (is_fp8_layer).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hyvideo/core/dtype.hpp"
#include "hyvideo/core/dtype_convert.hpp"
#include "hyvideo/core/error.hpp"
#include "hyvideo/core/parallel.hpp"
#include "hyvideo/core/tensor.hpp"

namespace hyvideo {

// The largest float8_e4m3fn value: the reference quantiser maps max|W| onto it.
inline constexpr float fp8_e4m3_max = 448.0f;

namespace detail {

// Rounds an f32 to `t` (bf16, f16 or f32) and back, as torch does when it stores a result in t.
inline float round_to(float x, DType t) {
    switch (t) {
        case DType::bf16: return bf16_to_f32(f32_to_bf16(x));
        case DType::f16: return f16_to_f32(f32_to_f16(x));
        case DType::f32: return x;
        default: throw Error(concat("fp8: ", dtype_name(t), " is not a floating compute type (float32, float16, bfloat16)"));
    }
}

// Strides (in elements) that broadcast `scale` against a tensor of shape `w` (numpy rules: dimensions
// aligned on the right, each 1 or equal); nullopt if it does not broadcast.
inline std::optional<Shape> broadcast_strides(const Shape& scale, const Shape& w) {
    if (scale.size() > w.size()) return std::nullopt;
    Shape out(w.size(), 0);
    const Shape contiguous = contiguous_strides(scale);
    for (std::size_t i = 0; i < scale.size(); ++i) {
        const std::size_t wd = w.size() - scale.size() + i;
        if (scale[i] == w[wd] && scale[i] != 1) out[wd] = contiguous[i];
        else if (scale[i] != 1) return std::nullopt;
    }
    return out;
}

}  // namespace detail

// The official dequantisation: out = round(round(W8) · round(scale)) in `out_dtype`, the scale
// broadcast against W (fp8_activation_dequant: qdata.to(dtype) * scale.to(dtype)). W8 → bf16/f16 is
// exact, and so is the product of a 4-bit and an 8- or 11-bit significand in f32, so the only
// roundings are the scale's and the product's, as in torch (for f32 output the product is rounded
// once, as torch's f32 multiply rounds it).
inline Tensor dequantize_fp8(const Tensor& w8, const Tensor& scale, DType out_dtype = DType::bf16) {
    HYVIDEO_CHECK(w8.dtype() == DType::f8e4m3, "dequantize_fp8: the weight is ", dtype_name(w8.dtype()),
                  ", not float8_e4m3fn");
    HYVIDEO_CHECK(is_floating(scale.dtype()) && scale.dtype() != DType::f8e4m3, "dequantize_fp8: the scale is ",
                  dtype_name(scale.dtype()));
    const auto strides = detail::broadcast_strides(scale.shape(), w8.shape());
    HYVIDEO_CHECK(strides, "dequantize_fp8: a scale of shape ", shape_str(scale.shape()),
                  " does not broadcast against the weight's ", shape_str(w8.shape()));
    std::vector<float> s = scale.to_vector();
    for (float& v : s) v = detail::round_to(v, out_dtype);

    const Tensor w = w8.contiguous();
    const auto* q = static_cast<const std::uint8_t*>(w.raw_data());
    const std::int64_t n = w.numel(), nd = w.dim();
    Tensor out = Tensor::empty(w.shape(), out_dtype);
    const std::int64_t inner = nd > 0 ? w.size(-1) : 1;
    if (inner > 0 && (nd == 0 || (*strides)[nd - 1] == 0) && out_dtype != DType::f32 && n > 0) {
        // One scale per row (per tensor, as the reference quantiser makes, or per output channel): a
        // float8 byte has 256 values, so the row's results are a 256-entry table computed with the same
        // roundings as below, and the row a gather from it. The streamed fp8 DiT dequantises every block
        // linear on every forward, which this makes a memory-bound copy.
        auto* dst = static_cast<std::uint16_t*>(out.raw_data());
        const std::int64_t rows = n / inner;
        parallel_for_chunks(0, rows, 16, [&](std::int64_t r0, std::int64_t r1) {
            std::array<float, 256> values;
            std::array<std::uint16_t, 256> table;
            std::int64_t table_offset = -1;
            for (std::int64_t r = r0; r < r1; ++r) {
                std::int64_t so = 0, rest = r;  // scale offset of row r
                for (std::int64_t d = nd - 2; d >= 0; --d) {
                    so += (rest % w.size(d)) * (*strides)[d];
                    rest /= w.size(d);
                }
                if (so != table_offset) {
                    const float sv = s[static_cast<std::size_t>(so)];
                    for (int b = 0; b < 256; ++b)
                        values[b] = detail::round_to(f8e4m3_to_f32(static_cast<std::uint8_t>(b)) * sv, out_dtype);
                    convert_buffer(values.data(), DType::f32, table.data(), out_dtype, 256);
                    table_offset = so;
                }
                const std::uint8_t* src = q + r * inner;
                std::uint16_t* o = dst + r * inner;
                for (std::int64_t j = 0; j < inner; ++j) o[j] = table[src[j]];
            }
        });
        return out;
    }
    // The rest (a scale that varies along the row, or f32 output): element by element.
    std::vector<float> row(static_cast<std::size_t>(inner));
    std::vector<std::int64_t> idx(static_cast<std::size_t>(std::max<std::int64_t>(nd - 1, 0)), 0);
    for (std::int64_t base = 0; inner > 0 && base < n; base += inner) {
        std::int64_t so = 0;  // scale offset of this row
        for (std::int64_t d = 0; d + 1 < nd; ++d) so += idx[d] * (*strides)[d];
        const std::int64_t step = nd > 0 ? (*strides)[nd - 1] : 0;
        for (std::int64_t j = 0; j < inner; ++j)
            row[j] = detail::round_to(f8e4m3_to_f32(q[base + j]) * s[static_cast<std::size_t>(so + j * step)], out_dtype);
        convert_buffer(row.data(), DType::f32, static_cast<std::byte*>(out.raw_data()) + base * dtype_size(out_dtype),
                       out_dtype, static_cast<std::size_t>(inner));
        for (std::int64_t d = nd - 2; d >= 0; --d) {
            if (++idx[d] < w.size(d)) break;
            idx[d] = 0;
        }
    }
    return out;
}

struct Fp8Weight {
    Tensor weight;  // float8_e4m3fn, W's shape
    float scale;    // exact in W's dtype
};

// The reference quantiser (hyvideo/modules/fp8_optimization.py), which runs in the weight's dtype:
// scale = max|W| / 448 and x = W / scale, each rounded to that dtype, then x rounded to the e4m3 grid
// (nearest, ties to even: the reference's log2/round construction amounts to exactly that, which
// tools/make_test_checkpoints.py asserts against torch). One departure: an all-zero weight gets
// scale 1, where the reference would divide by zero and store NaNs.
namespace detail {
inline float fp8_scale_of_values(const std::vector<float>& v, DType t) {
    HYVIDEO_CHECK(t == DType::f32 || t == DType::bf16 || t == DType::f16, "quantize_fp8: a ", dtype_name(t),
                  " weight (float32, bfloat16 or float16 expected)");
    float max_abs = 0;
    for (float x : v) {
        HYVIDEO_CHECK(std::isfinite(x), "quantize_fp8: the weight holds inf or NaN");
        max_abs = std::max(max_abs, std::fabs(x));
    }
    return max_abs > 0 ? round_to(max_abs / fp8_e4m3_max, t) : 1.0f;
}
}  // namespace detail

inline float fp8_scale_of(const Tensor& w) { return detail::fp8_scale_of_values(w.to_vector(), w.dtype()); }

inline Fp8Weight quantize_fp8(const Tensor& w) {
    const std::vector<float> v = w.to_vector();
    Fp8Weight q;
    q.scale = detail::fp8_scale_of_values(v, w.dtype());
    q.weight = Tensor::empty(w.shape(), DType::f8e4m3);
    auto* out = static_cast<std::uint8_t*>(q.weight.raw_data());
    for (std::size_t i = 0; i < v.size(); ++i) out[i] = f32_to_f8e4m3(detail::round_to(v[i] / q.scale, w.dtype()));
    return q;
}

}  // namespace hyvideo
