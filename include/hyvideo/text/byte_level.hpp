#pragma once
// GPT-2's byte-level alphabet: each of the 256 byte values stands for one printable character, so that
// a vocabulary of byte strings can be written as text (Llama 3's tokenizer.json, CLIP's vocab.json and
// merges.txt). The bytes that are printable in Latin-1 ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for
// themselves; the other 68 (controls, space, DEL, NBSP, soft hyphen) take U+0100 upwards in byte order,
// which is why a space shows as 'Ġ' (U+0120) and a newline as 'Ċ' (U+010A).
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "hyvideo/text/unicode.hpp"

namespace hyvideo::text {

namespace detail {

inline constexpr bool byte_is_self(unsigned b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

inline constexpr std::array<char16_t, 256> kByteToUnicode = [] {
    std::array<char16_t, 256> t{};
    char16_t next = 0x100;
    for (unsigned b = 0; b < 256; ++b) t[b] = byte_is_self(b) ? static_cast<char16_t>(b) : next++;
    return t;
}();

}  // namespace detail

// The character standing for byte b.
constexpr char32_t byte_to_unicode(std::uint8_t b) { return detail::kByteToUnicode[b]; }

// The byte a character stands for, or -1 when it stands for none.
constexpr int unicode_to_byte(char32_t c) {
    if (c < 0x100) return detail::byte_is_self(c) ? static_cast<int>(c) : -1;
    if (c >= 0x100 + 68) return -1;
    for (unsigned b = 0; b < 256; ++b)
        if (detail::kByteToUnicode[b] == c) return static_cast<int>(b);
    return -1;
}

// Raw bytes -> their byte-level text (UTF-8).
inline std::string bytes_to_byte_level(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (char c : bytes) append_utf8(out, byte_to_unicode(static_cast<std::uint8_t>(c)));
    return out;
}

// Byte-level text (UTF-8) -> the raw bytes, or false if it holds a character outside the alphabet.
inline bool byte_level_to_bytes(std::string_view text, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < text.size();) {
        char32_t cp;
        const std::size_t n = utf8_sequence(text, i, cp);
        if (n == 0) return false;
        const int b = unicode_to_byte(cp);
        if (b < 0) return false;
        out.push_back(static_cast<char>(b));
        i += n;
    }
    return true;
}

}  // namespace hyvideo::text
