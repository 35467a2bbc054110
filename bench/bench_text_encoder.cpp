// The two text encoders at their real width, in f32 and in bf16 compute: time per layer, time per
// encode and memory. Compare with bench/bench_text_encoder_torch.py, the same models in PyTorch.
//
//   bench_text_encoder --llm DIR [--threads 2] [--runs 3] [--layer-runs 5] [--clip-runs 20]
//                      [--mode f32|bf16] [--skip-llm] [--skip-clip] [--parts] [--tokens-out FILE]
//
// LLM: HunyuanVideo's text_encoder, llava-llama-3-8b's Llama (hidden 4096, 32 layers of which 30 run,
// hidden_state_skip_layer 2), from DIR: an HF folder as released (config.json, safetensors shards and
// their index; bench/make_random_llama.py writes one with random bf16 weights). It is opened with
// open_text_encoder and loaded with LlamaModel::load_streamed, as the pipeline does: the layers stay in
// the mapped files and each is read (f32: converted) when the forward reaches it. One real prompt goes
// through the dit-llm-encode-video template and the Llama 3 tokenizer to max_length 351
// (LLMTextEncoder::tokenize), and LLMTextEncoder::encode runs on it. Figures:
//   encode         median over --runs encodes (after one untimed warm-up that also warms the page
//                  cache), the whole of LLMTextEncoder::encode;
//   layer (stream) median over every layer of those encodes, from the timestamps of the `observe`
//                  callback: what one layer costs inside encode, its weights' streaming included;
//   layer (held)   one layer whose weights were loaded beforehand (load_weights), median of
//                  --layer-runs forwards: the compute alone, what PyTorch's per-layer time measures;
//   stream-in      load_weights of one layer (bf16: views of the mapping; f32: converted copies).
// Memory: a thread reads /proc/self/status every millisecond during the first encode of the process
// (the untimed warm-up) and during one more encode after the timed ones, and reports the peak of
// RssAnon (the process's anonymous memory: activations, converted weights, the host allocator's cache)
// and its growth over the value before that encode; RssFile after it (the mapped shards' pages the
// encode touched: page cache, shared with the kernel, costing no anonymous memory and dropped under
// pressure); and VmHWM (the high-water mark of both together, reset before the encode).
// Every time is printed with the CPU time other processes used meanwhile (/proc/stat minus this
// process), in cores: the machine is shared, and a figure taken beside a build says little.
// --parts times the pieces of one held layer one by one (each linear, attention, norms, RoPE,
// elementwise), then the seven products alone through cpu_detail::gemm with their operands prepared,
// gate_proj's product with its weight in the mapping or copied to anonymous memory, with more rows and
// on Eigen, and the per-call bf16 conversion of x; in f32, the stream-in of one layer split into the
// bf16 -> f32 conversion and the page faults of fresh buffers (4 KiB and huge pages); in bf16, what
// mapping one layer's pages costs: where the time goes.
//
// CLIP: CLIP-L's text tower (hidden 768, 12 layers, 12 heads, MLP 3072) with deterministic random
// weights in memory (init_weights), the same prompt through the CLIP tokenizer to 77 tokens;
// CLIPTextEncoder::encode median of --clip-runs and one layer median of --clip-runs.
//
// --tokens-out FILE writes the token ids and masks as JSON for the PyTorch script, so that both run
// the same tokens.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/core/parallel.hpp"
#include "hyvideo/nn/init.hpp"
#include "hyvideo/text/clip_tokenizer.hpp"
#include "hyvideo/text/llama_tokenizer.hpp"
#include "hyvideo/text_encoder/clip_text_encoder.hpp"
#include "hyvideo/text_encoder/encoder_files.hpp"
#include "hyvideo/text_encoder/llm_text_encoder.hpp"
#include "peak_memory.hpp"
#include "timing.hpp"

using namespace hyvideo;
namespace fs = std::filesystem;

