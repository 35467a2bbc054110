#pragma once
// Runs golden fixtures: dispatch on the `case` metadata, compare every output.* tensor, report.
#include <filesystem>
#include <string>
#include <vector>

#include "hyvideo/golden/cases.hpp"
#include "hyvideo/golden/compare.hpp"

namespace hyvideo::golden {

inline constexpr double kTolerance = 1e-4;  // relative L2, tests/data/golden/README.md

struct OutputReport {
    std::string output;
    Comparison cmp;
    bool pass = false;
    std::string problem;  // why it failed beyond the numbers (not produced, wrong shape)
};

struct FileReport {
    std::filesystem::path path;
    std::string case_name;
    std::vector<OutputReport> outputs;
    std::string error;  // a file or case that could not be run at all
    bool passed() const {
        if (!error.empty() || outputs.empty()) return false;
        for (const auto& o : outputs)
            if (!o.pass) return false;
        return true;
    }
};

// Runs one fixture on backend B. Never throws for a bad file or an unknown case: the report says why.
template <Backend B>
FileReport run_fixture(const std::filesystem::path& path, double tolerance = kTolerance) {
    FileReport rep;
    rep.path = path;
    try {
        const Fixture f(path);
        rep.case_name = f.case_name();
        const auto& reg = case_registry<B>();
        const auto it = reg.find(f.case_name());
        if (it == reg.end()) {
            const auto& known = known_cases();
            rep.error = std::find(known.begin(), known.end(), f.case_name()) != known.end()
                            ? "case '" + f.case_name() + "' is not implemented yet"
                            : "unknown case '" + f.case_name() + "'";
            return rep;
        }
        const CaseResult res = it->second(f);
        for (const auto& name : f.output_names()) {
            OutputReport o;
            o.output = name;
            const auto got = res.outputs.find(name);
            if (got == res.outputs.end()) {
                o.problem = "not compared: the implementation did not produce it";
            } else {
                const auto mask = res.row_masks.find(name);
                try {
                    const Tensor ref = f.output(name);
                    o.cmp = compare(got->second, ref, mask == res.row_masks.end() ? Tensor{} : mask->second);
                    // Integer outputs (ids, masks, indices, uint8 images) must be equal, not close.
                    o.pass = is_floating(ref.dtype()) ? o.cmp.rel_l2 <= tolerance : o.cmp.max_abs == 0.0;
                } catch (const Error& e) {
                    o.problem = e.what();
                }
            }
            rep.outputs.push_back(std::move(o));
        }
        for (const auto& [name, t] : res.outputs) {
            const auto names = f.output_names();
            if (std::find(names.begin(), names.end(), name) == names.end())
                rep.error = "the implementation produced '" + name + "', which the fixture does not have";
        }
        if (rep.outputs.empty()) rep.error = "the fixture has no output.* tensors";
    } catch (const std::exception& e) {
        rep.error = e.what();
    }
    return rep;
}

}  // namespace hyvideo::golden
