// `hyvideo generate` as a user runs it: a short run of the built-in model writes a real H.264 MP4
// (and PNG frames); every bad input gets a message, exit status 1 and no output file.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <fstream>
#include <sstream>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

#include "cli_helpers.hpp"
#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/checkpoint/checkpoint.hpp"
#include "hyvideo/io/image.hpp"
#include "hyvideo/io/safetensors.hpp"
#include "hyvideo/io/video.hpp"
#include "hyvideo/pipelines/default_model.hpp"
#include "hyvideo/vae/autoencoder_kl_causal_3d.hpp"

namespace fs = std::filesystem;
using namespace hyvideo;

namespace {

using Run = hyvideo::test::CliRun;
using hyvideo::test::run_cli;
using hyvideo::test::frames_in;

struct Scratch {
    fs::path dir = fs::temp_directory_path() / ("hyvideo_gen_" + std::to_string(::getpid()));
    Scratch() { fs::create_directories(dir); }
    ~Scratch() { fs::remove_all(dir); }
    std::string operator/(const std::string& name) const { return (dir / name).string(); }
    // Nothing but the inputs the test put there: no partial video, no temporary file.
    std::size_t entries() const { return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir), {})); }
};

// A short run of the built-in model.
const std::string kSmall = "generate --video-size 64 64 --video-length 5 --infer-steps 2 --seed 3 ";

void save_embeds(const std::string& path, const PromptEmbeds& e, const std::string& prefix = "",
                 std::vector<std::pair<std::string, Tensor>> extra = {}) {
    extra.emplace_back(prefix + "text_states", e.text_states);
    extra.emplace_back(prefix + "text_mask", e.text_mask);
    extra.emplace_back(prefix + "text_states_2", e.text_states_2);
    save_safetensors(path, extra);
}

}  // namespace

TEST_CASE("generate: the built-in model writes a playable H.264 MP4 and PNG frames") {
    Scratch s;
    const Run r = run_cli(kSmall + "--video-size 60 60 -o " + (s / "out.mp4") + " --frames-dir " + (s / "frames"));
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK(r.output.find("aligned up to 64x64") != std::string::npos);
    CHECK(r.output.find("built-in default") != std::string::npos);
    const VideoInfo info = probe_video(s / "out.mp4");
    CHECK(info.codec == "h264");
    CHECK(info.pix_fmt == "yuv420p");
    CHECK(info.frames == 5);
    CHECK(info.width == 64);
    CHECK(info.height == 64);
    CHECK(info.duration == doctest::Approx(5.0 / 24.0).epsilon(0.05));
    std::size_t pngs = 0;
    for (const auto& e : fs::directory_iterator(s.dir / "frames")) pngs += e.path().extension() == ".png";
    CHECK(pngs == 5);
    const Frames first = read_image(s.dir / "frames" / "frame_0000.png");
    CHECK(first.height == 64);
}

TEST_CASE("generate: the same seed writes the same frames") {
    Scratch s;
    REQUIRE(run_cli(kSmall + "--frames-dir " + (s / "a") + " -o " + (s / "a.mp4")).status == 0);
    REQUIRE(run_cli("--threads 1 " + kSmall + "--frames-dir " + (s / "b") + " -o " + (s / "b.mp4")).status == 0);
    const Frames a = read_image(s.dir / "a" / "frame_0004.png"), b = read_image(s.dir / "b" / "frame_0004.png");
    CHECK(a.rgb == b.rgb);
}

TEST_CASE("generate: --vae-precision bf16 decodes the same latents to nearly the same frames") {
    Scratch s;
    REQUIRE(run_cli(kSmall + "--frames-dir " + (s / "f32") + " -o " + (s / "f32.mp4")).status == 0);
    const Run r = run_cli(kSmall + "--vae-precision bf16 --frames-dir " + (s / "bf16") + " -o " + (s / "bf16.mp4"));
    INFO(r.output);
    REQUIRE(r.status == 0);
    const Frames a = read_image(s.dir / "f32" / "frame_0004.png"), b = read_image(s.dir / "bf16" / "frame_0004.png");
    REQUIRE(a.rgb.size() == b.rgb.size());
    double diff = 0;
    for (std::size_t i = 0; i < a.rgb.size(); ++i) diff += std::abs(int(a.rgb[i]) - int(b.rgb[i]));
    diff /= static_cast<double>(a.rgb.size());
    MESSAGE("mean |f32 - bf16| over frame 4: ", diff, " of 255");
    CHECK(diff > 0);    // the VAE did compute in bf16
    CHECK(diff < 2.0);  // and stayed close
}

