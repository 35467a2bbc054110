#pragma once
// 3-D convolution on CPU tensors: y = conv3d(pad(x), weight) + bias for x [N, Cin, T, H, W] f32, as
// torch.nn.functional.conv3d computes it on an F.pad-ded input (the padding is part of Conv3dSpec).
//
// The weight's dtype picks the compute mode, as in linear(): f32 operands, or bf16 operands (the
// input rounded to bf16 while it is staged) with f32 accumulation; f16 weights are widened per call.
//
// Slabs. The output is produced in slabs of output frames × output rows (all columns). For each
// slab the input it reads, kernel halo included, is staged into a bounded buffer with the padding
// applied there (edge copies for replicate, zeros otherwise), so neither the padded video nor a whole
// im2col matrix ever exists. A call's extra memory is a slab buffer or two of at most
// conv3d_slab_bytes() each (plus, with oneDNN, one copy of the weight in oneDNN's layout). The slab
// covers as many frames as fit, because every slab restages its halo and frames are the cheaper
// axis to cover whole: a tile of the tiled VAE has at most 65 frames.
//
// Two engines, selected like the GEMM engine (process-wide; oneDNN by default where the build has it):
//   oneDNN   the slab is staged channels-last (ndhwc), convolved by oneDNN's convolution primitive
//            (brgconv: AVX-512 FMA in f32, AMX or AVX512_BF16 in bf16) and the channels-last result is
//            transposed into the NCDHW output. oneDNN's fast kernels need channels-last or blocked
//            layouts on both sides (for an NCDHW view it falls back to a reference loop), which is
//            why the staging is channels-last. Primitives are cached per shape.
//   im2col   portable: the slab is staged as an im2col matrix [Cin·kt·kh·kw, pixels] and multiplied by
//            the weight [Cout, Cin·kt·kh·kw] through gemm() — Eigen without oneDNN — straight into
//            the NCDHW output.
// A 1×1×1 convolution without stride or padding is a matrix product on the input as it lies,
// [Cout, Cin]·[Cin, T·H·W] per sample; both engines run it through gemm().
//
// Threads: staging and unstaging are parallel over rows; the products use the process's pool
// (oneDNN or Eigen). oneDNN's convolution splits work over output pixels and channels only, so its
// results do not depend on the thread count; the im2col engine inherits gemm()'s behaviour.
//
// conv3d_naive() is the definition, in double, for tests.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "hyvideo/backend/conv3d_spec.hpp"
#include "hyvideo/backend/cpu/elementwise.hpp"
#include "hyvideo/backend/cpu/gemm.hpp"
#include "hyvideo/core/dtype_convert.hpp"
#include "hyvideo/core/parallel.hpp"
#include "hyvideo/core/tensor.hpp"

namespace hyvideo::cpu_detail {

// ---- engine selection -------------------------------------------------------------------------------

enum class Conv3dEngine { onednn, im2col };

inline constexpr std::string_view conv3d_engine_name(Conv3dEngine e) {
    return e == Conv3dEngine::onednn ? "oneDNN" : "im2col+GEMM";
}

namespace conv3d_internal {
inline std::atomic<Conv3dEngine>& engine_setting() {
    static std::atomic<Conv3dEngine> engine{gemm_has_onednn ? Conv3dEngine::onednn : Conv3dEngine::im2col};
    return engine;
}
// 64 MiB: large enough that a slab is a few hundred MFLOP at the VAE's widths (so per-slab overheads
// vanish), small next to the activations it replaces (a 256-channel 256×256 frame is 64 MiB).
inline std::atomic<std::int64_t>& slab_bytes_setting() {
    static std::atomic<std::int64_t> bytes{std::int64_t{64} << 20};
    return bytes;
}
}  // namespace conv3d_internal

inline void set_conv3d_engine(Conv3dEngine e) {
    HYVIDEO_CHECK(e != Conv3dEngine::onednn || gemm_has_onednn,
                  "set_conv3d_engine(onednn): this build has no oneDNN (HYVIDEO_HAS_ONEDNN is not defined)");
    conv3d_internal::engine_setting().store(e);
}
inline Conv3dEngine conv3d_engine() { return conv3d_internal::engine_setting().load(); }

// The staging budget per slab buffer. Smaller slabs use less memory and restage more halo; the
// result does not depend on it (tests shrink it to exercise the slab edges).
inline void set_conv3d_slab_bytes(std::int64_t bytes) {
    HYVIDEO_CHECK(bytes > 0, "set_conv3d_slab_bytes: need a positive budget, got ", bytes);
    conv3d_internal::slab_bytes_setting().store(bytes);
}
inline std::int64_t conv3d_slab_bytes() { return conv3d_internal::slab_bytes_setting().load(); }

namespace conv3d_internal {

// ---- the problem ------------------------------------------------------------------------------------

struct Problem {
    std::int64_t N, Cin, T, H, W;   // input
    std::int64_t Cout, kt, kh, kw;  // weight
    std::int64_t To, Ho, Wo;        // output
    std::array<std::int64_t, 3> stride;
    std::array<std::int64_t, 6> pad;
    PadMode mode;
    DType operands;  // f32 or bf16

