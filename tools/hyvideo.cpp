// The hyvideo command line. Subcommands:
//   generate         make a video (text-to-video, image-to-video); the built-in model without weights
//   golden FILE...   reproduce reference fixtures and report each output's error (tokenize.json: the tokenizers)
//   inspect FILE...  describe checkpoints (layout, model, config, missing tensors)
//   convert IN OUT   any checkpoint layout to safetensors with official names (bf16/f16/fp8)
//   encode-text      a prompt through the text encoders into a --text-embeds file
//   tokenize TEXT... token ids as JSON
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <fmt/format.h>

#include "hyvideo/core/parallel.hpp"
#include "hyvideo/golden/runner.hpp"
#include "hyvideo/golden/tokenize_fixture.hpp"
#include "hyvideo/io/atomic_file.hpp"
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

    std::optional<int> threads;
    app.add_option("--threads", threads, "CPU threads, 1..4096 (default: all cores)");

    hyvideo::cli::GenerateArgs gen;
    auto* generate = hyvideo::cli::add_generate(app, gen);

    hyvideo::cli::InspectArgs inspect_args;
    auto* inspect = hyvideo::cli::add_inspect(app, inspect_args);
    hyvideo::cli::ConvertArgs convert_args;
    auto* convert = hyvideo::cli::add_convert(app, convert_args);
    hyvideo::cli::EncodeTextArgs encode_text_args;
    auto* encode_text = hyvideo::cli::add_encode_text(app, encode_text_args);
    hyvideo::cli::TokenizeArgs tokenize_args;
    auto* tokenize = hyvideo::cli::add_tokenize(app, tokenize_args);

    std::vector<std::string> files;
    auto* golden = app.add_subcommand("golden", "Reproduce golden fixtures; exit 1 unless every output passes");
    golden->add_option("files", files, "fixture files (*.safetensors, and text/tokenize.json)")->required();
    std::string tokenizers = hyvideo::cli::default_tokenizers_dir();
    golden->add_option("--tokenizers", tokenizers, "the tokenizer data for tokenize.json (assets/tokenizers)")
        ->capture_default_str();
    std::string golden_backend = "cpu";
    hyvideo::cli::add_backend_option(golden, golden_backend);

    // Usage errors exit with 1 like every other error (CLI11's own codes are 100 and up); --help with 0.
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // CLI11 says only "A subcommand is required" when the first word is not one: name the word.
        std::vector<std::string> names;
        for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) names.push_back(sub->get_name());
        for (int i = 1; i < argc; ++i) {
            const std::string word = argv[i];
            if (word == "--threads") {
                ++i;  // its value
                continue;
            }
            if (word.empty() || word[0] == '-') continue;
            if (std::find(names.begin(), names.end(), word) == names.end()) {
                fmt::print(stderr, "hyvideo: unknown command '{}' ({}; --help lists them)\n", word, fmt::join(names, ", "));
                return 1;
            }
            break;
        }
        return app.exit(e) == 0 ? 0 : 1;
    }
    // An interrupted run removes its temporary output files before it ends.
    hyvideo::remove_temporaries_on_signals();

    try {
        if (threads) {
            HYVIDEO_CHECK(*threads >= 1 && *threads <= 4096, "--threads ", *threads, ": must be in 1..4096");
            hyvideo::set_num_threads(*threads);
        }
        if (*generate) return hyvideo::cli::run_generate(gen);
        if (*inspect) return hyvideo::cli::run_inspect(inspect_args);
        if (*convert) return hyvideo::cli::run_convert(convert_args);
        if (*encode_text) return hyvideo::cli::run_encode_text(encode_text_args);
        if (*tokenize) return hyvideo::cli::run_tokenize(tokenize_args);
        if (*golden) {
            hyvideo::cli::require_backend_built(golden_backend);
            bool ok = true;
            fmt::print("{:<20} {:<22} {:>12} {:>12}  {}\n", "case", "output", "rel_l2", "max_abs", "result");
            for (const auto& f : files)
                ok = report(std::filesystem::path(f).extension() == ".json"
                                ? hyvideo::golden::run_tokenize_fixture(f, tokenizers)
                                : hyvideo::cli::run_golden(golden_backend, f)) &&
                     ok;
            fmt::print("{}\n", ok ? "all outputs passed" : "FAILED");
            return ok ? 0 : 1;
        }
    } catch (const std::bad_alloc&) {
        fmt::print(stderr, "hyvideo: out of memory: the run needs more memory than this machine can give it "
                           "(a smaller --video-size or --video-length, or --precision bf16, needs less)\n");
        return 1;
    } catch (const std::exception& e) {
        fmt::print(stderr, "hyvideo: {}\n", e.what());
        return 1;
    }
    return 0;
}
