#pragma once
// checkpoint: open the HunyuanVideo weights a user downloaded, whatever their layout, as a WeightSource
// with the official names (docs/model.md#dit-weights, #vae-configuration, #checkpoint-files;
// docs/checkpoints.md).
//
//   Checkpoint dit = Checkpoint::open("ckpts/hunyuan-video-t2v-720p/transformers", {.kind = ModelKind::dit});
//   HYVideoDiffusionTransformer<cpu> model(dit.dit_config().config);
//   load_weights_strict(model, dit.weights());
//
// Layouts, detected from the files and the names in them:
//
//   official     mp_rank_00_model_states.pt (torch.save; the state dict under "module", or "ema"),
//                its fp8 form with the scale map mp_rank_00_model_states_fp8_map.pt, and the VAE's
//                pytorch_model.pt (optionally under "state_dict", names optionally prefixed "vae.")
//   diffusers    a transformer/ or vae/ folder: diffusion_pytorch_model.safetensors, or shards and
//                diffusion_pytorch_model.safetensors.index.json, with diffusers' names
//   single file  safetensors with the official names, bare (ComfyUI's repackaged files, `hyvideo
//                convert` output) or under a prefix ("model.diffusion_model.", a fixture's "param.")
//
// How it works. RawTensors is the union of a checkpoint's files, by the names in the files. The
// model is found by anchor names (img_in.proj.weight for the official DiT, x_embedder.proj.weight for
// diffusers', decoder/encoder.conv_in.conv.weight for the VAE); whatever precedes the anchor is the
// prefix, so the .pt wrappers ("module.", "state_dict.vae.") and ComfyUI's prefixes are one rule. Each
// official name then gets a recipe: a rename (zero-copy: the tensor is a view of the mapped file), or
// for diffusers a concatenation of q/k/v (/mlp) parts or a swap of the final modulation's halves
// (io/diffusers_names.hpp), which allocate the official tensor and copy its parts in when it is read.
//
// Memory. Nothing is read when a checkpoint is opened beyond the .pt pickle, the safetensors headers
// and fp8 scales. Weights stay in their stored dtype and mapped where the format allows (.pt and
// safetensors alike); get() returns a view, or one freshly assembled tensor for the diffusers fusions
// and fp8 dequantisation. A loader that asks for one tensor at a time, as load_weights does, therefore
// holds at most one converted tensor beyond what it keeps.
//
// FP8 (docs/model.md#fp8-weights). float8_e4m3fn weights with a scale are dequantised when read, exactly
// as the official forward does: W = bf16(bf16(W8) · bf16(scale)), the scale broadcast against W. Scales
// come from the map file of an official fp8 .pt ({module path: scale}) or from `<module>.fp8_scale`
// tensors beside the weights (what `hyvideo convert --fp8` writes). float8 weights without any scale
// (ComfyUI's plain fp8 casts) are returned as stored, i.e. with scale 1, and reported by
// `hyvideo inspect`.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyvideo/core/dtype.hpp"
#include "hyvideo/core/dtype_convert.hpp"
#include "hyvideo/core/error.hpp"
#include "hyvideo/core/parallel.hpp"
#include "hyvideo/core/tensor.hpp"
#include "hyvideo/io/diffusers_names.hpp"
#include "hyvideo/io/json_file.hpp"
#include "hyvideo/io/pt_file.hpp"
#include "hyvideo/io/safetensors.hpp"
#include "hyvideo/io/sharded_safetensors.hpp"
#include "hyvideo/io/weight_source.hpp"
#include "hyvideo/models/config.hpp"
#include "hyvideo/nn/module.hpp"
#include "hyvideo/vae/config.hpp"

namespace hyvideo {

enum class ModelKind : std::uint8_t { dit, vae };
enum class NameScheme : std::uint8_t { official, diffusers };
enum class Container : std::uint8_t { torch_zip, safetensors, safetensors_sharded };

inline std::string_view model_kind_name(ModelKind k) { return k == ModelKind::dit ? "DiT" : "VAE"; }

// A tensor as stored, known without reading its data.
struct StoredInfo {
    std::string dtype_name;  // torch's spelling: "bfloat16", "float8_e4m3fn", "float64"
    bool supported = true;   // whether hyvideo holds the dtype (then `dtype` is it)
    DType dtype = DType::f32;
    std::size_t element_size = 4;
    Shape shape;
    std::string file;  // which file holds it

