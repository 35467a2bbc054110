// Config inference from checkpoints (checkpoint/checkpoint.hpp: infer_dit_config, infer_vae_config,
// check_dit_config, check_vae_config) with untrusted config.json files and stored shapes: every bad
// value is one hyvideo::Error naming the file, the JSON (config.json, the metadata entry) and the key
// or the tensor; sizes the weights do not allow are refused before any model is built. Each test of a
// finding failed before its fix.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../support/error_of.hpp"
#include "../support/small_configs.hpp"
#include "../support/temp_dir.hpp"
#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/checkpoint/checkpoint.hpp"
#include "hyvideo/io/safetensors.hpp"
#include "hyvideo/models/hunyuan_video.hpp"
#include "hyvideo/vae/autoencoder_kl_causal_3d.hpp"

#ifndef HYVIDEO_TEST_DATA_DIR
#error "HYVIDEO_TEST_DATA_DIR must name the tests/data directory"
#endif

namespace fs = std::filesystem;
using namespace hyvideo;
using nlohmann::json;

using hyvideo::test::error_of;

namespace {

const fs::path kCkpt = fs::path(HYVIDEO_TEST_DATA_DIR) / "checkpoints";

// The small DiT of the shared configs, with a guidance embedding, so that inference sees guidance_in too.
HYVideoConfig small_dit() {
    HYVideoConfig c = test::small_dit();
    c.guidance_embed = true;
    return c;
}

using Manifest = std::map<std::string, Shape>;

// The official names and shapes of a model built from `c`, without weights.
template <class Model, class Config>
Manifest manifest_of(const Config& c) {
    Model m(c);
    Manifest out;
    m.parameters("", [&](const std::string& name, const Shape& shape, Tensor&) { out.emplace(name, shape); });
    return out;
}
Manifest dit_manifest(const HYVideoConfig& c) { return manifest_of<HYVideoDiffusionTransformer<cpu>>(c); }

ShapeLookup lookup(const Manifest& m) {
    return [m](const std::string& name) -> std::optional<Shape> {
        const auto it = m.find(name);
        if (it == m.end()) return std::nullopt;
        return it->second;
    };
}

// A DiT checkpoint of zeros with the official names, as a single safetensors file.
void write_dit(const fs::path& path, const HYVideoConfig& c, const std::map<std::string, std::string>& metadata = {}) {
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const auto& [name, shape] : dit_manifest(c)) tensors.emplace_back(name, Tensor::zeros(shape));
    save_safetensors(path, tensors, metadata);
}

// The released test VAE (tests/data/checkpoints/official/vae) in a folder of its own, with `config`
// as its config.json.
void write_vae_dir(const fs::path& dir, const std::string& config) {
    fs::create_directories(dir);
    fs::copy_file(kCkpt / "official" / "vae" / "pytorch_model.pt", dir / "pytorch_model.pt");
    std::ofstream(dir / "config.json") << config;
}

json official_vae_json() {
    std::ifstream in(kCkpt / "official" / "vae" / "config.json");
    return json::parse(in);
}

}  // namespace

// ---- config.json and the metadata entry ------------------------------------------------------------------

TEST_CASE("config inference: a VAE config.json with norm_num_groups 0 is an error naming it, not SIGFPE") {
    // Finding: the inferred config went through validate(), which divided by norm_num_groups.
    const test::TempDir dir;
    json j = official_vae_json();
    j["norm_num_groups"] = 0;
    write_vae_dir(dir / "vae", j.dump());
    const Checkpoint c = Checkpoint::open(dir / "vae");
    CHECK(error_of([&] { c.vae_config(); }) ==
          (dir / "vae" / "pytorch_model.pt").string() +
              ": config.json: VAE config: 'norm_num_groups' must be an integer in [1, 65536], got 0");
    // And every other key of the VAE's config.json, by type and range.
    j = official_vae_json();
    j["scaling_factor"] = 0;
    write_vae_dir(dir / "vae2", j.dump());
    CHECK_THROWS_WITH_AS(Checkpoint::open(dir / "vae2").vae_config(),
                         doctest::Contains("config.json: VAE config: scaling_factor must be a positive finite number, got 0"), Error);
    j = official_vae_json();
    j["sample_tsize"] = 1e30;
    write_vae_dir(dir / "vae3", j.dump());
    CHECK_THROWS_WITH_AS(Checkpoint::open(dir / "vae3").vae_config(),
                         doctest::Contains("config.json: VAE config: 'sample_tsize' must be an integer in [1, 65536], got 1e+30"), Error);
}

