// Tests of io/safetensors.hpp and core/weight_source.hpp: round trips, the golden fixtures, one test
// per validation rule of the reader (each a hand-made bad file), damaged fixtures, and the writer's
// all-or-nothing behaviour.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unistd.h>
#include <utility>
#include <vector>

#include "../support/temp_dir.hpp"
#include "hyvideo/core/weight_source.hpp"
#include "hyvideo/io/safetensors.hpp"

#ifndef HYVIDEO_TEST_DATA_DIR
#error "HYVIDEO_TEST_DATA_DIR must name the tests/data directory"
#endif

namespace fs = std::filesystem;
using namespace hyvideo;

namespace {

using hyvideo::test::TempDir;

std::string read_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

void write_bytes(const fs::path& path, std::string_view bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}

// Overwrites one byte in place. Rewriting whole files is far slower: ext4 flushes a file that is
// truncated and rewritten when it is closed.
void patch_byte(const fs::path& path, std::size_t offset, char value) {
    std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(static_cast<std::streamoff>(offset));
    f.put(value);
    REQUIRE(f.good());
}

std::string u64_le(std::uint64_t v) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
    return s;
}

// A safetensors file from its parts, with no padding unless the header text brings its own.
std::string raw_file(std::string_view header, std::string_view data = {}) {
    return u64_le(header.size()) + std::string(header) + std::string(data);
}

// A tensor whose bytes are 0, 1, 2, ... (mod 251, so that no two nearby tensors look alike).
Tensor pattern_tensor(Shape shape, DType dtype, int seed = 0) {
    Tensor t = Tensor::empty(std::move(shape), dtype);
    auto* p = static_cast<unsigned char*>(t.raw_data());
    for (std::size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<unsigned char>((i + seed * 17) % 251);
    return t;
}

std::string bytes_of(const Tensor& t) {
    Tensor c = t.contiguous();
    return {static_cast<const char*>(c.raw_data()), c.nbytes()};
}

// The message of the Error that open() throws, failing the test if it throws nothing or another type.
std::string open_error(const fs::path& path) {
    try {
        SafetensorsFile::open(path);
    } catch (const Error& e) {
        return e.what();
    } catch (const std::exception& e) {
        FAIL("open(", path, ") threw a non-hyvideo exception: ", e.what());
    }
    FAIL("open(", path, ") accepted a bad file");
    return {};
}

// Writes `bytes` to <dir>/<file_name> and checks that open() rejects it with a message naming the
// file and holding every fragment (the tensor's name, the rule broken).
void check_rejected(const std::string& file_name, std::string_view bytes,
                    std::initializer_list<std::string_view> fragments) {
    TempDir dir;
    write_bytes(dir / file_name, bytes);
    const std::string message = open_error(dir / file_name);
    INFO("message: ", message);
    CHECK(message.find(file_name) != std::string::npos);
    for (auto f : fragments) CHECK_MESSAGE(message.find(f) != std::string::npos, "missing \"", f, "\"");
}

constexpr DType all_dtypes[] = {DType::f32, DType::f16, DType::bf16, DType::f8e4m3, DType::i64, DType::boolean, DType::u8};

}  // namespace

// ---- round trips ----------------------------------------------------------------------------------

