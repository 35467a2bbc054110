#pragma once
// Element conversions between the tensor dtypes, bit for bit as PyTorch's CPU `.to(dtype)` on x86-64
// produces them (checked exhaustively against torch 2.15 for every f32 input; see the notes per function).
// Checkpoints and golden files are written by PyTorch, so reproducing its rounding, NaN encodings and
// overflow policy exactly is what lets a converted tensor compare equal to the reference, not just close.
//
// NaN, range and rounding decisions are made on integer bit patterns rather than with std::isnan or float
// comparisons, so the results do not change under -ffast-math or with flush-to-zero enabled.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "hyvideo/core/dtype.hpp"
#include "hyvideo/core/error.hpp"
#include "hyvideo/core/host_device.hpp"

namespace hyvideo {

namespace detail {
// The scalar conversions also run on a CUDA device (the Thrust backend), where std::bit_cast is not
// available to device code.
HYVIDEO_HD inline std::uint32_t f32_bits(float x) {
#if defined(__CUDA_ARCH__)
    return __float_as_uint(x);
#else
    return std::bit_cast<std::uint32_t>(x);
#endif
}
HYVIDEO_HD inline float f32_from(std::uint32_t u) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    return std::bit_cast<float>(u);
#endif
}
// Branch-free choice between two bit patterns: with ternaries GCC keeps branches in the f16 and f8 loops
// (it will not if-convert around float arithmetic), which blocks vectorisation.
HYVIDEO_HD inline std::uint32_t pick(bool c, std::uint32_t a, std::uint32_t b) {
    const std::uint32_t m = 0u - static_cast<std::uint32_t>(c);
    return (a & m) | (b & ~m);
}
}  // namespace detail

// bf16 is the top half of an f32, so widening is exact and PyTorch (c10 and the vectorised kernels
// alike) keeps every bit, NaN payloads included, without quieting signalling NaNs.
HYVIDEO_HD inline float bf16_to_f32(std::uint16_t h) { return detail::f32_from(std::uint32_t{h} << 16); }

namespace detail {
// Round to nearest even on the dropped 16 bits; overflow carries into the exponent and becomes ±inf.
// The NaN encoding is a parameter because PyTorch itself writes two (see f32_to_bf16 and convert_buffer).
HYVIDEO_HD inline std::uint16_t f32_to_bf16_with_nan(float x, std::uint16_t nan_bits) {
    const std::uint32_t u = f32_bits(x);
    const bool nan = (u & 0x7FFFFFFFu) > 0x7F800000u;
    const std::uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    return static_cast<std::uint16_t>(pick(nan, nan_bits, rounded));
}
}  // namespace detail

// Round to nearest even; NaN gives 0xFFFF, not c10's scalar 0x7FC0: `.to(torch.bfloat16)` of an f32
// tensor on x86 runs the AVX2/AVX-512 kernel (cvtfp32_bf16), which blends all-ones into NaN lanes
// whatever their sign. Only 0-dim tensors and CPUs without those kernels take c10's 0x7FC0 path. Both
// are NaN; 0xFFFF is what files written by torch from ordinary f32 tensors hold.
HYVIDEO_HD inline std::uint16_t f32_to_bf16(float x) { return detail::f32_to_bf16_with_nan(x, 0xFFFF); }

// PyTorch's x86 builds widen halves with the F16C instruction (c10 uses _cvtsh_ss when __F16C__ is
// defined, and the vector kernels use cvtph2ps), so NaNs follow the hardware rule: payload kept and the
// quiet bit set. Subnormal halves become normal floats exactly.
HYVIDEO_HD inline float f16_to_f32(std::uint16_t h) {
    const std::uint32_t sign = std::uint32_t{h & 0x8000u} << 16;
    const std::uint32_t exp = h & 0x7C00u;
    const std::uint32_t man = h & 0x03FFu;
    const std::uint32_t normal = ((std::uint32_t{h & 0x7FFFu} << 13) + (112u << 23));
    const std::uint32_t special = detail::pick(man == 0, 0x7F800000u, 0x7FC00000u | (man << 13));
    const std::uint32_t subnormal = detail::f32_bits(static_cast<float>(man) * 0x1p-24f);
    const std::uint32_t mag =
        detail::pick(exp == 0x7C00u, special, detail::pick(exp == 0, subnormal, normal));
    return detail::f32_from(sign | mag);
}

