#pragma once
// 3-D convolution on CPU tensors: y = conv3d(pad(map(x)), weight) + bias + residual for
// x [N, Cin, T, H, W] f32, as torch.nn.functional.conv3d computes it on an F.pad-ded input (the
// padding is part of Conv3dSpec; the input map and the residual are the optional Conv3dFusion).
//
// The weight's dtype picks the compute mode, as in linear(): f32 operands, or bf16 operands (the
// input rounded to bf16 while it is staged) with f32 accumulation; f16 weights are widened per call.
//
// Layout. The output is channels-last (channels_last.hpp), the order both engines write; inputs may
// be channels-last, channels-first contiguous, or any view (copied first).
//
// Slabs. The output is produced in slabs of output frames × output rows (all columns). For each
// slab the input it reads, kernel halo included, is staged into a bounded buffer, with the input map
// (GroupNorm + SiLU of the layer before, fused) and the padding (edge copies for replicate, zeros
// otherwise) applied on the way, so neither the normalised, the padded nor an im2col'ed video ever
// exists: a call's extra memory is a few slab buffers of at most conv3d_slab_bytes() each, reused
// from call to call (plus, with oneDNN, one copy of the weight in oneDNN's layout). A slab spans as
// many frames as fit, because every slab restages its halo and frames are the short axis (a tile of
// the tiled VAE has at most 65).
//
// Two engines, selected like the GEMM engine (process-wide; oneDNN by default where the build has it):
//   oneDNN   the slab is staged channels-last (ndhwc) and convolved by oneDNN's convolution
//            primitive (brgconv: AVX-512 FMA in f32, AMX or AVX512_BF16 in bf16), which writes
//            straight into the output (or, for a slab of partial frames, into a buffer whose rows are
//            then copied) and adds the residual as its sum post-op. Its fast kernels need dense
//            channels-last or blocked layouts on both sides: for strided or channels-first views it
//            falls back to a reference loop. In f32, convolutions that are 3×3 in space with stride 1
//            run as 2-D Winograd convolutions of frames instead, about twice as fast at the same
//            accuracy (run_onednn). Primitives are cached per shape.
//   im2row   portable: the slab is staged the same way, then each of its output pixels gets a row of
//            the kt·kh·kw staged pixels its kernel covers (tap-major, so each tap is one copied
//            pixel), and the rows are multiplied by the weight [Cout, taps·Cin] through gemm() —
//            Eigen without oneDNN — straight into the channels-last output, with the bias as
//            gemm()'s row bias.
// A 1×1×1 convolution without stride, padding or input map is a matrix product on the input as it
// lies ([pixels, Cin]·[Cin, Cout] per sample); both engines run it through gemm().
//
// Threads: staging is parallel over rows; the products use the process's pool (oneDNN or Eigen).
// oneDNN's convolution splits work over output pixels and channels only, so its results do not
// depend on the thread count; the im2row engine inherits gemm()'s behaviour. Small convolutions run
// on the calling thread alone.
//
// conv3d_naive() is the definition, in double, for tests.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <new>
#include <mutex>
#include <optional>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "hyvideo/backend/conv3d_spec.hpp"
#include "hyvideo/backend/cpu/channel_map.hpp"
#include "hyvideo/backend/cpu/channels_last.hpp"
#include "hyvideo/backend/cpu/elementwise.hpp"
#include "hyvideo/backend/cpu/gemm.hpp"
#include "hyvideo/core/dtype_convert.hpp"
#include "hyvideo/core/parallel.hpp"
#include "hyvideo/core/tensor.hpp"

