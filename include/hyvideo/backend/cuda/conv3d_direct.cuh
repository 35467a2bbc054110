#pragma once
// conv3d_direct: backend.hpp's conv3d() contract as a direct convolution, one thread per output
// element. It is the reference-shaped kernel the CUDA backend starts from (and keeps for shapes a
// tuned path does not take): every output element is the same loop conv3d_ref in
// tests/backend/test_conformance.cpp writes, so its correctness is easy to see; it re-reads and
// re-maps each input element once per output that uses it, which is slow for the VAE's large layers.
//
// Semantics, per output element y[n, co, ot, oh, ow]:
//   x'  = x·in_scale[n, ci] + in_shift[n, ci] (when given), then SiLU (when in_silu), applied to the
//         element the padding rule picks: replicate padding repeats the mapped edge element, zero
//         padding contributes nothing (a zero after the map, as F.pad of the mapped tensor);
//   bf16 weight: x' is rounded to bf16 (nearest even) and the weight widened, products in f32;
//   f16 weight: widened, f32 arithmetic;
//   y   = Σ x'·w + bias[co] + residual[n, co, ot, oh, ow].
#include <array>
#include <cstdint>

#include <cuda_runtime.h>

#include "hyvideo/backend/conv3d_spec.hpp"
#include "hyvideo/backend/cuda/check.hpp"
#include "hyvideo/core/dtype.hpp"
#include "hyvideo/core/dtype_convert.hpp"
#include "hyvideo/core/error.hpp"

