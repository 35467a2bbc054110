#pragma once
// linear_cublaslt: y = x·Wᵀ + b through cuBLASLt, with backend.hpp's operand contract for linear().
//
//   W f32   one f32 GEMM, CUBLAS_COMPUTE_32F. Not the TF32 compute type: the contract (and the
//           conformance tolerance 1e-5·Σ|x·w|) is f32 accuracy, which TF32's 10-bit mantissa misses.
//   W bf16  x is rounded to bf16 once (round to nearest even, as f32_to_bf16 and the CPU backend do)
//           into scratch, then a bf16×bf16 GEMM accumulating in f32 with an f32 result.
//   W f16   the contract widens the weight and computes in f32 (an f16 GEMM would also round x to
//           f16, which the contract does not allow), so W is widened into scratch as f32 and the f32
//           GEMM runs. That costs out·in·4 bytes of scratch and a pass over W per call; f16
//           checkpoints are better converted once at load time (B::weight(t, DType::f32) or bf16).
//
// The caller owns every buffer (scratch for the converted operand, cuBLASLt's workspace), so a
// backend can keep them per stream and nothing here allocates or synchronises.
#include <cstddef>
#include <cstdint>
#include <memory>

#include <cublasLt.h>
#include <cuda_runtime.h>

#include "hyvideo/backend/cuda/check.hpp"
#include "hyvideo/core/dtype.hpp"
#include "hyvideo/core/dtype_convert.hpp"
#include "hyvideo/core/error.hpp"

namespace hyvideo::cuda_detail {

// What cuBLAS documents as enough workspace for its Hopper kernels; smaller (even 0) works, with
// fewer algorithms to choose from.
inline constexpr std::size_t kLinearWorkspaceBytes = std::size_t{32} << 20;

// Bytes of scratch linear_cublaslt needs for these operands: the bf16 copy of x, the f32 copy of an
// f16 W, nothing for an f32 W. A 256-byte aligned scratch (a cudaMalloc pointer) lets cuBLASLt pick its
// fastest kernels; less is declared to it and still correct.
inline std::size_t linear_scratch_bytes(DType w_dtype, std::int64_t rows, std::int64_t in, std::int64_t out) {
    switch (w_dtype) {
        case DType::f32: return 0;
        case DType::bf16: return static_cast<std::size_t>(rows) * static_cast<std::size_t>(in) * 2;
        case DType::f16: return static_cast<std::size_t>(out) * static_cast<std::size_t>(in) * 4;
        default: break;
    }
    throw Error(detail::concat("linear: weight dtype ", dtype_name(w_dtype), " (expected f32, bf16 or f16)"));
}

// ---- kernels ----------------------------------------------------------------------------------------
// Templates only so that several translation units may include this header: a plain __global__
// function would be defined once per unit, and nvcc ignores `inline` on kernels.

// x [rows, in] with row stride ldx -> dense bf16 bits [rows, in].
template <int = 0>
__global__ void linear_round_x_bf16_kernel(const float* x, std::int64_t rows, std::int64_t in, std::int64_t ldx,
                                           std::uint16_t* out) {
    const std::int64_t n = rows * in;
    for (std::int64_t e = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x; e < n;
         e += std::int64_t{gridDim.x} * blockDim.x) {
        const std::int64_t r = e / in, c = e - r * in;
        out[e] = f32_to_bf16(x[r * ldx + c]);
    }
}

// Dense f16 bits -> f32, exact.
template <int = 0>
__global__ void linear_widen_f16_kernel(const std::uint16_t* w, std::int64_t n, float* out) {
    for (std::int64_t e = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x; e < n;
         e += std::int64_t{gridDim.x} * blockDim.x)
        out[e] = f16_to_f32(w[e]);
}

// y [rows, out] (dense): y += b, or y = b when `assign` (an empty inner dimension, no GEMM ran).
template <int = 0>
__global__ void linear_bias_kernel(float* y, std::int64_t rows, std::int64_t out, const float* bias, bool assign) {
    const std::int64_t n = rows * out;
    for (std::int64_t e = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x; e < n;
         e += std::int64_t{gridDim.x} * blockDim.x) {
        const float b = bias ? bias[e % out] : 0.0f;
        y[e] = assign ? b : y[e] + b;
    }
}

// Blocks for a grid-stride loop over n elements: enough to fill any current GPU, and within gridDim.x.
inline unsigned linear_blocks(std::int64_t n, int threads) {
    const std::int64_t want = (n + threads - 1) / threads;
    return static_cast<unsigned>(want < 65536 ? (want < 1 ? 1 : want) : 65536);
}

// ---- cuBLASLt ----------------------------------------------------------------------------------------

// The descriptors are created per call; RAII so that a throwing check does not leak them.
struct LtMatmulDescDeleter {
    void operator()(cublasLtMatmulDescOpaque_t* d) const { cublasLtMatmulDescDestroy(d); }
};
struct LtLayoutDeleter {
    void operator()(cublasLtMatrixLayoutOpaque_t* l) const { cublasLtMatrixLayoutDestroy(l); }
};
struct LtPreferenceDeleter {
    void operator()(cublasLtMatmulPreferenceOpaque_t* p) const { cublasLtMatmulPreferenceDestroy(p); }
};
using LtMatmulDesc = std::unique_ptr<cublasLtMatmulDescOpaque_t, LtMatmulDescDeleter>;
using LtLayout = std::unique_ptr<cublasLtMatrixLayoutOpaque_t, LtLayoutDeleter>;
using LtPreference = std::unique_ptr<cublasLtMatmulPreferenceOpaque_t, LtPreferenceDeleter>;

inline LtLayout lt_layout(cudaDataType_t type, std::int64_t rows, std::int64_t cols, std::int64_t ld) {
    cublasLtMatrixLayout_t l = nullptr;
    HYVIDEO_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, type, static_cast<std::uint64_t>(rows),
                                                    static_cast<std::uint64_t>(cols), ld));
    return LtLayout(l);
}

