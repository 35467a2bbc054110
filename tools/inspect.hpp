#pragma once
// `hyvideo inspect FILE...`: what a checkpoint is, before anything is loaded.
//
// For each file or folder: the layout (container, naming, prefix), the models it holds, and for each
// model the tensor count, dtypes, parameter count and stored size, the configuration the weights
// determine (and where the rest came from), the released configuration it matches, if any, and the
// tensors that are missing or unexpected for that configuration. Matching compares the checkpoint's
// official names and shapes with the manifest of each candidate configuration (parameter_list of a
// model built without weights), so it is exact: "matches HYVideo-T/2-cfgdistill" means every one of
// the 856 names and shapes agrees.
//
//   --list     every tensor: official name, stored dtype, shape, and the stored names it comes from
//   --verify   read everything: the CRC-32 of every .pt entry, and every tensor (counting non-finite values)
//   --json     the same facts as one JSON document (an array, one entry per model)
//
// Text encoders (the Llama LLM, CLIP-L text, the I2V llava; text_encoder/encoder_files.hpp) are
// recognised by their names and described the same way: kind, layout, config (read or inferred),
// dtypes and parameter count; opening one checks every shape against its config.
//
// Exit status 0 when every argument holds at least one model and none has missing, unexpected or
// unreadable tensors; 1 otherwise.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/checkpoint/checkpoint.hpp"
#include "hyvideo/models/hunyuan_video.hpp"
#include "hyvideo/nn/module.hpp"
#include "hyvideo/text_encoder/encoder_files.hpp"
#include "hyvideo/vae/autoencoder_kl_causal_3d.hpp"

