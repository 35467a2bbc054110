// Tests of io/sharded_safetensors.hpp and text_encoder/encoder_files.hpp: the text encoders' files in
// every layout a user downloads (the HunyuanVideo text_encoder / text_encoder_2 folders, the I2V llava
// folder, ComfyUI's single files, fp16 and fp8_scaled), each made tiny here, and one test per error.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyvideo/core/dtype_convert.hpp"
#include "hyvideo/io/safetensors.hpp"
#include "hyvideo/io/sharded_safetensors.hpp"
#include "hyvideo/text_encoder/encoder_files.hpp"
#include "../../tools/inspect.hpp"
#include "../support/error_of.hpp"
#include "../support/temp_dir.hpp"
#include "../tools/cli_helpers.hpp"

namespace fs = std::filesystem;
using namespace hyvideo;
using hyvideo::test::error_of;
using hyvideo::test::TempDir;
using json = nlohmann::json;

namespace {

using Tensors = std::vector<std::pair<std::string, Tensor>>;

// Distinct, exactly representable values (multiples of 1/64 below 2), so every dtype round-trips them.
Tensor values(const Shape& shape, int seed, DType dtype = DType::f32) {
    std::vector<float> v(static_cast<std::size_t>(shape_numel(shape)));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(static_cast<int>((i * 7 + seed * 13) % 97) - 48) / 64.0f;
    return Tensor::from_vector(shape, v).to(dtype);
}

struct LlamaSizes {
    std::int64_t hidden = 16, intermediate = 24, layers = 2, heads = 4, kv_heads = 2, head_dim = 4, vocab = 40;
};

json llama_json(const LlamaSizes& s) {
    return {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"},   {"hidden_size", s.hidden},
            {"intermediate_size", s.intermediate},   {"num_hidden_layers", s.layers}, {"num_attention_heads", s.heads},
            {"num_key_value_heads", s.kv_heads},     {"head_dim", s.head_dim},  {"vocab_size", s.vocab},
            {"rms_norm_eps", 1e-5},                  {"rope_theta", 500000.0},  {"hidden_act", "silu"}};
}

// A Llama's tensors under `p` ("model." or "language_model.model."), with lm_head under `lm_head` ("" for none).
Tensors llama_tensors(const LlamaSizes& s, const std::string& p, const std::string& lm_head, DType dtype = DType::f32) {
    const std::int64_t H = s.hidden, Q = s.heads * s.head_dim, KV = s.kv_heads * s.head_dim, I = s.intermediate;
    Tensors t;
    int seed = 0;
    t.emplace_back(p + "embed_tokens.weight", values({s.vocab, H}, ++seed, dtype));
    for (std::int64_t i = 0; i < s.layers; ++i) {
        const std::string l = p + "layers." + std::to_string(i) + ".";
        t.emplace_back(l + "input_layernorm.weight", values({H}, ++seed, dtype));
        t.emplace_back(l + "post_attention_layernorm.weight", values({H}, ++seed, dtype));
        t.emplace_back(l + "self_attn.q_proj.weight", values({Q, H}, ++seed, dtype));
        t.emplace_back(l + "self_attn.k_proj.weight", values({KV, H}, ++seed, dtype));
        t.emplace_back(l + "self_attn.v_proj.weight", values({KV, H}, ++seed, dtype));
        t.emplace_back(l + "self_attn.o_proj.weight", values({H, Q}, ++seed, dtype));
        t.emplace_back(l + "mlp.gate_proj.weight", values({I, H}, ++seed, dtype));
        t.emplace_back(l + "mlp.up_proj.weight", values({I, H}, ++seed, dtype));
        t.emplace_back(l + "mlp.down_proj.weight", values({H, I}, ++seed, dtype));
    }
    t.emplace_back(p + "norm.weight", values({H}, ++seed, dtype));
    if (!lm_head.empty()) t.emplace_back(lm_head, values({s.vocab, H}, ++seed, DType::f16));
    return t;
}

struct ClipSizes {
    std::int64_t hidden = 8, intermediate = 16, layers = 2, heads = 2;
};

// One CLIP transformer under `p` ("text_model." or "vision_tower.vision_model.").
void clip_layers(Tensors& t, const ClipSizes& s, const std::string& p, DType dtype, int seed) {
    const std::int64_t H = s.hidden, I = s.intermediate;
    for (std::int64_t i = 0; i < s.layers; ++i) {
        const std::string l = p + "encoder.layers." + std::to_string(i) + ".";
        for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
            t.emplace_back(l + "self_attn." + proj + ".weight", values({H, H}, ++seed, dtype));
            t.emplace_back(l + "self_attn." + proj + ".bias", values({H}, ++seed, dtype));
        }
        for (const char* norm : {"layer_norm1", "layer_norm2"}) {
            t.emplace_back(l + norm + ".weight", values({H}, ++seed, dtype));
            t.emplace_back(l + norm + ".bias", values({H}, ++seed, dtype));
        }
        t.emplace_back(l + "mlp.fc1.weight", values({I, H}, ++seed, dtype));
        t.emplace_back(l + "mlp.fc1.bias", values({I}, ++seed, dtype));
        t.emplace_back(l + "mlp.fc2.weight", values({H, I}, ++seed, dtype));
        t.emplace_back(l + "mlp.fc2.bias", values({H}, ++seed, dtype));
    }
}

