// A whole text-to-video generation, step by step, with the built-in tiny model.
//
// noise -> 12 Euler steps of the DiT's velocity along the shifted flow-matching schedule -> VAE
// decode -> frames. The step callback prints what happens to the latents; the result is written as an
// H.264 MP4 to the temporary directory.
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/io/video.hpp"
#include "hyvideo/pipelines/default_model.hpp"
#include "hyvideo/pipelines/video_size.hpp"
#include "hyvideo/vae/autoencoder_kl_causal_3d.hpp"

using namespace hyvideo;

namespace {
double rms(const Tensor& t) {
    double s = 0;
    for (float v : t.to_vector()) s += static_cast<double>(v) * v;
    return std::sqrt(s / static_cast<double>(t.numel()));
}
}  // namespace

int main() {
    HYVideoDiffusionTransformer<cpu> dit(default_dit_config());
    AutoencoderKLCausal3D<cpu> vae(default_vae_config());
    init_weights(dit, kDefaultWeightSeed);
    init_weights(vae, kDefaultWeightSeed + 1);
    std::printf("DiT %lld parameters, VAE %lld parameters (HunyuanVideo's structure, tiny widths)\n",
                static_cast<long long>(parameter_count(dit)), static_cast<long long>(parameter_count(vae)));

    const VideoSize size = align_video_size({64, 96, 9});
    const Tensor noise = randn(latent_shape(size), 42);
    std::printf("%lldx%lld, %lld frames -> latents %s, RMS %.3f\n", static_cast<long long>(size.height),
                static_cast<long long>(size.width), static_cast<long long>(size.frames),
                shape_str(noise.shape()).c_str(), rms(noise));

    SamplingOptions opt;
    opt.infer_steps = 12;
    const PromptEmbeds prompt = default_prompt_embeds(dit.config, 1);
    const HunyuanVideoPipeline<HYVideoDiffusionTransformer<cpu>> pipe(dit);
    const Tensor latents = pipe.denoise(noise, prompt, opt, {.on_step = [&](std::int64_t i, float t, const Tensor& x) {
        std::printf("  step %2lld  t = %7.2f  latent RMS %.3f\n", static_cast<long long>(i), t, rms(x));
        return true;
    }});

    const Tensor video = decode_video(vae, latents);
    const Frames frames = frames_from_tensor(video);
    const auto path = std::filesystem::temp_directory_path() / "hyvideo_tiny_generation.mp4";
    write_mp4(path, frames, 24.0);
    std::printf("video %s in [0, 1] -> %lld frames of %lldx%lld -> %s\n", shape_str(video.shape()).c_str(),
                static_cast<long long>(frames.count), static_cast<long long>(frames.height),
                static_cast<long long>(frames.width), path.c_str());
    return 0;
}
