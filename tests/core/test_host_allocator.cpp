// The host allocator behind Tensor::empty: alignment, reuse of freed large blocks, the cache's bound, and
// the scopes that raise it.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>

#include "hyvideo/core/host_allocator.hpp"
#include "hyvideo/core/tensor.hpp"

using namespace hyvideo;

namespace {
// Restores the cache limit at the end of a test, so a failing check cannot leak a setting.
struct LimitScope {
    std::size_t saved = host_cache_limit();
    ~LimitScope() { set_host_cache_limit(saved); }
};
}  // namespace

TEST_CASE("host allocator: 64-byte alignment for every size, small and large") {
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{63}, std::size_t{65}, std::size_t{4097},
                          std::size_t{1} << 20, (std::size_t{3} << 20) + 5}) {
        const auto p = allocate_host(n);
        CHECK(reinterpret_cast<std::uintptr_t>(p.get()) % 64 == 0);
        std::memset(p.get(), 0xAB, n);  // the whole size is usable
    }
}

TEST_CASE("host allocator: a freed large block is handed out again for the same size, and the bound holds") {
    LimitScope scope;
    release_host_cache();
    set_host_cache_limit(std::size_t{64} << 20);
    const std::size_t n = (std::size_t{5} << 20) + 123;  // rounded up to 64 KiB granules
    void* first = nullptr;
    {
        const Tensor t = Tensor::empty({static_cast<std::int64_t>(n)}, DType::boolean);
        first = t.raw_data();
        CHECK(host_cache_bytes() == 0);
    }
    CHECK(host_cache_bytes() >= n);
    CHECK(host_cache_bytes() < n + (std::size_t{1} << 16));
    {
        const Tensor again = Tensor::empty({static_cast<std::int64_t>(n)}, DType::boolean);
        CHECK(again.raw_data() == first);  // reused: no fresh pages to fault in
        CHECK(host_cache_bytes() == 0);
        const Tensor other = Tensor::empty({static_cast<std::int64_t>(2 * n)}, DType::boolean);
        CHECK(other.raw_data() != first);
    }
    CHECK(host_cache_bytes() > 3 * n);

    // Blocks that would exceed the bound go back to the system; lowering the bound frees the excess.
    set_host_cache_limit(n + (std::size_t{1} << 16));
    CHECK(host_cache_bytes() <= n + (std::size_t{1} << 16));
    { const Tensor big = Tensor::empty({static_cast<std::int64_t>(4 * n)}, DType::boolean); }
    CHECK(host_cache_bytes() <= n + (std::size_t{1} << 16));
    set_host_cache_limit(0);
    CHECK(host_cache_bytes() == 0);
    { const Tensor t = Tensor::empty({static_cast<std::int64_t>(n)}, DType::boolean); }
    CHECK(host_cache_bytes() == 0);

    // Small blocks are never cached.
    set_host_cache_limit(std::size_t{64} << 20);
    { const Tensor small = Tensor::empty({1000}); }
    CHECK(host_cache_bytes() == 0);
}

TEST_CASE("host allocator: a HostCacheScope raises the bound while it lives, unless the bound was chosen") {
    auto& c = host_allocator_detail::cache();
    const bool chosen = c.limit_chosen.load();
    const std::size_t saved = host_cache_limit();
    const std::size_t MiB = std::size_t{1} << 20;
    c.limit_chosen = false;  // as in a process without HYVIDEO_HOST_CACHE_MB or set_host_cache_limit
    c.set_limit(4 * MiB);
    {
        const HostCacheScope scope(64 * MiB);
        CHECK(host_cache_limit() == 64 * MiB);
        { const Tensor t = Tensor::empty({static_cast<std::int64_t>(8 * MiB)}, DType::boolean); }
        CHECK(host_cache_bytes() >= 8 * MiB);  // kept: above the old bound, within the raised one
        {
            const HostCacheScope lower(MiB);  // a scope never lowers the bound
            CHECK(host_cache_limit() == 64 * MiB);
        }
        CHECK(host_cache_limit() == 64 * MiB);
    }
    CHECK(host_cache_limit() == 4 * MiB);
    CHECK(host_cache_bytes() <= 4 * MiB);  // the excess went back to the system
    // A bound chosen through set_host_cache_limit (or the environment) is kept.
    set_host_cache_limit(4 * MiB);
    {
        const HostCacheScope scope(64 * MiB);
        CHECK(host_cache_limit() == 4 * MiB);
    }
    c.limit_chosen = chosen;
    c.set_limit(saved);
}