namespace hyvideo::cpu_detail {

// ---- engine selection -------------------------------------------------------------------------------

enum class Conv3dEngine { onednn, im2row };

inline constexpr std::string_view conv3d_engine_name(Conv3dEngine e) {
    return e == Conv3dEngine::onednn ? "oneDNN" : "im2row+GEMM";
}

namespace conv3d_internal {
inline std::atomic<Conv3dEngine>& engine_setting() {
    static std::atomic<Conv3dEngine> engine{gemm_has_onednn ? Conv3dEngine::onednn : Conv3dEngine::im2row};
    return engine;
}
// 64 MiB: a slab is then hundreds of MFLOP at the VAE's widths (per-slab overheads vanish) and
// small next to the activations it stands for (a 256-channel 256×256 frame is 64 MiB in f32).
inline std::atomic<std::int64_t>& slab_bytes_setting() {
    static std::atomic<std::int64_t> bytes{std::int64_t{64} << 20};
    return bytes;
}
inline std::atomic<bool>& winograd_setting() {
    static std::atomic<bool> on{true};
    return on;
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

// Whether the oneDNN engine computes f32 convolutions that are 3×3 in space with stride 1 by
// Winograd's algorithm (run_onednn); on by default. Off, every convolution uses the direct kernels.
inline void set_conv3d_winograd(bool on) { conv3d_internal::winograd_setting().store(on); }
inline bool conv3d_winograd() { return conv3d_internal::winograd_setting().load(); }

namespace conv3d_internal {

// Elements a parallel chunk of staging work should have, so that waking a thread pays off.
inline constexpr std::int64_t kGrainElements = std::int64_t{1} << 15;
// Below this many FLOPs per sample a convolution runs on the calling thread alone (about 0.1 ms of
// work): waking the pool for each of its few parallel regions costs more, and far more on a loaded
// machine, where a region waits for its slowest thread to be scheduled.
inline constexpr double kSerialFlops = 8e6;

// Sets the calling thread's OpenMP thread count for its lifetime (and so oneDNN's and Eigen's).
class ThreadLimit {
public:
    explicit ThreadLimit(int threads) : saved_(num_threads()) { set_num_threads(threads); }
    ~ThreadLimit() { set_num_threads(saved_); }
    ThreadLimit(const ThreadLimit&) = delete;
    ThreadLimit& operator=(const ThreadLimit&) = delete;

private:
    int saved_;
};

// A staging buffer of at least `bytes`, one per slot (0-3) and thread, kept and reused across calls:
// a fresh 64 MiB buffer per convolution would be page-faulted in again every time. (A thread that ran
// convolutions holds up to four such buffers of at most conv3d_slab_bytes() until it exits.)
inline void* staging_buffer(int slot, std::size_t bytes) {
    struct FreeDeleter {
        void operator()(void* p) const { std::free(p); }
    };
    thread_local std::unique_ptr<void, FreeDeleter> buffers[4];
    thread_local std::size_t capacity[4] = {0, 0, 0, 0};
    if (bytes > capacity[slot]) {
        buffers[slot].reset();
        const std::size_t rounded = (bytes + 63) / 64 * 64;
        buffers[slot].reset(std::aligned_alloc(64, rounded));
        if (!buffers[slot]) throw std::bad_alloc();
        capacity[slot] = rounded;
    }
    return buffers[slot].get();
}

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
    std::int64_t out_pixels() const { return To * Ho * Wo; }
    std::int64_t esize() const { return static_cast<std::int64_t>(dtype_size(operands)); }
    bool pointwise() const {
        return kt == 1 && kh == 1 && kw == 1 && stride == std::array<std::int64_t, 3>{1, 1, 1} &&
               pad == std::array<std::int64_t, 6>{0, 0, 0, 0, 0, 0};
    }
};

// One sample's input as the staging reads it.
struct Source {
    const float* x;      // the sample's first element
    bool channels_last;  // [T][H][W][Cin], else [Cin][T][H][W]
    ChannelMap map;      // the fused input map, or none
    bool has_map() const { return map.scale != nullptr || map.silu; }
};

// Where position i of a padded axis reads in the input of size n with `front` padding: the clamped
// index for replicate padding, -1 (a zero) for zero padding outside the input.
inline std::int64_t source_index(std::int64_t i, std::int64_t front, std::int64_t n, PadMode mode) {
    const std::int64_t s = i - front;
    if (s >= 0 && s < n) return s;
    if (mode == PadMode::zeros) return -1;
    return s < 0 ? 0 : n - 1;
}

// Positions i in [0, count) reading input j = i·step + offset − front: the range [lo, hi) where j is
// inside [0, n) (and so advances by `step`), and where every other i reads (source_index).
struct Columns {
    std::int64_t lo = 0, hi = 0;
    std::vector<std::int64_t> source;
};
inline Columns columns(std::int64_t count, std::int64_t step, std::int64_t offset, std::int64_t front, std::int64_t n,
                       PadMode mode) {
    Columns c;
    c.source.resize(static_cast<std::size_t>(count));
    c.lo = count;
    for (std::int64_t i = 0; i < count; ++i) {
        const std::int64_t j = i * step + offset - front;
        c.source[static_cast<std::size_t>(i)] = source_index(i * step + offset, front, n, mode);
        if (j >= 0 && j < n) {
            c.lo = std::min(c.lo, i);
            c.hi = i + 1;
        }
    }
    if (c.lo >= c.hi) c.lo = c.hi = 0;
    return c;
}

// Output frames [t0, t0 + tn) × output rows [h0, h0 + hn), all columns.
struct Slab {
    std::int64_t t0, tn, h0, hn;
};

// Input extent a slab of `n` outputs reads along an axis with kernel k and stride s.
inline std::int64_t input_extent(std::int64_t n, std::int64_t k, std::int64_t s) { return (n - 1) * s + k; }

// Cuts the output into slabs whose staging needs at most `budget` bytes by bytes(tn, hn): all frames
// and as many rows as fit, fewer frames only when not even four rows of all frames fit. Sizes are
// then evened out, so a call sees at most a few slab shapes (each a cached oneDNN primitive).
template <class Bytes>
std::vector<Slab> plan_slabs(const Problem& p, std::int64_t budget, Bytes bytes) {
    auto rows_that_fit = [&](std::int64_t frames) {
        std::int64_t lo = 1, hi = p.Ho;  // the largest hn in [1, Ho] with bytes(frames, hn) <= budget, or 1
        while (lo < hi) {
            const std::int64_t mid = (lo + hi + 1) / 2;
            if (bytes(frames, mid) <= budget) lo = mid;
            else hi = mid - 1;
        }
        return lo;
    };
    std::int64_t tn = p.To, hn = rows_that_fit(tn);
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

// Calls fn(typed pointer) with buf seen as the operand type: float, or the bits of a bf16.
template <class F>
void with_operand_type(DType operands, void* buf, F&& fn) {
    if (operands == DType::bf16) fn(static_cast<std::uint16_t*>(buf));
    else fn(static_cast<float*>(buf));
}

// Copies `pixels` output pixels of the residual (channels-last, sample n) starting at `first` into
// dst (rows of Cout floats).
inline void copy_residual(const Problem& p, const float* residual_n, std::int64_t first, std::int64_t pixels, float* dst) {
    const std::int64_t rows = std::max<std::int64_t>(1, kGrainElements / p.Cout);
    parallel_for_chunks(0, pixels, rows, [&](std::int64_t r0, std::int64_t r1) {
        std::memcpy(dst + r0 * p.Cout, residual_n + (first + r0) * p.Cout,
                    static_cast<std::size_t>((r1 - r0) * p.Cout) * sizeof(float));
    });
}

// ---- staging -------------------------------------------------------------------------------------------

// The slab's input as a dense channels-last array [tin][hin][Wp][Cin] of operands, padding and
// input map applied.
template <class E>
void stage_channels_last(const Problem& p, const Slab& s, const Source& src, E* dst) {
    const auto [st, sh, sw] = p.stride;
    const std::int64_t tin = input_extent(s.tn, p.kt, st), hin = input_extent(s.hn, p.kh, sh);
    const std::int64_t Wp = input_extent(p.Wo, p.kw, sw), C = p.Cin;
    const Columns cols = columns(Wp, 1, 0, p.pad[4], p.W, p.mode);
    const std::int64_t grain = std::max<std::int64_t>(1, kGrainElements / (Wp * C));
    parallel_for_chunks(0, tin * hin, grain, [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
            const std::int64_t ts = source_index(s.t0 * st + r / hin, p.pad[0], p.T, p.mode);
            const std::int64_t hs = source_index(s.h0 * sh + r % hin, p.pad[2], p.H, p.mode);
            E* out = dst + r * Wp * C;
            if (ts < 0 || hs < 0) {
                std::fill_n(out, Wp * C, E{});
                continue;
            }
            if (src.channels_last) {
                const float* row = src.x + (ts * p.H + hs) * p.W * C;
                auto pixel = [&](std::int64_t w) {
                    const std::int64_t ws = cols.source[static_cast<std::size_t>(w)];
                    if (ws < 0) std::fill_n(out + w * C, C, E{});
                    else map_channels(row + ws * C, C, out + w * C, C, p.operands, 1, C, src.map);
                };
                for (std::int64_t w = 0; w < cols.lo; ++w) pixel(w);
                if (cols.hi > cols.lo)
                    map_channels(row + cols.source[static_cast<std::size_t>(cols.lo)] * C, C, out + cols.lo * C, C,
                                 p.operands, cols.hi - cols.lo, C, src.map);
                for (std::int64_t w = cols.hi; w < Wp; ++w) pixel(w);
                continue;
            }
            // Channels-first input (no input map: conv3d() makes such an input channels-last first):
            // a transpose, 16 channels at a time so that each pixel gets one contiguous run, read from
            // 16 input rows that advance together.
            const std::int64_t plane = p.T * p.H * p.W;
            const float* in = src.x + (ts * p.H + hs) * p.W;
            for (std::int64_t c0 = 0; c0 < C; c0 += 16) {
                const std::int64_t cn = std::min<std::int64_t>(16, C - c0);
                for (std::int64_t w = 0; w < Wp; ++w) {
                    E* o = out + w * C + c0;
                    const std::int64_t ws = cols.source[static_cast<std::size_t>(w)];
                    if (ws < 0) {
                        std::fill_n(o, cn, E{});
                        continue;
                    }
                    const float* i = in + c0 * plane + ws;
                    for (std::int64_t c = 0; c < cn; ++c) {
                        if constexpr (std::is_same_v<E, float>) o[c] = i[c * plane];
                        else o[c] = f32_to_bf16(i[c * plane]);
                    }
                }
            }
        }
    });
}

// im2row: for each output pixel of the slab, a row of taps × Cin operands, the input pixels its
// kernel covers (tap-major), gathered from the slab's staged input ([tin][hin][Wp][Cin], padding and
// input map already applied), so each tap is one copied pixel.
template <class E>
void gather_im2row(const Problem& p, const Slab& s, const E* staged, E* rows) {
    const auto [st, sh, sw] = p.stride;
    const std::int64_t C = p.Cin, Kp = p.K(), hin = input_extent(s.hn, p.kh, sh), Wp = input_extent(p.Wo, p.kw, sw);
    const std::int64_t grain = std::max<std::int64_t>(1, kGrainElements / (p.Wo * Kp));
    parallel_for_chunks(0, s.tn * s.hn, grain, [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
            const std::int64_t t = r / s.hn, h = r % s.hn;
            E* out = rows + r * p.Wo * Kp;
            for (std::int64_t tap = 0; tap < p.taps(); ++tap) {
                const std::int64_t dw = tap % p.kw, dh = (tap / p.kw) % p.kh, dt = tap / (p.kw * p.kh);
                const E* in = staged + ((t * st + dt) * hin + h * sh + dh) * Wp * C + dw * C;
                for (std::int64_t w = 0; w < p.Wo; ++w)
                    std::memcpy(out + w * Kp + tap * C, in + w * sw * C, static_cast<std::size_t>(C) * sizeof(E));
            }
        }
    });
}

// ---- portable engine: im2row slabs and gemm() ---------------------------------------------------------

// `weight` is [Cout][taps][Cin] (tap-major, matching the rows). y_n and residual_n are channels-last.
inline void run_im2row(const Problem& p, const Source& src, const void* weight, const float* bias,
                       const float* residual_n, float* y_n) {
    const std::int64_t Kp = p.K();
    const auto [st, sh, sw] = p.stride;
    const std::int64_t Wp = input_extent(p.Wo, p.kw, sw);
    auto staged_bytes = [&](std::int64_t tn, std::int64_t hn) {
        return input_extent(tn, p.kt, st) * input_extent(hn, p.kh, sh) * Wp * p.Cin * p.esize();
    };
    auto rows_bytes = [&](std::int64_t tn, std::int64_t hn) { return tn * hn * p.Wo * Kp * p.esize(); };
    const auto slabs = plan_slabs(p, conv3d_slab_bytes(), [&](std::int64_t tn, std::int64_t hn) {
        return std::max(staged_bytes(tn, hn), rows_bytes(tn, hn));
    });
    std::int64_t max_staged = 0, max_rows = 0;
    for (const Slab& s : slabs) {
        max_staged = std::max(max_staged, staged_bytes(s.tn, s.hn));
        max_rows = std::max(max_rows, rows_bytes(s.tn, s.hn));
    }
    void* staged = staging_buffer(1, static_cast<std::size_t>(max_staged));
    void* rows = staging_buffer(0, static_cast<std::size_t>(max_rows));
    for (const Slab& s : slabs) {
        with_operand_type(p.operands, staged, [&](auto* dst) {
            stage_channels_last(p, s, src, dst);
            gather_im2row(p, s, dst, static_cast<decltype(dst)>(rows));
        });
        // The slab's output pixels are one run of the channels-last output when it spans whole
        // frames or one frame; otherwise each frame's rows are a product of their own.
        const bool one_run = s.hn == p.Ho || s.tn == 1;
        for (std::int64_t t = 0; t < (one_run ? 1 : s.tn); ++t) {
            const std::int64_t first = ((s.t0 + t) * p.Ho + s.h0) * p.Wo;
            const std::int64_t count = one_run ? s.tn * s.hn * p.Wo : s.hn * p.Wo;
            float* c = y_n + first * p.Cout;
            if (residual_n) copy_residual(p, residual_n, first, count, c);
            GemmArgs g;
            g.M = count;
            g.N = p.Cout;
            g.K = Kp;
            g.A = static_cast<const std::byte*>(rows) + t * s.hn * p.Wo * Kp * p.esize();
            g.lda = Kp;
            g.trans_b = true;
            g.B = weight;
            g.ldb = Kp;
            g.beta = residual_n ? 1.0f : 0.0f;
            g.C = c;
            g.ldc = p.Cout;
            g.bias = bias;
            g.operands = p.operands;
            gemm(g);
        }
    }
}

// A 1×1×1 convolution of one sample without an input map: y[pixels, Cout] = x[pixels, Cin]·Wᵀ (+ bias,
// + residual), x read in place (channels-first is the transposed operand). bf16 operands are
// converted a block of pixels at a time.
inline void run_pointwise(const Problem& p, const Source& src, const void* weight, const float* bias,
                          const float* residual_n, float* y_n) {
    const std::int64_t P = p.T * p.H * p.W;
    if (residual_n) copy_residual(p, residual_n, 0, P, y_n);
    GemmArgs g;
    g.N = p.Cout;
    g.K = p.Cin;
    g.trans_b = true;
    g.B = weight;
    g.ldb = p.Cin;
    g.beta = residual_n ? 1.0f : 0.0f;
    g.ldc = p.Cout;
    g.bias = bias;
    g.operands = p.operands;
    g.trans_a = !src.channels_last;
    if (p.operands == DType::f32) {
        g.M = P;
        g.A = src.x;
        g.lda = src.channels_last ? p.Cin : P;
        g.C = y_n;
        gemm(g);
        return;
    }
    const std::int64_t block = std::clamp<std::int64_t>(conv3d_slab_bytes() / (2 * p.Cin), 256, P);
    auto* a = static_cast<std::uint16_t*>(staging_buffer(0, static_cast<std::size_t>(p.Cin * block) * 2));
    for (std::int64_t p0 = 0; p0 < P; p0 += block) {
        const std::int64_t n = std::min(block, P - p0);
        if (src.channels_last) {
            convert_buffer(src.x + p0 * p.Cin, DType::f32, a, DType::bf16, static_cast<std::size_t>(n * p.Cin));
        } else {
            parallel_for_chunks(0, p.Cin, std::max<std::int64_t>(1, kGrainElements / n), [&](std::int64_t c0, std::int64_t c1) {
                for (std::int64_t c = c0; c < c1; ++c)
                    convert_buffer(src.x + c * P + p0, DType::f32, a + c * n, DType::bf16, static_cast<std::size_t>(n));
            });
        }
        g.M = n;
        g.A = a;
        g.lda = src.channels_last ? p.Cin : n;
        g.C = y_n + p0 * p.Cout;
        gemm(g);
    }
}

// ---- oneDNN engine ---------------------------------------------------------------------------------------
#ifdef HYVIDEO_HAS_ONEDNN

// Same policy as the matmul cache (gemm.hpp): creating a primitive costs far more than a lookup,
// primitives are immutable and may run concurrently, and a model uses a few dozen shapes.
template <class Key, class Value>
class PrimitiveCache {
public:
    template <class Make>
    Value get(const Key& key, Make&& make) {
        {
            std::lock_guard lock(mutex_);
            if (auto it = entries_.find(key); it != entries_.end()) return it->second;
        }
        Value made = make(key);
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
    std::map<Key, Value> entries_;
    std::deque<Key> order_;
};

// Everything that shapes a convolution primitive over one slab. `winograd` primitives are 2-D: one
// frame offset dt of the kernel over a batch of tn frames (kt = 1), accumulating (`sum`) after the first.
struct ConvKey {
    std::int64_t Cin, Cout, kt, kh, kw, st, sh, sw, tin, hin, Wp, tn, hn, Wo;
    DType operands;
    bool has_bias, sum, winograd;
    int threads;
    auto operator<=>(const ConvKey&) const = default;
};

struct Conv {
    dnnl::convolution_forward primitive;
    dnnl::memory::desc src, weights, bias, dst, scratchpad;
    bool ok = true;  // false: this winograd shape is not supported (use the direct algorithm)
};

inline Conv make_conv(const ConvKey& k) {
    using tag = dnnl::memory::format_tag;
    using dt = dnnl::memory::data_type;
    const dt operand = k.operands == DType::bf16 ? dt::bf16 : dt::f32;
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (k.sum) {  // dst += conv: the destination arrives holding a partial result or the residual
        dnnl::post_ops ops;
        ops.append_sum(1.0f);
        attr.set_post_ops(ops);
    }
    const dnnl::memory::desc bias = k.has_bias ? dnnl::memory::desc({k.Cout}, dt::f32, tag::x) : dnnl::memory::desc();
    ThreadLimit planned_threads(k.threads);  // oneDNN plans its work split at creation
    if (k.winograd) {
        // Layouts left to oneDNN (its Winograd kernels take blocked nChw16c); the caller reorders.
        const dnnl::memory::desc src({k.tn, k.Cin, k.hin, k.Wp}, operand, tag::any);
        const dnnl::memory::desc weights({k.Cout, k.Cin, k.kh, k.kw}, operand, tag::any);
        const dnnl::memory::desc dst({k.tn, k.Cout, k.hn, k.Wo}, dt::f32, tag::any);
        try {
            const dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference,
                                                       dnnl::algorithm::convolution_winograd, src, weights, bias, dst,
                                                       {1, 1}, {0, 0}, {0, 0});
            const dnnl::convolution_forward::primitive_desc pd(desc, attr, gemm_internal::onednn_engine());
            return {dnnl::convolution_forward(pd), pd.src_desc(), pd.weights_desc(), bias, pd.dst_desc(),
                    pd.scratchpad_desc()};
        } catch (const dnnl::error&) {
            Conv unsupported;
            unsupported.ok = false;
            return unsupported;
        }
    }
    const dnnl::memory::desc src({1, k.Cin, k.tin, k.hin, k.Wp}, operand, tag::ndhwc);
    const dnnl::memory::desc weights({k.Cout, k.Cin, k.kt, k.kh, k.kw}, operand, tag::any);
    const dnnl::memory::desc dst({1, k.Cout, k.tn, k.hn, k.Wo}, dt::f32, tag::ndhwc);
    const dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                               src, weights, bias, dst, {k.st, k.sh, k.sw}, {0, 0, 0}, {0, 0, 0});
    const dnnl::convolution_forward::primitive_desc pd(desc, attr, gemm_internal::onednn_engine());
    return {dnnl::convolution_forward(pd), pd.src_desc(), pd.weights_desc(), bias, pd.dst_desc(), pd.scratchpad_desc()};
}

inline Conv cached_conv(const ConvKey& key) {
    static PrimitiveCache<ConvKey, Conv> cache;
    return cache.get(key, make_conv);
}

// A layout conversion src -> dst, adding to dst's contents when `accumulate`.
inline void reorder(const dnnl::memory& src, const dnnl::memory& dst, bool accumulate) {
    dnnl::primitive_attr attr;
    if (accumulate) {
        dnnl::post_ops ops;
        ops.append_sum(1.0f);
        attr.set_post_ops(ops);
    }
    dnnl::stream& stream = gemm_internal::onednn_stream();
    dnnl::reorder(dnnl::reorder::primitive_desc(src, dst, attr)).execute(stream, {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}});
    stream.wait();
}

