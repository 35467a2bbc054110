#pragma once
// Row-major matrix products on the CPU: C = alpha·op(A)·op(B) + beta·C, accumulated in f32.
//
// Two engines compute the same thing. oneDNN's matmul is the fast one (its JIT kernels use AVX-512
// and, for bf16, AMX or AVX512_BF16); Eigen is the portable fallback and the second opinion the
// tests compare against. The engine is a process-wide setting so that every component switches at
// once; it defaults to oneDNN when the build found it (HYVIDEO_HAS_ONEDNN).
//
// Conventions follow row-major BLAS: op(A) is M×K, op(B) is K×N, C is M×N; A is stored M×K (or
// K×M when trans_a) with row stride lda, and likewise B and C. beta == 0 means C is write-only, so
// NaNs in an uninitialised C never leak into the result. C must not overlap A or B.
//
// Threads: both engines run on the process's OpenMP pool (hyvideo::num_threads()). Called from
// inside a parallel region they compute serially on the calling thread. Unlike parallel_for, a
// product is not bit-identical across thread counts: both engines choose their K blocking (Eigen)
// or K split (oneDNN, e.g. bf16 with M = 1) from the thread count, which changes the summation
// order. Same thread count, same engine, same inputs: same bits.
#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <new>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <Eigen/Core>

#ifdef HYVIDEO_HAS_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#if DNNL_VERSION_MAJOR != 2
#error "hyvideo's oneDNN GEMM is written against the oneDNN 2.x API (output scales); build with -DHYVIDEO_USE_ONEDNN=OFF"
#endif
#endif

#include "hyvideo/core/dtype.hpp"
#include "hyvideo/core/dtype_convert.hpp"
#include "hyvideo/core/error.hpp"
#include "hyvideo/core/parallel.hpp"

