// Tokenizing a prompt as HunyuanVideo does, for both of its text encoders.
//
// The LLM encoder sees the prompt inside a chat template (dit-llm-encode-video for a video) padded to
// text_len + crop_start = 256 + 95 = 351 tokens; it later drops the first crop_start = 95 positions, the
// template's system turn, so the DiT receives the 256 positions from the prompt on. CLIP-L sees the bare
// prompt, at 77 tokens.
//
//   example_tokenize_prompt ["PROMPT"]   (default: a cat on the grass)
#include <cstdio>
#include <string>
#include <string_view>

#include "hyvideo/text/clip_tokenizer.hpp"
#include "hyvideo/text/llama_tokenizer.hpp"
#include "hyvideo/text/prompt_template.hpp"

using namespace hyvideo::text;

namespace {

// A token's bytes on one line: a newline as \n, and bytes that are not a whole UTF-8 character (byte-
// level BPE may split a character between tokens) as \xNN.
std::string shown(std::string_view bytes) {
    std::string s;
    for (std::size_t i = 0; i < bytes.size();) {
        char32_t cp = 0;
        const std::size_t n = utf8_sequence(bytes, i, cp);
        if (n == 0) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned char>(bytes[i]));
            s += hex;
            ++i;
        } else {
            s += cp == '\n' ? std::string("\\n") : std::string(bytes.substr(i, n));
            i += n;
        }
    }
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string prompt = argc > 1 ? argv[1] : "A cat walks on the grass, realistic style.";
    const std::string assets = std::string(HYVIDEO_SOURCE_DIR) + "/assets/tokenizers/";
    const LlamaTokenizer llama(assets + "llama3-llava");
    const ClipTokenizer clip(assets + "clip-vit-large-patch14");

    const PromptTemplate& video = prompt_template("dit-llm-encode-video");
    const TokenizedText t = llama.encode_prompt(video, prompt);  // max_length 256 + 95
    std::size_t real = 0;
    for (auto m : t.attention_mask) real += static_cast<std::size_t>(m);
    std::printf("LLM encoder, template %.*s: %zu ids, %zu real (mask 1), crop_start %zu\n",
                static_cast<int>(video.name.size()), video.name.data(), t.input_ids.size(), real, video.crop_start);
    std::printf("  the system turn (cropped away later): ids 0..%zu, e.g. %lld %lld %lld ...\n", video.crop_start - 1,
                static_cast<long long>(t.input_ids[0]), static_cast<long long>(t.input_ids[1]),
                static_cast<long long>(t.input_ids[2]));
    std::printf("  what the DiT receives, from position %zu:\n", video.crop_start);
    for (std::size_t i = video.crop_start; i < real; ++i)
        std::printf("    %3zu  %6lld  '%s'\n", i, static_cast<long long>(t.input_ids[i]),
                    shown(llama.id_to_token(t.input_ids[i])).c_str());
    if (real < t.input_ids.size())
        std::printf("    %3zu..%zu  <pad> %lld, mask 0\n", real, t.input_ids.size() - 1,
                    static_cast<long long>(llama.pad_id()));

    const TokenizedText c = clip.encode(prompt);
    std::printf("CLIP-L: %zu ids:", c.input_ids.size());
    for (std::size_t i = 0; i < c.input_ids.size() && c.attention_mask[i] == 1; ++i)
        std::printf(" %lld", static_cast<long long>(c.input_ids[i]));
    std::printf(" (then <|endoftext|> padding)\n");
    return 0;
}
