#pragma once
// The parts a HunyuanVideo DiT is built from, as one bundle: the attention, the per-head QK norm, the
// positional embedding of the image tokens, the MLP activation of the blocks, and the text input path
// (the token refiner with its own parts, or a plain projection). HYVideoDiffusionTransformer<B, Parts>
// and its blocks read every choice from the bundle, so a variant is one alias:
//
//   using Variant = HYVideoDiffusionTransformer<cpu, HunyuanVideoParts::with_qk_norm<LayerNormQK>
//                                                                     ::with_text_input<TextProjection>>;
//
// Each slot is constrained by a concept below, so a part that lacks what the model calls is refused
// where the model type is named, not deep inside a forward. Parts with an official spelling
// (RMSNorm is qk_norm_type "rms", TextProjection is text_projection "linear", ...) also say which
// configuration fields they stand for: the model checks a given config against them, and
// `structured_config<Parts, B>(cfg)` (or the model's `structured(cfg)`) writes them into one
// (docs/architecture.md#variants).
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyvideo/backend/backend.hpp"
#include "hyvideo/core/error.hpp"
#include "hyvideo/models/config.hpp"
#include "hyvideo/nn/activation.hpp"
#include "hyvideo/nn/attention.hpp"
#include "hyvideo/nn/positional_embedding.hpp"
#include "hyvideo/nn/qk_norm.hpp"
#include "hyvideo/nn/rope3d.hpp"

