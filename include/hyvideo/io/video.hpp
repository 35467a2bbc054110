#pragma once
// Video I/O through FFmpeg's libraries (libavformat, libavcodec, libswscale).
//
//   write_mp4   H.264 (libx264) in yuv420p, MP4 container, exact frame count and duration count/fps
//   read_video  every frame of a video file, decoded to RGB
//   probe_video codec, pixel format, frame count, size, frame rate and duration of a video file
//
// Frames, the 8-bit RGB frames these read and write, and their conversion to and from the pipeline's
// tensors are in io/frames.hpp, which needs no FFmpeg.
//
// Images (PNG/JPEG reading, PNG writing, --frames-dir) are in io/image.hpp, on the same machinery.
//
// Promises, as everywhere in hyvideo: bad input gets a hyvideo::Error naming the file and saying what
// is wrong (FFmpeg's own error text included), and a writer that fails leaves no file behind: output
// goes to a hidden temporary file in the target's directory, which is renamed over the target only
// once it is complete and on disk (the same scheme as save_safetensors).
//
// FFmpeg's log: while a hyvideo call runs, FFmpeg's messages below AV_LOG_ERROR (x264's settings
// and statistics, swscale's notes) are dropped, and its error messages become part of the
// exception's text instead of going to stderr. This holds for FFmpeg's worker threads too, and so
// for any FFmpeg use of the program's own on other threads meanwhile; outside hyvideo's calls FFmpeg
// logs as usual. set_ffmpeg_verbose(true) lets everything through, for debugging. hyvideo installs
// its log callback (av_log_set_callback) the first time it calls FFmpeg; a program that installs its
// own afterwards replaces it, which costs only the routing of messages into exceptions.
//
// Paths are always opened as local files (FFmpeg's "file:" protocol), so a name containing ':' is
// not taken for a URL and a name containing '%' is not taken for an image-sequence pattern.
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/cpu.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "hyvideo/core/error.hpp"
#include "hyvideo/core/tensor.hpp"
#include "hyvideo/io/atomic_file.hpp"
#include "hyvideo/io/frames.hpp"
#include "hyvideo/io/mapped_file.hpp"

