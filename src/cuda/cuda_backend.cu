// The CUDA backend's primitives (include/hyvideo/backend/cuda/cuda.hpp declares them): the shared
// Thrust kernels on Thrust's CUDA system, cuBLASLt for matrix products, and our own attention and
// convolution kernels. Compiled by nvcc into hyvideo::cuda.
#include <cuda_runtime.h>
#include <cublasLt.h>

#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <thrust/system/cuda/execution_policy.h>

#include "hyvideo/backend/cuda/check.hpp"
#include "hyvideo/backend/cuda/conv3d_direct.cuh"
#include "hyvideo/backend/cuda/cuda.hpp"
#include "hyvideo/backend/cuda/flash_attention.cuh"
#include "hyvideo/backend/cuda/gemm.cuh"
#include "hyvideo/backend/thrust/thrust_backend.hpp"

namespace hyvideo {

namespace cuda_detail {

// Device memory is cached by size: cudaMalloc and cudaFree synchronise the device and cost tens of
// microseconds, and a denoising step allocates the same few hundred shapes every time. A block freed
// by a tensor goes back to its size's list; when cudaMalloc fails the cache is emptied and it is tried
// once more. Calls are synchronous on their stream (Thrust's blocking par policy; the launches below
// synchronise theirs), so a block returned to the cache is no longer in use on any stream.
class DeviceCache {
public:
    static DeviceCache& instance() {
        static DeviceCache* cache = new DeviceCache;  // never destroyed: tensors may outlive static destructors
        return *cache;
    }
    std::shared_ptr<const void> allocate(std::size_t nbytes) {
        const std::size_t size = rounded(nbytes);
        void* p = take(size);
        if (!p && cudaMalloc(&p, size) != cudaSuccess) {
            (void)cudaGetLastError();  // clear the sticky out-of-memory error before retrying
            release_all();
            HYVIDEO_CUDA_CHECK(cudaMalloc(&p, size));
        }
        return std::shared_ptr<const void>(p, [this, size](const void* q) { give_back(const_cast<void*>(q), size); });
    }
    void release_all() {
        const std::lock_guard lock(mutex_);
        for (auto& [size, p] : free_) cudaFree(p);
        free_.clear();
    }

private:
    static std::size_t rounded(std::size_t n) {
        const std::size_t granule = n < (std::size_t{1} << 20) ? 512 : (std::size_t{2} << 20);
        return std::max<std::size_t>(granule, (n + granule - 1) / granule * granule);
    }
    void* take(std::size_t size) {
        const std::lock_guard lock(mutex_);
        const auto it = free_.find(size);
        if (it == free_.end()) return nullptr;
        void* p = it->second;
        free_.erase(it);
        return p;
    }
    void give_back(void* p, std::size_t size) {
        const std::lock_guard lock(mutex_);
        free_.emplace(size, p);
    }
    std::mutex mutex_;
    std::multimap<std::size_t, void*> free_;
};

// The calling thread's stream (cuda::use_stream); nullptr is the legacy default stream.
inline thread_local cuda::Stream current;
inline cudaStream_t current_stream() { return static_cast<cudaStream_t>(current.handle.get()); }

struct CudaSystem {
    static constexpr Device device = Device::cuda;
    static int index() {
        int d = 0;
        HYVIDEO_CUDA_CHECK(cudaGetDevice(&d));
        return d;
    }
    // Thrust's blocking policy: each algorithm returns once the stream has run it.
    static auto policy() { return thrust::cuda::par.on(current_stream()); }
    static std::shared_ptr<const void> allocate(std::size_t nbytes) { return DeviceCache::instance().allocate(nbytes); }
    static void copy_to_device(void* dst, const void* src, std::size_t n) {
        HYVIDEO_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, current_stream()));
        HYVIDEO_CUDA_CHECK(cudaStreamSynchronize(current_stream()));
    }
    static void copy_to_host(void* dst, const void* src, std::size_t n) {
        HYVIDEO_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, current_stream()));
        HYVIDEO_CUDA_CHECK(cudaStreamSynchronize(current_stream()));
    }
    using Stream = cuda::Stream;
    static Stream new_stream() { return cuda::new_stream(); }
    static Stream use_stream(Stream s) { return cuda::use_stream(std::move(s)); }
    // Defined below, in terms of the struct cuda's own primitives.
    static Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);
    static Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionMask& mask, float scale,
                            DType operands);
    static Tensor conv3d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv3dSpec& spec,
                         const Conv3dFusion& fusion);
};

using Shared = thrust_backend<CudaSystem>;

}  // namespace cuda_detail

using cuda_detail::Shared;

