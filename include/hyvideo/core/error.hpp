#pragma once
// Errors: every failure the toolkit reports is a hyvideo::Error carrying a readable message
// (file, tensor name, expected and actual values), so callers can print it and exit cleanly.
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace hyvideo {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

namespace detail {
template <class... Args>
std::string concat(Args&&... args) {
    std::ostringstream os;
    (os << ... << std::forward<Args>(args));
    return os.str();
}
}  // namespace detail

// HYVIDEO_CHECK(cond, parts...): throw hyvideo::Error with the streamed parts when cond is false.
#define HYVIDEO_CHECK(cond, ...)                                                  \
    do {                                                                          \
        if (!(cond)) throw ::hyvideo::Error(::hyvideo::detail::concat(__VA_ARGS__)); \
    } while (0)

}  // namespace hyvideo