TEST_CASE("generate: image-to-video with both condition types, the bucket setting the size") {
    Scratch s;
    Frames img = Frames::zeros(1, 90, 160);  // 16:9
    for (std::int64_t y = 0; y < 90; ++y)
        for (std::int64_t x = 0; x < 160; ++x) {
            img.at(0, y, x, 0) = static_cast<std::uint8_t>(x);
            img.at(0, y, x, 1) = static_cast<std::uint8_t>(2 * y);
        }
    write_png(s / "in.png", img.frame(0), img.height, img.width);
    for (const std::string type : {"token_replace", "latent_concat"}) {
        const Run r = run_cli(kSmall + "--i2v-image-path " + (s / "in.png") + " --i2v-resolution 360p --i2v-stability " +
                              "--i2v-condition-type " + type + " -o " + (s / (type + ".mp4")));
        INFO(type, "\n", r.output);
        REQUIRE(r.status == 0);
        CHECK(r.output.find("image-to-video") != std::string::npos);
        CHECK(r.output.find("bucket 352x608") != std::string::npos);
        const VideoInfo info = probe_video(s / (type + ".mp4"));
        CHECK(info.height == 352);
        CHECK(info.width == 608);
        // latent_concat drops the first 4 decoded frames, as the official pipeline does.
        CHECK(info.frames == (type == "token_replace" ? 5 : 1));
    }
}

TEST_CASE("generate: bad inputs give a message, exit 1 and no output file") {
    Scratch s;
    const HYVideoConfig cfg = default_dit_config();
    struct Bad {
        std::string args, expect;
    };
    const PromptEmbeds good = default_prompt_embeds(cfg, 1);
    save_embeds(s / "wrong_dim.safetensors",
                {Tensor::zeros({1, 16, cfg.text_states_dim + 1}), good.text_mask, good.text_states_2});
    save_embeds(s / "extra.safetensors", good, "", {{"prompt_ids", Tensor::zeros({1, 16})}});
    save_safetensors(s / "no_mask.safetensors", {{"text_states", good.text_states}, {"text_states_2", good.text_states_2}});
    save_embeds(s / "no_negative.safetensors", good);
    {
        std::ofstream(s / "not_an_image.png") << "this is not a PNG";
        std::ofstream(s / "a_file") << "x";
    }
    // Weights of the built-in structure, with one tensor missing and one renamed.
    HYVideoDiffusionTransformer<cpu> dit(cfg);
    init_weights(dit, 1);
    std::vector<std::pair<std::string, Tensor>> weights;
    dit.parameters("", [&](const std::string& n, const Shape&, Tensor& t) { weights.emplace_back(n, t); });
    save_safetensors(s / "dit_good.safetensors", weights);
    auto missing = weights;
    missing.erase(missing.begin() + 3);
    save_safetensors(s / "dit_missing.safetensors", missing);
    auto renamed = weights;
    for (auto& [name, t] : renamed)
        if (name == "double_blocks.0.img_attn_qkv.weight") name = "double_blocks.0.img_attn.qkv.weight";
    save_safetensors(s / "dit_renamed.safetensors", renamed);
    AutoencoderKLCausal3D<cpu> vae(default_vae_config());
    init_weights(vae, 1);
    std::vector<std::pair<std::string, Tensor>> vae_weights;
    vae.parameters("", [&](const std::string& n, const Shape&, Tensor& t) { vae_weights.emplace_back(n, t); });
    save_safetensors(s / "vae.safetensors", vae_weights);
    std::ofstream(s / "dit.json") << cfg.to_json().dump();
    std::ofstream(s / "vae.json") << default_vae_config().to_json().dump();
    const std::string real = " --dit-config " + (s / "dit.json") + " --vae-config " + (s / "vae.json") + " --vae " +
                             (s / "vae.safetensors") + " --text-embeds " + (s / "no_negative.safetensors");

    const std::size_t before = s.entries();
    const std::vector<Bad> cases = {
        {"--video-length 8", "4k+1"},
        {"--video-size 0 64", "height 0 is not in 1..16384"},
        {"-o /nonexistent_hyvideo_dir/out.mp4", "/nonexistent_hyvideo_dir: No such file or directory"},
        {"-o " + (s / "a_file") + "/out.mp4", "a_file"},
        {"--i2v-image-path " + (s / "missing.png"), "missing.png"},
        {"--i2v-image-path " + (s / "not_an_image.png"), "not_an_image.png"},
        {"--dit " + (s / "dit_missing.safetensors") + real, "missing weight"},
        {"--dit " + (s / "dit_renamed.safetensors") + real, "img_attn_qkv"},
        {"--dit " + (s / "dit_missing.safetensors"), "both --dit and --vae"},
        {"--cfg-scale 3 --dit " + (s / "dit_good.safetensors") + real, "negative"},
    };
    for (const auto& c : cases) {
        const Run r = run_cli(kSmall + c.args + (c.args.find(" -o ") == std::string::npos && c.args.rfind("-o", 0) != 0
                                                     ? " -o " + (s / "out.mp4")
                                                     : ""));
        INFO(c.args, "\n", r.output);
        CHECK(r.status == 1);
        CHECK(r.output.find(c.expect) != std::string::npos);
        CHECK(s.entries() == before);  // no out.mp4, no temporary file
    }
    // Embeddings are checked against the model's text dimensions and names.
    for (const auto& [file, expect] : std::vector<std::pair<std::string, std::string>>{
             {"wrong_dim", "text_states"}, {"extra", "prompt_ids"}, {"no_mask", "text_mask"}}) {
        const Run r = run_cli(kSmall + "--dit " + (s / "dit_good.safetensors") + real + " --text-embeds " +
                              (s / (file + ".safetensors")) + " -o " + (s / "out.mp4"));
        INFO(file, "\n", r.output);
        CHECK(r.status == 1);
        CHECK(r.output.find(expect) != std::string::npos);
        CHECK(s.entries() == before);
    }
}

