#pragma once
// Shared by the golden tests: run a fixture through the same runner as `hyvideo golden` and check
// every output (or, for the I2V cases whose pipeline outputs belong to the pipeline tests, the
// named ones, while still requiring that each named output exists in the fixture).
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/golden/runner.hpp"

inline std::string golden_path(const std::string& name) {
    return std::string(HYVIDEO_TEST_DATA_DIR) + "/golden/" + name + ".safetensors";
}

template <class B = hyvideo::cpu>
void check_fixture(const std::string& name, const std::vector<std::string>& only = {}) {
    const auto rep = hyvideo::golden::run_fixture<B>(golden_path(name));
    INFO("case ", name, ": ", rep.error);
    CHECK_FALSE(rep.outputs.empty());
    std::size_t checked = 0;
    for (const auto& o : rep.outputs) {
        if (!only.empty() && std::find(only.begin(), only.end(), o.output) == only.end()) continue;
        INFO(name, " output ", o.output, " rel_l2 ", o.cmp.rel_l2, " max_abs ", o.cmp.max_abs, " ", o.problem);
        CHECK(o.pass);
        ++checked;
    }
    if (only.empty()) {
        CHECK(rep.error.empty());
        CHECK(rep.passed());
    } else {
        CHECK(checked == only.size());
    }
}

// Every fixture under tests/data/golden/ (text/ included) on backend B, as the golden tests run each
// on the CPU one by one.
template <class B>
void check_every_fixture() {
    namespace fs = std::filesystem;
    const fs::path root = fs::path(HYVIDEO_TEST_DATA_DIR) / "golden";
    std::vector<std::string> names;
    for (const auto& e : fs::recursive_directory_iterator(root))
        if (e.path().extension() == ".safetensors")
            names.push_back(fs::relative(e.path(), root).replace_extension().generic_string());
    std::sort(names.begin(), names.end());
    // The seventeen fixtures of tests/data/golden/README.md: a lost file must not pass quietly.
    CHECK(names.size() >= 17);
    for (const auto& name : names) {
        CAPTURE(name);
        check_fixture<B>(name);
    }
}