TEST_CASE("safetensors: every dtype round-trips with its metadata") {
    TempDir dir;
    std::vector<std::pair<std::string, Tensor>> tensors;
    int seed = 0;
    for (DType dt : all_dtypes)
        tensors.emplace_back("t." + std::string(safetensors_name(dt)), pattern_tensor({2, 3}, dt, seed++));
    const std::map<std::string, std::string> metadata = {
        {"case", "round_trip"}, {"config", R"({"a": [1, 2], "b": "\u00e9"})"}, {"empty", ""}};
    save_safetensors(dir / "all.safetensors", tensors, metadata);

    const auto f = SafetensorsFile::open(dir / "all.safetensors");
    CHECK(f.path() == dir / "all.safetensors");
    CHECK(f.metadata() == metadata);
    std::vector<std::string> expected_names;
    for (auto& [name, _] : tensors) expected_names.push_back(name);
    std::sort(expected_names.begin(), expected_names.end());
    CHECK(f.names() == expected_names);
    for (const auto& entry : tensors) {
        // Not a structured binding: clang 14 cannot capture one in CAPTURE's lambda.
        const std::string& name = entry.first;
        const Tensor& t = entry.second;
        CAPTURE(name);
        REQUIRE(f.contains(name));
        CHECK(f.info(name).dtype == t.dtype());
        CHECK(f.info(name).shape == t.shape());
        CHECK(f.info(name).nbytes() == t.nbytes());
        const Tensor back = f.tensor(name);
        CHECK(back.dtype() == t.dtype());
        CHECK(back.shape() == t.shape());
        CHECK(back.is_contiguous());
        CHECK(bytes_of(back) == bytes_of(t));
    }
}

TEST_CASE("safetensors: empty and 0-d tensors round-trip") {
    TempDir dir;
    const std::vector<std::pair<std::string, Tensor>> tensors = {
        {"empty", Tensor::empty({0}, DType::f32)},
        {"empty_middle", Tensor::empty({2, 0, 3}, DType::i64)},
        {"scalar", Tensor::from_vector<float>({}, {2.5f})},
        {"after", pattern_tensor({4}, DType::bf16)},
    };
    save_safetensors(dir / "z.safetensors", tensors);

    const auto f = SafetensorsFile::open(dir / "z.safetensors");
    CHECK(f.metadata().empty());
    CHECK(f.info("empty").shape == Shape{0});
    CHECK(f.info("empty").nbytes() == 0);
    CHECK(f.tensor("empty_middle").shape() == Shape{2, 0, 3});
    CHECK(f.tensor("empty_middle").numel() == 0);
    CHECK(f.tensor("scalar").dim() == 0);
    CHECK(f.tensor("scalar").item() == 2.5f);
    CHECK(bytes_of(f.tensor("after")) == bytes_of(tensors[3].second));
}

TEST_CASE("safetensors: strided tensors are written as their contiguous values") {
    TempDir dir;
    const Tensor base = Tensor::from_vector<float>({2, 3}, {0, 1, 2, 3, 4, 5});
    const Tensor transposed = base.transpose(0, 1);  // [[0, 3], [1, 4], [2, 5]]
    const Tensor column = base.select(1, 1);         // [1, 4], stride 3
    REQUIRE_FALSE(transposed.is_contiguous());
    REQUIRE_FALSE(column.is_contiguous());
    save_safetensors(dir / "s.safetensors", {{"transposed", transposed}, {"column", column}});

    const auto f = SafetensorsFile::open(dir / "s.safetensors");
    CHECK(f.tensor("transposed").shape() == Shape{3, 2});
    CHECK(f.tensor("transposed").to_vector() == std::vector<float>{0, 3, 1, 4, 2, 5});
    CHECK(f.tensor("column").to_vector() == std::vector<float>{1, 4});
}

TEST_CASE("safetensors: the writer lays out tensors in order after a space-padded header") {
    TempDir dir;
    save_safetensors(dir / "l.safetensors",
                     {{"b", pattern_tensor({3}, DType::f32, 1)}, {"a", pattern_tensor({5}, DType::boolean, 2)}},
                     {{"k", "v"}});
    const std::string raw = read_bytes(dir / "l.safetensors");
    std::uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<unsigned char>(raw[i]);
    CHECK(header_len % 8 == 0);
    CHECK(raw.size() == 8 + header_len + 12 + 5);
    const std::string header = raw.substr(8, header_len);
    CHECK(header.find_last_not_of(' ') < header.size());
    const auto j = nlohmann::json::parse(header);
    CHECK(j["b"]["data_offsets"] == nlohmann::json::array({0, 12}));
    CHECK(j["a"]["data_offsets"] == nlohmann::json::array({12, 17}));
    CHECK(j["__metadata__"]["k"] == "v");
}

