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
// for diffusers a concatenation of q/k/v (/mlp) parts or a swap of the final modulation's halves, which
// allocate the official tensor and copy its parts in when it is read.
//
// Memory. Nothing is read when a checkpoint is opened beyond the .pt pickle, the safetensors headers
// and fp8 scales. Weights stay in their stored dtype and mapped where the format allows (.pt and
// safetensors alike); get() returns a view, or one freshly assembled tensor for the diffusers fusions
// and fp8 dequantisation. A loader that asks for one tensor at a time, as load_weights does, therefore
// holds at most one converted tensor beyond what it keeps.
//
// FP8 (docs/model.md#fp8-weights). float8_e4m3fn weights with a scale are dequantised when read, as the
// official forward does (io/fp8.hpp). Scales come from the map file of an official fp8 .pt
// ({module path: scale}) or from `<module>.fp8_scale` tensors beside the weights (what `hyvideo convert
// --fp8` writes). float8 weights without any scale (ComfyUI's plain fp8 casts) are returned as stored,
// i.e. with scale 1, and reported by `hyvideo inspect`.
//
// The layers under this one: the file formats (io/: pt_file, safetensors, sharded_safetensors), the
// union of a checkpoint's files (checkpoint/raw_tensors.hpp), which models its names hold
// (checkpoint/model_location.hpp), diffusers' names (checkpoint/diffusers_names.hpp), and each model's
// configuration from its shapes, beside the model (models/ and vae/config_from_weights.hpp).
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

#include "hyvideo/checkpoint/diffusers_names.hpp"
#include "hyvideo/checkpoint/model_location.hpp"
#include "hyvideo/checkpoint/raw_tensors.hpp"
#include "hyvideo/core/config_guess.hpp"
#include "hyvideo/core/dtype.hpp"
#include "hyvideo/core/error.hpp"
#include "hyvideo/core/tensor.hpp"
#include "hyvideo/core/weight_source.hpp"
#include "hyvideo/io/fp8.hpp"
#include "hyvideo/io/json_file.hpp"
#include "hyvideo/io/pt_file.hpp"
#include "hyvideo/io/safetensors.hpp"
#include "hyvideo/io/sharded_safetensors.hpp"
#include "hyvideo/models/config_from_weights.hpp"
#include "hyvideo/nn/module.hpp"
#include "hyvideo/nn/streamed_blocks.hpp"
#include "hyvideo/vae/config_from_weights.hpp"

namespace hyvideo {

// The files a checkpoint is stored in.
enum class Container : std::uint8_t { torch_zip, safetensors, safetensors_sharded };

// The layers the official code stores in fp8: every nn.Linear in double_blocks / single_blocks. Their
// only 2-D weights are Linear weights (the QK norms are 1-D), so: 2-D weights of those blocks.
inline bool is_fp8_layer(const std::string& official_name, const Shape& shape) {
    return (official_name.starts_with("double_blocks.") || official_name.starts_with("single_blocks.")) &&
           official_name.ends_with(".weight") && shape.size() == 2;
}

// The suffix under which `hyvideo convert --fp8` stores a layer's scale beside its weight, after the
// attribute the official code sets on the layer (layer.fp8_scale).
inline constexpr std::string_view fp8_scale_suffix = ".fp8_scale";

struct CheckpointOptions {
    std::optional<ModelKind> kind;      // which model, when the files hold several (a DiT and a VAE)
    std::optional<std::string> prefix;  // the model's name prefix, when detection alone is ambiguous
    std::string load_key = "module";    // the official --load-key: the preferred wrapper of a .pt ("module", "ema")
    std::optional<std::filesystem::path> fp8_map;  // default: the .pt's name with ".pt" -> "_map.pt"
    DType fp8_dtype = DType::bf16;      // what scaled fp8 weights are dequantised to (the official run: bf16)
    bool verify_pickle_crc = true;      // a .pt's data.pkl checksum; off only for the fuzzer (TorchFile::Options)
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
        void release_pages() const override { raw->release_pages(); }
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

inline ConfigGuess<HYVideoConfig> Checkpoint::dit_config() const {
    HYVIDEO_CHECK(kind() == ModelKind::dit, files_.front().string(), " holds a VAE, not a DiT");
    return naming_file([&] { return infer_dit_config(stored_shapes(), config_json_ ? &*config_json_ : nullptr, config_name_); });
}

inline ConfigGuess<AutoencoderKLCausal3DConfig> Checkpoint::vae_config() const {
    HYVIDEO_CHECK(kind() == ModelKind::vae, files_.front().string(), " holds a DiT, not a VAE");
    return naming_file([&] { return infer_vae_config(stored_shapes(), config_json_ ? &*config_json_ : nullptr, config_name_); });
}

inline void Checkpoint::check_dit_config(const HYVideoConfig& c) const {
    naming_file([&] {
        HYVIDEO_CHECK(kind() == ModelKind::dit, "holds a VAE, not a DiT");
        hyvideo::check_dit_config(c, stored_shapes());
    });
}

inline void Checkpoint::check_vae_config(const AutoencoderKLCausal3DConfig& c) const {
    naming_file([&] {
        HYVIDEO_CHECK(kind() == ModelKind::vae, "holds a DiT, not a VAE");
        hyvideo::check_vae_config(c, stored_shapes());
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
// keeps the checkpoint's files open. `prefetch` next_block reads each block on a loader thread while
// the one before computes. What `hyvideo generate --dit` calls.
template <class DiT>
void load_checkpoint_streamed(DiT& model, const Checkpoint& c, DType matmul = DType::f32,
                              BlockPrefetch prefetch = BlockPrefetch::none) {
    detail::with_checkpoint_context(c, [&] { model.load_streamed(c.shared_weights(), "", matmul, prefetch); });
}

// The same from a path; returns the opened checkpoint.
template <class DiT>
Checkpoint load_checkpoint_streamed(DiT& model, const std::filesystem::path& path, CheckpointOptions options = {},
                                    DType matmul = DType::f32, BlockPrefetch prefetch = BlockPrefetch::none) {
    options.kind = ModelKind::dit;
    Checkpoint c = Checkpoint::open(path, options);
    load_checkpoint_streamed(model, c, matmul, prefetch);
    return c;
}

}  // namespace hyvideo
