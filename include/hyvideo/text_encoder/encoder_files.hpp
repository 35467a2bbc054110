#pragma once
// open_text_encoder: the files a user downloads for a text encoder, as weights under the Hugging Face
// state_dict names and a config, with nothing loaded.
//
//   TextEncoderFiles llm = open_text_encoder("ckpts/text_encoder", TextEncoderKind::llama);
//   const LlamaConfig& c = llm.llama_config();
//   ... component.load(*llm.weights, "") ...;   // reads each tensor when the component asks for it
//
// Layouts (docs/text_encoders.md, "Weight files"):
//
//   hf-sharded-folder    config.json + model.safetensors.index.json + model-0000k-of-0000n.safetensors,
//                        as save_pretrained writes a large model: HunyuanVideo's text_encoder (a
//                        LlamaForCausalLM) and HunyuanVideo-I2V's llava folder (xtuner's layout)
//   hf-folder            config.json + model.safetensors: text_encoder_2 (openai/clip-vit-large-patch14,
//                        a whole CLIPModel), or a Llama saved in one file
//   comfyui-single-file  one safetensors file without a config: ComfyUI's llava_llama3_fp16.safetensors
//                        (the Llama LLM alone, names model.*) and clip_l.safetensors (text_model.*)
//   comfyui-fp8-scaled   llava_llama3_fp8_scaled.safetensors: float8_e4m3fn Linear weights, each with a
//                        float32 `<module>.scale_weight`, and a `scaled_fp8` marker tensor
//
// The kind (Llama LLM, CLIP text, llava) is found from the names, by anchors as checkpoint.hpp finds
// the DiT: model.embed_tokens.weight, text_model.embeddings.token_embedding.weight,
// language_model.model.embed_tokens.weight.
//
// Names. The canonical names are the Hugging Face ones, which every layout above already uses, so the
// weights are the stored tensors under their stored names, restricted to the encoder's own: a CLIP
// folder's vision_model.*, projections and logit_scale, the `*.position_ids` buffers (arange, and
// non-persistent in current transformers), ComfyUI's scale tensors and marker are left out and listed
// in `ignored`. lm_head.weight (language_model.lm_head.weight for llava) is kept where stored: the
// encoders do not use it, and the golden fixtures hold it, so a loader accepts it either way.
//
// Config. config.json beside the weights is read under transformers' rules: a key it omits takes the
// transformers class default (save_pretrained drops a nested config's values that equal the defaults,
// so a llava text_config may lack hidden_size), and every shape of the model is then checked against
// it. Without one (the ComfyUI files), the sizes come from the shapes and what shapes cannot say from
// the released models, and the result says it was inferred:
//   Llama  head_dim 128 (Llama 3), so heads = q_proj rows / 128 and KV heads = k_proj rows / 128;
//          rms_norm_eps 1e-5 and rope_theta 500000 (llava-llama-3-8b, and ComfyUI's Llama2Config)
//   CLIP   head_dim 64 (CLIP-L text: 768 = 12 x 64; the ViT-L vision tower: 1024 = 16 x 64);
//          layer_norm_eps 1e-5
// A model whose heads are not that size needs its config.json (TextEncoderOptions::config).
//
// Memory. Opening reads the index, the shards' headers and config.json; no tensor is read, not even
// an fp8 scale, and shape() answers from the headers. get() returns a view into the mapping, or for a
// scaled float8 weight one freshly dequantised tensor: ComfyUI's W = W8 * scale_weight, computed as
// dequantize_fp8 does, in the dtype of the model's final norm weight (ComfyUI's own rule for the
// compute dtype of its Llama). scale_input is ignored: ComfyUI uses it only to quantise activations
// for fp8 matrix products, which dequantised weights do not do.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyvideo/io/fp8.hpp"  // dequantize_fp8, detail::broadcast_strides
#include "hyvideo/core/config_fields.hpp"
#include "hyvideo/core/dtype.hpp"
#include "hyvideo/core/error.hpp"
#include "hyvideo/core/tensor.hpp"
#include "hyvideo/core/weight_source.hpp"
#include "hyvideo/io/json_file.hpp"
#include "hyvideo/io/mapped_file.hpp"
#include "hyvideo/io/sharded_safetensors.hpp"
#include "hyvideo/text_encoder/config.hpp"

namespace hyvideo {

enum class TextEncoderKind : std::uint8_t { llama, clip_text, llava };

inline std::string_view text_encoder_kind_name(TextEncoderKind k) {
    switch (k) {
        case TextEncoderKind::llama: return "Llama LLM encoder";
        case TextEncoderKind::clip_text: return "CLIP text encoder";
        case TextEncoderKind::llava: return "llava I2V encoder";
    }
    return "?";
}

// ComfyUI's scaled-fp8 convention (comfy/ops.py, scaled_fp8_ops; comfy/text_encoders/hunyuan_video.py,
// llama_detect): a Linear's float8 weight W8 beside a scalar `<module>.scale_weight`, the Linear
// computing with W8 * scale_weight; `<module>.scale_input` for fp8 activations; and a `scaled_fp8` tensor
// whose presence (and dtype) tells the loader to use these layers.
inline constexpr std::string_view comfy_scale_weight_suffix = ".scale_weight";
inline constexpr std::string_view comfy_scale_input_suffix = ".scale_input";
inline constexpr std::string_view comfy_scaled_fp8_marker = "scaled_fp8";

// The encoder's tensors under their canonical names, read from the mapped files when asked for.
class TextEncoderWeights final : public WeightSource {
public:
    struct Entry {
        std::string stored_name;  // the name in the files
        std::string scale_name;   // its ComfyUI scale_weight, or "" for none
        DType dtype = DType::f32; // as stored
        Shape shape;
    };

