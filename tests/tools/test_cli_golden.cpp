// `hyvideo golden` as a user runs it: exit status, one line per output, and clear failures for bad
// fixtures, unknown cases, wrong numbers and outputs left uncompared.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "hyvideo/io/safetensors.hpp"
#include "cli_helpers.hpp"

namespace fs = std::filesystem;
using namespace hyvideo;

namespace {

using Run = hyvideo::test::CliRun;
using hyvideo::test::run_cli;

std::string fixture(const std::string& name) { return std::string(HYVIDEO_TEST_DATA_DIR) + "/golden/" + name + ".safetensors"; }

// A scratch directory removed at the end of the test.
struct Scratch {
    fs::path dir = fs::temp_directory_path() / ("hyvideo_cli_" + std::to_string(::getpid()));
    Scratch() { fs::create_directories(dir); }
    ~Scratch() { fs::remove_all(dir); }
};

// A copy of a fixture with some tensors replaced or added and its metadata edited.
fs::path edited_copy(const Scratch& s, const std::string& name, const std::string& out_name,
                     const std::map<std::string, Tensor>& replace, const std::map<std::string, std::string>& meta_edit = {}) {
    const auto src = SafetensorsFile::open(fixture(name));
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const auto& n : src.names()) {
        const auto it = replace.find(n);
        tensors.emplace_back(n, it != replace.end() ? it->second : src.tensor(n));
    }
    for (const auto& [n, t] : replace)
        if (!src.contains(n)) tensors.emplace_back(n, t);
    auto meta = src.metadata();
    for (const auto& [k, v] : meta_edit) meta[k] = v;
    const fs::path out = s.dir / out_name;
    save_safetensors(out, tensors, meta);
    return out;
}

}  // namespace

TEST_CASE("hyvideo golden: passing fixtures print one PASS line per output and exit 0") {
    const Run r = run_cli("golden " + fixture("rope3d") + " " + fixture("scheduler"));
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK(r.output.find("rope3d               cos0") != std::string::npos);
    CHECK(r.output.find("scheduler            x6") != std::string::npos);
    CHECK(r.output.find("FAIL") == std::string::npos);
    CHECK(r.output.find("all outputs passed") != std::string::npos);
}

TEST_CASE("hyvideo golden: a wrong reference value fails that output and exits 1") {
    Scratch s;
    const auto src = SafetensorsFile::open(fixture("rope3d"));
    Tensor cos0 = src.tensor("output.cos0").clone();
    cos0.data<float>()[7] += 0.5f;
    const auto path = edited_copy(s, "rope3d", "wrong.safetensors", {{"output.cos0", cos0}});
    const Run r = run_cli("golden " + path.string());
    INFO(r.output);
    CHECK(r.status == 1);
    CHECK(r.output.find("cos0") != std::string::npos);
    CHECK(r.output.find("FAIL") != std::string::npos);
    CHECK(r.output.find("sin0") != std::string::npos);  // the other outputs are still reported
}

TEST_CASE("hyvideo golden: an output the implementation does not produce is a failure") {
    Scratch s;
    const auto path = edited_copy(s, "rope3d", "extra.safetensors", {{"output.cos9", Tensor::zeros({2, 2})}});
    const Run r = run_cli("golden " + path.string());
    INFO(r.output);
    CHECK(r.status == 1);
    CHECK(r.output.find("cos9") != std::string::npos);
    CHECK(r.output.find("not compared") != std::string::npos);
}

TEST_CASE("hyvideo golden: unknown cases, truncated and corrupted files give a message and exit 1") {
    Scratch s;
    {
        const auto path = edited_copy(s, "scheduler", "unknown.safetensors", {}, {{"case", "no_such_case"}});
        const Run r = run_cli("golden " + path.string());
        INFO(r.output);
        CHECK(r.status == 1);
        CHECK(r.output.find("unknown case 'no_such_case'") != std::string::npos);
    }
    const std::string bytes = [] {
        std::ifstream in(fixture("small_layers"), std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(in), {});
    }();
    for (std::size_t cut : {std::size_t{4}, std::size_t{100}, bytes.size() / 2, bytes.size() - 1}) {
        const fs::path p = s.dir / "truncated.safetensors";
        std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(cut));
        const Run r = run_cli("golden " + p.string());
        INFO("cut at ", cut, ": ", r.output);
        CHECK(r.status == 1);
        CHECK(r.output.find("truncated.safetensors") != std::string::npos);
    }
    {
        std::string bad = bytes;
        bad[20] = '\x01';  // inside the JSON header
        const fs::path p = s.dir / "corrupt.safetensors";
        std::ofstream(p, std::ios::binary).write(bad.data(), static_cast<std::streamsize>(bad.size()));
        const Run r = run_cli("golden " + p.string());
        INFO(r.output);
        CHECK(r.status == 1);
        CHECK(r.output.find("corrupt.safetensors") != std::string::npos);
    }
    {
        const Run r = run_cli("golden " + (s.dir / "missing.safetensors").string());
        CHECK(r.status == 1);
        CHECK(r.output.find("missing.safetensors") != std::string::npos);
    }
}

TEST_CASE("hyvideo golden tokenize.json: every row of the three tokenizations, one PASS line each; a wrong id fails") {
    const std::string fixture_path = std::string(HYVIDEO_TEST_DATA_DIR) + "/golden/text/tokenize.json";
    const Run r = run_cli("golden " + fixture_path);
    INFO(r.output);
    CHECK(r.status == 0);
    for (const char* output : {"llama ", "llama_template ", "clip "}) {
        const auto at = r.output.find(output);
        REQUIRE(at != std::string::npos);
        CHECK(r.output.find("PASS", at) < r.output.find('\n', at));
    }

    // One id changed in one row: that tokenization fails, naming the row; the others still pass.
    Scratch s;
    std::ifstream in(fixture_path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    REQUIRE(lines.size() > 3);
    auto& row = lines[2];
    const auto ids = row.find("\"ids\":[");
    REQUIRE(ids != std::string::npos);
    row.insert(ids + 7, "7,");  // an extra token in the Llama ids of that row
    const fs::path bad = s.dir / "tokenize.json";
    {
        std::ofstream out(bad);
        for (const auto& l : lines) out << l << "\n";
    }
    const Run b = run_cli("golden " + bad.string());
    INFO(b.output);
    CHECK(b.status == 1);
    const auto llama = b.output.find("llama ");
    REQUIRE(llama != std::string::npos);
    CHECK(b.output.find("FAIL", llama) < b.output.find('\n', llama));
    const auto clip = b.output.find("clip ");
    REQUIRE(clip != std::string::npos);
    CHECK(b.output.find("PASS", clip) < b.output.find('\n', clip));
}
