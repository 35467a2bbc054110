#pragma once
// The message of the hyvideo::Error a callable throws, or "" when it throws none: for tests that check
// what an error says, beyond CHECK_THROWS_WITH's whole-message or substring forms.
#include <string>

#include "hyvideo/core/error.hpp"

namespace hyvideo::test {

template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace hyvideo::test