    TextEncoderWeights(std::shared_ptr<const ShardedSafetensors> files, std::map<std::string, Entry> entries, DType fp8_dtype)
        : files_(std::move(files)), entries_(std::move(entries)), fp8_dtype_(fp8_dtype) {}

    bool contains(const std::string& name) const override { return entries_.contains(name); }
    Shape shape(const std::string& name) const override { return entry(name).shape; }
    std::vector<std::string> names() const override {
        std::vector<std::string> out;
        out.reserve(entries_.size());
        for (const auto& [name, _] : entries_) out.push_back(name);
        return out;
    }
    // A view of the mapped file, or a scaled float8 weight dequantised to fp8_dtype().
    Tensor get(const std::string& name) const override {
        const Entry& e = entry(name);
        const Tensor t = files_->get(e.stored_name);
        if (e.scale_name.empty()) return t;
        return dequantize_fp8(t, files_->get(e.scale_name), fp8_dtype_);
    }

    // The tensor as stored (float8 weights not dequantised), and what it is stored as.
    Tensor stored(const std::string& name) const { return files_->get(entry(name).stored_name); }
    DType stored_dtype(const std::string& name) const { return entry(name).dtype; }
    const std::string& stored_name(const std::string& name) const { return entry(name).stored_name; }
    bool fp8_scaled(const std::string& name) const { return !entry(name).scale_name.empty(); }
    // The scale of a scaled float8 weight (read from the file now: it is one number).
    Tensor fp8_scale(const std::string& name) const {
        const Entry& e = entry(name);
        HYVIDEO_CHECK(!e.scale_name.empty(), files_->description(), ": \"", name, "\" has no fp8 scale");
        return files_->get(e.scale_name);
    }
    DType fp8_dtype() const { return fp8_dtype_; }
    const ShardedSafetensors& files() const { return *files_; }
    void release_pages() const override { files_->release_pages(); }

private:
    const Entry& entry(const std::string& name) const {
        const auto it = entries_.find(name);
        HYVIDEO_CHECK(it != entries_.end(), files_->description(), ": no text encoder tensor \"", name, "\"");
        return it->second;
    }

    std::shared_ptr<const ShardedSafetensors> files_;
    std::map<std::string, Entry> entries_;
    DType fp8_dtype_;
};

using TextEncoderConfig = std::variant<LlamaConfig, CLIPTextConfig, LlavaConfig>;

struct TextEncoderOptions {
    // A config.json to use instead of the one beside the weights (a single file has none).
    std::optional<std::filesystem::path> config;
    // What scaled float8 weights are dequantised to; default: the dtype of the final norm weight.
    std::optional<DType> fp8_dtype;
};

struct TextEncoderFiles {
    TextEncoderKind kind = TextEncoderKind::llama;
    std::string layout;  // "hf-sharded-folder", "hf-folder", "comfyui-single-file", "comfyui-fp8-scaled"
    std::shared_ptr<const TextEncoderWeights> weights;
    TextEncoderConfig config;
    bool config_inferred = false;           // true: from the shapes (no config.json), see config_notes
    std::optional<std::filesystem::path> config_file;
    std::vector<std::string> config_notes;  // where each value not read from config.json came from
    std::filesystem::path folder;           // the weights' folder: where the tokenizer files are, for HF folders
    std::vector<std::filesystem::path> files;     // the safetensors files
    std::optional<std::filesystem::path> index;   // model.safetensors.index.json, when sharded
    DType storage_dtype = DType::f32;       // as stored, of the first layer's q_proj weight
    std::vector<std::string> ignored;       // stored names that are not the encoder's (see the top)
    std::vector<std::string> fp8_unscaled;  // float8 weights without a scale: read as stored (scale 1)

