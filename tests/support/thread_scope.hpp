#pragma once
// Sets the number of threads for one scope and restores the previous number, so a failing check cannot
// leak the setting into later tests.
#include "hyvideo/core/parallel.hpp"

namespace hyvideo::test {

class ThreadScope {
public:
    explicit ThreadScope(int n) : saved_(num_threads()) { set_num_threads(n); }
    ~ThreadScope() { set_num_threads(saved_); }
    ThreadScope(const ThreadScope&) = delete;
    ThreadScope& operator=(const ThreadScope&) = delete;

private:
    int saved_;
};

}  // namespace hyvideo::test
