#pragma once
// The image input of HunyuanVideo-I2V's llava encoder: transformers' CLIPImageProcessor (4.39.3, the
// version the I2V code pins), configured by the llava folder's preprocessor_config.json, on an RGB
// image, with PIL doing the resize as it does there.
//
//   resize        shorter side -> shortest_edge (336), PIL Image.resize(BICUBIC), bit for bit
//   center_crop   crop_size (336 x 336) around the centre
//   pixel_values  x * rescale_factor, then (x - mean) / std, channels first: [1, 3, 336, 336] f32
//
// The two uint8 images are bit-exact, not merely close, because they are integers: PIL resamples in
// fixed point and rounds to 8 bits twice, so an implementation that rounds anywhere differently
// (floating point, or Pillow-SIMD with its fewer fraction bits) is off by one in scattered pixels, and
// those reach the vision tower as steps of 1/255/std ≈ 0.015 in pixel_values. pil_resize therefore follows mainline
// Pillow's Resample.c step by step: the same tap windows, the same double arithmetic for the
// weights, the same conversion to 22-bit fixed point and the same rounding of the sums.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyvideo/core/error.hpp"
#include "hyvideo/core/parallel.hpp"
#include "hyvideo/core/tensor.hpp"

namespace hyvideo {

// Checks that `image` is what the functions below take: a host uint8 tensor [H, W, 3] (RGB, HWC as
// PIL and numpy hold it), not empty, with sides of at most max_side (read_image's limit: no camera
// makes more, and the intermediate images of a resize grow with the sides). `what` leads the message.
inline void check_rgb_image(const Tensor& image, std::string_view what, std::int64_t max_side = 32768) {
    HYVIDEO_CHECK(image.defined(), what, ": no image (an undefined tensor)");
    HYVIDEO_CHECK(image.device() == Device::cpu, what, ": the image must be a host tensor, got one on ",
                  device_name(image.device()));
    HYVIDEO_CHECK(image.dtype() == DType::u8 && image.dim() == 3 && image.size(2) == 3, what,
                  ": the image must be uint8 [H, W, 3] (RGB, channels last), got ", dtype_name(image.dtype()), " ",
                  shape_str(image.shape()));
    HYVIDEO_CHECK(image.size(0) > 0 && image.size(1) > 0, what, ": the image is empty (",
                  shape_str(image.shape()), ")");
    HYVIDEO_CHECK(image.size(0) <= max_side && image.size(1) <= max_side, what, ": an image of ", image.size(0),
                  "x", image.size(1), " pixels (height x width); the largest side handled is ", max_side);
}

// ---- PIL's resampling -------------------------------------------------------------------------

// PIL's Image.Resampling numbers of the two filters HunyuanVideo uses (bicubic here, bilinear for the
// I2V latent image).
enum class PilFilter : int { bilinear = 2, bicubic = 3 };

namespace pil_detail {

// Fraction bits of the fixed-point taps: 8 bits of pixel, and 2 spare bits for the sums of taps
// that overshoot (negative lobes), in a 32-bit int.
inline constexpr int kPrecisionBits = 32 - 8 - 2;

inline double support(PilFilter f) { return f == PilFilter::bicubic ? 2.0 : 1.0; }

// The filter kernels, written with the same operations in the same order as Resample.c. PIL's
// wheels compute them without fused multiply-adds, and a compiler that contracts a*b + c (GCC's
// default outside ISO C, clang's within an expression) changes the last bit of a weight, which can
// move a tap on a rounding edge of the fixed-point conversion. Hence contraction off, here only:
// everything else in the tap computation ends in a division, a lone product, or a product by a
// power of two, which contraction cannot change.
#if defined(__GNUC__) && !defined(__clang__)
[[gnu::optimize("fp-contract=off")]]
#endif
inline double kernel(PilFilter f, double x) {
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
    if (x < 0.0) x = -x;
    if (f == PilFilter::bilinear) return x < 1.0 ? 1.0 - x : 0.0;
    // Keys' cubic convolution with a = -0.5 (Catmull-Rom).
    constexpr double a = -0.5;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

// The taps of one axis of a resize from in_size to out_size samples (Resample.c's precompute_coeffs
// and normalize_coeffs_8bpc): output sample i reads inputs [first[i], first[i] + count[i]) with the
// fixed-point weights weights[i * ksize + t].
struct Taps {
    std::int64_t ksize = 0;
    std::vector<std::int64_t> first, count;
    std::vector<std::int32_t> weights;
};

inline Taps taps(std::int64_t in_size, std::int64_t out_size, PilFilter filter) {
    // The source box is (0, in_size) in float, so the scale is that of two exact floats.
    const double scale = static_cast<double>(static_cast<float>(in_size)) / static_cast<double>(out_size);
    // Shrinking widens the kernel by the scale: every input sample contributes (antialiasing).
    const double filterscale = std::max(scale, 1.0);
    const double sup = support(filter) * filterscale;
    const double inv_filterscale = 1.0 / filterscale;
    Taps t;
    t.ksize = static_cast<std::int64_t>(std::ceil(sup)) * 2 + 1;
    t.first.resize(static_cast<std::size_t>(out_size));
    t.count.resize(static_cast<std::size_t>(out_size));
    t.weights.assign(static_cast<std::size_t>(out_size * t.ksize), 0);
    std::vector<double> w(static_cast<std::size_t>(t.ksize));
    for (std::int64_t i = 0; i < out_size; ++i) {
        const double center = (static_cast<double>(i) + 0.5) * scale;
        // C's (int) conversions: truncation toward zero, then clamped to the image.
        const auto lo = std::max<std::int64_t>(static_cast<std::int64_t>(center - sup + 0.5), 0);
        const auto hi = std::min<std::int64_t>(static_cast<std::int64_t>(center + sup + 0.5), in_size);
        const std::int64_t n = hi - lo;
        double total = 0.0;
        for (std::int64_t x = 0; x < n; ++x) {
            w[static_cast<std::size_t>(x)] = kernel(filter, (static_cast<double>(x + lo) - center + 0.5) * inv_filterscale);
            total += w[static_cast<std::size_t>(x)];
        }
        std::int32_t* fixed = t.weights.data() + i * t.ksize;
        for (std::int64_t x = 0; x < n; ++x) {
            // Divided (not multiplied by the reciprocal) and rounded half away from zero, as PIL does.
            const double v = total != 0.0 ? w[static_cast<std::size_t>(x)] / total : w[static_cast<std::size_t>(x)];
            const double scaled = v * static_cast<double>(1 << kPrecisionBits);
            fixed[x] = static_cast<std::int32_t>(v < 0 ? -0.5 + scaled : 0.5 + scaled);
        }
        t.first[static_cast<std::size_t>(i)] = lo;
        t.count[static_cast<std::size_t>(i)] = n;
    }
    return t;
}

// A weighted sum back to 8 bits: the sum started at one half (so the shift rounds to nearest), an
// arithmetic shift (floor), and clipping. The sums are 64-bit here; PIL's 32-bit ones never overflow
// (that is what the 2 spare bits are for), so the results agree.
inline std::uint8_t clip8(std::int64_t sum) {
    return static_cast<std::uint8_t>(std::clamp<std::int64_t>(sum >> kPrecisionBits, 0, 255));
}
inline constexpr std::int64_t kHalf = std::int64_t{1} << (kPrecisionBits - 1);

// Rows [row0, row0 + rows) of the RGB image `in` (width in_w), resampled along x to out_w columns.
inline std::vector<std::uint8_t> horizontal(const std::uint8_t* in, std::int64_t in_w, std::int64_t row0,
                                            std::int64_t rows, std::int64_t out_w, const Taps& t) {
    std::vector<std::uint8_t> out(static_cast<std::size_t>(rows * out_w * 3));
    parallel_for(0, rows, [&](std::int64_t y) {
        const std::uint8_t* src = in + (row0 + y) * in_w * 3;
        std::uint8_t* dst = out.data() + y * out_w * 3;
        for (std::int64_t x = 0; x < out_w; ++x) {
            const std::int32_t* k = t.weights.data() + x * t.ksize;
            const std::uint8_t* p = src + t.first[static_cast<std::size_t>(x)] * 3;
            std::int64_t s0 = kHalf, s1 = kHalf, s2 = kHalf;
            for (std::int64_t j = 0; j < t.count[static_cast<std::size_t>(x)]; ++j) {
                s0 += std::int64_t{p[j * 3 + 0]} * k[j];
                s1 += std::int64_t{p[j * 3 + 1]} * k[j];
                s2 += std::int64_t{p[j * 3 + 2]} * k[j];
            }
            dst[x * 3 + 0] = clip8(s0);
            dst[x * 3 + 1] = clip8(s1);
            dst[x * 3 + 2] = clip8(s2);
        }
    }, 8);
    return out;
}

// The RGB image `in` (width w), resampled along y to out_h rows; tap windows are relative to row0.
inline void vertical(const std::uint8_t* in, std::int64_t w, std::int64_t row0, std::int64_t out_h, const Taps& t,
                     std::uint8_t* out) {
    const std::int64_t line = w * 3;
    parallel_for(0, out_h, [&](std::int64_t y) {
        const std::int32_t* k = t.weights.data() + y * t.ksize;
        const std::uint8_t* src = in + (t.first[static_cast<std::size_t>(y)] - row0) * line;
        const std::int64_t n = t.count[static_cast<std::size_t>(y)];
        std::uint8_t* dst = out + y * line;
        for (std::int64_t v = 0; v < line; ++v) {
            std::int64_t s = kHalf;
            for (std::int64_t j = 0; j < n; ++j) s += std::int64_t{src[j * line + v]} * k[j];
            dst[v] = clip8(s);
        }
    }, 8);
}

}  // namespace pil_detail

// PIL's Image.resize((width, height), filter) of an RGB image (mainline Pillow's Resample.c; not
// Pillow-SIMD, which rounds differently): a horizontal pass into an 8-bit intermediate image, then a
// vertical pass. Like PIL, a pass whose size does not change is skipped (both: a copy), and the
// horizontal pass only produces the rows the vertical one reads. Returns uint8 [height, width, 3].
inline Tensor pil_resize(const Tensor& image, std::int64_t height, std::int64_t width,
                         PilFilter filter = PilFilter::bicubic) {
    check_rgb_image(image, "pil_resize");
    HYVIDEO_CHECK(height >= 1 && width >= 1 && height <= 32768 && width <= 32768, "pil_resize: output size ", height,
                  "x", width, " (height x width) is outside [1, 32768]");
    HYVIDEO_CHECK(filter == PilFilter::bicubic || filter == PilFilter::bilinear, "pil_resize: unsupported filter ",
                  static_cast<int>(filter), " (2 = bilinear and 3 = bicubic are implemented)");
    const Tensor src = image.contiguous();
    const std::int64_t in_h = src.size(0), in_w = src.size(1);
    const auto* in = src.data<const std::uint8_t>();
    if (height == in_h && width == in_w) return src.clone();

    const pil_detail::Taps ty = pil_detail::taps(in_h, height, filter);
    Tensor out = Tensor::empty({height, width, 3}, DType::u8);
    auto* o = out.data<std::uint8_t>();
    if (width == in_w) {
        pil_detail::vertical(in, in_w, 0, height, ty, o);
        return out;
    }
    const pil_detail::Taps tx = pil_detail::taps(in_w, width, filter);
    if (height == in_h) {
        const std::vector<std::uint8_t> rows = pil_detail::horizontal(in, in_w, 0, in_h, width, tx);
        std::memcpy(o, rows.data(), rows.size());
        return out;
    }
    const std::int64_t row0 = ty.first.front();
    const std::int64_t row1 = ty.first.back() + ty.count.back();
    const std::vector<std::uint8_t> rows = pil_detail::horizontal(in, in_w, row0, row1 - row0, width, tx);
    pil_detail::vertical(rows.data(), width, row0, height, ty, o);
    return out;
}

// transformers' get_resize_output_image_size(default_to_square=False): the shorter side (the width
// when the image is square) becomes `shortest_edge` and the longer one int(shortest_edge * long /
// short), truncated like Python's int() of the float quotient: 640x480 -> 448x336, 500x333 -> 504x336.
// Returns {height, width}.
inline std::pair<std::int64_t, std::int64_t> shortest_edge_size(std::int64_t height, std::int64_t width,
                                                                std::int64_t shortest_edge) {
    HYVIDEO_CHECK(height >= 1 && width >= 1 && shortest_edge >= 1, "shortest_edge_size: sizes must be positive, got ",
                  height, "x", width, " to shortest edge ", shortest_edge);
    const bool tall = width <= height;
    const std::int64_t shorter = tall ? width : height, longer = tall ? height : width;
    // Exact operands (below 2^53), one correctly rounded division: Python's int / int.
    const auto other = static_cast<std::int64_t>(static_cast<double>(shortest_edge * longer) / static_cast<double>(shorter));
    return tall ? std::pair{other, shortest_edge} : std::pair{shortest_edge, other};
}

// transformers' center_crop of an HWC image to height x width: the window starts at
// floor((H - height) / 2), floor((W - width) / 2) (Python's //, so for an image smaller than the crop
// it starts before the image), and what falls outside the image is zero, which is transformers'
// zero padding. Returns uint8 [height, width, 3].
inline Tensor center_crop_image(const Tensor& image, std::int64_t height, std::int64_t width) {
    check_rgb_image(image, "center_crop_image");
    HYVIDEO_CHECK(height >= 1 && width >= 1 && height <= 32768 && width <= 32768, "center_crop_image: crop size ",
                  height, "x", width, " (height x width) is outside [1, 32768]");
    const Tensor src = image.contiguous();
    const std::int64_t in_h = src.size(0), in_w = src.size(1);
    auto floor_half = [](std::int64_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); };
    const std::int64_t top = floor_half(in_h - height), left = floor_half(in_w - width);
    Tensor out = Tensor::zeros({height, width, 3}, DType::u8);
    const auto* in = src.data<const std::uint8_t>();
    auto* o = out.data<std::uint8_t>();
    // The columns of the window that lie inside the image; the same for every row.
    const std::int64_t x0 = std::max<std::int64_t>(0, -left), x1 = std::min(width, in_w - left);
    for (std::int64_t y = 0; y < height; ++y) {
        const std::int64_t sy = y + top;
        if (sy < 0 || sy >= in_h || x1 <= x0) continue;
        std::memcpy(o + (y * width + x0) * 3, in + (sy * in_w + left + x0) * 3, static_cast<std::size_t>((x1 - x0) * 3));
    }
    return out;
}

// An all-black RGB image, uint8 [height, width, 3]. HunyuanVideo-I2V's classifier-free guidance
// encodes the negative prompt together with a black image of the input image's size (the llava
// encoder always takes an image), so the unconditional branch carries no image semantics; this is
// that image, to be passed through the same processor.
inline Tensor black_image(std::int64_t height, std::int64_t width) {
    HYVIDEO_CHECK(height >= 1 && width >= 1 && height <= 32768 && width <= 32768, "black_image: size ", height, "x",
                  width, " (height x width) is outside [1, 32768]");
    return Tensor::zeros({height, width, 3}, DType::u8);
}

// ---- the processor ----------------------------------------------------------------------------

// What preprocess() makes of an image: the intermediate images as well as the model input, since the
// golden fixtures pin all three.
struct ProcessedImage {
    Tensor resized;       // uint8 [h', w', 3]: after the resize (the input itself without do_resize)
    Tensor cropped;       // uint8 [crop_height, crop_width, 3]: after the centre crop (= resized without it)
    Tensor pixel_values;  // float32 [1, 3, h, w]: the vision tower's input
};

// transformers' CLIPImageProcessor, with the parameters of a preprocessor_config.json. The defaults
// are those of HunyuanVideo-I2V's llava folder (xtuner/llava-llama-3-8b-v1_1-transformers).
struct CLIPImageProcessor {
    std::int64_t shortest_edge = 336;  // "size": {"shortest_edge": N}
    std::int64_t crop_height = 336;    // "crop_size"
    std::int64_t crop_width = 336;
    std::array<double, 3> image_mean = {0.48145466, 0.4578275, 0.40821073};  // OpenAI CLIP's
    std::array<double, 3> image_std = {0.26862954, 0.26130258, 0.27577711};
    double rescale_factor = 1.0 / 255.0;
    int resample = 3;  // PIL's BICUBIC, the only one accepted
    bool do_resize = true;
    bool do_center_crop = true;
    bool do_rescale = true;
    bool do_normalize = true;
    // Converting to RGB is PIL's convert("RGB") on the caller's side; the input here is RGB already.
    bool do_convert_rgb = true;