namespace hyvideo::cli {

// name -> shape of a model's parameters, as a configuration defines them.
using Manifest = std::map<std::string, Shape>;

inline Manifest dit_manifest(const HYVideoConfig& c) {
    HYVideoDiffusionTransformer<cpu> model(c);
    Manifest m;
    for (auto& p : parameter_list(model)) m.emplace(p.name, p.shape);
    return m;
}
inline Manifest vae_manifest(const AutoencoderKLCausal3DConfig& c) {
    AutoencoderKLCausal3D<cpu> model(c);
    Manifest m;
    for (auto& p : parameter_list(model)) m.emplace(p.name, p.shape);
    return m;
}

// The released configurations a checkpoint may be (docs/model.md#dit-presets, #i2v-model,
// #vae-configuration).
struct Preset {
    std::string name;
    std::string what;
    Manifest manifest;
};

inline const std::vector<Preset>& dit_presets() {
    static const std::vector<Preset> presets = [] {
        std::vector<Preset> p;
        p.push_back({"HYVideo-T/2-cfgdistill", "the released text-to-video model; HunyuanVideo-I2V token_replace has the same tensors",
                     dit_manifest(HYVideoConfig::preset("HYVideo-T/2-cfgdistill"))});
        p.push_back({"HYVideo-T/2", "no guidance embedding", dit_manifest(HYVideoConfig::preset("HYVideo-T/2"))});
        HYVideoConfig i2v = HYVideoConfig::preset("HYVideo-T/2");
        i2v.guidance_embed = true;  // the I2V scripts pass --embedded-cfg-scale (docs/model.md#i2v-model)
        i2v.in_channels = 33;
        i2v.i2v_condition_type = I2VConditionType::latent_concat;
        p.push_back({"HYVideo-T/2 + guidance, latent_concat", "HunyuanVideo-I2V with 33 input channels", dit_manifest(i2v)});
        p.push_back({"HYVideo-S/2", "the small configuration of the I2V code (no released weights known)",
                     dit_manifest(HYVideoConfig::preset("HYVideo-S/2"))});
        return p;
    }();
    return presets;
}
inline const std::vector<Preset>& vae_presets() {
    static const std::vector<Preset> presets{
        {"884-16c-hy", "the released causal 3D VAE", vae_manifest(AutoencoderKLCausal3DConfig::preset("884-16c-hy"))}};
    return presets;
}

struct ManifestDiff {
    std::vector<std::string> missing, unexpected, wrong_shape;
    bool same() const { return missing.empty() && unexpected.empty() && wrong_shape.empty(); }
};

inline ManifestDiff compare_manifest(const Manifest& have, const Manifest& want) {
    ManifestDiff d;
    for (const auto& [name, shape] : want) {
        const auto it = have.find(name);
        if (it == have.end()) d.missing.push_back(name);
        else if (it->second != shape)
            d.wrong_shape.push_back(name + " " + shape_str(it->second) + ", expected " + shape_str(shape));
    }
    for (const auto& [name, _] : have)
        if (!want.contains(name)) d.unexpected.push_back(name);
    return d;
}

struct InspectArgs {
    std::vector<std::string> files;
    bool list = false;
    bool verify = false;
    bool json = false;
    std::string load_key = "module";
};

namespace inspect_detail {

inline std::string with_commas(std::uint64_t v) {
    std::string s = std::to_string(v);
    for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<std::size_t>(i), ",");
    return s;
}
inline std::string human_bytes(std::uint64_t b) {
    const char* unit[] = {"B", "KB", "MB", "GB", "TB"};
    double v = static_cast<double>(b);
    int u = 0;
    while (v >= 1000 && u < 4) v /= 1000, ++u;
    return u == 0 ? fmt::format("{} B", b) : fmt::format("{:.2f} {}", v, unit[u]);
}
inline std::string list_or_none(const std::vector<std::string>& v, std::size_t show = 8) {
    if (v.empty()) return "none";
    std::string s = std::to_string(v.size()) + ": ";
    for (std::size_t i = 0; i < v.size() && i < show; ++i) s += (i ? ", " : "") + v[i];
    if (v.size() > show) s += ", ...";
    return s;
}

// Everything inspect reports about one model, as JSON (the text output prints from it).
inline nlohmann::json inspect_model(const std::string& file, const ModelLocation& where, const InspectArgs& opt) {
    using nlohmann::json;
    CheckpointOptions co;
    co.kind = where.kind;
    co.prefix = where.prefix;
    co.load_key = opt.load_key;
    const Checkpoint c = Checkpoint::open(file, co);

    json r;
    r["file"] = file;
    r["model"] = std::string(model_kind_name(c.kind()));
    r["layout"] = c.layout();
    r["names"] = c.scheme() == NameScheme::diffusers ? "diffusers" : "official";
    r["prefix"] = c.prefix();
    json files = json::array();
    for (const auto& f : c.files()) files.push_back(f.string());
    r["files"] = files;

    // Tensors, by their stored dtype; fp8 weights with a scale are counted as such.
    Manifest have;
    std::map<std::string, int> dtypes;
    std::uint64_t params = 0, stored_bytes = 0;
    for (const auto& name : c.weights().names()) {
        const StoredInfo& s = c.stored(name);
        have.emplace(name, s.shape);
        ++dtypes[s.dtype_name + (c.fp8_scaled(name) ? " (scaled)" : "")];
        params += static_cast<std::uint64_t>(shape_numel(s.shape));
        stored_bytes += s.nbytes();
    }
    r["tensors"] = have.size();
    r["dtypes"] = dtypes;
    r["parameters"] = params;
    r["stored_bytes"] = stored_bytes;
    r["other_tensors"] = c.foreign_tensors();

    // The configuration, and the released one it matches.
    const auto& presets = c.kind() == ModelKind::dit ? dit_presets() : vae_presets();
    r["matches"] = nullptr;
    for (const auto& p : presets)
        if (compare_manifest(have, p.manifest).same()) {
            r["matches"] = p.name;
            r["matches_what"] = p.what;
            break;
        }
    Manifest want;
    try {
        if (c.kind() == ModelKind::dit) {
            const auto g = c.dit_config();
            r["config"] = g.config.to_json();
            r["config"]["refiner_depth"] = g.config.refiner_depth;
            r["config_complete"] = g.complete;
            r["config_notes"] = g.notes;
            want = dit_manifest(g.config);
        } else {
            const auto g = c.vae_config();
            r["config"] = g.config.to_json();
            r["config_complete"] = g.complete;
            r["config_notes"] = g.notes;
            want = vae_manifest(g.config);
        }
        const ManifestDiff d = compare_manifest(have, want);
        r["missing"] = d.missing;
        r["wrong_shape"] = d.wrong_shape;
        std::vector<std::string> unexpected = d.unexpected;
        r["unexpected"] = unexpected;
    } catch (const Error& e) {
        r["config_error"] = e.what();
        r["missing"] = json::array();
        r["wrong_shape"] = json::array();
        r["unexpected"] = json::array();
    }
    r["incomplete"] = c.incomplete();
    r["fp8"] = {{"scaled", std::count_if(have.begin(), have.end(), [&](auto& kv) { return c.fp8_scaled(kv.first); })},
                {"unscaled", c.fp8_unscaled()},
                {"unused_scales", c.fp8_unused_scales()}};
    if (c.fp8_map_file()) r["fp8"]["map"] = c.fp8_map_file()->string();
    json values = json::object();
    for (const auto& [k, v] : c.values()) values[k] = v;
    r["values"] = values;

    if (opt.list) {
        json list = json::array();
        for (const auto& name : c.weights().names()) {
            const StoredInfo& s = c.stored(name);
            json e = {{"name", name}, {"dtype", s.dtype_name}, {"shape", s.shape}};
            const auto& src = c.sources(name);
            if (src.size() != 1 || src.front() != c.prefix() + name) e["from"] = src;
            if (c.fp8_scaled(name)) e["fp8_scale"] = c.fp8_scale(name).to_vector();
            list.push_back(e);
        }
        r["list"] = list;
    }
    if (opt.verify) {
        // Every .pt entry's CRC, then every tensor read as a loader reads it.
        // A file truncated meanwhile by another program reads as zeros (io/mapped_file.hpp): each read is
        // followed by the check that turns that into an error naming the file.
        const auto verify_pt = [](const std::filesystem::path& f) {
            const TorchFile t = TorchFile::open(f);
            t.verify_storages();
            check_mapped_inputs();
        };
        for (const auto& f : c.files())
            if (c.container() == Container::torch_zip) verify_pt(f);
        if (c.fp8_map_file()) verify_pt(*c.fp8_map_file());
        std::uint64_t nonfinite = 0;
        std::vector<std::string> where;
        for (const auto& name : c.weights().names()) {
            const Tensor t = c.weights().get(name);
            if (!is_floating(t.dtype())) continue;
            std::uint64_t n = 0;
            for (float v : t.to_vector()) n += !std::isfinite(v);
            if (n > 0 && where.size() < 8) where.push_back(name);
            nonfinite += n;
        }
        check_mapped_inputs();
        r["verify"] = {{"crc", c.container() == Container::torch_zip ? "ok" : "n/a (safetensors has no checksums)"},
                       {"nonfinite", nonfinite},
                       {"nonfinite_in", where}};
    }
    return r;
}

inline bool clean(const nlohmann::json& r) {
    return r["missing"].empty() && r["unexpected"].empty() && r["wrong_shape"].empty() && r["incomplete"].empty() &&
           !r.contains("config_error") && (!r.contains("verify") || r["verify"]["nonfinite"] == 0);
}

inline void print_model(const nlohmann::json& r) {
    const auto line = [](const char* key, const std::string& value) { fmt::print("  {:<11}{}\n", key, value); };
    fmt::print("{}\n", r["file"].get<std::string>());
    line("model", "HunyuanVideo " + r["model"].get<std::string>());
    line("layout", r["layout"].get<std::string>());
    std::string dt;
    for (const auto& [k, v] : r["dtypes"].items()) dt += fmt::format("{}{} {}", dt.empty() ? "" : ", ", k, v.get<int>());
    line("tensors", fmt::format("{} ({})", r["tensors"].get<std::size_t>(), dt));
    line("parameters", fmt::format("{} ({} stored)", with_commas(r["parameters"].get<std::uint64_t>()),
                                   human_bytes(r["stored_bytes"].get<std::uint64_t>())));
    if (r.contains("config_error")) {
        line("config", "cannot be inferred: " + r["config_error"].get<std::string>());
    } else {
        const auto& c = r["config"];
        // A placeholder RoPE (the weights do not determine it) is not printed as if it were known.
        bool rope_known = true;
        for (const auto& n : r["config_notes"]) rope_known = rope_known && n.get<std::string>().find("rope_dim_list is not stored") == std::string::npos;
        if (r["model"] == "DiT")
            line("config", fmt::format("hidden {} = {} heads x {}, {} double + {} single blocks, mlp ratio {}, "
                                       "channels {} -> {}, patch {}, text {} / {}, guidance {}, rope {}{}",
                                       c["hidden_size"].get<std::int64_t>(), c["heads_num"].get<std::int64_t>(),
                                       c["hidden_size"].get<std::int64_t>() / std::max<std::int64_t>(c["heads_num"].get<std::int64_t>(), 1),
                                       c["mm_double_blocks_depth"].get<std::int64_t>(), c["mm_single_blocks_depth"].get<std::int64_t>(),
                                       c["mlp_width_ratio"].get<double>(), c["in_channels"].get<std::int64_t>(),
                                       c["out_channels"].get<std::int64_t>(), c["patch_size"].dump(),
                                       c["text_states_dim"].get<std::int64_t>(), c["text_states_dim_2"].get<std::int64_t>(),
                                       c["guidance_embed"].get<bool>() ? "on" : "off",
                                       rope_known ? c["rope_dim_list"].dump() : std::string("unknown"),
                                       c["i2v_condition_type"].get<std::string>().empty()
                                           ? std::string()
                                           : ", I2V " + c["i2v_condition_type"].get<std::string>()));
        else
            line("config", fmt::format("blocks {}, layers_per_block {}, latent {} channels, groups {}, scaling {}",
                                       c["block_out_channels"].dump(), c["layers_per_block"].get<std::int64_t>(),
                                       c["latent_channels"].get<std::int64_t>(), c["norm_num_groups"].get<std::int64_t>(),
                                       c["scaling_factor"].get<double>()));
        for (const auto& n : r["config_notes"]) line("", "(" + n.get<std::string>() + ")");
    }
    line("matches", r["matches"].is_null() ? "no released configuration (a custom size)"
                                           : r["matches"].get<std::string>() + ": " + r["matches_what"].get<std::string>());
    line("missing", list_or_none(r["missing"].get<std::vector<std::string>>()));
    line("unexpected", list_or_none(r["unexpected"].get<std::vector<std::string>>()));
    if (!r["wrong_shape"].empty()) line("bad shape", list_or_none(r["wrong_shape"].get<std::vector<std::string>>()));
    if (!r["incomplete"].empty()) line("incomplete", list_or_none(r["incomplete"].get<std::vector<std::string>>()));
    const auto& f8 = r["fp8"];
    if (f8["scaled"].get<std::int64_t>() > 0 || !f8["unscaled"].empty() || !f8["unused_scales"].empty()) {
        std::string s = fmt::format("{} scaled float8_e4m3fn weights (dequantised as bf16(bf16(W8)*bf16(scale)))",
                                    f8["scaled"].get<std::int64_t>());
        if (!f8["unscaled"].empty()) s += fmt::format("; {} without a scale (read as stored, scale 1)", f8["unscaled"].size());
        if (!f8["unused_scales"].empty()) s += fmt::format("; {} scales for no float8 weight", f8["unused_scales"].size());
        line("fp8", s);
    }
    if (r["other_tensors"].get<std::size_t>() > 0)
        line("other", fmt::format("{} tensors of the file belong to another model or to none", r["other_tensors"].get<std::size_t>()));
    if (!r["values"].empty()) {
        std::string s;
        for (const auto& [k, v] : r["values"].items()) s += fmt::format("{}{} = {}", s.empty() ? "" : ", ", k, v.get<std::string>());
        line("values", s);
    }
    if (r.contains("verify"))
        line("verify", fmt::format("CRC {}; {} non-finite values{}", r["verify"]["crc"].get<std::string>(),
                                   r["verify"]["nonfinite"].get<std::uint64_t>(),
                                   r["verify"]["nonfinite_in"].empty() ? "" : " in " + r["verify"]["nonfinite_in"].dump()));
    if (r.contains("list"))
        for (const auto& e : r["list"]) {
            std::string from;
            if (e.contains("from")) {
                for (const auto& s : e["from"]) from += (from.empty() ? "  <- " : " + ") + s.get<std::string>();
            }
            fmt::print("    {:<56} {:<14} {}{}\n", e["name"].get<std::string>(), e["dtype"].get<std::string>(),
                       e["shape"].dump(), from);
        }
}

// ---- text encoders ----------------------------------------------------------------------------------------

inline std::string_view text_encoder_kind_key(TextEncoderKind k) {
    switch (k) {
        case TextEncoderKind::llama: return "llama";
        case TextEncoderKind::clip_text: return "clip_text";
        case TextEncoderKind::llava: return "llava";
    }
    return "?";
}

// The same facts as inspect_model, for a text encoder's files.
inline nlohmann::json inspect_text_encoder(const std::string& file, const InspectArgs& opt) {
    using nlohmann::json;
    const TextEncoderFiles te = open_text_encoder(file);
    const TextEncoderWeights& w = *te.weights;
    json r;
    r["file"] = file;
    r["model"] = "text encoder";
    r["kind"] = std::string(text_encoder_kind_key(te.kind));
    r["kind_name"] = std::string(text_encoder_kind_name(te.kind));
    r["layout"] = te.layout;
    json files = json::array();
    for (const auto& f : te.files) files.push_back(f.string());
    r["files"] = files;
    r["index"] = te.index ? json(te.index->string()) : json(nullptr);
    r["folder"] = te.folder.string();

    std::map<std::string, int> dtypes;
    std::uint64_t params = 0, stored_bytes = 0;
    std::int64_t scaled = 0;
    for (const auto& name : w.names()) {
        const Shape s = w.shape(name);
        const DType t = w.stored_dtype(name);
        ++dtypes[std::string(dtype_name(t)) + (w.fp8_scaled(name) ? " (scaled)" : "")];
        params += static_cast<std::uint64_t>(shape_numel(s));
        stored_bytes += static_cast<std::uint64_t>(shape_numel(s)) * dtype_size(t);
        scaled += w.fp8_scaled(name);
    }
    r["tensors"] = w.names().size();
    r["dtypes"] = dtypes;
    r["parameters"] = params;
    r["stored_bytes"] = stored_bytes;
    r["storage_dtype"] = std::string(dtype_name(te.storage_dtype));
    r["config"] = std::visit([](const auto& c) { return config_to_json(c); }, te.config);
    r["config_inferred"] = te.config_inferred;
    r["config_source"] = te.config_file ? te.config_file->string() : std::string("inferred from the weights' shapes");
    r["config_notes"] = te.config_notes;
    r["ignored"] = te.ignored;
    // Opening checked every shape against the config, so nothing is missing or out of place.
    r["missing"] = json::array();
    r["unexpected"] = json::array();
    r["wrong_shape"] = json::array();
    r["incomplete"] = json::array();
    r["fp8"] = {{"scaled", scaled}, {"unscaled", te.fp8_unscaled}, {"dequantised_to", std::string(dtype_name(w.fp8_dtype()))}};

    if (opt.list) {
        json list = json::array();
        for (const auto& name : w.names()) {
            json e = {{"name", name}, {"dtype", std::string(dtype_name(w.stored_dtype(name)))}, {"shape", w.shape(name)}};
            if (w.fp8_scaled(name)) e["fp8_scale"] = w.fp8_scale(name).to_vector();
            list.push_back(e);
        }
        r["list"] = list;
    }
    if (opt.verify) {
        std::uint64_t nonfinite = 0;
        std::vector<std::string> where;
        for (const auto& name : w.names()) {
            const Tensor t = w.get(name);
            std::uint64_t n = 0;
            for (float v : t.to_vector()) n += !std::isfinite(v);
            if (n > 0 && where.size() < 8) where.push_back(name);
            nonfinite += n;
        }
        check_mapped_inputs();
        r["verify"] = {{"crc", "n/a (safetensors has no checksums)"}, {"nonfinite", nonfinite}, {"nonfinite_in", where}};
    }
    return r;
}

inline void print_text_encoder(const nlohmann::json& r) {
    const auto line = [](const char* key, const std::string& value) { fmt::print("  {:<11}{}\n", key, value); };
    const auto i = [](const nlohmann::json& j, const char* k) { return j[k].get<std::int64_t>(); };
    const auto llama = [&](const nlohmann::json& c) {
        return fmt::format("Llama hidden {} = {} heads x {} ({} KV heads), {} layers, MLP {}, vocab {}, rms eps {:g}, rope theta {:g}",
                           i(c, "hidden_size"), i(c, "num_attention_heads"), i(c, "head_dim"), i(c, "num_key_value_heads"),
                           i(c, "num_hidden_layers"), i(c, "intermediate_size"), i(c, "vocab_size"),
                           c["rms_norm_eps"].get<double>(), c["rope_theta"].get<double>());
    };
    const auto clip = [&](const char* what, const nlohmann::json& c) {
        return fmt::format("{} hidden {} = {} heads x {}, {} layers, MLP {}", what, i(c, "hidden_size"),
                           i(c, "num_attention_heads"), i(c, "hidden_size") / std::max<std::int64_t>(i(c, "num_attention_heads"), 1),
                           i(c, "num_hidden_layers"), i(c, "intermediate_size"));
    };
    fmt::print("{}\n", r["file"].get<std::string>());
    line("model", "HunyuanVideo " + r["kind_name"].get<std::string>());
    std::string layout = r["layout"].get<std::string>();
    if (!r["index"].is_null())
        layout += fmt::format(" ({} shards with {})", r["files"].size(),
                              std::filesystem::path(r["index"].get<std::string>()).filename().string());
    line("layout", layout);
    std::string dt;
    for (const auto& [k, v] : r["dtypes"].items()) dt += fmt::format("{}{} {}", dt.empty() ? "" : ", ", k, v.get<int>());
    line("tensors", fmt::format("{} ({})", r["tensors"].get<std::size_t>(), dt));
    line("parameters", fmt::format("{} ({} stored)", with_commas(r["parameters"].get<std::uint64_t>()),
                                   human_bytes(r["stored_bytes"].get<std::uint64_t>())));
    const auto& c = r["config"];
    const std::string kind = r["kind"].get<std::string>();
    if (kind == "llama") line("config", llama(c));
    else if (kind == "clip_text")
        line("config", clip("CLIP text", c) + fmt::format(", vocab {}, {} positions", i(c, "vocab_size"), i(c, "max_position_embeddings")));
    else {
        line("config", llama(c["text_config"]));
        const auto& v = c["vision_config"];
        line("", clip("vision: CLIP", v) + fmt::format(", image {} / patch {}", i(v, "image_size"), i(v, "patch_size")));
    }
    // An inferred config says so in its first note.
    if (!r["config_inferred"].get<bool>()) line("", "(from " + r["config_source"].get<std::string>() + ")");
    for (const auto& n : r["config_notes"]) line("", "(" + n.get<std::string>() + ")");
    line("ignored", list_or_none(r["ignored"].get<std::vector<std::string>>(), 4));
    const auto& f8 = r["fp8"];
    if (f8["scaled"].get<std::int64_t>() > 0 || !f8["unscaled"].empty()) {
        std::string s = fmt::format("{} scaled float8_e4m3fn weights (ComfyUI scale_weight; dequantised to {})",
                                    f8["scaled"].get<std::int64_t>(), f8["dequantised_to"].get<std::string>());
        if (!f8["unscaled"].empty()) s += fmt::format("; {} without a scale (read as stored, scale 1)", f8["unscaled"].size());
        line("fp8", s);
    }
    if (r.contains("verify"))
        line("verify", fmt::format("{} non-finite values{}", r["verify"]["nonfinite"].get<std::uint64_t>(),
                                   r["verify"]["nonfinite_in"].empty() ? "" : " in " + r["verify"]["nonfinite_in"].dump()));
    if (r.contains("list"))
        for (const auto& e : r["list"])
            fmt::print("    {:<56} {:<14} {}\n", e["name"].get<std::string>(), e["dtype"].get<std::string>(), e["shape"].dump());
}

}  // namespace inspect_detail

