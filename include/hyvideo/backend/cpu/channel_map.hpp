#pragma once
// The elementwise map the causal VAE applies to activations on their way into a convolution:
// y = x·a_c + b_c per channel (GroupNorm's normalisation and affine,
// docs/model.md#vae-resnet-block-and-groupnorm), then SiLU, stored as f32 or as the bf16 operands of the
// convolution. group_norm() applies it as a pass of its own and conv3d() while it stages its input, so
// SiLU(GroupNorm(x)) never has to exist as a tensor. The activations alone (SiLU, and the DiT MLPs'
// GELU-tanh) run through the same vector code (elementwise.hpp).
//
// The map runs over rows of C values, the pixels of a channels-last tensor (a, b indexed by
// channel) or a run of one channel (a, b the same for all). It is written with GCC vector types of
// 16 floats, with its own exp (range reduction and a polynomial, within 2 ulp of std::exp), because
// the compiler vectorises neither std::exp nor, at the baseline x86-64 level, the clamps an exp needs.
// The same source is compiled twice, for the baseline and for AVX-512, and the AVX-512 build is used
// where the CPU has it (about 4× the baseline on the SiLU-heavy passes). The two may differ in the
// last bit (FMA contraction); each is deterministic and independent of the thread count.
//
// bf16 stores round to nearest even like f32_to_bf16() (dtype_convert.hpp), NaN as 0xFFFF.
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "hyvideo/core/dtype.hpp"
#include "hyvideo/core/error.hpp"

#if defined(__x86_64__) || defined(__i386__)
#define HYVIDEO_CHANNEL_MAP_X86 1
#else
#define HYVIDEO_CHANNEL_MAP_X86 0
#endif