TEST_CASE("config inference: config.json's compression ratios must agree with the weights' samplers") {
    // Finding: a spatial_compression_ratio the weights do not have was taken over the weights, and the
    // model built from it then failed to load (or, with a matching tensor set, used other strides).
    const test::TempDir dir;
    json j = official_vae_json();
    j["spatial_compression_ratio"] = 1;
    write_vae_dir(dir / "vae", j.dump());
    CHECK_THROWS_WITH_AS(Checkpoint::open(dir / "vae").vae_config(),
                         doctest::Contains("give block 0 no sampler, but the weights have one (encoder.down_blocks.0.downsamplers.0"),
                         Error);
    j["spatial_compression_ratio"] = 0;
    write_vae_dir(dir / "vae0", j.dump());
    CHECK_THROWS_WITH_AS(Checkpoint::open(dir / "vae0").vae_config(),
                         doctest::Contains("'spatial_compression_ratio' must be an integer in [1, 65536], got 0"), Error);
}

TEST_CASE("config inference: a config.json that is not an object, or nests too deep, is refused when opened") {
    const test::TempDir dir;
    write_vae_dir(dir / "array", "[1, 2, 3]");
    CHECK_THROWS_WITH_AS(Checkpoint::open(dir / "array"), doctest::Contains("config.json: not a JSON object (got [1,2,3])"), Error);
    write_vae_dir(dir / "deep", R"({"sample_size": )" + std::string(64, '[') + std::string(64, ']') + "}");
    CHECK_THROWS_WITH_AS(Checkpoint::open(dir / "deep"), doctest::Contains("config.json: nests deeper than 32 levels"), Error);
}

TEST_CASE("config inference: a deeply nested config.json is refused before it is copied") {
    // Finding: infer_vae_config copied the document, which recurses once per level: a config.json of
    // a million nested arrays (2 MB) overflowed the stack.
    const Manifest v = manifest_of<AutoencoderKLCausal3D<cpu>>(AutoencoderKLCausal3DConfig::from_json(official_vae_json()));
    const json deep = json::parse(R"({"sample_size": )" + std::string(1'000'000, '[') + std::string(1'000'000, ']') + "}");
    CHECK_THROWS_WITH_AS(infer_vae_config(lookup(v), &deep), "config.json nests deeper than 32 levels", Error);
    CHECK_THROWS_WITH_AS(infer_dit_config(lookup(dit_manifest(small_dit())), &deep),
                         "config.json nests deeper than 32 levels", Error);
}

