#pragma once
// The text-encoder flags shared by `hyvideo generate` and `hyvideo encode-text` (official
// sample_video.py names where they exist), and the two commands that work on text alone:
//   encode-text   a prompt (and negative prompt) through the encoders into a --text-embeds file
//   tokenize      token ids as JSON, one object per text (what the encoders would receive)
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/io/atomic_file.hpp"
#include "hyvideo/io/image.hpp"
#include "hyvideo/io/json_file.hpp"
#include "hyvideo/pipelines/default_model.hpp"
#include "hyvideo/pipelines/prompt_encoder.hpp"
#include "hyvideo/pipelines/text_embeds.hpp"

namespace hyvideo::cli {

// The data the command ships (assets/: the tokenizers, the built-in model): beside an installed command
// (<prefix>/bin/hyvideo finds <prefix>/share/hyvideo/<sub>, where `cmake --install` puts it), else the
// source tree the command was built from, so that a build works in place without an install step.
inline std::string default_asset_dir(const std::string& sub) {
    std::error_code ec;
    const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        const std::filesystem::path installed = exe.parent_path().parent_path() / "share" / "hyvideo" / sub;
        if (std::filesystem::is_directory(installed, ec)) return installed.string();
    }
    return (std::filesystem::path(HYVIDEO_ASSETS_DIR) / sub).string();
}

inline std::string default_tokenizers_dir() { return default_asset_dir("tokenizers"); }

struct TextEncoderArgs {
    std::optional<std::string> prompt, neg_prompt;
    std::string text_encoder, text_encoder_2;
    std::string prompt_template = "dit-llm-encode";
    std::string prompt_template_video;  // a template name or a JSON file; default by T2V / I2V
    std::int64_t text_len = 256;
    std::int64_t hidden_state_skip_layer = 2;
    bool apply_final_norm = false;
    std::string text_encoder_precision = "f32";
    std::string tokenizers = default_tokenizers_dir();

    bool uses_encoders() const { return prompt.has_value(); }
};

inline void add_text_encoder_options(CLI::App* g, TextEncoderArgs& t) {
    g->add_option("--prompt", t.prompt, "the prompt (encoded by --text-encoder and --text-encoder-2, or by the "
                                        "built-in model's tiny encoders)");
    g->add_option("--neg-prompt", t.neg_prompt, "negative prompt for --cfg-scale > 1 (empty: the official default)");
    g->add_option("--text-encoder", t.text_encoder, "the LLM encoder: the released text_encoder folder, ComfyUI's "
                                                    "llava_llama3 file (fp16 or fp8_scaled); for image-to-video the "
                                                    "llava folder (text_encoder_i2v)");
    g->add_option("--text-encoder-2", t.text_encoder_2, "CLIP-L: the released text_encoder_2 folder "
                                                        "(clip-vit-large-patch14) or ComfyUI's clip_l.safetensors");
    g->add_option("--prompt-template", t.prompt_template, "LLM template for one-frame videos")->capture_default_str();
    g->add_option("--prompt-template-video", t.prompt_template_video,
                  "LLM template for videos: a name (dit-llm-encode-video; I2V: dit-llm-encode-video-i2v) or a JSON "
                  "file {\"template\": \"...{}...\", \"crop_start\": N}");
    g->add_option("--text-len", t.text_len, "prompt tokens the LLM encoder keeps")->capture_default_str();
    g->add_option("--hidden-state-skip-layer", t.hidden_state_skip_layer,
                  "use the LLM's hidden state this many layers before the last")
        ->capture_default_str();
    g->add_flag("--apply-final-norm", t.apply_final_norm, "apply the LLM's final norm to that hidden state");
    g->add_option("--text-encoder-precision", t.text_encoder_precision,
                  "encoder compute: f32, or bf16 (bf16 GEMM operands, f32 accumulation)")
        ->check(CLI::IsMember({"f32", "bf16"}))
        ->capture_default_str();
    g->add_option("--tokenizers", t.tokenizers, "the bundled tokenizer data, used where a file carries none")
        ->capture_default_str();
}

