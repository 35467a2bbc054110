// Memory of a DiT loaded from a bf16 and from an fp8 checkpoint: every weight converted at load
// (load_weights) next to the blocks streamed from the mapped file (load_streamed), in f32 and in bf16
// compute.
//
// The model has the real model's structure at a third of its width (hidden 1024, 8 heads of 128,
// 4 double + 8 single blocks; the text dimensions are the released 4096 / 768), written once as
// bf16 safetensors and once with the block linears in fp8 (scales beside them, as `hyvideo convert
// --fp8` writes). Each mode runs in a fresh process of its own, so each peak is its own: the peak of anonymous
// memory (sampled every millisecond; the mapped file's pages are file-backed and not part of it), the
// peak resident set (which includes the file's pages the forward touched), and the forward's time.
//
//   build/bin/bench_checkpoint_memory [--runs N] [--threads N] [--file PATH]
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/checkpoint/checkpoint.hpp"
#include "hyvideo/core/parallel.hpp"
#include "hyvideo/models/hunyuan_video.hpp"
#include "hyvideo/nn/init.hpp"
#include "hyvideo/pipelines/noise.hpp"
#include "peak_memory.hpp"
#include "timing.hpp"

using namespace hyvideo;

namespace {

HYVideoConfig bench_config() {
    HYVideoConfig c = HYVideoConfig::preset("HYVideo-T/2-cfgdistill");
    c.hidden_size = 1024;
    c.heads_num = 8;
    c.rope_dim_list = {16, 56, 56};
    c.mm_double_blocks_depth = 4;
    c.mm_single_blocks_depth = 8;
    return c;
}

// Highest RssAnon seen by a thread polling /proc/self/status until stopped.
class AnonPeak {
public:
    AnonPeak() : thread_([this] {
        while (!stop_) {
            const std::int64_t kib = bench::status_kib("RssAnon");
            if (kib > peak_) peak_ = kib;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }) {}
    double stop_mib() {
        stop_ = true;
        thread_.join();
        return static_cast<double>(peak_.load()) / 1024.0;
    }

private:
    std::atomic<bool> stop_{false};
    std::atomic<std::int64_t> peak_{0};
    std::thread thread_;
};

// The model in bf16, and the same with the block linears in fp8 and their scales beside them (the layout
// `hyvideo convert --fp8` writes).
void write_checkpoints(const std::filesystem::path& bf16_path, const std::filesystem::path& fp8_path) {
    HYVideoDiffusionTransformer<cpu> m(bench_config());
    std::vector<std::pair<std::string, Tensor>> bf16, fp8;
    m.parameters("", [&](const std::string& name, const Shape& shape, Tensor&) {
        Tensor t = Tensor::empty(shape);
        for (std::int64_t i = 0; i < t.numel(); ++i)
            t.data<float>()[i] = 0.02f * detail::uniform_pm1(detail::splitmix64(std::hash<std::string>{}(name) + i));
        t = t.to(DType::bf16);
        bf16.emplace_back(name, t);
        if (!is_fp8_layer(name, shape)) {
            fp8.emplace_back(name, t);
            return;
        }
        const Fp8Weight q = quantize_fp8(t);
        fp8.emplace_back(name, q.weight);
        fp8.emplace_back(name.substr(0, name.size() - 7) + std::string(fp8_scale_suffix),
                         Tensor::from_vector<float>({}, {q.scale}));
    });
    save_safetensors(bf16_path, bf16);
    save_safetensors(fp8_path, fp8);
}

DiTInputs inputs(const HYVideoConfig& c) {
    DiTInputs in;
    in.x = randn({1, c.in_channels, 2, 16, 16}, 1);  // 128 image tokens
    in.t = Tensor::from_vector<float>({1}, {500.0f});
    in.text_states = randn({1, 64, c.text_states_dim}, 2);
    in.text_mask = Tensor::from_vector<std::int64_t>({1, 64}, std::vector<std::int64_t>(64, 1));
    in.text_states_2 = randn({1, c.text_states_dim_2}, 3);
    in.guidance = Tensor::from_vector<float>({1}, {6000.0f});
    return in;
}

// Runs one mode in this (child) process and prints its line.
void run_mode(const std::filesystem::path& file, bool streamed, DType matmul, int runs) {
    const double anon_before = static_cast<double>(bench::status_kib("RssAnon")) / 1024.0;
    bench::reset_peak_rss();
    AnonPeak anon;
    HYVideoDiffusionTransformer<cpu> m(bench_config());
    const DiTInputs in = inputs(m.config);
    const Checkpoint c = Checkpoint::open(file, {.kind = ModelKind::dit});
    if (streamed) m.load_streamed(c.shared_weights(), "", matmul);
    else load_weights_strict(m, c.weights(), "", matmul);
    const double seconds = bench::median_seconds(runs, [&] { (void)m.forward(in); });
    const double anon_peak = anon.stop_mib();
    std::printf("%-5s %-9s %-8s %12.0f %12.0f %10.3f\n", file.string().ends_with(".fp8.safetensors") ? "fp8" : "bf16",
                streamed ? "streamed" : "loaded", dtype_name(matmul).data(),
                anon_peak - anon_before, bench::peak_rss_mib(), seconds);
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    int runs = 3, threads = 2;
    std::string mode;
    std::filesystem::path file = std::filesystem::temp_directory_path() / "hyvideo_bench_checkpoint_memory.safetensors";
    for (int i = 1; i + 1 < argc; ++i) {
        if (!std::strcmp(argv[i], "--runs")) runs = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--file")) file = argv[++i];
        else if (!std::strcmp(argv[i], "--mode")) mode = argv[++i];
    }
    set_num_threads(threads);
    if (!mode.empty()) {  // one measurement, in a fresh process started below
        run_mode(file, mode.starts_with("streamed"), mode.ends_with("bf16") ? DType::bf16 : DType::f32, runs);
        return 0;
    }
    const std::filesystem::path fp8_file = file.string() + ".fp8.safetensors";
    const bool made = !std::filesystem::exists(file) || !std::filesystem::exists(fp8_file);
    if (made) write_checkpoints(file, fp8_file);

    HYVideoDiffusionTransformer<cpu> m(bench_config());
    const double params = static_cast<double>(parameter_count(m));
    double block = 0, outside = 0;
    for (const auto& p : parameter_list(m.double_blocks[0])) block += static_cast<double>(shape_numel(p.shape));
    for (const auto& p : parameter_list(m))
        if (p.name.find("_blocks.") == std::string::npos) outside += static_cast<double>(shape_numel(p.shape));
    std::printf("DiT hidden %ld, %ld double + %ld single blocks: %.0f M parameters; files %.0f MiB (bf16), "
                "%.0f MiB (block linears fp8)\n",
                static_cast<long>(m.config.hidden_size), static_cast<long>(m.config.mm_double_blocks_depth),
                static_cast<long>(m.config.mm_single_blocks_depth), params / 1e6,
                static_cast<double>(std::filesystem::file_size(file)) / 1048576.0,
                static_cast<double>(std::filesystem::file_size(fp8_file)) / 1048576.0);
    std::printf("in f32: the whole model %.0f MiB, everything but the blocks %.0f MiB, one double block %.0f MiB\n",
                params * 4 / 1048576.0, outside * 4 / 1048576.0, block * 4 / 1048576.0);
    std::printf("%d threads; anon: peak anonymous memory above the process's start; time: median of %d forwards\n\n",
                threads, runs);
    std::printf("%-5s %-9s %-8s %12s %12s %10s\n", "file", "weights", "GEMM", "anon [MiB]", "RSS [MiB]", "forward [s]");
    std::fflush(stdout);
    int failed = 0;
    for (const auto& f : {file, fp8_file})
        for (const char* mode_name : {"loaded-f32", "loaded-bf16", "streamed-f32", "streamed-bf16"}) {
            const std::string cmd = std::string(argv[0]) + " --mode " + mode_name + " --file " + f.string() +
                                    " --runs " + std::to_string(runs) + " --threads " + std::to_string(threads);
            failed += std::system(cmd.c_str()) != 0;
        }
    if (made) {
        std::filesystem::remove(file);
        std::filesystem::remove(fp8_file);
    }
    return failed ? 1 : 0;
}
