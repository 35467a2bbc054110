// GEMM throughput of the two CPU engines, f32 and bf16 operands, side by side in one run, and the
// CPU's instruction peak they are bounded by.
//
//   bench_gemm [--threads N] [--runs N]
//
// The peak is the rate of independent AVX-512 FMAs (f32, 32 FLOP each) and, where the CPU has
// AVX512_BF16, VDPBF16PS (bf16 pairs into f32, 64 FLOP each) on every thread at once: no GEMM on this
// machine can beat it, so a GEMM's share of it says how much is left to gain.
//
// Each cell is the median of `runs` timed calls after one untimed warm-up call (which also creates
// and caches the oneDNN primitive), as GFLOP/s = 2·M·N·K / time, once over wall-clock time and once
// per core (over the CPU time of all threads). Shapes are M×N×K.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <immintrin.h>

#include "hyvideo/backend/cpu/gemm.hpp"
#include "hyvideo/core/dtype_convert.hpp"
#include "hyvideo/core/parallel.hpp"

namespace {

using hyvideo::cpu_detail::GemmEngine;

struct Shape {
    const char* name;
    std::int64_t M, N, K;
    bool weight_layout;  // B stored [N, K] (trans_b), as linear() multiplies by a weight
};

struct Operands {
    std::vector<float> a, b;
    std::vector<std::uint16_t> a_bf16, b_bf16;
    std::vector<float> c;
};

Operands make_operands(const Shape& s) {
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    Operands o;
    o.a.resize(static_cast<std::size_t>(s.M * s.K));
    o.b.resize(static_cast<std::size_t>(s.K * s.N));
    o.c.resize(static_cast<std::size_t>(s.M * s.N));
    for (auto& v : o.a) v = dist(rng);
    for (auto& v : o.b) v = dist(rng);
    o.a_bf16.resize(o.a.size());
    o.b_bf16.resize(o.b.size());
    hyvideo::convert_buffer(o.a.data(), hyvideo::DType::f32, o.a_bf16.data(), hyvideo::DType::bf16, o.a.size());
    hyvideo::convert_buffer(o.b.data(), hyvideo::DType::f32, o.b_bf16.data(), hyvideo::DType::bf16, o.b.size());
    return o;
}

void run_once(const Shape& s, Operands& o, bool bf16) {
    const std::int64_t ldb = s.weight_layout ? s.K : s.N;
    if (bf16)
        hyvideo::cpu_detail::gemm_bf16(false, s.weight_layout, s.M, s.N, s.K, 1.0f, o.a_bf16.data(), s.K,
                                       o.b_bf16.data(), ldb, 0.0f, o.c.data(), s.N);
    else
        hyvideo::cpu_detail::gemm(false, s.weight_layout, s.M, s.N, s.K, 1.0f, o.a.data(), s.K, o.b.data(), ldb,
                                  0.0f, o.c.data(), s.N);
}

double median(std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
}

// Two rates per cell: FLOPs over wall time, the figure a user waits for, and FLOPs over the CPU
// time of all threads, which stays meaningful on a machine shared with other work (a preempted
// thread accrues no CPU time) and is directly a per-core rate.
struct Rates {
    double wall_gflops, per_core_gflops;
    double wall_seconds, cpu_seconds;  // totals over the timed runs
};

Rates measure(const Shape& s, Operands& o, bool bf16, int runs) {
    run_once(s, o, bf16);  // warm-up: primitive creation, page faults, caches
    const double gflop = 2.0 * double(s.M) * double(s.N) * double(s.K) * 1e-9;
    std::vector<double> wall_rates, cpu_rates;
    Rates r{0, 0, 0, 0};
    for (int i = 0; i < runs; ++i) {
        const std::clock_t c0 = std::clock();
        const auto t0 = std::chrono::steady_clock::now();
        run_once(s, o, bf16);
        const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double cpu = double(std::clock() - c0) / CLOCKS_PER_SEC;
        wall_rates.push_back(gflop / wall);
        cpu_rates.push_back(gflop / cpu);
        r.wall_seconds += wall;
        r.cpu_seconds += cpu;
    }
    r.wall_gflops = median(wall_rates);
    r.per_core_gflops = median(cpu_rates);
    return r;
}

// `iters` rounds of 12 independent accumulations (enough to cover the FMA latency on every pipe).
__attribute__((target("avx512f"))) float fma_f32_loop(long iters) {
    __m512 acc[12];
    for (auto& a : acc) a = _mm512_setzero_ps();
    __m512 x = _mm512_set1_ps(1e-7f), y = _mm512_set1_ps(1e-7f);
    for (long i = 0; i < iters; ++i) {
        for (auto& a : acc) a = _mm512_fmadd_ps(x, y, a);
        asm volatile("" : "+v"(x));  // keeps the loop from being folded
    }
    float s = 0;
    for (auto& a : acc) s += _mm512_reduce_add_ps(a);
    return s;
}
__attribute__((target("avx512f,avx512bf16"))) float dpbf16_loop(long iters) {
    __m512 acc[12];
    for (auto& a : acc) a = _mm512_setzero_ps();
    __m512bh x = (__m512bh)_mm512_set1_epi16(0x3380), y = x;  // bf16 6e-8
    for (long i = 0; i < iters; ++i) {
        for (auto& a : acc) a = _mm512_dpbf16_ps(a, x, y);
        asm volatile("" : "+v"(x));
    }
    float s = 0;
    for (auto& a : acc) s += _mm512_reduce_add_ps(a);
    return s;
}

// GFLOP/s of `loop` on `threads` threads at once, the median of `runs`.
double peak(float (*loop)(long), double flop_per_round, int threads, int runs) {
    const long iters = 20'000'000;
    std::vector<double> rates;
    for (int r = 0; r < runs; ++r) {
        std::vector<std::thread> pool;
        std::vector<float> sink(static_cast<std::size_t>(threads));
        const auto t0 = std::chrono::steady_clock::now();
        for (int t = 0; t < threads; ++t)
            pool.emplace_back([&, t] { sink[static_cast<std::size_t>(t)] = loop(iters); });
        for (auto& t : pool) t.join();
        const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        rates.push_back(flop_per_round * double(iters) * threads / wall * 1e-9);
    }
    return median(rates);
}

}  // namespace

