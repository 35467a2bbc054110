#pragma once
// flash_attention_f32: softmax(q·kᵀ·scale over the keys an AttentionMask allows)·v without an S×S
// matrix, for backend.hpp's attention() contract, in f32 on CUDA cores.
//
// FlashAttention-2's loop: a block owns kAttnRows queries of one (sample, head), walks the key/value
// sequence in tiles of kAttnKeys staged in shared memory, and keeps per query a running maximum m, a
// running sum l of e^(s − m) and the unnormalised output; each tile rescales them by e^(m_old − m_new),
// and the output is divided by l once at the end. Tensor cores are later work: every product here is
// an f32 FMA, which is what the conformance tolerance (2e-6 + 2e-5·|ref|) is written for.
//
// Work split inside a block: 4 warps × 8 query rows. For a key tile, lane j of a warp scores key j
// against the warp's 8 rows (q rows read from shared memory as broadcasts, the key row once per
// element), the softmax statistics are reduced across the warp with shuffles, and for P·V lane l
// accumulates output elements l, l + 32, l + 64, l + 96 of each row.
//
// The mask reaches the kernel as DeviceMask, a plain value with device pointers; its allows() is
// AttentionMask::allows rule for rule, and key_bounds() lets a block skip key tiles that none of its
// queries may see (the other side of a segment boundary, the future under causal masks). Every
// (query, key) pair inside the bounds is still tested with allows(), so the bounds only need to be a
// superset of the allowed keys.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "hyvideo/backend/attention_mask.hpp"
#include "hyvideo/backend/cuda/check.hpp"
#include "hyvideo/core/error.hpp"
#include "hyvideo/core/host_device.hpp"

namespace hyvideo::cuda_detail {

// ---- the mask on the device ----------------------------------------------------------------------------

// AttentionMask's rule as a value a kernel can take by copy. The arrays live on the device and are
// built by mask_arrays() below; `seq` is the row length of query_valid and key_filter ([B, S]).
struct DeviceMask {
    AttentionMask::Kind kind = AttentionMask::Kind::full;
    std::int64_t block = 1;                    // block_causal
    std::int64_t seq = 0;
    const std::int64_t* valid_len = nullptr;   // [B]: segments, prefix refiner
    const std::uint8_t* query_valid = nullptr;  // [B, S]: non-prefix refiner, the queries that are valid tokens
    const std::uint8_t* key_filter = nullptr;   // [B, S]: non-prefix refiner (its key filter), causal with a key mask

    // AttentionMask::allows(b, i, j), for a mask that passed check(batch, seq).
    HYVIDEO_HD bool allows(std::int64_t b, std::int64_t i, std::int64_t j) const {
        switch (kind) {
            case AttentionMask::Kind::full: return true;
            case AttentionMask::Kind::segments: {
                const std::int64_t n = valid_len[b];
                return (i < n) == (j < n);
            }
            case AttentionMask::Kind::refiner: {
                if (j == 0) return true;
                // The filter is the validity of each token with key 0 forced on; j != 0 here, so it is
                // exactly "key j is valid". Query validity cannot be read from it (entry 0 is forced),
                // hence its own array.
                if (key_filter != nullptr) return query_valid[b * seq + i] != 0 && key_filter[b * seq + j] != 0;
                const std::int64_t n = valid_len[b];
                return i < n && j < n;
            }
            case AttentionMask::Kind::block_causal: return j < (i / block + 1) * block;
            case AttentionMask::Kind::causal: return j <= i && (key_filter == nullptr || key_filter[b * seq + j] != 0);
        }
        return false;
    }

