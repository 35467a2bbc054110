// A downstream program that writes and reads back a PNG through hyvideo::video (FFmpeg). Prints
// "video OK" when the pixels come back unchanged; run.sh checks the line.
#include <cstdio>

#include <hyvideo/io/image.hpp>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: hyvideo_consumer_video OUT.png\n");
        return 2;
    }
    hyvideo::Frames f = hyvideo::Frames::zeros(1, 2, 3);
    for (std::size_t i = 0; i < f.rgb.size(); ++i) f.rgb[i] = static_cast<std::uint8_t>(40 * i);
    hyvideo::write_png(argv[1], f.frame(0), f.height, f.width);
    const hyvideo::Frames back = hyvideo::read_image(argv[1]);
    const bool ok = back.rgb == f.rgb;
    std::printf("hyvideo_consumer_video: %s\n", ok ? "video OK" : "MISMATCH");
    return ok ? 0 : 1;
}