namespace hyvideo {

// ---- what each slot must provide -----------------------------------------------------------------------

namespace parts_detail {
// A parameter visitor that does nothing: enough to ask whether a part lists its weights.
struct IgnoreParameters {
    void operator()(const std::string&, const Shape&, Tensor&) const {}
};
}  // namespace parts_detail

// q, k, v [B, S, H, D] and the batch's token layout -> [B, S, H, D] (nn/attention.hpp).
template <class A, class B>
concept AttentionPart = Backend<B> && requires(const Tensor& x, const TokenLayout& layout) {
    { A::template apply<B>(x, x, x, layout) } -> std::same_as<Tensor>;
};

// Rotates (or leaves) the image tokens' q or k [B, Li, H, D] given the RoPE tables.
template <class P, class B>
concept PositionalEmbeddingPart = Backend<B> && requires(const Tensor& x, const RopeTables& rope) {
    { P::template apply<B>(x, rope) } -> std::same_as<Tensor>;
};

// An elementwise activation (nn/activation.hpp).
template <class A, class B>
concept ActivationPart = Backend<B> && requires(const Tensor& x) {
    { A::template apply<B>(x) } -> std::same_as<Tensor>;
};

// A module with weights: copied (streamed blocks are copies), listed (parameters), applied (forward).
template <class M>
concept ModulePart = std::default_initializable<M> && std::copy_constructible<M> &&
                     requires(M& m) { m.parameters(std::string(), parts_detail::IgnoreParameters{}); };

// A per-head norm of q or k, built from the head dim.
template <class N>
concept QKNormPart = ModulePart<N> && std::constructible_from<N, std::int64_t> && requires(const N& n, const Tensor& x) {
    { n.forward(x) } -> std::same_as<Tensor>;
};

// The text input path: (states [B, L, text_states_dim], t [B], mask [B, L]) -> [B, L, hidden], and
// the same with the valid tokens per sample known on the host (no read-back); built either as the
// token refiner is (in, hidden, heads, depth, mlp_width_ratio, qkv_bias) or as a projection is (in, hidden).
template <class T>
concept TextInputPart = ModulePart<T> &&
                        (std::constructible_from<T, std::int64_t, std::int64_t, std::int64_t, std::int64_t, double, bool> ||
                         std::constructible_from<T, std::int64_t, std::int64_t>) &&
                        requires(const T& m, const Tensor& x, const std::vector<std::int64_t>& lengths) {
                            { m.forward(x, x, x) } -> std::same_as<Tensor>;
                            { m.forward(x, x, x, lengths) } -> std::same_as<Tensor>;
                        };

// ---- the configuration fields a part stands for -------------------------------------------------------

// Specialise these for a part with an official spelling; a part without one leaves the field unchecked.
template <class QKNorm>
struct QKNormSpelling {
    static constexpr std::optional<bool> qk_norm = std::nullopt;
    static constexpr std::optional<std::string_view> qk_norm_type = std::nullopt;
};
template <Backend B>
struct QKNormSpelling<RMSNorm<B>> {
    static constexpr std::optional<bool> qk_norm = true;
    static constexpr std::optional<std::string_view> qk_norm_type = "rms";
};
template <Backend B>
struct QKNormSpelling<LayerNormQK<B>> {
    static constexpr std::optional<bool> qk_norm = true;
    static constexpr std::optional<std::string_view> qk_norm_type = "layer";
};
template <Backend B>
struct QKNormSpelling<NoQKNorm<B>> {
    static constexpr std::optional<bool> qk_norm = false;
    static constexpr std::optional<std::string_view> qk_norm_type = std::nullopt;  // unused without a norm
};

template <class Activation>
struct ActivationSpelling {
    static constexpr std::optional<std::string_view> mlp_act_type = std::nullopt;
};
template <>
struct ActivationSpelling<GeluTanh> {
    static constexpr std::optional<std::string_view> mlp_act_type = "gelu_tanh";
};
template <>
struct ActivationSpelling<GELU> {
    static constexpr std::optional<std::string_view> mlp_act_type = "gelu";
};
template <>
struct ActivationSpelling<SiLU> {
    static constexpr std::optional<std::string_view> mlp_act_type = "silu";
};

template <class TextInput>
struct TextInputSpelling {
    static constexpr std::optional<std::string_view> text_projection = std::nullopt;
};

// ---- the bundles ----------------------------------------------------------------------------------------

// The text inputs (models/token_refiner.hpp, models/text_projection.hpp).
template <Backend B, class RefinerParts>
struct SingleTokenRefiner;
template <Backend B>
struct TextProjection;

template <Backend B, class RefinerParts>
struct TextInputSpelling<SingleTokenRefiner<B, RefinerParts>> {
    static constexpr std::optional<std::string_view> text_projection = "single_refiner";
};
template <Backend B>
struct TextInputSpelling<TextProjection<B>> {
    static constexpr std::optional<std::string_view> text_projection = "linear";
};

// The token refiner's own parts (official IndividualTokenRefinerBlock: no QK norm, a SiLU MLP).
template <template <class> class QKNorm_ = NoQKNorm, class MlpActivation_ = SiLU>
struct TokenRefinerParts {
    template <class B>
    using QKNorm = QKNorm_<B>;
    using MlpActivation = MlpActivation_;

    template <template <class> class N>
    using with_qk_norm = TokenRefinerParts<N, MlpActivation_>;
    template <class A>
    using with_mlp_activation = TokenRefinerParts<QKNorm_, A>;
};

// The token refiner built from `RefinerParts`, as a DiT's text input.
template <class RefinerParts>
struct RefinerTextInput {
    template <class B>
    using type = SingleTokenRefiner<B, RefinerParts>;
};

// The DiT's parts. HunyuanVideoParts (below) is the released model's choice of each; a variant
// exchanges parts with the with_* aliases, or derives from a bundle and redeclares a member.
template <class Attention_, template <class> class QKNorm_, class PositionalEmbedding_, class MlpActivation_,
          template <class> class TextInput_>
struct DiTParts {
    using Attention = Attention_;
    template <class B>
    using QKNorm = QKNorm_<B>;
    using PositionalEmbedding = PositionalEmbedding_;
    using MlpActivation = MlpActivation_;
    template <class B>
    using TextInput = TextInput_<B>;

