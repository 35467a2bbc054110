#pragma once
// Scaled dot-product attention on the CPU: out = softmax(q·kᵀ·scale, masked)·v for q, k, v [B, S, H, D].
//
// attention() is flash attention: it walks tiles of 64 queries against tiles of 128 keys, keeping
// for every query a running maximum and a running sum of the exponentials (online softmax), so a
// worker holds O(D·64) floats whatever S is, and no S×S matrix exists at any size (a 720p video is
// 118,800 tokens). Masks are key ranges per run of queries (attention_mask.hpp), so key tiles a
// mask hides from a whole query tile are never computed.
//
// Layout. Inside a tile the queries are the vector lanes: the query tile is stored transposed
// (Qᵀ, D × 64) and the scores as Sᵀ (keys × 64). Then
//   Sᵀ[j][i] = Σ_d K[j][d]·Qᵀ[d][i]     and     Oᵀ[d][i] += Σ_j V[j][d]·Pᵀ[j][i]
// are both "broadcast one scalar of K or V, multiply a row of 64 lanes" products, and the softmax
// bookkeeping is per lane: the maximum and the sum over keys are elementwise operations down the
// rows of Sᵀ, never horizontal reductions. Scores are kept in base 2 (q is pre-scaled by
// scale·log2 e) so each probability is one exp2. q, k, v may be strided views (a slice of a fused
// qkv projection): queries are gathered into Qᵀ, and each key tile is copied into a small
// contiguous buffer that then serves four query tiles.
//
// The products are register-blocked with GCC vector types, which the compiler maps to the widest
// registers of the target. The same source is compiled three times, for the baseline x86-64 (SSE2,
// also the code on other architectures), AVX2+FMA and AVX-512, and the widest one the CPU supports
// is picked at run time: AVX-512 runs 4.5× faster than the baseline on the development machine
// (bench/bench_attention.cpp). A tile of one kernel always produces the same bits, so results do
// not depend on the thread count; the kernels differ from each other by rounding (FMA contraction).
//
// Why not the library GEMM for the tile products: through oneDNN, the two tile products alone,
// without any softmax, take more CPU time than this whole kernel (the same benchmark times them;
// small products pay oneDNN's per-call overhead and packing), and the softmax would still need its
// own pass over the scores.
//
// attention_naive() builds the explicit masked S×S score matrix per (batch, head), in double. It
// is the reference for tests and fine for small problems only: its memory is S² doubles per thread.
#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>
#include <utility>
#include <vector>

#include "hyvideo/backend/attention_mask.hpp"
#include "hyvideo/backend/cpu/attention_bf16.hpp"
#include "hyvideo/backend/cpu/elementwise.hpp"
#include "hyvideo/core/parallel.hpp"
#include "hyvideo/core/tensor.hpp"

#if defined(__x86_64__) || defined(__i386__)
#define HYVIDEO_ATTENTION_X86 1
#else
#define HYVIDEO_ATTENTION_X86 0
#endif

