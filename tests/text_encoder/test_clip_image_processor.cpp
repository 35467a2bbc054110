// text_encoder/clip_image_processor: HunyuanVideo-I2V's image input to the llava encoder. The resized and
// cropped uint8 images match the fixture (transformers 4.39.3 CLIPImageProcessor on mainline Pillow) byte
// for byte, and pixel_values to float32 rounding; the other tests pin what the fixture does not reach
// (portrait images, skipped passes, upscaling, padding) and the errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyvideo/golden/compare.hpp"
#include "hyvideo/io/safetensors.hpp"
#include "hyvideo/text_encoder/clip_image_processor.hpp"
#include "../support/error_of.hpp"

namespace fs = std::filesystem;
using namespace hyvideo;
using hyvideo::test::error_of;

namespace {

const fs::path kFixture = fs::path(HYVIDEO_TEST_DATA_DIR) / "golden" / "text" / "text_llava_i2v.safetensors";

const SafetensorsFile& fixture() {
    static const SafetensorsFile f = SafetensorsFile::open(kFixture);
    return f;
}

// The number of bytes in which two uint8 images differ (their shapes must agree).
std::int64_t differing_bytes(const Tensor& a, const Tensor& b) {
    REQUIRE(a.shape() == b.shape());
    const Tensor ca = a.contiguous(), cb = b.contiguous();  // the spans must not outlive copies
    const auto x = ca.span<const std::uint8_t>(), y = cb.span<const std::uint8_t>();
    std::int64_t n = 0;
    for (std::size_t i = 0; i < x.size(); ++i) n += x[i] != y[i];
    return n;
}

bool same_floats(const Tensor& a, const Tensor& b) {
    if (a.shape() != b.shape()) return false;
    const Tensor ca = a.contiguous(), cb = b.contiguous();
    const auto x = ca.span<const float>(), y = cb.span<const float>();
    for (std::size_t i = 0; i < x.size(); ++i)
        if (x[i] != y[i]) return false;
    return true;
}

Tensor transpose_hw(const Tensor& image) { return image.permute({1, 0, 2}).contiguous(); }

// `row` ([1, W, 3]) stacked n times.
Tensor repeat_rows(const Tensor& row, std::int64_t n) {
    const Tensor c = row.contiguous();
    const auto r = c.span<const std::uint8_t>();
    Tensor t = Tensor::empty({n, row.size(1), 3}, DType::u8);
    for (std::int64_t y = 0; y < n; ++y) std::copy(r.begin(), r.end(), t.data<std::uint8_t>() + y * static_cast<std::int64_t>(r.size()));
    return t;
}

// A deterministic RGB image with edges, gradients and noise, which exercises the negative lobes.
Tensor test_image(std::int64_t h, std::int64_t w, std::uint32_t seed = 1) {
    Tensor t = Tensor::empty({h, w, 3}, DType::u8);
    auto* p = t.data<std::uint8_t>();
    std::uint32_t s = seed;
    for (std::int64_t y = 0; y < h; ++y)
        for (std::int64_t x = 0; x < w; ++x)
            for (std::int64_t c = 0; c < 3; ++c) {
                s = s * 1664525u + 1013904223u;
                const bool edge = ((x / 7) + (y / 5)) % 2 == 0;
                const auto v = (edge ? 230 : 20) + static_cast<int>((x * 3 + y * 2 + c * 50) % 40) + static_cast<int>(s >> 28);
                p[(y * w + x) * 3 + c] = static_cast<std::uint8_t>(std::min(v, 255));
            }
    return t;
}

const char* kLlavaPreprocessorConfig = R"({
  "crop_size": {"height": 336, "width": 336},
  "do_center_crop": true,
  "do_convert_rgb": true,
  "do_normalize": true,
  "do_rescale": true,
  "do_resize": true,
  "image_mean": [0.48145466, 0.4578275, 0.40821073],
  "image_processor_type": "CLIPImageProcessor",
  "image_std": [0.26862954, 0.26130258, 0.27577711],
  "processor_class": "LlavaProcessor",
  "resample": 3,
  "rescale_factor": 0.00392156862745098,
  "size": {"shortest_edge": 336}
})";

}  // namespace

