#pragma once
// `hyvideo generate`: text-to-video and image-to-video with the official sample_video.py flag names.
// Without --dit/--vae it runs the built-in default model (pipelines/default_model.hpp).
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/checkpoint/checkpoint.hpp"
#include "hyvideo/io/image.hpp"
#include "hyvideo/io/json_file.hpp"
#include "hyvideo/io/mapped_file.hpp"
#include "hyvideo/io/video.hpp"
#include "hyvideo/pipelines/default_model.hpp"
#include "hyvideo/pipelines/hunyuan_video_pipeline.hpp"
#include "hyvideo/pipelines/i2v_image.hpp"
#include "hyvideo/pipelines/step_cache.hpp"
#include "hyvideo/pipelines/text_embeds.hpp"
#include "hyvideo/pipelines/video_size.hpp"
#include "hyvideo/vae/autoencoder_kl_causal_3d.hpp"
#include "progress.hpp"
#include "backend_choice.hpp"
#include "text_encoding.hpp"

namespace hyvideo::cli {

struct GenerateArgs {
    std::vector<std::int64_t> video_size;      // H W; default depends on the model
    std::optional<std::int64_t> video_length;  // default depends on the model
    std::int64_t infer_steps = 50;
    std::optional<float> flow_shift;  // default 7, or the built-in model's sampling.json
    bool flow_reverse = true;
    float embedded_cfg_scale = 6.0f;
    std::optional<float> cfg_scale;  // default 1, or the built-in model's sampling.json
    std::optional<double> teacache, fbcache;  // step-cache thresholds (off by default)
    std::string seed;  // text, parsed by parse_seed: CLI11 would saturate out-of-range values
    std::string save_path = "./results";
    bool vae_tiling = true;
    std::string i2v_image_path;
    std::string i2v_condition_type = "token_replace";
    bool i2v_stability = false;
    std::string i2v_resolution = "720p";
    std::string dit, vae, model, dit_config, vae_config, text_embeds, output, frames_dir;
    double fps = 24.0;
    std::string precision = "f32";
    std::string vae_precision = "f32";
    std::string prefetch = "none";
    std::string backend = "cpu";
    std::string builtin_model = default_asset_dir("models/builtin");
    TextEncoderArgs text;
};

inline CLI::App* add_generate(CLI::App& app, GenerateArgs& a) {
    auto* g = app.add_subcommand("generate", "Generate a video (text-to-video, or image-to-video with --i2v-image-path)");
    g->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // a repeated flag: the last wins
    g->add_option("--video-size", a.video_size, "height width (rounded up to multiples of 16); default 720 1280, "
                                                "or 64 64 for the built-in model")
        ->expected(2);
    g->add_option("--video-length", a.video_length, "frames, 4k+1; default 129, or 33 for the built-in model");
    g->add_option("--infer-steps", a.infer_steps, "sampling steps")->capture_default_str();
    g->add_option("--flow-shift", a.flow_shift, "time shift of the flow-matching schedule; default 7 (official), or the "
                                                "built-in model's own (its sampling.json)");
    g->add_flag("--flow-reverse,!--no-flow-reverse", a.flow_reverse,
                "run sigma from 1 to 0 (on by default: the official default, off, gives noise)");
    g->add_option("--embedded-cfg-scale", a.embedded_cfg_scale, "guidance of the guidance-distilled model")
        ->capture_default_str();
    g->add_option("--cfg-scale", a.cfg_scale, "true classifier-free guidance when > 1 (needs negative embeddings); "
                                              "default 1, or the built-in model's own (its sampling.json)");
    g->add_option("--teacache", a.teacache, "skip the DiT's blocks on steps whose input changed little, by TeaCache's "
                                            "rule with this threshold (its authors' settings for HunyuanVideo: 0.1, "
                                            "0.15); off by default; docs/usage.md#step-caching");
    g->add_option("--fbcache", a.fbcache, "the same by First-Block-Cache's rule with this threshold (e.g. 0.1)");
    g->add_option("--seed", a.seed, "noise seed, 0..18446744073709551615 (default: random, printed)");
    g->add_option("--save-path", a.save_path, "directory for the video when -o is not given")->capture_default_str();
    g->add_flag("--vae-tiling,!--no-vae-tiling", a.vae_tiling, "tiled VAE decoding (on by default)");
    g->add_option("--i2v-image-path", a.i2v_image_path, "image-to-video: the first frame (PNG or JPEG)");
    g->add_option("--i2v-condition-type", a.i2v_condition_type, "token_replace or latent_concat")
        ->check(CLI::IsMember({"token_replace", "latent_concat"}))
        ->capture_default_str();
    g->add_flag("--i2v-stability", a.i2v_stability, "start from 0.999·noise + 0.001·image latent");
    g->add_option("--i2v-resolution", a.i2v_resolution, "720p, 540p or 360p (the image bucket's base size)")
        ->check(CLI::IsMember({"720p", "540p", "360p"}))
        ->capture_default_str();
    g->add_option("--dit", a.dit, "transformer weights, any layout (docs/checkpoints.md): the official .pt (bf16, or "
                                  "the fp8 .pt with its _map.pt beside it), a diffusers transformer folder or shard, "
                                  "safetensors with official names (ComfyUI, hyvideo convert)");
    g->add_option("--vae", a.vae, "VAE weights, any layout: the official pytorch_model.pt, a diffusers vae folder, "
                                  "safetensors with official names");
    g->add_option("--model", a.model, "DiT preset for --dit (HYVideo-T/2-cfgdistill, HYVideo-T/2, HYVideo-S/2); "
                                      "default: the configuration the weights and their config.json determine");
    g->add_option("--dit-config", a.dit_config, "DiT config JSON (official argument names) instead of --model");
    g->add_option("--vae-config", a.vae_config, "VAE config JSON (official config.json keys) instead of the one "
                                                "the weights determine");
    add_text_encoder_options(g, a.text);
    g->add_option("--text-embeds", a.text_embeds, "instead of --prompt: safetensors with text_states, text_mask, "
                                                  "text_states_2 (+ negative_*), as encode-text writes; see docs/usage.md");
    g->add_option("-o,--output", a.output, "output MP4 path");
    g->add_option("--fps", a.fps, "frame rate of the MP4, in (0, 1000]")->capture_default_str();
    g->add_option("--frames-dir", a.frames_dir, "also write every frame as PNG into this directory");
    g->add_option("--precision", a.precision, "DiT compute: f32, or bf16 (bf16 GEMM and attention operands, f32 "
                                              "accumulation)")
        ->check(CLI::IsMember({"f32", "bf16"}))
        ->capture_default_str();
    g->add_option("--vae-precision", a.vae_precision, "VAE compute: f32, or bf16 (bf16 convolution and projection "
                                                      "operands, f32 accumulation; the official run decodes in fp16)")
        ->check(CLI::IsMember({"f32", "bf16"}))
        ->capture_default_str();
    g->add_option("--prefetch", a.prefetch, "with --dit: none reads each transformer block when the forward "
                                            "reaches it; next-block reads it on a loader thread while the block "
                                            "before computes (two blocks' weights in memory; docs/performance.md)")
        ->check(CLI::IsMember({"none", "next-block"}))
        ->capture_default_str();
    add_backend_option(g, a.backend);
    g->add_option("--builtin-model", a.builtin_model, "the learned built-in model's folder, used without --dit/--vae "
                                                      "(tools/builtin_model/train.py writes one)")
        ->capture_default_str();
    return g;
}

namespace generate_detail {

// Limits every run must respect; checked before any work, each message saying the limit.
inline constexpr std::int64_t kMaxSide = 16384;        // H.264's largest picture side (the MP4 writer's limit)
inline constexpr std::int64_t kMaxFrames = 4097;       // 1024 latent frames; the official model is trained on 129
inline constexpr std::int64_t kMaxSteps = 10000;       // the official default is 50
inline constexpr double kMaxFps = 1000.0;              // the MP4 writer's limit

// --seed as the official script takes it: a whole number that fits torch's 64-bit generator seed.
inline std::uint64_t parse_seed(const std::string& text) {
    const bool digits = !text.empty() && text.size() <= 20 &&
                        std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    errno = 0;
    const unsigned long long v = digits ? std::strtoull(text.c_str(), nullptr, 10) : 0;
    HYVIDEO_CHECK(digits && errno != ERANGE, "--seed '", text, "': must be a whole number in 0..18446744073709551615");
    return v;
}

// Every numeric flag, before anything is opened: a value the run cannot use is refused, never changed.
inline void check_numbers(const GenerateArgs& a) {
    if (!a.video_size.empty())
        for (std::size_t i = 0; i < 2; ++i)
            HYVIDEO_CHECK(a.video_size[i] >= 1 && a.video_size[i] <= kMaxSide, "--video-size: ", i == 0 ? "height " : "width ",
                          a.video_size[i], " is not in 1..", kMaxSide, " (", kMaxSide, " is the largest side H.264 allows)");
    if (a.video_length)
        HYVIDEO_CHECK(*a.video_length >= 1 && *a.video_length <= kMaxFrames && (*a.video_length - 1) % 4 == 0,
                      "--video-length ", *a.video_length, ": must be 4k+1 (1, 5, 9, ..., 129) and at most ", kMaxFrames);
    HYVIDEO_CHECK(a.infer_steps >= 1 && a.infer_steps <= kMaxSteps, "--infer-steps ", a.infer_steps, ": must be in 1..",
                  kMaxSteps);
    if (a.flow_shift)
        HYVIDEO_CHECK(std::isfinite(*a.flow_shift) && *a.flow_shift > 0, "--flow-shift ", *a.flow_shift,
                      ": must be a positive finite number (the official default is 7)");
    HYVIDEO_CHECK(std::isfinite(a.embedded_cfg_scale), "--embedded-cfg-scale ", a.embedded_cfg_scale,
                  ": must be a finite number");
    if (a.cfg_scale) HYVIDEO_CHECK(std::isfinite(*a.cfg_scale), "--cfg-scale ", *a.cfg_scale, ": must be a finite number");
    HYVIDEO_CHECK(!(a.teacache && a.fbcache), "--teacache and --fbcache: choose one step cache");
    for (const auto& [flag, value] : {std::pair{"--teacache", a.teacache}, std::pair{"--fbcache", a.fbcache}})
        if (value)
            HYVIDEO_CHECK(std::isfinite(*value) && *value > 0 && *value <= 10, flag, " ", fmt::format("{:g}", *value),
                          ": must be a threshold in (0, 10]");
    HYVIDEO_CHECK(std::isfinite(a.fps) && a.fps > 0 && a.fps <= kMaxFps, "--fps ", fmt::format("{:g}", a.fps),
                  ": must be in (0, ", kMaxFps, "]");
}

// Bytes of memory and of disk a run needs at least, whatever the model: the decoded video in float32 and
// as 8-bit frames (memory), the PNG frames uncompressed (disk, an upper bound in practice).
inline long double decoded_video_bytes(const VideoSize& s) {
    return static_cast<long double>(s.frames) * static_cast<long double>(s.height) * static_cast<long double>(s.width) * 3;
}

inline std::uint64_t physical_memory_bytes() {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page) : 0;
}

inline void check_memory(const VideoSize& s) {
    const long double need = decoded_video_bytes(s) * (4 + 1);
    const std::uint64_t have = physical_memory_bytes();
    HYVIDEO_CHECK(have == 0 || need <= static_cast<long double>(have), "--video-size ", s.height, " ", s.width,
                  " --video-length ", s.frames, ": the decoded video alone needs ",
                  fmt::format("{:.1f}", static_cast<double>(need / (1u << 30))), " GiB, more than this machine's ",
                  fmt::format("{:.1f}", static_cast<double>(have) / (1u << 30)), " GiB of memory");
}

// --frames-dir: the directory, or the nearest existing one above it where it will be created, must be a
// writable directory with room for the frames. Checked by creating (and removing) a probe file there.
inline void check_frames_dir(const std::filesystem::path& dir, long double bytes) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path at = dir;
    while (!at.empty() && !fs::exists(at, ec)) at = at.parent_path();
    if (at.empty()) at = ".";
    HYVIDEO_CHECK(fs::is_directory(at, ec), "--frames-dir '", dir.string(), "': '", at.string(), "' is not a directory");
    try {
        AtomicFile::check_target(at / ".hyvideo_frames_probe");
    } catch (const Error& e) {
        throw Error("--frames-dir '" + dir.string() + "': cannot be written: " + e.what());
    }
    struct statvfs vfs {};
    if (::statvfs(at.c_str(), &vfs) == 0) {
        const long double free = static_cast<long double>(vfs.f_bavail) * static_cast<long double>(vfs.f_frsize);
        HYVIDEO_CHECK(bytes <= free, "--frames-dir '", dir.string(), "': the frames take up to ",
                      fmt::format("{:.1f}", static_cast<double>(bytes / 1e6)), " MB and ", at.string(), " has ",
                      fmt::format("{:.1f}", static_cast<double>(free / 1e6)), " MB free");
    }
}

