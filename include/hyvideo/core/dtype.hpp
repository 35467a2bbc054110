#pragma once
// Element types of tensors, named as PyTorch and safetensors name them.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "hyvideo/core/error.hpp"

namespace hyvideo {

enum class DType : std::uint8_t { f32, f16, bf16, f8e4m3, i64, boolean, u8 };

constexpr std::size_t dtype_size(DType t) {
    switch (t) {
        case DType::f32: return 4;
        case DType::f16: return 2;
        case DType::bf16: return 2;
        case DType::f8e4m3: return 1;
        case DType::i64: return 8;
        case DType::boolean: return 1;
        case DType::u8: return 1;
    }
    return 0;
}

constexpr bool is_floating(DType t) { return t != DType::i64 && t != DType::boolean && t != DType::u8; }

// The safetensors spelling ("F32", "BF16", "F8_E4M3", ...).
constexpr std::string_view safetensors_name(DType t) {
    switch (t) {
        case DType::f32: return "F32";
        case DType::f16: return "F16";
        case DType::bf16: return "BF16";
        case DType::f8e4m3: return "F8_E4M3";
        case DType::i64: return "I64";
        case DType::boolean: return "BOOL";
        case DType::u8: return "U8";
    }
    return "?";
}

inline std::optional<DType> dtype_from_safetensors(std::string_view s) {
    for (DType t : {DType::f32, DType::f16, DType::bf16, DType::f8e4m3, DType::i64, DType::boolean, DType::u8})
        if (safetensors_name(t) == s) return t;
    return std::nullopt;
}

// The PyTorch spelling, used in messages.
constexpr std::string_view dtype_name(DType t) {
    switch (t) {
        case DType::f32: return "float32";
        case DType::f16: return "float16";
        case DType::bf16: return "bfloat16";
        case DType::f8e4m3: return "float8_e4m3fn";
        case DType::i64: return "int64";
        case DType::boolean: return "bool";
        case DType::u8: return "uint8";
    }
    return "?";
}

// Storage types for the 16- and 8-bit floats: plain bit containers, converted by dtype_convert.hpp.
struct bf16_t { std::uint16_t bits; };
struct f16_t { std::uint16_t bits; };
struct f8e4m3_t { std::uint8_t bits; };

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<f16_t> { static constexpr DType value = DType::f16; };
template <> struct dtype_of<bf16_t> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of<f8e4m3_t> { static constexpr DType value = DType::f8e4m3; };
template <> struct dtype_of<std::int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::boolean; };
template <> struct dtype_of<std::uint8_t> { static constexpr DType value = DType::u8; };
template <class T> inline constexpr DType dtype_of_v = dtype_of<T>::value;

}  // namespace hyvideo