TEST_CASE("safetensors: views are zero-copy and keep the mapping alive") {
    TempDir dir;
    const Tensor original = pattern_tensor({16}, DType::f32);
    save_safetensors(dir / "m.safetensors", {{"x", original}, {"y", pattern_tensor({2}, DType::i64)}});

    Tensor x, y;
    {
        const auto f = SafetensorsFile::open(dir / "m.safetensors");
        x = f.tensor("x");
        y = f.tensor("y");
        // Both views share one owner, the mapping, and repeated reads return the same memory.
        CHECK(x.owner() == y.owner());
        CHECK(f.tensor("x").raw_data() == x.raw_data());
    }
    fs::remove(dir / "m.safetensors");  // neither the file object nor the name is needed any more
    CHECK(bytes_of(x) == bytes_of(original));
    CHECK(y.span<const std::int64_t>().size() == 2);
}

TEST_CASE("safetensors: misaligned tensors are read through an aligned copy") {
    TempDir dir;
    // A 1-byte BOOL first puts the F32 after it at an odd offset; the reference writer never does
    // this, but the format allows it.
    Tensor flag = Tensor::empty({1}, DType::boolean);
    *static_cast<unsigned char*>(flag.raw_data()) = 1;
    save_safetensors(dir / "odd.safetensors", {{"flag", flag}, {"x", Tensor::from_vector<float>({2}, {1.5f, -2.0f})}});
    const auto f = SafetensorsFile::open(dir / "odd.safetensors");
    CHECK(f.info("x").begin == 1);
    const Tensor x = f.tensor("x");
    CHECK(reinterpret_cast<std::uintptr_t>(x.raw_data()) % alignof(float) == 0);
    CHECK(x.to_vector() == std::vector<float>{1.5f, -2.0f});
    CHECK(f.tensor("flag").item({0}) == 1.0f);
}

TEST_CASE("safetensors: unpadded headers, padded headers and gaps between tensors are accepted") {
    TempDir dir;
    const std::string entries = R"({"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},)"
                                R"("b":{"dtype":"I64","shape":[1],"data_offsets":[16,24]}})";
    const std::string data = u64_le(7) + std::string(8, '\xee') + u64_le(9);
    for (std::size_t pad : {0, 1, 5, 64}) {
        CAPTURE(pad);
        write_bytes(dir / "p.safetensors", raw_file(entries + std::string(pad, ' '), data));
        const auto f = SafetensorsFile::open(dir / "p.safetensors");
        CHECK(f.tensor("a").item({0}) == 7.0f);
        CHECK(f.tensor("b").item({0}) == 9.0f);
    }
}

TEST_CASE("safetensors: writing over a file that is mapped leaves existing views intact") {
    TempDir dir;
    const Tensor first = pattern_tensor({64}, DType::f32, 1);
    save_safetensors(dir / "w.safetensors", {{"x", first}});
    const auto f = SafetensorsFile::open(dir / "w.safetensors");
    const Tensor view = f.tensor("x");
    save_safetensors(dir / "w.safetensors", {{"x", pattern_tensor({64}, DType::f32, 2)}});
    CHECK(bytes_of(view) == bytes_of(first));
    CHECK(bytes_of(SafetensorsFile::open(dir / "w.safetensors").tensor("x")) != bytes_of(first));
}

// ---- WeightSource --------------------------------------------------------------------------------