    const LlamaConfig& llama_config() const { return as<LlamaConfig>(TextEncoderKind::llama); }
    const CLIPTextConfig& clip_text_config() const { return as<CLIPTextConfig>(TextEncoderKind::clip_text); }
    const LlavaConfig& llava_config() const { return as<LlavaConfig>(TextEncoderKind::llava); }

private:
    template <class C>
    const C& as(TextEncoderKind want) const {
        const C* c = std::get_if<C>(&config);
        HYVIDEO_CHECK(c != nullptr, folder.string(), ": holds a ", text_encoder_kind_name(kind), ", not a ",
                      text_encoder_kind_name(want));
        return *c;
    }
};

namespace text_encoder_detail {

// ---- files -------------------------------------------------------------------------------------------

struct Located {
    std::filesystem::path weights;  // an index or a safetensors file
    std::filesystem::path folder;
    bool hf_folder = false;         // a save_pretrained folder: its config.json belongs to these weights
};

inline bool is_index_name(const std::string& n) { return n.ends_with(".safetensors.index.json"); }

// Whether a file starts like a PyTorch pickle or ZIP (pytorch_model.bin, *.pt), to name it as such.
inline bool looks_like_torch_file(const std::filesystem::path& p) {
    try {
        InputFile f = open_input_file(p);
        unsigned char magic[4] = {};
        ssize_t n;
        do n = ::read(f.fd.get(), magic, sizeof magic);
        while (n < 0 && errno == EINTR);
        return (n >= 2 && magic[0] == 0x80 && magic[1] <= 5) || (n == 4 && magic[0] == 'P' && magic[1] == 'K');
    } catch (const Error&) {
        return false;
    }
}

inline Located locate(const std::filesystem::path& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    HYVIDEO_CHECK(fs::exists(path, ec), path.string(), ": no such file or directory");
    if (fs::is_directory(path, ec)) {
        for (const char* name : {"model.safetensors.index.json", "model.safetensors"})
            if (fs::exists(path / name, ec)) return {path / name, path, true};
        std::vector<fs::path> indexes, files;
        bool torch = false;
        for (const auto& e : fs::directory_iterator(path)) {
            const std::string n = e.path().filename().string();
            if (is_index_name(n)) indexes.push_back(e.path());
            else if (n.ends_with(".safetensors")) files.push_back(e.path());
            else if (n.ends_with(".bin") || n.ends_with(".pt") || n.ends_with(".pth")) torch = true;
        }
        std::sort(indexes.begin(), indexes.end());
        std::sort(files.begin(), files.end());
        if (indexes.size() == 1) return {indexes.front(), path, true};
        // Shards without their index are several files, and refused as such below.
        if (indexes.empty() && files.size() == 1) return {files.front(), path, true};
        std::string found;
        for (const auto& f : indexes.empty() ? files : indexes) found += (found.empty() ? "" : ", ") + f.filename().string();
        HYVIDEO_CHECK(!indexes.empty() || !files.empty(), path.string(),
                      ": no text encoder weights (no model.safetensors, model.safetensors.index.json or other "
                      "*.safetensors)",
                      torch ? "; its PyTorch .bin/.pt files are not read: use the safetensors files of the same model" : "");
        throw Error(detail::concat(path.string(), ": several ", indexes.empty() ? "safetensors files" : "safetensors indexes",
                                   " (", found, "); name the one to use"));
    }
    const std::string n = path.filename().string();
    const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
    if (n.ends_with(".json") || n == "model.safetensors") return {path, dir, true};
    // A shard named directly: its index says what the other shards are.
    if (n.starts_with("model-") && n.ends_with(".safetensors") && n.find("-of-") != std::string::npos &&
        fs::exists(dir / "model.safetensors.index.json", ec))
        return {dir / "model.safetensors.index.json", dir, true};
    return {path, dir, false};
}

inline std::shared_ptr<const ShardedSafetensors> open_files(const Located& at) {
    if (at.weights.extension() == ".json") return std::make_shared<const ShardedSafetensors>(ShardedSafetensors::open_index(at.weights));
    if (looks_like_torch_file(at.weights))
        throw Error(at.weights.string() + ": a PyTorch pickle/ZIP file, not safetensors; text encoders are read from "
                                          "safetensors (the same model's model.safetensors)");
    try {
        return std::make_shared<const ShardedSafetensors>(ShardedSafetensors::open_file(at.weights));
    } catch (const Error& e) {
        // The file exists and is a regular file (or the open says otherwise on its own); what failed is its
        // content, so say what it was expected to be.
        const std::string what = e.what();
        if (what.find("not a regular file") != std::string::npos || what.find("cannot open") != std::string::npos) throw;
        throw Error(detail::concat(at.weights.string(), ": not a readable safetensors file (", what, ")"));
    }
}

// ---- kinds -------------------------------------------------------------------------------------------

struct KindInfo {
    TextEncoderKind kind;
    const char* anchor;
    std::vector<std::string> namespaces;  // name prefixes that belong to the encoder
    const char* found_as;                 // how a message names what it found
};

inline const std::vector<KindInfo>& kinds() {
    static const std::vector<KindInfo> k = {
        {TextEncoderKind::llava, "language_model.model.embed_tokens.weight",
         {"language_model.", "multi_modal_projector.", "vision_tower."}, "language_model.*, vision_tower.*"},
        {TextEncoderKind::llama, "model.embed_tokens.weight", {"model.", "lm_head."}, "model.layers.*"},
        {TextEncoderKind::clip_text, "text_model.embeddings.token_embedding.weight", {"text_model."}, "text_model.*"},
    };
    return k;
}
inline const KindInfo& kind_info(TextEncoderKind kind) {
    for (const auto& k : kinds())
        if (k.kind == kind) return k;
    throw Error("unknown text encoder kind");
}

inline std::vector<TextEncoderKind> kinds_in(const WeightSource& w) {
    std::vector<TextEncoderKind> out;
    for (const auto& k : kinds())
        if (w.contains(k.anchor)) out.push_back(k.kind);
    return out;
}

inline bool is_buffer(const std::string& n) { return n.ends_with(".position_ids") || n.ends_with(".rotary_emb.inv_freq"); }
inline bool is_fp8_metadata(const std::string& n) {
    return n == comfy_scaled_fp8_marker || n.ends_with(comfy_scale_weight_suffix) || n.ends_with(comfy_scale_input_suffix);
}

// ---- what a configuration implies ----------------------------------------------------------------------

struct Expected {
    std::string name;
    Shape shape;
    std::string formula;  // the shape in terms of the config's keys
    bool required = true;
};
using Manifest = std::vector<Expected>;

inline void add_llama(Manifest& m, const LlamaConfig& c, const std::string& p, const std::string& lm_head,
                      const std::string& key = "") {
    const std::int64_t H = c.hidden_size, Q = c.num_attention_heads * c.head_dim, KV = c.num_key_value_heads * c.head_dim,
                       I = c.intermediate_size, V = c.vocab_size;
    const std::string hidden = "[" + key + "hidden_size]";
    const std::string q_rows = key + "num_attention_heads·" + key + "head_dim";
    const std::string kv_rows = key + "num_key_value_heads·" + key + "head_dim";
    m.push_back({p + "embed_tokens.weight", {V, H}, "[" + key + "vocab_size, " + key + "hidden_size]"});
    for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) {
        const std::string l = p + "layers." + std::to_string(i) + ".";
        m.push_back({l + "input_layernorm.weight", {H}, hidden});
        m.push_back({l + "post_attention_layernorm.weight", {H}, hidden});
        m.push_back({l + "self_attn.q_proj.weight", {Q, H}, "[" + q_rows + ", " + key + "hidden_size]"});
        m.push_back({l + "self_attn.k_proj.weight", {KV, H}, "[" + kv_rows + ", " + key + "hidden_size]"});
        m.push_back({l + "self_attn.v_proj.weight", {KV, H}, "[" + kv_rows + ", " + key + "hidden_size]"});
        m.push_back({l + "self_attn.o_proj.weight", {H, Q}, "[" + key + "hidden_size, " + q_rows + "]"});
        m.push_back({l + "mlp.gate_proj.weight", {I, H}, "[" + key + "intermediate_size, " + key + "hidden_size]"});
        m.push_back({l + "mlp.up_proj.weight", {I, H}, "[" + key + "intermediate_size, " + key + "hidden_size]"});
        m.push_back({l + "mlp.down_proj.weight", {H, I}, "[" + key + "hidden_size, " + key + "intermediate_size]"});
    }
    m.push_back({p + "norm.weight", {H}, hidden});
    m.push_back({lm_head, {V, H}, "[" + key + "vocab_size, " + key + "hidden_size]", false});
}

inline void add_clip_layers(Manifest& m, const CLIPEncoderConfig& c, const std::string& p, const std::string& key) {
    const std::int64_t H = c.hidden_size, I = c.intermediate_size;
    const std::string hidden = "[" + key + "hidden_size]", square = "[" + key + "hidden_size, " + key + "hidden_size]";
    for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) {
        const std::string l = p + "encoder.layers." + std::to_string(i) + ".";
        for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
            m.push_back({l + "self_attn." + proj + ".weight", {H, H}, square});
            m.push_back({l + "self_attn." + proj + ".bias", {H}, hidden});
        }
        for (const char* norm : {"layer_norm1", "layer_norm2"}) {
            m.push_back({l + norm + ".weight", {H}, hidden});
            m.push_back({l + norm + ".bias", {H}, hidden});
        }
        m.push_back({l + "mlp.fc1.weight", {I, H}, "[" + key + "intermediate_size, " + key + "hidden_size]"});
        m.push_back({l + "mlp.fc1.bias", {I}, "[" + key + "intermediate_size]"});
        m.push_back({l + "mlp.fc2.weight", {H, I}, "[" + key + "hidden_size, " + key + "intermediate_size]"});
        m.push_back({l + "mlp.fc2.bias", {H}, hidden});
    }
}