TEST_CASE("config inference: the DiT's config.json keys are typed, in both key sets") {
    const test::TempDir dir;
    // Official keys beside the official .pt.
    fs::create_directories(dir / "official");
    fs::copy_file(kCkpt / "official" / "transformers" / "mp_rank_00_model_states.pt", dir / "official" / "model.pt");
    const std::string pt = (dir / "official" / "model.pt").string();
    std::ofstream(dir / "official" / "config.json") << R"({"rope_dim_list": [4, 6, 6.0]})";
    CHECK(error_of([&] { Checkpoint::open(dir / "official" / "model.pt").dit_config(); }) ==
          pt + ": config.json: 'rope_dim_list' must be a list of 3 integers in [1, 1048576], got [4,6,6.0]");
    std::ofstream(dir / "official" / "config.json") << R"({"rope_dim_list": [4, 6, 6], "rope_theta": -256})";
    CHECK(error_of([&] { Checkpoint::open(dir / "official" / "model.pt").dit_config(); }) ==
          pt + ": the configuration from the weights and config.json is not valid: model config: rope_theta must be a "
               "positive finite number, got -256");
    std::ofstream(dir / "official" / "config.json") << R"({"rope_dim_list": [4, 6, 6], "use_attention_mask": "no"})";
    CHECK_THROWS_WITH_AS(Checkpoint::open(dir / "official" / "model.pt").dit_config(),
                         doctest::Contains("config.json: 'use_attention_mask' must be true or false, got \"no\""), Error);
    std::ofstream(dir / "official" / "config.json") << R"({"rope_dim_list": [4, 6, 6], "i2v_condition_type": "token_replace"})";
    CHECK(Checkpoint::open(dir / "official" / "model.pt").dit_config().config.i2v_condition_type == I2VConditionType::token_replace);

    // diffusers' keys: 1e30 in rope_axes_dim became INT64_MIN; a non-string image_condition_type was ignored.
    fs::copy(kCkpt / "diffusers" / "transformer", dir / "diffusers");
    std::ifstream in(dir / "diffusers" / "config.json");
    json j = json::parse(in);
    in.close();
    j["rope_axes_dim"] = {1e30, 6, 6};
    std::ofstream(dir / "diffusers" / "config.json") << j.dump();
    CHECK_THROWS_WITH_AS(Checkpoint::open(dir / "diffusers").dit_config(),
                         doctest::Contains("config.json: 'rope_axes_dim' must be a list of 3 integers in [1, 1048576], got [1e+30,6,6]"),
                         Error);
    j["rope_axes_dim"] = {4, 6, 6};
    j["image_condition_type"] = 5;
    std::ofstream(dir / "diffusers" / "config.json") << j.dump();
    CHECK_THROWS_WITH_AS(Checkpoint::open(dir / "diffusers").dit_config(),
                         doctest::Contains("config.json: 'image_condition_type' must be \"token_replace\", "
                                           "\"latent_concat\" or \"\", got 5"),
                         Error);
    j["image_condition_type"] = "latent_concatenate";
    std::ofstream(dir / "diffusers" / "config.json") << j.dump();
    CHECK_THROWS_WITH_AS(Checkpoint::open(dir / "diffusers").dit_config(),
                         doctest::Contains("'image_condition_type' must be \"token_replace\", \"latent_concat\" or \"\", "
                                           "got \"latent_concatenate\""),
                         Error);
    j["image_condition_type"] = "latent_concat";
    std::ofstream(dir / "diffusers" / "config.json") << j.dump();
    CHECK(Checkpoint::open(dir / "diffusers").dit_config().config.i2v_condition_type == I2VConditionType::latent_concat);
}

TEST_CASE("config inference: the safetensors \"config\" metadata is read as strictly, and named") {
    const test::TempDir dir;
    write_dit(dir / "dit.safetensors", small_dit(), {{"config", R"({"dit": {"rope_dim_list": [4, 6, 6], "rope_theta": "256"}})"}});
    CHECK(error_of([&] { Checkpoint::open(dir / "dit.safetensors").dit_config(); }) ==
          (dir / "dit.safetensors").string() +
              ": the \"config\" metadata's DiT part: 'rope_theta' must be a finite number within the range of a float, got \"256\"");
    // Free text that is no JSON object is not a config; a NUL would have ended the parse early.
    write_dit(dir / "nul.safetensors", small_dit(), {{"config", std::string("{}\0{\"rope_theta\": -1}", 21)}});
    CHECK(Checkpoint::open(dir / "nul.safetensors").config_source().empty());
    write_dit(dir / "text.safetensors", small_dit(), {{"config", "HYVideo-T/2"}});
    CHECK(Checkpoint::open(dir / "text.safetensors").config_source().empty());
    // Deep nesting is refused before the document is copied (which recurses once per level).
    write_dit(dir / "deep.safetensors", small_dit(), {{"config", R"({"dit": {"x": )" + std::string(5000, '[') + std::string(5000, ']') + "}}"}});
    CHECK_THROWS_WITH_AS(Checkpoint::open(dir / "deep.safetensors"), doctest::Contains("the \"config\" metadata nests deeper than 32 levels"),
                         Error);
    write_dit(dir / "good.safetensors", small_dit(), {{"config", json{{"dit", small_dit().to_json()}}.dump()}});
    const auto g = Checkpoint::open(dir / "good.safetensors").dit_config();
    CHECK(g.complete);
    CHECK(g.config.to_json() == small_dit().to_json());
}

