// The DiT's and the VAE's configurations as untrusted input (models/config.hpp, vae/config.hpp): every
// bad value gives one hyvideo::Error naming the input and the field, never a signal, a silently
// changed value or an allocation sized by the bad value. One test per finding of issue 10; each
// failed (a SIGFPE, a wrong value, an accepted config) before the fix it pins.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/models/config.hpp"
#include "hyvideo/models/hunyuan_video.hpp"
#include "hyvideo/nn/module.hpp"
#include "hyvideo/nn/qk_norm.hpp"
#include "hyvideo/vae/autoencoder_kl_causal_3d.hpp"
#include "hyvideo/vae/config.hpp"
#include "../support/error_of.hpp"
#include "../support/small_configs.hpp"
#include "../support/temp_dir.hpp"

using namespace hyvideo;
using nlohmann::json;

using hyvideo::test::error_of;
using hyvideo::test::small_dit;
using hyvideo::test::small_vae;

// ---- the DiT --------------------------------------------------------------------------------------------

TEST_CASE("model config: a JSON number that is not an integer of the field's range is refused, naming the key") {
    // Finding: 1e30 for hidden_size was converted to INT64_MIN (head_dim -2305843009213693952).
    CHECK(error_of([] { HYVideoConfig::from_json(json::parse(R"({"hidden_size": 1e30})")); }) ==
          "model config: 'hidden_size' must be an integer in [1, 1048576], got 1e+30");
    // Floats are refused even when integral: a config written by Python holds integers as integers.
    CHECK(error_of([] { HYVideoConfig::from_json(json::parse(R"({"heads_num": 24.0})")); }) ==
          "model config: 'heads_num' must be an integer in [1, 1048576], got 24.0");
    CHECK(error_of([] { HYVideoConfig::from_json(json::parse(R"({"mm_double_blocks_depth": -1})")); }) ==
          "model config: 'mm_double_blocks_depth' must be an integer in [0, 4096], got -1");
    CHECK(error_of([] { HYVideoConfig::from_json(json::parse(R"({"in_channels": 18446744073709551615})")); }) ==
          "model config: 'in_channels' must be an integer in [1, 65536], got 18446744073709551615");
    CHECK(error_of([] { HYVideoConfig::from_json(json::parse(R"({"text_states_dim": "4096"})")); }) ==
          "model config: 'text_states_dim' must be an integer in [1, 1048576], got \"4096\"");
    CHECK(error_of([] { HYVideoConfig::from_json(json::parse(R"({"patch_size": [1, 2.5, 2]})")); }) ==
          "model config: 'patch_size' must be a list of 3 integers in [1, 64], got [1,2.5,2]");
    CHECK(error_of([] { HYVideoConfig::from_json(json::parse(R"({"rope_dim_list": [16, 56]})")); }) ==
          "model config: 'rope_dim_list' must be a list of 3 integers in [1, 1048576], got [16,56]");
    // Other types: a bool given 1, a number given a string, a string given a number.
    CHECK(error_of([] { HYVideoConfig::from_json(json::parse(R"({"qkv_bias": 1})")); }) ==
          "model config: 'qkv_bias' must be true or false, got 1");
    CHECK(error_of([] { HYVideoConfig::from_json(json::parse(R"({"mlp_width_ratio": "4"})")); }) ==
          "model config: 'mlp_width_ratio' must be a finite number, got \"4\"");
    CHECK(error_of([] { HYVideoConfig::from_json(json::parse(R"({"qk_norm_type": 3})")); }) ==
          "model config: 'qk_norm_type' must be a string, got 3");
    CHECK(error_of([] { HYVideoConfig::from_json(json::parse(R"({"rope_theta": 1e39})")); }) ==
          "model config: 'rope_theta' must be a finite number within the range of a float, got 1e+39");
    CHECK(error_of([] { HYVideoConfig::from_json(json::parse(R"({"rope_theta": 1e-50})")); }) ==
          "model config: 'rope_theta' must be a finite number within the range of a float, got 1e-50");
    // null is "not given", as the official configs write None.
    CHECK(HYVideoConfig::from_json(json::parse(R"({"i2v_condition_type": null})")).i2v_condition_type ==
          I2VConditionType::none);
}

