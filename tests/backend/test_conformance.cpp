// Backend conformance: what every primitive of the Backend concept (include/hyvideo/backend/backend.hpp)
// must compute, for any backend. Each primitive is checked element by element against a reference
// written here as plain loops over host vectors (in double where the result is more than one
// rounding), never through the CPU backend's kernels, so the suite states the semantics on its own.
// Inputs enter through B::upload (activations) and B::weight (stored weights), results leave through
// B::download, and views are made with Tensor's metadata-only view operations, so the same checks
// hold for a device backend.
//
// A backend joins by being added to HYVIDEO_CONFORMANCE_BACKENDS below, the one type list every test
// case is instantiated over (doctest's TEST_CASE_TEMPLATE takes it as its variadic type list; a case
// is reported as "name<backend>"), with a TYPE_TO_STRING_AS line naming it, e.g.
//     #define HYVIDEO_CONFORMANCE_BACKENDS hyvideo::cpu, hyvideo::cuda
//
// Tolerances: an element passes when |got − ref| <= atol + rtol·m, m = |ref| or, for a result made of
// several terms, the sum of their magnitudes (Σ|x·w| for a matrix product):
//   exact               data movement, dtype conversions (round to nearest even), add, sub, mul, scale
//                       and affine (IEEE roundings, two for affine), clamp, embedding, upsample, assign;
//   rtol 4e-7 of m      blend (an FMA's single rounding is allowed);
//   1e-7 + 1e-6·m       modulate, gated_add, apply_rope (2e-6 for masked_mean); exp and sample_std 1e-6·|ref|,
//                       mean_abs 1e-12·|ref| (a sum in double);
//   1e-6 + 1e-5·m       activations (m = |ref|), layer_norm, rms_norm, the group norms, and the f32 products
//                       linear and conv3d (room for any f32 accumulation order);
//   1e-6 + 1e-4·m       bf16 weights: both operands rounded to bf16 as the contract says (the reference
//                       rounds them too), f32 accumulation;
//   2e-6 + 2e-5·|ref|   attention (online softmax in f32);
//   2e-6 + 4e-7·|arg|   timestep_embedding (one f32 ulp of a frequency, times t).
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <future>
#include <limits>
#include <numbers>
#include <sstream>
#include <string>
#include <vector>

#include "hyvideo/backend/backend.hpp"
#include "hyvideo/backend/cpu/cpu.hpp"
#if defined(HYVIDEO_HAS_THRUST_OMP)
#include "hyvideo/backend/thrust/omp.hpp"
#endif
#if defined(HYVIDEO_HAS_CUDA)
#include "hyvideo/backend/cuda/cuda.hpp"
#endif

// The backends under test.
// The CUDA test program (tests/cuda/) compiles this file again with its own list.
#ifndef HYVIDEO_CONFORMANCE_BACKENDS
#define HYVIDEO_CONFORMANCE_BACKENDS hyvideo::cpu, hyvideo::thrust_omp
#endif
TYPE_TO_STRING_AS("cpu", hyvideo::cpu);
#if defined(HYVIDEO_HAS_THRUST_OMP)
TYPE_TO_STRING_AS("thrust-omp", hyvideo::thrust_omp);
#endif
#if defined(HYVIDEO_HAS_CUDA)
TYPE_TO_STRING_AS("cuda", hyvideo::cuda);
#endif

using namespace hyvideo;

