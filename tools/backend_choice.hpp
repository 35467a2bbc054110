#pragma once
// --backend, for the subcommands that compute: which backend type the run is instantiated on.
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "hyvideo/core/error.hpp"
#include "hyvideo/golden/runner.hpp"

namespace hyvideo::cli {

inline const std::vector<std::string>& backend_names() {
    static const std::vector<std::string> names{"cpu", "thrust-omp", "cuda"};
    return names;
}

inline void add_backend_option(CLI::App* sub, std::string& backend) {
    sub->add_option("--backend", backend,
                    "where to compute: cpu; thrust-omp (the CUDA backend's shared kernels on the CPU, through "
                    "Thrust's OpenMP system: for testing, slower than cpu); cuda (a build with -DHYVIDEO_CUDA=ON)")
        ->check(CLI::IsMember(backend_names()))
        ->capture_default_str();
}

bool cuda_device_available();  // tools/backend_cuda.cpp

// One line before any work when the chosen backend is not in this build, or has no device.
inline void require_backend_built(const std::string& backend) {
    if (backend != "cuda") return;
#if defined(HYVIDEO_HAS_CUDA)
    HYVIDEO_CHECK(cuda_device_available(), "--backend cuda: no usable CUDA device (no GPU, or no driver)");
#else
    HYVIDEO_CHECK(false, "--backend cuda: this build has no CUDA backend (configure with -DHYVIDEO_CUDA=ON where the "
                         "CUDA toolkit is installed; docs/cuda.md)");
#endif
}

// A golden fixture on each backend (tools/backend_*.cpp).
golden::FileReport run_golden_cpu(const std::filesystem::path& fixture);
golden::FileReport run_golden_thrust_omp(const std::filesystem::path& fixture);
golden::FileReport run_golden_cuda(const std::filesystem::path& fixture);

inline golden::FileReport run_golden(const std::string& backend, const std::filesystem::path& fixture) {
#if defined(HYVIDEO_HAS_CUDA)
    if (backend == "cuda") return run_golden_cuda(fixture);
#endif
    return backend == "thrust-omp" ? run_golden_thrust_omp(fixture) : run_golden_cpu(fixture);
}

}  // namespace hyvideo::cli