namespace {

// A HunyuanVideo-style prompt: one dense paragraph, as the official prompt rewriter produces them.
constexpr const char* kPrompt =
    "A golden retriever puppy runs across a sunlit meadow full of wildflowers in late afternoon, its "
    "ears flopping and tongue out, chasing a red ball that bounces through the tall grass. The camera "
    "tracks alongside at ground level in a smooth dolly shot, shallow depth of field keeping the puppy "
    "sharp against a soft bokeh of yellow and purple blossoms. Warm backlight rims its fur with a "
    "glowing halo, dust and pollen drift in the air, and distant oak trees sway gently in the breeze. "
    "Cinematic, photorealistic, 35mm film look, natural colors, high detail.";

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

double mib(std::int64_t kib) { return static_cast<double>(kib) / 1024.0; }

// How busy the machine was with other work while a measurement ran: the CPU time every process spent
// (/proc/stat) minus this process's own (/proc/self/stat), per second of wall time, in cores. The
// machine has 2 cores and is shared with other builds; a figure taken beside one is not comparable.
class OtherLoad {
public:
    OtherLoad() : wall_(Clock::now()), busy_(machine_ticks()), self_(self_ticks()) {}
    double cores() const {
        const double wall = seconds_since(wall_);
        const double ticks = static_cast<double>((machine_ticks() - busy_) - (self_ticks() - self_));
        return wall > 0 ? ticks / static_cast<double>(::sysconf(_SC_CLK_TCK)) / wall : 0.0;
    }

private:
    static std::int64_t machine_ticks() {  // user nice system idle iowait irq softirq steal: all but idle, iowait
        std::ifstream f("/proc/stat");
        std::string cpu;
        std::int64_t v[8] = {};
        f >> cpu;
        for (auto& x : v) f >> x;
        return v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    }
    static std::int64_t self_ticks() {  // utime + stime, fields 14 and 15, after the ")" of the name
        std::ifstream f("/proc/self/stat");
        std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        std::istringstream rest(all.substr(all.rfind(')') + 2));
        std::string field;
        std::int64_t utime = 0, stime = 0;
        for (int i = 3; i <= 15; ++i) {
            rest >> field;
            if (i == 14) utime = std::stoll(field);
            if (i == 15) stime = std::stoll(field);
        }
        return utime + stime;
    }
    Clock::time_point wall_;
    std::int64_t busy_, self_;
};

// Samples RssAnon every millisecond while it lives; peak() is the largest value seen.
class AnonSampler {
public:
    AnonSampler() : peak_(bench::status_kib("RssAnon")), thread_([this] { loop(); }) {}
    ~AnonSampler() { stop(); }
    std::int64_t stop() {
        if (thread_.joinable()) {
            done_ = true;
            thread_.join();
        }
        return peak_;
    }

private:
    void loop() {
        while (!done_) {
            peak_ = std::max(peak_.load(), bench::status_kib("RssAnon"));
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        peak_ = std::max(peak_.load(), bench::status_kib("RssAnon"));
    }
    std::atomic<std::int64_t> peak_;
    std::atomic<bool> done_{false};
    std::thread thread_;
};

struct Options {
    fs::path llm, assets = fs::path(HYVIDEO_SOURCE_DIR) / "assets" / "tokenizers", tokens_out;
    int threads = 2, runs = 3, layer_runs = 5, clip_runs = 20;
    std::string mode;  // "" = both
    bool skip_llm = false, skip_clip = false, parts = false;
};

const char* mode_name(DType d) { return d == DType::f32 ? "f32" : "bf16"; }

nlohmann::json tokens_json(const TokenBatch& t) {
    const auto ids = t.input_ids.contiguous(), mask = t.attention_mask.contiguous();
    const auto* i = ids.data<const std::int64_t>();
    const auto* m = mask.data<const std::int64_t>();
    return {{"input_ids", std::vector<std::int64_t>(i, i + ids.numel())},
            {"attention_mask", std::vector<std::int64_t>(m, m + mask.numel())}};
}

std::int64_t valid_tokens(const TokenBatch& t) {
    const auto mask = t.attention_mask.contiguous();
    std::int64_t n = 0;
    for (std::int64_t i = 0; i < mask.numel(); ++i) n += mask.data<const std::int64_t>()[i];
    return n;
}

// ---- the pieces of one Llama layer -------------------------------------------------------------------

// y = x·wᵀ through the library GEMM with the operands prepared beforehand (x already bf16 for bf16
// weights): the product alone, without linear()'s conversion of x and allocation of y.
struct PreparedProduct {
    cpu_detail::GemmArgs g;
    Tensor a, y;
    PreparedProduct(const Tensor& x2d, const Tensor& w) {
        a = w.dtype() == DType::bf16 ? x2d.to(DType::bf16) : x2d.contiguous();
        y = Tensor::empty({x2d.size(0), w.size(0)});
        g.M = x2d.size(0);
        g.N = w.size(0);
        g.K = w.size(1);
        g.A = a.raw_data();
        g.lda = g.K;
        g.B = w.raw_data();
        g.ldb = g.K;
        g.trans_b = true;
        g.C = y.data<float>();
        g.ldc = g.N;
        g.operands = w.dtype();
    }
    void run() const { cpu_detail::gemm(g); }
};

const WeightSource* layer_source_for_parts = nullptr;  // the weights of layer 0, for the stream-in split

void time_parts(const LlamaDecoderLayer<cpu>& layer, const LlamaConfig& c, const Tensor& x, const RotaryTables& rope,
                const AttentionMask& mask, int runs) {
    const std::int64_t N = x.size(0), S = x.size(1);
    std::map<std::string, std::vector<double>> t;
    std::vector<std::string> order;
    auto timed = [&](const std::string& name, auto&& f) {
        if (!t.contains(name)) order.push_back(name);
        const auto a = Clock::now();
        auto r = f();
        t[name].push_back(seconds_since(a));
        return r;
    };
    for (int run = 0; run <= runs; ++run) {  // run 0 is a warm-up, dropped below
        const auto& at = layer.self_attn;
        const auto& mlp = layer.mlp;
        const Tensor n1 = timed("rms_norm (input)", [&] { return layer.input_layernorm.forward(x); });
        const Tensor q0 = timed("linear q_proj", [&] { return at.q_proj.forward(n1); });
        const Tensor k0 = timed("linear k_proj", [&] { return at.k_proj.forward(n1); });
        const Tensor v0 = timed("linear v_proj", [&] { return at.v_proj.forward(n1); });
        const Tensor q = timed("rope q+k", [&] {
            return cpu::apply_rope(q0.reshape({N, S, at.num_heads, at.head_dim}), rope.cos, rope.sin,
                                   RopeLayout::rotate_half);
        });
        const Tensor k = timed("rope q+k", [&] {
            return cpu::apply_rope(k0.reshape({N, S, at.num_key_value_heads, at.head_dim}), rope.cos, rope.sin,
                                   RopeLayout::rotate_half);
        });
        const Tensor v = v0.reshape({N, S, at.num_key_value_heads, at.head_dim});
        const Tensor a = timed("attention", [&] {
            return cpu::attention(q, k, v, mask, 1.0f / std::sqrt(static_cast<float>(at.head_dim)));
        });
        const Tensor o = timed("linear o_proj", [&] { return at.o_proj.forward(a.reshape({N, S, c.hidden_size})); });
        const Tensor h = timed("add (residuals)", [&] { return cpu::add(x, o); });
        const Tensor n2 = timed("rms_norm (post)", [&] { return layer.post_attention_layernorm.forward(h); });
        const Tensor g = timed("linear gate_proj", [&] { return mlp.gate_proj.forward(n2); });
        const Tensor u = timed("linear up_proj", [&] { return mlp.up_proj.forward(n2); });
        const Tensor sg = timed("silu * up", [&] { return cpu::silu(g); });
        const Tensor m = timed("silu * up", [&] { return cpu::mul(sg, u); });
        const Tensor d = timed("linear down_proj", [&] { return mlp.down_proj.forward(m); });
        (void)timed("add (residuals)", [&] { return cpu::add(h, d); });
    }
    // Pieces of the same call sum up: the two RoPE calls, SiLU and the product, the two residual adds.
    std::printf("  parts of one held layer (median of %d; several calls of one part summed per run):\n", runs);
    double total = 0;
    std::map<std::string, double> med;
    for (const auto& name : order) {
        auto& v = t[name];
        const std::size_t calls = v.size() / static_cast<std::size_t>(runs + 1);
        std::vector<double> per_run;
        for (std::size_t r = 1; r <= static_cast<std::size_t>(runs); ++r) {
            double s = 0;
            for (std::size_t c2 = 0; c2 < calls; ++c2) s += v[r * calls + c2];
            per_run.push_back(s);
        }
        med[name] = median(per_run);
        total += med[name];
    }
    for (const auto& name : order)
        std::printf("    %-20s %8.2f ms  %5.1f %%\n", name.c_str(), med[name] * 1e3, 100.0 * med[name] / total);
    std::printf("    %-20s %8.2f ms\n", "sum", total * 1e3);

    // The linears split: the product alone (operands ready) and the conversion of x to bf16.
    const Tensor x2 = layer.input_layernorm.forward(x).reshape({N * S, c.hidden_size});
    const Tensor x14 = Tensor::zeros({N * S, c.intermediate_size});
    struct Shape3 {
        const char* name;
        const Linear<cpu>* lin;
        const Tensor* in;
    };
    const Shape3 shapes[] = {{"q_proj", &layer.self_attn.q_proj, &x2}, {"k_proj", &layer.self_attn.k_proj, &x2},
                             {"v_proj", &layer.self_attn.v_proj, &x2}, {"o_proj", &layer.self_attn.o_proj, &x2},
                             {"gate_proj", &layer.mlp.gate_proj, &x2}, {"up_proj", &layer.mlp.up_proj, &x2},
                             {"down_proj", &layer.mlp.down_proj, &x14}};
    std::printf("  the products alone (cpu_detail::gemm, operands prepared; median of %d):\n", runs);
    double gemm_total = 0, flops_total = 0;
    for (const auto& s : shapes) {
        const PreparedProduct p(*s.in, s.lin->weight);
        const double sec = bench::median_seconds(runs, [&] { p.run(); });
        const double flops = 2.0 * static_cast<double>(p.g.M) * static_cast<double>(p.g.N) * static_cast<double>(p.g.K);
        gemm_total += sec;
        flops_total += flops;
        std::printf("    %-10s %5ld x %5ld x %5ld  %8.2f ms  %6.0f GFLOP/s\n", s.name, static_cast<long>(p.g.M),
                    static_cast<long>(p.g.N), static_cast<long>(p.g.K), sec * 1e3, flops / sec / 1e9);
    }
    std::printf("    %-28s %8.2f ms  %6.0f GFLOP/s\n", "all seven", gemm_total * 1e3, flops_total / gemm_total / 1e9);
    // gate_proj's product again: its weight copied to anonymous memory (against read in place from
    // the mapping), and with more tokens (oneDNN blocks M; the DiT's products have M = 1024).
    {
        const Tensor& w = layer.mlp.gate_proj.weight;
        const Tensor anon = w.clone();
        std::printf("    gate_proj variants:");
        for (const std::int64_t M : {N * S, std::int64_t{384}, std::int64_t{1024}}) {
            const Tensor xm = Tensor::zeros({M, c.hidden_size});
            for (const Tensor* wp : {&w, &anon}) {
                if (wp == &w && M != N * S) continue;
                const PreparedProduct p(xm, *wp);
                const double sec = bench::median_seconds(runs, [&] { p.run(); });
                std::printf(" M=%ld %s %.0f GFLOP/s;", static_cast<long>(M), wp == &w ? "mapped" : "anon",
                            2.0 * static_cast<double>(M) * static_cast<double>(p.g.N) * static_cast<double>(p.g.K) / sec / 1e9);
            }
        }
        {  // the other engine
            const Tensor xm = Tensor::zeros({N * S, c.hidden_size});
            const PreparedProduct p(xm, anon);
            cpu_detail::set_gemm_engine(cpu_detail::GemmEngine::eigen);
            const double sec = bench::median_seconds(std::min(runs, 3), [&] { p.run(); });
            cpu_detail::set_gemm_engine(cpu_detail::GemmEngine::onednn);
            std::printf(" M=%ld anon Eigen %.0f GFLOP/s;", static_cast<long>(N * S),
                        2.0 * static_cast<double>(p.g.M) * static_cast<double>(p.g.N) * static_cast<double>(p.g.K) / sec / 1e9);
        }
        std::printf("\n");
    }
    if (layer.mlp.down_proj.weight.dtype() == DType::f32) {
        // What streaming a layer in costs in f32 mode: load_weights converts each bf16 matrix with
        // Tensor::to (one thread) into a fresh allocation. Split: converting into buffers already
        // faulted in, one thread and parallel; and faulting in fresh buffers alone.
        std::vector<Tensor> stored, dst;
        std::int64_t elems = 0;
        LlamaDecoderLayer<cpu> structure(c);
        for (const auto& p : parameter_list(structure)) {
            if (p.shape.size() < 2) continue;
            stored.push_back(layer_source_for_parts->get("model.layers.0." + p.name));
            dst.push_back(Tensor::zeros(p.shape));
            elems += shape_numel(p.shape);
        }
        const double one = bench::median_seconds(runs, [&] {
            for (std::size_t i = 0; i < stored.size(); ++i)
                convert_buffer(stored[i].raw_data(), DType::bf16, dst[i].raw_data(), DType::f32,
                               static_cast<std::size_t>(stored[i].numel()));
        });
        const double par = bench::median_seconds(runs, [&] {
            for (std::size_t i = 0; i < stored.size(); ++i) {
                const auto* src = static_cast<const bf16_t*>(stored[i].raw_data());
                float* out = dst[i].data<float>();
                parallel_for_chunks(0, stored[i].numel(), 1 << 16, [&](std::int64_t a, std::int64_t b) {
                    convert_buffer(src + a, DType::bf16, out + a, DType::f32, static_cast<std::size_t>(b - a));
                });
            }
        });
        const double fault = bench::median_seconds(runs, [&] {
            for (const auto& d : dst) {
                Tensor fresh = Tensor::empty(d.shape());
                std::memset(fresh.raw_data(), 0, static_cast<std::size_t>(fresh.nbytes()));
            }
        });
        // The same fresh pages as transparent huge pages (this kernel's THP mode is "madvise": only
        // memory that asks for them gets them), mapped here directly.
        const double fault_huge = bench::median_seconds(runs, [&] {
            for (const auto& d : dst) {
                const auto bytes = static_cast<std::size_t>(d.nbytes());
                void* m = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (m == MAP_FAILED) throw Error("mmap failed");
                ::madvise(m, bytes, MADV_HUGEPAGE);
                std::memset(m, 0, bytes);
                ::munmap(m, bytes);
            }
        });
        std::printf("  f32 stream-in of one layer (%.0f M values, %.0f MB f32): bf16 -> f32 into warm buffers %.3f s on one "
                    "thread, %.3f s in parallel; fresh buffers faulted in (allocate + memset) %.3f s, as huge pages "
                    "(mmap + MADV_HUGEPAGE + memset) %.3f s\n",
                    static_cast<double>(elems) / 1e6, static_cast<double>(elems) * 4 / 1e6, one, par, fault, fault_huge);
    }
    if (layer.mlp.down_proj.weight.dtype() == DType::bf16) {
        // The held layer's bf16 matrices are views of the mapped shards. The first encode of a process
        // maps every page of them (minor faults: the pages are in the page cache). Dropping the page
        // table entries (MADV_DONTNEED on a private read-only file mapping keeps the page cache)
        // and touching the pages again times that, against populating them in one call first.
        std::vector<std::pair<char*, std::size_t>> ranges;
        std::size_t bytes = 0;
        const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
        for (const Tensor* w : {&layer.self_attn.q_proj.weight, &layer.self_attn.k_proj.weight,
                                &layer.self_attn.v_proj.weight, &layer.self_attn.o_proj.weight,
                                &layer.mlp.gate_proj.weight, &layer.mlp.up_proj.weight, &layer.mlp.down_proj.weight}) {
            const auto a = reinterpret_cast<std::uintptr_t>(w->raw_data()) & ~(page - 1);
            const auto e = (reinterpret_cast<std::uintptr_t>(w->raw_data()) + static_cast<std::uintptr_t>(w->nbytes()) +
                            page - 1) & ~(page - 1);
            ranges.emplace_back(reinterpret_cast<char*>(a), static_cast<std::size_t>(e - a));
            bytes += static_cast<std::size_t>(e - a);
        }
        auto drop = [&] {
            for (const auto& [a, n] : ranges) ::madvise(a, n, MADV_DONTNEED);
        };
        auto touch = [&] {
            std::uint64_t sum = 0;
            for (const auto& [a, n] : ranges)
                for (std::size_t i = 0; i < n; i += page) sum += static_cast<unsigned char>(*static_cast<volatile char*>(a + i));
            return sum;
        };
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
        std::vector<double> faulted, populated;
        for (int r = 0; r < std::max(runs, 3); ++r) {
            drop();
            auto a = Clock::now();
            (void)touch();
            faulted.push_back(seconds_since(a));
            drop();
            a = Clock::now();
            int rc = 0;
            for (const auto& [p, n] : ranges) rc |= ::madvise(p, n, MADV_POPULATE_READ);
            (void)touch();
            populated.push_back(rc == 0 ? seconds_since(a) : -1.0);
        }
        std::printf("  mapping one layer's %.0f MB of bf16 matrices (page cache warm): touched page by page %.3f s; "
                    "madvise(MADV_POPULATE_READ) first %.3f s (-1: refused)\n",
                    static_cast<double>(bytes) / 1e6, median(faulted), median(populated));

        Tensor dst = Tensor::empty({N * S, c.intermediate_size}, DType::bf16);
        const double s4 = bench::median_seconds(runs, [&] {
            convert_buffer(x2.raw_data(), DType::f32, dst.raw_data(), DType::bf16, static_cast<std::size_t>(x2.numel()));
        });
        const double s14 = bench::median_seconds(runs, [&] {
            convert_buffer(x14.raw_data(), DType::f32, dst.raw_data(), DType::bf16, static_cast<std::size_t>(x14.numel()));
        });
        std::printf("    x -> bf16, one thread: [%ld, %ld] %.2f ms, [%ld, %ld] %.2f ms (linear() converts per call, "
                    "in parallel)\n",
                    static_cast<long>(N * S), static_cast<long>(c.hidden_size), s4 * 1e3, static_cast<long>(N * S),
                    static_cast<long>(c.intermediate_size), s14 * 1e3);
    }
}

// ---- LLM ----------------------------------------------------------------------------------------------

void bench_llm(const Options& o, const TextEncoderFiles& files, const TokenBatch& tokens, DType mode) {
    const LlamaConfig& c = files.llama_config();
    LLMTextEncoder<cpu> enc(c);
    auto t = Clock::now();
    enc.model.load_streamed(files.weights, "model.", mode);
    const double load_s = seconds_since(t);
    const std::int64_t L = c.num_hidden_layers - enc.hidden_state_skip_layer;

    // The first encode of the process, watched (its activations are fresh allocations; later encodes
    // reuse the blocks the host allocator cached), then the timed encodes, each layer timed through
    // `observe`.
    const std::int64_t first_anon_before = bench::status_kib("RssAnon");
    std::int64_t first_anon_peak = 0;
    {
        AnonSampler sampler;
        const auto a = Clock::now();
        const TextEncoderOutput out = enc.encode(tokens, PromptKind::video);
        const double first_s = seconds_since(a);
        first_anon_peak = sampler.stop();
        std::printf("  first (warm-up) encode %.2f s, output %s; RssAnon %.0f MiB before, peak %.0f MiB\n", first_s,
                    shape_str(out.hidden_state.shape()).c_str(), mib(first_anon_before), mib(first_anon_peak));
    }
    std::vector<double> encode_s, layer_s, embed_s;
    const OtherLoad load;
    for (int run = 1; run <= o.runs; ++run) {
        std::vector<Clock::time_point> stamps;
        stamps.reserve(static_cast<std::size_t>(L) + 1);
        const auto a = Clock::now();
        const TextEncoderOutput out =
            enc.encode(tokens, PromptKind::video, [&](std::int64_t, const Tensor&) { stamps.push_back(Clock::now()); });
        const double total = seconds_since(a);
        encode_s.push_back(total);
        embed_s.push_back(std::chrono::duration<double>(stamps.front() - a).count());
        for (std::size_t i = 1; i < stamps.size(); ++i)
            layer_s.push_back(std::chrono::duration<double>(stamps[i] - stamps[i - 1]).count());
    }
    std::sort(layer_s.begin(), layer_s.end());
    const double others_encode = load.cores();
    std::printf("  encodes: ");
    for (const double e : encode_s) std::printf("%.2f ", e);
    std::printf("s; other processes used %.2f cores meanwhile\n", others_encode);

    // Memory: one more encode, watched.
    const std::int64_t anon_before = bench::status_kib("RssAnon");
    bench::reset_peak_rss();
    std::int64_t anon_peak = 0;
    {
        AnonSampler sampler;
        (void)enc.encode(tokens, PromptKind::video);
        anon_peak = sampler.stop();
    }
    const std::int64_t file_after = bench::status_kib("RssFile"), hwm = bench::status_kib("VmHWM");

    // One layer held, and the cost of loading one.
    const Tensor x = enc.model.embed(tokens.input_ids);
    const std::int64_t S = tokens.input_ids.size(1);
    const RotaryTables rope = llama_rotary_tables(arange_positions(1, S), c.head_dim, c.rope_theta);
    const AttentionMask mask = AttentionMask::causal(tokens.attention_mask);
    LlamaDecoderLayer<cpu> layer(c);
    const double stream_s = bench::median_seconds(std::max(o.layer_runs / 2, 2), [&] {
        LlamaDecoderLayer<cpu> fresh(c);
        load_weights(fresh, *files.weights, "model.layers.0.", mode);
    });
    load_weights(layer, *files.weights, "model.layers.0.", mode);
    const OtherLoad held_load;
    const double held_s = bench::median_seconds(o.layer_runs, [&] { (void)layer.forward(x, rope, mask); });
    const double others_held = held_load.cores();

    const double flops_layer =
        2.0 * static_cast<double>(S) *
            static_cast<double>(c.hidden_size * (c.num_attention_heads + 2 * c.num_key_value_heads) * c.head_dim +
                                c.num_attention_heads * c.head_dim * c.hidden_size + 3 * c.hidden_size * c.intermediate_size) +
        2.0 * 2.0 * static_cast<double>(S) * static_cast<double>(S) * static_cast<double>(c.num_attention_heads * c.head_dim);
    std::printf("  load_streamed %.3f s\n", load_s);
    std::printf("  %-6s encode %7.2f s (median of %d; embedding %.3f s)\n", mode_name(mode), median(encode_s), o.runs,
                median(embed_s));
    std::printf("  %-6s layer in encode (streamed): median %.3f s, min %.3f, max %.3f over %zu layers\n", mode_name(mode),
                median(layer_s), layer_s.front(), layer_s.back(), layer_s.size());
    std::printf("  %-6s layer held: %.3f s (%.0f GFLOP/s on %.1f GFLOP, causal attention counted in full; other "
                "processes %.2f cores)\n",
                mode_name(mode), held_s, flops_layer / held_s / 1e9, flops_layer / 1e9, others_held);
    std::printf("  %-6s stream-in of one layer (load_weights): %.3f s\n", mode_name(mode), stream_s);
    std::printf("  %-6s memory: RssAnon %.0f MiB before, peak %.0f MiB during encode (+%.0f); RssFile after %.0f MiB; "
                "VmHWM %.0f MiB\n",
                mode_name(mode), mib(anon_before), mib(anon_peak), mib(anon_peak - anon_before), mib(file_after), mib(hwm));
    std::printf("  %-6s first encode: RssAnon peak %.0f MiB (+%.0f over before it)\n", mode_name(mode),
                mib(first_anon_peak), mib(first_anon_peak - first_anon_before));
    std::printf("RESULT llm %s encode_s=%.3f layer_stream_s=%.4f layer_held_s=%.4f stream_in_s=%.4f anon_peak_mib=%.0f "
                "anon_growth_mib=%.0f first_anon_peak_mib=%.0f first_anon_growth_mib=%.0f rss_file_mib=%.0f "
                "vmhwm_mib=%.0f others_cores_encode=%.2f others_cores_held=%.2f\n",
                mode_name(mode), median(encode_s), median(layer_s), held_s, stream_s, mib(anon_peak),
                mib(anon_peak - anon_before), mib(first_anon_peak), mib(first_anon_peak - first_anon_before),
                mib(file_after), mib(hwm), others_encode, others_held);
    if (o.parts) {
        layer_source_for_parts = files.weights.get();
        time_parts(layer, c, x, rope, mask, o.layer_runs);
    }
    std::fflush(stdout);
}

// ---- CLIP ---------------------------------------------------------------------------------------------

void bench_clip(const Options& o, const TokenBatch& tokens, DType mode) {
    const std::int64_t anon_before = bench::status_kib("RssAnon");
    bench::reset_peak_rss();
    CLIPTextEncoder<cpu> enc{CLIPTextConfig{}};
    init_weights(enc.model, 7);
    // set_matmul_dtype (like loading with matmul bf16) makes every rank-2 parameter bf16, the position
    // embedding table too, and CLIPTextModel::forward then adds a bf16 table to f32 embeddings, which
    // cpu::add refuses ("add: expected float32, got bfloat16"). The table is kept f32 here.
    const Tensor positions = enc.model.position_embedding;
    set_matmul_dtype(enc.model, mode);
    enc.model.position_embedding = positions;
    const OtherLoad load;
    const double encode_s = bench::median_seconds(o.clip_runs, [&] { (void)enc.encode(tokens); });
    const CLIPTextModel<cpu>& m = enc.model;
    const Tensor h = cpu::add(cpu::embedding(m.token_embedding, tokens.input_ids),
                              m.position_embedding.slice(0, 0, tokens.input_ids.size(1)));
    const AttentionMask mask = AttentionMask::causal(tokens.attention_mask);
    const double layer_s = bench::median_seconds(o.clip_runs, [&] { (void)m.layers[0].forward(h, mask); });
    const double others = load.cores();
    const std::int64_t anon_after = bench::status_kib("RssAnon");
    std::printf("  %-6s encode %7.2f ms, layer %6.2f ms (median of %d; other processes %.2f cores); RssAnon +%.0f MiB "
                "(weights included), VmHWM %.0f MiB\n",
                mode_name(mode), encode_s * 1e3, layer_s * 1e3, o.clip_runs, others, mib(anon_after - anon_before),
                bench::peak_rss_mib());
    std::printf("RESULT clip %s encode_ms=%.2f layer_ms=%.3f anon_growth_mib=%.0f vmhwm_mib=%.0f others_cores=%.2f\n",
                mode_name(mode), encode_s * 1e3, layer_s * 1e3, mib(anon_after - anon_before), bench::peak_rss_mib(),
                others);
    std::fflush(stdout);
}

int usage(const char* argv0) {
    std::fprintf(stderr,
                 "usage: %s --llm DIR [--threads N] [--runs N] [--layer-runs N] [--clip-runs N] [--mode f32|bf16]\n"
                 "          [--skip-llm] [--skip-clip] [--parts] [--tokens-out FILE] [--assets DIR]\n",
                 argv0);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const bool has_value = i + 1 < argc;
        if (a == "--skip-llm") o.skip_llm = true;
        else if (a == "--skip-clip") o.skip_clip = true;
        else if (a == "--parts") o.parts = true;
        else if (!has_value) return usage(argv[0]);
        else if (a == "--llm") o.llm = argv[++i];
        else if (a == "--assets") o.assets = argv[++i];
        else if (a == "--tokens-out") o.tokens_out = argv[++i];
        else if (a == "--mode") o.mode = argv[++i];
        else if (a == "--threads") o.threads = std::atoi(argv[++i]);
        else if (a == "--runs") o.runs = std::max(1, std::atoi(argv[++i]));
        else if (a == "--layer-runs") o.layer_runs = std::max(1, std::atoi(argv[++i]));
        else if (a == "--clip-runs") o.clip_runs = std::max(1, std::atoi(argv[++i]));
        else return usage(argv[0]);
    }
    if (!o.skip_llm && o.llm.empty() && o.tokens_out.empty()) return usage(argv[0]);
    set_num_threads(o.threads);
    std::vector<DType> modes;
    for (const DType d : {DType::f32, DType::bf16})
        if (o.mode.empty() || o.mode == mode_name(d)) modes.push_back(d);

