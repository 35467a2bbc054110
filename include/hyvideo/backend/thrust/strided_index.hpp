#pragma once
// StridedIndex: where the element at a row-major position of a view sits in memory, as a plain value a
// Thrust function (host or CUDA device) can carry. Broadcasting is a stride of 0 (NumPy's rule: a
// missing or size-1 dim of the operand reads the same element along the broadcast dim).
#include <cstdint>

#include "hyvideo/core/error.hpp"
#include "hyvideo/core/host_device.hpp"
#include "hyvideo/core/tensor.hpp"

namespace hyvideo::thrust_detail {

struct StridedIndex {
    static constexpr int kMaxRank = 8;
    int rank = 0;
    std::int64_t size[kMaxRank] = {};
    std::int64_t stride[kMaxRank] = {};

    // Offset, in elements from the view's first element, of row-major position `i`.
    HYVIDEO_HD std::int64_t offset(std::int64_t i) const {
        std::int64_t off = 0;
        for (int d = rank - 1; d >= 0; --d) {
            off += (i % size[d]) * stride[d];
            i /= size[d];
        }
        return off;
    }
};

// Index of t read under its own shape.
inline StridedIndex strided_index(const Tensor& t) {
    HYVIDEO_CHECK(t.dim() <= StridedIndex::kMaxRank, "thrust backend: ", t.dim(), "-d tensor ", shape_str(t.shape()),
                  " (at most ", StridedIndex::kMaxRank, " dims)");
    StridedIndex s;
    s.rank = static_cast<int>(t.dim());
    for (int d = 0; d < s.rank; ++d) {
        s.size[d] = t.size(d);
        s.stride[d] = t.stride(d);
    }
    return s;
}

// Index of t read under the broadcast shape `to` (NumPy broadcasting; the caller checked it applies).
inline StridedIndex broadcast_index(const Tensor& t, const Shape& to) {
    HYVIDEO_CHECK(static_cast<int>(to.size()) <= StridedIndex::kMaxRank, "thrust backend: ", to.size(),
                  "-d broadcast shape (at most ", StridedIndex::kMaxRank, " dims)");
    StridedIndex s;
    s.rank = static_cast<int>(to.size());
    const auto lead = static_cast<std::int64_t>(to.size()) - t.dim();
    for (int d = 0; d < s.rank; ++d) {
        s.size[d] = to[d];
        const std::int64_t td = d - lead;
        s.stride[d] = td < 0 || t.size(td) == 1 ? 0 : t.stride(td);
    }
    return s;
}

}  // namespace hyvideo::thrust_detail
