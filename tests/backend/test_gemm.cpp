// GEMM (both engines) and linear(), checked against double-precision loops.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "hyvideo/backend/cpu/gemm.hpp"
#include "hyvideo/backend/cpu/linear.hpp"
#include "hyvideo/core/dtype_convert.hpp"
#include "hyvideo/core/parallel.hpp"
#include "hyvideo/core/tensor.hpp"
#include "../support/error_of.hpp"
#include "../support/thread_scope.hpp"

using namespace hyvideo;
using namespace hyvideo::cpu_detail;

namespace {

std::vector<GemmEngine> engines() {
    std::vector<GemmEngine> list{GemmEngine::eigen};
    if (gemm_has_onednn) list.push_back(GemmEngine::onednn);
    return list;
}

// Selects an engine for one scope and restores the previous one, so a failing check cannot leak
// the setting into later tests.
class EngineScope {
public:
    explicit EngineScope(GemmEngine e) : saved_(gemm_engine()) { set_gemm_engine(e); }
    ~EngineScope() { set_gemm_engine(saved_); }

private:
    GemmEngine saved_;
};

using hyvideo::test::ThreadScope;
using hyvideo::test::error_of;

std::vector<float> random_values(std::size_t n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
}

std::vector<float> round_to_bf16(const std::vector<float>& v) {
    std::vector<float> out(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) out[i] = bf16_to_f32(f32_to_bf16(v[i]));
    return out;
}

std::vector<std::uint16_t> bf16_bits(const std::vector<float>& v) {
    std::vector<std::uint16_t> out(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) out[i] = f32_to_bf16(v[i]);
    return out;
}

struct Problem {
    bool trans_a, trans_b;
    std::int64_t M, N, K, pad;
    float alpha, beta;
    std::int64_t lda() const { return (trans_a ? M : K) + pad; }
    std::int64_t ldb() const { return (trans_b ? K : N) + pad; }
    std::int64_t ldc() const { return N + pad; }
    std::size_t a_size() const { return static_cast<std::size_t>((trans_a ? K : M) * lda()); }
    std::size_t b_size() const { return static_cast<std::size_t>((trans_b ? N : K) * ldb()); }
    std::size_t c_size() const { return static_cast<std::size_t>(M * ldc()); }
};

// alpha·op(A)·op(B) + beta·C0 summed in double, and the sum of the magnitudes of its terms (the
// scale that f32 rounding errors are proportional to), row-major M×N.
struct Reference {
    std::vector<double> value, magnitude;
};

Reference reference_product(const Problem& p, const std::vector<float>& A, const std::vector<float>& B,
                            const std::vector<float>& C0) {
    Reference r{std::vector<double>(static_cast<std::size_t>(p.M * p.N)),
                std::vector<double>(static_cast<std::size_t>(p.M * p.N))};
    for (std::int64_t m = 0; m < p.M; ++m)
        for (std::int64_t n = 0; n < p.N; ++n) {
            double sum = 0, magnitude = 0;
            for (std::int64_t k = 0; k < p.K; ++k) {
                const double a = p.trans_a ? A[k * p.lda() + m] : A[m * p.lda() + k];
                const double b = p.trans_b ? B[n * p.ldb() + k] : B[k * p.ldb() + n];
                sum += a * b;
                magnitude += std::abs(a * b);
            }
            double value = p.alpha * sum;
            magnitude *= std::abs(p.alpha);
            if (p.beta != 0) {
                const double c = C0[m * p.ldc() + n];
                value += p.beta * c;
                magnitude += std::abs(p.beta * c);
            }
            r.value[m * p.N + n] = value;
            r.magnitude[m * p.N + n] = magnitude;
        }
    return r;
}

// Largest error of C against the reference, relative to the magnitude of the terms. Padding
// between rows of C must come back untouched (bit for bit, NaN included).
double max_relative_error(const Problem& p, const Reference& expected, const std::vector<float>& C0,
                          const std::vector<float>& C) {
    double worst = 0;
    for (std::int64_t m = 0; m < p.M; ++m) {
        for (std::int64_t n = 0; n < p.N; ++n) {
            const double got = C[m * p.ldc() + n];
            const double error = std::abs(got - expected.value[m * p.N + n]) /
                                 std::max(expected.magnitude[m * p.N + n], 1e-30);
            worst = std::max(worst, std::isfinite(got) ? error : std::numeric_limits<double>::infinity());
        }
        for (std::int64_t n = p.N; n < p.ldc(); ++n)
            if (std::bit_cast<std::uint32_t>(C[m * p.ldc() + n]) != std::bit_cast<std::uint32_t>(C0[m * p.ldc() + n]))
                return std::numeric_limits<double>::infinity();
    }
    return worst;
}

// Runs one problem with f32 or bf16 operands; the reference uses the operands as the engine saw them.
double run_problem(const Problem& p, bool bf16, std::uint32_t seed) {
    auto A = random_values(p.a_size(), seed);
    auto B = random_values(p.b_size(), seed + 1);
    if (bf16) {
        A = round_to_bf16(A);
        B = round_to_bf16(B);
    }
    // With beta == 0 the output starts as NaN: C must be write-only then.
    auto C0 = p.beta != 0 ? random_values(p.c_size(), seed + 2)
                          : std::vector<float>(p.c_size(), std::numeric_limits<float>::quiet_NaN());
    auto C = C0;
    if (bf16) {
        const auto a16 = bf16_bits(A), b16 = bf16_bits(B);
        gemm_bf16(p.trans_a, p.trans_b, p.M, p.N, p.K, p.alpha, a16.data(), p.lda(), b16.data(), p.ldb(), p.beta,
                  C.data(), p.ldc());
    } else {
        gemm(p.trans_a, p.trans_b, p.M, p.N, p.K, p.alpha, A.data(), p.lda(), B.data(), p.ldb(), p.beta, C.data(),
             p.ldc());
    }
    return max_relative_error(p, reference_product(p, A, B, C0), C0, C);
}

// Bounds f32 accumulation comfortably for K up to a few thousand, yet far below the error of a
// missing term, a wrong transpose or a bf16-rounded result (~4e-3).
constexpr double tolerance = 2e-5;

const std::vector<std::array<std::int64_t, 3>> odd_shapes = {
    {1, 1, 1}, {7, 33, 129}, {129, 7, 33}, {33, 129, 7}, {1, 129, 33}, {5, 9, 1100}, {67, 45, 513},
};

const std::vector<std::pair<float, float>> alpha_beta = {{1.0f, 0.0f}, {0.5f, 1.0f}, {-1.25f, 0.75f}};

void check_all_problems(bool bf16) {
    std::uint32_t seed = 1;
    for (GemmEngine engine : engines()) {
        EngineScope scope(engine);
        for (bool ta : {false, true})
            for (bool tb : {false, true})
                for (const auto& [M, N, K] : odd_shapes)
                    for (std::int64_t pad : {0, 5})
                        for (const auto& [alpha, beta] : alpha_beta) {
                            const Problem p{ta, tb, M, N, K, pad, alpha, beta};
                            INFO(gemm_engine_name(engine), (bf16 ? " bf16" : " f32"), " trans_a=", ta,
                                 " trans_b=", tb, " M=", M, " N=", N, " K=", K, " pad=", pad, " alpha=", alpha,
                                 " beta=", beta);
                            CHECK(run_problem(p, bf16, seed++) < tolerance);
                        }
    }
}

}  // namespace

