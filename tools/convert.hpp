#pragma once
// `hyvideo convert IN OUT`: any checkpoint layout checkpoint/checkpoint.hpp reads, written as one safetensors
// file with the official names, optionally in another dtype or with the block linears in fp8.
//
//   hyvideo convert ckpts/hunyuan-video-t2v-720p/transformers dit_bf16.safetensors
//   hyvideo convert transformers/mp_rank_00_model_states.pt dit_fp8.safetensors --fp8
//   hyvideo convert hunyuanvideo-community/HunyuanVideo/transformer dit.safetensors --dtype bf16
//
// --dtype keep (default) writes every tensor as stored; f32 | bf16 | f16 casts every floating tensor
// (scaled fp8 weights are first dequantised as the official forward does, docs/model.md#fp8-weights).
// --fp8 stores every nn.Linear weight of the double/single blocks (the 320 layers listed there) in
// float8_e4m3fn with the reference's per-layer scale max|W|/448, computed in the weight's dtype (after
// --dtype), and writes that scale beside it as `<layer>.fp8_scale` (a 0-d float32); layers already in
// fp8 keep their scale. hyvideo reads such files back with the scales applied; other tools see the
// scales as extra tensors.
//
// The output is streamed: the header is computed from shapes and dtypes alone, then each tensor is
// read (a view of the mapped input, or one assembled tensor), converted and written before the next,
// so memory stays at about one tensor beyond the mapped input however large the model. The file
// appears only when complete (written to a temporary name and renamed), so a failed conversion
// leaves nothing behind. The model's config (config.json, or what the weights determine) goes into
// the metadata as "config", where checkpoint/checkpoint.hpp finds it again.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "hyvideo/checkpoint/checkpoint.hpp"
#include "hyvideo/io/atomic_file.hpp"
#include "hyvideo/io/mapped_file.hpp"
#include "hyvideo/io/safetensors.hpp"

namespace hyvideo::cli {

// ---- streaming safetensors writer ------------------------------------------------------------------------

// One tensor to write: its header entry, and how to produce its data when its turn comes.
struct PendingTensor {
    std::string name;
    DType dtype;
    Shape shape;
    std::function<Tensor()> produce;
};

// save_safetensors' format (8-byte header length, JSON header padded with spaces to 8 bytes, data in
// order), but each tensor is produced just before it is written and released after.
inline void write_safetensors_streaming(const std::filesystem::path& path, const std::vector<PendingTensor>& tensors,
                                        const std::map<std::string, std::string>& metadata) {
    nlohmann::json header = nlohmann::json::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;
    std::uint64_t offset = 0;
    for (const auto& t : tensors) {
        HYVIDEO_CHECK(!header.contains(t.name), path.string(), ": the tensor \"", t.name, "\" would be written twice");
        const std::uint64_t nbytes = static_cast<std::uint64_t>(shape_numel(t.shape)) * dtype_size(t.dtype);
        header[t.name] = {{"dtype", std::string(safetensors_name(t.dtype))},
                          {"shape", t.shape},
                          {"data_offsets", {offset, offset + nbytes}}};
        offset += nbytes;
    }
    std::string text;
    try {
        text = header.dump();
    } catch (const nlohmann::json::exception& e) {
        throw Error(hyvideo::detail::concat(path.string(), ": a tensor name or metadata value is not valid UTF-8: ", e.what()));
    }
    text.append((8 - text.size() % 8) % 8, ' ');
    unsigned char length[8];
    for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(text.size()) >> (8 * i));

    hyvideo::AtomicFile out(path);
    out.write(length, sizeof length);
    out.write(text.data(), text.size());
    for (const auto& t : tensors) {
        const Tensor data = t.produce().contiguous();
        HYVIDEO_CHECK(data.dtype() == t.dtype && data.shape() == t.shape, path.string(), ": the tensor \"", t.name,
                      "\" came out ", dtype_name(data.dtype()), " ", shape_str(data.shape()), " instead of ",
                      dtype_name(t.dtype), " ", shape_str(t.shape));
        // An input truncated by another program meanwhile reads as zeros: stop before writing them.
        check_mapped_inputs();
        if (data.nbytes() > 0) out.write(data.raw_data(), data.nbytes());
    }
    out.commit();
}

// ---- convert -------------------------------------------------------------------------------------------