namespace hyvideo::cuda_detail {

// Everything the kernel reads, as plain values (Conv3dSpec's std::arrays stay on the host).
struct Conv3dArgs {
    const float* x = nullptr;
    std::int64_t x_stride[5] = {};  // elements, for (n, c, t, h, w)
    std::int64_t N = 0, Cin = 0, T = 0, H = 0, W = 0;
    const void* w = nullptr;  // [Cout, Cin, kt, kh, kw] dense
    std::int64_t Cout = 0, kt = 0, kh = 0, kw = 0;
    std::int64_t To = 0, Ho = 0, Wo = 0;
    std::int64_t stride[3] = {1, 1, 1};
    std::int64_t pad_front[3] = {};  // t_front, h_top, w_left; the back padding only sets the output size
    bool replicate = false;
    const float* bias = nullptr;      // [Cout] or null
    const float* in_scale = nullptr;  // [N, Cin] dense, with in_shift, or null
    const float* in_shift = nullptr;
    bool in_silu = false;
    const float* residual = nullptr;  // [N, Cout, To, Ho, Wo] dense, or null
    float* y = nullptr;               // [N, Cout, To, Ho, Wo] dense
};

enum class Conv3dWeight : std::uint8_t { f32, bf16, f16 };

template <Conv3dWeight kWeight>
__device__ inline float conv3d_weight(const void* w, std::int64_t i) {
    if constexpr (kWeight == Conv3dWeight::f32) return static_cast<const float*>(w)[i];
    else if constexpr (kWeight == Conv3dWeight::bf16) return bf16_to_f32(static_cast<const std::uint16_t*>(w)[i]);
    else return f16_to_f32(static_cast<const std::uint16_t*>(w)[i]);
}

// Position p of a padded axis (p counted from the start of the padding) in the unpadded axis of size n,
// or −1 where zero padding reads a zero.
__device__ inline std::int64_t conv3d_source(std::int64_t p, std::int64_t front, std::int64_t n, bool replicate) {
    const std::int64_t s = p - front;
    if (s >= 0 && s < n) return s;
    if (!replicate) return -1;
    return s < 0 ? 0 : n - 1;
}

template <Conv3dWeight kWeight>
__global__ void conv3d_direct_kernel(const Conv3dArgs a) {
    const std::int64_t total = a.N * a.Cout * a.To * a.Ho * a.Wo;
    const std::int64_t taps = a.kt * a.kh * a.kw;
    for (std::int64_t idx = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x; idx < total;
         idx += std::int64_t{gridDim.x} * blockDim.x) {
        std::int64_t rest = idx;
        const std::int64_t ow = rest % a.Wo;
        rest /= a.Wo;
        const std::int64_t oh = rest % a.Ho;
        rest /= a.Ho;
        const std::int64_t ot = rest % a.To;
        rest /= a.To;
        const std::int64_t co = rest % a.Cout;
        const std::int64_t n = rest / a.Cout;

        float acc = 0.0f;
        for (std::int64_t ci = 0; ci < a.Cin; ++ci) {
            const float* xc = a.x + n * a.x_stride[0] + ci * a.x_stride[1];
            const bool map = a.in_scale != nullptr;
            const float scale = map ? a.in_scale[n * a.Cin + ci] : 1.0f;
            const float shift = map ? a.in_shift[n * a.Cin + ci] : 0.0f;
            const std::int64_t w0 = (co * a.Cin + ci) * taps;
            for (std::int64_t dt = 0; dt < a.kt; ++dt) {
                const std::int64_t ts = conv3d_source(ot * a.stride[0] + dt, a.pad_front[0], a.T, a.replicate);
                if (ts < 0) continue;
                for (std::int64_t dh = 0; dh < a.kh; ++dh) {
                    const std::int64_t hs = conv3d_source(oh * a.stride[1] + dh, a.pad_front[1], a.H, a.replicate);
                    if (hs < 0) continue;
                    for (std::int64_t dw = 0; dw < a.kw; ++dw) {
                        const std::int64_t ws = conv3d_source(ow * a.stride[2] + dw, a.pad_front[2], a.W, a.replicate);
                        if (ws < 0) continue;
                        float v = xc[ts * a.x_stride[2] + hs * a.x_stride[3] + ws * a.x_stride[4]];
                        // One rounding for the map, the closest f32 to the exact x·scale + shift.
                        if (map) v = fmaf(v, scale, shift);
                        // SiLU as x / (1 + e^−x): below x ≈ −88 e^−x is inf and the result is −0, as the
                        // exact value (under 1e-36) rounds; NaN stays NaN.
                        if (a.in_silu) v = v / (1.0f + expf(-v));
                        if constexpr (kWeight == Conv3dWeight::bf16) v = bf16_to_f32(f32_to_bf16(v));
                        acc = fmaf(v, conv3d_weight<kWeight>(a.w, w0 + (dt * a.kh + dh) * a.kw + dw), acc);
                    }
                }
            }
        }
        if (a.bias != nullptr) acc += a.bias[co];
        if (a.residual != nullptr) acc += a.residual[idx];
        a.y[idx] = acc;
    }
}

// y = conv3d(x', w) + bias + residual, torch.nn.functional.conv3d of the F.pad-ded, mapped input.
//   x          f32 [N, Cin, T, H, W] on the device, element strides x_strides (any, even 0 or negative)
//   w          [Cout, Cin, kt, kh, kw] dense, f32, bf16 or f16 bits (w_dtype)
//   bias       f32 [Cout] dense, or nullptr
//   spec       stride, the six paddings and the pad mode
//   in_scale, in_shift   f32 [N, Cin] dense, both or neither; in_silu applies SiLU after them (or alone)
//   residual   f32 [N, Cout, T', H', W'] dense, or nullptr
//   y          f32 [N, Cout, T', H', W'] dense, T', H', W' as spec.output_shape gives them (returned);
//              must not overlap any input
// Enqueued on `stream`; no scratch, no synchronisation.
inline std::array<std::int64_t, 5> conv3d_direct(cudaStream_t stream, const float* x,
                                                 const std::array<std::int64_t, 5>& x_shape,
                                                 const std::array<std::int64_t, 5>& x_strides, const void* w,
                                                 DType w_dtype, const std::array<std::int64_t, 5>& w_shape,
                                                 const float* bias, const Conv3dSpec& spec, const float* in_scale,
                                                 const float* in_shift, bool in_silu, const float* residual, float* y) {
    const Shape out = spec.output_shape(Shape(x_shape.begin(), x_shape.end()), Shape(w_shape.begin(), w_shape.end()));
    HYVIDEO_CHECK((in_scale == nullptr) == (in_shift == nullptr), "conv3d: the input map needs both in_scale and in_shift");
    Conv3dArgs a;
    a.x = x;
    for (int d = 0; d < 5; ++d) a.x_stride[d] = x_strides[static_cast<std::size_t>(d)];
    a.N = x_shape[0];
    a.Cin = x_shape[1];
    a.T = x_shape[2];
    a.H = x_shape[3];
    a.W = x_shape[4];
    a.w = w;
    a.Cout = w_shape[0];
    a.kt = w_shape[2];
    a.kh = w_shape[3];
    a.kw = w_shape[4];
    a.To = out[2];
    a.Ho = out[3];
    a.Wo = out[4];
    for (int d = 0; d < 3; ++d) {
        a.stride[d] = spec.stride[static_cast<std::size_t>(d)];
        a.pad_front[d] = spec.padding[static_cast<std::size_t>(2 * d)];
    }
    a.replicate = spec.pad_mode == PadMode::replicate;
    a.bias = bias;
    a.in_scale = in_scale;
    a.in_shift = in_shift;
    a.in_silu = in_silu;
    a.residual = residual;
    a.y = y;

    const std::array<std::int64_t, 5> result{out[0], out[1], out[2], out[3], out[4]};
    const std::int64_t total = shape_numel(out);
    if (total == 0) return result;
    constexpr int kThreads = 256;
    const std::int64_t want = (total + kThreads - 1) / kThreads;
    // A grid-stride loop covers the rest; 2^20 blocks keep every current GPU full.
    const auto blocks = static_cast<unsigned>(want < (std::int64_t{1} << 20) ? want : (std::int64_t{1} << 20));
    switch (w_dtype) {
        case DType::f32: conv3d_direct_kernel<Conv3dWeight::f32><<<blocks, kThreads, 0, stream>>>(a); break;
        case DType::bf16: conv3d_direct_kernel<Conv3dWeight::bf16><<<blocks, kThreads, 0, stream>>>(a); break;
        case DType::f16: conv3d_direct_kernel<Conv3dWeight::f16><<<blocks, kThreads, 0, stream>>>(a); break;
        default:
            throw Error(detail::concat("conv3d: weight dtype ", dtype_name(w_dtype), " (expected f32, bf16 or f16)"));
    }
    HYVIDEO_CUDA_CHECK(cudaGetLastError());
    return result;
}

}  // namespace hyvideo::cuda_detail