    // Keys [k0, k1) holding every key that some query of [q0, q1) (q0 < q1 <= s) of sample b may attend,
    // s being the sequence length.
    HYVIDEO_HD void key_bounds(std::int64_t b, std::int64_t q0, std::int64_t q1, std::int64_t s, std::int64_t& k0,
                               std::int64_t& k1) const {
        k0 = 0;
        k1 = s;
        switch (kind) {
            case AttentionMask::Kind::full: return;
            case AttentionMask::Kind::segments: {
                const std::int64_t n = valid_len[b];
                if (q1 <= n) k1 = n;        // all queries in the valid segment
                else if (q0 >= n) k0 = n;   // all in the padded one
                return;
            }
            case AttentionMask::Kind::refiner:
                if (key_filter != nullptr) return;
                // Valid queries see [0, n), padded ones key 0, which [0, n) holds whenever a valid query exists.
                k1 = q0 >= valid_len[b] ? 1 : valid_len[b];
                return;
            case AttentionMask::Kind::block_causal: {
                const std::int64_t end = ((q1 - 1) / block + 1) * block;
                k1 = end < s ? end : s;
                return;
            }
            case AttentionMask::Kind::causal: k1 = q1; return;
        }
    }
};

// The host arrays a DeviceMask points at, to be uploaded by the caller; an empty vector needs no copy
// and its pointer stays null.
struct MaskArrays {
    std::vector<std::int64_t> valid_len;    // [B]
    std::vector<std::uint8_t> query_valid;  // [B, S]
    std::vector<std::uint8_t> key_filter;   // [B, S]
};

// What to upload for `mask` over `batch` samples of `seq` tokens; throws (AttentionMask::check) when the
// mask does not describe that attention.
inline MaskArrays mask_arrays(const AttentionMask& mask, std::int64_t batch, std::int64_t seq) {
    mask.check(batch, seq);
    MaskArrays a;
    using Kind = AttentionMask::Kind;
    if ((mask.kind() == Kind::segments || mask.kind() == Kind::refiner) && !mask.has_key_filter())
        a.valid_len = mask.valid_len();
    if (mask.has_key_filter()) {
        const auto n = static_cast<std::size_t>(batch * seq);
        a.key_filter.resize(n);
        for (std::int64_t b = 0; b < batch; ++b)
            for (std::int64_t j = 0; j < seq; ++j) a.key_filter[static_cast<std::size_t>(b * seq + j)] = mask.key_filter(b)[j];
        if (mask.kind() == Kind::refiner) {
            // AttentionMask keeps token validity private; its runs say it: the runs of valid queries are
            // the filtered ones, padded queries get key 0 alone.
            a.query_valid.assign(n, 0);
            for (std::int64_t b = 0; b < batch; ++b)
                for (const QueryRun& r : mask.runs(b, seq))
                    if (r.filtered)
                        for (std::int64_t i = r.begin; i < r.end; ++i) a.query_valid[static_cast<std::size_t>(b * seq + i)] = 1;
        }
    }
    return a;
}

// The DeviceMask of `mask` over `seq` tokens, given device copies of mask_arrays(mask, batch, seq):
// pass nullptr for each array that came back empty.
inline DeviceMask device_mask(const AttentionMask& mask, std::int64_t seq, const std::int64_t* valid_len,
                              const std::uint8_t* query_valid, const std::uint8_t* key_filter) {
    using Kind = AttentionMask::Kind;
    DeviceMask d;
    d.kind = mask.kind();
    d.block = mask.kind() == Kind::block_causal ? mask.block() : 1;
    d.seq = seq;
    const bool lengths = (mask.kind() == Kind::segments || mask.kind() == Kind::refiner) && !mask.has_key_filter();
    const bool validity = mask.kind() == Kind::refiner && mask.has_key_filter();
    HYVIDEO_CHECK((valid_len != nullptr) == lengths && (query_valid != nullptr) == validity &&
                      (key_filter != nullptr) == mask.has_key_filter(),
                  "attention: the device arrays of the ", mask.kind_name(), " mask do not match mask_arrays()");
    d.valid_len = valid_len;
    d.query_valid = query_valid;
    d.key_filter = key_filter;
    return d;
}

// ---- the kernel ----------------------------------------------------------------------------------------

inline constexpr int kAttnWarps = 4;
inline constexpr int kAttnRowsPerWarp = 8;
inline constexpr int kAttnRows = kAttnWarps * kAttnRowsPerWarp;  // queries per block
inline constexpr int kAttnKeys = 32;                              // keys per tile: one per lane
inline constexpr int kAttnThreads = kAttnWarps * 32;
inline constexpr std::int64_t kAttnMaxHeadDim = 128;

// One of q, k, v: element (b, s, h, d) at data[b·stride_b + s·stride_s + h·stride_h + d].
struct AttentionOperand {
    const float* data = nullptr;
    std::int64_t stride_b = 0, stride_s = 0, stride_h = 0;
};

struct AttentionArgs {
    AttentionOperand q, k, v;
    float* out = nullptr;  // [B, S, H, D] dense
    std::int64_t seq = 0, heads = 0, kv_heads = 0, head_dim = 0;
    float scale = 1.0f;
    DeviceMask mask;
    // bf16 operands: q, k, v and the probabilities rounded to bf16 before the products (f32 accumulation
    // and softmax; the row sums add the unrounded probabilities), as the CPU kernel's bf16 mode.
    bool bf16_operands = false;
};

// x rounded to the nearest bf16 (ties to even), as a float.
__device__ inline float round_to_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

// Bytes of dynamic shared memory per block: the query tile, the key tile (rows padded to an odd
// length, so the 32 lanes reading one element of 32 different keys hit 32 different banks), the value
// tile and each warp's probabilities.
inline std::size_t attention_shared_bytes(std::int64_t head_dim) {
    const std::int64_t k_row = head_dim | 1;
    const std::int64_t floats = kAttnRows * head_dim + kAttnKeys * k_row + kAttnKeys * head_dim +
                                kAttnWarps * kAttnRowsPerWarp * kAttnKeys;
    return static_cast<std::size_t>(floats) * sizeof(float);
}

__device__ inline float attention_warp_max(float v) {
    // A butterfly: every lane ends with the same value (max and + are commutative bit for bit), so
    // decisions taken on it below are uniform across the warp.
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xFFFFFFFFu, v, o));
    return v;
}
__device__ inline float attention_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
    return v;
}