namespace hyvideo::cpu_detail {

// ---- engine selection -------------------------------------------------------------------------

enum class GemmEngine { onednn, eigen };

inline constexpr std::string_view gemm_engine_name(GemmEngine e) {
    return e == GemmEngine::onednn ? "oneDNN" : "Eigen";
}

inline constexpr bool gemm_has_onednn =
#ifdef HYVIDEO_HAS_ONEDNN
    true;
#else
    false;
#endif

namespace gemm_internal {
inline std::atomic<GemmEngine>& engine_setting() {
    static std::atomic<GemmEngine> engine{gemm_has_onednn ? GemmEngine::onednn : GemmEngine::eigen};
    return engine;
}
}  // namespace gemm_internal

inline void set_gemm_engine(GemmEngine e) {
    HYVIDEO_CHECK(e != GemmEngine::onednn || gemm_has_onednn,
                  "set_gemm_engine(onednn): this build has no oneDNN (HYVIDEO_HAS_ONEDNN is not defined)");
    gemm_internal::engine_setting().store(e);
}

inline GemmEngine gemm_engine() { return gemm_internal::engine_setting().load(); }

// ---- the problem description shared by both engines --------------------------------------------

// One product, as the public entry points and linear() describe it. `operands` is the type of A
// and B (f32 or bf16 bit patterns); C is always f32. `bias` (length N, optional) is added to every
// row of the product; it requires alpha == 1 because oneDNN 2.x scales the bias with alpha while the
// natural reading does not, and no caller needs the combination.
struct GemmArgs {
    bool trans_a = false, trans_b = false;
    std::int64_t M = 0, N = 0, K = 0;
    float alpha = 1.0f;
    const void* A = nullptr;
    std::int64_t lda = 0;
    const void* B = nullptr;
    std::int64_t ldb = 0;
    float beta = 0.0f;
    float* C = nullptr;
    std::int64_t ldc = 0;
    const float* bias = nullptr;
    DType operands = DType::f32;
};

namespace gemm_internal {

inline void validate(const GemmArgs& g) {
    HYVIDEO_CHECK(g.operands == DType::f32 || g.operands == DType::bf16, "gemm: operands must be ",
                  "float32 or bfloat16, got ", dtype_name(g.operands));
    HYVIDEO_CHECK(g.M >= 0 && g.N >= 0 && g.K >= 0, "gemm: negative size M=", g.M, " N=", g.N, " K=", g.K);
    // The stored shapes: A is M×K (K×M transposed), B is K×N (N×K transposed).
    const std::int64_t a_cols = g.trans_a ? g.M : g.K, b_cols = g.trans_b ? g.K : g.N;
    HYVIDEO_CHECK(g.lda >= std::max<std::int64_t>(1, a_cols), "gemm: lda = ", g.lda, " is shorter than a ",
                  "row of A (", a_cols, g.trans_a ? ", A transposed is K×M" : ", A is M×K", ")");
    HYVIDEO_CHECK(g.ldb >= std::max<std::int64_t>(1, b_cols), "gemm: ldb = ", g.ldb, " is shorter than a ",
                  "row of B (", b_cols, g.trans_b ? ", B transposed is N×K" : ", B is K×N", ")");
    HYVIDEO_CHECK(g.ldc >= std::max<std::int64_t>(1, g.N), "gemm: ldc = ", g.ldc,
                  " is shorter than a row of C (N = ", g.N, ")");
    HYVIDEO_CHECK(g.bias == nullptr || g.alpha == 1.0f, "gemm: a bias needs alpha == 1, got alpha = ", g.alpha);
    if (g.M > 0 && g.N > 0) {
        HYVIDEO_CHECK(g.C != nullptr, "gemm: C is null for a ", g.M, "×", g.N, " result");
        HYVIDEO_CHECK(g.K == 0 || (g.A != nullptr && g.B != nullptr), "gemm: A or B is null with K = ", g.K);
    }
}

// C = beta·C + bias, row by row: the whole product when K == 0, and the Eigen engine's way of
// folding the bias into the single pass that writes C.
inline void scale_and_add_bias(std::int64_t M, std::int64_t N, float beta, const float* bias, float* C,
                               std::int64_t ldc) {
    parallel_for_chunks(0, M, 64, [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
            float* row = C + r * ldc;
            for (std::int64_t j = 0; j < N; ++j) {
                const float kept = beta == 0.0f ? 0.0f : beta * row[j];
                row[j] = kept + (bias ? bias[j] : 0.0f);
            }
        }
    });
}

// ---- Eigen engine ----------------------------------------------------------------------------------

using RowMajorMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMatrixMap = Eigen::Map<const RowMajorMatrix, Eigen::Unaligned, Eigen::OuterStride<>>;
using MatrixMap = Eigen::Map<RowMajorMatrix, Eigen::Unaligned, Eigen::OuterStride<>>;

inline void eigen_gemm_f32(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
                           float alpha, const float* A, std::int64_t lda, const float* B, std::int64_t ldb,
                           float beta, float* C, std::int64_t ldc) {
    // Transposes are views: Eigen's product kernel packs either storage order itself.
    const ConstMatrixMap a(A, trans_a ? K : M, trans_a ? M : K, Eigen::OuterStride<>(lda));
    const ConstMatrixMap b(B, trans_b ? N : K, trans_b ? K : N, Eigen::OuterStride<>(ldb));
    MatrixMap c(C, M, N, Eigen::OuterStride<>(ldc));
    auto multiply = [&](const auto& op_a, const auto& op_b) {
        if (beta == 0.0f) {
            c.noalias() = alpha * op_a * op_b;
        } else {
            if (beta != 1.0f) c *= beta;
            c.noalias() += alpha * op_a * op_b;
        }
    };
    if (trans_a) {
        if (trans_b) multiply(a.transpose(), b.transpose());
        else multiply(a.transpose(), b);
    } else {
        if (trans_b) multiply(a, b.transpose());
        else multiply(a, b);
    }
}

// Copies a rows×cols block of bf16 values (row stride ld) into a dense f32 buffer.
inline void widen_bf16_block(const std::uint16_t* src, std::int64_t ld, std::int64_t rows, std::int64_t cols,
                             float* dst) {
    parallel_for_chunks(0, rows, 16, [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r)
            convert_buffer(src + r * ld, DType::bf16, dst + r * cols, DType::f32, static_cast<std::size_t>(cols));
    });
}

