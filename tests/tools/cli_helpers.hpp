#pragma once
// Running build/bin/hyvideo from the tests, as a user would: exit status and everything it printed.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "hyvideo/io/image.hpp"

namespace hyvideo::test {

struct CliRun {
    int status;  // the exit status, or -1 if the program did not exit normally
    std::string output;  // stdout and stderr, interleaved as printed
};

inline CliRun run_cli(const std::string& args) {
    static std::atomic<int> counter{0};
    const std::filesystem::path log = std::filesystem::temp_directory_path() /
                                      ("hyvideo_cli_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + ".log");
    // Under timeout(1): a run that hangs (it once did, on a FIFO) fails its test with status 124
    // instead of hanging the suite.
    const std::string cmd = "timeout -k 10 600 " + std::string(HYVIDEO_CLI) + " " + args + " > " + log.string() + " 2>&1";
    const int raw = std::system(cmd.c_str());
    std::stringstream ss;
    ss << std::ifstream(log).rdbuf();
    std::filesystem::remove(log);
    return {WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, ss.str()};
}

// Every frame a run wrote with --frames-dir, in order.
inline std::vector<std::vector<std::uint8_t>> frames_in(const std::filesystem::path& dir) {
    std::vector<std::filesystem::path> files(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator{});
    std::sort(files.begin(), files.end());
    std::vector<std::vector<std::uint8_t>> out;
    for (const auto& f : files) out.push_back(read_image(f).rgb);
    return out;
}

}  // namespace hyvideo::test