// ---- sizes from shapes -----------------------------------------------------------------------------------

TEST_CASE("config inference: qkv_bias is read from the QKV projection, not from linear1's bias every block has") {
    // Finding: single_blocks.0.linear1.bias (always present) made every model infer qkv_bias = true.
    HYVideoConfig c = small_dit();
    c.qkv_bias = false;
    CHECK_FALSE(infer_dit_config(lookup(dit_manifest(c)), nullptr).config.qkv_bias);
    c.mm_double_blocks_depth = 0;  // then the refiner's QKV decides
    CHECK_FALSE(infer_dit_config(lookup(dit_manifest(c)), nullptr).config.qkv_bias);
    CHECK(infer_dit_config(lookup(dit_manifest(small_dit())), nullptr).config.qkv_bias);
}

TEST_CASE("config inference: the MLP ratio gives back the stored width through int(hidden * ratio)") {
    // Finding: hidden 28 and an MLP of 61 gave the ratio 61/28, and int(28 * (61/28)) is 60.
    HYVideoConfig c = small_dit();
    c.hidden_size = 28;
    c.heads_num = 2;
    c.rope_dim_list = {6, 4, 4};
    c.mlp_width_ratio = std::nextafter(61.0 / 28.0, 3.0);
    REQUIRE(c.mlp_hidden_dim() == 61);
    const auto g = infer_dit_config(lookup(dit_manifest(c)), nullptr);
    CHECK(g.config.mlp_hidden_dim() == 61);
    CHECK(dit_manifest(g.config) == dit_manifest(c));
    // Without double blocks the single blocks' linear1 (q, k, v and the MLP) sizes it.
    c.mm_double_blocks_depth = 0;
    CHECK(infer_dit_config(lookup(dit_manifest(c)), nullptr).config.mlp_hidden_dim() == 61);
}

TEST_CASE("config inference: shapes that do not divide are refused, not truncated") {
    Manifest m = dit_manifest(small_dit());
    // Heads: a QK norm of 24 entries in a width of 64 gave 2 heads of 32.
    m["double_blocks.0.img_attn_q_norm.weight"] = {24};
    CHECK_THROWS_WITH_AS(infer_dit_config(lookup(m), nullptr),
                         "double_blocks.0.img_attn_q_norm.weight has 24 entries, which do not divide the hidden size 64 of "
                         "img_in.proj.weight into heads",
                         Error);
    // Output channels: 65 outputs for a 4-pixel patch gave 16 channels.
    m = dit_manifest(small_dit());
    m["final_layer.linear.weight"] = {65, 64};
    CHECK_THROWS_WITH_AS(infer_dit_config(lookup(m), nullptr), doctest::Contains("its 65 outputs are not a whole number"), Error);
    // Latent channels: an odd number of moments gave half of one less.
    Manifest v = manifest_of<AutoencoderKLCausal3D<cpu>>(AutoencoderKLCausal3DConfig::from_json(official_vae_json()));
    v["encoder.conv_out.conv.weight"] = {9, 16, 3, 3, 3};
    CHECK_THROWS_WITH_AS(infer_vae_config(lookup(v), nullptr), doctest::Contains("has 9 output channels, not a latent's mean"),
                         Error);
    // A size beyond the bounds (a zero-element tensor can claim any): refused by validate, naming it.
    m = dit_manifest(small_dit());
    m["img_in.proj.weight"] = {64, 16, 1, 2, 0};
    CHECK_THROWS_WITH_AS(infer_dit_config(lookup(m), nullptr),
                         "the configuration from the weights is not valid: model config: patch_size entry must be in [1, 64], got 0", Error);
    m = dit_manifest(small_dit());
    m["vector_in.in_layer.weight"] = {64, std::int64_t{1} << 40};
    CHECK_THROWS_WITH_AS(infer_dit_config(lookup(m), nullptr),
                         doctest::Contains("text_states_dim_2 must be in [1, 1048576], got 1099511627776"), Error);
}