    std::uint64_t nbytes() const { return static_cast<std::uint64_t>(shape_numel(shape)) * element_size; }
};

// ---- fp8 (docs/model.md#fp8-weights) -------------------------------------------------------------------

// The largest float8_e4m3fn value: the reference quantiser maps max|W| onto it.
inline constexpr float fp8_e4m3_max = 448.0f;

namespace detail {

// Whether a config.json was written by diffusers (its keys differ from the official ones).
inline bool is_diffusers_json(const nlohmann::json& j) {
    return j.contains("_diffusers_version") ||
           (j.contains("_class_name") && j["_class_name"].is_string() &&
            (j["_class_name"] == "HunyuanVideoTransformer3DModel" || j["_class_name"] == "AutoencoderKLHunyuanVideo"));
}

// Rounds an f32 to `t` (bf16, f16 or f32) and back, as torch does when it stores a result in t.
inline float round_to(float x, DType t) {
    switch (t) {
        case DType::bf16: return bf16_to_f32(f32_to_bf16(x));
        case DType::f16: return f16_to_f32(f32_to_f16(x));
        case DType::f32: return x;
        default: throw Error(concat("fp8: ", dtype_name(t), " is not a floating compute type (float32, float16, bfloat16)"));
    }
}

// Strides (in elements) that broadcast `scale` against a tensor of shape `w` (numpy rules: dimensions
// aligned on the right, each 1 or equal); nullopt if it does not broadcast.
inline std::optional<Shape> broadcast_strides(const Shape& scale, const Shape& w) {
    if (scale.size() > w.size()) return std::nullopt;
    Shape out(w.size(), 0);
    const Shape contiguous = contiguous_strides(scale);
    for (std::size_t i = 0; i < scale.size(); ++i) {
        const std::size_t wd = w.size() - scale.size() + i;
        if (scale[i] == w[wd] && scale[i] != 1) out[wd] = contiguous[i];
        else if (scale[i] != 1) return std::nullopt;
    }
    return out;
}

}  // namespace detail

// The official dequantisation: out = round(round(W8) · round(scale)) in `out_dtype`, the scale
// broadcast against W (fp8_activation_dequant: qdata.to(dtype) * scale.to(dtype)). W8 → bf16/f16 is
// exact, and so is the product of a 4-bit and an 8- or 11-bit significand in f32, so the only
// roundings are the scale's and the product's, as in torch (for f32 output the product is rounded
// once, as torch's f32 multiply rounds it).
inline Tensor dequantize_fp8(const Tensor& w8, const Tensor& scale, DType out_dtype = DType::bf16) {
    HYVIDEO_CHECK(w8.dtype() == DType::f8e4m3, "dequantize_fp8: the weight is ", dtype_name(w8.dtype()),
                  ", not float8_e4m3fn");
    HYVIDEO_CHECK(is_floating(scale.dtype()) && scale.dtype() != DType::f8e4m3, "dequantize_fp8: the scale is ",
                  dtype_name(scale.dtype()));
    const auto strides = detail::broadcast_strides(scale.shape(), w8.shape());
    HYVIDEO_CHECK(strides, "dequantize_fp8: a scale of shape ", shape_str(scale.shape()),
                  " does not broadcast against the weight's ", shape_str(w8.shape()));
    std::vector<float> s = scale.to_vector();
    for (float& v : s) v = detail::round_to(v, out_dtype);

    const Tensor w = w8.contiguous();
    const auto* q = static_cast<const std::uint8_t*>(w.raw_data());
    const std::int64_t n = w.numel(), nd = w.dim();
    Tensor out = Tensor::empty(w.shape(), out_dtype);
    const std::int64_t inner = nd > 0 ? w.size(-1) : 1;
    if (inner > 0 && (nd == 0 || (*strides)[nd - 1] == 0) && out_dtype != DType::f32 && n > 0) {
        // One scale per row (per tensor, as the reference quantiser makes, or per output channel): a
        // float8 byte has 256 values, so the row's results are a 256-entry table computed with the same
        // roundings as below, and the row a gather from it. The streamed fp8 DiT dequantises every block
        // linear on every forward, which this makes a memory-bound copy.
        auto* dst = static_cast<std::uint16_t*>(out.raw_data());
        const std::int64_t rows = n / inner;
        parallel_for_chunks(0, rows, 16, [&](std::int64_t r0, std::int64_t r1) {
            std::array<float, 256> values;
            std::array<std::uint16_t, 256> table;
            std::int64_t table_offset = -1;
            for (std::int64_t r = r0; r < r1; ++r) {
                std::int64_t so = 0, rest = r;  // scale offset of row r
                for (std::int64_t d = nd - 2; d >= 0; --d) {
                    so += (rest % w.size(d)) * (*strides)[d];
                    rest /= w.size(d);
                }
                if (so != table_offset) {
                    const float sv = s[static_cast<std::size_t>(so)];
                    for (int b = 0; b < 256; ++b)
                        values[b] = detail::round_to(f8e4m3_to_f32(static_cast<std::uint8_t>(b)) * sv, out_dtype);
                    convert_buffer(values.data(), DType::f32, table.data(), out_dtype, 256);
                    table_offset = so;
                }
                const std::uint8_t* src = q + r * inner;
                std::uint16_t* o = dst + r * inner;
                for (std::int64_t j = 0; j < inner; ++j) o[j] = table[src[j]];
            }
        });
        return out;
    }
    // The rest (a scale that varies along the row, or f32 output): element by element.
    std::vector<float> row(static_cast<std::size_t>(inner));
    std::vector<std::int64_t> idx(static_cast<std::size_t>(std::max<std::int64_t>(nd - 1, 0)), 0);
    for (std::int64_t base = 0; inner > 0 && base < n; base += inner) {
        std::int64_t so = 0;  // scale offset of this row
        for (std::int64_t d = 0; d + 1 < nd; ++d) so += idx[d] * (*strides)[d];
        const std::int64_t step = nd > 0 ? (*strides)[nd - 1] : 0;
        for (std::int64_t j = 0; j < inner; ++j)
            row[j] = detail::round_to(f8e4m3_to_f32(q[base + j]) * s[static_cast<std::size_t>(so + j * step)], out_dtype);
        convert_buffer(row.data(), DType::f32, static_cast<std::byte*>(out.raw_data()) + base * dtype_size(out_dtype),
                       out_dtype, static_cast<std::size_t>(inner));
        for (std::int64_t d = nd - 2; d >= 0; --d) {
            if (++idx[d] < w.size(d)) break;
            idx[d] = 0;
        }
    }
    return out;
}

struct Fp8Weight {
    Tensor weight;  // float8_e4m3fn, W's shape
    float scale;    // exact in W's dtype
};

// The reference quantiser (hyvideo/modules/fp8_optimization.py), which runs in the weight's dtype:
// scale = max|W| / 448 and x = W / scale, each rounded to that dtype, then x rounded to the e4m3 grid
// (nearest, ties to even: the reference's log2/round construction amounts to exactly that, which
// tools/make_test_checkpoints.py asserts against torch). One departure: an all-zero weight gets
// scale 1, where the reference would divide by zero and store NaNs.
namespace detail {
inline float fp8_scale_of_values(const std::vector<float>& v, DType t) {
    HYVIDEO_CHECK(t == DType::f32 || t == DType::bf16 || t == DType::f16, "quantize_fp8: a ", dtype_name(t),
                  " weight (float32, bfloat16 or float16 expected)");
    float max_abs = 0;
    for (float x : v) {
        HYVIDEO_CHECK(std::isfinite(x), "quantize_fp8: the weight holds inf or NaN");
        max_abs = std::max(max_abs, std::fabs(x));
    }
    return max_abs > 0 ? round_to(max_abs / fp8_e4m3_max, t) : 1.0f;
}
}  // namespace detail

inline float fp8_scale_of(const Tensor& w) { return detail::fp8_scale_of_values(w.to_vector(), w.dtype()); }

inline Fp8Weight quantize_fp8(const Tensor& w) {
    const std::vector<float> v = w.to_vector();
    Fp8Weight q;
    q.scale = detail::fp8_scale_of_values(v, w.dtype());
    q.weight = Tensor::empty(w.shape(), DType::f8e4m3);
    auto* out = static_cast<std::uint8_t*>(q.weight.raw_data());
    for (std::size_t i = 0; i < v.size(); ++i) out[i] = f32_to_f8e4m3(detail::round_to(v[i] / q.scale, w.dtype()));
    return q;
}

// The layers the official code stores in fp8: every nn.Linear in double_blocks / single_blocks. Their
// only 2-D weights are Linear weights (the QK norms are 1-D), so: 2-D weights of those blocks.
inline bool is_fp8_layer(const std::string& official_name, const Shape& shape) {
    return (official_name.starts_with("double_blocks.") || official_name.starts_with("single_blocks.")) &&
           official_name.ends_with(".weight") && shape.size() == 2;
}

// The suffix under which `hyvideo convert --fp8` stores a layer's scale beside its weight, after the
// attribute the official code sets on the layer (layer.fp8_scale).
inline constexpr std::string_view fp8_scale_suffix = ".fp8_scale";

// ---- raw tensors -----------------------------------------------------------------------------------------

// The tensors of a checkpoint's files, by the names the files give them.
class RawTensors final : public WeightSource {
public:
    void add(std::shared_ptr<const TorchFile> f) {
        const std::size_t index = files_.size();
        files_.push_back(f);
        for (const auto& name : f->names()) {
            const PtTensorInfo& i = f->info(name);
            insert(name, index, {i.dtype_name, i.supported, i.dtype, i.element_size, i.shape, f->path().string()});
        }
    }
    void add(std::shared_ptr<const SafetensorsFile> f) {
        const std::size_t index = files_.size();
        files_.push_back(f);
        for (const auto& name : f->names()) {
            const TensorInfo& i = f->info(name);
            insert(name, index, {std::string(dtype_name(i.dtype)), true, i.dtype, dtype_size(i.dtype), i.shape, f->path().string()});
        }
    }

    std::vector<std::string> names() const override {
        std::vector<std::string> out;
        out.reserve(entries_.size());
        for (const auto& [name, _] : entries_) out.push_back(name);
        return out;
    }
    bool contains(const std::string& name) const override { return entries_.contains(name); }
    Tensor get(const std::string& name) const override { return files_[entry(name).file]->get(name); }
    Shape shape(const std::string& name) const override { return entry(name).info.shape; }
    const StoredInfo& stored(const std::string& name) const { return entry(name).info; }
    std::size_t size() const { return entries_.size(); }

private:
    struct Entry {
        std::size_t file;
        StoredInfo info;
    };
    void insert(const std::string& name, std::size_t file, StoredInfo info) {
        const auto it = entries_.find(name);
        HYVIDEO_CHECK(it == entries_.end(), "the tensor \"", name, "\" is in both ", it->second.info.file, " and ", info.file);
        entries_.emplace(name, Entry{file, std::move(info)});
    }
    const Entry& entry(const std::string& name) const {
        const auto it = entries_.find(name);
        HYVIDEO_CHECK(it != entries_.end(), "no tensor \"", name, "\" in the checkpoint");
        return it->second;
    }

    std::vector<std::shared_ptr<const WeightSource>> files_;
    std::map<std::string, Entry> entries_;
};

// A model found among raw names: its kind, naming and prefix.
struct ModelLocation {
    ModelKind kind;
    NameScheme scheme;
    std::string prefix;

    bool operator==(const ModelLocation&) const = default;
};

// Every model whose anchor tensor appears among `names`, ordered by prefix.
inline std::vector<ModelLocation> find_models(const std::vector<std::string>& names) {
    static const std::pair<std::string_view, ModelLocation> anchors[] = {
        {"img_in.proj.weight", {ModelKind::dit, NameScheme::official, ""}},
        {"x_embedder.proj.weight", {ModelKind::dit, NameScheme::diffusers, ""}},
        {"decoder.conv_in.conv.weight", {ModelKind::vae, NameScheme::official, ""}},
        {"encoder.conv_in.conv.weight", {ModelKind::vae, NameScheme::official, ""}},
    };
    std::vector<ModelLocation> out;
    for (const auto& name : names)
        for (const auto& [anchor, loc] : anchors) {
            if (!name.ends_with(anchor)) continue;
            std::string prefix = name.substr(0, name.size() - anchor.size());
            if (!prefix.empty() && prefix.back() != '.') continue;  // "xdecoder.conv_in..." is no anchor
            ModelLocation found = loc;
            found.prefix = std::move(prefix);
            if (std::find(out.begin(), out.end(), found) == out.end()) out.push_back(found);
        }
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.prefix < b.prefix; });
    return out;
}

// ---- the checkpoint -------------------------------------------------------------------------------------

struct CheckpointOptions {
    std::optional<ModelKind> kind;      // which model, when the files hold several (a DiT and a VAE)
    std::optional<std::string> prefix;  // the model's name prefix, when detection alone is ambiguous
    std::string load_key = "module";    // the official --load-key: the preferred wrapper of a .pt ("module", "ema")
    std::optional<std::filesystem::path> fp8_map;  // default: the .pt's name with ".pt" -> "_map.pt"
    DType fp8_dtype = DType::bf16;      // what scaled fp8 weights are dequantised to (the official run: bf16)
    bool verify_pickle_crc = true;      // a .pt's data.pkl checksum; off only for the fuzzer (TorchFile::Options)
};

template <class Config>
struct ConfigGuess {
    Config config;
    bool complete = true;            // false: a value the weights do not determine had to be assumed
    std::vector<std::string> notes;  // where each value not read from the weights came from
};

class Checkpoint final {
public:
    // Opens a file or a directory (see the layouts above). Throws naming the file when nothing in it
    // is a HunyuanVideo model, or when several are and `options` does not say which.
    static Checkpoint open(const std::filesystem::path& path, const CheckpointOptions& options = {}) {
        Checkpoint c;
        c.options_ = options;
        c.model_->fp8_dtype = options.fp8_dtype;
        c.resolve(path);
        c.select();
        c.map_names();
        c.attach_scales();
        c.read_config_json();
        return c;
    }

