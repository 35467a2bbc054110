// The prompt path end to end through build/bin/hyvideo: `generate --prompt`, `encode-text` and `tokenize`
// on tiny text encoders that this file writes in the layouts users download them in:
//   text_encoder/     HunyuanVideo's LlamaForCausalLM.save_pretrained folder: config.json, two F16 shards
//                     (model.*, lm_head.weight) and their index, the llama3-llava tokenizer files
//   text_encoder_2/   openai/clip-vit-large-patch14: a CLIPConfig, one F32 model.safetensors holding a whole
//                     CLIPModel (text_model.*, some vision_model.*, the projections, logit_scale, the int64
//                     position_ids buffer), vocab.json and merges.txt
//   llava/            HunyuanVideo-I2V's xtuner llava folder: a LlavaConfig (text_config omitting what
//                     transformers defaults), F16 shards, preprocessor_config.json, tokenizer files
//   ComfyUI single files (model.* alone, F16, no config, no tokenizer)
// with a DiT of the built-in structure (4 latent channels) and the official-layout tiny VAE of
// tests/data/checkpoints. Every run is short (32x32, 5 frames, 2 steps); the folders are written once.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/io/image.hpp"
#include "hyvideo/io/safetensors.hpp"
#include "hyvideo/io/video.hpp"
#include "hyvideo/models/hunyuan_video.hpp"
#include "hyvideo/nn/init.hpp"
#include "hyvideo/pipelines/default_model.hpp"
#include "hyvideo/pipelines/prompt_encoder.hpp"
#include "hyvideo/text/llama_tokenizer.hpp"
#include "hyvideo/text/prompt_template.hpp"
#include "hyvideo/text_encoder/clip_text_model.hpp"
#include "hyvideo/text_encoder/llama.hpp"
#include "hyvideo/text_encoder/llava.hpp"
#include "cli_helpers.hpp"

namespace fs = std::filesystem;
using namespace hyvideo;
using hyvideo::test::run_cli;
using hyvideo::test::frames_in;
using json = nlohmann::json;

