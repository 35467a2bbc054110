#pragma once
// The cos/sin tables of Llama's rotary embedding (transformers' LlamaRotaryEmbedding), for given
// position ids.
//
// They are computed on the host, as transformers computes them in float32: inv_freq =
// 1 / theta^(2k/D), the angle position·inv_freq rounded to float, then its cos and sin, repeated over
// the two halves of the head ([f, f], the rotate_half layout). A batch whose rows share their positions
// (the LLM encoder: 0..S-1 everywhere) gets [S, D] tables; llava's merged rows, whose positions
// depend on their padding, get [B, S, D].
#include <cmath>
#include <cstdint>
#include <vector>

#include "hyvideo/core/tensor.hpp"

namespace hyvideo {

struct RotaryTables {
    Tensor cos, sin;  // host tensors, [S, D] or [B, S, D]
};

// position_ids: int64 [B, S] on the host.
inline RotaryTables llama_rotary_tables(const Tensor& position_ids, std::int64_t head_dim, double theta) {
    HYVIDEO_CHECK(position_ids.dim() == 2 && position_ids.dtype() == DType::i64,
                  "llama_rotary_tables: position_ids must be int64 [B, S], got ", shape_str(position_ids.shape()));
    HYVIDEO_CHECK(head_dim >= 2 && head_dim % 2 == 0, "llama_rotary_tables: head_dim ", head_dim, " must be even");
    const Tensor pos = position_ids.contiguous();
    const std::int64_t batch = pos.size(0), seq = pos.size(1), half = head_dim / 2;
    const auto* p = pos.data<const std::int64_t>();

    bool shared = true;
    for (std::int64_t b = 1; b < batch && shared; ++b)
        for (std::int64_t s = 0; s < seq && shared; ++s) shared = p[b * seq + s] == p[s];
    const std::int64_t rows = shared ? std::min<std::int64_t>(batch, 1) : batch;

    std::vector<float> inv_freq(static_cast<std::size_t>(half));
    for (std::int64_t k = 0; k < half; ++k)
        inv_freq[static_cast<std::size_t>(k)] = static_cast<float>(
            1.0 / static_cast<double>(std::pow(static_cast<float>(theta),
                                               static_cast<float>(2 * k) / static_cast<float>(head_dim))));

    const Shape shape = shared ? Shape{seq, head_dim} : Shape{batch, seq, head_dim};
    RotaryTables t{Tensor::empty(shape), Tensor::empty(shape)};
    float* c = t.cos.data<float>();
    float* s = t.sin.data<float>();
    for (std::int64_t r = 0; r < rows * seq; ++r) {
        for (std::int64_t k = 0; k < half; ++k) {
            const float angle = static_cast<float>(p[r]) * inv_freq[static_cast<std::size_t>(k)];
            const auto cv = static_cast<float>(std::cos(static_cast<double>(angle)));
            const auto sv = static_cast<float>(std::sin(static_cast<double>(angle)));
            c[r * head_dim + k] = c[r * head_dim + k + half] = cv;
            s[r * head_dim + k] = s[r * head_dim + k + half] = sv;
        }
    }
    return t;
}

// Positions 0..seq-1 for `batch` rows: what LlamaModel uses when it is given no position ids.
inline Tensor arange_positions(std::int64_t batch, std::int64_t seq) {
    Tensor ids = Tensor::empty({batch, seq}, DType::i64);
    auto* p = ids.data<std::int64_t>();
    for (std::int64_t b = 0; b < batch; ++b)
        for (std::int64_t s = 0; s < seq; ++s) p[b * seq + s] = s;
    return ids;
}

}  // namespace hyvideo
