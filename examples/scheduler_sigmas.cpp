// The flow-matching schedule: σ from 1 (pure noise) to 0 (data), bent by the SD3 time shift.
//
// σ(s) = shift·s / (1 + (shift−1)·s) over s = linspace(1, 0, N+1). A larger shift spends more steps
// at high noise, where a video's layout and motion are decided. Every official command passes
// --flow-reverse; without it σ runs 0 -> 1 and the output is noise.
#include <cstdio>

#include "hyvideo/schedulers/flow_match_discrete.hpp"

using namespace hyvideo;

int main() {
    for (float shift : {1.0f, 7.0f, 17.0f}) {
        FlowMatchDiscreteScheduler s(shift, /*reverse=*/true);
        s.set_timesteps(10);
        std::printf("shift %4.1f: sigma", shift);
        for (float v : s.sigmas) std::printf(" %.3f", v);
        std::printf("\n            t    ");
        for (float v : s.timesteps) std::printf(" %5.1f", v);
        std::printf("\n");
    }
    FlowMatchDiscreteScheduler wrong(7.0f, /*reverse=*/false);
    wrong.set_timesteps(10);
    std::printf("without --flow-reverse the schedule runs backwards: sigma %.3f ... %.3f\n", wrong.sigmas.front(),
                wrong.sigmas.back());

    // One Euler step moves x along the velocity by the change in σ.
    FlowMatchDiscreteScheduler s(7.0f, true);
    s.set_timesteps(50);
    std::printf("50 steps at shift 7: dt_0 = %.6f, dt_49 = %.6f (small steps first, a large one last)\n",
                s.sigmas[1] - s.sigmas[0], s.sigmas[50] - s.sigmas[49]);
    return 0;
}
