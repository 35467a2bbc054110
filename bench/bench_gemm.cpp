// GEMM throughput of the two CPU engines, f32 and bf16 operands, side by side in one run.
//
//   bench_gemm [--threads N] [--runs N]
//
// Each cell is the median of `runs` timed calls after one untimed warm-up call (which also creates
// and caches the oneDNN primitive), reported as GFLOP/s = 2·M·N·K / time. Shapes are M×N×K.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <vector>

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

// Wall and process CPU time of all timed runs: on a shared machine their ratio shows how much of
// the cores the benchmark actually had.
struct TimeSpent {
    double wall = 0, cpu = 0;
};

double median_gflops(const Shape& s, Operands& o, bool bf16, int runs, TimeSpent& spent) {
    run_once(s, o, bf16);  // warm-up: primitive creation, page faults, caches
    std::vector<double> seconds;
    for (int r = 0; r < runs; ++r) {
        const std::clock_t c0 = std::clock();
        const auto t0 = std::chrono::steady_clock::now();
        run_once(s, o, bf16);
        seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        spent.cpu += double(std::clock() - c0) / CLOCKS_PER_SEC;
        spent.wall += seconds.back();
    }
    std::nth_element(seconds.begin(), seconds.begin() + runs / 2, seconds.end());
    return 2.0 * double(s.M) * double(s.N) * double(s.K) / seconds[static_cast<std::size_t>(runs / 2)] * 1e-9;
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

    std::printf("GEMM GFLOP/s, M x N x K, %d threads, median of %d runs after a warm-up\n\n",
                hyvideo::num_threads(), runs);
    std::printf("| %-24s |", "shape");
    for (GemmEngine e : engines)
        for (const char* type : {"f32", "bf16"})
            std::printf(" %6s %-4s |", std::string(hyvideo::cpu_detail::gemm_engine_name(e)).c_str(), type);
    std::printf("\n|%s|", std::string(26, '-').c_str());
    for (std::size_t i = 0; i < engines.size() * 2; ++i) std::printf("%s|", std::string(13, '-').c_str());
    std::printf("\n");

    TimeSpent spent;
    for (const Shape& s : shapes) {
        Operands o = make_operands(s);
        std::printf("| %-24s |", s.name);
        std::fflush(stdout);
        for (GemmEngine e : engines) {
            hyvideo::cpu_detail::set_gemm_engine(e);
            for (bool bf16 : {false, true}) {
                std::printf(" %11.0f |", median_gflops(s, o, bf16, runs, spent));
                std::fflush(stdout);
            }
        }
        std::printf("\n");
    }
    // Below 100% other processes took turns on our cores and the figures are low by about as much
    // (OpenMP threads spin at barriers, so contention can cost more than its share).
    std::printf("\nCPU share: the timed runs used %.0f%% of %d cores' wall time\n",
                100.0 * spent.cpu / (spent.wall * hyvideo::num_threads()), hyvideo::num_threads());
}
