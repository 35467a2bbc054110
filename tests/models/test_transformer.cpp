// The HunyuanVideo DiT: golden fixtures of its parts and of the whole model, the real
// configuration's manifest, ablation variants built from the same parts, and the bf16 compute mode.
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "../golden/golden_check.hpp"
#include "hyvideo/models/hunyuan_video.hpp"
#include "hyvideo/nn/init.hpp"

using namespace hyvideo;

TEST_CASE("golden token_refiner") { check_fixture("token_refiner"); }
TEST_CASE("golden double_block") { check_fixture("double_block"); }
TEST_CASE("golden single_block") { check_fixture("single_block"); }
TEST_CASE("golden transformer_tiny") { check_fixture("transformer_tiny"); }

TEST_CASE("HYVideo-T/2-cfgdistill built without weights matches the checkpoint manifest") {
    std::ifstream in(std::string(HYVIDEO_TEST_DATA_DIR) + "/golden/manifest_dit_t2_cfgdistill.json");
    REQUIRE(in);
    const auto manifest = nlohmann::json::parse(in);
    HYVideoConfig cfg = HYVideoConfig::preset("HYVideo-T/2-cfgdistill");
    CHECK(cfg.text_states_dim == 4096);
    CHECK(cfg.text_states_dim_2 == 768);
    HYVideoDiffusionTransformer<cpu> model(cfg);

    std::map<std::string, Shape> expected;
    for (const auto& [name, shape] : manifest.at("tensors").items()) expected[name] = shape.get<Shape>();
    std::map<std::string, Shape> actual;
    for (const auto& p : parameter_list(model)) {
        CHECK_MESSAGE(!p.shape.empty(), p.name);
        actual[p.name] = p.shape;
    }
    for (const auto& [name, shape] : expected) {
        INFO(name);
        REQUIRE(actual.count(name));
        CHECK(shape_str(actual.at(name)) == shape_str(shape));
    }
    for (const auto& [name, shape] : actual) CHECK_MESSAGE(expected.count(name), "unexpected ", name);
    CHECK(actual.size() == expected.size());
    CHECK(parameter_count(model) == manifest.at("parameters").get<std::int64_t>());
    CHECK(parameter_count(model) == 12'821'012'544);
    // Constructing the structure allocated no weight memory.
    std::int64_t defined = 0;
    model.parameters("", [&](const std::string&, const Shape&, Tensor& t) { defined += t.defined(); });
    CHECK(defined == 0);
}

namespace {

HYVideoConfig tiny_config() {
    HYVideoConfig c;
    c.hidden_size = 64;
    c.heads_num = 4;
    c.mm_double_blocks_depth = 2;
    c.mm_single_blocks_depth = 2;
    c.rope_dim_list = {4, 6, 6};
    c.text_states_dim = 32;
    c.text_states_dim_2 = 24;
    c.guidance_embed = true;
    return c;
}

Tensor random_tensor(const Shape& shape, std::uint64_t seed) {
    Tensor t = Tensor::empty(shape);
    for (std::int64_t i = 0; i < t.numel(); ++i)
        t.data<float>()[i] = detail::uniform_pm1(detail::splitmix64(seed * 1000003u + static_cast<std::uint64_t>(i)));
    return t;
}

DiTInputs tiny_inputs(std::int64_t valid_text) {
    DiTInputs in;
    in.x = random_tensor({1, 16, 2, 4, 6}, 1);
    in.t = Tensor::full({1}, 700.0f);
    in.text_states = random_tensor({1, 5, 32}, 2);
    std::vector<std::int64_t> mask(5, 0);
    for (std::int64_t i = 0; i < valid_text; ++i) mask[i] = 1;
    in.text_mask = Tensor::from_vector<std::int64_t>({1, 5}, mask);
    in.text_states_2 = random_tensor({1, 24}, 3);
    in.guidance = Tensor::full({1}, 6000.0f);
    return in;
}

double rel_l2(const Tensor& a, const Tensor& b) { return golden::compare(a, b).rel_l2; }

}  // namespace

TEST_CASE("ablation: full attention equals the varlen masking exactly when no text is padded") {
    HYVideoDiffusionTransformer<cpu> base(tiny_config());
    HYVideoDiffusionTransformer<cpu, HunyuanVideoParts::with_attention<FullAttention>> full(tiny_config());
    init_weights(base, 42);
    init_weights(full, 42);
    const Tensor a = base.forward(tiny_inputs(5)), b = full.forward(tiny_inputs(5));
    CHECK(a.shape() == Shape{1, 16, 2, 4, 6});
    CHECK(rel_l2(a, b) < 1e-6);
    // With padded text the two semantics differ: padding reaches the image tokens only in `full`.
    CHECK(rel_l2(base.forward(tiny_inputs(3)), full.forward(tiny_inputs(3))) > 1e-4);
}

TEST_CASE("ablation: no positional embedding equals RoPE with identity tables") {
    HYVideoDiffusionTransformer<cpu> base(tiny_config());
    HYVideoDiffusionTransformer<cpu, HunyuanVideoParts::with_positional_embedding<NoPositionalEmbedding>> nope(tiny_config());
    init_weights(base, 7);
    init_weights(nope, 7);
    const DiTInputs in = tiny_inputs(3);
    const std::int64_t tokens = 2 * 2 * 3;
    const RopeTables identity{Tensor::full({tokens, 16}, 1.0f), Tensor::zeros({tokens, 16})};
    CHECK(rel_l2(nope.forward(in), base.forward(in, identity)) < 1e-6);
    CHECK(rel_l2(nope.forward(in), base.forward(in)) > 1e-4);  // real RoPE tables do matter
}

TEST_CASE("ablation: LayerNorm QK-norm and the linear text projection load their own weight names") {
    HYVideoConfig cfg = tiny_config();
    cfg.qk_norm_type = "layer";
    cfg.text_projection = "linear";
    using Variant = HYVideoDiffusionTransformer<cpu, HunyuanVideoParts::with_qk_norm<LayerNormQK>::with_text_input<TextProjection>>;
    Variant model(cfg);
    std::map<std::string, Shape> names;
    for (const auto& p : parameter_list(model)) names[p.name] = p.shape;
    CHECK(names.count("double_blocks.0.img_attn_q_norm.bias"));
    CHECK(names.count("single_blocks.1.k_norm.bias"));
    CHECK(names.count("txt_in.linear_1.weight"));
    CHECK_FALSE(names.count("txt_in.individual_token_refiner.blocks.0.norm1.weight"));
    init_weights(model, 3);
    const Tensor y = model.forward(tiny_inputs(4));
    CHECK(y.shape() == Shape{1, 16, 2, 4, 6});
    for (float v : y.to_vector()) REQUIRE(std::isfinite(v));
    // The default structure refuses a config that describes another one.
    CHECK_THROWS_AS(HYVideoDiffusionTransformer<cpu>{cfg}, Error);
}

TEST_CASE("forward: text lengths known on the host give the same velocity as the mask; bad ones are refused") {
    HYVideoDiffusionTransformer<cpu> model(tiny_config());
    init_weights(model, 21);
    DiTInputs in = tiny_inputs(3);
    const Tensor from_mask = model.forward(in);
    in.text_lengths = {3};
    CHECK(rel_l2(model.forward(in), from_mask) == 0.0);
    CHECK(text_lengths_of(in.text_mask) == std::vector<std::int64_t>{3});
    in.text_lengths = {3, 3};
    CHECK_THROWS_WITH_AS(model.forward(in), doctest::Contains("text_lengths must give one length per sample (1), got 2"), Error);
    in.text_lengths = {6};
    CHECK_THROWS_WITH_AS(model.forward(in), doctest::Contains("text_lengths: 6 valid tokens of 5"), Error);
    // Without lengths, the mask must be what the official get_cu_seqlens assumes: a 0/1 prefix.
    in.text_lengths.clear();
    in.text_mask = Tensor::from_vector<std::int64_t>({1, 5}, {1, 0, 1, 0, 0});
    CHECK_THROWS_WITH_AS(model.forward(in), doctest::Contains("text_mask[0, 2] is 1: the mask must be 0/1 and mark a prefix"), Error);
}

namespace {
// VarlenAttention that does not claim to keep padding apart: the same masking, but the model's blocks
// run on every text token, padding included (the official computation).
struct VarlenEveryToken : VarlenAttention {
    static constexpr bool keeps_padding_apart = false;
};
// Derived from VarlenAttention, so it inherits the claim.
struct VarlenDerived : VarlenAttention {};
static_assert(attention_keeps_padding_apart<VarlenAttention> && attention_keeps_padding_apart<VarlenDerived>);
static_assert(!attention_keeps_padding_apart<VarlenEveryToken> && !attention_keeps_padding_apart<FullAttention>);
}  // namespace

TEST_CASE("forward: the blocks skip the text padding, and the velocity is the one with every token") {
    HYVideoDiffusionTransformer<cpu> model(tiny_config());
    HYVideoDiffusionTransformer<cpu, HunyuanVideoParts::with_attention<VarlenEveryToken>> every(tiny_config());
    init_weights(model, 5);
    init_weights(every, 5);
    // Two samples with 2 and 4 of 5 text tokens valid: the blocks see 4 text tokens.
    DiTInputs in;
    in.x = random_tensor({2, 16, 2, 4, 6}, 11);
    in.t = Tensor::full({2}, 500.0f);
    in.text_states = random_tensor({2, 5, 32}, 12);
    in.text_mask = Tensor::from_vector<std::int64_t>({2, 5}, {1, 1, 0, 0, 0, 1, 1, 1, 1, 0});
    in.text_states_2 = random_tensor({2, 24}, 13);
    in.guidance = Tensor::full({2}, 6000.0f);
    const RopeTables rope = model.rope_tables(in.x.shape());
    CHECK(model.embed(in, rope).txt.size(1) == 4);
    CHECK(every.embed(in, rope).txt.size(1) == 5);
    HYVideoDiffusionTransformer<cpu, HunyuanVideoParts::with_attention<VarlenDerived>> derived(tiny_config());
    init_weights(derived, 5);
    CHECK(derived.embed(in, rope).txt.size(1) == 4);
    const Tensor a = model.forward(in), b = every.forward(in);
    CHECK(a.shape() == b.shape());
    CHECK(rel_l2(a, b) < 1e-6);
    // Batch 1, all but one token padding.
    const DiTInputs one = tiny_inputs(1);
    CHECK(model.embed(one, model.rope_tables(one.x.shape())).txt.size(1) == 1);
    CHECK(rel_l2(model.forward(one), every.forward(one)) < 1e-6);
}

// docs/architecture.md#variants shows this alias; keep the two the same.
using DocsVariant = HYVideoDiffusionTransformer<cpu, HunyuanVideoParts::with_positional_embedding<NoPositionalEmbedding>
                                                         ::with_qk_norm<LayerNormQK>
                                                         ::with_text_input<TextProjection>>;

TEST_CASE("parts: the documented variant is one alias, and structured() turns a preset into its config") {
    const HYVideoConfig preset = HYVideoConfig::preset("HYVideo-T/2-cfgdistill");
    // The preset describes HunyuanVideo's parts, so the variant refuses it as it is, naming the field.
    CHECK_THROWS_WITH_AS(DocsVariant{preset}, doctest::Contains("config qk_norm_type \"rms\" but this model type is built with qk_norm_type \"layer\""),
                         Error);
    const HYVideoConfig c = DocsVariant::structured(preset);
    CHECK(c.qk_norm_type == "layer");
    CHECK(c.text_projection == "linear");
    CHECK(c.mlp_act_type == "gelu_tanh");
    CHECK(c.hidden_size == preset.hidden_size);
    DocsVariant model(c);  // the structure only: no weight memory
    CHECK(parameter_count(model) == c.parameter_count());
    // And the other way round: HunyuanVideo's parts refuse the variant's config.
    CHECK_THROWS_WITH_AS(HYVideoDiffusionTransformer<cpu>{c}, doctest::Contains("qk_norm_type"), Error);
    DocsVariant tiny(DocsVariant::structured(tiny_config()));
    init_weights(tiny, 5);
    const Tensor y = tiny.forward(tiny_inputs(4));
    CHECK(y.shape() == Shape{1, 16, 2, 4, 6});
}

TEST_CASE("parts: the token refiner's QK norm and the blocks' MLP activation are reachable") {
    using RefinerRms = HYVideoDiffusionTransformer<cpu, HunyuanVideoParts::with_refiner<TokenRefinerParts<RMSNorm>>>;
    RefinerRms with_norm(tiny_config());
    std::map<std::string, Shape> names;
    for (const auto& p : parameter_list(with_norm)) names[p.name] = p.shape;
    CHECK(names.at("txt_in.individual_token_refiner.blocks.0.self_attn_q_norm.weight") == Shape{16});
    CHECK(names.at("txt_in.individual_token_refiner.blocks.1.self_attn_k_norm.weight") == Shape{16});
    HYVideoDiffusionTransformer<cpu> released(tiny_config());
    CHECK(names.size() == parameter_list(released).size() + 4);

    // The same weights through SiLU MLPs instead of GELU-tanh: another function of the same names.
    using SiluMlp = HYVideoDiffusionTransformer<cpu, HunyuanVideoParts::with_mlp_activation<SiLU>>;
    const HYVideoConfig silu_config = SiluMlp::structured(tiny_config());
    CHECK(silu_config.mlp_act_type == "silu");
    CHECK(HYVideoConfig::from_json(silu_config.to_json()).mlp_act_type == "silu");
    CHECK_THROWS_WITH_AS(HYVideoDiffusionTransformer<cpu>{silu_config}, doctest::Contains("mlp_act_type \"silu\""), Error);
    SiluMlp silu(silu_config);
    HYVideoDiffusionTransformer<cpu> base(tiny_config());
    init_weights(silu, 11);
    init_weights(base, 11);
    const DiTInputs in = tiny_inputs(4);
    const Tensor a = base.forward(in), b = silu.forward(in);
    for (float v : b.to_vector()) REQUIRE(std::isfinite(v));
    CHECK(rel_l2(a, b) > 1e-3);

    // The refiner's activation too: SiLU -> GELU-tanh in its MLP changes the text tokens.
    using RefinerGelu = HYVideoDiffusionTransformer<cpu, HunyuanVideoParts::with_refiner<TokenRefinerParts<NoQKNorm, GeluTanh>>>;
    RefinerGelu refiner_gelu(tiny_config());
    init_weights(refiner_gelu, 11);
    CHECK(rel_l2(a, refiner_gelu.forward(in)) > 1e-4);
}

namespace parts_test {
// A bundle derived from HunyuanVideo's with one member redeclared: the other way to write a variant.
struct FullAttentionParts : HunyuanVideoParts {
    using Attention = FullAttention;
};
struct NotAnAttention {};
template <class B>
struct NormWithoutHeadDim : RMSNorm<B> {
    NormWithoutHeadDim() = default;  // no (head_dim) constructor
};
template <class B>
struct TextInputWithoutMask {
    template <class V>
    void parameters(const std::string&, V&&) {}
    Tensor forward(const Tensor& x) const { return x; }
};
}  // namespace parts_test

TEST_CASE("parts: a bundle is checked by concepts where the model type is named") {
    static_assert(DiTPartsFor<HunyuanVideoParts, cpu>);
    static_assert(DiTPartsFor<parts_test::FullAttentionParts, cpu>);
    static_assert(!DiTPartsFor<HunyuanVideoParts::with_attention<parts_test::NotAnAttention>, cpu>);
    static_assert(!DiTPartsFor<HunyuanVideoParts::with_qk_norm<parts_test::NormWithoutHeadDim>, cpu>);
    static_assert(!DiTPartsFor<HunyuanVideoParts::with_text_input<parts_test::TextInputWithoutMask>, cpu>);
    static_assert(!DiTPartsFor<HunyuanVideoParts::with_mlp_activation<parts_test::NotAnAttention>, cpu>);
    static_assert(!RefinerPartsFor<TokenRefinerParts<parts_test::NormWithoutHeadDim>, cpu>);
    // The derived bundle is the with_attention alias under another name: the same model.
    HYVideoDiffusionTransformer<cpu, parts_test::FullAttentionParts> derived(tiny_config());
    HYVideoDiffusionTransformer<cpu, HunyuanVideoParts::with_attention<FullAttention>> aliased(tiny_config());
    init_weights(derived, 9);
    init_weights(aliased, 9);
    const DiTInputs in = tiny_inputs(3);
    CHECK(rel_l2(derived.forward(in), aliased.forward(in)) == 0.0);
}

TEST_CASE("bf16 compute mode stays within 1e-2 of the transformer_tiny fixture") {
    const golden::Fixture f(golden_path("transformer_tiny"));
    HYVideoDiffusionTransformer<cpu> model(HYVideoConfig::from_json(f.config()));
    load_weights_strict(model, f.params());
    const DiTInputs in = golden::dit_inputs<cpu>(f, f.input("x"), f.input("t"), f.input("guidance"));
    const double f32_err = rel_l2(model.forward(in), f.output("x"));
    set_matmul_dtype(model, DType::bf16);
    CHECK(model.double_blocks[0].img_attn_qkv.weight.dtype() == DType::bf16);
    CHECK(model.double_blocks[0].img_attn_qkv.bias.dtype() == DType::f32);
    const double bf16_err = rel_l2(model.forward(in), f.output("x"));
    MESSAGE("transformer_tiny rel L2: f32 ", f32_err, ", bf16 ", bf16_err);
    CHECK(f32_err < 1e-4);
    CHECK(bf16_err < 1e-2);
    CHECK(bf16_err > f32_err);  // the bf16 path really ran
}

TEST_CASE("model configs: presets, JSON and clear errors") {
    const auto s2 = HYVideoConfig::preset("HYVideo-S/2");
    CHECK(s2.hidden_size == 480);
    CHECK(s2.head_dim() == 96);
    HYVideoDiffusionTransformer<cpu> t2(HYVideoConfig::preset("HYVideo-T/2"));
    CHECK(parameter_count(t2) == 12'821'012'544 - 10'229'760);  // no guidance_in
    const auto round_trip = HYVideoConfig::from_json(s2.to_json());
    CHECK(round_trip.to_json() == s2.to_json());
    CHECK_THROWS_WITH_AS(HYVideoConfig::preset("HYVideo-X"), doctest::Contains("unknown model preset"), Error);
    auto bad = tiny_config().to_json();
    bad["rope_dim_list"] = {4, 4, 4};
    CHECK_THROWS_WITH_AS(HYVideoConfig::from_json(bad), doctest::Contains("rope_dim_list"), Error);
    bad = tiny_config().to_json();
    bad["hidden_size"] = "wide";
    CHECK_THROWS_AS(HYVideoConfig::from_json(bad), Error);
}

TEST_CASE("the model reports bad inputs by name") {
    HYVideoDiffusionTransformer<cpu> model(tiny_config());
    init_weights(model, 1);
    DiTInputs in = tiny_inputs(3);
    in.guidance = Tensor{};
    CHECK_THROWS_WITH_AS(model.forward(in), doctest::Contains("guidance"), Error);
    in = tiny_inputs(3);
    in.text_states = random_tensor({1, 5, 31}, 9);
    CHECK_THROWS_WITH_AS(model.forward(in), doctest::Contains("text_states"), Error);
    in = tiny_inputs(3);
    in.x = random_tensor({1, 15, 2, 4, 6}, 9);
    CHECK_THROWS_WITH_AS(model.forward(in), doctest::Contains("[B, 16, T, H, W]"), Error);
}