Tensors clip_text_tensors(const ClipSizes& s, std::int64_t vocab, std::int64_t positions, DType dtype = DType::f32) {
    Tensors t;
    t.emplace_back("text_model.embeddings.token_embedding.weight", values({vocab, s.hidden}, 1, dtype));
    t.emplace_back("text_model.embeddings.position_embedding.weight", values({positions, s.hidden}, 2, dtype));
    clip_layers(t, s, "text_model.", dtype, 3);
    t.emplace_back("text_model.final_layer_norm.weight", values({s.hidden}, 90, dtype));
    t.emplace_back("text_model.final_layer_norm.bias", values({s.hidden}, 91, dtype));
    return t;
}

Tensor arange_i64(std::int64_t n) {
    std::vector<std::int64_t> v(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
    return Tensor::from_vector<std::int64_t>({1, n}, v);
}

void write_json(const fs::path& p, const json& j) { std::ofstream(p) << j.dump(2); }
void write_text(const fs::path& p, const std::string& s) { std::ofstream(p) << s; }

// Splits `t` into shards of the given sizes (in tensors), written beside an index, as save_pretrained does.
void save_sharded(const fs::path& dir, const Tensors& t, const std::vector<std::size_t>& sizes) {
    json map = json::object();
    std::size_t at = 0;
    for (std::size_t k = 0; k < sizes.size(); ++k) {
        char name[64];
        std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", k + 1, sizes.size());
        const std::size_t end = k + 1 == sizes.size() ? t.size() : at + sizes[k];
        Tensors part(t.begin() + static_cast<std::ptrdiff_t>(at), t.begin() + static_cast<std::ptrdiff_t>(end));
        for (const auto& [n, _] : part) map[n] = name;
        save_safetensors(dir / name, part, {{"format", "pt"}});
        at = end;
    }
    write_json(dir / "model.safetensors.index.json", {{"metadata", {{"total_size", 0}}}, {"weight_map", map}});
}

std::set<std::string> names_of(const Tensors& t) {
    std::set<std::string> out;
    for (const auto& [n, _] : t) out.insert(n);
    return out;
}
std::set<std::string> names_of(const WeightSource& w) {
    const auto v = w.names();
    return {v.begin(), v.end()};
}

// Every tensor of `w` bit-equal to the one it was written from.
void check_same(const WeightSource& w, const Tensors& t) {
    for (const auto& [name, want] : t) {
        if (!w.contains(name)) continue;
        INFO(name);
        const Tensor got = w.get(name);
        CHECK(got.dtype() == want.dtype());
        CHECK(got.shape() == want.shape());
        CHECK(got.to_vector() == want.to_vector());
    }
}

// The HunyuanVideo text_encoder folder: config.json, two shards, their index, tokenizer files.
Tensors make_llama_folder(const fs::path& dir, const LlamaSizes& s = {}) {
    fs::create_directories(dir);
    Tensors t = llama_tensors(s, "model.", "lm_head.weight");
    save_sharded(dir, t, {1 + 9, t.size()});
    write_json(dir / "config.json", llama_json(s));
    write_text(dir / "tokenizer.json", "{}");
    write_text(dir / "tokenizer_config.json", "{}");
    return t;
}

ClipSizes kClip;
constexpr std::int64_t kClipVocab = 50, kClipPositions = 77;

// openai/clip-vit-large-patch14 in small: a whole CLIPModel, with the int64 position_ids buffers.
Tensors make_clip_folder(const fs::path& dir, bool with_max_positions = true) {
    fs::create_directories(dir);
    Tensors t = clip_text_tensors(kClip, kClipVocab, kClipPositions);
    Tensors all = t;
    all.emplace_back("text_model.embeddings.position_ids", arange_i64(kClipPositions));
    all.emplace_back("vision_model.embeddings.class_embedding", values({12}, 5));
    all.emplace_back("vision_model.embeddings.patch_embedding.weight", values({12, 3, 14, 14}, 6));
    all.emplace_back("vision_model.embeddings.position_ids", arange_i64(5));
    all.emplace_back("text_projection.weight", values({6, kClip.hidden}, 7));
    all.emplace_back("visual_projection.weight", values({6, 12}, 8));
    all.emplace_back("logit_scale", values({}, 9));
    save_safetensors(dir / "model.safetensors", all);
    json text = {{"model_type", "clip_text_model"}, {"hidden_size", kClip.hidden}, {"intermediate_size", kClip.intermediate},
                 {"num_hidden_layers", kClip.layers}, {"num_attention_heads", kClip.heads}, {"vocab_size", kClipVocab},
                 {"hidden_act", "quick_gelu"}, {"layer_norm_eps", 1e-5}};
    if (with_max_positions) text["max_position_embeddings"] = kClipPositions;
    write_json(dir / "config.json", {{"architectures", {"CLIPModel"}}, {"model_type", "clip"}, {"text_config", text},
                                     {"vision_config", {{"model_type", "clip_vision_model"}, {"hidden_size", 12}}},
                                     {"projection_dim", 6}});
    write_text(dir / "merges.txt", "#version: 0.2\n");
    return t;
}

LlamaSizes kLlavaText{16, 24, 2, 2, 1, 8, 40};
ClipSizes kVision{8, 16, 3, 2};

// The I2V llava folder (xtuner/llava-llama-3-8b-v1_1-transformers' names), in two shards.
Tensors make_llava_folder(const fs::path& dir) {
    fs::create_directories(dir);
    Tensors t = llama_tensors(kLlavaText, "language_model.model.", "language_model.lm_head.weight");
    const std::string v = "vision_tower.vision_model.";
    t.emplace_back(v + "embeddings.class_embedding", values({kVision.hidden}, 70));
    t.emplace_back(v + "embeddings.patch_embedding.weight", values({kVision.hidden, 3, 14, 14}, 71));
    t.emplace_back(v + "embeddings.position_embedding.weight", values({5, kVision.hidden}, 72));  // (28/14)² + CLS
    t.emplace_back(v + "pre_layrnorm.weight", values({kVision.hidden}, 73));
    t.emplace_back(v + "pre_layrnorm.bias", values({kVision.hidden}, 74));
    clip_layers(t, kVision, v, DType::f32, 75);
    t.emplace_back(v + "post_layernorm.weight", values({kVision.hidden}, 80));
    t.emplace_back(v + "post_layernorm.bias", values({kVision.hidden}, 81));
    t.emplace_back("multi_modal_projector.linear_1.weight", values({kLlavaText.hidden, kVision.hidden}, 82));
    t.emplace_back("multi_modal_projector.linear_1.bias", values({kLlavaText.hidden}, 83));
    t.emplace_back("multi_modal_projector.linear_2.weight", values({kLlavaText.hidden, kLlavaText.hidden}, 84));
    t.emplace_back("multi_modal_projector.linear_2.bias", values({kLlavaText.hidden}, 85));
    save_sharded(dir, t, {t.size() / 2, t.size()});
    json text = llama_json(kLlavaText);
    text.erase("architectures");
    write_json(dir / "config.json",
               {{"architectures", {"LlavaForConditionalGeneration"}}, {"model_type", "llava"}, {"text_config", text},
                {"vision_config", {{"model_type", "clip_vision_model"}, {"hidden_size", kVision.hidden},
                                   {"intermediate_size", kVision.intermediate}, {"num_hidden_layers", kVision.layers},
                                   {"num_attention_heads", kVision.heads}, {"image_size", 28}, {"patch_size", 14}}},
                {"image_token_index", 128257}, {"pad_token_id", 128258}, {"projector_hidden_act", "gelu"},
                {"vision_feature_layer", -2}, {"vision_feature_select_strategy", "default"}});
    return t;
}

// ComfyUI's LLM files have no config, so their heads are inferred with Llama 3's head_dim 128.
LlamaSizes kComfy{256, 64, 2, 2, 1, 128, 16};

bool is_linear(const std::string& n) { return n.find("_proj.weight") != std::string::npos; }

}  // namespace

