#pragma once
// RawTensors: the union of a checkpoint's files (torch.save archives and safetensors files), by the
// names the files give them, with what each tensor is stored as, known without reading its data.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "hyvideo/core/dtype.hpp"
#include "hyvideo/core/error.hpp"
#include "hyvideo/core/tensor.hpp"
#include "hyvideo/core/weight_source.hpp"
#include "hyvideo/io/pt_file.hpp"
#include "hyvideo/io/safetensors.hpp"

namespace hyvideo {

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
    void release_pages() const override {
        for (const auto& f : files_) f->release_pages();
    }
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

}  // namespace hyvideo
