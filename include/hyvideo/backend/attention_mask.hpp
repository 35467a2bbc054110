#pragma once
// AttentionMask: which keys each query of a batch sample may attend, described by rule instead of by
// an S×S matrix.
//
// HunyuanVideo masks attention three ways, and each is a key range per query
// (docs/model.md#attention-masks):
//
//   full()             every query attends every key.
//   segments(len)      the DiT's flash-attn varlen packing: in sample b, tokens [0, len[b)) (image +
//                      valid text) attend only among themselves, tokens [len[b], S) (padded text) only
//                      among themselves.
//   refiner(len)       the token refiner: valid tokens are the prefix [0, len[b)); query i may attend
//                      key j iff (i and j are valid) or j == 0. Column 0 is what keeps padded rows
//                      from being all-masked (NaN) in PyTorch; they end up copying v[0].
//   refiner(mask)      the same rule for any 0/1 mask [B, S]. A prefix mask is turned into lengths;
//                      any other keeps a per-key filter, the one case that is not a pure key range.
//   block_causal(n)    the VAE mid-block's frame-causal mask: key j is allowed for query i iff
//                      j < (floor(i/n) + 1)·n, i.e. a frame sees itself and all earlier frames.
//   causal(mask)       the text encoders' decoder mask (Llama, CLIP text): query i may attend key j iff
//                      j <= i and, when a 0/1 key mask [B, S] is given, mask[b, j] = 1 (the padding
//                      mask transformers combines with the causal one). Padded queries still attend
//                      the valid keys before them, as in transformers, so their rows stay defined.
//
// A kernel asks for runs(): consecutive queries that share one key range, so it can tile each run
// and never visit a key tile that is masked out for all its queries. allows() states the rule
// element by element, for reference implementations and tests. The description lives on the host
// and is the same for every backend.
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "hyvideo/core/error.hpp"
#include "hyvideo/core/tensor.hpp"

namespace hyvideo {

// Keys [begin, end) of one sample.
struct KeyRange {
    std::int64_t begin = 0;
    std::int64_t end = 0;
    std::int64_t size() const { return end - begin; }
};

// Queries [begin, end) of one sample that may attend the same keys: all of `keys`, or, when
// `filtered`, only the keys j in `keys` with AttentionMask::key_filter(b)[j] != 0.
struct QueryRun {
    std::int64_t begin = 0;
    std::int64_t end = 0;
    KeyRange keys;
    bool filtered = false;
    // Query i of the run attends only keys j <= i (on top of `keys` and the filter).
    bool causal = false;
};

struct AttentionMask {
    enum class Kind : std::uint8_t { full, segments, refiner, block_causal, causal };

    static AttentionMask full() { return AttentionMask(Kind::full); }

    static AttentionMask segments(std::vector<std::int64_t> valid_len) {
        AttentionMask m(Kind::segments);
        m.valid_len_ = checked_lengths(std::move(valid_len), "segments");
        return m;
    }

    static AttentionMask refiner(std::vector<std::int64_t> valid_len) {
        AttentionMask m(Kind::refiner);
        m.valid_len_ = checked_lengths(std::move(valid_len), "refiner");
        return m;
    }

    // mask [B, S] of 0/1 values in any dtype (1 = valid token), on the host.
    static AttentionMask refiner(const Tensor& mask) {
        HYVIDEO_CHECK(mask.defined() && mask.device() == Device::cpu,
                      "AttentionMask::refiner: the mask must be a host tensor");
        HYVIDEO_CHECK(mask.dim() == 2, "AttentionMask::refiner: the mask must be [B, S], got ",
                      shape_str(mask.shape()));
        const std::int64_t batch = mask.size(0), seq = mask.size(1);
        const std::vector<float> values = mask.to_vector();
        std::vector<std::uint8_t> valid(values.size());
        for (std::size_t i = 0; i < values.size(); ++i) {
            HYVIDEO_CHECK(values[i] == 0.0f || values[i] == 1.0f, "AttentionMask::refiner: mask[",
                          static_cast<std::int64_t>(i) / seq, ", ", static_cast<std::int64_t>(i) % seq,
                          "] = ", values[i], ", expected 0 or 1");
            valid[i] = values[i] != 0.0f;
        }

        std::vector<std::int64_t> lengths(static_cast<std::size_t>(batch));
        bool prefix = true;
        for (std::int64_t b = 0; b < batch && prefix; ++b) {
            const std::uint8_t* row = valid.data() + b * seq;
            std::int64_t n = 0;
            while (n < seq && row[n]) ++n;
            lengths[static_cast<std::size_t>(b)] = n;
            for (std::int64_t j = n; j < seq && prefix; ++j) prefix = !row[j];
        }
        if (prefix) return refiner(std::move(lengths));

        AttentionMask m(Kind::refiner);
        m.mask_batch_ = batch;
        m.mask_seq_ = seq;
        m.valid_ = valid;
        // Valid queries may attend the valid keys and key 0; that set is the filter of their runs.
        m.key_filter_ = std::move(valid);
        for (std::int64_t b = 0; b < batch; ++b) m.key_filter_[static_cast<std::size_t>(b * seq)] = 1;
        return m;
    }

