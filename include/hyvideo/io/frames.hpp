#pragma once
// Frames: 8-bit RGB video frames in memory, what the pipeline's output becomes and what the video and
// image readers return, and their conversion to and from the pipeline's float tensors. Plain C++: the
// FFmpeg-backed readers and writers are in io/video.hpp and io/image.hpp (target hyvideo::video).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "hyvideo/core/error.hpp"
#include "hyvideo/core/tensor.hpp"

namespace hyvideo {

// `count` frames of height × width pixels, 8-bit RGB (RGB24: R, G, B bytes per pixel), stored frame
// after frame, each frame row after row from the top, without padding:
//     rgb[((t * height + y) * width + x) * 3 + c]
// This is the layout of the official pipeline's frames (T × [H, W, 3] uint8) and of FFmpeg's RGB24,
// so frames go to and from the codecs without reordering. A plain owned buffer rather than a Tensor:
// it is what the codecs fill and read, always on the host; frames_from_tensor / frames_to_tensor convert.
struct Frames {
    std::int64_t count = 0;
    std::int64_t height = 0;
    std::int64_t width = 0;
    std::vector<std::uint8_t> rgb;

    // count frames of height × width, all black.
    static Frames zeros(std::int64_t count, std::int64_t height, std::int64_t width) {
        Frames f;
        f.count = count;
        f.height = height;
        f.width = width;
        f.rgb.assign(expected_bytes(count, height, width, "Frames::zeros"), 0);
        return f;
    }

    std::size_t frame_bytes() const { return static_cast<std::size_t>(height * width * 3); }
    std::uint8_t* frame(std::int64_t t) { return rgb.data() + checked_frame(t) * frame_bytes(); }
    const std::uint8_t* frame(std::int64_t t) const { return rgb.data() + checked_frame(t) * frame_bytes(); }
    // Unchecked element access, for loops that have checked their bounds.
    std::uint8_t& at(std::int64_t t, std::int64_t y, std::int64_t x, int c) {
        return rgb[static_cast<std::size_t>(((t * height + y) * width + x) * 3 + c)];
    }
    std::uint8_t at(std::int64_t t, std::int64_t y, std::int64_t x, int c) const {
        return rgb[static_cast<std::size_t>(((t * height + y) * width + x) * 3 + c)];
    }

    // Throws unless the sizes are non-negative and rgb holds exactly count × height × width × 3 bytes.
    // `what` begins the message (a path, a function name).
    void validate(const std::string& what) const {
        const std::size_t want = expected_bytes(count, height, width, what);
        HYVIDEO_CHECK(rgb.size() == want, what, ": Frames of ", count, " x ", height, " x ", width,
                      " RGB need ", want, " bytes, but rgb holds ", rgb.size());
    }

    // count × height × width × 3 with every factor checked, so that no size can overflow.
    static std::size_t expected_bytes(std::int64_t count, std::int64_t height, std::int64_t width,
                                      const std::string& what) {
        HYVIDEO_CHECK(count >= 0 && height >= 0 && width >= 0, what, ": negative Frames size ", count, " x ",
                      height, " x ", width);
        std::int64_t n = 3;
        const bool overflow = __builtin_mul_overflow(n, count, &n) || __builtin_mul_overflow(n, height, &n) ||
                              __builtin_mul_overflow(n, width, &n);
        HYVIDEO_CHECK(!overflow, what, ": Frames size ", count, " x ", height, " x ", width, " overflows");
        return static_cast<std::size_t>(n);
    }

private:
    std::size_t checked_frame(std::int64_t t) const {
        HYVIDEO_CHECK(t >= 0 && t < count, "frame ", t, " out of range for ", count, " frames");
        return static_cast<std::size_t>(t);
    }
};

// ---------------------------------------------------------------------------------------------------
// Tensors

// The pipeline's decoded video, f32 [3, T, H, W] or [1, 3, T, H, W] with values in [0, 1] (after
// the official clamp(x / 2 + 0.5, 0, 1)), to frames: each value becomes uint8(255 * v), truncated
// as the official code does (numpy's astype(np.uint8)), computed in float as there. Values outside
// [0, 1] are clamped. NaN is an error: it means the computation diverged, and writing it as black
// would hide that.
inline Frames frames_from_tensor(const Tensor& video) {
    HYVIDEO_CHECK(video.defined() && video.device() == Device::cpu, "frames_from_tensor: needs a CPU tensor");
    HYVIDEO_CHECK(video.dtype() == DType::f32, "frames_from_tensor: needs f32, got ", dtype_name(video.dtype()));
    Tensor v = video;
    if (v.dim() == 5) {
        HYVIDEO_CHECK(v.size(0) == 1, "frames_from_tensor: batch of ", v.size(0), " videos; pass one");
        v = v.select(0, 0);
    }
    HYVIDEO_CHECK(v.dim() == 4 && v.size(0) == 3, "frames_from_tensor: expected [3, T, H, W] or [1, 3, T, H, W], got ",
                  shape_str(video.shape()));
    // [3, T, H, W] -> [T, H, W, 3]: the frames' interleaved layout.
    const Tensor thwc = v.permute({1, 2, 3, 0}).contiguous();
    Frames f = Frames::zeros(v.size(1), v.size(2), v.size(3));
    const float* src = thwc.data<const float>();
    for (std::size_t i = 0; i < f.rgb.size(); ++i) {
        const float x = src[i];
        if (std::isnan(x)) {
            const auto px = static_cast<std::int64_t>(i / 3);
            throw Error(detail::concat("frames_from_tensor: NaN at channel ", i % 3, ", frame ",
                               px / (f.height * f.width), ", row ", px / f.width % f.height, ", column ", px % f.width));
        }
        f.rgb[i] = static_cast<std::uint8_t>(std::clamp(x, 0.0f, 1.0f) * 255.0f);
    }
    return f;
}

// Frames to f32 [3, T, H, W] in [0, 1] (value / 255), the layout and scale the pipeline's image
// and video encoders take before their own normalisation.
inline Tensor frames_to_tensor(const Frames& frames) {
    frames.validate("frames_to_tensor");
    Tensor out = Tensor::empty({3, frames.count, frames.height, frames.width});
    float* dst = out.data<float>();
    const std::size_t plane = static_cast<std::size_t>(frames.count * frames.height * frames.width);
    for (std::size_t p = 0; p < plane; ++p)
        for (std::size_t c = 0; c < 3; ++c) dst[c * plane + p] = static_cast<float>(frames.rgb[p * 3 + c]) / 255.0f;
    return out;
}

}  // namespace hyvideo