namespace text_detail {

// A built-in template by name; an unknown name is refused naming the flag that gave it.
inline const text::PromptTemplate& named_template(const std::string& name, const char* flag) {
    try {
        return text::prompt_template(name);
    } catch (const Error& e) {
        throw Error(std::string(flag) + ": " + e.what());
    }
}

// --prompt-template-video as a name, or a JSON file with "template" and "crop_start".
inline std::optional<PromptFormat> custom_template(const std::string& value) {
    if (value.empty()) return std::nullopt;
    for (const auto& t : text::kPromptTemplates)
        if (t.name == value) return std::nullopt;
    std::error_code ec;
    HYVIDEO_CHECK(std::filesystem::exists(value, ec), "--prompt-template-video '", value,
                  "': neither a template name (dit-llm-encode-video, dit-llm-encode-video-i2v, dit-llm-encode, "
                  "dit-llm-encode-i2v) nor a file");
    const nlohmann::json j = read_json_file(value, "--prompt-template-video", 1u << 20);
    HYVIDEO_CHECK(j.is_object() && j.contains("template") && j.at("template").is_string() && j.contains("crop_start") &&
                      j.at("crop_start").is_number_integer(),
                  "--prompt-template-video '", value, "': expected {\"template\": \"...{}...\", \"crop_start\": N}");
    try {
        return PromptFormat(value, j.at("template").get<std::string>(), j.at("crop_start").get<std::int64_t>());
    } catch (const Error& e) {
        throw Error("--prompt-template-video '" + value + "': " + e.what());
    }
}

}  // namespace text_detail

inline PromptEncoderOptions prompt_encoder_options(const TextEncoderArgs& t, const std::string& i2v_condition_type) {
    PromptEncoderOptions o;
    o.prompt_template = t.prompt_template;
    (void)text_detail::named_template(o.prompt_template, "--prompt-template");  // an unknown name is refused now
    o.custom_template_video = text_detail::custom_template(t.prompt_template_video);
    if (!o.custom_template_video) o.prompt_template_video = t.prompt_template_video;
    if (!o.prompt_template_video.empty()) (void)text::prompt_template(o.prompt_template_video);
    o.text_len = t.text_len;
    o.hidden_state_skip_layer = t.hidden_state_skip_layer;
    o.apply_final_norm = t.apply_final_norm;
    o.matmul = t.text_encoder_precision == "bf16" ? DType::bf16 : DType::f32;
    o.image_embed_interleave = i2v_condition_type == "latent_concat" ? 2 : 4;  // HunyuanVideo-I2V's choice
    o.bundled_tokenizers = t.tokenizers;
    return o;
}

// The reference image as the I2V encoder takes it: uint8 [H, W, 3].
inline Tensor image_tensor(const Frames& f) { return Tensor::from_vector<std::uint8_t>({f.height, f.width, 3}, f.rgb); }

