#pragma once
// The sinusoidal timestep embedding of the DiT (cos half first, then sin).
#include <cmath>
#include <cstdint>

#include "hyvideo/backend/cpu/elementwise.hpp"

namespace hyvideo::cpu_detail {

// freqs_i = exp(-ln(max_period) * i / half) and args = t * freqs, in float as the reference computes
// them (its arange is float32, so the exponent is rounded to float before exp).
inline Tensor timestep_embedding(const Tensor& t, std::int64_t dim, float max_period) {
    require_f32(t, "timestep_embedding");
    HYVIDEO_CHECK(t.dim() == 1, "timestep_embedding: t must be [N], got ", shape_str(t.shape()));
    HYVIDEO_CHECK(dim > 0, "timestep_embedding: dim must be positive");
    const std::int64_t N = t.size(0), half = dim / 2;
    Tensor ts = t.contiguous();
    Tensor out = Tensor::zeros({N, dim});  // an odd dim keeps a zero last column, as the reference pads
    const float neg_log = -static_cast<float>(std::log(static_cast<double>(max_period)));
    for (std::int64_t n = 0; n < N; ++n) {
        const float tv = ts.data<const float>()[n];
        float* row = out.data<float>() + n * dim;
        for (std::int64_t i = 0; i < half; ++i) {
            const float freq = std::exp(neg_log * static_cast<float>(i) / static_cast<float>(half));
            const float arg = tv * freq;
            row[i] = std::cos(arg);
            row[half + i] = std::sin(arg);
        }
    }
    return out;
}

}  // namespace hyvideo::cpu_detail
