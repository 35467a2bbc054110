// Tests of io/video.hpp and io/image.hpp: MP4 files checked with probe_video and with the real
// ffprobe, decoded back and compared with what was written (lossy: PSNR per frame; lossless: exactly
// the 4:2:0 conversion of each frame), PNG round trips, JPEG reading, and every bad input the
// brief names (unwritable paths, unreadable and non-image files, zero frames), each checked to leave
// no file behind.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hyvideo/io/image.hpp"
#include "hyvideo/io/video.hpp"
#include "../support/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace hyvideo;

namespace {

using hyvideo::test::TempDir;

void write_text(const fs::path& p, const std::string& text) {
    std::ofstream(p, std::ios::binary) << text;
}
std::string read_bytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

double smoothstep(double e0, double e1, double x) {
    const double t = std::clamp((x - e0) / (e1 - e0), 0.0, 1.0);
    return t * t * (3 - 2 * t);
}

// A test video: colour bars moving right by 2 pixels a frame at the top, blending into a moving
// gradient at the bottom. Transitions are smooth (over about 6 pixels), as in camera or generated
// video: a hard edge between saturated colours cannot survive 4:2:0 chroma subsampling, whatever
// the codec, and would make a PSNR criterion measure the pixel format rather than the writer.
Frames pattern(std::int64_t count, std::int64_t height, std::int64_t width) {
    static constexpr double bars[7][3] = {{235, 235, 235}, {235, 235, 16}, {16, 235, 235}, {16, 235, 16},
                                          {235, 16, 235},  {235, 16, 16},  {16, 16, 235}};
    Frames f = Frames::zeros(count, height, width);
    for (std::int64_t t = 0; t < count; ++t)
        for (std::int64_t y = 0; y < height; ++y)
            for (std::int64_t x = 0; x < width; ++x) {
                const double u = (x + 2.0 * t) / 16.0;
                const auto i = static_cast<std::int64_t>(std::floor(u));
                const double b = smoothstep(0.6, 1.0, u - i);
                const double mix = smoothstep(0.3, 0.7, (y + 0.5) / height);
                const double gradient[3] = {255.0 * x / (width - 1), 255.0 * y / (height - 1),
                                            128 + 100 * std::sin(0.15 * x + 0.4 * t)};
                for (int c = 0; c < 3; ++c) {
                    const double bar = bars[i % 7][c] * (1 - b) + bars[(i + 1) % 7][c] * b;
                    f.at(t, y, x, c) = static_cast<std::uint8_t>(std::lround(bar * (1 - mix) + gradient[c] * mix));
                }
            }
    return f;
}

// A smooth moving gradient, for tests that compare neighbouring pixels.
Frames gradient(std::int64_t count, std::int64_t height, std::int64_t width) {
    Frames f = Frames::zeros(count, height, width);
    for (std::int64_t t = 0; t < count; ++t)
        for (std::int64_t y = 0; y < height; ++y)
            for (std::int64_t x = 0; x < width; ++x) {
                f.at(t, y, x, 0) = static_cast<std::uint8_t>(40 + 2 * x + 3 * t);
                f.at(t, y, x, 1) = static_cast<std::uint8_t>(60 + 3 * y);
                f.at(t, y, x, 2) = static_cast<std::uint8_t>(200 - x - y);
            }
    return f;
}

// PSNR in dB between frame ta of a and frame tb of b (same size); infinity when equal.
double psnr(const Frames& a, std::int64_t ta, const Frames& b, std::int64_t tb) {
    const std::uint8_t* p = a.frame(ta);
    const std::uint8_t* q = b.frame(tb);
    double se = 0;
    for (std::size_t i = 0; i < a.frame_bytes(); ++i) se += (double(p[i]) - q[i]) * (double(p[i]) - q[i]);
    if (se == 0) return std::numeric_limits<double>::infinity();
    return 10 * std::log10(255.0 * 255.0 * a.frame_bytes() / se);
}

bool has_program(const char* name) {
    return std::system((std::string("command -v ") + name + " >/dev/null 2>&1").c_str()) == 0;
}

// stdout of a shell command, or the exit status as a failure.
std::string run(const std::string& command) {
    std::string out;
    FILE* p = ::popen(command.c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    const int status = ::pclose(p);
    INFO(command, "\n", out);
    REQUIRE(status == 0);
    return out;
}

// Runs f with the process's stderr (fd 2) going to a file, and returns what was written there.
template <class F>
std::string capture_stderr(const fs::path& file, F&& f) {
    std::fflush(stderr);
    const int saved = ::dup(2);
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 2);
    ::close(fd);
    try {
        f();
    } catch (...) {
        std::fflush(stderr);
        ::dup2(saved, 2);
        ::close(saved);
        throw;
    }
    std::fflush(stderr);
    ::dup2(saved, 2);
    ::close(saved);
    return read_bytes(file);
}

// While alive, files cannot grow beyond `bytes` (RLIMIT_FSIZE): writes past it fail with EFBIG, as
// on a full disk, for root too. SIGXFSZ, which would kill the process, is ignored meanwhile.
class FileSizeLimit {
public:
    explicit FileSizeLimit(rlim_t bytes) {
        REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_) == 0);
        old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
        rlimit r = old_;
        r.rlim_cur = bytes;
        REQUIRE(::setrlimit(RLIMIT_FSIZE, &r) == 0);
    }
    FileSizeLimit(const FileSizeLimit&) = delete;
    FileSizeLimit& operator=(const FileSizeLimit&) = delete;
    ~FileSizeLimit() {
        ::setrlimit(RLIMIT_FSIZE, &old_);
        std::signal(SIGXFSZ, old_handler_);
    }

