#pragma once
// pt_file: PyTorch checkpoints (`torch.save`, the zip format of PyTorch 1.6 and later) as a WeightSource.
//
// The archive (io/zip.hpp) holds `<root>/data.pkl` and one stored entry per storage. TorchFile runs
// data.pkl through the pickle subset of io/torch_pickle.hpp, then flattens the object it describes
// into dotted names: {"module": {"img_in.proj.weight": T}} gives the tensor "module.img_in.proj.weight".
// That one rule covers every wrapper a released file uses (the DiT's "module" or "ema" key, the VAE's
// "state_dict" key and "vae." prefix); checkpoint/checkpoint.hpp finds the model's prefix among those names.
// Values that are not tensors (a step counter, a version string) are kept as short texts for
// `hyvideo inspect`.
//
// Tensors are zero-copy views into the mapped file wherever that is possible: torch.save aligns every
// storage to 64 bytes, so a contiguous tensor is a Tensor::wrap of the mapping, held alive by it. A
// non-contiguous tensor (a saved transpose, a slice with strides) is copied into contiguous memory when
// it is read; one whose elements repeat (a stride of 0, overlapping strides) is refused, because copying
// it could take more memory than the whole file. Tensors of dtypes hyvideo does not hold (float64,
// int32, ...) are listed with their torch dtype and refused only when read.
//
// Everything read from the file is validated before use, as the safetensors reader does: the archive
// structure, the pickle, each storage's size against its entry, and each tensor's extent (offset,
// sizes and strides, in overflow-checked arithmetic) against its storage. data.pkl's CRC-32 is checked
// on open; the storages' only when asked (verify_storages), since that reads the whole file.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "hyvideo/core/checked_math.hpp"
#include "hyvideo/core/dtype.hpp"
#include "hyvideo/core/error.hpp"
#include "hyvideo/core/tensor.hpp"
#include "hyvideo/core/weight_source.hpp"
#include "hyvideo/io/torch_pickle.hpp"
#include "hyvideo/io/zip.hpp"

namespace hyvideo {

// Where one tensor of a .pt file lives, and what it is.
struct PtTensorInfo {
    std::string dtype_name;  // torch's name: "bfloat16", "float64", ...
    bool supported = false;  // whether hyvideo has the dtype (then `dtype` holds it)
    DType dtype = DType::f32;
    std::size_t element_size = 0;
    Shape shape, strides;           // strides in elements, as torch has them
    std::int64_t storage_offset = 0;  // in elements
    std::string storage;              // the archive entry, "<root>/data/<key>"
    std::uint64_t data_offset = 0;    // file offset of the storage's first byte
    std::uint64_t storage_bytes = 0;
    bool contiguous = false;

    std::int64_t numel() const { return shape_numel(shape); }
};

class TorchFile final : public WeightSource {
public:
    struct Options {
        // Off only for the fuzzer, which must reach the pickle machine with mutated pickles.
        bool verify_pickle_crc = true;
    };

    // Containers nest this deep in no checkpoint; deeper input is a cycle or hostile.
    static constexpr int max_depth = 32;

    static TorchFile open(const std::filesystem::path& path) { return open(path, Options{}); }
    static TorchFile open(const std::filesystem::path& path, Options options) {
        TorchFile f;
        f.archive_ = std::make_shared<const ZipArchive>(ZipArchive::open(path));
        f.load(options);
        return f;
    }

    const std::filesystem::path& path() const { return archive_->path(); }
    const ZipArchive& archive() const { return *archive_; }
    void release_pages() const override { archive_->mapping()->release_pages(); }
    const std::string& root() const { return root_; }

    std::vector<std::string> names() const override {
        std::vector<std::string> out;
        out.reserve(tensors_.size());
        for (const auto& [name, _] : tensors_) out.push_back(name);
        return out;
    }
    bool contains(const std::string& name) const override { return tensors_.contains(name); }

    const PtTensorInfo& info(const std::string& name) const {
        const auto it = tensors_.find(name);
        if (it == tensors_.end()) fail("no tensor \"", name, "\" among its ", tensors_.size(), " tensors");
        return it->second;
    }

    // Non-tensor values, by dotted name, as short Python-like texts ("3", "'1.0'", "None", "(2, 3)").
    const std::vector<std::pair<std::string, std::string>>& values() const { return values_; }

    Shape shape(const std::string& name) const override { return info(name).shape; }