namespace {

using I64 = std::int64_t;

// ---- inputs -------------------------------------------------------------------------------------------

std::uint64_t splitmix64(std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// n values uniform in [lo, hi); element i depends on (seed, i) only.
std::vector<float> uniform(I64 n, std::uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
    std::vector<float> v(n);
    for (I64 i = 0; i < n; ++i) {
        const double u =
            static_cast<double>(splitmix64(seed * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(i)) >> 11) *
            0x1p-53;
        v[i] = static_cast<float>(lo + (hi - lo) * u);
    }
    return v;
}

// Calls fn(index, linear) for every index of `s` in row-major order.
template <class F>
void for_each_index(const Shape& s, F&& fn) {
    std::vector<I64> idx(s.size(), 0);
    const I64 n = shape_numel(s);
    for (I64 lin = 0; lin < n; ++lin) {
        fn(idx, lin);
        for (std::size_t d = s.size(); d-- > 0;) {
            if (++idx[d] < s[d]) break;
            idx[d] = 0;
        }
    }
}

// A tensor on the device and its logical values, row-major, for the references.
struct Input {
    Shape shape;
    std::vector<float> v;
    Tensor t;
    float operator[](I64 i) const { return v[i]; }
};

template <class B>
Input input(const Shape& s, const std::vector<float>& v) {
    return {s, v, B::upload(Tensor::from_vector(s, v))};
}
template <class B>
Input input(const Shape& s, std::uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
    return input<B>(s, uniform(shape_numel(s), seed, lo, hi));
}

// A view of `base` (made by Tensor's view operations on the device tensor): its logical values, read
// here through the view's own shape, strides and offset.
Input view(const Input& base, const Tensor& v) {
    REQUIRE(base.t.is_contiguous());
    const I64 offset = (static_cast<const char*>(v.raw_data()) - static_cast<const char*>(base.t.raw_data())) /
                       static_cast<I64>(dtype_size(v.dtype()));
    std::vector<float> out(v.numel());
    for_each_index(v.shape(), [&](const std::vector<I64>& idx, I64 lin) {
        I64 at = offset;
        for (std::size_t d = 0; d < idx.size(); ++d) at += idx[d] * v.strides()[d];
        out[lin] = base[at];
    });
    return {v.shape(), out, v};
}

template <class B>
Tensor f32_weight(const Shape& s, const std::vector<float>& v, DType dtype = DType::f32) {
    return B::weight(Tensor::from_vector(s, v), dtype);
}

// A host tensor of 16-bit floats from their bit patterns.
Tensor host_bits(const Shape& s, DType dtype, const std::vector<std::uint16_t>& bits) {
    Tensor t = Tensor::empty(s, dtype);
    REQUIRE(t.nbytes() == bits.size() * 2);
    std::memcpy(t.raw_data(), bits.data(), t.nbytes());
    return t;
}

// ---- reference conversions, from the IEEE definitions (round to nearest, ties to even) ---------------

// x in a binary format of `mbits` stored mantissa bits and `ebits` exponent bits (bf16: 7, 8; f16: 10, 5).
std::uint16_t encode(float x, int mbits, int ebits) {
    const int bias = (1 << (ebits - 1)) - 1;
    const std::uint32_t sign = std::signbit(x) ? 1u << (mbits + ebits) : 0u;
    const std::uint32_t inf = ((1u << ebits) - 1u) << mbits;
    const double a = std::fabs(static_cast<double>(x));
    if (std::isnan(a)) return static_cast<std::uint16_t>(sign | inf | (1u << (mbits - 1)));
    if (std::isinf(a)) return static_cast<std::uint16_t>(sign | inf);
    if (a == 0.0) return static_cast<std::uint16_t>(sign);
    int e = 0;
    std::frexp(a, &e);
    e = std::max(e - 1, 1 - bias);                              // a in [2^e, 2^(e+1)), or the subnormal range
    const double q = std::nearbyint(std::ldexp(a, mbits - e));  // the significand, ties to even
    // (e + bias − 1)·2^mbits + q: a normal number's fields, a carry of q into the exponent, and the
    // subnormals (e = 1 − bias, q < 2^mbits) alike.
    const double code = std::ldexp(e + bias - 1, mbits) + q;
    return static_cast<std::uint16_t>(sign | (code >= inf ? inf : static_cast<std::uint32_t>(code)));
}
float decode(std::uint16_t c, int mbits, int ebits) {
    const int bias = (1 << (ebits - 1)) - 1;
    const int ef = (c >> mbits) & ((1 << ebits) - 1), m = c & ((1 << mbits) - 1);
    const bool neg = (c >> (mbits + ebits)) & 1;
    double v;
    if (ef == (1 << ebits) - 1)
        v = m ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
    else if (ef == 0)
        v = std::ldexp(m, 1 - bias - mbits);
    else
        v = std::ldexp(m + (1 << mbits), ef - bias - mbits);
    return static_cast<float>(neg ? -v : v);
}
std::uint16_t to_bf16(float x) { return encode(x, 7, 8); }
std::uint16_t to_f16(float x) { return encode(x, 10, 5); }
float from_bf16(std::uint16_t b) { return decode(b, 7, 8); }
float from_f16(std::uint16_t h) { return decode(h, 10, 5); }
float round_bf16(float x) { return from_bf16(to_bf16(x)); }
std::vector<std::uint16_t> to_bits(const std::vector<float>& v, DType dtype) {
    std::vector<std::uint16_t> out;
    for (float x : v) out.push_back(dtype == DType::bf16 ? to_bf16(x) : to_f16(x));
    return out;
}
float from_bits(std::uint16_t b, DType dtype) { return dtype == DType::bf16 ? from_bf16(b) : from_f16(b); }

// The correctly rounded float product (exact in double, then one rounding), immune to FMA contraction.
float fmul(float a, float b) { return static_cast<float>(static_cast<double>(a) * static_cast<double>(b)); }

std::vector<double> widen(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// ---- comparison ---------------------------------------------------------------------------------------

struct Tol {
    double atol = 0.0, rtol = 0.0;
};
constexpr Tol exact{};

std::string index_str(const Shape& s, I64 lin) {
    std::string out;
    for (std::size_t d = s.size(); d-- > 0;) {
        out = std::to_string(lin % s[d]) + (d + 1 < s.size() ? ", " : "") + out;
        lin /= s[d];
    }
    return "[" + out + "]";
}

// Downloads `got`, checks its device, dtype f32 and shape, and every element against `ref`:
// |got − ref| <= atol + rtol·m with m = mag[i] when given, else |ref[i]|; a NaN must meet a NaN and an
// infinity the same infinity.
template <class B>
void expect_close(const Tensor& got, const Shape& shape, const std::vector<double>& ref, Tol tol,
                  const std::vector<double>& mag = {}) {
    REQUIRE(got.defined());
    CHECK(got.device() == B::device);
    CHECK(got.dtype() == DType::f32);
    REQUIRE_MESSAGE(got.shape() == shape, "shape " << shape_str(got.shape()) << ", expected " << shape_str(shape));
    const std::vector<float> g = B::download(got).to_vector();
    REQUIRE(g.size() == ref.size());
    REQUIRE((mag.empty() || mag.size() == ref.size()));
    I64 bad = 0, worst = 0;
    double worst_ratio = -1.0;
    for (std::size_t i = 0; i < g.size(); ++i) {
        const double x = g[i], r = ref[i];
        double ratio = 0.0;
        if (std::isnan(x) || std::isnan(r)) {
            ratio = std::isnan(x) && std::isnan(r) ? 0.0 : HUGE_VAL;
        } else if (std::isinf(x) || std::isinf(r)) {
            ratio = x == r ? 0.0 : HUGE_VAL;
        } else {
            const double allowed = tol.atol + tol.rtol * (mag.empty() ? std::abs(r) : mag[i]);
            const double diff = std::abs(x - r);
            ratio = diff == 0.0 ? 0.0 : allowed > 0.0 ? diff / allowed : HUGE_VAL;
        }
        if (ratio > 1.0) ++bad;
        if (ratio > worst_ratio) worst_ratio = ratio, worst = static_cast<I64>(i);
    }
    std::ostringstream msg;
    msg.precision(9);
    msg << bad << " of " << g.size() << " elements outside atol " << tol.atol << " + rtol " << tol.rtol << "; worst at "
        << index_str(shape, worst) << ": got " << g[worst] << ", expected " << ref[worst];
    CHECK_MESSAGE(bad == 0, msg.str());
}
template <class B>
void expect_exact(const Tensor& got, const Shape& shape, const std::vector<float>& ref) {
    expect_close<B>(got, shape, widen(ref), exact);
}

// The bit patterns of a downloaded 16-bit tensor.
template <class B>
std::vector<std::uint16_t> download_bits(const Tensor& t, DType dtype, const Shape& shape) {
    CHECK(t.device() == B::device);
    REQUIRE(t.dtype() == dtype);
    REQUIRE(t.shape() == shape);
    const Tensor h = B::download(t).contiguous();
    std::vector<std::uint16_t> out(h.numel());
    std::memcpy(out.data(), h.raw_data(), h.nbytes());
    return out;
}

// ---- references ---------------------------------------------------------------------------------------

// NumPy broadcasting.
Shape broadcast(const Shape& a, const Shape& b) {
    const std::size_t n = std::max(a.size(), b.size());
    Shape out(n);
    for (std::size_t i = 0; i < n; ++i) {
        const I64 da = i + a.size() < n ? 1 : a[i + a.size() - n], db = i + b.size() < n ? 1 : b[i + b.size() - n];
        out[i] = std::max(da, db);
    }
    return out;
}
// Element of x (shape s) that index `idx` of the broadcast shape reads.
float broadcast_at(const Input& x, const std::vector<I64>& idx) {
    I64 off = 0;
    const std::size_t lead = idx.size() - x.shape.size();
    for (std::size_t d = 0; d < x.shape.size(); ++d) off = off * x.shape[d] + (x.shape[d] == 1 ? 0 : idx[lead + d]);
    return x[off];
}

double silu_ref(double x) { return x / (1.0 + std::exp(-x)); }
double gelu_tanh_ref(double x) {
    return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
}
double gelu_ref(double x) { return 0.5 * x * (1.0 + std::erf(x / std::numbers::sqrt2)); }
double quick_gelu_ref(double x) { return x / (1.0 + std::exp(-1.702 * x)); }

// y = x·Wᵀ + b over the last dim; with bf16 weights x is rounded to bf16 first (the contract).
struct Sum {
    std::vector<double> y, mag;  // the result and Σ of the magnitudes of its terms
};
Sum linear_ref(const Input& x, const std::vector<float>& w, I64 out, const std::vector<float>* bias, bool round_x) {
    const I64 in = x.shape.back(), rows = shape_numel(x.shape) / in;
    Sum r{std::vector<double>(rows * out), std::vector<double>(rows * out)};
    for (I64 m = 0; m < rows; ++m)
        for (I64 n = 0; n < out; ++n) {
            double acc = bias ? (*bias)[n] : 0.0, mag = std::abs(acc);
            for (I64 k = 0; k < in; ++k) {
                const double xv = round_x ? round_bf16(x[m * in + k]) : x[m * in + k];
                const double p = xv * w[n * in + k];
                acc += p;
                mag += std::abs(p);
            }
            r.y[m * out + n] = acc;
            r.mag[m * out + n] = mag;
        }
    return r;
}

// Softmax(q·kᵀ·scale over the allowed keys)·v per (sample, head), grouped-query heads read key/value
// head h / (H / H_kv).
using Allowed = std::function<bool(I64 b, I64 i, I64 j)>;
std::vector<double> attention_ref(const Input& q, const Input& k, const Input& v, double scale,
                                  const Allowed& allowed) {
    const I64 B = q.shape[0], S = q.shape[1], H = q.shape[2], D = q.shape[3], Hkv = k.shape[2], group = H / Hkv;
    std::vector<double> out(B * S * H * D);
    std::vector<double> score(S);
    for (I64 b = 0; b < B; ++b)
        for (I64 h = 0; h < H; ++h)
            for (I64 i = 0; i < S; ++i) {
                double top = -HUGE_VAL;
                for (I64 j = 0; j < S; ++j) {
                    double dot = 0.0;
                    for (I64 d = 0; d < D; ++d)
                        dot += double(q[((b * S + i) * H + h) * D + d]) * k[((b * S + j) * Hkv + h / group) * D + d];
                    score[j] = allowed(b, i, j) ? dot * scale : -HUGE_VAL;
                    top = std::max(top, score[j]);
                }
                if (top == -HUGE_VAL) FAIL("the reference mask leaves query " << i << " of sample " << b << " no key");
                double sum = 0.0;
                std::vector<double> acc(D, 0.0);
                for (I64 j = 0; j < S; ++j) {
                    if (score[j] == -HUGE_VAL) continue;
                    const double p = std::exp(score[j] - top);
                    sum += p;
                    for (I64 d = 0; d < D; ++d) acc[d] += p * v[((b * S + j) * Hkv + h / group) * D + d];
                }
                for (I64 d = 0; d < D; ++d) out[((b * S + i) * H + h) * D + d] = acc[d] / sum;
            }
    return out;
}

// attention_ref on q, k, v rounded to bf16 values (the bf16 operands), with mag = Σ p·|v| / Σ p per
// output element: rounding the probabilities to bf16 moves an output by at most 2⁻⁹·mag.
Sum attention_ref_bf16(const Input& q, const Input& k, const Input& v, double scale, const Allowed& allowed) {
    const auto rounded = [](const Input& x, bool absolute) {
        Input r{x.shape, x.v, {}};
        for (float& e : r.v) e = absolute ? std::abs(round_bf16(e)) : round_bf16(e);
        return r;
    };
    const Input qr = rounded(q, false), kr = rounded(k, false);
    return {attention_ref(qr, kr, rounded(v, false), scale, allowed),
            attention_ref(qr, kr, rounded(v, true), scale, allowed)};
}

// GroupNorm of x [N, C, ...]: per (sample, group) mean and biased variance over C/G channels and every
// position; y = (x − mean)/√(var + eps)·w + b, also as the per-channel map scale = w/√(var + eps),
// shift = b − mean·scale.
struct GroupNormRef {
    std::vector<double> y, mag, scale, shift, shift_mag;  // y and mag like x; scale, shift [N, C]
};
GroupNormRef group_norm_ref(const Input& x, const std::vector<float>* w, const std::vector<float>* b, I64 G,
                            double eps) {
    const I64 N = x.shape[0], C = x.shape[1], P = shape_numel(x.shape) / (N * C), cpg = C / G;
    GroupNormRef r;
    r.y.resize(x.v.size());
    r.mag.resize(x.v.size());
    r.scale.resize(N * C);
    r.shift.resize(r.scale.size());
    r.shift_mag.resize(r.scale.size());
    for (I64 n = 0; n < N; ++n)
        for (I64 g = 0; g < G; ++g) {
            const I64 first = (n * C + g * cpg) * P, count = cpg * P;
            double mean = 0.0, var = 0.0;
            for (I64 i = 0; i < count; ++i) mean += x[first + i];
            mean /= static_cast<double>(count);
            for (I64 i = 0; i < count; ++i) var += (x[first + i] - mean) * (x[first + i] - mean);
            const double rstd = 1.0 / std::sqrt(var / static_cast<double>(count) + eps);
            for (I64 c = g * cpg; c < (g + 1) * cpg; ++c) {
                const double wc = w ? (*w)[c] : 1.0, bc = b ? (*b)[c] : 0.0;
                const I64 nc = n * C + c;
                r.scale[nc] = wc * rstd;
                r.shift[nc] = bc - mean * r.scale[nc];
                r.shift_mag[nc] = std::abs(bc) + std::abs(mean * r.scale[nc]);
                for (I64 p = 0; p < P; ++p) {
                    const I64 i = (n * C + c) * P + p;
                    r.y[i] = (x.v[i] - mean) * rstd * wc + bc;
                    r.mag[i] = std::abs(x.v[i] * r.scale[nc]) + r.shift_mag[nc];
                }
            }
        }
    return r;
}

// Where position i of a padded axis (front padding `front`, input size n) reads: -1 for a zero.
I64 padded_source(I64 i, I64 front, I64 n, PadMode mode) {
    const I64 s = i - front;
    if (s >= 0 && s < n) return s;
    if (mode == PadMode::zeros) return -1;
    return s < 0 ? 0 : n - 1;
}

// torch.nn.functional.conv3d of the F.pad-ded input, with the optional input map
// x' = x·in_scale[n, c] + in_shift[n, c] (then SiLU) applied before the padding reads it, and
// bias + residual added; operands rounded to bf16 when `round` (a bf16 weight).
struct ConvArgs {
    const std::vector<float>* bias = nullptr;
    const std::vector<float>* in_scale = nullptr;
    const std::vector<float>* in_shift = nullptr;
    bool in_silu = false;
    const std::vector<float>* residual = nullptr;
    bool round = false;
};
Sum conv3d_ref(const Input& x, const std::vector<float>& w, const Shape& ws, const Conv3dSpec& spec, const ConvArgs& a,
               Shape& out_shape) {
    const I64 N = x.shape[0], Cin = x.shape[1], T = x.shape[2], H = x.shape[3], W = x.shape[4];
    const I64 Cout = ws[0], kt = ws[2], kh = ws[3], kw = ws[4];
    const I64 in[3] = {T, H, W}, k[3] = {kt, kh, kw};
    I64 o[3];
    for (int d = 0; d < 3; ++d)
        o[d] = (in[d] + spec.padding[2 * d] + spec.padding[2 * d + 1] - k[d]) / spec.stride[d] + 1;
    out_shape = {N, Cout, o[0], o[1], o[2]};
    std::vector<double> xm(x.v.size());  // the mapped input
    for (I64 nc = 0; nc < N * Cin; ++nc)
        for (I64 p = 0; p < T * H * W; ++p) {
            const I64 i = nc * T * H * W + p;
            double v = x.v[i];
            if (a.in_scale) v = v * (*a.in_scale)[nc] + (*a.in_shift)[nc];
            if (a.in_silu) v = silu_ref(v);
            xm[i] = a.round ? round_bf16(static_cast<float>(v)) : v;
        }
    Sum r{std::vector<double>(shape_numel(out_shape)), std::vector<double>(shape_numel(out_shape))};
    for_each_index(out_shape, [&](const std::vector<I64>& idx, I64 lin) {
        const I64 n = idx[0], co = idx[1];
        double acc = (a.bias ? (*a.bias)[co] : 0.0) + (a.residual ? (*a.residual)[lin] : 0.0);
        double mag = std::abs(acc);
        for (I64 ci = 0; ci < Cin; ++ci)
            for (I64 dt = 0; dt < kt; ++dt)
                for (I64 dh = 0; dh < kh; ++dh)
                    for (I64 dw = 0; dw < kw; ++dw) {
                        const I64 ts = padded_source(idx[2] * spec.stride[0] + dt, spec.padding[0], T, spec.pad_mode);
                        const I64 hs = padded_source(idx[3] * spec.stride[1] + dh, spec.padding[2], H, spec.pad_mode);
                        const I64 wsrc = padded_source(idx[4] * spec.stride[2] + dw, spec.padding[4], W, spec.pad_mode);
                        if (ts < 0 || hs < 0 || wsrc < 0) continue;
                        const double p = xm[(((n * Cin + ci) * T + ts) * H + hs) * W + wsrc] *
                                         w[(((co * Cin + ci) * kt + dt) * kh + dh) * kw + dw];
                        acc += p;
                        mag += std::abs(p);
                    }
        r.y[lin] = acc;
        r.mag[lin] = mag;
    });
    return r;
}

// A [B, S] host mask of 0/1 rows.
Tensor mask_tensor(const std::vector<std::vector<int>>& rows) {
    std::vector<float> flat;
    for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
    return Tensor::from_vector({static_cast<I64>(rows.size()), static_cast<I64>(rows[0].size())}, flat);
}

}  // namespace

// ==== memory ===========================================================================================

TEST_CASE_TEMPLATE("conformance: empty, zeros and full", B, HYVIDEO_CONFORMANCE_BACKENDS) {
    for (DType dt : {DType::f32, DType::bf16, DType::f16, DType::i64}) {
        const Tensor e = B::empty({2, 3, 4}, dt);
        CHECK(e.device() == B::device);
        CHECK(e.dtype() == dt);
        CHECK(e.shape() == Shape{2, 3, 4});
        CHECK(e.is_contiguous());
    }
    CHECK(B::empty({0, 5}, DType::f32).numel() == 0);
    expect_exact<B>(B::zeros({3, 5, 2}), {3, 5, 2}, std::vector<float>(30, 0.0f));
    for (const DType dt : {DType::bf16, DType::f16, DType::i64}) {
        CAPTURE(dtype_name(dt));
        const Tensor z = B::zeros({2, 3}, dt);
        CHECK(z.device() == B::device);
        const Tensor host = B::download(z);
        REQUIRE(host.dtype() == dt);
        REQUIRE(host.shape() == Shape{2, 3});
        REQUIRE(host.is_contiguous());
        const auto* bytes = static_cast<const unsigned char*>(host.raw_data());
        CHECK(std::all_of(bytes, bytes + host.nbytes(), [](unsigned char b) { return b == 0; }));
    }
    expect_exact<B>(B::full({4, 3}, -2.5f), {4, 3}, std::vector<float>(12, -2.5f));
    expect_exact<B>(B::full({2, 1, 7}, 1e-3f), {2, 1, 7}, std::vector<float>(14, 1e-3f));
}

TEST_CASE_TEMPLATE("conformance: upload then download keeps every bit, in every dtype", B,
                   HYVIDEO_CONFORMANCE_BACKENDS) {
    const Shape s{3, 4, 5};
    for (DType dt : {DType::f32, DType::bf16, DType::f16, DType::i64}) {
        CAPTURE(dtype_name(dt));
        Tensor h = Tensor::empty(s, dt);
        auto* bytes = static_cast<unsigned char*>(h.raw_data());
        for (std::size_t i = 0; i < h.nbytes(); ++i)
            bytes[i] = static_cast<unsigned char>(splitmix64(i + 17 * h.nbytes()));
        if (dt == DType::f32)  // keep the floats finite: a NaN payload is not what this checks
            for (float& x : h.span<float>()) x = std::isfinite(x) ? x : 1.5f;
        const Tensor d = B::upload(h);
        CHECK(d.device() == B::device);
        CHECK(d.dtype() == dt);
        CHECK(d.shape() == s);
        const Tensor back = B::download(d).contiguous();
        CHECK(back.device() == Device::cpu);
        REQUIRE(back.shape() == s);
        REQUIRE(back.dtype() == dt);
        CHECK(std::memcmp(back.raw_data(), h.raw_data(), h.nbytes()) == 0);
    }
}

TEST_CASE_TEMPLATE("conformance: weight and weight_into convert with round to nearest even, into the reused buffer", B,
                   HYVIDEO_CONFORMANCE_BACKENDS) {
    const Shape s{6, 7};
    // Random values over a wide range, and the rounding cases: ties to even down and up, just above a
    // tie, overflow to infinity, f16 subnormals and their ties.
    std::vector<float> v = uniform(42, 1, -3.0f, 3.0f);
    const float cases[] = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, 1.0f + 0x1p-8f + 0x1p-20f, -1.0f - 0x1p-8f,
                           3.4028235e38f,  1.0f + 0x1p-11f,    1.0f + 3 * 0x1p-11f,       65504.0f,
                           65519.0f,       65520.0f,           -70000.0f,                 0x1p-24f,
                           0x1p-25f,       1.5f * 0x1p-24f,    3 * 0x1p-26f,              6.1e-5f,
                           -1e-7f,         0.0f,               -0.0f,                     1e-30f};
    std::copy(std::begin(cases), std::end(cases), v.begin());
    const Tensor stored = Tensor::from_vector(s, v);
    const std::vector<std::uint16_t> bf = to_bits(v, DType::bf16), hf = to_bits(v, DType::f16);

    SUBCASE("weight") {
        CHECK(download_bits<B>(B::weight(stored, DType::bf16), DType::bf16, s) == bf);
        CHECK(download_bits<B>(B::weight(stored, DType::f16), DType::f16, s) == hf);
        expect_exact<B>(B::weight(stored, DType::f32), s, v);
        // From 16-bit stored weights: widening is exact, f16 -> bf16 rounds the f16 value once.
        std::vector<float> wide_bf, wide_hf;
        std::vector<std::uint16_t> hf_to_bf;
        for (std::size_t i = 0; i < v.size(); ++i) {
            wide_bf.push_back(from_bf16(bf[i]));
            wide_hf.push_back(from_f16(hf[i]));
            hf_to_bf.push_back(to_bf16(wide_hf.back()));
        }
        expect_exact<B>(B::weight(host_bits(s, DType::bf16, bf), DType::f32), s, wide_bf);
        expect_exact<B>(B::weight(host_bits(s, DType::f16, hf), DType::f32), s, wide_hf);
        CHECK(download_bits<B>(B::weight(host_bits(s, DType::f16, hf), DType::bf16), DType::bf16, s) == hf_to_bf);
        CHECK(download_bits<B>(B::weight(host_bits(s, DType::bf16, bf), DType::bf16), DType::bf16, s) == bf);
    }
    SUBCASE("weight_into converts into the buffer it is given, layer after layer") {
        for (DType dt : {DType::bf16, DType::f16}) {
            CAPTURE(dtype_name(dt));
            Tensor buffer = B::empty(s, dt);
            const void* memory = buffer.raw_data();
            buffer = B::weight_into(stored, dt, std::move(buffer));
            CHECK(buffer.raw_data() == memory);
            CHECK(download_bits<B>(buffer, dt, s) == (dt == DType::bf16 ? bf : hf));
            // The next layer's weight into the same buffer.
            const std::vector<float> v2 = uniform(42, 2, -5.0f, 5.0f);
            buffer = B::weight_into(Tensor::from_vector(s, v2), dt, std::move(buffer));
            CHECK(buffer.raw_data() == memory);
            CHECK(download_bits<B>(buffer, dt, s) == to_bits(v2, dt));
        }
        Tensor wide = B::empty(s, DType::f32);
        const void* memory = wide.raw_data();
        wide = B::weight_into(host_bits(s, DType::bf16, bf), DType::f32, std::move(wide));
        CHECK(wide.raw_data() == memory);
        std::vector<float> wide_bf;
        for (auto b : bf) wide_bf.push_back(from_bf16(b));
        expect_exact<B>(wide, s, wide_bf);
    }
    SUBCASE("weight_into without a fitting buffer still converts") {
        CHECK(download_bits<B>(B::weight_into(stored, DType::bf16, Tensor{}), DType::bf16, s) == bf);
        CHECK(download_bits<B>(B::weight_into(stored, DType::bf16, B::empty({7, 6}, DType::bf16)), DType::bf16, s) ==
              bf);
        CHECK(download_bits<B>(B::weight_into(stored, DType::f16, B::empty(s, DType::bf16)), DType::f16, s) == hf);
        expect_exact<B>(B::weight_into(stored, DType::f32, B::empty(s, DType::f32)), s, v);  // nothing to convert
    }
}

TEST_CASE_TEMPLATE("conformance: contiguous materialises strided views", B, HYVIDEO_CONFORMANCE_BACKENDS) {
    const Input base = input<B>({2, 3, 4, 5}, 3);
    for (const Tensor& v :
         {base.t.transpose(1, 3), base.t.slice(2, 1, 3), base.t.select(1, 2), base.t.permute({3, 0, 2, 1}),
          base.t.slice(3, 2, 4), base.t.slice(0, 1, 2).transpose(0, 2)}) {
        const Input ref = view(base, v);
        CAPTURE(shape_str(v.shape()));
        const Tensor c = B::contiguous(v);
        CHECK(c.is_contiguous());
        expect_exact<B>(c, ref.shape, ref.v);
    }
    // Any dtype: a transposed bf16 view keeps its bits.
    const std::vector<std::uint16_t> bits = to_bits(base.v, DType::bf16);
    const Tensor b16 = B::upload(host_bits(base.shape, DType::bf16, bits)).transpose(0, 2);
    const Tensor c = B::contiguous(b16);
    CHECK(c.is_contiguous());
    std::vector<std::uint16_t> expected;
    for_each_index(b16.shape(), [&](const std::vector<I64>& i, I64) {
        expected.push_back(bits[((i[2] * 3 + i[1]) * 4 + i[0]) * 5 + i[3]]);
    });
    CHECK(download_bits<B>(c, DType::bf16, b16.shape()) == expected);
}

TEST_CASE_TEMPLATE("conformance: to_float from int64, bf16, f16 and f32", B, HYVIDEO_CONFORMANCE_BACKENDS) {
    // int64 rounds to the nearest float: 2^30 + 2^22 + 1 is 2^30 + 2^22, 2^24 + 1 a tie to even.
    const std::vector<std::int64_t> ids{0, -3, 5, (I64{1} << 30) + (I64{1} << 22) + 1, (I64{1} << 24) + 1,
                                        (I64{1} << 24) + 3, -(I64{1} << 40) - 1, 123456789};
    std::vector<float> ids_ref;
    for (I64 i : ids) ids_ref.push_back(static_cast<float>(i));
    expect_exact<B>(B::to_float(B::upload(Tensor::from_vector({2, 4}, ids))), {2, 4}, ids_ref);

    // Every bf16 and f16 pattern of a few exponents, subnormals and infinities included.
    std::vector<std::uint16_t> bits;
    for (std::uint32_t i = 0; i < 64; ++i)
        bits.push_back(static_cast<std::uint16_t>(splitmix64(i) & 0x7BFF) | (i & 1 ? 0x8000 : 0));
    bits.insert(bits.end(), {0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x7C00, 0xFC00, 0x7F80, 0xFF80, 0x3F80, 0x7BFF});
    const Shape s{static_cast<I64>(bits.size())};
    for (DType dt : {DType::bf16, DType::f16}) {
        CAPTURE(dtype_name(dt));
        std::vector<float> ref;
        for (auto b : bits) ref.push_back(from_bits(b, dt));
        expect_exact<B>(B::to_float(B::upload(host_bits(s, dt, bits))), s, ref);
    }
    // bool (nonzero is 1) and uint8.
    const std::vector<std::uint8_t> bytes{0, 1, 2, 127, 128, 255};
    Tensor b8 = Tensor::empty({6}, DType::boolean), u8 = Tensor::empty({6}, DType::u8);
    std::memcpy(b8.raw_data(), bytes.data(), 6);
    std::memcpy(u8.raw_data(), bytes.data(), 6);
    expect_exact<B>(B::to_float(B::upload(b8)), {6}, {0, 1, 1, 1, 1, 1});
    expect_exact<B>(B::to_float(B::upload(u8)), {6}, {0, 1, 2, 127, 128, 255});
    const Input f = input<B>({3, 4}, 4);
    const Input t = view(f, f.t.transpose(0, 1));
    expect_exact<B>(B::to_float(t.t), t.shape, t.v);
}

TEST_CASE_TEMPLATE("conformance: cast rounds to nearest even between f32, bf16 and f16", B,
                   HYVIDEO_CONFORMANCE_BACKENDS) {
    std::vector<float> v = uniform(30, 5, -100.0f, 100.0f);
    const float cases[] = {1.0f + 0x1p-8f,  1.0f + 3 * 0x1p-8f, -1.0f - 0x1p-8f - 0x1p-20f, 3.4028235e38f,
                           65519.0f,        65520.0f,           1.0f + 0x1p-11f,            1.0f + 3 * 0x1p-11f,
                           0x1p-25f,        1.5f * 0x1p-24f,    1e-7f,                      -0.0f,
                           HUGE_VALF,       -HUGE_VALF};
    std::copy(std::begin(cases), std::end(cases), v.begin());
    const Shape s{5, 6};
    const Input x = input<B>(s, v);
    const auto bf = to_bits(v, DType::bf16), hf = to_bits(v, DType::f16);
    CHECK(download_bits<B>(B::cast(x.t, DType::bf16), DType::bf16, s) == bf);
    CHECK(download_bits<B>(B::cast(x.t, DType::f16), DType::f16, s) == hf);
    expect_exact<B>(B::cast(x.t, DType::f32), s, v);
    std::vector<float> wide_bf, wide_hf;
    std::vector<std::uint16_t> bf_to_hf, hf_to_bf;
    for (std::size_t i = 0; i < v.size(); ++i) {
        wide_bf.push_back(from_bf16(bf[i]));
        wide_hf.push_back(from_f16(hf[i]));
        bf_to_hf.push_back(to_f16(wide_bf.back()));
        hf_to_bf.push_back(to_bf16(wide_hf.back()));
    }
    const Tensor dbf = B::upload(host_bits(s, DType::bf16, bf)), dhf = B::upload(host_bits(s, DType::f16, hf));
    expect_exact<B>(B::cast(dbf, DType::f32), s, wide_bf);
    expect_exact<B>(B::cast(dhf, DType::f32), s, wide_hf);
    CHECK(download_bits<B>(B::cast(dbf, DType::f16), DType::f16, s) == bf_to_hf);
    CHECK(download_bits<B>(B::cast(dhf, DType::bf16), DType::bf16, s) == hf_to_bf);
    CHECK(download_bits<B>(B::cast(dbf, DType::bf16), DType::bf16, s) == bf);
    // A strided view, and NaN (any NaN pattern will do).
    const Input t = view(x, x.t.transpose(0, 1));
    CHECK(download_bits<B>(B::cast(t.t, DType::bf16), DType::bf16, t.shape) == to_bits(t.v, DType::bf16));
    const auto nan =
        download_bits<B>(B::cast(B::full({1}, std::numeric_limits<float>::quiet_NaN()), DType::bf16), DType::bf16, {1});
    CHECK(std::isnan(from_bf16(nan[0])));
}

TEST_CASE_TEMPLATE("conformance: cat along each dim, of contiguous parts and views", B, HYVIDEO_CONFORMANCE_BACKENDS) {
    // out[..., at + i, ...] = part[..., i, ...] for the part that covers position at + i along dim.
    auto check = [](const std::vector<Input>& parts, I64 dim) {
        CAPTURE(dim);
        const I64 d = dim < 0 ? dim + static_cast<I64>(parts[0].shape.size()) : dim;
        Shape shape = parts[0].shape;
        shape[d] = 0;
        for (const Input& p : parts) shape[d] += p.shape[d];
        std::vector<float> ref(shape_numel(shape));
        for_each_index(shape, [&](std::vector<I64> idx, I64 lin) {
            std::size_t p = 0;
            while (idx[d] >= parts[p].shape[d]) idx[d] -= parts[p++].shape[d];
            I64 off = 0;
            for (std::size_t k = 0; k < idx.size(); ++k) off = off * parts[p].shape[k] + idx[k];
            ref[lin] = parts[p][off];
        });
        std::vector<Tensor> ts;
        for (const Input& p : parts) ts.push_back(p.t);
        expect_exact<B>(B::cat(ts, dim), shape, ref);
    };
    const Input a = input<B>({2, 3, 4}, 6), b = input<B>({2, 1, 4}, 7), c = input<B>({2, 2, 4}, 8);
    check({a, b, c}, 1);
    check({input<B>({1, 3, 4}, 9), a}, 0);
    const Input wide = input<B>({2, 4, 3}, 10);
    check({a, view(wide, wide.t.transpose(1, 2)), input<B>({2, 3, 1}, 11)}, -1);  // a transposed part
    check({view(wide, wide.t.slice(1, 1, 3)), view(wide, wide.t.slice(1, 0, 1))}, 1);
    check({a}, 2);
    // Any dtype: bf16 parts give a bf16 result.
    const auto ba = to_bits(a.v, DType::bf16), bb = to_bits(b.v, DType::bf16);
    const Tensor cat16 =
        B::cat({B::upload(host_bits(a.shape, DType::bf16, ba)), B::upload(host_bits(b.shape, DType::bf16, bb))}, 1);
    std::vector<std::uint16_t> expected;
    for (I64 n = 0; n < 2; ++n) {
        expected.insert(expected.end(), ba.begin() + n * 12, ba.begin() + (n + 1) * 12);
        expected.insert(expected.end(), bb.begin() + n * 4, bb.begin() + (n + 1) * 4);
    }
    CHECK(download_bits<B>(cat16, DType::bf16, {2, 4, 4}) == expected);
}

// ==== linear ===========================================================================================

TEST_CASE_TEMPLATE("conformance: linear, with and without bias, f32, bf16 and f16 weights, strided x", B,
                   HYVIDEO_CONFORMANCE_BACKENDS) {
    // Sizes that need several blocks of a GEMM, and the degenerate one input or one output feature.
    std::uint64_t seed = 20;
    for (const auto& [K, N] : std::vector<std::pair<I64, I64>>{{67, 33}, {1, 5}, {7, 1}}) {
        const std::vector<float> w = uniform(N * K, seed++), bias = uniform(N, seed++, -2.0f, 2.0f);
        const Input x = input<B>({2, 3, K}, seed++, -2.0f, 2.0f), vec = input<B>({K}, seed++);
        const Input wide = input<B>({2, 3, K + 9}, seed++, -2.0f, 2.0f), xt = input<B>({2, K, 3}, seed++);
        // x itself, a column slice (rows of one stride), a transposed view and a vector [K].
        const std::vector<Input> xs{x, view(wide, wide.t.slice(2, 4, 4 + K)), view(xt, xt.t.transpose(1, 2)), vec};
        for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
            // The weight's values as stored: bf16 and f16 weights are the f32 values rounded.
            std::vector<float> wv = w;
            if (dt != DType::f32)
                for (float& e : wv) e = from_bits(dt == DType::bf16 ? to_bf16(e) : to_f16(e), dt);
            const Tensor wd = f32_weight<B>({N, K}, w, dt), bd = f32_weight<B>({N}, bias);
            const Tol tol{1e-6, dt == DType::bf16 ? 1e-4 : 1e-5};
            for (std::size_t i = 0; i < xs.size(); ++i)
                for (bool with_bias : {true, false}) {
                    CAPTURE(K);
                    CAPTURE(N);
                    CAPTURE(dtype_name(dt));
                    CAPTURE(i);
                    CAPTURE(with_bias);
                    Shape ys = xs[i].shape;
                    ys.back() = N;
                    const Sum ref = linear_ref(xs[i], wv, N, with_bias ? &bias : nullptr, dt == DType::bf16);
                    expect_close<B>(B::linear(xs[i].t, wd, with_bias ? bd : Tensor{}), ys, ref.y, tol, ref.mag);
                }
        }
    }
}

