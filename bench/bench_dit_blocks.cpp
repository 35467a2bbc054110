// One real-width MMDoubleStreamBlock and one MMSingleStreamBlock (hidden 3072, 24 heads, batch 1), in f32
// and in bf16 compute: time, GFLOP/s and peak memory. bench/bench_dit_blocks_torch.py is the same pair of
// blocks in PyTorch and takes the same flags, so a script compares the two in one run
// (bench/compare_dit_blocks.py).
//
//   build/bin/bench_dit_blocks [--img-tokens N] [--txt-tokens M] [--mode f32|bf16] [--block double|single]
//                              [--attention f32|bf16] [--runs R] [--threads T] [--json]
//
// --img-tokens N: image tokens (768 default; 2304 is 256x256x33), laid out as the T x H x W token grid
//   the RoPE tables need (the smallest T for which N / T is a square; 2304 -> 9 x 16 x 16).
// --txt-tokens M: text tokens (256 default), of which 25/32 are valid (200 of 256), the rest padding.
// --attention: the attention's operands (BlockContext::attention_operands); by default the mode's, as the
//   model sets them (bf16 mode: bf16 operands). `--mode bf16 --attention f32` is the bf16 mode before the
//   bf16 attention kernel, for a side-by-side measure.
// --json: one JSON line per result instead of the table:
//   {"impl":"hyvideo","block":..,"mode":..,"attention":..,"img_tokens":..,"txt_tokens":..,"threads":..,
//    "seconds":..,"gflops":..,"peak_rss_mib":..}
#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/core/parallel.hpp"
#include "hyvideo/models/single_stream_block.hpp"
#include "hyvideo/nn/init.hpp"
#include "peak_memory.hpp"
#include "timing.hpp"

using namespace hyvideo;

namespace {

constexpr std::int64_t kHidden = 3072, kHeads = 24, kMlp = 4 * kHidden;

// Valid text tokens of `txt`: 200 of 256, as the released prompts' typical share, the rest padding.
std::int64_t valid_text(std::int64_t txt) { return std::max<std::int64_t>(1, txt * 200 / 256); }

Tensor random_tensor(const Shape& shape, std::uint64_t seed) {
    Tensor t = Tensor::empty(shape);
    for (std::int64_t i = 0; i < t.numel(); ++i)
        t.data<float>()[i] = detail::uniform_pm1(detail::splitmix64(seed * 0x100000001b3ull + static_cast<std::uint64_t>(i)));
    return t;
}

// Multiply-adds of the products (×2 for FLOPs): the linears of each stream and the attention's
// QKᵀ and PV over the joint sequence.
double double_block_flops(std::int64_t img, std::int64_t txt) {
    const double S = static_cast<double>(img + txt), C = kHidden;
    const double linears = S * (C * 3 * C + C * C + 2 * C * kMlp) + 2 * 6 * C * C;
    return 2.0 * (linears + 2.0 * S * S * C);
}
double single_block_flops(std::int64_t img, std::int64_t txt) {
    const double S = static_cast<double>(img + txt), C = kHidden;
    const double linears = S * (C * (3 * C + kMlp) + (C + kMlp) * C) + 3 * C * C;
    return 2.0 * (linears + 2.0 * S * S * C);
}

// The T x H x W token grid of `img` image tokens: the smallest T for which img / T is a square.
std::array<std::int64_t, 3> token_grid(std::int64_t img) {
    for (std::int64_t t = 1; t <= img; ++t) {
        if (img % t) continue;
        const auto side = static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(img / t))));
        if (side * side == img / t) return {t, side, side};
    }
    return {img, 1, 1};  // not reached: T = img leaves 1, a square
}

BlockContext context(std::int64_t img, std::int64_t txt) {
    const auto g = token_grid(img);
    BlockContext ctx;
    ctx.vec = random_tensor({1, kHidden}, 11);
    ctx.rope = rope3d_tables({16, 56, 56}, {g[0], g[1], g[2]});
    ctx.layout = {img, {img + valid_text(txt)}};  // the padding of the text tokens masked, as in the model
    return ctx;
}

struct Args {
    std::int64_t img = 768, txt = 256;
    int runs = 5, threads = 2;
    std::string block, mode;  // empty: both
    std::string attention;    // empty: the mode's
    bool json = false;
};

[[noreturn]] void usage_error(const std::string& what) {
    std::fprintf(stderr, "bench_dit_blocks: %s\n", what.c_str());
    std::exit(1);
}

