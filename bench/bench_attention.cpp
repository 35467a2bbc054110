// Attention throughput of the CPU kernels at the width of a real DiT block (24 heads of 128), side by
// side in one run with the GEMM-based alternative.
//
//   bench_attention [--threads N] [--runs N]
//
// q, k, v are slices of one fused [1, S, 3, 24, 128] projection, as the DiT produces them; S = 1024
// is 768 image tokens and 256 text tokens. Each figure is the median of `runs` calls after one
// warm-up call. GFLOP/s counts 4·D·H FLOPs per allowed (query, key) pair, i.e. 4·S²·D·H for the full
// mask and only the work a mask leaves for the others. "per core" divides by the CPU time of all
// threads instead of the wall time: on a machine shared with other work it is the stable figure.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "hyvideo/backend/attention_mask.hpp"
#include "hyvideo/backend/cpu/attention.hpp"
#include "hyvideo/backend/cpu/gemm.hpp"
#include "hyvideo/core/parallel.hpp"

namespace {

using hyvideo::AttentionMask;
using hyvideo::Tensor;
using hyvideo::cpu_detail::AttentionKernel;

constexpr std::int64_t kHeads = 24, kHeadDim = 128;

struct Problem {
    std::string name;
    std::int64_t seq;
    AttentionMask mask;
};

struct Qkv {
    Tensor fused, q, k, v;
};

Qkv make_qkv(std::int64_t seq) {
    Qkv t;
    t.fused = Tensor::empty({1, seq, 3, kHeads, kHeadDim});
    std::mt19937 rng(42);
    std::normal_distribution<float> dist;
    for (float& x : t.fused.span<float>()) x = dist(rng);
    t.q = t.fused.select(2, 0);
    t.k = t.fused.select(2, 1);
    t.v = t.fused.select(2, 2);
    return t;
}

double allowed_pairs(const AttentionMask& mask, std::int64_t seq) {
    double pairs = 0;
    for (const hyvideo::QueryRun& run : mask.runs(0, seq)) {
        std::int64_t keys = run.keys.size();
        if (run.filtered) keys = std::count(mask.key_filter(0) + run.keys.begin, mask.key_filter(0) + run.keys.end, 1);
        pairs += double(run.end - run.begin) * double(keys);
    }
    return pairs;
}

double cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

struct Timing {
    double wall, cpu;  // medians, seconds per call
};

Timing median_timing(const std::function<void()>& call, int runs) {
    call();  // warm-up: page faults of the output, caches
    std::vector<double> wall, cpu;
    for (int r = 0; r < runs; ++r) {
        const double c0 = cpu_seconds();
        const auto t0 = std::chrono::steady_clock::now();
        call();
        wall.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        cpu.push_back(cpu_seconds() - c0);
    }
    std::sort(wall.begin(), wall.end());
    std::sort(cpu.begin(), cpu.end());
    return {wall[static_cast<std::size_t>(runs / 2)], cpu[static_cast<std::size_t>(runs / 2)]};
}

// The alternative to the fused kernels: the two tile products of a flash attention (128 queries ×
// 256 keys, oneDNN's best tile here) through the library GEMM, one single-threaded call per
// product inside the parallel loop, and the softmax left out. Its time is a lower bound for a
// GEMM-based flash attention; its output is not attention.
void gemm_tile_products(const Qkv& t, Tensor& out, float scale) {
    constexpr std::int64_t Mq = 128, Nk = 256;
    const std::int64_t S = t.q.size(1), D = kHeadDim, q_tiles = (S + Mq - 1) / Mq;
    const float* q = t.q.data<const float>();
    const float* k = t.k.data<const float>();
    const float* v = t.v.data<const float>();
    const std::int64_t qs = t.q.stride(1), ks = t.k.stride(1), vs = t.v.stride(1);
    float* o = out.data<float>();
    hyvideo::parallel_for_chunks(0, kHeads * q_tiles, 1, [&](std::int64_t lo, std::int64_t hi) {
        std::vector<float> scores(static_cast<std::size_t>(Mq * Nk));
        for (std::int64_t w = lo; w < hi; ++w) {
            const std::int64_t h = w / q_tiles, q0 = (w % q_tiles) * Mq, m = std::min(Mq, S - q0);
            float* o_tile = o + (q0 * kHeads + h) * D;
            for (std::int64_t i = 0; i < m; ++i) std::fill_n(o_tile + i * kHeads * D, D, 0.0f);
            for (std::int64_t j0 = 0; j0 < S; j0 += Nk) {
                const std::int64_t n = std::min(Nk, S - j0);
                hyvideo::cpu_detail::gemm(false, true, m, n, D, scale, q + q0 * qs + h * D, qs, k + j0 * ks + h * D,
                                          ks, 0.0f, scores.data(), Nk);
                hyvideo::cpu_detail::gemm(false, false, m, D, n, 1.0f, scores.data(), Nk, v + j0 * vs + h * D, vs,
                                          1.0f, o_tile, kHeads * D);
            }
        }
    });
}

void print_row(const std::string& problem, const std::string& method, const Timing& t, double flops) {
    std::printf("| %-26s | %-30s | %9.1f | %8.0f | %8.0f |\n", problem.c_str(), method.c_str(), t.wall * 1e3,
                flops / t.wall * 1e-9, flops / t.cpu * 1e-9);
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    int runs = 5;
    hyvideo::set_num_threads(2);
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string_view flag = argv[i];
        if (flag == "--threads") hyvideo::set_num_threads(std::atoi(argv[i + 1]));
        else if (flag == "--runs") runs = std::max(1, std::atoi(argv[i + 1]));
        else {
            std::fprintf(stderr, "usage: %s [--threads N] [--runs N]\n", argv[0]);
            return 2;
        }
    }

