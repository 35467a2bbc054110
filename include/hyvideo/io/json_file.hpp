#pragma once
// A JSON document from a file the user names (a config, a config.json, a sharded checkpoint's index):
// read through read_small_file, so a FIFO or device is refused and the size is bounded, and refused if it
// holds a NUL byte, where nlohmann's parser would stop and take the part before it for the whole file.
// Every error names the file, and `what` it is when given.
#include <cstdint>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "hyvideo/core/error.hpp"
#include "hyvideo/io/mapped_file.hpp"

namespace hyvideo {

inline nlohmann::json read_json_file(const std::filesystem::path& path, const std::string& what = "",
                                     std::uint64_t max_bytes = 64u << 20) {
    const std::string text = read_small_file(path, what, max_bytes);
    const std::string name = what.empty() ? path.string() : what + " '" + path.string() + "'";
    HYVIDEO_CHECK(text.find('\0') == std::string::npos, name, ": holds a NUL byte; not a JSON file");
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw Error(name + ": not valid JSON: " + e.what());
    }
}

}  // namespace hyvideo
