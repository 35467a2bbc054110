#pragma once
// Process memory figures for benchmarks, from /proc/self/status (Linux): resident set now and its
// high-water mark. Resetting the mark (writing 5 to /proc/self/clear_refs) lets a benchmark measure
// the peak of one phase rather than of the whole process.
#include <cstdint>
#include <fstream>
#include <string>

namespace hyvideo::bench {

inline std::int64_t status_kib(const std::string& key) {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind(key + ":", 0) == 0) return std::stoll(line.substr(key.size() + 1));
    return -1;
}
inline double rss_mib() { return static_cast<double>(status_kib("VmRSS")) / 1024.0; }
inline double peak_rss_mib() { return static_cast<double>(status_kib("VmHWM")) / 1024.0; }
inline void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

}  // namespace hyvideo::bench