private:
    rlimit old_{};
    void (*old_handler_)(int) = nullptr;
};

// Expects `f` to throw a hyvideo::Error whose message contains every one of `parts`.
template <class F>
void check_error(F&& f, std::initializer_list<std::string> parts) {
    try {
        f();
        FAIL("no error thrown; expected one containing \"", *parts.begin(), "\"");
    } catch (const Error& e) {
        const std::string msg = e.what();
        for (const auto& part : parts) {
            INFO("message: ", msg);
            CHECK(msg.find(part) != std::string::npos);
        }
    }
}

}  // namespace

TEST_SUITE("io.video") {

TEST_CASE("Frames: layout, size checks and tensor conversion") {
    Frames f = Frames::zeros(2, 3, 4);
    CHECK(f.rgb.size() == 2 * 3 * 4 * 3);
    CHECK(f.frame_bytes() == 36);
    f.at(1, 2, 3, 2) = 7;
    CHECK(f.rgb.back() == 7);
    CHECK(f.frame(1) == f.rgb.data() + 36);
    CHECK_THROWS_AS(f.frame(2), Error);
    f.validate("f");
    f.rgb.pop_back();
    check_error([&] { f.validate("where"); }, {"where", "need 72 bytes", "holds 71"});
    check_error([] { Frames::zeros(-1, 2, 2); }, {"negative"});
    check_error([] { Frames::zeros(1ll << 40, 1ll << 20, 1ll << 20); }, {"overflows"});

    SUBCASE("frames_from_tensor truncates 255 * v like the official uint8 conversion") {
        // [3, T=1, H=1, W=6]: channel c holds the values below scaled by (c + 1) / 3.
        const std::vector<float> v = {0.0f, 0.5f, 1.0f, 1.5f, -0.25f, 0.999f};
        std::vector<float> data;
        for (int c = 0; c < 3; ++c)
            for (float x : v) data.push_back(c == 0 ? x : x * static_cast<float>(c + 1) / 3);
        const Frames out = frames_from_tensor(Tensor::from_vector({3, 1, 1, 6}, data));
        REQUIRE(out.count == 1);
        REQUIRE(out.height == 1);
        REQUIRE(out.width == 6);
        const int expected_r[6] = {0, 127, 255, 255, 0, 254};  // 127.5 -> 127, 254.745 -> 254
        for (int x = 0; x < 6; ++x) CHECK(out.at(0, 0, x, 0) == expected_r[x]);
        for (int x = 0; x < 6; ++x)
            for (int c = 1; c < 3; ++c)
                CHECK(out.at(0, 0, x, c) ==
                      static_cast<std::uint8_t>(std::clamp(data[c * 6 + x], 0.0f, 1.0f) * 255.0f));
        // A batch of one is accepted, NaN and wrong shapes are not.
        CHECK(frames_from_tensor(Tensor::from_vector({1, 3, 1, 1, 6}, data)).rgb == out.rgb);
        data[4] = std::nanf("");
        check_error([&] { frames_from_tensor(Tensor::from_vector({3, 1, 1, 6}, data)); },
                    {"NaN", "channel 0", "frame 0", "row 0", "column 4"});
        check_error([] { frames_from_tensor(Tensor::zeros({4, 1, 2, 2})); }, {"[3, T, H, W]", "[4, 1, 2, 2]"});
    }

    SUBCASE("frames_to_tensor gives [3, T, H, W] in [0, 1]") {
        Frames g = Frames::zeros(2, 2, 3);
        for (std::size_t i = 0; i < g.rgb.size(); ++i) g.rgb[i] = static_cast<std::uint8_t>(i * 7);
        const Tensor t = frames_to_tensor(g);
        REQUIRE(t.shape() == Shape{3, 2, 2, 3});
        for (std::int64_t c = 0; c < 3; ++c)
            for (std::int64_t f2 = 0; f2 < 2; ++f2)
                for (std::int64_t y = 0; y < 2; ++y)
                    for (std::int64_t x = 0; x < 3; ++x)
                        CHECK(t.item({c, f2, y, x}) == static_cast<float>(g.at(f2, y, x, static_cast<int>(c))) / 255.0f);
    }
}

TEST_CASE("write_mp4: H.264 in yuv420p with the frame count, size, frame rate and duration") {
    TempDir dir;
    const fs::path out = dir / "out.mp4";
    const Frames frames = pattern(17, 48, 64);
    write_mp4(out, frames, 24.0);
    CHECK(dir.entries() == std::vector<std::string>{"out.mp4"});  // no temporary file left

    const VideoInfo info = probe_video(out);
    CHECK(info.codec == "h264");
    CHECK(info.pix_fmt == "yuv420p");
    CHECK(info.frames == 17);
    CHECK(info.width == 64);
    CHECK(info.height == 48);
    CHECK(info.fps == doctest::Approx(24.0));
    // MP4's movie header counts in milliseconds, so the duration is count / fps to 1 ms.
    CHECK(std::abs(info.duration - 17.0 / 24.0) <= 0.0011);

    // The same through the real ffprobe, decoding every frame (-count_frames).
    if (!has_program("ffprobe")) {
        MESSAGE("ffprobe is not installed: skipping the cross-check with it");
        return;
    }
    const auto json = nlohmann::json::parse(
        run("ffprobe -v error -select_streams v:0 -count_frames -show_entries "
            "stream=codec_name,pix_fmt,nb_read_frames,width,height,r_frame_rate,color_space,color_range "
            "-show_entries format=duration -of json '" + out.string() + "'"));
    INFO(json.dump());
    const auto& s = json.at("streams").at(0);
    CHECK(s.at("codec_name") == "h264");
    CHECK(s.at("pix_fmt") == "yuv420p");
    CHECK(s.at("nb_read_frames") == "17");
    CHECK(s.at("width") == 64);
    CHECK(s.at("height") == 48);
    CHECK(s.at("r_frame_rate") == "24/1");
    CHECK(s.at("color_space") == "bt709");
    CHECK(s.at("color_range") == "tv");
    CHECK(std::abs(std::stod(json.at("format").at("duration").get<std::string>()) - 17.0 / 24.0) <= 0.0011);
}

TEST_CASE("write_mp4: the frames decode back close to what was written, in order") {
    TempDir dir;
    const fs::path out = dir / "out.mp4";
    const Frames frames = pattern(17, 96, 128);
    write_mp4(out, frames, 24.0);  // crf 18
    const Frames back = read_video(out);
    REQUIRE(back.count == frames.count);
    REQUIRE(back.height == frames.height);
    REQUIRE(back.width == frames.width);
    for (std::int64_t t = 0; t < frames.count; ++t) {
        // 35 dB: above where damage becomes visible (about 30 dB), and 4 dB below what crf 18
        // reaches on this content (39 to 42 dB; 128 x 96, since tiny frames compress worse); a
        // colour-matrix or range mismatch between writer and reader drops this to 26 to 28 dB, a
        // dropped or repeated frame to about 20 dB.
        const double db = psnr(frames, t, back, t);
        INFO("frame ", t, ": ", db, " dB");
        CHECK(db > 35);
        // In order: each frame is closer to its own source than to its neighbours' (the bars move
        // 2 pixels a frame).
        if (t > 0) CHECK(db > psnr(frames, t - 1, back, t) + 3);
        if (t + 1 < frames.count) CHECK(db > psnr(frames, t + 1, back, t) + 3);
    }
}

TEST_CASE("write_mp4: lossless (crf 0) decodes to exactly each frame's 4:2:0 conversion") {
    // With crf 0, x264 is lossless: the decoded YUV is exactly what the writer gave it, so reading
    // back must reproduce, bit for bit, the RGB -> yuv420p -> RGB round trip of each frame through
    // the same conversions without a codec. That pins down every frame and its position exactly.
    TempDir dir;
    const fs::path out = dir / "lossless.mp4";
    const Frames frames = pattern(9, 48, 64);
    write_mp4(out, frames, 24.0, 0);
    const Frames back = read_video(out);
    REQUIRE(back.count == 9);

    namespace av = detail::av;
    const fs::path where = "test";
    auto to_yuv = av::make_converter(64, 48, AV_PIX_FMT_RGB24, AV_PIX_FMT_YUV420P, av::sws_flags, AVCOL_SPC_BT709,
                                     AVCOL_RANGE_MPEG, where);
    auto to_rgb = av::make_converter(64, 48, AV_PIX_FMT_YUV420P, AV_PIX_FMT_RGB24, av::sws_flags | SWS_FULL_CHR_H_INT,
                                     AVCOL_SPC_BT709, AVCOL_RANGE_MPEG, where);
    av::FramePtr yuv = av::alloc_frame(where);
    yuv->format = AV_PIX_FMT_YUV420P;
    yuv->width = 64;
    yuv->height = 48;
    REQUIRE(av_frame_get_buffer(yuv.get(), 0) == 0);
    Frames expected = Frames::zeros(9, 48, 64);
    for (std::int64_t t = 0; t < 9; ++t) {
        std::vector<std::uint8_t> staging;  // swscale reads a little past its input's end
        const std::uint8_t* src[4] = {av::staged_rgb(frames.frame(t), 48, 64, 48, 64, staging), nullptr, nullptr,
                                      nullptr};
        std::uint8_t* dst[4] = {expected.frame(t), nullptr, nullptr, nullptr};
        const int stride[4] = {64 * 3, 0, 0, 0};
        sws_scale(to_yuv.get(), src, stride, 0, 48, yuv->data, yuv->linesize);
        sws_scale(to_rgb.get(), yuv->data, yuv->linesize, 0, 48, dst, stride);
    }
    for (std::int64_t t = 0; t < 9; ++t) {
        INFO("frame ", t);
        CHECK(std::equal(back.frame(t), back.frame(t) + back.frame_bytes(), expected.frame(t)));
    }
}

TEST_CASE("write_mp4: frame rates that are not integers, and few frames") {
    TempDir dir;
    struct Case {
        double fps;
        std::int64_t count;
        const char* rate;  // as ffprobe prints r_frame_rate
    };
    for (const Case c : {Case{30000.0 / 1001.0, 9, "30000/1001"}, Case{8.0, 1, "8/1"}, Case{12.5, 5, "25/2"}}) {
        INFO("fps ", c.fps, ", ", c.count, " frames");
        const fs::path out = dir / "rate.mp4";
        write_mp4(out, pattern(c.count, 32, 32), c.fps);
        const VideoInfo info = probe_video(out);
        CHECK(info.frames == c.count);
        CHECK(info.fps == doctest::Approx(c.fps).epsilon(1e-9));
        CHECK(std::abs(info.duration - c.count / c.fps) <= 0.0011);
        CHECK(read_video(out).count == c.count);
        if (has_program("ffprobe"))
            CHECK(run("ffprobe -v error -select_streams v:0 -show_entries stream=r_frame_rate -of csv=p=0 '" +
                      out.string() + "'") == std::string(c.rate) + "\n");
    }
}

TEST_CASE("write_mp4: the same frames and options give the same bytes") {
    // The second write runs with glibc filling every allocation with junk (M_PERTURB), so an encoder
    // that let uninitialised memory into its decisions would show here (x264's AVX-512 code does;
    // write_mp4 avoids it, see detail::av::x264_params).
    TempDir dir;
    const Frames frames = pattern(9, 48, 64);
    write_mp4(dir / "a.mp4", frames, 24.0);
#ifdef __GLIBC__
    ::mallopt(M_PERTURB, 0xa5);
#endif
    write_mp4(dir / "b.mp4", frames, 24.0);
#ifdef __GLIBC__
    ::mallopt(M_PERTURB, 0);
#endif
    const bool same = read_bytes(dir / "a.mp4") == read_bytes(dir / "b.mp4");  // not CHECK(a == b): binary
    CHECK(same);
}

TEST_CASE("write_mp4: odd sizes are padded to even by repeating the last column and row") {
    TempDir dir;
    const fs::path out = dir / "odd.mp4";
    const Frames frames = gradient(5, 47, 63);
    write_mp4(out, frames, 24.0, 0);  // lossless: only the conversion to yuv420p changes pixels
    const VideoInfo info = probe_video(out);
    CHECK(info.width == 64);
    CHECK(info.height == 48);
    const Frames back = read_video(out);
    REQUIRE(back.count == 5);
    REQUIRE(back.width == 64);
    REQUIRE(back.height == 48);
    for (std::int64_t t = 0; t < 5; ++t) {
        // Crop the decoded frame to 63 x 47 and compare; the padding column and row must look like
        // their neighbours (chroma is shared across them, so "like", not "equal").
        Frames cropped = Frames::zeros(1, 47, 63);
        double pad_diff = 0;
        for (std::int64_t y = 0; y < 48; ++y)
            for (std::int64_t x = 0; x < 64; ++x)
                for (int c = 0; c < 3; ++c) {
                    if (y < 47 && x < 63) cropped.at(0, y, x, c) = back.at(t, y, x, c);
                    if (x == 63) pad_diff = std::max(pad_diff, std::abs(double(back.at(t, y, 63, c)) - back.at(t, y, 62, c)));
                    if (y == 47) pad_diff = std::max(pad_diff, std::abs(double(back.at(t, 47, x, c)) - back.at(t, 46, x, c)));
                }
        INFO("frame ", t);
        CHECK(psnr(frames, t, cropped, 0) > 40);
        CHECK(pad_diff <= 4);
    }
}

TEST_CASE("write_mp4: paths with ':' and '%' are plain file names") {
    TempDir dir;
    const fs::path out = dir / "a:b%03d.mp4";
    write_mp4(out, pattern(3, 16, 16), 24.0);
    CHECK(fs::exists(out));
    CHECK(probe_video(out).frames == 3);
    CHECK(read_video(out).count == 3);
}

TEST_CASE("write_mp4: bad inputs get a clear error and leave no file") {
    TempDir dir;
    const Frames frames = pattern(3, 16, 16);
    write_text(dir / "a_file", "not a directory");
    const auto before = dir.entries();
    const fs::path out = dir / "out.mp4";

    SUBCASE("zero frames") { check_error([&] { write_mp4(out, Frames::zeros(0, 16, 16), 24.0); }, {out.string(), "no frames"}); }
    SUBCASE("zero-sized frames") { check_error([&] { write_mp4(out, Frames::zeros(2, 0, 16), 24.0); }, {"16x0"}); }
    SUBCASE("rgb of the wrong size") {
        Frames bad = frames;
        bad.rgb.resize(bad.rgb.size() - 1);
        check_error([&] { write_mp4(out, bad, 24.0); }, {out.string(), "bytes"});
    }
    SUBCASE("fps") {
        for (double fps : {0.0, -24.0, std::nan(""), std::numeric_limits<double>::infinity(), 5000.0})
            check_error([&] { write_mp4(out, frames, fps); }, {out.string(), "fps"});
    }
    SUBCASE("crf") {
        check_error([&] { write_mp4(out, frames, 24.0, 52); }, {"crf 52"});
        check_error([&] { write_mp4(out, frames, 24.0, -1); }, {"crf -1"});
    }
    SUBCASE("an unknown preset") {
        Mp4Options o;
        o.preset = "warp-speed";
        check_error([&] { write_mp4(out, frames, 24.0, o); }, {out.string(), "unknown x264 preset \"warp-speed\""});
    }
    SUBCASE("the disk fills up half-way (the file size limit stands in for it)") {
        const FileSizeLimit limit(1000);
        check_error([&] { write_mp4(out, pattern(9, 48, 64), 24.0); }, {out.string(), "File too large"});
    }
    SUBCASE("a directory that is a regular file (fails as root too)") {
        const fs::path p = dir / "a_file" / "out.mp4";
        check_error([&] { write_mp4(p, frames, 24.0); }, {p.string(), "cannot create", "Not a directory"});
    }
    SUBCASE("a directory that does not exist") {
        const fs::path p = dir / "missing" / "out.mp4";
        check_error([&] { write_mp4(p, frames, 24.0); }, {p.string(), "No such file or directory"});
    }
    SUBCASE("the target is a directory") {
        fs::create_directory(out);
        check_error([&] { write_mp4(out, frames, 24.0); }, {out.string(), "is a directory"});
        fs::remove(out);
    }
    CHECK(dir.entries() == before);
}

TEST_CASE("write_mp4 and write_png: a failed write keeps the previous file") {
    TempDir dir;
    const fs::path out = dir / "out.mp4";
    write_text(out, "previous contents");
    const fs::path png = dir / "out.png";
    write_text(png, "previous picture");
    {
        const FileSizeLimit limit(1000);  // fails while writing the data, after the header
        CHECK_THROWS_AS(write_mp4(out, pattern(9, 48, 64), 24.0), Error);
        const Frames big = pattern(1, 48, 64);
        check_error([&] { write_png(png, big.frame(0), 48, 64); }, {png.string(), "write failed"});
        check_error([&] { write_png_frames(dir / "frames", pattern(2, 48, 64)); }, {"frame_0000.png"});
    }
    CHECK(read_bytes(out) == "previous contents");
    CHECK(read_bytes(png) == "previous picture");
    CHECK(dir.entries() == std::vector<std::string>{"out.mp4", "out.png"});
    // And a successful one replaces it.
    write_mp4(out, pattern(3, 16, 16), 24.0);
    CHECK(probe_video(out).frames == 3);
}

TEST_CASE("FFmpeg's messages stay off stderr, and its errors reach the exception") {
    TempDir dir;
    write_text(dir / "bad.png", "\x89PNG\r\n\x1a\n this is not really a PNG");
    std::string message;
    const std::string err = capture_stderr(dir / "stderr.txt", [&] {
        write_mp4(dir / "out.mp4", pattern(5, 32, 32), 24.0);  // x264 prints its statistics at INFO
        (void)read_video(dir / "out.mp4");
        try {
            (void)read_image(dir / "bad.png");
        } catch (const Error& e) {
            message = e.what();
        }
    });
    CHECK(err.empty());
    INFO(message);
    CHECK(message.find((dir / "bad.png").string()) != std::string::npos);
    CHECK(message.find("FFmpeg:") != std::string::npos);  // the decoder's own complaint is quoted
}

TEST_CASE("write_png and read_image: PNG round trips exactly") {
    TempDir dir;
    for (const auto& [h, w] : {std::pair<std::int64_t, std::int64_t>{48, 64}, {5, 7}, {1, 1}}) {
        INFO(w, "x", h);
        const Frames f = pattern(1, h, std::max<std::int64_t>(w, 2));
        Frames one = Frames::zeros(1, h, w);
        for (std::int64_t y = 0; y < h; ++y)
            for (std::int64_t x = 0; x < w; ++x)
                for (int c = 0; c < 3; ++c) one.at(0, y, x, c) = f.at(0, y, x, c);
        const fs::path p = dir / "image.png";
        write_png(p, one.frame(0), h, w);
        const Frames back = read_image(p);
        CHECK(back.count == 1);
        CHECK(back.height == h);
        CHECK(back.width == w);
        CHECK(back.rgb == one.rgb);
    }
    CHECK(dir.entries() == std::vector<std::string>{"image.png"});
    // Names that FFmpeg would otherwise take for a URL or an image-sequence pattern.
    const Frames f = pattern(1, 8, 8);
    write_png(dir / "x:%d.png", f.frame(0), 8, 8);
    CHECK(read_image(dir / "x:%d.png").rgb == f.rgb);
    // ffmpeg itself reads what write_png wrote, at the right size.
    if (has_program("ffprobe"))
        CHECK(run("ffprobe -v error -show_entries stream=codec_name,width,height,pix_fmt -of csv=p=0 '" +
                  (dir / "image.png").string() + "'") == "png,1,1,rgb24\n");
}

TEST_CASE("write_png_frames: one exact PNG per frame, named in frame order") {
    TempDir dir;
    const Frames frames = pattern(11, 24, 32);
    const fs::path frames_dir = dir / "nested" / "frames";  // created, parents too
    write_png_frames(frames_dir, frames);
    std::vector<std::string> names;
    for (auto& e : fs::directory_iterator(frames_dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    REQUIRE(names.size() == 11);
    CHECK(names.front() == "frame_0000.png");
    CHECK(names.back() == "frame_0010.png");
    for (std::int64_t t = 0; t < 11; ++t) {
        const Frames back = read_image(frames_dir / png_frame_name(t, 11));
        INFO("frame ", t);
        CHECK(std::equal(back.rgb.begin(), back.rgb.end(), frames.frame(t)));
    }
    CHECK(png_frame_name(7, 10000) == "frame_0007.png");
    CHECK(png_frame_name(7, 10001) == "frame_00007.png");
    CHECK(png_frame_name(12345, 20000) == "frame_12345.png");
}

TEST_CASE("write_png_frames and write_png: failures leave nothing behind") {
    TempDir dir;
    const Frames frames = pattern(4, 8, 8);
    write_text(dir / "a_file", "x");

    SUBCASE("the directory is under a regular file") {
        const fs::path p = dir / "a_file" / "frames";
        check_error([&] { write_png_frames(p, frames); }, {p.string(), "cannot create the directory"});
        const fs::path q = dir / "a_file" / "x.png";
        check_error([&] { write_png(q, frames.frame(0), 8, 8); }, {q.string(), "Not a directory"});
    }
    SUBCASE("the directory is a regular file") {
        check_error([&] { write_png_frames(dir / "a_file", frames); }, {"not a directory"});
    }
    SUBCASE("zero frames") { check_error([&] { write_png_frames(dir / "frames", Frames{}); }, {"no frames"}); }
    SUBCASE("a frame fails half-way: the frames before it are removed again") {
        const fs::path frames_dir = dir / "frames";
        fs::create_directories(frames_dir / "frame_0002.png");  // a directory where frame 2 goes
        check_error([&] { write_png_frames(frames_dir, frames); }, {"frame_0002.png", "is a directory"});
        std::vector<std::string> left;
        for (auto& e : fs::directory_iterator(frames_dir)) left.push_back(e.path().filename().string());
        CHECK(left == std::vector<std::string>{"frame_0002.png"});
        fs::remove(frames_dir / "frame_0002.png");
        fs::remove(frames_dir);
    }
    SUBCASE("bad pictures") {
        check_error([&] { write_png(dir / "x.png", nullptr, 8, 8); }, {"null"});
        check_error([&] { write_png(dir / "x.png", frames.frame(0), 0, 8); }, {"8x0"});
    }
    CHECK(dir.entries() == std::vector<std::string>{"a_file"});
}

TEST_CASE("read_image: JPEG") {
    TempDir dir;
    const Frames f = pattern(1, 48, 64);
    // A JPEG from FFmpeg's MJPEG encoder (4:2:0, full range), through the library's own encoder code.
    const fs::path jpg = dir / "image.jpg";
    {
        const auto bytes = detail::av::encode_image(AV_CODEC_ID_MJPEG, f.frame(0), 48, 64, jpg, 2);
        std::ofstream(jpg, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                   static_cast<std::streamsize>(bytes.size()));
    }
    Frames back = read_image(jpg);
    CHECK(back.count == 1);
    CHECK(back.height == 48);
    CHECK(back.width == 64);
    CHECK(psnr(f, 0, back, 0) > 32);
    // The content decides, not the name: a JPEG called .png is read as the JPEG it is.
    fs::copy_file(jpg, dir / "misnamed.png");
    CHECK(read_image(dir / "misnamed.png").rgb == back.rgb);

    // And one made by the ffmpeg program from a PNG, if it is installed.
    if (!has_program("ffmpeg")) {
        MESSAGE("ffmpeg is not installed: skipping the JPEG made by it");
        return;
    }
    write_png(dir / "source.png", f.frame(0), 48, 64);
    run("ffmpeg -v error -y -i '" + (dir / "source.png").string() + "' -q:v 2 '" + (dir / "cli.jpg").string() + "'");
    back = read_image(dir / "cli.jpg");
    CHECK(back.height == 48);
    CHECK(back.width == 64);
    CHECK(psnr(f, 0, back, 0) > 32);
}

TEST_CASE("read_image and read_video: unreadable, damaged and non-image files") {
    TempDir dir;
    const Frames f = pattern(1, 16, 16);
    write_png(dir / "good.png", f.frame(0), 16, 16);
    const std::string png = read_bytes(dir / "good.png");
    write_text(dir / "truncated.png", png.substr(0, png.size() / 2));
    write_text(dir / "empty.png", "");
    write_text(dir / "notes.txt", "Just some text, which FFmpeg's tty demuxer would show as ANSI art.\n");
    write_text(dir / "text.png", "Plain text in a file named like a PNG.\n");
    std::string noise(4096, '\0');
    for (std::size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<char>((i * 2654435761u) >> 13);
    write_text(dir / "noise.jpg", noise);
    write_mp4(dir / "video.mp4", pattern(3, 16, 16), 24.0);

    check_error([&] { read_image(dir / "missing.png"); }, {"missing.png", "no such file"});
    check_error([&] { read_image(dir.path()); }, {"is a directory"});
    check_error([&] { read_image(dir / "truncated.png"); }, {"truncated.png"});
    check_error([&] { read_image(dir / "empty.png"); }, {"empty.png", "is empty"});
    check_error([&] { read_image(dir / "notes.txt"); }, {"notes.txt", "cannot open"});
    check_error([&] { read_image(dir / "text.png"); }, {"text.png", "cannot decode the image", "Invalid PNG signature"});
    check_error([&] { read_image(dir / "noise.jpg"); }, {"noise.jpg"});
    check_error([&] { read_image(dir / "video.mp4"); }, {"video.mp4", "not an image"});

    check_error([&] { read_video(dir / "missing.mp4"); }, {"missing.mp4", "no such file"});
    check_error([&] { read_video(dir / "notes.txt"); }, {"notes.txt"});
    check_error([&] { probe_video(dir / "empty.png"); }, {"empty.png"});
    const std::string mp4 = read_bytes(dir / "video.mp4");
    write_text(dir / "truncated.mp4", mp4.substr(0, mp4.size() / 3));
    check_error([&] { read_video(dir / "truncated.mp4"); }, {"truncated.mp4"});
}

}  // TEST_SUITE