    const Problem problems[] = {
        {"S=1024 (768+256) full", 1024, AttentionMask::full()},
        {"S=1024 segments, 77 text", 1024, AttentionMask::segments({768 + 77})},
        {"S=4096 full", 4096, AttentionMask::full()},
    };
    std::vector<AttentionKernel> kernels;
    for (auto k : {AttentionKernel::avx512, AttentionKernel::avx2, AttentionKernel::portable})
        if (hyvideo::cpu_detail::attention_kernel_supported(k)) kernels.push_back(k);
    const float scale = 1.0f / std::sqrt(float(kHeadDim));

    std::printf("Attention, H = %lld, D = %lld, q/k/v sliced from a fused projection, %d threads, median of %d runs\n\n",
                static_cast<long long>(kHeads), static_cast<long long>(kHeadDim), hyvideo::num_threads(), runs);
    std::printf("| %-26s | %-30s | %9s | %8s | %8s |\n", "problem", "method", "ms", "GFLOP/s", "per core");
    std::printf("|%s|%s|%s|%s|%s|\n", std::string(28, '-').c_str(), std::string(32, '-').c_str(),
                std::string(11, '-').c_str(), std::string(10, '-').c_str(), std::string(10, '-').c_str());

    for (const Problem& p : problems) {
        const Qkv t = make_qkv(p.seq);
        const double flops = 4.0 * double(kHeadDim) * double(kHeads) * allowed_pairs(p.mask, p.seq);
        for (AttentionKernel k : kernels) {
            hyvideo::cpu_detail::set_attention_kernel(k);
            const Timing timing = median_timing(
                [&] { (void)hyvideo::cpu_detail::attention(t.q, t.k, t.v, p.mask, scale); }, runs);
            print_row(p.name, "flash, " + std::string(hyvideo::cpu_detail::attention_kernel_name(k)), timing, flops);
        }
        if (p.mask.kind() == AttentionMask::Kind::full) {
            Tensor out = Tensor::empty(t.q.shape());
            const Timing timing = median_timing([&] { gemm_tile_products(t, out, scale); }, runs);
            print_row(p.name, std::string("GEMM tiles, ") +
                                  std::string(hyvideo::cpu_detail::gemm_engine_name(hyvideo::cpu_detail::gemm_engine())) +
                                  ", no softmax",
                      timing, flops);
        }
    }
}
