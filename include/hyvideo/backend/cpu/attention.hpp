#pragma once
// Scaled dot-product attention on the CPU: out = softmax(q·kᵀ·scale, masked)·v for q, k, v [B, S, H, D].
//
// attention() is flash attention: it walks tiles of 64 queries against tiles of keys, keeping for
// every query a running maximum and a running sum of the exponentials (online softmax), so a worker
// holds O(D·64 + 64·key_tile) floats and no S×S matrix exists at any size (a 720p video is 118,800
// tokens). Masks are key ranges per run of queries (attention_mask.hpp), so key tiles a mask hides
// from a whole query tile are never computed.
//
// Layout. Inside a tile the queries are the vector lanes: the query tile is stored transposed
// (Qᵀ, D × 64) and the scores as Sᵀ (keys × 64). Then
//   Sᵀ[j][i] = Σ_d K[j][d]·Qᵀ[d][i]     and     Oᵀ[d][i] += Σ_j V[j][d]·Pᵀ[j][i]
// are both "broadcast one scalar, multiply a row of lanes" products that read K and V in place,
// whatever their row stride (a slice of a fused qkv projection is used without a copy), and the
// softmax bookkeeping is per lane: the maximum and the sum over keys are elementwise operations
// down the rows of Sᵀ, never horizontal reductions. Scores are kept in base 2 (q is pre-scaled by
// scale·log2 e) so each probability is one exp2.
//
// The products are register-blocked with GCC vector types, which the compiler maps to the widest
// registers of the target. The same source is compiled three times, for the baseline x86-64 (SSE2,
// also the code on other architectures), AVX2+FMA and AVX-512, and the widest one the CPU supports
// is picked at run time (bench/bench_attention.cpp compares them; AVX-512 is about 4× the
// baseline here). A tile of one kernel always produces the same bits, so results do not depend on
// the thread count; the kernels differ from each other by rounding (FMA contraction).
//
// Why not the library GEMM for the tile products: oneDNN reaches 60-100 GFLOP/s per core on
// 64-256 sized tiles (call overhead, packing per call), less than half of what the fused kernel
// gets, and the softmax would still need its own pass over the scores.
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
#include <vector>

#include "hyvideo/backend/attention_mask.hpp"
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

// Queries per tile: the lanes of the tile products (four AVX-512 vectors), and a unit of parallel
// work small enough that a short sequence still splits between threads.
inline constexpr std::int64_t kQueryTile = 64;
// Keys per tile: Sᵀ (kKeyTile × 64 floats, 32 KiB) stays in L1 while Oᵀ += V·Pᵀ streams over it.
inline constexpr std::int64_t kKeyTile = 128;

struct Problem {
    const float* q;
    const float* k;
    const float* v;
    std::int64_t q_stride[3], k_stride[3], v_stride[3];  // batch, token, head (the head dim is unit-stride)
    float* out;                                          // [B, S, H, D], contiguous
    std::int64_t seq, heads, head_dim;
    float log2_scale;  // scale·log2(e): scores are computed in base 2
};

// One query tile of one (sample, head) and the keys it may attend.
struct Job {
    std::int64_t batch, head;
    QueryRun tile;
    const std::uint8_t* key_filter;  // indexed by key; set when tile.filtered
};

// A worker's scratch memory, reused by all its jobs: O(D·64 + 64·kKeyTile) floats, independent of S.
class Workspace {
public:
    explicit Workspace(std::int64_t head_dim)
        : memory_(Tensor::empty({(2 * head_dim + kKeyTile + 3) * kQueryTile})) {
        float* base = memory_.data<float>();
        q_t = base;
        o_t = q_t + head_dim * kQueryTile;
        s_t = o_t + head_dim * kQueryTile;
        row_max = s_t + kKeyTile * kQueryTile;
        row_sum = row_max + kQueryTile;
        rescale = row_sum + kQueryTile;
    }