// The alignment (a power of two up to 256 bytes) a buffer and its leading dimension both have. The
// heuristic assumes 256 by default and may return a kernel that faults on an offset view's pointer
// (a strided x), so every operand's real alignment is declared.
inline std::uint32_t lt_alignment(const void* p, std::int64_t ld_bytes) {
    const auto bits = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(p)) |
                      static_cast<std::uint64_t>(ld_bytes) | std::uint64_t{256};
    return static_cast<std::uint32_t>(bits & (~bits + 1));  // lowest set bit
}

// y[rows, out] = x[rows, in]·Wᵀ + bias, f32 result, dense.
//   x      f32 on the device, unit stride along `in`, row r at x + r·ldx (ldx >= in unless rows == 1)
//   w      [out, in] dense, f32, bf16 or f16 bits (w_dtype)
//   bias   f32 [out] dense, or nullptr
//   y      f32 [rows, out] dense; must not overlap x, w or scratch
//   scratch, scratch_bytes       at least linear_scratch_bytes(w_dtype, rows, in, out), or nullptr/0 for f32
//   workspace, workspace_bytes   cuBLASLt's workspace, 256-byte aligned like a cudaMalloc pointer
//                                (kLinearWorkspaceBytes is plenty; nullptr/0 allowed)
// Everything is enqueued on `stream`; nothing synchronises. Scratch and workspace are in use until the
// stream passes this call.
inline void linear_cublaslt(cublasLtHandle_t lt, cudaStream_t stream, const float* x, std::int64_t rows,
                            std::int64_t in, std::int64_t ldx, const void* w, DType w_dtype, const float* bias,
                            float* y, std::int64_t out, void* scratch, std::size_t scratch_bytes, void* workspace,
                            std::size_t workspace_bytes) {
    HYVIDEO_CHECK(rows >= 0 && in >= 0 && out >= 0, "linear: negative size (rows ", rows, ", in ", in, ", out ", out,
                  ")");
    const std::size_t need = linear_scratch_bytes(w_dtype, rows, in, out);
    HYVIDEO_CHECK(scratch_bytes >= need, "linear: ", need, " bytes of scratch needed, ", scratch_bytes, " given");
    if (rows == 0 || out == 0) return;
    constexpr int kThreads = 256;
    if (in == 0) {  // an empty sum: y = bias (or 0); cuBLASLt is not asked about k = 0
        linear_bias_kernel<><<<linear_blocks(rows * out, kThreads), kThreads, 0, stream>>>(y, rows, out, bias, true);
        HYVIDEO_CUDA_CHECK(cudaGetLastError());
        return;
    }
    // One row needs no stride; more must not overlap, which cuBLASLt requires (ld >= the row length).
    if (rows == 1) ldx = in;
    HYVIDEO_CHECK(ldx >= in, "linear: row stride ", ldx, " of x is shorter than its ", in, " columns");

    // Operands as cuBLASLt will read them.
    const void* a = w;              // the weight
    const void* b = x;              // the activations
    std::int64_t ldb = ldx;
    cudaDataType_t ab_type = CUDA_R_32F;
    std::size_t ab_size = 4;
    if (w_dtype == DType::bf16) {
        auto* xb = static_cast<std::uint16_t*>(scratch);
        linear_round_x_bf16_kernel<><<<linear_blocks(rows * in, kThreads), kThreads, 0, stream>>>(x, rows, in, ldx, xb);
        HYVIDEO_CUDA_CHECK(cudaGetLastError());
        b = xb;
        ldb = in;
        ab_type = CUDA_R_16BF;
        ab_size = 2;
    } else if (w_dtype == DType::f16) {
        auto* wf = static_cast<float*>(scratch);
        linear_widen_f16_kernel<><<<linear_blocks(out * in, kThreads), kThreads, 0, stream>>>(
            static_cast<const std::uint16_t*>(w), out * in, wf);
        HYVIDEO_CUDA_CHECK(cudaGetLastError());
        a = wf;
    }

    // cuBLASLt is column-major. A dense row-major [r, c] matrix with row stride ld is, read column-major,
    // its transpose [c, r] with leading dimension ld. So:
    //   x [rows, in] (row stride ldb)  is column-major Xᵀ [in, rows], ld ldb   -> B, transb = N
    //   W [out, in]  (row stride in)   is column-major Wᵀ [in, out], ld in     -> A, transa = T: op(A) = W
    //   y [rows, out] (row stride out) is column-major Yᵀ [out, rows], ld out  -> C and D
    // and Yᵀ = W·Xᵀ is D = op(A)·op(B) with m = out, n = rows, k = in. (A's layout describes A as stored,
    // before the transpose: in × out.) The bias epilogue adds a vector of D's row count m = out,
    // broadcast over D's columns (the rows of y): bias[o] added to every y[r, o], in f32 (the bias type
    // defaults to D's, CUDA_R_32F).
    cublasLtMatmulDesc_t desc_raw = nullptr;
    HYVIDEO_CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc_raw, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const LtMatmulDesc desc(desc_raw);
    const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
    HYVIDEO_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(desc.get(), CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof trans_a));
    HYVIDEO_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(desc.get(), CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof trans_b));
    // cuBLASLt's preferences declare no alignment for the bias, and its kernels may read it with vector
    // loads, so a bias that is a view at an unaligned offset is added by a separate pass instead (one
    // more f32 rounding, well inside the contract's tolerance).
    const bool epilogue_bias = bias != nullptr && reinterpret_cast<std::uintptr_t>(bias) % 16 == 0;
    if (epilogue_bias) {
        const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
        HYVIDEO_CUBLAS_CHECK(
            cublasLtMatmulDescSetAttribute(desc.get(), CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue));
        HYVIDEO_CUBLAS_CHECK(
            cublasLtMatmulDescSetAttribute(desc.get(), CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    }

    const LtLayout a_layout = lt_layout(ab_type, in, out, in);
    const LtLayout b_layout = lt_layout(ab_type, in, rows, ldb);
    const LtLayout d_layout = lt_layout(CUDA_R_32F, out, rows, out);

    cublasLtMatmulPreference_t pref_raw = nullptr;
    HYVIDEO_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref_raw));
    const LtPreference pref(pref_raw);
    const std::uint64_t max_workspace = workspace != nullptr ? workspace_bytes : 0;
    HYVIDEO_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref.get(), CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                              &max_workspace, sizeof max_workspace));
    const std::uint32_t align_a = lt_alignment(a, in * static_cast<std::int64_t>(ab_size));
    const std::uint32_t align_b = lt_alignment(b, ldb * static_cast<std::int64_t>(ab_size));
    const std::uint32_t align_d = lt_alignment(y, out * 4);
    HYVIDEO_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                              &align_a, sizeof align_a));
    HYVIDEO_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                              &align_b, sizeof align_b));
    HYVIDEO_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                                              &align_d, sizeof align_d));
    HYVIDEO_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                                              &align_d, sizeof align_d));

    cublasLtMatmulHeuristicResult_t heuristic{};
    int found = 0;
    HYVIDEO_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(lt, desc.get(), a_layout.get(), b_layout.get(), d_layout.get(),
                                                        d_layout.get(), pref.get(), 1, &heuristic, &found));
    HYVIDEO_CHECK(found > 0, "linear: cuBLASLt has no algorithm for [", rows, ", ", in, "]·[", out, ", ", in,
                  "]ᵀ with ", dtype_name(w_dtype), " weights");

    // beta = 0: C is not read, but cuBLASLt wants a pointer in C's layout; D's own buffer serves.
    const float alpha = 1.0f, beta = 0.0f;
    HYVIDEO_CUBLAS_CHECK(cublasLtMatmul(lt, desc.get(), &alpha, a, a_layout.get(), b, b_layout.get(), &beta, y,
                                        d_layout.get(), y, d_layout.get(), &heuristic.algo,
                                        max_workspace ? workspace : nullptr, max_workspace, stream));
    if (bias != nullptr && !epilogue_bias) {
        linear_bias_kernel<><<<linear_blocks(rows * out, kThreads), kThreads, 0, stream>>>(y, rows, out, bias, false);
        HYVIDEO_CUDA_CHECK(cudaGetLastError());
    }
}

}  // namespace hyvideo::cuda_detail
