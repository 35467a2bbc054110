#pragma once
// ShardedSafetensors: the tensors of a Hugging Face checkpoint saved in shards, as one WeightSource.
//
// `save_pretrained` splits a large model into model-00001-of-0000n.safetensors, ... and writes
// model.safetensors.index.json, whose "weight_map" maps every tensor name to the shard holding it. The
// 8B text encoder is four such shards. Each shard is mapped (SafetensorsFile), so opening reads only
// the index and the shards' headers, and get() returns a view into the mapping of the one shard that
// holds the tensor: a 16 GB model on a 24 GB machine is read a tensor at a time, by whoever asks.
//
// A single model.safetensors is the same thing with one shard and no index, so one class serves both
// and callers need not care which they were given.
//
// The index is untrusted input like the shards: every shard it names must be a plain file name beside
// it (a path could reach any file on the machine) and must hold the tensors the index puts in it, and
// no tensor may be in two shards (which copy would a loader get?). Tensors a shard holds beyond the
// index are kept: the files, not the index, are what transformers loads.
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyvideo/core/error.hpp"
#include "hyvideo/core/tensor.hpp"
#include "hyvideo/core/weight_source.hpp"
#include "hyvideo/io/json_file.hpp"
#include "hyvideo/io/safetensors.hpp"

namespace hyvideo {

// weight_map of a safetensors index: tensor name -> shard file name (a plain name in the index's folder).
// Throws naming the index for malformed JSON, a missing or non-object weight_map, a value that is not
// a file name in the same folder, or an empty map.
inline std::map<std::string, std::string> read_safetensors_index(const std::filesystem::path& index) {
    const nlohmann::json j = read_json_file(index, "safetensors index");
    HYVIDEO_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(), index.string(),
                  ": not a safetensors index (no \"weight_map\" object)");
    std::map<std::string, std::string> out;
    for (const auto& [name, file] : j["weight_map"].items()) {
        HYVIDEO_CHECK(file.is_string(), index.string(), ": weight_map[\"", name, "\"] is ", file.dump(),
                      ", not a file name");
        const std::string f = file.get<std::string>();
        HYVIDEO_CHECK(!f.empty() && f.find('/') == std::string::npos && f.find('\\') == std::string::npos &&
                          f != "." && f != "..",
                      index.string(), ": weight_map[\"", name, "\"] = \"", f, "\" is not a file name in the same folder");
        out.emplace(name, f);
    }
    HYVIDEO_CHECK(!out.empty(), index.string(), ": the weight_map is empty");
    return out;
}

class ShardedSafetensors final : public WeightSource {
public:
    // The shards an index names, each mapped. Errors name the index and the shard.
    static ShardedSafetensors open_index(const std::filesystem::path& index) {
        const auto map = read_safetensors_index(index);
        const auto dir = index.has_parent_path() ? index.parent_path() : std::filesystem::path(".");
        ShardedSafetensors s;
        s.index_ = index;
        std::set<std::string> shard_names;
        for (const auto& [_, f] : map) shard_names.insert(f);
        std::map<std::string, std::size_t> by_name;
        for (const auto& name : shard_names) {
            const auto path = dir / name;
            // Said here rather than by the open below, whose "cannot open" would not say who wanted the file.
            std::error_code ec;
            HYVIDEO_CHECK(std::filesystem::exists(path, ec), index.string(), ": names the shard ", name,
                          ", which is not in ", dir.string());
            by_name.emplace(name, s.shards_.size());
            s.add(std::make_shared<const SafetensorsFile>(SafetensorsFile::open(path)));
        }
        for (const auto& [tensor, shard] : map) {
            const SafetensorsFile& f = *s.shards_[by_name.at(shard)];
            HYVIDEO_CHECK(f.contains(tensor), index.string(), ": puts \"", tensor, "\" in ", shard,
                          ", which does not hold it");
        }
        return s;
    }

    // One safetensors file, as a source with a single shard.
    static ShardedSafetensors open_file(const std::filesystem::path& file) {
        ShardedSafetensors s;
        s.add(std::make_shared<const SafetensorsFile>(SafetensorsFile::open(file)));
        return s;
    }

    // An index (a name ending in .json) or a single safetensors file.
    static ShardedSafetensors open(const std::filesystem::path& path) {
        return path.extension() == ".json" ? open_index(path) : open_file(path);
    }

    bool contains(const std::string& name) const override { return where_.contains(name); }
    Tensor get(const std::string& name) const override { return shard_of(name).tensor(name); }
    Shape shape(const std::string& name) const override { return info(name).shape; }
    std::vector<std::string> names() const override {
        std::vector<std::string> out;
        out.reserve(where_.size());
        for (const auto& [name, _] : where_) out.push_back(name);
        return out;
    }

    // Dtype, shape and byte range as stored, without reading the tensor.
    const TensorInfo& info(const std::string& name) const { return shard_of(name).info(name); }
    // The shard holding `name`.
    const SafetensorsFile& shard_of(const std::string& name) const {
        const auto it = where_.find(name);
        HYVIDEO_CHECK(it != where_.end(), description(), ": no tensor \"", name, "\" among its ", where_.size(), " tensors");
        return *shards_[it->second];
    }

    // The index, when there is one.
    const std::optional<std::filesystem::path>& index() const { return index_; }
    // Every shard's path, in the order they were opened (sorted by file name for an index).
    std::vector<std::filesystem::path> files() const {
        std::vector<std::filesystem::path> out;
        for (const auto& f : shards_) out.push_back(f->path());
        return out;
    }
    const std::vector<std::shared_ptr<const SafetensorsFile>>& shards() const { return shards_; }
    void release_pages() const override {
        for (const auto& f : shards_) f->release_pages();
    }
    // How errors name the whole: the index, or the single file.
    std::string description() const { return index_ ? index_->string() : shards_.front()->path().string(); }

private:
    ShardedSafetensors() = default;

    void add(std::shared_ptr<const SafetensorsFile> f) {
        const std::size_t i = shards_.size();
        for (const auto& name : f->names()) {
            const auto [it, inserted] = where_.emplace(name, i);
            HYVIDEO_CHECK(inserted, description_for(f), ": the tensor \"", name, "\" is in both ",
                          shards_[it->second]->path().filename().string(), " and ", f->path().filename().string());
        }
        shards_.push_back(std::move(f));
    }
    std::string description_for(const std::shared_ptr<const SafetensorsFile>& f) const {
        return index_ ? index_->string() : f->path().string();
    }

    std::optional<std::filesystem::path> index_;
    std::vector<std::shared_ptr<const SafetensorsFile>> shards_;
    std::map<std::string, std::size_t> where_;  // tensor name -> index into shards_
};

}  // namespace hyvideo
