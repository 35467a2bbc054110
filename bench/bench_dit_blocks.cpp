// One real-width MMDoubleStreamBlock and one MMSingleStreamBlock (hidden 3072, 24 heads, 768 image
// + 256 text tokens, batch 1), in f32 and in bf16 compute: time, GFLOP/s and peak memory.
// Compare with bench/bench_dit_blocks_torch.py, the same blocks in PyTorch.
//
//   build/bin/bench_dit_blocks [--threads N] [--runs N] [--block double|single] [--mode f32|bf16]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/core/parallel.hpp"
#include "hyvideo/models/single_stream_block.hpp"
#include "hyvideo/nn/init.hpp"
#include "peak_memory.hpp"
#include "timing.hpp"

using namespace hyvideo;

namespace {

constexpr std::int64_t kHidden = 3072, kHeads = 24, kImg = 768, kTxt = 256, kMlp = 4 * kHidden;

Tensor random_tensor(const Shape& shape, std::uint64_t seed) {
    Tensor t = Tensor::empty(shape);
    for (std::int64_t i = 0; i < t.numel(); ++i)
        t.data<float>()[i] = detail::uniform_pm1(detail::splitmix64(seed * 0x100000001b3ull + static_cast<std::uint64_t>(i)));
    return t;
}

// Multiply-adds of the products (×2 for FLOPs): the linears of each stream and the attention's
// QKᵀ and PV over the joint sequence.
double double_block_flops() {
    const double S = kImg + kTxt, C = kHidden;
    const double linears = S * (C * 3 * C + C * C + 2 * C * kMlp) + 2 * 6 * C * C;
    return 2.0 * (linears + 2.0 * S * S * C);
}
double single_block_flops() {
    const double S = kImg + kTxt, C = kHidden;
    const double linears = S * (C * (3 * C + kMlp) + (C + kMlp) * C) + 3 * C * C;
    return 2.0 * (linears + 2.0 * S * S * C);
}

BlockContext context() {
    BlockContext ctx;
    ctx.vec = random_tensor({1, kHidden}, 11);
    ctx.rope = rope3d_tables({16, 56, 56}, {3, 16, 16});  // 768 image tokens
    ctx.layout = {kImg, {kImg + 200}};                     // 200 of the 256 text tokens valid
    return ctx;
}

}  // namespace

int main(int argc, char** argv) {
    int threads = 2, runs = 5;
    std::string only_block, only_mode;  // for profiling one case: --block double|single, --mode f32|bf16
    for (int i = 1; i + 1 < argc; ++i) {
        if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--runs")) runs = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--block")) only_block = argv[++i];
        else if (!std::strcmp(argv[i], "--mode")) only_mode = argv[++i];
    }
    set_num_threads(threads);
    std::printf("DiT blocks: hidden %ld, %ld heads, %ld image + %ld text tokens, batch 1, %d threads, median of %d\n",
                static_cast<long>(kHidden), static_cast<long>(kHeads), static_cast<long>(kImg),
                static_cast<long>(kTxt), threads, runs);
    std::printf("%-8s %-6s %10s %10s %14s\n", "block", "mode", "time [s]", "GFLOP/s", "peak RSS [MiB]");

    const BlockContext ctx = context();
    const Tensor img = random_tensor({1, kImg, kHidden}, 1), txt = random_tensor({1, kTxt, kHidden}, 2);
    const Tensor x = random_tensor({1, kImg + kTxt, kHidden}, 3);
    for (const DType mode : {DType::f32, DType::bf16}) {
        const char* name = mode == DType::f32 ? "f32" : "bf16";
        if (!only_mode.empty() && only_mode != name) continue;
        if (only_block.empty() || only_block == "double") {
            MMDoubleStreamBlock<cpu> block(kHidden, kHeads, 4.0);
            init_weights(block, 1);
            set_matmul_dtype(block, mode);
            bench::reset_peak_rss();
            const double s = bench::median_seconds(runs, [&] { block.forward(img, txt, ctx); });
            std::printf("%-8s %-6s %10.3f %10.1f %14.0f\n", "double", name, s, double_block_flops() / s / 1e9,
                        bench::peak_rss_mib());
        }
        if (only_block.empty() || only_block == "single") {
            MMSingleStreamBlock<cpu> block(kHidden, kHeads, 4.0);
            init_weights(block, 2);
            set_matmul_dtype(block, mode);
            bench::reset_peak_rss();
            const double s = bench::median_seconds(runs, [&] { block.forward(x, ctx); });
            std::printf("%-8s %-6s %10.3f %10.1f %14.0f\n", "single", name, s, single_block_flops() / s / 1e9,
                        bench::peak_rss_mib());
        }
    }
    return 0;
}
