#pragma once
// Golden case `scheduler`: sigmas and timesteps for each configured (steps, shift, reverse), and a
// chain of Euler steps x_{i+1} = step(v_i, i, x_i) from input x0.
#include <string>

#include "hyvideo/golden/case_result.hpp"
#include "hyvideo/golden/fixture.hpp"
#include "hyvideo/schedulers/flow_match_discrete.hpp"

namespace hyvideo::golden {

template <Backend B>
CaseResult run_scheduler(const Fixture& f) {
    CaseResult r;
    const auto& tables = f.config().at("tables");
    for (std::size_t i = 0; i < tables.size(); ++i) {
        const auto& t = tables[i];
        FlowMatchDiscreteScheduler s(Fixture::get<float>(t, "shift"), Fixture::get<bool>(t, "reverse"),
                                     t.contains("num_train_timesteps") ? Fixture::get<std::int64_t>(t, "num_train_timesteps")
                                                                       : 1000);
        const auto n = Fixture::get<std::int64_t>(t, "num_inference_steps");
        s.set_timesteps(n);
        r.outputs["sigmas" + std::to_string(i)] =
            Tensor::from_vector<float>({static_cast<std::int64_t>(s.sigmas.size())}, s.sigmas);
        r.outputs["timesteps" + std::to_string(i)] = Tensor::from_vector<float>({n}, s.timesteps);
    }
    const auto& st = f.config().at("stepping");
    FlowMatchDiscreteScheduler s(Fixture::get<float>(st, "shift"), Fixture::get<bool>(st, "reverse"));
    const auto n = Fixture::get<std::int64_t>(st, "num_inference_steps");
    s.set_timesteps(n);
    Tensor x = B::upload(f.input("x0"));
    for (std::int64_t i = 0; i < n; ++i) {
        x = s.template step<B>(B::upload(f.input("v" + std::to_string(i))), i, x);
        r.outputs["x" + std::to_string(i + 1)] = B::download(x);
    }
    return r;
}

}  // namespace hyvideo::golden
