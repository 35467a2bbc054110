#pragma once
// The fuzz input as a file: an in-memory file (memfd) rewritten for each input, opened by the readers
// through /proc/self/fd/N, so it takes the same open() and mmap() path as a file on disk, without disk
// traffic. Shared by the fuzz targets, each passing its own name for error messages.
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace hyvideo_fuzz {

[[noreturn]] inline void fail(const char* target, const char* what) {
    std::fprintf(stderr, "%s: %s\n", target, what);
    std::abort();
}

class MemfdInput {
public:
    explicit MemfdInput(const char* target) : target_(target), fd_(::memfd_create(target, MFD_CLOEXEC)) {
        if (fd_ < 0) fail(target_, "memfd_create failed");
    }
    // Replaces the file's contents with the input and returns a path that opens it.
    std::string write(const std::uint8_t* data, std::size_t size) const {
        if (::ftruncate(fd_, 0) != 0) fail(target_, "ftruncate failed");
        std::size_t done = 0;
        while (done < size) {
            const ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
            if (n <= 0) fail(target_, "pwrite failed");
            done += static_cast<std::size_t>(n);
        }
        return "/proc/self/fd/" + std::to_string(fd_);
    }

private:
    const char* target_;
    int fd_;
};

}  // namespace hyvideo_fuzz
