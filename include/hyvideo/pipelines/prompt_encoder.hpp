#pragma once
// From a prompt to what the DiT receives (PromptEmbeds), as HunyuanVideo's inference scripts do it:
// the prompt is stripped, the LLM encoder (T2V: Llama through a chat template; I2V: llava with the
// reference image) gives text_states and text_mask, and CLIP-L's pooled output of the raw prompt gives
// text_states_2. The negative prompt of classifier-free guidance defaults to the official one, and the
// I2V negative is encoded with a black image, as the official pipeline does.
//
// PromptEncoder::open takes the folders and files users download (text_encoder/encoder_files.hpp); the
// LLM streams its layers from the mapping, so the 8B model in bf16 runs in about one layer of memory
// above the mapped file. PromptEncoder::builtin gives tiny encoders with the real tokenizers for the
// built-in default model, so that `generate --prompt` works with no download.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hyvideo/models/config.hpp"
#include "hyvideo/nn/init.hpp"
#include "hyvideo/pipelines/hunyuan_video_pipeline.hpp"
#include "hyvideo/text/unicode.hpp"
#include "hyvideo/text_encoder/clip_text_encoder.hpp"
#include "hyvideo/text_encoder/encoder_files.hpp"
#include "hyvideo/text_encoder/llava_text_encoder.hpp"
#include "hyvideo/text_encoder/llm_text_encoder.hpp"

namespace hyvideo {

// hyvideo/constants.py NEGATIVE_PROMPT (T2V) and HunyuanVideo-I2V's NEGATIVE_PROMPT_I2V: what an empty or
// absent negative prompt becomes.
inline constexpr std::string_view kNegativePrompt =
    "Aerial view, aerial view, overexposed, low quality, deformation, a poor composition, bad hands, bad teeth, "
    "bad eyes, bad limbs, distortion";
inline constexpr std::string_view kNegativePromptI2V =
    "deformation, a poor composition and deformed video, bad teeth, bad eyes, bad limbs";

// Python's str.strip() without arguments: leading and trailing characters for which str.isspace() holds.
inline std::string python_strip(std::string_view s) {
    std::vector<std::pair<std::size_t, std::size_t>> spans;  // [begin, end) of each code point
    for (std::size_t i = 0; i < s.size();) {
        char32_t cp = 0;
        const std::size_t n = text::utf8_sequence(s, i, cp);
        HYVIDEO_CHECK(n > 0, "the prompt is not valid UTF-8 (byte ", i, ")");
        spans.emplace_back(i, i + n);
        i += n;
        (void)cp;
    }
    std::size_t first = 0, last = spans.size();
    auto space = [&](std::size_t k) {
        char32_t cp = 0;
        text::utf8_sequence(s, spans[k].first, cp);
        return text::is_python_space(cp);
    };
    while (first < last && space(first)) ++first;
    while (last > first && space(last - 1)) --last;
    if (first == last) return {};
    return std::string(s.substr(spans[first].first, spans[last - 1].second - spans[first].first));
}

// The official flags of the text encoders (sample_video.py), and where the tokenizers are when a file
// carries none (ComfyUI's single files, the built-in model).
struct PromptEncoderOptions {
    std::string prompt_template = "dit-llm-encode";
    std::string prompt_template_video;          // default: dit-llm-encode-video, or -video-i2v for I2V
    std::optional<PromptFormat> custom_template_video;  // a template of one's own, with its crop_start
    std::int64_t text_len = 256;
    std::int64_t hidden_state_skip_layer = 2;
    bool apply_final_norm = false;
    DType matmul = DType::f32;                  // the encoders' GEMM operands: f32 or bf16
    std::int64_t image_embed_interleave = 4;    // I2V: 4 for token_replace, 2 for latent_concat
    std::filesystem::path bundled_tokenizers;   // assets/tokenizers
};

template <Backend B>
class PromptEncoder {
public:
    // The released folders (or ComfyUI files): text_encoder (the Llama LLM; for I2V the llava folder) and
    // text_encoder_2 (CLIP-L). Notes (inferred configs, tokenizers taken from the bundle) go to `notes`.
    static PromptEncoder open(const std::filesystem::path& text_encoder, const std::filesystem::path& text_encoder_2,
                              bool i2v, const PromptEncoderOptions& o, std::vector<std::string>* notes = nullptr) {
        PromptEncoder e;
        const TextEncoderFiles llm = with_flag("--text-encoder", [&] {
            return open_text_encoder(text_encoder, i2v ? TextEncoderKind::llava : TextEncoderKind::llama);
        });
        const TextEncoderFiles clip =
            with_flag("--text-encoder-2", [&] { return open_text_encoder(text_encoder_2, TextEncoderKind::clip_text); });
        for (const auto* f : {&llm, &clip})
            if (notes)
                for (const auto& n : f->config_notes) notes->push_back(f->folder.string() + ": " + n);

        e.llama_tokenizer_ = std::make_shared<text::LlamaTokenizer>(
            tokenizer_folder(llm.folder, "tokenizer.json", o.bundled_tokenizers / "llama3-llava", notes));
        e.clip_tokenizer_ = std::make_shared<text::ClipTokenizer>(
            tokenizer_folder(clip.folder, "vocab.json", o.bundled_tokenizers / "clip-vit-large-patch14", notes));
        if (i2v) {
            e.llava_.emplace(llm.llava_config());
            with_flag("--text-encoder", [&] {
                const std::filesystem::path pre = llm.folder / "preprocessor_config.json";
                if (std::filesystem::is_regular_file(pre))
                    e.llava_->processor = CLIPImageProcessor::from_json(read_json_file(pre, "preprocessor_config.json"),
                                                                        pre.string());
                e.llava_->model.vision_tower = load_part(e.llava_->model.vision_tower, *llm.weights,
                                                         "vision_tower.vision_model.", o.matmul);
                e.llava_->model.multi_modal_projector = load_part(e.llava_->model.multi_modal_projector, *llm.weights,
                                                                  "multi_modal_projector.", o.matmul);
                e.llava_->model.language_model.load_streamed(llm.weights, "language_model.model.", o.matmul);
                return 0;
            });
        } else {
            e.llm_.emplace(llm.llama_config());
            with_flag("--text-encoder", [&] {
                e.llm_->model.load_streamed(llm.weights, "model.", o.matmul);
                return 0;
            });
        }
        e.clip_.emplace(clip.clip_text_config());
        with_flag("--text-encoder-2", [&] {
            load_weights_strict(e.clip_->model, *clip.weights, "text_model.", o.matmul);
            return 0;
        });
        e.configure(o);
        return e;
    }