inline void add_clip_text(Manifest& m, const CLIPTextConfig& c) {
    const std::string p = "text_model.";
    m.push_back({p + "embeddings.token_embedding.weight", {c.vocab_size, c.hidden_size}, "[vocab_size, hidden_size]"});
    m.push_back({p + "embeddings.position_embedding.weight", {c.max_position_embeddings, c.hidden_size},
                 "[max_position_embeddings, hidden_size]"});
    add_clip_layers(m, c, p, "");
    m.push_back({p + "final_layer_norm.weight", {c.hidden_size}, "[hidden_size]"});
    m.push_back({p + "final_layer_norm.bias", {c.hidden_size}, "[hidden_size]"});
}

inline void add_llava(Manifest& m, const LlavaConfig& c) {
    add_llama(m, c.text_config, "language_model.model.", "language_model.lm_head.weight", "text_config.");
    const CLIPVisionConfig& v = c.vision_config;
    const std::string p = "vision_tower.vision_model.", k = "vision_config.";
    const std::string hidden = "[" + k + "hidden_size]";
    m.push_back({p + "embeddings.class_embedding", {v.hidden_size}, hidden});
    m.push_back({p + "embeddings.patch_embedding.weight", {v.hidden_size, v.num_channels, v.patch_size, v.patch_size},
                 "[" + k + "hidden_size, " + k + "num_channels, " + k + "patch_size, " + k + "patch_size]"});
    m.push_back({p + "embeddings.position_embedding.weight", {v.num_patches() + 1, v.hidden_size},
                 "[(" + k + "image_size/" + k + "patch_size)²+1, " + k + "hidden_size]"});
    m.push_back({p + "pre_layrnorm.weight", {v.hidden_size}, hidden});
    m.push_back({p + "pre_layrnorm.bias", {v.hidden_size}, hidden});
    add_clip_layers(m, v, p, k);
    // Unused by llava, which takes an earlier layer's output: kept when stored, not required.
    m.push_back({p + "post_layernorm.weight", {v.hidden_size}, hidden, false});
    m.push_back({p + "post_layernorm.bias", {v.hidden_size}, hidden, false});
    const std::int64_t Ht = c.text_config.hidden_size;
    m.push_back({"multi_modal_projector.linear_1.weight", {Ht, v.hidden_size}, "[text_config.hidden_size, vision_config.hidden_size]"});
    m.push_back({"multi_modal_projector.linear_1.bias", {Ht}, "[text_config.hidden_size]"});
    m.push_back({"multi_modal_projector.linear_2.weight", {Ht, Ht}, "[text_config.hidden_size, text_config.hidden_size]"});
    m.push_back({"multi_modal_projector.linear_2.bias", {Ht}, "[text_config.hidden_size]"});
}

