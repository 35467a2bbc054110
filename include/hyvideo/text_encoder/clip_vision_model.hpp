#pragma once
// CLIP ViT-L/14-336's image tower (transformers' CLIPVisionModel): the vision_tower of llava, which
// HunyuanVideo-I2V runs on the reference image.
//
// Parameter names are those under `vision_tower.vision_model.` in the llava folder. post_layernorm and
// the last layer are listed (they are in the file) but llava never runs them: it reads
// hidden_states[-2].
#include <cstdint>
#include <string>
#include <vector>

#include "hyvideo/text_encoder/clip_encoder_layer.hpp"

namespace hyvideo {

template <Backend B>
struct CLIPVisionModel {
    using backend = B;
    CLIPVisionConfig config;
    Tensor class_embedding;     // embeddings.class_embedding [hidden]
    Tensor patch_embedding;     // embeddings.patch_embedding.weight [hidden, 3, p, p], a conv without bias
    Tensor position_embedding;  // embeddings.position_embedding.weight [patches + 1, hidden]
    LayerNorm<B> pre_layrnorm;  // sic: the official spelling
    std::vector<CLIPEncoderLayer<B>> layers;  // encoder.layers
    LayerNorm<B> post_layernorm;

    CLIPVisionModel() = default;
    explicit CLIPVisionModel(const CLIPVisionConfig& c)
        : config(c), pre_layrnorm(c.hidden_size, true, c.layer_norm_eps),
          post_layernorm(c.hidden_size, true, c.layer_norm_eps) {
        c.validate();
        for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) layers.emplace_back(c);
    }

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        const std::int64_t D = config.hidden_size, p = config.patch_size;
        visit(prefix + "embeddings.class_embedding", Shape{D}, class_embedding);
        visit(prefix + "embeddings.patch_embedding.weight", Shape{D, config.num_channels, p, p}, patch_embedding);
        visit(prefix + "embeddings.position_embedding.weight", Shape{config.num_patches() + 1, D}, position_embedding);
        pre_layrnorm.parameters(prefix + "pre_layrnorm.", visit);
        for (std::size_t i = 0; i < layers.size(); ++i)
            layers[i].parameters(prefix + "encoder.layers." + std::to_string(i) + ".", visit);
        post_layernorm.parameters(prefix + "post_layernorm.", visit);
    }

    // pixel_values f32 [N, 3, image_size, image_size] on the host -> hidden_states[index] [N, patches + 1,
    // hidden], CLS first, in transformers' numbering: 0 is the pre_layrnorm output, i the output of
    // layer i. A negative index counts from the end (llava's vision_feature_layer, -2). Only the
    // layers up to `index` run.
    Tensor hidden_state(const Tensor& pixel_values, std::int64_t index) const {
        const auto L = static_cast<std::int64_t>(layers.size());
        const std::int64_t at = index < 0 ? L + 1 + index : index;
        HYVIDEO_CHECK(at >= 0 && at <= L, "CLIPVisionModel: hidden state ", index, " of a ", L, "-layer tower");
        Tensor h = pre_layrnorm.forward(embeddings(pixel_values));
        for (std::int64_t i = 0; i < at; ++i) h = layers[static_cast<std::size_t>(i)].forward(h, AttentionMask::full());
        return h;
    }

    // The patch convolution (kernel = stride = patch, no bias) as one GEMM over the image cut into
    // patches; then the class embedding in front and the position embeddings added.
    Tensor embeddings(const Tensor& pixel_values) const {
        const std::int64_t S = config.image_size, p = config.patch_size, C = config.num_channels,
                           D = config.hidden_size, g = S / p;
        HYVIDEO_CHECK(pixel_values.dim() == 4 && pixel_values.size(1) == C && pixel_values.size(2) == S &&
                          pixel_values.size(3) == S && pixel_values.dtype() == DType::f32,
                      "CLIPVisionModel: pixel_values must be float32 [N, ", C, ", ", S, ", ", S, "], got ",
                      shape_str(pixel_values.shape()));
        const std::int64_t N = pixel_values.size(0);
        // [N, C, g, p, g, p] -> [N, g, g, C, p, p]: each patch's C·p·p values in the kernel's order.
        const Tensor patches = pixel_values.reshape({N, C, g, p, g, p})
                                   .permute({0, 2, 4, 1, 3, 5})
                                   .contiguous()
                                   .reshape({N, g * g, C * p * p});
        const Tensor x = B::linear(B::upload(patches), patch_embedding.reshape({D, C * p * p}), Tensor{});
        std::vector<Tensor> parts;
        for (std::int64_t n = 0; n < N; ++n) {
            parts.push_back(B::to_float(class_embedding).reshape({1, 1, D}));
            parts.push_back(x.slice(0, n, n + 1));
        }
        // In f32 whatever the table's dtype (bf16 in the bf16 compute mode, as every rank-2 parameter).
        return B::add(B::cat(parts, 1).reshape({N, g * g + 1, D}), B::to_float(position_embedding));
    }
};

}  // namespace hyvideo