namespace hyvideo::cpu_detail {

// ---- kernel selection ----------------------------------------------------------------------------

enum class AttentionKernel { portable, avx2, avx512 };

inline constexpr std::string_view attention_kernel_name(AttentionKernel k) {
    switch (k) {
        case AttentionKernel::portable: return "portable";
        case AttentionKernel::avx2: return "AVX2";
        case AttentionKernel::avx512: return "AVX-512";
    }
    return "?";
}

inline bool attention_kernel_supported(AttentionKernel k) {
    switch (k) {
        case AttentionKernel::portable: return true;
#if HYVIDEO_ATTENTION_X86
        case AttentionKernel::avx2:
            __builtin_cpu_init();
            return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        case AttentionKernel::avx512:
            __builtin_cpu_init();
            return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                   __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                   __builtin_cpu_supports("fma");
#else
        case AttentionKernel::avx2:
        case AttentionKernel::avx512: return false;
#endif
    }
    return false;
}

inline AttentionKernel best_attention_kernel() {
    for (auto k : {AttentionKernel::avx512, AttentionKernel::avx2})
        if (attention_kernel_supported(k)) return k;
    return AttentionKernel::portable;
}

namespace attention_internal {
inline std::atomic<AttentionKernel>& kernel_setting() {
    static std::atomic<AttentionKernel> kernel{best_attention_kernel()};
    return kernel;
}
}  // namespace attention_internal

// The kernel attention() uses, process-wide like the GEMM engine; the default is the best supported.
inline AttentionKernel attention_kernel() { return attention_internal::kernel_setting().load(); }

inline void set_attention_kernel(AttentionKernel k) {
    HYVIDEO_CHECK(attention_kernel_supported(k), "set_attention_kernel: this CPU does not support the ",
                  attention_kernel_name(k), " kernel");
    attention_internal::kernel_setting().store(k);
}

namespace attention_internal {

// ---- tiles and workspace -------------------------------------------------------------------------

// Queries per tile: the lanes of the tile products (four AVX-512 vectors).
inline constexpr std::int64_t kQueryTile = 64;
// Query tiles per job. Each key tile is copied once per job into a contiguous buffer and then
// serves all of the job's query tiles: rows of a head inside [B, S, H, D] are H·D floats apart, a
// multiple of 4 KiB for the DiT, so read in place they would all fall into the same few cache sets.
inline constexpr std::int64_t kTilesPerJob = 4;
// Keys per tile: Sᵀ (kKeyTile × 64 floats, 32 KiB) stays in L1 while Oᵀ += V·Pᵀ streams over it.
inline constexpr std::int64_t kKeyTile = 128;

struct Problem {
    const float* q;
    const float* k;
    const float* v;
    std::int64_t q_stride[3], k_stride[3], v_stride[3];  // batch, token, head (the head dim is unit-stride)
    float* out;                                          // [B, S, H, D], contiguous
    std::int64_t seq, heads, head_dim;
    std::int64_t kv_group;  // query heads per key/value head (grouped-query attention; 1 otherwise)
    float log2_scale;  // scale·log2(e): scores are computed in base 2
    // bf16 operands in an f32 kernel (a CPU without AVX512_BF16): q, k, v and the probabilities are
    // rounded to bf16 values as they are staged, so the result is the bf16 kernel's up to f32 rounding.
    bool round_bf16 = false;
};

// Up to kTilesPerJob·64 consecutive queries of one run of one (sample, head).
struct Job {
    std::int64_t batch, head;
    QueryRun queries;
    const std::uint8_t* key_filter;  // indexed by key; set when queries.filtered
};

// The state of one query tile while the key tiles go by.
struct QueryTile {
    float* q_t;      // [D][64]: the queries, transposed and multiplied by log2_scale
    float* o_t;      // [D][64]: the unnormalised output, transposed
    float* row_max;  // [64]: running maximum of each query's scores (base 2)
    float* row_sum;  // [64]: running sum of 2^(score - row_max)
};

// A worker's scratch memory, reused by all its jobs: O(D·64) floats, independent of S (about
// 420 KiB for D = 128, so it lives in L2).
class Workspace {
public:
    explicit Workspace(std::int64_t head_dim)
        : memory_(Tensor::empty({kTilesPerJob * (2 * head_dim + 2) * kQueryTile + kKeyTile * kQueryTile +
                                 kQueryTile + 2 * kKeyTile * head_dim})) {
        float* next = memory_.data<float>();
        auto take = [&next](std::int64_t n) { return std::exchange(next, next + n); };
        for (QueryTile& t : tiles) {
            t.q_t = take(head_dim * kQueryTile);
            t.o_t = take(head_dim * kQueryTile);
            t.row_max = take(kQueryTile);
            t.row_sum = take(kQueryTile);
        }
        s_t = take(kKeyTile * kQueryTile);
        rescale = take(kQueryTile);
        k_tile = take(kKeyTile * head_dim);
        v_tile = take(kKeyTile * head_dim);
    }

