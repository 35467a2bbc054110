#pragma once
// FlowMatchDiscreteScheduler (official diffusion/schedulers/scheduling_flow_match_discrete.py):
// sigmas from linspace(1, 0, N+1) with the SD3 time shift, optionally reversed, and Euler steps
// x <- x + v·(σ_{i+1} − σ_i). All arithmetic is float32, like the reference.
#include <cmath>
#include <cstdint>
#include <vector>

#include "hyvideo/backend/backend.hpp"

namespace hyvideo {

struct FlowMatchDiscreteScheduler {
    std::int64_t num_train_timesteps = 1000;
    float shift = 1.0f;
    // The class default is true; the official CLI's --flow-reverse defaults to false, which gives σ
    // running 0 -> 1 and garbage videos, so every official command passes it (docs/model.md#scheduler).
    bool reverse = true;

    std::vector<float> sigmas;     // N + 1 values
    std::vector<float> timesteps;  // N values, num_train_timesteps · σ_i

    FlowMatchDiscreteScheduler() = default;
    FlowMatchDiscreteScheduler(float shift_, bool reverse_, std::int64_t train_steps = 1000)
        : num_train_timesteps(train_steps), shift(shift_), reverse(reverse_) {}

    // torch.linspace(start, end, n) in float32: the first half counts up from start, the second half
    // down from end, so both endpoints are exact.
    static std::vector<float> linspace(float start, float end, std::int64_t n) {
        std::vector<float> v(static_cast<std::size_t>(n));
        if (n == 1) v[0] = start;
        if (n <= 1) return v;
        const float step = (end - start) / static_cast<float>(n - 1);
        for (std::int64_t i = 0; i < n; ++i)
            v[i] = i < n / 2 ? start + step * static_cast<float>(i) : end - step * static_cast<float>(n - 1 - i);
        return v;
    }

    // More steps than this are a mistake, not a schedule (the official default is 50): the bound keeps
    // N + 1 from overflowing and a typo from allocating gigabytes of sigmas.
    static constexpr std::int64_t max_inference_steps = 100000;

    void set_timesteps(std::int64_t num_inference_steps) {
        HYVIDEO_CHECK(num_inference_steps > 0 && num_inference_steps <= max_inference_steps,
                      "set_timesteps: the number of steps must be in 1..", max_inference_steps, ", got ",
                      num_inference_steps);
        HYVIDEO_CHECK(std::isfinite(shift) && shift > 0.0f, "set_timesteps: the time shift must be a positive finite ",
                      "number, got ", shift);
        sigmas = linspace(1.0f, 0.0f, num_inference_steps + 1);
        for (float& s : sigmas) {
            s = (shift * s) / (1.0f + (shift - 1.0f) * s);
            if (!reverse) s = 1.0f - s;
        }
        timesteps.assign(sigmas.begin(), sigmas.end() - 1);
        for (float& t : timesteps) t *= static_cast<float>(num_train_timesteps);
    }

    std::int64_t num_inference_steps() const { return static_cast<std::int64_t>(timesteps.size()); }
    float timestep(std::int64_t i) const { return timesteps.at(static_cast<std::size_t>(i)); }

    // One Euler step at index i: sample + model_output·(σ_{i+1} − σ_i).
    template <Backend B>
    Tensor step(const Tensor& model_output, std::int64_t i, const Tensor& sample) const {
        HYVIDEO_CHECK(i >= 0 && i < num_inference_steps(), "scheduler step ", i, " outside 0..",
                      num_inference_steps() - 1, " (call set_timesteps first)");
        HYVIDEO_CHECK(model_output.shape() == sample.shape(), "scheduler step: velocity ",
                      shape_str(model_output.shape()), " vs sample ", shape_str(sample.shape()));
        const float dt = sigmas[i + 1] - sigmas[i];
        return B::add(sample, B::scale(model_output, dt));
    }
};

}  // namespace hyvideo