namespace hyvideo::cpu_detail {

// ---- instruction set selection ----------------------------------------------------------------------

enum class ChannelMapKernel { portable, avx512 };

inline constexpr std::string_view channel_map_kernel_name(ChannelMapKernel k) {
    return k == ChannelMapKernel::avx512 ? "AVX-512" : "portable";
}

inline bool channel_map_kernel_supported(ChannelMapKernel k) {
    if (k == ChannelMapKernel::portable) return true;
#if HYVIDEO_CHANNEL_MAP_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
}

namespace channel_map_internal {
inline std::atomic<ChannelMapKernel>& kernel_setting() {
    static std::atomic<ChannelMapKernel> kernel{channel_map_kernel_supported(ChannelMapKernel::avx512)
                                                    ? ChannelMapKernel::avx512
                                                    : ChannelMapKernel::portable};
    return kernel;
}
}  // namespace channel_map_internal

// Process-wide, like the GEMM engine; the default is the best the CPU supports.
inline ChannelMapKernel channel_map_kernel() { return channel_map_internal::kernel_setting().load(); }
inline void set_channel_map_kernel(ChannelMapKernel k) {
    HYVIDEO_CHECK(channel_map_kernel_supported(k), "set_channel_map_kernel: this CPU does not support the ",
                  channel_map_kernel_name(k), " kernel");
    channel_map_internal::kernel_setting().store(k);
}

// What to do to each element: the affine map (per channel, or one pair for the whole row), SiLU.
struct ChannelMap {
    const float* scale = nullptr;  // nullptr: no affine map
    const float* shift = nullptr;
    bool per_channel = true;       // scale[c], shift[c]; else scale[0], shift[0] for every element
    bool silu = false;
    bool gelu_tanh = false;        // GELU, tanh approximation (the DiT's MLPs); not with silu
};

namespace channel_map_internal {

typedef float vf __attribute__((vector_size(64)));
typedef std::int32_t vi __attribute__((vector_size(64)));
typedef std::uint32_t vu __attribute__((vector_size(64)));
typedef std::uint16_t vh __attribute__((vector_size(32)));
inline constexpr std::int64_t kLanes = 16;

// The helpers take their vectors by reference: a 64-byte vector passed by value has a different ABI
// with and without AVX-512, which GCC warns about even for always-inlined calls.
#define HYVIDEO_CHANNEL_MAP_INLINE [[gnu::always_inline]] inline

HYVIDEO_CHANNEL_MAP_INLINE void load(vf& v, const float* p) { std::memcpy(&v, p, sizeof v); }

// x <- e^x: x = n·ln2 + r with n = round(x/ln2) and |r| <= ln2/2 (ln2 in two parts, so r is exact to
// float precision), e^r by its degree-6 Taylor polynomial with Cephes' minimax coefficients, 2^n as
// exponent bits, applied in two halves so that n = 128 does not overflow them. x is clamped to
// [-87.3, 88.7] first (e^x is then 0 to float precision below, and above there is no finite answer).
HYVIDEO_CHANNEL_MAP_INLINE void exp_in_place(vf& x) {
    const vf lo = vf{} - 87.3f, hi = vf{} + 88.7f;
    x = x < lo ? lo : x;
    x = x > hi ? hi : x;
    const vf n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    const vf r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
    vf p = vf{} + 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const vi ni = __builtin_convertvector(n, vi);
    const vi half = ni >> 1;
    x = p * (vf)((half + 127) << 23) * (vf)((ni - half + 127) << 23);
}

// x <- x·sigmoid(x) = x / (1 + e^−x); NaN stays NaN. Below x = −88 the exact result is under 1e-36
// and e^−x is at its clamp, which would give x/3e38 (wrong for huge |x|), so the result is ±0 there.
HYVIDEO_CHANNEL_MAP_INLINE void silu_in_place(vf& x) {
    const vf z = -x;
    vf e = z;
    exp_in_place(e);
    x = z > 88.0f ? x * 0.0f : x / (1.0f + e);
}

// x <- GELU_tanh(x) = ½x(1 + tanh(y)), y = √(2/π)(x + 0.044715x³), computed as x / (1 + e^−2y): the
// same function (1 + tanh y = 2/(1 + e^−2y)) without the cancellation of 1 + tanh y for negative y.
// NaN stays NaN.
HYVIDEO_CHANNEL_MAP_INLINE void gelu_tanh_in_place(vf& x) {
    const vf z = x * -1.5957691216057308f * (1.0f + 0.044715f * x * x);  // −2y
    vf e = z;
    exp_in_place(e);
    // Past the clamp (x < −10.3, where the exact result is under 1e-37) the result is ±0, as torch's.
    x = z > 88.0f ? x * 0.0f : x / (1.0f + e);
}

HYVIDEO_CHANNEL_MAP_INLINE void store(float* p, const vf& v) { std::memcpy(p, &v, sizeof v); }
HYVIDEO_CHANNEL_MAP_INLINE void store(std::uint16_t* p, const vf& v) {
    const vu u = (vu)v;
    const vu rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    const vu bits = (u & 0x7FFFFFFFu) > 0x7F800000u ? vu{} + 0xFFFFu : rounded;  // NaN -> 0xFFFF
    const vh h = __builtin_convertvector(bits, vh);
    std::memcpy(p, &h, sizeof h);
}

// x <- map(x) for the lanes' channels, whose scale and shift start at a and b.
HYVIDEO_CHANNEL_MAP_INLINE void apply(vf& x, const ChannelMap& m, const float* a, const float* b) {
    if (m.scale) {
        if (m.per_channel) {
            vf va, vb;
            load(va, a);
            load(vb, b);
            x = x * va + vb;
        } else {
            x = x * a[0] + b[0];
        }
    }
    if (m.silu) silu_in_place(x);
    else if (m.gelu_tanh) gelu_tanh_in_place(x);
}

// rows × C: out[r·out_stride + c] = map(in[r·in_stride + c]).
template <class Out>
HYVIDEO_CHANNEL_MAP_INLINE void map_rows(const float* in, std::int64_t in_stride, Out* out, std::int64_t out_stride,
                                         std::int64_t rows, std::int64_t C, const ChannelMap& m) {
    if constexpr (std::is_same_v<Out, float>) {
        if (!m.scale && !m.silu && !m.gelu_tanh) {  // nothing to compute: a copy
            for (std::int64_t r = 0; r < rows; ++r)
                std::memcpy(out + r * out_stride, in + r * in_stride, static_cast<std::size_t>(C) * sizeof(float));
            return;
        }
    }
    const std::int64_t full = C - C % kLanes;
    alignas(64) float a_tail[kLanes] = {}, b_tail[kLanes] = {}, x_tail[kLanes] = {};
    if (m.scale && m.per_channel) {
        std::memcpy(a_tail, m.scale + full, static_cast<std::size_t>(C - full) * sizeof(float));
        std::memcpy(b_tail, m.shift + full, static_cast<std::size_t>(C - full) * sizeof(float));
    }
    for (std::int64_t r = 0; r < rows; ++r) {
        const float* x = in + r * in_stride;
        Out* o = out + r * out_stride;
        vf v;
        for (std::int64_t c = 0; c < full; c += kLanes) {
            load(v, x + c);
            apply(v, m, m.per_channel ? m.scale + c : m.scale, m.per_channel ? m.shift + c : m.shift);
            store(o + c, v);
        }
        if (full < C) {
            // The tail goes through the same vector code, so every element of a row is computed alike.
            std::memcpy(x_tail, x + full, static_cast<std::size_t>(C - full) * sizeof(float));
            alignas(64) Out o_tail[kLanes];
            load(v, x_tail);
            apply(v, m, m.per_channel ? a_tail : m.scale, m.per_channel ? b_tail : m.shift);
            store(o_tail, v);
            std::memcpy(o + full, o_tail, static_cast<std::size_t>(C - full) * sizeof(Out));
        }
    }
}

inline void map_rows_portable(const float* in, std::int64_t in_stride, void* out, std::int64_t out_stride, bool bf16,
                              std::int64_t rows, std::int64_t C, const ChannelMap& m) {
    if (bf16) map_rows(in, in_stride, static_cast<std::uint16_t*>(out), out_stride, rows, C, m);
    else map_rows(in, in_stride, static_cast<float*>(out), out_stride, rows, C, m);
}
#if HYVIDEO_CHANNEL_MAP_X86
__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma,prefer-vector-width=512"))) inline void map_rows_avx512(
    const float* in, std::int64_t in_stride, void* out, std::int64_t out_stride, bool bf16, std::int64_t rows,
    std::int64_t C, const ChannelMap& m) {
    if (bf16) map_rows(in, in_stride, static_cast<std::uint16_t*>(out), out_stride, rows, C, m);
    else map_rows(in, in_stride, static_cast<float*>(out), out_stride, rows, C, m);
}
#endif

#undef HYVIDEO_CHANNEL_MAP_INLINE

}  // namespace channel_map_internal

// out[r·out_stride + c] = m(in[r·in_stride + c]) for r < rows, c < C, stored as `out_type` (f32, or
// bf16 bits); strides in elements. With m.per_channel, m.scale and m.shift have C entries, else one.
inline void map_channels(const float* in, std::int64_t in_stride, void* out, std::int64_t out_stride, DType out_type,
                         std::int64_t rows, std::int64_t C, const ChannelMap& m) {
    const bool bf16 = out_type == DType::bf16;
#if HYVIDEO_CHANNEL_MAP_X86
    if (channel_map_kernel() == ChannelMapKernel::avx512) {
        channel_map_internal::map_rows_avx512(in, in_stride, out, out_stride, bf16, rows, C, m);
        return;
    }
#endif
    channel_map_internal::map_rows_portable(in, in_stride, out, out_stride, bf16, rows, C, m);
}

}  // namespace hyvideo::cpu_detail
