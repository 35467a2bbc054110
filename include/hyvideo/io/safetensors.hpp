#pragma once
// safetensors: reading (memory-mapped, zero-copy) and writing.
//
// Layout of a file: an 8-byte little-endian header length N, N bytes of JSON header, then the data
// section. The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
// (byte offsets into the data section) and may hold "__metadata__", an object of strings.
//
// Reading treats the file as untrusted input: every field is checked before it is used, so a
// damaged or hostile file gives a hyvideo::Error naming the file (and the tensor), never an
// out-of-bounds read. fuzz/fuzz_safetensors.cpp exercises that promise; docs/fuzzing.md records it.
// Beyond the reference implementation's rules, repeated keys, NUL bytes and nesting deeper than the
// format uses are rejected; gaps between tensors and unknown keys in an entry are accepted, as
// harmless. A file truncated while it is mapped reads as zeros past its new end and is reported by
// check_intact() / check_mapped_inputs() (io/mapped_file.hpp) instead of faulting. save_safetensors
// never truncates; it replaces files by renaming.
//
// SafetensorsFile implements WeightSource directly rather than through an adapter: a file already
// is a set of named tensors, and components can load from it, or a PrefixedSource over it, as is.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "hyvideo/core/checked_math.hpp"
#include "hyvideo/core/dtype.hpp"
#include "hyvideo/core/error.hpp"
#include "hyvideo/core/tensor.hpp"
#include "hyvideo/core/weight_source.hpp"
#include "hyvideo/io/atomic_file.hpp"
#include "hyvideo/io/mapped_file.hpp"

namespace hyvideo {

// Where one tensor lives in a safetensors file.
struct TensorInfo {
    DType dtype = DType::f32;
    Shape shape;
    // Byte range [begin, end) in the data section (the file minus the 8-byte length and the header).
    std::uint64_t begin = 0;
    std::uint64_t end = 0;

    std::uint64_t nbytes() const { return end - begin; }
};

class SafetensorsFile final : public WeightSource {
public:
    // Headers are a few KB even for 13B-parameter checkpoints; the reference implementation caps
    // them at 100 MB, and so do we, so that a corrupt length cannot make the JSON parser allocate
    // without bound.
    static constexpr std::uint64_t max_header_bytes = 100'000'000;

    static SafetensorsFile open(const std::filesystem::path& path) {
        SafetensorsFile f;
        f.path_ = path;
        f.mapping_ = map_file(path, 8, "the 8-byte header length of a safetensors file");
        f.parse_header();
        return f;
    }

    const std::filesystem::path& path() const { return path_; }
    void release_pages() const override { mapping_->release_pages(); }
    const std::map<std::string, std::string>& metadata() const { return metadata_; }

    std::vector<std::string> names() const override {
        std::vector<std::string> out;
        out.reserve(infos_.size());
        for (auto& [name, _] : infos_) out.push_back(name);
        return out;
    }
    bool contains(const std::string& name) const override { return infos_.contains(name); }

    const TensorInfo& info(const std::string& name) const {
        auto it = infos_.find(name);
        HYVIDEO_CHECK(it != infos_.end(), path_.string(), ": no tensor \"", name, "\" among its ", infos_.size(),
                      " tensors");
        return it->second;
    }

    // A zero-copy view into the mapping. The mapping is read-only: writing through the view faults,
    // so clone() a tensor to change it. The data section of a well-formed file keeps every tensor
    // aligned to its element size; a tensor that is not (the format does not forbid it) is copied
    // into aligned memory instead, since reading a misaligned float is undefined behaviour.
    Tensor tensor(const std::string& name) const {
        const TensorInfo& ti = info(name);
        const std::byte* p = mapping_->data() + data_start_ + ti.begin;
        if (reinterpret_cast<std::uintptr_t>(p) % dtype_size(ti.dtype) == 0)
            return Tensor::wrap(mapping_, p, ti.shape, ti.dtype);
        Tensor copy = Tensor::empty(ti.shape, ti.dtype);
        if (ti.nbytes() > 0) std::memcpy(copy.raw_data(), p, ti.nbytes());
        return copy;
    }
    Tensor get(const std::string& name) const override { return tensor(name); }
    Shape shape(const std::string& name) const override { return info(name).shape; }

private:
    using json = nlohmann::json;

