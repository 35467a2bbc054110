// The sampling pipelines: golden text-to-video and image-to-video runs (every output), determinism
// across thread counts, the step callback, and the pieces around the loop (sizes, noise, guidance
// value, I2V buckets and preprocessing).
#include <cstring>
#include <memory>
#include <vector>

#include "../golden/golden_check.hpp"
#include "hyvideo/core/parallel.hpp"
#include "hyvideo/pipelines/default_model.hpp"
#include "hyvideo/io/video.hpp"
#include "hyvideo/pipelines/i2v_image.hpp"
#include "hyvideo/pipelines/video_size.hpp"

using namespace hyvideo;

TEST_CASE("golden pipeline_tiny") { check_fixture("pipeline_tiny"); }
TEST_CASE("golden i2v_token_replace") { check_fixture("i2v_token_replace"); }
TEST_CASE("golden i2v_latent_concat") { check_fixture("i2v_latent_concat"); }

namespace {

struct TinyRun {
    HYVideoDiffusionTransformer<cpu> dit{default_dit_config()};
    PromptEmbeds prompt = default_prompt_embeds(default_dit_config(), 1);
    SamplingOptions opt;
    TinyRun() {
        init_weights(dit, kDefaultWeightSeed);
        opt.infer_steps = 3;
    }
    Tensor run(const StepCallback& cb = {}) const {
        const HunyuanVideoPipeline<HYVideoDiffusionTransformer<cpu>> pipe(dit);
        return pipe.denoise(randn(latent_shape({64, 64, 9}), 123), prompt, opt, {.on_step = cb});
    }
};

}  // namespace

TEST_CASE("the same seed gives byte-identical latents on 1 and 2 threads") {
    const int saved = num_threads();
    const TinyRun r;
    set_num_threads(1);
    const Tensor one = r.run();
    set_num_threads(2);
    const Tensor two = r.run();
    set_num_threads(saved);
    REQUIRE(one.shape() == two.shape());
    CHECK(std::memcmp(one.raw_data(), two.raw_data(), one.nbytes()) == 0);
    // and the run is not trivially constant
    CHECK(golden::compare(one, randn(latent_shape({64, 64, 9}), 123)).rel_l2 > 1e-3);
}

TEST_CASE("the step callback sees every step and can stop the run") {
    const TinyRun r;
    std::vector<Tensor> seen;
    std::vector<float> ts;
    const Tensor full = r.run([&](std::int64_t, float t, const Tensor& x) {
        seen.push_back(x.clone());
        ts.push_back(t);
        return true;
    });
    REQUIRE(seen.size() == 3);
    CHECK(ts[0] == doctest::Approx(1000.0f));
    CHECK(std::memcmp(seen.back().raw_data(), full.raw_data(), full.nbytes()) == 0);
    const Tensor stopped = r.run([&](std::int64_t i, float, const Tensor&) { return i < 1; });
    CHECK(std::memcmp(stopped.raw_data(), seen[1].raw_data(), stopped.nbytes()) == 0);
}

namespace {

// A solver of the caller's: Euler that records the steps it is asked for, with state shared between
// copies so that the test can read it (a multistep solver's history lives in the same place).
struct RecordingEuler {
    FlowMatchDiscreteScheduler euler{7.0f, true};
    std::shared_ptr<std::vector<std::int64_t>> calls = std::make_shared<std::vector<std::int64_t>>();
    void set_timesteps(std::int64_t n) { euler.set_timesteps(n); }
    std::int64_t num_inference_steps() const { return euler.num_inference_steps(); }
    float timestep(std::int64_t i) const { return euler.timestep(i); }
    template <Backend B>
    Tensor step(const Tensor& v, std::int64_t i, const Tensor& x) {
        calls->push_back(i);
        return euler.step<B>(v, i, x);
    }
};

}  // namespace