// ---- gemm ------------------------------------------------------------------------------------------

TEST_CASE("gemm f32: both engines, all transposes, odd sizes, padded rows, alpha and beta") {
    check_all_problems(false);
}

TEST_CASE("gemm_bf16: both engines match the product of the bf16-rounded operands") {
    check_all_problems(true);
}

TEST_CASE("gemm on a DiT-sized product agrees with the reference on sampled entries") {
    // Too big for a full double loop; a few rows cover every column block and the whole K.
    const std::int64_t M = 256, N = 3072, K = 3072;
    const auto A = round_to_bf16(random_values(static_cast<std::size_t>(M * K), 7));
    const auto B = round_to_bf16(random_values(static_cast<std::size_t>(K * N), 8));
    const auto a16 = bf16_bits(A), b16 = bf16_bits(B);
    for (GemmEngine engine : engines()) {
        EngineScope scope(engine);
        for (bool bf16 : {false, true}) {
            INFO(gemm_engine_name(engine), bf16 ? " bf16" : " f32");
            std::vector<float> C(static_cast<std::size_t>(M * N));
            if (bf16) gemm_bf16(false, true, M, N, K, 1.0f, a16.data(), K, b16.data(), K, 0.0f, C.data(), N);
            else gemm(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, C.data(), N);
            double worst = 0;
            for (std::int64_t m : {0L, 1L, 100L, 255L})
                for (std::int64_t n = 0; n < N; ++n) {
                    double sum = 0, magnitude = 0;
                    for (std::int64_t k = 0; k < K; ++k) {
                        sum += double(A[m * K + k]) * B[n * K + k];
                        magnitude += std::abs(double(A[m * K + k]) * B[n * K + k]);
                    }
                    worst = std::max(worst, std::abs(C[m * N + n] - sum) / magnitude);
                }
            CHECK(worst < tolerance);
        }
    }
}