bool cuda::available() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return false;
    }
    return n > 0;
}

std::string cuda::device_description() {
    int d = 0;
    cudaDeviceProp p{};
    HYVIDEO_CUDA_CHECK(cudaGetDevice(&d));
    HYVIDEO_CUDA_CHECK(cudaGetDeviceProperties(&p, d));
    return std::string(p.name) + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ", " +
           std::to_string(p.totalGlobalMem >> 20) + " MiB)";
}

Tensor cuda::empty(const Shape& s, DType dtype) { return Shared::empty(s, dtype); }
Tensor cuda::zeros(const Shape& s, DType dtype) { return Shared::zeros(s, dtype); }
Tensor cuda::full(const Shape& s, float value) { return Shared::full(s, value); }
Tensor cuda::upload(const Tensor& host) { return Shared::upload(host); }
Tensor cuda::download(const Tensor& t) { return Shared::download(t); }
Tensor cuda::weight(const Tensor& stored, DType dtype) { return Shared::weight(stored, dtype); }
Tensor cuda::weight_into(const Tensor& stored, DType dtype, Tensor reuse) {
    return Shared::weight_into(stored, dtype, std::move(reuse));
}
Tensor cuda::contiguous(const Tensor& t) { return Shared::contiguous(t); }
Tensor cuda::cast(const Tensor& t, DType dtype) { return Shared::cast(t, dtype); }
Tensor cuda::to_float(const Tensor& t) { return Shared::to_float(t); }
Tensor cuda::cat(const std::vector<Tensor>& parts, std::int64_t dim) { return Shared::cat(parts, dim); }
Tensor cuda::linear(const Tensor& x, const Tensor& w, const Tensor& b) { return Shared::linear(x, w, b); }
Tensor cuda::silu(const Tensor& x) { return Shared::silu(x); }
Tensor cuda::gelu_tanh(const Tensor& x) { return Shared::gelu_tanh(x); }
Tensor cuda::gelu(const Tensor& x) { return Shared::gelu(x); }
Tensor cuda::quick_gelu(const Tensor& x) { return Shared::quick_gelu(x); }
Tensor cuda::add(const Tensor& a, const Tensor& b) { return Shared::add(a, b); }
Tensor cuda::sub(const Tensor& a, const Tensor& b) { return Shared::sub(a, b); }
Tensor cuda::mul(const Tensor& a, const Tensor& b) { return Shared::mul(a, b); }
Tensor cuda::scale(const Tensor& a, float s) { return Shared::scale(a, s); }
Tensor cuda::affine(const Tensor& x, float a, float b) { return Shared::affine(x, a, b); }
Tensor cuda::layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps) {
    return Shared::layer_norm(x, w, b, eps);
}
Tensor cuda::rms_norm(const Tensor& x, const Tensor& w, float eps) { return Shared::rms_norm(x, w, eps); }
Tensor cuda::modulate(const Tensor& x, const Tensor& shift, const Tensor& scale) {
    return Shared::modulate(x, shift, scale);
}
Tensor cuda::gated_add(const Tensor& x, const Tensor& y, const Tensor& gate) { return Shared::gated_add(x, y, gate); }
Tensor cuda::masked_mean(const Tensor& x, const Tensor& w) { return Shared::masked_mean(x, w); }
std::vector<double> cuda::sample_std(const Tensor& x) { return Shared::sample_std(x); }
double cuda::mean_abs(const Tensor& x) { return Shared::mean_abs(x); }
Tensor cuda::attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionMask& mask, float scale,
                       DType operands) {
    return Shared::attention(q, k, v, mask, scale, operands);
}
Tensor cuda::apply_rope(const Tensor& x, const Tensor& cos, const Tensor& sin, RopeLayout layout) {
    return Shared::apply_rope(x, cos, sin, layout);
}
Tensor cuda::embedding(const Tensor& table, const Tensor& ids) { return Shared::embedding(table, ids); }
Tensor cuda::timestep_embedding(const Tensor& t, std::int64_t dim, float max_period) {
    return Shared::timestep_embedding(t, dim, max_period);
}
Tensor cuda::conv3d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv3dSpec& spec,
                    const Conv3dFusion& fusion) {
    return Shared::conv3d(x, w, b, spec, fusion);
}
Tensor cuda::group_norm(const Tensor& x, const Tensor& w, const Tensor& b, std::int64_t groups, float eps) {
    return Shared::group_norm(x, w, b, groups, eps);
}
Tensor cuda::group_norm_silu(const Tensor& x, const Tensor& w, const Tensor& b, std::int64_t groups, float eps) {
    return Shared::group_norm_silu(x, w, b, groups, eps);
}
Tensor cuda::group_norm_affine(const Tensor& x, const Tensor& w, const Tensor& b, std::int64_t groups, float eps) {
    return Shared::group_norm_affine(x, w, b, groups, eps);
}
Tensor cuda::upsample_nearest(const Tensor& x, std::array<std::int64_t, 3> factor, bool causal) {
    return Shared::upsample_nearest(x, factor, causal);
}
Tensor cuda::blend(const Tensor& a, const Tensor& b, std::int64_t dim) { return Shared::blend(a, b, dim); }
void cuda::assign(const Tensor& dst, const Tensor& src) { Shared::assign(dst, src); }
Tensor cuda::clamp(const Tensor& x, float lo, float hi) { return Shared::clamp(x, lo, hi); }
Tensor cuda::exp(const Tensor& x) { return Shared::exp(x); }

