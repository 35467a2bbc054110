#pragma once
// thrust_backend<System>: every primitive of the Backend concept that is data movement, elementwise
// arithmetic, a normalisation or a reduction, written once against Thrust. The same source compiles
// with the host compiler for Thrust's OpenMP system (hyvideo::thrust_omp, tested everywhere) and with
// nvcc for CUDA, so the CUDA backend's non-library code is checked on machines without a GPU.
//
// System supplies what Thrust does not: the device kind, memory (allocate, copies to and from the
// host), the execution policy, and the three primitives that belong to a library or a tuned kernel
// (linear, attention, conv3d). Operands follow backend.hpp's contracts: strided views are read in
// place through StridedIndex, results are contiguous. Reductions sum in double, one thread per row.
#include <array>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include <thrust/for_each.h>
#include <thrust/functional.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/transform_reduce.h>

#include "hyvideo/backend/backend.hpp"
#include "hyvideo/backend/shape_rules.hpp"
#include "hyvideo/backend/thrust/element.hpp"
#include "hyvideo/backend/thrust/strided_index.hpp"

namespace hyvideo {

namespace thrust_detail {

// One IEEE rounding per operation: nvcc would otherwise contract a·b + c into a fused multiply-add,
// and the contracts (affine, gated_add) promise the product rounded on its own.
HYVIDEO_HD inline float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}

HYVIDEO_HD inline float sigmoid_times(float x, float k) { return x / (1.0f + std::exp(-k * x)); }

enum class Unary : std::uint8_t { silu, gelu_tanh, gelu, quick_gelu, exp };

HYVIDEO_HD inline float apply_unary(Unary op, float x) {
    switch (op) {
        case Unary::silu: return sigmoid_times(x, 1.0f);
        case Unary::gelu_tanh: {
            const float inner = 0.7978845608028654f * (x + 0.044715f * x * x * x);
            return 0.5f * x * (1.0f + std::tanh(inner));
        }
        case Unary::gelu: return 0.5f * x * (1.0f + std::erf(x * 0.7071067811865476f));
        case Unary::quick_gelu: return sigmoid_times(x, 1.702f);
        case Unary::exp: return std::exp(x);
    }
    return x;
}

enum class Binary : std::uint8_t { add, sub, mul };

inline const float* f32_data(const Tensor& t) { return static_cast<const float*>(t.raw_data()); }
inline float* f32_data_mut(const Tensor& t) { return static_cast<float*>(t.raw_data()); }

}  // namespace thrust_detail

template <class System>
struct thrust_backend {
    static constexpr Device device = System::device;

    // ---- launching --------------------------------------------------------------------------------
    template <class F>
    static void for_n(std::int64_t n, F f) {
        if (n > 0) thrust::for_each_n(System::policy(), thrust::counting_iterator<std::int64_t>(0), n, f);
    }
    template <class F>
    static double sum_n(std::int64_t n, F f) {
        if (n <= 0) return 0.0;
        return thrust::transform_reduce(System::policy(), thrust::counting_iterator<std::int64_t>(0),
                                        thrust::counting_iterator<std::int64_t>(n), f, 0.0, thrust::plus<double>());
    }

    static void require_here(const Tensor& t, const char* what) {
        HYVIDEO_CHECK(t.defined(), what, ": undefined tensor");
        HYVIDEO_CHECK(t.device() == device, what, ": a ", device_name(t.device()), " tensor on the ", device_name(device),
                      " backend (upload it first)");
    }
    static void require_f32(const Tensor& t, const char* what) {
        require_here(t, what);
        HYVIDEO_CHECK(t.dtype() == DType::f32, what, ": expected f32, got ", dtype_name(t.dtype()));
    }