// Eigen's own bfloat16 product runs several times slower than its f32 kernel (52 against 330
// GFLOP/s in the design notes' measurement on this machine), so bf16 operands are widened to f32
// and multiplied by the f32 kernel. Widening happens a K-slice at a
// time to bound the scratch memory by (M + N)·slice instead of copying both operands whole;
// bf16 values are exact in f32, so the result equals the f32 product of the rounded operands up
// to summation order.
inline void eigen_gemm_bf16(const GemmArgs& g, float beta) {
    constexpr std::int64_t slice = 512;
    const auto* A = static_cast<const std::uint16_t*>(g.A);
    const auto* B = static_cast<const std::uint16_t*>(g.B);
    const std::int64_t k_step = std::min(slice, g.K);
    std::vector<float> a_f32(static_cast<std::size_t>(g.M * k_step)), b_f32(static_cast<std::size_t>(k_step * g.N));
    for (std::int64_t k0 = 0; k0 < g.K; k0 += slice) {
        const std::int64_t kn = std::min(slice, g.K - k0);
        // The slice keeps the operand's storage order, so the transposes carry over unchanged:
        // op(A)[:, k0:k0+kn] is a column band of stored A, or a row band when A is transposed.
        if (g.trans_a) widen_bf16_block(A + k0 * g.lda, g.lda, kn, g.M, a_f32.data());
        else widen_bf16_block(A + k0, g.lda, g.M, kn, a_f32.data());
        if (g.trans_b) widen_bf16_block(B + k0, g.ldb, g.N, kn, b_f32.data());
        else widen_bf16_block(B + k0 * g.ldb, g.ldb, kn, g.N, b_f32.data());
        eigen_gemm_f32(g.trans_a, g.trans_b, g.M, g.N, kn, g.alpha, a_f32.data(), g.trans_a ? g.M : kn,
                       b_f32.data(), g.trans_b ? kn : g.N, k0 == 0 ? beta : 1.0f, g.C, g.ldc);
    }
}

inline void eigen_gemm(const GemmArgs& g) {
    float beta = g.beta;
    if (g.bias) {
        // Start C at beta·C + bias and accumulate the product onto it.
        scale_and_add_bias(g.M, g.N, beta, g.bias, g.C, g.ldc);
        beta = 1.0f;
    }
    if (g.operands == DType::f32)
        eigen_gemm_f32(g.trans_a, g.trans_b, g.M, g.N, g.K, g.alpha, static_cast<const float*>(g.A), g.lda,
                       static_cast<const float*>(g.B), g.ldb, beta, g.C, g.ldc);
    else
        eigen_gemm_bf16(g, beta);
}

// ---- oneDNN engine -----------------------------------------------------------------------------------
#ifdef HYVIDEO_HAS_ONEDNN

// Everything that shapes a matmul primitive. The thread count is part of it because oneDNN plans
// its work split when the primitive is created.
struct MatmulKey {
    bool trans_a, trans_b;
    std::int64_t M, N, K, lda, ldb, ldc;
    DType operands;
    std::uint32_t alpha_bits, beta_bits;
    bool has_bias;
    int threads;
    auto operator<=>(const MatmulKey&) const = default;
};

struct Matmul {
    dnnl::matmul primitive;
    dnnl::memory::desc a, b, c, bias, scratchpad;
};

inline dnnl::engine& onednn_engine() {
    static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}

