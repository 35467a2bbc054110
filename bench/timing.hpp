#pragma once
// Wall-clock timing for the benchmarks: one untimed warm-up call (primitive caches, first-touch page
// faults of fresh buffers), then the median of `runs` timed calls.
#include <algorithm>
#include <chrono>
#include <vector>

namespace hyvideo::bench {

template <class F>
double median_seconds(int runs, F&& f) {
    f();
    std::vector<double> t;
    for (int i = 0; i < std::max(runs, 1); ++i) {
        const auto a = std::chrono::steady_clock::now();
        f();
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

}  // namespace hyvideo::bench