TEST_CASE("CLIPImageProcessor reproduces the text_llava_i2v fixture: resize and crop exact, pixel_values") {
    const SafetensorsFile& f = fixture();
    // Configured from the fixture's own copy of the llava folder's preprocessor_config.json.
    const auto config = nlohmann::json::parse(f.metadata().at("config"));
    const CLIPImageProcessor p = CLIPImageProcessor::from_json(config.at("image_processor"), "fixture image_processor");
    const ProcessedImage out = p.preprocess(f.tensor("input.image"));

    const Tensor resized = f.tensor("output.resized_image"), cropped = f.tensor("output.cropped_image");
    REQUIRE(out.resized.shape() == Shape{336, 448, 3});
    REQUIRE(out.cropped.shape() == Shape{336, 336, 3});
    const std::int64_t bad_resized = differing_bytes(out.resized, resized);
    const std::int64_t bad_cropped = differing_bytes(out.cropped, cropped);
    MESSAGE("resized_image: ", resized.numel() - bad_resized, " of ", resized.numel(), " bytes equal; cropped_image: ",
            cropped.numel() - bad_cropped, " of ", cropped.numel());
    CHECK(bad_resized == 0);
    CHECK(bad_cropped == 0);

    const Tensor ref = f.tensor("output.pixel_values");
    REQUIRE(out.pixel_values.shape() == ref.shape());
    REQUIRE(out.pixel_values.dtype() == DType::f32);
    const golden::Comparison c = golden::compare(out.pixel_values, ref);
    MESSAGE("pixel_values: rel L2 ", c.rel_l2, ", max abs ", c.max_abs, ", bit-identical ",
            same_floats(out.pixel_values, ref));
    CHECK(c.rel_l2 <= 1e-6);
}

TEST_CASE("an image already shortest_edge on its short side is not resampled") {
    const SafetensorsFile& f = fixture();
    const CLIPImageProcessor p;  // the defaults are HunyuanVideo-I2V's configuration
    const Tensor resized = f.tensor("output.resized_image"), cropped = f.tensor("output.cropped_image");
    const Tensor ref = f.tensor("output.pixel_values");

    // 336 x 448: the resize keeps the size (PIL copies), so the fixture's crop and pixel_values follow.
    const ProcessedImage a = p.preprocess(resized);
    CHECK(differing_bytes(a.resized, resized) == 0);
    CHECK(differing_bytes(a.cropped, cropped) == 0);
    CHECK(same_floats(a.pixel_values, ref));

    // 336 x 336: every step but the normalisation is the identity.
    const ProcessedImage b = p.preprocess(cropped);
    CHECK(differing_bytes(b.resized, cropped) == 0);
    CHECK(differing_bytes(b.cropped, cropped) == 0);
    CHECK(same_floats(b.pixel_values, ref));

    // A strided view (a crop of the fixture's image) is taken as its values.
    const ProcessedImage v = p.preprocess(resized.slice(1, 56, 392));
    CHECK(differing_bytes(v.cropped, cropped) == 0);
}

TEST_CASE("resize output size: transformers' get_resize_output_image_size") {
    using P = std::pair<std::int64_t, std::int64_t>;
    CHECK(shortest_edge_size(480, 640, 336) == P{336, 448});
    CHECK(shortest_edge_size(640, 480, 336) == P{448, 336});
    CHECK(shortest_edge_size(333, 500, 336) == P{336, 504});  // 504.50... truncated
    CHECK(shortest_edge_size(500, 333, 336) == P{504, 336});
    CHECK(shortest_edge_size(500, 500, 336) == P{336, 336});
    CHECK(shortest_edge_size(1080, 1920, 336) == P{336, 597});  // 597.33...
    CHECK(shortest_edge_size(7, 1000, 336) == P{336, 48000});
    CHECK(shortest_edge_size(200, 300, 336) == P{336, 504});  // upscaling
}

