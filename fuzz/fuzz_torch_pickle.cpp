// libFuzzer target for the PyTorch checkpoint reader: io/zip.hpp, io/torch_pickle.hpp, io/pt_file.hpp,
// and the layout detection and name mapping of checkpoint/checkpoint.hpp on top (build and run: docs/fuzzing.md).
//
// Property under test: for any bytes, TorchFile::open and Checkpoint::open either throw hyvideo::Error
// or yield tensors whose every byte can be read, and reading them (views, strided copies, diffusers
// fusions, fp8 dequantisation) either succeeds or throws hyvideo::Error. Anything else (a sanitizer
// report, another exception type, a signal, a timeout) is a bug.
//
// The first input byte picks what the rest is:
//   even  a whole archive (the seeds are real torch.save files), which reaches the ZIP parser; the
//         pickle's CRC check is off so that mutated pickles still reach the pickle machine;
//   odd   a pickle alone, which the harness wraps in a valid archive with eight storages of assorted
//         sizes, so that every mutation lands in the pickle machine and the tensor validation.
// For accepted files every tensor is compared, element by element, with the harness's own copy of the
// storage bytes at the place the format defines. Those copies are exactly-sized heap buffers, which
// AddressSanitizer guards, while the mapping is page-granular: a view that ran past the end of its
// storage but not past the page would otherwise go unnoticed.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "hyvideo/checkpoint/checkpoint.hpp"
#include "hyvideo/io/pt_file.hpp"
#include "memfd_input.hpp"