TEST_CASE("gemm is reproducible bit for bit at a fixed thread count") {
    // Across thread counts the summation order may change (see gemm.hpp); run to run it must not.
    ThreadScope threads(2);
    const std::int64_t M = 67, N = 300, K = 1100;
    const auto A = random_values(static_cast<std::size_t>(M * K), 61);
    const auto B = random_values(static_cast<std::size_t>(K * N), 62);
    const auto a16 = bf16_bits(A), b16 = bf16_bits(B);
    for (GemmEngine engine : engines()) {
        EngineScope scope(engine);
        for (bool bf16 : {false, true}) {
            INFO(gemm_engine_name(engine), bf16 ? " bf16" : " f32");
            std::vector<float> first, C(static_cast<std::size_t>(M * N));
            for (int run = 0; run < 3; ++run) {
                if (bf16) gemm_bf16(false, true, M, N, K, 1.0f, a16.data(), K, b16.data(), K, 0.0f, C.data(), N);
                else gemm(false, true, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, C.data(), N);
                if (run == 0) first = C;
                else CHECK(std::memcmp(first.data(), C.data(), C.size() * sizeof(float)) == 0);
            }
        }
    }
}

TEST_CASE("gemm degenerate shapes: K == 0 gives beta·C, an empty C is left alone") {
    for (GemmEngine engine : engines()) {
        EngineScope scope(engine);
        INFO(gemm_engine_name(engine));
        std::vector<float> C{1, 2, 3, 4, 5, 6};
        gemm(false, false, 2, 3, 0, 1.0f, nullptr, 1, nullptr, 3, 0.5f, C.data(), 3);
        CHECK(C == std::vector<float>{0.5f, 1, 1.5f, 2, 2.5f, 3});
        std::vector<float> nan_c(6, std::numeric_limits<float>::quiet_NaN());
        gemm(false, false, 2, 3, 0, 1.0f, nullptr, 1, nullptr, 3, 0.0f, nan_c.data(), 3);
        CHECK(nan_c == std::vector<float>(6, 0.0f));
        gemm(false, false, 0, 3, 4, 1.0f, nullptr, 4, nullptr, 3, 0.0f, nullptr, 3);
        gemm(false, false, 2, 0, 4, 1.0f, nullptr, 4, nullptr, 1, 0.0f, nullptr, 1);
    }
}