    static constexpr std::int64_t max_side = 32768;

    // Reads a preprocessor_config.json (or the fixtures' `image_processor` metadata); `what` names it
    // in errors. A key the file leaves out takes transformers' CLIPImageProcessor default, as
    // transformers does (224 for size and crop_size, not HunyuanVideo's 336). Unknown keys
    // ("image_processor_type", "processor_class", ...) are ignored.
    static CLIPImageProcessor from_json(const nlohmann::json& j, const std::string& what) {
        HYVIDEO_CHECK(j.is_object(), what, ": an image processor config must be a JSON object, got ", j.type_name());
        CLIPImageProcessor p;
        p.shortest_edge = 224;
        p.crop_height = p.crop_width = 224;
        auto has = [&](const char* key) { return j.contains(key) && !j.at(key).is_null(); };
        auto side = [&](const nlohmann::json& v, const std::string& key) {
            HYVIDEO_CHECK(v.is_number_integer(), what, ": '", key, "' must be an integer, got ", v.dump());
            const auto n = v.get<std::int64_t>();
            HYVIDEO_CHECK(n >= 1 && n <= max_side, what, ": '", key, "' = ", n, " is outside [1, ", max_side, "]");
            return n;
        };
        auto flag = [&](const char* key, bool& out) {
            if (!has(key)) return;
            HYVIDEO_CHECK(j.at(key).is_boolean(), what, ": '", key, "' must be true or false, got ", j.at(key).dump());
            out = j.at(key).get<bool>();
        };
        auto number = [&](const nlohmann::json& v, const std::string& key) {
            HYVIDEO_CHECK(v.is_number(), what, ": '", key, "' must be a number, got ", v.dump());
            const double d = v.get<double>();
            HYVIDEO_CHECK(std::isfinite(d), what, ": '", key, "' = ", v.dump(), " is not finite");
            return d;
        };
        // A list of one value per channel, or one value for all (transformers accepts both).
        auto per_channel = [&](const char* key, std::array<double, 3>& out) {
            if (!has(key)) return;
            const nlohmann::json& v = j.at(key);
            if (v.is_number()) {
                out.fill(number(v, key));
                return;
            }
            HYVIDEO_CHECK(v.is_array() && v.size() == 3, what, ": '", key,
                          "' must be a list of 3 numbers (R, G, B), got ", v.dump());
            for (std::size_t c = 0; c < 3; ++c) out[c] = number(v[c], std::string(key) + "[" + std::to_string(c) + "]");
        };

        if (has("size")) {
            const nlohmann::json& s = j.at("size");
            if (s.is_object()) {
                HYVIDEO_CHECK(s.size() == 1 && s.contains("shortest_edge"), what, ": 'size' = ", s.dump(),
                              " is not supported: CLIPImageProcessor here resizes by {\"shortest_edge\": N}");
                p.shortest_edge = side(s.at("shortest_edge"), "size.shortest_edge");
            } else {
                p.shortest_edge = side(s, "size");
            }
        }
        if (has("crop_size")) {
            const nlohmann::json& s = j.at("crop_size");
            if (s.is_object()) {
                HYVIDEO_CHECK(s.contains("height") && s.contains("width") && s.size() == 2, what, ": 'crop_size' = ",
                              s.dump(), " must be {\"height\": H, \"width\": W} or one integer");
                p.crop_height = side(s.at("height"), "crop_size.height");
                p.crop_width = side(s.at("width"), "crop_size.width");
            } else {
                p.crop_height = p.crop_width = side(s, "crop_size");
            }
        }
        per_channel("image_mean", p.image_mean);
        per_channel("image_std", p.image_std);
        for (std::size_t c = 0; c < 3; ++c)
            HYVIDEO_CHECK(p.image_std[c] > 0, what, ": 'image_std'[", c, "] = ", p.image_std[c], " must be positive");
        if (has("rescale_factor")) {
            p.rescale_factor = number(j.at("rescale_factor"), "rescale_factor");
            HYVIDEO_CHECK(p.rescale_factor > 0, what, ": 'rescale_factor' = ", p.rescale_factor, " must be positive");
        }
        if (has("resample")) {
            const nlohmann::json& r = j.at("resample");
            HYVIDEO_CHECK(r.is_number_integer(), what, ": 'resample' must be an integer (PIL's filter number), got ",
                          r.dump());
            p.resample = r.get<int>();
        }
        flag("do_resize", p.do_resize);
        flag("do_center_crop", p.do_center_crop);
        flag("do_rescale", p.do_rescale);
        flag("do_normalize", p.do_normalize);
        flag("do_convert_rgb", p.do_convert_rgb);
        p.validate(what);
        return p;
    }

