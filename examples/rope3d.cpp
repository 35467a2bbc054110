// 3D RoPE: how HunyuanVideo encodes (t, h, w) positions in the 128 head dimensions.
//
// Each head dimension pair (2j, 2j+1) rotates by an angle pos·ω_j of one axis: dims 0-15 follow
// time, 16-71 height and 72-127 width (rope_dim_list [16, 56, 56], θ = 256). Rotations preserve the
// norm of q and k, and the score q·k of two tokens depends only on their position difference.
#include <cmath>
#include <cstdio>

#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/nn/positional_embedding.hpp"

using namespace hyvideo;

int main() {
    const std::vector<std::int64_t> dims{16, 56, 56}, grid{4, 6, 8};  // 4 latent frames of 6x8 tokens
    const RopeTables t = rope3d_tables(dims, grid, 256.0f);
    std::printf("tables: cos %s, sin %s (tokens x head_dim)\n", shape_str(t.cos.shape()).c_str(),
                shape_str(t.sin.shape()).c_str());

    // Token (t=1, h=2, w=3) sits at row (1*6 + 2)*8 + 3 = 67. Its angles, one per pair and axis:
    const std::int64_t row = (1 * 6 + 2) * 8 + 3;
    for (std::int64_t d : {0, 2, 14, 16, 18, 70, 72, 74, 126}) {
        const float angle = std::atan2(t.sin.item({row, d}), t.cos.item({row, d}));
        std::printf("  dim %3lld: angle %+.4f rad\n", static_cast<long long>(d), angle);
    }

    // Rotate one q and one k vector placed at two tokens; the score depends on the offset only.
    Tensor q = Tensor::full({1, 4 * 6 * 8, 1, 128}, 0.0f), k = q.clone();
    for (std::int64_t s = 0; s < 4 * 6 * 8; ++s)
        for (std::int64_t d = 0; d < 128; ++d) {
            q.data<float>()[s * 128 + d] = std::cos(0.3f * static_cast<float>(d));
            k.data<float>()[s * 128 + d] = std::sin(0.7f * static_cast<float>(d) + 1.0f);
        }
    const Tensor qr = Rope3DEmbedding::apply<cpu>(q, t), kr = Rope3DEmbedding::apply<cpu>(k, t);
    auto score = [&](std::int64_t a, std::int64_t b) {
        double s = 0;
        for (std::int64_t d = 0; d < 128; ++d) s += qr.data<float>()[a * 128 + d] * kr.data<float>()[b * 128 + d];
        return s;
    };
    auto token = [](std::int64_t tt, std::int64_t h, std::int64_t w) { return (tt * 6 + h) * 8 + w; };
    std::printf("score(token (0,0,0), token (1,1,1)) = %.5f\n", score(token(0, 0, 0), token(1, 1, 1)));
    std::printf("score(token (2,3,4), token (3,4,5)) = %.5f  (same offset, same score)\n",
                score(token(2, 3, 4), token(3, 4, 5)));
    std::printf("score(token (0,0,0), token (0,0,5)) = %.5f  (another offset)\n", score(token(0, 0, 0), token(0, 0, 5)));
    return 0;
}