    std::int64_t taps() const { return kt * kh * kw; }
    std::int64_t K() const { return Cin * taps(); }
    bool pointwise() const {
        return kt == 1 && kh == 1 && kw == 1 && stride == std::array<std::int64_t, 3>{1, 1, 1} &&
               pad == std::array<std::int64_t, 6>{0, 0, 0, 0, 0, 0};
    }
};

// Where position i of the padded axis reads in the input of size n with `front` padding: the
// clamped index for replicate padding, -1 (a zero) for zero padding outside the input.
inline std::int64_t source_index(std::int64_t i, std::int64_t front, std::int64_t n, PadMode mode) {
    const std::int64_t s = i - front;
    if (s >= 0 && s < n) return s;
    if (mode == PadMode::zeros) return -1;
    return s < 0 ? 0 : n - 1;
}

// Output frames [t0, t0 + tn) × output rows [h0, h0 + hn), all columns.
struct Slab {
    std::int64_t t0, tn, h0, hn;
};

// Input extent a slab of `n` outputs reads along an axis with kernel k and stride s.
inline std::int64_t input_extent(std::int64_t n, std::int64_t k, std::int64_t s) { return (n - 1) * s + k; }

// Cuts the output into slabs whose staging needs at most `budget` bytes by bytes(tn, hn): all frames
// and as many rows as fit, fewer frames only when not even four rows of all frames fit. Sizes are
// then evened out, so a call sees at most two slab shapes (each a cached oneDNN primitive).
template <class Bytes>
std::vector<Slab> plan_slabs(const Problem& p, std::int64_t budget, Bytes bytes) {
    std::int64_t tn = p.To, hn = p.Ho;
    auto rows_that_fit = [&](std::int64_t frames) {
        std::int64_t lo = 1, hi = p.Ho;  // largest hn in [1, Ho] with bytes(frames, hn) <= budget, or 1
        while (lo < hi) {
            const std::int64_t mid = (lo + hi + 1) / 2;
            if (bytes(frames, mid) <= budget) lo = mid;
            else hi = mid - 1;
        }
        return lo;
    };
    hn = rows_that_fit(tn);
    const std::int64_t min_rows = std::min<std::int64_t>(p.Ho, 4);
    while (tn > 1 && (hn < min_rows || bytes(tn, hn) > budget)) {
        tn = (tn + 1) / 2;
        hn = rows_that_fit(tn);
    }
    const std::int64_t n_t = (p.To + tn - 1) / tn, n_h = (p.Ho + hn - 1) / hn;
    tn = (p.To + n_t - 1) / n_t;
    hn = (p.Ho + n_h - 1) / n_h;
    std::vector<Slab> slabs;
    for (std::int64_t t0 = 0; t0 < p.To; t0 += tn)
        for (std::int64_t h0 = 0; h0 < p.Ho; h0 += hn)
            slabs.push_back({t0, std::min(tn, p.To - t0), h0, std::min(hn, p.Ho - h0)});
    return slabs;
}

// Stores one f32 value as the operand type: float, or the bits of a bf16 (std::uint16_t).
template <class E>
inline E to_operand(float v) {
    if constexpr (std::is_same_v<E, float>) return v;
    else return f32_to_bf16(v);
}

// Calls fn(typed pointer) with buf seen as the operand type.
template <class F>
void with_operand_type(DType operands, void* buf, F&& fn) {
    if (operands == DType::bf16) fn(static_cast<std::uint16_t*>(buf));
    else fn(static_cast<float*>(buf));
}

// Writes bias[co] over the slab's region of every output channel of sample y_n, so the products can
// accumulate onto it (beta = 1): gemm()'s own bias runs along the other axis.
inline void fill_bias(const Problem& p, const Slab& s, const float* bias, float* y_n) {
    const std::int64_t plane = p.To * p.Ho * p.Wo;
    parallel_for_chunks(0, p.Cout * s.tn, 4, [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
            const std::int64_t co = r / s.tn, t = s.t0 + r % s.tn;
            float* dst = y_n + co * plane + (t * p.Ho + s.h0) * p.Wo;
            std::fill_n(dst, s.hn * p.Wo, bias[co]);
        }
    });
}

// ---- portable engine: im2col slabs and gemm() ---------------------------------------------------------

// col[k][(t·hn + h)·Wo + w] = padded x at the slab's output (t, h, w) and kernel tap k, where
// k = ((ci·kt + dt)·kh + dh)·kw + dw is the weight's flattened [Cin, kt, kh, kw] index.
template <class E>
void stage_im2col(const Problem& p, const Slab& s, const float* x_n, E* col) {
    const std::int64_t P = s.tn * s.hn * p.Wo;
    const std::int64_t in_plane = p.T * p.H * p.W;
    const auto [st, sh, sw] = p.stride;
    // Columns of one (dw) tap: where each output column reads, computed once per call of the row loop.
    parallel_for_chunks(0, p.K(), 1, [&](std::int64_t k0, std::int64_t k1) {
        std::vector<std::int64_t> src_w(static_cast<std::size_t>(p.Wo));
        for (std::int64_t k = k0; k < k1; ++k) {
            const std::int64_t dw = k % p.kw, dh = (k / p.kw) % p.kh, dt = (k / (p.kw * p.kh)) % p.kt;
            const std::int64_t ci = k / p.taps();
            for (std::int64_t w = 0; w < p.Wo; ++w) src_w[w] = source_index(w * sw + dw, p.pad[4], p.W, p.mode);
            E* row = col + k * P;
            for (std::int64_t t = 0; t < s.tn; ++t) {
                const std::int64_t ts = source_index((s.t0 + t) * st + dt, p.pad[0], p.T, p.mode);
                for (std::int64_t h = 0; h < s.hn; ++h) {
                    E* out = row + (t * s.hn + h) * p.Wo;
                    const std::int64_t hs = source_index((s.h0 + h) * sh + dh, p.pad[2], p.H, p.mode);
                    if (ts < 0 || hs < 0) {
                        std::fill_n(out, p.Wo, to_operand<E>(0.0f));
                        continue;
                    }
                    const float* in = x_n + ci * in_plane + (ts * p.H + hs) * p.W;
                    for (std::int64_t w = 0; w < p.Wo; ++w)
                        out[w] = src_w[w] < 0 ? to_operand<E>(0.0f) : to_operand<E>(in[src_w[w]]);
                }
            }
        }
    });
}

// One sample through im2col slabs. `weight` is the [Cout, K] operand matrix.
inline void run_im2col(const Problem& p, const float* x_n, const void* weight, const float* bias, float* y_n) {
    const std::int64_t esize = static_cast<std::int64_t>(dtype_size(p.operands));
    const auto slabs = plan_slabs(p, conv3d_slab_bytes(),
                                  [&](std::int64_t tn, std::int64_t hn) { return p.K() * tn * hn * p.Wo * esize; });
    std::int64_t max_cols = 0;
    for (const Slab& s : slabs) max_cols = std::max(max_cols, s.tn * s.hn * p.Wo);
    Tensor col = Tensor::empty({p.K(), max_cols}, p.operands);
    const std::int64_t plane = p.To * p.Ho * p.Wo;
    for (const Slab& s : slabs) {
        with_operand_type(p.operands, col.raw_data(), [&](auto* dst) { stage_im2col(p, s, x_n, dst); });
        if (bias) fill_bias(p, s, bias, y_n);
        const std::int64_t P = s.tn * s.hn * p.Wo;
        // The slab's columns are contiguous in each output channel when it spans whole frames or one
        // frame; otherwise each frame's rows are a separate product.
        const bool contiguous = s.hn == p.Ho || s.tn == 1;
        for (std::int64_t t = 0; t < (contiguous ? 1 : s.tn); ++t) {
            GemmArgs g;
            g.M = p.Cout;
            g.N = contiguous ? P : s.hn * p.Wo;
            g.K = p.K();
            g.A = weight;
            g.lda = p.K();
            g.B = static_cast<const std::byte*>(col.raw_data()) + t * s.hn * p.Wo * esize;
            g.ldb = P;
            g.beta = bias ? 1.0f : 0.0f;
            g.C = y_n + ((s.t0 + t) * p.Ho + s.h0) * p.Wo;
            g.ldc = plane;
            g.operands = p.operands;
            gemm(g);
        }
    }
}

// A 1×1×1 convolution of one sample: y[Cout, P] = W[Cout, Cin]·x[Cin, P] (+ bias). bf16 operands
// are converted a block of columns at a time.
inline void run_pointwise(const Problem& p, const float* x_n, const void* weight, const float* bias, float* y_n) {
    const std::int64_t P = p.T * p.H * p.W;
    const Slab all{0, p.To, 0, p.Ho};
    if (bias) fill_bias(p, all, bias, y_n);
    GemmArgs g;
    g.M = p.Cout;
    g.K = p.Cin;
    g.A = weight;
    g.lda = p.Cin;
    g.beta = bias ? 1.0f : 0.0f;
    g.ldc = P;
    g.operands = p.operands;
    if (p.operands == DType::f32) {
        g.N = P;
        g.B = x_n;
        g.ldb = P;
        g.C = y_n;
        gemm(g);
        return;
    }
    const std::int64_t block = std::clamp<std::int64_t>(conv3d_slab_bytes() / (2 * p.Cin), 256, P);
    Tensor x_bf16 = Tensor::empty({p.Cin, block}, DType::bf16);
    for (std::int64_t p0 = 0; p0 < P; p0 += block) {
        const std::int64_t n = std::min(block, P - p0);
        auto* dst = reinterpret_cast<std::uint16_t*>(x_bf16.data<bf16_t>());
        parallel_for_chunks(0, p.Cin, 4, [&](std::int64_t c0, std::int64_t c1) {
            for (std::int64_t c = c0; c < c1; ++c)
                convert_buffer(x_n + c * P + p0, DType::f32, dst + c * n, DType::bf16, static_cast<std::size_t>(n));
        });
        g.N = n;
        g.B = dst;
        g.ldb = n;
        g.C = y_n + p0;
        gemm(g);
    }
}

// ---- oneDNN engine ---------------------------------------------------------------------------------------
#ifdef HYVIDEO_HAS_ONEDNN

// Channels to transpose at a time between NCDHW and channels-last: one 64-byte line of f32 outputs.
inline constexpr std::int64_t kChannelBlock = 16;

// Stages the slab's input as channels-last [tin][hin][Wp][Cin] with the padding applied.
template <class E>
void stage_channels_last(const Problem& p, const Slab& s, const float* x_n, E* dst) {
    const auto [st, sh, sw] = p.stride;
    const std::int64_t tin = input_extent(s.tn, p.kt, st), hin = input_extent(s.hn, p.kh, sh);
    const std::int64_t Wp = input_extent(p.Wo, p.kw, sw);
    const std::int64_t in_plane = p.T * p.H * p.W;
    parallel_for_chunks(0, tin * hin, 1, [&](std::int64_t r0, std::int64_t r1) {
        std::vector<std::int64_t> src_w(static_cast<std::size_t>(Wp));
        for (std::int64_t w = 0; w < Wp; ++w) src_w[w] = source_index(w, p.pad[4], p.W, p.mode);
        for (std::int64_t r = r0; r < r1; ++r) {
            const std::int64_t ts = source_index(s.t0 * st + r / hin, p.pad[0], p.T, p.mode);
            const std::int64_t hs = source_index(s.h0 * sh + r % hin, p.pad[2], p.H, p.mode);
            E* out = dst + r * Wp * p.Cin;
            if (ts < 0 || hs < 0) {
                std::fill_n(out, Wp * p.Cin, to_operand<E>(0.0f));
                continue;
            }
            const float* in = x_n + (ts * p.H + hs) * p.W;
            // Blocks of channels: each output pixel gets one contiguous run, read from kChannelBlock
            // input rows that advance together.
            for (std::int64_t c0 = 0; c0 < p.Cin; c0 += kChannelBlock) {
                const std::int64_t cn = std::min(kChannelBlock, p.Cin - c0);
                for (std::int64_t w = 0; w < Wp; ++w) {
                    E* o = out + w * p.Cin + c0;
                    if (src_w[w] < 0) {
                        std::fill_n(o, cn, to_operand<E>(0.0f));
                        continue;
                    }
                    const float* i = in + c0 * in_plane + src_w[w];
                    for (std::int64_t c = 0; c < cn; ++c) o[c] = to_operand<E>(i[c * in_plane]);
                }
            }
        }
    });
}

// Transposes the channels-last slab result [tn][hn][Wo][Cout] into the NCDHW output of sample y_n.
inline void unstage_channels_last(const Problem& p, const Slab& s, const float* src, float* y_n) {
    const std::int64_t plane = p.To * p.Ho * p.Wo;
    parallel_for_chunks(0, s.tn * s.hn, 1, [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
            const std::int64_t t = s.t0 + r / s.hn, h = s.h0 + r % s.hn;
            const float* in = src + r * p.Wo * p.Cout;
            float* out = y_n + (t * p.Ho + h) * p.Wo;
            for (std::int64_t c0 = 0; c0 < p.Cout; c0 += kChannelBlock) {
                const std::int64_t cn = std::min(kChannelBlock, p.Cout - c0);
                for (std::int64_t w = 0; w < p.Wo; ++w) {
                    const float* i = in + w * p.Cout + c0;
                    for (std::int64_t c = 0; c < cn; ++c) out[(c0 + c) * plane + w] = i[c];
                }
            }
        }
    });
}

