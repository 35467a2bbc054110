#pragma once
// hyvideo::cuda, the CUDA backend. This header is plain C++ (no CUDA syntax, no CUDA headers), so
// components templated on the backend compile with any C++ compiler; the primitives are defined in
// src/cuda/cuda_backend.cu, compiled by nvcc into hyvideo::cuda (configure with -DHYVIDEO_CUDA=ON).
//
// What runs where (docs/cuda.md): data movement, elementwise arithmetic, norms and reductions are the
// Thrust kernels it shares with thrust-omp (backend/thrust/thrust_backend.hpp), so CI checks them on
// machines without a GPU; matrix products go through cuBLASLt; attention is an online-softmax kernel of
// our own (backend/cuda/flash_attention.cuh); conv3d a direct kernel (backend/cuda/conv3d_direct.cuh).
// Tensors are device memory of the current CUDA device; calls are synchronous: each is queued on the
// calling thread's stream (use_stream; the legacy default stream unless chosen) and returns once that
// stream has finished it.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hyvideo/backend/backend.hpp"

namespace hyvideo {

struct cuda {
    static constexpr Device device = Device::cuda;

    // Whether a usable CUDA device is present (false without a driver or a GPU, never throws).
    static bool available();
    static std::string device_description();

    static Tensor empty(const Shape& s, DType dtype = DType::f32);
    static Tensor zeros(const Shape& s, DType dtype = DType::f32);
    static Tensor full(const Shape& s, float value);
    static Tensor upload(const Tensor& host);
    static Tensor download(const Tensor& t);
    static Tensor weight(const Tensor& stored, DType dtype);
    static Tensor weight_into(const Tensor& stored, DType dtype, Tensor reuse);
    static Tensor contiguous(const Tensor& t);
    static Tensor cast(const Tensor& t, DType dtype);
    static Tensor to_float(const Tensor& t);
    static Tensor cat(const std::vector<Tensor>& parts, std::int64_t dim);

    static Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);

    static Tensor silu(const Tensor& x);
    static Tensor gelu_tanh(const Tensor& x);
    static Tensor gelu(const Tensor& x);
    static Tensor quick_gelu(const Tensor& x);
    static Tensor add(const Tensor& a, const Tensor& b);
    static Tensor sub(const Tensor& a, const Tensor& b);
    static Tensor mul(const Tensor& a, const Tensor& b);
    static Tensor scale(const Tensor& a, float s);
    static Tensor affine(const Tensor& x, float a, float b);

    static Tensor layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps);
    static Tensor rms_norm(const Tensor& x, const Tensor& w, float eps);
    static Tensor modulate(const Tensor& x, const Tensor& shift, const Tensor& scale);
    static Tensor gated_add(const Tensor& x, const Tensor& y, const Tensor& gate);
    static Tensor masked_mean(const Tensor& x, const Tensor& w);
    static std::vector<double> sample_std(const Tensor& x);
    static double mean_abs(const Tensor& x);
    static Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionMask& mask, float scale,
                            DType operands = DType::f32);
    static Tensor apply_rope(const Tensor& x, const Tensor& cos, const Tensor& sin,
                             RopeLayout layout = RopeLayout::interleaved);
    static Tensor embedding(const Tensor& table, const Tensor& ids);
    static Tensor timestep_embedding(const Tensor& t, std::int64_t dim, float max_period);

    static Tensor conv3d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv3dSpec& spec,
                         const Conv3dFusion& fusion = {});
    static Tensor group_norm(const Tensor& x, const Tensor& w, const Tensor& b, std::int64_t groups, float eps);
    static Tensor group_norm_silu(const Tensor& x, const Tensor& w, const Tensor& b, std::int64_t groups, float eps);
    static Tensor group_norm_affine(const Tensor& x, const Tensor& w, const Tensor& b, std::int64_t groups, float eps);
    static Tensor upsample_nearest(const Tensor& x, std::array<std::int64_t, 3> factor, bool causal);
    static Tensor blend(const Tensor& a, const Tensor& b, std::int64_t dim);
    static void assign(const Tensor& dst, const Tensor& src);
    static Tensor clamp(const Tensor& x, float lo, float hi);
    static Tensor exp(const Tensor& x);

    // A cudaStream_t made non-blocking (it does not wait for the legacy default stream, so work on it
    // overlaps the default stream's); an empty handle is the default stream. Owned by its copies.
    struct Stream {
        std::shared_ptr<void> handle;
    };
    static Stream new_stream();
    static Stream use_stream(Stream stream);
};

static_assert(Backend<cuda>);

}  // namespace hyvideo
