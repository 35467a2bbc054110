#pragma once
// llava (transformers' LlavaForConditionalGeneration as 4.39.3 runs it): a CLIP vision tower, a
// two-layer GELU projector into the LLM's width, and the Llama LLM, whose input sequence has the
// projected image rows spliced in where the prompt has its `<image>` token. HunyuanVideo-I2V encodes
// the prompt and the reference image together with it (xtuner/llava-llama-3-8b-v1_1-transformers).
//
// Parameter names are the llava folder's: `vision_tower.vision_model.*`, `multi_modal_projector.*`,
// `language_model.model.*` (`language_model.lm_head.weight` is in the file and unused).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hyvideo/nn/activation.hpp"
#include "hyvideo/nn/linear.hpp"
#include "hyvideo/text_encoder/clip_vision_model.hpp"
#include "hyvideo/text_encoder/llama.hpp"

namespace hyvideo {

// linear_2(GELU(linear_1(x))): vision width -> LLM width.
template <Backend B>
struct LlavaMultiModalProjector {
    using backend = B;
    Linear<B> linear_1, linear_2;

    LlavaMultiModalProjector() = default;
    LlavaMultiModalProjector(std::int64_t vision_hidden, std::int64_t text_hidden)
        : linear_1(vision_hidden, text_hidden), linear_2(text_hidden, text_hidden) {}

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        linear_1.parameters(prefix + "linear_1.", visit);
        linear_2.parameters(prefix + "linear_2.", visit);
    }

    Tensor forward(const Tensor& x) const { return linear_2.forward(GELU::apply<B>(linear_1.forward(x))); }
};

// The LLM's input after the image rows are spliced in (transformers 4.39's legacy
// _merge_input_ids_with_image_features, one image per row).
struct LlavaMerged {
    Tensor inputs_embeds;   // [N, S - 1 + P, D] on the device
    Tensor attention_mask;  // int64 [N, S - 1 + P] on the host: the text mask, 1 on the image rows
    Tensor position_ids;    // int64 [N, S - 1 + P] on the host: cumsum(mask) - 1, and 1 where the mask is 0
};

template <Backend B>
struct LlavaForConditionalGeneration {
    using backend = B;
    LlavaConfig config;
    CLIPVisionModel<B> vision_tower;  // vision_tower.vision_model
    LlavaMultiModalProjector<B> multi_modal_projector;
    LlamaModel<B> language_model;  // language_model.model