// Everything that shapes a convolution primitive over one slab.
struct ConvKey {
    std::int64_t Cin, Cout, kt, kh, kw, st, sh, sw, tin, hin, Wp, tn, hn, Wo;
    DType operands;
    bool has_bias;
    int threads;
    auto operator<=>(const ConvKey&) const = default;
};

struct Conv {
    dnnl::convolution_forward primitive;
    dnnl::memory::desc src, weights, bias, dst, scratchpad;
};

inline Conv make_conv(const ConvKey& k) {
    using tag = dnnl::memory::format_tag;
    using dt = dnnl::memory::data_type;
    const dt operand = k.operands == DType::bf16 ? dt::bf16 : dt::f32;
    const dnnl::memory::desc src({1, k.Cin, k.tin, k.hin, k.Wp}, operand, tag::ndhwc);
    const dnnl::memory::desc weights({k.Cout, k.Cin, k.kt, k.kh, k.kw}, operand, tag::any);
    const dnnl::memory::desc bias = k.has_bias ? dnnl::memory::desc({k.Cout}, dt::f32, tag::x) : dnnl::memory::desc();
    const dnnl::memory::desc dst({1, k.Cout, k.tn, k.hn, k.Wo}, dt::f32, tag::ndhwc);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    gemm_internal::ThreadCountGuard planned_threads(k.threads);
    const dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                               src, weights, bias, dst, {k.st, k.sh, k.sw}, {0, 0, 0}, {0, 0, 0});
    const dnnl::convolution_forward::primitive_desc pd(desc, attr, gemm_internal::onednn_engine());
    return {dnnl::convolution_forward(pd), pd.src_desc(), pd.weights_desc(), bias, pd.dst_desc(), pd.scratchpad_desc()};
}

