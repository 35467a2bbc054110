#pragma once
// The tokenizer of HunyuanVideo's CLIP-L text encoder (text_encoder_2): transformers' slow CLIPTokenizer
// as the official code calls it, tokenizer(prompt, truncation=True, max_length=77, padding="max_length"),
// in an environment without ftfy (HunyuanVideo's requirements do not install it). Per text:
//
//   1. <|startoftext|> and <|endoftext|> written in the text are cut out as exact substrings and become
//      their ids;
//   2. every other stretch is cleaned as BERT's BasicTokenizer does (do_lower_case, strip_accents=False,
//      no punctuation split): NUL, U+FFFD and every category-C character except \t \n \r are deleted;
//      \t \n \r, space and Zs become a space; each CJK ideograph gets a space on either side; then NFC,
//      Python's str.split() and str.lower() of each word;
//   3. each word is split by CLIP's regex <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|
//      [\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+ (case-insensitive), and each match is BPE'd from its UTF-8 bytes
//      with "</w>" on its last symbol; a match that is exactly <|startoftext|> or <|endoftext|> is that
//      token;
//   4. <|startoftext|> + the first max_length - 2 tokens + <|endoftext|>, padded with <|endoftext|>
//      (pad_token), mask 1 through the EOS.
//
// HF's CLIPTokenizerFast differs (no CJK spacing, no control-character removal); the official code uses
// the slow one, and so does this.
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyvideo/core/error.hpp"
#include "hyvideo/text/added_tokens.hpp"
#include "hyvideo/text/bpe.hpp"
#include "hyvideo/text/byte_level.hpp"
#include "hyvideo/text/json_file.hpp"
#include "hyvideo/text/tokenized_text.hpp"
#include "hyvideo/text/unicode.hpp"

