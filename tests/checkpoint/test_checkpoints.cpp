// Tests of the checkpoint readers: io/zip.hpp, io/torch_pickle.hpp, io/pt_file.hpp, checkpoint/diffusers_names.hpp,
// checkpoint/checkpoint.hpp, and the `inspect` and `convert` commands.
//
// The acceptance tests load the tiny golden models (transformer_tiny, vae_tiny) from every layout in
// tests/data/checkpoints/ (written by tools/make_test_checkpoints.py with torch) and require:
//   * each official tensor equal, bit for bit, to the fixture's weight rounded to the stored dtype (so
//     the diffusers q/k/v concatenations, the linear1 split and the final modulation's swap are exact);
//   * the model's outputs identical to those of the same model loaded from the fixture's weights
//     rounded in memory, identical across layouts that store the same dtype, and within the stored
//     dtype's rounding of the fixture's reference outputs;
//   * fp8: every dequantised weight bit-identical to torch's own bf16(bf16(W8)·bf16(scale)) (CRC-32s
//     in expected.json), and outputs within the quantisation error;
//   * f32 files (the ComfyUI layouts, written here) reproduce the fixture to the golden 1e-4.
// Then one test per validation rule of the ZIP and pickle readers, each on a hand-made archive.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../tools/convert.hpp"
#include "../../tools/inspect.hpp"
#include "../support/temp_dir.hpp"
#include "../tools/cli_helpers.hpp"
#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/checkpoint/checkpoint.hpp"
#include "hyvideo/checkpoint/diffusers_names.hpp"
#include "hyvideo/golden/cases/transformer.hpp"
#include "hyvideo/golden/compare.hpp"
#include "hyvideo/golden/fixture.hpp"
#include "hyvideo/io/pt_file.hpp"
#include "hyvideo/io/zip.hpp"
#include "hyvideo/models/hunyuan_video.hpp"
#include "hyvideo/vae/autoencoder_kl_causal_3d.hpp"

#ifndef HYVIDEO_TEST_DATA_DIR
#error "HYVIDEO_TEST_DATA_DIR must name the tests/data directory"
#endif

namespace fs = std::filesystem;
using namespace hyvideo;