TEST_CASE("safetensors: a file is a WeightSource, and PrefixedSource views part of it") {
    TempDir dir;
    save_safetensors(dir / "ws.safetensors", {{"param.b.weight", pattern_tensor({2}, DType::f32, 1)},
                                              {"param.a.weight", pattern_tensor({3}, DType::f32, 2)},
                                              {"input.x", pattern_tensor({4}, DType::f32, 3)},
                                              {"paramless", pattern_tensor({1}, DType::f32, 4)}});
    const auto file = SafetensorsFile::open(dir / "ws.safetensors");
    const WeightSource& source = file;
    CHECK(source.names() == std::vector<std::string>{"input.x", "param.a.weight", "param.b.weight", "paramless"});
    CHECK(source.contains("input.x"));
    CHECK(bytes_of(source.get("param.a.weight")) == bytes_of(file.tensor("param.a.weight")));

    const PrefixedSource params(source, "param.");
    CHECK(params.prefix() == "param.");
    CHECK(params.names() == std::vector<std::string>{"a.weight", "b.weight"});
    CHECK(params.contains("b.weight"));
    CHECK_FALSE(params.contains("input.x"));
    CHECK(params.get("b.weight").shape() == Shape{2});

    // Prefixes compose, as they do for nested sub-modules.
    const PrefixedSource a(params, "a.");
    CHECK(a.names() == std::vector<std::string>{"weight"});
    CHECK(a.get("weight").shape() == Shape{3});

    // A missing weight is reported under the name the file would use, with the file.
    CHECK_THROWS_AS(params.get("c.weight"), Error);
    try {
        params.get("c.weight");
    } catch (const Error& e) {
        const std::string message = e.what();
        CHECK(message.find("param.c.weight") != std::string::npos);
        CHECK(message.find("ws.safetensors") != std::string::npos);
    }
    CHECK_THROWS_AS(file.info("nope"), Error);
}

// ---- golden fixtures -----------------------------------------------------------------------------

TEST_CASE("safetensors: every golden fixture opens, names its case and has consistent sizes") {
    const fs::path golden = fs::path(HYVIDEO_TEST_DATA_DIR) / "golden";
    REQUIRE(fs::is_directory(golden));
    int files = 0;
    for (auto& entry : fs::directory_iterator(golden)) {
        if (entry.path().extension() != ".safetensors") continue;
        ++files;
        CAPTURE(entry.path());
        const auto f = SafetensorsFile::open(entry.path());
        REQUIRE(f.metadata().contains("case"));
        CHECK(f.metadata().at("case") == entry.path().stem().string());
        CHECK(f.metadata().contains("config"));
        CHECK(nlohmann::json::accept(f.metadata().at("config")));
        CHECK(f.metadata().contains("seed"));
        CHECK_FALSE(f.names().empty());
        for (auto& name : f.names()) {
            CAPTURE(name);
            CHECK((name.starts_with("param.") || name.starts_with("input.") || name.starts_with("output.")));
            const TensorInfo& info = f.info(name);
            const Tensor t = f.tensor(name);
            CHECK(info.nbytes() == static_cast<std::uint64_t>(shape_numel(info.shape)) * dtype_size(info.dtype));
            CHECK(t.nbytes() == info.nbytes());
            CHECK(t.shape() == info.shape);
            CHECK((t.dtype() == DType::f32 || t.dtype() == DType::i64));
        }
    }
    CHECK(files >= 14);
}

// ---- validation: one test per rule --------------------------------------------------------------

TEST_CASE("safetensors rejects: a missing file or a directory") {
    TempDir dir;
    CHECK(open_error(dir / "absent.safetensors").find("absent.safetensors") != std::string::npos);
    fs::create_directory(dir / "dir.safetensors");
    CHECK(open_error(dir / "dir.safetensors").find("dir.safetensors") != std::string::npos);
}

TEST_CASE("safetensors rejects: a file shorter than the 8-byte length") {
    check_rejected("empty.safetensors", "", {"too short"});
    check_rejected("seven.safetensors", std::string(7, '\0'), {"too short"});
}

