#pragma once
// Progress of a sampling run: a bar redrawn in place on a terminal, one plain line per step
// otherwise (logs, pipes, CI), both with the step time and the estimated time left.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include <unistd.h>

namespace hyvideo::cli {

class Progress {
public:
    Progress(std::int64_t total, std::FILE* out = stderr)
        : total_(total), out_(out), tty_(::isatty(::fileno(out)) != 0), start_(Clock::now()), last_(start_) {}

    // Called after step `step` (0-based) finished at timestep t.
    void step(std::int64_t step, float t) {
        const auto now = Clock::now();
        const double step_s = seconds(now - last_), elapsed = seconds(now - start_);
        last_ = now;
        const std::int64_t done = step + 1;
        const double eta = elapsed / static_cast<double>(done) * static_cast<double>(total_ - done);
        if (tty_) {
            constexpr int kWidth = 30;
            const int filled = static_cast<int>(kWidth * done / std::max<std::int64_t>(total_, 1));
            std::fprintf(out_, "\r  [%s%s] %lld/%lld  t=%7.2f  %.2f s/step  ETA %s   ", std::string(filled, '#').c_str(),
                         std::string(kWidth - filled, ' ').c_str(), static_cast<long long>(done),
                         static_cast<long long>(total_), t, step_s, format_seconds(eta).c_str());
            if (done == total_) std::fputc('\n', out_);
        } else {
            std::fprintf(out_, "  step %lld/%lld  t=%.2f  %.2f s/step  ETA %s\n", static_cast<long long>(done),
                         static_cast<long long>(total_), t, step_s, format_seconds(eta).c_str());
        }
        std::fflush(out_);
    }

    // Seconds since the progress began.
    double elapsed() const { return seconds(Clock::now() - start_); }

    // Ends a bar that stopped early (a callback cancelled the run).
    void finish() {
        if (tty_) std::fputc('\n', out_);
    }

private:
    using Clock = std::chrono::steady_clock;
    static double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
    static std::string format_seconds(double s) {
        char buf[32];
        if (s < 60) std::snprintf(buf, sizeof buf, "%.0f s", s);
        else std::snprintf(buf, sizeof buf, "%d:%02d min", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
        return buf;
    }

    std::int64_t total_;
    std::FILE* out_;
    bool tty_;
    Clock::time_point start_, last_;
};

}  // namespace hyvideo::cli
