// The text encoders: the golden fixtures through the same runner as `hyvideo golden`, the fixture's
// token ids reproduced from its prompts by the tokenizers, and the parts (rotary tables, GQA, the llava
// merge and the I2V split) against their definitions on small hand-made inputs.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../golden/golden_check.hpp"
#include "../support/error_of.hpp"
#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/golden/fixture.hpp"
#include "hyvideo/text_encoder/clip_text_encoder.hpp"
#include "hyvideo/text_encoder/i2v_prompt_split.hpp"
#include "hyvideo/text_encoder/llava.hpp"
#include "hyvideo/text_encoder/llava_text_encoder.hpp"
#include "hyvideo/text_encoder/llm_text_encoder.hpp"
#include "../support/tensors.hpp"

using namespace hyvideo;
using hyvideo::test::random_normal;
using hyvideo::test::error_of;
namespace fs = std::filesystem;

namespace {

const fs::path kAssets = fs::path(HYVIDEO_TEST_DATA_DIR) / ".." / ".." / "assets" / "tokenizers";

Tensor ids_tensor(const std::vector<std::vector<std::int64_t>>& rows) {
    std::vector<std::int64_t> flat;
    for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
    return Tensor::from_vector({static_cast<std::int64_t>(rows.size()), static_cast<std::int64_t>(rows[0].size())}, flat);
}

std::vector<std::int64_t> values_i64(const Tensor& t) {
    const Tensor c = t.contiguous();
    const auto* p = c.data<const std::int64_t>();
    return {p, p + c.numel()};
}

std::vector<std::string> fixture_prompts(const golden::Fixture& f) {
    return nlohmann::json::parse(f.file().metadata().at("prompts")).get<std::vector<std::string>>();
}

}  // namespace

TEST_CASE("golden text_llm") { check_fixture("text/text_llm"); }
TEST_CASE("golden text_clip") { check_fixture("text/text_clip"); }
TEST_CASE("golden text_llava_i2v") { check_fixture("text/text_llava_i2v"); }

TEST_CASE("text encoders: the tokenizers reproduce the fixtures' ids from their prompts") {
    const text::LlamaTokenizer llama(kAssets / "llama3-llava");
    const golden::Fixture llm(golden_path("text/text_llm"));
    LLMTextEncoder<cpu> enc;  // the default templates and text_len are the fixture's
    const auto prompts = fixture_prompts(llm);
    std::vector<std::size_t> truncated;
    const TokenBatch video = enc.tokenize(llama, prompts, PromptKind::video, &truncated);
    CHECK(values_i64(video.input_ids) == values_i64(llm.input("input_ids")));
    CHECK(values_i64(video.attention_mask) == values_i64(llm.input("attention_mask")));
    const TokenBatch image = enc.tokenize(llama, prompts, PromptKind::image);
    CHECK(values_i64(image.input_ids) == values_i64(llm.input("input_ids_image")));
    REQUIRE(truncated.size() == 3);
    CHECK(truncated[0] == 0);
    CHECK(truncated[2] > 0);  // the long prompt loses its tail, as the metadata says

    const text::ClipTokenizer clip(kAssets / "clip-vit-large-patch14");
    const golden::Fixture cf(golden_path("text/text_clip"));
    CLIPTextEncoder<cpu> cenc;
    const TokenBatch c = cenc.tokenize(clip, fixture_prompts(cf));
    CHECK(values_i64(c.input_ids) == values_i64(cf.input("input_ids")));
    CHECK(values_i64(c.attention_mask) == values_i64(cf.input("attention_mask")));

    // The I2V prompts (metadata: suffix -> prompt) through the I2V template at 359.
    const golden::Fixture lf(golden_path("text/text_llava_i2v"));
    const auto i2v = nlohmann::json::parse(lf.file().metadata().at("prompts"));
    LlavaTextEncoder<cpu> lenc;
    for (const std::string suffix : {"", "_neg", "_long"}) {
        CAPTURE(suffix);
        const TokenBatch t = lenc.tokenize(llama, {i2v.at(suffix).get<std::string>()});
        CHECK(values_i64(t.input_ids) == values_i64(lf.input("input_ids" + suffix)));
        CHECK(values_i64(t.attention_mask) == values_i64(lf.input("attention_mask" + suffix)));
    }
}