namespace {

const fs::path kData = fs::path(HYVIDEO_TEST_DATA_DIR);
const fs::path kCkpt = kData / "checkpoints";
const fs::path kOfficialDit = kCkpt / "official" / "transformers" / "mp_rank_00_model_states.pt";
const fs::path kOfficialFp8 = kCkpt / "official" / "transformers" / "mp_rank_00_model_states_fp8.pt";
const fs::path kOfficialVae = kCkpt / "official" / "vae";
const fs::path kDiffusersDit = kCkpt / "diffusers" / "transformer";
const fs::path kDiffusersVae = kCkpt / "diffusers" / "vae";

const golden::Fixture& dit_fixture() {
    static const golden::Fixture f(kData / "golden" / "transformer_tiny.safetensors");
    return f;
}
const golden::Fixture& vae_fixture() {
    static const golden::Fixture f(kData / "golden" / "vae_tiny.safetensors");
    return f;
}
const nlohmann::json& expected() {
    static const nlohmann::json j = [] {
        std::ifstream in(kCkpt / "expected.json");
        REQUIRE(in);
        return nlohmann::json::parse(in);
    }();
    return j;
}

using hyvideo::test::TempDir;

void write_bytes(const fs::path& path, std::string_view bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}
std::string read_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

bool same_bytes(const Tensor& a, const Tensor& b) {
    if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
    const Tensor ca = a.contiguous(), cb = b.contiguous();
    return ca.nbytes() == cb.nbytes() && std::memcmp(ca.raw_data(), cb.raw_data(), ca.nbytes()) == 0;
}

std::uint32_t crc_of(const Tensor& t) {
    const Tensor c = t.contiguous();
    return crc32(c.raw_data(), c.nbytes());
}

// Another source's tensors rounded to `dtype`: "the fixture's weights as a bf16 file would hold them".
class CastSource final : public WeightSource {
public:
    CastSource(const WeightSource& inner, DType dtype) : inner_(&inner), dtype_(dtype) {}
    bool contains(const std::string& n) const override { return inner_->contains(n); }
    std::vector<std::string> names() const override { return inner_->names(); }
    Tensor get(const std::string& n) const override { return inner_->get(n).to(dtype_); }

private:
    const WeightSource* inner_;
    DType dtype_;
};

// A name -> tensor map as a WeightSource.
class MapSource final : public WeightSource {
public:
    std::map<std::string, Tensor> tensors;
    bool contains(const std::string& n) const override { return tensors.contains(n); }
    std::vector<std::string> names() const override {
        std::vector<std::string> out;
        for (auto& [n, _] : tensors) out.push_back(n);
        return out;
    }
    Tensor get(const std::string& n) const override { return tensors.at(n); }
};

// transformer_tiny's forward from weights in `w` (strict: every tensor used, none left over).
Tensor run_dit(const WeightSource& w) {
    const golden::Fixture& f = dit_fixture();
    HYVideoDiffusionTransformer<cpu> model(HYVideoConfig::from_json(f.config()));
    load_weights_strict(model, w);
    return model.forward(golden::dit_inputs<cpu>(f, f.input("x"), f.input("t"), f.input("guidance")));
}

struct VaeOutputs {
    Tensor mean, logvar, decoded;
};
VaeOutputs run_vae(const WeightSource& w) {
    const golden::Fixture& f = vae_fixture();
    AutoencoderKLCausal3D<cpu> vae(AutoencoderKLCausal3DConfig::from_json(f.config()));
    load_weights_strict(vae, w);
    const auto posterior = vae.encode(f.input("video"));
    return {posterior.mean, posterior.logvar, vae.decode(f.input("z"))};
}

CheckpointOptions kind(ModelKind k) {
    CheckpointOptions o;
    o.kind = k;
    return o;
}

double rel_l2(const Tensor& a, const Tensor& ref) { return golden::compare(a, ref).rel_l2; }

// Every official tensor of `c` equals the fixture's weight rounded to `dtype`, bit for bit.
void check_weights_equal(const Checkpoint& c, const WeightSource& fixture, DType dtype) {
    CHECK(c.weights().names() == fixture.names());
    for (const auto& name : fixture.names()) {
        INFO(name);
        REQUIRE(c.weights().contains(name));
        CHECK(same_bytes(c.weights().get(name), fixture.get(name).to(dtype)));
    }
}

// ---- hand-made archives -------------------------------------------------------------------------------

void put16(std::string& s, std::uint32_t v) {
    s += static_cast<char>(v & 0xFF);
    s += static_cast<char>((v >> 8) & 0xFF);
}
void put32(std::string& s, std::uint32_t v) {
    put16(s, v & 0xFFFF);
    put16(s, v >> 16);
}
void put64(std::string& s, std::uint64_t v) {
    put32(s, static_cast<std::uint32_t>(v));
    put32(s, static_cast<std::uint32_t>(v >> 32));
}

struct ZipEntrySpec {
    ZipEntrySpec(std::string n, std::string d, std::uint16_t m = 0) : name(std::move(n)), data(std::move(d)), method(m) {}
    std::string name, data;
    std::uint16_t method = 0;
    std::uint16_t flags = 0;
    std::string local_name;  // empty: the same as name
};

struct ZipSpec {
    std::vector<ZipEntrySpec> entries;
    bool zip64 = false;  // ZIP64 end records and extra fields on every entry, as for a > 4 GiB archive
    std::string comment;
};

// A ZIP archive laid out like torch.save's: stored entries, data aligned to 64 bytes with an extra field.
std::string build_zip(const ZipSpec& spec) {
    std::string out, central;
    for (const auto& e : spec.entries) {
        const std::string& local_name = e.local_name.empty() ? e.name : e.local_name;
        const std::uint64_t header = out.size();
        std::size_t pad = (64 - (header + 30 + local_name.size() + 4) % 64) % 64;
        const std::uint32_t crc = crc32(e.data.data(), e.data.size());
        put32(out, 0x04034b50);
        put16(out, 20);
        put16(out, e.flags);
        put16(out, e.method);
        put32(out, 0);  // time, date
        put32(out, crc);
        put32(out, static_cast<std::uint32_t>(e.data.size()));
        put32(out, static_cast<std::uint32_t>(e.data.size()));
        put16(out, static_cast<std::uint32_t>(local_name.size()));
        put16(out, static_cast<std::uint32_t>(pad + 4));
        out += local_name;
        put16(out, 0x4246);  // "FB", torch's padding field
        put16(out, static_cast<std::uint32_t>(pad));
        out.append(pad, 'Z');
        out += e.data;

        put32(central, 0x02014b50);
        put16(central, 45);
        put16(central, 20);
        put16(central, e.flags);
        put16(central, e.method);
        put32(central, 0);
        put32(central, crc);
        put32(central, spec.zip64 ? 0xFFFFFFFFu : static_cast<std::uint32_t>(e.data.size()));
        put32(central, spec.zip64 ? 0xFFFFFFFFu : static_cast<std::uint32_t>(e.data.size()));
        put16(central, static_cast<std::uint32_t>(e.name.size()));
        put16(central, spec.zip64 ? 28 : 0);
        put16(central, 0);  // comment
        put16(central, 0);  // disk
        put16(central, 0);
        put32(central, 0);
        put32(central, spec.zip64 ? 0xFFFFFFFFu : static_cast<std::uint32_t>(header));
        central += e.name;
        if (spec.zip64) {
            put16(central, 0x0001);
            put16(central, 24);
            put64(central, e.data.size());
            put64(central, e.data.size());
            put64(central, header);
        }
    }
    const std::uint64_t cd_offset = out.size(), n = spec.entries.size();
    out += central;
    if (spec.zip64) {
        const std::uint64_t rec = out.size();
        put32(out, 0x06064b50);
        put64(out, 44);
        put16(out, 45);
        put16(out, 45);
        put32(out, 0);
        put32(out, 0);
        put64(out, n);
        put64(out, n);
        put64(out, central.size());
        put64(out, cd_offset);
        put32(out, 0x07064b50);
        put32(out, 0);
        put64(out, rec);
        put32(out, 1);
    }
    put32(out, 0x06054b50);
    put16(out, 0);
    put16(out, 0);
    put16(out, spec.zip64 ? 0xFFFF : static_cast<std::uint32_t>(n));
    put16(out, spec.zip64 ? 0xFFFF : static_cast<std::uint32_t>(n));
    put32(out, spec.zip64 ? 0xFFFFFFFFu : static_cast<std::uint32_t>(central.size()));
    put32(out, spec.zip64 ? 0xFFFFFFFFu : static_cast<std::uint32_t>(cd_offset));
    put16(out, static_cast<std::uint32_t>(spec.comment.size()));
    out += spec.comment;
    return out;
}

// Pickle opcodes in the protocol-2 form torch.save writes.
struct Pickle {
    std::string b = "\x80\x02";
    Pickle& op(std::string_view s) {
        b += s;
        return *this;
    }
    Pickle& str(std::string_view s) {
        b += 'X';
        put32(b, static_cast<std::uint32_t>(s.size()));
        b += s;
        return *this;
    }
    Pickle& global(std::string_view module, std::string_view name) {
        b += 'c';
        b += module;
        b += '\n';
        b += name;
        b += '\n';
        return *this;
    }
    Pickle& integer(std::int32_t v) {
        b += 'J';
        put32(b, static_cast<std::uint32_t>(v));
        return *this;
    }
    Pickle& ints(const Shape& s) {
        b += '(';
        for (auto v : s) integer(static_cast<std::int32_t>(v));
        b += 't';
        return *this;
    }
    // _rebuild_tensor_v2(('storage', torch.<cls>, key, 'cpu', numel), offset, size, stride, False, OrderedDict())
    Pickle& tensor(std::string_view key, std::string_view cls, std::int32_t numel, std::int32_t offset, const Shape& size,
                   const Shape& stride) {
        global("torch._utils", "_rebuild_tensor_v2").op("((").str("storage").global("torch", cls).str(key).str("cpu");
        integer(numel).op("tQ").integer(offset).ints(size).ints(stride);
        op("\x89").global("collections", "OrderedDict").op(")R").op("tR");
        return *this;
    }
    std::string done() { return b + "."; }
};

// A torch.save-like archive: <root>/data.pkl, <root>/data/<key> for each storage, <root>/byteorder.
std::string pt_archive(const std::string& pickle, const std::map<std::string, std::string>& storages,
                       const std::string& root = "archive") {
    ZipSpec z;
    z.entries.push_back({root + "/data.pkl", pickle});
    z.entries.push_back({root + "/byteorder", "little"});
    for (const auto& [key, data] : storages) z.entries.push_back({root + "/data/" + key, data});
    return build_zip(z);
}

std::string floats(std::initializer_list<float> v) {
    std::string s(v.size() * 4, '\0');
    std::memcpy(s.data(), std::data(v), s.size());
    return s;
}

// A one-tensor state dict {"w": tensor} in an archive.
std::string one_tensor_pt(std::string_view cls, std::int32_t numel, std::int32_t offset, const Shape& size,
                          const Shape& stride, const std::string& storage) {
    return pt_archive(Pickle().op("}(").str("w").tensor("0", cls, numel, offset, size, stride).op("u").done(),
                      {{"0", storage}});
}

std::string open_error(const fs::path& p) {
    try {
        (void)TorchFile::open(p);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

// Writes bytes to a file and returns the error TorchFile::open gives for it ("" if none).
std::string pt_error(const TempDir& dir, const std::string& bytes) {
    const fs::path p = dir / "t.pt";
    write_bytes(p, bytes);
    return open_error(p);
}

using Run = hyvideo::test::CliRun;
using hyvideo::test::run_cli;

}  // namespace

// ================================ the layouts a user downloads ================================

TEST_CASE("checkpoints: the official bf16 .pt loads the fixture's weights and reproduces its outputs") {
    const Checkpoint c = Checkpoint::open(kOfficialDit.parent_path(), kind(ModelKind::dit));
    CHECK(c.container() == Container::torch_zip);
    CHECK(c.scheme() == NameScheme::official);
    CHECK(c.prefix() == "module.");
    CHECK(c.files() == std::vector<fs::path>{kOfficialDit});
    CHECK(c.unexpected().empty());
    check_weights_equal(c, dit_fixture().params(), DType::bf16);

    // Views of the mapped file, not copies: two reads give the same memory.
    const Tensor a = c.weights().get("double_blocks.0.img_attn_qkv.weight");
    CHECK(a.raw_data() == c.weights().get("double_blocks.0.img_attn_qkv.weight").raw_data());
    CHECK(reinterpret_cast<std::uintptr_t>(a.raw_data()) % 64 == 0);  // torch.save's storage alignment

    const Tensor out = run_dit(c.weights());
    const Tensor ref = run_dit(CastSource(dit_fixture().params(), DType::bf16));
    CHECK(same_bytes(out, ref));
    const double err = rel_l2(out, dit_fixture().output("x"));
    MESSAGE("bf16 weights vs the f32 reference output: rel L2 ", err);
    CHECK(err < 1e-2);
}

TEST_CASE("checkpoints: the official fp8 .pt dequantises exactly as torch and runs within the quantisation error") {
    const Checkpoint c = Checkpoint::open(kOfficialFp8, kind(ModelKind::dit));
    REQUIRE(c.fp8_map_file());
    CHECK(c.fp8_map_file()->filename() == "mp_rank_00_model_states_fp8_map.pt");
    CHECK(c.fp8_unscaled().empty());
    CHECK(c.fp8_unused_scales().empty());
    const auto& crcs = expected().at("fp8_dequant_bf16_crc32");
    std::size_t scaled = 0;
    const WeightSource& fixture = dit_fixture().params();
    for (const auto& name : fixture.names()) {
        INFO(name);
        const Shape shape = fixture.get(name).shape();
        const Tensor t = c.weights().get(name);
        CHECK(t.dtype() == DType::bf16);
        if (is_fp8_layer(name, shape)) {
            ++scaled;
            REQUIRE(c.fp8_scaled(name));
            CHECK(c.stored(name).dtype == DType::f8e4m3);
            // torch's own bf16(bf16(W8) * bf16(scale)), computed by the generator.
            CHECK(crc_of(t) == crcs.at(name.substr(0, name.size() - 7)).get<std::uint32_t>());
        } else {
            CHECK_FALSE(c.fp8_scaled(name));
            CHECK(same_bytes(t, fixture.get(name).to(DType::bf16)));
        }
    }
    CHECK(scaled == crcs.size());
    CHECK(scaled == 26);  // 2 double blocks × 10 linears + 2 single blocks × 3

    // The reference dequantisation, built independently from the stored bytes: the same outputs.
    MapSource reference;
    for (const auto& name : c.weights().names()) {
        if (!c.fp8_scaled(name)) {
            reference.tensors[name] = c.weights().get(name);
            continue;
        }
        const Tensor w8 = c.get_stored(name);
        const float s = bf16_to_f32(f32_to_bf16(c.fp8_scale(name).item()));
        std::vector<float> v = w8.to_vector();
        for (float& x : v) x = bf16_to_f32(f32_to_bf16(bf16_to_f32(f32_to_bf16(x)) * s));
        reference.tensors[name] = Tensor::from_vector(w8.shape(), v).to(DType::bf16);
    }
    const Tensor out = run_dit(c.weights());
    CHECK(same_bytes(out, run_dit(reference)));
    const double err = rel_l2(out, dit_fixture().output("x"));
    MESSAGE("fp8 weights vs the f32 reference output: rel L2 ", err);
    CHECK(err < 5e-2);
}

TEST_CASE("checkpoints: streamed blocks give the loaded model's outputs bit for bit, holding no block weights") {
    const golden::Fixture& f = dit_fixture();
    const HYVideoConfig cfg = HYVideoConfig::from_json(f.config());
    const DiTInputs in = golden::dit_inputs<cpu>(f, f.input("x"), f.input("t"), f.input("guidance"));
    for (const fs::path& file : {kOfficialDit, kOfficialFp8, kDiffusersDit})
        for (const DType matmul : {DType::f32, DType::bf16}) {
            INFO(file.filename().string(), " ", dtype_name(matmul));
            const Checkpoint c = Checkpoint::open(file, kind(ModelKind::dit));
            HYVideoDiffusionTransformer<cpu> loaded(cfg), streamed(cfg);
            load_weights_strict(loaded, c.weights(), "", matmul);
            load_checkpoint_streamed(streamed, file, {}, matmul);
            REQUIRE(streamed.streamed);
            const Tensor a = loaded.forward(in), b = streamed.forward(in);
            CHECK(same_bytes(a, b));
            CHECK(streamed.streamed->times.reading > 0);
            CHECK(streamed.streamed->times.waiting == streamed.streamed->times.reading);  // read in turn
            // The staged forward's TeaCache signal reads the first block's img_mod from the stream alike.
            const RopeTables rope = loaded.rope_tables(in.x.shape());
            CHECK(same_bytes(loaded.first_block_modulated_input(loaded.embed(in, rope)),
                             streamed.first_block_modulated_input(streamed.embed(in, rope))));
            // The blocks stay empty: the forward read each one from the file and let it go.
            std::size_t held = 0, outside = 0, outside_ready = 0;
            streamed.parameters("", [&](const std::string& name, const Shape&, Tensor& t) {
                if (name.find("_blocks.") != std::string::npos) {
                    held += t.defined();
                } else {
                    ++outside;
                    outside_ready += t.defined() && t.dtype() == (t.dim() >= 2 ? matmul : DType::f32);
                }
            });
            CHECK(held == 0);
            CHECK(outside_ready == outside);  // everything else loaded, in its compute dtype
            // set_matmul_dtype reaches the streamed blocks too.
            set_matmul_dtype(streamed, DType::bf16);
            set_matmul_dtype(loaded, DType::bf16);
            CHECK(same_bytes(loaded.forward(in), streamed.forward(in)));
            // Loading every weight ends the streaming.
            load_weights(streamed, c.weights());
            CHECK_FALSE(streamed.streamed);
        }
    // A checkpoint that does not match is refused before anything is loaded.
    HYVideoConfig other = cfg;
    other.mm_single_blocks_depth = 3;
    HYVideoDiffusionTransformer<cpu> wrong(other);
    CHECK_THROWS_WITH_AS(load_checkpoint_streamed(wrong, kOfficialDit), doctest::Contains("single_blocks.2"), Error);
    CHECK_FALSE(wrong.streamed);
}

namespace {
// A source that forwards to another and counts the release_pages calls.
struct CountingSource final : WeightSource {
    explicit CountingSource(std::shared_ptr<const WeightSource> s) : inner(std::move(s)) {}
    bool contains(const std::string& n) const override { return inner->contains(n); }
    Tensor get(const std::string& n) const override { return inner->get(n); }
    std::vector<std::string> names() const override { return inner->names(); }
    Shape shape(const std::string& n) const override { return inner->shape(n); }
    void release_pages() const override {
        ++released;
        inner->release_pages();
    }
    std::shared_ptr<const WeightSource> inner;
    mutable int released = 0;
};
}  // namespace

TEST_CASE("checkpoints: a streamed forward releases the mapped pages after every block, same outputs") {
    const golden::Fixture& f = dit_fixture();
    const HYVideoConfig cfg = HYVideoConfig::from_json(f.config());
    const DiTInputs in = golden::dit_inputs<cpu>(f, f.input("x"), f.input("t"), f.input("guidance"));
    const Checkpoint c = Checkpoint::open(kOfficialDit, kind(ModelKind::dit));
    const auto counting = std::make_shared<CountingSource>(c.shared_weights());
    HYVideoDiffusionTransformer<cpu> loaded(cfg), streamed(cfg);
    load_weights_strict(loaded, c.weights());
    streamed.load_streamed(counting);
    CHECK(same_bytes(loaded.forward(in), streamed.forward(in)));
    CHECK(counting->released == cfg.mm_double_blocks_depth + cfg.mm_single_blocks_depth);
    CHECK(same_bytes(loaded.forward(in), streamed.forward(in)));  // and again, from the released file
}

namespace {
// A source whose tensors under `failing` cannot be read.
struct FailingSource final : WeightSource {
    FailingSource(std::shared_ptr<const WeightSource> s, std::string f) : inner(std::move(s)), failing(std::move(f)) {}
    bool contains(const std::string& n) const override { return inner->contains(n); }
    Tensor get(const std::string& n) const override {
        if (n.starts_with(failing)) throw Error("cannot read '" + n + "': the disk is gone");
        return inner->get(n);
    }
    std::vector<std::string> names() const override { return inner->names(); }
    Shape shape(const std::string& n) const override { return inner->shape(n); }
    std::shared_ptr<const WeightSource> inner;
    std::string failing;
};
}  // namespace

TEST_CASE("checkpoints: blocks read one ahead on a loader thread give the same outputs, and its errors reach the caller") {
    const golden::Fixture& f = dit_fixture();
    const HYVideoConfig cfg = HYVideoConfig::from_json(f.config());
    const DiTInputs in = golden::dit_inputs<cpu>(f, f.input("x"), f.input("t"), f.input("guidance"));
    const Checkpoint c = Checkpoint::open(kOfficialDit, kind(ModelKind::dit));
    const auto counting = std::make_shared<CountingSource>(c.shared_weights());
    HYVideoDiffusionTransformer<cpu> in_turn(cfg), ahead(cfg);
    for (DType matmul : {DType::f32, DType::bf16}) {
        CAPTURE(dtype_name(matmul));
        in_turn.load_streamed(c.shared_weights(), "", matmul);
        ahead.load_streamed(counting, "", matmul, BlockPrefetch::next_block);
        counting->released = 0;
        const Tensor want = in_turn.forward(in);
        CHECK(same_bytes(want, ahead.forward(in)));
        CHECK(counting->released == cfg.mm_double_blocks_depth + cfg.mm_single_blocks_depth);
        // The forward in stages, as a step cache runs it: a part of the double blocks at a time.
        auto s = ahead.embed(in, ahead.rope_tables(in.x.shape()));
        ahead.run_double_blocks(s, 0, 1);
        ahead.run_double_blocks(s, 1, ahead.double_blocks.size());
        ahead.run_single_blocks(s);
        CHECK(same_bytes(want, ahead.output(s)));
        CHECK(ahead.streamed->times.reading > 0);
    }
    // A block that cannot be read, first or later: the forward throws its error, no loader is left.
    for (const std::string failing : {"double_blocks.0.", "double_blocks.1.", "single_blocks.1."}) {
        CAPTURE(failing);
        HYVideoDiffusionTransformer<cpu> broken(cfg);
        broken.load_streamed(std::make_shared<FailingSource>(c.shared_weights(), failing), "", DType::f32,
                             BlockPrefetch::next_block);
        CHECK_THROWS_WITH_AS(broken.forward(in), doctest::Contains("the disk is gone"), Error);
        broken.streamed->prefetch = BlockPrefetch::none;  // the same error read in turn
        CHECK_THROWS_WITH_AS(broken.forward(in), doctest::Contains(failing.c_str()), Error);
    }
}

TEST_CASE("checkpoints: the official VAE .pt (under state_dict, names prefixed vae.) reproduces vae_tiny") {
    const Checkpoint c = Checkpoint::open(kOfficialVae, {});
    CHECK(c.kind() == ModelKind::vae);
    CHECK(c.prefix() == "state_dict.vae.");
    check_weights_equal(c, vae_fixture().params(), DType::f16);
    const auto g = c.vae_config();
    CHECK(g.complete);
    CHECK(g.config.to_json() == AutoencoderKLCausal3DConfig::from_json(vae_fixture().config()).to_json());

    const VaeOutputs out = run_vae(c.weights());
    const VaeOutputs ref = run_vae(CastSource(vae_fixture().params(), DType::f16));
    CHECK(same_bytes(out.decoded, ref.decoded));
    CHECK(same_bytes(out.mean, ref.mean));
    CHECK(same_bytes(out.logvar, ref.logvar));
    const double err = rel_l2(out.decoded, vae_fixture().output("decoded"));
    MESSAGE("f16 VAE weights vs the f32 reference decode: rel L2 ", err);
    CHECK(err < 5e-3);
    CHECK(rel_l2(out.mean, vae_fixture().output("mean")) < 5e-3);
}

TEST_CASE("checkpoints: the diffusers transformer (sharded) maps to the official tensors exactly") {
    const Checkpoint c = Checkpoint::open(kDiffusersDit, {});
    CHECK(c.container() == Container::safetensors_sharded);
    CHECK(c.scheme() == NameScheme::diffusers);
    CHECK(c.files().size() == 2);
    CHECK(c.unexpected().empty());
    CHECK(c.incomplete().empty());
    // Bit-exact against the fixture: the q/k/v order, linear1's four parts and the (shift, scale) swap.
    check_weights_equal(c, dit_fixture().params(), DType::bf16);
    CHECK(c.sources("double_blocks.1.img_attn_qkv.weight") ==
          std::vector<std::string>{"transformer_blocks.1.attn.to_q.weight", "transformer_blocks.1.attn.to_k.weight",
                                   "transformer_blocks.1.attn.to_v.weight"});
    CHECK(c.sources("final_layer.adaLN_modulation.1.bias") == std::vector<std::string>{"norm_out.linear.bias"});

    // Same dtype as the official .pt, so the same outputs, bit for bit.
    const Checkpoint official = Checkpoint::open(kOfficialDit);
    CHECK(same_bytes(run_dit(c.weights()), run_dit(official.weights())));

    // diffusers' config.json supplies what the shapes cannot: RoPE.
    const auto g = c.dit_config();
    CHECK(g.complete);
    CHECK(g.config.to_json() == HYVideoConfig::from_json(dit_fixture().config()).to_json());
}

TEST_CASE("checkpoints: one shard, the index or the folder open the same sharded checkpoint") {
    const fs::path shard = kDiffusersDit / "diffusion_pytorch_model-00001-of-00002.safetensors";
    const fs::path index = kDiffusersDit / "diffusion_pytorch_model.safetensors.index.json";
    for (const fs::path& p : {kDiffusersDit, shard, index}) {
        INFO(p);
        const Checkpoint c = Checkpoint::open(p);
        CHECK(c.container() == Container::safetensors_sharded);
        CHECK(c.weights().names().size() == 120);
    }
}

TEST_CASE("checkpoints: the diffusers VAE has the official names and the official .pt's outputs") {
    const Checkpoint c = Checkpoint::open(kDiffusersVae);
    CHECK(c.kind() == ModelKind::vae);
    CHECK(c.diffusers_folder());
    CHECK(c.layout().find("diffusers layout") != std::string::npos);
    check_weights_equal(c, vae_fixture().params(), DType::f16);
    const Checkpoint official = Checkpoint::open(kOfficialVae);
    CHECK(same_bytes(run_vae(c.weights()).decoded, run_vae(official.weights()).decoded));
    // diffusers' config.json: its keys (temporal_compression_ratio, HunyuanVideoDownBlock3D) are translated.
    const auto g = c.vae_config();
    CHECK(g.config.norm_num_groups == 4);
    CHECK(g.config.block_out_channels == std::vector<std::int64_t>{8, 16, 16, 16});
}

TEST_CASE("checkpoints: ComfyUI-style single files (official names, bare or prefixed) match the fixtures to 1e-4") {
    // Written here in f32 from the fixtures (the committed files are bf16/f16 to stay small), so the
    // outputs must meet the golden criterion itself.
    const TempDir dir;
    std::vector<std::pair<std::string, Tensor>> all, bare;
    for (const auto& n : dit_fixture().params().names()) {
        all.emplace_back("model.diffusion_model." + n, dit_fixture().params().get(n));
        bare.emplace_back(n, dit_fixture().params().get(n));
    }
    for (const auto& n : vae_fixture().params().names()) all.emplace_back("first_stage_model." + n, vae_fixture().params().get(n));
    save_safetensors(dir / "checkpoint.safetensors", all);
    save_safetensors(dir / "hunyuan_video_t2v_bf16.safetensors", bare);

    const auto models = Checkpoint::models(dir / "checkpoint.safetensors");
    REQUIRE(models.size() == 2);
    CHECK(models[0].prefix == "first_stage_model.");
    CHECK(models[1].prefix == "model.diffusion_model.");

    const Checkpoint dit = Checkpoint::open(dir / "checkpoint.safetensors", kind(ModelKind::dit));
    CHECK(dit.prefix() == "model.diffusion_model.");
    CHECK(dit.layout().find("ComfyUI checkpoint") != std::string::npos);
    CHECK(dit.foreign_tensors() == 180);
    CHECK(rel_l2(run_dit(dit.weights()), dit_fixture().output("x")) <= 1e-4);

    const Checkpoint vae = Checkpoint::open(dir / "checkpoint.safetensors", kind(ModelKind::vae));
    const VaeOutputs v = run_vae(vae.weights());
    CHECK(rel_l2(v.decoded, vae_fixture().output("decoded")) <= 1e-4);
    CHECK(rel_l2(v.mean, vae_fixture().output("mean")) <= 1e-4);
    CHECK(rel_l2(v.logvar, vae_fixture().output("logvar")) <= 1e-4);

    const Checkpoint plain = Checkpoint::open(dir / "hunyuan_video_t2v_bf16.safetensors");
    CHECK(plain.prefix().empty());
    CHECK(plain.layout().find("ComfyUI repackaged") != std::string::npos);
    CHECK(same_bytes(run_dit(plain.weights()), run_dit(dit.weights())));

    // Several models and no choice: an error that lists them.
    try {
        (void)Checkpoint::open(dir / "checkpoint.safetensors");
        FAIL("expected an error");
    } catch (const Error& e) {
        CHECK(std::string(e.what()).find("several models") != std::string::npos);
        CHECK(std::string(e.what()).find("\"model.diffusion_model.\"") != std::string::npos);
    }
}

TEST_CASE("checkpoints: a golden fixture is a checkpoint too, and its config comes from its metadata") {
    const fs::path pipeline = kData / "golden" / "pipeline_tiny.safetensors";
    const auto models = Checkpoint::models(pipeline);
    REQUIRE(models.size() == 2);
    const Checkpoint dit = Checkpoint::open(pipeline, kind(ModelKind::dit));
    CHECK(dit.prefix() == "param.");
    CHECK(dit.weights().names().size() == 120);  // the VAE under param.vae. is not the DiT's
    CHECK(dit.config_source() == "safetensors metadata");
    CHECK(dit.dit_config().complete);
    const Checkpoint vae = Checkpoint::open(pipeline, kind(ModelKind::vae));
    CHECK(vae.prefix() == "param.vae.");
    CHECK(vae.vae_config().config.latent_channels == 16);
}

TEST_CASE("checkpoints: load_weights through a shared handle keeps the files alive") {
    std::shared_ptr<const WeightSource> w;
    {
        const Checkpoint c = Checkpoint::open(kDiffusersDit);
        w = c.shared_weights();
    }
    CHECK(same_bytes(w->get("single_blocks.1.linear1.weight"),
                     dit_fixture().params().get("single_blocks.1.linear1.weight").to(DType::bf16)));
}

// ================================ configurations ================================

TEST_CASE("checkpoints: configs inferred from the real model's shapes name the released presets") {
    std::ifstream in(kData / "golden" / "manifest_dit_t2_cfgdistill.json");
    REQUIRE(in);
    const auto manifest = nlohmann::json::parse(in).at("tensors");
    const auto lookup = [&](const std::string& n) -> std::optional<Shape> {
        if (!manifest.contains(n)) return std::nullopt;
        return manifest.at(n).get<Shape>();
    };
    const auto g = infer_dit_config(lookup, nullptr);
    CHECK(g.complete);
    CHECK(g.config.to_json() == HYVideoConfig::preset("HYVideo-T/2-cfgdistill").to_json());
    cli::Manifest have;
    for (const auto& [n, s] : manifest.items()) have.emplace(n, s.get<Shape>());
    CHECK(cli::compare_manifest(have, cli::dit_presets()[0].manifest).same());
    CHECK_FALSE(cli::compare_manifest(have, cli::dit_presets()[1].manifest).same());  // T/2 has no guidance_in

    std::ifstream vin(kData / "golden" / "manifest_vae_884_16c.json");
    const auto vm = nlohmann::json::parse(vin).at("tensors");
    const auto vg = infer_vae_config(
        [&](const std::string& n) -> std::optional<Shape> {
            if (!vm.contains(n)) return std::nullopt;
            return vm.at(n).get<Shape>();
        },
        nullptr);
    CHECK(vg.complete);
    CHECK(vg.config.to_json() == AutoencoderKLCausal3DConfig::preset("884-16c-hy").to_json());
}

TEST_CASE("checkpoints: without a config, RoPE of an unknown head size is reported as unknown") {
    const auto g = Checkpoint::open(kOfficialDit).dit_config();
    CHECK_FALSE(g.complete);
    bool said = false;
    for (const auto& n : g.notes) said = said || n.find("rope_dim_list is not stored") != std::string::npos;
    CHECK(said);
    // Every size is still right.
    HYVideoConfig want = HYVideoConfig::from_json(dit_fixture().config());
    want.rope_dim_list = g.config.rope_dim_list;
    CHECK(g.config.to_json() == want.to_json());
}

// ================================ fp8 ================================

TEST_CASE("checkpoints: quantize_fp8 is the reference quantiser (checked against torch on the bf16 weights)") {
    const Checkpoint c = Checkpoint::open(kOfficialDit);
    const auto& want = expected().at("fp8_from_bf16");
    for (const auto& [module, e] : want.items()) {
        INFO(module);
        const Fp8Weight q = quantize_fp8(c.weights().get(module + ".weight"));
        CHECK(q.scale == e.at("scale").get<float>());
        CHECK(crc_of(q.weight) == e.at("weight_crc32").get<std::uint32_t>());
    }
    // An all-zero weight gets scale 1 rather than the reference's 0/0.
    const Fp8Weight z = quantize_fp8(Tensor::zeros({2, 3}).to(DType::bf16));
    CHECK(z.scale == 1.0f);
    CHECK(z.weight.to_vector() == std::vector<float>(6, 0.0f));
}

TEST_CASE("checkpoints: dequantize_fp8 broadcasts per-tensor, per-row and per-column scales") {
    const Tensor w8 = Tensor::from_vector<float>({2, 3}, {1, 2, 3, -1, -2, -0.5f}).to(DType::f8e4m3);
    CHECK(dequantize_fp8(w8, Tensor::from_vector<float>({}, {2.0f})).to_vector() ==
          std::vector<float>{2, 4, 6, -2, -4, -1});
    CHECK(dequantize_fp8(w8, Tensor::from_vector<float>({2, 1}, {1.0f, 10.0f})).to_vector() ==
          std::vector<float>{1, 2, 3, -10, -20, -5});
    CHECK(dequantize_fp8(w8, Tensor::from_vector<float>({3}, {1.0f, 0.5f, 0.25f})).to_vector() ==
          std::vector<float>{1, 1, 0.75f, -1, -1, -0.125f});
    // bf16(scale) first: 1 + 2^-9 rounds to 1 in bf16, so the product is exactly W8.
    CHECK(dequantize_fp8(w8, Tensor::from_vector<float>({}, {1.0f + 0x1p-9f})).to_vector() ==
          std::vector<float>{1, 2, 3, -1, -2, -0.5f});
    CHECK_THROWS_WITH_AS(dequantize_fp8(w8, Tensor::from_vector<float>({2}, {1, 2})),
                         doctest::Contains("does not broadcast"), Error);
}

TEST_CASE("checkpoints: dequantize_fp8's per-row tables give every float8 byte the reference's bits") {
    // All 256 bytes (the two NaNs need only stay NaN: torch writes more than one encoding) in each row of a [2, 3, 256] weight, with one scale per tensor, per
    // [2, 1, 1] slab and per row; bf16 and f16 output, against bf16(bf16(W8) * bf16(scale)) per element.
    std::vector<std::uint8_t> bytes(2 * 3 * 256);
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>((i * 7 + i / 256) % 256);
    Tensor w8 = Tensor::empty({2, 3, 256}, DType::f8e4m3);
    std::memcpy(w8.raw_data(), bytes.data(), bytes.size());
    const std::vector<Tensor> scales = {Tensor::from_vector<float>({}, {0.0123f}),
                                        Tensor::from_vector<float>({2, 1, 1}, {3.3e-3f, 1.7f}),
                                        Tensor::from_vector<float>({2, 3, 1}, {1, 0.5f, 1e-3f, 7.77f, 2e-5f, 1 + 0x1p-9f})};
    for (const Tensor& scale : scales)
        for (const DType out : {DType::bf16, DType::f16}) {
            INFO(shape_str(scale.shape()), " ", dtype_name(out));
            const Tensor d = dequantize_fp8(w8, scale, out);
            const auto sv = scale.to_vector();
            const auto* bits = static_cast<const std::uint16_t*>(d.raw_data());
            std::size_t wrong = 0;
            for (std::size_t i = 0; i < bytes.size(); ++i) {
                const std::size_t row = i / 256;
                const float s = sv.size() == 1 ? sv[0] : sv.size() == 2 ? sv[row / 3] : sv[row];
                const float x = f8e4m3_to_f32(bytes[i]);
                const std::uint16_t expect = out == DType::bf16
                                                 ? f32_to_bf16(bf16_to_f32(f32_to_bf16(x)) * bf16_to_f32(f32_to_bf16(s)))
                                                 : f32_to_f16(f16_to_f32(f32_to_f16(x)) * f16_to_f32(f32_to_f16(s)));
                if (std::isnan(x)) wrong += !std::isnan(out == DType::bf16 ? bf16_to_f32(bits[i]) : f16_to_f32(bits[i]));
                else wrong += bits[i] != expect;
            }
            CHECK(wrong == 0);
        }
}

TEST_CASE("checkpoints: fp8 weights need their scale map, and a map needs fp8 weights") {
    const TempDir dir;
    fs::copy_file(kOfficialFp8, dir / "model_fp8.pt");
    CHECK_THROWS_WITH_AS(Checkpoint::open(dir / "model_fp8.pt"), doctest::Contains("expected model_fp8_map.pt"), Error);
    // The pitfall in docs/model.md#fp8-weights: the map with the bf16 file.
    CheckpointOptions o;
    o.fp8_map = kOfficialFp8.parent_path() / "mp_rank_00_model_states_fp8_map.pt";
    CHECK_THROWS_WITH_AS(Checkpoint::open(kOfficialDit, o), doctest::Contains("has no float8 weights"), Error);
    // An explicit map path works for a renamed file.
    CHECK(Checkpoint::open(dir / "model_fp8.pt", o).fp8_map_file() == o.fp8_map);
}

TEST_CASE("checkpoints: float8 weights without any scale are read as stored (ComfyUI's plain fp8 casts)") {
    const TempDir dir;
    std::vector<std::pair<std::string, Tensor>> t;
    for (const auto& n : dit_fixture().params().names()) {
        const Tensor w = dit_fixture().params().get(n);
        t.emplace_back(n, is_fp8_layer(n, w.shape()) ? w.to(DType::f8e4m3) : w.to(DType::bf16));
    }
    save_safetensors(dir / "fp8.safetensors", t);
    const Checkpoint c = Checkpoint::open(dir / "fp8.safetensors");
    CHECK(c.fp8_unscaled().size() == 26);
    const Tensor w = c.weights().get("single_blocks.0.linear2.weight");
    CHECK(w.dtype() == DType::f8e4m3);
    CHECK(same_bytes(w, dit_fixture().params().get("single_blocks.0.linear2.weight").to(DType::f8e4m3)));
}

// ================================ convert ================================

TEST_CASE("convert: every layout to official-name safetensors, read back unchanged") {
    const TempDir dir;
    for (const fs::path& in : {kOfficialDit, kDiffusersDit, fs::path(kOfficialVae)}) {
        INFO(in);
        cli::ConvertArgs a;
        a.input = in.string();
        a.output = (dir / "out.safetensors").string();
        CHECK(cli::run_convert(a) == 0);
        const Checkpoint src = Checkpoint::open(in), out = Checkpoint::open(a.output);
        CHECK(out.prefix().empty());
        CHECK(out.scheme() == NameScheme::official);
        // The config travels in the metadata when the source determines it fully.
        const bool complete = src.kind() == ModelKind::dit ? src.dit_config().complete : src.vae_config().complete;
        CHECK((out.config_source() == "safetensors metadata") == complete);
        REQUIRE(out.weights().names() == src.weights().names());
        for (const auto& n : src.weights().names()) CHECK(same_bytes(out.weights().get(n), src.weights().get(n)));
    }
}

TEST_CASE("convert --fp8 writes the reference quantisation; --dtype casts; fp8 input keeps its scales") {
    const TempDir dir;
    cli::ConvertArgs a;
    a.input = kOfficialDit.string();
    a.output = (dir / "fp8.safetensors").string();
    a.fp8 = true;
    REQUIRE(cli::run_convert(a) == 0);
    const SafetensorsFile f = SafetensorsFile::open(a.output);
    const auto& want = expected().at("fp8_from_bf16");
    for (const auto& [module, e] : want.items()) {
        INFO(module);
        CHECK(f.info(module + ".weight").dtype == DType::f8e4m3);
        CHECK(crc_of(f.tensor(module + ".weight")) == e.at("weight_crc32").get<std::uint32_t>());
        CHECK(f.tensor(module + ".fp8_scale").item() == e.at("scale").get<float>());
    }
    // Read back: dequantised with the scales beside the weights.
    const Checkpoint q = Checkpoint::open(a.output);
    CHECK(q.weights().get("double_blocks.0.img_mlp.fc1.weight").dtype() == DType::bf16);
    CHECK(q.fp8_unused_scales().empty());

    // The official fp8 file, kept as fp8: identical dequantised weights.
    a.input = kOfficialFp8.string();
    a.output = (dir / "kept.safetensors").string();
    a.fp8 = false;
    REQUIRE(cli::run_convert(a) == 0);
    const Checkpoint kept = Checkpoint::open(a.output), orig = Checkpoint::open(kOfficialFp8);
    for (const auto& n : orig.weights().names()) CHECK(same_bytes(kept.weights().get(n), orig.weights().get(n)));

    // --dtype f32 of the fp8 file: the effective (dequantised) weights, widened exactly.
    a.output = (dir / "f32.safetensors").string();
    a.dtype = "f32";
    REQUIRE(cli::run_convert(a) == 0);
    const Checkpoint wide = Checkpoint::open(a.output);
    for (const auto& n : orig.weights().names())
        CHECK(same_bytes(wide.weights().get(n), orig.weights().get(n).to(DType::f32)));
}

TEST_CASE("convert refuses what it cannot write faithfully, and leaves no file behind") {
    const TempDir dir;
    cli::ConvertArgs a;
    a.output = (dir / "out.safetensors").string();
    a.input = (kData / "golden" / "pipeline_tiny.safetensors").string();
    CHECK_THROWS_WITH_AS(cli::run_convert(a), doctest::Contains("several models"), Error);
    a.model = "vae";
    CHECK(cli::run_convert(a) == 0);
    CHECK(Checkpoint::open(a.output).kind() == ModelKind::vae);
    fs::remove(a.output);
    a.dtype = "f64";
    CHECK_THROWS_WITH_AS(cli::run_convert(a), doctest::Contains("--dtype f64"), Error);
    CHECK_FALSE(fs::exists(a.output));
}

// ================================ the command line ================================

TEST_CASE("hyvideo inspect: layout, model, config, matches and problems, in text and JSON") {
    const Run r = run_cli("inspect " + kOfficialFp8.string() + " " + kDiffusersDit.string());
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK(r.output.find("(official release layout); fp8 scales from mp_rank_00_model_states_fp8_map.pt") != std::string::npos);
    CHECK(r.output.find("26 scaled float8_e4m3fn weights") != std::string::npos);
    CHECK(r.output.find("diffusers layout") != std::string::npos);
    CHECK(r.output.find("632,448") != std::string::npos);
    CHECK(r.output.find("missing    none") != std::string::npos);

    const Run j = run_cli("inspect --json --list " + kDiffusersDit.string());
    INFO(j.output);
    REQUIRE(j.status == 0);
    const auto doc = nlohmann::json::parse(j.output);
    REQUIRE(doc.size() == 1);
    CHECK(doc[0]["tensors"] == 120);
    CHECK(doc[0]["names"] == "diffusers");
    CHECK(doc[0]["config"]["rope_dim_list"] == nlohmann::json::array({4, 6, 6}));
    bool saw_swap = false;
    for (const auto& e : doc[0]["list"])
        if (e["name"] == "final_layer.adaLN_modulation.1.weight") saw_swap = e["from"][0] == "norm_out.linear.weight";
    CHECK(saw_swap);
}

TEST_CASE("hyvideo inspect: missing and unexpected tensors fail with exit status 1") {
    const TempDir dir;
    std::vector<std::pair<std::string, Tensor>> t;
    for (const auto& n : dit_fixture().params().names())
        if (n != "double_blocks.1.txt_mlp.fc2.bias") t.emplace_back(n, dit_fixture().params().get(n));
    t.emplace_back("double_blocks.1.extra.weight", Tensor::zeros({2}));
    save_safetensors(dir / "broken.safetensors", t);
    const Run r = run_cli("inspect --verify " + (dir / "broken.safetensors").string() + " " + (dir / "nothing.pt").string());
    INFO(r.output);
    CHECK(r.status == 1);
    CHECK(r.output.find("missing    1: double_blocks.1.txt_mlp.fc2.bias") != std::string::npos);
    CHECK(r.output.find("unexpected 1: double_blocks.1.extra.weight") != std::string::npos);
    CHECK(r.output.find("nothing.pt: no such file") != std::string::npos);
    CHECK(r.output.find("0 non-finite values") != std::string::npos);
}

TEST_CASE("hyvideo convert: writes a file inspect recognises") {
    const TempDir dir;
    const Run c = run_cli("convert " + kDiffusersDit.string() + " " + (dir / "dit.safetensors").string() + " --fp8 --dtype bf16");
    INFO(c.output);
    REQUIRE(c.status == 0);
    CHECK(c.output.find("26 layers quantised to fp8") != std::string::npos);
    const Run i = run_cli("inspect " + (dir / "dit.safetensors").string());
    INFO(i.output);
    CHECK(i.status == 0);
    CHECK(i.output.find("rope [4,6,6]") != std::string::npos);  // the config travelled in the metadata
    const Run bad = run_cli("convert " + (kData / "golden" / "pipeline_tiny.safetensors").string() + " " +
                            (dir / "x.safetensors").string());
    CHECK(bad.status == 1);
    CHECK(bad.output.find("several models") != std::string::npos);
}

// ================================ diffusers names ================================

TEST_CASE("diffusers names: every rule round-trips, and near misses do not match") {
    for (const auto& r : diffusers::dit_rules) {
        std::string d(r.diffusers), o(r.official);
        for (auto* s : {&d, &o}) {
            for (auto p = s->find("{i}"); p != std::string::npos; p = s->find("{i}")) s->replace(p, 3, "17");
            for (auto p = s->find("{s}"); p != std::string::npos; p = s->find("{s}")) s->replace(p, 3, "bias");
        }
        INFO(d);
        const auto m = diffusers::dit_official(d);
        REQUIRE(m);
        CHECK(m->official == o);
        const auto parts = diffusers::dit_diffusers(o);
        REQUIRE(parts.size() == r.parts);
        CHECK(parts[r.part] == d);
    }
    CHECK_FALSE(diffusers::dit_official("transformer_blocks.01.attn.to_q.weight"));  // no leading zeros
    CHECK_FALSE(diffusers::dit_official("transformer_blocks.1.attn.to_q.weights"));
    CHECK_FALSE(diffusers::dit_official("transformer_blocks..attn.to_q.weight"));
    CHECK_FALSE(diffusers::dit_official("xproj_out.weight"));
    CHECK(diffusers::dit_diffusers("img_in.proj.bias") == std::vector<std::string>{"x_embedder.proj.bias"});
}

TEST_CASE("checkpoints: diffusers tensors that are missing, unknown or do not stack are reported") {
    const TempDir dir;
    const Checkpoint good = Checkpoint::open(kDiffusersDit);
    std::vector<std::pair<std::string, Tensor>> t;
    for (const auto& n : good.raw().names())
        if (n != "transformer_blocks.0.attn.to_v.weight") t.emplace_back(n, good.raw().get(n));
    t.emplace_back("transformer_blocks.0.attn.to_sigma.weight", Tensor::zeros({1}).to(DType::bf16));
    save_safetensors(dir / "diffusion_pytorch_model.safetensors", t);
    const Checkpoint c = Checkpoint::open(dir.path());
    REQUIRE(c.incomplete().size() == 1);
    CHECK(c.incomplete()[0] == "double_blocks.0.img_attn_qkv.weight (missing transformer_blocks.0.attn.to_v.weight)");
    CHECK(c.unexpected() == std::vector<std::string>{"transformer_blocks.0.attn.to_sigma.weight"});
    // Strict loading names both problems.
    HYVideoDiffusionTransformer<cpu> model(HYVideoConfig::from_json(dit_fixture().config()));
    CHECK_THROWS_WITH_AS(load_weights_strict(model, c.weights()), doctest::Contains("double_blocks.0.img_attn_qkv.weight"), Error);

    // q, k, v of different sizes do not make a fused projection.
    std::vector<std::pair<std::string, Tensor>> u;
    for (const auto& n : good.raw().names())
        u.emplace_back(n, n == "transformer_blocks.0.attn.to_k.weight" ? Tensor::zeros({32, 64}).to(DType::bf16) : good.raw().get(n));
    save_safetensors(dir / "diffusion_pytorch_model.safetensors", u);
    CHECK_THROWS_WITH_AS(Checkpoint::open(dir.path()), doctest::Contains("q, k and v differ in size"), Error);
}

TEST_CASE("checkpoints: tensors of the wrong rank under a model's names are refused, not indexed (fuzzer finding)") {
    // The fuzzer renamed a 1-d tensor to txt_in.input_embedder.weight; config inference read its
    // second dimension past the end of the shape. Every shape is now rank-checked before it is indexed.
    const TempDir dir;
    std::vector<std::pair<std::string, Tensor>> t;
    for (const auto& n : dit_fixture().params().names())
        t.emplace_back(n, n == "txt_in.input_embedder.weight" ? Tensor::zeros({64}) : dit_fixture().params().get(n));
    save_safetensors(dir / "dit.safetensors", t);
    CHECK_THROWS_WITH_AS(Checkpoint::open(dir / "dit.safetensors").dit_config(),
                         doctest::Contains("txt_in.input_embedder.weight has shape [64], not the 2-d tensor"), Error);
    std::vector<std::pair<std::string, Tensor>> v;
    for (const auto& n : vae_fixture().params().names())
        v.emplace_back(n, n == "encoder.conv_out.conv.weight" ? Tensor::zeros({8}) : vae_fixture().params().get(n));
    save_safetensors(dir / "vae.safetensors", v);
    CHECK_THROWS_WITH_AS(Checkpoint::open(dir / "vae.safetensors").vae_config(), doctest::Contains("not a Conv3d kernel"), Error);
    // A 0-d part of a diffusers fusion.
    const Checkpoint good = Checkpoint::open(kDiffusersDit);
    std::vector<std::pair<std::string, Tensor>> d;
    for (const auto& n : good.raw().names())
        d.emplace_back(n, n == "transformer_blocks.0.attn.to_q.bias" ? Tensor::zeros({}).to(DType::bf16) : good.raw().get(n));
    save_safetensors(dir / "diffusion_pytorch_model.safetensors", d);
    CHECK_THROWS_WITH_AS(Checkpoint::open(dir / "diffusion_pytorch_model.safetensors"), doctest::Contains("is 0-d"), Error);
}

TEST_CASE("checkpoints: an index that names files outside its folder, or tensors its shards lack, is refused") {
    const TempDir dir;
    for (const auto& e : fs::directory_iterator(kDiffusersDit)) fs::copy_file(e.path(), dir / e.path().filename().string());
    const fs::path index = dir / "diffusion_pytorch_model.safetensors.index.json";
    auto j = nlohmann::json::parse(read_bytes(index));
    j["weight_map"]["proj_out.weight"] = "../diffusion_pytorch_model-00001-of-00002.safetensors";
    write_bytes(index, j.dump());
    CHECK_THROWS_WITH_AS(Checkpoint::open(dir.path()), doctest::Contains("not a file name in the same folder"), Error);
    // Back to a valid index, then one tensor assigned to the shard that does not hold it.
    j = nlohmann::json::parse(read_bytes(kDiffusersDit / "diffusion_pytorch_model.safetensors.index.json"));
    const std::string first = "diffusion_pytorch_model-00001-of-00002.safetensors";
    const std::string second = "diffusion_pytorch_model-00002-of-00002.safetensors";
    j["weight_map"]["x_embedder.proj.weight"] = j["weight_map"]["x_embedder.proj.weight"] == first ? second : first;
    write_bytes(index, j.dump());
    CHECK_THROWS_WITH_AS(Checkpoint::open(dir.path()), doctest::Contains("which does not hold it"), Error);
}

TEST_CASE("checkpoints: a file without a HunyuanVideo model says what it looked for") {
    const TempDir dir;
    save_safetensors(dir / "other.safetensors", {{"lm_head.weight", Tensor::zeros({2, 2})}});
    CHECK_THROWS_WITH_AS(Checkpoint::open(dir / "other.safetensors"), doctest::Contains("img_in.proj.weight"), Error);
    CHECK_THROWS_WITH_AS(Checkpoint::open(dir.path()), doctest::Contains("img_in.proj.weight"), Error);  // its only file
    CHECK_THROWS_WITH_AS(Checkpoint::open(dir / "missing.pt"), doctest::Contains("no such file"), Error);
    save_safetensors(dir / "second.safetensors", {{"x", Tensor::zeros({1})}});
    CHECK_THROWS_WITH_AS(Checkpoint::open(dir.path()), doctest::Contains("name the one to use"), Error);
    const TempDir pipeline;
    write_bytes(pipeline / "model_index.json", "{}");
    CHECK_THROWS_WITH_AS(Checkpoint::open(pipeline.path()), doctest::Contains("name its transformer/ or vae/ folder"), Error);
}

// ================================ the ZIP reader ================================

TEST_CASE("zip: crc32 matches zlib's") {
    CHECK(crc32("", 0) == 0u);
    CHECK(crc32("123456789", 9) == 0xCBF43926u);
    const std::string big(1000, 'x');
    CHECK(crc32(big.data(), 1000) == crc32(big.data() + 3, 997, crc32(big.data(), 3)));
}

TEST_CASE("zip: torch.save's archives open, with 64-byte aligned data and correct CRCs") {
    const ZipArchive z = ZipArchive::open(kOfficialDit);
    REQUIRE(z.find("mp_rank_00_model_states/data.pkl"));
    std::size_t storages = 0;
    for (const auto& e : z.entries()) {
        CHECK(e.stored());
        CHECK(z.crc_matches(e));
        if (e.name.find("/data/") != std::string::npos) {
            ++storages;
            CHECK(e.data_offset % 64 == 0);
        }
    }
    CHECK(storages == 120);
}

TEST_CASE("zip: ZIP64 end records and extra fields (archives over 4 GiB) are read") {
    const TempDir dir;
    ZipSpec s;
    s.zip64 = true;
    s.comment = "a comment PK\x05\x06 with a fake signature";
    s.entries = {{"a/data.pkl", "hello"}, {"a/data/0", std::string(100, 'q')}};
    write_bytes(dir / "z.zip", build_zip(s));
    const ZipArchive z = ZipArchive::open(dir / "z.zip");
    REQUIRE(z.entries().size() == 2);
    const auto d = z.data(*z.find("a/data/0"));
    CHECK(std::string(reinterpret_cast<const char*>(d.data()), d.size()) == std::string(100, 'q'));
}

TEST_CASE("zip rejects: damaged and unsupported archives, each with a clear message") {
    const TempDir dir;
    const auto error = [&](const std::string& bytes) {
        write_bytes(dir / "z.zip", bytes);
        try {
            (void)ZipArchive::open(dir / "z.zip");
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    ZipSpec ok;
    ok.entries = {{"a/x", "1234"}, {"a/y", "5678"}};
    const std::string good = build_zip(ok);
    CHECK(error(good).empty());
    CHECK(error("PK").find("too short") != std::string::npos);
    CHECK(error(std::string(100, 'x')).find("no end-of-central-directory") != std::string::npos);
    CHECK(error(std::string("\x80\x02}q\x00.") + std::string(30, ' ')).find("legacy torch.save format") != std::string::npos);
    CHECK(error(good.substr(0, good.size() - 30)).find("no end-of-central-directory") != std::string::npos);
    CHECK(error(good + "trailing").find("no end-of-central-directory") != std::string::npos);

    ZipSpec s = ok;
    s.entries[1].name = "a/x";
    CHECK(error(build_zip(s)).find("appears twice") != std::string::npos);
    s = ok;
    s.entries[0].flags = 1;
    CHECK(error(build_zip(s)).find("encrypted") != std::string::npos);
    s = ok;
    s.entries[0].local_name = "a/z";
    CHECK(error(build_zip(s)).find("names another entry") != std::string::npos);
    s = ok;
    s.entries[0].name = std::string("a/\0x", 4);
    CHECK(error(build_zip(s)).find("NUL") != std::string::npos);

    // The end record's central directory offset moved by one byte.
    std::string moved = good;
    const std::size_t eocd = moved.size() - 22;
    moved[eocd + 16] = static_cast<char>(moved[eocd + 16] + 1);
    CHECK_FALSE(error(moved).empty());
    // An entry count larger than the directory holds.
    std::string counted = good;
    counted[eocd + 8] = counted[eocd + 10] = 100;
    CHECK(error(counted).find("more than a") != std::string::npos);
    // An entry whose local header and data lie inside another entry's data (how "zip bombs" overlap).
    ZipSpec inner;
    inner.entries = {{"a/y", "5678"}};
    const std::string nested = build_zip(inner).substr(0, 68);  // a/y's local header, padding and data
    ZipSpec outer;
    outer.entries = {{"a/x", "PREFIX" + nested}, {"a/y", "5678"}};
    std::string overlapping = build_zip(outer);
    const std::size_t cd = overlapping.size() - 22 - 2 * (46 + 3);
    overlapping[cd + 49 + 42] = 64 + 6;  // a/y's local header offset: inside a/x's data
    overlapping[cd + 49 + 43] = 0;
    CHECK(error(overlapping).find("overlap") != std::string::npos);
}

TEST_CASE("zip: a compressed entry is listed but refused when read") {
    const TempDir dir;
    ZipSpec s;
    s.entries = {{"archive/data.pkl", Pickle().op("}").done(), 8}, {"archive/byteorder", "little"}};
    write_bytes(dir / "t.pt", build_zip(s));
    const std::string e = open_error(dir / "t.pt");
    CHECK(e.find("is compressed (method 8, deflate)") != std::string::npos);
    CHECK(e.find("zip -0") != std::string::npos);
}

// ================================ the pickle subset ================================

TEST_CASE("torch pickle: torch.save's constructs are read (dicts, OrderedDict + _metadata, values, fp8, views)") {
    // The generator's files use every construct torch.save emits for a state dict; the values of a
    // non-contiguous tensor and of shared storages are checked on a hand-made file below.
    const TorchFile f = TorchFile::open(kOfficialDit);
    CHECK(f.root() == "mp_rank_00_model_states");
    CHECK(f.names().size() == 120);
    CHECK(f.info("module.img_in.proj.weight").dtype_name == "bfloat16");
    const TorchFile fp8 = TorchFile::open(kOfficialFp8);
    CHECK(fp8.info("module.single_blocks.0.linear1.weight").dtype == DType::f8e4m3);  // _rebuild_tensor_v3
    const TorchFile map = TorchFile::open(kOfficialFp8.parent_path() / "mp_rank_00_model_states_fp8_map.pt");
    CHECK(map.names().size() == 26);
    CHECK(map.info("double_blocks.0.img_mod.linear").shape.empty());  // 0-d scales
}

TEST_CASE("torch pickle: strided views are copied in order, shared storages and offsets are honoured") {
    const TempDir dir;
    // One storage of 12 floats; "t" is its [3, 4] transpose view (stride [1, 3]); "s" is the row
    // [2:4] of a [4, 3] view at offset 6; "e" is empty.
    const std::string storage = floats({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
    Pickle p;
    p.op("}(").str("t").tensor("0", "FloatStorage", 12, 0, {3, 4}, {1, 3});
    p.str("s").tensor("0", "FloatStorage", 12, 6, {2, 3}, {3, 1});
    p.str("e").tensor("0", "FloatStorage", 12, 12, {0, 5}, {5, 1});
    p.str("n").op("N").str("f").op(std::string_view("G?\xf8\0\0\0\0\0\0", 9)).str("l").op("]").op("(K\x01K\x02" "e").op("u");
    write_bytes(dir / "t.pt", pt_archive(p.done(), {{"0", storage}}));
    const TorchFile f = TorchFile::open(dir / "t.pt");
    CHECK_FALSE(f.info("t").contiguous);
    CHECK(f.get("t").to_vector() == std::vector<float>{0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11});
    CHECK(f.info("s").contiguous);
    CHECK(f.get("s").to_vector() == std::vector<float>{6, 7, 8, 9, 10, 11});
    CHECK(f.get("e").numel() == 0);
    std::map<std::string, std::string> values(f.values().begin(), f.values().end());
    CHECK(values["n"] == "None");
    CHECK(values["f"] == "1.5");
    CHECK(values["l"] == "[1, 2]");
}

TEST_CASE("torch pickle rejects: code, unknown opcodes and malformed programs, naming the offset") {
    const TempDir dir;
    const auto err = [&](const std::string& pickle) { return pt_error(dir, pt_archive(pickle, {})); };
    // The classic exploits: a global that runs a command, and one that evaluates code.
    CHECK(err(Pickle().global("os", "system").str("echo hi").op("\x85R").done())
              .find("refusing the global 'os.system'") != std::string::npos);
    CHECK(err(Pickle().global("builtins", "eval").done()).find("refusing the global 'builtins.eval'") != std::string::npos);
    CHECK(err(Pickle().str("os").str("system").op("\x93").done()).find("refusing the global 'os.system'") != std::string::npos);
    CHECK(err(Pickle().op("(S'x'\nios\nsystem\n").done()).find("opcode STRING") != std::string::npos);
    CHECK(err(Pickle().global("collections", "OrderedDict").op(")\x81").done()).find("opcode NEWOBJ") != std::string::npos);
    // A callable that is allowed as a type but is not a function.
    CHECK(err(Pickle().global("torch", "FloatStorage").op(")R").done()).find("is a type") != std::string::npos);
    // Malformed programs.
    CHECK(err(Pickle().op("}}").done()).find("2 objects on the stack") != std::string::npos);
    CHECK(err(Pickle().op("}").b).find("runs past the end") != std::string::npos);
    CHECK(err(Pickle().op("}h\x05").done()).find("memo entry 5 was never stored") != std::string::npos);
    CHECK(err(Pickle().op("}.").done()).find("bytes follow STOP") != std::string::npos);
    CHECK(err(Pickle().op("0").done()).find("no MARK") != std::string::npos);
    CHECK(err(Pickle().op("\x8a\x09" + std::string(9, '\x01')).done()).find("does not fit in 64 bits") != std::string::npos);
    CHECK(err(Pickle().op(std::string_view("X\x02\0\0\0\xc3\x28", 7)).done()).find("not valid UTF-8") != std::string::npos);
    CHECK(err(Pickle().op("}(]K\x01u").done()).find("dict key of type list") != std::string::npos);
    CHECK(err(Pickle().op("]").done()).find("holds a list") != std::string::npos);
    CHECK(err(Pickle().op("\x80\x07}").done()).find("protocol 7") != std::string::npos);
    // Every message says where.
    CHECK(err(Pickle().global("os", "system").done()).find("data.pkl: byte 2:") != std::string::npos);
}

TEST_CASE("torch pickle rejects: tensors that reach outside their storage, or whose storage is wrong") {
    const TempDir dir;
    const std::string s12 = floats({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
    CHECK(pt_error(dir, one_tensor_pt("FloatStorage", 12, 0, {3, 4}, {4, 1}, s12)).empty());
    CHECK(pt_error(dir, one_tensor_pt("FloatStorage", 12, 1, {3, 4}, {4, 1}, s12)).find("reach element 12") != std::string::npos);
    CHECK(pt_error(dir, one_tensor_pt("FloatStorage", 12, 0, {3, 5}, {4, 1}, s12)).find("reach element") != std::string::npos);
    CHECK(pt_error(dir, one_tensor_pt("FloatStorage", 12, 13, {0}, {1}, s12)).find("lies past its storage") != std::string::npos);
    CHECK(pt_error(dir, one_tensor_pt("FloatStorage", 13, 0, {3, 4}, {4, 1}, s12)).find("declares 13 elements") != std::string::npos);
    CHECK(pt_error(dir, one_tensor_pt("FloatStorage", 12, 0, {2147483647, 2147483647, 2147483647}, {1, 1, 1}, s12))
              .find("overflows int64") != std::string::npos);
    CHECK(pt_error(dir, one_tensor_pt("FloatStorage", 12, 0, {-1}, {1}, s12)).find("negative") != std::string::npos);
    // An expanded view (stride 0) would copy into more memory than the file holds.
    CHECK(pt_error(dir, one_tensor_pt("FloatStorage", 12, 0, {100, 12}, {0, 1}, s12)).find("repeats elements") != std::string::npos);
    // The storage entry must exist.
    CHECK(pt_error(dir, pt_archive(Pickle().op("}(").str("w").tensor("7", "FloatStorage", 1, 0, {1}, {1}).op("u").done(),
                                   {{"0", floats({1})}}))
              .find("\"archive/data/7\" is not in the archive") != std::string::npos);
    // A storage class hyvideo does not hold opens, and is refused only when read.
    const fs::path p = dir / "d.pt";
    write_bytes(p, one_tensor_pt("DoubleStorage", 2, 0, {2}, {1}, std::string(16, '\0')));
    const TorchFile f = TorchFile::open(p);
    CHECK(f.info("w").dtype_name == "float64");
    CHECK_THROWS_WITH_AS(f.get("w"), doctest::Contains("float64, which hyvideo does not hold"), Error);
    // Big-endian storages.
    ZipSpec z;
    z.entries = {{"archive/data.pkl", Pickle().op("}").done()}, {"archive/byteorder", "big"}};
    CHECK(pt_error(dir, build_zip(z)).find("\"big\"-endian") != std::string::npos);
}

TEST_CASE("torch pickle: a damaged data.pkl is caught by its CRC-32, a damaged storage by --verify") {
    const TempDir dir;
    std::string bytes = read_bytes(kOfficialFp8.parent_path() / "mp_rank_00_model_states_fp8_map.pt");
    const std::size_t at = bytes.find("double_blocks.0.img_mod.linear");
    REQUIRE(at != std::string::npos);
    std::string pkl = bytes;
    pkl[at] = 'D';
    CHECK(pt_error(dir, pkl).find("is damaged: its CRC-32") != std::string::npos);

    // Flip a bit in the last storage's data (the entries before the central directory).
    const ZipArchive z = ZipArchive::open(kOfficialFp8.parent_path() / "mp_rank_00_model_states_fp8_map.pt");
    const ZipEntry* last = nullptr;
    for (const auto& e : z.entries())
        if (e.name.find("/data/") != std::string::npos && (!last || e.data_offset > last->data_offset)) last = &e;
    REQUIRE(last);
    std::string storage = bytes;
    storage[last->data_offset] ^= 1;
    write_bytes(dir / "m.pt", storage);
    const TorchFile f = TorchFile::open(dir / "m.pt");  // opens: storages are checked only on request
    CHECK_THROWS_WITH_AS(f.verify_storages(), doctest::Contains("is damaged"), Error);
}
