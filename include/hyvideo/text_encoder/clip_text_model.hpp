#pragma once
// CLIP-L's text tower (transformers' CLIPTextModel): HunyuanVideo's text_encoder_2, whose pooled
// output becomes the DiT's `vector_in` input.
//
// Parameter names are those under `text_model.` in openai/clip-vit-large-patch14's model.safetensors.
#include <cstdint>
#include <string>
#include <vector>

#include "hyvideo/text_encoder/clip_encoder_layer.hpp"

namespace hyvideo {

template <Backend B>
struct CLIPTextModel {
    using backend = B;
    CLIPTextConfig config;
    Tensor token_embedding, position_embedding;  // embeddings.{token,position}_embedding.weight
    std::vector<CLIPEncoderLayer<B>> layers;      // encoder.layers
    LayerNorm<B> final_layer_norm;

    CLIPTextModel() = default;
    explicit CLIPTextModel(const CLIPTextConfig& c)
        : config(c), final_layer_norm(c.hidden_size, true, c.layer_norm_eps) {
        c.validate();
        for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) layers.emplace_back(c);
    }

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        visit(prefix + "embeddings.token_embedding.weight", Shape{config.vocab_size, config.hidden_size},
              token_embedding);
        visit(prefix + "embeddings.position_embedding.weight", Shape{config.max_position_embeddings, config.hidden_size},
              position_embedding);
        for (std::size_t i = 0; i < layers.size(); ++i)
            layers[i].parameters(prefix + "encoder.layers." + std::to_string(i) + ".", visit);
        final_layer_norm.parameters(prefix + "final_layer_norm.", visit);
    }

    struct Output {
        Tensor last_hidden_state;  // [N, S, hidden], after final_layer_norm
        Tensor pooler_output;      // [N, hidden]
        std::vector<std::int64_t> pooled_index;
    };

    // ids, attention_mask: int64 [N, S] on the host, S <= max_position_embeddings. The mask is the
    // official call's: causal attention restricted to keys with mask 1. The pooled row is
    // argmax(ids) (its first maximum): openai/clip-vit-large-patch14's config says eos_token_id 2, so
    // transformers takes its legacy branch, which finds the EOS 49407 as the largest id.
    Output forward(const Tensor& ids, const Tensor& attention_mask) const {
        HYVIDEO_CHECK(ids.dim() == 2 && ids.dtype() == DType::i64, "CLIPTextModel: ids must be int64 [N, S], got ",
                      shape_str(ids.shape()));
        const std::int64_t N = ids.size(0), S = ids.size(1);
        HYVIDEO_CHECK(S >= 1 && S <= config.max_position_embeddings, "CLIPTextModel: ", S,
                      " tokens, the model has ", config.max_position_embeddings, " positions");
        HYVIDEO_CHECK(!attention_mask.defined() || attention_mask.shape() == ids.shape(),
                      "CLIPTextModel: attention_mask ", shape_str(attention_mask.shape()), " for ids ",
                      shape_str(ids.shape()));
        // The position table is a rank-2 parameter, so the bf16 compute mode (loading with matmul bf16,
        // set_matmul_dtype) stores it in bf16 like the GEMM weights; the sum is taken in f32.
        Tensor h = B::add(B::embedding(token_embedding, ids), B::to_float(position_embedding.slice(0, 0, S)));
        const AttentionMask mask = attention_mask.defined() ? AttentionMask::causal(attention_mask) : AttentionMask::causal();
        for (const auto& layer : layers) h = layer.forward(h, mask);
        Output out;
        out.last_hidden_state = final_layer_norm.forward(h);

        const Tensor host_ids = ids.contiguous();
        const auto* id = host_ids.data<const std::int64_t>();
        std::vector<Tensor> rows;
        for (std::int64_t n = 0; n < N; ++n) {
            std::int64_t best = 0;
            for (std::int64_t s = 1; s < S; ++s)
                if (id[n * S + s] > id[n * S + best]) best = s;
            out.pooled_index.push_back(best);
            rows.push_back(out.last_hidden_state.select(0, n).slice(0, best, best + 1));
        }
        out.pooler_output = B::cat(rows, 0);
        return out;
    }
};

}  // namespace hyvideo
