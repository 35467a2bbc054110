#pragma once
// y = x·weightᵀ + bias on CPU tensors, as torch.nn.functional.linear computes it.
//
// x is [..., in] f32, weight [out, in], bias [out] f32 or undefined; y is a new [..., out] f32
// tensor. The weight's dtype picks the compute mode:
//   f32   f32 operands;
//   bf16  bf16 operands with f32 accumulation: x is rounded to bf16 once per call, the mode the
//         official model runs in and twice the f32 rate on this machine;
//   f16   widened to f32 on every call (correct, not fast: convert such weights once at load).
// The bias is written by the same pass that writes y (oneDNN's matmul bias), never a second sweep.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "hyvideo/backend/cpu/gemm.hpp"
#include "hyvideo/backend/cpu/row_matrix.hpp"
#include "hyvideo/core/dtype.hpp"
#include "hyvideo/core/dtype_convert.hpp"
#include "hyvideo/core/error.hpp"
#include "hyvideo/core/parallel.hpp"
#include "hyvideo/core/tensor.hpp"

namespace hyvideo::cpu_detail {


inline Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
    HYVIDEO_CHECK(x.defined() && weight.defined(), "linear: x and weight must be defined");
    HYVIDEO_CHECK(x.device() == Device::cpu && weight.device() == Device::cpu &&
                      (!bias.defined() || bias.device() == Device::cpu),
                  "linear: the CPU backend needs CPU tensors");
    HYVIDEO_CHECK(x.dtype() == DType::f32, "linear: x must be float32, got ", dtype_name(x.dtype()));
    HYVIDEO_CHECK(x.dim() >= 1, "linear: x must be [..., in], got a 0-d tensor");
    HYVIDEO_CHECK(weight.dim() == 2, "linear: weight must be [out, in], got ", shape_str(weight.shape()));
    const std::int64_t in = x.size(-1), out = weight.size(0);
    HYVIDEO_CHECK(weight.size(1) == in, "linear: weight must be [out, ", in, "] for x ",
                  shape_str(x.shape()), ", got ", shape_str(weight.shape()));
    if (bias.defined()) {
        HYVIDEO_CHECK(bias.dim() == 1 && bias.size(0) == out, "linear: bias must be [out] = [", out,
                      "] for weight ", shape_str(weight.shape()), ", got ", shape_str(bias.shape()));
        HYVIDEO_CHECK(bias.dtype() == DType::f32, "linear: bias must be float32, got ", dtype_name(bias.dtype()));
    }

    Tensor w = weight;
    if (w.dtype() == DType::f16) w = w.to(DType::f32);
    HYVIDEO_CHECK(w.dtype() == DType::f32 || w.dtype() == DType::bf16, "linear: weight dtype ",
                  dtype_name(weight.dtype()), " is not supported (float32, bfloat16 or float16; ",
                  "float8 weights need their scale applied first)");

    Shape y_shape = x.shape();
    y_shape.back() = out;
    Tensor y = Tensor::empty(y_shape, DType::f32);
    if (y.numel() == 0) return y;

    Tensor bias_storage = bias.defined() ? bias.contiguous() : Tensor{};
    Tensor x_storage;
    const RowMatrix rows = as_row_matrix(x, x_storage);

    GemmArgs g;
    g.M = rows.rows;
    g.N = out;
    g.K = in;
    g.C = y.data<float>();
    g.ldc = out;
    g.bias = bias.defined() ? bias_storage.data<const float>() : nullptr;
    g.A = rows.data;
    g.lda = rows.row_stride;

    // y = x·wᵀ: a row-major [out, in] weight is read in place as op(B) = Bᵀ, and a transposed
    // view (unit stride along out) as B itself; other layouts are copied. The stride of a size-1
    // dimension is arbitrary, so it counts as dense.
    std::int64_t w_row_stride = out == 1 ? in : w.stride(0);
    std::int64_t w_col_stride = in == 1 ? out : w.stride(1);
    const bool rows_layout = w_col_stride == 1 && w_row_stride >= in;
    const bool columns_layout = !rows_layout && w_row_stride == 1 && w_col_stride >= out;
    if (!rows_layout && !columns_layout) {
        w = w.contiguous();
        w_row_stride = in;
    }
    g.trans_b = !columns_layout;
    g.B = w.raw_data();
    g.ldb = std::max<std::int64_t>(1, columns_layout ? w_col_stride : w_row_stride);

    Tensor x_bf16;
    if (w.dtype() == DType::bf16) {
        g.operands = DType::bf16;
        x_bf16 = Tensor::empty({g.M, in}, DType::bf16);
        auto* dst = x_bf16.data<bf16_t>();
        const auto* src = static_cast<const float*>(rows.data);
        parallel_for_chunks(0, g.M, 16, [&](std::int64_t r0, std::int64_t r1) {
            for (std::int64_t r = r0; r < r1; ++r)
                convert_buffer(src + r * rows.row_stride, DType::f32, dst + r * in, DType::bf16,
                               static_cast<std::size_t>(in));
        });
        g.A = x_bf16.raw_data();
        g.lda = std::max<std::int64_t>(in, 1);
    }
    gemm(g);
    return y;
}

}  // namespace hyvideo::cpu_detail
