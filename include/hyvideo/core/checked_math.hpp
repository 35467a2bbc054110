#pragma once
// Integer arithmetic that reports overflow instead of wrapping: sizes read from files and configs are
// multiplied before anything is allocated, and a product that does not fit must be an error.
#include <optional>

namespace hyvideo::detail {

// a * b, or nullopt when it does not fit in Int.
template <class Int>
std::optional<Int> checked_mul(Int a, Int b) {
    Int r{};
    if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
    return r;
}

}  // namespace hyvideo::detail