    float* q_t;      // [D][64]: the query tile, transposed and multiplied by log2_scale
    float* o_t;      // [D][64]: the unnormalised output, transposed
    float* s_t;      // [kKeyTile][64]: scores of a key tile, then their exponentials
    float* row_max;  // [64]: running maximum of each query's scores (base 2)
    float* row_sum;  // [64]: running sum of 2^(score - row_max)
    float* rescale;  // [64]: 2^(old max - new max), applied to row_sum and o_t

private:
    Tensor memory_;  // 64-byte aligned, so every 64-float row starts on a cache line
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
// the normal range, and there it is at most 2^-125 times the largest term of the softmax row, so
// the clamp costs nothing.
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

// Folds a key tile's scores s_t (keys × 64, base 2) into the running softmax state and leaves the
// tile's probabilities 2^(s - new max) in s_t. `allowed` (null: all keys) marks the keys a filtered
// run may attend; the others get probability 0. Every loop runs down the keys with the 64 queries
// as lanes, so each query's sum is accumulated in key order whatever the vector width.
HYVIDEO_ATTENTION_INLINE void softmax_step(float* s_t, std::int64_t keys, const std::uint8_t* allowed,
                                           Workspace& w) {
    // The per-query state is copied into local arrays: through the workspace pointers the compiler
    // would have to assume that it aliases the scores and would not vectorise.
    constexpr std::int64_t Q = kQueryTile;
    float new_max[Q], tile_sum[Q] = {};
    std::copy_n(w.row_max, Q, new_max);
    for (std::int64_t j = 0; j < keys; ++j) {
        if (allowed && !allowed[j]) continue;
        const float* s = s_t + j * Q;
        for (std::int64_t i = 0; i < Q; ++i) new_max[i] = s[i] > new_max[i] ? s[i] : new_max[i];
    }
    for (std::int64_t j = 0; j < keys; ++j) {
        float* s = s_t + j * Q;
        if (allowed && !allowed[j]) {
            std::fill_n(s, Q, 0.0f);
            continue;
        }
        for (std::int64_t i = 0; i < Q; ++i) {
            const float p = exp2_nonpositive(s[i] - new_max[i]);
            s[i] = p;
            tile_sum[i] += p;
        }
    }
    for (std::int64_t i = 0; i < Q; ++i) {
        w.rescale[i] = exp2_nonpositive(w.row_max[i] - new_max[i]);
        w.row_max[i] = new_max[i];
        w.row_sum[i] = w.row_sum[i] * w.rescale[i] + tile_sum[i];
    }
}

// o_t (D × 64) *= rescale, per lane.
HYVIDEO_ATTENTION_INLINE void rescale_rows(float* o_t, std::int64_t rows, const float* rescale) {
    float r[kQueryTile];
    std::copy_n(rescale, kQueryTile, r);
    for (std::int64_t d = 0; d < rows; ++d)
        for (std::int64_t i = 0; i < kQueryTile; ++i) o_t[d * kQueryTile + i] *= r[i];
}

// One job: a query tile of one (sample, head) against all the key tiles of its range.
template <class Isa>
HYVIDEO_ATTENTION_INLINE void run_job(const Problem& p, const Job& job, Workspace& w) {
    constexpr std::int64_t Q = kQueryTile;
    const std::int64_t D = p.head_dim;
    const float* q = p.q + job.batch * p.q_stride[0] + job.head * p.q_stride[2];
    const float* k = p.k + job.batch * p.k_stride[0] + job.head * p.k_stride[2];
    const float* v = p.v + job.batch * p.v_stride[0] + job.head * p.v_stride[2];
    const std::int64_t q_row = p.q_stride[1], k_row = p.k_stride[1], v_row = p.v_stride[1];
    const std::int64_t q0 = job.tile.begin, nq = job.tile.end - job.tile.begin;

    // Lanes past the end of a short tile hold zero queries: they compute harmless finite values
    // and are never written out.
    if (nq < Q) std::fill_n(w.q_t, D * Q, 0.0f);
    for (std::int64_t i = 0; i < nq; ++i) {
        const float* row = q + (q0 + i) * q_row;
        for (std::int64_t d = 0; d < D; ++d) w.q_t[d * Q + i] = row[d] * p.log2_scale;
    }
    std::fill_n(w.o_t, D * Q, 0.0f);
    std::fill_n(w.row_max, Q, -std::numeric_limits<float>::infinity());
    std::fill_n(w.row_sum, Q, 0.0f);

    for (std::int64_t j0 = job.tile.keys.begin; j0 < job.tile.keys.end; j0 += kKeyTile) {
        const std::int64_t nk = std::min(kKeyTile, job.tile.keys.end - j0);
        const std::uint8_t* allowed = job.tile.filtered ? job.key_filter + j0 : nullptr;
        if (allowed && std::none_of(allowed, allowed + nk, [](std::uint8_t a) { return a != 0; })) continue;

        // Sᵀ = K·Qᵀ: A(j, d) = K[j0 + j][d].
        panel_product<typename Isa::scores, false>(nk, k + j0 * k_row, k_row, 1, w.q_t, D, w.s_t);
        softmax_step(w.s_t, nk, allowed, w);
        rescale_rows(w.o_t, D, w.rescale);
        // Oᵀ += Vᵀ·Pᵀ: A(d, j) = V[j0 + j][d].
        panel_product<typename Isa::output, true>(D, v + j0 * v_row, 1, v_row, w.s_t, nk, w.o_t);
    }

    float* out = p.out + ((job.batch * p.seq + q0) * p.heads + job.head) * D;
    for (std::int64_t i = 0; i < nq; ++i) {
        float* row = out + i * p.heads * D;
        const float sum = w.row_sum[i];
        for (std::int64_t d = 0; d < D; ++d) row[d] = w.o_t[d * Q + i] / sum;
    }
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
// prefer-vector-width=512: the auto-vectorised softmax loops would otherwise use 256-bit halves.
__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma,prefer-vector-width=512"))) inline void run_job_avx512(
    const Problem& p, const Job& job, Workspace& w) {
    run_job<Avx512>(p, job, w);
}
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
};