// ---- the layouts ----------------------------------------------------------------------------------------

TEST_CASE("text encoder files: the HunyuanVideo text_encoder folder (sharded LlamaForCausalLM)") {
    TempDir tmp;
    const fs::path dir = tmp / "text_encoder";
    const Tensors t = make_llama_folder(dir);

    const TextEncoderFiles te = open_text_encoder(dir, TextEncoderKind::llama);
    CHECK(te.kind == TextEncoderKind::llama);
    CHECK(te.layout == "hf-sharded-folder");
    CHECK_FALSE(te.config_inferred);
    REQUIRE(te.config_file);
    CHECK(*te.config_file == dir / "config.json");
    CHECK(te.folder == dir);
    CHECK(te.files.size() == 2);
    REQUIRE(te.index);
    CHECK(te.index->filename() == "model.safetensors.index.json");
    CHECK(te.storage_dtype == DType::f32);
    CHECK(te.ignored.empty());
    CHECK(te.fp8_unscaled.empty());

    const LlamaConfig& c = te.llama_config();
    CHECK(c.hidden_size == 16);
    CHECK(c.intermediate_size == 24);
    CHECK(c.num_hidden_layers == 2);
    CHECK(c.num_attention_heads == 4);
    CHECK(c.num_key_value_heads == 2);
    CHECK(c.head_dim == 4);
    CHECK(c.vocab_size == 40);
    CHECK(c.rope_theta == 500000.0);
    CHECK_THROWS_WITH_AS(te.clip_text_config(), doctest::Contains("not a CLIP text encoder"), Error);

    // Canonical names: exactly the HF ones, lm_head included (stored F16).
    CHECK(names_of(*te.weights) == names_of(t));
    check_same(*te.weights, t);
    CHECK(te.weights->stored_dtype("lm_head.weight") == DType::f16);
    // Zero-copy: the tensor is a view of the shard's mapping.
    const auto& sh = te.weights->files().shard_of("model.layers.1.mlp.up_proj.weight");
    CHECK(sh.path().filename() == "model-00002-of-00002.safetensors");
    CHECK(te.weights->get("model.layers.1.mlp.up_proj.weight").raw_data() ==
          sh.tensor("model.layers.1.mlp.up_proj.weight").raw_data());
    CHECK(te.weights->shape("model.layers.0.self_attn.k_proj.weight") == Shape{8, 16});

    // The same from the index, from one shard, and without saying the kind.
    CHECK(open_text_encoder(dir / "model.safetensors.index.json").layout == "hf-sharded-folder");
    CHECK(open_text_encoder(dir / "model-00001-of-00002.safetensors").files.size() == 2);
    CHECK(open_text_encoder(dir).kind == TextEncoderKind::llama);
    CHECK(text_encoders_in(dir) == std::vector<TextEncoderKind>{TextEncoderKind::llama});
}

