// Step caching (pipelines/step_cache.hpp) on the built-in model, in process: the sampling time of each
// policy next to the uncached run's (median of --runs, alternating), how many steps computed the blocks,
// and the relative L2 distance of the final latents from the uncached run's. The decoded frames' PSNR
// and the judge's verdicts come from bench/compare_step_cache.py, which runs the command line.
//
//   hyvideo encode-text --prompt "a red circle moving from left to right on a black background" -o e.safetensors
//   bench_step_cache --text-embeds e.safetensors [--model assets/models/builtin] [--video-size 64 64]
//                    [--frames 33] [--steps 50] [--runs 3] [--policies teacache:0.1,teacache:0.15,fbcache:0.1]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/checkpoint/checkpoint.hpp"
#include "hyvideo/pipelines/default_model.hpp"
#include "hyvideo/pipelines/hunyuan_video_pipeline.hpp"
#include "hyvideo/pipelines/noise.hpp"
#include "hyvideo/pipelines/step_cache.hpp"
#include "hyvideo/pipelines/text_embeds.hpp"
#include "hyvideo/pipelines/video_size.hpp"

using namespace hyvideo;

namespace {

struct Policy {
    std::string name;  // none, teacache, fbcache
    double threshold = 0;
};

[[noreturn]] void usage(const std::string& why) {
    std::fprintf(stderr, "bench_step_cache: %s\n", why.c_str());
    std::exit(1);
}

double rel_l2(const Tensor& a, const Tensor& b) {
    const auto x = a.to_vector(), y = b.to_vector();
    double d = 0, n = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        d += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
        n += double(y[i]) * y[i];
    }
    return std::sqrt(d / n);
}

}  // namespace

int main(int argc, char** argv) {
    std::string model = std::string(HYVIDEO_SOURCE_DIR) + "/assets/models/builtin", embeds;
    std::int64_t height = kBuiltinVideoSide, width = kBuiltinVideoSide, frames = kBuiltinVideoFrames, steps = 50, runs = 3;
    std::vector<Policy> policies{{"teacache", 0.1}, {"teacache", 0.15}, {"fbcache", 0.1}};
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(a + " needs a value");
            return argv[++i];
        };
        const auto number = [&](std::int64_t lo, std::int64_t hi) {
            const std::string v = value();
            char* end = nullptr;
            const long long x = std::strtoll(v.c_str(), &end, 10);
            if (v.empty() || *end != '\0' || x < lo || x > hi) usage(a + " " + v + ": must be a whole number in " +
                                                                      std::to_string(lo) + ".." + std::to_string(hi));
            return static_cast<std::int64_t>(x);
        };
        if (a == "--model") model = value();
        else if (a == "--text-embeds") embeds = value();
        else if (a == "--video-size") height = number(16, 1024), width = number(16, 1024);
        else if (a == "--frames") frames = number(1, 129);
        else if (a == "--steps") steps = number(2, 1000);
        else if (a == "--runs") runs = number(1, 100);
        else if (a == "--policies") {
            policies.clear();
            std::string list = value();
            for (std::size_t start = 0; start < list.size();) {
                const std::size_t end = std::min(list.find(',', start), list.size());
                const std::string item = list.substr(start, end - start);
                const std::size_t colon = item.find(':');
                char* stop = nullptr;
                const double t = colon == std::string::npos ? -1 : std::strtod(item.c_str() + colon + 1, &stop);
                const std::string name = item.substr(0, colon);
                if ((name != "teacache" && name != "fbcache") || !(t > 0 && t <= 10) || *stop != '\0')
                    usage("--policies: '" + item + "' is not teacache:THRESH or fbcache:THRESH with THRESH in (0, 10]");
                policies.push_back({name, t});
                start = end + 1;
            }
        } else usage("unknown argument " + a);
    }
    if (embeds.empty()) usage("--text-embeds FILE is required (hyvideo encode-text writes one)");

    try {
        const BuiltinModelFiles files = BuiltinModelFiles::in(model);
        const HYVideoConfig config = HYVideoConfig::from_file(files.transformer_config);
        HYVideoDiffusionTransformer<cpu> dit(config);
        load_checkpoint(dit, Checkpoint::open(files.transformer, {.kind = ModelKind::dit}));
        const PromptEmbeds prompt = read_text_embeds(embeds, config).prompt;
        const BuiltinSampling sampling = BuiltinSampling::from_file(files.sampling);
        const VideoSize size = align_video_size({height, width, frames});
        const Tensor noise = randn(latent_shape(size), 100);
        SamplingOptions opt;
        opt.infer_steps = steps;
        opt.flow_shift = sampling.flow_shift;
        const HunyuanVideoPipeline<HYVideoDiffusionTransformer<cpu>> pipe(dit);

        std::vector<Policy> all{{"none", 0}};
        all.insert(all.end(), policies.begin(), policies.end());
        std::vector<std::vector<double>> seconds(all.size());
        std::vector<Tensor> latents(all.size());
        std::vector<std::int64_t> computed(all.size(), steps);
        for (std::int64_t r = 0; r < runs; ++r)
            for (std::size_t p = 0; p < all.size(); ++p) {
                const auto t0 = std::chrono::steady_clock::now();
                if (all[p].name == "teacache") {
                    TeaCache cache(all[p].threshold);
                    latents[p] = pipe.denoise(noise, prompt, opt, {}, cache);
                    computed[p] = cache.computed;
                } else if (all[p].name == "fbcache") {
                    FirstBlockCache cache(all[p].threshold);
                    latents[p] = pipe.denoise(noise, prompt, opt, {}, cache);
                    computed[p] = cache.computed;
                } else {
                    latents[p] = pipe.denoise(noise, prompt, opt);
                }
                seconds[p].push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
            }
        const auto median = [](std::vector<double> v) {
            std::sort(v.begin(), v.end());
            return v[v.size() / 2];
        };
        std::printf("built-in model, %lldx%lld, %lld frames (latents %s), %lld steps, median of %lld runs\n",
                    static_cast<long long>(size.height), static_cast<long long>(size.width), static_cast<long long>(size.frames),
                    shape_str(noise.shape()).c_str(), static_cast<long long>(steps), static_cast<long long>(runs));
        const double base = median(seconds[0]);
        for (std::size_t p = 0; p < all.size(); ++p) {
            const std::string label = all[p].name == "none" ? "none" : all[p].name + " " + std::to_string(all[p].threshold).substr(0, 4);
            std::printf("  %-14s %7.3f s  %5.2fx  blocks on %3lld/%lld steps  latents rel L2 %.2e\n", label.c_str(),
                        median(seconds[p]), base / median(seconds[p]), static_cast<long long>(computed[p]),
                        static_cast<long long>(steps), rel_l2(latents[p], latents[0]));
        }
    } catch (const Error& e) {
        std::fprintf(stderr, "bench_step_cache: %s\n", e.what());
        return 1;
    }
    return 0;
}
