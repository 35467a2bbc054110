#pragma once
// Reading the tokenizers' files: every failure names the file and its role ("tokenizer.json
// '/path/…': …"), so a user who points at the wrong folder, or whose download was cut short, sees which
// file is at fault.
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include <nlohmann/json.hpp>

#include "hyvideo/core/error.hpp"

namespace hyvideo::text {

inline std::string file_label(const std::string& what, const std::filesystem::path& path) {
    return what + " '" + path.string() + "'";
}

// The whole of a tokenizer file. Only regular files are read (a FIFO would block, a directory is a wrong
// path), and at most max_bytes, so that a checkpoint named by mistake is refused rather than loaded.
inline std::string read_tokenizer_file(const std::filesystem::path& path, const std::string& what,
                                       std::uint64_t max_bytes = std::uint64_t{256} << 20) {
    namespace fs = std::filesystem;
    const std::string name = file_label(what, path);
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (st.type() == fs::file_type::not_found) throw Error(name + ": cannot open: No such file or directory");
    if (ec) throw Error(name + ": cannot open: " + ec.message());
    if (fs::is_directory(st)) throw Error(name + ": is a directory, not a file");
    if (!fs::is_regular_file(st)) throw Error(name + ": is not a regular file");
    const std::uint64_t size = fs::file_size(path, ec);
    if (ec) throw Error(name + ": cannot read its size: " + ec.message());
    if (size > max_bytes)
        throw Error(name + ": " + std::to_string(size) + " bytes is more than a tokenizer file can be (" +
                    std::to_string(max_bytes) + ")");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(name + ": cannot open: " + std::strerror(errno));
    std::string data(static_cast<std::size_t>(size), '\0');
    in.read(data.data(), static_cast<std::streamsize>(data.size()));
    if (in.bad()) throw Error(name + ": read failed");
    data.resize(static_cast<std::size_t>(in.gcount()));  // shorter if it shrank since: what is there is the file
    return data;
}

inline nlohmann::json read_json_file(const std::filesystem::path& path, const std::string& what) {
    const std::string data = read_tokenizer_file(path, what);
    try {
        return nlohmann::json::parse(data);
    } catch (const nlohmann::json::exception& e) {
        throw Error(file_label(what, path) + ": not valid JSON (" + e.what() + ")");
    }
}

// j[key] without copying, or null when j is not an object or lacks the key.
inline const nlohmann::json& json_member(const nlohmann::json& j, const char* key) {
    static const nlohmann::json null_value;
    if (!j.is_object()) return null_value;
    const auto it = j.find(key);
    return it == j.end() ? null_value : *it;
}

}  // namespace hyvideo::text
