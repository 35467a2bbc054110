#pragma once
// Which elements of a head a rotary embedding rotates together.
//
// HunyuanVideo's DiT rotates interleaved pairs (2j, 2j+1) (official apply_rotary_emb); Hugging Face's
// Llama rotates the two halves against each other (rotate_half: element j with j + D/2), because
// Meta's checkpoints were permuted into that layout when they were converted. Both are the same
// rotation of a different pairing, so one primitive serves both, told which pairing the weights use.
#include <cstdint>

namespace hyvideo {

enum class RopeLayout : std::uint8_t {
    interleaved,  // out[2j] = x[2j]·cos[2j] − x[2j+1]·sin[2j]; out[2j+1] = x[2j+1]·cos[2j+1] + x[2j]·sin[2j+1]
    rotate_half,  // out = x·cos + rotate_half(x)·sin, rotate_half(x) = [−x[D/2:], x[:D/2]]
};

}  // namespace hyvideo