    Tensor get(const std::string& name) const override {
        const PtTensorInfo& ti = info(name);
        if (!ti.supported)
            fail("tensor \"", name, "\" has dtype ", ti.dtype_name,
                 ", which hyvideo does not hold (float32, float16, bfloat16, float8_e4m3fn, int64, bool)");
        if (ti.numel() == 0) return Tensor::empty(ti.shape, ti.dtype);
        const std::byte* base = archive_->mapping()->data() + ti.data_offset;
        const auto esz = static_cast<std::int64_t>(ti.element_size);
        if (ti.contiguous) {
            const std::byte* p = base + ti.storage_offset * esz;
            // Misaligned data is legal in a zip (another writer, no padding) but reading a misaligned
            // float is undefined behaviour, so such a tensor is copied.
            if (reinterpret_cast<std::uintptr_t>(p) % ti.element_size == 0)
                return Tensor::wrap(archive_->mapping(), p, ti.shape, ti.dtype);
            Tensor copy = Tensor::empty(ti.shape, ti.dtype);
            std::memcpy(copy.raw_data(), p, copy.nbytes());
            return copy;
        }
        return gather(ti, base);
    }

    // Checks the CRC-32 of every entry (reads the whole file); throws naming the first damaged one.
    void verify_storages() const {
        for (const auto& e : archive_->entries())
            if (e.stored()) archive_->verify_crc(e);
    }

private:
    TorchFile() = default;

    template <class... Args>
    [[noreturn]] void fail(Args&&... args) const {
        throw Error(detail::concat(archive_->path().string(), ": ", std::forward<Args>(args)...));
    }

    void load(const Options& options) {
        // torch.save names the root folder after the file (older versions: "archive"); data.pkl sits
        // directly inside it.
        const ZipEntry* pkl = nullptr;
        for (const auto& e : archive_->entries()) {
            const auto slash = e.name.find('/');
            if (slash == std::string::npos || e.name.substr(slash) != "/data.pkl") continue;
            if (pkl != nullptr) fail("two pickles (", pkl->name, ", ", e.name, "): not a single torch.save archive");
            pkl = &e;
        }
        if (pkl == nullptr) fail("a ZIP archive without <root>/data.pkl, so not a torch.save file");
        root_ = pkl->name.substr(0, pkl->name.find('/'));
        if (const ZipEntry* order = archive_->find(root_ + "/byteorder")) {
            const auto b = archive_->data(*order);
            const std::string text(reinterpret_cast<const char*>(b.data()), b.size());
            if (text != "little") fail("the storages are stored \"", text.substr(0, 16), "\"-endian; only little-endian is supported");
        }
        if (options.verify_pickle_crc) archive_->verify_crc(*pkl);

        pickle::Unpickler vm(archive_->data(*pkl), detail::concat(archive_->path().string(), ": ", pkl->name));
        const pickle::Ref root = vm.run();
        if (vm.at(root).kind != pickle::Kind::dict)
            fail(pkl->name, " holds a ", pickle::kind_name(vm.at(root).kind), ", not a dict of tensors");
        // Shared containers are walked once per reference; the budget stops a graph that shares them
        // exponentially often (a dict holding itself twice, twenty levels deep) from running forever.
        budget_ = 2 * vm.object_count() + 1024;
        flatten(vm, root, "", 0);
    }

    void flatten(const pickle::Unpickler& vm, pickle::Ref ref, const std::string& prefix, int depth) {
        if (depth > max_depth) fail("containers nest deeper than ", max_depth, " levels (or refer to themselves)");
        if (budget_-- == 0) fail("the pickle refers to the same containers too often to be a checkpoint");
        const pickle::Object& o = vm.at(ref);
        const auto child = [&](const std::string& key) { return prefix.empty() ? key : prefix + "." + key; };
        switch (o.kind) {
            case pickle::Kind::dict:
                if (o.items.empty() && !prefix.empty()) add_value(vm, prefix, ref);
                for (std::size_t i = 0; i < o.items.size(); i += 2) {
                    const pickle::Object& k = vm.at(o.items[i]);
                    std::string key;
                    if (k.kind == pickle::Kind::string) key = k.text;
                    else if (k.kind == pickle::Kind::integer) key = std::to_string(k.integer);
                    else fail("a dict key of type ", pickle::kind_name(k.kind), " at \"", prefix, "\"");
                    flatten(vm, o.items[i + 1], child(key), depth + 1);
                }
                return;
            case pickle::Kind::list:
            case pickle::Kind::tuple:
                // Lists of tensors are named by index; a list of plain values is one value.
                if (std::any_of(o.items.begin(), o.items.end(), [&](pickle::Ref r) { return holds_tensor(vm, r, 0); })) {
                    for (std::size_t i = 0; i < o.items.size(); ++i) flatten(vm, o.items[i], child(std::to_string(i)), depth + 1);
                } else {
                    add_value(vm, prefix, ref);
                }
                return;
            case pickle::Kind::tensor: add_tensor(vm, vm.tensors()[o.type], prefix); return;
            default: add_value(vm, prefix, ref); return;
        }
    }