    const auto t0 = Clock::now();
    const text::LlamaTokenizer llama(o.assets / "llama3-llava");
    const text::ClipTokenizer clip(o.assets / "clip-vit-large-patch14");
    const double tok_load = seconds_since(t0);
    LLMTextEncoder<cpu> shape_only;  // the templates, text_len and crop of the official encoder
    auto t1 = Clock::now();
    const TokenBatch llm_tokens = shape_only.tokenize(llama, {kPrompt}, PromptKind::video);
    const double tok_llm = seconds_since(t1);
    const TokenBatch clip_tokens = CLIPTextEncoder<cpu>{}.tokenize(clip, {kPrompt});
    std::printf("Text encoders, %d threads; tokenizers loaded in %.2f s; prompt: %ld + %ld padding Llama tokens "
                "(template dit-llm-encode-video, max_length %ld, tokenized in %.1f ms), %ld + %ld padding CLIP tokens\n",
                o.threads, tok_load, static_cast<long>(valid_tokens(llm_tokens)),
                static_cast<long>(llm_tokens.input_ids.size(1) - valid_tokens(llm_tokens)),
                static_cast<long>(shape_only.max_length()), tok_llm * 1e3, static_cast<long>(valid_tokens(clip_tokens)),
                static_cast<long>(clip_tokens.input_ids.size(1) - valid_tokens(clip_tokens)));
    if (!o.tokens_out.empty()) {
        std::ofstream(o.tokens_out) << nlohmann::json{{"prompt", kPrompt},
                                                      {"llm", tokens_json(llm_tokens)},
                                                      {"clip", tokens_json(clip_tokens)}}
                                           .dump()
                                    << "\n";
        std::printf("tokens written to %s\n", o.tokens_out.c_str());
        if (o.llm.empty()) return 0;
    }

