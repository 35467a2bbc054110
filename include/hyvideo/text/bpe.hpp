#pragma once
// Byte-pair encoding: the part the Llama 3 and CLIP tokenizers share. A word starts as one symbol per
// byte (a token id) and adjacent symbols are merged, the pair of lowest merge rank first and the
// leftmost of equal pairs first, until no adjacent pair has a merge. This is HF tokenizers' order; the
// slow CLIPTokenizer merges every occurrence of the best pair in one left-to-right pass instead, which
// gives the same words because a merge list never ranks a pair containing a token before the merge
// that made that token.
//
// Speed: merges live in an open-addressing table keyed by the two ids; a word's heap and links are
// thread-local scratch that keeps its capacity; whole words are cached (WordCache), since prompts repeat
// words.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hyvideo::text {

using TokenId = std::int32_t;

// Hash and equality that let an unordered_map<std::string, V> be searched with a string_view.
struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

// (left id, right id) -> (rank, merged id).
class MergeTable {
public:
    MergeTable() = default;
    explicit MergeTable(std::size_t expected) { reserve(expected); }

    void reserve(std::size_t expected) {
        std::size_t cap = 16;
        while (cap < expected + expected / 2) cap *= 2;
        slots_.assign(cap, Slot{});
        size_ = 0;
    }

    // False if the pair already has a merge (the first one listed wins, as in HF's BPE builder).
    bool add(TokenId left, TokenId right, std::uint32_t rank, TokenId merged) {
        if ((size_ + 1) * 3 > slots_.size() * 2) grow();
        const std::uint64_t k = key(left, right);
        for (std::size_t i = index(k);; i = (i + 1) & (slots_.size() - 1)) {
            if (slots_[i].key == k) return false;
            if (slots_[i].key == kEmpty) {
                slots_[i] = {k, rank, merged};
                ++size_;
                return true;
            }
        }
    }

    bool find(TokenId left, TokenId right, std::uint32_t& rank, TokenId& merged) const {
        if (slots_.empty()) return false;
        const std::uint64_t k = key(left, right);
        for (std::size_t i = index(k);; i = (i + 1) & (slots_.size() - 1)) {
            const Slot& s = slots_[i];
            if (s.key == k) {
                rank = s.rank;
                merged = s.merged;
                return true;
            }
            if (s.key == kEmpty) return false;
        }
    }

    std::size_t size() const { return size_; }

private:
    struct Slot {
        std::uint64_t key = kEmpty;
        std::uint32_t rank = 0;
        TokenId merged = 0;
    };
    static constexpr std::uint64_t kEmpty = ~std::uint64_t{0};

    static std::uint64_t key(TokenId l, TokenId r) {
        return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(l)) << 32) | static_cast<std::uint32_t>(r);
    }
    std::size_t index(std::uint64_t k) const {
        return static_cast<std::size_t>((k * 0x9E3779B97F4A7C15ull) >> 32) & (slots_.size() - 1);
    }
    void grow() {
        std::vector<Slot> old;
        old.swap(slots_);
        slots_.assign(std::max<std::size_t>(16, old.size() * 2), Slot{});
        size_ = 0;
        for (const Slot& s : old)
            if (s.key != kEmpty) add(static_cast<TokenId>(s.key >> 32), static_cast<TokenId>(s.key & 0xFFFFFFFFu), s.rank, s.merged);
    }

    std::vector<Slot> slots_;
    std::size_t size_ = 0;
};

// Merges `symbols` in place.
inline void bpe_merge(const MergeTable& merges, std::vector<TokenId>& symbols) {
    const std::size_t n = symbols.size();
    if (n < 2) return;
    struct Candidate {
        std::uint32_t rank;
        std::uint32_t pos;    // left symbol
        std::uint32_t right;  // right symbol when the candidate was made
        bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    thread_local std::vector<Candidate> heap;
    thread_local std::vector<std::uint32_t> next, prev;
    heap.clear();
    next.resize(n);
    prev.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        next[i] = static_cast<std::uint32_t>(i + 1);
        prev[i] = static_cast<std::uint32_t>(i - 1);  // wraps for i = 0: "none"
    }
    const auto consider = [&](std::uint32_t l, std::uint32_t r) {
        std::uint32_t rank;
        TokenId merged;
        if (merges.find(symbols[l], symbols[r], rank, merged)) {
            heap.push_back({rank, l, r});
            std::push_heap(heap.begin(), heap.end(), std::greater<>{});
        }
    };
    for (std::uint32_t i = 0; i + 1 < n; ++i) consider(i, i + 1);
    constexpr TokenId kDead = -1;
    while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), std::greater<>{});
        const Candidate c = heap.back();
        heap.pop_back();
        // Stale when either side was merged away or changed since the candidate was made.
        if (symbols[c.pos] == kDead || symbols[c.right] == kDead || next[c.pos] != c.right) continue;
        std::uint32_t rank;
        TokenId merged;
        if (!merges.find(symbols[c.pos], symbols[c.right], rank, merged) || rank != c.rank) continue;
        symbols[c.pos] = merged;
        symbols[c.right] = kDead;
        next[c.pos] = next[c.right];
        if (next[c.pos] < n) prev[next[c.pos]] = c.pos;
        if (prev[c.pos] < n) consider(prev[c.pos], c.pos);
        if (next[c.pos] < n) consider(c.pos, next[c.pos]);
    }
    symbols.erase(std::remove(symbols.begin(), symbols.end(), kDead), symbols.end());
}

// Words already encoded: piece bytes -> ids. Shared by the threads that use one tokenizer, so guarded by
// a mutex; bounded, so that a long stream of distinct words cannot grow it without end.
class WordCache {
public:
    static constexpr std::size_t kMaxWordBytes = 256;  // longer pieces are rare and not worth keeping
    static constexpr std::size_t kMaxWords = 1 << 16;

    // Appends the cached ids of `word` to `out`; false if it is not cached.
    bool lookup(std::string_view word, std::vector<TokenId>& out) const {
        if (word.size() > kMaxWordBytes) return false;
        std::lock_guard lock(mutex_);
        const auto it = map_.find(word);
        if (it == map_.end()) return false;
        out.insert(out.end(), ids_.begin() + it->second.first, ids_.begin() + it->second.first + it->second.second);
        return true;
    }

    void insert(std::string_view word, const TokenId* ids, std::size_t count) {
        if (word.size() > kMaxWordBytes) return;
        std::lock_guard lock(mutex_);
        if (map_.size() >= kMaxWords) {
            map_.clear();
            ids_.clear();
        }
        if (map_.emplace(std::string(word), std::pair<std::uint32_t, std::uint32_t>(
                                                static_cast<std::uint32_t>(ids_.size()), static_cast<std::uint32_t>(count)))
                .second)
            ids_.insert(ids_.end(), ids, ids + count);
    }

    void clear() {
        std::lock_guard lock(mutex_);
        map_.clear();
        ids_.clear();
    }

private:
    mutable std::mutex mutex_;
    StringMap<std::pair<std::uint32_t, std::uint32_t>> map_;
    std::vector<TokenId> ids_;
};

}  // namespace hyvideo::text