// ==== elementwise ======================================================================================

TEST_CASE_TEMPLATE("conformance: silu, gelu_tanh, gelu and quick_gelu, on contiguous tensors and views", B,
                   HYVIDEO_CONFORMANCE_BACKENDS) {
    std::vector<float> v = uniform(2 * 3 * 37, 30, -6.0f, 6.0f);
    const float special[] = {0.0f, -0.0f, 1e-3f, -1e-3f, 10.0f, -10.0f, 20.0f, -20.0f, 88.0f, -88.0f, 100.0f, -100.0f};
    std::copy(std::begin(special), std::end(special), v.begin());
    const Input x = input<B>({2, 3, 37}, v);
    const Input xt = input<B>({2, 37, 3}, 31, -6.0f, 6.0f);
    // x itself, a column slice (rows with one stride) and a transposed view.
    const std::vector<Input> xs{x, view(x, x.t.slice(2, 5, 30)), view(xt, xt.t.transpose(1, 2))};
    struct Op {
        const char* name;
        Tensor (*fn)(const Tensor&);
        double (*ref)(double);
    };
    const Op ops[] = {{"silu", &B::silu, &silu_ref},
                      {"gelu_tanh", &B::gelu_tanh, &gelu_tanh_ref},
                      {"gelu", &B::gelu, &gelu_ref},
                      {"quick_gelu", &B::quick_gelu, &quick_gelu_ref}};
    for (const Op& op : ops)
        for (const Input& in : xs) {
            CAPTURE(op.name);
            CAPTURE(shape_str(in.t.strides()));
            std::vector<double> ref;
            for (float e : in.v) ref.push_back(op.ref(e));
            expect_close<B>(op.fn(in.t), in.shape, ref, {1e-6, 1e-5});
        }
}