static_assert(FlowSolver<FlowMatchDiscreteScheduler, cpu>);
static_assert(FlowSolver<RecordingEuler, cpu>);
static_assert(!FlowSolver<int, cpu>);

TEST_CASE("the solver is the pipeline's policy: a caller's solver runs every step, in order") {
    const TinyRun r;
    const RecordingEuler solver;
    const HunyuanVideoPipeline<HYVideoDiffusionTransformer<cpu>, RecordingEuler> pipe(r.dit, solver);
    const Tensor out = pipe.denoise(randn(latent_shape({64, 64, 9}), 123), r.prompt, r.opt);
    CHECK(*solver.calls == std::vector<std::int64_t>{0, 1, 2});
    // Euler under another name is the default pipeline, exactly.
    const Tensor reference = r.run();
    REQUIRE(out.shape() == reference.shape());
    CHECK(std::memcmp(out.raw_data(), reference.raw_data(), out.nbytes()) == 0);
}

TEST_CASE("true CFG needs negative embeddings, and they must match the prompt's length") {
    TinyRun r;
    r.opt.cfg_scale = 5.0f;
    CHECK_THROWS_WITH_AS(r.run(), doctest::Contains("negative"), Error);
    const HunyuanVideoPipeline<HYVideoDiffusionTransformer<cpu>> pipe(r.dit);
    const PromptEmbeds shorter = default_prompt_embeds(default_dit_config(), 2, 9, 4);
    CHECK_THROWS_WITH_AS(pipe.denoise(randn(latent_shape({64, 64, 9}), 1), r.prompt, r.opt, {.negative = shorter}),
                         doctest::Contains("same padded length"), Error);
}

TEST_CASE("video sizes: sides aligned up to 16 with a note, frame counts 4k+1") {
    std::string note;
    const VideoSize s = align_video_size({540, 960, 129}, &note);
    CHECK(s.height == 544);
    CHECK(s.width == 960);
    CHECK(note.find("544x960") != std::string::npos);
    note.clear();
    align_video_size({720, 1280, 129}, &note);
    CHECK(note.empty());
    CHECK(latent_shape(s) == Shape{1, 16, 33, 68, 120});
    CHECK_THROWS_WITH_AS(align_video_size({720, 1280, 128}), doctest::Contains("4k+1"), Error);
    CHECK_THROWS_AS(align_video_size({0, 1280, 129}), Error);
}

TEST_CASE("noise: reproducible from the seed, standard normal, fp16-rounded") {
    const Tensor a = randn({1, 16, 5, 16, 16}, 7), b = randn({1, 16, 5, 16, 16}, 7), c = randn({1, 16, 5, 16, 16}, 8);
    CHECK(std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0);
    CHECK(std::memcmp(a.raw_data(), c.raw_data(), a.nbytes()) != 0);
    double sum = 0, sq = 0;
    for (float v : a.to_vector()) {
        sum += v;
        sq += static_cast<double>(v) * v;
        REQUIRE(f16_to_f32(f32_to_f16(v)) == v);
    }
    const double n = static_cast<double>(a.numel());
    CHECK(std::abs(sum / n) < 0.03);
    CHECK(std::abs(std::sqrt(sq / n) - 1.0) < 0.03);
}

TEST_CASE("embedded guidance: exact for the fp32 fixtures, bf16-rounded as the official run") {
    CHECK(embedded_guidance_value(6.0f, false) == 6000.0f);
    CHECK(embedded_guidance_value(6.0f, true) == 6016.0f);
    CHECK(embedded_guidance_value(1.0f, true) == 1000.0f);
    CHECK(embedded_guidance_value(3.5f, true) == 3504.0f);
    CHECK(embedded_guidance_value(5.0f, true) == 4992.0f);
    CHECK(embedded_guidance_value(7.0f, true) == 7008.0f);
    CHECK(embedded_guidance_value(7.5f, true) == 7488.0f);
}