    // Checks the fields, for a processor configured in code.
    void validate(const std::string& what = "CLIPImageProcessor") const {
        HYVIDEO_CHECK(resample == static_cast<int>(PilFilter::bicubic), what, ": 'resample' = ", resample,
                      " is not supported; only 3 (PIL's BICUBIC, what CLIP and llava use) is implemented");
        HYVIDEO_CHECK(shortest_edge >= 1 && shortest_edge <= max_side, what, ": shortest_edge = ", shortest_edge,
                      " is outside [1, ", max_side, "]");
        HYVIDEO_CHECK(crop_height >= 1 && crop_height <= max_side && crop_width >= 1 && crop_width <= max_side, what,
                      ": crop size ", crop_height, "x", crop_width, " is outside [1, ", max_side, "]");
        for (std::size_t c = 0; c < 3; ++c)
            HYVIDEO_CHECK(std::isfinite(image_mean[c]) && std::isfinite(image_std[c]) && image_std[c] > 0, what,
                          ": channel ", c, " has mean ", image_mean[c], " and std ", image_std[c],
                          " (finite values and a positive std needed)");
        HYVIDEO_CHECK(std::isfinite(rescale_factor) && rescale_factor > 0, what, ": rescale_factor = ", rescale_factor,
                      " must be positive");
    }