namespace hyvideo {

// What probe_video reports, named as ffprobe names them.
struct VideoInfo {
    std::string codec;    // codec_name, e.g. "h264"
    std::string pix_fmt;  // pix_fmt, e.g. "yuv420p"
    std::int64_t frames = 0;  // packets of the video stream (= frames for every codec without
                              // field-coded or split frames, including all that write_mp4 writes)
    std::int64_t width = 0;
    std::int64_t height = 0;
    double fps = 0;       // the stream's average frame rate
    double duration = 0;  // seconds: the container's duration (ffprobe's format=duration)
};

// Options of write_mp4 beyond the quality.
struct Mp4Options {
    // x264's constant rate factor: 0 is lossless (and only plays in some players), 18 is
    // conventionally "visually lossless", 23 is x264's default, 51 the worst.
    int crf = 18;
    // x264 preset: ultrafast ... medium ... veryslow. Slower presets make smaller files at the
    // same quality.
    std::string preset = "medium";
    // Encoder threads. Fixed rather than "one per core": x264's output depends on its thread
    // count, so a fixed number makes the bytes of a video the same on every machine.
    int threads = 2;
};

namespace detail::av {

// --- FFmpeg's log ----------------------------------------------------------------------------------
// While a LogScope is open, the errors FFmpeg logs on its thread are collected in log_sink, and the
// exception texts quote them. Errors logged meanwhile by threads without a scope, which are the
// codecs' worker threads (frame-threaded decoders report from them), go to worker_log and are quoted
// too. With several hyvideo calls running at once, a worker's error may be quoted by the wrong one:
// a price paid only in the text of an error.
inline thread_local std::string* log_sink = nullptr;
inline std::atomic<int> active_scopes{0};
inline std::atomic<bool> verbose{false};
inline std::mutex worker_log_mutex;
inline std::string worker_log;

// A broken file can make a decoder complain once per packet: the first messages name the cause,
// so keep those, each once, up to a bounded amount of text.
inline void append_message(std::string& log, const std::string& text) {
    if (log.size() < 2000 && log.find(text) == std::string::npos) log += (log.empty() ? "" : "; ") + text;
}

inline void log_callback(void* avcl, int level, const char* fmt, va_list vl) {
    if (verbose.load(std::memory_order_relaxed) || active_scopes.load(std::memory_order_relaxed) == 0) {
        av_log_default_callback(avcl, level, fmt, vl);
        return;
    }
    // A hyvideo call is running: drop the chatter, keep the errors for its exception.
    if (level > AV_LOG_ERROR) return;
    char line[1024];
    thread_local int print_prefix = 1;
    av_log_format_line2(avcl, level, fmt, vl, line, sizeof line, &print_prefix);
    std::string text(line);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    // "[png @ 0x5581...] msg" -> "[png] msg": the address means nothing to the reader.
    if (const auto at = text.find(" @ 0x"); at != std::string::npos && text.front() == '[') {
        if (const auto close = text.find(']', at); close != std::string::npos) text.erase(at, close - at);
    }
    if (text.empty()) return;
    if (log_sink != nullptr) {
        append_message(*log_sink, text);
    } else {
        const std::lock_guard<std::mutex> lock(worker_log_mutex);
        append_message(worker_log, text);
    }
}

// Open while hyvideo calls FFmpeg: installs the callback once per process and collects this
// thread's error messages. Nested scopes (write_png_frames calling write_png) share the outer one's.
class LogScope {
public:
    LogScope() {
        static const bool installed = [] {
            av_log_set_callback(&log_callback);
            return true;
        }();
        (void)installed;
        outer_ = log_sink;
        if (outer_ == nullptr) log_sink = &messages_;
        active_scopes.fetch_add(1);
    }
    LogScope(const LogScope&) = delete;
    LogScope& operator=(const LogScope&) = delete;
    ~LogScope() {
        if (active_scopes.fetch_sub(1) == 1) {
            const std::lock_guard<std::mutex> lock(worker_log_mutex);
            worker_log.clear();
        }
        if (outer_ == nullptr) log_sink = nullptr;
    }

private:
    std::string* outer_ = nullptr;
    std::string messages_;
};

inline std::string error_text(int code) {
    char buf[AV_ERROR_MAX_STRING_SIZE] = {};
    av_strerror(code, buf, sizeof buf);
    return buf;
}

// What FFmpeg logged so far in the current scope, as " (FFmpeg: ...)", or "".
inline std::string logged() {
    std::string text = log_sink != nullptr ? *log_sink : std::string();
    {
        const std::lock_guard<std::mutex> lock(worker_log_mutex);
        if (!worker_log.empty()) append_message(text, worker_log);
    }
    return text.empty() ? "" : " (FFmpeg: " + text + ")";
}

// Throws "<path>: <what>: <FFmpeg's error text> (FFmpeg: <its log>)".
[[noreturn]] inline void fail(const std::filesystem::path& path, const std::string& what, int code) {
    throw Error(concat(path.string(), ": ", what, ": ", error_text(code), logged()));
}
[[noreturn]] inline void fail(const std::filesystem::path& path, const std::string& what) {
    throw Error(concat(path.string(), ": ", what, logged()));
}
inline int check(int code, const std::filesystem::path& path, const std::string& what) {
    if (code < 0) fail(path, what, code);
    return code;
}

// --- RAII for FFmpeg's objects ---------------------------------------------------------------------
// Every object FFmpeg allocates is owned by a unique_ptr from the moment it exists, so that every
// exit, thrown errors included, frees it.
struct InputDeleter {
    void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
};
struct OutputDeleter {
    void operator()(AVFormatContext* c) const {
        // Closing flushes what the muxer buffered; on the error paths that goes to a temporary
        // file that is deleted anyway. The success path closes explicitly and checks the result.
        if (c->pb != nullptr && !(c->oformat->flags & AVFMT_NOFILE)) avio_closep(&c->pb);
        avformat_free_context(c);
    }
};
struct CodecDeleter {
    void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameDeleter {
    void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketDeleter {
    void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsDeleter {
    void operator()(SwsContext* s) const { sws_freeContext(s); }
};
struct DictDeleter {
    void operator()(AVDictionary* d) const { av_dict_free(&d); }
};
using InputPtr = std::unique_ptr<AVFormatContext, InputDeleter>;
using OutputPtr = std::unique_ptr<AVFormatContext, OutputDeleter>;
using CodecPtr = std::unique_ptr<AVCodecContext, CodecDeleter>;
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;
using SwsPtr = std::unique_ptr<SwsContext, SwsDeleter>;

inline FramePtr alloc_frame(const std::filesystem::path& path) {
    FramePtr f(av_frame_alloc());
    if (!f) fail(path, "out of memory allocating a frame");
    return f;
}
inline PacketPtr alloc_packet(const std::filesystem::path& path) {
    PacketPtr p(av_packet_alloc());
    if (!p) fail(path, "out of memory allocating a packet");
    return p;
}
inline CodecPtr alloc_codec(const AVCodec* codec, const std::filesystem::path& path) {
    CodecPtr c(avcodec_alloc_context3(codec));
    if (!c) fail(path, "out of memory allocating a codec context");
    return c;
}

// FFmpeg's URL for a local file: the "file:" prefix keeps a path such as "a:b.mp4" from being
// read as protocol "a".
inline std::string file_url(const std::filesystem::path& path) { return "file:" + path.string(); }

// avcodec_open2 with options; options the codec does not know are an error (a typo in a preset
// name would otherwise be ignored silently).
inline void open_codec(AVCodecContext* ctx, const AVCodec* codec, AVDictionary* options,
                       const std::filesystem::path& path, const std::string& what) {
    std::unique_ptr<AVDictionary, DictDeleter> owned(options);
    AVDictionary* opts = owned.release();
    const int r = avcodec_open2(ctx, codec, &opts);
    owned.reset(opts);
    check(r, path, "cannot open the " + what);
    if (const AVDictionaryEntry* e = av_dict_get(owned.get(), "", nullptr, AV_DICT_IGNORE_SUFFIX))
        fail(path, concat("the ", what, " does not know the option ", e->key, "=", e->value));
}

// --- Colour ----------------------------------------------------------------------------------------
// RGB <-> YUV conversion: swscale with accurate rounding and bit-exact arithmetic (the same numbers
// on every CPU), bicubic chroma filtering, and full-resolution chroma on the RGB side.
inline constexpr int sws_flags = SWS_BICUBIC | SWS_ACCURATE_RND | SWS_BITEXACT;

inline int sws_colorspace(AVColorSpace cs) {
    switch (cs) {
        case AVCOL_SPC_BT709: return SWS_CS_ITU709;
        case AVCOL_SPC_FCC: return SWS_CS_FCC;
        case AVCOL_SPC_SMPTE240M: return SWS_CS_SMPTE240M;
        case AVCOL_SPC_BT2020_NCL:
        case AVCOL_SPC_BT2020_CL: return SWS_CS_BT2020;
        // BT.601 (BT470BG, SMPTE170M) and untagged streams: BT.601 is what FFmpeg and most players
        // assume for untagged video.
        default: return SWS_CS_ITU601;
    }
}

// A converter from `src` (format, size) to `dst`, with the YUV side's matrix and range set
// explicitly: swscale's defaults (BT.601, and a range guessed from the format) are right only for
// untagged material.
inline SwsPtr make_converter(int w, int h, AVPixelFormat src, AVPixelFormat dst, int flags, AVColorSpace cs,
                             AVColorRange range, const std::filesystem::path& path) {
    SwsPtr sws(sws_getContext(w, h, src, w, h, dst, flags, nullptr, nullptr, nullptr));
    if (!sws) {
        const char* s = av_get_pix_fmt_name(src);
        const char* d = av_get_pix_fmt_name(dst);
        fail(path, concat("cannot convert pixel format ", s ? s : "unknown", " to ", d ? d : "unknown"));
    }
    int *inv_table = nullptr, *table = nullptr;
    int src_range = 0, dst_range = 0, brightness = 0, contrast = 0, saturation = 0;
    if (sws_getColorspaceDetails(sws.get(), &inv_table, &src_range, &table, &dst_range, &brightness, &contrast,
                                 &saturation) < 0)
        return sws;  // a plain copy or RGB <-> RGB: there is no YUV side
    const auto is_yuv = [](AVPixelFormat f) {
        const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(f);
        return d != nullptr && !(d->flags & AV_PIX_FMT_FLAG_RGB) && d->nb_components >= 3;
    };
    const int* coefficients = sws_getCoefficients(sws_colorspace(cs));
    if (is_yuv(src)) {
        inv_table = const_cast<int*>(coefficients);
        // Unspecified range: keep swscale's choice (full range for the yuvj formats of JPEG).
        if (range != AVCOL_RANGE_UNSPECIFIED) src_range = range == AVCOL_RANGE_JPEG;
    }
    if (is_yuv(dst)) {
        table = const_cast<int*>(coefficients);
        if (range != AVCOL_RANGE_UNSPECIFIED) dst_range = range == AVCOL_RANGE_JPEG;
    }
    if (sws_setColorspaceDetails(sws.get(), inv_table, src_range, table, dst_range, brightness, contrast,
                                 saturation) < 0)
        fail(path, "cannot set the colour conversion");
    return sws;
}

// --- Files -----------------------------------------------------------------------------------------
// Clear messages for the commonest mistakes before FFmpeg reports them less clearly.
inline void check_input_file(const std::filesystem::path& path) {
    std::error_code ec;
    HYVIDEO_CHECK(std::filesystem::exists(std::filesystem::symlink_status(path, ec)), path.string(), ": no such file");
    // Opened here first: FFmpeg's own open would block on a FIFO, and read a device until it ends.
    const InputFile f = open_input_file(path);
    HYVIDEO_CHECK(f.size != 0, path.string(), ": is empty");
}

// --- Decoding --------------------------------------------------------------------------------------
// An opened input: the demuxer, its best video stream and a decoder for it.
struct Input {
    InputPtr format;
    AVStream* stream = nullptr;
    CodecPtr decoder;
};

// with_decoder: also open a decoder, with `threads` threads (0: one per core).
inline Input open_input(const std::filesystem::path& path, bool with_decoder, int threads = 0) {
    check_input_file(path);
    Input in;
    // pattern_type=none: the image2 demuxer would otherwise read "frame_%03d.png" as a sequence.
    // Demuxers that do not know the option ignore it.
    AVDictionary* opts = nullptr;
    av_dict_set(&opts, "pattern_type", "none", 0);
    AVFormatContext* raw = nullptr;
    const int r = avformat_open_input(&raw, file_url(path).c_str(), nullptr, &opts);
    av_dict_free(&opts);
    // avformat_open_input frees the context when it fails.
    check(r, path, r == AVERROR_INVALIDDATA ? "cannot open: not a video or image format FFmpeg reads, or damaged"
                                            : "cannot open");
    in.format.reset(raw);
    check(avformat_find_stream_info(in.format.get(), nullptr), path, "cannot read the stream information");
    const int index = av_find_best_stream(in.format.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
    if (index == AVERROR_STREAM_NOT_FOUND) fail(path, "no video stream (not a video or image file?)");
    check(index, path, "cannot find a video stream");
    in.stream = in.format->streams[index];
    if (!with_decoder) return in;

    const AVCodecID id = in.stream->codecpar->codec_id;
    const AVCodec* codec = avcodec_find_decoder(id);
    if (codec == nullptr) fail(path, concat("this FFmpeg build has no decoder for its ", avcodec_get_name(id), " video"));
    in.decoder = alloc_codec(codec, path);
    check(avcodec_parameters_to_context(in.decoder.get(), in.stream->codecpar), path, "cannot set up the decoder");
    in.decoder->pkt_timebase = in.stream->time_base;
    // Decoding is exact whatever the thread count: the count only changes the speed.
    in.decoder->thread_count = threads;
    open_codec(in.decoder.get(), codec, nullptr, path, concat(avcodec_get_name(codec->id), " decoder"));
    return in;
}

// Decodes the best video stream of `path` to RGB24, at most `max_frames` frames (-1: all).
// `image`: name the picture "the image" rather than "frame 0" in errors.
inline Frames decode_frames(Input& in, const std::filesystem::path& path, std::int64_t max_frames, bool image = false) {
    Frames out;
    const auto frame_name = [&] { return image ? std::string("the image") : concat("frame ", out.count); };
    PacketPtr packet = alloc_packet(path);
    FramePtr frame = alloc_frame(path);
    SwsPtr sws;
    AVPixelFormat sws_format = AV_PIX_FMT_NONE;

    // Reserving by the container's frame count avoids regrowing a buffer of hundreds of MB; the
    // count is only a hint (and bounded), the loop appends whatever the decoder returns.
    const auto* par = in.stream->codecpar;
    if (in.stream->nb_frames > 0 && par->width > 0 && par->height > 0) {
        const std::int64_t hint = std::min<std::int64_t>(in.stream->nb_frames, max_frames < 0 ? 4096 : max_frames);
        const std::int64_t bytes = hint * par->width * par->height * 3;
        if (bytes > 0 && bytes <= (std::int64_t{1} << 33)) out.rgb.reserve(static_cast<std::size_t>(bytes));
    }

    const auto receive = [&]() -> bool {  // false once max_frames frames are decoded
        for (;;) {
            const int r = avcodec_receive_frame(in.decoder.get(), frame.get());
            if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return true;
            check(r, path, "cannot decode " + frame_name());
            // A frame the decoder had to patch up is not the frame in the file: refuse it rather
            // than return a silently wrong picture.
            if ((frame->flags & AV_FRAME_FLAG_CORRUPT) || frame->decode_error_flags != 0)
                fail(path, frame_name() + " is damaged");
            const auto format = static_cast<AVPixelFormat>(frame->format);
            if (out.count == 0) {
                out.height = frame->height;
                out.width = frame->width;
            } else if (frame->height != out.height || frame->width != out.width) {
                fail(path, concat("frame ", out.count, " is ", frame->width, "x", frame->height, ", frame 0 was ",
                                  out.width, "x", out.height, "; videos that change size are not supported"));
            }
            if (!sws || format != sws_format) {
                sws = make_converter(frame->width, frame->height, format, AV_PIX_FMT_RGB24,
                                     sws_flags | SWS_FULL_CHR_H_INT, frame->colorspace, frame->color_range, path);
                sws_format = format;
            }
            const std::size_t offset = out.rgb.size();
            out.rgb.resize(offset + static_cast<std::size_t>(out.width * out.height * 3));
            std::uint8_t* dst[4] = {out.rgb.data() + offset, nullptr, nullptr, nullptr};
            const int dst_stride[4] = {static_cast<int>(out.width * 3), 0, 0, 0};
            if (sws_scale(sws.get(), frame->data, frame->linesize, 0, frame->height, dst, dst_stride) < 0)
                fail(path, "cannot convert " + frame_name() + " to RGB");
            av_frame_unref(frame.get());
            ++out.count;
            if (max_frames >= 0 && out.count >= max_frames) return false;
        }
    };

    bool more = max_frames != 0;
    while (more) {
        const int r = av_read_frame(in.format.get(), packet.get());
        if (r == AVERROR_EOF) break;
        check(r, path, concat("cannot read after frame ", out.count));
        if (packet->stream_index == in.stream->index) {
            const int s = avcodec_send_packet(in.decoder.get(), packet.get());
            av_packet_unref(packet.get());
            check(s, path, "cannot decode " + frame_name());
            more = receive();
        } else {
            av_packet_unref(packet.get());
        }
    }
    if (more) {
        // Drain: decoders with frame reordering or threads hold the last frames back.
        check(avcodec_send_packet(in.decoder.get(), nullptr), path, "cannot flush the decoder");
        receive();
    }
    return out;
}

// The RGB24 picture `src` (src_height x src_width), copied into `buffer` as height x width
// (>= the source's), the extra columns and rows repeating the last ones, and followed by slack.
// Odd sizes: 4:2:0 chroma covers 2x2 pixels, so H.264 in yuv420p needs even sizes. Slack: swscale's
// SIMD input code reads up to 16 bytes past the end of its input (valgrind shows it), which past the
// end of a caller's buffer could fault at a page boundary; the copy costs little next to encoding.
inline const std::uint8_t* staged_rgb(const std::uint8_t* src, std::int64_t src_height, std::int64_t src_width,
                                      std::int64_t height, std::int64_t width, std::vector<std::uint8_t>& buffer) {
    constexpr std::size_t slack = 64;
    buffer.assign(static_cast<std::size_t>(height * width * 3) + slack, 0);
    const auto row_bytes = static_cast<std::size_t>(src_width * 3);
    for (std::int64_t y = 0; y < height; ++y) {
        const std::uint8_t* s = src + std::min(y, src_height - 1) * src_width * 3;
        std::uint8_t* d = buffer.data() + y * width * 3;
        std::memcpy(d, s, row_bytes);
        for (std::int64_t x = src_width; x < width; ++x) std::memcpy(d + x * 3, d + (src_width - 1) * 3, 3);
    }
    return buffer.data();
}

// --- Encoding one image ----------------------------------------------------------------------------
// Encodes one RGB24 picture with an FFmpeg image encoder (PNG, MJPEG) into memory. `quality`:
// for MJPEG the quantiser scale 2 (best) .. 31; ignored otherwise.
inline std::vector<std::uint8_t> encode_image(AVCodecID id, const std::uint8_t* rgb, std::int64_t height,
                                              std::int64_t width, const std::filesystem::path& path,
                                              int quality = 2) {
    LogScope log;
    HYVIDEO_CHECK(rgb != nullptr, path.string(), ": no pixels (null pointer)");
    HYVIDEO_CHECK(height > 0 && width > 0 && height <= 65535 && width <= 65535, path.string(),
                  ": cannot encode an image of ", width, "x", height);
    const AVCodec* codec = avcodec_find_encoder(id);
    if (codec == nullptr) fail(path, concat("this FFmpeg build has no ", avcodec_get_name(id), " encoder"));
    CodecPtr enc = alloc_codec(codec, path);
    const bool jpeg = id == AV_CODEC_ID_MJPEG;
    enc->width = static_cast<int>(width);
    enc->height = static_cast<int>(height);
    // JPEG: full-range 4:2:0 (the yuvj format), what JPEG files ordinarily hold.
    enc->pix_fmt = jpeg ? AV_PIX_FMT_YUVJ420P : AV_PIX_FMT_RGB24;
    enc->color_range = jpeg ? AVCOL_RANGE_JPEG : AVCOL_RANGE_UNSPECIFIED;
    enc->time_base = AVRational{1, 1};  // required of video encoders, meaningless for one image
    enc->thread_count = 1;
    if (jpeg) {
        enc->flags |= AV_CODEC_FLAG_QSCALE;
        enc->global_quality = FF_QP2LAMBDA * std::clamp(quality, 2, 31);
    }
    open_codec(enc.get(), codec, nullptr, path, concat(avcodec_get_name(id), " encoder"));

    FramePtr frame = alloc_frame(path);
    frame->format = enc->pix_fmt;
    frame->width = enc->width;
    frame->height = enc->height;
    frame->color_range = enc->color_range;
    frame->pts = 0;
    if (jpeg) frame->quality = enc->global_quality;
    check(av_frame_get_buffer(frame.get(), 0), path, "cannot allocate a frame");
    std::vector<std::uint8_t> staging;
    const std::uint8_t* src[4] = {jpeg ? staged_rgb(rgb, height, width, height, width, staging) : rgb, nullptr, nullptr,
                                  nullptr};
    const int src_stride[4] = {static_cast<int>(width * 3), 0, 0, 0};
    if (jpeg) {
        SwsPtr sws = make_converter(enc->width, enc->height, AV_PIX_FMT_RGB24, enc->pix_fmt,
                                    sws_flags, AVCOL_SPC_BT470BG, AVCOL_RANGE_JPEG, path);
        if (sws_scale(sws.get(), src, src_stride, 0, enc->height, frame->data, frame->linesize) < 0)
            fail(path, "cannot convert the image from RGB");
    } else {
        for (std::int64_t y = 0; y < height; ++y)
            std::memcpy(frame->data[0] + y * frame->linesize[0], rgb + y * width * 3, static_cast<std::size_t>(width * 3));
    }

    std::vector<std::uint8_t> bytes;
    PacketPtr packet = alloc_packet(path);
    check(avcodec_send_frame(enc.get(), frame.get()), path, "cannot encode");
    check(avcodec_send_frame(enc.get(), nullptr), path, "cannot encode");
    for (;;) {
        const int r = avcodec_receive_packet(enc.get(), packet.get());
        if (r == AVERROR_EOF) break;
        check(r, path, "cannot encode");
        bytes.insert(bytes.end(), packet->data, packet->data + packet->size);
        av_packet_unref(packet.get());
    }
    if (bytes.empty()) fail(path, "the encoder produced no data");
    return bytes;
}

// x264's own options for write_mp4 beyond preset and crf. x264 0.164 (Debian 12's) lets
// uninitialised memory into its decisions in its AVX-512 code: the same frames encode to different
// (valid) bitstreams depending on what the heap held before, which glibc's MALLOC_PERTURB_ shows at
// once. Its AVX2, SSE and C code give identical bytes to each other and do not depend on the heap,
// so on CPUs with AVX-512 x264 is held to AVX2 (a few per cent of encoding speed). Elsewhere x264
// picks its code itself, so no CPU is ever told to run instructions it lacks.
inline std::string x264_params() {
    const int cpu = av_get_cpu_flags();
    const int avx2 = AV_CPU_FLAG_AVX2 | AV_CPU_FLAG_FMA3 | AV_CPU_FLAG_BMI2;
    if ((cpu & AV_CPU_FLAG_AVX512) && (cpu & avx2) == avx2) return "asm=AVX2";
    return "";
}

// The presets x264 knows. Checked here rather than by x264, which reports an unknown one on stderr
// itself, past FFmpeg's log.
inline bool is_x264_preset(const std::string& preset) {
    for (const char* p : {"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                          "placebo"})
        if (preset == p) return true;
    return false;
}

}  // namespace detail::av

// Lets FFmpeg's messages below AV_LOG_ERROR through to stderr during hyvideo's calls too (x264's
// settings and statistics, muxer notes), and stops quoting errors in exceptions. Off by default.
inline void set_ffmpeg_verbose(bool on) { detail::av::verbose.store(on); }

// ---------------------------------------------------------------------------------------------------
// Writing

// Writes `frames` to `path` as an MP4 file holding one H.264 stream (libx264, yuv420p, High profile),
// `fps` frames per second, every frame exactly once, timestamps i/fps, so that players and ffprobe
// report count/fps seconds. The container is MP4 whatever the extension of `path`.
//
// - fps is stored as a rational: integers exactly, others as the nearest fraction with a
//   denominator up to 100000 (30000/1001 for 29.97...).
// - Colour: BT.709 matrix, limited range, and the stream is tagged so (primaries, transfer, matrix),
//   so that players do not have to guess. read_video inverts exactly this.
// - Odd widths or heights are padded to even by repeating the last column or row: yuv420p cannot
//   hold them. The video is then one pixel wider or taller than the frames. (The pipeline's sizes
//   are multiples of 16, so this only concerns frames from elsewhere.)
// - The moov atom goes first ("faststart"), so the file plays while it downloads.
// - The same frames and options give the same bytes on every machine (see Mp4Options::threads).
// On any error: a hyvideo::Error naming `path`, with FFmpeg's message, and no file at `path` (an
// existing file there is left as it was).
inline void write_mp4(const std::filesystem::path& path, const Frames& frames, double fps,
                      const Mp4Options& options) {
    namespace av = detail::av;
    av::LogScope log;
    const std::string where = path.string();
    frames.validate(where);
    HYVIDEO_CHECK(frames.count > 0, where, ": no frames to write");
    HYVIDEO_CHECK(frames.height > 0 && frames.width > 0, where, ": frames of ", frames.width, "x", frames.height,
                  " pixels");
    HYVIDEO_CHECK(std::isfinite(fps) && fps > 0 && fps <= 1000, where, ": fps ", fps, " is not in (0, 1000]");
    HYVIDEO_CHECK(options.crf >= 0 && options.crf <= 51, where, ": crf ", options.crf, " is not in 0..51");
    HYVIDEO_CHECK(options.threads >= 1 && options.threads <= 64, where, ": ", options.threads,
                  " encoder threads (1..64)");
    HYVIDEO_CHECK(av::is_x264_preset(options.preset), where, ": unknown x264 preset \"", options.preset,
                  "\" (ultrafast, superfast, veryfast, faster, fast, medium, slow, slower, veryslow, placebo)");
    const std::int64_t height = frames.height + (frames.height & 1);
    const std::int64_t width = frames.width + (frames.width & 1);
    HYVIDEO_CHECK(height <= 16384 && width <= 16384, where, ": frames of ", frames.width, "x", frames.height,
                  " exceed H.264's 16384 pixels per side");
    const AVRational rate = av_d2q(fps, 100000);
    HYVIDEO_CHECK(rate.num > 0 && rate.den > 0, where, ": fps ", fps, " has no rational form");

    // Created before FFmpeg runs: an unwritable directory fails here, with the OS's reason.
    AtomicFile file(path);

    const AVCodec* codec = avcodec_find_encoder_by_name("libx264");
    if (codec == nullptr) av::fail(path, "this FFmpeg build has no libx264 encoder (H.264)");

    AVFormatContext* raw = nullptr;
    av::check(avformat_alloc_output_context2(&raw, nullptr, "mp4", av::file_url(file.path()).c_str()), path,
              "cannot set up the MP4 muxer");
    av::OutputPtr mux(raw);

    av::CodecPtr enc = av::alloc_codec(codec, path);
    enc->width = static_cast<int>(width);
    enc->height = static_cast<int>(height);
    enc->pix_fmt = AV_PIX_FMT_YUV420P;
    enc->time_base = av_inv_q(rate);  // one tick per frame: frame i has pts i
    enc->framerate = rate;
    enc->sample_aspect_ratio = AVRational{1, 1};
    enc->color_range = AVCOL_RANGE_MPEG;
    enc->colorspace = AVCOL_SPC_BT709;
    enc->color_primaries = AVCOL_PRI_BT709;
    enc->color_trc = AVCOL_TRC_BT709;
    enc->thread_count = options.threads;
    // MP4 keeps SPS/PPS in the sample description (avcC), not in the stream.
    if (mux->oformat->flags & AVFMT_GLOBALHEADER) enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    AVDictionary* enc_opts = nullptr;
    av_dict_set(&enc_opts, "preset", options.preset.c_str(), 0);
    av_dict_set(&enc_opts, "crf", std::to_string(options.crf).c_str(), 0);
    if (const std::string params = av::x264_params(); !params.empty())
        av_dict_set(&enc_opts, "x264-params", params.c_str(), 0);
    av::open_codec(enc.get(), codec, enc_opts, path, "libx264 encoder");

    AVStream* stream = avformat_new_stream(mux.get(), nullptr);
    if (stream == nullptr) av::fail(path, "cannot add a stream");
    av::check(avcodec_parameters_from_context(stream->codecpar, enc.get()), path, "cannot set up the stream");
    stream->time_base = enc->time_base;  // a wish: the muxer picks its own and says so
    stream->avg_frame_rate = rate;
    stream->sample_aspect_ratio = enc->sample_aspect_ratio;

    av::check(avio_open(&mux->pb, av::file_url(file.path()).c_str(), AVIO_FLAG_WRITE), path, "cannot open");
    {
        AVDictionary* mux_opts = nullptr;
        av_dict_set(&mux_opts, "movflags", "+faststart", 0);
        const int r = avformat_write_header(mux.get(), &mux_opts);
        av_dict_free(&mux_opts);
        av::check(r, path, "cannot write the MP4 header");
    }

    av::SwsPtr sws = av::make_converter(enc->width, enc->height, AV_PIX_FMT_RGB24, AV_PIX_FMT_YUV420P,
                                        av::sws_flags, enc->colorspace, enc->color_range, path);
    av::FramePtr frame = av::alloc_frame(path);
    frame->format = enc->pix_fmt;
    frame->width = enc->width;
    frame->height = enc->height;
    frame->color_range = enc->color_range;
    frame->colorspace = enc->colorspace;
    frame->color_primaries = enc->color_primaries;
    frame->color_trc = enc->color_trc;
    av::check(av_frame_get_buffer(frame.get(), 0), path, "cannot allocate a frame");
    av::PacketPtr packet = av::alloc_packet(path);

    std::int64_t packets = 0;
    const auto send = [&](const AVFrame* f) {
        av::check(avcodec_send_frame(enc.get(), f), path, "cannot encode");
        for (;;) {
            const int r = avcodec_receive_packet(enc.get(), packet.get());
            if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return;
            av::check(r, path, "cannot encode");
            // Each packet is one frame long. Stated explicitly because the MP4 muxer takes the
            // last sample's duration from it: without it the video would end a frame early.
            packet->duration = 1;
            av_packet_rescale_ts(packet.get(), enc->time_base, stream->time_base);
            packet->stream_index = stream->index;
            av::check(av_interleaved_write_frame(mux.get(), packet.get()), path, "cannot write");
            ++packets;
        }
    };
    std::vector<std::uint8_t> staging;
    for (std::int64_t t = 0; t < frames.count; ++t) {
        // The encoder may still hold the previous picture: write into a fresh buffer if so.
        av::check(av_frame_make_writable(frame.get()), path, "cannot allocate a frame");
        const std::uint8_t* src[4] = {av::staged_rgb(frames.frame(t), frames.height, frames.width, height, width, staging),
                                      nullptr, nullptr, nullptr};
        const int src_stride[4] = {static_cast<int>(width * 3), 0, 0, 0};
        if (sws_scale(sws.get(), src, src_stride, 0, enc->height, frame->data, frame->linesize) < 0)
            av::fail(path, detail::concat("cannot convert frame ", t, " from RGB"));
        frame->pts = t;
        send(frame.get());
    }
    send(nullptr);  // drain the frames x264 holds back for lookahead and B-frames
    if (packets != frames.count)
        av::fail(path, detail::concat("the encoder returned ", packets, " packets for ", frames.count, " frames"));

    av::check(av_write_trailer(mux.get()), path, "cannot finish the MP4 file");
    av::check(avio_closep(&mux->pb), path, "cannot close");
    file.commit();
}

inline void write_mp4(const std::filesystem::path& path, const Frames& frames, double fps, int crf = 18) {
    Mp4Options options;
    options.crf = crf;
    write_mp4(path, frames, fps, options);
}

// ---------------------------------------------------------------------------------------------------
// Reading

// Every frame of the (best) video stream of `path`, decoded and converted to RGB24, in
// presentation order. Reads anything FFmpeg demuxes and decodes. YUV is converted with the matrix
// and range the stream is tagged with (BT.601 when untagged, as players do). Display rotation
// metadata is not applied. A damaged frame, or a stream that changes size, is an error.
inline Frames read_video(const std::filesystem::path& path) {
    detail::av::LogScope log;
    detail::av::Input in = detail::av::open_input(path, true);
    Frames frames = detail::av::decode_frames(in, path, -1);
    if (frames.count == 0) detail::av::fail(path, "holds no video frames");
    return frames;
}

// Codec, pixel format, size, frame rate, duration and frame count of the best video stream of
// `path`, through libavformat. Frames are counted by reading the stream's packets (no decoding).
inline VideoInfo probe_video(const std::filesystem::path& path) {
    namespace av = detail::av;
    av::LogScope log;
    av::Input in = av::open_input(path, false);
    const AVCodecParameters* par = in.stream->codecpar;
    VideoInfo info;
    info.codec = avcodec_get_name(par->codec_id);
    const char* pix = av_get_pix_fmt_name(static_cast<AVPixelFormat>(par->format));
    info.pix_fmt = pix ? pix : "unknown";
    info.width = par->width;
    info.height = par->height;
    const AVRational rate = in.stream->avg_frame_rate.num > 0 ? in.stream->avg_frame_rate : in.stream->r_frame_rate;
    info.fps = rate.den > 0 ? av_q2d(rate) : 0.0;
    if (in.format->duration != AV_NOPTS_VALUE)
        info.duration = static_cast<double>(in.format->duration) / AV_TIME_BASE;
    else if (in.stream->duration != AV_NOPTS_VALUE)
        info.duration = static_cast<double>(in.stream->duration) * av_q2d(in.stream->time_base);
    av::PacketPtr packet = av::alloc_packet(path);
    for (;;) {
        const int r = av_read_frame(in.format.get(), packet.get());
        if (r == AVERROR_EOF) break;
        av::check(r, path, "cannot read");
        if (packet->stream_index == in.stream->index) ++info.frames;
        av_packet_unref(packet.get());
    }
    return info;
}

}  // namespace hyvideo