TEST_CASE("model config: a document that is not a JSON object is refused, not read as all defaults") {
    // Finding: [], "x" and null were taken for an empty object, i.e. the default 13B model.
    CHECK(error_of([] { HYVideoConfig::from_json(json::parse("[]")); }) == "model config is not a JSON object (got [])");
    CHECK(error_of([] { HYVideoConfig::from_json(json::parse(R"("HYVideo-T/2")")); }) ==
          "model config is not a JSON object (got \"HYVideo-T/2\")");
    CHECK(error_of([] { HYVideoConfig::from_json(json(nullptr)); }) == "model config is not a JSON object (got null)");
    CHECK(error_of([] { AutoencoderKLCausal3DConfig::from_json(json::parse("[1, 2]")); }) ==
          "VAE config is not a JSON object (got [1,2])");
    // Nesting deep enough to make copying or printing the document recurse dangerously.
    std::string deep = R"({"hidden_size": )" + std::string(100, '[') + std::string(100, ']') + "}";
    CHECK(error_of([&] { HYVideoConfig::from_json(json::parse(deep)); }) == "model config nests deeper than 32 levels");
}

TEST_CASE("model config: validate() refuses non-finite and non-positive real parameters, naming them") {
    // Finding: rope_theta <= 0 / NaN / Inf and mlp_width_ratio <= 0 / NaN were accepted.
    for (float theta : {0.0f, -256.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
        HYVideoConfig c = small_dit();
        c.rope_theta = theta;
        CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("model config: rope_theta must be a positive finite number"), Error);
    }
    for (double ratio : {0.0, -4.0, 1e-9, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(), 1e300}) {
        HYVideoConfig c = small_dit();
        c.mlp_width_ratio = ratio;
        CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("model config: mlp_width_ratio must be a positive number"), Error);
    }
    CHECK_THROWS_WITH_AS(HYVideoConfig::from_json(json{{"rope_theta", -1}}),
                         "model config: rope_theta must be a positive finite number, got -1", Error);
}

TEST_CASE("model config: sizes and divisors are bounded before anything is sized by them") {
    // Finding: mm_single_blocks_depth 1e9 or hidden_size 1e12 made the model constructor allocate
    // gigabytes of blocks before any check; heads_num 0 divided by zero in head_dim().
    HYVideoConfig c = small_dit();
    c.mm_single_blocks_depth = 1'000'000'000;
    CHECK_THROWS_WITH_AS(c.validate(), "model config: mm_single_blocks_depth must be in [0, 4096], got 1000000000", Error);
    CHECK_THROWS_WITH_AS(HYVideoDiffusionTransformer<cpu>{c}, "model config: mm_single_blocks_depth must be in [0, 4096], got 1000000000",
                         Error);
    c = small_dit();
    c.hidden_size = 1'000'000'000'000;
    CHECK_THROWS_WITH_AS(c.validate(), "model config: hidden_size must be in [1, 1048576], got 1000000000000", Error);
    c = small_dit();
    c.heads_num = 0;
    CHECK(c.head_dim() == 0);
    CHECK_THROWS_WITH_AS(c.validate(), "model config: heads_num must be in [1, 64], got 0", Error);
    c = small_dit();
    c.patch_size = {1, 0, 2};
    CHECK_THROWS_WITH_AS(c.validate(), "model config: patch_size entry must be in [1, 64], got 0", Error);
    // Each field within its bound, the whole beyond 1e12 parameters: refused, naming the fields.
    c = HYVideoConfig::preset("HYVideo-T/2");
    c.hidden_size = 1 << 18;
    c.heads_num = 2048;
    c.rope_dim_list = {32, 48, 48};
    const std::string msg = error_of([&] { c.validate(); });
    CHECK(msg.starts_with("model config: hidden_size 262144, mlp_width_ratio 4, mm_double_blocks_depth 20, mm_single_blocks_depth 40"));
    CHECK(msg.find("more than the 1e+12 a configuration may describe") != std::string::npos);
    // RoPE axes rotate pairs: odd shares are refused here, not at the first forward.
    c = small_dit();
    c.rope_dim_list = {6, 5, 5};
    CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("rope_dim_list must be 3 positive even entries summing to head_dim 16, got [6, 5, 5]"),
                         Error);
    c = small_dit();
    c.text_projection = "mlp";
    CHECK_THROWS_WITH_AS(c.validate(), "model config: text_projection 'mlp' is not supported (single_refiner, linear)", Error);
    c = small_dit();
    c.qk_norm_type = "l2";
    CHECK_THROWS_WITH_AS(c.validate(), "model config: qk_norm_type 'l2' is not supported (rms, layer)", Error);
}

