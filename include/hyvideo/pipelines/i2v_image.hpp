#pragma once
// Image preprocessing of HunyuanVideo-I2V (docs/model.md#i2v-image-buckets-and-preprocessing): choose
// the size bucket closest to the image's aspect ratio, resize the shorter side to the bucket's shorter
// side (bilinear with PIL's antialiasing), center-crop to the bucket, and map [0, 255] to [−1, 1].
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "hyvideo/core/tensor.hpp"
#include "hyvideo/io/frames.hpp"

namespace hyvideo {

struct Bucket {
    std::int64_t height, width;
};

// The official generate_crop_size_list: every (32·wp, 32·hp) with wp·hp ≤ n patches and aspect at
// most 4, walked from the tallest to the widest; n = round((base/32)²).
inline std::vector<Bucket> i2v_buckets(std::int64_t base_size, std::int64_t patch = 32, double max_ratio = 4.0) {
    const auto n = static_cast<std::int64_t>(std::llround(std::pow(static_cast<double>(base_size) / patch, 2.0)));
    std::vector<Bucket> out;
    std::int64_t wp = n, hp = 1;
    while (wp > 0) {
        if (static_cast<double>(std::max(wp, hp)) / static_cast<double>(std::min(wp, hp)) <= max_ratio)
            out.push_back({wp * patch, hp * patch});
        if ((hp + 1) * wp <= n) ++hp;
        else --wp;
    }
    return out;
}

// "720p" -> 960, "540p" -> 720, "360p" -> 480 (the official bucket base sizes).
inline std::int64_t i2v_base_size(const std::string& resolution) {
    if (resolution == "720p") return 960;
    if (resolution == "540p") return 720;
    if (resolution == "360p") return 480;
    throw Error("unknown i2v resolution '" + resolution + "' (720p, 540p or 360p)");
}

// The official get_closest_ratio: among buckets on the same side of the image's aspect a = H/W
// (ratio ≤ a for portrait or square images, > a for landscape), the one closest to a; the first on
// ties. Ratios are rounded to 5 decimals as the reference does.
inline Bucket closest_bucket(std::int64_t height, std::int64_t width, const std::vector<Bucket>& buckets) {
    HYVIDEO_CHECK(height > 0 && width > 0, "image size must be positive");
    const double a = static_cast<double>(height) / static_cast<double>(width);
    const Bucket* best = nullptr;
    double best_diff = 0;
    for (const auto& b : buckets) {
        const double r = std::round(static_cast<double>(b.height) / static_cast<double>(b.width) * 1e5) / 1e5;
        const double d = r - a;
        if (a >= 1 ? d > 0 : d <= 0) continue;
        if (!best || std::abs(d) < best_diff) {
            best = &b;
            best_diff = std::abs(d);
        }
    }
    HYVIDEO_CHECK(best, "no bucket matches an image of ", height, "x", width);
    return *best;
}

namespace detail {
// One separable pass of PIL's antialiased bilinear resize along an axis: output pixel i samples the
// input around (i + 0.5)·scale with a triangle filter widened by the scale when shrinking, and
// rounds to 8 bits, as PIL's intermediate image does.
inline std::vector<std::uint8_t> resize_axis(const std::vector<std::uint8_t>& in, std::int64_t lines, std::int64_t in_len,
                                             std::int64_t out_len, std::int64_t stride_line, std::int64_t stride_px,
                                             std::int64_t out_stride_line, std::int64_t out_stride_px) {
    std::vector<std::uint8_t> out(static_cast<std::size_t>(lines * out_len * 3));
    const double scale = static_cast<double>(in_len) / static_cast<double>(out_len);
    const double support = std::max(scale, 1.0);
    for (std::int64_t i = 0; i < out_len; ++i) {
        const double center = (static_cast<double>(i) + 0.5) * scale;
        const auto lo = std::max<std::int64_t>(0, static_cast<std::int64_t>(std::floor(center - support)));
        const auto hi = std::min<std::int64_t>(in_len, static_cast<std::int64_t>(std::ceil(center + support)));
        std::vector<double> w;
        double total = 0;
        for (std::int64_t j = lo; j < hi; ++j) {
            const double x = std::abs((static_cast<double>(j) + 0.5 - center) / support);
            w.push_back(x < 1.0 ? 1.0 - x : 0.0);
            total += w.back();
        }
        for (std::int64_t l = 0; l < lines; ++l)
            for (std::int64_t c = 0; c < 3; ++c) {
                double acc = 0;
                for (std::int64_t j = lo; j < hi; ++j)
                    acc += w[static_cast<std::size_t>(j - lo)] * in[static_cast<std::size_t>(l * stride_line + j * stride_px + c)];
                const double v = std::clamp(std::round(acc / total), 0.0, 255.0);
                out[static_cast<std::size_t>(l * out_stride_line + i * out_stride_px + c)] = static_cast<std::uint8_t>(v);
            }
    }
    return out;
}
}  // namespace detail

// RGB24 image -> [1, 3, 1, bucket.height, bucket.width] f32 in [−1, 1]: torchvision's
// Resize(min side) (long side = ⌊short·long/short⌋), CenterCrop (offsets rounded half to even,
// zero padding if the crop were larger), ToTensor, Normalize(0.5, 0.5).
inline Tensor preprocess_i2v_image(const Frames& image, const Bucket& bucket) {
    HYVIDEO_CHECK(image.count >= 1 && image.height > 0 && image.width > 0, "i2v image is empty");
    const std::int64_t H = image.height, W = image.width, target = std::min(bucket.height, bucket.width);
    std::int64_t nh, nw;
    if (H <= W) {
        nh = target;
        nw = static_cast<std::int64_t>(static_cast<double>(target) * static_cast<double>(W) / static_cast<double>(H));
    } else {
        nw = target;
        nh = static_cast<std::int64_t>(static_cast<double>(target) * static_cast<double>(H) / static_cast<double>(W));
    }
    const std::vector<std::uint8_t> first(image.rgb.begin(), image.rgb.begin() + H * W * 3);
    const auto horiz = detail::resize_axis(first, H, W, nw, W * 3, 3, nw * 3, 3);
    const auto resized = detail::resize_axis(horiz, nw, H, nh, 3, nw * 3, 3, nw * 3);
    auto half_even = [](double v) { return static_cast<std::int64_t>(std::nearbyint(v)); };
    const std::int64_t top = half_even((static_cast<double>(nh) - static_cast<double>(bucket.height)) / 2.0);
    const std::int64_t left = half_even((static_cast<double>(nw) - static_cast<double>(bucket.width)) / 2.0);
    Tensor out = Tensor::zeros({1, 3, 1, bucket.height, bucket.width});
    float* o = out.data<float>();
    const std::int64_t plane = bucket.height * bucket.width;
    for (std::int64_t y = 0; y < bucket.height; ++y)
        for (std::int64_t x = 0; x < bucket.width; ++x) {
            const std::int64_t sy = y + top, sx = x + left;
            const bool inside = sy >= 0 && sy < nh && sx >= 0 && sx < nw;
            for (std::int64_t c = 0; c < 3; ++c) {
                const float v = inside ? resized[static_cast<std::size_t>((sy * nw + sx) * 3 + c)] / 255.0f : 0.0f;
                o[c * plane + y * bucket.width + x] = (v - 0.5f) / 0.5f;
            }
        }
    return out;
}

}  // namespace hyvideo