TEST_CASE("safetensors rejects: a header length past the end of the file") {
    check_rejected("long_header.safetensors", u64_le(10) + "{}", {"header length 10"});
    check_rejected("long_header_max.safetensors", u64_le(~std::uint64_t{0}) + "{}", {"header length"});
}

TEST_CASE("safetensors rejects: a header length over the 100 MB cap") {
    check_rejected("huge_header.safetensors", u64_le(100'000'001) + "{}", {"limit"});
}

TEST_CASE("safetensors rejects: a header that is not JSON") {
    check_rejected("syntax.safetensors", raw_file(R"({"a":)"), {"not valid UTF-8 JSON"});
    check_rejected("empty_header.safetensors", raw_file(""), {"'{'"});
    check_rejected("trailing.safetensors", raw_file("{} x"), {"not valid UTF-8 JSON"});
    check_rejected("nul_padded.safetensors", raw_file(std::string("{}\0\0", 4)), {"NUL"});
}

TEST_CASE("safetensors rejects: a header that is not valid UTF-8") {
    check_rejected("latin1.safetensors", raw_file("{\"__metadata__\":{\"k\":\"caf\xe9\"}}"), {"UTF-8"});
    check_rejected("overlong.safetensors", raw_file("{\"\xc0\xaf\":1}"), {"UTF-8"});
    check_rejected("surrogate.safetensors", raw_file(R"({"\ud800":1})"), {"UTF-8"});
    check_rejected("bom.safetensors", raw_file("\xef\xbb\xbf{}"), {"'{'"});
}

TEST_CASE("safetensors rejects: a header that is not an object") {
    check_rejected("array.safetensors", raw_file("[]"), {"'{'"});
    check_rejected("string.safetensors", raw_file(R"("{")"), {"'{'"});
}

TEST_CASE("safetensors rejects: an entry that is not an object") {
    check_rejected("entry.safetensors", raw_file(R"({"w":[0,0]})"), {"\"w\"", "not an object"});
}

TEST_CASE("safetensors rejects: a missing or non-string dtype") {
    check_rejected("no_dtype.safetensors", raw_file(R"({"w":{"shape":[],"data_offsets":[0,0]}})"), {"\"w\"", "dtype"});
    check_rejected("num_dtype.safetensors", raw_file(R"({"w":{"dtype":4,"shape":[],"data_offsets":[0,0]}})"),
                   {"\"w\"", "dtype"});
}

TEST_CASE("safetensors rejects: an unknown dtype") {
    check_rejected("f64.safetensors", raw_file(R"({"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", u64_le(0)),
                   {"\"w\"", "\"F64\""});
    check_rejected("lower.safetensors", raw_file(R"({"w":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", "abcd"),
                   {"\"w\"", "\"f32\""});
}

TEST_CASE("safetensors rejects: a missing or ill-typed shape") {
    check_rejected("no_shape.safetensors", raw_file(R"({"w":{"dtype":"F32","data_offsets":[0,0]}})"), {"\"w\"", "shape"});
    check_rejected("obj_shape.safetensors", raw_file(R"({"w":{"dtype":"F32","shape":{},"data_offsets":[0,0]}})"),
                   {"\"w\"", "shape"});
    check_rejected("float_dim.safetensors", raw_file(R"({"w":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}})", "abcd"),
                   {"\"w\"", "non-integer"});
    check_rejected("str_dim.safetensors", raw_file(R"({"w":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}})", "abcd"),
                   {"\"w\"", "non-integer"});
}

TEST_CASE("safetensors rejects: a negative dimension") {
    check_rejected("negative.safetensors", raw_file(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})"),
                   {"\"w\"", "negative"});
}

TEST_CASE("safetensors rejects: dimensions whose element or byte count overflows") {
    // One dimension beyond int64.
    check_rejected("dim_int64.safetensors",
                   raw_file(R"({"w":{"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,0]}})"),
                   {"\"w\"", "overflows"});
    // Beyond uint64: JSON reads it as a float.
    check_rejected("dim_u64.safetensors",
                   raw_file(R"({"w":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,0]}})"),
                   {"\"w\"", "non-integer"});
    // A product that wraps to a small number in 64 bits: 2^32 * 2^32 = 2^64 = 0 (mod 2^64).
    check_rejected("product.safetensors",
                   raw_file(R"({"w":{"dtype":"BOOL","shape":[4294967296,4294967296],"data_offsets":[0,0]}})"),
                   {"\"w\"", "overflows"});
    // A zero dimension makes the tensor empty but does not excuse the others from fitting.
    check_rejected("zero_and_huge.safetensors",
                   raw_file(R"({"w":{"dtype":"F32","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}})"),
                   {"\"w\"", "overflows"});
    // Elements fit in int64, bytes do not: 2^62 I64 elements are 2^65 bytes.
    check_rejected("bytes.safetensors",
                   raw_file(R"({"w":{"dtype":"I64","shape":[4611686018427387904],"data_offsets":[0,0]}})"),
                   {"\"w\"", "overflows"});
}