inline void execute(const Conv& conv, std::unordered_map<int, dnnl::memory> args) {
    dnnl::engine& engine = gemm_internal::onednn_engine();
    if (const std::size_t bytes = conv.scratchpad.get_size(); bytes > 0)
        args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(conv.scratchpad, engine, gemm_internal::onednn_scratchpad(bytes)));
    dnnl::stream& stream = gemm_internal::onednn_stream();
    conv.primitive.execute(stream, args);
    stream.wait();
}

// Below this many output pixels per sample the Winograd path loses to the direct one: its weights,
// 4× larger once transformed, are transformed on every call, and the saving grows with the pixels.
// (Measured on 512 channels: 3×32×32 pixels 0.6× the direct speed, 3×64×64 1.9×.)
inline constexpr std::int64_t kWinogradMinPixels = 8192;

// One sample through channels-last slabs and oneDNN's convolution.
//
// Direct: the staged slab [tin][hin][Wp][Cin] is the primitive's source as it lies, and it writes the
// output in place (for a slab of whole frames; one of partial frames, a strided region that oneDNN's
// fast kernels do not take, goes through a buffer). The residual is prefilled and added by the sum
// post-op. The weight is reordered into the primitive's layout once per call.
//
// Winograd (f32, 3×3 in space, stride 1, channels multiples of 16): a kt×3×3 convolution is kt 3×3
// convolutions of frames, output frame t summing kernel frame dt over input frame t + dt, so each dt
// is one 2-D convolution of a batch of tn staged frames, accumulated by the sum post-op. oneDNN's
// F(4×4, 3×3) Winograd kernels do them with 2.25× fewer multiplications than the direct ones (about
// twice as fast here, bench_vae) at the same accuracy (relative error 4e-7 against 6e-7 for direct on
// a 128-channel layer, against a double reference). They need blocked layouts, so the staged slab and
// the result are reordered (about 5 % of the time).
inline void run_onednn(const Problem& p, const Source& src, const void* weight, const float* bias,
                       const float* residual_n, float* y_n) {
    using tag = dnnl::memory::format_tag;
    const auto [st, sh, sw] = p.stride;
    const std::int64_t Wp = input_extent(p.Wo, p.kw, sw);
    const int threads = in_parallel_region() ? 1 : num_threads();
    const bool try_winograd = winograd_setting().load() && p.operands == DType::f32 && p.kh == 3 && p.kw == 3 &&
                              st == 1 && sh == 1 && sw == 1 && p.Cin % 16 == 0 && p.Cout % 16 == 0 &&
                              p.out_pixels() >= kWinogradMinPixels;

    auto src_bytes = [&](std::int64_t tn, std::int64_t hn) {
        return input_extent(tn, p.kt, st) * input_extent(hn, p.kh, sh) * Wp * p.Cin * p.esize();
    };
    auto out_bytes = [&](std::int64_t tn, std::int64_t hn) { return tn * hn * p.Wo * p.Cout * std::int64_t{4}; };
    // Per slab: the staged input, and (direct) a buffer for partial frames or (Winograd) the blocked
    // copies of input and output.
    auto bytes = [&](std::int64_t tn, std::int64_t hn) {
        const std::int64_t out = try_winograd || hn != p.Ho ? out_bytes(tn, hn) : 0;
        return std::max(src_bytes(tn, hn), out);
    };
    const auto slabs = plan_slabs(p, conv3d_slab_bytes(), bytes);
    std::int64_t max_src = 0, max_out = 0;
    for (const Slab& s : slabs) {
        max_src = std::max(max_src, src_bytes(s.tn, s.hn));
        max_out = std::max(max_out, out_bytes(s.tn, s.hn));
    }

    dnnl::engine& engine = gemm_internal::onednn_engine();
    const auto operand = p.operands == DType::bf16 ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32;
    // Weights in the primitives' layouts, reordered once per call: the whole kernel (direct), or its
    // frame dt (Winograd; copied out of the [Cout][Cin][kt][3][3] array first, since oneDNN converts
    // to its Winograd layout only from dense oihw).
    std::vector<std::pair<std::pair<std::int64_t, dnnl::memory::desc>, dnnl::memory>> reordered;
    auto weights_for = [&](std::int64_t dt, const dnnl::memory::desc& want) {
        for (auto& [key, mem] : reordered)
            if (key.first == dt && key.second == want) return mem;
        dnnl::memory mem(want, engine);
        if (dt < 0) {
            reorder(dnnl::memory({{p.Cout, p.Cin, p.kt, p.kh, p.kw}, operand, tag::oidhw}, engine, const_cast<void*>(weight)),
                    mem, false);
        } else {
            const std::int64_t plane = p.kh * p.kw;
            std::vector<float> frame(static_cast<std::size_t>(p.Cout * p.Cin * plane));
            const auto* w = static_cast<const float*>(weight);
            for (std::int64_t oc = 0; oc < p.Cout * p.Cin; ++oc)
                std::memcpy(frame.data() + oc * plane, w + (oc * p.kt + dt) * plane, static_cast<std::size_t>(plane) * 4);
            reorder(dnnl::memory({{p.Cout, p.Cin, p.kh, p.kw}, operand, tag::oihw}, engine, frame.data()), mem, false);
        }
        reordered.push_back({{dt, want}, mem});
        return mem;
    };

    void* staged = staging_buffer(0, static_cast<std::size_t>(max_src));
    for (const Slab& s : slabs) {
        const std::int64_t tin = input_extent(s.tn, p.kt, st), hin = input_extent(s.hn, p.kh, sh);
        with_operand_type(p.operands, staged, [&](auto* dst) { stage_channels_last(p, s, src, dst); });

        // Where the slab's result goes: straight into the output (whole frames) or a buffer.
        const bool in_place = s.hn == p.Ho;
        float* dst = in_place ? y_n + s.t0 * p.Ho * p.Wo * p.Cout
                              : static_cast<float*>(staging_buffer(1, static_cast<std::size_t>(max_out)));
        if (residual_n) {
            for (std::int64_t t = 0; t < (in_place ? 1 : s.tn); ++t) {
                const std::int64_t first = ((s.t0 + t) * p.Ho + s.h0) * p.Wo;
                copy_residual(p, residual_n, first, in_place ? s.tn * p.Ho * p.Wo : s.hn * p.Wo,
                              dst + t * s.hn * p.Wo * p.Cout);
            }
        }
        const dnnl::memory::desc dst_nhwc({s.tn, p.Cout, s.hn, p.Wo}, dnnl::memory::data_type::f32, tag::nhwc);

        bool done = false;
        if (try_winograd) {
            ConvKey key{p.Cin, p.Cout, 1, p.kh, p.kw, 1, 1, 1, s.tn, hin, Wp, s.tn, s.hn, p.Wo, p.operands, true, false,
                        true, threads};
            const Conv first = cached_conv(key);
            key.has_bias = false;
            key.sum = true;
            const Conv rest = cached_conv(key);
            // The kernels take frames in nChw16c, each frame a contiguous block: the staged slab is
            // converted once, and kernel frame dt reads the batch of tn frames that starts at frame dt.
            const bool blocked_frames = first.ok && rest.ok &&
                                        first.src == dnnl::memory::desc({s.tn, p.Cin, hin, Wp}, operand, tag::nChw16c);
            if (blocked_frames) {
                dnnl::memory staged_nhwc({{tin, p.Cin, hin, Wp}, operand, tag::nhwc}, engine, staged);
                dnnl::memory blocked({{tin, p.Cin, hin, Wp}, operand, tag::nChw16c}, engine,
                                     staging_buffer(2, static_cast<std::size_t>(src_bytes(s.tn, s.hn))));
                reorder(staged_nhwc, blocked, false);
                dnnl::memory result(first.dst, engine, staging_buffer(3, first.dst.get_size()));
                const std::size_t frame = static_cast<std::size_t>(p.Cin * hin * Wp) * sizeof(float);
                for (std::int64_t dt = 0; dt < p.kt; ++dt) {
                    const Conv& c = dt == 0 ? first : rest;
                    std::unordered_map<int, dnnl::memory> args{
                        {DNNL_ARG_SRC, dnnl::memory(c.src, engine, static_cast<std::byte*>(blocked.get_data_handle()) + dt * frame)},
                        {DNNL_ARG_WEIGHTS, weights_for(dt, c.weights)},
                        {DNNL_ARG_DST, result}};
                    if (dt == 0) args.emplace(DNNL_ARG_BIAS, dnnl::memory(c.bias, engine, const_cast<float*>(bias)));
                    execute(c, std::move(args));
                }
                reorder(result, dnnl::memory(dst_nhwc, engine, dst), residual_n != nullptr);
                done = true;
            }
        }
        if (!done) {
            const ConvKey key{p.Cin, p.Cout, p.kt, p.kh, p.kw, st, sh, sw, tin, hin, Wp, s.tn, s.hn, p.Wo, p.operands,
                              true, residual_n != nullptr, false, threads};
            const Conv conv = cached_conv(key);
            execute(conv, {{DNNL_ARG_SRC, dnnl::memory(conv.src, engine, staged)},
                           {DNNL_ARG_WEIGHTS, weights_for(-1, conv.weights)},
                           {DNNL_ARG_BIAS, dnnl::memory(conv.bias, engine, const_cast<float*>(bias))},
                           {DNNL_ARG_DST, dnnl::memory(conv.dst, engine, dst)}});
        }
        if (!in_place) {
            const std::int64_t row = s.hn * p.Wo * p.Cout;
            parallel_for(0, s.tn, [&](std::int64_t t) {
                std::memcpy(y_n + ((s.t0 + t) * p.Ho + s.h0) * p.Wo * p.Cout, dst + t * row,
                            static_cast<std::size_t>(row) * sizeof(float));
            });
        }
    }
}

