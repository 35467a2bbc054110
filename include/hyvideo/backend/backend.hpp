#pragma once
// The backend concept: what a component may ask of the device it runs on.
//
// Components are templates over a backend type B and touch tensors only through B's static
// primitives, so the same component source runs on the CPU (hyvideo::cpu) and on CUDA
// (hyvideo::cuda, a later backend). A backend adds a primitive by providing it here and in every
// backend; components never loop over raw memory.
#include <concepts>

#include "hyvideo/backend/attention_mask.hpp"
#include "hyvideo/backend/rope_layout.hpp"
#include "hyvideo/core/tensor.hpp"
// VAE
#include <array>

#include "hyvideo/backend/conv3d_spec.hpp"

namespace hyvideo {

template <class B>
concept Backend = requires(const Tensor& t, const Shape& s, float f, std::int64_t n, const AttentionMask& m) {
    { B::device } -> std::convertible_to<Device>;
    // memory
    { B::empty(s, DType::f32) } -> std::same_as<Tensor>;
    { B::zeros(s) } -> std::same_as<Tensor>;
    { B::full(s, f) } -> std::same_as<Tensor>;     // an f32 tensor of one value, made on the device
    { B::upload(t) } -> std::same_as<Tensor>;      // host tensor -> device (f32 stays as is)
    { B::download(t) } -> std::same_as<Tensor>;    // device tensor -> host
    { B::weight(t, DType::f32) } -> std::same_as<Tensor>;  // stored weight -> device tensor of that dtype
    // the same, converting into `reuse` (a tensor of that shape and dtype no one else holds) when a
    // conversion is needed: streamed layers reuse one layer's buffers instead of fresh memory each time
    { B::weight_into(t, DType::f32, t) } -> std::same_as<Tensor>;
    { B::contiguous(t) } -> std::same_as<Tensor>;  // materialise a strided view
    { B::to_float(t) } -> std::same_as<Tensor>;    // any dtype -> f32
    { B::cast(t, DType::bf16) } -> std::same_as<Tensor>;
    { B::cat(std::vector<Tensor>{}, n) } -> std::same_as<Tensor>;
    // linear algebra
    { B::linear(t, t, t) } -> std::same_as<Tensor>;  // x·Wᵀ + b over the last dim
    // elementwise
    { B::silu(t) } -> std::same_as<Tensor>;
    { B::gelu_tanh(t) } -> std::same_as<Tensor>;
    { B::gelu(t) } -> std::same_as<Tensor>;        // exact (erf) GELU
    { B::quick_gelu(t) } -> std::same_as<Tensor>;  // x·sigmoid(1.702x), CLIP's
    { B::add(t, t) } -> std::same_as<Tensor>;
    { B::sub(t, t) } -> std::same_as<Tensor>;
    { B::mul(t, t) } -> std::same_as<Tensor>;
    { B::scale(t, f) } -> std::same_as<Tensor>;
    { B::affine(t, f, f) } -> std::same_as<Tensor>;  // a·x + b, rounded after the product as scale-then-add is
    // normalisation and modulation
    { B::layer_norm(t, t, t, f) } -> std::same_as<Tensor>;
    { B::rms_norm(t, t, f) } -> std::same_as<Tensor>;
    { B::modulate(t, t, t) } -> std::same_as<Tensor>;
    { B::gated_add(t, t, t) } -> std::same_as<Tensor>;
    // reductions and attention
    { B::masked_mean(t, t) } -> std::same_as<Tensor>;
    { B::sample_std(t) } -> std::same_as<std::vector<double>>;  // unbiased, per sample, on the host
    // q [B, S, H, D], k and v [B, S, H_kv, D] with H a multiple of H_kv (grouped-query: query head h
    // reads key/value head h / (H / H_kv)) -> [B, S, H, D]
    { B::attention(t, t, t, m, f) } -> std::same_as<Tensor>;
    // positional and time embeddings
    // x [B, S, H, D]; cos, sin [S, D] or [B, S, D]
    { B::apply_rope(t, t, t, RopeLayout::interleaved) } -> std::same_as<Tensor>;
    // table [V, D] of any float dtype, ids int64 on the host (negative: a zero row) -> f32 [..., D]
    { B::embedding(t, t) } -> std::same_as<Tensor>;
    { B::timestep_embedding(t, n, f) } -> std::same_as<Tensor>;
    // VAE
    { B::conv3d(t, t, t, Conv3dSpec{}, Conv3dFusion{}) } -> std::same_as<Tensor>;  // x [N, C, T, H, W], weight, bias
    { B::group_norm(t, t, t, n, f) } -> std::same_as<Tensor>;         // x [N, C, ...], groups, eps
    { B::group_norm_silu(t, t, t, n, f) } -> std::same_as<Tensor>;    // SiLU(group_norm(...)) in one pass
    { B::group_norm_affine(t, t, t, n, f) } -> std::same_as<Tensor>;  // [2, N, C]: the same as x·scale + shift
    { B::upsample_nearest(t, std::array<std::int64_t, 3>{}, true) } -> std::same_as<Tensor>;  // causal: frame 0 in space only
    { B::blend(t, t, n) } -> std::same_as<Tensor>;  // tile seam cross-fade along a dim
    { B::assign(t, t) } -> std::same_as<void>;      // write into a view
    { B::clamp(t, f, f) } -> std::same_as<Tensor>;
    { B::exp(t) } -> std::same_as<Tensor>;
};

}  // namespace hyvideo