// A CPU stream is a thin handle, but the API does not promise that one may be used by several
// threads at once; one per thread sidesteps the question.
inline dnnl::stream& onednn_stream() {
    thread_local dnnl::stream stream(onednn_engine());
    return stream;
}

// oneDNN's default scratchpad is one buffer shared by every primitive in the process (unless the
// library was built with ONEDNN_ENABLE_CONCURRENT_EXEC, which Debian's evidently is not: the test
// with concurrent callers failed without this), so two threads running products at once overwrite
// each other's partial sums. Each calling thread gets its
// own buffer instead, grown to the largest need seen and reused.
inline void* onednn_scratchpad(std::size_t bytes) {
    struct FreeDeleter {
        void operator()(void* p) const { std::free(p); }
    };
    thread_local std::unique_ptr<void, FreeDeleter> buffer;
    thread_local std::size_t capacity = 0;
    if (bytes > capacity) {
        const std::size_t rounded = (bytes + 63) / 64 * 64;
        buffer.reset(std::aligned_alloc(64, rounded));
        if (!buffer) throw std::bad_alloc();
        capacity = rounded;
    }
    return buffer.get();
}

// Sets this thread's OpenMP thread count for the guard's lifetime. Inside a parallel region oneDNN
// executes on the calling thread alone, and a primitive created there should plan for that; the
// setting is per thread, so the rest of the team is unaffected.
class ThreadCountGuard {
public:
    explicit ThreadCountGuard(int threads) : saved_(num_threads()) { set_num_threads(threads); }
    ~ThreadCountGuard() { set_num_threads(saved_); }
    ThreadCountGuard(const ThreadCountGuard&) = delete;
    ThreadCountGuard& operator=(const ThreadCountGuard&) = delete;

private:
    int saved_;
};

inline Matmul make_matmul(const MatmulKey& key) {
    using dims = dnnl::memory::dims;
    using dt = dnnl::memory::data_type;
    const dt operand = key.operands == DType::bf16 ? dt::bf16 : dt::f32;
    Matmul m;
    // Transposition is expressed through the strides, so oneDNN reads the operands where they are.
    m.a = dnnl::memory::desc({key.M, key.K}, operand, key.trans_a ? dims{1, key.lda} : dims{key.lda, 1});
    m.b = dnnl::memory::desc({key.K, key.N}, operand, key.trans_b ? dims{1, key.ldb} : dims{key.ldb, 1});
    m.c = dnnl::memory::desc({key.M, key.N}, dt::f32, dims{key.ldc, 1});
    if (key.has_bias) m.bias = dnnl::memory::desc({1, key.N}, dt::f32, dims{key.N, 1});

    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const float alpha = std::bit_cast<float>(key.alpha_bits), beta = std::bit_cast<float>(key.beta_bits);
    if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
    // The sum post-op adds beta times C's previous contents after the (alpha-scaled) product; with
    // beta == 0 it is left out, which also makes C write-only.
    if (beta != 0.0f) {
        dnnl::post_ops ops;
        ops.append_sum(beta);
        attr.set_post_ops(ops);
    }
    ThreadCountGuard planned_threads(key.threads);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(m.a, m.b, m.bias, m.c), attr, onednn_engine());
    m.primitive = dnnl::matmul(pd);
    m.scratchpad = pd.scratchpad_desc();
    return m;
}

// Recreating a primitive costs about 2 µs here even when oneDNN's own primitive cache still holds
// its JIT code (a 64³ product takes 4 µs on one core), against 0.1 µs for a lookup in this cache.
// Primitives are immutable and safe to execute concurrently, so the cache hands out copies of the
// handle and holds its lock only for the lookup. A model uses a few dozen shapes; past `capacity`
// the oldest entry goes.
class MatmulCache {
public:
    Matmul get(const MatmulKey& key) {
        {
            std::lock_guard lock(mutex_);
            if (auto it = entries_.find(key); it != entries_.end()) return it->second;
        }
        Matmul made = make_matmul(key);
        std::lock_guard lock(mutex_);
        auto [it, inserted] = entries_.emplace(key, made);
        if (inserted) {
            insertion_order_.push_back(key);
            if (insertion_order_.size() > capacity) {
                entries_.erase(insertion_order_.front());
                insertion_order_.pop_front();
            }
        }
        return it->second;
    }
    std::size_t size() {
        std::lock_guard lock(mutex_);
        return entries_.size();
    }