// Opens the encoders named by the flags (or, for `builtin_dit`, the built-in tiny ones) and encodes the
// prompt and, when `negative`, the negative prompt. Prints notes and the time taken.
inline TextEmbedsFile encode_prompts(const TextEncoderArgs& t, const HYVideoConfig* builtin_dit, bool i2v,
                                     const std::string& i2v_condition_type, const Frames* picture, PromptKind kind,
                                     bool negative, std::int64_t want_dim, std::int64_t want_dim_2) {
    HYVIDEO_CHECK(t.prompt.has_value(), "no --prompt");
    const PromptEncoderOptions o = prompt_encoder_options(t, i2v_condition_type);
    std::vector<std::string> notes;
    const auto t0 = std::chrono::steady_clock::now();
    TextEmbedsFile out;
    {
        const PromptEncoder<cpu> enc = builtin_dit ? PromptEncoder<cpu>::builtin(*builtin_dit, i2v, o, kDefaultWeightSeed + 7)
                                                   : PromptEncoder<cpu>::open(t.text_encoder, t.text_encoder_2, i2v, o, &notes);
        HYVIDEO_CHECK(want_dim <= 0 || enc.text_states_dim() == want_dim, "--text-encoder gives ", enc.text_states_dim(),
                      "-wide states, the DiT takes ", want_dim, " (text_states_dim)");
        HYVIDEO_CHECK(want_dim_2 <= 0 || enc.text_states_dim_2() == want_dim_2, "--text-encoder-2 gives ",
                      enc.text_states_dim_2(), "-wide pooled states, the DiT takes ", want_dim_2, " (text_states_dim_2)");
        for (const auto& n : notes) fmt::print("note: {}\n", n);
        notes.clear();
        const Tensor image = picture ? image_tensor(*picture) : Tensor{};
        out.prompt = enc.encode(*t.prompt, kind, picture ? &image : nullptr, &notes);
        if (negative) out.negative = enc.encode_negative(t.neg_prompt.value_or(""), kind, picture ? &image : nullptr, &notes);
    }
    for (const auto& n : notes) fmt::print("note: {}\n", n);
    const auto mask = out.prompt.text_mask.to_vector();
    fmt::print("encoded the prompt{} in {:.1f} s ({} of {} text rows valid)\n", negative ? " and the negative prompt" : "",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
               std::count(mask.begin(), mask.end(), 1.0f), mask.size());
    return out;
}

// ---- encode-text ------------------------------------------------------------------------------------------

struct EncodeTextArgs {
    TextEncoderArgs text;
    std::string output;
    std::int64_t video_length = 129;
    std::string i2v_image_path;
    std::string i2v_condition_type = "token_replace";
    bool negative = false;
};

inline CLI::App* add_encode_text(CLI::App& app, EncodeTextArgs& a) {
    auto* g = app.add_subcommand("encode-text", "Encode a prompt with the text encoders into a --text-embeds file");
    g->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    add_text_encoder_options(g, a.text);
    g->add_option("-o,--output", a.output, "the safetensors file to write")->required();
    g->add_option("--video-length", a.video_length, "1 selects --prompt-template (one frame), else the video template")
        ->capture_default_str();
    g->add_option("--i2v-image-path", a.i2v_image_path, "image-to-video: the reference image, for the llava encoder");
    g->add_option("--i2v-condition-type", a.i2v_condition_type, "token_replace (image rows thinned 4x) or "
                                                                "latent_concat (2x)")
        ->check(CLI::IsMember({"token_replace", "latent_concat"}))
        ->capture_default_str();
    g->add_flag("--negative", a.negative, "also encode the negative prompt (--neg-prompt, or the official default)");
    return g;
}