// kChunks = ⌈D/32⌉: the output elements each lane keeps per query row, in registers.
// Grid: x = query tiles, y = heads, z = samples.
template <int kChunks>
__global__ void __launch_bounds__(kAttnThreads) flash_attention_kernel(const AttentionArgs a) {
    extern __shared__ float smem[];
    const int D = static_cast<int>(a.head_dim);
    const int k_row = D | 1;
    float* q_s = smem;                         // [kAttnRows][D]
    float* k_s = q_s + kAttnRows * D;          // [kAttnKeys][k_row]
    float* v_s = k_s + kAttnKeys * k_row;      // [kAttnKeys][D]
    float* p_s = v_s + kAttnKeys * D;          // [kAttnWarps][kAttnRowsPerWarp][kAttnKeys]

    const std::int64_t S = a.seq;
    const std::int64_t b = blockIdx.z, h = blockIdx.y;
    const std::int64_t hk = h / (a.heads / a.kv_heads);
    const std::int64_t q0 = std::int64_t{blockIdx.x} * kAttnRows;
    const std::int64_t q1 = q0 + kAttnRows < S ? q0 + kAttnRows : S;
    const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32;

    // Stage the query tile; rows past the sequence are zeros that are never written out.
    const float* qb = a.q.data + b * a.q.stride_b + h * a.q.stride_h;
    for (int e = tid; e < kAttnRows * D; e += kAttnThreads) {
        const int r = e / D, d = e - r * D;
        const std::int64_t i = q0 + r;
        const float x = i < S ? qb[i * a.q.stride_s + d] : 0.0f;
        q_s[e] = a.bf16_operands ? round_to_bf16(x) : x;
    }

    const float neg_inf = -INFINITY;
    float m[kAttnRowsPerWarp], l[kAttnRowsPerWarp], acc[kAttnRowsPerWarp][kChunks];
#pragma unroll
    for (int rr = 0; rr < kAttnRowsPerWarp; ++rr) {
        m[rr] = neg_inf;
        l[rr] = 0.0f;
#pragma unroll
        for (int c = 0; c < kChunks; ++c) acc[rr][c] = 0.0f;
    }

    std::int64_t k0 = 0, k1 = 0;
    a.mask.key_bounds(b, q0, q1, S, k0, k1);
    const float* kb = a.k.data + b * a.k.stride_b + hk * a.k.stride_h;
    const float* vb = a.v.data + b * a.v.stride_b + hk * a.v.stride_h;
    const float* q_w = q_s + warp * kAttnRowsPerWarp * D;
    float* p_w = p_s + warp * kAttnRowsPerWarp * kAttnKeys;
    const std::int64_t row0 = q0 + warp * kAttnRowsPerWarp;  // this warp's first query

    for (std::int64_t kt = k0; kt < k1; kt += kAttnKeys) {
        const int n_keys = static_cast<int>(k1 - kt < kAttnKeys ? k1 - kt : kAttnKeys);
        // Every warp is done with the previous tile (and, the first time, the query tile is staged).
        __syncthreads();
        for (int e = tid; e < kAttnKeys * D; e += kAttnThreads) {
            const int jj = e / D, d = e - jj * D;
            const bool in = jj < n_keys;
            const float kx = in ? kb[(kt + jj) * a.k.stride_s + d] : 0.0f;
            const float vx = in ? vb[(kt + jj) * a.v.stride_s + d] : 0.0f;
            k_s[jj * k_row + d] = a.bf16_operands ? round_to_bf16(kx) : kx;
            v_s[e] = a.bf16_operands ? round_to_bf16(vx) : vx;
        }
        __syncthreads();

        // Scores of key kt + lane against the warp's rows.
        float s[kAttnRowsPerWarp];
#pragma unroll
        for (int rr = 0; rr < kAttnRowsPerWarp; ++rr) s[rr] = 0.0f;
        const float* k_lane = k_s + lane * k_row;
        for (int d = 0; d < D; ++d) {
            const float kd = k_lane[d];
#pragma unroll
            for (int rr = 0; rr < kAttnRowsPerWarp; ++rr) s[rr] = fmaf(q_w[rr * D + d], kd, s[rr]);
        }

        // Online softmax update, row by row; all values below are the same in every lane except p.
        const std::int64_t j = kt + lane;
#pragma unroll
        for (int rr = 0; rr < kAttnRowsPerWarp; ++rr) {
            const std::int64_t i = row0 + rr;
            const bool ok = i < S && lane < n_keys && a.mask.allows(b, i, j);
            const float sc = ok ? s[rr] * a.scale : neg_inf;
            const float m_new = fmaxf(m[rr], attention_warp_max(sc));
            float p = 0.0f, corr = 1.0f;
            // m_new = −inf: no key allowed so far, nothing to add (and e^(−inf − −inf) would be NaN).
            if (m_new != neg_inf) {
                p = ok ? expf(sc - m_new) : 0.0f;
                corr = expf(m[rr] - m_new);  // 0 when m was −inf: the zeros accumulated so far stay zero
            }
            l[rr] = l[rr] * corr + attention_warp_sum(p);
            m[rr] = m_new;
#pragma unroll
            for (int c = 0; c < kChunks; ++c) acc[rr][c] *= corr;
            p_w[rr * kAttnKeys + lane] = a.bf16_operands ? round_to_bf16(p) : p;
        }
        __syncwarp();

        // acc += P·V over the tile's keys.
        for (int jj = 0; jj < n_keys; ++jj) {
            float vv[kChunks];
#pragma unroll
            for (int c = 0; c < kChunks; ++c) {
                const int d = lane + 32 * c;
                vv[c] = d < D ? v_s[jj * D + d] : 0.0f;
            }
#pragma unroll
            for (int rr = 0; rr < kAttnRowsPerWarp; ++rr) {
                const float p = p_w[rr * kAttnKeys + jj];
#pragma unroll
                for (int c = 0; c < kChunks; ++c) acc[rr][c] = fmaf(p, vv[c], acc[rr][c]);
            }
        }
        // p_w is rewritten only after the next tile's __syncthreads, which orders these reads first.
    }

#pragma unroll
    for (int rr = 0; rr < kAttnRowsPerWarp; ++rr) {
        const std::int64_t i = row0 + rr;
        if (i >= S) continue;
        float* o = a.out + ((b * S + i) * a.heads + h) * D;
        // l > 0 for every query the mask rules allow to exist; the guard keeps a row with no key at 0, not NaN.
        const float inv_ok = l[rr] > 0.0f ? 1.0f : 0.0f;
        const float den = l[rr] > 0.0f ? l[rr] : 1.0f;
#pragma unroll
        for (int c = 0; c < kChunks; ++c) {
            const int d = lane + 32 * c;
            if (d < D) o[d] = inv_ok * (acc[rr][c] / den);
        }
    }
}