TEST_CASE("text encoder files: sharded safetensors as one source") {
    TempDir tmp;
    const Tensors t = make_llama_folder(tmp / "te");
    const ShardedSafetensors s = ShardedSafetensors::open(tmp / "te" / "model.safetensors.index.json");
    CHECK(s.files().size() == 2);
    CHECK(s.shards().size() == 2);
    CHECK(names_of(s) == names_of(t));
    check_same(s, t);
    CHECK(s.info("lm_head.weight").dtype == DType::f16);
    CHECK_THROWS_WITH_AS(s.get("nope"), doctest::Contains("no tensor \"nope\""), Error);
    // A single file is a source with one shard and no index.
    const ShardedSafetensors one = ShardedSafetensors::open(tmp / "te" / "model-00001-of-00002.safetensors");
    CHECK_FALSE(one.index());
    CHECK(one.names().size() == 10);
}

TEST_CASE("text encoder files: a Llama in one model.safetensors with config.json") {
    TempDir tmp;
    const fs::path dir = tmp / "llm";
    fs::create_directories(dir);
    LlamaSizes s;
    const Tensors t = llama_tensors(s, "model.", "", DType::bf16);
    save_safetensors(dir / "model.safetensors", t);
    write_json(dir / "config.json", llama_json(s));
    const TextEncoderFiles te = open_text_encoder(dir);
    CHECK(te.layout == "hf-folder");
    CHECK(te.storage_dtype == DType::bf16);
    CHECK_FALSE(te.index);
    CHECK_FALSE(te.weights->contains("lm_head.weight"));
    CHECK(names_of(*te.weights) == names_of(t));
    check_same(*te.weights, t);
    CHECK(open_text_encoder(dir / "model.safetensors").config_file);
}

TEST_CASE("text encoder files: the text_encoder_2 folder (a whole CLIPModel)") {
    TempDir tmp;
    const fs::path dir = tmp / "text_encoder_2";
    const Tensors t = make_clip_folder(dir, /*with_max_positions=*/false);
    const TextEncoderFiles te = open_text_encoder(dir, TextEncoderKind::clip_text);
    CHECK(te.kind == TextEncoderKind::clip_text);
    CHECK(te.layout == "hf-folder");
    CHECK_FALSE(te.config_inferred);
    const CLIPTextConfig& c = te.clip_text_config();
    CHECK(c.hidden_size == kClip.hidden);
    CHECK(c.num_attention_heads == kClip.heads);
    CHECK(c.num_hidden_layers == kClip.layers);
    CHECK(c.vocab_size == kClipVocab);
    // Omitted from text_config: transformers' CLIPTextConfig default, noted.
    CHECK(c.max_position_embeddings == 77);
    REQUIRE(te.config_notes.size() == 1);
    CHECK(te.config_notes[0].find("max_position_embeddings") != std::string::npos);

    // Only the text model, without its position_ids buffer.
    CHECK(names_of(*te.weights) == names_of(t));
    check_same(*te.weights, t);
    const std::set<std::string> ignored(te.ignored.begin(), te.ignored.end());
    CHECK(ignored == std::set<std::string>{"logit_scale", "text_model.embeddings.position_ids", "text_projection.weight",
                                           "vision_model.embeddings.class_embedding", "vision_model.embeddings.patch_embedding.weight",
                                           "vision_model.embeddings.position_ids", "visual_projection.weight"});
}

TEST_CASE("text encoder files: the I2V llava folder") {
    TempDir tmp;
    const fs::path dir = tmp / "text_encoder_i2v";
    const Tensors t = make_llava_folder(dir);
    const TextEncoderFiles te = open_text_encoder(dir, TextEncoderKind::llava);
    CHECK(te.kind == TextEncoderKind::llava);
    CHECK(te.layout == "hf-sharded-folder");
    const LlavaConfig& c = te.llava_config();
    CHECK(c.text_config.hidden_size == 16);
    CHECK(c.text_config.num_attention_heads == 2);
    CHECK(c.text_config.num_key_value_heads == 1);
    CHECK(c.vision_config.hidden_size == kVision.hidden);
    CHECK(c.vision_config.num_hidden_layers == 3);
    CHECK(c.vision_config.image_size == 28);
    CHECK(c.vision_feature_layer == -2);
    CHECK(names_of(*te.weights) == names_of(t));
    CHECK(te.ignored.empty());
    check_same(*te.weights, t);
}

TEST_CASE("text encoder files: a llava text_config without the keys equal to transformers' defaults") {
    // save_pretrained drops a nested config's values that equal the class defaults: a missing
    // hidden_size means LlamaConfig's 4096, and then the weights must say 4096 too.
    TempDir tmp;
    const fs::path dir = tmp / "llava";
    make_llava_folder(dir);
    json j = json::parse(std::ifstream(dir / "config.json"));
    j["text_config"].erase("hidden_size");
    write_json(dir / "config.json", j);
    CHECK_THROWS_WITH_AS(open_text_encoder(dir), doctest::Contains("language_model.model.embed_tokens.weight\" is [40, 16], but "
                                                                   "[text_config.vocab_size, text_config.hidden_size] is [40, 4096]"),
                         Error);
}