int main(int argc, char** argv) {
    int runs = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string_view flag = argv[i];
        if (flag == "--threads") hyvideo::set_num_threads(std::atoi(argv[i + 1]));
        else if (flag == "--runs") runs = std::max(1, std::atoi(argv[i + 1]));
        else {
            std::fprintf(stderr, "usage: %s [--threads N] [--runs N]\n", argv[0]);
            return 2;
        }
    }

    // NN: B stored [K, N]; NT: B stored [N, K], the layout of a linear layer's weight. The NN
    // DiT row shows what reading the weight transposed costs.
    const Shape shapes[] = {
        {"2048x2048x2048 NN", 2048, 2048, 2048, false},
        {"1024x3072x3072 NT", 1024, 3072, 3072, true},
        {"1024x3072x3072 NN", 1024, 3072, 3072, false},
        {"1024x12288x3072 NT", 1024, 12288, 3072, true},
    };
    std::vector<GemmEngine> engines;
    if (hyvideo::cpu_detail::gemm_has_onednn) engines.push_back(GemmEngine::onednn);
    engines.push_back(GemmEngine::eigen);

    std::vector<std::vector<Rates>> table;  // [shape][engine × {f32, bf16}]
    double wall = 0, cpu = 0;
    for (const Shape& s : shapes) {
        Operands o = make_operands(s);
        auto& row = table.emplace_back();
        for (GemmEngine e : engines) {
            hyvideo::cpu_detail::set_gemm_engine(e);
            for (bool bf16 : {false, true}) {
                row.push_back(measure(s, o, bf16, runs));
                wall += row.back().wall_seconds;
                cpu += row.back().cpu_seconds;
            }
        }
    }

    auto print_table = [&](const char* title, double Rates::*rate) {
        std::printf("%s\n\n| %-20s |", title, "M x N x K");
        for (GemmEngine e : engines)
            for (const char* type : {"f32", "bf16"})
                std::printf(" %6s %-4s |", std::string(hyvideo::cpu_detail::gemm_engine_name(e)).c_str(), type);
        std::printf("\n|%s|", std::string(22, '-').c_str());
        for (std::size_t i = 0; i < engines.size() * 2; ++i) std::printf("%s:|", std::string(12, '-').c_str());
        std::printf("\n");
        for (std::size_t i = 0; i < table.size(); ++i) {
            std::printf("| %-20s |", shapes[i].name);
            for (const Rates& r : table[i]) std::printf(" %11.0f |", r.*rate);
            std::printf("\n");
        }
        std::printf("\n");
    };
    std::printf("GEMM, %d threads, median of %d runs after a warm-up\n\n", hyvideo::num_threads(), runs);
    print_table("GFLOP/s (wall clock)", &Rates::wall_gflops);
    print_table("GFLOP/s per core (FLOPs / CPU time of all threads)", &Rates::per_core_gflops);
    // Below 100% other processes had turns on our cores: the wall-clock figures are low by at least
    // as much, while the per-core figures hold.
    std::printf("CPU share: the timed runs used %.0f%% of %d cores' wall time\n",
                100.0 * cpu / (wall * hyvideo::num_threads()), hyvideo::num_threads());

    if (__builtin_cpu_supports("avx512f")) {
        const int n = hyvideo::num_threads();
        std::printf("\nInstruction peak on %d threads (median of %d): AVX-512 FMA f32 %.0f GFLOP/s", n, runs,
                    peak(fma_f32_loop, 12 * 32.0, n, runs));
        if (__builtin_cpu_supports("avx512bf16"))
            std::printf(", VDPBF16PS bf16 %.0f GFLOP/s", peak(dpbf16_loop, 12 * 64.0, n, runs));
        std::printf("\n");
    }
}