    QueryTile tiles[kTilesPerJob];
    float* s_t;      // [kKeyTile][64]: scores of a key tile, then their exponentials
    float* rescale;  // [64]: 2^(old max - new max), applied to row_sum and o_t
    float* k_tile;   // [kKeyTile][D]: the key tile, contiguous
    float* v_tile;   // [kKeyTile][D]: the value tile, contiguous

private:
    Tensor memory_;  // 64-byte aligned; every piece is a multiple of 64 floats long, so stays aligned
};

// ---- instruction sets ------------------------------------------------------------------------------

// A register block of the tile products: Rows × Vectors accumulators of Lanes floats, as many as the
// register file holds with room for the operands (16 vector registers for SSE2 and AVX2, 32 for
// AVX-512).
template <class VecType, int Lanes, int Rows, int Vectors>
struct Block {
    using Vec = VecType;
    static constexpr int lanes = Lanes, rows = Rows, vectors = Vectors;
};

struct Portable {
    typedef float Vec __attribute__((vector_size(16)));
    using scores = Block<Vec, 4, 6, 2>;  // Sᵀ = K·Qᵀ
    using output = Block<Vec, 4, 6, 2>;  // Oᵀ += Vᵀ·Pᵀ
};
struct Avx2 {
    typedef float Vec __attribute__((vector_size(32)));
    using scores = Block<Vec, 8, 6, 2>;
    using output = Block<Vec, 8, 6, 2>;
};
struct Avx512 {
    typedef float Vec __attribute__((vector_size(64)));
    using scores = Block<Vec, 16, 6, 4>;
    using output = Block<Vec, 16, 6, 4>;
};

#ifdef __NVCC__
// nvcc's front end does not know `#pragma GCC unroll` but hands it on to the host compiler.
#pragma nv_diagnostic push
#pragma nv_diag_suppress 1675
#endif

// Everything below is always_inline so that it is compiled for the instruction set of the entry
// point it is inlined into (run_job_avx512 and friends); an out-of-line copy would be baseline code.
// The unroll pragmas are what keeps the accumulator arrays in registers.
#define HYVIDEO_ATTENTION_INLINE [[gnu::always_inline]] inline

// C[r][0, w) (+)= Σ_{k < depth} A(r, k)·B[k][0, w) for r < Rows, where w = vectors·lanes, A(r, k) =
// a[r·a_row + k·a_col] is a broadcast scalar, and B and C are rows of a 64-lane tile (aligned).
template <class Blk, int Rows, bool Accumulate>
HYVIDEO_ATTENTION_INLINE void tile_product(const float* a, std::int64_t a_row, std::int64_t a_col, const float* b,
                                           std::int64_t depth, float* c) {
    using Vec = typename Blk::Vec;
    constexpr int V = Blk::vectors, L = Blk::lanes;
    Vec acc[Rows][V];
#pragma GCC unroll 8
    for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 8
        for (int x = 0; x < V; ++x) {
            if constexpr (Accumulate) std::memcpy(&acc[r][x], c + r * kQueryTile + x * L, sizeof(Vec));
            else acc[r][x] = Vec{};
        }
    for (std::int64_t k = 0; k < depth; ++k) {
        Vec bk[V];
#pragma GCC unroll 8
        for (int x = 0; x < V; ++x) std::memcpy(&bk[x], b + k * kQueryTile + x * L, sizeof(Vec));
#pragma GCC unroll 8
        for (int r = 0; r < Rows; ++r) {
            const float ar = a[r * a_row + k * a_col];
#pragma GCC unroll 8
            for (int x = 0; x < V; ++x) acc[r][x] += ar * bk[x];
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 8
        for (int x = 0; x < V; ++x) std::memcpy(c + r * kQueryTile + x * L, &acc[r][x], sizeof(Vec));
}

// tile_product for a run-time row count below the register block (the last rows of a panel).
template <class Blk, bool Accumulate, int Rows = Blk::rows - 1>
HYVIDEO_ATTENTION_INLINE void tile_product_tail(int rows, const float* a, std::int64_t a_row, std::int64_t a_col,
                                                const float* b, std::int64_t depth, float* c) {
    if constexpr (Rows >= 1) {
        if (rows == Rows) tile_product<Blk, Rows, Accumulate>(a, a_row, a_col, b, depth, c);
        else tile_product_tail<Blk, Accumulate, Rows - 1>(rows, a, a_row, a_col, b, depth, c);
    }
}

// C (rows × 64) (+)= A (rows × depth, broadcast) · B (depth × 64).
template <class Blk, bool Accumulate>
HYVIDEO_ATTENTION_INLINE void panel_product(std::int64_t rows, const float* a, std::int64_t a_row, std::int64_t a_col,
                                            const float* b, std::int64_t depth, float* c) {
    constexpr std::int64_t width = Blk::vectors * Blk::lanes;
    static_assert(kQueryTile % width == 0);
    std::int64_t r0 = 0;
    for (; r0 + Blk::rows <= rows; r0 += Blk::rows)
        for (std::int64_t x = 0; x < kQueryTile; x += width)
            tile_product<Blk, Blk::rows, Accumulate>(a + r0 * a_row, a_row, a_col, b + x, depth,
                                                     c + r0 * kQueryTile + x);
    if (r0 < rows)
        for (std::int64_t x = 0; x < kQueryTile; x += width)
            tile_product_tail<Blk, Accumulate>(static_cast<int>(rows - r0), a + r0 * a_row, a_row, a_col, b + x,
                                               depth, c + r0 * kQueryTile + x);
}

// 2^x for x <= 0 (NaN stays NaN), written as plain arithmetic so that loops over it vectorise:
// x = n + f with n = round(x), 2^f from a degree-5 minimax polynomial on [-1/2, 1/2] (relative error
// 9e-8, and exactly 1 at f = 0), 2^n added to the exponent bits. Below -125 the result would leave
// the normal range; such a term is below 2^-125 times the row's largest (which is 1), so clamping
// it costs no accuracy.
HYVIDEO_ATTENTION_INLINE float exp2_nonpositive(float x) {
    x = x < -125.0f ? -125.0f : x;
    constexpr float round_shift = 0x1.8p23f;  // adding it rounds to an integer held in the low mantissa bits
    const float shifted = x + round_shift;
    const float f = x - (shifted - round_shift);
    float p = 0.0013264723893082616f;
    p = p * f + 0.00967151286954951f;
    p = p * f + 0.055507337542471925f;
    p = p * f + 0.24022242080363418f;
    p = p * f + 0.6931469775914952f;
    p = p * f + 1.0f;
    const std::uint32_t n = std::bit_cast<std::uint32_t>(shifted) - std::bit_cast<std::uint32_t>(round_shift);
    return std::bit_cast<float>(std::bit_cast<std::uint32_t>(p) + (n << 23));
}

// x rounded to the nearest bf16 value (ties to even; NaN stays NaN), as plain integer arithmetic so
// that loops over it vectorise.
HYVIDEO_ATTENTION_INLINE float round_bf16(float x) {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(x);
    const std::uint32_t r = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
    return (u & 0x7FFFFFFFu) > 0x7F800000u ? x : std::bit_cast<float>(r);
}

// Folds a key tile's scores s_t (keys × 64, base 2) into the running softmax state of a query
// tile, leaves the tile's probabilities 2^(s - new max) in s_t and the factor that rescales the
// earlier partial output in `rescale`. `allowed` (null: all keys) marks the keys a filtered run may
// attend; the others get probability 0. `first_lane(j)` is the first query lane that may attend key
// j of the tile: 0 without a causal mask, the diagonal's lane on a causal tile that straddles it; the
// lanes before it get probability 0. Every loop runs down the keys with the 64 queries as lanes, so
// each query's sum is accumulated in key order whatever the vector width.
template <class FirstLane>
HYVIDEO_ATTENTION_INLINE void softmax_step(float* s_t, std::int64_t keys, const std::uint8_t* allowed, QueryTile& t,
                                           float* rescale, FirstLane first_lane) {
    // The running state is copied into local arrays: through the workspace pointers the compiler
    // would have to assume that it aliases the scores, and would not vectorise.
    constexpr std::int64_t Q = kQueryTile;
    float new_max[Q], tile_sum[Q] = {};
    std::copy_n(t.row_max, Q, new_max);
    for (std::int64_t j = 0; j < keys; ++j) {
        if (allowed && !allowed[j]) continue;
        const float* s = s_t + j * Q;
        for (std::int64_t i = first_lane(j); i < Q; ++i) new_max[i] = s[i] > new_max[i] ? s[i] : new_max[i];
    }
    for (std::int64_t j = 0; j < keys; ++j) {
        float* s = s_t + j * Q;
        if (allowed && !allowed[j]) {
            std::fill_n(s, Q, 0.0f);
            continue;
        }
        const std::int64_t lane0 = first_lane(j);
        std::fill_n(s, lane0, 0.0f);
        for (std::int64_t i = lane0; i < Q; ++i) {
            const float p = exp2_nonpositive(s[i] - new_max[i]);
            s[i] = p;
            tile_sum[i] += p;
        }
    }
    for (std::int64_t i = 0; i < Q; ++i) {
        rescale[i] = exp2_nonpositive(t.row_max[i] - new_max[i]);
        t.row_max[i] = new_max[i];
        t.row_sum[i] = t.row_sum[i] * rescale[i] + tile_sum[i];
    }
}

// o_t (rows × 64) *= rescale, per lane.
HYVIDEO_ATTENTION_INLINE void rescale_rows(float* o_t, std::int64_t rows, const float* rescale) {
    float r[kQueryTile];
    std::copy_n(rescale, kQueryTile, r);
    for (std::int64_t d = 0; d < rows; ++d)
        for (std::int64_t i = 0; i < kQueryTile; ++i) o_t[d * kQueryTile + i] *= r[i];
}

// A job's rows of q, k and v: token i of its (sample, head) at q + i·q_row, and so on.
struct JobRows {
    const float *q, *k, *v;
    std::int64_t q_row, k_row, v_row;
    std::int64_t n_tiles;  // query tiles of the job
};
HYVIDEO_ATTENTION_INLINE JobRows job_rows(const Problem& p, const Job& job) {
    const std::int64_t kv_head = job.head / p.kv_group;
    return {p.q + job.batch * p.q_stride[0] + job.head * p.q_stride[2],
            p.k + job.batch * p.k_stride[0] + kv_head * p.k_stride[2],
            p.v + job.batch * p.v_stride[0] + kv_head * p.v_stride[2],
            p.q_stride[1],
            p.k_stride[1],
            p.v_stride[1],
            (job.queries.end - job.queries.begin + kQueryTile - 1) / kQueryTile};
}

// softmax_step for key tile j0 of the job against its query tile starting at q0: the causal
// diagonal's lanes masked on a tile that straddles it.
HYVIDEO_ATTENTION_INLINE void softmax_tile(const Job& job, std::int64_t j0, std::int64_t nk, std::int64_t q0,
                                           const std::uint8_t* allowed, QueryTile& tile, Workspace& w) {
    if (job.queries.causal && j0 + nk - 1 > q0)
        softmax_step(w.s_t, nk, allowed, tile, w.rescale,
                     [&](std::int64_t j) { return std::clamp<std::int64_t>(j0 + j - q0, 0, kQueryTile); });
    else
        softmax_step(w.s_t, nk, allowed, tile, w.rescale, [](std::int64_t) { return std::int64_t{0}; });
}

// The job's normalised outputs, o_t / row_sum, into out.
HYVIDEO_ATTENTION_INLINE void write_out(const Problem& p, const Job& job, const Workspace& w, std::int64_t n_tiles) {
    constexpr std::int64_t Q = kQueryTile;
    const std::int64_t D = p.head_dim;
    for (std::int64_t t = 0; t < n_tiles; ++t) {
        const QueryTile& tile = w.tiles[t];
        const std::int64_t q0 = job.queries.begin + t * Q, nq = std::min(Q, job.queries.end - q0);
        float* out = p.out + ((job.batch * p.seq + q0) * p.heads + job.head) * D;
        for (std::int64_t i = 0; i < nq; ++i) {
            float* row = out + i * p.heads * D;
            const float sum = tile.row_sum[i];
            for (std::int64_t d = 0; d < D; ++d) row[d] = tile.o_t[d * Q + i] / sum;
        }
    }
}

// One job: up to kTilesPerJob query tiles of one (sample, head) against all the key tiles of
// their range.
template <class Isa>
HYVIDEO_ATTENTION_INLINE void run_job(const Problem& p, const Job& job, Workspace& w) {
    constexpr std::int64_t Q = kQueryTile;
    const std::int64_t D = p.head_dim;
    const auto [q, k, v, q_row, k_row, v_row, n_tiles] = job_rows(p, job);
    const std::int64_t q_begin = job.queries.begin, q_end = job.queries.end;

    for (std::int64_t t = 0; t < n_tiles; ++t) {
        QueryTile& tile = w.tiles[t];
        const std::int64_t q0 = q_begin + t * Q, nq = std::min(Q, q_end - q0);
        // Lanes past the end of a short tile hold zero queries: they compute harmless finite
        // values and are never written out.
        if (nq < Q) std::fill_n(tile.q_t, D * Q, 0.0f);
        for (std::int64_t i = 0; i < nq; ++i) {
            const float* row = q + (q0 + i) * q_row;
            if (p.round_bf16)
                for (std::int64_t d = 0; d < D; ++d) tile.q_t[d * Q + i] = round_bf16(row[d]) * p.log2_scale;
            else
                for (std::int64_t d = 0; d < D; ++d) tile.q_t[d * Q + i] = row[d] * p.log2_scale;
        }
        std::fill_n(tile.o_t, D * Q, 0.0f);
        std::fill_n(tile.row_max, Q, -std::numeric_limits<float>::infinity());
        std::fill_n(tile.row_sum, Q, 0.0f);
    }

    for (std::int64_t j0 = job.queries.keys.begin; j0 < job.queries.keys.end; j0 += kKeyTile) {
        const std::int64_t nk = std::min(kKeyTile, job.queries.keys.end - j0);
        const std::uint8_t* allowed = job.queries.filtered ? job.key_filter + j0 : nullptr;
        if (allowed && std::none_of(allowed, allowed + nk, [](std::uint8_t a) { return a != 0; })) continue;
        for (std::int64_t j = 0; j < nk; ++j) {
            std::copy_n(k + (j0 + j) * k_row, D, w.k_tile + j * D);
            std::copy_n(v + (j0 + j) * v_row, D, w.v_tile + j * D);
        }
        if (p.round_bf16)
            for (std::int64_t e = 0; e < nk * D; ++e) {
                w.k_tile[e] = round_bf16(w.k_tile[e]);
                w.v_tile[e] = round_bf16(w.v_tile[e]);
            }
        for (std::int64_t t = 0; t < n_tiles; ++t) {
            QueryTile& tile = w.tiles[t];
            const std::int64_t q0 = q_begin + t * Q;
            // Causal: a key tile past the tile's last query is skipped, one before its first query
            // is attended whole, and one across the diagonal masks key j0 + j for lanes below j0 + j - q0.
            if (job.queries.causal && j0 > q0 + Q - 1) continue;
            // Sᵀ = K·Qᵀ: A(j, d) = K[j][d].
            panel_product<typename Isa::scores, false>(nk, w.k_tile, D, 1, tile.q_t, D, w.s_t);
            softmax_tile(job, j0, nk, q0, allowed, tile, w);
            rescale_rows(tile.o_t, D, w.rescale);
            if (p.round_bf16)
                for (std::int64_t e = 0; e < nk * Q; ++e) w.s_t[e] = round_bf16(w.s_t[e]);
            // Oᵀ += Vᵀ·Pᵀ: A(d, j) = V[j][d].
            panel_product<typename Isa::output, true>(D, w.v_tile, 1, D, w.s_t, nk, tile.o_t);
        }
    }
    write_out(p, job, w, n_tiles);
}

#undef HYVIDEO_ATTENTION_INLINE
#ifdef __NVCC__
#pragma nv_diagnostic pop
#endif

inline void run_job_portable(const Problem& p, const Job& job, Workspace& w) { run_job<Portable>(p, job, w); }
#if HYVIDEO_ATTENTION_X86
__attribute__((target("avx2,fma"))) inline void run_job_avx2(const Problem& p, const Job& job, Workspace& w) {
    run_job<Avx2>(p, job, w);
}
// prefer-vector-width=512: GCC would vectorise the softmax loops with 256-bit halves otherwise.
// Clang does not know the option (and would drop the whole attribute for it).
#ifdef __clang__
#define HYVIDEO_ATTENTION_AVX512 "avx512f,avx512vl,avx512bw,avx512dq,fma"
#else
#define HYVIDEO_ATTENTION_AVX512 "avx512f,avx512vl,avx512bw,avx512dq,fma,prefer-vector-width=512"
#endif
__attribute__((target(HYVIDEO_ATTENTION_AVX512))) inline void run_job_avx512(const Problem& p, const Job& job,
                                                                             Workspace& w) {
    run_job<Avx512>(p, job, w);
}
#undef HYVIDEO_ATTENTION_AVX512
#endif

#if HYVIDEO_ATTENTION_BF16_X86
// run_job with bf16 operands (attention_bf16.hpp): the same tiles, the same softmax on f32 scores; the
// two products on bf16 pairs. The workspace's buffers are reused: a tile's q_t holds its D/2 × 64 query
// pairs, k_tile the key rows in bf16, v_tile the value pairs, and the probability pairs overwrite the
// scores they come from (pair row p is written after score rows 2p and 2p + 1 are read), so the
// working set stays what the f32 kernel's is.
__attribute__((target(HYVIDEO_BF16_TARGET))) inline void run_job_bf16(const Problem& p, const Job& job,
                                                                      Workspace& w) {
    using namespace attention_bf16;
    constexpr std::int64_t Q = kQueryTile;
    static_assert(Q == attention_bf16::kLanes);
    const std::int64_t D = p.head_dim, pairs = D / 2;  // D is even on this path
    const auto [q, k, v, q_row, k_row, v_row, n_tiles] = job_rows(p, job);
    const std::int64_t q_begin = job.queries.begin, q_end = job.queries.end;
    auto* k_bf16 = reinterpret_cast<std::uint16_t*>(w.k_tile);
    auto* v_pairs = reinterpret_cast<std::uint32_t*>(w.v_tile);
    auto* p_pairs = reinterpret_cast<std::uint32_t*>(w.s_t);

    for (std::int64_t t = 0; t < n_tiles; ++t) {
        QueryTile& tile = w.tiles[t];
        auto* q_pairs = reinterpret_cast<std::uint32_t*>(tile.q_t);
        const std::int64_t q0 = q_begin + t * Q, nq = std::min(Q, q_end - q0);
        if (nq < Q) std::fill_n(q_pairs, pairs * Q, 0u);
        for (std::int64_t i = 0; i < nq; ++i) {
            // A row of D bf16 is D/2 pairs as it lies in memory (k_tile is free until the key tiles).
            round_row(q + (q0 + i) * q_row, k_bf16, D);
            const auto* row_pairs = reinterpret_cast<const std::uint32_t*>(k_bf16);
            for (std::int64_t d = 0; d < pairs; ++d) q_pairs[d * Q + i] = row_pairs[d];
        }
        std::fill_n(tile.o_t, D * Q, 0.0f);
        std::fill_n(tile.row_max, Q, -std::numeric_limits<float>::infinity());
        std::fill_n(tile.row_sum, Q, 0.0f);
    }

    for (std::int64_t j0 = job.queries.keys.begin; j0 < job.queries.keys.end; j0 += kKeyTile) {
        const std::int64_t nk = std::min(kKeyTile, job.queries.keys.end - j0), key_pairs = (nk + 1) / 2;
        const std::uint8_t* allowed = job.queries.filtered ? job.key_filter + j0 : nullptr;
        if (allowed && std::none_of(allowed, allowed + nk, [](std::uint8_t a) { return a != 0; })) continue;
        for (std::int64_t j = 0; j < nk; ++j) round_row(k + (j0 + j) * k_row, k_bf16 + j * D, D);
        for (std::int64_t jp = 0; jp < key_pairs; ++jp) {
            const std::int64_t j = j0 + 2 * jp;
            interleave_rows(v + j * v_row, 2 * jp + 1 < nk ? v + (j + 1) * v_row : nullptr, v_pairs + jp * D, D);
        }
        for (std::int64_t t = 0; t < n_tiles; ++t) {
            QueryTile& tile = w.tiles[t];
            const std::int64_t q0 = q_begin + t * Q;
            if (job.queries.causal && j0 > q0 + Q - 1) continue;
            // Sᵀ = K·Qᵀ·log2_scale: A(j, d-pair) = K[j][2d, 2d + 2).
            pair_product<false>(nk, reinterpret_cast<const std::uint32_t*>(k_bf16), pairs, 1,
                                reinterpret_cast<const std::uint32_t*>(tile.q_t), pairs, w.s_t, p.log2_scale);
            softmax_tile(job, j0, nk, q0, allowed, tile, w);
            rescale_rows(tile.o_t, D, w.rescale);
            for (std::int64_t jp = 0; jp < key_pairs; ++jp)
                interleave_rows(w.s_t + 2 * jp * Q, 2 * jp + 1 < nk ? w.s_t + (2 * jp + 1) * Q : nullptr,
                                p_pairs + jp * Q, Q);
            // Oᵀ += Vᵀ·Pᵀ: A(d, key-pair) = (V[2p][d], V[2p + 1][d]).
            pair_product<true>(D, v_pairs, 1, D, p_pairs, key_pairs, tile.o_t);
        }
    }
    write_out(p, job, w, n_tiles);
}
#undef HYVIDEO_BF16_TARGET
#endif

using JobFunction = void (*)(const Problem&, const Job&, Workspace&);

inline JobFunction job_function(AttentionKernel kernel) {
    switch (kernel) {
        case AttentionKernel::portable: return run_job_portable;
#if HYVIDEO_ATTENTION_X86
        case AttentionKernel::avx2: return run_job_avx2;
        case AttentionKernel::avx512: return run_job_avx512;
#else
        default: break;
#endif
    }
    return run_job_portable;
}

// ---- inputs -------------------------------------------------------------------------------------------

struct Dims {
    std::int64_t batch, seq, heads, head_dim;
    std::int64_t kv_group = 1;
};

inline Dims check_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionMask& mask,
                         const char* what) {
    require_f32(q, what);
    require_f32(k, what);
    require_f32(v, what);
    HYVIDEO_CHECK(q.dim() == 4, what, ": q must be [B, S, H, D], got ", shape_str(q.shape()));
    // k and v may have fewer heads than q (grouped-query attention): query head h reads key/value
    // head h / (H / H_kv), as transformers' repeat_kv lays them out.
    HYVIDEO_CHECK(k.shape() == v.shape() && k.dim() == 4 && k.size(0) == q.size(0) && k.size(1) == q.size(1) &&
                      k.size(3) == q.size(3) && k.size(2) >= 1 && q.size(2) % k.size(2) == 0,
                  what, ": q, k, v must be [B, S, H, D] with k and v alike and H a multiple of theirs, got ",
                  shape_str(q.shape()), ", ", shape_str(k.shape()), ", ", shape_str(v.shape()));
    const Dims dims{q.size(0), q.size(1), q.size(2), q.size(3), q.size(2) / k.size(2)};
    HYVIDEO_CHECK(dims.head_dim >= 1, what, ": empty head dimension in ", shape_str(q.shape()));
    mask.check(dims.batch, dims.seq);
    return dims;
}

// The kernels read each token's head as D consecutive floats; a view strided along D is copied.
inline Tensor unit_stride_heads(const Tensor& t) { return t.size(3) == 1 || t.stride(3) == 1 ? t : t.contiguous(); }

// The jobs of every run and head, most expensive first: workers take them in this order, so the
// long ones (frame-causal masks make late frames the most expensive) do not end up last. Among
// equals the jobs of one head follow each other, so its keys and values are still in cache.
inline std::vector<Job> make_jobs(const AttentionMask& mask, const Dims& dims) {
    std::vector<Job> jobs;
    for (std::int64_t b = 0; b < dims.batch; ++b) {
        const std::vector<QueryRun> runs = mask.runs(b, dims.seq);
        for (std::int64_t h = 0; h < dims.heads; ++h)
            for (const QueryRun& run : runs)
                for (std::int64_t q0 = run.begin; q0 < run.end; q0 += kTilesPerJob * kQueryTile) {
                    QueryRun queries = run;
                    queries.begin = q0;
                    queries.end = std::min(run.end, q0 + kTilesPerJob * kQueryTile);
                    if (run.causal) queries.keys.end = std::min(queries.keys.end, queries.end);
                    jobs.push_back({b, h, queries, run.filtered ? mask.key_filter(b) : nullptr});
                }
    }
    std::stable_sort(jobs.begin(), jobs.end(),
                     [](const Job& x, const Job& y) { return x.queries.keys.size() > y.queries.keys.size(); });
    return jobs;
}

}  // namespace attention_internal

// ---- entry points --------------------------------------------------------------------------------------

// Whether attention(..., DType::bf16) runs the bf16 tile products (attention_bf16.hpp): on a CPU with
// AVX512_BF16 while the AVX-512 kernel is selected, for an even head dimension. Elsewhere the f32 kernel
// rounds its operands to bf16 values instead: the same result up to f32 rounding, at the f32 speed.
inline bool attention_bf16_operands_supported(std::int64_t head_dim) {
    return head_dim % 2 == 0 && attention_kernel() == AttentionKernel::avx512 && attention_bf16::supported();
}

// Flash attention. q [B, S, H, D], k and v [B, S, H_kv, D] with H a multiple of H_kv: f32 views with
// any strides (a copy is made only of a view that is strided along D); returns [B, S, H, D] contiguous. `scale` multiplies q·kᵀ (1/√D in the
// DiT). `operands` bf16 rounds q, k, v and the probabilities to bf16 before the products, with f32
// accumulation and softmax (attention_bf16.hpp; fast where attention_bf16_operands_supported()).
// Parallel over (sample, head, block of 256 queries); each block is
// computed whole by one thread, so the result is bitwise the same for every thread count.
inline Tensor attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const AttentionMask& mask,
                        float scale, DType operands = DType::f32) {
    using namespace attention_internal;
    HYVIDEO_CHECK(operands == DType::f32 || operands == DType::bf16, "attention: operands must be float32 or ",
                  "bfloat16, got ", dtype_name(operands));
    const Dims dims = check_inputs(q_in, k_in, v_in, mask, "attention");
    Tensor out = Tensor::empty(q_in.shape());
    if (out.numel() == 0) return out;
    const Tensor q = unit_stride_heads(q_in), k = unit_stride_heads(k_in), v = unit_stride_heads(v_in);

    Problem problem{q.data<const float>(),
                          k.data<const float>(),
                          v.data<const float>(),
                          {q.stride(0), q.stride(1), q.stride(2)},
                          {k.stride(0), k.stride(1), k.stride(2)},
                          {v.stride(0), v.stride(1), v.stride(2)},
                          out.data<float>(),
                          dims.seq,
                          dims.heads,
                          dims.head_dim,
                          dims.kv_group,
                          static_cast<float>(scale * 1.4426950408889634),
                          operands == DType::bf16};
    const std::vector<Job> jobs = make_jobs(mask, dims);
    JobFunction run = job_function(attention_kernel());
#if HYVIDEO_ATTENTION_BF16_X86
    if (operands == DType::bf16 && attention_bf16_operands_supported(dims.head_dim)) {
        run = run_job_bf16;
        problem.round_bf16 = false;
    }
#endif

    // The chunks are workers that take jobs from a shared counter, which balances jobs of unequal
    // cost; which worker computes a job does not change its bits.
    const auto n_jobs = static_cast<std::int64_t>(jobs.size());
    const std::int64_t workers = std::min<std::int64_t>(num_threads(), n_jobs);
    std::atomic<std::int64_t> next{0};
    parallel_for_chunks(0, workers, 1, [&](std::int64_t, std::int64_t) {
        Workspace workspace(dims.head_dim);
        for (std::int64_t j; (j = next.fetch_add(1, std::memory_order_relaxed)) < n_jobs;)
            run(problem, jobs[static_cast<std::size_t>(j)], workspace);
    });
    return out;
}

// Reference attention: the explicit masked S×S score matrix of each (sample, head), softmax and
// product in double. For tests and small problems only (S² doubles per thread).
inline Tensor attention_naive(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionMask& mask,
                              float scale) {
    const auto dims = attention_internal::check_inputs(q, k, v, mask, "attention_naive");
    const std::int64_t S = dims.seq, H = dims.heads, D = dims.head_dim;
    Tensor out = Tensor::empty(q.shape());
    if (out.numel() == 0) return out;
    const float* pq = q.data<const float>();
    const float* pk = k.data<const float>();
    const float* pv = v.data<const float>();
    float* po = out.data<float>();
    auto at = [](const Tensor& t, const float* base, std::int64_t b, std::int64_t s, std::int64_t h, std::int64_t d) {
        return static_cast<double>(base[b * t.stride(0) + s * t.stride(1) + h * t.stride(2) + d * t.stride(3)]);
    };

    parallel_for(0, dims.batch * H, [&](std::int64_t bh) {
        const std::int64_t b = bh / H, h = bh % H;
        std::vector<double> scores(static_cast<std::size_t>(S * S));
        for (std::int64_t i = 0; i < S; ++i)
            for (std::int64_t j = 0; j < S; ++j) {
                double dot = 0.0;
                for (std::int64_t d = 0; d < D; ++d)
                    dot += at(q, pq, b, i, h, d) * at(k, pk, b, j, h / dims.kv_group, d);
                scores[static_cast<std::size_t>(i * S + j)] =
                    mask.allows(b, i, j) ? dot * scale : -std::numeric_limits<double>::infinity();
            }
        std::vector<double> acc(static_cast<std::size_t>(D));
        for (std::int64_t i = 0; i < S; ++i) {
            const double* row = scores.data() + i * S;
            const double top = *std::max_element(row, row + S);
            HYVIDEO_CHECK(top > -std::numeric_limits<double>::infinity(), "attention_naive: query ", i,
                          " of sample ", b, " attends no key");
            double sum = 0.0;
            std::fill(acc.begin(), acc.end(), 0.0);
            for (std::int64_t j = 0; j < S; ++j) {
                const double p = std::exp(row[j] - top);  // exactly 0 for masked keys
                sum += p;
                for (std::int64_t d = 0; d < D; ++d)
                    acc[static_cast<std::size_t>(d)] += p * at(v, pv, b, j, h / dims.kv_group, d);
            }
            float* o = po + ((b * S + i) * H + h) * D;
            for (std::int64_t d = 0; d < D; ++d) o[d] = static_cast<float>(acc[static_cast<std::size_t>(d)] / sum);
        }
    });
    return out;
}

}  // namespace hyvideo::cpu_detail
