#pragma once
// AtomicFile: a file that appears at its target path only when commit() succeeds. Every writer of the
// project uses it (safetensors, `hyvideo convert`, MP4 and PNG output), so a failed or interrupted
// write never leaves a partial file, and an existing target keeps its old contents until the new one
// is complete.
//
// The data goes to a hidden temporary file in the target's directory (so rename() cannot cross file
// systems), is fsync'ed and renamed over the target: readers see the old file or the complete new one,
// and a reader that still has the old file memory-mapped keeps its old contents. Destroyed without
// commit(), it deletes the temporary file.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

#include "hyvideo/core/error.hpp"

namespace hyvideo {

namespace detail {
inline std::string errno_text() { return std::strerror(errno); }
}  // namespace detail

class AtomicFile {
public:
    explicit AtomicFile(std::filesystem::path target) : target_(std::move(target)) {
        std::error_code ec;
        HYVIDEO_CHECK(!std::filesystem::is_directory(target_, ec), target_.string(), ": is a directory");
        const auto dir = target_.has_parent_path() ? target_.parent_path() : std::filesystem::path(".");
        static std::atomic<unsigned> counter{0};
        for (int attempt = 0; attempt < 100 && fd_ < 0; ++attempt) {
            // Hidden and tagged with pid and counter: concurrent writers never collide, and a file left
            // by a killed process is recognisable. The name is cut to stay under NAME_MAX.
            temp_ = dir / detail::concat(".", target_.filename().string().substr(0, 200), ".", ::getpid(), "-",
                                         counter++, ".tmp");
            // 0666: the finished file gets the permissions the umask gives any new file.
            fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
            if (fd_ < 0 && errno != EEXIST) break;
        }
        HYVIDEO_CHECK(fd_ >= 0, target_.string(), ": cannot create a temporary file in ", dir.string(), ": ",
                      detail::errno_text());
    }
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;
    ~AtomicFile() {
        if (committed_) return;
        if (fd_ >= 0) ::close(fd_);
        ::unlink(temp_.c_str());
    }

    // The temporary file, for writers that open it by name (FFmpeg's muxers do).
    const std::filesystem::path& path() const { return temp_; }

    void write(const void* data, std::size_t size) {
        auto p = static_cast<const char*>(data);
        while (size > 0) {
            // Linux writes at most ~2 GiB per call; larger tensors take several.
            const ssize_t n = ::write(fd_, p, std::min<std::size_t>(size, std::size_t{1} << 30));
            if (n < 0 && errno == EINTR) continue;
            HYVIDEO_CHECK(n > 0, target_.string(), ": write failed: ", n < 0 ? detail::errno_text() : "no progress");
            p += n;
            size -= static_cast<std::size_t>(n);
        }
    }

    void commit() {
        // fsync through this descriptor covers data written through any other: it syncs the file. It
        // comes before the rename, or a crash soon after could leave the name on a file without its data.
        // close() is checked too: some file systems report failed buffered writes there.
        HYVIDEO_CHECK(::fsync(fd_) == 0, target_.string(), ": fsync failed: ", detail::errno_text());
        const int fd = std::exchange(fd_, -1);
        HYVIDEO_CHECK(::close(fd) == 0, target_.string(), ": close failed: ", detail::errno_text());
        HYVIDEO_CHECK(::rename(temp_.c_str(), target_.c_str()) == 0, target_.string(), ": cannot rename ",
                      temp_.string(), " into place: ", detail::errno_text());
        committed_ = true;
    }

private:
    std::filesystem::path target_;
    std::filesystem::path temp_;
    int fd_ = -1;
    bool committed_ = false;
};

}  // namespace hyvideo