// A configuration file given by a flag; every error names the flag and the file.
template <class Config>
Config read_config(const std::string& path, const char* flag) {
    const nlohmann::json j = read_json_file(path, flag, 1u << 20);
    try {
        return Config::from_json(j);
    } catch (const Error& e) {
        throw Error(std::string(flag) + " '" + path + "': " + e.what());
    }
}

inline std::string timestamp() {
    const std::time_t now = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d-%H:%M:%S", std::localtime(&now));
    return buf;
}

// Prints where a configuration read from weights got the values the weights do not hold.
template <class Config>
const Config& report_config(const ConfigGuess<Config>& g, const char* what, const char* flag) {
    for (const auto& n : g.notes) fmt::print("note: {} config: {}\n", what, n);
    if (!g.complete) fmt::print("note: {} config: some values were assumed; {} sets them\n", what, flag);
    return g.config;
}

}  // namespace generate_detail

namespace generate_detail {

// Text embeddings are made on the host (the text encoders run on the CPU backend); the DiT reads them
// on its own device.
template <Backend B>
PromptEmbeds on_device(const PromptEmbeds& e) {
    return {B::upload(e.text_states), B::upload(e.text_mask), B::upload(e.text_states_2)};
}

}  // namespace generate_detail

// The whole run on backend B (cpu, thrust_omp; see tools/backend_choice.hpp for which are built).
template <Backend B>
int run_generate_on(const GenerateArgs& a) {
    namespace fs = std::filesystem;
    const bool builtin = a.dit.empty() && a.vae.empty();
    HYVIDEO_CHECK(a.dit.empty() == a.vae.empty(), "give both --dit and --vae, or neither for the built-in model");
    const bool i2v = !a.i2v_image_path.empty();
    // The built-in model: the learned weights for text-to-video; image-to-video runs the pseudo-random
    // ones of the same structure, as the learned model never saw an image condition.
    const bool random_weights = builtin && i2v;
    // Without a prompt the built-in model draws its default one.
    TextEncoderArgs text_args = a.text;
    const bool default_prompt = builtin && !text_args.prompt && a.text_embeds.empty();
    if (default_prompt) text_args.prompt = kBuiltinPrompt;
    const bool prompt = text_args.uses_encoders();
    HYVIDEO_CHECK(!(prompt && !a.text_embeds.empty()), "give --prompt or --text-embeds, not both");
    HYVIDEO_CHECK(builtin || prompt || !a.text_embeds.empty(),
                  "real weights need --prompt with --text-encoder and --text-encoder-2, or --text-embeds (see docs/usage.md)");
    HYVIDEO_CHECK(!builtin || (a.text.text_encoder.empty() && a.text.text_encoder_2.empty()),
                  "--text-encoder and --text-encoder-2 go with --dit and --vae: the built-in model has its own tiny encoders");
    HYVIDEO_CHECK(builtin || !prompt || (!a.text.text_encoder.empty() && !a.text.text_encoder_2.empty()),
                  "--prompt with --dit needs --text-encoder and --text-encoder-2 (the released text_encoder and "
                  "text_encoder_2 folders, or ComfyUI's llava_llama3 and clip_l files)");
    HYVIDEO_CHECK(prompt || (a.text.text_encoder.empty() && a.text.text_encoder_2.empty() && !a.text.neg_prompt),
                  "--text-encoder, --text-encoder-2 and --neg-prompt need --prompt");
    generate_detail::check_numbers(a);
    // CLI11 has checked the spelling.
    const I2VConditionType condition = parse_i2v_condition_type(a.i2v_condition_type).value();

    // ---- sizes and output paths, checked before any heavy work ---------------------------------
    VideoSize size{a.video_size.empty() ? (builtin ? kBuiltinVideoSide : 720) : a.video_size[0],
                   a.video_size.empty() ? (builtin ? kBuiltinVideoSide : 1280) : a.video_size[1],
                   a.video_length ? *a.video_length : (builtin ? kBuiltinVideoFrames : 129)};
    std::string note;
    size = align_video_size(size, &note);
    if (!note.empty()) fmt::print("note: {}\n", note);
    if (!i2v) generate_detail::check_memory(size);  // image-to-video: the image's bucket sets the size, below
    const std::uint64_t seed = !a.seed.empty() ? generate_detail::parse_seed(a.seed) : std::random_device{}() % 1000000;
    const fs::path output = !a.output.empty() ? fs::path(a.output)
                                              : fs::path(a.save_path) / fmt::format("{}_seed{}.mp4", generate_detail::timestamp(), seed);
    // -o is checked at once; an output named from --save-path once that directory exists, below.
    if (!a.output.empty()) AtomicFile::check_target(output);

    // ---- models --------------------------------------------------------------------------------
    HYVIDEO_CHECK(!builtin || (a.dit_config.empty() && a.vae_config.empty()),
                  "--dit-config and --vae-config describe weight files: give --dit and --vae too");
    HYVIDEO_CHECK(a.model.empty() || a.dit_config.empty(), "give --model or --dit-config, not both");
    HYVIDEO_CHECK(!builtin || a.model.empty(), "--model describes --dit weights: give --dit and --vae too");
    HYVIDEO_CHECK(!builtin || a.prefetch == "none", "--prefetch ", a.prefetch,
                  ": only --dit weights are streamed block by block; give --dit and --vae too");
    // Opening a checkpoint reads its headers (or a .pt's pickle), not its weights.
    // The learned built-in model is read as --dit/--vae/--dit-config/--vae-config would read its files.
    std::string dit_path = a.dit, vae_path = a.vae, dit_config = a.dit_config, vae_config = a.vae_config;
    const char* dit_flag = "--dit";
    const char* vae_flag = "--vae";
    const char* dit_config_flag = "--dit-config";
    const char* vae_config_flag = "--vae-config";
    BuiltinSampling sampling;  // the official defaults: flow shift 7, no classifier-free guidance
    if (builtin && !random_weights) {
        const BuiltinModelFiles f = BuiltinModelFiles::in(a.builtin_model);
        dit_path = f.transformer.string();
        vae_path = f.vae.string();
        dit_config = f.transformer_config.string();
        vae_config = f.vae_config.string();
        dit_flag = vae_flag = dit_config_flag = vae_config_flag = "the built-in model";
        sampling = BuiltinSampling::from_file(f.sampling);
    }
    const float flow_shift = a.flow_shift.value_or(sampling.flow_shift);
    const float cfg_scale = a.cfg_scale.value_or(sampling.cfg_scale);
    std::optional<Checkpoint> dit_file, vae_file;
    if (!random_weights) {
        try {
            dit_file = Checkpoint::open(dit_path, {.kind = ModelKind::dit});
        } catch (const Error& e) {
            throw Error(std::string(dit_flag) + ": " + e.what());
        }
        try {
            vae_file = Checkpoint::open(vae_path, {.kind = ModelKind::vae});
        } catch (const Error& e) {
            throw Error(std::string(vae_flag) + ": " + e.what());
        }
    }
    HYVideoConfig dit_cfg = random_weights        ? default_dit_config()
                            : !dit_config.empty() ? generate_detail::read_config<HYVideoConfig>(dit_config, dit_config_flag)
                            : !a.model.empty()      ? HYVideoConfig::preset(a.model)
                                                    : generate_detail::report_config(dit_file->dit_config(), "DiT", "--dit-config");
    if (i2v) {
        dit_cfg.i2v_condition_type = condition;
        dit_cfg.in_channels = condition == I2VConditionType::latent_concat ? 2 * dit_cfg.out_channels + 1 : dit_cfg.out_channels;
    }
    const AutoencoderKLCausal3DConfig vae_cfg =
        random_weights        ? default_vae_config()
        : !vae_config.empty() ? generate_detail::read_config<AutoencoderKLCausal3DConfig>(vae_config, vae_config_flag)
                                : generate_detail::report_config(vae_file->vae_config(), "VAE", "--vae-config");
    // A configuration that disagrees with the weights (a --dit-config with 10^9 blocks, a --model of
    // another size, an I2V condition type the weights were not trained for) is refused here, from the
    // stored shapes, before any model is built.
    if (!random_weights) {
        try {
            dit_file->check_dit_config(dit_cfg);
        } catch (const Error& e) {
            throw Error(std::string(!dit_config.empty() ? dit_config_flag : !a.model.empty() ? "--model" : dit_flag) + ": " + e.what());
        }
        try {
            vae_file->check_vae_config(vae_cfg);
        } catch (const Error& e) {
            throw Error(std::string(!vae_config.empty() ? vae_config_flag : vae_flag) + ": " + e.what());
        }
    }
    // ---- conditioning inputs, checked before the weights are read ------------------------------
    TextEmbedsFile text;
    if (prompt) {
        // encoded below, once the outputs are known to be writable
    } else {
        try {
            text = read_text_embeds(a.text_embeds, dit_cfg);
        } catch (const Error& e) {
            throw Error(std::string("--text-embeds: ") + e.what());
        }
    }
    HYVIDEO_CHECK(prompt || cfg_scale <= 1.0f || text.negative, "--cfg-scale ", cfg_scale,
                  " needs negative_text_states, negative_text_mask and negative_text_states_2 in --text-embeds");
    std::optional<Frames> picture;
    std::optional<Bucket> bucket;
    if (i2v) {
        try {
            picture = read_image(a.i2v_image_path);
        } catch (const Error& e) {
            throw Error(std::string("--i2v-image-path: ") + e.what());
        }
        bucket = closest_bucket(picture->height, picture->width, i2v_buckets(i2v_base_size(a.i2v_resolution)));
        generate_detail::check_memory({bucket->height, bucket->width, size.frames});
    }

    // ---- outputs: every target checked by the checks of a real write, before the work ----------
    if (a.output.empty()) {
        std::error_code ec;
        fs::create_directories(a.save_path, ec);
        HYVIDEO_CHECK(!ec && fs::is_directory(a.save_path), "--save-path '", a.save_path, "': ",
                      ec ? "cannot create the directory: " + ec.message() : std::string("exists and is not a directory"));
        AtomicFile::check_target(output);
    }
    const VideoSize out_size = bucket ? VideoSize{bucket->height, bucket->width, size.frames} : size;
    if (!a.frames_dir.empty())
        generate_detail::check_frames_dir(a.frames_dir, generate_detail::decoded_video_bytes(out_size) + 4096.0L * out_size.frames);

    // ---- the prompt through the text encoders, which are released before the DiT is loaded ------
    if (prompt) {
        const PromptKind kind = size.frames == 1 && !i2v ? PromptKind::image : PromptKind::video;
        if (default_prompt)
            fmt::print("prompt: \"{}\" (the built-in model's default; --prompt sets another)\n", kBuiltinPrompt);
        text = encode_prompts(text_args, builtin ? &dit_cfg : nullptr, i2v, a.i2v_condition_type,
                              picture ? &*picture : nullptr, kind, cfg_scale > 1.0f || a.text.neg_prompt.has_value(),
                              dit_cfg.text_states_dim, dit_cfg.text_states_dim_2);
    }

    if constexpr (B::device != Device::cpu) {
        text.prompt = generate_detail::on_device<B>(text.prompt);
        if (text.negative) text.negative = generate_detail::on_device<B>(*text.negative);
    }
    HYVideoDiffusionTransformer<B> dit(dit_cfg);
    AutoencoderKLCausal3D<B> vae(vae_cfg);
    if (random_weights) {
        init_weights(dit, kDefaultWeightSeed);
        init_weights(vae, kDefaultWeightSeed + 1);
        fmt::print("model: the built-in default (HunyuanVideo's architecture at a tiny width) with deterministic "
                   "pseudo-random weights: its learned weights are text-to-video only (docs/builtin_model.md)\n");
    } else if (builtin) {
        load_checkpoint(dit, *dit_file);
        load_checkpoint(vae, *vae_file);
        fmt::print("model: the built-in default (HunyuanVideo's architecture at a tiny width, {} parameters, trained on "
                   "coloured shapes moving across a plain background; see docs/builtin_model.md)\n",
                   parameter_count(dit) + parameter_count(vae));
    } else {
        // The DiT's blocks stay in the mapped file and are converted one at a time during each forward
        // (load_streamed), so memory is the file plus one block's weights in the compute dtype.
        load_checkpoint_streamed(dit, *dit_file, a.precision == "bf16" ? DType::bf16 : DType::f32,
                                 a.prefetch == "next-block" ? BlockPrefetch::next_block : BlockPrefetch::none);
        load_checkpoint(vae, *vae_file);
        fmt::print("model: DiT {} from {} ({}, {} parameters)\n",
                   !a.dit_config.empty() ? a.dit_config : !a.model.empty() ? a.model : "config from the weights", a.dit,
                   dit_file->layout(), parameter_count(dit));
        fmt::print("       VAE from {} ({})\n", a.vae, vae_file->layout());
    }
    HYVIDEO_CHECK(dit_cfg.out_channels == vae.config.latent_channels, "the DiT predicts ", dit_cfg.out_channels,
                  " latent channels but the VAE has ", vae.config.latent_channels);
    if (a.precision == "bf16") set_matmul_dtype(dit, DType::bf16);
    if (a.vae_precision == "bf16") set_matmul_dtype(vae, DType::bf16);

    std::optional<ImageCondition> image;
    if (i2v) {
        if (bucket->height != size.height || bucket->width != size.width)
            fmt::print("note: image {}x{} -> bucket {}x{} ({}), which sets the video size\n", picture->height,
                       picture->width, bucket->height, bucket->width, a.i2v_resolution);
        size.height = bucket->height;
        size.width = bucket->width;
        image = ImageCondition{condition, encode_image_latents(vae, B::upload(preprocess_i2v_image(*picture, *bucket)))};
    }

    // ---- sampling ------------------------------------------------------------------------------
    SamplingOptions opt;
    opt.infer_steps = a.infer_steps;
    opt.flow_shift = flow_shift;
    opt.flow_reverse = a.flow_reverse;
    opt.embedded_cfg_scale = a.embedded_cfg_scale;
    opt.cfg_scale = cfg_scale;
    opt.guidance_bf16_rounding = a.precision == "bf16";
    const Shape lat_shape = latent_shape(size, 1, vae.config.latent_channels);
    Tensor latents = B::upload(randn(lat_shape, seed));
    if (image && a.i2v_stability) latents = HunyuanVideoPipeline<decltype(dit)>::stability_init(latents, image->img_latents);
    fmt::print("{}: {}x{}, {} frames, latents {}, {} steps (flow shift {:g}{}), seed {}\n",
               i2v ? "image-to-video" : "text-to-video", size.height, size.width, size.frames, shape_str(lat_shape),
               a.infer_steps, flow_shift, cfg_scale > 1.0f ? fmt::format(", cfg scale {:g}", cfg_scale) : "", seed);

    Progress progress(a.infer_steps);
    const HunyuanVideoPipeline<decltype(dit)> pipe(dit);
    const DenoiseConditions conditions{.negative = text.negative,
                                       .image = image,
                                       .on_step = [&](std::int64_t i, float t, const Tensor&) {
                                           progress.step(i, t);
                                           check_mapped_inputs();  // a truncated weight file ends the run at once
                                           return true;
                                       }};
    const auto run_with = [&](auto cache, const char* name) {
        latents = pipe.denoise(latents, text.prompt, opt, conditions, cache);
        if constexpr (requires { cache.computed; })
            fmt::print("{}: computed the blocks on {} of {} steps\n", name, cache.computed, cache.computed + cache.skipped);
    };
    if (a.teacache) run_with(TeaCache(*a.teacache), "teacache");
    else if (a.fbcache) run_with(FirstBlockCache(*a.fbcache), "fbcache");
    else run_with(NoStepCache{}, nullptr);
    if (dit.streamed) {
        fmt::print("sampled in {:.1f} s, of which {:.1f} s reading and converting the streamed blocks' weights",
                   progress.elapsed(), dit.streamed->times.reading);
        if (dit.streamed->prefetch == BlockPrefetch::next_block)
            fmt::print(" on a loader thread, {:.1f} s waiting for them", dit.streamed->times.waiting);
        fmt::print("\n");
    }

    // ---- decoding and output -------------------------------------------------------------------
    const auto t0 = std::chrono::steady_clock::now();
    vae.enable_tiling(a.vae_tiling);
    Tensor video = B::download(decode_video(vae, latents));
    if (image && image->type == I2VConditionType::latent_concat) video = video.slice(2, 4, video.size(2));  // as the official pipeline
    const Frames frames = frames_from_tensor(video);
    fmt::print("decoded {} frames in {:.1f} s\n", frames.count,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    // Weights read from a file that another program truncated meanwhile read as zeros: no output from them.
    check_mapped_inputs();
    // Frames first, then the video: a failure in either leaves neither (write_png_frames removes what it
    // wrote when it fails; the frames are removed here when the video fails).
    if (!a.frames_dir.empty()) {
        const bool existed = fs::exists(a.frames_dir);
        write_png_frames(a.frames_dir, frames);
        try {
            write_mp4(output, frames, a.fps);
        } catch (...) {
            std::error_code ec;
            for (std::int64_t t = 0; t < frames.count; ++t) fs::remove(fs::path(a.frames_dir) / png_frame_name(t, frames.count), ec);
            if (!existed) fs::remove(a.frames_dir, ec);
            throw;
        }
        fmt::print("wrote {} PNG frames to {}\n", frames.count, a.frames_dir);
    } else {
        write_mp4(output, frames, a.fps);
    }
    fmt::print("wrote {}\n", output.string());
    return 0;
}

// Declared here, instantiated in backends.cpp (one translation unit per backend keeps the heavy
// instantiations apart, so they compile side by side).
int run_generate_cpu(const GenerateArgs& a);
int run_generate_thrust_omp(const GenerateArgs& a);
int run_generate_cuda(const GenerateArgs& a);

inline int run_generate(const GenerateArgs& a) {
    require_backend_built(a.backend);
#if defined(HYVIDEO_HAS_CUDA)
    if (a.backend == "cuda") return run_generate_cuda(a);
#endif
    return a.backend == "thrust-omp" ? run_generate_thrust_omp(a) : run_generate_cpu(a);
}

}  // namespace hyvideo::cli