    static constexpr std::size_t capacity = 256;

private:
    std::mutex mutex_;
    std::map<MatmulKey, Matmul> entries_;
    std::deque<MatmulKey> insertion_order_;
};

inline MatmulCache& matmul_cache() {
    static MatmulCache cache;
    return cache;
}

inline void onednn_gemm(const GemmArgs& g) {
    const MatmulKey key{g.trans_a, g.trans_b, g.M, g.N, g.K, g.lda, g.ldb, g.ldc, g.operands,
                        std::bit_cast<std::uint32_t>(g.alpha), std::bit_cast<std::uint32_t>(g.beta),
                        g.bias != nullptr, in_parallel_region() ? 1 : num_threads()};
    try {
        const Matmul m = matmul_cache().get(key);
        dnnl::engine& engine = onednn_engine();
        std::unordered_map<int, dnnl::memory> args{
            {DNNL_ARG_SRC, dnnl::memory(m.a, engine, const_cast<void*>(g.A))},
            {DNNL_ARG_WEIGHTS, dnnl::memory(m.b, engine, const_cast<void*>(g.B))},
            {DNNL_ARG_DST, dnnl::memory(m.c, engine, g.C)}};
        if (g.bias) args.emplace(DNNL_ARG_BIAS, dnnl::memory(m.bias, engine, const_cast<float*>(g.bias)));
        if (const std::size_t bytes = m.scratchpad.get_size(); bytes > 0)
            args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(m.scratchpad, engine, onednn_scratchpad(bytes)));
        dnnl::stream& stream = onednn_stream();
        m.primitive.execute(stream, args);
        stream.wait();
    } catch (const dnnl::error& e) {
        throw Error(detail::concat("gemm (oneDNN): ", g.M, "×", g.N, "×", g.K, " ", dtype_name(g.operands),
                                   g.trans_a ? " A^T" : "", g.trans_b ? " B^T" : "", " failed: ", e.what()));
    }
}

#endif  // HYVIDEO_HAS_ONEDNN

}  // namespace gemm_internal

// ---- entry points ------------------------------------------------------------------------------------

// Runs one product on the selected engine. Degenerate shapes are handled here so both engines see
// only real work: an empty C is left alone, and K == 0 gives C = beta·C (+ bias).
inline void gemm(const GemmArgs& g) {
    gemm_internal::validate(g);
    if (g.M == 0 || g.N == 0) return;
    if (g.K == 0) {
        gemm_internal::scale_and_add_bias(g.M, g.N, g.beta, g.bias, g.C, g.ldc);
        return;
    }
#ifdef HYVIDEO_HAS_ONEDNN
    if (gemm_engine() == GemmEngine::onednn) {
        gemm_internal::onednn_gemm(g);
        return;
    }
#endif
    gemm_internal::eigen_gemm(g);
}

// f32 operands.
inline void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                 const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
                 std::int64_t ldc) {
    gemm(GemmArgs{trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, nullptr, DType::f32});
}

// bf16 operands (raw bit patterns), f32 accumulation and output.
inline void gemm_bf16(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                      const std::uint16_t* A, std::int64_t lda, const std::uint16_t* B, std::int64_t ldb,
                      float beta, float* C, std::int64_t ldc) {
    gemm(GemmArgs{trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, nullptr, DType::bf16});
}

}  // namespace hyvideo::cpu_detail