TEST_CASE("portrait images resize along the other axis") {
    const CLIPImageProcessor p;
    const Tensor landscape_in = fixture().tensor("input.image");  // 480 x 640
    const ProcessedImage portrait = p.preprocess(transpose_hw(landscape_in));
    REQUIRE(portrait.resized.shape() == Shape{448, 336, 3});
    REQUIRE(portrait.cropped.shape() == Shape{336, 336, 3});
    // The crop takes rows 56..391 (top = (448 - 336) // 2), all columns.
    CHECK(differing_bytes(portrait.cropped, portrait.resized.slice(0, 56, 392)) == 0);

    // PIL's passes run horizontally first, so a transposed image is not the transposed result in
    // general. For an image that varies along one axis only, one pass is the identity and the other
    // uses the same taps either way: there the two must agree exactly.
    Tensor columns = Tensor::empty({480, 640, 3}, DType::u8);
    const Tensor landscape = landscape_in.contiguous();
    const auto src = landscape.span<const std::uint8_t>();
    auto* d = columns.data<std::uint8_t>();
    for (std::int64_t y = 0; y < 480; ++y)
        for (std::int64_t i = 0; i < 640 * 3; ++i) d[y * 640 * 3 + i] = src[static_cast<std::size_t>(200 * 640 * 3 + i)];
    const Tensor wide = p.resize(columns);
    const Tensor tall = p.resize(transpose_hw(columns));
    REQUIRE(tall.shape() == Shape{448, 336, 3});
    CHECK(differing_bytes(tall, transpose_hw(wide)) == 0);
    // And every row of `wide` is its first row.
    CHECK(differing_bytes(wide, repeat_rows(wide.slice(0, 0, 1), 336)) == 0);
}