    // Tiny encoders of HunyuanVideo's exact structure whose widths are the DiT's text_states_dim and
    // text_states_dim_2, with deterministic pseudo-random weights and the real tokenizers.
    static PromptEncoder builtin(const HYVideoConfig& dit, bool i2v, const PromptEncoderOptions& o, std::uint64_t seed) {
        PromptEncoder e;
        e.llama_tokenizer_ = std::make_shared<text::LlamaTokenizer>(o.bundled_tokenizers / "llama3-llava");
        e.clip_tokenizer_ = std::make_shared<text::ClipTokenizer>(o.bundled_tokenizers / "clip-vit-large-patch14");
        const LlamaConfig llama = builtin_llama_config(dit.text_states_dim);
        if (i2v) {
            LlavaConfig c;
            c.text_config = llama;
            c.vision_config.hidden_size = 32;
            c.vision_config.intermediate_size = 64;
            c.vision_config.num_hidden_layers = 2;
            c.vision_config.num_attention_heads = 4;
            e.llava_.emplace(c);
            init_weights(e.llava_->model.vision_tower, seed + 1);
            init_weights(e.llava_->model.multi_modal_projector, seed + 2);
            init_weights(e.llava_->model.language_model, seed + 3, builtin_gain);
        } else {
            e.llm_.emplace(llama);
            init_weights(e.llm_->model, seed + 3, builtin_gain);
        }
        CLIPTextConfig clip;
        clip.hidden_size = dit.text_states_dim_2;
        clip.intermediate_size = 2 * dit.text_states_dim_2;
        clip.num_hidden_layers = 2;
        clip.num_attention_heads = 4;
        e.clip_.emplace(clip);
        init_weights(e.clip_->model, seed + 4, builtin_gain);
        // open() loads weights in the compute dtype; these were made in f32.
        if (o.matmul != DType::f32) {
            if (e.llm_) set_matmul_dtype(e.llm_->model, o.matmul);
            if (e.llava_) set_matmul_dtype(e.llava_->model, o.matmul);
            set_matmul_dtype(e.clip_->model, o.matmul);
        }
        e.configure(o);
        return e;
    }