inline Manifest manifest_of(const TextEncoderConfig& config) {
    Manifest m;
    std::visit(
        [&](const auto& c) {
            using C = std::decay_t<decltype(c)>;
            if constexpr (std::is_same_v<C, LlamaConfig>) add_llama(m, c, "model.", "lm_head.weight");
            else if constexpr (std::is_same_v<C, CLIPTextConfig>) add_clip_text(m, c);
            else add_llava(m, c);
        },
        config);
    return m;
}

// 1 + the largest i of the names `<prefix><i>.*` (0 if none): the layers the files hold.
inline std::int64_t layers_in(const WeightSource& w, const std::string& prefix) {
    std::int64_t n = 0;
    for (const auto& name : w.names()) {
        if (!name.starts_with(prefix)) continue;
        const std::size_t end = name.find('.', prefix.size());
        const std::string digits = name.substr(prefix.size(), end == std::string::npos ? std::string::npos : end - prefix.size());
        if (digits.empty() || digits.size() > 6 || !std::all_of(digits.begin(), digits.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
            continue;
        n = std::max<std::int64_t>(n, std::stoll(digits) + 1);
    }
    return n;
}

// The layer stacks of a kind: (the config key that counts them, its value, the names' prefix).
struct LayerStack {
    std::string key;
    std::int64_t layers;
    std::string prefix;
};
inline std::vector<LayerStack> layer_stacks(const TextEncoderConfig& config) {
    std::vector<LayerStack> out;
    std::visit(
        [&](const auto& c) {
            using C = std::decay_t<decltype(c)>;
            if constexpr (std::is_same_v<C, LlamaConfig>) {
                out.push_back({"num_hidden_layers", c.num_hidden_layers, "model.layers."});
            } else if constexpr (std::is_same_v<C, CLIPTextConfig>) {
                out.push_back({"num_hidden_layers", c.num_hidden_layers, "text_model.encoder.layers."});
            } else {
                out.push_back({"text_config.num_hidden_layers", c.text_config.num_hidden_layers, "language_model.model.layers."});
                out.push_back({"vision_config.num_hidden_layers", c.vision_config.num_hidden_layers,
                               "vision_tower.vision_model.encoder.layers."});
            }
        },
        config);
    return out;
}

// ---- config.json ---------------------------------------------------------------------------------------

// transformers' class defaults for the keys that size a model: what a config.json that omits a key
// means. (LlavaConfig builds its text_config and vision_config dicts through these classes.)
inline const nlohmann::json& hf_defaults(std::string_view cls) {
    static const nlohmann::json llama = {{"vocab_size", 32000}, {"hidden_size", 4096}, {"intermediate_size", 11008},
                                         {"num_hidden_layers", 32}, {"num_attention_heads", 32}};
    static const nlohmann::json clip_text = {{"vocab_size", 49408}, {"hidden_size", 512}, {"intermediate_size", 2048},
                                             {"num_hidden_layers", 12}, {"num_attention_heads", 8},
                                             {"max_position_embeddings", 77}};
    static const nlohmann::json clip_vision = {{"hidden_size", 768}, {"intermediate_size", 3072}, {"num_hidden_layers", 12},
                                               {"num_attention_heads", 12}, {"image_size", 224}, {"patch_size", 32}};
    return cls == "llama" ? llama : cls == "clip_text" ? clip_text : clip_vision;
}

inline nlohmann::json with_defaults(nlohmann::json j, std::string_view cls, const std::string& where,
                                    std::vector<std::string>& notes) {
    for (const auto& [key, value] : hf_defaults(cls).items())
        if (!j.contains(key) || j[key].is_null()) {
            j[key] = value;
            notes.push_back(detail::concat(where, key, " is not in config.json: transformers' default ", value.dump()));
        }
    return j;
}

inline std::string model_type_of(const nlohmann::json& j) {
    return j.contains("model_type") && j["model_type"].is_string() ? j["model_type"].get<std::string>() : std::string();
}

inline TextEncoderConfig config_from_json(const nlohmann::json& j, TextEncoderKind kind, const std::filesystem::path& file,
                                          std::vector<std::string>& notes) {
    const std::string name = file.string();
    HYVIDEO_CHECK(j.is_object(), name, ": not a JSON object");
    HYVIDEO_CHECK(config_detail::within_depth(j, config_detail::max_json_depth), name, ": nests deeper than ",
                  config_detail::max_json_depth, " levels");
    const std::string type = model_type_of(j);
    const auto refuse = [&](const char* expected) {
        throw Error(detail::concat(name, ": a \"", type.empty() ? std::string("composite") : type,
                                   "\" config, but the weights are a ", text_encoder_kind_name(kind), " (expected model_type \"",
                                   expected, "\")"));
    };
    switch (kind) {
        case TextEncoderKind::llama:
            if ((!type.empty() && type != "llama") || j.contains("text_config")) refuse("llama");
            return LlamaConfig::from_json(with_defaults(j, "llama", "", notes), name);
        case TextEncoderKind::clip_text: {
            if (!type.empty() && type != "clip" && type != "clip_text_model") refuse("clip");
            if (j.contains("text_config") && j["text_config"].is_object())
                return CLIPTextConfig::from_json(with_defaults(j["text_config"], "clip_text", "text_config.", notes),
                                                 name + " text_config");
            HYVIDEO_CHECK(type != "clip", name, ": a CLIP config without a \"text_config\" object");
            return CLIPTextConfig::from_json(with_defaults(j, "clip_text", "", notes), name);
        }
        case TextEncoderKind::llava: {
            if ((!type.empty() && type != "llava") || !j.contains("text_config") || !j.contains("vision_config")) refuse("llava");
            nlohmann::json k = j;
            if (k["text_config"].is_object()) k["text_config"] = with_defaults(k["text_config"], "llama", "text_config.", notes);
            if (k["vision_config"].is_object())
                k["vision_config"] = with_defaults(k["vision_config"], "clip_vision", "vision_config.", notes);
            return LlavaConfig::from_json(k, name);
        }
    }
    throw Error("unknown text encoder kind");
}

// ---- configs from shapes -------------------------------------------------------------------------------

// Llama 3's head size, which the weights cannot say (q_proj is heads·head_dim rows either way).
inline constexpr std::int64_t assumed_llama_head_dim = 128;
// CLIP-L's (text and ViT-L vision alike).
inline constexpr std::int64_t assumed_clip_head_dim = 64;

class ShapeReader {
public:
    ShapeReader(const WeightSource& w, std::string where) : w_(w), where_(std::move(where)) {}
    Shape need(const std::string& name, std::size_t rank) const {
        HYVIDEO_CHECK(w_.contains(name), where_, ": no tensor \"", name, "\", which a text encoder of this kind has");
        const Shape s = w_.shape(name);
        HYVIDEO_CHECK(s.size() == rank, where_, ": \"", name, "\" has shape ", shape_str(s), ", not the ", rank,
                      "-d tensor of a text encoder");
        return s;
    }
    std::int64_t heads(const std::string& tensor, std::int64_t rows, std::int64_t head_dim, const char* of) const {
        HYVIDEO_CHECK(rows > 0 && rows % head_dim == 0, where_, ": cannot infer the ", of, ": \"", tensor, "\" has ", rows,
                      " rows, not a multiple of the head size ", head_dim, " assumed without a config.json; put the file "
                      "in a folder with the model's config.json and give the folder");
        return rows / head_dim;
    }
    const std::string& where() const { return where_; }

private:
    const WeightSource& w_;
    std::string where_;
};

inline LlamaConfig infer_llama(const WeightSource& w, const std::string& p, const ShapeReader& r, const std::string& what,
                               std::vector<std::string>& notes) {
    LlamaConfig c;
    const Shape embed = r.need(p + "embed_tokens.weight", 2);
    c.vocab_size = embed[0];
    c.hidden_size = embed[1];
    c.num_hidden_layers = layers_in(w, p + "layers.");
    const std::string l0 = p + "layers.0.";
    c.intermediate_size = r.need(l0 + "mlp.gate_proj.weight", 2)[0];
    c.head_dim = assumed_llama_head_dim;
    c.num_attention_heads = r.heads(l0 + "self_attn.q_proj.weight", r.need(l0 + "self_attn.q_proj.weight", 2)[0], c.head_dim,
                                    "attention heads");
    c.num_key_value_heads = r.heads(l0 + "self_attn.k_proj.weight", r.need(l0 + "self_attn.k_proj.weight", 2)[0], c.head_dim,
                                    "key/value heads");
    c.rms_norm_eps = 1e-5f;
    c.rope_theta = 500000.0;
    notes.push_back(what + "heads: head_dim 128 assumed (Llama 3), so heads = q_proj rows / 128 and KV heads = k_proj rows / 128");
    notes.push_back(what + "rms_norm_eps 1e-5 and rope_theta 500000 assumed (llava-llama-3-8b)");
    return c;
}

inline void infer_clip_encoder(CLIPEncoderConfig& c, const WeightSource& w, const std::string& p, const ShapeReader& r,
                               std::int64_t hidden) {
    c.hidden_size = hidden;
    c.num_hidden_layers = layers_in(w, p + "encoder.layers.");
    c.intermediate_size = r.need(p + "encoder.layers.0.mlp.fc1.weight", 2)[0];
    c.num_attention_heads = r.heads(p + "encoder.layers.0.self_attn.q_proj.weight", hidden, assumed_clip_head_dim, "attention heads");
    c.layer_norm_eps = 1e-5f;
}

inline CLIPTextConfig infer_clip_text(const WeightSource& w, const ShapeReader& r, std::vector<std::string>& notes) {
    CLIPTextConfig c;
    const Shape token = r.need("text_model.embeddings.token_embedding.weight", 2);
    c.vocab_size = token[0];
    c.max_position_embeddings = r.need("text_model.embeddings.position_embedding.weight", 2)[0];
    infer_clip_encoder(c, w, "text_model.", r, token[1]);
    notes.push_back("heads: head_dim 64 assumed (CLIP-L), so heads = hidden_size / 64; layer_norm_eps 1e-5 assumed");
    return c;
}

inline LlavaConfig infer_llava(const WeightSource& w, const ShapeReader& r, std::vector<std::string>& notes) {
    LlavaConfig c;
    c.text_config = infer_llama(w, "language_model.model.", r, "text_config ", notes);
    const std::string p = "vision_tower.vision_model.";
    CLIPVisionConfig& v = c.vision_config;
    const Shape patch = r.need(p + "embeddings.patch_embedding.weight", 4);
    v.num_channels = patch[1];
    v.patch_size = patch[2];
    const std::int64_t positions = r.need(p + "embeddings.position_embedding.weight", 2)[0] - 1;  // the CLS row
    const auto side = positions > 0 ? static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(positions)))) : 0;
    HYVIDEO_CHECK(side > 0 && side * side == positions, r.where(), ": the ", positions + 1, " rows of \"", p,
                  "embeddings.position_embedding.weight\" are not a square grid of patches plus the CLS row");
    v.image_size = side * v.patch_size;
    infer_clip_encoder(v, w, p, r, patch[0]);
    notes.push_back("vision_config heads: head_dim 64 assumed (ViT-L), so heads = hidden_size / 64");
    notes.push_back("vision_feature_layer -2, image_token_index 128257 and pad_token_id 128258 assumed (xtuner's llava)");
    return c;
}