TEST_CASE("model config: parameter_count() is the built model's, without building it") {
    CHECK(HYVideoConfig::preset("HYVideo-T/2-cfgdistill").parameter_count() == 12'821'012'544);
    CHECK(HYVideoConfig::preset("HYVideo-T/2").parameter_count() == 12'821'012'544 - 10'229'760);
    // Every structural switch: guidance, QKV bias, MLP ratio (with a width the ratio truncates),
    // patch, refiner depth, channels; and the other QK norm and text input path.
    for (int v = 0; v < 4; ++v) {
        HYVideoConfig c = small_dit();
        c.guidance_embed = v % 2 == 1;
        c.qkv_bias = v < 2;
        c.mlp_width_ratio = v == 3 ? 2.3 : 4.0;
        c.patch_size = {1 + v % 2, 2, 2};
        c.refiner_depth = v;
        c.in_channels = 33;
        HYVideoDiffusionTransformer<cpu> m(c);
        CHECK(c.parameter_count() == parameter_count(m));
    }
    HYVideoConfig layer = small_dit();
    layer.qk_norm_type = "layer";
    HYVideoDiffusionTransformer<cpu, HunyuanVideoParts::with_qk_norm<LayerNormQK>> with_layer_norm(layer);
    CHECK(layer.parameter_count() == parameter_count(with_layer_norm));
    HYVideoConfig linear = small_dit();
    linear.text_projection = "linear";
    HYVideoDiffusionTransformer<cpu, HunyuanVideoParts::with_text_input<TextProjection>> with_linear(linear);
    CHECK(linear.parameter_count() == parameter_count(with_linear));
}

TEST_CASE("model config: refiner_depth is read and written with the other keys") {
    // Finding: from_json ignored refiner_depth and to_json left it out, so a round trip reset it to 2.
    HYVideoConfig c = small_dit();
    c.refiner_depth = 3;
    CHECK(c.to_json().at("refiner_depth") == 3);
    CHECK(HYVideoConfig::from_json(c.to_json()).refiner_depth == 3);
    CHECK(HYVideoConfig::from_json(c.to_json()).to_json() == c.to_json());
    CHECK(HYVideoConfig::from_json(json{{"refiner_depth", 0}}).refiner_depth == 0);
    CHECK_THROWS_WITH_AS(HYVideoConfig::from_json(json{{"refiner_depth", 1e9}}),
                         "model config: 'refiner_depth' must be an integer in [0, 4096], got 1000000000.0", Error);
}

TEST_CASE("model config: diffusers' transformer config.json is refused, not read as the default model") {
    const json diffusers = {{"_class_name", "HunyuanVideoTransformer3DModel"}, {"num_layers", 2}, {"attention_head_dim", 16}};
    CHECK_THROWS_WITH_AS(HYVideoConfig::from_json(diffusers), doctest::Contains("this is diffusers' config.json"), Error);
}

TEST_CASE("model config: from_file names the file in every error") {
    const test::TempDir dir;
    std::ofstream(dir / "dit.json") << R"({"hidden_size": 64, "heads_num": 4, "rope_dim_list": [4, 6, 6], "rope_theta": 0})";
    const std::string path = (dir / "dit.json").string();
    CHECK(error_of([&] { HYVideoConfig::from_file(path); }) ==
          path + ": model config: rope_theta must be a positive finite number, got 0");
    std::ofstream(dir / "types.json") << R"({"guidance_embed": "yes"})";
    CHECK(error_of([&] { HYVideoConfig::from_file(dir / "types.json"); }) ==
          (dir / "types.json").string() + ": model config: 'guidance_embed' must be true or false, got \"yes\"");
    std::ofstream(dir / "broken.json") << "{\"hidden_size\": ";
    CHECK(error_of([&] { HYVideoConfig::from_file(dir / "broken.json"); })
              .starts_with("model config '" + (dir / "broken.json").string() + "': not valid JSON: "));
    // A NUL ends nlohmann's input: the rest of the file would go unchecked.
    std::ofstream(dir / "nul.json", std::ios::binary) << std::string("{}\0{\"hidden_size\": 1e30}", 24);
    CHECK_THROWS_WITH_AS(HYVideoConfig::from_file(dir / "nul.json"), doctest::Contains("holds a NUL byte"), Error);
    CHECK_THROWS_WITH_AS(HYVideoConfig::from_file(dir / "missing.json"), doctest::Contains("missing.json': cannot open: No such file"),
                         Error);
    std::ofstream(dir / "good.json") << small_dit().to_json().dump();
    CHECK(HYVideoConfig::from_file(dir / "good.json").to_json() == small_dit().to_json());
}

// ---- the VAE ---------------------------------------------------------------------------------------------

TEST_CASE("VAE config: every divisor and ratio is checked before it is used") {
    // Finding: "norm_num_groups": 0 killed the process with SIGFPE (block_out_channels % 0 in validate).
    CHECK(error_of([] { AutoencoderKLCausal3DConfig::from_json(json{{"norm_num_groups", 0}}); }) ==
          "VAE config: 'norm_num_groups' must be an integer in [1, 65536], got 0");
    AutoencoderKLCausal3DConfig c = small_vae();
    c.norm_num_groups = 0;
    CHECK_THROWS_WITH_AS(c.validate(), "VAE config: norm_num_groups must be in [1, 65536], got 0", Error);
    c.norm_num_groups = -4;
    CHECK_THROWS_WITH_AS(c.validate(), "VAE config: norm_num_groups must be in [1, 65536], got -4", Error);
    // A ratio of 0 would divide sample_size by zero; INT64_MAX shifted 1 by 64 bits looking for its log2.
    for (std::int64_t ratio : {std::int64_t{0}, std::int64_t{-8}, std::int64_t{6}, std::numeric_limits<std::int64_t>::max()}) {
        c = small_vae();
        c.spatial_compression_ratio = ratio;
        CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("spatial_compression_ratio must be a power of two"), Error);
        CHECK_THROWS_WITH_AS(c.sampling_factor(0), doctest::Contains("spatial_compression_ratio must be a power of two"), Error);
    }
    c = small_vae();
    c.spatial_compression_ratio = std::int64_t{1} << 62;
    CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("need more blocks than 4"), Error);
    c = small_vae();
    c.time_compression_ratio = 0;
    CHECK_THROWS_WITH_AS(c.validate(), "VAE config: time_compression_ratio must be 4, got 0", Error);
    c = small_vae();
    c.sample_size = 0;
    CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("sample_size must be a positive multiple of spatial_compression_ratio 8"),
                         Error);
    c = small_vae();
    c.sample_tsize = 6;
    CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("sample_tsize must be a positive multiple of time_compression_ratio 4"), Error);
    CHECK(error_of([] { AutoencoderKLCausal3DConfig::from_json(json{{"spatial_compression_ratio", 0}}); }) ==
          "VAE config: 'spatial_compression_ratio' must be an integer in [1, 65536], got 0");
}

