#pragma once
// The tokenizer of HunyuanVideo's LLM text encoder (llava-llama-3-8b): Llama 3's byte-level BPE, read
// from an HF tokenizer.json, encoding as transformers' LlamaTokenizerFast does
// (TextEncoder.text2tokens in hyvideo/text_encoder/__init__.py):
//
//   1. added tokens (<|begin_of_text|> ... <|eot_id|>, llava's <unk> <image> <pad>) are cut out wherever
//      they occur, the user's prompt included;
//   2. each stretch between them is split by the Llama 3 regex below;
//   3. a piece that is itself in the vocabulary is one token (ignore_merges); any other is BPE'd from its
//      UTF-8 bytes;
//   4. <|begin_of_text|> is prepended (the post-processor); with a max_length, the first max_length ids
//      are kept, BOS included, so truncation cuts the template's tail, and <pad> fills the rest, mask 0.
//
// The regex, (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
// \s*[\r\n]+|\s+(?!\S)|\s+, is implemented by hand (split_llama3): its alternatives, tried in order at
// each position with backtracking, reduce to a few scans over character classes. \s is White_Space;
// the contractions ignore case as Unicode simple folding does, so 's also matches 'S and 'ſ (U+017F).
//
// Only this configuration is implemented: a tokenizer.json with another pre-tokenizer, a normalizer,
// or added tokens that strip spaces is refused rather than tokenized differently from HF.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyvideo/core/error.hpp"
#include "hyvideo/text/added_tokens.hpp"
#include "hyvideo/text/bpe.hpp"
#include "hyvideo/text/byte_level.hpp"
#include "hyvideo/text/json_file.hpp"
#include "hyvideo/text/prompt_template.hpp"
#include "hyvideo/text/tokenized_text.hpp"
#include "hyvideo/text/unicode.hpp"

namespace hyvideo::text {

inline constexpr std::string_view kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

namespace detail {

enum : std::uint8_t { kLetter = 1, kNumber = 2, kSpace = 4, kNewline = 8 };

inline std::uint8_t llama3_class(char32_t cp) {
    const Category c = category(cp);
    return static_cast<std::uint8_t>((is_letter(c) ? kLetter : 0) | (is_number(c) ? kNumber : 0) |
                                     (is_white_space(cp) ? kSpace : 0) | (cp == '\r' || cp == '\n' ? kNewline : 0));
}

inline const std::array<std::uint8_t, 128> kLlama3AsciiClass = [] {
    std::array<std::uint8_t, 128> a{};
    for (char32_t c = 0; c < 128; ++c) a[c] = llama3_class(c);
    return a;
}();

// What a case-insensitive regex compares for the letters of the contractions (simple case folding).
inline char32_t fold_contraction_letter(char32_t c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c == 0x17F) return 's';  // LATIN SMALL LETTER LONG S folds to s
    return c;
}

// The end of the contraction (?i:'s|'t|'re|'ve|'m|'ll|'d) starting at i, or i if there is none.
inline std::size_t contraction_end(const char32_t* c, std::size_t n, std::size_t i) {
    if (c[i] != '\'' || i + 1 >= n) return i;
    const char32_t a = fold_contraction_letter(c[i + 1]);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if (i + 2 < n) {
        const char32_t b = fold_contraction_letter(c[i + 2]);
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    }
    return i;
}

// The end of the Llama 3 regex match starting at i (every position starts one: the alternatives
// together cover every character).
inline std::size_t llama3_match_end(const char32_t* c, const std::uint8_t* f, std::size_t n, std::size_t i) {
    const auto run = [&](std::size_t j, std::uint8_t cls) {
        while (j < n && (f[j] & cls)) ++j;
        return j;
    };
    if (const std::size_t e = contraction_end(c, n, i); e != i) return e;
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (f[i] & kLetter) return run(i, kLetter);
    if (!(f[i] & (kNumber | kNewline)) && i + 1 < n && (f[i + 1] & kLetter)) return run(i + 1, kLetter);
    // \p{N}{1,3}
    if (f[i] & kNumber) {
        std::size_t j = i + 1;
        while (j < n && j < i + 3 && (f[j] & kNumber)) ++j;
        return j;
    }
    //  ?[^\s\p{L}\p{N}]+[\r\n]*
    const std::size_t p = i + (c[i] == ' ' ? 1 : 0);
    constexpr std::uint8_t kWord = kSpace | kLetter | kNumber;
    if (p < n && !(f[p] & kWord)) {
        std::size_t j = p;
        while (j < n && !(f[j] & kWord)) ++j;
        return run(j, kNewline);
    }
    // Here c[i] is white space.
    const std::size_t j = run(i, kSpace);
    // \s*[\r\n]+: the run up to its last CR or LF
    for (std::size_t k = j; k > i; --k)
        if (f[k - 1] & kNewline) return k;
    // \s+(?!\S): all of the run at the end of the text, else all but its last character
    if (j == n || j - i < 2) return j;  // (a single space before a non-space falls to \s+)
    return j - 1;
}

}  // namespace detail