std::int64_t count_arg(const char* flag, const char* text, std::int64_t lo, std::int64_t hi) {
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi)
        usage_error(std::string(flag) + " '" + text + "': must be an integer in " + std::to_string(lo) + ".." +
                    std::to_string(hi));
    return v;
}

Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string f = argv[i];
        if (f == "--json") {
            a.json = true;
            continue;
        }
        if (i + 1 >= argc) usage_error("unknown flag or missing value: " + f);
        const char* v = argv[++i];
        if (f == "--img-tokens") a.img = count_arg("--img-tokens", v, 1, 1 << 20);
        else if (f == "--txt-tokens") a.txt = count_arg("--txt-tokens", v, 1, 1 << 16);
        else if (f == "--runs") a.runs = static_cast<int>(count_arg("--runs", v, 1, 1000));
        else if (f == "--threads") a.threads = static_cast<int>(count_arg("--threads", v, 1, 1024));
        else if (f == "--block" && (std::string(v) == "double" || std::string(v) == "single")) a.block = v;
        else if (f == "--mode" && (std::string(v) == "f32" || std::string(v) == "bf16")) a.mode = v;
        else if (f == "--attention" && (std::string(v) == "f32" || std::string(v) == "bf16")) a.attention = v;
        else if (f == "--block") usage_error(f + " '" + v + "': must be double or single");
        else if (f == "--mode" || f == "--attention") usage_error(f + " '" + v + "': must be f32 or bf16");
        else usage_error("unknown flag: " + f);
    }
    return a;
}

void report(const Args& a, const char* block, const char* mode, const char* attention, double seconds, double flops,
            double peak_mib) {
    if (a.json)
        std::printf("{\"impl\":\"hyvideo\",\"block\":\"%s\",\"mode\":\"%s\",\"attention\":\"%s\",\"img_tokens\":%lld,"
                    "\"txt_tokens\":%lld,\"threads\":%d,\"seconds\":%.6f,\"gflops\":%.1f,\"peak_rss_mib\":%.0f}\n",
                    block, mode, attention, static_cast<long long>(a.img), static_cast<long long>(a.txt), a.threads,
                    seconds, flops / seconds / 1e9, peak_mib);
    else
        std::printf("%-8s %-6s %-9s %10.3f %10.1f %14.0f\n", block, mode, attention, seconds, flops / seconds / 1e9,
                    peak_mib);
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    const Args a = parse(argc, argv);
    set_num_threads(a.threads);
    if (!a.json) {
        const auto g = token_grid(a.img);
        std::printf("DiT blocks: hidden %ld, %ld heads, %lld image tokens (%lldx%lldx%lld) + %lld text tokens (%lld valid), "
                    "batch 1, %d threads, median of %d\n",
                    static_cast<long>(kHidden), static_cast<long>(kHeads), static_cast<long long>(a.img),
                    static_cast<long long>(g[0]), static_cast<long long>(g[1]), static_cast<long long>(g[2]),
                    static_cast<long long>(a.txt), static_cast<long long>(valid_text(a.txt)), a.threads, a.runs);
        std::printf("%-8s %-6s %-9s %10s %10s %14s\n", "block", "mode", "attention", "time [s]", "GFLOP/s",
                    "peak RSS [MiB]");
    }

    BlockContext ctx = context(a.img, a.txt);
    const Tensor img = random_tensor({1, a.img, kHidden}, 1), txt = random_tensor({1, a.txt, kHidden}, 2);
    const Tensor x = random_tensor({1, a.img + a.txt, kHidden}, 3);
    for (const DType mode : {DType::f32, DType::bf16}) {
        const char* name = mode == DType::f32 ? "f32" : "bf16";
        if (!a.mode.empty() && a.mode != name) continue;
        const char* attention = a.attention.empty() ? name : a.attention.c_str();
        ctx.attention_operands = std::string(attention) == "bf16" ? DType::bf16 : DType::f32;
        if (a.block.empty() || a.block == "double") {
            MMDoubleStreamBlock<cpu> block(kHidden, kHeads, 4.0);
            init_weights(block, 1);
            set_matmul_dtype(block, mode);
            bench::reset_peak_rss();
            const double s = bench::median_seconds(a.runs, [&] { block.forward(img, txt, ctx); });
            report(a, "double", name, attention, s, double_block_flops(a.img, a.txt), bench::peak_rss_mib());
        }
        if (a.block.empty() || a.block == "single") {
            MMSingleStreamBlock<cpu> block(kHidden, kHeads, 4.0);
            init_weights(block, 2);
            set_matmul_dtype(block, mode);
            bench::reset_peak_rss();
            const double s = bench::median_seconds(a.runs, [&] { block.forward(x, ctx); });
            report(a, "single", name, attention, s, single_block_flops(a.img, a.txt), bench::peak_rss_mib());
        }
    }
    return 0;
}