template <int kChunks>
inline void launch_flash_attention(const AttentionArgs& a, std::int64_t batch, cudaStream_t stream) {
    const std::size_t shared = attention_shared_bytes(a.head_dim);
    // Above 48 KiB a kernel must opt in to dynamic shared memory (D = 128 needs about 52 KiB; every
    // GPU from sm_70 on offers it).
    if (shared > 48 * 1024)
        HYVIDEO_CUDA_CHECK(cudaFuncSetAttribute(flash_attention_kernel<kChunks>,
                                                cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared)));
    const dim3 grid(static_cast<unsigned>((a.seq + kAttnRows - 1) / kAttnRows), static_cast<unsigned>(a.heads),
                    static_cast<unsigned>(batch));
    flash_attention_kernel<kChunks><<<grid, kAttnThreads, shared, stream>>>(a);
    HYVIDEO_CUDA_CHECK(cudaGetLastError());
}

// out [B, S, H, D] (dense f32) = attention of q [B, S, H, D] over k, v [B, S, H_kv, D], all f32 on the
// device with unit stride along D and any other strides; H a multiple of H_kv (query head h reads
// key/value head h / (H / H_kv)); 1 <= D <= 128. `mask` from device_mask(), its arrays on the device
// until the stream passes this call. Enqueued on `stream`, no synchronisation, no scratch.
inline void flash_attention_f32(cudaStream_t stream, AttentionOperand q, AttentionOperand k, AttentionOperand v,
                                float* out, std::int64_t batch, std::int64_t seq, std::int64_t heads,
                                std::int64_t kv_heads, std::int64_t head_dim, float scale, const DeviceMask& mask,
                                bool bf16_operands = false) {
    HYVIDEO_CHECK(batch >= 0 && seq >= 0 && heads >= 0 && kv_heads >= 0 && head_dim >= 0,
                  "attention: negative size (B ", batch, ", S ", seq, ", H ", heads, ", H_kv ", kv_heads, ", D ",
                  head_dim, ")");
    if (batch == 0 || seq == 0 || heads == 0 || head_dim == 0) return;
    HYVIDEO_CHECK(kv_heads > 0 && heads % kv_heads == 0, "attention: ", heads, " query heads for ", kv_heads,
                  " key/value heads (must be a multiple)");
    HYVIDEO_CHECK(head_dim <= kAttnMaxHeadDim, "attention: head dim ", head_dim, " (the CUDA kernel takes up to ",
                  kAttnMaxHeadDim, ")");
    // Grid limits: y and z are at most 65535.
    HYVIDEO_CHECK(heads <= 65535 && batch <= 65535, "attention: ", batch, " samples × ", heads,
                  " heads exceed the launch grid");
    HYVIDEO_CHECK((seq + kAttnRows - 1) / kAttnRows <= 0x7FFFFFFF, "attention: ", seq, " tokens exceed the launch grid");
    AttentionArgs a;
    a.q = q;
    a.k = k;
    a.v = v;
    a.out = out;
    a.seq = seq;
    a.heads = heads;
    a.kv_heads = kv_heads;
    a.head_dim = head_dim;
    a.scale = scale;
    a.mask = mask;
    a.bf16_operands = bf16_operands;
    if (head_dim <= 32) launch_flash_attention<1>(a, batch, stream);
    else if (head_dim <= 64) launch_flash_attention<2>(a, batch, stream);
    else if (head_dim <= 96) launch_flash_attention<3>(a, batch, stream);
    else launch_flash_attention<4>(a, batch, stream);
}

}  // namespace hyvideo::cuda_detail