// Returns the exit status: 0 when every file holds models without missing, unexpected or unreadable tensors.
inline int run_inspect(const InspectArgs& opt) {
    using nlohmann::json;
    bool ok = true;
    json all = json::array();
    for (const auto& file : opt.files) {
        try {
            if (!text_encoders_in(file).empty()) {
                json r = inspect_detail::inspect_text_encoder(file, opt);
                ok = inspect_detail::clean(r) && ok;
                if (!opt.json) inspect_detail::print_text_encoder(r);
                all.push_back(std::move(r));
                continue;
            }
            const auto models = Checkpoint::models(file);
            if (models.empty()) {
                // Let open() say what was looked for.
                Checkpoint::open(file);
            }
            for (const auto& m : models) {
                json r = inspect_detail::inspect_model(file, m, opt);
                ok = inspect_detail::clean(r) && ok;
                if (!opt.json) inspect_detail::print_model(r);
                all.push_back(std::move(r));
            }
        } catch (const Error& e) {
            ok = false;
            if (opt.json) all.push_back({{"file", file}, {"error", e.what()}});
            else fmt::print("{}\n  error      {}\n", file, e.what());
        }
    }
    if (opt.json) fmt::print("{}\n", all.dump(2));
    return ok ? 0 : 1;
}

inline CLI::App* add_inspect(CLI::App& app, InspectArgs& a) {
    CLI::App* sub = app.add_subcommand("inspect", "Describe checkpoints: layout, model, config, dtypes, missing tensors");
    sub->add_option("files", a.files, "checkpoint files or folders")->required();
    sub->add_flag("--list", a.list, "list every tensor with its dtype, shape and stored names");
    sub->add_flag("--verify", a.verify, "read everything: CRC-32 of .pt entries, non-finite values");
    sub->add_flag("--json", a.json, "print JSON instead of text");
    sub->add_option("--load-key", a.load_key, "the state-dict key of a .pt to prefer (official --load-key)")
        ->capture_default_str();
    return sub;
}

}  // namespace hyvideo::cli