TEST_CASE_TEMPLATE("conformance: add, sub and mul, with broadcasting and views", B, HYVIDEO_CONFORMANCE_BACKENDS) {
    const Input t = input<B>({2, 5, 3}, 40), wide = input<B>({2, 3, 8}, 41);
    const std::vector<std::pair<Input, Input>> pairs{
        {input<B>({2, 3, 5}, 42), input<B>({2, 3, 5}, 43)},         // same shape
        {input<B>({2, 3, 5}, 44), input<B>({5}, 45)},               // a row over every token
        {input<B>({2, 3, 5}, 46), input<B>({2, 1, 5}, 47)},         // per sample
        {input<B>({2, 1, 5}, 48), input<B>({1, 3, 1}, 49)},         // both sides broadcast
        {input<B>({3, 5}, 50), input<B>({2, 3, 5}, 51)},            // fewer dims on the left
        {input<B>({2, 3, 5}, 52), input<B>({1}, 53)},               // one value
        {view(t, t.t.transpose(1, 2)), input<B>({2, 3, 5}, 54)},    // a transposed view
        {view(wide, wide.t.slice(2, 2, 7)), input<B>({3, 1}, 55)},  // a column slice
        {input<B>({2, 3, 5}, 56), input<B>({}, 57)},                // a 0-d tensor
    };
    for (const auto& [a, b] : pairs) {
        CAPTURE(shape_str(a.shape));
        CAPTURE(shape_str(b.shape));
        const Shape s = broadcast(a.shape, b.shape);
        std::vector<float> sum, diff, rdiff, prod;
        for_each_index(s, [&](const std::vector<I64>& idx, I64) {
            const float x = broadcast_at(a, idx), y = broadcast_at(b, idx);
            sum.push_back(x + y);
            diff.push_back(x - y);
            rdiff.push_back(y - x);
            prod.push_back(fmul(x, y));
        });
        expect_exact<B>(B::add(a.t, b.t), s, sum);
        expect_exact<B>(B::sub(a.t, b.t), s, diff);
        expect_exact<B>(B::sub(b.t, a.t), s, rdiff);
        expect_exact<B>(B::mul(a.t, b.t), s, prod);
    }
}