    // ---- memory -----------------------------------------------------------------------------------
    static Tensor empty(const Shape& s, DType dtype = DType::f32) {
        for (auto d : s) HYVIDEO_CHECK(d >= 0, "negative dimension in shape ", shape_str(s));
        const auto nbytes = static_cast<std::size_t>(shape_numel(s)) * dtype_size(dtype);
        auto mem = System::allocate(nbytes);
        const void* p = mem.get();
        return Tensor::wrap(std::move(mem), p, s, dtype, device, System::index());
    }
    static Tensor zeros(const Shape& s, DType dtype = DType::f32) {
        Tensor t = empty(s, dtype);
        auto* bytes = static_cast<unsigned char*>(t.raw_data());
        for_n(static_cast<std::int64_t>(t.nbytes()), [=] HYVIDEO_HD_LAMBDA(std::int64_t i) { bytes[i] = 0; });
        return t;
    }
    static Tensor full(const Shape& s, float value) {
        Tensor t = empty(s, DType::f32);
        float* o = thrust_detail::f32_data_mut(t);
        for_n(t.numel(), [=] HYVIDEO_HD_LAMBDA(std::int64_t i) { o[i] = value; });
        return t;
    }
    static Tensor upload(const Tensor& host) {
        HYVIDEO_CHECK(host.defined() && host.device() == Device::cpu, "upload: expected a host tensor, got one on ",
                      device_name(host.device()));
        const Tensor src = host.contiguous();
        Tensor out = empty(src.shape(), src.dtype());
        if (out.nbytes() > 0) System::copy_to_device(out.raw_data(), src.raw_data(), out.nbytes());
        return out;
    }
    static Tensor download(const Tensor& t) {
        require_here(t, "download");
        const Tensor src = contiguous(t);
        Tensor out = Tensor::empty(src.shape(), src.dtype());
        if (out.nbytes() > 0) System::copy_to_host(out.raw_data(), src.raw_data(), out.nbytes());
        return out;
    }
    static Tensor weight(const Tensor& stored, DType dtype) {
        HYVIDEO_CHECK(is_floating(stored.dtype()), "weight of type ", dtype_name(stored.dtype()));
        const Tensor raw = stored.device() == Device::cpu ? upload(stored) : contiguous(stored);
        return cast(raw, dtype);
    }
    static Tensor weight_into(const Tensor& stored, DType dtype, Tensor reuse) {
        HYVIDEO_CHECK(is_floating(stored.dtype()), "weight of type ", dtype_name(stored.dtype()));
        if (stored.dtype() == dtype || !reuse.defined() || reuse.device() != device || reuse.dtype() != dtype ||
            reuse.shape() != stored.shape() || !reuse.is_contiguous())
            return weight(stored, dtype);
        const Tensor raw = stored.device() == Device::cpu ? upload(stored) : stored;
        convert_into(raw, reuse);
        return reuse;
    }
    static Tensor contiguous(const Tensor& t) {
        require_here(t, "contiguous");
        if (t.is_contiguous()) return t;
        Tensor out = empty(t.shape(), t.dtype());
        copy_elements(t, out);
        return out;
    }
    static Tensor to_float(const Tensor& t) {
        require_here(t, "to_float");
        return t.dtype() == DType::f32 ? t : cast(t, DType::f32);
    }
    static Tensor cast(const Tensor& t, DType dtype) {
        require_here(t, "cast");
        if (t.dtype() == dtype) return t;
        HYVIDEO_CHECK(thrust_detail::storable_as_float(dtype), "cast to ", dtype_name(dtype),
                      ": the thrust backend converts to f32, bf16 and f16");
        Tensor out = empty(t.shape(), dtype);
        convert_into(t, out);
        return out;
    }
    static Tensor cat(const std::vector<Tensor>& parts, std::int64_t dim) {
        for (const Tensor& p : parts) require_here(p, "cat");
        const Shape shape = cat_shape(parts, dim);
        const Tensor& first = parts.front();
        Tensor out = empty(shape, first.dtype());
        std::int64_t at = 0;
        for (const Tensor& p : parts) {
            copy_elements(p, out.slice(dim, at, at + p.size(dim)));
            at += p.size(dim);
        }
        return out;
    }

    // ---- streams: the System's ---------------------------------------------------------------------
    using Stream = typename System::Stream;
    static Stream new_stream() { return System::new_stream(); }
    static Stream use_stream(Stream s) { return System::use_stream(std::move(s)); }