TEST_CASE("VAE config: scaling_factor must be positive and finite") {
    // Finding: 0 (a division by zero when latents are unscaled), NaN and Inf were accepted.
    for (double s : {0.0, -0.5, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
        AutoencoderKLCausal3DConfig c = small_vae();
        c.scaling_factor = s;
        CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("VAE config: scaling_factor must be a positive finite number"), Error);
    }
    CHECK(error_of([] { AutoencoderKLCausal3DConfig::from_json(json{{"scaling_factor", "0.47"}}); }) ==
          "VAE config: 'scaling_factor' must be a finite number, got \"0.47\"");
}

TEST_CASE("VAE config: types and sizes of every key") {
    CHECK(error_of([] { AutoencoderKLCausal3DConfig::from_json(json{{"block_out_channels", {128, 256.0}}}); }) ==
          "VAE config: 'block_out_channels' must be a list of 1 to 16 integers in [1, 65536], got [128,256.0]");
    CHECK(error_of([] { AutoencoderKLCausal3DConfig::from_json(json{{"block_out_channels", json::array()}}); }) ==
          "VAE config: 'block_out_channels' must be a list of 1 to 16 integers in [1, 65536], got []");
    CHECK(error_of([] { AutoencoderKLCausal3DConfig::from_json(json{{"down_block_types", {"DownEncoderBlockCausal3D", 3}}}); }) ==
          "VAE config: 'down_block_types' must be a list of at most 16 strings, got [\"DownEncoderBlockCausal3D\",3]");
    CHECK(error_of([] { AutoencoderKLCausal3DConfig::from_json(json{{"mid_block_add_attention", 1}}); }) ==
          "VAE config: 'mid_block_add_attention' must be true or false, got 1");
    CHECK(error_of([] { AutoencoderKLCausal3DConfig::from_json(json{{"layers_per_block", 1e9}}); }) ==
          "VAE config: 'layers_per_block' must be an integer in [1, 64], got 1000000000.0");
    AutoencoderKLCausal3DConfig c = small_vae();
    c.block_out_channels = {65536, 65536, 65536, 65536};
    c.layers_per_block = 64;
    CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("parameters, more than the 1e+12 a configuration may describe"), Error);
    CHECK_THROWS_WITH_AS(AutoencoderKLCausal3DConfig::from_json(json{{"norm_num_groups", 48}}, small_vae()),
                         "VAE config: block_out_channels entry 8 does not split into norm_num_groups = 48", Error);
}