    // The models in a file or directory, for tools that list everything (`hyvideo inspect`).
    static std::vector<ModelLocation> models(const std::filesystem::path& path, const CheckpointOptions& options = {}) {
        Checkpoint c;
        c.options_ = options;
        c.resolve(path);
        return find_models(c.raw_->names());
    }

    // The weights under their official names. Names the model does not explain (a diffusers tensor no
    // rule maps) are included as they are, so load_weights_strict reports them.
    const WeightSource& weights() const { return *model_; }
    // The same, as a shared handle that keeps the files mapped on its own.
    std::shared_ptr<const WeightSource> shared_weights() const { return model_; }

    ModelKind kind() const { return location_.kind; }
    NameScheme scheme() const { return location_.scheme; }
    const std::string& prefix() const { return location_.prefix; }
    Container container() const { return container_; }
    const std::vector<std::filesystem::path>& files() const { return files_; }
    const std::optional<std::filesystem::path>& fp8_map_file() const { return fp8_map_file_; }
    const RawTensors& raw() const { return *raw_; }
    std::vector<std::pair<std::string, std::string>> values() const { return values_; }

    // One line: what the files are, e.g. "PyTorch torch.save archive, names under \"module.\", official
    // names (official release layout)".
    std::string layout() const {
        std::string s;
        switch (container_) {
            case Container::torch_zip: s = "PyTorch torch.save archive"; break;
            case Container::safetensors: s = "safetensors"; break;
            case Container::safetensors_sharded:
                s = "safetensors, " + std::to_string(files_.size()) + " shards with " + index_file_.filename().string();
                break;
        }
        if (!location_.prefix.empty()) s += ", names under \"" + location_.prefix + "\"";
        s += location_.scheme == NameScheme::diffusers ? ", diffusers names" : ", official names";
        // Which distribution the files look like (diffusers names outside a diffusers folder: none of them).
        if (diffusers_folder()) {
            s += kind() == ModelKind::vae && location_.scheme == NameScheme::official
                     ? " (diffusers layout; its VAE names are the official ones)"
                     : " (diffusers layout)";
        } else if (location_.scheme == NameScheme::official) {
            if (container_ == Container::torch_zip) s += " (official release layout)";
            else if (location_.prefix.empty()) s += " (ComfyUI repackaged / hyvideo convert layout)";
            else if (location_.prefix == "model.diffusion_model." || location_.prefix == "first_stage_model.")
                s += " (ComfyUI checkpoint layout)";
        }
        if (fp8_map_file_) s += "; fp8 scales from " + fp8_map_file_->filename().string();
        else if (!model_->scales.empty()) s += "; fp8 scales beside the weights";
        return s;
    }
    // A diffusers model folder: its file names, or a config.json written by diffusers.
    bool diffusers_folder() const {
        return files_.front().filename().string().starts_with("diffusion_pytorch_model") ||
               (config_json_ && detail::is_diffusers_json(*config_json_) && config_from_ == "config.json");
    }
    // Where config_json() came from: "config.json", "safetensors metadata" or "" (none).
    const std::string& config_source() const { return config_from_; }

    // What each official tensor is stored as, and the raw tensors it is made of.
    const StoredInfo& stored(const std::string& official) const { return recipe(official).info; }
    const std::vector<std::string>& sources(const std::string& official) const { return recipe(official).parts; }
    // An official tensor as stored: like weights().get(), but float8 weights are not dequantised.
    Tensor get_stored(const std::string& official) const { return model_->stored(official); }
    // Whether a weight is float8 with a scale (dequantised when read), and the scale.
    bool fp8_scaled(const std::string& official) const { return model_->scales.contains(official); }
    const Tensor& fp8_scale(const std::string& official) const { return model_->scales.at(official); }

    // Names of the model's part of the files that map to no official tensor (diffusers names no rule
    // knows); official tensors whose diffusers parts are not all there; float8 weights read without a
    // scale; scales that belong to no float8 weight; tensors of the files that belong to another model
    // or to none (a fixture's inputs, the VAE beside a DiT).
    const std::vector<std::string>& unexpected() const { return unexpected_; }
    const std::vector<std::string>& incomplete() const { return incomplete_; }
    const std::vector<std::string>& fp8_unscaled() const { return unscaled_; }
    const std::vector<std::string>& fp8_unused_scales() const { return unused_scales_; }
    std::size_t foreign_tensors() const { return foreign_; }
    const std::vector<ModelLocation>& all_models() const { return all_models_; }

    // config.json beside the weights, if there is one (official or diffusers keys).
    const std::optional<nlohmann::json>& config_json() const { return config_json_; }

    // The model's configuration: the sizes from the weights' shapes, everything else from config.json
    // when there is one, else from the released presets where the sizes identify one.
    // Errors name the checkpoint's file, and config.json's key where the value came from there.
    ConfigGuess<HYVideoConfig> dit_config() const;
    ConfigGuess<AutoencoderKLCausal3DConfig> vae_config() const;

    // Checks a configuration the user gave (a --dit-config / --vae-config) against the weights before
    // any model is built: validate(), then every field the stored shapes determine (sizes, depths,
    // biases, guidance, text input path; for the VAE also which blocks sample), by the same inference
    // as dit_config() / vae_config(). Throws naming the checkpoint, the first field that disagrees,
    // both values and the tensor that decides it. Reads no weight and allocates nothing sized by `c`.
    void check_dit_config(const HYVideoConfig& c) const;
    void check_vae_config(const AutoencoderKLCausal3DConfig& c) const;

    // The same from any source of official names (a golden fixture's params, a test's tensors), or from
    // a shape lookup: the checkpoint uses the stored shapes, so no fp8 weight is dequantised to size it.
    // `json_name` names the JSON in errors about its keys.
    using ShapeLookup = std::function<std::optional<Shape>(const std::string&)>;
    static ConfigGuess<HYVideoConfig> infer_dit_config(const ShapeLookup& shape, const nlohmann::json* json,
                                                       const std::string& json_name = "config.json");
    static ConfigGuess<AutoencoderKLCausal3DConfig> infer_vae_config(const ShapeLookup& shape, const nlohmann::json* json,
                                                                     const std::string& json_name = "config.json");
    static ConfigGuess<HYVideoConfig> infer_dit_config(const WeightSource& w, const nlohmann::json* json = nullptr) {
        return infer_dit_config(shapes_of(w), json);
    }
    static ConfigGuess<AutoencoderKLCausal3DConfig> infer_vae_config(const WeightSource& w, const nlohmann::json* json = nullptr) {
        return infer_vae_config(shapes_of(w), json);
    }

private:
    // How one official tensor is made from raw ones.
    struct Recipe {
        diffusers::Combine combine = diffusers::Combine::rename;
        std::vector<std::string> parts;  // raw names (with the prefix); empty strings: missing parts
        StoredInfo info;                 // dtype and shape of the assembled tensor, as stored
    };

    // What loading needs, shared by the Checkpoint and the views it hands out, so that either may be
    // moved or outlive the other.
    struct Model final : WeightSource {
        std::shared_ptr<const RawTensors> raw;
        std::map<std::string, Recipe> recipes;
        std::map<std::string, Tensor> scales;  // official weight name -> fp8 scale
        DType fp8_dtype = DType::bf16;

        std::vector<std::string> names() const override {
            std::vector<std::string> out;
            out.reserve(recipes.size());
            for (const auto& [name, _] : recipes) out.push_back(name);
            return out;
        }
        bool contains(const std::string& name) const override { return recipes.contains(name); }
        Shape shape(const std::string& name) const override { return recipe(name).info.shape; }
        const Recipe& recipe(const std::string& name) const {
            const auto it = recipes.find(name);
            HYVIDEO_CHECK(it != recipes.end(), "no tensor \"", name, "\" in the checkpoint");
            return it->second;
        }
        // The official tensor `name`: a view, or the assembled (concatenated, swapped, dequantised) copy.
        Tensor get(const std::string& name) const override {
            const Tensor t = stored(name);
            const auto s = scales.find(name);
            return s == scales.end() ? t : dequantize_fp8(t, s->second, fp8_dtype);
        }
        // The same before dequantisation: float8 weights as stored.
        Tensor stored(const std::string& name) const {
            const Recipe& r = recipe(name);
            Tensor t;
            if (r.combine == diffusers::Combine::rename) {
                t = raw->get(r.parts[0]);
            } else {
                t = Tensor::empty(r.info.shape, r.info.dtype);
                auto* dst = static_cast<std::byte*>(t.raw_data());
                if (r.combine == diffusers::Combine::concat) {
                    for (const auto& part : r.parts) {
                        const Tensor src = raw->get(part).contiguous();
                        std::memcpy(dst, src.raw_data(), src.nbytes());
                        dst += src.nbytes();
                    }
                } else {  // swap_halves: diffusers (scale, shift) -> official (shift, scale)
                    const Tensor src = raw->get(r.parts[0]).contiguous();
                    const std::size_t half = src.nbytes() / 2;
                    std::memcpy(dst, static_cast<const std::byte*>(src.raw_data()) + half, half);
                    std::memcpy(dst + half, src.raw_data(), half);
                }
            }
            return t;
        }
    };

