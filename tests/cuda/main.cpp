// The CUDA tests' entry point: where no CUDA device can be used (no driver, no GPU) they are skipped
// with one line and exit status 77, which CTest reports as a skip; elsewhere doctest runs them.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "hyvideo/backend/cuda/cuda.hpp"

int main(int argc, char** argv) {
    if (!hyvideo::cuda::available()) {
        std::printf("hyvideo_cuda_tests: no usable CUDA device here: skipped\n");
        return 77;
    }
    std::printf("hyvideo_cuda_tests: on %s\n", hyvideo::cuda::device_description().c_str());
    doctest::Context context(argc, argv);
    return context.run();
}