TEST_CASE_TEMPLATE("conformance: scale, affine, clamp and exp", B, HYVIDEO_CONFORMANCE_BACKENDS) {
    std::vector<float> v = uniform(4 * 33, 60, -30.0f, 20.0f);
    const float special[] = {0.0f, -0.0f, 88.0f, -100.0f, 1e-20f, -7.25f, 3.0f, -4.0f};
    std::copy(std::begin(special), std::end(special), v.begin());
    const Input x = input<B>({4, 33}, v);
    const Input xt = view(x, x.t.transpose(0, 1));
    for (const Input* in : {&x, &xt}) {
        CAPTURE(shape_str(in->shape));
        std::vector<float> scaled, aff;
        std::vector<double> e;
        for (float a : in->v) {
            scaled.push_back(fmul(a, -0.37f));
            aff.push_back(fmul(a, 0.18215f) + -1.5f);  // rounded after the product, then after the sum
            e.push_back(std::exp(static_cast<double>(a)));
        }
        expect_exact<B>(B::scale(in->t, -0.37f), in->shape, scaled);
        expect_exact<B>(B::affine(in->t, 0.18215f, -1.5f), in->shape, aff);
        expect_close<B>(B::exp(in->t), in->shape, e, {1e-37, 1e-6});
    }
    // clamp: min(max(x, lo), hi), NaN kept; also lo == hi.
    const std::vector<float> c = {-3.0f, -2.0f, -1.999f, 0.0f, 1.0f, 2.5f, 2.6f, 100.0f,
                                  std::numeric_limits<float>::quiet_NaN(), -HUGE_VALF, HUGE_VALF, -0.5f};
    const Input xc = input<B>({3, 4}, c);
    std::vector<float> clamped, pinned;
    for (float a : c) {
        clamped.push_back(std::isnan(a) ? a : std::min(std::max(a, -2.0f), 2.5f));
        pinned.push_back(std::isnan(a) ? a : 0.75f);
    }
    expect_exact<B>(B::clamp(xc.t, -2.0f, 2.5f), xc.shape, clamped);
    expect_exact<B>(B::clamp(xc.t, 0.75f, 0.75f), xc.shape, pinned);
    expect_exact<B>(B::clamp(x.t, -100.0f, 88.0f), x.shape, x.v);  // nothing outside: unchanged
}

// ==== normalisation and modulation =====================================================================

TEST_CASE_TEMPLATE("conformance: layer_norm and rms_norm over the last dim, with and without weights", B,
                   HYVIDEO_CONFORMANCE_BACKENDS) {
    const I64 C = 48;
    const Input x = input<B>({2, 5, C}, 70, -2.0f, 4.0f);   // a mean away from 0
    const Input small = input<B>({3, C}, 71, -0.3f, 0.3f);  // variance comparable to a large eps
    const Input xt0 = input<B>({2, C, 5}, 72);
    const Input xt = view(xt0, xt0.t.transpose(1, 2));
    const std::vector<float> w = uniform(C, 73, 0.5f, 1.5f), b = uniform(C, 74);
    const Tensor wd = f32_weight<B>({C}, w), bd = f32_weight<B>({C}, b);
    for (const Input* in : {&x, &small, &xt})
        for (float eps : {1e-6f, 0.25f})
            for (bool affine : {true, false}) {
                CAPTURE(shape_str(in->shape));
                CAPTURE(eps);
                CAPTURE(affine);
                const I64 rows = shape_numel(in->shape) / C;
                // LayerNorm: (x − mean)/√(biased var + eps)·w + b; RMSNorm: x/√(mean(x²) + eps)·w.
                std::vector<double> ln, ln_mag, rms, rms_mag;
                for (I64 r = 0; r < rows; ++r) {
                    double mean = 0.0, var = 0.0, sq = 0.0;
                    for (I64 c = 0; c < C; ++c) {
                        mean += (*in)[r * C + c];
                        sq += double((*in)[r * C + c]) * (*in)[r * C + c];
                    }
                    mean /= C;
                    for (I64 c = 0; c < C; ++c) var += ((*in)[r * C + c] - mean) * ((*in)[r * C + c] - mean);
                    const double rstd = 1.0 / std::sqrt(var / C + eps), rrms = 1.0 / std::sqrt(sq / C + eps);
                    for (I64 c = 0; c < C; ++c) {
                        const double wc = affine ? w[c] : 1.0, bc = affine ? b[c] : 0.0;
                        const double n = ((*in)[r * C + c] - mean) * rstd * wc;
                        ln.push_back(n + bc);
                        ln_mag.push_back(std::abs(n) + std::abs(bc) + std::abs(mean * rstd * wc));
                        rms.push_back((*in)[r * C + c] * rrms * wc);
                        rms_mag.push_back(std::abs(rms.back()));
                    }
                }
                expect_close<B>(B::layer_norm(in->t, affine ? wd : Tensor{}, affine ? bd : Tensor{}, eps), in->shape,
                                ln, {1e-6, 1e-5}, ln_mag);
                expect_close<B>(B::rms_norm(in->t, affine ? wd : Tensor{}, eps), in->shape, rms, {1e-6, 1e-5}, rms_mag);
            }
}

TEST_CASE_TEMPLATE("conformance: modulate and gated_add broadcast [B, C] vectors over the tokens", B,
                   HYVIDEO_CONFORMANCE_BACKENDS) {
    const I64 Bn = 2, L = 5, C = 24;
    // shift, scale and gate as the DiT has them: column chunks of one modulation output [B, 3C].
    const Input mod = input<B>({Bn, 3 * C}, 80);
    const Input shift = view(mod, mod.t.slice(1, 0, C)), scale = view(mod, mod.t.slice(1, C, 2 * C)),
                gate = view(mod, mod.t.slice(1, 2 * C, 3 * C));
    const Input shift_c = input<B>({Bn, C}, 81), scale_c = input<B>({Bn, C}, 82);
    const Input x = input<B>({Bn, L, C}, 83, -3.0f, 3.0f), y = input<B>({Bn, L, C}, 84, -3.0f, 3.0f);
    const Input yt0 = input<B>({Bn, C, L}, 85);
    const Input yt = view(yt0, yt0.t.transpose(1, 2));
    const Shape s{Bn, L, C};
    auto ref = [&](const Input& a, const Input& b, const Input& u, const Input& v, bool gated) {
        Sum r;
        for_each_index(s, [&](const std::vector<I64>& i, I64 lin) {
            const double uc = u[i[0] * C + i[2]], vc = v.v.empty() ? 0.0 : v[i[0] * C + i[2]];
            // modulate: a·(1 + scale) + shift; gated_add: a + gate·b.
            const double t1 = gated ? a[lin] : double(a[lin]) * (1.0 + vc), t2 = gated ? uc * b[lin] : uc;
            r.y.push_back(t1 + t2);
            r.mag.push_back(std::abs(t1) + std::abs(t2));
        });
        return r;
    };
    for (const auto& [sh, sc] : {std::pair{shift, scale}, std::pair{shift_c, scale_c}}) {
        const Sum m = ref(x, x, sh, sc, false);
        expect_close<B>(B::modulate(x.t, sh.t, sc.t), s, m.y, {1e-7, 1e-6}, m.mag);
    }
    const Sum mt = ref(yt, yt, shift, scale, false);
    expect_close<B>(B::modulate(yt.t, shift.t, scale.t), s, mt.y, {1e-7, 1e-6}, mt.mag);
    for (const Input* g : {&gate, &shift_c})
        for (const Input* yy : {&y, &yt}) {
            const Sum r = ref(x, *yy, *g, Input{}, true);
            expect_close<B>(B::gated_add(x.t, yy->t, g->t), s, r.y, {1e-7, 1e-6}, r.mag);
        }
}

// ==== reductions =======================================================================================

