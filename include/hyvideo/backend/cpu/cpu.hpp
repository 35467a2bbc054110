#pragma once
// hyvideo::cpu, the CPU backend: f32 activations, GEMM through oneDNN (Eigen where oneDNN is absent),
// elementwise kernels parallelised with OpenMP.
#include <vector>

#include "hyvideo/backend/backend.hpp"
#include "hyvideo/backend/cpu/elementwise.hpp"
#include "hyvideo/backend/cpu/embedding.hpp"
#include "hyvideo/backend/cpu/linear.hpp"
#include "hyvideo/backend/cpu/modulate.hpp"
#include "hyvideo/backend/cpu/norm.hpp"
#include "hyvideo/backend/cpu/reduce.hpp"
#include "hyvideo/backend/cpu/attention.hpp"
#include "hyvideo/backend/cpu/rope.hpp"
#include "hyvideo/backend/cpu/timestep.hpp"
// VAE
#include "hyvideo/backend/cpu/blend.hpp"
#include "hyvideo/backend/cpu/conv3d.hpp"
#include "hyvideo/backend/cpu/group_norm.hpp"
#include "hyvideo/backend/cpu/resample.hpp"
#include "hyvideo/backend/cpu/unary.hpp"

namespace hyvideo {

struct cpu {
    static constexpr Device device = Device::cpu;

    static Tensor empty(const Shape& s, DType t = DType::f32) { return Tensor::empty(s, t); }
    static Tensor zeros(const Shape& s, DType dtype = DType::f32) { return Tensor::zeros(s, dtype); }
    static Tensor full(const Shape& s, float value) { return Tensor::full(s, value); }
    static Tensor upload(const Tensor& host) {
        HYVIDEO_CHECK(host.device() == Device::cpu, "cpu::upload: expected a host tensor");
        return host;
    }
    static Tensor download(const Tensor& t) { return t; }
    // A weight already in `dtype` stays where it is (a mapped file stays mapped: zero copy); any
    // other is converted once, when it is loaded.
    static Tensor weight(const Tensor& stored, DType dtype) {
        HYVIDEO_CHECK(is_floating(stored.dtype()), "weight of type ", dtype_name(stored.dtype()));
        return stored.dtype() == dtype ? stored.contiguous() : stored.to(dtype);
    }
    // Fresh pages cost more than the conversion itself: an 8B LLM's f32 layer is 872 MB, converted in
    // 0.04 s but faulted in for 0.37 s (bench_text_encoder). `reuse` must not be shared with anyone.
    static Tensor weight_into(const Tensor& stored, DType dtype, Tensor reuse) {
        HYVIDEO_CHECK(is_floating(stored.dtype()), "weight of type ", dtype_name(dtype));
        if (stored.dtype() == dtype || !reuse.defined() || reuse.dtype() != dtype || reuse.shape() != stored.shape() ||
            !reuse.is_contiguous())
            return weight(stored, dtype);
        const Tensor src = stored.contiguous();
        const auto n = static_cast<std::size_t>(src.numel());
        const std::size_t chunk = std::size_t{1} << 20;
        parallel_for_chunks(0, static_cast<std::int64_t>((n + chunk - 1) / chunk), 1, [&](std::int64_t c0, std::int64_t c1) {
            for (auto c = static_cast<std::size_t>(c0); c < static_cast<std::size_t>(c1); ++c) {
                const std::size_t begin = c * chunk, count = std::min(chunk, n - begin);
                convert_buffer(static_cast<const unsigned char*>(src.raw_data()) + begin * dtype_size(src.dtype()),
                               src.dtype(), static_cast<unsigned char*>(reuse.raw_data()) + begin * dtype_size(dtype),
                               dtype, count);
            }
        });
        return reuse;
    }
    static Tensor contiguous(const Tensor& t) { return t.contiguous(); }
    static Tensor cast(const Tensor& t, DType d) { return t.dtype() == d ? t : t.to(d); }
    static Tensor to_float(const Tensor& t) { return t.dtype() == DType::f32 ? t : t.to(DType::f32); }
    static Tensor cat(const std::vector<Tensor>& parts, std::int64_t dim) { return cpu_detail::cat(parts, dim); }

    static Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) { return cpu_detail::linear(x, w, b); }