cuda::Stream cuda::new_stream() {
    cudaStream_t s = nullptr;
    HYVIDEO_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    return Stream{std::shared_ptr<void>(s, [](void* p) { cudaStreamDestroy(static_cast<cudaStream_t>(p)); })};
}
cuda::Stream cuda::use_stream(Stream stream) {
    Stream previous = std::move(cuda_detail::current);
    cuda_detail::current = std::move(stream);
    return previous;
}

// ---- the library and kernel primitives ---------------------------------------------------------------

namespace cuda_detail {

// One cuBLASLt handle and workspace per host thread, made on first use: threads on different streams
// must not share a workspace.
struct LtContext {
    cublasLtHandle_t handle = nullptr;
    Tensor workspace;
    LtContext() {
        HYVIDEO_CUBLAS_CHECK(cublasLtCreate(&handle));
        workspace = Shared::empty({static_cast<std::int64_t>(kLinearWorkspaceBytes)}, DType::u8);
    }
    ~LtContext() { cublasLtDestroy(handle); }  // at thread exit; an error then has no one to report to
    LtContext(const LtContext&) = delete;
    LtContext& operator=(const LtContext&) = delete;
};
inline LtContext& lt_context() {
    thread_local LtContext c;
    return c;
}

template <class T>
Tensor upload_vector(const std::vector<T>& v) {
    return v.empty() ? Tensor{} : Shared::upload(Tensor::from_vector({static_cast<std::int64_t>(v.size())}, v));
}

Tensor CudaSystem::linear(const Tensor& x_in, const Tensor& w_in, const Tensor& b) {
    Shared::require_f32(x_in, "linear x");
    Shared::require_here(w_in, "linear weight");
    HYVIDEO_CHECK(x_in.dim() >= 1 && w_in.dim() == 2 && w_in.size(1) == x_in.size(-1), "linear: x ",
                  shape_str(x_in.shape()), " and weight ", shape_str(w_in.shape()));
    const std::int64_t in = w_in.size(1), out = w_in.size(0);
    if (b.defined()) {
        Shared::require_f32(b, "linear bias");
        HYVIDEO_CHECK(b.dim() == 1 && b.size(0) == out && b.is_contiguous(), "linear: bias ", shape_str(b.shape()),
                      " for ", out, " outputs");
    }
    const Tensor x = Shared::contiguous(x_in), w = Shared::contiguous(w_in);
    Shape ys = x.shape();
    ys.back() = out;
    const std::int64_t rows = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
    Tensor y = Shared::empty(ys);
    if (y.numel() == 0) return y;
    const std::size_t scratch_bytes = linear_scratch_bytes(w.dtype(), rows, in, out);
    const Tensor scratch = scratch_bytes ? Shared::empty({static_cast<std::int64_t>(scratch_bytes)}, DType::u8) : Tensor{};
    LtContext& lt = lt_context();
    linear_cublaslt(lt.handle, current_stream(), static_cast<const float*>(x.raw_data()), rows, in, in, w.raw_data(),
                    w.dtype(), b.defined() ? static_cast<const float*>(b.raw_data()) : nullptr,
                    static_cast<float*>(y.raw_data()), out, scratch_bytes ? scratch.raw_data() : nullptr, scratch_bytes,
                    lt.workspace.raw_data(), kLinearWorkspaceBytes);
    HYVIDEO_CUDA_CHECK(cudaStreamSynchronize(current_stream()));  // the scratch is released when this returns
    return y;
}

Tensor CudaSystem::attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const AttentionMask& mask,
                             float scale, DType operands) {
    for (const Tensor* t : {&q_in, &k_in, &v_in}) Shared::require_f32(*t, "attention");
    HYVIDEO_CHECK(operands == DType::f32 || operands == DType::bf16, "attention: operands must be float32 or ",
                  "bfloat16, got ", dtype_name(operands));
    HYVIDEO_CHECK(q_in.dim() == 4 && k_in.dim() == 4 && v_in.shape() == k_in.shape() && k_in.size(0) == q_in.size(0) &&
                      k_in.size(1) == q_in.size(1) && k_in.size(3) == q_in.size(3) && k_in.size(2) > 0 &&
                      q_in.size(2) % k_in.size(2) == 0,
                  "attention: q ", shape_str(q_in.shape()), ", k ", shape_str(k_in.shape()), ", v ",
                  shape_str(v_in.shape()));
    // The kernel reads rows in place when they are unit-stride along D.
    const auto unit_d = [](const Tensor& t) { return t.size(3) <= 1 || t.stride(3) == 1 ? t : Shared::contiguous(t); };
    const Tensor q = unit_d(q_in), k = unit_d(k_in), v = unit_d(v_in);
    const std::int64_t Bn = q.size(0), S = q.size(1), H = q.size(2), D = q.size(3), Hkv = k.size(2);
    Tensor out = Shared::empty(q.shape());
    if (out.numel() == 0) return out;
    const MaskArrays arrays = mask_arrays(mask, Bn, S);
    const Tensor valid_len = upload_vector(arrays.valid_len), query_valid = upload_vector(arrays.query_valid),
                 key_filter = upload_vector(arrays.key_filter);
    const DeviceMask dm = device_mask(
        mask, S, valid_len.defined() ? static_cast<const std::int64_t*>(valid_len.raw_data()) : nullptr,
        query_valid.defined() ? static_cast<const std::uint8_t*>(query_valid.raw_data()) : nullptr,
        key_filter.defined() ? static_cast<const std::uint8_t*>(key_filter.raw_data()) : nullptr);
    const auto operand = [](const Tensor& t) {
        return AttentionOperand{static_cast<const float*>(t.raw_data()), t.stride(0), t.stride(1), t.stride(2)};
    };
    flash_attention_f32(current_stream(), operand(q), operand(k), operand(v), static_cast<float*>(out.raw_data()), Bn,
                        S, H, Hkv, D, scale, dm, operands == DType::bf16);
    HYVIDEO_CUDA_CHECK(cudaStreamSynchronize(current_stream()));  // the mask arrays are released when this returns
    return out;
}

