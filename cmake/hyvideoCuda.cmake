# hyvideo::cuda, the CUDA backend (include/hyvideo/backend/cuda/cuda.hpp; defined in src/cuda/, which
# nvcc compiles into a static library). Needs the CUDA toolkit: nvcc, the runtime and cuBLASLt.
# Architectures: sm_80 (A100) and sm_90 (H100/H200) unless CMAKE_CUDA_ARCHITECTURES says otherwise.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 80 90)
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)

add_library(hyvideo_cuda STATIC ${PROJECT_SOURCE_DIR}/src/cuda/cuda_backend.cu)
add_library(hyvideo::cuda ALIAS hyvideo_cuda)
set_target_properties(hyvideo_cuda PROPERTIES POSITION_INDEPENDENT_CODE ON EXPORT_NAME cuda)
# Extended lambdas: the shared Thrust kernels pass __host__ __device__ lambdas; relaxed constexpr: the
# scalar conversions call std::numeric_limits and friends from device code.
# C++20 by flag: CMake 3.25 does not know how to ask nvcc 13 for CUDA_STANDARD 20.
target_compile_options(hyvideo_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20 --extended-lambda --expt-relaxed-constexpr>)
target_compile_definitions(hyvideo_cuda PUBLIC HYVIDEO_HAS_CUDA=1)
target_link_libraries(hyvideo_cuda PUBLIC hyvideo CUDA::cudart CUDA::cublasLt)
