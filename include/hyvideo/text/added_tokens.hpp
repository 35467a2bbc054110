#pragma once
// Added (special) tokens such as <|eot_id|> or <|endoftext|>: found as exact, case-sensitive substrings
// anywhere in the text before any other processing, user text included, and never split further. Of
// overlapping candidates the leftmost wins, then the longest (HF tokenizers' leftmost-longest
// Aho-Corasick; the slow tokenizers' trie agrees on these vocabularies).
//
// Matching is on bytes. Both the tokens and the text are valid UTF-8, so a match always starts and ends
// on character boundaries.
#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "hyvideo/text/bpe.hpp"

namespace hyvideo::text {

class AddedTokens {
public:
    struct Match {
        std::size_t begin = std::string_view::npos;  // npos: none
        std::size_t length = 0;
        TokenId id = -1;
    };

    // False if the content is already there (the first id is kept) or empty.
    bool add(std::string_view content, TokenId id) {
        if (content.empty() || !tokens_.emplace(std::string(content), id).second) return false;
        first_byte_[static_cast<unsigned char>(content[0])] = true;
        if (std::find(lengths_.begin(), lengths_.end(), content.size()) == lengths_.end()) {
            lengths_.push_back(content.size());
            std::sort(lengths_.begin(), lengths_.end(), std::greater<>{});
        }
        return true;
    }

    // The first match at or after `from`.
    Match find(std::string_view text, std::size_t from) const {
        if (tokens_.empty()) return {};
        for (std::size_t i = from; i < text.size(); ++i) {
            if (!first_byte_[static_cast<unsigned char>(text[i])]) continue;
            for (std::size_t len : lengths_) {
                if (len > text.size() - i) continue;
                const auto it = tokens_.find(text.substr(i, len));
                if (it != tokens_.end()) return {i, len, it->second};
            }
        }
        return {};
    }

    // The id of a token given by its content, or -1.
    TokenId id(std::string_view content) const {
        const auto it = tokens_.find(content);
        return it == tokens_.end() ? -1 : it->second;
    }

    std::size_t size() const { return tokens_.size(); }

private:
    StringMap<TokenId> tokens_;
    std::array<bool, 256> first_byte_{};
    std::vector<std::size_t> lengths_;  // distinct lengths, longest first
};

}  // namespace hyvideo::text
