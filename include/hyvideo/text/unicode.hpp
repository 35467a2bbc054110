#pragma once
// Unicode for the tokenizers: strict UTF-8, general categories, the two notions of white space, NFC and
// Python's str.lower(), all from the generated tables in unicode_tables.hpp.
//
// Unicode version: the tables are 14.0.0, Python 3.11's, for both tokenizers. CLIP's reference cleaning
// is Python code (unicodedata.category, unicodedata.normalize("NFC"), str.split, str.lower) run on
// Python 3.11, so its tables are exactly these. The Llama reference, HF tokenizers 0.20.3, splits with
// its bundled Oniguruma, whose \p{L} proved to be Unicode 14.0's as well: letters first assigned in 15.0
// (U+11F04 KAWI LETTER A, U+1E4D0 NAG MUNDARI LETTER O, U+1E030 a Cyrillic modifier letter) are not
// \p{L} there, as here (tokenizers 0.20.3 run on them; the ids are pinned in tests/text). Meta's
// tiktoken uses the Rust regex crate, whose newer tables may split such letters otherwise; HunyuanVideo
// runs HF's tokenizer. None of the 150 reference strings holds a character assigned after
// 14.0 (their private-use, noncharacter and plane-16 rows are outside \p{L}/\p{N} in every version), so
// the fixture cannot tell the versions apart; the HF check above can.
//
// Text enters as bytes; a C++ caller can hand over anything, so malformed UTF-8 (stray continuation
// bytes, overlong forms, surrogates, values past U+10FFFF, truncated sequences) is refused with an Error
// giving the byte offset. The references never see such input: a Python str cannot hold it, and HF's
// Rust side takes &str.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "hyvideo/core/error.hpp"
#include "hyvideo/text/unicode_tables.hpp"

