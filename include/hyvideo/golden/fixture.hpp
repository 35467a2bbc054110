#pragma once
// A golden fixture: one case of reference inputs, weights and outputs from the official PyTorch
// code (tests/data/golden/README.md). Shapes and hyper-parameters are read from the file, never
// assumed, so the same case can come with other shapes and seeds.
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyvideo/io/safetensors.hpp"

namespace hyvideo::golden {

class Fixture {
public:
    explicit Fixture(const std::filesystem::path& path)
        : file_(SafetensorsFile::open(path)), params_(file_, "param.") {
        const auto& meta = file_.metadata();
        const auto it = meta.find("case");
        HYVIDEO_CHECK(it != meta.end(), path.string(), ": not a golden fixture (no 'case' in __metadata__)");
        case_ = it->second;
        const auto cfg = meta.find("config");
        if (cfg != meta.end()) {
            try {
                config_ = nlohmann::json::parse(cfg->second);
            } catch (const nlohmann::json::exception& e) {
                throw Error(path.string() + ": the 'config' metadata is not valid JSON: " + e.what());
            }
        }
    }
    Fixture(const Fixture&) = delete;  // params_ refers to file_

    const std::string& case_name() const { return case_; }
    const nlohmann::json& config() const { return config_; }
    const std::filesystem::path& path() const { return file_.path(); }
    const SafetensorsFile& file() const { return file_; }

    // The module's weights under their official state_dict names.
    const WeightSource& params() const { return params_; }
    Tensor input(const std::string& name) const { return file_.tensor("input." + name); }
    bool has_input(const std::string& name) const { return file_.contains("input." + name); }
    Tensor output(const std::string& name) const { return file_.tensor("output." + name); }

    std::vector<std::string> output_names() const {
        std::vector<std::string> out;
        for (const auto& n : file_.names())
            if (n.rfind("output.", 0) == 0) out.push_back(n.substr(7));
        return out;
    }

    // A config value with a readable error when it is missing or of the wrong type.
    template <class T>
    static T get(const nlohmann::json& j, const std::string& key) {
        HYVIDEO_CHECK(j.is_object() && j.contains(key), "fixture config lacks '", key, "'");
        try {
            return j.at(key).get<T>();
        } catch (const nlohmann::json::exception& e) {
            throw Error("fixture config '" + key + "': " + e.what());
        }
    }

private:
    SafetensorsFile file_;
    PrefixedSource params_;
    std::string case_;
    nlohmann::json config_ = nlohmann::json::object();
};

}  // namespace hyvideo::golden
