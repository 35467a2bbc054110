#pragma once
// HunyuanVideo's prompt templates for the LLM text encoder (hyvideo/constants.py, PROMPT_TEMPLATE): the
// user prompt goes into a Llama-3 chat turn after a system instruction, and the encoder later drops the
// first `crop_start` hidden states, the tokens before the prompt (BOS included), so the DiT sees only
// the prompt's tokens.
//
// The tokenizer's max_length is text_len + crop_start of the *video* template, even when the image
// template is used: 256 + 95 = 351 for T2V, 256 + 103 = 359 for I2V (hyvideo/text_encoder TextEncoder).
//
// Two quirks are kept as the constants have them: dit-llm-encode-i2v really has 38 tokens before the
// prompt but says 36 (the template is never used: I2V encodes video only), and the I2V video template
// has "<|eot_id|>\n\n<|start_header_id|>", one token (271) more than the T2V ones.
#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include "hyvideo/core/error.hpp"

namespace hyvideo::text {

struct PromptTemplate {
    std::string_view name;      // the key in PROMPT_TEMPLATE
    std::string_view text;      // a Python format string with one "{}"
    std::size_t crop_start;     // tokens before the prompt, as the constants state them
};

// HunyuanVideo's default text_len (sample_video.py --text-len): prompt tokens the DiT receives.
inline constexpr std::size_t kDefaultTextLen = 256;

inline constexpr std::array<PromptTemplate, 4> kPromptTemplates{{
    {"dit-llm-encode",
     "<|start_header_id|>system<|end_header_id|>\n\nDescribe the image by detailing the color, shape, size, texture, "
     "quantity, text, spatial relationships of the objects and background:<|eot_id|>"
     "<|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|>",
     36},
    {"dit-llm-encode-video",
     "<|start_header_id|>system<|end_header_id|>\n\nDescribe the video by detailing the following aspects: "
     "1. The main content and theme of the video."
     "2. The color, shape, size, texture, quantity, text, and spatial relationships of the objects."
     "3. Actions, events, behaviors temporal relationships, physical movement changes of the objects."
     "4. background environment, light, style and atmosphere."
     "5. camera angles, movements, and transitions used in the video:<|eot_id|>"
     "<|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|>",
     95},
    {"dit-llm-encode-i2v",
     "<|start_header_id|>system<|end_header_id|>\n\n<image>\nDescribe the image by detailing the color, shape, size, "
     "texture, quantity, text, spatial relationships of the objects and background:<|eot_id|>"
     "<|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|>"
     "<|start_header_id|>assistant<|end_header_id|>\n\n",
     36},
    {"dit-llm-encode-video-i2v",
     "<|start_header_id|>system<|end_header_id|>\n\n<image>\nDescribe the video by detailing the following aspects "
     "according to the reference image: "
     "1. The main content and theme of the video."
     "2. The color, shape, size, texture, quantity, text, and spatial relationships of the objects."
     "3. Actions, events, behaviors temporal relationships, physical movement changes of the objects."
     "4. background environment, light, style and atmosphere."
     "5. camera angles, movements, and transitions used in the video:<|eot_id|>\n\n"
     "<|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|>"
     "<|start_header_id|>assistant<|end_header_id|>\n\n",
     103},
}};

inline const PromptTemplate& prompt_template(std::string_view name) {
    for (const auto& t : kPromptTemplates)
        if (t.name == name) return t;
    std::string known;
    for (const auto& t : kPromptTemplates) known += (known.empty() ? "" : ", ") + std::string(t.name);
    throw Error(::hyvideo::detail::concat("prompt template '", name, "': unknown (known: ", known, ")"));
}

// The tokenizer max_length HunyuanVideo uses with a template: text_len + crop_start of the video template
// of the same family (T2V or I2V), which is also what the image template of that family is given.
inline std::size_t template_max_length(const PromptTemplate& t, std::size_t text_len = kDefaultTextLen) {
    const bool i2v = t.name.size() >= 4 && t.name.substr(t.name.size() - 4) == "-i2v";
    return text_len + prompt_template(i2v ? "dit-llm-encode-video-i2v" : "dit-llm-encode-video").crop_start;
}

// Python's `format_string.format(value)` for format strings whose fields are "{}" (once: a second
// automatic field would need a second value) or "{0}" (any number of times): "{{" and "}}" are literal
// braces, and the value is inserted verbatim, so braces in a prompt stay as they are. What Python
// refuses is refused; names, indices other than 0, format specs and conversions are not supported.
inline std::string python_format(std::string_view format, std::string_view value) {
    std::string out;
    out.reserve(format.size() + value.size());
    bool automatic = false, manual = false;
    for (std::size_t i = 0; i < format.size(); ++i) {
        const char c = format[i];
        if (c == '{') {
            if (i + 1 < format.size() && format[i + 1] == '{') {
                out.push_back('{');
                ++i;
                continue;
            }
            const std::size_t close = format.find('}', i);
            HYVIDEO_CHECK(close != std::string_view::npos, "format string: single '{' at ", i, " is not closed");
            const std::string_view field = format.substr(i + 1, close - i - 1);
            HYVIDEO_CHECK(field.empty() || field == "0", "format string: field '{", field,
                          "}' is not supported (only {} and {0}, for the one prompt)");
            if (field.empty()) {
                HYVIDEO_CHECK(!automatic, "format string: a second '{}' at ", i, " needs a second value");
                automatic = true;
            } else {
                manual = true;
            }
            HYVIDEO_CHECK(!(automatic && manual), "format string: '{}' and '{0}' cannot be mixed (at ", i, ")");
            out += value;
            i = close;
        } else if (c == '}') {
            HYVIDEO_CHECK(i + 1 < format.size() && format[i + 1] == '}', "format string: single '}' at ", i);
            out.push_back('}');
            ++i;
        } else {
            out.push_back(c);
        }
    }
    return out;
}

// template.format(prompt), as TextEncoder.apply_text_to_template does for a string template.
inline std::string apply_template(const PromptTemplate& t, std::string_view prompt) {
    return python_format(t.text, prompt);
}

}  // namespace hyvideo::text