namespace hyvideo::text {

inline constexpr std::size_t kClipMaxLength = 77;  // CLIP-L's positions, HunyuanVideo's max_length for it

namespace detail {

// transformers' BasicTokenizer._is_chinese_char: the CJK Unified Ideographs blocks and extensions A-E
// and the compatibility ideographs. Kana, Hangul and CJK punctuation are not included.
inline bool is_cjk_ideograph(char32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// BasicTokenizer._clean_text and _tokenize_chinese_chars, appended to out.
inline void clip_clean(std::u32string_view text, std::u32string& out) {
    for (char32_t c : text) {
        if (c == '\t' || c == '\n' || c == '\r' || c == ' ') {
            out.push_back(' ');
            continue;
        }
        if (c < 0x80 && c >= 0x21 && c != 0x7F) {  // printable ASCII: kept as is
            out.push_back(c);
            continue;
        }
        const Category cat = category(c);
        if (c == 0 || c == 0xFFFD || cat <= Category::Cs) continue;  // Cc, Cf, Cn, Co, Cs
        if (cat == Category::Zs) {
            out.push_back(' ');
        } else if (is_cjk_ideograph(c)) {
            out.push_back(' ');
            out.push_back(c);
            out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
}

// CLIP's regex ignores case with simple case folding; the words are lower-cased already, so what is
// left to fold is U+017F (ſ, folds to s) and U+212A (Kelvin, to k).
inline char32_t clip_fold(char32_t c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c == 0x17F) return 's';
    if (c == 0x212A) return 'k';
    return c;
}

inline bool clip_starts_with(std::u32string_view w, std::size_t i, std::string_view ascii) {
    if (w.size() - i < ascii.size()) return false;
    for (std::size_t k = 0; k < ascii.size(); ++k)
        if (clip_fold(w[i + k]) != static_cast<char32_t>(ascii[k])) return false;
    return true;
}

inline constexpr std::string_view kClipBos = "<|startoftext|>", kClipEos = "<|endoftext|>";

// The end of the CLIP regex match starting at i, or i when none starts there (white space: skipped).
inline std::size_t clip_match_end(std::u32string_view w, std::size_t i) {
    const std::size_t n = w.size();
    if (w[i] == '<') {
        if (clip_starts_with(w, i, kClipBos)) return i + kClipBos.size();
        if (clip_starts_with(w, i, kClipEos)) return i + kClipEos.size();
    }
    if (w[i] == '\'' && i + 1 < n) {
        const char32_t a = clip_fold(w[i + 1]);
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
        if (i + 2 < n) {
            const char32_t b = clip_fold(w[i + 2]);
            if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
        }
    }
    // 1: [\p{L}], 2: [\p{N}], 0: [^\s\p{L}\p{N}], 3: none of them (skipped).
    const auto cls = [](char32_t c) {
        if (c < 0x80) {
            if ((c | 32) >= 'a' && (c | 32) <= 'z') return 1;
            if (c >= '0' && c <= '9') return 2;
            return c == ' ' || (c >= 0x09 && c <= 0x0D) ? 3 : 0;
        }
        // The regex module under IGNORECASE tests a negated class against the character's case
        // variants: U+0345 (COMBINING GREEK YPOGEGRAMMENI, Mn) folds to ι, a letter, so it is outside
        // [^\s\p{L}\p{N}], yet [\p{L}] does not match it either, and findall skips it. Among the
        // characters that survive the cleaning it is the only one whose classes differ from its category
        // (checked over all code points by tools/text/make_unicode_tables.py).
        if (c == 0x345) return 3;
        const Category cat = category(c);
        return is_letter(cat) ? 1 : is_number(cat) ? 2 : is_white_space(c) ? 3 : 0;
    };
    const int first = cls(w[i]);
    if (first == 2) return i + 1;
    if (first == 3) return i;
    std::size_t j = i + 1;
    while (j < n && cls(w[j]) == first) ++j;  // a run of letters, or of characters that are none of the three
    return j;
}

}  // namespace detail

class ClipTokenizer {
public:
    // A folder holding vocab.json and merges.txt (the HF layout of openai/clip-vit-large-patch14).
    explicit ClipTokenizer(const std::filesystem::path& folder)
        : ClipTokenizer(folder / "vocab.json", folder / "merges.txt") {}

    ClipTokenizer(const std::filesystem::path& vocab_json, const std::filesystem::path& merges_txt)
        : cache_(std::make_unique<WordCache>()) {
        load_vocab(vocab_json);
        load_merges(merges_txt);
    }

    // The BPE tokens of text, without BOS/EOS, truncation or padding.
    std::vector<std::int64_t> tokenize(std::string_view text) const {
        std::vector<TokenId> ids;
        encode_ids(text, ids);
        return {ids.begin(), ids.end()};
    }

    // tokenizer(text, truncation=True, max_length=max_length, padding="max_length").
    TokenizedText encode(std::string_view text, std::size_t max_length = kClipMaxLength) const {
        HYVIDEO_CHECK(max_length >= 2, "ClipTokenizer: max_length ", max_length, " leaves no room for BOS and EOS");
        std::vector<TokenId> body;
        encode_ids(text, body);
        const std::size_t cut = body.size() > max_length - 2 ? body.size() - (max_length - 2) : 0;
        body.resize(body.size() - cut);
        std::vector<std::int64_t> ids;
        ids.reserve(max_length);
        ids.push_back(bos_id_);
        ids.insert(ids.end(), body.begin(), body.end());
        ids.push_back(eos_id_);
        TokenizedText t = pad_right(std::move(ids), max_length, pad_id_);
        t.truncated = cut;
        return t;
    }

    std::int64_t bos_id() const { return bos_id_; }
    std::int64_t eos_id() const { return eos_id_; }
    std::int64_t pad_id() const { return pad_id_; }
    std::size_t vocab_size() const { return id_to_token_.size(); }

    // The token an id stands for, as vocab.json writes it (byte-level text, "</w>" ending a word).
    std::string_view id_to_token(std::int64_t id) const {
        return id >= 0 && static_cast<std::size_t>(id) < id_to_token_.size() ? std::string_view(id_to_token_[id])
                                                                              : std::string_view();
    }

    // Forgets the words encoded so far (the cache holds at most WordCache::kMaxWords of them).
    void clear_cache() const { cache_->clear(); }

private:
    static constexpr std::string_view kEndOfWord = "</w>";
    // CLIPTokenizer reads at most this many merges: lines 1 .. 49152 - 256 - 2 of merges.txt.
    static constexpr std::size_t kMaxMerges = 49152 - 256 - 2;

    void load_vocab(const std::filesystem::path& path) {
        const std::string name = file_label("vocab.json", path);
        const nlohmann::json j = read_json_file(path, "vocab.json");
        if (!j.is_object() || j.empty()) throw Error(name + ": not a JSON object of token -> id");
        vocab_.reserve(j.size());
        for (const auto& [token, value] : j.items()) {
            if (!value.is_number_integer() || value.get<std::int64_t>() < 0 || value.get<std::int64_t>() >= (1 << 30))
                throw Error(name + ": the id of '" + token + "' is not a token id");
            const auto id = static_cast<TokenId>(value.get<std::int64_t>());
            vocab_.emplace(token, id);
            if (static_cast<std::size_t>(id) >= id_to_token_.size()) id_to_token_.resize(static_cast<std::size_t>(id) + 1);
            if (!id_to_token_[id].empty()) throw Error(name + ": id " + std::to_string(id) + " is given to two tokens");
            id_to_token_[id] = token;
        }
        const auto id_of = [&](const std::string& token, const char* why) {
            const auto it = vocab_.find(token);
            if (it == vocab_.end()) throw Error(name + ": lacks '" + token + "' (" + why + ")");
            return it->second;
        };
        for (unsigned b = 0; b < 256; ++b) {
            std::string sym;
            append_utf8(sym, byte_to_unicode(static_cast<std::uint8_t>(b)));
            byte_ids_[b] = id_of(sym, "a byte symbol");
            byte_eow_ids_[b] = id_of(sym + std::string(kEndOfWord), "a byte symbol ending a word");
        }
        bos_id_ = id_of(std::string(detail::kClipBos), "bos_token");
        eos_id_ = id_of(std::string(detail::kClipEos), "eos_token");
        pad_id_ = eos_id_;  // pad_token is <|endoftext|>
        specials_.add(detail::kClipBos, bos_id_);
        specials_.add(detail::kClipEos, eos_id_);
    }

    void load_merges(const std::filesystem::path& path) {
        const std::string name = file_label("merges.txt", path);
        const std::string text = read_small_file(path, "merges.txt", std::uint64_t{64} << 20);
        // As CLIPTokenizer: strip the file, split on "\n", drop the first line (the "#version" header).
        const auto space = [](char c) { return static_cast<unsigned char>(c) < 0x80 && is_python_space(static_cast<unsigned char>(c)); };
        std::size_t b = 0, e = text.size();
        while (b < e && space(text[b])) ++b;
        while (e > b && space(text[e - 1])) --e;
        const std::string_view body(text.data() + b, e - b);
        std::size_t pos = body.find('\n');
        if (pos == std::string_view::npos || body.substr(0, 8) != "#version")
            throw Error(name + ": does not start with a '#version' line followed by merges");
        ++pos;
        merges_.reserve(kMaxMerges);
        std::size_t line = 2;
        for (std::size_t rank = 0; rank < kMaxMerges && pos <= body.size(); ++rank, ++line) {
            std::size_t end = body.find('\n', pos);
            if (end == std::string_view::npos) end = body.size();
            std::string_view m = body.substr(pos, end - pos);
            pos = end + 1;
            if (!m.empty() && m.back() == '\r') m.remove_suffix(1);
            const std::size_t sp = m.find(' ');
            if (sp == std::string_view::npos || sp == 0 || sp + 1 == m.size() || m.find(' ', sp + 1) != std::string_view::npos)
                throw Error(name + ": line " + std::to_string(line) + " '" + std::string(m) + "' is not a merge 'a b'");
            const std::string left(m.substr(0, sp)), right(m.substr(sp + 1));
            const auto l = vocab_.find(left), r = vocab_.find(right), lr = vocab_.find(left + right);
            if (l == vocab_.end() || r == vocab_.end() || lr == vocab_.end())
                throw Error(name + ": line " + std::to_string(line) + " merges '" + left + "' and '" + right +
                            "', which vocab.json does not both hold with their concatenation");
            merges_.add(l->second, r->second, static_cast<std::uint32_t>(rank), lr->second);
        }
        if (merges_.size() == 0) throw Error(name + ": holds no merges");
    }

    void encode_ids(std::string_view text, std::vector<TokenId>& ids) const {
        check_utf8(text, "ClipTokenizer: text");
        for (std::size_t pos = 0; pos <= text.size();) {
            const AddedTokens::Match m = specials_.find(text, pos);
            const std::size_t stop = m.begin == std::string_view::npos ? text.size() : m.begin;
            if (stop > pos) encode_chunk(text.substr(pos, stop - pos), ids);
            if (m.begin == std::string_view::npos) break;
            ids.push_back(m.id);
            pos = m.begin + m.length;
        }
    }

    // BasicTokenizer.tokenize, then the regex and BPE, for one stretch between special tokens.
    void encode_chunk(std::string_view chunk, std::vector<TokenId>& ids) const {
        thread_local std::u32string cps, cleaned, word;
        thread_local std::string bytes;
        decode_utf8(chunk, cps);
        cleaned.clear();
        detail::clip_clean(cps, cleaned);
        const std::u32string normalized = nfc(cleaned);
        const std::u32string_view all(normalized);
        for (std::size_t i = 0; i < all.size();) {
            if (is_python_space(all[i])) {
                ++i;
                continue;
            }
            std::size_t j = i + 1;
            while (j < all.size() && !is_python_space(all[j])) ++j;
            word.clear();
            python_lower(all.substr(i, j - i), word);
            i = j;
            for (std::size_t k = 0; k < word.size();) {
                const std::size_t e = detail::clip_match_end(word, k);
                if (e == k) {
                    ++k;
                    continue;
                }
                bytes.clear();
                for (std::size_t q = k; q < e; ++q) append_utf8(bytes, word[q]);
                encode_piece(bytes, ids);
                k = e;
            }
        }
    }

    void encode_piece(std::string_view piece, std::vector<TokenId>& ids) const {
        if (piece == detail::kClipBos || piece == detail::kClipEos) {  // CLIPTokenizer's pre-filled BPE cache
            ids.push_back(piece == detail::kClipBos ? bos_id_ : eos_id_);
            return;
        }
        if (cache_->lookup(piece, ids)) return;
        thread_local std::vector<TokenId> symbols;
        symbols.clear();
        for (std::size_t i = 0; i + 1 < piece.size(); ++i) symbols.push_back(byte_ids_[static_cast<std::uint8_t>(piece[i])]);
        symbols.push_back(byte_eow_ids_[static_cast<std::uint8_t>(piece.back())]);
        bpe_merge(merges_, symbols);
        ids.insert(ids.end(), symbols.begin(), symbols.end());
        cache_->insert(piece, symbols.data(), symbols.size());
    }

    StringMap<TokenId> vocab_;  // as vocab.json writes the tokens
    std::vector<std::string> id_to_token_;
    std::array<TokenId, 256> byte_ids_{}, byte_eow_ids_{};
    MergeTable merges_;
    AddedTokens specials_;
    TokenId bos_id_ = -1, eos_id_ = -1, pad_id_ = -1;
    std::unique_ptr<WordCache> cache_;
};

}  // namespace hyvideo::text