    SafetensorsFile() = default;

    template <class... Args>
    [[noreturn]] void fail(Args&&... args) const {
        throw Error(detail::concat(path_.string(), ": ", std::forward<Args>(args)...));
    }
    template <class... Args>
    [[noreturn]] void fail_tensor(const std::string& name, Args&&... args) const {
        fail("tensor \"", name, "\": ", std::forward<Args>(args)...);
    }

    void parse_header() {
        const std::byte* bytes = mapping_->data();
        const std::uint64_t file_size = mapping_->size();
        std::uint64_t header_len = 0;
        for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | std::to_integer<std::uint64_t>(bytes[i]);
        if (header_len > max_header_bytes)
            fail("header length ", header_len, " exceeds the ", max_header_bytes, "-byte limit");
        if (header_len > file_size - 8)
            fail("header length ", header_len, " exceeds the ", file_size - 8, " bytes after the length field");
        data_start_ = 8 + header_len;
        const std::uint64_t data_size = file_size - data_start_;

        const char* text = reinterpret_cast<const char*>(bytes + 8);
        // The reference implementation insists on '{' first; it also rules out a byte-order mark,
        // which the JSON parser would otherwise skip.
        if (header_len == 0 || text[0] != '{') fail("header does not start with '{'");
        // JSON has no raw NUL anywhere, but the parser takes one as the end of its input and would
        // silently ignore whatever follows.
        if (std::memchr(text, 0, header_len) != nullptr) fail("header contains a NUL byte");

        const json header = parse_json(text, text + header_len);
        if (!header.is_object()) fail("header is not a JSON object");

        std::vector<std::pair<const std::string*, const TensorInfo*>> by_offset;
        for (auto& [name, entry] : header.items()) {
            if (name == "__metadata__") {
                parse_metadata(entry);
                continue;
            }
            auto [it, _] = infos_.emplace(name, parse_entry(name, entry, data_size));
            by_offset.emplace_back(&it->first, &it->second);
        }
        check_no_overlap(by_offset);
    }

    // JSON text to a value, rejecting what nlohmann accepts but a safetensors header must not
    // contain: repeated keys (which would make a tensor's identity ambiguous) and nesting deeper
    // than the format uses (whose only effect could be to exhaust memory).
    json parse_json(const char* first, const char* last) const {
        // A header nests objects/arrays at depths 0 (the header), 1 (entries, __metadata__) and 2
        // (shape, data_offsets); the parser reports a container's start at its parent's depth.
        constexpr int deepest_container = 2;
        bool too_deep = false;
        std::string duplicate;
        std::array<std::set<std::string>, deepest_container + 1> keys;  // by depth, of the open object
        std::string entry_name;                                        // the last key at depth 1
        auto callback = [&](int depth, json::parse_event_t event, json& value) {
            switch (event) {
                case json::parse_event_t::object_start:
                case json::parse_event_t::array_start:
                    if (depth > deepest_container) {
                        too_deep = true;
                        return false;  // discard: nothing below it is built
                    }
                    if (depth + 1 <= deepest_container) keys[depth + 1].clear();
                    return true;
                case json::parse_event_t::key:
                    if (depth <= deepest_container) {
                        const auto& k = value.get_ref<const std::string&>();
                        if (depth == 1) entry_name = k;
                        if (!keys[depth].insert(k).second && duplicate.empty())
                            duplicate = depth == 1 ? "\"" + k + "\"" : "\"" + k + "\" in \"" + entry_name + "\"";
                    }
                    return true;
                default:
                    return true;
            }
        };
        json header;
        try {
            header = json::parse(first, last, callback);
        } catch (const json::exception& e) {
            fail("header is not valid UTF-8 JSON: ", e.what());
        }
        if (too_deep) fail("header nests arrays or objects deeper than a safetensors header");
        if (!duplicate.empty()) fail("header repeats the key ", duplicate);
        return header;
    }