#endif  // HYVIDEO_HAS_ONEDNN

// Checks the call and describes it.
inline Problem make_problem(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv3dSpec& spec,
                            const Conv3dFusion& fusion) {
    require_f32(x, "conv3d");
    HYVIDEO_CHECK(w.defined() && w.device() == Device::cpu, "conv3d: the weight must be a CPU tensor");
    HYVIDEO_CHECK(w.dtype() == DType::f32 || w.dtype() == DType::bf16, "conv3d: weight dtype ", dtype_name(w.dtype()),
                  " is not supported (float32 or bfloat16)");
    const Shape out = spec.output_shape(x.shape(), w.shape());
    if (bias.defined()) {
        require_f32(bias, "conv3d bias");
        HYVIDEO_CHECK(bias.shape() == Shape{w.size(0)}, "conv3d: bias must be [", w.size(0), "], got ",
                      shape_str(bias.shape()));
    }
    HYVIDEO_CHECK(fusion.in_scale.defined() == fusion.in_shift.defined(),
                  "conv3d: the input map needs both in_scale and in_shift");
    if (fusion.in_scale.defined()) {
        require_f32(fusion.in_scale, "conv3d in_scale");
        require_f32(fusion.in_shift, "conv3d in_shift");
        const Shape want{x.size(0), x.size(1)};
        HYVIDEO_CHECK(fusion.in_scale.shape() == want && fusion.in_shift.shape() == want,
                      "conv3d: in_scale and in_shift must be ", shape_str(want), ", got ",
                      shape_str(fusion.in_scale.shape()), " and ", shape_str(fusion.in_shift.shape()));
    }
    if (fusion.residual.defined()) {
        require_f32(fusion.residual, "conv3d residual");
        HYVIDEO_CHECK(fusion.residual.shape() == out, "conv3d: the residual must be the output's shape ",
                      shape_str(out), ", got ", shape_str(fusion.residual.shape()));
    }
    return {x.size(0), x.size(1), x.size(2), x.size(3), x.size(4), w.size(0), w.size(2), w.size(3), w.size(4),
            out[2],    out[3],    out[4],    spec.stride, spec.padding, spec.pad_mode, w.dtype()};
}