    // The built-in encoders' query and key projections are drawn kBuiltinQueryKeyGain times wider than
    // init_weights' default. At the default scale the query-key products are so small that every head
    // spreads its attention evenly over the tokens before it, RoPE has nothing to act on, and word order
    // hardly shows in the states: "from top to bottom" and "from bottom to top" came out 5x closer than
    // two colours, and the DiT (whose text tokens carry no position) could not tell the directions apart.
    // Sharper heads see RoPE's relative positions, and with a gain of 4 the two orders differ as much as
    // two colours do (tools/builtin_model/train.py trains the built-in DiT on these states).
    static constexpr float kBuiltinQueryKeyGain = 4.0f;
    static float builtin_gain(const std::string& name) {
        return name.ends_with("q_proj.weight") || name.ends_with("k_proj.weight") ? kBuiltinQueryKeyGain : 1.0f;
    }

    static LlamaConfig builtin_llama_config(std::int64_t hidden) {
        LlamaConfig c;  // llava-llama-3-8b's vocabulary, RoPE and norm; 4 layers instead of 32
        c.hidden_size = hidden;
        c.intermediate_size = 2 * hidden;
        c.num_hidden_layers = 4;
        c.num_attention_heads = 4;
        c.num_key_value_heads = 2;
        c.head_dim = hidden / 4;
        return c;
    }

    std::int64_t text_states_dim() const {
        return llava_ ? llava_->model.config.text_config.hidden_size : llm_->model.config.hidden_size;
    }
    std::int64_t text_states_dim_2() const { return clip_->model.config.hidden_size; }
    bool i2v() const { return llava_.has_value(); }

    // The encoders' outputs for one prompt (stripped first, as the official pipeline does). `kind`:
    // image for a one-frame video, else video. `image`: I2V's reference image, uint8 [H, W, 3]. Notes
    // (a prompt truncated to max_length) go to `notes`.
    PromptEmbeds encode(std::string_view prompt, PromptKind kind, const Tensor* image = nullptr,
                        std::vector<std::string>* notes = nullptr) const {
        const std::string p = python_strip(prompt);
        std::vector<std::size_t> cut_llm, cut_clip;
        PromptEmbeds e;
        if (llava_) {
            HYVIDEO_CHECK(image != nullptr, "the I2V text encoder needs the reference image");
            HYVIDEO_CHECK(kind == PromptKind::video, "the I2V text encoder encodes videos only (the official code)");
            const I2VPromptEmbeds out =
                llava_->encode(llava_->tokenize(*llama_tokenizer_, {p}, &cut_llm), llava_->image_features(*image));
            e.text_states = out.prompt_embeds;
            e.text_mask = out.prompt_mask;
        } else {
            const TextEncoderOutput out = llm_->encode(llm_->tokenize(*llama_tokenizer_, {p}, kind, &cut_llm), kind);
            e.text_states = out.hidden_state;
            e.text_mask = out.attention_mask;
        }
        e.text_states_2 = clip_->encode(clip_->tokenize(*clip_tokenizer_, {p}, &cut_clip));
        if (notes && cut_llm[0] > 0)
            notes->push_back("the prompt is " + std::to_string(cut_llm[0]) + " tokens longer than the LLM encoder's " +
                             std::to_string(llava_ ? llava_->max_length() : llm_->max_length()) +
                             " (template included); its end is cut off, as the official code does");
        if (notes && cut_clip[0] > 0)
            notes->push_back("the prompt is " + std::to_string(cut_clip[0]) +
                             " tokens longer than CLIP's 77; CLIP-L sees its first 75 tokens, as in the official code");
        return e;
    }