namespace {

std::string checkpoints_dir() { return std::string(HYVIDEO_TEST_DATA_DIR) + "/checkpoints/"; }

}  // namespace

TEST_CASE("generate: --dit takes every checkpoint layout and the configuration the weights determine") {
    // The transformer_tiny fixture's weights in the released layouts (tests/data/checkpoints), with a
    // VAE of the built-in structure (16 latent channels) and sample 0 of the fixture's text inputs.
    Scratch s;
    const SafetensorsFile fx = SafetensorsFile::open(std::string(HYVIDEO_TEST_DATA_DIR) + "/golden/transformer_tiny.safetensors");
    save_safetensors(s / "prompt.safetensors", {{"text_states", fx.get("input.text_states").slice(0, 0, 1)},
                                                {"text_mask", fx.get("input.text_mask").slice(0, 0, 1)},
                                                {"text_states_2", fx.get("input.text_states_2").slice(0, 0, 1)}});
    std::ofstream(s / "dit.json") << fx.metadata().at("config");
    AutoencoderKLCausal3D<cpu> vae(default_vae_config());
    init_weights(vae, 5);
    std::vector<std::pair<std::string, Tensor>> vae_weights;
    vae.parameters("", [&](const std::string& n, const Shape&, Tensor& t) { vae_weights.emplace_back(n, t); });
    save_safetensors(s / "vae.safetensors", vae_weights);
    std::ofstream(s / "vae.json") << default_vae_config().to_json().dump();
    // ComfyUI's checkpoint layout: the official bf16 tensors under "model.diffusion_model.".
    const std::string official = checkpoints_dir() + "official/transformers/mp_rank_00_model_states.pt";
    {
        const Checkpoint pt = Checkpoint::open(official);
        std::vector<std::pair<std::string, Tensor>> prefixed;
        for (const auto& n : pt.weights().names()) prefixed.emplace_back("model.diffusion_model." + n, pt.weights().get(n));
        save_safetensors(s / "comfyui.safetensors", prefixed);
    }

    const std::string common = "generate --video-size 32 32 --video-length 5 --infer-steps 2 --seed 7 --text-embeds " +
                               (s / "prompt.safetensors") + " --vae " + (s / "vae.safetensors") + " --vae-config " +
                               (s / "vae.json");
    struct Layout {
        std::string name, dit, config, layout;
    };
    const std::string with_config = " --dit-config " + (s / "dit.json");
    const std::vector<Layout> layouts = {
        {"official", official, with_config, "official release layout"},
        // diffusers' config.json carries the RoPE sizes, so no --dit-config is needed
        {"diffusers", checkpoints_dir() + "diffusers/transformer", "", "diffusers layout"},
        {"comfyui", s / "comfyui.safetensors", with_config, "ComfyUI checkpoint layout"},
        {"fp8", checkpoints_dir() + "official/transformers/mp_rank_00_model_states_fp8.pt", with_config,
         "fp8 scales from mp_rank_00_model_states_fp8_map.pt"},
    };
    std::map<std::string, std::vector<std::vector<std::uint8_t>>> frames;
    for (const auto& l : layouts) {
        const Run r = run_cli(common + " --dit " + l.dit + l.config + " --frames-dir " + (s / l.name) + " -o " +
                              (s / (l.name + ".mp4")));
        INFO(l.name, "\n", r.output);
        REQUIRE(r.status == 0);
        CHECK(r.output.find(l.layout) != std::string::npos);
        frames[l.name] = frames_in(s.dir / l.name);
        CHECK(frames[l.name].size() == 5);
    }
    // The same bf16 values in three containers and two namings: the same video, bit for bit.
    CHECK(frames["diffusers"] == frames["official"]);
    CHECK(frames["comfyui"] == frames["official"]);
    // fp8 runs the quantised weights (close to, but not, the bf16 ones).
    CHECK(frames["fp8"] != frames["official"]);
    // Blocks read one ahead on a loader thread: the same video.
    {
        const Run r = run_cli(common + " --dit " + layouts.back().dit + with_config + " --prefetch next-block" +
                              " --frames-dir " + (s / "fp8_prefetch") + " -o " + (s / "fp8_prefetch.mp4"));
        INFO(r.output);
        REQUIRE(r.status == 0);
        CHECK(r.output.find("on a loader thread") != std::string::npos);
        CHECK(frames_in(s.dir / "fp8_prefetch") == frames["fp8"]);
    }

    // Without a config the RoPE split of this custom head size is unknown: said, not guessed silently.
    const Run r = run_cli(common + " --dit " + official + " -o " + (s / "no_config.mp4"));
    CHECK(r.output.find("--dit-config sets them") != std::string::npos);
}

