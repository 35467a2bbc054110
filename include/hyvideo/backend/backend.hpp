#pragma once
// The backend concept: what a component may ask of the device it runs on.
//
// Components are templates over a backend type B and touch tensors only through B's static
// primitives, so the same component source runs on the CPU (hyvideo::cpu) and on CUDA
// (hyvideo::cuda, a later backend). A backend adds a primitive by providing it here and in every
// backend; components never loop over raw memory.
#include <concepts>
#include <utility>

#include "hyvideo/backend/attention_mask.hpp"
#include "hyvideo/backend/rope_layout.hpp"
#include "hyvideo/core/tensor.hpp"
// VAE
#include <array>

#include "hyvideo/backend/conv3d_spec.hpp"

namespace hyvideo {

template <class B>
concept Backend = requires(const Tensor& t, const Shape& s, float f, std::int64_t n, const AttentionMask& m) {
    // Operand contracts, as the CPU backend implements them (tests/backend/test_conformance.cpp checks
    // each one): unless a line says otherwise, operands are f32 views with any strides (a strided
    // view may be copied first), results are new f32 tensors, and "contiguous" results are dense.
    { B::device } -> std::convertible_to<Device>;  // where every tensor the backend returns lives
    // memory
    { B::empty(s, DType::f32) } -> std::same_as<Tensor>;  // uninitialised, contiguous, any dtype
    { B::zeros(s) } -> std::same_as<Tensor>;       // f32 zeros, contiguous
    { B::zeros(s, DType::bf16) } -> std::same_as<Tensor>;  // zeros of any dtype, contiguous
    { B::full(s, f) } -> std::same_as<Tensor>;     // an f32 tensor of one value, made on the device
    { B::upload(t) } -> std::same_as<Tensor>;      // host tensor -> device (f32 stays as is), any dtype, bits kept
    { B::download(t) } -> std::same_as<Tensor>;    // device tensor -> host, dtype and bits kept (a view may stay one)
    // stored weight (a host tensor of any float dtype) -> contiguous device tensor of that dtype,
    // converted as PyTorch's .to() converts (round to nearest even); integer dtypes throw
    { B::weight(t, DType::f32) } -> std::same_as<Tensor>;
    // the same, converting into `reuse` (a tensor of that shape and dtype no one else holds) when a
    // conversion is needed: streamed layers reuse one layer's buffers instead of fresh memory each time.
    // A `reuse` that is undefined, strided or of another shape or dtype is ignored (as weight()).
    { B::weight_into(t, DType::f32, t) } -> std::same_as<Tensor>;
    { B::contiguous(t) } -> std::same_as<Tensor>;  // materialise a strided view of any dtype (t itself if dense)
    { B::to_float(t) } -> std::same_as<Tensor>;    // any dtype -> f32 as PyTorch's .to(); an f32 t is returned as is
    // any dtype and strides, converted as PyTorch's .to() (floats round to nearest even); t if already that dtype
    { B::cast(t, DType::bf16) } -> std::same_as<Tensor>;
    // parts of one dtype and rank, equal in every dim but dim (negative counts from the end), views allowed
    // -> contiguous, of their dtype
    { B::cat(std::vector<Tensor>{}, n) } -> std::same_as<Tensor>;
    // linear algebra
    // x·Wᵀ + b over the last dim: x f32 [..., in], any strides (rows of one stride are read in place);
    // W [out, in] f32, bf16 (x is rounded to bf16 once, products accumulated in f32) or f16 (widened);
    // b f32 [out] or undefined -> f32 [..., out], contiguous
    { B::linear(t, t, t) } -> std::same_as<Tensor>;
    // elementwise: f32 of any strides -> f32 of the same shape, contiguous
    { B::silu(t) } -> std::same_as<Tensor>;
    { B::gelu_tanh(t) } -> std::same_as<Tensor>;   // PyTorch's GELU(approximate="tanh")
    { B::gelu(t) } -> std::same_as<Tensor>;        // exact (erf) GELU
    { B::quick_gelu(t) } -> std::same_as<Tensor>;  // x·sigmoid(1.702x), CLIP's
    // add, sub, mul: NumPy broadcasting of two f32 tensors (0-d and views included) -> the broadcast
    // shape, contiguous, one IEEE rounding per element
    { B::add(t, t) } -> std::same_as<Tensor>;
    { B::sub(t, t) } -> std::same_as<Tensor>;
    { B::mul(t, t) } -> std::same_as<Tensor>;
    { B::scale(t, f) } -> std::same_as<Tensor>;
    { B::affine(t, f, f) } -> std::same_as<Tensor>;  // a·x + b, rounded after the product as scale-then-add is
    // normalisation and modulation
    // over the last dim C: (x − mean)/√(biased var + eps)·w + b, w and b f32 [C], both or neither (no affine)
    { B::layer_norm(t, t, t, f) } -> std::same_as<Tensor>;
    // over the last dim C: x/√(mean(x²) + eps)·w, w f32 [C] or undefined
    { B::rms_norm(t, t, f) } -> std::same_as<Tensor>;
    // x [B, L, C]; shift, scale, gate f32 [B, C] with unit stride along C (any row stride: chunks of
    // one modulation output), broadcast over the L tokens -> [B, L, C], contiguous
    { B::modulate(t, t, t) } -> std::same_as<Tensor>;   // x·(1 + scale) + shift
    { B::gated_add(t, t, t) } -> std::same_as<Tensor>;  // x + gate·y, y like x (no tanh)
    // reductions and attention
    // x [B, L, C], weights w [B, L] (a 0/1 mask or any weights, Σ_l w ≠ 0) -> [B, C]: Σ_l w·x / Σ_l w
    { B::masked_mean(t, t) } -> std::same_as<Tensor>;
    // x f32 [N, ...] with more than one element per sample -> N values, each over all of x[n]
    { B::sample_std(t) } -> std::same_as<std::vector<double>>;  // unbiased, per sample, on the host
    // x f32, any strides, at least one element -> mean of |x| over every element, summed in double, on
    // the host (a step cache's change signal)
    { B::mean_abs(t) } -> std::same_as<double>;
    // q [B, S, H, D], k and v [B, S, H_kv, D] with H a multiple of H_kv (grouped-query: query head h
    // reads key/value head h / (H / H_kv)) -> [B, S, H, D]; f32 views of any strides (read in place
    // when unit-stride along D), softmax(q·kᵀ·scale) over the keys the mask allows, result contiguous;
    // operands (default f32) bf16: q, k, v and the probabilities rounded to bf16 before the two products,
    // f32 accumulation and softmax (a backend without a bf16 path may compute in f32 instead)
    { B::attention(t, t, t, m, f) } -> std::same_as<Tensor>;
    { B::attention(t, t, t, m, f, DType::bf16) } -> std::same_as<Tensor>;
    // positional and time embeddings
    // x [B, S, H, D], D even, any strides but unit along D; cos, sin f32 [S, D] or [B, S, D]; the
    // pairing of the layout (rope_layout.hpp) -> [B, S, H, D], contiguous
    { B::apply_rope(t, t, t, RopeLayout::interleaved) } -> std::same_as<Tensor>;
    // table [V, D] of any float dtype, ids int64 on the host (negative: a zero row) -> f32 [..., D]
    { B::embedding(t, t) } -> std::same_as<Tensor>;
    // t f32 [N] -> [N, dim]: [cos(t·f_i), sin(t·f_i)], f_i = exp(−ln(max_period)·i/(dim/2)) in f32
    // arithmetic, i < dim/2; an odd dim gets a zero last column
    { B::timestep_embedding(t, n, f) } -> std::same_as<Tensor>;
    // VAE
    // x [N, Cin, T, H, W] f32, any strides; weight [Cout, Cin, kT, kH, kW] f32, bf16 (x rounded to bf16,
    // f32 accumulation) or f16 (widened); bias f32 [Cout] or undefined; spec and fusion as in
    // conv3d_spec.hpp -> f32 [N, Cout, T', H', W'] (channels-last strides on the CPU)
    { B::conv3d(t, t, t, Conv3dSpec{}, Conv3dFusion{}) } -> std::same_as<Tensor>;
    // x [N, C, ...] f32, any strides, C a multiple of groups; weight and bias f32 [C], both or neither;
    // biased variance per sample and group -> x's shape (and, on the CPU, its channels-last layout)
    { B::group_norm(t, t, t, n, f) } -> std::same_as<Tensor>;         // x [N, C, ...], groups, eps
    { B::group_norm_silu(t, t, t, n, f) } -> std::same_as<Tensor>;    // SiLU(group_norm(...)) in one pass
    { B::group_norm_affine(t, t, t, n, f) } -> std::same_as<Tensor>;  // [2, N, C]: the same as x·scale + shift
    // x [N, C, T, H, W] f32 -> [N, C, ft·T (causal: 1 + ft·(T − 1)), fh·H, fw·W], copies of the nearest
    { B::upsample_nearest(t, std::array<std::int64_t, 3>{}, true) } -> std::same_as<Tensor>;  // causal: frame 0 in space only
    // a, b f32 of one shape -> a·(1 − y/n) + b·(y/n) at index y along dim, n its size (the weights in double,
    // rounded to f32)
    { B::blend(t, t, n) } -> std::same_as<Tensor>;  // tile seam cross-fade along a dim
    { B::assign(t, t) } -> std::same_as<void>;      // write into a view: f32 dst and src of one shape, any strides
    { B::clamp(t, f, f) } -> std::same_as<Tensor>;  // min(max(x, lo), hi) with lo <= hi, NaN kept
    { B::exp(t) } -> std::same_as<Tensor>;
    // streams
    // Each thread queues its calls on its current stream, the backend's default stream until use_stream
    // selects another; work queued on different streams may overlap on the device (a copy engine
    // uploading the next block's weights while the compute engine runs this one). Every primitive above
    // returns when its result is complete, so a tensor made on one stream may be handed to another
    // thread and read on that thread's stream with no event between them. Stream is a copyable handle;
    // a default-constructed one names the default stream. On a backend that computes on the calling
    // thread (cpu, thrust-omp) a stream is only a name and the overlap comes from the threads.
    { B::new_stream() } -> std::same_as<typename B::Stream>;
    // selects the calling thread's stream and returns the one it replaces (StreamScope below restores it)
    { B::use_stream(B::new_stream()) } -> std::same_as<typename B::Stream>;
};

// The calling thread queues its backend calls on `stream` while the scope lives, then on the stream it
// used before.
template <Backend B>
class StreamScope {
public:
    explicit StreamScope(typename B::Stream stream) : previous_(B::use_stream(std::move(stream))) {}
    ~StreamScope() { B::use_stream(std::move(previous_)); }
    StreamScope(const StreamScope&) = delete;
    StreamScope& operator=(const StreamScope&) = delete;

private:
    typename B::Stream previous_;
};

}  // namespace hyvideo