inline void validate(const TextEncoderConfig& config) {
    std::visit(
        [](const auto& c) {
            if constexpr (std::is_same_v<std::decay_t<decltype(c)>, LlavaConfig>) {
                c.text_config.validate("text_config");
                c.vision_config.validate("vision_config");
            } else {
                c.validate();
            }
        },
        config);
}

// ---- checking the weights against a config ----------------------------------------------------------------

inline void check_against(const ShardedSafetensors& w, const TextEncoderConfig& config, const KindInfo& kind,
                          const std::string& where, const std::string& against) {
    const std::string prefix = where + ": " + against + " disagrees with the weights: ";
    for (const auto& stack : layer_stacks(config)) {
        const std::int64_t stored = layers_in(w, stack.prefix);
        HYVIDEO_CHECK(stored == stack.layers, prefix, stack.key, " is ", stack.layers, ", but the weights have ", stored,
                      " layers (", stack.prefix, "<i>)");
    }
    const Manifest m = manifest_of(config);
    std::set<std::string> expected;
    for (const auto& e : m) {
        expected.insert(e.name);
        if (!w.contains(e.name)) {
            HYVIDEO_CHECK(!e.required, where, ": no tensor \"", e.name, "\", which a ", text_encoder_kind_name(kind.kind),
                          " has");
            continue;
        }
        const Shape s = w.shape(e.name);
        HYVIDEO_CHECK(s == e.shape, prefix, "\"", e.name, "\" is ", shape_str(s), ", but ", e.formula, " is ",
                      shape_str(e.shape));
    }
    for (const auto& name : w.names()) {
        const bool mine = std::any_of(kind.namespaces.begin(), kind.namespaces.end(), [&](auto& ns) { return name.starts_with(ns); });
        if (mine && !expected.contains(name) && !is_buffer(name) && !is_fp8_metadata(name))
            throw Error(detail::concat(where, ": the tensor \"", name, "\" is not part of a ", text_encoder_kind_name(kind.kind),
                                       " (with ", against, ")"));
    }
}