TEST_CASE("text encoder files: ComfyUI llava_llama3_fp16.safetensors (config inferred)") {
    TempDir tmp;
    const Tensors t = llama_tensors(kComfy, "model.", "", DType::f16);
    save_safetensors(tmp / "llava_llama3_fp16.safetensors", t);
    // Not this file's config: a single file's neighbours are not read.
    write_json(tmp / "config.json", {{"model_type", "clip"}});
    const TextEncoderFiles te = open_text_encoder(tmp / "llava_llama3_fp16.safetensors", TextEncoderKind::llama);
    CHECK(te.layout == "comfyui-single-file");
    CHECK(te.config_inferred);
    CHECK_FALSE(te.config_file);
    CHECK(te.storage_dtype == DType::f16);
    const LlamaConfig& c = te.llama_config();
    CHECK(c.hidden_size == 256);
    CHECK(c.num_attention_heads == 2);
    CHECK(c.num_key_value_heads == 1);
    CHECK(c.head_dim == 128);
    CHECK(c.intermediate_size == 64);
    CHECK(c.num_hidden_layers == 2);
    CHECK(c.vocab_size == 16);
    CHECK(c.rms_norm_eps == 1e-5f);
    CHECK(c.rope_theta == 500000.0);
    CHECK(te.config_notes.size() >= 2);
    CHECK(names_of(*te.weights) == names_of(t));
    check_same(*te.weights, t);
}

TEST_CASE("text encoder files: ComfyUI llava_llama3_fp8_scaled.safetensors is dequantised when read") {
    TempDir tmp;
    const Tensors plain = llama_tensors(kComfy, "model.", "", DType::f16);
    Tensors t;
    std::map<std::string, float> scale;
    float next = 0.0123f;
    for (const auto& [name, w] : plain) {
        if (!is_linear(name)) {
            t.emplace_back(name, w);
            continue;
        }
        const std::string module = name.substr(0, name.size() - 7);
        t.emplace_back(name, w.to(DType::f32).to(DType::f8e4m3));
        t.emplace_back(module + ".scale_weight", Tensor::from_vector<float>({}, {next}));
        t.emplace_back(module + ".scale_input", Tensor::from_vector<float>({}, {1.0f}));
        scale[name] = next;
        next *= 1.37f;
    }
    t.emplace_back("scaled_fp8", Tensor::empty({0}, DType::f8e4m3));
    const fs::path file = tmp / "llava_llama3_fp8_scaled.safetensors";
    save_safetensors(file, t);

    const TextEncoderFiles te = open_text_encoder(file);
    CHECK(te.layout == "comfyui-fp8-scaled");
    CHECK(te.storage_dtype == DType::f8e4m3);
    CHECK(te.config_inferred);
    CHECK(te.fp8_unscaled.empty());
    CHECK(te.weights->fp8_dtype() == DType::f16);  // the dtype of model.norm.weight, as ComfyUI computes
    CHECK(names_of(*te.weights) == names_of(plain));
    // The scales and the marker are the files', not the encoder's.
    CHECK(te.ignored.size() == 2 * scale.size() + 1);

    for (const auto& [name, s] : scale) {
        INFO(name);
        CHECK(te.weights->fp8_scaled(name));
        CHECK(te.weights->stored_dtype(name) == DType::f8e4m3);
        CHECK(te.weights->shape(name) == te.weights->stored(name).shape());
        CHECK(te.weights->fp8_scale(name).item() == s);
        const Tensor got = te.weights->get(name);
        REQUIRE(got.dtype() == DType::f16);
        const Tensor w8 = te.weights->stored(name);
        const auto* bytes = static_cast<const std::uint8_t*>(w8.raw_data());
        const std::vector<float> g = got.to_vector();
        // ComfyUI: weight.to(f16) * scale_weight.to(f16), one rounding of the product to f16.
        const float s16 = f16_to_f32(f32_to_f16(s));
        bool exact = true;
        for (std::size_t i = 0; i < g.size(); ++i)
            exact = exact && g[i] == f16_to_f32(f32_to_f16(f8e4m3_to_f32(bytes[i]) * s16));
        CHECK(exact);
    }
    CHECK_FALSE(te.weights->fp8_scaled("model.norm.weight"));
    check_same(*te.weights, {plain.front()});  // the embedding, stored F16, is read as it is

    // Another compute dtype on request.
    TextEncoderOptions o;
    o.fp8_dtype = DType::bf16;
    const TextEncoderFiles bf = open_text_encoder(file, {}, o);
    const std::string q = "model.layers.1.self_attn.q_proj.weight";
    const Tensor got = bf.weights->get(q);
    CHECK(got.dtype() == DType::bf16);
    CHECK(got.to_vector() == dequantize_fp8(bf.weights->stored(q), bf.weights->fp8_scale(q), DType::bf16).to_vector());
}

