#pragma once
// Video and latent sizes (official sample_video.py / pipeline checks): frame counts are 4k+1, sides
// are rounded up to multiples of 16, latents are [B, 16, (T−1)/4 + 1, H/8, W/8].
#include <array>
#include <cstdint>
#include <string>

#include "hyvideo/core/error.hpp"
#include "hyvideo/core/tensor.hpp"

namespace hyvideo {

struct VideoSize {
    std::int64_t height = 0, width = 0, frames = 0;
};

// Rounds height and width up to multiples of 16 as the official code does (540 -> 544) and checks
// the frame count; `note` receives a sentence when a side changed.
inline VideoSize align_video_size(VideoSize s, std::string* note = nullptr) {
    HYVIDEO_CHECK(s.height > 0 && s.width > 0, "video size must be positive, got ", s.height, "x", s.width);
    HYVIDEO_CHECK(s.frames > 0 && (s.frames - 1) % 4 == 0, "video length must be 4k+1 (1, 5, 9, ..., 129), got ",
                  s.frames);
    const VideoSize a{(s.height + 15) / 16 * 16, (s.width + 15) / 16 * 16, s.frames};
    if (note && (a.height != s.height || a.width != s.width))
        *note = "video size " + std::to_string(s.height) + "x" + std::to_string(s.width) + " aligned up to " +
                std::to_string(a.height) + "x" + std::to_string(a.width) + " (multiples of 16)";
    return a;
}

inline Shape latent_shape(const VideoSize& s, std::int64_t batch = 1, std::int64_t channels = 16) {
    return {batch, channels, (s.frames - 1) / 4 + 1, s.height / 8, s.width / 8};
}

}  // namespace hyvideo