inline int run_encode_text(const EncodeTextArgs& a) {
    HYVIDEO_CHECK(a.text.prompt.has_value(), "encode-text needs --prompt");
    // Neither encoder named: the built-in model's tiny encoders, as `generate` uses them.
    const bool builtin = a.text.text_encoder.empty() && a.text.text_encoder_2.empty();
    HYVIDEO_CHECK(builtin || (!a.text.text_encoder.empty() && !a.text.text_encoder_2.empty()),
                  "encode-text needs both --text-encoder and --text-encoder-2, or neither for the built-in model's encoders");
    HYVIDEO_CHECK(a.video_length >= 1 && a.video_length <= 4097 && (a.video_length - 1) % 4 == 0, "--video-length ",
                  a.video_length, ": must be 4k+1 (1, 5, ..., 129) and at most 4097");
    AtomicFile::check_target(a.output);
    const bool i2v = !a.i2v_image_path.empty();
    std::optional<Frames> picture;
    if (i2v) {
        try {
            picture = read_image(a.i2v_image_path);
        } catch (const Error& e) {
            throw Error(std::string("--i2v-image-path: ") + e.what());
        }
    }
    const PromptKind kind = a.video_length == 1 && !i2v ? PromptKind::image : PromptKind::video;
    const HYVideoConfig builtin_dit = default_dit_config();
    const TextEmbedsFile e = encode_prompts(a.text, builtin ? &builtin_dit : nullptr, i2v, a.i2v_condition_type, picture ? &*picture : nullptr,
                                            kind, a.negative || a.text.neg_prompt.has_value(), 0, 0);
    std::map<std::string, std::string> meta{{"prompt", *a.text.prompt},
                                            {"text_encoder", builtin ? "built-in" : a.text.text_encoder},
                                            {"text_encoder_2", builtin ? "built-in" : a.text.text_encoder_2},
                                            {"data_type", kind == PromptKind::video ? "video" : "image"}};
    if (e.negative) meta["negative_prompt"] = a.text.neg_prompt.value_or("");
    if (i2v) meta["i2v_image_path"] = a.i2v_image_path;
    write_text_embeds(a.output, e, meta);
    fmt::print("wrote {}: text_states {}, text_states_2 {}{}\n", a.output, shape_str(e.prompt.text_states.shape()),
               shape_str(e.prompt.text_states_2.shape()), e.negative ? ", and the negative_* ones" : "");
    return 0;
}

// ---- tokenize -----------------------------------------------------------------------------------------------

struct TokenizeArgs {
    std::vector<std::string> texts;
    std::string prompt_template = "dit-llm-encode-video";
    std::int64_t text_len = 256;
    std::string tokenizers = default_tokenizers_dir();
};

inline CLI::App* add_tokenize(CLI::App& app, TokenizeArgs& a) {
    auto* g = app.add_subcommand("tokenize", "Print the token ids of texts as JSON (one object per line)");
    g->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    g->add_option("texts", a.texts, "the texts (prompts)")->required();
    g->add_option("--prompt-template", a.prompt_template,
                  "the LLM template the text goes into, or 'none' for the bare Llama ids (BOS, no padding)")
        ->capture_default_str();
    g->add_option("--text-len", a.text_len, "prompt tokens of the template's max_length")->capture_default_str();
    g->add_option("--tokenizers", a.tokenizers, "the tokenizer data (llama3-llava/, clip-vit-large-patch14/)")
        ->capture_default_str();
    return g;
}

inline int run_tokenize(const TokenizeArgs& a) {
    HYVIDEO_CHECK(a.text_len >= 1 && a.text_len <= 65536, "--text-len ", a.text_len, ": must be in 1..65536");
    const bool bare = a.prompt_template == "none";
    const text::PromptTemplate* tpl = bare ? nullptr : &text_detail::named_template(a.prompt_template, "--prompt-template");
    const std::filesystem::path dir = a.tokenizers;
    const text::LlamaTokenizer llama(dir / "llama3-llava");
    const text::ClipTokenizer clip(dir / "clip-vit-large-patch14");
    for (const auto& t : a.texts) {
        nlohmann::ordered_json j;
        j["text"] = t;
        if (bare) {
            j["llama"] = {{"input_ids", llama.encode(t)}};
        } else {
            const text::TokenizedText ids = llama.encode_prompt(*tpl, t, static_cast<std::size_t>(a.text_len));
            j["llama"] = {{"template", std::string(tpl->name)},
                          {"crop_start", tpl->crop_start},
                          {"max_length", ids.input_ids.size()},
                          {"input_ids", ids.input_ids},
                          {"attention_mask", ids.attention_mask},
                          {"truncated", ids.truncated}};
        }
        const text::TokenizedText c = clip.encode(t);
        j["clip"] = {{"input_ids", c.input_ids}, {"attention_mask", c.attention_mask}, {"truncated", c.truncated}};
        fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
    return 0;
}

}  // namespace hyvideo::cli
