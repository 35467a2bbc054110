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
//
// Only a regular file (or a new name) is a target: renaming over a device node, FIFO or socket would
// replace it with a regular file (as root, `-o /dev/null` would destroy /dev/null), so those are refused.
// A symbolic link is followed, so the file it points to is replaced and the link stays.
// check_target() runs the same checks, and creates and removes a probe temporary file, without writing:
// programs call it before long work, so that an unusable output is found before the work, not after.
//
// A process that is interrupted (SIGINT, SIGTERM, SIGHUP) while writing would leave its temporary file;
// remove_temporaries_on_signals() installs handlers that unlink every live temporary file first, then
// let the signal end the process as it would have.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
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

// The live temporary files, for the signal handler: fixed storage, as a handler may not allocate or lock.
// state: 0 free, 1 being filled in, 2 ready to unlink.
struct TemporarySlot {
    std::atomic<int> state{0};
    char path[4096] = {};
};
inline std::array<TemporarySlot, 64> temporary_slots;

inline int register_temporary(const std::filesystem::path& p) {
    const std::string& s = p.native();
    if (s.size() >= sizeof(TemporarySlot::path)) return -1;
    for (std::size_t i = 0; i < temporary_slots.size(); ++i) {
        int expected = 0;
        if (!temporary_slots[i].state.compare_exchange_strong(expected, 1)) continue;
        std::memcpy(temporary_slots[i].path, s.c_str(), s.size() + 1);
        temporary_slots[i].state.store(2, std::memory_order_release);
        return static_cast<int>(i);
    }
    return -1;  // more writers than slots: that file is only cleaned up on an ordinary exit
}
inline void unregister_temporary(int slot) {
    if (slot >= 0) temporary_slots[static_cast<std::size_t>(slot)].state.store(0, std::memory_order_release);
}

// Blocks SIGINT, SIGTERM and SIGHUP in this thread for its lifetime.
class InterruptSignalsBlocked {
public:
    InterruptSignalsBlocked() {
        sigset_t set;
        sigemptyset(&set);
        for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, sig);
        ::pthread_sigmask(SIG_BLOCK, &set, &old_);
    }
    InterruptSignalsBlocked(const InterruptSignalsBlocked&) = delete;
    InterruptSignalsBlocked& operator=(const InterruptSignalsBlocked&) = delete;
    ~InterruptSignalsBlocked() { ::pthread_sigmask(SIG_SETMASK, &old_, nullptr); }

private:
    sigset_t old_;
};

inline void remove_temporaries_and_reraise(int sig) {
    for (auto& t : temporary_slots)
        if (t.state.load(std::memory_order_acquire) == 2) ::unlink(t.path);
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

// The regular file `target` names, following symbolic links; refuses what cannot be replaced by renaming.
inline std::filesystem::path resolve_output_target(const std::filesystem::path& target) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path t = target;
    if (fs::is_symlink(fs::symlink_status(t, ec))) {
        const fs::path resolved = fs::weakly_canonical(t, ec);
        HYVIDEO_CHECK(!ec, target.string(), ": cannot follow the symbolic link: ", ec.message());
        t = resolved;
    }
    struct stat st {};
    if (::stat(t.c_str(), &st) == 0) {
        HYVIDEO_CHECK(!S_ISDIR(st.st_mode), target.string(), ": is a directory");
        HYVIDEO_CHECK(S_ISREG(st.st_mode), target.string(), ": exists and is ",
                      S_ISFIFO(st.st_mode)  ? "a FIFO (named pipe)"
                      : S_ISCHR(st.st_mode) ? "a character device"
                      : S_ISBLK(st.st_mode) ? "a block device"
                      : S_ISSOCK(st.st_mode) ? "a socket"
                                             : "not a regular file",
                      "; outputs are regular files, written whole and renamed into place, so it is left alone");
    }
    return t;
}
}  // namespace detail

// Installs remove_temporaries_and_reraise for SIGINT, SIGTERM and SIGHUP (programs call it once, early).
inline void remove_temporaries_on_signals() {
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
        struct sigaction sa {};
        sa.sa_handler = detail::remove_temporaries_and_reraise;
        sigemptyset(&sa.sa_mask);
        ::sigaction(sig, &sa, nullptr);
    }
}

class AtomicFile {
public:
    explicit AtomicFile(const std::filesystem::path& target) : target_(detail::resolve_output_target(target)) {
        const auto dir = target_.has_parent_path() ? target_.parent_path() : std::filesystem::path(".");
        std::error_code ec;
        HYVIDEO_CHECK(std::filesystem::is_directory(dir, ec), target.string(), ": cannot create a temporary file in ",
                      dir.string(), ": ", std::filesystem::exists(dir, ec) ? "Not a directory" : "No such file or directory");
        static std::atomic<unsigned> counter{0};
        // A name is registered for the signal handler before the file is created, so that no moment has a
        // file the handler does not know of (a handler that runs before the file exists unlinks nothing;
        // one that finds a stale file of a dead process of the same pid removes garbage). This thread
        // holds the interrupting signals back meanwhile, so that they arrive when the state is settled.
        const detail::InterruptSignalsBlocked blocked;
        for (int attempt = 0; attempt < 100 && fd_ < 0; ++attempt) {
            // Hidden and tagged with pid and counter: concurrent writers never collide, and a file left
            // by a killed process is recognisable. The name is cut to stay under NAME_MAX.
            temp_ = dir / detail::concat(".", target_.filename().string().substr(0, 200), ".", ::getpid(), "-",
                                         counter++, ".tmp");
            detail::unregister_temporary(std::exchange(slot_, detail::register_temporary(temp_)));
            // 0666: the finished file gets the permissions the umask gives any new file.
            fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
            if (fd_ < 0 && errno != EEXIST) break;
        }
        if (fd_ < 0) {
            const std::string reason = detail::errno_text();
            detail::unregister_temporary(std::exchange(slot_, -1));
            throw Error(detail::concat(target_.string(), ": cannot create a temporary file in ", dir.string(), ": ", reason));
        }
    }

    // Whether `target` can be written, found by the checks and the temporary file of a real write, which
    // is removed again. Throws the Error the write would throw.
    static void check_target(const std::filesystem::path& target) { AtomicFile probe(target); }
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;
    ~AtomicFile() {
        if (!committed_) {
            if (fd_ >= 0) ::close(fd_);
            ::unlink(temp_.c_str());
        }
        // Only now: a signal in between unlinks a name that is already gone, which is harmless.
        detail::unregister_temporary(slot_);
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
        detail::unregister_temporary(std::exchange(slot_, -1));
    }

private:
    std::filesystem::path target_;
    std::filesystem::path temp_;
    int fd_ = -1;
    int slot_ = -1;
    bool committed_ = false;
};

}  // namespace hyvideo