TEST_CASE("pil_resize: skipped passes, a pass on either axis, upscaling") {
    const Tensor img = test_image(37, 53);
    // The same size is a copy, not a resample (the bicubic taps would not be the identity's).
    CHECK(differing_bytes(pil_resize(img, 37, 53), img) == 0);
    // One axis only: PIL skips the other pass. A vertical-only resize of the transposed image uses the
    // same taps as the horizontal-only one, and neither rounds twice, so they agree exactly.
    for (std::int64_t w : {20, 53 * 3 + 1}) {
        const Tensor h_only = pil_resize(img, 37, w);
        const Tensor v_only = pil_resize(transpose_hw(img), w, 37);
        CHECK(differing_bytes(transpose_hw(v_only), h_only) == 0);
    }
    // A flat image stays flat at every scale: the fixed-point taps of each window sum to 1 closely
    // enough that the rounding never moves a level.
    Tensor flat = Tensor::empty({9, 14, 3}, DType::u8);
    for (std::int64_t i = 0; i < flat.numel(); ++i) flat.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(i % 3 == 0 ? 255 : i % 3 == 1 ? 0 : 77);
    for (const auto& size : std::vector<std::pair<std::int64_t, std::int64_t>>{{3, 5}, {9, 40}, {31, 14}, {100, 7}}) {
        const std::int64_t h = size.first, w = size.second;
        const Tensor r = pil_resize(flat, h, w);
        const auto s = r.span<const std::uint8_t>();
        bool ok = true;
        for (std::size_t i = 0; i < s.size(); ++i) ok = ok && s[i] == (i % 3 == 0 ? 255 : i % 3 == 1 ? 0 : 77);
        CHECK_MESSAGE(ok, h, "x", w);
    }

    // Upscaling 2 pixels to 4 (scale 0.5, support 2), derived by hand from Resample.c's definitions:
    // output 0 has center 0.25 and taps at distances 0.25 and 1.25, cubic weights 0.8671875 and
    // -0.0703125, normalised 1.0882 and -0.0882: 100·1.0882 − 200·0.0882 = 91.18 -> 91. Output 1:
    // distances 0.25 and 0.75, weights 0.8671875 and 0.2265625 -> 0.7929, 0.2071: 120.71 -> 121.
    // The other two mirror these.
    Tensor two = Tensor::empty({1, 2, 3}, DType::u8);
    for (int c = 0; c < 3; ++c) {
        two.data<std::uint8_t>()[c] = 100;
        two.data<std::uint8_t>()[3 + c] = 200;
    }
    const Tensor four = pil_resize(two, 1, 4);
    const std::vector<int> expected = {91, 121, 179, 209};
    for (int x = 0; x < 4; ++x)
        for (int c = 0; c < 3; ++c) CHECK(four.data<std::uint8_t>()[x * 3 + c] == expected[static_cast<std::size_t>(x)]);
    // The overshoot of the negative lobes is clipped, not wrapped.
    for (int c = 0; c < 3; ++c) two.data<std::uint8_t>()[c] = 0, two.data<std::uint8_t>()[3 + c] = 255;
    const Tensor clipped = pil_resize(two, 1, 4);
    CHECK(clipped.data<std::uint8_t>()[0] == 0);
    CHECK(clipped.data<std::uint8_t>()[9] == 255);

    // PIL's bilinear filter (support 1), by hand the same way: upscaling [100, 200] to 4 gives output 0
    // one tap (its window ends at int(0.25 + 1.5) = 1), output 1 the weights 0.75 and 0.25.
    for (int c = 0; c < 3; ++c) two.data<std::uint8_t>()[c] = 100, two.data<std::uint8_t>()[3 + c] = 200;
    const Tensor bl = pil_resize(two, 1, 4, PilFilter::bilinear);
    const std::vector<int> expected_bl = {100, 125, 175, 200};
    for (int x = 0; x < 4; ++x) CHECK(bl.data<std::uint8_t>()[x * 3] == expected_bl[static_cast<std::size_t>(x)]);
    // Halving [10, 20, 30, 40]: the triangle widened to support 2; output 0 reads pixels 0..2 with
    // weights 0.75, 0.75, 0.25: 30 / 1.75 = 17.1 -> 17; output 1 reads 1..3 with 0.25, 0.75, 0.75: 32.9 -> 33.
    Tensor row4 = Tensor::empty({1, 4, 3}, DType::u8);
    for (int x = 0; x < 4; ++x)
        for (int c = 0; c < 3; ++c) row4.data<std::uint8_t>()[x * 3 + c] = static_cast<std::uint8_t>(10 * (x + 1));
    const Tensor half = pil_resize(row4, 1, 2, PilFilter::bilinear);
    CHECK(half.data<std::uint8_t>()[0] == 17);
    CHECK(half.data<std::uint8_t>()[3] == 33);

    // The processor upscales a small image the same way.
    const CLIPImageProcessor p;
    const ProcessedImage small = p.preprocess(test_image(200, 300, 7));
    CHECK(small.resized.shape() == Shape{336, 504, 3});
    CHECK(differing_bytes(small.cropped, small.resized.slice(1, 84, 420)) == 0);
}

TEST_CASE("center_crop_image: transformers' offsets, and zero padding where the image is smaller") {
    const Tensor img = test_image(7, 10);
    auto at = [](const Tensor& t, std::int64_t y, std::int64_t x, std::int64_t c) {
        return t.data<std::uint8_t>()[(y * t.size(1) + x) * 3 + c];
    };
    // Larger image: top = (7 - 4) // 2 = 1, left = (10 - 3) // 2 = 3.
    const Tensor a = center_crop_image(img, 4, 3);
    REQUIRE(a.shape() == Shape{4, 3, 3});
    CHECK(differing_bytes(a, img.slice(0, 1, 5).slice(1, 3, 6)) == 0);
    // Smaller in height: top = (7 - 10) // 2 = -2, so two rows of zeros above and one below.
    const Tensor b = center_crop_image(img, 10, 4);
    REQUIRE(b.shape() == Shape{10, 4, 3});
    for (std::int64_t y = 0; y < 10; ++y)
        for (std::int64_t x = 0; x < 4; ++x)
            for (std::int64_t c = 0; c < 3; ++c) {
                const bool inside = y >= 2 && y < 9;
                CHECK(at(b, y, x, c) == (inside ? at(img, y - 2, x + 3, c) : 0));
            }
    // Smaller in both: left = (10 - 13) // 2 = -2.
    const Tensor c2 = center_crop_image(img, 9, 13);
    CHECK(at(c2, 0, 5, 0) == 0);
    CHECK(at(c2, 1, 1, 0) == 0);
    CHECK(at(c2, 1, 2, 1) == at(img, 0, 0, 1));
    CHECK(at(c2, 7, 11, 2) == at(img, 6, 9, 2));
    CHECK(at(c2, 8, 11, 2) == 0);
    CHECK(at(c2, 7, 12, 2) == 0);
}

