#pragma once
// Input files: how every reader of the project opens, reads and memory-maps what the user names.
//
// open_input_file refuses anything but a regular file before reading a byte. It opens with O_NONBLOCK
// because a plain open() of a FIFO blocks until some other process opens it for writing: a FIFO given as
// a checkpoint, config or image would hang the program instead of being refused.
//
// map_file maps a whole file read-only, and guards the mapping against the file being truncated while it
// is mapped (another program rewriting a checkpoint in place, a copy still in progress being cut short).
// The kernel answers a read of a mapped page past the file's new end with SIGBUS, which would kill the
// process mid-run and leave its temporary files behind. A process-wide SIGBUS handler looks the faulting
// address up among the live mappings; if it lies in one, it maps zero pages over the rest of that
// mapping, so the faulting read resumes and reads zeros, and marks the mapping truncated. Whoever hands
// the data on checks: FileMapping::check_intact() for one file, check_mapped_inputs() for all of them,
// and throws an Error naming the file. Faults outside every mapping go to the handler that was installed
// before (doctest's, a sanitizer's, or the default action).
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "hyvideo/core/error.hpp"
#include "hyvideo/io/atomic_file.hpp"  // detail::errno_text

namespace hyvideo {

namespace detail {

class FileDescriptor {
public:
    explicit FileDescriptor(int fd) : fd_(fd) {}
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    FileDescriptor(FileDescriptor&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    ~FileDescriptor() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const { return fd_; }

private:
    int fd_;
};

// What a non-regular file is, for the message that refuses it.
inline const char* file_type_name(mode_t m) {
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO (named pipe)";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

}  // namespace detail

// An open regular file named by the user, and its size. Errors name the file (and `what` it is, when
// given: "--dit-config", "config.json").
struct InputFile {
    detail::FileDescriptor fd;
    std::uint64_t size = 0;
};

inline InputFile open_input_file(const std::filesystem::path& path, const std::string& what = "") {
    const std::string name = what.empty() ? path.string() : what + " '" + path.string() + "'";
    detail::FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    HYVIDEO_CHECK(fd.get() >= 0, name, ": cannot open: ", detail::errno_text());
    struct stat st {};
    HYVIDEO_CHECK(::fstat(fd.get(), &st) == 0, name, ": cannot stat: ", detail::errno_text());
    HYVIDEO_CHECK(S_ISREG(st.st_mode), name, ": is ", detail::file_type_name(st.st_mode), ", not a regular file");
    // Regular files ignore O_NONBLOCK; cleared all the same, so that the descriptor behaves as a plain one.
    ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
    return {std::move(fd), static_cast<std::uint64_t>(st.st_size)};
}

// The whole of a small text file (a config, an index), read through open_input_file. `max_bytes` keeps a
// wrong file (a checkpoint given as a config) from being read into memory.
inline std::string read_small_file(const std::filesystem::path& path, const std::string& what,
                                   std::uint64_t max_bytes = 64u << 20) {
    const std::string name = what.empty() ? path.string() : what + " '" + path.string() + "'";
    InputFile f = open_input_file(path, what);
    HYVIDEO_CHECK(f.size <= max_bytes, name, ": ", f.size, " bytes is more than the ", max_bytes,
                  " a file of this kind can be");
    std::string text(static_cast<std::size_t>(f.size), '\0');
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::read(f.fd.get(), text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        HYVIDEO_CHECK(n >= 0, name, ": read failed: ", detail::errno_text());
        if (n == 0) break;  // shrank since fstat: what is there is the file
        done += static_cast<std::size_t>(n);
    }
    text.resize(done);
    return text;
}

class FileMapping;

namespace detail {

// The live mappings, as the SIGBUS handler sees them: plain atomics in a fixed array, because a signal
// handler may neither lock nor allocate. A mapping made while every slot is taken works as before, only
// unguarded.
struct MappingSlot {
    std::atomic<std::uintptr_t> begin{0};
    std::atomic<std::uintptr_t> end{0};
    std::atomic<bool> truncated{false};
    const FileMapping* owner = nullptr;  // read under mapping_registry_mutex only
};
inline constexpr std::size_t kMappingSlots = 1024;
inline std::array<MappingSlot, kMappingSlots> mapping_slots;
inline std::mutex mapping_registry_mutex;
inline struct sigaction previous_sigbus_action {};
inline std::uintptr_t mapping_page_size = 4096;

inline void on_sigbus(int sig, siginfo_t* info, void* context) {
    const auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
    for (auto& s : mapping_slots) {
        const std::uintptr_t b = s.begin.load(std::memory_order_acquire);
        const std::uintptr_t e = s.end.load(std::memory_order_acquire);
        if (b == 0 || addr < b || addr >= e) continue;
        const std::uintptr_t from = addr & ~(mapping_page_size - 1);
        // mmap is a system call, safe here; MAP_FIXED replaces the file's pages from the fault to the end.
        void* r = ::mmap(reinterpret_cast<void*>(from), e - from, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                         -1, 0);
        if (r != MAP_FAILED) {
            s.truncated.store(true, std::memory_order_release);
            return;  // the faulting read runs again, on zeros
        }
        break;
    }
    // Not a mapped input: whatever handled SIGBUS before us does.
    const struct sigaction& prev = previous_sigbus_action;
    if ((prev.sa_flags & SA_SIGINFO) != 0 && prev.sa_sigaction != nullptr) {
        prev.sa_sigaction(sig, info, context);
    } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN && prev.sa_handler != nullptr) {
        prev.sa_handler(sig);
    } else {
        // The default action: SIGBUS is blocked while this handler runs, so the raised one is delivered,
        // and ends the process, as soon as it returns.
        ::signal(SIGBUS, SIG_DFL);
        ::raise(SIGBUS);
    }
}

inline void install_sigbus_guard() {
    static std::once_flag once;
    std::call_once(once, [] {
        mapping_page_size = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
        struct sigaction sa {};
        sa.sa_sigaction = on_sigbus;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        ::sigaction(SIGBUS, &sa, &previous_sigbus_action);
    });
}

}  // namespace detail

// A read-only memory mapping of a whole file. Tensors read from the file hold it as their owner, so it
// is unmapped when the last of them (and the file object) is gone.
class FileMapping {
public:
    FileMapping(std::filesystem::path path, const void* addr, std::size_t size) : path_(std::move(path)), addr_(addr), size_(size) {
        std::lock_guard lock(detail::mapping_registry_mutex);
        for (std::size_t i = 0; i < detail::kMappingSlots && size_ > 0; ++i) {
            auto& s = detail::mapping_slots[i];
            if (s.owner != nullptr) continue;
            s.owner = this;
            s.truncated.store(false, std::memory_order_relaxed);
            s.end.store(reinterpret_cast<std::uintptr_t>(addr_) + size_, std::memory_order_release);
            s.begin.store(reinterpret_cast<std::uintptr_t>(addr_), std::memory_order_release);
            slot_ = static_cast<int>(i);
            break;
        }
    }
    FileMapping(const FileMapping&) = delete;
    FileMapping& operator=(const FileMapping&) = delete;
    ~FileMapping() {
        if (slot_ >= 0) {
            std::lock_guard lock(detail::mapping_registry_mutex);
            auto& s = detail::mapping_slots[static_cast<std::size_t>(slot_)];
            s.begin.store(0, std::memory_order_release);
            s.end.store(0, std::memory_order_release);
            s.owner = nullptr;
        }
        if (size_ > 0) ::munmap(const_cast<void*>(addr_), size_);
    }