TEST_CASE("generate: --vae takes the official .pt (config.json beside it) and the diffusers folder alike") {
    Scratch s;
    HYVideoConfig cfg = default_dit_config();
    cfg.in_channels = cfg.out_channels = 4;  // the vae_tiny fixture's latent channels
    HYVideoDiffusionTransformer<cpu> dit(cfg);
    init_weights(dit, 9);
    std::vector<std::pair<std::string, Tensor>> weights;
    dit.parameters("", [&](const std::string& n, const Shape&, Tensor& t) { weights.emplace_back(n, t); });
    save_safetensors(s / "dit.safetensors", weights);
    std::ofstream(s / "dit.json") << cfg.to_json().dump();
    save_embeds(s / "prompt.safetensors", default_prompt_embeds(cfg, 1));
    const std::string common = "generate --video-size 32 32 --video-length 5 --infer-steps 2 --seed 7 --text-embeds " +
                               (s / "prompt.safetensors") + " --dit " + (s / "dit.safetensors") + " --dit-config " +
                               (s / "dit.json");
    for (const auto& [name, path] : std::vector<std::pair<std::string, std::string>>{
             {"official", checkpoints_dir() + "official/vae/pytorch_model.pt"}, {"diffusers", checkpoints_dir() + "diffusers/vae"}}) {
        const Run r = run_cli(common + " --vae " + path + " --frames-dir " + (s / name) + " -o " + (s / (name + ".mp4")));
        INFO(name, "\n", r.output);
        REQUIRE(r.status == 0);
    }
    const auto a = frames_in(s.dir / "official"), b = frames_in(s.dir / "diffusers");
    CHECK(a.size() == 5);
    CHECK(a == b);
}