TEST_CASE("safetensors rejects: data_offsets that are not [begin, end] integers") {
    const std::string head = R"({"w":{"dtype":"F32","shape":[1],)";
    check_rejected("no_offsets.safetensors", raw_file(head + R"("x":0}})", "abcd"), {"\"w\"", "data_offsets"});
    check_rejected("one_offset.safetensors", raw_file(head + R"("data_offsets":[4]}})", "abcd"), {"\"w\"", "data_offsets"});
    check_rejected("three_offsets.safetensors", raw_file(head + R"("data_offsets":[0,4,4]}})", "abcd"),
                   {"\"w\"", "data_offsets"});
    check_rejected("neg_offset.safetensors", raw_file(head + R"("data_offsets":[-4,0]}})", "abcd"),
                   {"\"w\"", "data_offsets"});
    check_rejected("float_offset.safetensors", raw_file(head + R"("data_offsets":[0,4.0]}})", "abcd"),
                   {"\"w\"", "data_offsets"});
}

TEST_CASE("safetensors rejects: data_offsets that end before they begin") {
    check_rejected("reversed.safetensors", raw_file(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})", "abcd"),
                   {"\"w\"", "end before they begin"});
}

TEST_CASE("safetensors rejects: data_offsets past the data section") {
    check_rejected("past_end.safetensors", raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "abcd"),
                   {"\"w\"", "4-byte data section"});
    check_rejected("far_past_end.safetensors",
                   raw_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551615]}})", "abcd"),
                   {"\"w\"", "data section"});
}

TEST_CASE("safetensors rejects: a byte count that does not match dtype and shape") {
    check_rejected("size.safetensors", raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "abcdefgh"),
                   {"\"w\"", "hold 4 bytes", "needs 8"});
    check_rejected("size_empty.safetensors", raw_file(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[0,4]}})", "abcd"),
                   {"\"w\"", "needs 0"});
}

TEST_CASE("safetensors rejects: overlapping tensors") {
    check_rejected("overlap.safetensors",
                   raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                            "abcdefgh"),
                   {"\"a\"", "\"b\"", "overlap"});
    // Identical ranges, and a range inside another that starts first.
    check_rejected("same_range.safetensors",
                   raw_file(R"({"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                            "abcdefgh"),
                   {"overlap"});
    check_rejected("nested.safetensors",
                   raw_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
                            R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
                            R"("c":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})",
                            "abcdefghijklmnop"),
                   {"\"b\"", "overlap"});
}

TEST_CASE("safetensors: empty tensors overlap nothing") {
    TempDir dir;
    write_bytes(dir / "e.safetensors", raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                                R"("b":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})",
                                                "abcdefgh"));
    CHECK(SafetensorsFile::open(dir / "e.safetensors").names().size() == 2);
}

