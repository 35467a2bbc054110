#pragma once
// WeightSource: where components load their weights from.
//
// Components never open files themselves; they ask a WeightSource for tensors by their PyTorch
// state_dict names. That keeps loading independent of the storage (a safetensors file, a golden
// fixture whose weights live under "param.", a set of tensors built in a test) and lets a
// component that owns sub-modules hand each one a PrefixedSource for its own part of the names.
//
// SafetensorsFile (io/safetensors.hpp) is itself a WeightSource: a file *is* a named set of
// tensors, so an adapter class would add a type and no meaning.
#include <string>
#include <utility>
#include <vector>

#include "hyvideo/core/tensor.hpp"

namespace hyvideo {

struct WeightSource {
    virtual ~WeightSource() = default;

    virtual bool contains(const std::string& name) const = 0;
    // The tensor called `name`; throws hyvideo::Error naming it (and its file, where there is one)
    // if there is none.
    virtual Tensor get(const std::string& name) const = 0;
    // Every name, sorted.
    virtual std::vector<std::string> names() const = 0;
    // The shape of `name` without its data: sources whose get() assembles or converts a tensor (a
    // diffusers fusion, an fp8 dequantisation) answer from what they stored, so checking a whole
    // checkpoint against a model reads no weight.
    virtual Shape shape(const std::string& name) const { return get(name).shape(); }
    // Drops the pages of the source's memory-mapped files from this process's resident memory. They
    // stay in the OS page cache, and a later read of any tensor, views already handed out included,
    // faults them back in with the same bytes (the mappings are private and read-only). A model that
    // streams its weights calls it after each streamed block, so the mapped checkpoint never becomes
    // resident as a whole. Sources that map nothing ignore it.
    virtual void release_pages() const {}

protected:
    // Sources are used through references to this interface; copying or assigning through the
    // base would slice, so only derived classes may do it.
    WeightSource() = default;
    WeightSource(const WeightSource&) = default;
    WeightSource& operator=(const WeightSource&) = default;
};

// The part of another source whose names start with `prefix`, with the prefix removed:
// PrefixedSource(fixture, "param.").get("img_in.proj.weight") is fixture.get("param.img_in.proj.weight").
//
// It refers to `inner` without owning it, so `inner` must outlive it; binding a temporary is a
// compile error for that reason.
class PrefixedSource final : public WeightSource {
public:
    PrefixedSource(const WeightSource& inner, std::string prefix) : inner_(&inner), prefix_(std::move(prefix)) {}
    PrefixedSource(const WeightSource&& inner, std::string prefix) = delete;

    bool contains(const std::string& name) const override { return inner_->contains(prefix_ + name); }
    // Looked up under the full name, so a missing weight is reported as the file spells it.
    Tensor get(const std::string& name) const override { return inner_->get(prefix_ + name); }
    Shape shape(const std::string& name) const override { return inner_->shape(prefix_ + name); }
    void release_pages() const override { inner_->release_pages(); }
    std::vector<std::string> names() const override {
        std::vector<std::string> out;
        for (auto& n : inner_->names())
            if (n.starts_with(prefix_)) out.push_back(n.substr(prefix_.size()));
        // Stripping a common prefix keeps the inner order, which is already sorted.
        return out;
    }

    const std::string& prefix() const { return prefix_; }

private:
    const WeightSource* inner_;
    std::string prefix_;
};

}  // namespace hyvideo
