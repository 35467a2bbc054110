// From a prompt to what the DiT receives, step by step, with the text encoders' real structure at a
// tiny width (random weights, so this runs in a second without a download; with the released folders,
// PromptEncoder<cpu>::open(text_encoder, text_encoder_2, ...) does the same with the real ones).
//
//   1. the prompt goes into the chat template (dit-llm-encode-video) and is tokenized to
//      text_len + crop_start = 256 + 95 = 351 ids, right-padded with <pad>;
//   2. the Llama LLM runs its first L - 2 layers (hidden_state_skip_layer = 2: hidden_states[-3]);
//   3. the first crop_start = 95 rows (BOS and the system turn) are dropped: text_states [1, 256, D] and
//      text_mask [1, 256], whose ones are the prompt's tokens and its closing <|eot_id|>;
//   4. CLIP-L encodes the bare prompt at 77 tokens; its final-norm row at the EOS is text_states_2.
//
//   example_prompt_to_embeddings ["PROMPT"]
#include <cstdio>
#include <string>

#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/nn/init.hpp"
#include "hyvideo/text_encoder/clip_text_encoder.hpp"
#include "hyvideo/text_encoder/llm_text_encoder.hpp"

using namespace hyvideo;

int main(int argc, char** argv) {
    const std::string prompt = argc > 1 ? argv[1] : "A cat walks on the grass, realistic style.";
    const std::string assets = std::string(HYVIDEO_SOURCE_DIR) + "/assets/tokenizers/";
    const text::LlamaTokenizer llama_tokenizer(assets + "llama3-llava");
    const text::ClipTokenizer clip_tokenizer(assets + "clip-vit-large-patch14");

    // llava-llama-3-8b's structure (GQA, RoPE theta 500000, the 128320-token vocabulary) at width 64,
    // 4 layers instead of 32; the released model is LlamaConfig{} (4096 wide).
    LlamaConfig small;
    small.hidden_size = 64;
    small.intermediate_size = 128;
    small.num_hidden_layers = 4;
    small.num_attention_heads = 4;
    small.num_key_value_heads = 2;
    small.head_dim = 16;
    LLMTextEncoder<cpu> llm(small);
    init_weights(llm.model, 1);

    // 1. template and tokens
    const TokenBatch tokens = llm.tokenize(llama_tokenizer, {prompt}, PromptKind::video);
    const auto* ids = tokens.input_ids.data<const std::int64_t>();
    const auto* mask = tokens.attention_mask.data<const std::int64_t>();
    std::int64_t real = 0;
    for (std::int64_t i = 0; i < tokens.input_ids.size(1); ++i) real += mask[i];
    std::printf("1. template %s: %lld ids (%lld real, the rest <pad> %lld); the prompt starts at %lld: id %lld\n",
                llm.prompt_template_video.name.c_str(), static_cast<long long>(tokens.input_ids.size(1)),
                static_cast<long long>(real), static_cast<long long>(ids[tokens.input_ids.size(1) - 1]),
                static_cast<long long>(llm.prompt_template_video.crop_start),
                static_cast<long long>(ids[llm.prompt_template_video.crop_start]));

    // 2 and 3: the encoder; `observe` shows each hidden state it computes (only L - 2 layers run)
    const TextEncoderOutput out =
        llm.encode(tokens, PromptKind::video, [](std::int64_t i, const Tensor& h) {
            std::printf("2. hidden_states[%lld] %s\n", static_cast<long long>(i), shape_str(h.shape()).c_str());
        });
    const auto m = out.attention_mask.to_vector();
    std::int64_t valid = 0;
    for (float v : m) valid += v != 0.0f;
    std::printf("3. text_states %s, text_mask %s with %lld valid rows (the prompt and its <|eot_id|>)\n",
                shape_str(out.hidden_state.shape()).c_str(), shape_str(out.attention_mask.shape()).c_str(),
                static_cast<long long>(valid));

    // 4. CLIP-L text at width 32 (the released one: CLIPTextConfig{}, 768 wide)
    CLIPTextConfig clip_small;
    clip_small.hidden_size = 32;
    clip_small.intermediate_size = 64;
    clip_small.num_hidden_layers = 2;
    clip_small.num_attention_heads = 4;
    CLIPTextEncoder<cpu> clip(clip_small);
    init_weights(clip.model, 2);
    const TokenBatch clip_tokens = clip.tokenize(clip_tokenizer, {prompt});
    const auto pooled = clip.model.forward(clip_tokens.input_ids, clip_tokens.attention_mask);
    std::printf("4. CLIP: 77 ids, pooled at position %lld (the EOS, the largest id) -> text_states_2 %s\n",
                static_cast<long long>(pooled.pooled_index[0]), shape_str(pooled.pooler_output.shape()).c_str());
    return 0;
}