namespace {

using Run = hyvideo::test::CliRun;
using Tensors = std::vector<std::pair<std::string, Tensor>>;

const fs::path kTokenizers = fs::path(HYVIDEO_TEST_DATA_DIR) / ".." / ".." / "assets" / "tokenizers";
const std::string kVae = std::string(HYVIDEO_TEST_DATA_DIR) + "/checkpoints/official/vae/pytorch_model.pt";
const std::string kPrompt = "A cat walks on the grass, realistic style.";
const std::string kShort = " --video-size 32 32 --video-length 5 --infer-steps 2 --seed 7";

// A path or a text as one shell word (run_cli goes through /bin/sh).
std::string q(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}
std::string q(const fs::path& p) { return q(p.string()); }

void write_json(const fs::path& p, const json& j) { std::ofstream(p) << j.dump(2) << "\n"; }
void write_text(const fs::path& p, const std::string& s) { std::ofstream(p) << s; }

// Every parameter of `m` under `prefix`, converted to `dtype`, in the module's order.
template <class M>
Tensors state_dict(M& m, const std::string& prefix, DType dtype) {
    Tensors t;
    m.parameters(prefix, [&](const std::string& name, const Shape&, Tensor& slot) { t.emplace_back(name, slot.to(dtype)); });
    return t;
}

std::uint64_t bytes_of(const Tensors& t) {
    std::uint64_t n = 0;
    for (const auto& [_, x] : t) n += x.nbytes();
    return n;
}

// save_pretrained's layout: the tensors in order, cut into shards after `first` tensors, and the index.
void save_sharded(const fs::path& dir, const Tensors& t, std::size_t first) {
    json map = json::object();
    const Tensors parts[2] = {Tensors(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(first)),
                              Tensors(t.begin() + static_cast<std::ptrdiff_t>(first), t.end())};
    for (int k = 0; k < 2; ++k) {
        const std::string name = "model-0000" + std::to_string(k + 1) + "-of-00002.safetensors";
        for (const auto& [n, _] : parts[k]) map[n] = name;
        save_safetensors(dir / name, parts[k], {{"format", "pt"}});
    }
    write_json(dir / "model.safetensors.index.json",
               {{"metadata", {{"total_size", bytes_of(t)}}}, {"weight_map", map}});
}

void copy_tokenizer(const fs::path& dir, const std::string& bundle, const std::vector<std::string>& files) {
    for (const auto& f : files) fs::copy_file(kTokenizers / bundle / f, dir / f, fs::copy_options::overwrite_existing);
}

LlamaConfig llama_config(std::int64_t hidden, std::int64_t heads, std::int64_t kv_heads, std::int64_t head_dim) {
    LlamaConfig c;
    c.hidden_size = hidden;
    c.intermediate_size = 2 * hidden;
    c.num_hidden_layers = 4;
    c.num_attention_heads = heads;
    c.num_key_value_heads = kv_heads;
    c.head_dim = head_dim;
    c.vocab_size = 128320;
    c.rms_norm_eps = 1e-5f;
    c.rope_theta = 500000.0;
    return c;
}

// transformers' LlamaConfig as save_pretrained writes it (HunyuanVideo's text_encoder/config.json).
json llama_config_json(const LlamaConfig& c) {
    return {{"_name_or_path", "ckpts/llava-llama-3-8b-v1_1-transformers"},
            {"architectures", {"LlamaForCausalLM"}},
            {"attention_bias", false},
            {"attention_dropout", 0.0},
            {"bos_token_id", 128000},
            {"eos_token_id", 128001},
            {"head_dim", c.head_dim},
            {"hidden_act", "silu"},
            {"hidden_size", c.hidden_size},
            {"initializer_range", 0.02},
            {"intermediate_size", c.intermediate_size},
            {"max_position_embeddings", 8192},
            {"mlp_bias", false},
            {"model_type", "llama"},
            {"num_attention_heads", c.num_attention_heads},
            {"num_hidden_layers", c.num_hidden_layers},
            {"num_key_value_heads", c.num_key_value_heads},
            {"pretraining_tp", 1},
            {"rms_norm_eps", 1e-5},
            {"rope_scaling", nullptr},
            {"rope_theta", 500000.0},
            {"tie_word_embeddings", false},
            {"torch_dtype", "float16"},
            {"transformers_version", "4.41.2"},
            {"use_cache", true},
            {"vocab_size", c.vocab_size}};
}

// A LlamaForCausalLM's state dict in F16: model.* and lm_head.weight.
Tensors llama_weights(const LlamaConfig& c, std::uint64_t seed, bool lm_head = true) {
    LlamaModel<cpu> m(c);
    init_weights(m, seed);
    Tensors t = state_dict(m, "model.", DType::f16);
    if (lm_head) t.emplace_back("lm_head.weight", randn({c.vocab_size, c.hidden_size}, seed + 100, false).to(DType::f16));
    return t;
}

void write_llama_folder(const fs::path& dir, const LlamaConfig& c, std::uint64_t seed) {
    fs::create_directories(dir);
    const Tensors t = llama_weights(c, seed);
    save_sharded(dir, t, 1 + 9 * 2);  // embed_tokens and layers 0-1 | layers 2-3, norm, lm_head
    write_json(dir / "config.json", llama_config_json(c));
    write_json(dir / "generation_config.json", {{"bos_token_id", 128000}, {"eos_token_id", 128001}});
    copy_tokenizer(dir, "llama3-llava", {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"});
}

Tensor arange_i64(std::int64_t n) {
    std::vector<std::int64_t> v(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
    return Tensor::from_vector<std::int64_t>({1, n}, v);
}

CLIPTextConfig clip_config() {
    CLIPTextConfig c;
    c.hidden_size = 32;  // default_dit_config().text_states_dim_2
    c.intermediate_size = 64;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.vocab_size = 49408;
    c.max_position_embeddings = 77;
    return c;
}

Tensors clip_text_weights(const CLIPTextConfig& c, std::uint64_t seed, DType dtype) {
    CLIPTextModel<cpu> m(c);
    init_weights(m, seed);
    return state_dict(m, "text_model.", dtype);
}

// openai/clip-vit-large-patch14 in small: a whole CLIPModel in one F32 file, its config and its tokenizer.
void write_clip_folder(const fs::path& dir) {
    fs::create_directories(dir);
    const CLIPTextConfig c = clip_config();
    const std::int64_t vision = 48, projection = 24;
    Tensors all;
    all.emplace_back("text_model.embeddings.position_ids", arange_i64(c.max_position_embeddings));  // int64 first
    all.emplace_back("vision_model.embeddings.position_ids", arange_i64(257));
    for (auto& t : clip_text_weights(c, 31, DType::f32)) all.push_back(std::move(t));
    all.emplace_back("vision_model.embeddings.class_embedding", randn({vision}, 41, false));
    all.emplace_back("vision_model.embeddings.patch_embedding.weight", randn({vision, 3, 14, 14}, 42, false));
    all.emplace_back("vision_model.embeddings.position_embedding.weight", randn({257, vision}, 43, false));
    all.emplace_back("vision_model.pre_layrnorm.weight", randn({vision}, 44, false));
    all.emplace_back("vision_model.pre_layrnorm.bias", randn({vision}, 45, false));
    all.emplace_back("vision_model.encoder.layers.0.self_attn.q_proj.weight", randn({vision, vision}, 46, false));
    all.emplace_back("vision_model.post_layernorm.weight", randn({vision}, 47, false));
    all.emplace_back("text_projection.weight", randn({projection, c.hidden_size}, 48, false));
    all.emplace_back("visual_projection.weight", randn({projection, vision}, 49, false));
    all.emplace_back("logit_scale", Tensor::from_vector<float>({}, {2.6592f}));
    save_safetensors(dir / "model.safetensors", all, {{"format", "pt"}});
    const json text = {{"_name_or_path", ""},
                       {"architectures", nullptr},
                       {"bos_token_id", 0},
                       {"eos_token_id", 2},
                       {"pad_token_id", 1},
                       {"dropout", 0.0},
                       {"hidden_act", "quick_gelu"},
                       {"hidden_size", c.hidden_size},
                       {"initializer_factor", 1.0},
                       {"intermediate_size", c.intermediate_size},
                       {"layer_norm_eps", 1e-05},
                       {"max_position_embeddings", c.max_position_embeddings},
                       {"model_type", "clip_text_model"},
                       {"num_attention_heads", c.num_attention_heads},
                       {"num_hidden_layers", c.num_hidden_layers},
                       {"projection_dim", projection},
                       {"vocab_size", c.vocab_size}};
    const json vision_config = {{"hidden_act", "quick_gelu"}, {"hidden_size", vision},   {"image_size", 224},
                                {"intermediate_size", 96},    {"model_type", "clip_vision_model"},
                                {"num_attention_heads", 4},   {"num_hidden_layers", 1}, {"patch_size", 14},
                                {"projection_dim", projection}};
    write_json(dir / "config.json", {{"_name_or_path", "openai/clip-vit-large-patch14"},
                                     {"architectures", {"CLIPModel"}},
                                     {"initializer_factor", 1.0},
                                     {"logit_scale_init_value", 2.6592},
                                     {"model_type", "clip"},
                                     {"projection_dim", projection},
                                     {"text_config", text},
                                     {"text_config_dict", {{"hidden_size", c.hidden_size}, {"projection_dim", projection}}},
                                     {"torch_dtype", "float32"},
                                     {"transformers_version", "4.16.0.dev0"},
                                     {"vision_config", vision_config}});
    copy_tokenizer(dir, "clip-vit-large-patch14", {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"});
}

LlavaConfig llava_config() {
    LlavaConfig c;
    c.text_config = llama_config(64, 4, 2, 16);
    c.vision_config.hidden_size = 32;
    c.vision_config.intermediate_size = 64;
    c.vision_config.num_hidden_layers = 2;
    c.vision_config.num_attention_heads = 4;
    c.vision_config.image_size = 336;
    c.vision_config.patch_size = 14;
    return c;
}

// xtuner/llava-llama-3-8b-v1_1-transformers in small (HunyuanVideo-I2V's text_encoder_i2v). As in the
// released config.json, text_config leaves out head_dim and hidden_act, vision_config its activation.
void write_llava_folder(const fs::path& dir) {
    fs::create_directories(dir);
    const LlavaConfig c = llava_config();
    LlavaForConditionalGeneration<cpu> m(c);
    init_weights(m, 61);
    Tensors t = state_dict(m, "", DType::f16);
    t.emplace_back("language_model.lm_head.weight",
                   randn({c.text_config.vocab_size, c.text_config.hidden_size}, 62, false).to(DType::f16));
    save_sharded(dir, t, t.size() / 2);
    const LlamaConfig& l = c.text_config;
    const CLIPVisionConfig& v = c.vision_config;
    write_json(dir / "config.json",
               {{"architectures", {"LlavaForConditionalGeneration"}},
                {"ignore_index", -100},
                {"image_token_index", 128257},
                {"model_type", "llava"},
                {"pad_token_id", 128258},
                {"projector_hidden_act", "gelu"},
                {"text_config", {{"architectures", {"LlamaForCausalLM"}}, {"bos_token_id", 128000},
                                 {"eos_token_id", 128001}, {"hidden_size", l.hidden_size},
                                 {"intermediate_size", l.intermediate_size}, {"max_position_embeddings", 8192},
                                 {"model_type", "llama"}, {"num_attention_heads", l.num_attention_heads},
                                 {"num_hidden_layers", l.num_hidden_layers}, {"num_key_value_heads", l.num_key_value_heads},
                                 {"rms_norm_eps", 1e-05}, {"rope_theta", 500000.0}, {"torch_dtype", "bfloat16"},
                                 {"vocab_size", l.vocab_size}}},
                {"tie_word_embeddings", false},
                {"torch_dtype", "float16"},
                {"transformers_version", "4.40.0.dev0"},
                {"vision_config", {{"architectures", {"CLIPVisionModel"}}, {"dropout", 0.0}, {"hidden_size", v.hidden_size},
                                   {"image_size", v.image_size}, {"intermediate_size", v.intermediate_size},
                                   {"model_type", "clip_vision_model"}, {"num_attention_heads", v.num_attention_heads},
                                   {"num_hidden_layers", v.num_hidden_layers}, {"patch_size", v.patch_size},
                                   {"projection_dim", 768}, {"torch_dtype", "float32"}}},
                {"vision_feature_layer", -2},
                {"vision_feature_select_strategy", "default"}});
    write_json(dir / "preprocessor_config.json",
               {{"crop_size", {{"height", 336}, {"width", 336}}},
                {"do_center_crop", true},
                {"do_convert_rgb", true},
                {"do_normalize", true},
                {"do_rescale", true},
                {"do_resize", true},
                {"image_mean", {0.48145466, 0.4578275, 0.40821073}},
                {"image_processor_type", "CLIPImageProcessor"},
                {"image_std", {0.26862954, 0.26130258, 0.27577711}},
                {"processor_class", "LlavaProcessor"},
                {"resample", 3},
                {"rescale_factor", 0.00392156862745098},
                {"size", {{"shortest_edge", 336}}}});
    copy_tokenizer(dir, "llama3-llava", {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"});
}

// Everything the tests share, written once (about a second) and removed when the test binary exits.
struct Models {
    fs::path dir = fs::temp_directory_path() / ("hyvideo_cli_text_" + std::to_string(::getpid()));
    fs::path llm, clip, llava, llm48, wide, comfy_wide, comfy_llm, comfy_clip, comfy_folder, dit, dit_json, dit_i2v_json, image;
    LlamaConfig llm_config = llama_config(64, 4, 2, 16);  // the DiT's text_states_dim
    // hidden 64 with 128-wide heads: what ComfyUI's single files can be read as without a config.json.
    LlamaConfig wide_config = llama_config(64, 2, 1, 128);

    Models() {
        fs::remove_all(dir);
        fs::create_directories(dir);
        llm = dir / "text_encoder";
        clip = dir / "text_encoder_2";
        llava = dir / "text_encoder_i2v";
        llm48 = dir / "text_encoder_48";
        wide = dir / "wide_heads";
        comfy_wide = dir / "comfyui" / "llava_llama3_fp16.safetensors";
        comfy_llm = dir / "comfyui" / "llava_llama3_narrow_heads_fp16.safetensors";
        comfy_clip = dir / "comfyui" / "clip_l.safetensors";
        write_llama_folder(llm, llm_config, 11);
        write_clip_folder(clip);
        write_llava_folder(llava);
        write_llama_folder(llm48, llama_config(48, 4, 2, 12), 21);
        // The same 128-wide-head weights as an HF folder in one file (config.json + model.safetensors)
        // and as a ComfyUI file (model.* only, no lm_head, no config, no tokenizer).
        fs::create_directories(wide);
        fs::create_directories(comfy_wide.parent_path());
        const Tensors w = llama_weights(wide_config, 71, false);
        save_safetensors(wide / "model.safetensors", w, {{"format", "pt"}});
        write_json(wide / "config.json", llama_config_json(wide_config));
        copy_tokenizer(wide, "llama3-llava", {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"});
        save_safetensors(comfy_wide, w);
        save_safetensors(comfy_llm, llama_weights(llm_config, 11, false));
        save_safetensors(comfy_clip, clip_text_weights(clip_config(), 31, DType::f16));
        // What the error for comfy_llm asks for: the file in a folder with its config.json.
        comfy_folder = dir / "comfyui_with_config";
        fs::create_directories(comfy_folder);
        fs::copy_file(comfy_llm, comfy_folder / comfy_llm.filename());
        write_json(comfy_folder / "config.json", llama_config_json(llm_config));

        HYVideoConfig cfg = default_dit_config();
        cfg.in_channels = cfg.out_channels = 4;  // the official tiny VAE's latent channels
        HYVideoDiffusionTransformer<cpu> m(cfg);
        init_weights(m, 9);
        dit = dir / "dit.safetensors";
        save_safetensors(dit, state_dict(m, "", DType::f32));
        dit_json = dir / "dit.json";
        write_json(dit_json, cfg.to_json());
        cfg.i2v_condition_type = I2VConditionType::token_replace;
        dit_i2v_json = dir / "dit_i2v.json";
        write_json(dit_i2v_json, cfg.to_json());

        Frames img = Frames::zeros(1, 48, 64);
        for (std::int64_t y = 0; y < img.height; ++y)
            for (std::int64_t x = 0; x < img.width; ++x) {
                img.at(0, y, x, 0) = static_cast<std::uint8_t>(4 * x);
                img.at(0, y, x, 1) = static_cast<std::uint8_t>(5 * y);
                img.at(0, y, x, 2) = static_cast<std::uint8_t>(128);
            }
        image = dir / "first_frame.png";
        write_png(image, img.frame(0), img.height, img.width);
    }
    ~Models() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }

    // generate with the tiny DiT and the official-layout VAE, and the given encoders.
    std::string generate(const fs::path& text_encoder, const fs::path& text_encoder_2, bool i2v = false) const {
        return "generate" + kShort + " --dit " + q(dit) + " --dit-config " + q(i2v ? dit_i2v_json : dit_json) + " --vae " +
               q(kVae) + " --text-encoder " + q(text_encoder) + " --text-encoder-2 " + q(text_encoder_2);
    }
    std::string generate() const { return generate(llm, clip); }
};

const Models& models() {
    static const Models m;
    return m;
}

// A directory for one test's outputs, removed afterwards.
struct Out {
    fs::path dir;
    explicit Out(const std::string& name)
        : dir(fs::temp_directory_path() / ("hyvideo_cli_text_out_" + std::to_string(::getpid()) + "_" + name)) {
        fs::remove_all(dir);
        fs::create_directories(dir);
    }
    ~Out() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    std::string operator/(const std::string& name) const { return q(dir / name); }
    fs::path path(const std::string& name) const { return dir / name; }
    std::size_t entries() const { return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir), {})); }
};

std::int64_t ones(const Tensor& mask) {
    const auto v = mask.to_vector();
    return static_cast<std::int64_t>(std::count(v.begin(), v.end(), 1.0f));
}

bool contains(const std::string& text, const std::string& piece) { return text.find(piece) != std::string::npos; }

// The lines of `text` that are not empty.
std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) out.push_back(line);
    return out;
}

const text::LlamaTokenizer& llama_tokenizer() {
    static const text::LlamaTokenizer t(kTokenizers / "llama3-llava");
    return t;
}

// The prompt tokens the LLM encoder keeps of `prompt` in the template: the template's tokens minus its
// crop_start, as the official encoder's mask counts them.
std::int64_t prompt_tokens(const std::string& prompt, const std::string& tpl = "dit-llm-encode-video") {
    const text::PromptTemplate& t = text::prompt_template(tpl);
    const text::TokenizedText ids = llama_tokenizer().encode_prompt(t, python_strip(prompt));
    const auto n = std::count(ids.attention_mask.begin(), ids.attention_mask.end(), 1);
    return static_cast<std::int64_t>(n) - static_cast<std::int64_t>(t.crop_start);
}

std::vector<std::int64_t> ids_row(const fs::path& fixture, const std::string& name, std::int64_t row) {
    const SafetensorsFile f = SafetensorsFile::open(fixture);
    const Tensor t = f.get(name).contiguous();
    const auto* p = t.data<const std::int64_t>() + row * t.size(1);
    return {p, p + t.size(1)};
}

}  // namespace

TEST_CASE("cli text encoders: generate --prompt, and encode-text then --text-embeds, give the same video") {
    const Models& m = models();
    Out o("agree");
    const Run a = run_cli(m.generate() + " --prompt " + q(kPrompt) + " -o " + (o / "prompt.mp4") + " --frames-dir " +
                          (o / "prompt"));
    INFO(a.output);
    REQUIRE(a.status == 0);
    CHECK(contains(a.output, "encoded the prompt in"));
    CHECK(!contains(a.output, "negative"));
    // What the DiT received: the prompt's tokens after the template's crop, of 256 rows.
    const std::int64_t tokens = prompt_tokens(kPrompt);
    CHECK(contains(a.output, "(" + std::to_string(tokens) + " of 256 text rows valid)"));
    CHECK(!contains(a.output, "bundled"));  // the released folders carry their own tokenizers
    const VideoInfo info = probe_video(o.path("prompt.mp4"));
    CHECK(info.frames == 5);
    CHECK(info.width == 32);
    CHECK(info.height == 32);

    const Run e = run_cli("encode-text --prompt " + q(kPrompt) + " --text-encoder " + q(m.llm) + " --text-encoder-2 " +
                          q(m.clip) + " -o " + (o / "e.safetensors"));
    INFO(e.output);
    REQUIRE(e.status == 0);
    {
        const SafetensorsFile f = SafetensorsFile::open(o.path("e.safetensors"));
        CHECK(f.names().size() == 3);
        CHECK(f.info("text_states").dtype == DType::f32);
        CHECK(f.info("text_states").shape == (Shape{1, 256, 64}));
        CHECK(f.info("text_mask").dtype == DType::i64);
        CHECK(f.info("text_mask").shape == (Shape{1, 256}));
        CHECK(f.info("text_states_2").dtype == DType::f32);
        CHECK(f.info("text_states_2").shape == (Shape{1, 32}));
        const Tensor mask = f.get("text_mask");
        CHECK(ones(mask) == tokens);
        // The valid rows come first (right padding).
        const auto mv = mask.to_vector();
        CHECK(std::all_of(mv.begin(), mv.begin() + tokens, [](float v) { return v == 1.0f; }));
        CHECK(f.metadata().at("prompt") == kPrompt);
        CHECK(f.metadata().at("data_type") == "video");
        const auto states = f.get("text_states").to_vector();
        CHECK(std::all_of(states.begin(), states.end(), [](float v) { return std::isfinite(v); }));
    }

    const Run b = run_cli("generate" + kShort + " --dit " + q(m.dit) + " --dit-config " + q(m.dit_json) + " --vae " +
                          q(kVae) + " --text-embeds " + (o / "e.safetensors") + " -o " + (o / "embeds.mp4") +
                          " --frames-dir " + (o / "embeds"));
    INFO(b.output);
    REQUIRE(b.status == 0);
    const auto pa = frames_in(o.path("prompt")), pb = frames_in(o.path("embeds"));
    CHECK(pa.size() == 5);
    CHECK(pa == pb);  // byte-identical PNG frames
}

TEST_CASE("cli text encoders: --text-encoder-precision bf16") {
    const Models& m = models();
    Out o("bf16");
    const std::string enc = "encode-text --prompt " + q(kPrompt) + " --text-encoder " + q(m.llm) + " --text-encoder-2 " +
                            q(m.clip);
    const Run f32 = run_cli(enc + " -o " + (o / "f32.safetensors"));
    const Run bf16 = run_cli(enc + " --text-encoder-precision bf16 -o " + (o / "bf16.safetensors"));
    INFO(f32.output, "\n", bf16.output);
    REQUIRE(f32.status == 0);
    REQUIRE(bf16.status == 0);
    const SafetensorsFile a = SafetensorsFile::open(o.path("f32.safetensors")), b = SafetensorsFile::open(o.path("bf16.safetensors"));
    CHECK(a.get("text_mask").to_vector() == b.get("text_mask").to_vector());
    for (const std::string name : {"text_states", "text_states_2"}) {
        CAPTURE(name);
        const auto x = a.get(name).to_vector(), y = b.get(name).to_vector();
        REQUIRE(x.size() == y.size());
        double diff = 0, norm = 0;
        for (std::size_t i = 0; i < x.size(); ++i) {
            diff += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
            norm += double(x[i]) * x[i];
        }
        CHECK(diff > 0);                  // bf16 operands change the result...
        CHECK(diff < 1e-3 * norm);        // ...by bf16's rounding (relative L2 < 3%)
    }
    const Run g = run_cli(m.generate() + " --text-encoder-precision bf16 --prompt " + q(kPrompt) + " -o " + (o / "out.mp4"));
    INFO(g.output);
    CHECK(g.status == 0);
    CHECK(contains(g.output, "encoded the prompt in"));
    CHECK(fs::is_regular_file(o.path("out.mp4")));
    const Run bad = run_cli(enc + " --text-encoder-precision f16 -o " + (o / "f16.safetensors"));
    CHECK(bad.status == 1);
    CHECK(contains(bad.output, "--text-encoder-precision"));
}

TEST_CASE("cli text encoders: --cfg-scale > 1 and --neg-prompt encode the negative prompt") {
    const Models& m = models();
    Out o("negative");
    const Run a = run_cli(m.generate() + " --cfg-scale 2 --prompt " + q(kPrompt) + " -o " + (o / "cfg.mp4"));
    INFO(a.output);
    REQUIRE(a.status == 0);
    CHECK(contains(a.output, "encoded the prompt and the negative prompt"));
    CHECK(fs::is_regular_file(o.path("cfg.mp4")));
    const Run b = run_cli(m.generate() + " --cfg-scale 2 --prompt " + q(kPrompt) + " --neg-prompt " +
                          q(std::string("blurry, low quality")) + " -o " + (o / "neg.mp4"));
    INFO(b.output);
    REQUIRE(b.status == 0);
    CHECK(contains(b.output, "encoded the prompt and the negative prompt"));
    CHECK(fs::is_regular_file(o.path("neg.mp4")));

    // encode-text writes the negative_* tensors: the official default negative, or --neg-prompt.
    const std::string enc = "encode-text --prompt " + q(kPrompt) + " --text-encoder " + q(m.llm) + " --text-encoder-2 " +
                            q(m.clip);
    const Run d = run_cli(enc + " --negative -o " + (o / "default.safetensors"));
    const Run n = run_cli(enc + " --neg-prompt " + q(std::string("blurry, low quality")) + " -o " + (o / "given.safetensors"));
    INFO(d.output, "\n", n.output);
    REQUIRE(d.status == 0);
    REQUIRE(n.status == 0);
    const SafetensorsFile fd = SafetensorsFile::open(o.path("default.safetensors"));
    const SafetensorsFile fn = SafetensorsFile::open(o.path("given.safetensors"));
    CHECK(fd.names().size() == 6);
    CHECK(fd.info("negative_text_states").shape == (Shape{1, 256, 64}));
    CHECK(fd.info("negative_text_states_2").shape == (Shape{1, 32}));
    CHECK(ones(fd.get("negative_text_mask")) == prompt_tokens(std::string(kNegativePrompt)));
    CHECK(ones(fn.get("negative_text_mask")) == prompt_tokens("blurry, low quality"));
    CHECK(fn.metadata().at("negative_prompt") == "blurry, low quality");
    // The prompt's own tensors do not depend on the negative.
    CHECK(fd.get("text_states").to_vector() == fn.get("text_states").to_vector());
}

TEST_CASE("cli text encoders: ComfyUI single files (no config.json, no tokenizer)") {
    const Models& m = models();
    Out o("comfyui");
    const std::string tail = " --prompt " + q(kPrompt) + " --text-encoder-2 " + q(m.clip);
    // 128-wide heads: the shapes give the heads, the bundled tokenizer is used, and the result is that of
    // the same weights in a folder with their config.json, bit for bit.
    const Run c = run_cli("encode-text --text-encoder " + q(m.comfy_wide) + tail + " -o " + (o / "comfy.safetensors"));
    INFO(c.output);
    REQUIRE(c.status == 0);
    CHECK(contains(c.output, "has no tokenizer.json; using the tokenizer bundled with hyvideo"));
    CHECK(contains(c.output, "head_dim 128 assumed"));
    const Run h = run_cli("encode-text --text-encoder " + q(m.wide) + tail + " -o " + (o / "folder.safetensors"));
    INFO(h.output);
    REQUIRE(h.status == 0);
    CHECK(!contains(h.output, "bundled"));
    const SafetensorsFile a = SafetensorsFile::open(o.path("comfy.safetensors")), b = SafetensorsFile::open(o.path("folder.safetensors"));
    for (const std::string name : {"text_states", "text_mask", "text_states_2"}) {
        CAPTURE(name);
        CHECK(a.info(name).shape == b.info(name).shape);
        CHECK(a.get(name).to_vector() == b.get(name).to_vector());
    }
    CHECK(ones(a.get("text_mask")) == prompt_tokens(kPrompt));

    // 16-wide heads cannot be told from the shapes: refused, saying why and what to give.
    const Run n = run_cli(m.generate(m.comfy_llm, m.clip) + " --prompt " + q(kPrompt) + " -o " + (o / "out.mp4"));
    INFO(n.output);
    CHECK(n.status == 1);
    CHECK(contains(n.output, "--text-encoder: " + m.comfy_llm.string()));
    CHECK(contains(n.output, "cannot infer the attention heads"));
    CHECK(contains(n.output, "config.json"));
    // Beside its config.json in a folder given as --text-encoder, the same file is read (tokenizer: the
    // bundled one), and encodes as the released folder of the same weights does.
    const Run f = run_cli("encode-text --text-encoder " + q(m.comfy_folder) + tail + " -o " + (o / "with_config.safetensors"));
    const Run g = run_cli("encode-text --text-encoder " + q(m.llm) + tail + " -o " + (o / "released.safetensors"));
    INFO(f.output, "\n", g.output);
    REQUIRE(f.status == 0);
    REQUIRE(g.status == 0);
    CHECK(contains(f.output, "using the tokenizer bundled with hyvideo"));
    CHECK(SafetensorsFile::open(o.path("with_config.safetensors")).get("text_states").to_vector() ==
          SafetensorsFile::open(o.path("released.safetensors")).get("text_states").to_vector());
    // ComfyUI's clip_l file of a 32-wide CLIP likewise (CLIP-L's heads are 64 wide).
    const Run k = run_cli(m.generate(m.llm, m.comfy_clip) + " --prompt " + q(kPrompt) + " -o " + (o / "out.mp4"));
    INFO(k.output);
    CHECK(k.status == 1);
    CHECK(contains(k.output, "--text-encoder-2: " + m.comfy_clip.string()));
    CHECK(contains(k.output, "cannot infer the attention heads"));
    CHECK(o.entries() == 4);  // the four encode-text files, nothing else
}

TEST_CASE("cli text encoders: image-to-video with the llava folder; the T2V folder is refused") {
    const Models& m = models();
    Out o("i2v");
    const std::string i2v = " --i2v-image-path " + q(m.image) + " --i2v-resolution 360p --prompt " + q(kPrompt);
    const Run r = run_cli(m.generate(m.llava, m.clip, true) + i2v + " -o " + (o / "i2v.mp4"));
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK(contains(r.output, "encoded the prompt in"));
    CHECK(contains(r.output, "image-to-video"));
    CHECK(!contains(r.output, "bundled"));
    const VideoInfo info = probe_video(o.path("i2v.mp4"));
    CHECK(info.frames == 5);

    // encode-text for I2V, with bf16 operands (the vision tower's too): 576 patches thinned 4x to 144
    // image rows, then the prompt's rows.
    const Run e = run_cli("encode-text --i2v-image-path " + q(m.image) + " --prompt " + q(kPrompt) + " --text-encoder " +
                          q(m.llava) + " --text-encoder-2 " + q(m.clip) + " --text-encoder-precision bf16 -o " +
                          (o / "i2v_bf16.safetensors"));
    INFO(e.output);
    REQUIRE(e.status == 0);
    {
        const SafetensorsFile f = SafetensorsFile::open(o.path("i2v_bf16.safetensors"));
        const Shape s = f.info("text_states").shape;
        REQUIRE(s.size() == 3);
        CHECK(s[0] == 1);
        CHECK(s[1] > 144);
        CHECK(s[2] == 64);
        CHECK(f.info("text_mask").shape == (Shape{1, s[1]}));
        CHECK(ones(f.get("text_mask")) > 144);
        CHECK(f.info("text_states_2").shape == (Shape{1, 32}));
        CHECK(f.metadata().at("i2v_image_path") == m.image.string());
    }

    const Run t = run_cli(m.generate(m.llm, m.clip, true) + i2v + " -o " + (o / "t2v_folder.mp4"));
    INFO(t.output);
    CHECK(t.status == 1);
    CHECK(contains(t.output, "--text-encoder: "));
    CHECK(contains(t.output, "not the llava I2V encoder expected"));
    CHECK(!contains(t.output, "step 1/"));
    CHECK(!fs::exists(o.path("t2v_folder.mp4")));
    CHECK(o.entries() == 2);
}

namespace {

struct Bad {
    std::string args;                 // after the program name
    std::vector<std::string> expect;  // pieces of the error line
};

// Each case: exit status 1, one error line with the expected pieces, no sampling started, promptly,
// and nothing written to the output directory.
void expect_refused(const Out& o, const std::vector<Bad>& cases) {
    const std::size_t before = o.entries();
    for (const auto& c : cases) {
        const auto t0 = std::chrono::steady_clock::now();
        const Run r = run_cli(c.args);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        INFO(c.args, "\n", r.output);
        CHECK(r.status == 1);
        std::vector<std::string> errors;
        for (const auto& line : lines_of(r.output))
            if (line.rfind("hyvideo: ", 0) == 0) errors.push_back(line);
        REQUIRE(errors.size() == 1);
        for (const auto& piece : c.expect) {
            CAPTURE(piece);
            CHECK(contains(errors[0], piece));
        }
        CHECK(!contains(r.output, "step 1/"));
        CHECK(!contains(r.output, "terminate called"));
        CHECK(seconds < 20);
        CHECK(o.entries() == before);
    }
}

}  // namespace

TEST_CASE("cli text encoders: bad input is refused with the flag, exit 1 and no output") {
    const Models& m = models();
    Out o("bad");
    // A --text-embeds file for the "both" case.
    save_safetensors(o.path("embeds.safetensors"), {{"text_states", randn({1, 16, 64}, 1, false)},
                                                    {"text_mask", Tensor::from_vector<std::int64_t>({1, 16}, std::vector<std::int64_t>(16, 1))},
                                                    {"text_states_2", randn({1, 32}, 2, false)}});
    const std::string out = " -o " + (o / "out.mp4");
    const std::string p = " --prompt " + q(kPrompt);
    const std::string dit = "generate" + kShort + " --dit " + q(m.dit) + " --dit-config " + q(m.dit_json) + " --vae " + q(kVae);
    expect_refused(o, {
        {m.generate() + p + " --text-embeds " + (o / "embeds.safetensors") + out, {"--prompt", "--text-embeds"}},
        {dit + p + " --text-encoder " + q(m.llm) + out, {"--prompt with --dit needs", "--text-encoder-2"}},
        {dit + " --text-embeds " + (o / "embeds.safetensors") + " --text-encoder " + q(m.llm) + out, {"--text-encoder", "need --prompt"}},
        // kind mismatches: each flag names the encoder it expected and what it found
        {m.generate(m.clip, m.clip) + p + out, {"--text-encoder: ", "holds a CLIP text encoder", "not the Llama LLM encoder expected"}},
        {m.generate(m.llm, m.llm) + p + out, {"--text-encoder-2: ", "not the CLIP text encoder expected"}},
        {m.generate(m.llm, m.dir / "missing") + p + out, {"--text-encoder-2: ", "missing", "no such file or directory"}},
        {m.generate(m.dir / "missing", m.clip) + p + out, {"--text-encoder: ", "missing", "no such file or directory"}},
        // the LLM is 48 wide, the DiT takes 64
        {m.generate(m.llm48, m.clip) + p + out, {"--text-encoder", "48", "64", "text_states_dim"}},
        {m.generate() + p + " --prompt-template-video dit-llm-encode-vidoe" + out, {"--prompt-template-video", "dit-llm-encode-vidoe"}},
        {m.generate() + p + " --hidden-state-skip-layer 9" + out, {"--hidden-state-skip-layer 9", "0..4", "4-layer"}},
        {m.generate() + p + " --hidden-state-skip-layer -1" + out, {"--hidden-state-skip-layer -1"}},
        {m.generate() + p + " --text-len 0" + out, {"--text-len 0"}},
        {"encode-text" + p + " --text-encoder " + q(m.llm) + " -o " + (o / "e.safetensors"), {"--text-encoder-2"}},
        {"encode-text" + p + " --text-encoder " + q(m.clip) + " --text-encoder-2 " + q(m.clip) + " -o " + (o / "e.safetensors"),
         {"--text-encoder: ", "not the Llama LLM encoder expected"}},
        // the built-in model has its own encoders
        {"generate" + kShort + p + " --text-encoder " + q(m.llm) + " --text-encoder-2 " + q(m.clip) + out,
         {"--text-encoder", "built-in"}},
    });
}

TEST_CASE("cli text encoders: --prompt-template and --prompt-template-video") {
    const Models& m = models();
    Out o("template");
    // A template of one's own, its crop_start counted with the tokenizer: the BOS and the tokens before "{}".
    const std::string tpl = "<|start_header_id|>system<|end_header_id|>\n\nDescribe the video in detail.<|eot_id|>"
                            "<|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|>";
    const auto crop = static_cast<std::int64_t>(llama_tokenizer().encode(tpl.substr(0, tpl.find("{}"))).size());
    const auto all = static_cast<std::int64_t>(llama_tokenizer().encode(text::python_format(tpl, kPrompt)).size());
    const fs::path templates = o.dir / "templates";
    fs::create_directories(templates);
    write_json(templates / "custom.json", {{"template", tpl}, {"crop_start", crop}});
    const Run r = run_cli(m.generate() + " --prompt " + q(kPrompt) + " --prompt-template-video " + q(templates / "custom.json") +
                          " -o " + (o / "custom.mp4"));
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK(contains(r.output, "(" + std::to_string(all - crop) + " of 256 text rows valid)"));
    CHECK(fs::is_regular_file(o.path("custom.mp4")));
    // A named template works as well (the image one, for a video: what the flag says).
    const Run n = run_cli(m.generate() + " --prompt " + q(kPrompt) + " --prompt-template-video dit-llm-encode -o " +
                          (o / "named.mp4"));
    INFO(n.output);
    CHECK(n.status == 0);
    CHECK(contains(n.output, "(" + std::to_string(prompt_tokens(kPrompt, "dit-llm-encode")) + " of 256 text rows valid)"));

    write_text(templates / "not_json.json", "{\"template\": \"{}\", ");
    write_json(templates / "no_crop.json", {{"template", "{}"}});
    write_json(templates / "bad_format.json", {{"template", "x { {}"}, {"crop_start", 1}});
    write_json(templates / "negative_crop.json", {{"template", "{}"}, {"crop_start", -3}});
    write_json(templates / "array.json", json::array({1, 2}));
    const std::string g = m.generate() + " --prompt " + q(kPrompt) + " -o " + (o / "out.mp4");
    expect_refused(o, {
        {g + " --prompt-template-video " + q(templates / "not_json.json"), {"--prompt-template-video", "not_json.json"}},
        {g + " --prompt-template-video " + q(templates / "no_crop.json"), {"--prompt-template-video", "crop_start"}},
        {g + " --prompt-template-video " + q(templates / "bad_format.json"), {"--prompt-template-video", "bad_format.json"}},
        {g + " --prompt-template-video " + q(templates / "negative_crop.json"), {"--prompt-template-video", "crop_start"}},
        {g + " --prompt-template-video " + q(templates / "array.json"), {"--prompt-template-video", "array.json"}},
        {g + " --prompt-template-video " + q(templates), {"--prompt-template-video", "templates"}},
        {g + " --prompt-template dit-llm-encode-imgae", {"--prompt-template", "dit-llm-encode-imgae"}},
    });
}

TEST_CASE("cli text encoders: tokenize prints the ids of the golden fixtures") {
    const Run r = run_cli("tokenize " + q(kPrompt));
    INFO(r.output);
    REQUIRE(r.status == 0);
    const auto lines = lines_of(r.output);
    REQUIRE(lines.size() == 1);
    const json j = json::parse(lines[0]);
    CHECK(j.at("text") == kPrompt);
    const fs::path golden = fs::path(HYVIDEO_TEST_DATA_DIR) / "golden" / "text";
    CHECK(j.at("llama").at("input_ids").get<std::vector<std::int64_t>>() ==
          ids_row(golden / "text_llm.safetensors", "input.input_ids", 0));
    CHECK(j.at("clip").at("input_ids").get<std::vector<std::int64_t>>() ==
          ids_row(golden / "text_clip.safetensors", "input.input_ids", 0));
    CHECK(j.at("llama").at("crop_start") == 95);

    const Run bad = run_cli("tokenize --prompt-template dit-llm-encode-vidoe " + q(kPrompt));
    INFO(bad.output);
    CHECK(bad.status == 1);
    CHECK(contains(bad.output, "hyvideo: --prompt-template: prompt template 'dit-llm-encode-vidoe': unknown"));
}

TEST_CASE("cli text encoders: the built-in model encodes --prompt with its tiny encoders") {
    Out o("builtin");
    const auto run = [&](const std::string& prompt, const std::string& name) {
        const Run r = run_cli("generate" + kShort + " --prompt " + q(prompt) + " -o " + (o / (name + ".mp4")) +
                              " --frames-dir " + (o / name));
        INFO(r.output);
        CHECK(r.status == 0);
        CHECK(contains(r.output, "encoded the prompt in"));
        CHECK(contains(r.output, "built-in default"));
        return frames_in(o.path(name));
    };
    const auto a = run(kPrompt, "a");
    const auto b = run(kPrompt, "b");
    const auto c = run("A red car drives through the rain at night.", "c");
    CHECK(a.size() == 5);
    CHECK(a == b);
    CHECK(a != c);
    // The tiny encoders in the bf16 compute mode (every rank-2 parameter bf16, the position tables too).
    const Run r = run_cli("generate" + kShort + " --text-encoder-precision bf16 --prompt " + q(kPrompt) + " -o " +
                          (o / "bf16.mp4"));
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK(fs::is_regular_file(o.path("bf16.mp4")));
}
