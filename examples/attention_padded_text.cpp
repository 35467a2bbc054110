// Attention with padded text: how HunyuanVideo keeps padding from leaking into the video.
//
// The joint sequence is [image tokens; text tokens], and the text is right-padded to a fixed length.
// The official flash-attn varlen call splits each sample into two segments: image + valid text
// attend only among themselves, padded text only among itself. So the image tokens' outputs do not
// depend on what the padded rows contain. Full attention would let them leak in.
#include <cmath>
#include <cstdio>

#include "hyvideo/backend/cpu/cpu.hpp"

using namespace hyvideo;

namespace {
Tensor pattern(const Shape& shape, float freq) {
    Tensor t = Tensor::empty(shape);
    for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = std::sin(freq * static_cast<float>(i));
    return t;
}
double max_diff(const Tensor& a, const Tensor& b, std::int64_t rows) {
    double m = 0;
    const auto va = a.to_vector(), vb = b.to_vector();
    const std::size_t n = static_cast<std::size_t>(rows * a.size(2) * a.size(3));
    for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::abs(static_cast<double>(va[i]) - vb[i]));
    return m;
}
}  // namespace

int main() {
    const std::int64_t img = 12, text = 8, valid_text = 5, S = img + text, H = 2, D = 16;
    Tensor q = pattern({1, S, H, D}, 0.37f), k = pattern({1, S, H, D}, 0.11f), v = pattern({1, S, H, D}, 0.05f);
    // Same tokens, but garbage in the 3 padded text rows of k and v.
    Tensor k2 = k.clone(), v2 = v.clone();
    for (std::int64_t s = img + valid_text; s < S; ++s)
        for (std::int64_t i = 0; i < H * D; ++i) {
            k2.data<float>()[s * H * D + i] = 100.0f;
            v2.data<float>()[s * H * D + i] = -50.0f;
        }
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    const auto varlen = AttentionMask::segments({img + valid_text});
    const Tensor a = cpu::attention(q, k, v, varlen, scale), b = cpu::attention(q, k2, v2, varlen, scale);
    std::printf("varlen mask: image + valid text rows change by %.3g when the padding changes\n",
                max_diff(a, b, img + valid_text));
    const Tensor fa = cpu::attention(q, k, v, AttentionMask::full(), scale),
                 fb = cpu::attention(q, k2, v2, AttentionMask::full(), scale);
    std::printf("full attention: the same rows change by %.3g: padding leaks into the video\n",
                max_diff(fa, fb, img + valid_text));
    // The token refiner uses a different rule: valid tokens see valid tokens, and every query may
    // also see key 0, so the padded rows stay finite (they are never read by valid rows).
    const Tensor r = cpu::attention(q, k, v, AttentionMask::refiner({img + valid_text}), scale);
    std::printf("refiner mask: padded row %lld attends key 0 only, so it equals v[0]: %s\n",
                static_cast<long long>(S - 1), std::abs(r.item({0, S - 1, 0, 0}) - v.item({0, 0, 0, 0})) < 1e-6 ? "yes" : "no");
    return 0;
}