TEST_CASE_TEMPLATE("conformance: masked_mean over tokens, sample_std per sample, mean_abs", B, HYVIDEO_CONFORMANCE_BACKENDS) {
    const I64 N = 4, L = 6, C = 10;
    const Input x = input<B>({N, L, C}, 90, -2.0f, 2.0f);
    // A prefix mask, all valid, one valid token, and fractional weights.
    const std::vector<float> wv{1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 0.5f, 2, 0, 1, 0.25f, 3};
    const Input w = input<B>({N, L}, wv);
    std::vector<double> ref, mag;
    for (I64 n = 0; n < N; ++n) {
        double total = 0.0;
        for (I64 l = 0; l < L; ++l) total += w[n * L + l];
        for (I64 c = 0; c < C; ++c) {
            double s = 0.0, m = 0.0;
            for (I64 l = 0; l < L; ++l) {
                s += double(x[(n * L + l) * C + c]) * w[n * L + l];
                m += std::abs(double(x[(n * L + l) * C + c]) * w[n * L + l]);
            }
            ref.push_back(s / total);
            mag.push_back(m / total);
        }
    }
    expect_close<B>(B::masked_mean(x.t, w.t), {N, C}, ref, {1e-7, 2e-6}, mag);

    // Unbiased standard deviation of each sample over all its elements, samples at different means.
    for (const Shape& s : {Shape{3, 4, 5, 6}, Shape{1, 7}, Shape{2, 2}}) {
        CAPTURE(shape_str(s));
        std::vector<float> v = uniform(shape_numel(s), 91, -1.0f, 1.0f);
        const I64 per = shape_numel(s) / s[0];
        for (I64 i = 0; i < shape_numel(s); ++i) v[i] += 3.0f * static_cast<float>(i / per);
        const std::vector<double> got = B::sample_std(B::upload(Tensor::from_vector(s, v)));
        REQUIRE(got.size() == static_cast<std::size_t>(s[0]));
        for (I64 n = 0; n < s[0]; ++n) {
            double mean = 0.0, sq = 0.0;
            for (I64 i = 0; i < per; ++i) mean += v[n * per + i];
            mean /= per;
            for (I64 i = 0; i < per; ++i) sq += (v[n * per + i] - mean) * (v[n * per + i] - mean);
            const double expected = std::sqrt(sq / (per - 1));
            CHECK(std::abs(got[n] - expected) <= 1e-6 * expected);
        }
    }

    // Mean of |x| over every element, of a contiguous tensor and of a transposed view of one.
    for (const bool transposed : {false, true}) {
        CAPTURE(transposed);
        const std::vector<float> v = uniform(5 * 7, 92, -3.0f, 1.0f);
        double expected = 0.0;
        for (float e : v) expected += std::abs(double(e));
        expected /= double(v.size());
        const Tensor t = B::upload(Tensor::from_vector({5, 7}, v));
        const double got = B::mean_abs(transposed ? t.transpose(0, 1) : t);
        CHECK(std::abs(got - expected) <= 1e-12 * expected);
    }
    CHECK(B::mean_abs(B::full({3}, -2.5f)) == 2.5);
}

// ==== attention ========================================================================================

TEST_CASE_TEMPLATE("conformance: attention under every mask kind, grouped-query heads, strided q/k/v", B,
                   HYVIDEO_CONFORMANCE_BACKENDS) {
    // 133 tokens: more than one tile of queries and of keys in tiled kernels, with a partial last tile.
    const I64 Bn = 2, S = 133, H = 4, D = 16;
    std::vector<int> scattered(S), prefix(S), keys(S);
    for (I64 j = 0; j < S; ++j) {
        scattered[j] = (j % 3 != 1) && j != 0;  // not a prefix, token 0 padded
        prefix[j] = j < 90;
        keys[j] = j == 0 || j % 4 != 2;  // scattered keys, key 0 valid
    }
    auto at = [](const std::vector<int>& m, I64 j) { return m[j] != 0; };
    struct Case {
        const char* name;
        AttentionMask mask;
        Allowed allowed;
        I64 kv_heads;
    };
    const std::vector<I64> seg{99, 40}, ref_len{44, S};
    const std::vector<Case> cases{
        {"full", AttentionMask::full(), [](I64, I64, I64) { return true; }, H},
        {"segments", AttentionMask::segments(seg), [&](I64 b, I64 i, I64 j) { return (i < seg[b]) == (j < seg[b]); },
         H},
        {"refiner from lengths", AttentionMask::refiner(ref_len),
         [&](I64 b, I64 i, I64 j) { return j == 0 || (i < ref_len[b] && j < ref_len[b]); }, H},
        {"refiner from a non-prefix mask", AttentionMask::refiner(mask_tensor({scattered, prefix})),
         [&](I64 b, I64 i, I64 j) {
             const auto& m = b == 0 ? scattered : prefix;
             return j == 0 || (at(m, i) && at(m, j));
         },
         H},
        {"block_causal", AttentionMask::block_causal(10), [](I64, I64 i, I64 j) { return j < (i / 10 + 1) * 10; }, H},
        {"causal", AttentionMask::causal(), [](I64, I64 i, I64 j) { return j <= i; }, H},
        {"causal with a key mask", AttentionMask::causal(mask_tensor({keys, prefix})),
         [&](I64 b, I64 i, I64 j) { return j <= i && at(b == 0 ? keys : prefix, j); }, H},
        {"causal, grouped-query (2 kv heads)", AttentionMask::causal(), [](I64, I64 i, I64 j) { return j <= i; }, 2},
        {"segments, one kv head", AttentionMask::segments(seg),
         [&](I64 b, I64 i, I64 j) { return (i < seg[b]) == (j < seg[b]); }, 1},
    };
    std::uint64_t seed = 100;
    for (const Case& c : cases) {
        CAPTURE(c.name);
        const Input q = input<B>({Bn, S, H, D}, seed++, -2.0f, 2.0f);
        const Input k = input<B>({Bn, S, c.kv_heads, D}, seed++, -2.0f, 2.0f),
                    v = input<B>({Bn, S, c.kv_heads, D}, seed++, -2.0f, 2.0f);
        const float scale = 1.0f / std::sqrt(static_cast<float>(D));
        expect_close<B>(B::attention(q.t, k.t, v.t, c.mask, scale), q.shape, attention_ref(q, k, v, scale, c.allowed),
                        {2e-6, 2e-5});
    }
    // Other sizes and masks: one token, an odd head dim, one head of 512 (the VAE's mid-block), a
    // segment and a refiner prefix of length 0.
    struct Extra {
        Shape q;
        I64 kv_heads;
        AttentionMask mask;
        Allowed allowed;
    };
    const std::vector<I64> zero{0, 7};
    const std::vector<Extra> extras{
        {{1, 1, 2, 3}, 1, AttentionMask::causal(), [](I64, I64 i, I64 j) { return j <= i; }},
        {{2, 5, 2, 3}, 1, AttentionMask::causal(), [](I64, I64 i, I64 j) { return j <= i; }},
        {{1, 20, 1, 512}, 1, AttentionMask::block_causal(4), [](I64, I64 i, I64 j) { return j < (i / 4 + 1) * 4; }},
        {{3, 9, 6, 8}, 3, AttentionMask::full(), [](I64, I64, I64) { return true; }},
        {{2, 7, 2, 4}, 2, AttentionMask::segments(zero), [](I64, I64, I64) { return true; }},
        {{2, 7, 2, 4}, 1, AttentionMask::refiner(zero),
         [&](I64 b, I64 i, I64 j) { return j == 0 || (i < zero[b] && j < zero[b]); }},
    };
    for (const Extra& e : extras) {
        CAPTURE(shape_str(e.q));
        CAPTURE(e.mask.kind_name());
        const Shape kv{e.q[0], e.q[1], e.kv_heads, e.q[3]};
        const float scale = 1.0f / std::sqrt(static_cast<float>(e.q[3]));
        const Input q = input<B>(e.q, seed++, -2.0f, 2.0f), k = input<B>(kv, seed++, -2.0f, 2.0f),
                    v = input<B>(kv, seed++);
        expect_close<B>(B::attention(q.t, k.t, v.t, e.mask, scale), e.q, attention_ref(q, k, v, scale, e.allowed),
                        {2e-6, 2e-5});
    }
    // q, k, v as strided slices of one fused projection [B, S, 3, H, D], another scale, the non-prefix
    // refiner mask.
    const Input fused = input<B>({Bn, S, 3, H, D}, 200, -2.0f, 2.0f);
    const Input q = view(fused, fused.t.select(2, 0)), k = view(fused, fused.t.select(2, 1)),
                v = view(fused, fused.t.select(2, 2));
    expect_close<B>(B::attention(q.t, k.t, v.t, cases[3].mask, 0.37f), q.shape,
                    attention_ref(q, k, v, 0.37f, cases[3].allowed), {2e-6, 2e-5});
}

TEST_CASE_TEMPLATE("conformance: attention with bf16 operands", B, HYVIDEO_CONFORMANCE_BACKENDS) {
    // Against the reference on q, k, v rounded to bf16: the probabilities' rounding (2⁻⁹·mag) and f32
    // arithmetic are what may differ. 133 keys leave an odd last key tile; D = 128 is the DiT's head.
    const I64 S = 133;
    const std::vector<I64> seg{99, 40};
    struct Case {
        Shape q;
        I64 kv_heads;
        AttentionMask mask;
        Allowed allowed;
    };
    const std::vector<Case> cases{
        {{2, S, 4, 16}, 4, AttentionMask::full(), [](I64, I64, I64) { return true; }},
        {{2, S, 4, 16}, 4, AttentionMask::segments(seg), [&](I64 b, I64 i, I64 j) { return (i < seg[b]) == (j < seg[b]); }},
        {{2, S, 4, 16}, 2, AttentionMask::causal(), [](I64, I64 i, I64 j) { return j <= i; }},
        {{1, S, 2, 16}, 1, AttentionMask::block_causal(10), [](I64, I64 i, I64 j) { return j < (i / 10 + 1) * 10; }},
        {{1, 70, 2, 128}, 2, AttentionMask::segments(std::vector<I64>{61}), [](I64, I64 i, I64 j) { return (i < 61) == (j < 61); }},
        {{1, 9, 2, 3}, 2, AttentionMask::full(), [](I64, I64, I64) { return true; }},  // odd D
    };
    std::uint64_t seed = 700;
    for (const Case& c : cases) {
        CAPTURE(shape_str(c.q));
        CAPTURE(c.mask.kind_name());
        const Shape kv{c.q[0], c.q[1], c.kv_heads, c.q[3]};
        const float scale = 1.0f / std::sqrt(static_cast<float>(c.q[3]));
        const Input q = input<B>(c.q, seed++, -2.0f, 2.0f), k = input<B>(kv, seed++, -2.0f, 2.0f),
                    v = input<B>(kv, seed++, -2.0f, 2.0f);
        const Sum ref = attention_ref_bf16(q, k, v, scale, c.allowed);
        expect_close<B>(B::attention(q.t, k.t, v.t, c.mask, scale, DType::bf16), c.q, ref.y, {1e-6, 2.5e-3}, ref.mag);
    }
    // Strided slices of one fused projection read as the contiguous tensors do.
    const Input fused = input<B>({1, S, 3, 2, 16}, 800, -2.0f, 2.0f);
    const Input q = view(fused, fused.t.select(2, 0)), k = view(fused, fused.t.select(2, 1)),
                v = view(fused, fused.t.select(2, 2));
    const Sum ref = attention_ref_bf16(q, k, v, 0.37, [](I64, I64, I64) { return true; });
    expect_close<B>(B::attention(q.t, k.t, v.t, AttentionMask::full(), 0.37f, DType::bf16), q.shape, ref.y,
                    {1e-6, 2.5e-3}, ref.mag);
    CHECK_THROWS_WITH_AS(B::attention(q.t, k.t, v.t, AttentionMask::full(), 0.37f, DType::f16),
                         doctest::Contains("operands must be float32 or bfloat16"), Error);
}