TEST_CASE("text encoder files: ComfyUI clip_l.safetensors (config inferred)") {
    TempDir tmp;
    const ClipSizes s{128, 32, 1, 0};
    Tensors t = clip_text_tensors(s, 20, 77, DType::f16);
    Tensors all = t;
    all.emplace_back("text_projection.weight", values({128, 128}, 3, DType::f16));
    save_safetensors(tmp / "clip_l.safetensors", all);
    const TextEncoderFiles te = open_text_encoder(tmp / "clip_l.safetensors");
    CHECK(te.kind == TextEncoderKind::clip_text);
    CHECK(te.layout == "comfyui-single-file");
    CHECK(te.config_inferred);
    const CLIPTextConfig& c = te.clip_text_config();
    CHECK(c.hidden_size == 128);
    CHECK(c.num_attention_heads == 2);  // head_dim 64
    CHECK(c.intermediate_size == 32);
    CHECK(c.num_hidden_layers == 1);
    CHECK(c.vocab_size == 20);
    CHECK(c.max_position_embeddings == 77);
    CHECK(names_of(*te.weights) == names_of(t));
    CHECK(te.ignored == std::vector<std::string>{"text_projection.weight"});
    check_same(*te.weights, t);
}

// ---- errors ----------------------------------------------------------------------------------------------

TEST_CASE("text encoder files: missing paths, folders without weights, files that are not safetensors") {
    TempDir tmp;
    CHECK_THROWS_WITH_AS(open_text_encoder(tmp / "nothing"), doctest::Contains("nothing: no such file or directory"), Error);

    fs::create_directories(tmp / "empty");
    write_text(tmp / "empty" / "tokenizer.json", "{}");
    CHECK_THROWS_WITH_AS(open_text_encoder(tmp / "empty"), doctest::Contains("empty: no text encoder weights"), Error);
    write_text(tmp / "empty" / "pytorch_model.bin", "PK\x03\x04");
    CHECK_THROWS_WITH_AS(open_text_encoder(tmp / "empty"), doctest::Contains("PyTorch .bin/.pt files are not read"), Error);

    fs::create_directories(tmp / "two");
    save_safetensors(tmp / "two" / "a.safetensors", {{"x", values({2}, 1)}});
    save_safetensors(tmp / "two" / "b.safetensors", {{"x", values({2}, 1)}});
    CHECK_THROWS_WITH_AS(open_text_encoder(tmp / "two"), doctest::Contains("several safetensors files (a.safetensors, b.safetensors)"),
                         Error);

    write_text(tmp / "notes.safetensors", "hello, this is not a safetensors file at all");
    const std::string e = error_of([&] { open_text_encoder(tmp / "notes.safetensors"); });
    CHECK(e.find((tmp / "notes.safetensors").string() + ": not a readable safetensors file") == 0);
    write_text(tmp / "model.bin", std::string("PK\x03\x04", 4) + "zipzipzip");
    CHECK_THROWS_WITH_AS(open_text_encoder(tmp / "model.bin"), doctest::Contains("a PyTorch pickle/ZIP file, not safetensors"), Error);

    // A FIFO is refused, not waited on.
    REQUIRE(::mkfifo((tmp / "fifo.safetensors").c_str(), 0600) == 0);
    CHECK_THROWS_WITH_AS(open_text_encoder(tmp / "fifo.safetensors"), doctest::Contains("is a FIFO"), Error);

    // Safetensors, but no text encoder in it (a DiT, say).
    save_safetensors(tmp / "dit.safetensors", {{"img_in.proj.weight", values({4, 2, 1, 2, 2}, 1)}});
    CHECK_THROWS_WITH_AS(open_text_encoder(tmp / "dit.safetensors"), doctest::Contains("no text encoder weights among its 1 tensors"),
                         Error);
    CHECK(text_encoders_in(tmp / "dit.safetensors").empty());
    CHECK(text_encoders_in(tmp / "nothing").empty());
}

TEST_CASE("text encoder files: a folder of another encoder than expected") {
    TempDir tmp;
    make_clip_folder(tmp / "clip");
    make_llava_folder(tmp / "llava");
    CHECK_THROWS_WITH_AS(open_text_encoder(tmp / "clip", TextEncoderKind::llama),
                         doctest::Contains("holds a CLIP text encoder (text_model.*), not the Llama LLM encoder expected"), Error);
    CHECK_THROWS_WITH_AS(open_text_encoder(tmp / "llava", TextEncoderKind::llama),
                         doctest::Contains("holds a llava I2V encoder (language_model.*, vision_tower.*), not the Llama LLM encoder expected"),
                         Error);
    CHECK_THROWS_WITH_AS(open_text_encoder(tmp / "clip", TextEncoderKind::llava), doctest::Contains("not the llava I2V encoder expected"),
                         Error);
    // A config.json of another model beside the weights.
    write_json(tmp / "clip" / "config.json", llama_json({}));
    CHECK_THROWS_WITH_AS(open_text_encoder(tmp / "clip"),
                         doctest::Contains("a \"llama\" config, but the weights are a CLIP text encoder"), Error);
}

