#pragma once
// A tensor [..., n] seen as a matrix of rows of n elements without copying, where its memory allows:
// what the GEMM takes as an operand and what the row-wise elementwise kernels walk. Slices of a fused
// projection ([..., a:b] of a wider tensor) qualify, so their consumers need no contiguous copy.
#include <algorithm>
#include <cstdint>

#include "hyvideo/core/tensor.hpp"

namespace hyvideo::cpu_detail {

// A tensor [..., n] seen as a rows×n matrix: the first element and the distance between rows.
struct RowMatrix {
    const void* data;
    std::int64_t rows, row_stride;
};

// Collapses the leading dimensions of x into rows without copying when its memory allows one row
// stride for all of them (contiguous tensors, and also views such as x[..., :n] of a wider tensor
// that a fused qkv projection produces); anything else is copied to contiguous memory first.
inline RowMatrix as_row_matrix(const Tensor& x, Tensor& keep_alive) {
    const std::int64_t n = x.size(-1);
    std::int64_t rows = 1;
    for (std::int64_t d = 0; d + 1 < x.dim(); ++d) rows *= x.size(d);
    const std::int64_t dense_stride = std::max<std::int64_t>(n, 1);
    const bool unit_inner = n <= 1 || x.stride(-1) == 1;
    if (unit_inner && (rows <= 1 || n == 0)) return {x.raw_data(), rows, dense_stride};  // no row stride used

    bool collapsible = unit_inner;
    std::int64_t row_stride = 0;
    std::int64_t inner_extent = -1;  // stride·size of the next-inner leading dimension seen so far
    for (std::int64_t d = x.dim() - 2; d >= 0 && collapsible; --d) {
        if (x.size(d) == 1) continue;  // the stride of a size-1 dimension is never used
        if (inner_extent < 0) row_stride = x.stride(d);
        else collapsible = x.stride(d) == inner_extent;
        inner_extent = x.stride(d) * x.size(d);
    }
    // Rows must not overlap (a broadcast view has stride 0): the product reads them as distinct.
    if (collapsible && row_stride >= n) return {x.raw_data(), rows, row_stride};
    keep_alive = x.contiguous();
    return {keep_alive.raw_data(), rows, dense_stride};
}

}  // namespace hyvideo::cpu_detail