inline Dims check_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionMask& mask,
                         const char* what) {
    require_f32(q, what);
    require_f32(k, what);
    require_f32(v, what);
    HYVIDEO_CHECK(q.dim() == 4, what, ": q must be [B, S, H, D], got ", shape_str(q.shape()));
    HYVIDEO_CHECK(k.shape() == q.shape() && v.shape() == q.shape(), what, ": q, k, v must have the same shape, got ",
                  shape_str(q.shape()), ", ", shape_str(k.shape()), ", ", shape_str(v.shape()));
    const Dims dims{q.size(0), q.size(1), q.size(2), q.size(3)};
    HYVIDEO_CHECK(dims.head_dim >= 1, what, ": empty head dimension in ", shape_str(q.shape()));
    mask.check(dims.batch, dims.seq);
    return dims;
}

// The kernels read each token's head as D consecutive floats; a view strided along D is copied.
inline Tensor unit_stride_heads(const Tensor& t) { return t.size(3) == 1 || t.stride(3) == 1 ? t : t.contiguous(); }

// Query tiles of every run, for every head, most expensive first: workers take jobs in this order,
// so the long ones (frame-causal masks make late frames the most expensive) do not end up last.
// Among equals the tiles of one head follow each other, so a head's keys and values are still in
// cache for the next job.
inline std::vector<Job> make_jobs(const AttentionMask& mask, const Dims& dims) {
    std::vector<Job> jobs;
    for (std::int64_t b = 0; b < dims.batch; ++b) {
        const std::vector<QueryRun> runs = mask.runs(b, dims.seq);
        for (std::int64_t h = 0; h < dims.heads; ++h)
            for (const QueryRun& run : runs)
                for (std::int64_t q0 = run.begin; q0 < run.end; q0 += kQueryTile) {
                    QueryRun tile = run;
                    tile.begin = q0;
                    tile.end = std::min(run.end, q0 + kQueryTile);
                    jobs.push_back({b, h, tile, run.filtered ? mask.key_filter(b) : nullptr});
                }
    }
    std::stable_sort(jobs.begin(), jobs.end(),
                     [](const Job& x, const Job& y) { return x.tile.keys.size() > y.tile.keys.size(); });
    return jobs;
}

}  // namespace attention_internal

// ---- entry points --------------------------------------------------------------------------------------

// Flash attention. q, k, v: [B, S, H, D] f32 views with any strides (a copy is made only of a view
// that is strided along D); returns [B, S, H, D] contiguous. `scale` multiplies q·kᵀ (1/√D in the
// DiT). Parallel over (sample, head, query tile); each tile is computed whole by one thread, so the
// result is bitwise the same for every thread count.
inline Tensor attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const AttentionMask& mask,
                        float scale) {
    using namespace attention_internal;
    const Dims dims = check_inputs(q_in, k_in, v_in, mask, "attention");
    Tensor out = Tensor::empty(q_in.shape());
    if (out.numel() == 0) return out;
    const Tensor q = unit_stride_heads(q_in), k = unit_stride_heads(k_in), v = unit_stride_heads(v_in);

    const Problem problem{q.data<const float>(),
                          k.data<const float>(),
                          v.data<const float>(),
                          {q.stride(0), q.stride(1), q.stride(2)},
                          {k.stride(0), k.stride(1), k.stride(2)},
                          {v.stride(0), v.stride(1), v.stride(2)},
                          out.data<float>(),
                          dims.seq,
                          dims.heads,
                          dims.head_dim,
                          static_cast<float>(scale * 1.4426950408889634)};
    const std::vector<Job> jobs = make_jobs(mask, dims);
    const JobFunction run = job_function(attention_kernel());

    // The chunks are workers that take jobs from a shared counter, which balances tiles of unequal
    // cost; which worker computes a tile does not change its bits.
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
                for (std::int64_t d = 0; d < D; ++d) dot += at(q, pq, b, i, h, d) * at(k, pk, b, j, h, d);
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
                for (std::int64_t d = 0; d < D; ++d) acc[static_cast<std::size_t>(d)] += p * at(v, pv, b, j, h, d);
            }
            float* o = po + ((b * S + i) * H + h) * D;
            for (std::int64_t d = 0; d < D; ++d) o[d] = static_cast<float>(acc[static_cast<std::size_t>(d)] / sum);
        }
    });
    return out;
}

}  // namespace hyvideo::cpu_detail