// ==== positional and time embeddings ===================================================================

TEST_CASE_TEMPLATE("conformance: apply_rope in both layouts, with [S, D] and [B, S, D] tables, on a strided x", B,
                   HYVIDEO_CONFORMANCE_BACKENDS) {
    const I64 Bn = 2, S = 5, H = 3, D = 8, half = D / 2;
    const Input fused = input<B>({Bn, S, 3, H, D}, 300, -2.0f, 2.0f);
    const Input x = view(fused, fused.t.select(2, 1));  // k of a fused projection
    const Input plain = input<B>({Bn, S, H, D}, 301, -2.0f, 2.0f);
    // Random tables rather than true cosines: every element of them must land in the right place.
    for (bool per_sample : {false, true}) {
        const Shape ts = per_sample ? Shape{Bn, S, D} : Shape{S, D};
        const Input cs = input<B>(ts, 302 + per_sample), sn = input<B>(ts, 304 + per_sample);
        for (RopeLayout layout : {RopeLayout::interleaved, RopeLayout::rotate_half})
            for (const Input* in : {&x, &plain}) {
                CAPTURE(per_sample);
                CAPTURE(layout == RopeLayout::interleaved);
                Sum r;
                for_each_index(in->shape, [&](const std::vector<I64>& i, I64 lin) {
                    const I64 row = (per_sample ? i[0] * S + i[1] : i[1]) * D, d = i[3];
                    // The partner p of d and its sign: (2j, 2j+1) interleaved, (j, j + D/2) rotate_half;
                    // out[d] = x[d]·cos[d] ∓ x[p]·sin[d].
                    const bool first = layout == RopeLayout::interleaved ? d % 2 == 0 : d < half;
                    const I64 p =
                        layout == RopeLayout::interleaved ? (first ? d + 1 : d - 1) : (first ? d + half : d - half);
                    const double a = double((*in)[lin]) * cs[row + d], b = double((*in)[lin - d + p]) * sn[row + d];
                    r.y.push_back(first ? a - b : a + b);
                    r.mag.push_back(std::abs(a) + std::abs(b));
                });
                expect_close<B>(B::apply_rope(in->t, cs.t, sn.t, layout), in->shape, r.y, {1e-7, 1e-6}, r.mag);
            }
    }
}

TEST_CASE_TEMPLATE("conformance: embedding gathers rows of a table of any float dtype, negative ids give zeros", B,
                   HYVIDEO_CONFORMANCE_BACKENDS) {
    const I64 V = 11, D = 6;
    const std::vector<float> table = uniform(V * D, 400, -3.0f, 3.0f);
    const std::vector<std::int64_t> ids{3, 0, 10, -1, 7, 7, -5, 2};
    for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
        CAPTURE(dtype_name(dt));
        std::vector<float> values = table;
        Tensor stored = Tensor::from_vector({V, D}, table);
        if (dt != DType::f32) {
            const auto bits = to_bits(table, dt);
            for (std::size_t i = 0; i < bits.size(); ++i) values[i] = from_bits(bits[i], dt);
            stored = host_bits({V, D}, dt, bits);
        }
        const Tensor t = B::weight(stored, dt);
        for (const Shape& s : {Shape{2, 4}, Shape{8}}) {
            std::vector<float> ref;
            for (I64 id : ids)
                for (I64 d = 0; d < D; ++d) ref.push_back(id < 0 ? 0.0f : values[id * D + d]);
            Shape out = s;
            out.push_back(D);
            expect_exact<B>(B::embedding(t, Tensor::from_vector(s, ids)), out, ref);
        }
    }
}

TEST_CASE_TEMPLATE("conformance: timestep_embedding is the sinusoidal embedding, cos half first", B,
                   HYVIDEO_CONFORMANCE_BACKENDS) {
    // HunyuanVideo's (and diffusers') embedding with its float32 arithmetic:
    //   freqs = exp(−ln(max_period)·arange(half)/half), args = t·freqs, [cos(args), sin(args)] (+ a zero
    //   column when dim is odd).
    // The tolerance grows with |arg|: one float ulp of a frequency moves t·freq by |arg|·2⁻²³.
    const std::vector<float> t{0.0f, 1.0f, 0.5f, 37.25f, 500.0f, 999.0f};
    const Input td = input<B>({6}, t);
    for (const auto& [dim, period] :
         std::vector<std::pair<I64, float>>{{256, 10000.0f}, {7, 10000.0f}, {32, 1000.0f}}) {
        CAPTURE(dim);
        const I64 half = dim / 2;
        const float neg_log = -static_cast<float>(std::log(static_cast<double>(period)));
        std::vector<double> ref, mag;
        for (float tv : t) {
            std::vector<double> row(dim, 0.0), m(dim, 0.0);
            for (I64 i = 0; i < half; ++i) {
                const float freq = std::exp(neg_log * static_cast<float>(i) / static_cast<float>(half));
                const double arg = fmul(tv, freq);
                row[i] = std::cos(arg);
                row[half + i] = std::sin(arg);
                m[i] = m[half + i] = std::abs(arg);
            }
            ref.insert(ref.end(), row.begin(), row.end());
            mag.insert(mag.end(), m.begin(), m.end());
        }
        expect_close<B>(B::timestep_embedding(td.t, dim, period), {6, dim}, ref, {2e-6, 4e-7}, mag);
    }
}

// ==== VAE ==============================================================================================

TEST_CASE_TEMPLATE("conformance: conv3d with padding modes, strides, bf16 weights, input map and residual", B,
                   HYVIDEO_CONFORMANCE_BACKENDS) {
    struct Case {
        const char* name;
        Shape x, w;
        Conv3dSpec spec;
        bool bias = true, map = false, silu = false, residual = false, bf16 = false;
        int layout = 0;  // 0 contiguous, 1 channels-last, 2 a slice of a wider tensor
    };
    const Conv3dSpec zeros_s2{{1, 2, 2}, {1, 1, 1, 1, 1, 1}, PadMode::zeros};
    const std::vector<Case> cases{
        {.name = "causal 3x3x3", .x = {1, 3, 4, 5, 6}, .w = {4, 3, 3, 3, 3}, .spec = Conv3dSpec::causal(3)},
        {.name = "zero padding, stride (1, 2, 2), no bias", .x = {2, 2, 5, 6, 7}, .w = {3, 2, 3, 3, 3},
         .spec = zeros_s2, .bias = false},
        {.name = "asymmetric replicate padding, stride (2, 1, 3)", .x = {1, 3, 6, 7, 8}, .w = {5, 3, 2, 3, 1},
         .spec = {{2, 1, 3}, {0, 1, 2, 0, 1, 1}, PadMode::replicate}},
        {.name = "pointwise", .x = {2, 4, 2, 3, 3}, .w = {5, 4, 1, 1, 1}, .spec = {}},
        {.name = "causal, stride 2", .x = {1, 2, 5, 6, 6}, .w = {3, 2, 3, 3, 3},
         .spec = Conv3dSpec::causal(3, {2, 2, 2})},
        {.name = "input map + SiLU + residual", .x = {2, 3, 3, 4, 5}, .w = {4, 3, 3, 3, 3},
         .spec = Conv3dSpec::causal(3), .map = true, .silu = true, .residual = true},
        {.name = "input map without SiLU, zero padding", .x = {1, 3, 3, 4, 4}, .w = {2, 3, 3, 3, 3},
         .spec = {{1, 1, 1}, {1, 1, 1, 1, 1, 1}, PadMode::zeros}, .map = true},
        {.name = "bf16 weight", .x = {1, 3, 4, 5, 6}, .w = {4, 3, 3, 3, 3}, .spec = Conv3dSpec::causal(3),
         .bf16 = true},
        {.name = "bf16 weight, strided input", .x = {2, 2, 5, 6, 7}, .w = {3, 2, 3, 3, 3}, .spec = zeros_s2,
         .bf16 = true, .layout = 2},
        {.name = "channels-last input", .x = {1, 3, 4, 5, 6}, .w = {4, 3, 3, 3, 3}, .spec = Conv3dSpec::causal(3),
         .layout = 1},
        {.name = "strided input", .x = {1, 3, 4, 5, 6}, .w = {4, 3, 3, 3, 3}, .spec = Conv3dSpec::causal(3),
         .layout = 2},
        {.name = "channels-last input, input map + SiLU, bf16 weight", .x = {2, 3, 4, 5, 3}, .w = {3, 3, 3, 3, 3},
         .spec = Conv3dSpec::causal(3), .map = true, .silu = true, .bf16 = true, .layout = 1},
    };
    std::uint64_t seed = 500;
    for (const Case& c : cases) {
        CAPTURE(c.name);
        const Shape& s = c.x;
        Input x;
        if (c.layout == 1) {  // channels-last: memory [N, T, H, W, C]
            const Input base = input<B>({s[0], s[2], s[3], s[4], s[1]}, seed++, -2.0f, 2.0f);
            x = view(base, base.t.permute({0, 4, 1, 2, 3}));
        } else if (c.layout == 2) {
            const Input base = input<B>({s[0], s[1], s[2] + 1, s[3], s[4] + 2}, seed++, -2.0f, 2.0f);
            x = view(base, base.t.slice(2, 1, s[2] + 1).slice(4, 2, s[4] + 2));
        } else {
            x = input<B>(s, seed++, -2.0f, 2.0f);
        }
        std::vector<float> w = uniform(shape_numel(c.w), seed++, -0.5f, 0.5f);
        const Tensor wd = f32_weight<B>(c.w, w, c.bf16 ? DType::bf16 : DType::f32);
        if (c.bf16)
            for (float& e : w) e = round_bf16(e);
        const std::vector<float> bias = uniform(c.w[0], seed++);
        const Input in_scale = input<B>({s[0], s[1]}, seed++, 0.5f, 1.5f), in_shift = input<B>({s[0], s[1]}, seed++);
        ConvArgs a;
        a.bias = c.bias ? &bias : nullptr;
        a.in_scale = c.map ? &in_scale.v : nullptr;
        a.in_shift = c.map ? &in_shift.v : nullptr;
        a.in_silu = c.silu;
        a.round = c.bf16;
        Shape out;
        conv3d_ref(x, w, c.w, c.spec, a, out);  // the output shape, for the residual
        const Input residual = input<B>(out, seed++);
        a.residual = c.residual ? &residual.v : nullptr;
        const Sum ref = conv3d_ref(x, w, c.w, c.spec, a, out);
        Conv3dFusion fusion;
        if (c.map) fusion.in_scale = in_scale.t, fusion.in_shift = in_shift.t;
        fusion.in_silu = c.silu;
        if (c.residual) fusion.residual = residual.t;
        const Tensor y = B::conv3d(x.t, wd, c.bias ? f32_weight<B>({c.w[0]}, bias) : Tensor{}, c.spec, fusion);
        expect_close<B>(y, out, ref.y, {1e-6, c.bf16 ? 1e-4 : 1e-5}, ref.mag);
    }
}

