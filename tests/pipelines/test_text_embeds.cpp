// The --text-embeds file (pipelines/text_embeds.hpp) as untrusted input: values that would only show
// up as a NaN video after the whole sampling run are refused when the file is read, naming the tensor
// and the first bad index.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "hyvideo/io/safetensors.hpp"
#include "hyvideo/pipelines/text_embeds.hpp"
#include "../support/error_of.hpp"
#include "../support/temp_dir.hpp"

using namespace hyvideo;

using hyvideo::test::error_of;

namespace {

HYVideoConfig text_config() {
    HYVideoConfig c;
    c.text_states_dim = 4;
    c.text_states_dim_2 = 3;
    return c;
}

struct Embeds {
    std::vector<float> states = std::vector<float>(3 * 4, 0.5f);  // L = 3
    std::vector<float> mask{1, 1, 0};
    std::vector<float> pooled{0.1f, 0.2f, 0.3f};
    DType mask_dtype = DType::f32;
    DType states_dtype = DType::f32;
};

std::filesystem::path write(const test::TempDir& dir, const Embeds& e, const std::string& name = "embeds.safetensors") {
    const auto path = dir / name;
    save_safetensors(path, {{"text_states", Tensor::from_vector<float>({1, 3, 4}, e.states).to(e.states_dtype)},
                            {"text_mask", Tensor::from_vector<float>({1, 3}, e.mask).to(e.mask_dtype)},
                            {"text_states_2", Tensor::from_vector<float>({1, 3}, e.pooled)}});
    return path;
}

}  // namespace

TEST_CASE("text embeds: NaN or Inf in the states is refused up front, naming the tensor and the index") {
    // Finding: a NaN in text_states was accepted and produced a NaN video after sampling.
    const test::TempDir dir;
    Embeds e;
    e.states[1 * 4 + 2] = std::numeric_limits<float>::quiet_NaN();
    auto path = write(dir, e);
    CHECK(error_of([&] { read_text_embeds(path, text_config()); }) ==
          path.string() + ": 'text_states' holds a non-finite value at [0, 1, 2] (nan)");
    e = Embeds{};
    e.pooled[2] = -std::numeric_limits<float>::infinity();
    path = write(dir, e);
    CHECK(error_of([&] { read_text_embeds(path, text_config()); }) ==
          path.string() + ": 'text_states_2' holds a non-finite value at [0, 2] (-inf)");
    // Stored in bf16 too.
    e = Embeds{};
    e.states[0] = std::numeric_limits<float>::infinity();
    e.states_dtype = DType::bf16;
    path = write(dir, e);
    CHECK_THROWS_WITH_AS(read_text_embeds(path, text_config()), doctest::Contains("'text_states' holds a non-finite value at [0, 0, 0] (inf)"),
                         Error);
    // The negative prompt's tensors get the same check under their own names.
    e = Embeds{};
    const auto states = Tensor::from_vector<float>({1, 3, 4}, e.states);
    auto bad = e.states;
    bad[5] = std::numeric_limits<float>::quiet_NaN();
    save_safetensors(dir / "neg.safetensors", {{"text_states", states},
                                               {"text_mask", Tensor::from_vector<float>({1, 3}, e.mask)},
                                               {"text_states_2", Tensor::from_vector<float>({1, 3}, e.pooled)},
                                               {"negative_text_states", Tensor::from_vector<float>({1, 3, 4}, bad)},
                                               {"negative_text_mask", Tensor::from_vector<float>({1, 3}, e.mask)},
                                               {"negative_text_states_2", Tensor::from_vector<float>({1, 3}, e.pooled)}});
    CHECK_THROWS_WITH_AS(read_text_embeds(dir / "neg.safetensors", text_config()),
                         doctest::Contains("'negative_text_states' holds a non-finite value at [0, 1, 1] (nan)"), Error);
}

TEST_CASE("text embeds: a mask holds 0 and 1 only, a prefix of ones") {
    // Finding: a NaN (or 0.5, or 2) in an f32 mask counted as a valid token.
    const test::TempDir dir;
    Embeds e;
    e.mask = {1, std::numeric_limits<float>::quiet_NaN(), 0};
    auto path = write(dir, e);
    CHECK(error_of([&] { read_text_embeds(path, text_config()); }) == path.string() + ": 'text_mask' must hold 0 or 1, got nan at [0, 1]");
    e.mask = {1, 0.5f, 0};
    path = write(dir, e);
    CHECK_THROWS_WITH_AS(read_text_embeds(path, text_config()), doctest::Contains("'text_mask' must hold 0 or 1, got 0.5 at [0, 1]"), Error);
    e.mask = {2, 0, 0};
    e.mask_dtype = DType::i64;
    path = write(dir, e);
    CHECK_THROWS_WITH_AS(read_text_embeds(path, text_config()), doctest::Contains("'text_mask' must hold 0 or 1, got 2 at [0, 0]"), Error);
    e.mask = {0, 1, 1};
    path = write(dir, e);
    CHECK_THROWS_WITH_AS(read_text_embeds(path, text_config()), doctest::Contains("must mark a prefix of valid tokens"), Error);
    // Good files, in every mask dtype the format names.
    for (DType t : {DType::f32, DType::i64, DType::boolean}) {
        e = Embeds{};
        e.mask_dtype = t;
        path = write(dir, e);
        const auto f = read_text_embeds(path, text_config());
        CHECK(f.prompt.text_mask.to_vector() == std::vector<float>{1, 1, 0});
        CHECK(f.prompt.text_states.to_vector() == e.states);
        CHECK_FALSE(f.negative);
    }
}