struct ConvertArgs {
    std::string input, output;
    std::string model;           // "", "dit" or "vae": which model, when the input holds both
    std::string prefix;          // the model's name prefix, when detection is ambiguous
    std::string load_key = "module";
    std::string fp8_map;         // the scale map of an fp8 .pt, when not beside it under the usual name
    std::string dtype = "keep";  // keep | f32 | bf16 | f16
    bool fp8 = false;
    bool drop_unexpected = false;
};

inline std::optional<DType> parse_compute_dtype(const std::string& s) {
    if (s == "keep") return std::nullopt;
    if (s == "f32" || s == "float32" || s == "fp32") return DType::f32;
    if (s == "bf16" || s == "bfloat16") return DType::bf16;
    if (s == "f16" || s == "float16" || s == "fp16" || s == "half") return DType::f16;
    throw Error("--dtype " + s + ": expected keep, f32, bf16 or f16");
}

inline CheckpointOptions checkpoint_options(const std::string& model, const std::string& prefix,
                                            const std::string& load_key, const std::string& fp8_map) {
    CheckpointOptions o;
    if (model == "dit") o.kind = ModelKind::dit;
    else if (model == "vae") o.kind = ModelKind::vae;
    else if (!model.empty()) throw Error("--model " + model + ": expected dit or vae");
    if (!prefix.empty()) o.prefix = prefix;
    o.load_key = load_key;
    if (!fp8_map.empty()) o.fp8_map = fp8_map;
    return o;
}

