// parallel_for and parallel_for_chunks (core/parallel.hpp): coverage of the range, chunking, nesting,
// exceptions and the thread count.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "hyvideo/core/error.hpp"
#include "hyvideo/core/parallel.hpp"
#include "../support/error_of.hpp"
#include "../support/thread_scope.hpp"

using namespace hyvideo;

namespace {

using hyvideo::test::ThreadScope;
using hyvideo::test::error_of;

}  // namespace

TEST_CASE("parallel_for covers every index exactly once, for 1 and 2 threads") {
    for (int threads : {1, 2}) {
        ThreadScope scope(threads);
        for (std::int64_t n : {0, 1, 2, 3, 7, 100, 1001})
            for (std::int64_t grain : {1, 3, 64, 5000}) {
                INFO("threads=", threads, " n=", n, " grain=", grain);
                std::vector<int> hits(static_cast<std::size_t>(n), 0);
                parallel_for(0, n, [&](std::int64_t i) { ++hits[static_cast<std::size_t>(i)]; }, grain);
                CHECK(std::all_of(hits.begin(), hits.end(), [](int h) { return h == 1; }));

                // The chunked form: contiguous chunks that tile the range, one per thread at most,
                // none shorter than the grain unless the range itself is.
                std::mutex mutex;
                std::vector<std::pair<std::int64_t, std::int64_t>> chunks;
                parallel_for_chunks(10, 10 + n, grain, [&](std::int64_t lo, std::int64_t hi) {
                    std::lock_guard lock(mutex);
                    chunks.emplace_back(lo, hi);
                });
                std::sort(chunks.begin(), chunks.end());
                std::int64_t next = 10;
                for (const auto& [lo, hi] : chunks) {
                    CHECK(lo == next);
                    CHECK(hi - lo >= std::min(grain, n));
                    next = hi;
                }
                CHECK(next == 10 + n);
                CHECK(static_cast<int>(chunks.size()) <= threads);
            }
    }
}

TEST_CASE("parallel_for uses both threads for a large range and nests serially") {
    ThreadScope scope(2);
    std::vector<std::thread::id> outer_thread(2);
    std::vector<int> inner_chunks(2, 0);
    std::vector<char> nested(2, 0);
    parallel_for(0, 2, [&](std::int64_t i) {
        const auto slot = static_cast<std::size_t>(i);
        outer_thread[slot] = std::this_thread::get_id();
        nested[slot] = in_parallel_region();
        parallel_for_chunks(0, 1000, 1, [&](std::int64_t, std::int64_t) { ++inner_chunks[slot]; });
    });
    if (num_threads() == 2) {  // not in a build without OpenMP
        CHECK(outer_thread[0] != outer_thread[1]);
        CHECK(nested == std::vector<char>{1, 1});
    }
    CHECK(inner_chunks == std::vector<int>{1, 1});
    CHECK_FALSE(in_parallel_region());
}

TEST_CASE("parallel_for rethrows the exception of the lowest failing chunk") {
    ThreadScope scope(2);
    for (int attempt = 0; attempt < 20; ++attempt) {
        const std::string message = error_of([] {
            parallel_for(0, 100, [](std::int64_t i) { throw Error("failed at " + std::to_string(i)); });
        });
        CHECK(message == "failed at 0");
    }
}

TEST_CASE("set_num_threads") {
    ThreadScope scope(1);
    CHECK(num_threads() == 1);
#ifdef _OPENMP
    set_num_threads(2);
    CHECK(num_threads() == 2);
#endif
    CHECK_THROWS_AS(set_num_threads(0), Error);
}
