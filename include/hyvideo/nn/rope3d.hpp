#pragma once
// 3D rotary position embedding of the DiT (official modules/posemb_layers.py,
// get_nd_rotary_pos_embed with use_real=True): per-axis tables concatenated along the head dim,
// interleaved pairs, applied to image tokens of q and k after QK-norm.
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "hyvideo/backend/backend.hpp"

namespace hyvideo {

struct RopeTables {
    Tensor cos, sin;  // [S, sum(rope_dim_list)], S = prod(sizes), tokens in (t, h, w) order
};

// Builds the tables on the host in float, with the reference's operation order: ω_j =
// 1 / θ^(2j/d) from a float32 arange, positions 0..n-1 per axis, "ij" meshgrid flattened t-major,
// and cos/sin of each frequency repeated for the pair (2j, 2j+1).
inline RopeTables rope3d_tables(const std::vector<std::int64_t>& rope_dim_list, const std::vector<std::int64_t>& sizes,
                                float theta = 256.0f, float theta_rescale_factor = 1.0f,
                                float interpolation_factor = 1.0f) {
    HYVIDEO_CHECK(rope_dim_list.size() == sizes.size() && !sizes.empty(), "rope3d_tables: ", rope_dim_list.size(),
                  " axis dims for ", sizes.size(), " axis sizes");
    std::int64_t D = 0, S = 1;
    for (std::size_t a = 0; a < sizes.size(); ++a) {
        HYVIDEO_CHECK(rope_dim_list[a] > 0 && rope_dim_list[a] % 2 == 0, "rope3d_tables: axis dim ",
                      rope_dim_list[a], " must be positive and even");
        HYVIDEO_CHECK(sizes[a] > 0, "rope3d_tables: axis size ", sizes[a], " must be positive");
        D += rope_dim_list[a];
        S *= sizes[a];
    }
    RopeTables t{Tensor::empty({S, D}), Tensor::empty({S, D})};
    float* pc = t.cos.data<float>();
    float* ps = t.sin.data<float>();
    std::int64_t col0 = 0;
    for (std::size_t a = 0; a < sizes.size(); ++a) {
        const std::int64_t d = rope_dim_list[a];
        float th = theta;
        if (theta_rescale_factor != 1.0f)
            th *= std::pow(theta_rescale_factor, static_cast<float>(d) / static_cast<float>(d - 2));
        std::vector<float> freqs(static_cast<std::size_t>(d / 2));
        for (std::int64_t j = 0; j < d / 2; ++j)
            freqs[j] = 1.0f / std::pow(th, static_cast<float>(2 * j) / static_cast<float>(d));
        // Token index s = ((i0·n1) + i1)·n2 + i2: the stride of axis a is the product of later sizes.
        std::int64_t inner = 1;
        for (std::size_t b = a + 1; b < sizes.size(); ++b) inner *= sizes[b];
        for (std::int64_t s = 0; s < S; ++s) {
            const float pos = static_cast<float>((s / inner) % sizes[a]) * interpolation_factor;
            for (std::int64_t j = 0; j < d / 2; ++j) {
                const float phi = pos * freqs[j];
                const float c = std::cos(phi), sn = std::sin(phi);
                pc[s * D + col0 + 2 * j] = pc[s * D + col0 + 2 * j + 1] = c;
                ps[s * D + col0 + 2 * j] = ps[s * D + col0 + 2 * j + 1] = sn;
            }
        }
        col0 += d;
    }
    return t;
}

}  // namespace hyvideo