    const std::byte* data() const { return static_cast<const std::byte*>(addr_); }
    std::size_t size() const { return size_; }
    const std::filesystem::path& path() const { return path_; }

    // Unmaps the file's pages from this process (WeightSource::release_pages): a private read-only
    // mapping refaults them from the page cache, unchanged, when they are read again. Advice only; a
    // kernel that refuses it changes nothing.
    void release_pages() const {
        if (size_ > 0) ::madvise(const_cast<void*>(addr_), size_, MADV_DONTNEED);
    }

    // Whether a read found the file shorter than when it was mapped (the pages past its end read as zeros).
    bool truncated() const {
        return slot_ >= 0 && detail::mapping_slots[static_cast<std::size_t>(slot_)].truncated.load(std::memory_order_acquire);
    }
    void check_intact() const {
        HYVIDEO_CHECK(!truncated(), path_.string(), ": the file was truncated while it was being read (changed by ",
                      "another program?); what was read from it is incomplete");
    }

private:
    std::filesystem::path path_;
    const void* addr_;
    std::size_t size_;
    int slot_ = -1;
};

// Maps `path` (through open_input_file) after checking it holds at least `min_size` bytes; `format`
// names what those bytes are for the message ("the 8-byte header length of a safetensors file").
inline std::shared_ptr<const FileMapping> map_file(const std::filesystem::path& path, std::uint64_t min_size = 1,
                                                   const std::string& format = "") {
    InputFile f = open_input_file(path);
    HYVIDEO_CHECK(f.size >= min_size && f.size > 0, path.string(), ": file is ", f.size, " bytes, too short",
                  format.empty() ? std::string() : " for " + format);
    detail::install_sigbus_guard();
    // MAP_PRIVATE + PROT_READ: views are read-only, and a bug that writes through one faults instead of
    // silently changing the weights file on disk.
    void* addr = ::mmap(nullptr, f.size, PROT_READ, MAP_PRIVATE, f.fd.get(), 0);
    HYVIDEO_CHECK(addr != MAP_FAILED, path.string(), ": cannot memory-map ", f.size, " bytes: ", detail::errno_text());
    return std::make_shared<const FileMapping>(path, addr, static_cast<std::size_t>(f.size));
}

// Throws, naming the file, if any input mapped by this process was found truncated. Writers call it
// before committing output computed from mapped inputs.
inline void check_mapped_inputs() {
    std::lock_guard lock(detail::mapping_registry_mutex);
    for (const auto& s : detail::mapping_slots)
        if (s.owner != nullptr && s.truncated.load(std::memory_order_acquire)) s.owner->check_intact();
}

}  // namespace hyvideo