    static AttentionMask block_causal(std::int64_t block) {
        HYVIDEO_CHECK(block >= 1, "AttentionMask::block_causal: block must be at least 1, got ", block);
        AttentionMask m(Kind::block_causal);
        m.block_ = block;
        return m;
    }

    static AttentionMask causal() { return AttentionMask(Kind::causal); }

    // key_mask [B, S] of 0/1 values in any dtype (1 = a key that may be attended), on the host. Key 0
    // of every sample must be valid: query 0 could attend nothing otherwise (transformers would give
    // it a row of NaN or of uniform weights, depending on its attention implementation).
    static AttentionMask causal(const Tensor& key_mask) {
        HYVIDEO_CHECK(key_mask.defined() && key_mask.device() == Device::cpu,
                      "AttentionMask::causal: the key mask must be a host tensor");
        HYVIDEO_CHECK(key_mask.dim() == 2, "AttentionMask::causal: the key mask must be [B, S], got ",
                      shape_str(key_mask.shape()));
        AttentionMask m(Kind::causal);
        m.mask_batch_ = key_mask.size(0);
        m.mask_seq_ = key_mask.size(1);
        const std::vector<float> values = key_mask.to_vector();
        m.key_filter_.resize(values.size());
        for (std::size_t i = 0; i < values.size(); ++i) {
            HYVIDEO_CHECK(values[i] == 0.0f || values[i] == 1.0f, "AttentionMask::causal: key_mask[",
                          static_cast<std::int64_t>(i) / m.mask_seq_, ", ", static_cast<std::int64_t>(i) % m.mask_seq_,
                          "] = ", values[i], ", expected 0 or 1");
            m.key_filter_[i] = values[i] != 0.0f;
        }
        for (std::int64_t b = 0; b < m.mask_batch_ && m.mask_seq_ > 0; ++b)
            HYVIDEO_CHECK(m.key_filter_[static_cast<std::size_t>(b * m.mask_seq_)], "AttentionMask::causal: key 0 of sample ",
                          b, " is masked, so its first query would attend no key");
        // An all-ones mask is plain causal attention: the kernels then skip the per-key test.
        if (std::all_of(m.key_filter_.begin(), m.key_filter_.end(), [](std::uint8_t v) { return v != 0; }))
            m.key_filter_.clear();
        return m;
    }

    Kind kind() const { return kind_; }
    // Per-sample lengths of segments() and of a prefix refiner(); empty otherwise.
    const std::vector<std::int64_t>& valid_len() const { return valid_len_; }
    std::int64_t block() const { return block_; }
    // True for a refiner built from a mask that is not a prefix (its runs are filtered).
    bool has_key_filter() const { return !key_filter_.empty(); }
    // Keys that valid queries of sample b may attend, one byte per key; only with has_key_filter().
    const std::uint8_t* key_filter(std::int64_t b) const {
        return key_filter_.empty() ? nullptr : key_filter_.data() + b * mask_seq_;
    }

    // Throws unless the mask describes attention over `batch` samples of `seq` tokens.
    void check(std::int64_t batch, std::int64_t seq) const {
        if (kind_ == Kind::full || kind_ == Kind::block_causal) return;
        if (kind_ == Kind::causal && !has_key_filter()) return;
        if (has_key_filter()) {
            HYVIDEO_CHECK(batch == mask_batch_ && seq == mask_seq_, "attention: the ", kind_name(), " mask is [", mask_batch_,
                          ", ", mask_seq_, "], the attention is over [", batch, ", ", seq, "] (batch, tokens)");
            return;
        }
        HYVIDEO_CHECK(static_cast<std::int64_t>(valid_len_.size()) == batch, "attention: the ", kind_name(),
                      " mask has ", valid_len_.size(), " valid lengths for a batch of ", batch);
        for (std::size_t b = 0; b < valid_len_.size(); ++b)
            HYVIDEO_CHECK(valid_len_[b] <= seq, "attention: valid length ", valid_len_[b], " of sample ", b,
                          " exceeds the sequence length ", seq);
    }