// IEEE binary16 with round to nearest even, as F16C's cvtps2ph with the round-to-nearest immediate
// (what c10 and the vector kernels call on x86): overflow to ±inf, correctly rounded subnormals, and NaN
// kept with its sign and the top payload bits, quiet bit forced (so 0x7FC02000 -> 0x7E01, not 0x7E00 as
// c10's portable fallback would give).
HYVIDEO_HD inline std::uint16_t f32_to_f16(float x) {
    const std::uint32_t u = detail::f32_bits(x);
    const std::uint32_t sign = (u >> 16) & 0x8000u;
    const std::uint32_t a = u & 0x7FFFFFFFu;
    // Rebias the exponent from 127 to 15, then round the 13 dropped bits to nearest even; a carry out of
    // the mantissa bumps the exponent, which is also how 65520 and above reach the 0x7C00 of infinity.
    const std::uint32_t rebased = a - (112u << 23);
    std::uint32_t normal = (rebased + 0xFFFu + ((a >> 13) & 1u)) >> 13;
    normal = detail::pick(normal > 0x7C00u, 0x7C00u, normal);
    // Below 2^-14 the result is a multiple of 2^-24. Adding 0.5f, whose ulp is 2^-24, lets the FPU round
    // to nearest even; the low bits of the sum are then the half's subnormal mantissa (0x400 when the
    // value rounds up to the smallest normal, which is also its correct encoding).
    const std::uint32_t subnormal = detail::f32_bits(detail::f32_from(a) + 0.5f) - 0x3F000000u;
    const std::uint32_t nan = 0x7E00u | ((a >> 13) & 0x03FFu);
    const std::uint32_t mag =
        detail::pick(a > 0x7F800000u, nan, detail::pick(a < 0x38800000u, subnormal, normal));
    return static_cast<std::uint16_t>(sign | mag);
}

// float8_e4m3fn (1-4-3, bias 7, no infinities): decoding is exact. The NaN patterns S.1111.111 decode to
// sign|0x7FF00000, the bits c10's fp8e4m3fn_to_fp32_value produces (exponent all ones, the three
// mantissa bits moved to the top), so NaNs copied through f32 match torch bit for bit.
HYVIDEO_HD inline float f8e4m3_to_f32(std::uint8_t b) {
    const std::uint32_t sign = std::uint32_t{b & 0x80u} << 24;
    const std::uint32_t exp = (b >> 3) & 0xFu;
    const std::uint32_t man = b & 0x7u;
    const std::uint32_t normal = ((exp + 120u) << 23) | (man << 20);
    const std::uint32_t subnormal = detail::f32_bits(static_cast<float>(man) * 0x1p-9f);
    const std::uint32_t mag =
        detail::pick((b & 0x7Fu) == 0x7Fu, 0x7FF00000u, detail::pick(exp == 0, subnormal, normal));
    return detail::f32_from(sign | mag);
}

// Round to nearest even, saturating: every finite value and ±inf at or beyond 448 in magnitude gives
// ±448 (0x7E/0xFE), and only NaN gives the NaN pattern 0x7F with the input's sign. That is torch 2.15
// (measured) and every release since pytorch#178817 (merged April 2026, reported downstream as the 2.13
// change), which made c10's fp8e4m3fn_from_fp32_value and the AVX-512 kernel saturate. Older releases
// gave NaN for ±inf, for |x| >= 480 and for (464, 480), where rounding reached the NaN pattern; 464, the
// tie between 448 (even mantissa) and 480, gave 448 in both. Saturation is also what quantising weights
// needs: a NaN would poison every product it enters.
HYVIDEO_HD inline std::uint8_t f32_to_f8e4m3(float x) {
    const std::uint32_t u = detail::f32_bits(x);
    const std::uint32_t sign = (u >> 24) & 0x80u;
    const std::uint32_t a = u & 0x7FFFFFFFu;
    // Below 2^-6 the result is a multiple of 2^-9; adding 2^14, whose f32 ulp is 2^-9, rounds to nearest
    // even in the FPU and leaves the subnormal mantissa (or 8 = the smallest normal) in the low bits.
    const std::uint32_t subnormal = detail::f32_bits(detail::f32_from(a) + 0x1p14f) - 0x46800000u;
    // Rebias the exponent from 127 to 7 and round the 20 dropped bits to nearest even; |x| >= 448 is
    // replaced below, so a carry into the NaN pattern never survives.
    const std::uint32_t normal = ((a - (120u << 23)) + 0x7FFFFu + ((a >> 20) & 1u)) >> 20;
    const std::uint32_t finite = detail::pick(a < 0x3C800000u, subnormal, normal);
    const std::uint32_t mag =
        detail::pick(a > 0x7F800000u, 0x7Fu, detail::pick(a >= 0x43E00000u, 0x7Eu, finite));
    return static_cast<std::uint8_t>(sign | mag);
}