TEST_CASE("text encoder files: config.json disagreeing with the weights' shapes") {
    const auto disagree = [](const std::function<void(json&)>& edit) {
        TempDir tmp;
        const fs::path dir = tmp / "te";
        make_llama_folder(dir);
        json j = llama_json({});
        edit(j);
        write_json(dir / "config.json", j);
        return error_of([&] { open_text_encoder(dir); });
    };
    const std::string prefix = "config.json disagrees with the weights: ";
    std::string e = disagree([](json& j) { j["num_hidden_layers"] = 3; });
    CHECK(e.find(prefix + "num_hidden_layers is 3, but the weights have 2 layers (model.layers.<i>)") != std::string::npos);
    e = disagree([](json& j) { j["hidden_size"] = 32; j["head_dim"] = 4; });
    CHECK(e.find(prefix + "\"model.embed_tokens.weight\" is [40, 16], but [vocab_size, hidden_size] is [40, 32]") != std::string::npos);
    e = disagree([](json& j) { j["num_attention_heads"] = 2; });
    CHECK(e.find("\"model.layers.0.self_attn.q_proj.weight\" is [16, 16], but [num_attention_heads·head_dim, hidden_size] is [8, 16]") !=
          std::string::npos);
    e = disagree([](json& j) { j["head_dim"] = 8; });
    CHECK(e.find("q_proj.weight\" is [16, 16], but [num_attention_heads·head_dim, hidden_size] is [32, 16]") != std::string::npos);
    e = disagree([](json& j) { j["num_key_value_heads"] = 4; });
    CHECK(e.find("\"model.layers.0.self_attn.k_proj.weight\" is [8, 16], but [num_key_value_heads·head_dim, hidden_size] is [16, 16]") !=
          std::string::npos);
    e = disagree([](json& j) { j["intermediate_size"] = 48; });
    CHECK(e.find("\"model.layers.0.mlp.gate_proj.weight\" is [24, 16], but [intermediate_size, hidden_size] is [48, 16]") !=
          std::string::npos);
    e = disagree([](json& j) { j["vocab_size"] = 41; });
    CHECK(e.find("\"model.embed_tokens.weight\" is [40, 16], but [vocab_size, hidden_size] is [41, 16]") != std::string::npos);
    // A config that is not valid on its own is refused before any comparison.
    e = disagree([](json& j) { j["num_key_value_heads"] = 3; });
    CHECK(e.find("is not a multiple of num_key_value_heads 3") != std::string::npos);
    // Each names the weights first.
    CHECK(e.find("model.safetensors.index.json: ") != std::string::npos);

    // The vision tower of llava, against its vision_config.
    TempDir tmp;
    make_llava_folder(tmp / "llava");
    json j = json::parse(std::ifstream(tmp / "llava" / "config.json"));
    j["vision_config"]["num_hidden_layers"] = 2;
    write_json(tmp / "llava" / "config.json", j);
    CHECK_THROWS_WITH_AS(open_text_encoder(tmp / "llava"),
                         doctest::Contains("vision_config.num_hidden_layers is 2, but the weights have 3 layers "
                                           "(vision_tower.vision_model.encoder.layers.<i>)"),
                         Error);
    j["vision_config"]["num_hidden_layers"] = 3;
    j["vision_config"]["image_size"] = 42;
    write_json(tmp / "llava" / "config.json", j);
    CHECK_THROWS_WITH_AS(open_text_encoder(tmp / "llava"), doctest::Contains("embeddings.position_embedding.weight\" is [5, 8]"), Error);
}

TEST_CASE("text encoder files: missing, extra and badly scaled tensors") {
    TempDir tmp;
    LlamaSizes s;
    Tensors t = llama_tensors(s, "model.", "");
    const auto write = [&](const Tensors& tensors) {
        fs::create_directories(tmp / "m");
        save_safetensors(tmp / "m" / "model.safetensors", tensors);
        write_json(tmp / "m" / "config.json", llama_json(s));
    };
    Tensors missing = t;
    std::erase_if(missing, [](auto& p) { return p.first == "model.layers.1.mlp.up_proj.weight"; });
    write(missing);
    CHECK_THROWS_WITH_AS(open_text_encoder(tmp / "m"),
                         doctest::Contains("no tensor \"model.layers.1.mlp.up_proj.weight\", which a Llama LLM encoder has"), Error);

    Tensors extra = t;
    extra.emplace_back("model.layers.0.self_attn.q_proj.bias", values({16}, 1));
    write(extra);
    CHECK_THROWS_WITH_AS(open_text_encoder(tmp / "m"),
                         doctest::Contains("the tensor \"model.layers.0.self_attn.q_proj.bias\" is not part of a Llama LLM encoder"),
                         Error);

    Tensors scaled_f32 = t;
    scaled_f32.emplace_back("model.layers.0.mlp.up_proj.scale_weight", Tensor::from_vector<float>({}, {0.5f}));
    write(scaled_f32);
    CHECK_THROWS_WITH_AS(open_text_encoder(tmp / "m"), doctest::Contains("which is float32, not float8_e4m3fn"), Error);

    Tensors orphan = t;
    orphan.emplace_back("model.layers.0.mlp.nothing.scale_weight", Tensor::from_vector<float>({}, {0.5f}));
    write(orphan);
    CHECK_THROWS_WITH_AS(open_text_encoder(tmp / "m"), doctest::Contains("scales \"model.layers.0.mlp.nothing.weight\", which is not stored"),
                         Error);

    // Heads cannot be inferred without a config when they are not Llama 3's 128 wide.
    save_safetensors(tmp / "tiny.safetensors", t);
    CHECK_THROWS_WITH_AS(open_text_encoder(tmp / "tiny.safetensors"),
                         doctest::Contains("cannot infer the attention heads: \"model.layers.0.self_attn.q_proj.weight\" has 16 rows, "
                                           "not a multiple of the head size 128"),
                         Error);
    // ... and a config.json named explicitly makes them known.
    TextEncoderOptions o;
    o.config = tmp / "m" / "config.json";
    CHECK(open_text_encoder(tmp / "tiny.safetensors", {}, o).llama_config().num_attention_heads == 4);
}