    // The rule itself, one (query, key) pair at a time. Assumes check(batch, seq) passed.
    bool allows(std::int64_t b, std::int64_t i, std::int64_t j) const {
        switch (kind_) {
            case Kind::full: return true;
            case Kind::segments: {
                const std::int64_t n = valid_len_[static_cast<std::size_t>(b)];
                return (i < n) == (j < n);
            }
            case Kind::refiner: {
                if (j == 0) return true;
                if (has_key_filter()) return valid_[static_cast<std::size_t>(b * mask_seq_ + i)] &&
                                             valid_[static_cast<std::size_t>(b * mask_seq_ + j)];
                const std::int64_t n = valid_len_[static_cast<std::size_t>(b)];
                return i < n && j < n;
            }
            case Kind::block_causal: return j < (i / block_ + 1) * block_;
            case Kind::causal: return j <= i && (!has_key_filter() || key_filter_[static_cast<std::size_t>(b * mask_seq_ + j)]);
        }
        return false;
    }

    // Sample b's queries [0, seq) cut into runs that share their keys, in order. Assumes
    // check(batch, seq) passed. Every run has at least one key: under each of these rules every
    // query may attend something (itself, or key 0), which is what keeps softmax rows finite.
    std::vector<QueryRun> runs(std::int64_t b, std::int64_t seq) const {
        std::vector<QueryRun> out;
        auto add = [&](std::int64_t q0, std::int64_t q1, std::int64_t k0, std::int64_t k1, bool filtered,
                       bool causal = false) {
            if (q0 >= q1) return;
            HYVIDEO_CHECK(k0 < k1, "attention mask: queries [", q0, ", ", q1, ") of sample ", b,
                          " would attend no key");
            out.push_back({q0, q1, {k0, k1}, filtered, causal});
        };
        switch (kind_) {
            case Kind::full: add(0, seq, 0, seq, false); break;
            case Kind::segments: {
                const std::int64_t n = valid_len_[static_cast<std::size_t>(b)];
                add(0, n, 0, n, false);
                add(n, seq, n, seq, false);
                break;
            }
            case Kind::refiner:
                if (has_key_filter()) {
                    filtered_refiner_runs(b, seq, add);
                } else {
                    const std::int64_t n = valid_len_[static_cast<std::size_t>(b)];
                    add(0, n, 0, n, false);
                    add(n, seq, 0, 1, false);
                }
                break;
            case Kind::block_causal:
                for (std::int64_t q0 = 0; q0 < seq; q0 += block_) {
                    const std::int64_t q1 = std::min(seq, q0 + block_);
                    add(q0, q1, 0, q1, false);
                }
                break;
            // One run: a kernel trims each block of queries to the keys up to its last query.
            case Kind::causal: add(0, seq, 0, seq, has_key_filter(), true); break;
        }
        return out;
    }

    std::string kind_name() const {
        switch (kind_) {
            case Kind::full: return "full";
            case Kind::segments: return "segments";
            case Kind::refiner: return "refiner";
            case Kind::block_causal: return "block_causal";
            case Kind::causal: return "causal";
        }
        return "?";
    }

private:
    explicit AttentionMask(Kind kind) : kind_(kind) {}

    static std::vector<std::int64_t> checked_lengths(std::vector<std::int64_t> len, const char* what) {
        for (std::size_t b = 0; b < len.size(); ++b)
            HYVIDEO_CHECK(len[b] >= 0, "AttentionMask::", what, ": negative valid length ", len[b], " for sample ",
                          b);
        return len;
    }

    // Alternating runs of valid queries (keys: the filter, up to the last key it allows) and padded
    // queries (key 0 only).
    template <class Add>
    void filtered_refiner_runs(std::int64_t b, std::int64_t seq, Add& add) const {
        const std::uint8_t* valid = valid_.data() + b * seq;
        const std::uint8_t* filter = key_filter(b);
        std::int64_t last_key = 0;
        for (std::int64_t j = 0; j < seq; ++j)
            if (filter[j]) last_key = j;
        for (std::int64_t q0 = 0; q0 < seq;) {
            std::int64_t q1 = q0 + 1;
            while (q1 < seq && valid[q1] == valid[q0]) ++q1;
            if (valid[q0]) add(q0, q1, 0, last_key + 1, true);
            else add(q0, q1, 0, 1, false);
            q0 = q1;
        }
    }

    Kind kind_;
    std::vector<std::int64_t> valid_len_;
    std::int64_t block_ = 0;
    // General refiner: validity of each token and the keys valid queries may attend, [B, S]; causal
    // with a key mask: the keys, [B, S].
    std::int64_t mask_batch_ = 0, mask_seq_ = 0;
    std::vector<std::uint8_t> valid_, key_filter_;
};

}  // namespace hyvideo