TEST_CASE("text encoders: rotary tables and the rotate_half layout") {
    // Positions per sample differ: [B, S, D] tables; shared positions: [S, D].
    const Tensor shared = arange_positions(2, 5);
    CHECK(llama_rotary_tables(shared, 8, 500000.0).cos.shape() == (Shape{5, 8}));
    const Tensor per = ids_tensor({{0, 1, 2, 3, 4}, {0, 1, 1, 1, 2}});
    const RotaryTables t = llama_rotary_tables(per, 8, 500000.0);
    REQUIRE(t.cos.shape() == (Shape{2, 5, 8}));
    // cos[b, s, k] = cos(pos · theta^(-2k/D)) for both halves.
    for (std::int64_t k = 0; k < 4; ++k) {
        const double f = std::pow(500000.0, -2.0 * double(k) / 8.0);
        CHECK(t.cos.data<float>()[(1 * 5 + 4) * 8 + k] == doctest::Approx(std::cos(2 * f)).epsilon(1e-6));
        CHECK(t.sin.data<float>()[(1 * 5 + 4) * 8 + k + 4] == doctest::Approx(std::sin(2 * f)).epsilon(1e-6));
    }
    // x·cos + rotate_half(x)·sin, element by element.
    const Tensor x = random_normal({2, 5, 3, 8}, 1);
    const Tensor y = cpu::apply_rope(x, t.cos, t.sin, RopeLayout::rotate_half);
    for (std::int64_t b = 0; b < 2; ++b)
        for (std::int64_t s = 0; s < 5; ++s)
            for (std::int64_t h = 0; h < 3; ++h)
                for (std::int64_t d = 0; d < 8; ++d) {
                    const float* xr = x.data<float>() + ((b * 5 + s) * 3 + h) * 8;
                    const float c = t.cos.data<float>()[(b * 5 + s) * 8 + d], sn = t.sin.data<float>()[(b * 5 + s) * 8 + d];
                    const float rot = d < 4 ? -xr[d + 4] : xr[d - 4];
                    CHECK(y.data<float>()[((b * 5 + s) * 3 + h) * 8 + d] == doctest::Approx(xr[d] * c + rot * sn));
                }
}

TEST_CASE("text encoders: embedding rows, zero rows and bad ids") {
    Tensor table = random_normal({10, 4}, 2);
    const Tensor bf = table.to(DType::bf16);
    const Tensor out = cpu::embedding(bf, ids_tensor({{3, -1, 9}}));
    REQUIRE(out.shape() == (Shape{1, 3, 4}));
    const Tensor widened = bf.to(DType::f32);
    for (std::int64_t d = 0; d < 4; ++d) {
        CHECK(out.data<float>()[d] == widened.data<float>()[3 * 4 + d]);
        CHECK(out.data<float>()[4 + d] == 0.0f);
        CHECK(out.data<float>()[8 + d] == widened.data<float>()[9 * 4 + d]);
    }
    CHECK(error_of([&] { (void)cpu::embedding(table, ids_tensor({{10}})); }).find("outside the vocabulary of 10") !=
          std::string::npos);
}

TEST_CASE("text encoders: quick_gelu and gelu") {
    const Tensor x = Tensor::from_vector<float>({5}, {-3.0f, -0.5f, 0.0f, 0.7f, 4.0f});
    const Tensor q = cpu::quick_gelu(x), g = cpu::gelu(x);
    for (std::int64_t i = 0; i < 5; ++i) {
        const double v = x.data<float>()[i];
        CHECK(q.data<float>()[i] == doctest::Approx(v / (1 + std::exp(-1.702 * v))).epsilon(1e-6));
        CHECK(g.data<float>()[i] == doctest::Approx(0.5 * v * (1 + std::erf(v / std::sqrt(2.0)))).epsilon(1e-6));
    }
}

