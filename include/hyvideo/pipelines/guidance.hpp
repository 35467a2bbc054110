#pragma once
// Classifier-free guidance (official pipelines/pipeline_hunyuan_video.py): the batch is
// [negative, positive]; v = v_u + s·(v_c − v_u), optionally rescaled toward the conditional
// prediction's standard deviation (rescale_noise_cfg, "Common Diffusion Noise Schedules and Sample
// Steps are Flawed", §3.4).
#include <cmath>
#include <vector>

#include "hyvideo/backend/backend.hpp"

namespace hyvideo {

// v_uncond + scale·(v_cond − v_uncond), then, if rescale > 0,
// r·v·(std(v_cond)/std(v)) + (1 − r)·v with unbiased std per sample over all non-batch dims.
template <Backend B>
Tensor classifier_free_guidance(const Tensor& v_uncond, const Tensor& v_cond, float scale, float rescale = 0.0f) {
    Tensor v = B::add(v_uncond, B::scale(B::sub(v_cond, v_uncond), scale));
    if (rescale <= 0.0f) return v;
    const std::vector<double> std_cond = B::sample_std(v_cond), std_cfg = B::sample_std(v);
    std::vector<Tensor> rows;
    for (std::int64_t b = 0; b < v.size(0); ++b) {
        const double ratio = std_cond[b] / std_cfg[b];
        const float factor = static_cast<float>(rescale * ratio + (1.0 - rescale));
        rows.push_back(B::scale(v.slice(0, b, b + 1), factor));
    }
    return B::cat(rows, 0);
}

}  // namespace hyvideo