    // Whether a container holds a tensor within a few levels. It shares the walk's budget, so a list
    // holding the same list a thousand times, four levels deep, is refused rather than explored.
    bool holds_tensor(const pickle::Unpickler& vm, pickle::Ref ref, int depth) {
        if (budget_-- == 0) fail("the pickle refers to the same containers too often to be a checkpoint");
        const pickle::Object& o = vm.at(ref);
        if (o.kind == pickle::Kind::tensor) return true;
        if (depth > 4 || (o.kind != pickle::Kind::list && o.kind != pickle::Kind::tuple && o.kind != pickle::Kind::dict))
            return false;
        return std::any_of(o.items.begin(), o.items.end(), [&](pickle::Ref r) { return holds_tensor(vm, r, depth + 1); });
    }

    // Values are kept for display only, so at most 256 of them (and their texts are built only then).
    void add_value(const pickle::Unpickler& vm, const std::string& name, pickle::Ref ref) {
        if (values_.size() < 256) values_.emplace_back(name.empty() ? "<root>" : name, repr(vm, ref, 0));
    }

    // A short Python-like text of a plain value, cut at 80 characters.
    static std::string repr(const pickle::Unpickler& vm, pickle::Ref ref, int depth) {
        const pickle::Object& o = vm.at(ref);
        std::string s;
        switch (o.kind) {
            case pickle::Kind::none: s = "None"; break;
            case pickle::Kind::boolean: s = o.integer ? "True" : "False"; break;
            case pickle::Kind::integer: s = std::to_string(o.integer); break;
            case pickle::Kind::floating: {
                char buf[32];
                std::snprintf(buf, sizeof buf, "%.17g", o.floating);
                s = buf;
                break;
            }
            case pickle::Kind::string: s = "'" + o.text.substr(0, 60) + (o.text.size() > 60 ? "...'" : "'"); break;
            case pickle::Kind::bytes: s = "<" + std::to_string(o.text.size()) + " bytes>"; break;
            case pickle::Kind::global: s = "<" + o.text + ">"; break;
            case pickle::Kind::storage: s = "<storage>"; break;
            case pickle::Kind::tensor: s = "<tensor>"; break;
            case pickle::Kind::dict: s = o.items.empty() ? "{}" : "{" + std::to_string(o.items.size() / 2) + " items}"; break;
            case pickle::Kind::list:
            case pickle::Kind::tuple: {
                const bool list = o.kind == pickle::Kind::list;
                s = list ? "[" : "(";
                for (std::size_t i = 0; i < o.items.size() && s.size() < 80; ++i)
                    s += (i ? ", " : "") + (depth < 3 ? repr(vm, o.items[i], depth + 1) : std::string("..."));
                s += list ? "]" : (o.items.size() == 1 ? ",)" : ")");
                break;
            }
        }
        return s.size() > 80 ? s.substr(0, 77) + "..." : s;
    }