// Same policy as the matmul cache (gemm.hpp): creating a primitive costs far more than a lookup,
// primitives are immutable and may run concurrently, and a model uses a few dozen shapes.
class ConvCache {
public:
    Conv get(const ConvKey& key) {
        {
            std::lock_guard lock(mutex_);
            if (auto it = entries_.find(key); it != entries_.end()) return it->second;
        }
        Conv made = make_conv(key);
        std::lock_guard lock(mutex_);
        auto [it, inserted] = entries_.emplace(key, made);
        if (inserted) {
            order_.push_back(key);
            if (order_.size() > capacity) {
                entries_.erase(order_.front());
                order_.pop_front();
            }
        }
        return it->second;
    }
    static constexpr std::size_t capacity = 256;

private:
    std::mutex mutex_;
    std::map<ConvKey, Conv> entries_;
    std::deque<ConvKey> order_;
};

inline ConvCache& conv_cache() {
    static ConvCache cache;
    return cache;
}

// One sample through channels-last slabs and oneDNN's convolution. The weight is reordered into the
// primitive's layout once per call (and once more only if a second slab shape wants another layout).
inline void run_onednn(const Problem& p, const float* x_n, const void* weight, const float* bias, float* y_n) {
    using tag = dnnl::memory::format_tag;
    const std::int64_t esize = static_cast<std::int64_t>(dtype_size(p.operands));
    const auto [st, sh, sw] = p.stride;
    const std::int64_t Wp = input_extent(p.Wo, p.kw, sw);
    auto src_bytes = [&](std::int64_t tn, std::int64_t hn) {
        return input_extent(tn, p.kt, st) * input_extent(hn, p.kh, sh) * Wp * p.Cin * esize;
    };
    auto dst_bytes = [&](std::int64_t tn, std::int64_t hn) { return tn * hn * p.Wo * p.Cout * std::int64_t{4}; };
    const auto slabs = plan_slabs(p, conv3d_slab_bytes(), [&](std::int64_t tn, std::int64_t hn) {
        return std::max(src_bytes(tn, hn), dst_bytes(tn, hn));
    });
    std::int64_t max_src = 0, max_dst = 0;
    for (const Slab& s : slabs) {
        max_src = std::max(max_src, src_bytes(s.tn, s.hn));
        max_dst = std::max(max_dst, dst_bytes(s.tn, s.hn));
    }
    Tensor src_buf = Tensor::empty({max_src / esize}, p.operands);
    Tensor dst_buf = Tensor::empty({max_dst / 4}, DType::f32);

    dnnl::engine& engine = gemm_internal::onednn_engine();
    dnnl::stream& stream = gemm_internal::onednn_stream();
    const dnnl::memory::data_type operand =
        p.operands == DType::bf16 ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32;
    dnnl::memory user_weights({{p.Cout, p.Cin, p.kt, p.kh, p.kw}, operand, tag::oidhw}, engine,
                                    const_cast<void*>(weight));
    std::vector<std::pair<dnnl::memory::desc, dnnl::memory>> reordered;  // per weight layout asked for
    auto weights_for = [&](const dnnl::memory::desc& want) {
        for (auto& [desc, mem] : reordered)
            if (desc == want) return mem;
        dnnl::memory mem(want, engine);
        dnnl::reorder(user_weights, mem).execute(stream, user_weights, mem);
        stream.wait();
        reordered.emplace_back(want, mem);
        return mem;
    };

    const int threads = in_parallel_region() ? 1 : num_threads();
    for (const Slab& s : slabs) {
        const ConvKey key{p.Cin, p.Cout, p.kt, p.kh, p.kw, st, sh, sw, input_extent(s.tn, p.kt, st),
                          input_extent(s.hn, p.kh, sh), Wp, s.tn, s.hn, p.Wo, p.operands, bias != nullptr, threads};
        const Conv conv = conv_cache().get(key);
        with_operand_type(p.operands, src_buf.raw_data(), [&](auto* dst) { stage_channels_last(p, s, x_n, dst); });
        std::unordered_map<int, dnnl::memory> args{
            {DNNL_ARG_SRC, dnnl::memory(conv.src, engine, src_buf.raw_data())},
            {DNNL_ARG_WEIGHTS, weights_for(conv.weights)},
            {DNNL_ARG_DST, dnnl::memory(conv.dst, engine, dst_buf.raw_data())}};
        if (bias) args.emplace(DNNL_ARG_BIAS, dnnl::memory(conv.bias, engine, const_cast<float*>(bias)));
        if (const std::size_t bytes = conv.scratchpad.get_size(); bytes > 0)
            args.emplace(DNNL_ARG_SCRATCHPAD,
                         dnnl::memory(conv.scratchpad, engine, gemm_internal::onednn_scratchpad(bytes)));
        conv.primitive.execute(stream, args);
        stream.wait();
        unstage_channels_last(p, s, dst_buf.data<float>(), y_n);
    }
}

