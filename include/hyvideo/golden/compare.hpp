#pragma once
// The golden criterion: relative L2 error ‖out − ref‖₂ / ‖ref‖₂ over the defined positions.
#include <cmath>
#include <cstdint>

#include "hyvideo/core/tensor.hpp"

namespace hyvideo::golden {

struct Comparison {
    double rel_l2 = 0;
    double max_abs = 0;
    std::int64_t compared = 0;  // elements compared (all, or those of defined rows)
};

// Compares two tensors of equal shape. `row_mask`, if given, is [d0, ..., dk] over the leading
// dimensions of ref; rows where it is 0 are undefined in the reference and skipped (for instance the
// padded text tokens of the double-stream block). Accumulation is in double.
inline Comparison compare(const Tensor& actual, const Tensor& ref, const Tensor& row_mask = {}) {
    HYVIDEO_CHECK(actual.shape() == ref.shape(), "shape ", shape_str(actual.shape()), " vs reference ",
                  shape_str(ref.shape()));
    const auto a = actual.to_vector(), r = ref.to_vector();
    std::vector<float> m;
    std::int64_t row = 1;
    if (row_mask.defined()) {
        m = row_mask.to_vector();
        HYVIDEO_CHECK(!m.empty() && r.size() % m.size() == 0, "row mask ", shape_str(row_mask.shape()),
                      " does not divide ", shape_str(ref.shape()));
        for (std::int64_t d = 0; d < row_mask.dim(); ++d)
            HYVIDEO_CHECK(row_mask.size(d) == ref.size(d), "row mask ", shape_str(row_mask.shape()),
                          " does not lead ", shape_str(ref.shape()));
        row = static_cast<std::int64_t>(r.size() / m.size());
    }
    Comparison c;
    double num = 0, den = 0;
    for (std::size_t i = 0; i < r.size(); ++i) {
        if (!m.empty() && m[i / static_cast<std::size_t>(row)] == 0.0f) continue;
        const double d = static_cast<double>(a[i]) - r[i];
        num += d * d;
        den += static_cast<double>(r[i]) * r[i];
        c.max_abs = std::max(c.max_abs, std::isnan(d) ? INFINITY : std::abs(d));
        ++c.compared;
    }
    c.rel_l2 = den > 0 ? std::sqrt(num) / std::sqrt(den) : std::sqrt(num);
    if (std::isnan(c.rel_l2)) c.rel_l2 = INFINITY;
    return c;
}

}  // namespace hyvideo::golden
