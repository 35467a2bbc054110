#pragma once
// What HunyuanVideoPipeline needs of a sampler, as a concept, so that a new solver slots in as the
// pipeline's second template argument: HunyuanVideoPipeline<DiT, MySolver> pipe(dit, MySolver{...}).
//
//   set_timesteps(n)          prepare n steps (called once per denoise, on a copy of the solver)
//   num_inference_steps()     n
//   timestep(i)               the DiT's timestep input at step i (1000 σ_i for flow matching)
//   step<B>(v, i, x)          the latents after step i, from the DiT's velocity v at x
//
// step may keep state between calls (a multistep solver's history): the pipeline calls it once per
// step, in order, on its own copy. FlowMatchDiscreteScheduler (Euler, the official sampler) is the
// default and the reference.
#include <concepts>
#include <cstdint>

#include "hyvideo/core/tensor.hpp"

namespace hyvideo {

template <class S, class B>
concept FlowSolver = std::copy_constructible<S> && requires(S s, const S cs, std::int64_t i, const Tensor& t) {
    s.set_timesteps(i);
    { cs.num_inference_steps() } -> std::convertible_to<std::int64_t>;
    { cs.timestep(i) } -> std::convertible_to<float>;
    { s.template step<B>(t, i, t) } -> std::same_as<Tensor>;
};

}  // namespace hyvideo
