#pragma once
// The shape rules every backend applies the same way, so that each refuses bad operands with the same
// line: NumPy broadcasting (add, sub, mul) and concatenation (cat).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "hyvideo/core/error.hpp"
#include "hyvideo/core/tensor.hpp"

namespace hyvideo {

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

// The shape of `parts` concatenated along `dim` (negative counts from the end; normalised in place),
// after checking that they share dtype, rank and every other dimension.
inline Shape cat_shape(const std::vector<Tensor>& parts, std::int64_t& dim) {
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
    return shape;
}

}  // namespace hyvideo