TEST_CASE("VAE config: parameter_count() is the built model's, and round trips keep every value") {
    CHECK(AutoencoderKLCausal3DConfig::preset("884-16c-hy").parameter_count() == 246'478'803);
    for (int v = 0; v < 3; ++v) {
        AutoencoderKLCausal3DConfig c = small_vae();
        c.block_out_channels = v == 2 ? std::vector<std::int64_t>{8, 16, 16, 32} : std::vector<std::int64_t>{8, 16, 24};
        c.down_block_types.assign(c.block_out_channels.size(), "DownEncoderBlockCausal3D");
        c.up_block_types.assign(c.block_out_channels.size(), "UpDecoderBlockCausal3D");
        c.spatial_compression_ratio = v == 0 ? 4 : v == 1 ? 2 : 8;
        c.layers_per_block = 1 + v;
        c.mid_block_add_attention = v != 1;
        c.latent_channels = 5;
        c.out_channels = 2;
        AutoencoderKLCausal3D<cpu> vae(c);
        CHECK(c.parameter_count() == parameter_count(vae));
        CHECK(AutoencoderKLCausal3DConfig::from_json(c.to_json()).to_json() == c.to_json());
    }
    const test::TempDir dir;
    std::ofstream(dir / "vae.json") << R"({"norm_num_groups": 0})";
    CHECK(error_of([&] { AutoencoderKLCausal3DConfig::from_file(dir / "vae.json"); }) ==
          (dir / "vae.json").string() + ": VAE config: 'norm_num_groups' must be an integer in [1, 65536], got 0");
}
