#pragma once
// Data-parallel loops over an index range, on OpenMP.
//
// One thread pool serves the whole process: ours, Eigen's and oneDNN's (Debian builds oneDNN on
// OpenMP), so set_num_threads() governs all three and they never oversubscribe the cores. A loop
// started inside another parallel region runs serially on the calling thread; nesting never
// multiplies the thread count.
//
// Determinism: a parallel_for produces the same result for every thread count provided each index
// writes its own outputs from its own inputs. The chunk boundaries do depend on the thread count,
// so a caller must never split a floating-point reduction across indices (per-chunk partial sums
// combined afterwards would round differently with 1 and 2 threads). Reduce inside fn(i) instead,
// over a dimension that is not the parallel one.
//
// Without OpenMP (compiled without -fopenmp) everything runs serially with the same results.
#include <algorithm>
#include <cstdint>
#include <exception>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "hyvideo/core/error.hpp"

namespace hyvideo {

// The number of threads a parallel loop (and oneDNN, and Eigen) started from this thread will use.
inline int num_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

// Sets the thread count for loops started from the calling thread (OpenMP's nthreads ICV is per
// thread, so call it from the thread that starts the work, normally main).
inline void set_num_threads(int n) {
    HYVIDEO_CHECK(n >= 1, "set_num_threads: need at least 1 thread, got ", n);
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
}

// True inside a parallel region, where further parallel loops run serially.
inline bool in_parallel_region() {
#ifdef _OPENMP
    return omp_in_parallel() != 0;
#else
    return false;
#endif
}

// Calls fn(chunk_begin, chunk_end) over contiguous chunks covering [begin, end) exactly once.
// Static schedule: the range is cut into at most num_threads() chunks of near-equal size, each at
// least `grain` long, one per thread; a range shorter than two grains (or a call from inside a
// parallel region, or a single thread) is one chunk run on the calling thread. Choose `grain` so
// that a chunk's work outweighs waking a thread (a few microseconds).
//
// An exception thrown by fn is rethrown on the calling thread after all chunks finish; when several
// chunks throw, the one from the lowest chunk wins, whatever the timing.
template <class F>
void parallel_for_chunks(std::int64_t begin, std::int64_t end, std::int64_t grain, F&& fn) {
    const std::int64_t n = end - begin;
    if (n <= 0) return;
    grain = std::max<std::int64_t>(grain, 1);
    const std::int64_t max_chunks = std::min<std::int64_t>(num_threads(), n / grain);
    if (max_chunks <= 1 || in_parallel_region()) {
        fn(begin, end);
        return;
    }
#ifdef _OPENMP
    std::vector<std::exception_ptr> errors(static_cast<std::size_t>(max_chunks));
#pragma omp parallel num_threads(static_cast<int>(max_chunks))
    {
        // The runtime may grant fewer threads than asked for; split by what we actually got.
        const std::int64_t chunks = omp_get_num_threads();
        const std::int64_t c = omp_get_thread_num();
        const std::int64_t base = n / chunks, extra = n % chunks;
        const std::int64_t lo = begin + c * base + std::min(c, extra);
        const std::int64_t hi = lo + base + (c < extra ? 1 : 0);
        try {
            fn(lo, hi);
        } catch (...) {
            errors[static_cast<std::size_t>(c)] = std::current_exception();
        }
    }
    for (const auto& e : errors)
        if (e) std::rethrow_exception(e);
#endif
}

// Calls fn(i) for every i in [begin, end) exactly once, in contiguous per-thread blocks.
// `grain` is the smallest block worth a thread; the default suits bodies of a microsecond or more.
template <class F>
void parallel_for(std::int64_t begin, std::int64_t end, F&& fn, std::int64_t grain = 1) {
    parallel_for_chunks(begin, end, grain, [&fn](std::int64_t lo, std::int64_t hi) {
        for (std::int64_t i = lo; i < hi; ++i) fn(i);
    });
}

}  // namespace hyvideo