// Splits a stretch of text (between added tokens) into the Llama 3 regex's pieces: appends the end index
// (in code points) of each piece to `ends`.
inline void split_llama3(std::u32string_view text, std::vector<std::uint8_t>& classes, std::vector<std::size_t>& ends) {
    const std::size_t n = text.size();
    classes.resize(n);
    for (std::size_t i = 0; i < n; ++i)
        classes[i] = text[i] < 128 ? detail::kLlama3AsciiClass[text[i]] : detail::llama3_class(text[i]);
    for (std::size_t i = 0; i < n;) {
        i = detail::llama3_match_end(text.data(), classes.data(), n, i);
        ends.push_back(i);
    }
}

class LlamaTokenizer {
public:
    // Reads an HF tokenizer.json; a folder is taken to hold one.
    explicit LlamaTokenizer(const std::filesystem::path& path) : cache_(std::make_unique<WordCache>()) {
        std::error_code ec;
        path_ = std::filesystem::is_directory(path, ec) ? path / "tokenizer.json" : path;
        load(read_json_file(path_, "tokenizer.json"));
    }

    // tokenizer(text)["input_ids"]: BOS first (unless add_bos is false), no truncation, no padding.
    std::vector<std::int64_t> encode(std::string_view text, bool add_bos = true) const {
        std::vector<TokenId> ids;
        encode_ids(text, ids);
        std::vector<std::int64_t> out;
        out.reserve(ids.size() + 1);
        if (add_bos && bos_id_ >= 0) out.push_back(bos_id_);
        out.insert(out.end(), ids.begin(), ids.end());
        return out;
    }

    // tokenizer(text, truncation=True, max_length=max_length, padding="max_length").
    TokenizedText encode_padded(std::string_view text, std::size_t max_length) const {
        HYVIDEO_CHECK(max_length >= 1, "LlamaTokenizer: max_length must be at least 1");
        HYVIDEO_CHECK(pad_id_ >= 0, file_label("tokenizer.json", path_), ": has no <pad> token to pad with");
        std::vector<std::int64_t> ids = encode(text);
        const std::size_t cut = ids.size() > max_length ? ids.size() - max_length : 0;
        ids.resize(ids.size() - cut);
        TokenizedText t = pad_right(std::move(ids), max_length, pad_id_);
        t.truncated = cut;
        return t;
    }

    // The prompt through a HunyuanVideo template at that template's max_length (text_len + crop_start of
    // its family's video template), as TextEncoder.text2tokens does.
    TokenizedText encode_prompt(const PromptTemplate& t, std::string_view prompt,
                                std::size_t text_len = kDefaultTextLen) const {
        return encode_padded(apply_template(t, prompt), template_max_length(t, text_len));
    }

    std::int64_t bos_id() const { return bos_id_; }
    std::int64_t pad_id() const { return pad_id_; }
    // Vocabulary and added tokens together: 128,259 for llava-llama-3.
    std::size_t vocab_size() const { return id_to_token_.size(); }