TEST_CASE("safetensors rejects: __metadata__ that is not an object of strings") {
    check_rejected("meta_array.safetensors", raw_file(R"({"__metadata__":["a"]})"), {"__metadata__"});
    check_rejected("meta_null.safetensors", raw_file(R"({"__metadata__":null})"), {"__metadata__"});
    check_rejected("meta_number.safetensors", raw_file(R"({"__metadata__":{"seed":0}})"), {"__metadata__", "\"seed\""});
}

TEST_CASE("safetensors rejects: repeated keys") {
    check_rejected("dup_tensor.safetensors",
                   raw_file(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},)"
                            R"("w":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})"),
                   {"repeats", "\"w\""});
    check_rejected("dup_field.safetensors",
                   raw_file(R"({"w":{"dtype":"F32","shape":[0],"dtype":"I64","data_offsets":[0,0]}})"),
                   {"repeats", "\"dtype\" in \"w\""});
    check_rejected("dup_meta.safetensors", raw_file(R"({"__metadata__":{"k":"a","k":"b"}})"), {"repeats", "\"k\""});
}

TEST_CASE("safetensors rejects: nesting deeper than the format uses") {
    check_rejected("nested_shape.safetensors", raw_file(R"({"w":{"dtype":"F32","shape":[[1]],"data_offsets":[0,4]}})", "abcd"),
                   {"deeper"});
    check_rejected("deep.safetensors", raw_file("{\"x\":" + std::string(10000, '[') + std::string(10000, ']') + "}"),
                   {"deeper"});
}

// ---- damaged fixtures ----------------------------------------------------------------------------

TEST_CASE("safetensors: a truncated golden fixture is rejected wherever it is cut") {
    const std::string original = read_bytes(fs::path(HYVIDEO_TEST_DATA_DIR) / "golden" / "scheduler.safetensors");
    REQUIRE(original.size() > 64);
    std::uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<unsigned char>(original[i]);
    const std::size_t data_start = 8 + header_len;
    TempDir dir;
    for (std::size_t cut : {std::size_t{0}, std::size_t{4}, std::size_t{8}, std::size_t{9}, data_start / 2,
                            data_start - 1, data_start, data_start + 1, (data_start + original.size()) / 2,
                            original.size() - 1}) {
        CAPTURE(cut);
        write_bytes(dir / "cut.safetensors", std::string_view(original).substr(0, cut));
        CHECK(open_error(dir / "cut.safetensors").find("cut.safetensors") != std::string::npos);
    }
}

TEST_CASE("safetensors: flipping the top bit of any header byte of a golden fixture is rejected") {
    // A header is ASCII (the fixtures' JSON escapes everything else), and an ASCII byte with its
    // top bit set can never be valid UTF-8 next to ASCII neighbours, so every flip must be caught.
    const std::string original = read_bytes(fs::path(HYVIDEO_TEST_DATA_DIR) / "golden" / "scheduler.safetensors");
    std::uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<unsigned char>(original[i]);
    TempDir dir;
    write_bytes(dir / "flip.safetensors", original);
    int rejected = 0;
    for (std::size_t i = 8; i < 8 + header_len; ++i) {
        patch_byte(dir / "flip.safetensors", i, static_cast<char>(original[i] ^ 0x80));
        const std::string message = open_error(dir / "flip.safetensors");
        rejected += message.find("flip.safetensors") != std::string::npos;
        patch_byte(dir / "flip.safetensors", i, original[i]);
    }
    CHECK(rejected == static_cast<int>(header_len));
}

TEST_CASE("safetensors: other corruptions of a golden fixture give an Error or a valid file, never worse") {
    const std::string original = read_bytes(fs::path(HYVIDEO_TEST_DATA_DIR) / "golden" / "scheduler.safetensors");
    std::uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<unsigned char>(original[i]);
    TempDir dir;
    write_bytes(dir / "edit.safetensors", original);
    for (std::size_t i = 0; i < 8 + header_len; ++i) {
        for (char replacement : {'0', '9', '-', '"', ']', '}', ' '}) {
            patch_byte(dir / "edit.safetensors", i, replacement);
            try {
                const auto f = SafetensorsFile::open(dir / "edit.safetensors");
                for (auto& name : f.names()) CHECK(f.tensor(name).nbytes() == f.info(name).nbytes());
            } catch (const Error&) {
                // rejected cleanly
            }
            patch_byte(dir / "edit.safetensors", i, original[i]);
        }
    }
}