TEST_CASE("gemm rejects impossible sizes and leading dimensions") {
    std::vector<float> A(64), B(64), C(64);
    CHECK_THROWS_AS(gemm(false, false, -1, 2, 2, 1.0f, A.data(), 2, B.data(), 2, 0.0f, C.data(), 2), Error);
    CHECK(error_of([&] { gemm(false, false, 4, 4, 8, 1.0f, A.data(), 7, B.data(), 4, 0.0f, C.data(), 4); })
              .find("lda = 7") != std::string::npos);
    // Transposed A is stored K×M, so its rows are M long.
    CHECK_THROWS_AS(gemm(true, false, 4, 4, 2, 1.0f, A.data(), 2, B.data(), 4, 0.0f, C.data(), 4), Error);
    CHECK_THROWS_AS(gemm(false, true, 4, 4, 8, 1.0f, A.data(), 8, B.data(), 4, 0.0f, C.data(), 4), Error);
    CHECK(error_of([&] { gemm(false, false, 2, 4, 2, 1.0f, A.data(), 2, B.data(), 4, 0.0f, C.data(), 3); })
              .find("ldc = 3") != std::string::npos);
    CHECK_THROWS_AS(gemm(false, false, 2, 2, 2, 1.0f, nullptr, 2, B.data(), 2, 0.0f, C.data(), 2), Error);
}

TEST_CASE("gemm engine selection") {
    const GemmEngine initial = gemm_engine();
    CHECK(initial == (gemm_has_onednn ? GemmEngine::onednn : GemmEngine::eigen));
    set_gemm_engine(GemmEngine::eigen);
    CHECK(gemm_engine() == GemmEngine::eigen);
    if (gemm_has_onednn) {
        set_gemm_engine(GemmEngine::onednn);
        CHECK(gemm_engine() == GemmEngine::onednn);
    } else {
        CHECK_THROWS_AS(set_gemm_engine(GemmEngine::onednn), Error);
    }
    set_gemm_engine(initial);
}

#ifdef HYVIDEO_HAS_ONEDNN
TEST_CASE("oneDNN primitives are created once per shape and reused") {
    EngineScope scope(GemmEngine::onednn);
    const auto A = random_values(37 * 41, 3), B = random_values(41 * 43, 4);
    std::vector<float> C(37 * 43);
    auto& cache = gemm_internal::matmul_cache();
    gemm(false, false, 37, 43, 41, 1.0f, A.data(), 41, B.data(), 43, 0.0f, C.data(), 43);
    const std::size_t after_first = cache.size();
    for (int i = 0; i < 3; ++i)
        gemm(false, false, 37, 43, 41, 1.0f, A.data(), 41, B.data(), 43, 0.0f, C.data(), 43);
    CHECK(cache.size() == after_first);
    gemm(false, false, 37, 43, 41, 2.0f, A.data(), 41, B.data(), 43, 0.0f, C.data(), 43);
    CHECK(cache.size() == std::min(after_first + 1, gemm_internal::MatmulCache::capacity));
}
#endif

namespace {

// Runs `calls` copies of one long-K product at once through `launch` and checks every result. A
// long K with a small M×N is the shape where oneDNN splits K between threads and keeps partial
// sums in scratch memory, which concurrent calls must not share.
template <class Launch>
void check_concurrent_calls(const std::vector<GemmEngine>& engine_list, int calls, Launch&& launch) {
    const Problem p{false, false, 64, 64, 8192, 0, 1.0f, 0.0f};
    const std::vector<float> C0(p.c_size(), 0.0f);
    for (bool bf16 : {false, true}) {
        auto A = random_values(p.a_size(), 11), B = random_values(p.b_size(), 12);
        if (bf16) {
            A = round_to_bf16(A);
            B = round_to_bf16(B);
        }
        const auto a16 = bf16_bits(A), b16 = bf16_bits(B);
        const Reference expected = reference_product(p, A, B, C0);
        for (GemmEngine engine : engine_list) {
            EngineScope scope(engine);
            INFO(gemm_engine_name(engine), bf16 ? " bf16" : " f32");
            std::vector<std::vector<float>> results(static_cast<std::size_t>(calls), std::vector<float>(p.c_size()));
            launch(calls, [&](int call) {
                float* C = results[static_cast<std::size_t>(call)].data();
                for (int repeat = 0; repeat < 5; ++repeat) {
                    if (bf16) gemm_bf16(false, false, p.M, p.N, p.K, 1.0f, a16.data(), p.K, b16.data(), p.N, 0.0f, C, p.N);
                    else gemm(false, false, p.M, p.N, p.K, 1.0f, A.data(), p.K, B.data(), p.N, 0.0f, C, p.N);
                }
            });
            for (const auto& C : results) CHECK(max_relative_error(p, expected, C0, C) < tolerance);
        }
    }
}

}  // namespace