TEST_CASE("CLIPImageProcessor::from_json reads a llava preprocessor_config.json") {
    const auto j = nlohmann::json::parse(kLlavaPreprocessorConfig);
    const CLIPImageProcessor p = CLIPImageProcessor::from_json(j, "llava/preprocessor_config.json");
    const CLIPImageProcessor d;
    CHECK(p.shortest_edge == 336);
    CHECK(p.crop_height == 336);
    CHECK(p.crop_width == 336);
    CHECK(p.image_mean == d.image_mean);
    CHECK(p.image_std == d.image_std);
    CHECK(p.rescale_factor == 1.0 / 255.0);  // the JSON spells Python's repr of 1/255
    CHECK(p.resample == 3);
    CHECK((p.do_resize && p.do_center_crop && p.do_rescale && p.do_normalize && p.do_convert_rgb));

    // The other spellings transformers accepts; missing keys take CLIPImageProcessor's defaults.
    const auto q = CLIPImageProcessor::from_json(
        nlohmann::json::parse(R"({"size": 224, "crop_size": 200, "image_mean": 0.5, "image_std": [1, 2, 4],
                                  "do_center_crop": false})"),
        "q");
    CHECK(q.shortest_edge == 224);
    CHECK(q.crop_height == 200);
    CHECK(q.crop_width == 200);
    CHECK(q.image_mean == std::array<double, 3>{0.5, 0.5, 0.5});
    CHECK(q.image_std == std::array<double, 3>{1, 2, 4});
    CHECK_FALSE(q.do_center_crop);
    const auto e = CLIPImageProcessor::from_json(nlohmann::json::object(), "empty");
    CHECK(e.shortest_edge == 224);
    CHECK(e.crop_height == 224);
    CHECK(e.resample == 3);

    // Without the crop, the resized image is normalised as it is.
    const ProcessedImage r = q.preprocess(test_image(300, 200));
    CHECK(r.resized.shape() == Shape{336, 224, 3});
    CHECK(r.pixel_values.shape() == Shape{1, 3, 336, 224});
    const float v = r.pixel_values.item({0, 2, 5, 7});
    const auto byte = r.resized.data<std::uint8_t>()[(5 * 224 + 7) * 3 + 2];
    CHECK(v == (static_cast<float>(byte * (1.0 / 255.0)) - 0.5f) / 4.0f);
}

TEST_CASE("CLIPImageProcessor::from_json refuses what it cannot do, saying why") {
    auto err = [](const char* text) {
        return error_of([&] { CLIPImageProcessor::from_json(nlohmann::json::parse(text), "pp.json"); });
    };
    CHECK(err(R"({"resample": 2})").find("'resample' = 2 is not supported; only 3") != std::string::npos);
    CHECK(err(R"({"resample": "bicubic"})").find("'resample' must be an integer") != std::string::npos);
    CHECK(err(R"({"size": {"height": 336, "width": 336}})").find("{\"shortest_edge\": N}") != std::string::npos);
    CHECK(err(R"({"size": {"shortest_edge": 0}})").find("'size.shortest_edge' = 0 is outside [1, 32768]") !=
          std::string::npos);
    CHECK(err(R"({"size": 336.5})").find("'size' must be an integer") != std::string::npos);
    CHECK(err(R"({"crop_size": {"height": 336}})").find("'crop_size'") != std::string::npos);
    CHECK(err(R"({"image_mean": [0.5, 0.5]})").find("'image_mean' must be a list of 3 numbers") != std::string::npos);
    CHECK(err(R"({"image_std": [0.5, 0, 0.5]})").find("'image_std'[1] = 0 must be positive") != std::string::npos);
    CHECK(err(R"({"image_std": [0.5, "x", 0.5]})").find("'image_std[1]' must be a number") != std::string::npos);
    CHECK(err(R"({"rescale_factor": -1})").find("'rescale_factor' = -1 must be positive") != std::string::npos);
    CHECK(err(R"({"do_resize": "yes"})").find("'do_resize' must be true or false") != std::string::npos);
    CHECK(err("[1, 2]").find("must be a JSON object") != std::string::npos);
    for (const char* text : {R"({"resample": 2})", R"({"size": 0})"}) CHECK(err(text).rfind("pp.json: ", 0) == 0);
}