    if (!o.skip_llm) {
        t1 = Clock::now();
        const TextEncoderFiles files = open_text_encoder(o.llm, TextEncoderKind::llama);
        const LlamaConfig& c = files.llama_config();
        std::printf("LLM %s (%s, %zu files, %s): hidden %ld, %ld layers (%ld run), %ld heads, %ld KV heads, MLP %ld, "
                    "vocab %ld; opened in %.3f s\n",
                    o.llm.c_str(), files.layout.c_str(), files.files.size(), dtype_name(files.storage_dtype).data(),
                    static_cast<long>(c.hidden_size), static_cast<long>(c.num_hidden_layers),
                    static_cast<long>(c.num_hidden_layers - shape_only.hidden_state_skip_layer),
                    static_cast<long>(c.num_attention_heads), static_cast<long>(c.num_key_value_heads),
                    static_cast<long>(c.intermediate_size), static_cast<long>(c.vocab_size), seconds_since(t1));
        for (const DType mode : modes) {
            std::printf("LLM %s compute:\n", mode_name(mode));
            bench_llm(o, files, llm_tokens, mode);
        }
    }
    if (!o.skip_clip) {
        std::printf("CLIP-L text (hidden 768, 12 layers, 12 heads, MLP 3072, 77 tokens), random weights:\n");
        for (const DType mode : modes) bench_clip(o, clip_tokens, mode);
    }
    return 0;
}