TEST_CASE("I2V buckets follow the official choice") {
    CHECK(i2v_buckets(960).size() > 10);
    const Bucket b720 = closest_bucket(1080, 1920, i2v_buckets(i2v_base_size("720p")));
    CHECK(b720.height == 704);
    CHECK(b720.width == 1248);
    const Bucket b540 = closest_bucket(1080, 1920, i2v_buckets(i2v_base_size("540p")));
    CHECK(b540.height == 544);
    CHECK(b540.width == 928);
    for (const auto& b : i2v_buckets(480)) {
        CHECK(b.height % 32 == 0);
        CHECK(std::max(b.height, b.width) <= 4 * std::min(b.height, b.width));
        CHECK(b.height * b.width <= 480 * 480);
    }
    CHECK_THROWS_AS(i2v_base_size("1080p"), Error);
}

TEST_CASE("I2V preprocessing: resize the shorter side, center crop, map to [-1, 1]") {
    Frames img;
    img.count = 1;
    img.height = 60;
    img.width = 100;
    img.rgb.resize(60 * 100 * 3);
    for (std::int64_t y = 0; y < 60; ++y)
        for (std::int64_t x = 0; x < 100; ++x) {
            img.rgb[(y * 100 + x) * 3 + 0] = 255;                                    // red everywhere
            img.rgb[(y * 100 + x) * 3 + 1] = x < 50 ? 0 : 255;                        // green on the right half
            img.rgb[(y * 100 + x) * 3 + 2] = static_cast<std::uint8_t>(y < 30 ? 0 : 128);
        }
    const Tensor t = preprocess_i2v_image(img, {32, 48});
    CHECK(t.shape() == Shape{1, 3, 1, 32, 48});
    CHECK(t.item({0, 0, 0, 5, 5}) == doctest::Approx(1.0f));         // 255 -> 1
    CHECK(t.item({0, 1, 0, 16, 2}) == doctest::Approx(-1.0f));       // 0 -> -1 (left half)
    CHECK(t.item({0, 1, 0, 16, 45}) == doctest::Approx(1.0f));       // right half
    CHECK(t.item({0, 2, 0, 30, 10}) == doctest::Approx(128.0f / 255.0f * 2 - 1).epsilon(1e-5));
    for (float v : t.to_vector()) REQUIRE((v >= -1.0f && v <= 1.0f));
}

TEST_CASE("classifier-free guidance and its rescale follow the reference formulas") {
    const Tensor u = randn({2, 3, 2, 2, 2}, 5, false), c = randn({2, 3, 2, 2, 2}, 6, false);
    const Tensor plain = classifier_free_guidance<cpu>(u, c, 4.0f);
    const auto pu = u.to_vector(), pc = c.to_vector(), pv = plain.to_vector();
    for (std::size_t i = 0; i < pv.size(); ++i) CHECK(pv[i] == doctest::Approx(pu[i] + 4.0f * (pc[i] - pu[i])));
    // rescale_noise_cfg: r·v·(std(c)/std(v)) + (1−r)·v, unbiased std per sample, computed here in double.
    const Tensor rescaled = classifier_free_guidance<cpu>(u, c, 4.0f, 0.7f);
    const auto pr = rescaled.to_vector();
    const std::size_t n = pv.size() / 2;
    for (std::size_t b = 0; b < 2; ++b) {
        auto stdev = [&](const std::vector<float>& x) {
            double m = 0, s = 0;
            for (std::size_t i = 0; i < n; ++i) m += x[b * n + i];
            m /= static_cast<double>(n);
            for (std::size_t i = 0; i < n; ++i) s += (x[b * n + i] - m) * (x[b * n + i] - m);
            return std::sqrt(s / static_cast<double>(n - 1));
        };
        const double ratio = stdev(pc) / stdev(pv);
        for (std::size_t i = 0; i < n; ++i)
            CHECK(pr[b * n + i] == doctest::Approx(0.7 * pv[b * n + i] * ratio + 0.3 * pv[b * n + i]).epsilon(1e-5));
    }
}