Tensor CudaSystem::conv3d(const Tensor& x, const Tensor& w_in, const Tensor& b, const Conv3dSpec& spec,
                          const Conv3dFusion& fusion) {
    Shared::require_f32(x, "conv3d x");
    Shared::require_here(w_in, "conv3d weight");
    const Shape out_shape = spec.output_shape(x.shape(), w_in.shape());
    if (b.defined()) Shared::require_f32(b, "conv3d bias");
    HYVIDEO_CHECK(fusion.in_scale.defined() == fusion.in_shift.defined(), "conv3d: in_scale and in_shift come together");
    const Tensor w = Shared::contiguous(w_in);
    const Tensor bias = b.defined() ? Shared::contiguous(b) : Tensor{};
    const Tensor in_scale = fusion.in_scale.defined() ? Shared::contiguous(fusion.in_scale) : Tensor{};
    const Tensor in_shift = fusion.in_shift.defined() ? Shared::contiguous(fusion.in_shift) : Tensor{};
    const Tensor residual = fusion.residual.defined() ? Shared::contiguous(fusion.residual) : Tensor{};
    if (residual.defined())
        HYVIDEO_CHECK(residual.shape() == out_shape && residual.dtype() == DType::f32, "conv3d: residual ",
                      shape_str(residual.shape()), " for an output ", shape_str(out_shape));
    Tensor y = Shared::empty(out_shape);
    if (y.numel() == 0) return y;
    const auto arr = [](const Shape& s) { return std::array<std::int64_t, 5>{s[0], s[1], s[2], s[3], s[4]}; };
    const auto f32 = [](const Tensor& t) { return t.defined() ? static_cast<const float*>(t.raw_data()) : nullptr; };
    conv3d_direct(current_stream(), f32(x), arr(x.shape()), arr(x.strides()), w.raw_data(), w.dtype(), arr(w.shape()),
                  f32(bias), spec, f32(in_scale), f32(in_shift), fusion.in_silu, f32(residual),
                  static_cast<float*>(y.raw_data()));
    HYVIDEO_CUDA_CHECK(cudaStreamSynchronize(current_stream()));
    return y;
}

}  // namespace cuda_detail

}  // namespace hyvideo