    // ---- linear algebra: the System's library ------------------------------------------------------
    static Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) { return System::linear(x, w, b); }

    // ---- elementwise ------------------------------------------------------------------------------
    static Tensor silu(const Tensor& x) { return unary(x, thrust_detail::Unary::silu, "silu"); }
    static Tensor gelu_tanh(const Tensor& x) { return unary(x, thrust_detail::Unary::gelu_tanh, "gelu_tanh"); }
    static Tensor gelu(const Tensor& x) { return unary(x, thrust_detail::Unary::gelu, "gelu"); }
    static Tensor quick_gelu(const Tensor& x) { return unary(x, thrust_detail::Unary::quick_gelu, "quick_gelu"); }
    static Tensor exp(const Tensor& x) { return unary(x, thrust_detail::Unary::exp, "exp"); }
    static Tensor add(const Tensor& a, const Tensor& b) { return binary(a, b, thrust_detail::Binary::add, "add"); }
    static Tensor sub(const Tensor& a, const Tensor& b) { return binary(a, b, thrust_detail::Binary::sub, "sub"); }
    static Tensor mul(const Tensor& a, const Tensor& b) { return binary(a, b, thrust_detail::Binary::mul, "mul"); }
    static Tensor scale(const Tensor& x, float s) { return affine_impl(x, s, 0.0f, false, "scale"); }
    static Tensor affine(const Tensor& x, float a, float b) { return affine_impl(x, a, b, true, "affine"); }
    static Tensor clamp(const Tensor& x, float lo, float hi) {
        require_f32(x, "clamp");
        HYVIDEO_CHECK(lo <= hi, "clamp: lo ", lo, " > hi ", hi);
        Tensor out = empty(x.shape());
        const auto ix = thrust_detail::strided_index(x);
        const float* px = thrust_detail::f32_data(x);
        float* o = thrust_detail::f32_data_mut(out);
        for_n(out.numel(), [=] HYVIDEO_HD_LAMBDA(std::int64_t i) {
            const float v = px[ix.offset(i)];
            o[i] = v < lo ? lo : (v > hi ? hi : v);  // a NaN fails both tests and is kept
        });
        return out;
    }

    // ---- normalisation and modulation -------------------------------------------------------------
    static Tensor layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps) {
        return row_norm(x, w, b, eps, false, "layer_norm");
    }
    static Tensor rms_norm(const Tensor& x, const Tensor& w, float eps) {
        return row_norm(x, w, Tensor{}, eps, true, "rms_norm");
    }
    static Tensor modulate(const Tensor& x, const Tensor& shift, const Tensor& scale) {
        return modulated(x, shift, scale, "modulate");
    }
    static Tensor gated_add(const Tensor& x, const Tensor& y, const Tensor& gate) {
        require_f32(y, "gated_add y");
        HYVIDEO_CHECK(y.shape() == x.shape(), "gated_add: y ", shape_str(y.shape()), " for x ", shape_str(x.shape()));
        return modulated(x, y, gate, "gated_add");
    }

    // ---- reductions -------------------------------------------------------------------------------
    static Tensor masked_mean(const Tensor& x, const Tensor& w_in) {
        require_f32(x, "masked_mean x");
        const Tensor w = w_in.device() == Device::cpu ? upload(w_in) : w_in;  // a host mask is small
        require_here(w, "masked_mean weights");
        HYVIDEO_CHECK(x.dim() == 3 && w.dim() == 2 && w.size(0) == x.size(0) && w.size(1) == x.size(1),
                      "masked_mean: x ", shape_str(x.shape()), " and weights ", shape_str(w.shape()));
        const std::int64_t N = x.size(0), L = x.size(1), C = x.size(2);
        Tensor out = empty({N, C});
        const auto ix = thrust_detail::strided_index(x);
        const auto iw = thrust_detail::strided_index(w);
        const float* px = thrust_detail::f32_data(x);
        const void* pw = w.raw_data();
        const DType wt = w.dtype();
        float* o = thrust_detail::f32_data_mut(out);
        for_n(N * C, [=] HYVIDEO_HD_LAMBDA(std::int64_t r) {
            const std::int64_t n = r / C, c = r % C;
            double num = 0.0, den = 0.0;
            for (std::int64_t l = 0; l < L; ++l) {
                const double wl = thrust_detail::load_as_float(pw, wt, iw.offset(n * L + l));
                num += wl * px[ix.offset((n * L + l) * C + c)];
                den += wl;
            }
            o[r] = static_cast<float>(num / den);
        });
        return out;
    }
    static std::vector<double> sample_std(const Tensor& x_in) {
        require_f32(x_in, "sample_std");
        HYVIDEO_CHECK(x_in.dim() >= 1 && x_in.size(0) > 0 && x_in.numel() / x_in.size(0) > 1,
                      "sample_std: needs more than one element per sample, got ", shape_str(x_in.shape()));
        const Tensor x = contiguous(x_in);
        const std::int64_t N = x.size(0), per = x.numel() / N;
        std::vector<double> out(static_cast<std::size_t>(N));
        for (std::int64_t n = 0; n < N; ++n) {
            const float* p = thrust_detail::f32_data(x) + n * per;
            const double mean = sum_n(per, [=] HYVIDEO_HD_LAMBDA(std::int64_t i) { return double(p[i]); }) / per;
            const double ss = sum_n(per, [=] HYVIDEO_HD_LAMBDA(std::int64_t i) {
                const double d = p[i] - mean;
                return d * d;
            });
            out[static_cast<std::size_t>(n)] = std::sqrt(ss / static_cast<double>(per - 1));
        }
        return out;
    }
    static double mean_abs(const Tensor& x) {
        require_f32(x, "mean_abs");
        HYVIDEO_CHECK(x.numel() > 0, "mean_abs: an empty tensor");
        const auto ix = thrust_detail::strided_index(x);
        const float* px = thrust_detail::f32_data(x);
        const double s = sum_n(x.numel(), [=] HYVIDEO_HD_LAMBDA(std::int64_t i) {
            const double v = px[ix.offset(i)];
            return v < 0 ? -v : v;
        });
        return s / static_cast<double>(x.numel());
    }
    static Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionMask& mask, float scale,
                            DType operands = DType::f32) {
        return System::attention(q, k, v, mask, scale, operands);
    }

    // ---- positional and time embeddings ----------------------------------------------------------
    static Tensor apply_rope(const Tensor& x, const Tensor& cos_in, const Tensor& sin_in,
                             RopeLayout layout = RopeLayout::interleaved) {
        require_f32(x, "apply_rope x");
        require_f32(cos_in, "apply_rope cos");
        require_f32(sin_in, "apply_rope sin");
        HYVIDEO_CHECK(x.dim() == 4 && x.size(3) % 2 == 0, "apply_rope: x must be [B, S, H, D] with D even, got ",
                      shape_str(x.shape()));
        const std::int64_t Bn = x.size(0), S = x.size(1), H = x.size(2), D = x.size(3);
        const bool per_sample = cos_in.dim() == 3;
        const Shape table = per_sample ? Shape{Bn, S, D} : Shape{S, D};
        HYVIDEO_CHECK(cos_in.shape() == table && sin_in.shape() == table, "apply_rope: tables ",
                      shape_str(cos_in.shape()), "/", shape_str(sin_in.shape()), " do not match ", shape_str(table),
                      " for x ", shape_str(x.shape()));
        const Tensor c = contiguous(cos_in), s = contiguous(sin_in);
        Tensor out = empty(x.shape());
        const auto ix = thrust_detail::strided_index(x);
        const float* px = thrust_detail::f32_data(x);
        const float* pc = thrust_detail::f32_data(c);
        const float* ps = thrust_detail::f32_data(s);
        float* o = thrust_detail::f32_data_mut(out);
        const bool interleaved = layout == RopeLayout::interleaved;
        const std::int64_t half = D / 2;
        for_n(out.numel(), [=] HYVIDEO_HD_LAMBDA(std::int64_t i) {
            const std::int64_t j = i % D, bs = i / (H * D), row = (per_sample ? bs : bs % S) * D;
            // the partner of j in its pair, and the sign of its term
            const bool first = interleaved ? j % 2 == 0 : j < half;
            const std::int64_t partner = interleaved ? (first ? j + 1 : j - 1) : (first ? j + half : j - half);
            const float xj = px[ix.offset(i)], xp = px[ix.offset(i - j + partner)];
            const float a = thrust_detail::mul_rn(xj, pc[row + j]), p = thrust_detail::mul_rn(xp, ps[row + j]);
            o[i] = first ? a - p : a + p;
        });
        return out;
    }
    static Tensor embedding(const Tensor& table_in, const Tensor& ids_host) {
        HYVIDEO_CHECK(ids_host.defined() && ids_host.device() == Device::cpu && ids_host.dtype() == DType::i64,
                      "embedding: ids must be an int64 host tensor");
        const Tensor table = table_in.device() == Device::cpu ? upload(table_in) : contiguous(table_in);
        HYVIDEO_CHECK(table.dim() == 2 && is_floating(table.dtype()), "embedding: table must be a float [V, D], got ",
                      shape_str(table.shape()));
        const std::int64_t V = table.size(0), D = table.size(1);
        for (const auto id : ids_host.contiguous().span<const std::int64_t>())
            HYVIDEO_CHECK(id < V, "embedding: id ", id, " out of range for a table of ", V, " rows");
        const Tensor ids = upload(ids_host);
        Shape shape = ids.shape();
        shape.push_back(D);
        Tensor out = empty(shape);
        const std::int64_t* pi = static_cast<const std::int64_t*>(ids.raw_data());
        const void* pt = table.raw_data();
        const DType tt = table.dtype();
        float* o = thrust_detail::f32_data_mut(out);
        for_n(out.numel(), [=] HYVIDEO_HD_LAMBDA(std::int64_t i) {
            const std::int64_t id = pi[i / D];
            o[i] = id < 0 ? 0.0f : thrust_detail::load_as_float(pt, tt, id * D + i % D);
        });
        return out;
    }
    static Tensor timestep_embedding(const Tensor& t, std::int64_t dim, float max_period) {
        require_f32(t, "timestep_embedding");
        HYVIDEO_CHECK(t.dim() == 1, "timestep_embedding: t must be [N], got ", shape_str(t.shape()));
        HYVIDEO_CHECK(dim > 0, "timestep_embedding: dim must be positive");
        const std::int64_t N = t.size(0), half = dim / 2;
        Tensor out = zeros({N, dim});  // an odd dim keeps a zero last column
        const float neg_log = -static_cast<float>(std::log(static_cast<double>(max_period)));
        const auto it = thrust_detail::strided_index(t);
        const float* pt = thrust_detail::f32_data(t);
        float* o = thrust_detail::f32_data_mut(out);
        for_n(N * half, [=] HYVIDEO_HD_LAMBDA(std::int64_t r) {
            const std::int64_t n = r / half, i = r % half;
            const float freq = std::exp(neg_log * static_cast<float>(i) / static_cast<float>(half));
            const float arg = thrust_detail::mul_rn(pt[it.offset(n)], freq);
            o[n * dim + i] = std::cos(arg);
            o[n * dim + half + i] = std::sin(arg);
        });
        return out;
    }

    // ---- VAE --------------------------------------------------------------------------------------
    static Tensor conv3d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv3dSpec& spec,
                         const Conv3dFusion& fusion = {}) {
        return System::conv3d(x, w, b, spec, fusion);
    }
    static Tensor group_norm(const Tensor& x, const Tensor& w, const Tensor& b, std::int64_t groups, float eps) {
        return group_normed(x, w, b, groups, eps, false);
    }
    static Tensor group_norm_silu(const Tensor& x, const Tensor& w, const Tensor& b, std::int64_t groups, float eps) {
        return group_normed(x, w, b, groups, eps, true);
    }
    // [2, N, C]: the per-channel scale = w/√(var + eps) and shift = b − mean·scale
    static Tensor group_norm_affine(const Tensor& x, const Tensor& w, const Tensor& b, std::int64_t groups, float eps) {
        const Tensor stats = group_stats(x, w, b, groups, eps, "group_norm_affine");
        const std::int64_t N = x.size(0), C = x.size(1), G = groups, cpg = C / G;
        Tensor out = empty({2, N, C});
        const float* ps = thrust_detail::f32_data(stats);
        const float* pw = w.defined() ? thrust_detail::f32_data(w) : nullptr;
        const float* pb = b.defined() ? thrust_detail::f32_data(b) : nullptr;
        float* o = thrust_detail::f32_data_mut(out);
        for_n(N * C, [=] HYVIDEO_HD_LAMBDA(std::int64_t r) {
            const std::int64_t n = r / C, c = r % C, g = n * G + c / cpg;
            const double mean = ps[2 * g], rstd = ps[2 * g + 1];
            const double sc = (pw ? pw[c] : 1.0) * rstd;
            o[r] = static_cast<float>(sc);
            o[N * C + r] = static_cast<float>((pb ? pb[c] : 0.0) - mean * sc);
        });
        return out;
    }
    static Tensor upsample_nearest(const Tensor& x, std::array<std::int64_t, 3> factor, bool causal) {
        require_f32(x, "upsample_nearest");
        HYVIDEO_CHECK(x.dim() == 5, "upsample_nearest: x must be [N, C, T, H, W], got ", shape_str(x.shape()));
        const std::int64_t ft = factor[0], fh = factor[1], fw = factor[2];
        HYVIDEO_CHECK(ft >= 1 && fh >= 1 && fw >= 1, "upsample_nearest: factors must be positive");
        const std::int64_t N = x.size(0), C = x.size(1), T = x.size(2), H = x.size(3), W = x.size(4);
        const std::int64_t To = causal ? (T == 0 ? 0 : 1 + ft * (T - 1)) : ft * T, Ho = fh * H, Wo = fw * W;
        Tensor out = empty({N, C, To, Ho, Wo});
        const auto ix = thrust_detail::strided_index(x);
        const float* px = thrust_detail::f32_data(x);
        float* o = thrust_detail::f32_data_mut(out);
        for_n(out.numel(), [=] HYVIDEO_HD_LAMBDA(std::int64_t i) {
            const std::int64_t wo = i % Wo, ho = (i / Wo) % Ho, to = (i / (Wo * Ho)) % To, nc = i / (Wo * Ho * To);
            const std::int64_t ts = causal ? (to == 0 ? 0 : 1 + (to - 1) / ft) : to / ft;
            o[i] = px[ix.offset(((nc * T + ts) * H + ho / fh) * W + wo / fw)];
        });
        return out;
    }
    static Tensor blend(const Tensor& a, const Tensor& b, std::int64_t dim) {
        require_f32(a, "blend");
        require_f32(b, "blend");
        HYVIDEO_CHECK(a.shape() == b.shape(), "blend: shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()),
                      " differ");
        if (dim < 0) dim += a.dim();
        HYVIDEO_CHECK(0 <= dim && dim < a.dim(), "blend: dim out of range for ", shape_str(a.shape()));
        Tensor out = empty(a.shape());
        const std::int64_t n = a.size(dim);
        std::int64_t inner = 1;
        for (std::int64_t d = dim + 1; d < a.dim(); ++d) inner *= a.size(d);
        const auto ia = thrust_detail::strided_index(a), ib = thrust_detail::strided_index(b);
        const float* pa = thrust_detail::f32_data(a);
        const float* pb = thrust_detail::f32_data(b);
        float* o = thrust_detail::f32_data_mut(out);
        for_n(out.numel(), [=] HYVIDEO_HD_LAMBDA(std::int64_t i) {
            const double t = static_cast<double>((i / inner) % n) / static_cast<double>(n);
            const float wa = static_cast<float>(1.0 - t), wb = static_cast<float>(t);
            o[i] = thrust_detail::mul_rn(pa[ia.offset(i)], wa) + thrust_detail::mul_rn(pb[ib.offset(i)], wb);
        });
        return out;
    }
    static void assign(const Tensor& dst, const Tensor& src) {
        require_f32(dst, "assign");
        require_f32(src, "assign");
        HYVIDEO_CHECK(dst.shape() == src.shape(), "assign: ", shape_str(src.shape()), " into ", shape_str(dst.shape()));
        copy_elements(src, dst);
    }

    // ---- shared kernels ---------------------------------------------------------------------------
    // src into dst (one shape and dtype), each read and written through its own strides.
    static void copy_elements(const Tensor& src, const Tensor& dst) {
        HYVIDEO_CHECK(src.shape() == dst.shape() && src.dtype() == dst.dtype(), "copy: ", shape_str(src.shape()), " ",
                      dtype_name(src.dtype()), " into ", shape_str(dst.shape()), " ", dtype_name(dst.dtype()));
        switch (dtype_size(src.dtype())) {
            case 1: copy_typed<std::uint8_t>(src, dst); break;
            case 2: copy_typed<std::uint16_t>(src, dst); break;
            case 4: copy_typed<std::uint32_t>(src, dst); break;
            default: copy_typed<std::uint64_t>(src, dst); break;
        }
    }
    template <class T>
    static void copy_typed(const Tensor& src, const Tensor& dst) {
        const auto is = thrust_detail::strided_index(src), id = thrust_detail::strided_index(dst);
        const T* ps = static_cast<const T*>(src.raw_data());
        T* pd = static_cast<T*>(dst.raw_data());
        for_n(src.numel(), [=] HYVIDEO_HD_LAMBDA(std::int64_t i) { pd[id.offset(i)] = ps[is.offset(i)]; });
    }
    // src (any dtype, any strides) converted into the contiguous dst of a float dtype.
    static void convert_into(const Tensor& src, const Tensor& dst) {
        HYVIDEO_CHECK(src.shape() == dst.shape() && dst.is_contiguous() && thrust_detail::storable_as_float(dst.dtype()),
                      "convert: ", shape_str(src.shape()), " into ", shape_str(dst.shape()), " ", dtype_name(dst.dtype()));
        const auto is = thrust_detail::strided_index(src);
        const void* ps = src.raw_data();
        void* pd = dst.raw_data();
        const DType st = src.dtype(), dt = dst.dtype();
        for_n(src.numel(), [=] HYVIDEO_HD_LAMBDA(std::int64_t i) {
            thrust_detail::store_float(pd, dt, i, thrust_detail::load_as_float(ps, st, is.offset(i)));
        });
    }

    static Tensor unary(const Tensor& x, thrust_detail::Unary op, const char* what) {
        require_f32(x, what);
        Tensor out = empty(x.shape());
        const auto ix = thrust_detail::strided_index(x);
        const float* px = thrust_detail::f32_data(x);
        float* o = thrust_detail::f32_data_mut(out);
        for_n(out.numel(), [=] HYVIDEO_HD_LAMBDA(std::int64_t i) { o[i] = thrust_detail::apply_unary(op, px[ix.offset(i)]); });
        return out;
    }
    static Tensor binary(const Tensor& a, const Tensor& b, thrust_detail::Binary op, const char* what) {
        require_f32(a, what);
        require_f32(b, what);
        const Shape shape = broadcast_shape(a.shape(), b.shape());
        Tensor out = empty(shape);
        const auto ia = thrust_detail::broadcast_index(a, shape), ib = thrust_detail::broadcast_index(b, shape);
        const float* pa = thrust_detail::f32_data(a);
        const float* pb = thrust_detail::f32_data(b);
        float* o = thrust_detail::f32_data_mut(out);
        for_n(out.numel(), [=] HYVIDEO_HD_LAMBDA(std::int64_t i) {
            const float u = pa[ia.offset(i)], v = pb[ib.offset(i)];
            o[i] = op == thrust_detail::Binary::add ? u + v
                   : op == thrust_detail::Binary::sub ? u - v
                                                      : thrust_detail::mul_rn(u, v);
        });
        return out;
    }
    static Tensor affine_impl(const Tensor& x, float a, float b, bool add_b, const char* what) {
        require_f32(x, what);
        Tensor out = empty(x.shape());
        const auto ix = thrust_detail::strided_index(x);
        const float* px = thrust_detail::f32_data(x);
        float* o = thrust_detail::f32_data_mut(out);
        for_n(out.numel(), [=] HYVIDEO_HD_LAMBDA(std::int64_t i) {
            const float p = thrust_detail::mul_rn(px[ix.offset(i)], a);
            o[i] = add_b ? p + b : p;
        });
        return out;
    }
    // LayerNorm (mean and variance) or RMSNorm (mean square) over the last dim, statistics in double.
    static Tensor row_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps, bool rms, const char* what) {
        require_f32(x, what);
        HYVIDEO_CHECK(x.dim() >= 1, what, ": a 0-d tensor");
        const std::int64_t C = x.size(-1), rows = C == 0 ? 0 : x.numel() / C;
        if (w.defined()) require_f32(w, what);
        if (b.defined()) require_f32(b, what);
        HYVIDEO_CHECK(!w.defined() || (w.dim() == 1 && w.size(0) == C), what, ": weight ", shape_str(w.shape()),
                      " for ", C, " channels");
        HYVIDEO_CHECK(!b.defined() || (b.dim() == 1 && b.size(0) == C), what, ": bias ", shape_str(b.shape()), " for ",
                      C, " channels");
        HYVIDEO_CHECK(rms || w.defined() == b.defined(), what, ": weight and bias come together");
        Tensor out = empty(x.shape());
        const Tensor wc = w.defined() ? contiguous(w) : Tensor{}, bc = b.defined() ? contiguous(b) : Tensor{};
        const auto ix = thrust_detail::strided_index(x);
        const float* px = thrust_detail::f32_data(x);
        const float* pw = wc.defined() ? thrust_detail::f32_data(wc) : nullptr;
        const float* pb = bc.defined() ? thrust_detail::f32_data(bc) : nullptr;
        float* o = thrust_detail::f32_data_mut(out);
        for_n(rows, [=] HYVIDEO_HD_LAMBDA(std::int64_t r) {
            double mean = 0.0, var = 0.0;
            if (!rms) {
                for (std::int64_t c = 0; c < C; ++c) mean += px[ix.offset(r * C + c)];
                mean /= static_cast<double>(C);
            }
            for (std::int64_t c = 0; c < C; ++c) {
                const double d = px[ix.offset(r * C + c)] - mean;
                var += d * d;
            }
            const double rstd = 1.0 / std::sqrt(var / static_cast<double>(C) + eps);
            for (std::int64_t c = 0; c < C; ++c) {
                double y = (px[ix.offset(r * C + c)] - mean) * rstd;
                if (pw) y *= pw[c];
                if (pb) y += pb[c];
                o[r * C + c] = static_cast<float>(y);
            }
        });
        return out;
    }
    // x [B, L, C] with two [B, C] vectors broadcast over the tokens: modulate (x·(1 + scale) + shift,
    // u = shift, v = scale) or gated_add (x + gate·y, u = y [B, L, C], v = gate).
    static Tensor modulated(const Tensor& x, const Tensor& u, const Tensor& v, const char* what) {
        require_f32(x, what);
        require_f32(u, what);
        require_f32(v, what);
        const bool gated = u.dim() == 3;
        HYVIDEO_CHECK(x.dim() == 3, what, ": x must be [B, L, C], got ", shape_str(x.shape()));
        const std::int64_t Bn = x.size(0), L = x.size(1), C = x.size(2);
        for (const Tensor* t : {&u, &v}) {
            if (gated && t == &u) continue;
            HYVIDEO_CHECK(t->dim() == 2 && t->size(0) == Bn && t->size(1) == C && (C <= 1 || t->stride(1) == 1), what,
                          ": a [B, C] vector with unit stride along C, got ", shape_str(t->shape()), " for x ",
                          shape_str(x.shape()));
        }
        Tensor out = empty(x.shape());
        const auto ix = thrust_detail::strided_index(x), iu = thrust_detail::strided_index(u);
        const std::int64_t vrow = v.stride(0);
        const float* px = thrust_detail::f32_data(x);
        const float* pu = thrust_detail::f32_data(u);
        const float* pv = thrust_detail::f32_data(v);
        float* o = thrust_detail::f32_data_mut(out);
        for_n(out.numel(), [=] HYVIDEO_HD_LAMBDA(std::int64_t i) {
            const std::int64_t c = i % C, bi = i / (L * C);
            const float xv = px[ix.offset(i)], vv = pv[bi * vrow + c];
            if (gated) {
                o[i] = xv + thrust_detail::mul_rn(vv, pu[iu.offset(i)]);
            } else {
                o[i] = thrust_detail::mul_rn(xv, 1.0f + vv) + pu[iu.offset(bi * C + c)];
            }
        });
        return out;
    }
    // [N·G, 2] f32: the mean and 1/√(biased var + eps) of each sample's group, in double.
    static Tensor group_stats(const Tensor& x, const Tensor& w, const Tensor& b, std::int64_t G, float eps,
                              const char* what) {
        require_f32(x, what);
        HYVIDEO_CHECK(x.dim() >= 2 && G > 0 && x.size(1) % G == 0, what, ": x ", shape_str(x.shape()), " with ", G,
                      " groups");
        HYVIDEO_CHECK(w.defined() == b.defined(), what, ": weight and bias come together");
        if (w.defined()) {
            require_f32(w, what);
            require_f32(b, what);
            HYVIDEO_CHECK(w.numel() == x.size(1) && b.numel() == x.size(1) && w.is_contiguous() && b.is_contiguous(),
                          what, ": weight and bias must be [C]");
        }
        const std::int64_t N = x.size(0), C = x.size(1), P = x.numel() / std::max<std::int64_t>(1, N * C), cpg = C / G;
        Tensor stats = empty({N * G, 2});
        const auto ix = thrust_detail::strided_index(x);
        const float* px = thrust_detail::f32_data(x);
        float* o = thrust_detail::f32_data_mut(stats);
        const double count = static_cast<double>(cpg * P);
        for_n(N * G, [=] HYVIDEO_HD_LAMBDA(std::int64_t r) {
            const std::int64_t first = r * cpg * P;  // groups are consecutive channels of one sample
            double mean = 0.0, var = 0.0;
            for (std::int64_t i = 0; i < cpg * P; ++i) mean += px[ix.offset(first + i)];
            mean /= count;
            for (std::int64_t i = 0; i < cpg * P; ++i) {
                const double d = px[ix.offset(first + i)] - mean;
                var += d * d;
            }
            o[2 * r] = static_cast<float>(mean);
            o[2 * r + 1] = static_cast<float>(1.0 / std::sqrt(var / count + eps));
        });
        return stats;
    }
    static Tensor group_normed(const Tensor& x, const Tensor& w, const Tensor& b, std::int64_t G, float eps, bool silu) {
        const char* what = silu ? "group_norm_silu" : "group_norm";
        const Tensor stats = group_stats(x, w, b, G, eps, what);
        const std::int64_t C = x.size(1), P = x.numel() / std::max<std::int64_t>(1, x.size(0) * C), cpg = C / G;
        Tensor out = empty(x.shape());
        const auto ix = thrust_detail::strided_index(x);
        const float* px = thrust_detail::f32_data(x);
        const float* ps = thrust_detail::f32_data(stats);
        const float* pw = w.defined() ? thrust_detail::f32_data(w) : nullptr;
        const float* pb = b.defined() ? thrust_detail::f32_data(b) : nullptr;
        float* o = thrust_detail::f32_data_mut(out);
        for_n(out.numel(), [=] HYVIDEO_HD_LAMBDA(std::int64_t i) {
            const std::int64_t nc = i / P, c = nc % C, g = (nc / C) * G + c / cpg;
            double y = (px[ix.offset(i)] - static_cast<double>(ps[2 * g])) * ps[2 * g + 1];
            if (pw) y = y * pw[c] + pb[c];
            const float f = static_cast<float>(y);
            o[i] = silu ? thrust_detail::sigmoid_times(f, 1.0f) : f;
        });
        return out;
    }
};

}  // namespace hyvideo