TEST_CASE("CLIPImageProcessor refuses a bad image, saying what is wrong") {
    const CLIPImageProcessor p;
    auto err = [&](const Tensor& t) { return error_of([&] { p.preprocess(t); }); };
    const auto contains = [](const std::string& s, const char* part) { return s.find(part) != std::string::npos; };
    CHECK(contains(err(Tensor::zeros({4, 4, 3}, DType::f32)), "must be uint8 [H, W, 3] (RGB, channels last), got float32 [4, 4, 3]"));
    CHECK(contains(err(Tensor::zeros({4, 12}, DType::u8)), "got uint8 [4, 12]"));
    CHECK(contains(err(Tensor::zeros({4, 4, 4}, DType::u8)), "got uint8 [4, 4, 4]"));
    CHECK(contains(err(Tensor::zeros({3, 4, 4}, DType::u8)), "got uint8 [3, 4, 4]"));  // CHW is not HWC
    CHECK(contains(err(Tensor::zeros({0, 640, 3}, DType::u8)), "the image is empty ([0, 640, 3])"));
    CHECK(contains(err(Tensor::zeros({1, 40000, 3}, DType::u8)), "an image of 1x40000 pixels (height x width); the largest side handled is 32768"));
    CHECK(contains(err(Tensor{}), "no image"));
    // Within the limits, but the resize would make a side of 336 * 32768 pixels.
    CHECK(contains(err(Tensor::zeros({1, 32768, 3}, DType::u8)), "would give 336x11010048 pixels"));
    CHECK(err(Tensor::zeros({1, 32768, 3}, DType::u8)).rfind("CLIPImageProcessor: ", 0) == 0);

    CLIPImageProcessor bilinear;
    bilinear.resample = 2;
    CHECK(contains(error_of([&] { bilinear.preprocess(test_image(8, 8)); }), "only 3 (PIL's BICUBIC"));
    CHECK(contains(error_of([] { pil_resize(test_image(8, 8), 0, 4); }), "output size 0x4"));
    CHECK(contains(error_of([] { black_image(-1, 4); }), "black_image: size -1x4"));
}

TEST_CASE("black_image: the CFG branch's image") {
    const Tensor b = black_image(480, 640);
    CHECK(b.shape() == Shape{480, 640, 3});
    CHECK(b.dtype() == DType::u8);
    const auto s = b.span<const std::uint8_t>();
    CHECK(std::all_of(s.begin(), s.end(), [](std::uint8_t v) { return v == 0; }));

    // Through the processor it becomes -mean/std per channel, computed in float32.
    const CLIPImageProcessor p;
    const ProcessedImage r = p.preprocess(b);
    CHECK(r.pixel_values.shape() == Shape{1, 3, 336, 336});
    for (std::int64_t c = 0; c < 3; ++c) {
        const float expected = (0.0f - static_cast<float>(p.image_mean[c])) / static_cast<float>(p.image_std[c]);
        const Tensor plane = r.pixel_values.select(1, c).contiguous();
        const auto v = plane.span<const float>();
        CHECK(std::all_of(v.begin(), v.end(), [&](float x) { return x == expected; }));
    }
}