    static Tensor silu(const Tensor& x) { return cpu_detail::silu(x); }
    static Tensor gelu_tanh(const Tensor& x) { return cpu_detail::gelu_tanh(x); }
    static Tensor gelu(const Tensor& x) { return cpu_detail::gelu_erf(x); }
    static Tensor quick_gelu(const Tensor& x) { return cpu_detail::quick_gelu(x); }
    static Tensor add(const Tensor& a, const Tensor& b) { return cpu_detail::add(a, b); }
    static Tensor sub(const Tensor& a, const Tensor& b) { return cpu_detail::sub(a, b); }
    static Tensor mul(const Tensor& a, const Tensor& b) { return cpu_detail::mul(a, b); }
    static Tensor scale(const Tensor& a, float s) { return cpu_detail::scale(a, s); }
    static Tensor affine(const Tensor& x, float a, float b) { return cpu_detail::affine(x, a, b); }

    static Tensor layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps) {
        return cpu_detail::layer_norm(x, w, b, eps);
    }
    static Tensor rms_norm(const Tensor& x, const Tensor& w, float eps) { return cpu_detail::rms_norm(x, w, eps); }
    static Tensor modulate(const Tensor& x, const Tensor& shift, const Tensor& scale) {
        return cpu_detail::modulate(x, shift, scale);
    }
    static Tensor gated_add(const Tensor& x, const Tensor& y, const Tensor& gate) {
        return cpu_detail::gated_add(x, y, gate);
    }
    static Tensor apply_rope(const Tensor& x, const Tensor& cos, const Tensor& sin,
                             RopeLayout layout = RopeLayout::interleaved) {
        return cpu_detail::apply_rope(x, cos, sin, layout);
    }
    static Tensor embedding(const Tensor& table, const Tensor& ids) { return cpu_detail::embedding(table, ids); }
    static Tensor masked_mean(const Tensor& x, const Tensor& w) { return cpu_detail::masked_mean(x, w); }
    static std::vector<double> sample_std(const Tensor& x) { return cpu_detail::sample_std(x); }
    static double mean_abs(const Tensor& x) { return cpu_detail::mean_abs(x); }
    static Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionMask& mask, float scale,
                            DType operands = DType::f32) {
        return cpu_detail::attention(q, k, v, mask, scale, operands);
    }
    static Tensor timestep_embedding(const Tensor& t, std::int64_t dim, float max_period) {
        return cpu_detail::timestep_embedding(t, dim, max_period);
    }

    // VAE
    static Tensor conv3d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv3dSpec& spec,
                         const Conv3dFusion& fusion = {}) {
        return cpu_detail::conv3d(x, w, b, spec, fusion);
    }
    static Tensor group_norm(const Tensor& x, const Tensor& w, const Tensor& b, std::int64_t groups, float eps) {
        return cpu_detail::group_norm(x, w, b, groups, eps, false);
    }
    static Tensor group_norm_silu(const Tensor& x, const Tensor& w, const Tensor& b, std::int64_t groups, float eps) {
        return cpu_detail::group_norm(x, w, b, groups, eps, true);
    }
    static Tensor group_norm_affine(const Tensor& x, const Tensor& w, const Tensor& b, std::int64_t groups, float eps) {
        return cpu_detail::group_norm_affine(x, w, b, groups, eps);
    }
    static Tensor upsample_nearest(const Tensor& x, std::array<std::int64_t, 3> factor, bool causal) {
        return cpu_detail::upsample_nearest(x, factor, causal);
    }
    static Tensor blend(const Tensor& a, const Tensor& b, std::int64_t dim) { return cpu_detail::blend(a, b, dim); }
    static void assign(const Tensor& dst, const Tensor& src) { cpu_detail::assign(dst, src); }
    static Tensor clamp(const Tensor& x, float lo, float hi) { return cpu_detail::clamp(x, lo, hi); }
    static Tensor exp(const Tensor& x) { return cpu_detail::exp(x); }

    // Work runs on the calling thread (its loops on that thread's OpenMP team), so a stream is only a
    // name: two threads overlap by being two threads.
    struct Stream {};
    static Stream new_stream() { return {}; }
    static Stream use_stream(Stream) { return {}; }
};

static_assert(Backend<cpu>);

}  // namespace hyvideo