namespace {

[[noreturn]] void fail(const char* what) { hyvideo_fuzz::fail("fuzz_torch_pickle", what); }

const hyvideo_fuzz::MemfdInput& input() {
    static const hyvideo_fuzz::MemfdInput in("fuzz_torch_pickle");
    return in;
}

void put16(std::vector<std::uint8_t>& s, std::uint32_t v) {
    s.push_back(static_cast<std::uint8_t>(v));
    s.push_back(static_cast<std::uint8_t>(v >> 8));
}
void put32(std::vector<std::uint8_t>& s, std::uint32_t v) {
    put16(s, v & 0xFFFF);
    put16(s, v >> 16);
}

// The storages a wrapped pickle can refer to ("0".."7"): sizes that fit the common element types,
// odd sizes that fit none, and an empty one. Their bytes are a fixed pattern.
const std::map<std::string, std::vector<std::uint8_t>>& storages() {
    static const auto s = [] {
        std::map<std::string, std::vector<std::uint8_t>> m;
        const std::size_t sizes[] = {48, 6, 64, 1, 24, 0, 128, 7};
        for (int k = 0; k < 8; ++k) {
            std::vector<std::uint8_t> b(sizes[k]);
            for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(i * 37 + k * 11 + 1);
            m.emplace(std::to_string(k), std::move(b));
        }
        return m;
    }();
    return s;
}

// A stored ZIP archive: "archive/data.pkl" = pickle, "archive/byteorder", "archive/data/<k>" = storages().
std::vector<std::uint8_t> wrap(const std::uint8_t* pickle, std::size_t size) {
    std::vector<std::pair<std::string, std::vector<std::uint8_t>>> entries;
    entries.emplace_back("archive/data.pkl", std::vector<std::uint8_t>(pickle, pickle + size));
    entries.emplace_back("archive/byteorder", std::vector<std::uint8_t>{'l', 'i', 't', 't', 'l', 'e'});
    for (const auto& [k, v] : storages()) entries.emplace_back("archive/data/" + k, v);
    std::vector<std::uint8_t> out, central;
    for (const auto& [name, data] : entries) {
        const std::uint32_t offset = static_cast<std::uint32_t>(out.size());
        const std::uint32_t crc = hyvideo::crc32(data.data(), data.size());
        for (auto* s : {&out, &central}) {
            const bool cd = s == &central;
            put32(*s, cd ? 0x02014b50 : 0x04034b50);
            if (cd) put16(*s, 20);
            put16(*s, 20);
            put16(*s, 0);
            put16(*s, 0);
            put32(*s, 0);
            put32(*s, crc);
            put32(*s, static_cast<std::uint32_t>(data.size()));
            put32(*s, static_cast<std::uint32_t>(data.size()));
            put16(*s, static_cast<std::uint32_t>(name.size()));
            put16(*s, 0);
            if (cd) {
                put16(*s, 0);
                put16(*s, 0);
                put16(*s, 0);
                put32(*s, 0);
                put32(*s, offset);
            }
            s->insert(s->end(), name.begin(), name.end());
            if (!cd) s->insert(s->end(), data.begin(), data.end());
        }
    }
    const std::uint32_t cd_offset = static_cast<std::uint32_t>(out.size());
    out.insert(out.end(), central.begin(), central.end());
    put32(out, 0x06054b50);
    put16(out, 0);
    put16(out, 0);
    put16(out, static_cast<std::uint32_t>(entries.size()));
    put16(out, static_cast<std::uint32_t>(entries.size()));
    put32(out, static_cast<std::uint32_t>(central.size()));
    put32(out, cd_offset);
    put16(out, 0);
    return out;
}

// Every element of every tensor against the harness's copy of the file, at the offsets the format gives.
void check_tensors(const hyvideo::TorchFile& f, const std::vector<std::uint8_t>& file) {
    for (const auto& name : f.names()) {
        const hyvideo::PtTensorInfo& ti = f.info(name);
        if (ti.data_offset + ti.storage_bytes > file.size()) fail("a storage lies outside the file");
        if (!ti.supported) {
            try {
                (void)f.get(name);
            } catch (const hyvideo::Error&) {
                continue;
            }
            fail("a tensor of an unsupported dtype was read");
        }
        const hyvideo::Tensor t = f.get(name);
        if (t.dtype() != ti.dtype || t.shape() != ti.shape || !t.is_contiguous()) fail("a tensor's type or shape changed");
        const std::int64_t n = t.numel(), nd = static_cast<std::int64_t>(ti.shape.size());
        const auto* got = static_cast<const std::uint8_t*>(t.raw_data());
        std::vector<std::int64_t> idx(static_cast<std::size_t>(nd), 0);
        for (std::int64_t i = 0; i < n; ++i) {
            std::int64_t off = ti.storage_offset;
            for (std::int64_t d = 0; d < nd; ++d) off += idx[d] * ti.strides[d];
            const std::uint64_t at = ti.data_offset + static_cast<std::uint64_t>(off) * ti.element_size;
            if (at + ti.element_size > ti.data_offset + ti.storage_bytes) fail("an element lies outside its storage");
            if (std::memcmp(got + static_cast<std::size_t>(i) * ti.element_size, file.data() + at, ti.element_size) != 0)
                fail("an element differs from the file's bytes");
            for (std::int64_t d = nd - 1; d >= 0; --d) {
                if (++idx[d] < ti.shape[d]) break;
                idx[d] = 0;
            }
        }
    }
}

// The layers above the reader: model detection, name mapping (diffusers fusions), fp8 scales,
// config inference. Only hyvideo::Error may come out of them.
void check_checkpoint(const std::string& path) {
    hyvideo::Checkpoint c = [&] {
        hyvideo::CheckpointOptions o;
        o.verify_pickle_crc = false;
        const auto models = hyvideo::Checkpoint::models(path, o);
        if (!models.empty()) {
            o.kind = models.front().kind;
            o.prefix = models.front().prefix;
        }
        return hyvideo::Checkpoint::open(path, o);
    }();
    for (const auto& name : c.weights().names()) {
        try {
            const hyvideo::Tensor t = c.weights().get(name);
            if (t.shape() != c.stored(name).shape) fail("an assembled tensor has the wrong shape");
        } catch (const hyvideo::Error&) {
        }
    }
    try {
        if (c.kind() == hyvideo::ModelKind::dit) (void)c.dit_config();
        else (void)c.vae_config();
    } catch (const hyvideo::Error&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const bool pickle_only = data[0] & 1;
    const std::vector<std::uint8_t> file = pickle_only ? wrap(data + 1, size - 1) : std::vector<std::uint8_t>(data + 1, data + size);
    const std::string path = input().write(file.data(), file.size());

    hyvideo::TorchFile::Options options;
    options.verify_pickle_crc = false;
    try {
        const hyvideo::TorchFile f = hyvideo::TorchFile::open(path, options);
        check_tensors(f, file);
    } catch (const hyvideo::Error&) {
        return 0;  // rejected cleanly: the expected outcome for most inputs
    }
    // The archive opened; the checkpoint layer must also either work or reject it cleanly.
    try {
        check_checkpoint(path);
    } catch (const hyvideo::Error&) {
    }
    return 0;
}