    Checkpoint() = default;

    static ShapeLookup shapes_of(const WeightSource& w) {
        return [&w](const std::string& name) -> std::optional<Shape> {
            if (!w.contains(name)) return std::nullopt;
            return w.shape(name);  // without reading, assembling or dequantising the tensor
        };
    }
    ShapeLookup stored_shapes() const {
        return [m = model_](const std::string& name) -> std::optional<Shape> {
            const auto it = m->recipes.find(name);
            if (it == m->recipes.end()) return std::nullopt;
            return it->second.info.shape;
        };
    }

    std::string where() const { return files_.empty() ? std::string("checkpoint") : files_.front().string(); }
    template <class... Args>
    [[noreturn]] void fail(Args&&... args) const {
        throw Error(detail::concat(where(), ": ", std::forward<Args>(args)...));
    }

    const Recipe& recipe(const std::string& official) const {
        const auto it = model_->recipes.find(official);
        if (it == model_->recipes.end()) fail("no tensor \"", official, "\" in this ", model_kind_name(kind()));
        return it->second;
    }

    // ---- files -------------------------------------------------------------------------------------------

    // Whether the file is a torch.save archive: a ZIP, or a bare pickle (the legacy format before PyTorch
    // 1.6, which the ZIP reader then refuses with a message saying so, rather than the safetensors reader
    // calling it a damaged safetensors file). Opened as any input, so a FIFO is refused, not read.
    static bool is_torch_file(const std::filesystem::path& p) {
        InputFile f = open_input_file(p);
        unsigned char magic[4] = {};
        ssize_t n;
        do n = ::read(f.fd.get(), magic, sizeof magic);
        while (n < 0 && errno == EINTR);
        if (n >= 2 && magic[0] == 0x80 && magic[1] <= 5) return true;
        return n == 4 && magic[0] == 'P' && magic[1] == 'K' &&
               ((magic[2] == 3 && magic[3] == 4) || (magic[2] == 5 && magic[3] == 6));
    }

    // A directory's weight file: the names the releases use, else its only candidate.
    static std::filesystem::path pick_in_directory(const std::filesystem::path& dir) {
        for (const char* name : {"diffusion_pytorch_model.safetensors.index.json", "diffusion_pytorch_model.safetensors",
                                 "mp_rank_00_model_states.pt", "mp_rank_00_model_states_fp8.pt", "pytorch_model.pt"})
            if (std::filesystem::is_regular_file(dir / name)) return dir / name;
        std::vector<std::filesystem::path> candidates;
        for (const auto& e : std::filesystem::directory_iterator(dir)) {
            const std::string n = e.path().filename().string();
            if (!e.is_regular_file() || n.ends_with("_map.pt")) continue;
            if (n.ends_with(".safetensors.index.json") || n.ends_with(".safetensors") || n.ends_with(".pt") ||
                n.ends_with(".pth") || n.ends_with(".ckpt"))
                candidates.push_back(e.path());
        }
        // Shards alone (no index) would be several candidates; an index beside them wins.
        const auto index = std::find_if(candidates.begin(), candidates.end(),
                                         [](auto& p) { return p.filename().string().ends_with(".index.json"); });
        if (index != candidates.end()) return *index;
        // A diffusers pipeline folder holds its models in subfolders.
        HYVIDEO_CHECK(!candidates.empty() || !std::filesystem::is_regular_file(dir / "model_index.json"), dir.string(),
                      ": a diffusers pipeline folder; name its transformer/ or vae/ folder");
        HYVIDEO_CHECK(candidates.size() == 1, dir.string(), ": ",
                      candidates.empty() ? "no checkpoint file (*.pt, *.safetensors, *.safetensors.index.json)"
                                         : "several checkpoint files; name the one to use");
        return candidates.front();
    }