// The weight as the im2row products read it: [Cout][taps][Cin] (from [Cout][Cin][taps]).
inline Tensor tap_major(const Tensor& w) {
    const std::int64_t Cout = w.size(0), Cin = w.size(1), taps = w.size(2) * w.size(3) * w.size(4);
    return w.reshape({Cout, Cin, taps}).permute({0, 2, 1}).contiguous();
}

}  // namespace conv3d_internal

// ---- entry points ----------------------------------------------------------------------------------------

// x [N, Cin, T, H, W] f32 (any strides), weight [Cout, Cin, kt, kh, kw] f32 or bf16 (f16 is widened),
// bias [Cout] f32 or undefined -> [N, Cout, To, Ho, Wo] f32, channels-last.
inline Tensor conv3d(const Tensor& x_in, const Tensor& weight, const Tensor& bias_in, const Conv3dSpec& spec,
                     const Conv3dFusion& fusion = {}) {
    using namespace conv3d_internal;
    HYVIDEO_CHECK(weight.defined(), "conv3d: undefined weight");
    const Tensor w = (weight.dtype() == DType::f16 ? weight.to(DType::f32) : weight).contiguous();
    const Problem p = make_problem(x_in, w, bias_in, spec, fusion);
    Tensor y = empty_channels_last({p.N, p.Cout, p.To, p.Ho, p.Wo});
    if (y.numel() == 0) return y;
    const Tensor bias = bias_in.defined() ? bias_in.contiguous() : Tensor::zeros({p.Cout});
    const Tensor residual = fusion.residual.defined() ? channels_last(fusion.residual) : Tensor{};
    if (p.Cin == 0) {  // an empty sum: bias and residual alone
        float* py = y.data<float>();
        const float* r = residual.defined() ? residual.data<const float>() : nullptr;
        for (std::int64_t i = 0; i < p.N * p.out_pixels(); ++i)
            for (std::int64_t c = 0; c < p.Cout; ++c)
                py[i * p.Cout + c] = bias.data<const float>()[c] + (r ? r[i * p.Cout + c] : 0.0f);
        return y;
    }

    // The input as the staging reads it: channels-last or channels-first as it lies, except that an
    // input map (applied to runs of whole pixels) needs channels-last, and other views are copied.
    const bool has_map = fusion.in_scale.defined() || fusion.in_silu;
    const bool in_cl = is_channels_last(x_in);
    const bool pointwise = p.pointwise() && !has_map;
    const Tensor x = in_cl ? x_in : has_map ? channels_last(x_in) : x_in.contiguous();
    const Tensor in_scale = fusion.in_scale.defined() ? fusion.in_scale.contiguous() : Tensor{};
    const Tensor in_shift = fusion.in_shift.defined() ? fusion.in_shift.contiguous() : Tensor{};
    const Tensor w_rows = !pointwise && conv3d_engine() == Conv3dEngine::im2row ? tap_major(w) : Tensor{};

    const double flops = 2.0 * static_cast<double>(p.Cout) * static_cast<double>(p.K()) * static_cast<double>(p.out_pixels());
    std::optional<ThreadLimit> serial;
    if (flops < kSerialFlops && !in_parallel_region()) serial.emplace(1);

    const std::int64_t in_sample = p.Cin * p.T * p.H * p.W, out_sample = p.Cout * p.out_pixels();
    for (std::int64_t n = 0; n < p.N; ++n) {
        Source src{x.data<const float>() + n * in_sample, is_channels_last(x), {}};
        if (in_scale.defined()) {
            src.map.scale = in_scale.data<const float>() + n * p.Cin;
            src.map.shift = in_shift.data<const float>() + n * p.Cin;
        }
        src.map.silu = fusion.in_silu;
        const float* r = residual.defined() ? residual.data<const float>() + n * out_sample : nullptr;
        float* y_n = y.data<float>() + n * out_sample;
        if (pointwise) {
            run_pointwise(p, src, w.raw_data(), bias.data<const float>(), r, y_n);
            continue;
        }
#ifdef HYVIDEO_HAS_ONEDNN
        if (conv3d_engine() == Conv3dEngine::onednn) {
            try {
                run_onednn(p, src, w.raw_data(), bias.data<const float>(), r, y_n);
            } catch (const dnnl::error& e) {
                throw Error(hyvideo::detail::concat("conv3d (oneDNN): input ", shape_str(x.shape()), ", weight ",
                                                    shape_str(w.shape()), " ", dtype_name(p.operands), " failed: ", e.what()));
            }
            continue;
        }
#endif
        run_im2row(p, src, w_rows.raw_data(), bias.data<const float>(), r, y_n);
    }
    return y;
}