TEST_CASE_TEMPLATE("conformance: group_norm, group_norm_silu and group_norm_affine", B, HYVIDEO_CONFORMANCE_BACKENDS) {
    struct Case {
        const char* name;
        Shape x;
        I64 groups;
        float eps;
        bool affine, channels_last;
        float offset;
    };
    const std::vector<Case> cases{
        {"video, 2 channels per group", {2, 8, 3, 4, 5}, 4, 1e-6f, true, false, 0.0f},
        {"no affine, large eps", {2, 8, 3, 4, 5}, 2, 0.5f, false, false, 0.0f},
        {"channels-last", {2, 8, 3, 4, 5}, 4, 1e-6f, true, true, 0.0f},
        {"tokens [N, C, L], offset mean", {2, 6, 10}, 3, 1e-6f, true, false, 3.0f},
        {"one group", {1, 4, 2, 3, 3}, 1, 1e-5f, true, false, -1.0f},
    };
    std::uint64_t seed = 600;
    for (const Case& c : cases) {
        CAPTURE(c.name);
        const Shape& s = c.x;
        Input x;
        if (c.channels_last) {
            const Input base = input<B>({s[0], s[2], s[3], s[4], s[1]}, seed++, -2.0f, 2.0f);
            x = view(base, base.t.permute({0, 4, 1, 2, 3}));
        } else {
            std::vector<float> v = uniform(shape_numel(s), seed++, -2.0f, 2.0f);
            for (float& e : v) e += c.offset;
            x = input<B>(s, v);
        }
        const I64 C = s[1];
        const std::vector<float> w = uniform(C, seed++, 0.5f, 1.5f), b = uniform(C, seed++);
        const Tensor wd = c.affine ? f32_weight<B>({C}, w) : Tensor{}, bd = c.affine ? f32_weight<B>({C}, b) : Tensor{};
        const GroupNormRef r = group_norm_ref(x, c.affine ? &w : nullptr, c.affine ? &b : nullptr, c.groups, c.eps);
        expect_close<B>(B::group_norm(x.t, wd, bd, c.groups, c.eps), s, r.y, {1e-6, 1e-5}, r.mag);
        std::vector<double> silu;
        for (double e : r.y) silu.push_back(silu_ref(e));
        expect_close<B>(B::group_norm_silu(x.t, wd, bd, c.groups, c.eps), s, silu, {1e-6, 1e-5}, r.mag);
        // [2, N, C]: scale, then shift, with GroupNorm(x) = x·scale + shift.
        std::vector<double> ab = r.scale, ab_mag;
        ab.insert(ab.end(), r.shift.begin(), r.shift.end());
        for (double e : r.scale) ab_mag.push_back(std::abs(e));
        ab_mag.insert(ab_mag.end(), r.shift_mag.begin(), r.shift_mag.end());
        expect_close<B>(B::group_norm_affine(x.t, wd, bd, c.groups, c.eps), {2, s[0], C}, ab, {1e-6, 1e-5}, ab_mag);
    }
}

TEST_CASE_TEMPLATE("conformance: upsample_nearest, causal and not", B, HYVIDEO_CONFORMANCE_BACKENDS) {
    const Input x = input<B>({2, 3, 3, 4, 5}, 700);
    const Input base = input<B>({1, 2, 3, 3, 2}, 701);  // channels-last [N, T, H, W, C]
    const Input xcl = view(base, base.t.permute({0, 4, 1, 2, 3}));
    const std::array<I64, 3> factors[] = {{2, 2, 2}, {1, 2, 3}, {3, 1, 1}};
    for (const Input* in : {&x, &xcl})
        for (const auto& f : factors)
            for (bool causal : {true, false}) {
                CAPTURE(causal);
                CAPTURE(f[0]);
                CAPTURE(f[1]);
                CAPTURE(f[2]);
                const Shape& s = in->shape;
                // Output (t, h, w) copies input (src(t), h/fh, w/fw); causal: frame 0 in space only,
                // so src(t) = 0 for t = 0 and 1 + (t − 1)/ft after it, and T_out = 1 + ft·(T − 1).
                const Shape out{s[0], s[1], causal ? 1 + f[0] * (s[2] - 1) : f[0] * s[2], f[1] * s[3], f[2] * s[4]};
                std::vector<float> ref;
                for_each_index(out, [&](const std::vector<I64>& i, I64) {
                    const I64 t = causal ? (i[2] == 0 ? 0 : 1 + (i[2] - 1) / f[0]) : i[2] / f[0];
                    ref.push_back((*in)[(((i[0] * s[1] + i[1]) * s[2] + t) * s[3] + i[3] / f[1]) * s[4] + i[4] / f[2]]);
                });
                expect_exact<B>(B::upsample_nearest(in->t, f, causal), out, ref);
            }
}

TEST_CASE_TEMPLATE("conformance: blend cross-fades two tiles along a dim", B, HYVIDEO_CONFORMANCE_BACKENDS) {
    const Shape s{2, 3, 4, 5, 6};
    const Input a = input<B>(s, 800, -3.0f, 3.0f), b = input<B>(s, 801, -3.0f, 3.0f);
    const Input bt0 = input<B>({2, 3, 4, 6, 5}, 802);
    const Input bt = view(bt0, bt0.t.transpose(3, 4));
    for (const Input* other : {&b, &bt})
        for (I64 dim : {2, 3, 4, -1, 0}) {
            CAPTURE(dim);
            const I64 d = dim < 0 ? dim + 5 : dim;
            // out[.., y, ..] = a·(1 − y/n) + b·(y/n), the weights rounded to float from double (Python floats).
            Sum r;
            for_each_index(s, [&](const std::vector<I64>& i, I64 lin) {
                const double t = static_cast<double>(i[d]) / static_cast<double>(s[d]);
                const float wa = static_cast<float>(1.0 - t), wb = static_cast<float>(t);
                const float pa = fmul(a[lin], wa), pb = fmul((*other)[lin], wb);
                r.y.push_back(pa + pb);
                r.mag.push_back(std::abs(pa) + std::abs(pb));
            });
            expect_close<B>(B::blend(a.t, other->t, dim), s, r.y, {0.0, 4e-7}, r.mag);
        }
}

TEST_CASE_TEMPLATE("conformance: assign writes into a view and nowhere else", B, HYVIDEO_CONFORMANCE_BACKENDS) {
    const Shape s{2, 3, 4, 5};
    auto run = [&](auto make_view, const Input& src) {
        const Input dst = input<B>(s, 900);
        const Tensor v = make_view(dst.t);
        // The positions the view covers, found through its own strides and offset.
        const I64 offset = (static_cast<const char*>(v.raw_data()) - static_cast<const char*>(dst.t.raw_data())) / 4;
        std::vector<float> ref = dst.v;
        for_each_index(v.shape(), [&](const std::vector<I64>& i, I64 lin) {
            I64 at = offset;
            for (std::size_t d = 0; d < i.size(); ++d) at += i[d] * v.strides()[d];
            ref[at] = src[lin];
        });
        REQUIRE(src.shape == v.shape());
        B::assign(v, src.t);
        expect_exact<B>(dst.t, s, ref);
    };
    run([](const Tensor& t) { return t.slice(1, 1, 3); }, input<B>({2, 2, 4, 5}, 901));
    run([](const Tensor& t) { return t.select(3, 2); }, input<B>({2, 3, 4}, 902));
    const Input src = input<B>({4, 3, 2}, 903);
    run([](const Tensor& t) { return t.select(3, 4).slice(2, 1, 3); },
        view(src, src.t.permute({2, 1, 0}).slice(2, 1, 3)));
    run([](const Tensor& t) { return t.slice(0, 1, 2).slice(1, 2, 3); },
        Input{{1, 1, 4, 5}, std::vector<float>(20, 0.5f), B::full({1, 1, 4, 5}, 0.5f)});
}

// ==== streams ==========================================================================================

TEST_CASE_TEMPLATE("conformance: a loader thread on its own stream hands over complete results", B,
                   HYVIDEO_CONFORMANCE_BACKENDS) {
    // What a streamed model's prefetch does (nn/streamed_blocks.hpp): another thread, on a stream of its
    // own, converts the next weights while this thread computes on its stream; what it hands over is
    // read here with no further ordering.
    const I64 K = 96, N = 80;
    const std::vector<float> w = uniform(N * K, 41), w_next = uniform(N * K, 42);
    const Input x = input<B>({3, 5, K}, 43, -2.0f, 2.0f);
    const typename B::Stream loader = B::new_stream();
    for (int round = 0; round < 3; ++round) {
        CAPTURE(round);
        auto next = std::async(std::launch::async, [&] {
            const StreamScope<B> on_loader(loader);
            return B::weight(Tensor::from_vector({N, K}, w_next), DType::bf16);
        });
        const Tensor here = B::linear(x.t, f32_weight<B>({N, K}, w), Tensor{});
        const Tensor handed = next.get();
        CHECK(download_bits<B>(handed, DType::bf16, {N, K}) == to_bits(w_next, DType::bf16));
        std::vector<float> rounded = w_next;
        for (float& e : rounded) e = from_bits(to_bf16(e), DType::bf16);
        const Sum ref_here = linear_ref(x, w, N, nullptr, false), ref_next = linear_ref(x, rounded, N, nullptr, true);
        expect_close<B>(here, {3, 5, N}, ref_here.y, Tol{1e-6, 1e-5}, ref_here.mag);
        expect_close<B>(B::linear(x.t, handed, Tensor{}), {3, 5, N}, ref_next.y, Tol{1e-6, 1e-4}, ref_next.mag);
    }
    // This thread on the loader's stream, then back: every primitive follows the thread's stream.
    {
        const StreamScope<B> on_loader(loader);
        expect_exact<B>(B::add(x.t, x.t), x.shape, [&] {
            std::vector<float> r;
            for (float e : x.v) r.push_back(e + e);
            return r;
        }());
    }
    expect_exact<B>(B::scale(x.t, 2.0f), x.shape, [&] {
        std::vector<float> r;
        for (float e : x.v) r.push_back(2.0f * e);
        return r;
    }());
}