    void parse_metadata(const json& entry) {
        if (!entry.is_object()) fail("__metadata__ is not an object");
        for (auto& [key, value] : entry.items()) {
            if (!value.is_string()) fail("__metadata__ \"", key, "\" is not a string");
            metadata_[key] = value.get<std::string>();
        }
    }

    // A JSON non-negative integer; nullopt for anything else (negative, fractional, too large for
    // 64 bits, not a number). "-0" is zero: JSON allows it and it harms nothing.
    static std::optional<std::uint64_t> json_count(const json& j) {
        if (j.is_number_unsigned()) return j.get<std::uint64_t>();
        if (j.is_number_integer() && j.get<std::int64_t>() == 0) return 0;
        return std::nullopt;
    }

    // Every check happens before the value is used, in unsigned 64-bit arithmetic with overflow
    // detection, so that no combination of numbers can produce an out-of-bounds view.
    TensorInfo parse_entry(const std::string& name, const json& entry, std::uint64_t data_size) const {
        if (!entry.is_object()) fail_tensor(name, "entry is not an object");
        TensorInfo ti;

        auto dtype_it = entry.find("dtype");
        if (dtype_it == entry.end() || !dtype_it->is_string()) fail_tensor(name, "missing or non-string \"dtype\"");
        const auto& dtype_text = dtype_it->get_ref<const std::string&>();
        auto dtype = dtype_from_safetensors(dtype_text);
        if (!dtype) fail_tensor(name, "unsupported dtype \"", dtype_text, "\" (supported: F32, F16, BF16, F8_E4M3, I64, BOOL)");
        ti.dtype = *dtype;

        auto shape_it = entry.find("shape");
        if (shape_it == entry.end() || !shape_it->is_array()) fail_tensor(name, "missing or non-array \"shape\"");
        // Tensor's stride arithmetic multiplies every dimension, zeros aside, in int64: the
        // product of max(d, 1) must fit even when a zero dimension makes the tensor empty.
        std::int64_t extent = 1;
        bool empty = false;
        for (const json& d : *shape_it) {
            const auto dim = json_count(d);
            if (!dim) fail_tensor(name, "\"shape\" holds ", d.is_number_integer() ? "a negative dimension" : "a non-integer");
            if (*dim > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                fail_tensor(name, "dimension ", *dim, " overflows int64");
            ti.shape.push_back(static_cast<std::int64_t>(*dim));
            empty = empty || *dim == 0;
            auto grown = detail::checked_mul<std::int64_t>(extent, std::max<std::int64_t>(ti.shape.back(), 1));
            if (!grown) fail_tensor(name, "the element count overflows int64 at dimension ", ti.shape.size() - 1);
            extent = *grown;
        }
        const std::uint64_t numel = empty ? 0 : static_cast<std::uint64_t>(extent);
        auto expected_bytes = detail::checked_mul<std::uint64_t>(numel, dtype_size(ti.dtype));
        if (!expected_bytes) fail_tensor(name, "shape ", shape_str(ti.shape), " overflows 64-bit byte counts");

        auto offsets_it = entry.find("data_offsets");
        std::optional<std::uint64_t> begin, end;
        if (offsets_it != entry.end() && offsets_it->is_array() && offsets_it->size() == 2) {
            begin = json_count((*offsets_it)[0]);
            end = json_count((*offsets_it)[1]);
        }
        if (!begin || !end) fail_tensor(name, "\"data_offsets\" is not [begin, end] of non-negative integers");
        ti.begin = *begin;
        ti.end = *end;
        if (ti.begin > ti.end) fail_tensor(name, "data_offsets [", ti.begin, ", ", ti.end, "] end before they begin");
        if (ti.end > data_size)
            fail_tensor(name, "data_offsets [", ti.begin, ", ", ti.end, "] run past the ", data_size,
                        "-byte data section");
        if (ti.nbytes() != *expected_bytes)
            fail_tensor(name, "data_offsets [", ti.begin, ", ", ti.end, "] hold ", ti.nbytes(), " bytes, but ",
                        dtype_text, " ", shape_str(ti.shape), " needs ", *expected_bytes);
        return ti;
    }

    // Two tensors sharing bytes would alias each other. Gaps are allowed: they cost nothing and
    // some writers align tensors with padding. Empty tensors occupy no bytes and overlap nothing.
    void check_no_overlap(std::vector<std::pair<const std::string*, const TensorInfo*>>& tensors) const {
        std::erase_if(tensors, [](auto& t) { return t.second->nbytes() == 0; });
        std::sort(tensors.begin(), tensors.end(), [](auto& a, auto& b) { return a.second->begin < b.second->begin; });
        for (std::size_t i = 1; i < tensors.size(); ++i) {
            const auto& [prev_name, prev] = tensors[i - 1];
            const auto& [name, cur] = tensors[i];
            // Sorted and disjoint so far, so the previous tensor has the largest end.
            if (cur->begin < prev->end)
                fail_tensor(*name, "data_offsets [", cur->begin, ", ", cur->end, "] overlap tensor \"", *prev_name,
                            "\" at [", prev->begin, ", ", prev->end, "]");
        }
    }

    std::filesystem::path path_;
    std::shared_ptr<const FileMapping> mapping_;
    std::uint64_t data_start_ = 0;
    std::map<std::string, TensorInfo> infos_;
    std::map<std::string, std::string> metadata_;
};

// Writes `tensors` to `path` as safetensors, in the given order, each contiguous, after a header
// padded with spaces to a multiple of 8 bytes. Strided tensors are made contiguous first. The file
// appears only once it is complete: on any error (unwritable directory, repeated or reserved name,
// non-CPU tensor, a name or metadata that is not valid UTF-8) nothing is left at `path`.
//
// Tensors are not reordered, so data alignment is the caller's: put wider dtypes first (as the
// reference writer does) and every tensor is aligned to its element size.
inline void save_safetensors(const std::filesystem::path& path,
                             const std::vector<std::pair<std::string, Tensor>>& tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
    using json = nlohmann::json;
    const auto where = [&](const std::string& name) { return detail::concat(path.string(), ": tensor \"", name, "\": "); };

    json header = json::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;
    std::vector<Tensor> contiguous;
    contiguous.reserve(tensors.size());
    std::uint64_t offset = 0;
    for (auto& [name, t] : tensors) {
        HYVIDEO_CHECK(name != "__metadata__", where(name), "the name is reserved for the metadata");
        HYVIDEO_CHECK(!header.contains(name), where(name), "the name appears twice");
        HYVIDEO_CHECK(t.defined(), where(name), "undefined tensor");
        HYVIDEO_CHECK(t.device() == Device::cpu, where(name), "on ", device_name(t.device()),
                      "; copy it to the CPU first");
        contiguous.push_back(t.contiguous());
        const std::uint64_t nbytes = contiguous.back().nbytes();
        header[name] = {{"dtype", std::string(safetensors_name(t.dtype()))},
                        {"shape", t.shape()},
                        {"data_offsets", {offset, offset + nbytes}}};
        offset += nbytes;
    }

    std::string text;
    try {
        text = header.dump();
    } catch (const json::exception& e) {
        throw Error(detail::concat(path.string(), ": a tensor name or metadata string is not valid UTF-8: ", e.what()));
    }
    // Padding to 8 bytes puts the data section, and with it every 8-byte-aligned offset, on an
    // 8-byte boundary of the (page-aligned) mapping.
    text.append((8 - text.size() % 8) % 8, ' ');

    std::array<unsigned char, 8> length{};
    for (std::size_t i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(text.size()) >> (8 * i));

    AtomicFile out(path);
    out.write(length.data(), length.size());
    out.write(text.data(), text.size());
    for (const Tensor& t : contiguous)
        if (t.nbytes() > 0) out.write(t.raw_data(), t.nbytes());
    out.commit();
}

}  // namespace hyvideo
