#pragma once
// Image I/O through FFmpeg's libraries, on the machinery of io/video.hpp.
//
//   read_image        a PNG, JPEG or any other still image FFmpeg decodes -> one RGB24 frame
//   write_png         one RGB24 picture -> PNG
//   write_png_frames  every frame -> dir/frame_0000.png, frame_0001.png, ... (the CLI's --frames-dir)
//
// Same promises as the video functions: errors are hyvideo::Error naming the file, with FFmpeg's
// message, and writers never leave a partial file (temporary file + rename).
#include <cstdint>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "hyvideo/core/error.hpp"
#include "hyvideo/io/video.hpp"

namespace hyvideo {

inline constexpr int kMaxImageSide = 32768;

// The image in `path` as one RGB24 frame (Frames with count 1). The format is recognised from the
// content, not the extension: PNG (8 and 16 bits, grey, palette), JPEG, and the other still-image
// formats FFmpeg reads (BMP, TIFF, WebP, ...; of an animated GIF or PNG, the first frame). An alpha
// channel is dropped, not composited, like PIL's convert("RGB") that the official image-to-video
// code uses; EXIF orientation is not applied, like PIL's Image.open there. A missing, unreadable,
// damaged or non-image file (a video, a text file) is an Error.
inline Frames read_image(const std::filesystem::path& path) {
    namespace av = detail::av;
    av::LogScope log;
    av::Input in = av::open_input(path, true, 1);  // one picture: threads would only cost
    // Only image demuxers: "image2" (by extension) and the "<codec>_pipe" ones (by content), plus the
    // animated formats. Others would accept files no one means as an image, a video, or a text file
    // that the "tty" demuxer renders as ANSI art.
    const std::string_view demuxer = in.format->iformat->name;
    const bool image = demuxer == "image2" || demuxer == "gif" || demuxer == "apng" ||
                       (demuxer.size() > 5 && demuxer.substr(demuxer.size() - 5) == "_pipe");
    if (!image) {
        const char* what = in.format->iformat->long_name ? in.format->iformat->long_name : in.format->iformat->name;
        av::fail(path, detail::concat("not an image: FFmpeg reads it as ", what));
    }
    // Checked from the header, before decoding allocates the picture: no camera or scanner makes a side
    // this long, and a crafted header could claim any size.
    const auto* par = in.stream->codecpar;
    HYVIDEO_CHECK(par->width <= kMaxImageSide && par->height <= kMaxImageSide, path.string(), ": an image of ", par->width,
                  "x", par->height, " pixels; the largest side read is ", kMaxImageSide);
    Frames frame = av::decode_frames(in, path, 1, true);
    if (frame.count == 0) av::fail(path, "holds no picture (damaged or empty image)");
    return frame;
}

// Writes the RGB24 picture `rgb` (height rows of width × 3 bytes, no padding) to `path` as an
// 8-bit RGB PNG. The file appears complete or not at all.
inline void write_png(const std::filesystem::path& path, const std::uint8_t* rgb, std::int64_t height,
                      std::int64_t width) {
    detail::av::LogScope log;
    const std::vector<std::uint8_t> bytes = detail::av::encode_image(AV_CODEC_ID_PNG, rgb, height, width, path);
    AtomicFile file(path);
    file.write(bytes.data(), bytes.size());
    file.commit();
}

// The name write_png_frames gives frame t of `count`: frame_0000.png, ... with at least 4 digits,
// more where the count needs them, so that the names sort in frame order.
inline std::string png_frame_name(std::int64_t t, std::int64_t count) {
    std::string digits = std::to_string(t);
    const std::size_t width = std::max<std::size_t>(4, std::to_string(std::max<std::int64_t>(count - 1, 0)).size());
    if (digits.size() < width) digits.insert(0, width - digits.size(), '0');
    return "frame_" + digits + ".png";
}

// Writes each frame to dir/png_frame_name(t, count), creating `dir` (and its parents) if needed.
// Files of the same names are replaced; other files in `dir` are left alone (frames of an earlier,
// longer run included). All or nothing: if a frame fails, the frames this call wrote are removed
// again, and so is `dir` if this call created it, and the Error names the failing file.
inline void write_png_frames(const std::filesystem::path& dir, const Frames& frames) {
    namespace fs = std::filesystem;
    detail::av::LogScope log;
    frames.validate(dir.string());
    HYVIDEO_CHECK(frames.count > 0, dir.string(), ": no frames to write");
    std::error_code ec;
    const bool existed = fs::exists(dir, ec);
    HYVIDEO_CHECK(!existed || fs::is_directory(dir, ec), dir.string(), ": exists and is not a directory");
    if (!existed) {
        fs::create_directories(dir, ec);
        HYVIDEO_CHECK(!ec, dir.string(), ": cannot create the directory: ", ec.message());
    }
    std::vector<fs::path> written;
    try {
        for (std::int64_t t = 0; t < frames.count; ++t) {
            const fs::path file = dir / png_frame_name(t, frames.count);
            write_png(file, frames.frame(t), frames.height, frames.width);
            written.push_back(file);
        }
    } catch (...) {
        for (const fs::path& f : written) fs::remove(f, ec);
        if (!existed) fs::remove(dir, ec);  // only removes it if empty: never someone else's files
        throw;
    }
}

}  // namespace hyvideo