TEST_CASE("gemm called from inside a parallel region runs serially and stays correct") {
    ThreadScope threads(2);
    std::atomic<bool> always_nested{true};
    check_concurrent_calls(engines(), 4, [&](int calls, const auto& body) {
        parallel_for(0, calls, [&](std::int64_t call) {
            if (!in_parallel_region()) always_nested = false;
            body(static_cast<int>(call));
        });
    });
    CHECK(always_nested.load() == (num_threads() > 1));  // no parallel region without OpenMP
}

#ifdef HYVIDEO_HAS_ONEDNN
// Eigen keeps no state between calls; oneDNN's scratch memory is what this guards. Sharing one
// scratchpad between the threads made this test fail in about half of its runs here: a race is not
// caught every time, but it cannot pass for long.
TEST_CASE("oneDNN gemm called from several threads at once stays correct") {
    check_concurrent_calls({GemmEngine::onednn}, 2, [](int calls, const auto& body) {
        std::vector<std::thread> workers;
        for (int call = 0; call < calls; ++call) workers.emplace_back(body, call);
        for (auto& w : workers) w.join();
    });
}
#endif

// ---- linear ------------------------------------------------------------------------------------------

namespace {

// y[..., o] = sum_i x[..., i]·w[o, i] + b[o] in double, on the values as the engine sees them.
std::vector<float> reference_linear(const Tensor& x, const Tensor& w, const Tensor& b, bool round_x_to_bf16) {
    auto xv = x.to_vector();
    if (round_x_to_bf16) xv = round_to_bf16(xv);
    const auto wv = w.to_vector();
    const std::int64_t in = w.size(1), out = w.size(0), rows = x.numel() / in;
    std::vector<float> y(static_cast<std::size_t>(rows * out));
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t o = 0; o < out; ++o) {
            double s = b.defined() ? b.item({o}) : 0.0;
            for (std::int64_t i = 0; i < in; ++i) s += double(xv[r * in + i]) * wv[o * in + i];
            y[r * out + o] = static_cast<float>(s);
        }
    return y;
}

Tensor random_tensor(Shape shape, std::uint32_t seed) {
    return Tensor::from_vector(shape, random_values(static_cast<std::size_t>(shape_numel(shape)), seed));
}

void check_close(const Tensor& y, const std::vector<float>& expected, double tol) {
    const auto got = y.to_vector();
    REQUIRE(got.size() == expected.size());
    double worst = 0;
    for (std::size_t i = 0; i < got.size(); ++i) worst = std::max(worst, double(std::abs(got[i] - expected[i])));
    CHECK(worst < tol);
}

}  // namespace

