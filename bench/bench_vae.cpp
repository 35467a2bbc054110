// Decoding with the real 884-16c VAE (random weights) on the CPU: time, GFLOP/s and peak memory in
// f32 and bf16 compute, and the peak memory of tiled decoding as the video grows.
// Compare with bench/bench_vae_torch.py, the same decode in PyTorch.
//
//   build/bin/bench_vae [--threads N] [--runs N] [--engine onednn|im2row] [--only decode|memory]
//
// Every measurement runs in a process of its own (the program starts itself again with
// --dtype f32|bf16 or --frames T), so that each peak is its own: memory that an earlier measurement
// freed but the allocator kept would otherwise count again.
//
// decode: latents [1, 16, 3, 32, 32] -> video [1, 3, 9, 256, 256], untiled, best of `runs` timed
//   decodes (default 2). Peak memory is the process's resident high-water mark during the decodes
//   (VmHWM, reset before them), weights included; "weights" is the resident size before.
// memory: latents [1, 16, T, 16, 16] for T = 9, 17, 33 -> 33, 65, 129 frames at 128×128, tiled in
//   time with 16-frame tiles (4 latents, the official 0.25 overlap), bf16 compute, each length in a
//   process of its own. Each is decoded twice: streamed (decode_frames, the frames handed to a sink
//   that drops them, as a video writer would consume them) and into one output tensor (decode),
//   whose size does grow with T. "before" is the resident size before decoding (weights, runtime).
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/core/parallel.hpp"
#include "hyvideo/nn/init.hpp"
#include "hyvideo/vae/autoencoder_kl_causal_3d.hpp"
#include "peak_memory.hpp"

using namespace hyvideo;

