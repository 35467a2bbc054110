// The include layers of docs/architecture.md#layers, checked on the headers themselves: a header
// includes headers of its own room and of rooms in lower layers only, so the file formats never learn
// about models, models never about checkpoint layouts, and two rooms of one layer (the DiT and the VAE)
// never about each other.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>

namespace {

namespace fs = std::filesystem;

// The rooms of include/hyvideo/ and their layers, lowest first.
const std::map<std::string, int> layers = {
    {"core", 0},                                                                // tensors, errors, threads, WeightSource, config reading
    {"io", 1},         {"backend", 1},     {"interop", 1},                      // file formats; compute primitives; xtensor
    {"text", 2},       {"nn", 2},                                               // tokenizers; layers
    {"models", 3},     {"vae", 3},         {"text_encoder", 3}, {"schedulers", 3},  // the models, each with its config
    {"checkpoint", 4}, {"pipelines", 4},                                        // checkpoint layouts; sampling
    {"golden", 5},                                                              // the reference fixtures' runner
};

fs::path include_root() { return fs::path(HYVIDEO_ASSETS_DIR).parent_path() / "include" / "hyvideo"; }

}  // namespace

TEST_CASE("every header includes only its own room and lower layers") {
    const fs::path root = include_root();
    REQUIRE(fs::is_directory(root));
    const std::regex include_line(R"(^\s*#\s*include\s*"hyvideo/([a-z_]+)/)");
    std::set<std::string> rooms_seen;
    int headers = 0;
    for (const auto& entry : fs::recursive_directory_iterator(root)) {
        if (!entry.is_regular_file() || entry.path().extension() != ".hpp") continue;
        const std::string room = fs::relative(entry.path(), root).begin()->string();
        INFO("header: ", fs::relative(entry.path(), root).string());
        REQUIRE_MESSAGE(layers.contains(room), "a room with no layer: add it to this test and to docs/architecture.md#layers");
        rooms_seen.insert(room);
        ++headers;
        std::ifstream in(entry.path());
        std::string line;
        while (std::getline(in, line)) {
            std::smatch m;
            if (!std::regex_search(line, m, include_line)) continue;
            const std::string included = m[1];
            INFO("includes: ", line);
            REQUIRE(layers.contains(included));
            CHECK((included == room || layers.at(included) < layers.at(room)));
        }
    }
    CHECK(headers > 100);
    CHECK(rooms_seen.size() == layers.size());  // no stale room in the table
}
