#pragma once
// Running a stack of blocks whose weights are streamed from a WeightSource, optionally reading the next
// block while the current one computes.
//
// A streamed model (the DiT's load_streamed, the LLM's) holds no block weights: each block is read,
// dequantised and converted when the forward reaches it, and dropped after it. Read in turn, the
// forward waits for every read. With BlockPrefetch::next_block a loader thread reads block i + 1 while
// block i computes, so the forward waits only for what the loader has not finished; memory then holds
// two blocks' converted weights instead of one. The loader runs its loops on one thread at the lowest
// scheduling priority, so on a CPU it takes only the time the forward's team leaves idle (and a whole
// core while the forward waits for it), and its backend calls on its own stream (on CUDA the weight
// upload and conversion overlap the compute stream; backend.hpp, "streams").
//
// Results do not depend on the prefetch: a block's weights are the same whichever thread reads them.
#include <chrono>
#include <cstddef>
#include <future>
#include <utility>

#if defined(__linux__)
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "hyvideo/backend/backend.hpp"
#include "hyvideo/core/parallel.hpp"

namespace hyvideo {

namespace streamed_blocks_detail {
// Nice 19 for the calling thread alone (Linux gives each thread its own nice value); elsewhere, or if
// refused, the thread keeps the process's priority.
inline void lowest_priority_for_this_thread() {
#if defined(__linux__)
    (void)setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 19);
#endif
}
}  // namespace streamed_blocks_detail

// How a streamed model reads its blocks: when the forward reaches each one, or one block ahead on a
// loader thread.
enum class BlockPrefetch { none, next_block };

// Where a streamed forward's time went, summed over forwards.
struct StreamedTimes {
    double reading = 0;  // reading, dequantising and converting blocks' weights, on whichever thread did it
    double waiting = 0;  // the forward's wall time spent waiting for a block's weights (= reading without prefetch)
};

// Calls run(load(i)) for i in [begin, end) in order, then after_each() (a WeightSource's release_pages).
// load(i) returns block i with its weights; with next_block it runs on a loader thread for i + 1 while
// run(block i) computes, on `loader_stream`. An exception from load or run reaches the caller after
// the loader has stopped.
template <Backend B, class Load, class Run, class AfterEach>
void run_streamed_blocks(std::size_t begin, std::size_t end, BlockPrefetch prefetch,
                         const typename B::Stream& loader_stream, StreamedTimes& times, Load&& load, Run&& run,
                         AfterEach&& after_each) {
    using Clock = std::chrono::steady_clock;
    const auto since = [](Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); };
    if (begin >= end) return;
    if (prefetch == BlockPrefetch::none) {
        for (std::size_t i = begin; i < end; ++i) {
            const auto t0 = Clock::now();
            auto block = load(i);
            const double s = since(t0);
            times.reading += s;
            times.waiting += s;
            run(block);
            after_each();
        }
        return;
    }
    using Block = decltype(load(begin));
    const auto read_ahead = [&](std::size_t i) {
        return std::async(std::launch::async, [&load, &loader_stream, &since, i] {
            set_num_threads(1);
            streamed_blocks_detail::lowest_priority_for_this_thread();
            const StreamScope<B> on_loader_stream(loader_stream);
            const auto t0 = Clock::now();
            Block block = load(i);
            return std::pair<Block, double>(std::move(block), since(t0));
        });
    };
    auto next = read_ahead(begin);
    for (std::size_t i = begin; i < end; ++i) {
        const auto t0 = Clock::now();
        auto [block, seconds] = next.get();
        times.waiting += since(t0);
        times.reading += seconds;
        // A future from std::async waits for its thread when destroyed, so an exception from run()
        // leaves no loader behind.
        if (i + 1 < end) next = read_ahead(i + 1);
        run(block);
        after_each();
    }
}

}  // namespace hyvideo