    // The index of a sharded safetensors checkpoint that lists `shard`, if one sits beside it.
    static std::optional<std::filesystem::path> index_listing(const std::filesystem::path& shard) {
        const auto dir = shard.has_parent_path() ? shard.parent_path() : std::filesystem::path(".");
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
            if (!e.path().filename().string().ends_with(".safetensors.index.json")) continue;
            try {
                for (const auto& [_, file] : read_safetensors_index(e.path()))
                    if (file == shard.filename().string()) return e.path();
            } catch (const Error&) {
                // An unreadable index elsewhere in the folder is not this file's problem.
            }
        }
        return std::nullopt;
    }

    void resolve(const std::filesystem::path& path) {
        HYVIDEO_CHECK(std::filesystem::exists(path), path.string(), ": no such file or directory");
        std::filesystem::path file = std::filesystem::is_directory(path) ? pick_in_directory(path) : path;
        const std::string name = file.filename().string();
        raw_ = std::make_shared<RawTensors>();
        model_->raw = raw_;

        if (!name.ends_with(".json") && is_torch_file(file)) {
            container_ = Container::torch_zip;
            files_ = {file};
            TorchFile::Options pt_options;
            pt_options.verify_pickle_crc = options_.verify_pickle_crc;
            auto pt = std::make_shared<const TorchFile>(TorchFile::open(file, pt_options));
            values_ = pt->values();
            raw_->add(pt);
            return;
        }
        std::optional<std::filesystem::path> index;
        if (name.ends_with(".json")) index = file;
        else index = index_listing(file);
        if (!index) {
            container_ = Container::safetensors;
            files_ = {file};
            raw_->add(std::make_shared<const SafetensorsFile>(SafetensorsFile::open(file)));
            return;
        }
        container_ = Container::safetensors_sharded;
        index_file_ = *index;
        const auto map = read_safetensors_index(*index);
        std::set<std::string> shards;
        for (const auto& [_, f] : map) shards.insert(f);
        const auto dir = index->has_parent_path() ? index->parent_path() : std::filesystem::path(".");
        std::map<std::string, std::shared_ptr<const SafetensorsFile>> opened;
        for (const auto& s : shards) {
            files_.push_back(dir / s);
            auto f = std::make_shared<const SafetensorsFile>(SafetensorsFile::open(dir / s));
            raw_->add(f);
            opened.emplace(s, f);
        }
        // Every indexed tensor must be in the shard the index names. (Tensors a shard holds beyond the
        // index are kept: the files, not the index, are what diffusers loads.)
        for (const auto& [tensor, shard] : map)
            HYVIDEO_CHECK(opened.at(shard)->contains(tensor), index->string(), ": the index puts \"", tensor,
                          "\" in ", shard, ", which does not hold it");
    }

    // ---- which model -------------------------------------------------------------------------------------

    void select() {
        all_models_ = find_models(raw_->names());
        std::vector<ModelLocation> c = all_models_;
        if (options_.kind) std::erase_if(c, [&](auto& m) { return m.kind != *options_.kind; });
        if (options_.prefix) std::erase_if(c, [&](auto& m) { return m.prefix != *options_.prefix; });
        if (c.size() > 1) {
            // The official loader's --load-key picks the wrapper ("module" by default, or "ema").
            std::vector<ModelLocation> keyed = c;
            std::erase_if(keyed, [&](auto& m) { return m.prefix != options_.load_key + "."; });
            if (keyed.size() == 1) c = keyed;
        }
        if (c.size() == 1) {
            location_ = c.front();
            return;
        }
        std::string found;
        for (const auto& m : all_models_)
            found += detail::concat(found.empty() ? "" : ", ", m.scheme == NameScheme::diffusers ? "diffusers " : "",
                                    model_kind_name(m.kind), " under \"", m.prefix, "\"");
        if (c.empty() && all_models_.empty())
            fail("no HunyuanVideo weights among its ", raw_->size(),
                 " tensors (looked for names ending in img_in.proj.weight, x_embedder.proj.weight, "
                 "decoder.conv_in.conv.weight or encoder.conv_in.conv.weight)");
        if (c.empty()) fail("holds ", found, ", but not the model asked for");
        fail("holds several models (", found, "); say which (kind or prefix)");
    }

    // The raw names that belong to the selected model: under its prefix, and not under the longer
    // prefix of another model nested in it (a fixture's "param." DiT holds its VAE under "param.vae.").
    bool mine(const std::string& raw_name) const {
        if (!raw_name.starts_with(location_.prefix)) return false;
        for (const auto& m : all_models_)
            if (m.prefix.size() > location_.prefix.size() && m.prefix.starts_with(location_.prefix) &&
                raw_name.starts_with(m.prefix))
                return false;
        return true;
    }

    void map_names() {
        const std::string& p = location_.prefix;
        std::set<std::string> scale_names;
        for (const auto& raw_name : raw_->names()) {
            if (!mine(raw_name)) {
                ++foreign_;
                continue;
            }
            const std::string name = raw_name.substr(p.size());
            if (location_.scheme == NameScheme::official) {
                if (name.ends_with(fp8_scale_suffix)) {
                    scale_names.insert(raw_name);
                    continue;
                }
                Recipe r;
                r.parts = {raw_name};
                r.info = raw_->stored(raw_name);
                model_->recipes.emplace(name, std::move(r));
                continue;
            }
            const auto part = diffusers::dit_official(name);
            if (!part) {
                // Kept under its own name: strict loading then names it as unexpected.
                unexpected_.push_back(name);
                Recipe r;
                r.parts = {raw_name};
                r.info = raw_->stored(raw_name);
                model_->recipes.emplace(name, std::move(r));
                continue;
            }
            Recipe& r = model_->recipes[part->official];
            r.combine = part->rule->combine;
            r.parts.resize(part->rule->parts);
            r.parts[part->rule->part] = raw_name;
        }
        if (location_.scheme == NameScheme::diffusers) assemble_infos();
        scale_names_ = std::move(scale_names);
    }

    // Shapes and dtypes of the diffusers fusions, checked once at open so that a bad file is refused
    // before anything is loaded.
    void assemble_infos() {
        for (auto& entry : model_->recipes) {
            // Named, not structured-bound: the lambda below captures it, which clang 14 cannot do for bindings.
            const std::string& official = entry.first;
            Recipe& r = entry.second;
            if (std::find(r.parts.begin(), r.parts.end(), std::string()) != r.parts.end()) {
                std::string missing;
                const auto want = diffusers::dit_diffusers(official);
                for (std::size_t i = 0; i < r.parts.size(); ++i)
                    if (r.parts[i].empty()) missing += (missing.empty() ? "" : ", ") + want[i];
                incomplete_.push_back(official + " (missing " + missing + ")");
                continue;
            }
            const StoredInfo& first = raw_->stored(r.parts[0]);
            r.info = first;
            const auto bad = [&](auto&&... why) { fail("diffusers tensors of ", official, ": ", why...); };
            if (r.combine == diffusers::Combine::swap_halves) {
                if (first.shape.empty() || first.shape[0] % 2 != 0)
                    bad(r.parts[0], " ", shape_str(first.shape), " has no two equal halves along dim 0");
            } else if (r.combine == diffusers::Combine::concat) {
                if (first.shape.empty()) bad(r.parts[0], " is 0-d and cannot be stacked along dim 0");
                r.info.shape[0] = 0;
                for (std::size_t i = 0; i < r.parts.size(); ++i) {
                    const StoredInfo& s = raw_->stored(r.parts[i]);
                    if (s.dtype_name != first.dtype_name) bad(r.parts[i], " is ", s.dtype_name, ", ", r.parts[0], " ", first.dtype_name);
                    if (s.shape.empty() || s.shape.size() != first.shape.size() ||
                        !std::equal(s.shape.begin() + 1, s.shape.end(), first.shape.begin() + 1))
                        bad(r.parts[i], " ", shape_str(s.shape), " does not stack with ", r.parts[0], " ", shape_str(first.shape));
                    // q, k and v are equal blocks of heads; a fourth part (linear1's MLP input) may differ.
                    if (i < 3 && s.shape[0] != first.shape[0])
                        bad("q, k and v differ in size: ", r.parts[i], " ", shape_str(s.shape), ", ", r.parts[0], " ",
                            shape_str(first.shape));
                    if (__builtin_add_overflow(r.info.shape[0], s.shape[0], &r.info.shape[0])) bad("the sizes overflow");
                }
            }
        }
        for (const auto& name : incomplete_) model_->recipes.erase(name.substr(0, name.find(' ')));
    }

    // ---- fp8 ---------------------------------------------------------------------------------------------

    void attach_scales() {
        std::map<std::string, Tensor> by_module;  // module path -> scale
        std::string scale_file;
        const bool has_fp8 = std::any_of(model_->recipes.begin(), model_->recipes.end(),
                                         [](auto& kv) { return kv.second.info.supported && kv.second.info.dtype == DType::f8e4m3; });
        if (container_ == Container::torch_zip) {
            std::optional<std::filesystem::path> map = options_.fp8_map;
            const std::string n = files_.front().filename().string();
            if (!map && n.ends_with(".pt")) {
                auto derived = files_.front();
                derived.replace_filename(n.substr(0, n.size() - 3) + "_map.pt");
                if (std::filesystem::is_regular_file(derived)) map = derived;
            }
            if (map && !has_fp8)
                fail("has no float8 weights, so the scale map ", map->string(),
                     " does not apply (docs/model.md#fp8-weights: pair the map with the _fp8.pt file)");
            if (has_fp8 && !map)
                fail("holds float8_e4m3fn weights, whose scales are in a map file: expected ",
                     n.ends_with(".pt") ? n.substr(0, n.size() - 3) + "_map.pt" : std::string("<file>_map.pt"),
                     " beside it (or name it as the fp8 map)");
            if (map) {
                const TorchFile m = TorchFile::open(*map);
                for (const auto& key : m.names()) by_module.emplace(key, m.get(key));
                fp8_map_file_ = *map;
                scale_file = map->string();
            }
        } else {
            for (const auto& raw_name : scale_names_) {
                const std::string name = raw_name.substr(location_.prefix.size());
                by_module.emplace(name.substr(0, name.size() - fp8_scale_suffix.size()), raw_->get(raw_name));
            }
            scale_file = files_.front().string();
        }

        std::set<std::string> used;
        for (auto& [official, r] : model_->recipes) {
            if (!r.info.supported || r.info.dtype != DType::f8e4m3) continue;
            const std::string module = official.ends_with(".weight") ? official.substr(0, official.size() - 7) : official;
            const auto it = by_module.find(module);
            if (it == by_module.end()) {
                if (fp8_map_file_) fail("the weight ", official, " is float8_e4m3fn but ", scale_file, " has no scale for ", module);
                unscaled_.push_back(official);
                continue;
            }
            const Tensor& s = it->second;
            if (!is_floating(s.dtype()) || s.dtype() == DType::f8e4m3)
                fail("the fp8 scale of ", module, " in ", scale_file, " is ", dtype_name(s.dtype()));
            if (!detail::broadcast_strides(s.shape(), r.info.shape))
                fail("the fp8 scale of ", module, " in ", scale_file, " has shape ", shape_str(s.shape()),
                     ", which does not broadcast against the weight's ", shape_str(r.info.shape));
            model_->scales.emplace(official, s);
            used.insert(module);
        }
        for (const auto& [module, _] : by_module)
            if (!used.contains(module)) unused_scales_.push_back(module);
    }

    // ---- config.json ---------------------------------------------------------------------------------------

    // config.json beside the weights; else a "config" entry in a safetensors file's metadata (the golden
    // fixtures' convention, and what `hyvideo convert` writes), taking its "dit" or "vae" part when it
    // describes a whole pipeline. Its keys are read (strictly, naming config_name_) when a config is
    // inferred; here it is only refused if it could not be a config at all.
    void read_config_json() {
        const auto dir = files_.front().has_parent_path() ? files_.front().parent_path() : std::filesystem::path(".");
        if (std::filesystem::is_regular_file(dir / "config.json")) {
            config_json_ = read_json_file(dir / "config.json", "config.json");
            HYVIDEO_CHECK(config_json_->is_object(), (dir / "config.json").string(), ": not a JSON object (got ",
                          config_detail::json_text(*config_json_), ")");
            // Copying or printing a json value recurses once per level.
            HYVIDEO_CHECK(config_detail::within_depth(*config_json_, config_detail::max_json_depth),
                          (dir / "config.json").string(), ": nests deeper than ", config_detail::max_json_depth, " levels");
            config_from_ = "config.json";
            config_name_ = "config.json";
            return;
        }
        if (container_ != Container::safetensors) return;
        const SafetensorsFile file = SafetensorsFile::open(files_.front());
        const auto& meta = file.metadata();
        const auto it = meta.find("config");
        if (it == meta.end()) return;
        // Metadata is free text: what does not parse as a JSON object is not a config and not an error.
        // A NUL (a JSON-escaped one in the metadata string) would end nlohmann's input early.
        if (it->second.find('\0') != std::string::npos) return;
        nlohmann::json j = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
        if (!j.is_object()) return;
        HYVIDEO_CHECK(config_detail::within_depth(j, config_detail::max_json_depth), files_.front().string(),
                      ": the \"config\" metadata nests deeper than ", config_detail::max_json_depth, " levels");
        const char* part = kind() == ModelKind::dit ? "dit" : "vae";
        if (j.contains(part) && j[part].is_object()) j = nlohmann::json(j[part]);
        else if (j.contains("dit") || j.contains("vae")) return;
        config_json_ = std::move(j);
        config_from_ = "safetensors metadata";
        config_name_ = kind() == ModelKind::dit ? "the \"config\" metadata's DiT part" : "the \"config\" metadata's VAE part";
    }

    // ConfigGuess errors name the checkpoint's file first.
    template <class F>
    auto naming_file(F&& f) const -> decltype(f()) {
        try {
            return f();
        } catch (const Error& e) {
            throw Error(detail::concat(where(), ": ", e.what()));
        }
    }

    // What the stored shapes alone say about a DiT: every size (see infer_dit_config), not validated.
    struct DitShapes {
        HYVideoConfig config;
        std::string heads_from;     // the QK-norm weight that sized the heads
        std::string mlp_from;       // the MLP weight that sized mlp_width_ratio; empty: no block has one
        std::string qkv_bias_from;  // the bias that decided qkv_bias; empty: no block has a QKV projection
    };
    static DitShapes dit_shapes(const ShapeLookup& shape);
    // The same for a VAE, with which blocks have a down/up sampler, and which parts are stored.
    struct VaeShapes {
        AutoencoderKLCausal3DConfig config;
        std::vector<bool> sampled;  // per block (encoder order)
        bool encoder = false;       // in_channels is known
        bool decoder_out = false;   // out_channels is known
    };
    static VaeShapes vae_shapes(const ShapeLookup& shape);
    // Throws unless the blocks that sample in `c` are the blocks that hold a sampler in the weights.
    static void check_vae_sampling(const AutoencoderKLCausal3DConfig& c, const std::vector<bool>& sampled);

    CheckpointOptions options_;
    Container container_ = Container::safetensors;
    std::vector<std::filesystem::path> files_;
    std::filesystem::path index_file_;
    std::optional<std::filesystem::path> fp8_map_file_;
    std::shared_ptr<RawTensors> raw_;
    std::vector<std::pair<std::string, std::string>> values_;
    std::vector<ModelLocation> all_models_;
    ModelLocation location_{ModelKind::dit, NameScheme::official, ""};
    std::shared_ptr<Model> model_ = std::make_shared<Model>();
    std::set<std::string> scale_names_;
    std::vector<std::string> unexpected_, incomplete_, unscaled_, unused_scales_;
    std::size_t foreign_ = 0;
    std::optional<nlohmann::json> config_json_;
    std::string config_from_;
    std::string config_name_;  // how errors about config_json_'s keys name it
};

