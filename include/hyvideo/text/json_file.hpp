#pragma once
// Reading the tokenizers' files: every failure names the file and its role ("tokenizer.json
// '/path/…': …"), so a user who points at the wrong folder, or whose download was cut short, sees which
// file is at fault. The files are read by io/json_file.hpp and io/mapped_file.hpp (regular files only,
// bounded sizes); this adds the label for messages of its own and a non-copying member lookup.
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include <nlohmann/json.hpp>

#include "hyvideo/core/error.hpp"
#include "hyvideo/io/json_file.hpp"
#include "hyvideo/io/mapped_file.hpp"

namespace hyvideo::text {

inline std::string file_label(const std::string& what, const std::filesystem::path& path) {
    return what + " '" + path.string() + "'";
}

// j[key] without copying, or null when j is not an object or lacks the key.
inline const nlohmann::json& json_member(const nlohmann::json& j, const char* key) {
    static const nlohmann::json null_value;
    if (!j.is_object()) return null_value;
    const auto it = j.find(key);
    return it == j.end() ? null_value : *it;
}

}  // namespace hyvideo::text