TEST_CASE("linear: 2-D and 3-D x, with and without bias, f32 / bf16 / f16 weights, both engines") {
    const Tensor w32 = random_tensor({13, 37}, 21);
    const Tensor bias = random_tensor({13}, 22);
    for (GemmEngine engine : engines()) {
        EngineScope scope(engine);
        for (const Shape& x_shape : {Shape{5, 37}, Shape{2, 3, 37}, Shape{37}}) {
            const Tensor x = random_tensor(x_shape, 23);
            for (DType wtype : {DType::f32, DType::bf16, DType::f16}) {
                const Tensor w = w32.to(wtype);
                for (bool with_bias : {false, true}) {
                    INFO(gemm_engine_name(engine), " x ", shape_str(x_shape), " weight ", dtype_name(wtype),
                         with_bias ? " with bias" : " without bias");
                    const Tensor b = with_bias ? bias : Tensor{};
                    const Tensor y = linear(x, w, b);
                    Shape y_shape = x_shape;
                    y_shape.back() = 13;
                    CHECK(y.shape() == y_shape);
                    CHECK(y.dtype() == DType::f32);
                    check_close(y, reference_linear(x, w, b, wtype == DType::bf16), 1e-5);
                }
            }
        }
    }
}

TEST_CASE("linear reads strided views: sliced and permuted x, transposed weight") {
    const Tensor wide = random_tensor({2, 4, 50}, 31);
    const Tensor w = random_tensor({9, 37}, 32);
    const Tensor bias = random_tensor({9}, 33);
    for (GemmEngine engine : engines()) {
        EngineScope scope(engine);
        INFO(gemm_engine_name(engine));
        // Row stride 50 for every row: read in place.
        const Tensor sliced = wide.slice(-1, 5, 42);
        check_close(linear(sliced, w, bias), reference_linear(sliced.contiguous(), w, bias, false), 1e-5);
        // Leading dims that do not collapse into one stride: copied first.
        const Tensor permuted = sliced.permute({1, 0, 2});
        check_close(linear(permuted, w, bias), reference_linear(permuted.contiguous(), w, bias, false), 1e-5);
        // A weight stored [in, out] and viewed as [out, in].
        const Tensor w_transposed_storage = w.transpose(0, 1).contiguous();
        const Tensor w_view = w_transposed_storage.transpose(0, 1);
        check_close(linear(sliced, w_view, bias), reference_linear(sliced.contiguous(), w, bias, false), 1e-5);
        check_close(linear(sliced, w_view.to(DType::bf16).transpose(0, 1).contiguous().transpose(0, 1), bias),
                    reference_linear(sliced.contiguous(), w.to(DType::bf16), bias, true), 1e-5);
    }
}

TEST_CASE("linear with empty dimensions") {
    const Tensor w = random_tensor({4, 3}, 41);
    const Tensor bias = random_tensor({4}, 42);
    CHECK(linear(Tensor::zeros({0, 3}), w, bias).shape() == Shape{0, 4});
    // in == 0: the product is empty and y is the bias alone.
    const Tensor y = linear(Tensor::zeros({2, 0}), Tensor::zeros({4, 0}), bias);
    const auto b = bias.to_vector();
    CHECK(y.to_vector() == std::vector<float>{b[0], b[1], b[2], b[3], b[0], b[1], b[2], b[3]});
}

TEST_CASE("linear rejects bad shapes and dtypes with the shapes in the message") {
    const Tensor x = random_tensor({2, 5}, 51);
    const Tensor w = random_tensor({3, 5}, 52);
    const std::string wrong_in = error_of([&] { linear(x, random_tensor({3, 6}, 53), Tensor{}); });
    CHECK(wrong_in.find("[out, 5]") != std::string::npos);
    CHECK(wrong_in.find("[3, 6]") != std::string::npos);
    const std::string wrong_bias = error_of([&] { linear(x, w, random_tensor({4}, 54)); });
    CHECK(wrong_bias.find("[3]") != std::string::npos);
    CHECK(wrong_bias.find("[4]") != std::string::npos);
    CHECK_THROWS_AS(linear(x, random_tensor({15}, 55), Tensor{}), Error);
    CHECK_THROWS_AS(linear(x.to(DType::bf16), w, Tensor{}), Error);
    CHECK_THROWS_AS(linear(x, w.to(DType::f8e4m3), Tensor{}), Error);
    CHECK_THROWS_AS(linear(x, w, Tensor::zeros({3}, DType::bf16)), Error);
    CHECK_THROWS_AS(linear(Tensor{}, w, Tensor{}), Error);
}
