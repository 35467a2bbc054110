#pragma once
// Status checks for CUDA runtime and cuBLAS/cuBLASLt calls: a failed call becomes a hyvideo::Error
// like every other failure in the toolkit, naming the call, where it was made and the library's own
// explanation, so a device failure reads the same as a shape mismatch and callers need one catch.
//
// Plain C++: a host-compiler translation unit that talks to the CUDA libraries can use it as well as
// a .cu file.
#include <cublasLt.h>
#include <cuda_runtime.h>

#include "hyvideo/core/error.hpp"

namespace hyvideo::cuda_detail {

// Out of line of the macros so that the hot path at each call site is one compare and a cold call.
[[noreturn]] inline void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
    throw ::hyvideo::Error(::hyvideo::detail::concat(call, " failed at ", file, ":", line, ": ", cudaGetErrorName(status),
                                                     " (", cudaGetErrorString(status), ")"));
}

[[noreturn]] inline void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
    // cublasLtGetStatus* cover every cublasStatus_t, cuBLAS's own calls included, and keep this header on
    // the one library it already needs.
    throw ::hyvideo::Error(::hyvideo::detail::concat(call, " failed at ", file, ":", line, ": ",
                                                     cublasLtGetStatusName(status), " (",
                                                     cublasLtGetStatusString(status), ")"));
}

}  // namespace hyvideo::cuda_detail

// HYVIDEO_CUDA_CHECK(cudaMemcpyAsync(...)): throws hyvideo::Error unless the call returns cudaSuccess.
// After a kernel launch, HYVIDEO_CUDA_CHECK(cudaGetLastError()) reports a bad launch configuration;
// errors inside the kernel surface at the next synchronising call.
#define HYVIDEO_CUDA_CHECK(expr)                                                                      \
    do {                                                                                              \
        const cudaError_t hyvideo_cuda_status_ = (expr);                                              \
        if (hyvideo_cuda_status_ != cudaSuccess)                                                      \
            ::hyvideo::cuda_detail::throw_cuda_error(hyvideo_cuda_status_, #expr, __FILE__, __LINE__); \
    } while (0)

// HYVIDEO_CUBLAS_CHECK(cublasLtMatmul(...)): throws hyvideo::Error unless the call returns
// CUBLAS_STATUS_SUCCESS.
#define HYVIDEO_CUBLAS_CHECK(expr)                                                                        \
    do {                                                                                                  \
        const cublasStatus_t hyvideo_cublas_status_ = (expr);                                             \
        if (hyvideo_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                              \
            ::hyvideo::cuda_detail::throw_cublas_error(hyvideo_cublas_status_, #expr, __FILE__, __LINE__); \
    } while (0)