// ---- configurations from weights ----------------------------------------------------------------------

namespace detail {

// How many of name(0), name(1), ... exist, counting from 0 until the first gap.
template <class Lookup, class F>
std::int64_t count_blocks(const Lookup& shape, F name) {
    std::int64_t n = 0;
    while (shape(name(n))) ++n;
    return n;
}

// A mlp_width_ratio that gives back `width` through the official int(hidden * ratio): width / hidden
// itself can land one ulp low and truncate to width - 1. Widths beyond the bound are left to
// validate(), which refuses them before anything converts the product.
inline double mlp_ratio_for(std::int64_t width, std::int64_t hidden) {
    double r = static_cast<double>(width) / static_cast<double>(hidden);
    if (width > config_detail::max_width || hidden > config_detail::max_width) return r;
    for (int i = 0; i < 4 && static_cast<std::int64_t>(static_cast<double>(hidden) * r) < width; ++i)
        r = std::nextafter(r, std::numeric_limits<double>::infinity());
    return r;
}

inline std::string bool_text(bool b) { return b ? "true" : "false"; }

}  // namespace detail

inline Checkpoint::DitShapes Checkpoint::dit_shapes(const ShapeLookup& shape) {
    DitShapes out;
    HYVideoConfig& c = out.config;
    // Every shape is checked for its rank before it is indexed: a file may hold anything under any name.
    const auto need = [&](const std::string& name, std::size_t rank) {
        const auto s = shape(name);
        HYVIDEO_CHECK(s, "not a complete HunyuanVideo DiT: no ", name);
        HYVIDEO_CHECK(s->size() == rank, name, " has shape ", shape_str(*s), ", not the ", rank, "-d tensor of a DiT");
        return *s;
    };
    const auto optional = [&](const std::string& name, std::size_t rank) {
        const auto s = shape(name);
        return s && s->size() == rank ? s : std::nullopt;
    };
    const Shape img_in = need("img_in.proj.weight", 5);
    c.hidden_size = img_in[0];
    c.in_channels = img_in[1];
    c.patch_size = {img_in[2], img_in[3], img_in[4]};
    const Shape final_linear = need("final_layer.linear.weight", 2);
    auto patch_volume = detail::checked_mul<std::int64_t>(img_in[2], img_in[3]);
    if (patch_volume) patch_volume = detail::checked_mul<std::int64_t>(*patch_volume, img_in[4]);
    HYVIDEO_CHECK(patch_volume, "img_in.proj.weight has shape ", shape_str(img_in), ", whose patch overflows");
    // A patch with a zero side is left for validate() to name.
    c.out_channels = 0;
    if (*patch_volume > 0) {
        HYVIDEO_CHECK(final_linear[0] % *patch_volume == 0, "final_layer.linear.weight has shape ", shape_str(final_linear),
                      ": its ", final_linear[0], " outputs are not a whole number of channels of the ", *patch_volume,
                      "-pixel patch of img_in.proj.weight");
        c.out_channels = final_linear[0] / *patch_volume;
    }
    c.mm_double_blocks_depth = detail::count_blocks(shape, [](auto i) { return "double_blocks." + std::to_string(i) + ".img_attn_qkv.weight"; });
    c.mm_single_blocks_depth = detail::count_blocks(shape, [](auto i) { return "single_blocks." + std::to_string(i) + ".linear1.weight"; });
    c.refiner_depth = detail::count_blocks(shape, [](auto i) {
        return "txt_in.individual_token_refiner.blocks." + std::to_string(i) + ".self_attn_qkv.weight";
    });
    const std::string refiner0 = "txt_in.individual_token_refiner.blocks.0.";

    // Heads from the per-head QK norm; a norm with a bias is the "layer" kind.
    out.heads_from = optional("double_blocks.0.img_attn_q_norm.weight", 1) ? "double_blocks.0.img_attn_q_norm"
                                                                           : "single_blocks.0.q_norm";
    const auto qnorm = optional(out.heads_from + ".weight", 1);
    HYVIDEO_CHECK(qnorm && (*qnorm)[0] > 0, "not a complete HunyuanVideo DiT: no QK-norm weight to size the heads by");
    HYVIDEO_CHECK(c.hidden_size % (*qnorm)[0] == 0, out.heads_from, ".weight has ", (*qnorm)[0],
                  " entries, which do not divide the hidden size ", c.hidden_size, " of img_in.proj.weight into heads");
    c.heads_num = c.hidden_size / (*qnorm)[0];
    c.qk_norm_type = shape(out.heads_from + ".bias").has_value() ? "layer" : "rms";
    out.heads_from += ".weight";

    // Every block has an MLP of the same width; the first one stored sizes it.
    if (c.hidden_size > 0) {
        if (const auto fc1 = optional("double_blocks.0.img_mlp.fc1.weight", 2)) {
            c.mlp_width_ratio = detail::mlp_ratio_for((*fc1)[0], c.hidden_size);
            out.mlp_from = "double_blocks.0.img_mlp.fc1.weight";
        } else if (const auto l1 = optional("single_blocks.0.linear1.weight", 2);
                   l1 && c.hidden_size <= config_detail::max_width && (*l1)[0] > 3 * c.hidden_size) {
            c.mlp_width_ratio = detail::mlp_ratio_for((*l1)[0] - 3 * c.hidden_size, c.hidden_size);  // rows: q, k, v, mlp
            out.mlp_from = "single_blocks.0.linear1.weight";
        } else if (const auto rfc1 = optional(refiner0 + "mlp.fc1.weight", 2)) {
            c.mlp_width_ratio = detail::mlp_ratio_for((*rfc1)[0], c.hidden_size);
            out.mlp_from = refiner0 + "mlp.fc1.weight";
        }
    }
    // The QKV bias (and the attention projection's, which follows it); single blocks' linear1 always has one.
    if (shape("double_blocks.0.img_attn_qkv.weight")) {
        c.qkv_bias = shape("double_blocks.0.img_attn_qkv.bias").has_value();
        out.qkv_bias_from = "double_blocks.0.img_attn_qkv.bias";
    } else if (shape(refiner0 + "self_attn_qkv.weight")) {
        c.qkv_bias = shape(refiner0 + "self_attn_qkv.bias").has_value();
        out.qkv_bias_from = refiner0 + "self_attn_qkv.bias";
    }
    c.guidance_embed = shape("guidance_in.mlp.0.weight").has_value();
    if (shape("txt_in.input_embedder.weight").has_value()) {
        c.text_projection = "single_refiner";
        c.text_states_dim = need("txt_in.input_embedder.weight", 2)[1];
    } else {
        c.text_projection = "linear";
        c.text_states_dim = need("txt_in.linear_1.weight", 2)[1];
    }
    c.text_states_dim_2 = need("vector_in.in_layer.weight", 2)[1];
    return out;
}

