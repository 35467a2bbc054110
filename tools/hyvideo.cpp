// The hyvideo command line. Subcommands:
//   generate         make a video (text-to-video, image-to-video); the built-in model without weights
//   golden FILE...   reproduce reference fixtures and report each output's error
//   inspect FILE...  describe checkpoints (layout, model, config, missing tensors)
//   convert IN OUT   any checkpoint layout to safetensors with official names (bf16/f16/fp8)
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/core/parallel.hpp"
#include "hyvideo/golden/runner.hpp"
#include "generate.hpp"
#include "convert.hpp"
#include "inspect.hpp"

namespace {

// One line per output: case, output, relative L2, max abs error, verdict. Returns true if all passed.
bool report(const hyvideo::golden::FileReport& rep) {
    const std::string name = rep.case_name.empty() ? rep.path.filename().string() : rep.case_name;
    for (const auto& o : rep.outputs) {
        if (!o.problem.empty())
            fmt::print("{:<20} {:<22} {:>12} {:>12}  FAIL ({})\n", name, o.output, "-", "-", o.problem);
        else
            fmt::print("{:<20} {:<22} {:>12.3e} {:>12.3e}  {}\n", name, o.output, o.cmp.rel_l2, o.cmp.max_abs,
                       o.pass ? "PASS" : "FAIL");
    }
    if (!rep.error.empty()) fmt::print("{:<20} {}: {}\n", name, rep.path.string(), rep.error);
    return rep.passed();
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"hyvideo: HunyuanVideo in C++"};
    app.require_subcommand(1);

    int threads = 0;
    app.add_option("--threads", threads, "CPU threads (default: all cores)");

    hyvideo::cli::GenerateArgs gen;
    auto* generate = hyvideo::cli::add_generate(app, gen);

    hyvideo::cli::InspectArgs inspect_args;
    auto* inspect = hyvideo::cli::add_inspect(app, inspect_args);
    hyvideo::cli::ConvertArgs convert_args;
    auto* convert = hyvideo::cli::add_convert(app, convert_args);

    std::vector<std::string> files;
    auto* golden = app.add_subcommand("golden", "Reproduce golden fixtures; exit 1 unless every output passes");
    golden->add_option("files", files, "fixture files (*.safetensors)")->required();

    CLI11_PARSE(app, argc, argv);
    if (threads > 0) hyvideo::set_num_threads(threads);

    try {
        if (*generate) return hyvideo::cli::run_generate(gen);
        if (*inspect) return hyvideo::cli::run_inspect(inspect_args);
        if (*convert) return hyvideo::cli::run_convert(convert_args);
        if (*golden) {
            bool ok = true;
            fmt::print("{:<20} {:<22} {:>12} {:>12}  {}\n", "case", "output", "rel_l2", "max_abs", "result");
            for (const auto& f : files) ok = report(hyvideo::golden::run_fixture<hyvideo::cpu>(f)) && ok;
            fmt::print("{}\n", ok ? "all outputs passed" : "FAILED");
            return ok ? 0 : 1;
        }
    } catch (const std::exception& e) {
        fmt::print(stderr, "hyvideo: {}\n", e.what());
        return 1;
    }
    return 0;
}
