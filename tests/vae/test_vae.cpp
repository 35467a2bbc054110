// The causal 3D VAE: its golden fixtures (blocks, the tiny autoencoder untiled and tiled), the real
// 884-16c configuration's manifest, and the configuration's JSON round trip.
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "../golden/golden_check.hpp"
#include "hyvideo/vae/autoencoder_kl_causal_3d.hpp"

using namespace hyvideo;

TEST_CASE("golden vae_blocks") { check_fixture("vae_blocks"); }
TEST_CASE("golden vae_tiny") { check_fixture("vae_tiny"); }
TEST_CASE("golden vae_tiled") { check_fixture("vae_tiled"); }

TEST_CASE("884-16c-hy built without weights matches the checkpoint manifest") {
    std::ifstream in(std::string(HYVIDEO_TEST_DATA_DIR) + "/golden/manifest_vae_884_16c.json");
    REQUIRE(in);
    const auto manifest = nlohmann::ordered_json::parse(in);  // keeps the file's (state_dict) order
    // The preset and the manifest's own config (official keys) describe the same model.
    const auto preset = AutoencoderKLCausal3DConfig::preset("884-16c-hy");
    CHECK(AutoencoderKLCausal3DConfig::from_json(nlohmann::json(manifest.at("config"))).to_json() == preset.to_json());
    AutoencoderKLCausal3D<cpu> vae(preset);

    std::vector<std::string> expected_order;
    std::map<std::string, Shape> expected;
    for (const auto& [name, shape] : manifest.at("tensors").items()) {
        expected[name] = shape.get<Shape>();
        expected_order.push_back(name);
    }
    std::vector<std::string> actual_order;
    std::map<std::string, Shape> actual;
    for (const auto& p : parameter_list(vae)) {
        actual[p.name] = p.shape;
        actual_order.push_back(p.name);
    }
    for (const auto& [name, shape] : expected) {
        INFO(name);
        REQUIRE(actual.count(name));
        CHECK(shape_str(actual.at(name)) == shape_str(shape));
    }
    for (const auto& [name, shape] : actual) CHECK_MESSAGE(expected.count(name), "unexpected ", name);
    CHECK(actual.size() == 248);
    CHECK(actual_order == expected_order);  // the state_dict order too
    CHECK(parameter_count(vae) == manifest.at("parameters").get<std::int64_t>());
    CHECK(parameter_count(vae) == 246'478'803);
    CHECK(parameter_count(vae.encoder) == 100'341'408);
    CHECK(parameter_count(vae.decoder) == 146'136'067);
    CHECK(parameter_count(vae.quant_conv) == 1'056);
    CHECK(parameter_count(vae.post_quant_conv) == 272);
    std::int64_t defined = 0;
    vae.parameters("", [&](const std::string&, const Shape&, Tensor& t) { defined += t.defined(); });
    CHECK(defined == 0);  // constructing the structure allocated no weight memory

    // Shapes of docs/model.md#vae-encoder-and-decoder: 129×720×1280 <-> 33×90×160.
    CHECK(vae.moments_shape({1, 3, 129, 720, 1280}) == Shape{1, 32, 33, 90, 160});
    CHECK(vae.video_shape({1, 16, 33, 90, 160}) == Shape{1, 3, 129, 720, 1280});
    // The official tiles (docs/model.md#vae-tiling): 12-latent steps, 16-frame blends, 48 frames kept;
    // 24-latent steps, 64-pixel blends, 192 pixels kept; encode: 48-frame steps, 192-pixel steps.
    vae.enable_tiling();
    const TilePlan plan = vae.tile_plan();
    CHECK(plan.decode_time.tile == 17);
    CHECK(plan.decode_time.step == 12);
    CHECK(plan.decode_time.blend == 16);
    CHECK(plan.decode_time.keep == 48);
    CHECK(plan.decode_space.tile == 32);
    CHECK(plan.decode_space.step == 24);
    CHECK(plan.decode_space.blend == 64);
    CHECK(plan.decode_space.keep == 192);
    CHECK(plan.encode_time.tile == 65);
    CHECK(plan.encode_time.step == 48);
    CHECK(plan.encode_time.blend == 4);
    CHECK(plan.encode_time.keep == 12);
    CHECK(plan.encode_space.tile == 256);
    CHECK(plan.encode_space.step == 192);
    CHECK(plan.encode_space.blend == 8);
    CHECK(plan.encode_space.keep == 24);
}

TEST_CASE("VAE config: official keys, defaults and errors") {
    const auto c = AutoencoderKLCausal3DConfig::from_json(
        nlohmann::json{{"_class_name", "AutoencoderKLCausal3D"}, {"block_out_channels", {8, 16, 16}},
                       {"down_block_types", std::vector<std::string>(3, "DownEncoderBlockCausal3D")},
                       {"up_block_types", std::vector<std::string>(3, "UpDecoderBlockCausal3D")},
                       {"norm_num_groups", 4},
                       {"spatial_compression_ratio", 2},
                       {"time_compression_ratio", 4}});
    CHECK(c.latent_channels == 4);  // the official class default
    CHECK(c.sampling_factor(0) == std::array<std::int64_t, 3>{2, 2, 2});
    CHECK(c.sampling_factor(1) == std::array<std::int64_t, 3>{2, 1, 1});
    CHECK(c.sampling_factor(2) == std::array<std::int64_t, 3>{1, 1, 1});
    CHECK(AutoencoderKLCausal3DConfig::from_json(c.to_json()).to_json() == c.to_json());
    // Two temporal halvings need two blocks before the last.
    CHECK_THROWS_AS(AutoencoderKLCausal3DConfig::from_json(nlohmann::json{{"block_out_channels", {8, 16}},
                                                                         {"norm_num_groups", 4}}),
                    Error);
    CHECK_THROWS_AS(AutoencoderKLCausal3DConfig::from_json(nlohmann::json{{"act_fn", "gelu"}}), Error);
    CHECK_THROWS_AS(AutoencoderKLCausal3DConfig::from_json(nlohmann::json{{"norm_num_groups", 3}}), Error);
    CHECK_THROWS_AS(AutoencoderKLCausal3DConfig::from_json(nlohmann::json{{"block_out_channels", "x"}}), Error);
    CHECK_THROWS_AS(AutoencoderKLCausal3DConfig::preset("884-8c"), Error);
}