inline ConfigGuess<HYVideoConfig> Checkpoint::infer_dit_config(const ShapeLookup& shape, const nlohmann::json* json,
                                                               const std::string& json_name) {
    ConfigGuess<HYVideoConfig> g;
    const DitShapes sizes = dit_shapes(shape);
    g.config = sizes.config;
    HYVideoConfig& c = g.config;
    if (sizes.mlp_from.empty()) g.notes.push_back("mlp_width_ratio: no block stores an MLP; 4 assumed");

    const std::int64_t head_dim = c.head_dim();
    bool rope_known = false;
    if (json != nullptr) {
        // config.json decides what shapes cannot: RoPE, theta, the I2V condition type. Its keys are read
        // as strictly as a model config, and errors name it and the key.
        const config_detail::JsonFields f(*json, json_name);
        const bool diffusers = detail::is_diffusers_json(*json);
        const char* rope_key = diffusers ? "rope_axes_dim" : "rope_dim_list";
        f.integers(rope_key, c.rope_dim_list, 3, 3, 1, config_detail::max_width);
        rope_known = f.has(rope_key);
        f.real("rope_theta", c.rope_theta);
        f.i2v_condition(diffusers ? "image_condition_type" : "i2v_condition_type", c.i2v_condition_type);
        if (!diffusers) f.boolean("use_attention_mask", c.use_attention_mask);
        const char* depth_key = diffusers ? "num_layers" : "mm_double_blocks_depth";
        if (const auto* d = f.find(depth_key); d && *d != nlohmann::json(c.mm_double_blocks_depth))
            g.notes.push_back(detail::concat(json_name, "'s ", depth_key, " disagrees with the weights (", c.mm_double_blocks_depth,
                                             " double blocks); the weights win"));
        g.notes.push_back("rope_dim_list, rope_theta and the I2V condition type from " + json_name);
    }
    if (!rope_known) {
        // The released presets (docs/model.md#dit-presets) fix RoPE by head size.
        if (head_dim == 128) c.rope_dim_list = {16, 56, 56}, rope_known = true;
        else if (head_dim == 96) c.rope_dim_list = {12, 42, 42}, rope_known = true;
        if (rope_known)
            g.notes.push_back(detail::concat("rope_dim_list ", shape_str({c.rope_dim_list.begin(), c.rope_dim_list.end()}),
                                             " and rope_theta 256 from the preset with head_dim ", head_dim));
    }
    if (!rope_known) {
        // A placeholder that validates (three even shares of the head) where the head allows one; the
        // weights hold nothing that could decide it.
        const std::int64_t share = 2 * (head_dim / 6);
        c.rope_dim_list = {head_dim - 2 * share, share, share};
        g.complete = false;
        g.notes.push_back(detail::concat("rope_dim_list is not stored in the weights and no preset has head_dim ", head_dim,
                                         ": give it in a config"));
    }
    const bool i2v_in_json = json != nullptr && (json->contains("image_condition_type") || json->contains("i2v_condition_type"));
    if (!i2v_in_json) {
        if (c.in_channels == 2 * c.out_channels + 1) {
            c.i2v_condition_type = I2VConditionType::latent_concat;
            g.notes.push_back("in_channels = 2·out + 1: HunyuanVideo-I2V latent_concat");
        } else if (c.in_channels == c.out_channels) {
            g.notes.push_back("i2v_condition_type: none assumed; HunyuanVideo-I2V token_replace has identical tensors");
        }
    }
    try {
        c.validate();
    } catch (const Error& e) {
        throw Error(detail::concat("the configuration from the weights", json ? " and " + json_name : std::string(),
                                   " is not valid: ", e.what()));
    }
    return g;
}

inline Checkpoint::VaeShapes Checkpoint::vae_shapes(const ShapeLookup& shape) {
    VaeShapes out;
    AutoencoderKLCausal3DConfig& c = out.config;
    // Every VAE tensor read here is a Conv3d kernel [out, in, t, h, w]; its rank is checked before use.
    const auto need = [&](const std::string& name) {
        const auto s = shape(name);
        HYVIDEO_CHECK(s, "not a complete HunyuanVideo VAE: no ", name);
        HYVIDEO_CHECK(s->size() == 5, name, " has shape ", shape_str(*s), ", not a Conv3d kernel");
        return *s;
    };
    const auto enc = [](std::int64_t i, const std::string& rest) { return "encoder.down_blocks." + std::to_string(i) + "." + rest; };
    const auto dec = [](std::int64_t i, const std::string& rest) { return "decoder.up_blocks." + std::to_string(i) + "." + rest; };
    const std::int64_t blocks = detail::count_blocks(shape, [&](auto i) { return enc(i, "resnets.0.conv1.conv.weight"); });
    const std::int64_t up_blocks = detail::count_blocks(shape, [&](auto i) { return dec(i, "resnets.0.conv1.conv.weight"); });
    c.block_out_channels.clear();
    if (blocks > 0) {
        for (std::int64_t i = 0; i < blocks; ++i) {
            c.block_out_channels.push_back(need(enc(i, "resnets.0.conv1.conv.weight"))[0]);
            out.sampled.push_back(shape(enc(i, "downsamplers.0.conv.conv.weight")).has_value());
        }
        c.layers_per_block = detail::count_blocks(shape, [&](auto j) { return enc(0, "resnets." + std::to_string(j) + ".conv1.conv.weight"); });
        c.in_channels = need("encoder.conv_in.conv.weight")[1];
        const std::int64_t moments = need("encoder.conv_out.conv.weight")[0];
        HYVIDEO_CHECK(moments % 2 == 0, "encoder.conv_out.conv.weight has ", moments,
                      " output channels, not a latent's mean and log-variance (an even number)");
        c.latent_channels = moments / 2;
        out.encoder = true;
    } else {
        // A decoder-only file: the decoder's blocks mirror the encoder's, with one more resnet each; up
        // block i samples where down block i would.
        for (std::int64_t i = up_blocks; i-- > 0;) c.block_out_channels.push_back(need(dec(i, "resnets.0.conv1.conv.weight"))[0]);
        for (std::int64_t i = 0; i < up_blocks; ++i) out.sampled.push_back(shape(dec(i, "upsamplers.0.conv.conv.weight")).has_value());
        c.layers_per_block = detail::count_blocks(shape, [&](auto j) { return dec(0, "resnets." + std::to_string(j) + ".conv1.conv.weight"); }) - 1;
        c.latent_channels = need("decoder.conv_in.conv.weight")[1];
    }
    HYVIDEO_CHECK(!c.block_out_channels.empty(), "not a HunyuanVideo VAE: no encoder.down_blocks or decoder.up_blocks");
    if (shape("decoder.conv_out.conv.weight").has_value()) {
        c.out_channels = need("decoder.conv_out.conv.weight")[0];
        out.decoder_out = true;
    }
    c.down_block_types.assign(c.block_out_channels.size(), "DownEncoderBlockCausal3D");
    c.up_block_types.assign(c.block_out_channels.size(), "UpDecoderBlockCausal3D");
    c.mid_block_add_attention = shape("decoder.mid_block.attentions.0.to_q.weight").has_value() ||
                                shape("encoder.mid_block.attentions.0.to_q.weight").has_value();
    // The blocks that sample in time (two in the released 4× model) also sample in space in the
    // official layout, so the samplers count the spatial halvings; check_vae_sampling verifies it.
    const auto sampling = std::count(out.sampled.begin(), out.sampled.end(), true);
    c.spatial_compression_ratio = std::int64_t{1} << std::min<std::int64_t>(sampling, 30);
    return out;
}

inline void Checkpoint::check_vae_sampling(const AutoencoderKLCausal3DConfig& c, const std::vector<bool>& sampled) {
    for (std::size_t i = 0; i < sampled.size() && i < c.block_out_channels.size(); ++i) {
        const bool samples = c.sampling_factor(i) != std::array<std::int64_t, 3>{1, 1, 1};
        HYVIDEO_CHECK(samples == sampled[i], "spatial_compression_ratio ", c.spatial_compression_ratio,
                      " and time_compression_ratio ", c.time_compression_ratio, " give block ", i,
                      samples ? " a sampler, which the weights do not have" : " no sampler, but the weights have one",
                      " (encoder.down_blocks.", i, ".downsamplers.0 / decoder.up_blocks.", i, ".upsamplers.0)");
    }
}

inline ConfigGuess<AutoencoderKLCausal3DConfig> Checkpoint::infer_vae_config(const ShapeLookup& shape, const nlohmann::json* json,
                                                                             const std::string& json_name) {
    ConfigGuess<AutoencoderKLCausal3DConfig> g;
    const VaeShapes sizes = vae_shapes(shape);
    g.config = sizes.config;
    AutoencoderKLCausal3DConfig& c = g.config;

    const AutoencoderKLCausal3DConfig preset = AutoencoderKLCausal3DConfig::preset("884-16c-hy");
    if (json != nullptr) {
        // Refuses a non-object or a too deep document before the copy below recurses into it.
        const config_detail::JsonFields f(*json, json_name);
        nlohmann::json j = *json;
        if (detail::is_diffusers_json(j) && j.contains("temporal_compression_ratio"))
            j["time_compression_ratio"] = j["temporal_compression_ratio"];  // diffusers' spelling
        // The weights' shapes decide the sizes; config.json adds what shapes cannot say.
        for (const char* key : {"block_out_channels", "layers_per_block", "latent_channels", "in_channels",
                                "out_channels", "down_block_types", "up_block_types", "mid_block_add_attention"}) {
            if (j.contains(key) && key == std::string_view("block_out_channels") && j[key] != nlohmann::json(c.block_out_channels))
                g.notes.push_back(json_name + "'s block_out_channels disagree with the weights; the weights win");
            j.erase(key);
        }
        c = AutoencoderKLCausal3DConfig::from_json(j, c, json_name);
        g.notes.push_back(j.contains("sample_size") ? "norm_num_groups, tile sizes and scaling_factor from " + json_name
                                                    : "norm_num_groups and scaling_factor from " + json_name +
                                                          "; tile sizes from the 884-16c-hy preset (diffusers' config has none)");
    } else {
        // Not stored in the weights: the preset's 32 where every block splits into 32 groups, else the
        // largest power of two that divides them all, so that the guess is at least a valid config.
        c.norm_num_groups = preset.norm_num_groups;
        for (auto ch : c.block_out_channels)
            while (c.norm_num_groups > 1 && ch % c.norm_num_groups != 0) c.norm_num_groups /= 2;
        c.sample_size = preset.sample_size;
        c.sample_tsize = preset.sample_tsize;
        c.scaling_factor = preset.scaling_factor;
        const bool released = c.block_out_channels == preset.block_out_channels && c.latent_channels == preset.latent_channels;
        g.notes.push_back(released ? "norm_num_groups, tile sizes and scaling_factor from the 884-16c-hy preset"
                                   : detail::concat("norm_num_groups (", c.norm_num_groups,
                                                    "), tile sizes and scaling_factor are not stored in the weights and "
                                                    "were assumed: give a config.json"));
        g.complete = released;
    }
    try {
        c.validate();
        check_vae_sampling(c, sizes.sampled);
    } catch (const Error& e) {
        throw Error(detail::concat("the configuration from the weights", json ? " and " + json_name : std::string(),
                                   " is not valid: ", e.what()));
    }
    return g;
}