TEST_CASE("config inference: the QK norm's kind and an RoPE placeholder that validates") {
    HYVideoConfig c = small_dit();
    c.qk_norm_type = "layer";
    const Manifest m = manifest_of<HYVideoDiffusionTransformer<cpu, HunyuanVideoParts::with_qk_norm<LayerNormQK>>>(c);
    CHECK(infer_dit_config(lookup(m), nullptr).config.qk_norm_type == "layer");
    // head_dim 16 has no preset: the placeholder (marked incomplete) is three even shares.
    const auto g = infer_dit_config(lookup(dit_manifest(small_dit())), nullptr);
    CHECK_FALSE(g.complete);
    CHECK(g.config.rope_dim_list == std::vector<std::int64_t>{8, 4, 4});
}

// ---- a user's config against the weights ----------------------------------------------------------------

TEST_CASE("check_dit_config: a given config is compared with the weights before a model is built") {
    const test::TempDir dir;
    write_dit(dir / "dit.safetensors", small_dit());
    const Checkpoint ckpt = Checkpoint::open(dir / "dit.safetensors");
    const std::string file = (dir / "dit.safetensors").string();
    ckpt.check_dit_config(small_dit());
    // What the weights do not store may differ.
    HYVideoConfig other_rope = small_dit();
    other_rope.rope_dim_list = {8, 4, 4};
    other_rope.rope_theta = 10000.0f;
    ckpt.check_dit_config(other_rope);

    // Finding: --dit-config with depth 1e9 allocated a billion blocks before the weights were compared.
    HYVideoConfig c = small_dit();
    c.mm_single_blocks_depth = 1'000'000'000;
    CHECK(error_of([&] { ckpt.check_dit_config(c); }) ==
          file + ": model config: mm_single_blocks_depth must be in [0, 4096], got 1000000000");
    c = small_dit();
    c.mm_single_blocks_depth = 4000;
    CHECK(error_of([&] { ckpt.check_dit_config(c); }) ==
          file + ": the given config's mm_single_blocks_depth 4000 disagrees with the weights' 2 (single_blocks.<i>.linear1.weight)");
    c = HYVideoConfig::preset("HYVideo-T/2-cfgdistill");
    CHECK(error_of([&] { ckpt.check_dit_config(c); }) ==
          file + ": the given config's hidden_size 3072 disagrees with the weights' 64 (img_in.proj.weight)");
    c = small_dit();
    c.patch_size = {1, 1, 1};
    CHECK(error_of([&] { ckpt.check_dit_config(c); }) ==
          file + ": the given config's patch_size [1,1,1] disagrees with the weights' [1,2,2] (img_in.proj.weight)");
    c = small_dit();
    c.guidance_embed = false;
    CHECK(error_of([&] { ckpt.check_dit_config(c); }) ==
          file + ": the given config's guidance_embed false disagrees with the weights' true (guidance_in.mlp.0.weight)");
    c = small_dit();
    c.mlp_width_ratio = 2.0;
    CHECK(error_of([&] { ckpt.check_dit_config(c); }) ==
          file + ": the given config's MLP width int(hidden_size * mlp_width_ratio) 128 disagrees with the weights' 256 "
                 "(double_blocks.0.img_mlp.fc1.weight)");
    c = small_dit();
    c.refiner_depth = 3;
    CHECK(error_of([&] { ckpt.check_dit_config(c); }) ==
          file + ": the given config's refiner_depth 3 disagrees with the weights' 2 "
                 "(txt_in.individual_token_refiner.blocks.<i>.self_attn_qkv.weight)");
    c = small_dit();
    c.heads_num = 8;
    c.rope_dim_list = {4, 2, 2};
    CHECK(error_of([&] { ckpt.check_dit_config(c); }) ==
          file + ": the given config's heads_num 8 disagrees with the weights' 4 (double_blocks.0.img_attn_q_norm.weight)");
    c = small_dit();
    c.text_states_dim_2 = 768;
    CHECK(error_of([&] { ckpt.check_dit_config(c); }) ==
          file + ": the given config's text_states_dim_2 768 disagrees with the weights' 24 (vector_in.in_layer.weight)");
    c = small_dit();
    c.qkv_bias = false;
    CHECK(error_of([&] { ckpt.check_dit_config(c); }) ==
          file + ": the given config's qkv_bias false disagrees with the weights' true (double_blocks.0.img_attn_qkv.bias)");
    c = small_dit();
    c.in_channels = 33;
    CHECK(error_of([&] { ckpt.check_dit_config(c); }) ==
          file + ": the given config's in_channels 33 disagrees with the weights' 16 (img_in.proj.weight)");

    // The other model kind.
    const Checkpoint vae = Checkpoint::open(kCkpt / "official" / "vae");
    CHECK_THROWS_WITH_AS(vae.check_dit_config(small_dit()), doctest::Contains("holds a VAE, not a DiT"), Error);
}

