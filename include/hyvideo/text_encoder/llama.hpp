#pragma once
// Llama as transformers' LlamaModel runs it: the LLM of llava-llama-3-8b, HunyuanVideo's text encoder
// (RMSNorm, grouped-query attention, rotary embedding in the rotate_half layout, SwiGLU MLP, no biases).
//
// Member names are the state_dict names of a LlamaForCausalLM's `model.` (the released text_encoder
// folder) so that `parameters()` lists exactly the file's tensors. The encoder never runs the last
// hidden_state_skip_layer layers; `hidden_state(index)` runs only the layers it needs.
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hyvideo/backend/attention_mask.hpp"
#include "hyvideo/nn/linear.hpp"
#include "hyvideo/nn/module.hpp"
#include "hyvideo/nn/rms_norm.hpp"
#include "hyvideo/text_encoder/config.hpp"
#include "hyvideo/text_encoder/rotary_tables.hpp"

namespace hyvideo {

template <Backend B>
struct LlamaAttention {
    using backend = B;
    std::int64_t num_heads = 0, num_key_value_heads = 0, head_dim = 0;
    Linear<B> q_proj, k_proj, v_proj, o_proj;

    LlamaAttention() = default;
    explicit LlamaAttention(const LlamaConfig& c)
        : num_heads(c.num_attention_heads), num_key_value_heads(c.num_key_value_heads), head_dim(c.head_dim),
          q_proj(c.hidden_size, c.num_attention_heads * c.head_dim, false),
          k_proj(c.hidden_size, c.num_key_value_heads * c.head_dim, false),
          v_proj(c.hidden_size, c.num_key_value_heads * c.head_dim, false),
          o_proj(c.num_attention_heads * c.head_dim, c.hidden_size, false) {}

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        q_proj.parameters(prefix + "q_proj.", visit);
        k_proj.parameters(prefix + "k_proj.", visit);
        v_proj.parameters(prefix + "v_proj.", visit);
        o_proj.parameters(prefix + "o_proj.", visit);
    }

    // x [N, S, hidden]; rope: device tables [S, D] or [N, S, D].
    Tensor forward(const Tensor& x, const RotaryTables& rope, const AttentionMask& mask) const {
        const std::int64_t N = x.size(0), S = x.size(1);
        const Tensor q = B::apply_rope(q_proj.forward(x).reshape({N, S, num_heads, head_dim}), rope.cos, rope.sin,
                                       RopeLayout::rotate_half);
        const Tensor k = B::apply_rope(k_proj.forward(x).reshape({N, S, num_key_value_heads, head_dim}), rope.cos,
                                       rope.sin, RopeLayout::rotate_half);
        const Tensor v = v_proj.forward(x).reshape({N, S, num_key_value_heads, head_dim});
        const Tensor attn = B::attention(q, k, v, mask, 1.0f / std::sqrt(static_cast<float>(head_dim)));
        return o_proj.forward(attn.reshape({N, S, num_heads * head_dim}));
    }
};

// down_proj(silu(gate_proj(x)) · up_proj(x)).
template <Backend B>
struct LlamaMLP {
    using backend = B;
    Linear<B> gate_proj, up_proj, down_proj;

    LlamaMLP() = default;
    explicit LlamaMLP(const LlamaConfig& c)
        : gate_proj(c.hidden_size, c.intermediate_size, false), up_proj(c.hidden_size, c.intermediate_size, false),
          down_proj(c.intermediate_size, c.hidden_size, false) {}

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        gate_proj.parameters(prefix + "gate_proj.", visit);
        up_proj.parameters(prefix + "up_proj.", visit);
        down_proj.parameters(prefix + "down_proj.", visit);
    }

    Tensor forward(const Tensor& x) const {
        return down_proj.forward(B::mul(B::silu(gate_proj.forward(x)), up_proj.forward(x)));
    }
};

template <Backend B>
struct LlamaDecoderLayer {
    using backend = B;
    RMSNorm<B> input_layernorm, post_attention_layernorm;
    LlamaAttention<B> self_attn;
    LlamaMLP<B> mlp;

    LlamaDecoderLayer() = default;
    explicit LlamaDecoderLayer(const LlamaConfig& c)
        : input_layernorm(c.hidden_size, c.rms_norm_eps), post_attention_layernorm(c.hidden_size, c.rms_norm_eps),
          self_attn(c), mlp(c) {}

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        self_attn.parameters(prefix + "self_attn.", visit);
        mlp.parameters(prefix + "mlp.", visit);
        input_layernorm.parameters(prefix + "input_layernorm.", visit);
        post_attention_layernorm.parameters(prefix + "post_attention_layernorm.", visit);
    }

    Tensor forward(const Tensor& x, const RotaryTables& rope, const AttentionMask& mask) const {
        const Tensor h = B::add(x, self_attn.forward(input_layernorm.forward(x), rope, mask));
        return B::add(h, mlp.forward(post_attention_layernorm.forward(h)));
    }
};