    // Validates one tensor against its storage and records it. All arithmetic is checked: a shape
    // or stride from the file can be any 64-bit value.
    void add_tensor(const pickle::Unpickler& vm, const pickle::TensorRef& t, const std::string& name) {
        const auto bad = [&](auto&&... why) { fail("tensor \"", name, "\": ", why...); };
        if (tensors_.contains(name)) bad("the name appears twice");
        const pickle::StorageRef& s = vm.storages()[vm.at(t.storage).type];
        const pickle::TorchType& type = pickle::torch_types[t.type];

        PtTensorInfo ti;
        ti.dtype_name = type.name;
        ti.supported = type.supported;
        ti.dtype = type.dtype;
        ti.element_size = type.size;
        ti.shape = t.shape;
        ti.strides = t.stride;
        ti.storage_offset = t.offset;
        ti.storage = root_ + "/data/" + s.key;
        const ZipEntry* entry = archive_->find(ti.storage);
        if (entry == nullptr) bad("its storage \"", ti.storage, "\" is not in the archive");
        ti.data_offset = entry->data_offset;
        ti.storage_bytes = archive_->data(*entry).size();  // refuses compressed entries

        const std::size_t storage_element = s.type == pickle::untyped_storage ? 1 : pickle::torch_types[s.type].size;
        const auto declared = detail::checked_mul<std::uint64_t>(static_cast<std::uint64_t>(s.numel), storage_element);
        if (!declared || *declared != ti.storage_bytes)
            bad("its storage \"", ti.storage, "\" holds ", ti.storage_bytes, " bytes, but the pickle declares ", s.numel,
                " elements of ", storage_element, " bytes");
        const std::uint64_t capacity = ti.storage_bytes / ti.element_size;  // elements of the tensor's dtype

        // The element count must fit int64 for Tensor (with zero dimensions counted as 1, as the
        // safetensors reader does), and the last element the view reaches must lie in the storage.
        std::int64_t extent = 1, last = t.offset;
        bool empty = false;
        for (std::size_t d = 0; d < t.shape.size(); ++d) {
            const auto grown = detail::checked_mul<std::int64_t>(extent, std::max<std::int64_t>(t.shape[d], 1));
            if (!grown) bad("its size ", shape_str(t.shape), " overflows int64");
            extent = *grown;
            empty = empty || t.shape[d] == 0;
            if (t.shape[d] > 0) {
                const auto step = detail::checked_mul<std::int64_t>(t.shape[d] - 1, t.stride[d]);
                if (!step || __builtin_add_overflow(last, *step, &last))
                    bad("its size ", shape_str(t.shape), " and stride ", shape_str(t.stride), " overflow int64");
            }
        }
        if (empty) {
            if (static_cast<std::uint64_t>(t.offset) > capacity)
                bad("its offset ", t.offset, " lies past its storage of ", capacity, " elements");
        } else if (static_cast<std::uint64_t>(last) >= capacity) {
            bad("offset ", t.offset, ", size ", shape_str(t.shape), " and stride ", shape_str(t.stride),
                " reach element ", last, " of a storage holding ", capacity, " ", type.name, " elements");
        }
        ti.contiguous = true;
        std::int64_t expected = 1;
        for (std::size_t d = t.shape.size(); d-- > 0;) {
            if (t.shape[d] != 1 && t.stride[d] != expected) ti.contiguous = false;
            expected *= std::max<std::int64_t>(t.shape[d], 1);
        }
        if (!empty && !ti.contiguous && static_cast<std::uint64_t>(extent) > capacity)
            bad("a view of ", extent, " elements over a storage of ", capacity,
                " repeats elements (a stride of 0, or strides that overlap); such a tensor is refused, since "
                "copying it could take more memory than the file");
        tensors_.emplace(name, std::move(ti));
    }

    // A contiguous copy of a strided view, row by row.
    static Tensor gather(const PtTensorInfo& ti, const std::byte* base) {
        Tensor out = Tensor::empty(ti.shape, ti.dtype);
        auto* dst = static_cast<std::byte*>(out.raw_data());
        const auto esz = ti.element_size;
        const std::size_t nd = ti.shape.size();
        std::vector<std::int64_t> idx(nd, 0);
        const std::int64_t n = ti.numel();
        for (std::int64_t i = 0; i < n; ++i) {
            std::int64_t off = ti.storage_offset;
            for (std::size_t d = 0; d < nd; ++d) off += idx[d] * ti.strides[d];
            std::memcpy(dst + static_cast<std::size_t>(i) * esz, base + static_cast<std::size_t>(off) * esz, esz);
            for (std::size_t d = nd; d-- > 0;) {
                if (++idx[d] < ti.shape[d]) break;
                idx[d] = 0;
            }
        }
        return out;
    }

    std::shared_ptr<const ZipArchive> archive_;
    std::string root_;
    std::map<std::string, PtTensorInfo> tensors_;
    std::vector<std::pair<std::string, std::string>> values_;
    std::size_t budget_ = 0;
};

}  // namespace hyvideo