#endif  // HYVIDEO_HAS_ONEDNN

inline Problem make_problem(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv3dSpec& spec) {
    require_f32(x, "conv3d");
    HYVIDEO_CHECK(w.defined() && w.device() == Device::cpu, "conv3d: the weight must be a CPU tensor");
    HYVIDEO_CHECK(w.dtype() == DType::f32 || w.dtype() == DType::bf16, "conv3d: weight dtype ",
                  dtype_name(w.dtype()), " is not supported (float32 or bfloat16)");
    const Shape out = spec.output_shape(x.shape(), w.shape());
    if (bias.defined()) {
        require_f32(bias, "conv3d bias");
        HYVIDEO_CHECK(bias.shape() == Shape{w.size(0)}, "conv3d: bias must be [", w.size(0), "], got ",
                      shape_str(bias.shape()));
    }
    return {x.size(0), x.size(1), x.size(2), x.size(3), x.size(4), w.size(0), w.size(2), w.size(3), w.size(4),
            out[2],    out[3],    out[4],    spec.stride, spec.padding, spec.pad_mode, w.dtype()};
}

}  // namespace conv3d_internal

// ---- entry points ----------------------------------------------------------------------------------------

// x [N, Cin, T, H, W] f32 (any strides), weight [Cout, Cin, kt, kh, kw] f32 or bf16 (f16 is widened),
// bias [Cout] f32 or undefined -> [N, Cout, To, Ho, Wo] f32 contiguous.
inline Tensor conv3d(const Tensor& x_in, const Tensor& weight, const Tensor& bias_in, const Conv3dSpec& spec) {
    using namespace conv3d_internal;
    HYVIDEO_CHECK(weight.defined(), "conv3d: undefined weight");
    const Tensor w = (weight.dtype() == DType::f16 ? weight.to(DType::f32) : weight).contiguous();
    const Problem p = make_problem(x_in, w, bias_in, spec);
    Tensor y = Tensor::empty({p.N, p.Cout, p.To, p.Ho, p.Wo});
    if (y.numel() == 0) return y;
    if (p.Cin == 0) {  // an empty sum: the bias alone
        const Tensor b = bias_in.defined() ? bias_in.contiguous() : Tensor::zeros({p.Cout});
        for (std::int64_t n = 0; n < p.N; ++n)
            fill_bias(p, {0, p.To, 0, p.Ho}, b.data<const float>(), y.data<float>() + n * y.stride(0));
        return y;
    }
    const Tensor x = x_in.contiguous();
    const Tensor bias = bias_in.defined() ? bias_in.contiguous() : Tensor{};
    const float* b = bias.defined() ? bias.data<const float>() : nullptr;
    for (std::int64_t n = 0; n < p.N; ++n) {
        const float* x_n = x.data<const float>() + n * x.stride(0);
        float* y_n = y.data<float>() + n * y.stride(0);
        if (p.pointwise()) {
            run_pointwise(p, x_n, w.raw_data(), b, y_n);
            continue;
        }
#ifdef HYVIDEO_HAS_ONEDNN
        if (conv3d_engine() == Conv3dEngine::onednn) {
            try {
                run_onednn(p, x_n, w.raw_data(), b, y_n);
            } catch (const dnnl::error& e) {
                throw Error(hyvideo::detail::concat("conv3d (oneDNN): input ", shape_str(x.shape()), ", weight ",
                                           shape_str(w.shape()), " ", dtype_name(p.operands), " failed: ", e.what()));
            }
            continue;
        }
#endif
        run_im2col(p, x_n, w.raw_data(), b, y_n);
    }
    return y;
}

