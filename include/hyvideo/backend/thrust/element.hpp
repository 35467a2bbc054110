#pragma once
// Reading any tensor dtype as f32 and writing f32 as a floating dtype, one element at a time, on the
// host or a CUDA device: the scalar conversions of core/dtype_convert.hpp (PyTorch's rounding, bit for
// bit), dispatched on the dtype at run time.
#include <cstdint>

#include "hyvideo/core/dtype.hpp"
#include "hyvideo/core/dtype_convert.hpp"
#include "hyvideo/core/host_device.hpp"

namespace hyvideo::thrust_detail {

HYVIDEO_HD inline float load_as_float(const void* base, DType t, std::int64_t i) {
    switch (t) {
        case DType::f32: return static_cast<const float*>(base)[i];
        case DType::bf16: return bf16_to_f32(static_cast<const std::uint16_t*>(base)[i]);
        case DType::f16: return f16_to_f32(static_cast<const std::uint16_t*>(base)[i]);
        case DType::f8e4m3: return f8e4m3_to_f32(static_cast<const std::uint8_t*>(base)[i]);
        case DType::i64: return static_cast<float>(static_cast<const std::int64_t*>(base)[i]);
        case DType::boolean: return static_cast<const std::uint8_t*>(base)[i] != 0 ? 1.0f : 0.0f;
        case DType::u8: return static_cast<float>(static_cast<const std::uint8_t*>(base)[i]);
    }
    return 0.0f;
}

// Stores into f32, bf16 or f16 (the caller refuses the other dtypes before launching).
HYVIDEO_HD inline void store_float(void* base, DType t, std::int64_t i, float v) {
    switch (t) {
        case DType::bf16: static_cast<std::uint16_t*>(base)[i] = f32_to_bf16(v); break;
        case DType::f16: static_cast<std::uint16_t*>(base)[i] = f32_to_f16(v); break;
        default: static_cast<float*>(base)[i] = v; break;
    }
}

inline bool storable_as_float(DType t) { return t == DType::f32 || t == DType::bf16 || t == DType::f16; }

}  // namespace hyvideo::thrust_detail