// The dtype a model computes in, which ComfyUI takes from its final norm weight.
inline DType compute_dtype_of(const ShardedSafetensors& w, const std::string& norm) {
    if (!w.contains(norm)) return DType::bf16;
    const DType t = w.info(norm).dtype;
    return t == DType::f32 || t == DType::f16 || t == DType::bf16 ? t : DType::bf16;
}

}  // namespace text_encoder_detail

// Which text encoders the files at `path` hold (by the anchor names), without checking them; empty when
// the path holds none or cannot be read as a text encoder's files. For tools that must tell a text
// encoder from a DiT before opening either.
inline std::vector<TextEncoderKind> text_encoders_in(const std::filesystem::path& path) {
    try {
        const auto files = text_encoder_detail::open_files(text_encoder_detail::locate(path));
        return text_encoder_detail::kinds_in(*files);
    } catch (const Error&) {
        return {};
    }
}

// Opens the text encoder at `path` (a folder, an index, or a safetensors file): the weights under
// their canonical names and the config, checked against each other, nothing read. `expected` refuses
// the files of another encoder. Every error is one line naming the path.
inline TextEncoderFiles open_text_encoder(const std::filesystem::path& path, std::optional<TextEncoderKind> expected = {},
                                          const TextEncoderOptions& options = {}) {
    namespace d = text_encoder_detail;
    const d::Located at = d::locate(path);
    const auto files = d::open_files(at);
    const std::string where = files->description();

    // Which encoder.
    std::vector<TextEncoderKind> found = d::kinds_in(*files);
    std::string found_text;
    for (auto k : found)
        found_text += detail::concat(found_text.empty() ? "" : " and ", "a ", text_encoder_kind_name(k), " (",
                                     d::kind_info(k).found_as, ")");
    if (found.empty())
        throw Error(detail::concat(where, ": no text encoder weights among its ", files->names().size(),
                                   " tensors (looked for model.embed_tokens.weight, "
                                   "text_model.embeddings.token_embedding.weight or language_model.model.embed_tokens.weight)"));
    if (expected) {
        HYVIDEO_CHECK(std::find(found.begin(), found.end(), *expected) != found.end(), where, ": holds ", found_text,
                      ", not the ", text_encoder_kind_name(*expected), " expected");
        found = {*expected};
    }
    HYVIDEO_CHECK(found.size() == 1, where, ": holds ", found_text, "; say which to open");
    const d::KindInfo& kind = d::kind_info(found.front());

    TextEncoderFiles out;
    out.kind = kind.kind;
    out.folder = at.folder;
    out.files = files->files();
    out.index = files->index();

    // Its config: config.json (given, or beside an HF folder's weights), else from the shapes.
    std::optional<std::filesystem::path> config_file = options.config;
    if (!config_file && at.hf_folder && std::filesystem::exists(at.folder / "config.json")) config_file = at.folder / "config.json";
    if (config_file) {
        const nlohmann::json j = read_json_file(*config_file, "config.json");
        try {
            out.config = d::config_from_json(j, kind.kind, *config_file, out.config_notes);
        } catch (const Error& e) {
            throw Error(detail::concat(where, ": ", e.what()));
        }
        out.config_file = config_file;
        d::check_against(*files, out.config, kind, where, config_file->string());
    } else {
        const d::ShapeReader r(*files, where);
        switch (kind.kind) {
            case TextEncoderKind::llama: out.config = d::infer_llama(*files, "model.", r, "", out.config_notes); break;
            case TextEncoderKind::clip_text: out.config = d::infer_clip_text(*files, r, out.config_notes); break;
            case TextEncoderKind::llava: out.config = d::infer_llava(*files, r, out.config_notes); break;
        }
        out.config_inferred = true;
        out.config_notes.insert(out.config_notes.begin(), std::string("no config.json: the sizes are the weights' shapes"));
        try {
            d::validate(out.config);
        } catch (const Error& e) {
            throw Error(detail::concat(where, ": the configuration inferred from the weights is not valid: ", e.what()));
        }
        d::check_against(*files, out.config, kind, where, "the configuration inferred from the shapes");
    }

    // ComfyUI's scales, each beside the float8 weight it scales.
    std::map<std::string, std::string> scale_of;  // weight name -> scale_weight name
    const bool marker = files->contains(std::string(comfy_scaled_fp8_marker));
    for (const auto& name : files->names()) {
        if (!name.ends_with(comfy_scale_weight_suffix)) continue;
        const std::string weight = name.substr(0, name.size() - comfy_scale_weight_suffix.size()) + ".weight";
        HYVIDEO_CHECK(files->contains(weight), where, ": \"", name, "\" scales \"", weight, "\", which is not stored");
        const TensorInfo& wi = files->info(weight);
        const TensorInfo& si = files->info(name);
        HYVIDEO_CHECK(wi.dtype == DType::f8e4m3, where, ": \"", name, "\" scales \"", weight, "\", which is ",
                      dtype_name(wi.dtype), ", not float8_e4m3fn");
        HYVIDEO_CHECK(is_floating(si.dtype) && si.dtype != DType::f8e4m3, where, ": \"", name, "\" is ", dtype_name(si.dtype),
                      ", not a floating-point scale");
        HYVIDEO_CHECK(detail::broadcast_strides(si.shape, wi.shape).has_value(), where, ": \"", name, "\" has shape ",
                      shape_str(si.shape), ", which does not broadcast against \"", weight, "\" ", shape_str(wi.shape));
        scale_of.emplace(weight, name);
    }

    // The encoder's tensors; the rest of the files is listed as ignored.
    const d::Manifest m = d::manifest_of(out.config);
    std::map<std::string, TextEncoderWeights::Entry> entries;
    for (const auto& e : m) {
        if (!files->contains(e.name)) continue;
        const TensorInfo& info = files->info(e.name);
        const auto s = scale_of.find(e.name);
        entries.emplace(e.name, TextEncoderWeights::Entry{e.name, s == scale_of.end() ? std::string() : s->second, info.dtype, info.shape});
        if (info.dtype == DType::f8e4m3 && s == scale_of.end()) out.fp8_unscaled.push_back(e.name);
    }
    for (const auto& [weight, _] : scale_of)
        HYVIDEO_CHECK(entries.contains(weight), where, ": \"", weight, "\" has a scale_weight but is not a weight of the ",
                      text_encoder_kind_name(kind.kind));
    for (const auto& name : files->names())
        if (!entries.contains(name)) out.ignored.push_back(name);

    const bool scaled = marker || !scale_of.empty();
    out.layout = at.hf_folder ? (files->index() ? "hf-sharded-folder" : "hf-folder")
                              : (scaled ? "comfyui-fp8-scaled" : "comfyui-single-file");
    const std::string llm = kind.kind == TextEncoderKind::llava ? "language_model.model." : "model.";
    const std::string norm = kind.kind == TextEncoderKind::clip_text ? "text_model.final_layer_norm.weight" : llm + "norm.weight";
    const std::string q0 = kind.kind == TextEncoderKind::clip_text ? "text_model.encoder.layers.0.self_attn.q_proj.weight"
                                                                   : llm + "layers.0.self_attn.q_proj.weight";
    if (files->contains(q0)) out.storage_dtype = files->info(q0).dtype;
    const DType fp8_dtype = options.fp8_dtype.value_or(d::compute_dtype_of(*files, norm));
    HYVIDEO_CHECK(fp8_dtype == DType::f32 || fp8_dtype == DType::f16 || fp8_dtype == DType::bf16, where,
                  ": float8 weights are dequantised to float32, float16 or bfloat16, not ", dtype_name(fp8_dtype));
    out.weights = std::make_shared<const TextEncoderWeights>(files, std::move(entries), fp8_dtype);
    return out;
}

}  // namespace hyvideo