namespace hyvideo::text {

enum class Category : std::uint8_t {
    Cc, Cf, Cn, Co, Cs, Ll, Lm, Lo, Lt, Lu, Mc, Me, Mn, Nd, Nl, No,
    Pc, Pd, Pe, Pf, Pi, Po, Ps, Sc, Sk, Sm, So, Zl, Zp, Zs
};

inline constexpr std::string_view kUnicodeVersion = unicode_data::kUnicodeVersion;

namespace detail {

// The value of the range holding cp in a table of (first << shift) | value, ascending.
template <std::size_t N>
constexpr std::uint32_t range_value(const std::uint32_t (&table)[N], char32_t cp, unsigned shift) {
    const std::uint32_t key = (static_cast<std::uint32_t>(cp) << shift) | ((1u << shift) - 1u);
    const auto* it = std::upper_bound(table, table + N, key);
    return *(it - 1) & ((1u << shift) - 1u);
}

inline constexpr std::array<Category, 128> kAsciiCategory = [] {
    std::array<Category, 128> a{};
    for (char32_t c = 0; c < 128; ++c) a[c] = static_cast<Category>(range_value(unicode_data::kCategoryRanges, c, 5));
    return a;
}();

}  // namespace detail

inline Category category(char32_t cp) {
    if (cp < 128) return detail::kAsciiCategory[cp];
    if (cp > 0x10FFFF) return Category::Cn;
    return static_cast<Category>(detail::range_value(unicode_data::kCategoryRanges, cp, 5));
}

// \p{L} and \p{N}: the general categories L* and N*.
inline bool is_letter(Category c) { return c >= Category::Ll && c <= Category::Lu; }
inline bool is_number(Category c) { return c >= Category::Nd && c <= Category::No; }
inline bool is_letter(char32_t cp) { return is_letter(category(cp)); }
inline bool is_number(char32_t cp) { return is_number(category(cp)); }

// The White_Space property: what \s matches in the Llama reference's regex engines.
inline bool is_white_space(char32_t cp) {
    if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
    for (const auto& r : unicode_data::kWhiteSpaceRanges)
        if (cp >= r[0] && cp <= r[1]) return true;
    return false;
}

// Python's str.isspace(), what str.split() splits on; it adds U+001C..U+001F to White_Space.
inline bool is_python_space(char32_t cp) {
    if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
    if (cp > 0x10FFFF) return false;
    return detail::range_value(unicode_data::kPythonSpaceRanges, cp, 1) != 0;
}

inline std::uint8_t combining_class(char32_t cp) {
    if (cp < 0x300 || cp > 0x10FFFF) return 0;
    return static_cast<std::uint8_t>(detail::range_value(unicode_data::kCombiningClassRanges, cp, 8));
}

// ---- UTF-8 ----------------------------------------------------------------------------------------

// Length of the well-formed UTF-8 sequence at s[i] and its code point, or 0 if it is malformed
// (Unicode's Table 3-7: no overlong forms, no surrogates, nothing past U+10FFFF).
inline std::size_t utf8_sequence(std::string_view s, std::size_t i, char32_t& cp) {
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned c0 = b(i);
    if (c0 < 0x80) {
        cp = c0;
        return 1;
    }
    std::size_t len;
    unsigned lo = 0x80, hi = 0xBF;  // the second byte's range
    if (c0 >= 0xC2 && c0 <= 0xDF) {
        len = 2;
        cp = c0 & 0x1F;
    } else if (c0 >= 0xE0 && c0 <= 0xEF) {
        len = 3;
        cp = c0 & 0x0F;
        if (c0 == 0xE0) lo = 0xA0;
        if (c0 == 0xED) hi = 0x9F;
    } else if (c0 >= 0xF0 && c0 <= 0xF4) {
        len = 4;
        cp = c0 & 0x07;
        if (c0 == 0xF0) lo = 0x90;
        if (c0 == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (i + len > s.size()) return 0;
    for (std::size_t k = 1; k < len; ++k) {
        const unsigned ck = b(i + k);
        if (ck < (k == 1 ? lo : 0x80u) || ck > (k == 1 ? hi : 0xBFu)) return 0;
        cp = (cp << 6) | (ck & 0x3F);
    }
    return len;
}

namespace detail {
[[noreturn]] inline void throw_invalid_utf8(std::string_view s, std::size_t i, std::string_view what) {
    static constexpr char hex[] = "0123456789abcdef";
    const auto byte = static_cast<unsigned char>(s[i]);
    throw Error(::hyvideo::detail::concat(what, ": invalid UTF-8 at byte ", i, " (0x", hex[byte >> 4], hex[byte & 15],
                               "); the tokenizers take UTF-8 text only"));
}
}  // namespace detail

// Refuses malformed UTF-8; `what` names the input in the message.
inline void check_utf8(std::string_view s, std::string_view what = "text") {
    for (std::size_t i = 0; i < s.size();) {
        if (static_cast<unsigned char>(s[i]) < 0x80) {
            ++i;
            continue;
        }
        char32_t cp;
        const std::size_t n = utf8_sequence(s, i, cp);
        if (n == 0) detail::throw_invalid_utf8(s, i, what);
        i += n;
    }
}

// Decodes all of `s`, refusing malformed UTF-8.
inline void decode_utf8(std::string_view s, std::u32string& out, std::string_view what = "text") {
    out.clear();
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        char32_t cp;
        const std::size_t n = utf8_sequence(s, i, cp);
        if (n == 0) detail::throw_invalid_utf8(s, i, what);
        out.push_back(cp);
        i += n;
    }
}

inline std::u32string decode_utf8(std::string_view s, std::string_view what = "text") {
    std::u32string out;
    decode_utf8(s, out, what);
    return out;
}

inline void append_utf8(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

inline std::string encode_utf8(std::u32string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char32_t cp : s) append_utf8(out, cp);
    return out;
}

// ---- NFC --------------------------------------------------------------------------------------------

namespace detail {

inline constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
inline constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                          kSCount = kLCount * kNCount;

inline void append_decomposition(std::u32string& out, char32_t cp) {
    if (cp >= kSBase && cp < kSBase + kSCount) {  // Hangul syllables decompose arithmetically
        const char32_t s = cp - kSBase;
        out.push_back(kLBase + s / kNCount);
        out.push_back(kVBase + (s % kNCount) / kTCount);
        if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
        return;
    }
    if (cp >= 0xC0) {
        const auto& t = unicode_data::kDecompositions;
        const auto* it = std::lower_bound(std::begin(t), std::end(t), cp,
                                          [](const unicode_data::Decomposition& d, char32_t c) { return d.cp < c; });
        if (it != std::end(t) && it->cp == cp) {
            out.append(unicode_data::kDecompositionData + it->offset,
                       unicode_data::kDecompositionData + it->offset + it->length);
            return;
        }
    }
    out.push_back(cp);
}

// The primary composite of a + b, or 0.
inline char32_t compose_pair(char32_t a, char32_t b) {
    if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
        return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
    if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
        return a + (b - kTBase);
    const std::uint64_t key = (static_cast<std::uint64_t>(a) << 21) | b;
    const auto& t = unicode_data::kCompositions;
    const auto* it = std::lower_bound(std::begin(t), std::end(t), key,
                                      [](const unicode_data::Composition& c, std::uint64_t k) { return c.key < k; });
    return it != std::end(t) && it->key == key ? static_cast<char32_t>(it->composite) : 0;
}

}  // namespace detail

// Normalization Form C (UAX #15): canonical decomposition, canonical ordering, canonical composition.
inline std::u32string nfc(std::u32string_view s) {
    // Below U+0300 nothing has a non-zero combining class, decomposes to something NFC changes, or
    // composes with its predecessor: such text is already NFC (most prompts).
    if (std::all_of(s.begin(), s.end(), [](char32_t c) { return c < 0x300; })) return std::u32string(s);
    std::u32string d;
    d.reserve(s.size() + 8);
    for (char32_t cp : s) detail::append_decomposition(d, cp);
    // Canonical ordering: a stable sort by combining class of every run of non-starters (a sort, not
    // insertion, so that a long run of marks costs n log n).
    for (std::size_t i = 0; i < d.size();) {
        if (combining_class(d[i]) == 0) {
            ++i;
            continue;
        }
        std::size_t j = i + 1;
        while (j < d.size() && combining_class(d[j]) != 0) ++j;
        if (j - i > 1)
            std::stable_sort(d.begin() + static_cast<std::ptrdiff_t>(i), d.begin() + static_cast<std::ptrdiff_t>(j),
                             [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
        i = j;
    }
    if (d.empty()) return d;
    // Composition: a character joins the last starter unless a character of equal or higher class (or
    // a starter) stands between them.
    std::size_t starter = 0, out = 1;
    int last_class = combining_class(d[0]) == 0 ? 0 : 256;
    for (std::size_t i = 1; i < d.size(); ++i) {
        const char32_t c = d[i];
        const int cc = combining_class(c);
        const char32_t composite = last_class == 256 ? 0 : detail::compose_pair(d[starter], c);
        if (composite != 0 && (last_class < cc || last_class == 0)) {
            d[starter] = composite;
            continue;
        }
        if (cc == 0) starter = out;
        last_class = cc;
        d[out++] = c;
    }
    d.resize(out);
    return d;
}

// ---- Python's str.lower() -----------------------------------------------------------------------------

namespace detail {

inline unsigned sigma_class(char32_t cp) {
    return cp > 0x10FFFF ? 0 : range_value(unicode_data::kSigmaClassRanges, cp, 2);
}

// CPython's rule for U+03A3: final (ς) when a cased letter precedes it and none follows, skipping
// case-ignorable characters on both sides; σ otherwise.
inline char32_t lower_sigma(std::u32string_view s, std::size_t i) {
    std::size_t j = i;
    unsigned cls = 2;
    while (j > 0 && (cls = sigma_class(s[j - 1])) == 2) --j;
    if (j == 0 || cls != 1) return 0x3C3;
    for (std::size_t k = i + 1; k < s.size(); ++k) {
        const unsigned c = sigma_class(s[k]);
        if (c == 2) continue;
        return c == 1 ? 0x3C3 : 0x3C2;
    }
    return 0x3C2;
}

}  // namespace detail

// Appends str.lower() of s: full lower-case mappings (U+0130 becomes two characters), final sigma.
inline void python_lower(std::u32string_view s, std::u32string& out) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char32_t cp = s[i];
        if (cp < 0x80) {
            out.push_back(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
            continue;
        }
        if (cp == 0x3A3) {
            out.push_back(detail::lower_sigma(s, i));
            continue;
        }
        bool done = false;
        for (const auto& m : unicode_data::kLowerMulti)
            if (m.cp == cp) {
                for (char32_t l : m.lower)
                    if (l != 0) out.push_back(l);
                done = true;
            }
        if (done) continue;
        const auto& runs = unicode_data::kLowerRuns;
        const auto* it = std::upper_bound(std::begin(runs), std::end(runs), cp,
                                          [](char32_t c, const unicode_data::LowerRun& r) { return c < r.first; });
        if (it != std::begin(runs)) {
            const auto& r = *(it - 1);
            const char32_t off = cp - r.first;
            if (off % r.stride == 0 && off / r.stride < r.count) {
                out.push_back(static_cast<char32_t>(static_cast<std::int32_t>(cp) + r.delta));
                continue;
            }
        }
        out.push_back(cp);
    }
}

inline std::u32string python_lower(std::u32string_view s) {
    std::u32string out;
    out.reserve(s.size());
    python_lower(s, out);
    return out;
}

}  // namespace hyvideo::text