// The definition, for tests: every output element summed in double over the padded input, with the
// input map applied first (its SiLU through the same vector code as the fast paths) and the operands
// rounded to bf16 when the weight is bf16 (the rounding the fast paths apply). Returns channels-first.
inline Tensor conv3d_naive(const Tensor& x_in, const Tensor& weight, const Tensor& bias, const Conv3dSpec& spec,
                           const Conv3dFusion& fusion = {}) {
    using namespace conv3d_internal;
    const Tensor w = weight.to(DType::f32);
    const Problem p = make_problem(x_in, weight, bias, spec, fusion);
    // The mapped input, computed element by element.
    Tensor x = x_in.contiguous().clone();
    const std::int64_t S = p.T * p.H * p.W;
    for (std::int64_t nc = 0; nc < p.N * p.Cin; ++nc) {
        ChannelMap m;
        if (fusion.in_scale.defined()) {
            m.scale = fusion.in_scale.contiguous().data<const float>() + nc;
            m.shift = fusion.in_shift.contiguous().data<const float>() + nc;
        }
        m.per_channel = false;
        m.silu = fusion.in_silu;
        float* row = x.data<float>() + nc * S;
        for (std::int64_t i = 0; i < S; ++i) map_channels(row + i, 1, row + i, 1, DType::f32, 1, 1, m);
    }
    const bool round = weight.dtype() == DType::bf16;
    Tensor y = Tensor::empty({p.N, p.Cout, p.To, p.Ho, p.Wo});
    const float* px = x.data<const float>();
    const float* pw = w.data<const float>();
    float* py = y.data<float>();
    const Tensor res = fusion.residual.defined() ? fusion.residual.contiguous() : Tensor{};
    auto operand = [&](float v) { return round ? bf16_to_f32(f32_to_bf16(v)) : v; };
    const auto [st, sh, sw] = p.stride;
    parallel_for(0, p.N * p.Cout, [&](std::int64_t nc) {
        const std::int64_t n = nc / p.Cout, co = nc % p.Cout;
        for (std::int64_t t = 0; t < p.To; ++t)
            for (std::int64_t h = 0; h < p.Ho; ++h)
                for (std::int64_t ww = 0; ww < p.Wo; ++ww) {
                    const std::int64_t o = ((nc * p.To + t) * p.Ho + h) * p.Wo + ww;
                    double acc = bias.defined() ? bias.data<const float>()[co] : 0.0;
                    if (res.defined()) acc += res.data<const float>()[o];
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
                    py[o] = static_cast<float>(acc);
                }
    });
    return y;
}

}  // namespace hyvideo::cpu_detail
