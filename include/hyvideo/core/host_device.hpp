#pragma once
// HYVIDEO_HD marks a function that runs on the host and, under nvcc, on a CUDA device too: the
// scalar conversions and the Thrust backend's element functions are written once for both.
// HYVIDEO_HD_LAMBDA does the same for a lambda passed to a Thrust algorithm (nvcc's extended lambdas).
#if defined(__CUDACC__)
#define HYVIDEO_HD __host__ __device__
#define HYVIDEO_HD_LAMBDA __host__ __device__
#else
#define HYVIDEO_HD
#define HYVIDEO_HD_LAMBDA
#endif
