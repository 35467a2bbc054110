#pragma once
// hyvideo::thrust_omp: the Thrust backend on Thrust's OpenMP system. Its memory is host RAM labelled
// Device::omp, so host code cannot read it behind the backend's back, and every kernel the CUDA
// backend shares with it (thrust_backend.hpp) runs here, on any machine. Matrix products, attention
// and convolutions, which the CUDA backend takes from cuBLASLt, its own flash-attention kernel and
// cuDNN, are the CPU backend's here: the operands are relabelled as host tensors, not copied.
#include <cstring>
#include <memory>

#include <thrust/system/omp/execution_policy.h>

#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/backend/thrust/thrust_backend.hpp"
#include "hyvideo/core/host_allocator.hpp"

namespace hyvideo {

struct ThrustOmpSystem {
    static constexpr Device device = Device::omp;
    static int index() { return 0; }
    static decltype(thrust::omp::par) policy() { return thrust::omp::par; }
    static std::shared_ptr<const void> allocate(std::size_t nbytes) { return allocate_host(nbytes); }
    static void copy_to_device(void* dst, const void* src, std::size_t n) { std::memcpy(dst, src, n); }
    static void copy_to_host(void* dst, const void* src, std::size_t n) { std::memcpy(dst, src, n); }
    // Kernels run on the calling thread's OpenMP team: a stream is only a name, as on the CPU backend.
    struct Stream {};
    static Stream new_stream() { return {}; }
    static Stream use_stream(Stream) { return {}; }

    static Tensor host(const Tensor& t) { return t.defined() && t.device() == device ? t.relabelled(Device::cpu) : t; }
    static Tensor back(const Tensor& t) { return t.relabelled(device); }
    static void require_here(const Tensor& t, const char* what) {
        HYVIDEO_CHECK(!t.defined() || t.device() == device, what, ": a ", device_name(t.device()),
                      " tensor on the omp backend (upload it first)");
    }

    static Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
        for (const Tensor* t : {&x, &w, &b}) require_here(*t, "linear");
        return back(cpu::linear(host(x), host(w), host(b)));
    }
    static Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionMask& mask, float scale,
                            DType operands) {
        for (const Tensor* t : {&q, &k, &v}) require_here(*t, "attention");
        return back(cpu::attention(host(q), host(k), host(v), mask, scale, operands));
    }
    static Tensor conv3d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv3dSpec& spec,
                         const Conv3dFusion& fusion) {
        for (const Tensor* t : {&x, &w, &b}) require_here(*t, "conv3d");
        Conv3dFusion f = fusion;
        f.in_scale = host(fusion.in_scale);
        f.in_shift = host(fusion.in_shift);
        f.residual = host(fusion.residual);
        return back(cpu::conv3d(host(x), host(w), host(b), spec, f));
    }
};

using thrust_omp = thrust_backend<ThrustOmpSystem>;
static_assert(Backend<thrust_omp>);

}  // namespace hyvideo
