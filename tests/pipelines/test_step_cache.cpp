// Step caching (pipelines/step_cache.hpp): each policy's decisions against its published rule,
// recomputed here from the DiT's stages, what a skipped step returns, and the pipeline's use of them.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "../golden/golden_check.hpp"
#include "hyvideo/pipelines/default_model.hpp"
#include "hyvideo/pipelines/step_cache.hpp"
#include "hyvideo/pipelines/video_size.hpp"

using namespace hyvideo;

namespace {

using DiT = HYVideoDiffusionTransformer<cpu>;

struct Steps {
    DiT dit{default_dit_config()};
    PromptEmbeds prompt = default_prompt_embeds(default_dit_config(), 1);
    Tensor x = randn(latent_shape({64, 64, 9}), 5);
    RopeTables rope;
    Steps() {
        init_weights(dit, kDefaultWeightSeed);
        rope = dit.rope_tables(x.shape());
    }
    // The inputs of step i of a run of `steps`: the latents drift as a sampler would move them.
    DiTInputs inputs(std::int64_t i, std::int64_t steps) const {
        DiTInputs in;
        in.x = cpu::add(x, cpu::scale(randn(x.shape(), 100 + static_cast<std::uint64_t>(i)), 0.05f * static_cast<float>(i)));
        in.t = Tensor::full({1}, 1000.0f * (1.0f - static_cast<float>(i) / static_cast<float>(steps)));
        in.text_states = prompt.text_states;
        in.text_mask = prompt.text_mask;
        in.text_states_2 = prompt.text_states_2;
        if (dit.config.guidance_embed) in.guidance = Tensor::full({1}, 6000.0f);
        return in;
    }
    // The blocks' residual on the image tokens for a state after embed (blocks [first, all) and the singles).
    Tensor residual(DiT::ForwardState s, std::size_t first = 0) const {
        const Tensor before = s.img;
        dit.run_double_blocks(s, first, dit.double_blocks.size());
        dit.run_single_blocks(s);
        return cpu::sub(s.img, before);
    }
};

bool identical(const Tensor& a, const Tensor& b) {
    return a.shape() == b.shape() && std::memcmp(a.contiguous().raw_data(), b.contiguous().raw_data(), a.nbytes()) == 0;
}

double rel_l1(const Tensor& a, const Tensor& b) { return cpu::mean_abs(cpu::sub(a, b)) / cpu::mean_abs(b); }

}  // namespace

TEST_CASE("step cache: the staged forward is the forward") {
    const Steps r;
    const DiTInputs in = r.inputs(1, 4);
    auto s = r.dit.embed(in, r.rope);
    r.dit.run_double_blocks(s, 0, 1);
    r.dit.run_double_blocks(s, 1, r.dit.double_blocks.size());
    r.dit.run_single_blocks(s);
    CHECK(identical(r.dit.output(s), r.dit.forward(in, r.rope)));
    NoStepCache none;
    CHECK(identical(none.forward(r.dit, in, r.rope, 1, 4), r.dit.forward(in, r.rope)));
}

TEST_CASE("step cache: TeaCache follows its rule, and a skipped step adds the last computed residual") {
    const Steps r;
    const std::int64_t steps = 6;
    // The rescaled relative L1 change of the first block's modulated input between consecutive steps,
    // from the DiT's stages and the published polynomial.
    std::vector<double> rescaled(steps, 0.0);
    Tensor previous;
    for (std::int64_t i = 0; i < steps; ++i) {
        const Tensor signal = r.dit.first_block_modulated_input(r.dit.embed(r.inputs(i, steps), r.rope));
        if (i > 0) {
            const double x = rel_l1(signal, previous);
            rescaled[i] = 7.33226126e2 * std::pow(x, 4) - 4.01131952e2 * std::pow(x, 3) + 6.75869174e1 * x * x - 3.149878 * x +
                          9.61237896e-2;
        }
        previous = signal;
    }
    // A threshold between the smallest and the largest change, so that both decisions occur.
    const double threshold = 1.5 * *std::min_element(rescaled.begin() + 1, rescaled.end());
    std::vector<bool> expected(steps, true);
    double accumulated = 0;
    for (std::int64_t i = 1; i + 1 < steps; ++i) {
        accumulated += rescaled[i];
        if (accumulated < threshold) expected[i] = false;
        else accumulated = 0;
    }
    REQUIRE(std::count(expected.begin(), expected.end(), false) > 0);

    TeaCache cache(threshold);
    Tensor residual;
    for (std::int64_t i = 0; i < steps; ++i) {
        CAPTURE(i);
        const DiTInputs in = r.inputs(i, steps);
        const std::int64_t computed_before = cache.computed;
        const Tensor v = cache.forward(r.dit, in, r.rope, i, steps);
        const bool computed = cache.computed > computed_before;
        CHECK(computed == expected[i]);
        auto s = r.dit.embed(in, r.rope);
        if (computed) {
            CHECK(identical(v, r.dit.forward(in, r.rope)));
            residual = r.residual(s);
        } else {
            s.img = cpu::add(s.img, residual);
            CHECK(identical(v, r.dit.output(s)));
        }
    }
    CHECK(cache.computed + cache.skipped == steps);
    // A threshold of 0 computes every step; the first and the last step are computed whatever it is.
    TeaCache never(0.0), always(1e9);
    for (std::int64_t i = 0; i < steps; ++i) {
        never.forward(r.dit, r.inputs(i, steps), r.rope, i, steps);
        always.forward(r.dit, r.inputs(i, steps), r.rope, i, steps);
    }
    CHECK(never.computed == steps);
    CHECK(always.computed == 2);
    CHECK(always.skipped == steps - 2);
}