namespace detail {

// x86's cvttss2si, which PyTorch's float->int64 cast compiles to: truncation toward zero, and the
// "integer indefinite" INT64_MIN for NaN, ±inf and anything outside [-2^63, 2^63). Written out because
// the plain C++ cast is undefined there.
inline std::int64_t f32_to_i64(float x) {
    const std::uint32_t a = f32_bits(x) & 0x7FFFFFFFu;
    if (a >= 0x5F000000u) return std::numeric_limits<std::int64_t>::min();  // |x| >= 2^63 or NaN
    return static_cast<std::int64_t>(x);
}

// Element loads and stores go through memcpy because tensor data in a safetensors file sits at whatever
// offset the header length leaves, so typed pointers into it may be misaligned. Compilers turn these into
// plain (vectorisable) loads.
template <class T>
inline T load(const void* base, std::size_t i) {
    T v;
    std::memcpy(&v, static_cast<const unsigned char*>(base) + i * sizeof(T), sizeof(T));
    return v;
}
template <class T>
inline void store(void* base, std::size_t i, T v) {
    std::memcpy(static_cast<unsigned char*>(base) + i * sizeof(T), &v, sizeof(T));
}

// Widening to f32 is exact for every floating source, so routing all pairs through f32 reproduces
// PyTorch, whose casts between reduced float types go through float too. int64 -> float rounds to
// nearest, so int64 -> bf16/f16/f8 rounds twice, exactly as torch does (2^30+2^22+1 -> bf16 2^30).
inline void to_f32(const void* src, DType t, float* dst, std::size_t n) {
    switch (t) {
        case DType::f32: std::memcpy(dst, src, n * sizeof(float)); return;
        case DType::bf16:
            for (std::size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(load<std::uint16_t>(src, i));
            return;
        case DType::f16:
            for (std::size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(load<std::uint16_t>(src, i));
            return;
        case DType::f8e4m3:
            for (std::size_t i = 0; i < n; ++i) dst[i] = f8e4m3_to_f32(load<std::uint8_t>(src, i));
            return;
        case DType::i64:
            for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(load<std::int64_t>(src, i));
            return;
        case DType::boolean:
            // Any nonzero byte counts as true, so stray bytes from a file cannot produce values other
            // than 0 and 1.
            for (std::size_t i = 0; i < n; ++i) dst[i] = load<std::uint8_t>(src, i) != 0 ? 1.0f : 0.0f;
            return;
        case DType::u8:
            for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(load<std::uint8_t>(src, i));
            return;
    }
    throw Error(concat("convert_buffer: unsupported source dtype ", static_cast<int>(t)));
}

inline void from_f32(const float* src, void* dst, DType t, std::size_t n, std::uint16_t bf16_nan = 0xFFFF) {
    switch (t) {
        case DType::f32: std::memcpy(dst, src, n * sizeof(float)); return;
        case DType::bf16:
            for (std::size_t i = 0; i < n; ++i)
                store<std::uint16_t>(dst, i, f32_to_bf16_with_nan(src[i], bf16_nan));
            return;
        case DType::f16:
            for (std::size_t i = 0; i < n; ++i) store<std::uint16_t>(dst, i, f32_to_f16(src[i]));
            return;
        case DType::f8e4m3:
            for (std::size_t i = 0; i < n; ++i) store<std::uint8_t>(dst, i, f32_to_f8e4m3(src[i]));
            return;
        case DType::i64:
            for (std::size_t i = 0; i < n; ++i) store<std::int64_t>(dst, i, f32_to_i64(src[i]));
            return;
        case DType::boolean:
            // torch's bool cast is x != 0: NaN is true, -0 is false. Compared on bits to stay right
            // under -ffast-math.
            for (std::size_t i = 0; i < n; ++i)
                store<std::uint8_t>(dst, i, (f32_bits(src[i]) & 0x7FFFFFFFu) != 0 ? 1 : 0);
            return;
        case DType::u8:
            // torch's float -> uint8 cast goes through int64 and keeps the low byte (it wraps).
            for (std::size_t i = 0; i < n; ++i)
                store<std::uint8_t>(dst, i, static_cast<std::uint8_t>(static_cast<std::uint64_t>(f32_to_i64(src[i]))));
            return;
    }
    throw Error(concat("convert_buffer: unsupported destination dtype ", static_cast<int>(t)));
}

inline bool known_dtype(DType t) {
    switch (t) {
        case DType::f32:
        case DType::f16:
        case DType::bf16:
        case DType::f8e4m3:
        case DType::i64:
        case DType::boolean:
        case DType::u8: return true;
    }
    return false;
}

}  // namespace detail

// Converts n elements from src (of src_type) to dst (of dst_type) with the semantics of PyTorch's
// `tensor.to(dst_dtype)` on CPU: the scalar functions above for floats, truncation toward zero (and x86's
// INT64_MIN for NaN, inf and out of range) for float -> int64, x != 0 for -> bool, round to nearest for
// int64 -> float. The buffers must not overlap unless the types are equal. Pointers need no alignment.
inline void convert_buffer(const void* src, DType src_type, void* dst, DType dst_type, std::size_t n) {
    HYVIDEO_CHECK(detail::known_dtype(src_type), "convert_buffer: unsupported source dtype ",
                  static_cast<int>(src_type));
    HYVIDEO_CHECK(detail::known_dtype(dst_type), "convert_buffer: unsupported destination dtype ",
                  static_cast<int>(dst_type));
    if (n == 0) return;
    HYVIDEO_CHECK(src != nullptr && dst != nullptr, "convert_buffer: null buffer for ", n, " elements (",
                  dtype_name(src_type), " -> ", dtype_name(dst_type), ")");
    if (src_type == dst_type) {
        std::memmove(dst, src, n * dtype_size(src_type));
        return;
    }
    // Conversions touching f32 run in one pass so the hot f32 <-> bf16/f16 loops vectorise.
    const bool src_aligned = reinterpret_cast<std::uintptr_t>(src) % alignof(float) == 0;
    const bool dst_aligned = reinterpret_cast<std::uintptr_t>(dst) % alignof(float) == 0;
    if (src_type == DType::f32 && src_aligned) {
        detail::from_f32(static_cast<const float*>(src), dst, dst_type, n);
        return;
    }
    if (dst_type == DType::f32 && dst_aligned) {
        detail::to_f32(src, src_type, static_cast<float*>(dst), n);
        return;
    }
    // Everything else goes through a small f32 staging buffer that stays in L1. f16 and f8 tensors reach
    // bf16 through c10's scalar conversion rather than the f32 vector kernel, so their NaNs become 0x7FC0.
    const std::uint16_t bf16_nan =
        (src_type == DType::f16 || src_type == DType::f8e4m3) ? std::uint16_t{0x7FC0} : std::uint16_t{0xFFFF};
    constexpr std::size_t chunk = 1024;
    float buf[chunk];
    const auto* s = static_cast<const unsigned char*>(src);
    auto* d = static_cast<unsigned char*>(dst);
    const std::size_t ss = dtype_size(src_type), ds = dtype_size(dst_type);
    for (std::size_t i = 0; i < n; i += chunk) {
        const std::size_t m = n - i < chunk ? n - i : chunk;
        detail::to_f32(s + i * ss, src_type, buf, m);
        detail::from_f32(buf, d + i * ds, dst_type, m, bf16_nan);
    }
}

}  // namespace hyvideo