// Returns the process exit status; throws hyvideo::Error for unusable input (main prints it).
inline int run_convert(const ConvertArgs& opt) {
    const std::optional<DType> cast = parse_compute_dtype(opt.dtype);
    // The output is checked as a real write would, before the conversion: a FIFO, a device or an unwritable
    // directory is found now, not after minutes of work.
    AtomicFile::check_target(opt.output);
    const Checkpoint ckpt = Checkpoint::open(opt.input, checkpoint_options(opt.model, opt.prefix, opt.load_key, opt.fp8_map));

    if (!ckpt.incomplete().empty())
        throw Error(hyvideo::detail::concat(opt.input, ": ", ckpt.incomplete().size(), " official tensors cannot be assembled, e.g. ",
                                   ckpt.incomplete().front(), " (see hyvideo inspect)"));
    const auto& unexpected = ckpt.unexpected();
    if (!unexpected.empty() && !opt.drop_unexpected)
        throw Error(hyvideo::detail::concat(opt.input, ": ", unexpected.size(), " tensors have no official name, e.g. ",
                                   unexpected.front(), "; --drop-unexpected leaves them out"));

    std::vector<PendingTensor> plan;
    std::map<std::string, int> written;  // "bfloat16" -> count, for the summary
    std::size_t quantised = 0, scales = 0;
    for (const auto& name : ckpt.weights().names()) {
        if (std::find(unexpected.begin(), unexpected.end(), name) != unexpected.end()) continue;
        const StoredInfo& info = ckpt.stored(name);
        HYVIDEO_CHECK(info.supported, opt.input, ": tensor ", name, " has dtype ", info.dtype_name,
                      ", which hyvideo cannot convert");
        const Shape shape = info.shape;
        const bool floating = is_floating(info.dtype);
        const bool is_f8 = info.dtype == DType::f8e4m3;
        const bool scaled = ckpt.fp8_scaled(name);
        const std::string module = name.substr(0, name.size() - std::string_view(".weight").size());

        if (is_f8 && (!cast || opt.fp8)) {
            // fp8 as stored: the weight's bytes, and its scale (if any) as a float32 beside it.
            plan.push_back({name, DType::f8e4m3, shape, [&ckpt, name] { return ckpt.get_stored(name); }});
            if (scaled) {
                const Tensor& s = ckpt.fp8_scale(name);
                plan.push_back({module + std::string(fp8_scale_suffix), DType::f32, s.shape(),
                                [s] { return s.dtype() == DType::f32 ? s : s.to(DType::f32); }});
                ++scales;
            }
            continue;
        }
        const DType target = floating && cast ? *cast : (is_f8 ? DType::bf16 : info.dtype);
        if (opt.fp8 && floating && is_fp8_layer(name, shape)) {
            // The scale is written with the float32 tensors, ahead of the weight (for alignment), so it
            // is computed on its own; quantising the weight computes it again, identically.
            const auto as_target = [&ckpt, name, target] {
                const Tensor t = ckpt.weights().get(name);
                return t.dtype() == target ? t : t.to(target);
            };
            plan.push_back({name, DType::f8e4m3, shape, [as_target] { return quantize_fp8(as_target()).weight; }});
            plan.push_back({module + std::string(fp8_scale_suffix), DType::f32, Shape{},
                            [as_target] { return Tensor::from_vector<float>({}, {fp8_scale_of(as_target())}); }});
            ++quantised;
            ++scales;
            continue;
        }
        plan.push_back({name, target, shape, [&ckpt, name, target] {
                            const Tensor t = ckpt.weights().get(name);
                            return t.dtype() == target ? t : t.to(target);
                        }});
    }
    // Wider dtypes first keeps every tensor aligned to its element size in the mapped output.
    std::stable_sort(plan.begin(), plan.end(),
                     [](const PendingTensor& a, const PendingTensor& b) { return dtype_size(a.dtype) > dtype_size(b.dtype); });
    std::uint64_t bytes = 0;
    for (const auto& t : plan) {
        ++written[std::string(dtype_name(t.dtype))];
        bytes += static_cast<std::uint64_t>(shape_numel(t.shape)) * dtype_size(t.dtype);
    }

    std::map<std::string, std::string> meta{{"format", "pt"},
                                            {"hyvideo.model", std::string(model_kind_name(ckpt.kind()))},
                                            {"hyvideo.source", std::filesystem::path(opt.input).filename().string()},
                                            {"hyvideo.source_layout", ckpt.layout()}};
    if (quantised + scales > 0)
        meta["hyvideo.fp8"] = "float8_e4m3fn block linears; W = bf16(bf16(W8) * bf16(<layer>.fp8_scale)) (docs/model.md#fp8-weights)";
    try {
        if (ckpt.kind() == ModelKind::dit) {
            const auto g = ckpt.dit_config();
            if (g.complete) meta["config"] = g.config.to_json().dump();
        } else {
            const auto g = ckpt.vae_config();
            if (g.complete) meta["config"] = g.config.to_json().dump();
        }
    } catch (const Error& e) {
        // A model whose config cannot be inferred converts all the same; it just carries none, and says why.
        fmt::print("note: the output carries no config: {}\n", e.what());
    }
    write_safetensors_streaming(opt.output, plan, meta);

    std::string summary;
    for (const auto& [dt, n] : written) summary += fmt::format("{}{} {}", summary.empty() ? "" : ", ", dt, n);
    fmt::print("{} -> {}\n  read   {}\n  wrote  {} tensors ({}), {:.2f} MB{}\n", opt.input, opt.output, ckpt.layout(),
               plan.size(), summary, static_cast<double>(bytes) / 1e6,
               quantised ? fmt::format("; {} layers quantised to fp8", quantised) : std::string());
    if (!unexpected.empty()) fmt::print("  left out {} tensors without an official name\n", unexpected.size());
    if (!ckpt.fp8_unused_scales().empty())
        fmt::print("  left out {} fp8 scales that belong to no float8 weight\n", ckpt.fp8_unused_scales().size());
    return 0;
}

inline CLI::App* add_convert(CLI::App& app, ConvertArgs& a) {
    CLI::App* sub = app.add_subcommand("convert", "Convert a checkpoint (any layout) to safetensors with official names");
    sub->add_option("input", a.input, "checkpoint file or folder (.pt, .safetensors, index .json, diffusers folder)")
        ->required();
    sub->add_option("output", a.output, "the safetensors file to write")->required();
    sub->add_option("--dtype", a.dtype, "keep, f32, bf16 or f16 for every floating tensor")->capture_default_str();
    sub->add_flag("--fp8", a.fp8, "store the double/single-block linear weights in float8_e4m3fn with per-layer scales");
    sub->add_option("--model", a.model, "dit or vae, when the input holds both");
    sub->add_option("--prefix", a.prefix, "the model's name prefix in the input, when detection is ambiguous");
    sub->add_option("--load-key", a.load_key, "the state-dict key of a .pt to prefer (official --load-key)")
        ->capture_default_str();
    sub->add_option("--fp8-map", a.fp8_map, "the scale map of an fp8 .pt (default: <file>_map.pt beside it)");
    sub->add_flag("--drop-unexpected", a.drop_unexpected, "leave out tensors that have no official name");
    return sub;
}

}  // namespace hyvideo::cli