    // The id of an added token (by its content) or of a vocabulary entry (by its raw bytes).
    std::optional<std::int64_t> token_to_id(std::string_view token) const {
        if (const TokenId id = added_.id(token); id >= 0) return id;
        const auto it = vocab_.find(token);
        if (it != vocab_.end()) return it->second;
        return std::nullopt;
    }

    // The bytes an id stands for (an added token's content); empty for an unknown id.
    std::string_view id_to_token(std::int64_t id) const {
        return id >= 0 && static_cast<std::size_t>(id) < id_to_token_.size() ? std::string_view(id_to_token_[id])
                                                                              : std::string_view();
    }

    // The ids' bytes concatenated (what the text was, when the ids came from encode(text, false)).
    std::string decode(std::span<const std::int64_t> ids) const {
        std::string out;
        for (std::int64_t id : ids) out += id_to_token(id);
        return out;
    }

    const std::filesystem::path& path() const { return path_; }

    // Forgets the words encoded so far (the cache holds at most WordCache::kMaxWords of them).
    void clear_cache() const { cache_->clear(); }

private:
    void load(const nlohmann::json& j) {
        const std::string name = file_label("tokenizer.json", path_);
        auto fail = [&](const std::string& why) { throw Error(name + ": " + why); };
        try {
            if (!j.is_object()) fail("not an HF tokenizer.json (the top level is not an object)");
            if (j.contains("normalizer") && !j["normalizer"].is_null())
                fail("has a normalizer; only Llama 3's tokenizer (none) is implemented");
            check_pre_tokenizer(json_member(j, "pre_tokenizer"), fail);

            const auto& model = json_member(j, "model");
            if (!model.is_object() || model.value("type", "BPE") != "BPE") fail("model is not a BPE model");
            if (model.value("byte_fallback", false)) fail("model.byte_fallback is not supported (Llama 3 has none)");
            for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
                if (model.contains(key) && !model[key].is_null() && model[key] != "")
                    fail(std::string("model.") + key + " is not supported (Llama 3 has none)");
            ignore_merges_ = model.value("ignore_merges", false);
            const auto& vocab = json_member(model, "vocab");
            const auto& merges = json_member(model, "merges");
            if (!vocab.is_object() || vocab.empty()) fail("model.vocab is missing or not an object");
            if (!merges.is_array()) fail("model.merges is missing or not a list");

            // The vocabulary as written (byte-level text) for the merges, then as raw bytes.
            StringMap<TokenId> written;
            written.reserve(vocab.size());
            vocab_.reserve(vocab.size());
            id_to_token_.reserve(vocab.size() + 512);
            std::string raw;
            for (const auto& [token, value] : vocab.items()) {
                if (!value.is_number_integer() || value.get<std::int64_t>() < 0 || value.get<std::int64_t>() >= (1 << 30))
                    fail("model.vocab['" + token + "'] is not a token id");
                const auto id = static_cast<TokenId>(value.get<std::int64_t>());
                if (!byte_level_to_bytes(token, raw))
                    fail("model.vocab token '" + token + "' is not byte-level text (GPT-2's byte alphabet)");
                written.emplace(token, id);
                vocab_.emplace(raw, id);
                set_token(id, raw, name);
            }
            for (unsigned b = 0; b < 256; ++b) {
                const char byte = static_cast<char>(b);
                const auto it = vocab_.find(std::string_view(&byte, 1));
                if (it == vocab_.end()) fail("model.vocab lacks the token of byte " + std::to_string(b));
                byte_ids_[b] = it->second;
            }

            merges_.reserve(merges.size());
            std::string_view left, right;
            std::string joined;
            for (std::size_t rank = 0; rank < merges.size(); ++rank) {
                const auto& m = merges[rank];
                if (m.is_string()) {
                    const std::string_view s = m.get_ref<const std::string&>();
                    const std::size_t sp = s.find(' ');
                    if (sp == std::string::npos || sp == 0 || sp + 1 == s.size() || s.find(' ', sp + 1) != std::string::npos)
                        fail("model.merges[" + std::to_string(rank) + "] '" + std::string(s) + "' is not two tokens 'a b'");
                    left = s.substr(0, sp);
                    right = s.substr(sp + 1);
                } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
                    left = m[0].get_ref<const std::string&>();
                    right = m[1].get_ref<const std::string&>();
                } else {
                    fail("model.merges[" + std::to_string(rank) + "] is neither 'a b' nor [a, b]");
                }
                joined.assign(left);
                joined += right;
                const auto l = written.find(left), r = written.find(right), lr = written.find(joined);
                if (l == written.end() || r == written.end() || lr == written.end())
                    fail("model.merges[" + std::to_string(rank) + "] ('" + std::string(left) + "', '" +
                         std::string(right) + "') names a token that is not in model.vocab");
                merges_.add(l->second, r->second, static_cast<std::uint32_t>(rank), lr->second);
            }

            const auto& added = json_member(j, "added_tokens");
            if (!added.is_null() && !added.is_array()) fail("added_tokens is not a list");
            for (const auto& t : added) {
                if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() || !t.contains("content") ||
                    !t["content"].is_string())
                    fail("added_tokens holds an entry without an integer id and a string content");
                const std::string content = t["content"].get<std::string>();
                for (const char* key : {"lstrip", "rstrip", "single_word"})
                    if (t.value(key, false))
                        fail("added token '" + content + "' has " + key + ", which is not supported (Llama 3 has none)");
                const auto id = static_cast<TokenId>(t["id"].get<std::int64_t>());
                if (id < 0) fail("added token '" + content + "' has a negative id");
                if (content.empty()) fail("added_tokens holds an empty token");
                added_.add(content, id);
                set_token(id, content, name);
            }
            bos_id_ = bos_from_post_processor(json_member(j, "post_processor"), fail);
            pad_id_ = added_.id("<pad>");
        } catch (const nlohmann::json::exception& e) {
            fail(std::string("unexpected layout (") + e.what() + ")");
        }
        for (std::size_t id = 0; id < id_to_token_.size(); ++id)
            if (!has_token_[id]) throw Error(name + ": no token has id " + std::to_string(id) + " (ids must be dense)");
    }

    template <class Fail>
    static void check_pre_tokenizer(const nlohmann::json& p, Fail&& fail) {
        const std::string expected = "a Sequence of Split on the Llama 3 regex (Isolated) and ByteLevel without prefix "
                                     "space or regex; only Llama 3's pre-tokenizer is implemented";
        if (!p.is_object() || p.value("type", "") != "Sequence" || !p.contains("pretokenizers") ||
            !p["pretokenizers"].is_array() || p["pretokenizers"].size() != 2)
            fail("pre_tokenizer is not " + expected);
        const auto& split = p["pretokenizers"][0];
        const auto& bytes = p["pretokenizers"][1];
        const bool split_ok = split.value("type", "") == "Split" && split.contains("pattern") &&
                              split["pattern"].is_object() && split["pattern"].value("Regex", "") == kLlama3Pattern &&
                              split.value("behavior", "") == "Isolated" && !split.value("invert", false);
        const bool bytes_ok = bytes.value("type", "") == "ByteLevel" && !bytes.value("add_prefix_space", true) &&
                              !bytes.value("use_regex", true);
        if (!split_ok || !bytes_ok) fail("pre_tokenizer is not " + expected);
    }

    // The BOS that TemplateProcessing puts before a single sequence ("$A" alone: none).
    template <class Fail>
    static TokenId bos_from_post_processor(const nlohmann::json& p, Fail&& fail) {
        if (p.is_null()) return -1;
        if (p.value("type", "") != "TemplateProcessing" || !p.contains("single") || !p["single"].is_array())
            fail("post_processor is not a TemplateProcessing ([BOS] $A); only Llama 3's is implemented");
        const auto& single = p["single"];
        TokenId bos = -1;
        std::size_t sequences = 0;
        for (std::size_t i = 0; i < single.size(); ++i) {
            const auto& piece = single[i];
            if (piece.contains("Sequence")) {
                ++sequences;
                continue;
            }
            if (i != 0 || !piece.contains("SpecialToken"))
                fail("post_processor.single is not [special token] $A; only Llama 3's is implemented");
            const std::string name = piece["SpecialToken"].value("id", "");
            const auto& st = json_member(p, "special_tokens");
            if (!st.contains(name) || !st[name].contains("ids") || st[name]["ids"].size() != 1)
                fail("post_processor.special_tokens lacks '" + name + "' with one id");
            bos = static_cast<TokenId>(st[name]["ids"][0].get<std::int64_t>());
        }
        if (sequences != 1) fail("post_processor.single does not hold $A once");
        return bos;
    }

    void set_token(TokenId id, const std::string& bytes, const std::string& name) {
        const auto i = static_cast<std::size_t>(id);
        if (i >= id_to_token_.size()) {
            id_to_token_.resize(i + 1);
            has_token_.resize(i + 1, false);
        }
        if (has_token_[i] && id_to_token_[i] != bytes)
            throw Error(name + ": id " + std::to_string(id) + " is given to two tokens");
        id_to_token_[i] = bytes;
        has_token_[i] = true;
    }

    void encode_ids(std::string_view text, std::vector<TokenId>& ids) const {
        thread_local std::u32string cps;
        thread_local std::vector<std::size_t> offsets, ends;
        thread_local std::vector<std::uint8_t> classes;
        check_utf8(text, "LlamaTokenizer: text");  // refuses malformed input before anything else
        for (std::size_t pos = 0; pos <= text.size();) {
            const AddedTokens::Match m = added_.find(text, pos);
            const std::size_t stop = m.begin == std::string_view::npos ? text.size() : m.begin;
            if (stop > pos) {
                const std::string_view chunk = text.substr(pos, stop - pos);
                cps.clear();
                offsets.clear();
                for (std::size_t i = 0; i < chunk.size();) {
                    char32_t cp = 0;
                    offsets.push_back(i);
                    i += utf8_sequence(chunk, i, cp);
                    cps.push_back(cp);
                }
                offsets.push_back(chunk.size());
                ends.clear();
                split_llama3(cps, classes, ends);
                std::size_t begin = 0;
                for (std::size_t end : ends) {
                    encode_piece(chunk.substr(offsets[begin], offsets[end] - offsets[begin]), ids);
                    begin = end;
                }
            }
            if (m.begin == std::string_view::npos) break;
            ids.push_back(m.id);
            pos = m.begin + m.length;
        }
    }

    void encode_piece(std::string_view piece, std::vector<TokenId>& ids) const {
        if (cache_->lookup(piece, ids)) return;
        const std::size_t start = ids.size();
        const auto whole = ignore_merges_ ? vocab_.find(piece) : vocab_.end();
        if (whole != vocab_.end()) {
            ids.push_back(whole->second);
        } else {
            thread_local std::vector<TokenId> symbols;
            symbols.clear();
            for (char c : piece) symbols.push_back(byte_ids_[static_cast<std::uint8_t>(c)]);
            bpe_merge(merges_, symbols);
            ids.insert(ids.end(), symbols.begin(), symbols.end());
        }
        cache_->insert(piece, ids.data() + start, ids.size() - start);
    }

    std::filesystem::path path_;
    StringMap<TokenId> vocab_;  // raw bytes -> id
    std::array<TokenId, 256> byte_ids_{};
    MergeTable merges_;
    bool ignore_merges_ = false;
    AddedTokens added_;
    std::vector<std::string> id_to_token_;
    std::vector<bool> has_token_;
    TokenId bos_id_ = -1, pad_id_ = -1;
    std::unique_ptr<WordCache> cache_;
};

}  // namespace hyvideo::text