TEST_CASE("check_vae_config: a given VAE config is compared with the weights, samplers included") {
    const Checkpoint ckpt = Checkpoint::open(kCkpt / "official" / "vae");
    const std::string file = (kCkpt / "official" / "vae" / "pytorch_model.pt").string();
    const auto good = AutoencoderKLCausal3DConfig::from_json(official_vae_json());
    ckpt.check_vae_config(good);
    auto c = good;
    c.sample_size = 64;  // tiles and scaling are not stored
    c.scaling_factor = 1.0;
    ckpt.check_vae_config(c);
    c = good;
    c.block_out_channels = {8, 16, 16, 32};
    CHECK(error_of([&] { ckpt.check_vae_config(c); }) ==
          file + ": the given config's block_out_channels [8,16,16,32] disagrees with the weights' [8,16,16,16] "
                 "(encoder.down_blocks.<i>.resnets.0.conv1.conv.weight)");
    c = good;
    c.latent_channels = 16;
    CHECK(error_of([&] { ckpt.check_vae_config(c); }) ==
          file + ": the given config's latent_channels 16 disagrees with the weights' 4 (encoder.conv_out.conv.weight)");
    c = good;
    c.spatial_compression_ratio = 1;
    c.sample_size = 32;
    CHECK_THROWS_WITH_AS(ckpt.check_vae_config(c), doctest::Contains("give block 0 no sampler, but the weights have one"), Error);
    c = good;
    c.norm_num_groups = 0;
    CHECK(error_of([&] { ckpt.check_vae_config(c); }) == file + ": VAE config: norm_num_groups must be in [1, 65536], got 0");
    CHECK_THROWS_WITH_AS(Checkpoint::open(kCkpt / "diffusers" / "transformer").check_vae_config(good),
                         doctest::Contains("holds a DiT, not a VAE"), Error);
}