TEST_CASE("llava merge: image rows at <image>, zero padding rows, positions from the mask") {
    LlavaConfig c;
    c.text_config.hidden_size = 4;
    c.text_config.intermediate_size = 8;
    c.text_config.num_hidden_layers = 1;
    c.text_config.num_attention_heads = 2;
    c.text_config.num_key_value_heads = 1;
    c.text_config.head_dim = 2;
    c.text_config.vocab_size = 20;
    c.image_token_index = 7;
    c.pad_token_id = 9;
    c.vision_config.hidden_size = 8;
    c.vision_config.intermediate_size = 8;
    c.vision_config.num_hidden_layers = 1;
    c.vision_config.num_attention_heads = 2;
    c.vision_config.image_size = 28;
    LlavaForConditionalGeneration<cpu> m(c);
    m.language_model.embed_tokens = random_normal({20, 4}, 3);
    const Tensor ids = ids_tensor({{1, 7, 2, 3, 9, 9}});
    const Tensor mask = ids_tensor({{1, 1, 1, 1, 0, 0}});
    const Tensor image = random_normal({1, 3, 4}, 4);
    const LlavaMerged merged = m.merge(ids, mask, image);
    REQUIRE(merged.inputs_embeds.shape() == (Shape{1, 8, 4}));
    CHECK(values_i64(merged.attention_mask) == std::vector<std::int64_t>{1, 1, 1, 1, 1, 1, 0, 0});
    CHECK(values_i64(merged.position_ids) == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 1, 1});
    const float* e = merged.inputs_embeds.data<float>();
    const float* table = m.language_model.embed_tokens.data<float>();
    for (std::int64_t d = 0; d < 4; ++d) {
        CHECK(e[0 * 4 + d] == table[1 * 4 + d]);
        CHECK(e[1 * 4 + d] == image.data<float>()[0 * 4 + d]);
        CHECK(e[3 * 4 + d] == image.data<float>()[2 * 4 + d]);
        CHECK(e[4 * 4 + d] == table[2 * 4 + d]);
        CHECK(e[6 * 4 + d] == 0.0f);  // <pad> rows are zero
    }
    CHECK(error_of([&] { (void)m.merge(ids_tensor({{1, 2, 3, 9, 9, 9}}), mask, image); }).find("no image token") !=
          std::string::npos);
    CHECK(error_of([&] { (void)m.merge(ids_tensor({{1, 7, 7, 3, 9, 9}}), mask, image); }).find("more than one") !=
          std::string::npos);
}

TEST_CASE("I2V split: image rows thinned, the assistant header dropped, truncated prompts") {
    // A miniature of the I2V layout: 2 template tokens before <image>, 3 image rows, crop_start 4.
    I2VSplit s;
    s.crop_start = 4;
    s.image_emb_start = 2;
    s.image_emb_end = 5;
    s.image_emb_len = 3;
    s.double_return_token_id = 50;
    s.interleave = 2;
    // ids: [50, 50, <image>, 50, p1, p2, eot, hdr, asst, hdr_end, 50, pad]: four 50s, the last at k = 10.
    const Tensor ids = ids_tensor({{50, 50, 7, 50, 11, 12, 60, 61, 62, 63, 50, 9}});
    const Tensor mask = ids_tensor({{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0}});
    const std::int64_t M = 12 - 1 + 3;
    Tensor hidden = Tensor::empty({1, M, 1});
    for (std::int64_t r = 0; r < M; ++r) hidden.data<float>()[r] = float(r);
    const I2VPromptEmbeds out = split_i2v_prompt<cpu>(hidden, ids, mask, s);
    // Image rows 2 and 4; text rows [crop_start - 1 + 3, k + 3 - 5) = [6, 8) and [k + 2, M) = [12, 14).
    const std::vector<float> rows = out.prompt_embeds.to_vector();
    CHECK(rows == std::vector<float>{2, 4, 6, 7, 12, 13});
    CHECK(values_i64(out.prompt_mask) == std::vector<std::int64_t>{1, 1, 1, 1, 1, 0});

    // Only three 50s: k is the sequence end, the last four tokens are dropped.
    const Tensor cut = ids_tensor({{50, 50, 7, 50, 11, 12, 13, 14, 15, 16, 17, 18}});
    const I2VPromptEmbeds t = split_i2v_prompt<cpu>(hidden, cut, ids_tensor({std::vector<std::int64_t>(12, 1)}), s);
    CHECK(t.prompt_embeds.to_vector() == std::vector<float>{2, 4, 6, 7, 8, 9});
    CHECK(error_of([&] { (void)split_i2v_prompt<cpu>(hidden, ids_tensor({std::vector<std::int64_t>(12, 1)}),
                                                     ids_tensor({std::vector<std::int64_t>(12, 1)}), s); })
              .find("'\\n\\n' tokens") != std::string::npos);
}
