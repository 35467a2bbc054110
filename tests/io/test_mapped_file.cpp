// io/mapped_file.hpp: inputs are regular files opened without blocking, and a mapped file truncated by
// another process reads as zeros and is reported by name, where it used to kill the process with SIGBUS.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "hyvideo/io/mapped_file.hpp"
#include "hyvideo/io/pt_file.hpp"
#include "hyvideo/io/safetensors.hpp"
#include "../support/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace hyvideo;
using hyvideo::test::TempDir;

TEST_CASE("open_input_file: regular files only, each refusal naming the file and what it is") {
    TempDir d;
    REQUIRE(::mkfifo((d / "fifo").c_str(), 0600) == 0);
    fs::create_directory(d / "dir");
    std::ofstream(d / "file") << "12345";
    CHECK(open_input_file(d / "file").size == 5);
    CHECK(read_small_file(d / "file", "config") == "12345");
    // O_NONBLOCK: a FIFO without a writer is refused at once instead of blocking in open().
    CHECK_THROWS_WITH_AS(open_input_file(d / "fifo"), doctest::Contains("fifo: is a FIFO (named pipe), not a regular file"),
                         Error);
    CHECK_THROWS_WITH_AS(open_input_file(d / "dir", "--dit-config"), doctest::Contains("--dit-config '"), Error);
    CHECK_THROWS_WITH_AS(open_input_file(d / "dir"), doctest::Contains("is a directory"), Error);
    CHECK_THROWS_WITH_AS(open_input_file("/dev/zero"), doctest::Contains("character device"), Error);
    CHECK_THROWS_WITH_AS(open_input_file(d / "missing"), doctest::Contains("No such file"), Error);
    CHECK_THROWS_WITH_AS(read_small_file(d / "file", "config", 4), doctest::Contains("5 bytes is more than the 4"), Error);
    CHECK_THROWS_AS(SafetensorsFile::open(d / "fifo"), Error);
    CHECK_THROWS_AS(TorchFile::open(d / "fifo"), Error);
}

TEST_CASE("map_file: a file truncated while mapped reads as zeros and check_intact names it") {
    TempDir d;
    const fs::path path = d / "weights.safetensors";
    // 1 MiB of ones: the data spans many pages, so a truncation leaves whole mapped pages past the end.
    const std::int64_t n = 1 << 18;
    save_safetensors(path, {{"w", Tensor::full({n}, 1.0f)}});
    const SafetensorsFile f = SafetensorsFile::open(path);
    const Tensor w = f.tensor("w");
    CHECK_NOTHROW(check_mapped_inputs());
    REQUIRE(::truncate(path.c_str(), 4096) == 0);

    // Every element read: those still in the file are 1, those past its new end 0, and no signal.
    const float* p = w.data<float>();
    double sum = 0;
    for (std::int64_t i = 0; i < n; ++i) sum += p[i];
    CHECK(sum > 0);
    CHECK(sum < static_cast<double>(n));
    const std::string truncated = path.string() + ": the file was truncated";
    CHECK_THROWS_WITH_AS(check_mapped_inputs(), doctest::Contains(truncated.c_str()), Error);

    // Another mapping, of an intact file, is not blamed.
    const fs::path other = d / "other.safetensors";
    save_safetensors(other, {{"v", Tensor::full({16}, 2.0f)}});
    const SafetensorsFile g = SafetensorsFile::open(other);
    CHECK(g.tensor("v").data<float>()[15] == 2.0f);
}

namespace {
// Resident pages of this process, file-backed ones included (/proc/self/statm, second field).
std::int64_t resident_pages() {
    std::ifstream statm("/proc/self/statm");
    std::int64_t size = 0, resident = 0;
    statm >> size >> resident;
    return resident;
}
}  // namespace

TEST_CASE("release_pages: the mapped file leaves the process's resident memory, and reads back unchanged") {
    TempDir d;
    const fs::path path = d / "big.safetensors";
    const std::int64_t n = std::int64_t{16} << 20;  // 64 MiB of f32
    {
        Tensor t = Tensor::empty({n});
        for (std::int64_t i = 0; i < n; ++i) t.data<float>()[i] = static_cast<float>(i % 1000);
        save_safetensors(path, {{"w", t}});
    }
    const auto f = std::make_shared<const SafetensorsFile>(SafetensorsFile::open(path));
    const Tensor w = f->tensor("w");
    const float* p = w.data<float>();
    auto checksum = [&] {
        double s = 0;
        for (std::int64_t i = 0; i < n; ++i) s += p[i];
        return s;
    };
    const std::int64_t before = resident_pages();
    const double sum = checksum();  // every page touched
    const std::int64_t touched = resident_pages();
    const std::int64_t file_pages = n * 4 / ::sysconf(_SC_PAGESIZE);
    CHECK(touched - before > file_pages / 2);
    // Through the WeightSource interface, as a streaming model calls it.
    const WeightSource& source = *f;
    source.release_pages();
    CHECK(touched - resident_pages() > file_pages / 2);
    CHECK(checksum() == sum);  // the view reads the same bytes again
    CHECK(w.data<float>()[n - 1] == static_cast<float>((n - 1) % 1000));
}

TEST_CASE("map_file: a fault outside every mapping is not swallowed") {
    // The guard only handles addresses inside live mappings; anything else goes on to the previous
    // handler (here doctest's or the default), which ends the process. Checked in a child process.
    TempDir d;
    save_safetensors(d / "x.safetensors", {{"v", Tensor::full({4}, 1.0f)}});
    const SafetensorsFile f = SafetensorsFile::open(d / "x.safetensors");  // installs the guard
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // A mapping of its own, not made by map_file, read past the end of its truncated file.
        const int fd = ::open((d / "x.safetensors").c_str(), O_RDWR);
        void* p = ::mmap(nullptr, 8192, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED || ::ftruncate(fd, 0) != 0) ::_exit(2);
        volatile char c = static_cast<const char*>(p)[100];
        (void)c;
        ::_exit(0);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGBUS);
}