TEST_CASE("text encoder files: broken shard indexes") {
    TempDir tmp;
    const fs::path dir = tmp / "te";
    make_llama_folder(dir);
    const fs::path index = dir / "model.safetensors.index.json";
    const json good = json::parse(std::ifstream(index));

    json j = good;
    j["weight_map"]["model.norm.weight"] = "model-00003-of-00003.safetensors";
    write_json(index, j);
    CHECK_THROWS_WITH_AS(open_text_encoder(dir), doctest::Contains("names the shard model-00003-of-00003.safetensors, which is not in"),
                         Error);

    j = good;
    j["weight_map"]["model.norm.weight"] = "model-00001-of-00002.safetensors";
    write_json(index, j);
    CHECK_THROWS_WITH_AS(open_text_encoder(dir),
                         doctest::Contains("puts \"model.norm.weight\" in model-00001-of-00002.safetensors, which does not hold it"),
                         Error);

    j = good;
    j["weight_map"]["model.extra.weight"] = "model-00001-of-00002.safetensors";
    write_json(index, j);
    CHECK_THROWS_WITH_AS(open_text_encoder(dir), doctest::Contains("puts \"model.extra.weight\""), Error);

    write_text(index, "{\"weight_map\": {");
    CHECK_THROWS_WITH_AS(open_text_encoder(dir), doctest::Contains("not valid JSON"), Error);
    write_json(index, {{"metadata", json::object()}});
    CHECK_THROWS_WITH_AS(open_text_encoder(dir), doctest::Contains("not a safetensors index (no \"weight_map\" object)"), Error);
    write_json(index, {{"weight_map", json::object()}});
    CHECK_THROWS_WITH_AS(open_text_encoder(dir), doctest::Contains("the weight_map is empty"), Error);
    write_json(index, {{"weight_map", {{"model.norm.weight", "../elsewhere.safetensors"}}}});
    CHECK_THROWS_WITH_AS(open_text_encoder(dir), doctest::Contains("is not a file name in the same folder"), Error);

    // A shard that is a directory.
    fs::create_directories(dir / "subdir");
    write_json(index, {{"weight_map", {{"model.norm.weight", "subdir"}}}});
    CHECK_THROWS_WITH_AS(open_text_encoder(dir), doctest::Contains("is a directory, not a regular file"), Error);

    // A tensor in two shards.
    j = good;
    write_json(index, j);
    const Tensors dup = {{"model.norm.weight", values({16}, 3)}};
    save_safetensors(dir / "model-00001-of-00002.safetensors",
                     [&] {
                         const ShardedSafetensors one = ShardedSafetensors::open(dir / "model-00001-of-00002.safetensors");
                         Tensors t;
                         for (const auto& n : one.names()) t.emplace_back(n, one.get(n).clone());
                         t.push_back(dup.front());
                         return t;
                     }());
    CHECK_THROWS_WITH_AS(open_text_encoder(dir),
                         doctest::Contains("the tensor \"model.norm.weight\" is in both model-00001-of-00002.safetensors and "
                                           "model-00002-of-00002.safetensors"),
                         Error);

    // The index itself a directory.
    fs::remove(index);
    fs::create_directories(index);
    CHECK_THROWS_WITH_AS(ShardedSafetensors::open(index), doctest::Contains("is a directory, not a regular file"), Error);
}

// ---- hyvideo inspect ------------------------------------------------------------------------------------

TEST_CASE("text encoder files: hyvideo inspect describes text encoders") {
    TempDir tmp;
    make_llama_folder(tmp / "text_encoder");
    make_clip_folder(tmp / "text_encoder_2");

    cli::InspectArgs opt;
    const json r = cli::inspect_detail::inspect_text_encoder((tmp / "text_encoder").string(), opt);
    CHECK(r["kind"] == "llama");
    CHECK(r["layout"] == "hf-sharded-folder");
    CHECK(r["config"]["num_attention_heads"] == 4);
    CHECK(r["config_inferred"] == false);
    const LlamaSizes s;
    const std::int64_t per_layer = 2 * s.hidden + 2 * 16 * 16 + 2 * 8 * 16 + 3 * 24 * 16;
    CHECK(r["parameters"] == 2 * 40 * 16 + 2 * per_layer + 16);
    CHECK(cli::inspect_detail::clean(r));

    const auto run = hyvideo::test::run_cli("inspect " + (tmp / "text_encoder").string() + " " + (tmp / "text_encoder_2").string());
    INFO(run.output);
    CHECK(run.status == 0);
    CHECK(run.output.find("HunyuanVideo Llama LLM encoder") != std::string::npos);
    CHECK(run.output.find("hf-sharded-folder (2 shards with model.safetensors.index.json)") != std::string::npos);
    CHECK(run.output.find("HunyuanVideo CLIP text encoder") != std::string::npos);
    CHECK(run.output.find("Llama hidden 16 = 4 heads x 4 (2 KV heads), 2 layers") != std::string::npos);
}