// The definition, for tests: every output element summed in double over the padded input, with the
// operands rounded to bf16 first when the weight is bf16 (the rounding the fast paths apply).
inline Tensor conv3d_naive(const Tensor& x_in, const Tensor& weight, const Tensor& bias, const Conv3dSpec& spec) {
    using namespace conv3d_internal;
    const Tensor w = weight.to(DType::f32);
    const Problem p = make_problem(x_in, weight, bias, spec);
    const bool round = weight.dtype() == DType::bf16;
    const Tensor x = x_in.contiguous();
    Tensor y = Tensor::empty({p.N, p.Cout, p.To, p.Ho, p.Wo});
    const float* px = x.data<const float>();
    const float* pw = w.data<const float>();
    float* py = y.data<float>();
    auto operand = [&](float v) { return round ? bf16_to_f32(f32_to_bf16(v)) : v; };
    const auto [st, sh, sw] = p.stride;
    parallel_for(0, p.N * p.Cout, [&](std::int64_t nc) {
        const std::int64_t n = nc / p.Cout, co = nc % p.Cout;
        for (std::int64_t t = 0; t < p.To; ++t)
            for (std::int64_t h = 0; h < p.Ho; ++h)
                for (std::int64_t ww = 0; ww < p.Wo; ++ww) {
                    double acc = bias.defined() ? bias.data<const float>()[co] : 0.0;
                    for (std::int64_t ci = 0; ci < p.Cin; ++ci)
                        for (std::int64_t dt = 0; dt < p.kt; ++dt) {
                            const std::int64_t ts = source_index(t * st + dt, p.pad[0], p.T, p.mode);
                            for (std::int64_t dh = 0; dh < p.kh; ++dh) {
                                const std::int64_t hs = source_index(h * sh + dh, p.pad[2], p.H, p.mode);
                                for (std::int64_t dw = 0; dw < p.kw; ++dw) {
                                    const std::int64_t ws = source_index(ww * sw + dw, p.pad[4], p.W, p.mode);
                                    if (ts < 0 || hs < 0 || ws < 0) continue;
                                    const float xv = px[(((n * p.Cin + ci) * p.T + ts) * p.H + hs) * p.W + ws];
                                    const float wv = pw[(((co * p.Cin + ci) * p.kt + dt) * p.kh + dh) * p.kw + dw];
                                    acc += static_cast<double>(operand(xv)) * wv;
                                }
                            }
                        }
                    py[(((n * p.Cout + co) * p.To + t) * p.Ho + h) * p.Wo + ww] = static_cast<float>(acc);
                }
    });
    return y;
}

}  // namespace hyvideo::cpu_detail
