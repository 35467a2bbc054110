// libFuzzer target for the safetensors reader (build and run: docs/fuzzing.md).
//
// Property under test: for any bytes, SafetensorsFile::open either throws hyvideo::Error or yields
// tensors whose every byte can be read. Anything else (a sanitizer report, another exception type,
// a signal) is a bug. Inputs the reader accepts are also written back with save_safetensors and
// read again, which must reproduce them exactly: the writer must handle every file the reader
// accepts, and the two must agree on the format.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hyvideo/io/safetensors.hpp"
#include "memfd_input.hpp"

namespace {

[[noreturn]] void fail(const char* what) { hyvideo_fuzz::fail("fuzz_safetensors", what); }

const hyvideo_fuzz::MemfdInput& input() {
    static const hyvideo_fuzz::MemfdInput in("fuzz_safetensors");
    return in;
}

// Where the round trip writes; the writer needs a real directory for its temporary file and rename.
// libFuzzer may end the process without running exit handlers, so the file is removed after each
// input rather than at exit.
const std::filesystem::path& round_trip_path() {
    static const std::filesystem::path path =
        (std::filesystem::is_directory("/dev/shm") ? std::filesystem::path("/dev/shm")
                                                   : std::filesystem::temp_directory_path()) /
        ("fuzz_safetensors." + std::to_string(::getpid()) + ".safetensors");
    return path;
}

bool same_bytes(const hyvideo::Tensor& a, const hyvideo::Tensor& b) {
    return a.nbytes() == b.nbytes() && (a.nbytes() == 0 || std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0);
}

void check_round_trip(const hyvideo::SafetensorsFile& original) {
    std::vector<std::pair<std::string, hyvideo::Tensor>> tensors;
    for (auto& name : original.names()) tensors.emplace_back(name, original.tensor(name));
    hyvideo::save_safetensors(round_trip_path(), tensors, original.metadata());
    const auto copy = hyvideo::SafetensorsFile::open(round_trip_path());
    std::filesystem::remove(round_trip_path());  // the mapping stays valid without the name

    if (copy.names() != original.names()) fail("round trip changed the names");
    if (copy.metadata() != original.metadata()) fail("round trip changed the metadata");
    for (auto& [name, tensor] : tensors) {
        const auto& info = copy.info(name);
        if (info.dtype != tensor.dtype() || info.shape != tensor.shape()) fail("round trip changed a dtype or shape");
        if (!same_bytes(copy.tensor(name), tensor)) fail("round trip changed a tensor's bytes");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string path = input().write(data, size);

    std::optional<hyvideo::SafetensorsFile> file;
    try {
        file = hyvideo::SafetensorsFile::open(path);
    } catch (const hyvideo::Error&) {
        return 0;  // rejected cleanly: the expected outcome for most inputs
    }

    // Every tensor's bytes are compared with the fuzzer's own copy of the input at the place the
    // format puts them. That copy is an exactly-sized heap buffer, which AddressSanitizer guards;
    // the mapping is page-granular, so a view straying past the end of the file but not of its
    // last page would go unnoticed if only the view were read.
    std::uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | data[i];
    for (auto& name : file->names()) {
        const auto& info = file->info(name);
        const hyvideo::Tensor view = file->tensor(name);
        if (view.nbytes() != info.nbytes()) fail("a view's size differs from its data_offsets");
        if (info.nbytes() > 0 && std::memcmp(view.raw_data(), data + 8 + header_len + info.begin, info.nbytes()) != 0)
            fail("a view's bytes differ from the file's");
    }

    // Errors past this point are bugs: an accepted file must be writable and read back unchanged.
    try {
        check_round_trip(*file);
    } catch (const hyvideo::Error& e) {
        std::fprintf(stderr, "fuzz_safetensors: round trip threw: %s\n", e.what());
        std::abort();
    }
    return 0;
}
