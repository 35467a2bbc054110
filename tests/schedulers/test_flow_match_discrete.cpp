// FlowMatchDiscreteScheduler (schedulers/flow_match_discrete.hpp): the golden fixture, and sigmas,
// timesteps and Euler steps against their closed forms written with xtensor.
#include <cstdint>
#include <vector>

#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xbuilder.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "../golden/golden_check.hpp"
#include "hyvideo/interop/xtensor.hpp"
#include "hyvideo/schedulers/flow_match_discrete.hpp"

using namespace hyvideo;

TEST_CASE("golden scheduler") { check_fixture("scheduler"); }

TEST_CASE("flow match scheduler: sigmas and timesteps follow the shifted linspace") {
    for (const bool reverse : {true, false})
        for (const float shift : {1.0f, 7.0f, 17.0f})
            for (const std::int64_t n : {1, 2, 7, 50}) {
                INFO("reverse=", reverse, " shift=", shift, " n=", n);
                FlowMatchDiscreteScheduler s(shift, reverse);
                s.set_timesteps(n);
                REQUIRE(s.sigmas.size() == static_cast<std::size_t>(n + 1));
                REQUIRE(s.timesteps.size() == static_cast<std::size_t>(n));

                // σ = shift·u / (1 + (shift − 1)·u) for u = linspace(1, 0, n + 1), then 1 − σ unless reversed.
                const xt::xarray<double> u = xt::linspace<double>(1.0, 0.0, static_cast<std::size_t>(n + 1));
                xt::xarray<double> sigma = shift * u / (1.0 + (shift - 1.0) * u);
                if (!reverse) sigma = 1.0 - sigma;
                const auto sigmas = xt::adapt(s.sigmas, {s.sigmas.size()});
                CHECK(xt::allclose(sigmas, sigma, 0.0, 1e-6));
                // Both ends are exact, and the schedule is monotone in the reverse direction's sense.
                CHECK(s.sigmas.front() == (reverse ? 1.0f : 0.0f));
                CHECK(s.sigmas.back() == (reverse ? 0.0f : 1.0f));
                const auto steps = xt::view(sigmas, xt::range(1, n + 1)) - xt::view(sigmas, xt::range(0, n));
                CHECK(xt::all(reverse ? xt::eval(steps < 0.0f) : xt::eval(steps > 0.0f)));

                // timesteps = 1000·σ_i for the first n sigmas, in float as the reference computes them.
                const auto timesteps = xt::adapt(s.timesteps, {s.timesteps.size()});
                CHECK(xt::all(xt::equal(timesteps, xt::view(sigmas, xt::range(0, n)) * 1000.0f)));
            }
}

TEST_CASE("flow match scheduler: step(i) is x + v·(σ_{i+1} − σ_i), bit for bit") {
    FlowMatchDiscreteScheduler s(7.0f, true);
    s.set_timesteps(5);
    const xt::xarray<float> x0 = xt::linspace<float>(-1.0f, 1.0f, 24);
    const xt::xarray<float> v = xt::cos(xt::linspace<float>(0.0f, 5.0f, 24));
    const Tensor sample = from_xtensor(xt::reshape_view(x0, {2, 3, 4}));
    const Tensor velocity = from_xtensor(xt::reshape_view(v, {2, 3, 4}));
    Tensor x = sample;
    xt::xarray<float> expected = xt::reshape_view(x0, {2, 3, 4});
    for (std::int64_t i = 0; i < s.num_inference_steps(); ++i) {
        x = s.step<cpu>(velocity, i, x);
        const float dt = s.sigmas[i + 1] - s.sigmas[i];
        expected = expected + xt::reshape_view(v, {2, 3, 4}) * dt;
        CHECK(xt::all(xt::equal(as_xtensor<float>(x), expected)));
    }
    CHECK_THROWS_AS((void)s.step<cpu>(velocity, 5, x), Error);
    CHECK_THROWS_AS((void)s.step<cpu>(velocity.reshape({6, 4}), 0, x), Error);
}
