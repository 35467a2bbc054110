// libFuzzer target for the configuration readers: HYVideoConfig and AutoencoderKLCausal3DConfig from
// JSON (models/config.hpp, vae/config.hpp) and the config inference of checkpoint/checkpoint.hpp, which reads a
// config.json or a safetensors file's "config" metadata over the sizes the weights' shapes give (build
// and run: docs/fuzzing.md). Run it from the repository root: it reads tests/data.
//
// Property under test: for any bytes, every path either throws one hyvideo::Error whose message is a
// single non-empty line, or gives a configuration that
//   * validates, with a parameter count in [1, 1e12] computed without overflow;
//   * survives to_json / from_json unchanged;
//   * when inferred from a checkpoint's shapes, describes exactly those weights (its parameter count is
//     the weights' element count) and passes that checkpoint's check_dit_config / check_vae_config;
//   * when given by the user and passing check_dit_config / check_vae_config, describes exactly the
//     weights it was checked against.
// Anything else (another exception type, a sanitizer report, a signal, a timeout, an allocation beyond
// libFuzzer's -rss_limit_mb) is a bug.
//
// Each input goes through, as the JSON text it is:
//   1. HYVideoConfig::from_file and AutoencoderKLCausal3DConfig::from_file (the input as a file, as
//      --dit-config / --vae-config give it);
//   2. from_json of the parsed document and of its "dit" / "vae" parts (a pipeline config), checked
//      against two small checkpoints (the transformer_tiny and vae_tiny weights of tests/data);
//   3. infer_dit_config / infer_vae_config with the document as config.json over four
//      fixed sets of shapes (those checkpoints, and the released T/2 and 884-16c-hy manifests), once as
//      it is and once marked as diffusers' (so both key sets are read whatever the input says);
//   4. Checkpoint::open of a DiT and of a VAE with the input as the config.json beside them, and of a
//      DiT whose safetensors "config" metadata is the input (read_config_json: the file, the metadata
//      entry, its "dit" part).
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyvideo/checkpoint/checkpoint.hpp"
#include "hyvideo/io/safetensors.hpp"
#include "hyvideo/models/config.hpp"
#include "hyvideo/vae/config.hpp"
#include "memfd_input.hpp"

namespace fs = std::filesystem;
using hyvideo::AutoencoderKLCausal3DConfig;
using hyvideo::Checkpoint;
using hyvideo::HYVideoConfig;
using hyvideo::Shape;
using hyvideo::ShapeLookup;
using nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& what) { hyvideo_fuzz::fail("fuzz_config", what.c_str()); }

// A rejection: the message must be one clear line.
void rejected(const hyvideo::Error& e) {
    const std::string m = e.what();
    if (m.empty()) fail("an empty error message");
    if (m.find('\n') != std::string::npos || m.find('\r') != std::string::npos) fail("a multi-line error message: " + m);
}

const hyvideo_fuzz::MemfdInput& input() {
    static const hyvideo_fuzz::MemfdInput in("fuzz_config");
    return in;
}

using Manifest = std::map<std::string, Shape>;

struct ShapeSet {
    std::string name;
    Manifest shapes;
    std::int64_t numel = 0;
    ShapeLookup lookup() const {
        return [this](const std::string& n) -> std::optional<Shape> {
            const auto it = shapes.find(n);
            if (it == shapes.end()) return std::nullopt;
            return it->second;
        };
    }
};

ShapeSet shapes_of(std::string name, const Checkpoint& c) {
    ShapeSet s{std::move(name), {}, 0};
    for (const auto& n : c.weights().names()) s.shapes.emplace(n, c.weights().shape(n));
    for (const auto& [_, shape] : s.shapes) s.numel += hyvideo::shape_numel(shape);
    return s;
}

ShapeSet shapes_of(std::string name, const fs::path& manifest_json) {
    std::ifstream in(manifest_json);
    if (!in) fail("cannot read " + manifest_json.string() + " (run from the repository root)");
    ShapeSet s{std::move(name), {}, 0};
    const json manifest = json::parse(in);
    for (const auto& [n, shape] : manifest.at("tensors").items()) s.shapes.emplace(n, shape.get<Shape>());
    for (const auto& [_, shape] : s.shapes) s.numel += hyvideo::shape_numel(shape);
    return s;
}

// What every input is checked against, built once.
struct Fixed {
    std::optional<Checkpoint> dit, vae;  // the tiny checkpoints, opened from tests/data
    std::vector<ShapeSet> dits, vaes;    // [0]: the tiny checkpoint's, [1]: the released model's
    fs::path scratch;                    // files the input is written into
};

