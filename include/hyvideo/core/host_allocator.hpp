#pragma once
// Host memory for tensors: 64-byte aligned blocks, with a bounded cache of freed large blocks.
//
// Why a cache: glibc serves blocks above its mmap threshold (at most 32 MiB) straight from the kernel
// and returns them on free, so every activation of a real-width DiT block or VAE layer ([1024, 21504]
// f32 is 88 MB) arrives as fresh pages, each one faulted in and zeroed by the kernel on first touch:
// a fifth of a single-stream block's time went there. A forward allocates the same sizes again and
// again, so keeping freed blocks of 1 MiB and up (exact size, rounded up to 64 KiB) and handing them
// out again removes that cost. The cache holds at most host_cache_limit() bytes (default 256 MiB, or
// HYVIDEO_HOST_CACHE_MB from the environment; 0 turns it off); a freed block that does not fit is
// returned to the system. A HostCacheScope raises the bound where the same sizes come back many times
// (the denoising loop), unless the environment fixed it.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <new>

namespace hyvideo {

namespace host_allocator_detail {

inline constexpr std::size_t kMinCached = std::size_t{1} << 20;
inline constexpr std::size_t kGranule = std::size_t{1} << 16;

struct Cache {
    std::mutex mutex;
    std::multimap<std::size_t, void*> free_blocks;  // rounded size -> block
    std::size_t cached_bytes = 0;
    // Whether the environment or set_host_cache_limit chose the bound (a HostCacheScope leaves it then).
    std::atomic<bool> limit_chosen{environment_limit() != nullptr};
    std::atomic<std::size_t> limit{environment_limit() ? *environment_limit() : std::size_t{256} << 20};

    void set_limit(std::size_t bytes) {
        limit.store(bytes);
        shrink_to(bytes);
    }

    // HYVIDEO_HOST_CACHE_MB in the environment, if it is a number.
    static const std::size_t* environment_limit() {
        static const std::size_t value = [] {
            const char* env = std::getenv("HYVIDEO_HOST_CACHE_MB");
            char* end = nullptr;
            const unsigned long long mb = env ? std::strtoull(env, &end, 10) : 0;
            return env && end != env && *end == '\0' ? static_cast<std::size_t>(mb) << 20 : ~std::size_t{0};
        }();
        return value == ~std::size_t{0} ? nullptr : &value;
    }

    // Returns the blocks above `bytes` to the system.
    void shrink_to(std::size_t bytes) {
        std::lock_guard lock(mutex);
        while (cached_bytes > bytes && !free_blocks.empty()) {
            auto it = std::prev(free_blocks.end());  // the largest first
            cached_bytes -= it->first;
            std::free(it->second);
            free_blocks.erase(it);
        }
    }
};

// Never destroyed: tensors held by static objects may be freed after any static destructor ran.
inline Cache& cache() {
    static Cache* c = new Cache;
    return *c;
}

inline std::size_t rounded_size(std::size_t nbytes) {
    const std::size_t n = std::max<std::size_t>(nbytes, 1);
    const std::size_t granule = n >= kMinCached ? kGranule : 64;
    return (n + granule - 1) / granule * granule;
}

inline void release(void* p, std::size_t rounded) {
    if (rounded >= kMinCached) {
        Cache& c = cache();
        std::lock_guard lock(c.mutex);
        if (c.cached_bytes + rounded <= c.limit.load(std::memory_order_relaxed)) {
            c.free_blocks.emplace(rounded, p);
            c.cached_bytes += rounded;
            return;
        }
    }
    std::free(p);
}

}  // namespace host_allocator_detail

// The most bytes of freed blocks kept for reuse, process-wide; lowering it frees the excess now. A bound
// set here (or by HYVIDEO_HOST_CACHE_MB) is kept by every HostCacheScope.
inline std::size_t host_cache_limit() { return host_allocator_detail::cache().limit.load(); }
inline void set_host_cache_limit(std::size_t bytes) {
    host_allocator_detail::cache().limit_chosen.store(true);
    host_allocator_detail::cache().set_limit(bytes);
}
// Bytes held by the cache now (not in use by any tensor).
inline std::size_t host_cache_bytes() {
    auto& c = host_allocator_detail::cache();
    std::lock_guard lock(c.mutex);
    return c.cached_bytes;
}
// Returns every cached block to the system.
inline void release_host_cache() { host_allocator_detail::cache().shrink_to(0); }

// Raises the cache's bound to at least `bytes` while it lives, unless HYVIDEO_HOST_CACHE_MB or
// set_host_cache_limit chose the bound, and then restores it, returning what the cache holds above it
// to the system. For loops that allocate the same large sizes over and over: the denoising loop holds
// one (pipelines/hunyuan_video_pipeline.hpp), because at the real size a DiT block's forward frees
// about 1 GB of activations, far above the default bound, which the next block then faults in afresh.
class HostCacheScope {
public:
    explicit HostCacheScope(std::size_t bytes) : saved_(host_cache_limit()) {
        auto& c = host_allocator_detail::cache();
        raised_ = !c.limit_chosen.load() && saved_ < bytes;
        if (raised_) c.set_limit(bytes);
    }
    ~HostCacheScope() {
        if (raised_) host_allocator_detail::cache().set_limit(saved_);
    }
    HostCacheScope(const HostCacheScope&) = delete;
    HostCacheScope& operator=(const HostCacheScope&) = delete;

private:
    std::size_t saved_;
    bool raised_ = false;
};

// nbytes of uninitialised, 64-byte aligned host memory, freed (or cached) when the last owner lets go.
inline std::shared_ptr<std::byte> allocate_host(std::size_t nbytes) {
    using namespace host_allocator_detail;
    const std::size_t rounded = rounded_size(nbytes);
    void* p = nullptr;
    if (rounded >= kMinCached) {
        Cache& c = cache();
        std::lock_guard lock(c.mutex);
        if (auto it = c.free_blocks.find(rounded); it != c.free_blocks.end()) {
            p = it->second;
            c.cached_bytes -= rounded;
            c.free_blocks.erase(it);
        }
    }
    if (!p) p = std::aligned_alloc(64, rounded);
    if (!p) {
        release_host_cache();  // the cache's blocks may be what the system is short of
        p = std::aligned_alloc(64, rounded);
        if (!p) throw std::bad_alloc();
    }
    return std::shared_ptr<std::byte>(static_cast<std::byte*>(p), [rounded](std::byte* q) { release(q, rounded); });
}

}  // namespace hyvideo