template <Backend B>
struct LlamaModel {
    using backend = B;
    LlamaConfig config;
    Tensor embed_tokens;  // embed_tokens.weight [vocab, hidden]
    std::vector<LlamaDecoderLayer<B>> layers;
    RMSNorm<B> norm;

    // Where the layers' weights are read from while they are streamed (load_streamed).
    struct StreamedWeights {
        std::shared_ptr<const WeightSource> source;
        std::string prefix;
        DType matmul = DType::f32;
    };
    std::optional<StreamedWeights> streamed;

    LlamaModel() = default;
    explicit LlamaModel(const LlamaConfig& c) : config(c), norm(c.hidden_size, c.rms_norm_eps) {
        c.validate();
        for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) layers.emplace_back(c);
    }

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        visit(prefix + "embed_tokens.weight", Shape{config.vocab_size, config.hidden_size}, embed_tokens);
        for (std::size_t i = 0; i < layers.size(); ++i)
            layers[i].parameters(prefix + "layers." + std::to_string(i) + ".", visit);
        norm.parameters(prefix + "norm.", visit);
    }

    // Checks `source` strictly (reading no weight), then keeps it: the embedding table stays in the
    // source as stored (a gather reads only the rows of the prompt) and each layer is read, converted
    // to its compute dtype and released when the forward reaches it. The 8B model in bf16 is 16 GB;
    // this way a forward holds one layer converted, about 0.9 GB in f32.
    void load_streamed(std::shared_ptr<const WeightSource> source, const std::string& prefix = "",
                       DType matmul = DType::f32) {
        HYVIDEO_CHECK(source, "LlamaModel::load_streamed: no weight source");
        check_weights_strict(*this, *source, prefix);
        const std::string table = prefix + "embed_tokens.weight", layer_prefix = prefix + "layers.";
        module_detail::load_parameters(*this, *source, prefix, matmul, [&](const std::string& name) {
            return name != table && !name.starts_with(layer_prefix);
        });
        embed_tokens = source->get(table);
        HYVIDEO_CHECK(is_floating(embed_tokens.dtype()), "'", table, "' is ", dtype_name(embed_tokens.dtype()),
                      ", not a float tensor");
        for (auto& layer : layers)
            layer.parameters("", [](const std::string&, const Shape&, Tensor& slot) { slot = {}; });
        scratch_.reset();
        streamed = StreamedWeights{std::move(source), prefix, matmul};
    }

    // ids int64 [N, S] on the host (negative: a zero row) -> [N, S, hidden].
    Tensor embed(const Tensor& ids) const { return B::embedding(embed_tokens, ids); }

    // transformers' output_hidden_states[index] for index in [0, L]: 0 is the embeddings, i the output
    // of layer i, and L the last layer's output after the final norm, exactly as LlamaModel numbers
    // them. Only `index` layers run. `observe(i, h)`, when given, sees hidden_states[0..index] as they
    // are produced (on the device).
    Tensor hidden_state(const Tensor& inputs_embeds, const RotaryTables& rope, const AttentionMask& mask,
                        std::int64_t index,
                        const std::function<void(std::int64_t, const Tensor&)>& observe = {}) const {
        const auto L = static_cast<std::int64_t>(layers.size());
        HYVIDEO_CHECK(index >= 0 && index <= L, "LlamaModel: hidden state ", index, " of a ", L, "-layer model");
        HYVIDEO_CHECK(inputs_embeds.dim() == 3 && inputs_embeds.size(2) == config.hidden_size,
                      "LlamaModel: inputs_embeds must be [N, S, ", config.hidden_size, "], got ",
                      shape_str(inputs_embeds.shape()));
        Tensor h = inputs_embeds;
        if (observe) observe(0, h);
        for (std::int64_t i = 0; i < index; ++i) {
            const auto& layer = layers[static_cast<std::size_t>(i)];
            if (streamed) {
                h = stream_in(layer, i).forward(h, rope, mask);
                streamed->source->release_pages();  // the mapped file never becomes resident as a whole
            } else {
                h = layer.forward(h, rope, mask);
            }
            if (i + 1 == L) h = norm.forward(h);
            if (observe) observe(i + 1, h);
        }
        return h;
    }

private:
    // Layer i's weights, converted into the buffers of the layer streamed before it (all layers have
    // the same shapes): fresh memory for every layer cost 0.33 s of an 1.1 s f32 layer. A forward is
    // therefore not reentrant while streaming.
    const LlamaDecoderLayer<B>& stream_in(const LlamaDecoderLayer<B>& structure, std::int64_t i) const {
        if (!scratch_) scratch_ = structure;
        load_weights_into(*scratch_, *streamed->source, streamed->prefix + "layers." + std::to_string(i) + ".",
                          streamed->matmul);
        return *scratch_;
    }
    mutable std::optional<LlamaDecoderLayer<B>> scratch_;
};

}  // namespace hyvideo