inline ConfigGuess<HYVideoConfig> Checkpoint::dit_config() const {
    HYVIDEO_CHECK(kind() == ModelKind::dit, files_.front().string(), " holds a VAE, not a DiT");
    return naming_file([&] { return infer_dit_config(stored_shapes(), config_json_ ? &*config_json_ : nullptr, config_name_); });
}

inline ConfigGuess<AutoencoderKLCausal3DConfig> Checkpoint::vae_config() const {
    HYVIDEO_CHECK(kind() == ModelKind::vae, files_.front().string(), " holds a DiT, not a VAE");
    return naming_file([&] { return infer_vae_config(stored_shapes(), config_json_ ? &*config_json_ : nullptr, config_name_); });
}

namespace detail {
// "the given config's <field> <given> disagrees with the weights' <stored> (<tensor>)", for the first
// field that differs.
struct ConfigComparison {
    template <class T>
    const ConfigComparison& operator()(const char* field, const T& given, const T& stored, const std::string& tensor) const {
        if (given == stored) return *this;
        if constexpr (std::is_same_v<T, bool>)
            throw Error(concat("the given config's ", field, " ", bool_text(given), " disagrees with the weights' ",
                               bool_text(stored), " (", tensor, ")"));
        else if constexpr (std::is_same_v<T, std::string>)
            throw Error(concat("the given config's ", field, " ", config_detail::string_text(given), " disagrees with the weights' ",
                               config_detail::string_text(stored), " (", tensor, ")"));
        else if constexpr (std::is_integral_v<T>)
            throw Error(concat("the given config's ", field, " ", given, " disagrees with the weights' ", stored, " (", tensor, ")"));
        else
            throw Error(concat("the given config's ", field, " ", nlohmann::json(given).dump(), " disagrees with the weights' ",
                               nlohmann::json(stored).dump(), " (", tensor, ")"));
    }
};
}  // namespace detail

inline void Checkpoint::check_dit_config(const HYVideoConfig& c) const {
    naming_file([&] {
        HYVIDEO_CHECK(kind() == ModelKind::dit, "holds a VAE, not a DiT");
        c.validate();
        const DitShapes sizes = dit_shapes(stored_shapes());
        const HYVideoConfig& w = sizes.config;
        const detail::ConfigComparison same;
        same("hidden_size", c.hidden_size, w.hidden_size, "img_in.proj.weight")
            ("in_channels", c.in_channels, w.in_channels, "img_in.proj.weight")
            ("patch_size", c.patch_size, w.patch_size, "img_in.proj.weight")
            ("out_channels", c.out_channels, w.out_channels, "final_layer.linear.weight")
            ("heads_num", c.heads_num, w.heads_num, sizes.heads_from)
            ("qk_norm", c.qk_norm, true, sizes.heads_from)
            ("qk_norm_type", c.qk_norm_type, w.qk_norm_type, sizes.heads_from)
            ("mm_double_blocks_depth", c.mm_double_blocks_depth, w.mm_double_blocks_depth, "double_blocks.<i>.img_attn_qkv.weight")
            ("mm_single_blocks_depth", c.mm_single_blocks_depth, w.mm_single_blocks_depth, "single_blocks.<i>.linear1.weight")
            ("text_projection", c.text_projection, w.text_projection, "txt_in.input_embedder.weight / txt_in.linear_1.weight")
            ("text_states_dim", c.text_states_dim, w.text_states_dim,
             w.text_projection == "linear" ? "txt_in.linear_1.weight" : "txt_in.input_embedder.weight")
            ("text_states_dim_2", c.text_states_dim_2, w.text_states_dim_2, "vector_in.in_layer.weight")
            ("guidance_embed", c.guidance_embed, w.guidance_embed, "guidance_in.mlp.0.weight");
        if (c.text_projection == "single_refiner")
            same("refiner_depth", c.refiner_depth, w.refiner_depth, "txt_in.individual_token_refiner.blocks.<i>.self_attn_qkv.weight");
        // The ratio as the blocks use it: equal widths are the same model, whatever the ratio's digits.
        if (!sizes.mlp_from.empty())
            same("MLP width int(hidden_size * mlp_width_ratio)", c.mlp_hidden_dim(), w.mlp_hidden_dim(), sizes.mlp_from);
        if (!sizes.qkv_bias_from.empty()) same("qkv_bias", c.qkv_bias, w.qkv_bias, sizes.qkv_bias_from);
    });
}

inline void Checkpoint::check_vae_config(const AutoencoderKLCausal3DConfig& c) const {
    naming_file([&] {
        HYVIDEO_CHECK(kind() == ModelKind::vae, "holds a DiT, not a VAE");
        c.validate();
        const VaeShapes sizes = vae_shapes(stored_shapes());
        const AutoencoderKLCausal3DConfig& w = sizes.config;
        const char* blocks = sizes.encoder ? "encoder.down_blocks.<i>.resnets.0.conv1.conv.weight"
                                           : "decoder.up_blocks.<i>.resnets.0.conv1.conv.weight";
        const detail::ConfigComparison same;
        same("block_out_channels", c.block_out_channels, w.block_out_channels, blocks)
            ("layers_per_block", c.layers_per_block, w.layers_per_block,
             sizes.encoder ? "encoder.down_blocks.0.resnets.<j>" : "decoder.up_blocks.0.resnets.<j>")
            ("latent_channels", c.latent_channels, w.latent_channels,
             sizes.encoder ? "encoder.conv_out.conv.weight" : "decoder.conv_in.conv.weight")
            ("mid_block_add_attention", c.mid_block_add_attention, w.mid_block_add_attention, "*.mid_block.attentions.0");
        if (sizes.encoder) same("in_channels", c.in_channels, w.in_channels, "encoder.conv_in.conv.weight");
        if (sizes.decoder_out) same("out_channels", c.out_channels, w.out_channels, "decoder.conv_out.conv.weight");
        check_vae_sampling(c, sizes.sampled);
    });
}

namespace detail {
// Runs `load`, naming the checkpoint's file and layout in any error it throws.
template <class F>
void with_checkpoint_context(const Checkpoint& c, F&& load) {
    try {
        load();
    } catch (const Error& e) {
        throw Error(concat(c.files().front().string(), " (", c.layout(), "): ", e.what()));
    }
}
}  // namespace detail

// Loads `model` (a DiT or a VAE) from an opened checkpoint of any layout, strictly: every official
// tensor the model needs, and nothing the model does not explain; matrices in `matmul`, the rest f32.
// The model's weights may be views of the checkpoint's mapped files, which stay mapped for as long as
// the checkpoint or any view lives. What `hyvideo generate --vae` calls.
template <class M>
void load_checkpoint(M& model, const Checkpoint& c, DType matmul = DType::f32) {
    detail::with_checkpoint_context(c, [&] { load_weights_strict(model, c.weights(), "", matmul); });
}

// The same from a path (opened for the model of `kind`); returns the opened checkpoint.
template <class M>
Checkpoint load_checkpoint(M& model, const std::filesystem::path& path, ModelKind kind, CheckpointOptions options = {}) {
    options.kind = kind;
    Checkpoint c = Checkpoint::open(path, options);
    load_checkpoint(model, c);
    return c;
}

// The DiT from an opened checkpoint with its blocks streamed (HYVideoDiffusionTransformer::
// load_streamed): checked strictly without reading a weight, everything but the blocks loaded now, and
// each block read from the mapped files, dequantised (fp8) and converted to `matmul`/f32 when the
// forward reaches it. Peak memory is the mapped files plus one block's converted weights. The model
// keeps the checkpoint's files open. What `hyvideo generate --dit` calls.
template <class DiT>
void load_checkpoint_streamed(DiT& model, const Checkpoint& c, DType matmul = DType::f32) {
    detail::with_checkpoint_context(c, [&] { model.load_streamed(c.shared_weights(), "", matmul); });
}

// The same from a path; returns the opened checkpoint.
template <class DiT>
Checkpoint load_checkpoint_streamed(DiT& model, const std::filesystem::path& path, CheckpointOptions options = {},
                                    DType matmul = DType::f32) {
    options.kind = ModelKind::dit;
    Checkpoint c = Checkpoint::open(path, options);
    load_checkpoint_streamed(model, c, matmul);
    return c;
}

}  // namespace hyvideo