    // The resize step: PIL bicubic to shortest_edge_size(). transformers would hand a 1- or 3-row image
    // to PIL as channels-first (it guesses the layout from the shape); here the layout is HWC always.
    Tensor resize(const Tensor& image) const {
        check_rgb_image(image, "CLIPImageProcessor", max_side);
        const auto [h, w] = shortest_edge_size(image.size(0), image.size(1), shortest_edge);
        HYVIDEO_CHECK(h <= max_side && w <= max_side, "CLIPImageProcessor: resizing an image of ", image.size(0), "x",
                      image.size(1), " to shortest edge ", shortest_edge, " would give ", h, "x", w,
                      " pixels; the largest side handled is ", max_side);
        return pil_resize(image, h, w, PilFilter::bicubic);
    }

    Tensor center_crop(const Tensor& image) const { return center_crop_image(image, crop_height, crop_width); }

    // The rescale and normalize steps on an HWC uint8 image, giving [1, 3, H, W] float32. Exactly as
    // transformers computes them in numpy: uint8 * rescale_factor in double (numpy promotes to
    // float64), cast to float32; then (x - mean) / std in float32, with mean and std cast to float32.
    Tensor to_pixel_values(const Tensor& image) const {
        check_rgb_image(image, "CLIPImageProcessor", max_side);
        const Tensor src = image.contiguous();
        const std::int64_t h = src.size(0), w = src.size(1), plane = h * w;
        Tensor out = Tensor::empty({1, 3, h, w}, DType::f32);
        const auto* in = src.data<const std::uint8_t>();
        float* o = out.data<float>();
        // A value per channel and byte: 768 entries say everything the loop would compute.
        std::array<std::array<float, 256>, 3> lut{};
        for (std::size_t c = 0; c < 3; ++c) {
            const auto mean = static_cast<float>(image_mean[c]), std = static_cast<float>(image_std[c]);
            for (int v = 0; v < 256; ++v) {
                float x = do_rescale ? static_cast<float>(static_cast<double>(v) * rescale_factor) : static_cast<float>(v);
                if (do_normalize) x = (x - mean) / std;
                lut[c][static_cast<std::size_t>(v)] = x;
            }
        }
        for (std::int64_t i = 0; i < plane; ++i)
            for (std::int64_t c = 0; c < 3; ++c) o[c * plane + i] = lut[static_cast<std::size_t>(c)][in[i * 3 + c]];
        return out;
    }

    // The whole CLIPImageProcessor.preprocess of one RGB image, uint8 [H, W, 3].
    ProcessedImage preprocess(const Tensor& image) const {
        validate();
        check_rgb_image(image, "CLIPImageProcessor", max_side);
        ProcessedImage r;
        r.resized = do_resize ? resize(image) : image.contiguous();
        r.cropped = do_center_crop ? center_crop(r.resized) : r.resized;
        r.pixel_values = to_pixel_values(r.cropped);
        return r;
    }
};

}  // namespace hyvideo