TEST_CASE("step cache: First-Block-Cache compares the first block's residual with the last computed one") {
    const Steps r;
    const std::int64_t steps = 5;
    // The first block's residual at each step.
    std::vector<Tensor> first;
    for (std::int64_t i = 0; i < steps; ++i) {
        auto s = r.dit.embed(r.inputs(i, steps), r.rope);
        const Tensor before = s.img;
        r.dit.run_double_blocks(s, 0, 1);
        first.push_back(cpu::sub(s.img, before));
    }
    std::vector<double> change;  // against the previous step's
    for (std::int64_t i = 1; i < steps; ++i) change.push_back(rel_l1(first[i], first[i - 1]));
    const double threshold = 0.5 * (*std::min_element(change.begin(), change.end()) + *std::max_element(change.begin(), change.end()));

    FirstBlockCache cache(threshold);
    std::int64_t last_computed = -1;
    Tensor rest;
    for (std::int64_t i = 0; i < steps; ++i) {
        CAPTURE(i);
        const DiTInputs in = r.inputs(i, steps);
        const bool expect_reuse = last_computed >= 0 && rel_l1(first[i], first[last_computed]) < threshold;
        const Tensor v = cache.forward(r.dit, in, r.rope, i, steps);
        auto s = r.dit.embed(in, r.rope);
        r.dit.run_double_blocks(s, 0, 1);
        if (expect_reuse) {
            s.img = cpu::add(s.img, rest);
            CHECK(identical(v, r.dit.output(s)));
        } else {
            CHECK(identical(v, r.dit.forward(in, r.rope)));
            rest = r.residual(s, 1);
            last_computed = i;
        }
    }
    CHECK(cache.computed + cache.skipped == steps);
    CHECK(cache.skipped > 0);
    CHECK(cache.computed > 1);
}

TEST_CASE("step cache: the pipeline runs the policy SamplingOptions names, off by default") {
    const Steps r;
    const HunyuanVideoPipeline<DiT> pipe(r.dit);
    SamplingOptions opt;
    opt.infer_steps = 4;
    const Tensor plain = pipe.denoise(r.x, r.prompt, opt);
    opt.step_cache = {StepCacheOptions::Kind::teacache, 0.0};
    CHECK(identical(pipe.denoise(r.x, r.prompt, opt), plain));
    opt.step_cache = {StepCacheOptions::Kind::first_block, 0.0};
    CHECK(identical(pipe.denoise(r.x, r.prompt, opt), plain));
    opt.step_cache = {StepCacheOptions::Kind::teacache, 1e6};
    const Tensor skipping = pipe.denoise(r.x, r.prompt, opt);
    CHECK_FALSE(identical(skipping, plain));
    for (float v : skipping.to_vector()) REQUIRE(std::isfinite(v));
    // A policy of the caller's keeps its counts.
    TeaCache cache(1e6);
    CHECK(identical(pipe.denoise(r.x, r.prompt, opt, {}, cache), skipping));
    CHECK(cache.computed == 2);
    CHECK(cache.skipped == 2);
    opt.step_cache = {StepCacheOptions::Kind::teacache, -1.0};
    CHECK_THROWS_WITH_AS(pipe.denoise(r.x, r.prompt, opt), doctest::Contains("step cache threshold -1"), Error);
}