namespace {

Tensor random_tensor(const Shape& shape, std::uint64_t seed) {
    Tensor t = Tensor::empty(shape);
    for (std::int64_t i = 0; i < t.numel(); ++i)
        t.data<float>()[i] = detail::uniform_pm1(detail::splitmix64(seed * 0x100000001b3ull + static_cast<std::uint64_t>(i)));
    return t;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// CPU time of all the process's threads: on a shared machine the wall clock moves with the other
// load, while FLOPs per CPU-second stay comparable between runs (and with the PyTorch script).
double cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Convolution FLOPs (2 per multiply-add) of one untiled decode, from the decoder's structure: the
// products that make up nearly all of its work (the mid-block attention adds < 0.1% here).
double decode_conv_flops(const AutoencoderKLCausal3D<cpu>& vae, Shape s) {
    double flops = 0;
    auto conv = [&](std::int64_t cin, std::int64_t cout, std::int64_t taps) {
        flops += 2.0 * static_cast<double>(cin * cout * taps) * static_cast<double>(s[2] * s[3] * s[4]);
    };
    auto resnet = [&](const ResnetBlockCausal3D<cpu>& r) {
        conv(r.in_channels, r.out_channels, 27);
        conv(r.out_channels, r.out_channels, 27);
        if (r.conv_shortcut) conv(r.in_channels, r.out_channels, 1);
    };
    const auto& d = vae.decoder;
    conv(s[1], s[1], 1);  // post_quant_conv
    conv(s[1], d.conv_in.conv.out_channels, 27);
    for (const auto& r : d.mid_block.resnets) resnet(r);
    for (const auto& block : d.up_blocks) {
        for (const auto& r : block.resnets) resnet(r);
        if (block.upsampler) {
            const auto [ft, fh, fw] = block.upsampler->upsample_factor;
            s = {s[0], s[1], 1 + ft * (s[2] - 1), fh * s[3], fw * s[4]};
            conv(block.upsampler->conv.conv.in_channels, block.upsampler->conv.conv.out_channels, 27);
        }
    }
    conv(d.conv_out.conv.in_channels, d.conv_out.conv.out_channels, 27);
    return flops;
}

// The released VAE with random weights in its decoding half (post_quant_conv and the decoder, 146M
// parameters); the encoder is left without weights, as a decode-only process would load it.
AutoencoderKLCausal3D<cpu> make_vae(DType compute) {
    AutoencoderKLCausal3D<cpu> vae(AutoencoderKLCausal3DConfig::preset("884-16c-hy"));
    init_weights(vae.post_quant_conv, 2023);
    init_weights(vae.decoder, 2024);
    if (compute == DType::bf16) set_matmul_dtype(vae.decoder, DType::bf16);
    return vae;
}

void bench_decode(DType compute, int runs) {
    const AutoencoderKLCausal3D<cpu> vae = make_vae(compute);
    const Tensor z = random_tensor({1, 16, 3, 32, 32}, 7);
    const double weights_mib = bench::rss_mib();
    bench::reset_peak_rss();
    double best = 1e300, best_cpu = 1e300;
    for (int i = 0; i < runs; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        const double c0 = cpu_seconds();
        const Tensor video = vae.decode(z);
        best = std::min(best, seconds_since(t0));
        best_cpu = std::min(best_cpu, cpu_seconds() - c0);
    }
    const double tflop = decode_conv_flops(vae, z.shape()) / 1e12;
    std::printf("decode %-8s 16x3x32x32 -> 3x9x256x256  %7.2f s  %6.1f GFLOP/s  cpu %7.2f s  %6.1f GFLOP/cpu-s  "
                "peak %6.0f MiB  weights %5.0f MiB  (%.2f TFLOP)\n",
                std::string(dtype_name(compute)).c_str(), best, tflop * 1e3 / best, best_cpu, tflop * 1e3 / best_cpu,
                bench::peak_rss_mib(), weights_mib, tflop);
    std::fflush(stdout);
}

void bench_memory(std::int64_t T) {
    AutoencoderKLCausal3D<cpu> vae = make_vae(DType::bf16);
    vae.tiling = {true, true, 256, 16, 0.25};
    const Tensor z = random_tensor({1, 16, T, 16, 16}, 8);
    const Shape out = vae.video_shape(z.shape());
    const double base_mib = bench::rss_mib();
    {
        bench::reset_peak_rss();
        const auto t0 = std::chrono::steady_clock::now();
        std::int64_t frames = 0;
        vae.decode_frames(z, [&](std::int64_t, const Tensor& part) { frames += part.size(2); });
        std::printf("tiled decode bf16, %2lld latent frames -> %3lld frames at 128x128, streamed:   %7.2f s  peak %5.0f MiB  "
                    "(before: %4.0f MiB)\n",
                    static_cast<long long>(T), static_cast<long long>(frames), seconds_since(t0), bench::peak_rss_mib(),
                    base_mib);
        std::fflush(stdout);
    }
    {
        bench::reset_peak_rss();
        const auto t0 = std::chrono::steady_clock::now();
        const Tensor video = vae.decode(z);
        std::printf("tiled decode bf16, %2lld latent frames -> %3lld frames at 128x128, one tensor: %7.2f s  peak %5.0f MiB  "
                    "(output %2.0f MiB)\n",
                    static_cast<long long>(T), static_cast<long long>(out[2]), seconds_since(t0), bench::peak_rss_mib(),
                    static_cast<double>(video.nbytes()) / (1 << 20));
        std::fflush(stdout);
    }
}

// Runs this program again with `args` and waits for it.
int run_self(std::vector<std::string> args) {
    args.insert(args.begin(), "/proc/self/exe");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::fflush(stdout);
    pid_t pid = 0;
    if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ) != 0) return -1;
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

int main(int argc, char** argv) {
    int runs = 2;
    std::string only, threads, engine, dtype;
    std::int64_t frames = 0;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--threads") {
            threads = value();
            set_num_threads(std::stoi(threads));
        } else if (a == "--frames") {
            frames = std::stoll(value());
        } else if (a == "--dtype") {
            dtype = value();
            if (dtype != "f32" && dtype != "bf16") {
                std::fprintf(stderr, "--dtype is f32 or bf16\n");
                return 2;
            }
        } else if (a == "--runs") {
            runs = std::max(1, std::stoi(value()));
        } else if (a == "--only") {
            only = value();
        } else if (a == "--engine") {
            engine = value();
            cpu_detail::set_conv3d_engine(engine == "im2row" ? cpu_detail::Conv3dEngine::im2row
                                                               : cpu_detail::Conv3dEngine::onednn);
        } else {
            std::fprintf(stderr, "usage: bench_vae [--threads N] [--runs N] [--engine onednn|im2row] [--only decode|memory]\n");
            return 2;
        }
    }
    // One measurement in a process of its own: a decode in one compute type, or one length of the
    // memory benchmark.
    if (!dtype.empty()) {
        bench_decode(dtype == "bf16" ? DType::bf16 : DType::f32, runs);
        return 0;
    }
    if (frames > 0) {
        bench_memory(frames);
        return 0;
    }
    std::vector<std::string> common{"--runs", std::to_string(runs)};
    if (!threads.empty()) common.insert(common.end(), {"--threads", threads});
    if (!engine.empty()) common.insert(common.end(), {"--engine", engine});
    auto run = [&](std::vector<std::string> args) {
        args.insert(args.end(), common.begin(), common.end());
        if (run_self(args) == 0) return true;
        std::fprintf(stderr, "bench_vae %s %s failed\n", args[0].c_str(), args[1].c_str());
        return false;
    };
    std::printf("threads %d, conv3d engine %s, GEMM engine %s\n", num_threads(),
                std::string(cpu_detail::conv3d_engine_name(cpu_detail::conv3d_engine())).c_str(),
                std::string(cpu_detail::gemm_engine_name(cpu_detail::gemm_engine())).c_str());
    if (only.empty() || only == "decode")
        for (const char* d : {"f32", "bf16"})
            if (!run({"--dtype", d})) return 1;
    if (only.empty() || only == "memory")
        for (const char* T : {"9", "17", "33"})
            if (!run({"--frames", T})) return 1;
    return 0;
}