// A scratch directory of this process in /dev/shm. libFuzzer can end the process without running exit
// handlers, so directories of processes that no longer run are removed at start instead.
fs::path make_scratch() {
    const fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    const std::string prefix = "hyvideo_fuzz_config.";
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(base, ec)) {
        const std::string n = e.path().filename().string();
        if (!n.starts_with(prefix)) continue;
        const long pid = std::strtol(n.c_str() + prefix.size(), nullptr, 10);
        if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0) fs::remove_all(e.path(), ec);
    }
    const fs::path dir = base / (prefix + std::to_string(::getpid()));
    fs::create_directories(dir / "dit");
    fs::create_directories(dir / "vae");
    fs::create_directories(dir / "meta");
    return dir;
}

// A checkpoint of the model's anchor tensor alone: Checkpoint::open accepts it and reads the config
// beside it or in its metadata, and inference stops at the missing shapes. Whole checkpoints would
// reach the same inference as infer() below, at a hundred times the cost of parsing their headers.
void save_anchor(const fs::path& path, const char* anchor, const std::map<std::string, std::string>& metadata = {}) {
    hyvideo::save_safetensors(path, {{anchor, hyvideo::Tensor::zeros({1, 1, 1, 1, 1})}}, metadata);
}

const Fixed& fixed() {
    static const Fixed f = [] {
        Fixed x;
        const fs::path data = "tests/data";
        try {
            x.dit = Checkpoint::open(data / "checkpoints/official/transformers/mp_rank_00_model_states.pt");
            // The VAE's shapes without its config.json, which the fuzzed one replaces below.
            x.vae = Checkpoint::open(data / "checkpoints/diffusers/vae/diffusion_pytorch_model.safetensors");
            x.dits.push_back(shapes_of("transformer_tiny", *x.dit));
            x.dits.push_back(shapes_of("HYVideo-T/2-cfgdistill", data / "golden/manifest_dit_t2_cfgdistill.json"));
            x.vaes.push_back(shapes_of("vae_tiny", *x.vae));
            x.vaes.push_back(shapes_of("884-16c-hy", data / "golden/manifest_vae_884_16c.json"));
            x.scratch = make_scratch();
            save_anchor(x.scratch / "dit" / "dit.safetensors", "img_in.proj.weight");
            save_anchor(x.scratch / "vae" / "vae.safetensors", "decoder.conv_in.conv.weight");
        } catch (const hyvideo::Error& e) {
            fail(std::string("setup: ") + e.what() + " (run from the repository root)");
        }
        return x;
    }();
    return f;
}

void check_dit(const HYVideoConfig& c, const char* where) {
    try {
        c.validate();
        const std::int64_t n = c.parameter_count();
        if (n < 1 || n > 1'000'000'000'000) fail(std::string(where) + ": a parameter count out of bounds");
        if (c.head_dim() * c.heads_num != c.hidden_size) fail(std::string(where) + ": heads do not split hidden_size");
        if (c.mlp_hidden_dim() < 1) fail(std::string(where) + ": an empty MLP");
        if (HYVideoConfig::from_json(c.to_json()).to_json() != c.to_json()) fail(std::string(where) + ": to_json/from_json changed it");
    } catch (const hyvideo::Error& e) {
        fail(std::string(where) + ": an accepted DiT config does not validate or round-trip: " + e.what());
    }
}

void check_vae(const AutoencoderKLCausal3DConfig& c, const char* where) {
    try {
        c.validate();
        const std::int64_t n = c.parameter_count();
        if (n < 1 || n > 1'000'000'000'000) fail(std::string(where) + ": a parameter count out of bounds");
        for (std::size_t i = 0; i < c.block_out_channels.size(); ++i)
            for (auto s : c.sampling_factor(i))
                if (s != 1 && s != 2) fail(std::string(where) + ": a sampling factor other than 1 or 2");
        if (AutoencoderKLCausal3DConfig::from_json(c.to_json()).to_json() != c.to_json())
            fail(std::string(where) + ": to_json/from_json changed it");
    } catch (const hyvideo::Error& e) {
        fail(std::string(where) + ": an accepted VAE config does not validate or round-trip: " + e.what());
    }
}

// A user's config against the tiny checkpoint: refused with one line, or exactly its weights.
void check_given_dit(const HYVideoConfig& c) {
    try {
        fixed().dit->check_dit_config(c);
    } catch (const hyvideo::Error& e) {
        return rejected(e);
    }
    if (c.parameter_count() != fixed().dits[0].numel) fail("check_dit_config passed a config of other weights");
}

void check_given_vae(const AutoencoderKLCausal3DConfig& c) {
    try {
        fixed().vae->check_vae_config(c);
    } catch (const hyvideo::Error& e) {
        return rejected(e);
    }
    if (c.parameter_count() != fixed().vaes[0].numel) fail("check_vae_config passed a config of other weights");
}