// ---- writer failures -----------------------------------------------------------------------------

namespace {

// Runs a save that must fail, and checks that the Error names the file (and fragment), and that the
// directory holds exactly what it held before: no output, no temporary file.
void check_save_fails(const TempDir& dir, const fs::path& target, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata, std::string_view fragment) {
    const auto before = dir.entries();
    try {
        save_safetensors(target, tensors, metadata);
        FAIL("save_safetensors(", target, ") succeeded");
    } catch (const Error& e) {
        const std::string message = e.what();
        INFO("message: ", message);
        CHECK(message.find(target.filename().string()) != std::string::npos);
        CHECK(message.find(fragment) != std::string::npos);
    }
    CHECK(dir.entries() == before);
}

}  // namespace

TEST_CASE("safetensors writer: failures leave no file behind") {
    TempDir dir;
    const Tensor t = pattern_tensor({2}, DType::f32);

    SUBCASE("missing directory") {
        check_save_fails(dir, dir / "no_such_dir" / "out.safetensors", {{"w", t}}, {}, "no_such_dir");
    }
    SUBCASE("repeated name") {
        check_save_fails(dir, dir / "out.safetensors", {{"w", t}, {"v", t}, {"w", t}}, {}, "\"w\"");
    }
    SUBCASE("reserved name") {
        check_save_fails(dir, dir / "out.safetensors", {{"__metadata__", t}}, {}, "reserved");
    }
    SUBCASE("undefined tensor") {
        check_save_fails(dir, dir / "out.safetensors", {{"w", Tensor()}}, {}, "undefined");
    }
    SUBCASE("name that is not UTF-8") {
        check_save_fails(dir, dir / "out.safetensors", {{"caf\xe9", t}}, {}, "UTF-8");
    }
    SUBCASE("metadata that is not UTF-8") {
        check_save_fails(dir, dir / "out.safetensors", {{"w", t}}, {{"k", "\xff"}}, "UTF-8");
    }
    SUBCASE("target is a directory") {
        fs::create_directory(dir / "out.safetensors");
        check_save_fails(dir, dir / "out.safetensors", {{"w", t}}, {}, "is a directory");
    }
    SUBCASE("read-only directory") {
        if (::geteuid() == 0) return;  // root writes anywhere
        fs::permissions(dir.path(), fs::perms::owner_read | fs::perms::owner_exec);
        check_save_fails(dir, dir / "out.safetensors", {{"w", t}}, {}, "temporary");
        fs::permissions(dir.path(), fs::perms::owner_all);
    }
}

TEST_CASE("safetensors writer: a failed save leaves an existing file unchanged") {
    TempDir dir;
    const Tensor t = pattern_tensor({8}, DType::f32);
    save_safetensors(dir / "keep.safetensors", {{"w", t}});
    const std::string before = read_bytes(dir / "keep.safetensors");
    check_save_fails(dir, dir / "keep.safetensors", {{"w", t}, {"w", t}}, {}, "twice");
    CHECK(read_bytes(dir / "keep.safetensors") == before);
}

TEST_CASE("safetensors writer: new files get the usual permissions") {
    TempDir dir;
    save_safetensors(dir / "perm.safetensors", {{"w", pattern_tensor({1}, DType::f32)}});
    const mode_t mask = ::umask(0);
    ::umask(mask);
    struct stat st {};
    REQUIRE(::stat((dir / "perm.safetensors").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == (0666 & ~mask));
}