    LlavaForConditionalGeneration() = default;
    explicit LlavaForConditionalGeneration(const LlavaConfig& c)
        : config(c), vision_tower(c.vision_config),
          multi_modal_projector(c.vision_config.hidden_size, c.text_config.hidden_size), language_model(c.text_config) {}

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        vision_tower.parameters(prefix + "vision_tower.vision_model.", visit);
        multi_modal_projector.parameters(prefix + "multi_modal_projector.", visit);
        language_model.parameters(prefix + "language_model.model.", visit);
    }

    // Loads every part strictly under its prefix; language_model.lm_head.weight, in the file but not
    // part of the encoder, is left alone.
    void load(const WeightSource& source, const std::string& prefix = "", DType matmul = DType::f32) {
        load_weights_strict(vision_tower, source, prefix + "vision_tower.vision_model.", matmul);
        load_weights_strict(multi_modal_projector, source, prefix + "multi_modal_projector.", matmul);
        load_weights_strict(language_model, source, prefix + "language_model.model.", matmul);
    }

    // Loads the vision tower and projector now and streams the LLM (LlamaModel::load_streamed).
    void load_streamed(std::shared_ptr<const WeightSource> source, const std::string& prefix = "",
                       DType matmul = DType::f32) {
        HYVIDEO_CHECK(source, "LlavaForConditionalGeneration::load_streamed: no weight source");
        load_weights_strict(vision_tower, *source, prefix + "vision_tower.vision_model.", matmul);
        load_weights_strict(multi_modal_projector, *source, prefix + "multi_modal_projector.", matmul);
        language_model.load_streamed(std::move(source), prefix + "language_model.model.", matmul);
    }

    // The vision tower's hidden_states[vision_feature_layer] [N, P + 1, Dv] (CLS first).
    Tensor vision_hidden_state(const Tensor& pixel_values) const {
        return vision_tower.hidden_state(pixel_values, config.vision_feature_layer);
    }

    // pixel_values [N, 3, 336, 336] on the host -> image features [N, P, D]: the "default" strategy drops
    // the CLS row before the projector.
    Tensor image_features(const Tensor& vision_hidden) const {
        return multi_modal_projector.forward(vision_hidden.slice(1, 1, vision_hidden.size(1)));
    }

    // ids, attention_mask: int64 [N, S] on the host, each row with exactly one image token;
    // image_features [N, P, D] on the device.
    LlavaMerged merge(const Tensor& ids, const Tensor& attention_mask, const Tensor& image_features) const {
        HYVIDEO_CHECK(ids.dim() == 2 && ids.dtype() == DType::i64, "llava: ids must be int64 [N, S], got ",
                      shape_str(ids.shape()));
        HYVIDEO_CHECK(attention_mask.shape() == ids.shape() && attention_mask.dtype() == DType::i64,
                      "llava: attention_mask must be int64 ", shape_str(ids.shape()));
        const std::int64_t N = ids.size(0), S = ids.size(1);
        HYVIDEO_CHECK(image_features.dim() == 3 && image_features.size(0) == N &&
                          image_features.size(2) == config.text_config.hidden_size,
                      "llava: image features ", shape_str(image_features.shape()), " for ", N, " prompts of width ",
                      config.text_config.hidden_size);
        const std::int64_t P = image_features.size(1), M = S - 1 + P;
        const Tensor id = ids.contiguous(), mask = attention_mask.contiguous();
        const auto* pid = id.data<const std::int64_t>();
        const auto* pm = mask.data<const std::int64_t>();

        // Padding tokens are embedded as zero rows (negative ids to B::embedding).
        Tensor text_ids = Tensor::empty({N, S}, DType::i64);
        auto* tid = text_ids.data<std::int64_t>();
        std::vector<std::int64_t> image_at(static_cast<std::size_t>(N), -1);
        for (std::int64_t n = 0; n < N; ++n) {
            for (std::int64_t s = 0; s < S; ++s) {
                const std::int64_t v = pid[n * S + s];
                tid[n * S + s] = v == config.pad_token_id ? -1 : v;
                if (v == config.image_token_index) {
                    HYVIDEO_CHECK(image_at[static_cast<std::size_t>(n)] < 0, "llava: prompt ", n,
                                  " has more than one image token ", config.image_token_index);
                    image_at[static_cast<std::size_t>(n)] = s;
                }
            }
            HYVIDEO_CHECK(image_at[static_cast<std::size_t>(n)] >= 0, "llava: prompt ", n, " has no image token ",
                          config.image_token_index, " (the I2V template puts one after the system header)");
        }
        const Tensor text = language_model.embed(text_ids);

        LlavaMerged out;
        out.attention_mask = Tensor::empty({N, M}, DType::i64);
        out.position_ids = Tensor::empty({N, M}, DType::i64);
        auto* om = out.attention_mask.data<std::int64_t>();
        auto* op = out.position_ids.data<std::int64_t>();
        std::vector<Tensor> rows;
        for (std::int64_t n = 0; n < N; ++n) {
            const std::int64_t at = image_at[static_cast<std::size_t>(n)];
            const Tensor row = text.select(0, n);
            rows.push_back(B::cat({row.slice(0, 0, at), image_features.select(0, n), row.slice(0, at + 1, S)}, 0));
            std::int64_t* m = om + n * M;
            for (std::int64_t s = 0; s < at; ++s) m[s] = pm[n * S + s];
            for (std::int64_t p = 0; p < P; ++p) m[at + p] = 1;
            for (std::int64_t s = at + 1; s < S; ++s) m[s - 1 + P] = pm[n * S + s];
            std::int64_t running = 0;
            for (std::int64_t j = 0; j < M; ++j) {
                running += m[j];
                op[n * M + j] = m[j] == 0 ? 1 : running - 1;
            }
        }
        out.inputs_embeds = B::cat(rows, 0).reshape({N, M, config.text_config.hidden_size});
        return out;
    }

    // The LLM's hidden_states[index] of a merged sequence (LlamaModel::hidden_state).
    Tensor hidden_state(const LlavaMerged& merged, std::int64_t index,
                        const std::function<void(std::int64_t, const Tensor&)>& observe = {}) const {
        const RotaryTables host = llama_rotary_tables(merged.position_ids, config.text_config.head_dim,
                                                      config.text_config.rope_theta);
        const RotaryTables rope{B::upload(host.cos), B::upload(host.sin)};
        return language_model.hidden_state(merged.inputs_embeds, rope, AttentionMask::causal(merged.attention_mask),
                                           index, observe);
    }
};

}  // namespace hyvideo
