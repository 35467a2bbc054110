#pragma once
// Channels-last tensors: the memory order in which the CPU backend keeps the causal VAE's
// activations.
//
// A video [N, C, T, H, W] stored channels-last has the logical shape of any other (NCTHW: indexing,
// slicing and .contiguous() mean the same) and the strides of an [N, T, H, W, C] array, so the C
// values of one pixel are adjacent. oneDNN's convolutions read and write this order at full speed
// (channels-first views send them to a reference loop), the im2row staging of the portable engine
// copies whole pixels, and the mid block's tokens [N, T·H·W, C] are the same memory. conv3d() returns
// it; the VAE's other primitives keep the layout they are given.
#include <cstdint>

#include "hyvideo/core/tensor.hpp"

namespace hyvideo::cpu_detail {

// An uninitialised channels-last [N, C, T, H, W] f32 tensor.
inline Tensor empty_channels_last(const Shape& s) {
    HYVIDEO_CHECK(s.size() == 5, "empty_channels_last: expected [N, C, T, H, W], got ", shape_str(s));
    return Tensor::empty({s[0], s[2], s[3], s[4], s[1]}).permute({0, 4, 1, 2, 3});
}

// True when t is a 5-D tensor whose memory is a dense [N, T, H, W, C] array (strides of size-1
// dimensions are not looked at: they never address anything).
inline bool is_channels_last(const Tensor& t) {
    if (t.dim() != 5) return false;
    const std::int64_t C = t.size(1), T = t.size(2), H = t.size(3), W = t.size(4);
    const std::int64_t want[5] = {T * H * W * C, 1, H * W * C, W * C, C};
    for (int d = 0; d < 5; ++d)
        if (t.size(d) != 1 && t.stride(d) != want[d]) return false;
    return true;
}

// t itself if channels-last, else a channels-last copy.
inline Tensor channels_last(const Tensor& t) {
    if (is_channels_last(t)) return t;
    Tensor out = empty_channels_last(t.shape());
    t.copy_to(out);
    return out;
}

}  // namespace hyvideo::cpu_detail