void from_json(const json& j) {
    try {
        const HYVideoConfig c = HYVideoConfig::from_json(j);
        check_dit(c, "HYVideoConfig::from_json");
        check_given_dit(c);
    } catch (const hyvideo::Error& e) {
        rejected(e);
    }
    try {
        const AutoencoderKLCausal3DConfig c = AutoencoderKLCausal3DConfig::from_json(j);
        check_vae(c, "AutoencoderKLCausal3DConfig::from_json");
        check_given_vae(c);
    } catch (const hyvideo::Error& e) {
        rejected(e);
    }
}

void infer(const json& j) {
    for (std::size_t k = 0; k < fixed().dits.size(); ++k) {
        const ShapeSet& s = fixed().dits[k];
        std::optional<hyvideo::ConfigGuess<HYVideoConfig>> g;
        try {
            g = hyvideo::infer_dit_config(s.lookup(), &j);
        } catch (const hyvideo::Error& e) {
            rejected(e);
            continue;
        }
        check_dit(g->config, "infer_dit_config");
        if (g->config.parameter_count() != s.numel) fail("infer_dit_config: a config of other weights than " + s.name);
        if (k == 0) {
            try {
                fixed().dit->check_dit_config(g->config);
            } catch (const hyvideo::Error& e) {
                fail(std::string("check_dit_config refused the config inferred from the same weights: ") + e.what());
            }
        }
    }
    for (std::size_t k = 0; k < fixed().vaes.size(); ++k) {
        const ShapeSet& s = fixed().vaes[k];
        std::optional<hyvideo::ConfigGuess<AutoencoderKLCausal3DConfig>> g;
        try {
            g = hyvideo::infer_vae_config(s.lookup(), &j);
        } catch (const hyvideo::Error& e) {
            rejected(e);
            continue;
        }
        check_vae(g->config, "infer_vae_config");
        if (g->config.parameter_count() != s.numel) fail("infer_vae_config: a config of other weights than " + s.name);
        if (k == 0) {
            try {
                fixed().vae->check_vae_config(g->config);
            } catch (const hyvideo::Error& e) {
                fail(std::string("check_vae_config refused the config inferred from the same weights: ") + e.what());
            }
        }
    }
}

void write_file(const fs::path& p, const std::uint8_t* data, std::size_t size) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out) fail("cannot write " + p.string());
}

// The input as the config.json beside a checkpoint, and as a safetensors file's "config" metadata:
// what Checkpoint::open reads of them (read_config_json) before any inference.
void open_with_config(const std::uint8_t* data, std::size_t size) {
    const fs::path& dir = fixed().scratch;
    for (const char* kind : {"dit", "vae"}) {
        write_file(dir / kind / "config.json", data, size);
        try {
            const Checkpoint c = Checkpoint::open(dir / kind / (std::string(kind) + ".safetensors"));
            if (c.kind() == hyvideo::ModelKind::dit) (void)c.dit_config();
            else (void)c.vae_config();
            fail("config inference accepted a model of one tensor");
        } catch (const hyvideo::Error& e) {
            rejected(e);
        }
    }
    // Metadata is a string: the input is kept only when it is valid UTF-8, as the writer requires.
    try {
        save_anchor(dir / "meta" / "dit.safetensors", "img_in.proj.weight",
                    {{"config", std::string(reinterpret_cast<const char*>(data), size)}});
    } catch (const hyvideo::Error&) {
        return;
    }
    try {
        const Checkpoint c = Checkpoint::open(dir / "meta" / "dit.safetensors");
        (void)c.dit_config();
        fail("config inference accepted a model of one tensor");
    } catch (const hyvideo::Error& e) {
        rejected(e);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    (void)fixed();
    const std::string path = input().write(data, size);
    try {
        const HYVideoConfig c = HYVideoConfig::from_file(path);
        check_dit(c, "HYVideoConfig::from_file");
    } catch (const hyvideo::Error& e) {
        rejected(e);
    }
    try {
        const AutoencoderKLCausal3DConfig c = AutoencoderKLCausal3DConfig::from_file(path);
        check_vae(c, "AutoencoderKLCausal3DConfig::from_file");
    } catch (const hyvideo::Error& e) {
        rejected(e);
    }

    // nlohmann takes a NUL for the end of the input; from_file refuses such files, and so does this.
    if (std::memchr(data, 0, size) != nullptr) return 0;
    const json j = json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded()) {
        std::vector<const json*> docs{&j};
        for (const char* part : {"dit", "vae"})
            if (j.is_object() && j.contains(part) && j.at(part).is_object()) docs.push_back(&j.at(part));
        for (const json* d : docs) {
            from_json(*d);
            infer(*d);
            // The same keys read as diffusers' (is_diffusers_json looks for this key).
            if (d->is_object() && hyvideo::config_detail::within_depth(*d, hyvideo::config_detail::max_json_depth)) {
                json marked = *d;
                marked["_diffusers_version"] = "0.32.0";
                infer(marked);
            }
        }
    }
    open_with_config(data, size);
    return 0;
}