    template <class A>
    using with_attention = DiTParts<A, QKNorm_, PositionalEmbedding_, MlpActivation_, TextInput_>;
    template <template <class> class N>
    using with_qk_norm = DiTParts<Attention_, N, PositionalEmbedding_, MlpActivation_, TextInput_>;
    template <class P>
    using with_positional_embedding = DiTParts<Attention_, QKNorm_, P, MlpActivation_, TextInput_>;
    template <class A>
    using with_mlp_activation = DiTParts<Attention_, QKNorm_, PositionalEmbedding_, A, TextInput_>;
    template <template <class> class T>
    using with_text_input = DiTParts<Attention_, QKNorm_, PositionalEmbedding_, MlpActivation_, T>;
    template <class RefinerParts>
    using with_refiner = with_text_input<RefinerTextInput<RefinerParts>::template type>;
};

// HunyuanVideo as released: flash-attn varlen attention, RMSNorm on q and k, 3D RoPE, GELU (tanh) MLPs,
// and the single token refiner (no QK norm, SiLU MLP) as the text input.
using HunyuanVideoParts =
    DiTParts<VarlenAttention, RMSNorm, Rope3DEmbedding, GeluTanh, RefinerTextInput<TokenRefinerParts<>>::template type>;

// Whether `P` has what a double or single stream block reads from it, each part what the block calls.
template <class P, class B>
concept BlockPartsFor = Backend<B> && AttentionPart<typename P::Attention, B> && QKNormPart<typename P::template QKNorm<B>> &&
                        PositionalEmbeddingPart<typename P::PositionalEmbedding, B> &&
                        ActivationPart<typename P::MlpActivation, B>;

// Whether `P` is what the token refiner reads: its QK norm and MLP activation.
template <class P, class B>
concept RefinerPartsFor = Backend<B> && QKNormPart<typename P::template QKNorm<B>> && ActivationPart<typename P::MlpActivation, B>;

// Whether `P` is a complete bundle for backend `B`: every slot present and each part what the model
// calls. HYVideoDiffusionTransformer<B, P> requires it.
template <class P, class B>
concept DiTPartsFor = BlockPartsFor<P, B> && TextInputPart<typename P::template TextInput<B>>;

// ---- the configuration and the parts ---------------------------------------------------------------------

// `c` with the structural fields the parts stand for written in (qk_norm, qk_norm_type, mlp_act_type,
// text_projection), the rest as given: how a preset becomes the configuration of a variant.
template <class P, Backend B>
    requires DiTPartsFor<P, B>
HYVideoConfig structured_config(HYVideoConfig c) {
    using QK = QKNormSpelling<typename P::template QKNorm<B>>;
    if constexpr (QK::qk_norm.has_value()) c.qk_norm = *QK::qk_norm;
    if constexpr (QK::qk_norm_type.has_value()) c.qk_norm_type = std::string(*QK::qk_norm_type);
    if constexpr (ActivationSpelling<typename P::MlpActivation>::mlp_act_type.has_value())
        c.mlp_act_type = std::string(*ActivationSpelling<typename P::MlpActivation>::mlp_act_type);
    if constexpr (TextInputSpelling<typename P::template TextInput<B>>::text_projection.has_value())
        c.text_projection = std::string(*TextInputSpelling<typename P::template TextInput<B>>::text_projection);
    return c;
}

// Throws unless `c`'s structural fields are the ones the parts stand for, naming the field, both
// values and structured_config as the way to write them in.
template <class P, Backend B>
    requires DiTPartsFor<P, B>
void check_structure(const HYVideoConfig& c) {
    const HYVideoConfig s = structured_config<P, B>(c);
    const auto same = [&](const char* field, const auto& given, const auto& parts) {
        HYVIDEO_CHECK(given == parts, "config ", field, " ", nlohmann::json(given).dump(), " but this model type is built with ",
                      field, " ", nlohmann::json(parts).dump(), " (the model type's structured(config) writes them in)");
    };
    same("qk_norm", c.qk_norm, s.qk_norm);
    if (c.qk_norm) same("qk_norm_type", c.qk_norm_type, s.qk_norm_type);
    same("mlp_act_type", c.mlp_act_type, s.mlp_act_type);
    same("text_projection", c.text_projection, s.text_projection);
}

}  // namespace hyvideo