    // The negative prompt of classifier-free guidance: `negative`, or the official default when it is
    // empty; for I2V with a black image of the reference image's size.
    PromptEmbeds encode_negative(std::string_view negative, PromptKind kind, const Tensor* image = nullptr,
                                 std::vector<std::string>* notes = nullptr) const {
        const std::string_view text = python_strip(negative).empty() ? (llava_ ? kNegativePromptI2V : kNegativePrompt)
                                                                     : negative;
        if (!llava_) return encode(text, kind, nullptr, notes);
        HYVIDEO_CHECK(image != nullptr, "the I2V text encoder needs the reference image");
        const Tensor black = black_image(image->size(0), image->size(1));
        return encode(text, kind, &black, notes);
    }

private:
    PromptEncoder() = default;

    void configure(const PromptEncoderOptions& o) {
        HYVIDEO_CHECK(o.text_len >= 1 && o.text_len <= 65536, "--text-len ", o.text_len, ": must be in 1..65536");
        HYVIDEO_CHECK(o.image_embed_interleave >= 1 && o.image_embed_interleave <= 576, "image_embed_interleave ",
                      o.image_embed_interleave, ": must be in 1..576");
        auto video_template = [&](const char* fallback) {
            if (o.custom_template_video) return *o.custom_template_video;
            return PromptFormat(text::prompt_template(o.prompt_template_video.empty() ? fallback : o.prompt_template_video));
        };
        if (llm_) {
            llm_->prompt_template = text::prompt_template(o.prompt_template);
            llm_->prompt_template_video = video_template("dit-llm-encode-video");
            llm_->text_len = o.text_len;
            llm_->hidden_state_skip_layer = o.hidden_state_skip_layer;
            llm_->apply_final_norm = o.apply_final_norm;
            const std::int64_t L = llm_->model.config.num_hidden_layers;
            HYVIDEO_CHECK(o.hidden_state_skip_layer >= 0 && o.hidden_state_skip_layer <= L, "--hidden-state-skip-layer ",
                          o.hidden_state_skip_layer, ": must be in 0..", L, " for a ", L, "-layer LLM");
        }
        if (llava_) {
            llava_->prompt_template_video = video_template("dit-llm-encode-video-i2v");
            llava_->text_len = o.text_len;
            llava_->hidden_state_skip_layer = o.hidden_state_skip_layer;
            llava_->apply_final_norm = o.apply_final_norm;
            llava_->split.interleave = o.image_embed_interleave;
            const std::int64_t L = llava_->model.config.text_config.num_hidden_layers;
            HYVIDEO_CHECK(o.hidden_state_skip_layer >= 0 && o.hidden_state_skip_layer <= L, "--hidden-state-skip-layer ",
                          o.hidden_state_skip_layer, ": must be in 0..", L, " for a ", L, "-layer LLM");
        }
    }

    // An error while opening or loading one encoder, prefixed with the flag that named it.
    template <class F>
    static auto with_flag(const char* flag, F&& f) {
        try {
            return f();
        } catch (const Error& e) {
            throw Error(std::string(flag) + ": " + e.what());
        }
    }

    template <class M>
    static M load_part(M part, const WeightSource& src, const std::string& prefix, DType matmul) {
        load_weights_strict(part, src, prefix, matmul);
        return part;
    }

    // The folder's own tokenizer files when it has them (the released folders do), else the bundle's.
    static std::filesystem::path tokenizer_folder(const std::filesystem::path& folder, const char* file,
                                                  const std::filesystem::path& bundled, std::vector<std::string>* notes) {
        std::error_code ec;
        if (std::filesystem::is_regular_file(folder / file, ec)) return folder;
        if (notes)
            notes->push_back(folder.string() + " has no " + file + "; using the tokenizer bundled with hyvideo (" +
                             bundled.string() + ")");
        return bundled;
    }

    std::optional<LLMTextEncoder<B>> llm_;
    std::optional<LlavaTextEncoder<B>> llava_;
    std::optional<CLIPTextEncoder<B>> clip_;
    std::shared_ptr<text::LlamaTokenizer> llama_tokenizer_;
    std::shared_ptr<text::ClipTokenizer> clip_tokenizer_;
};

}  // namespace hyvideo
