#pragma once
// The tokenization fixture (tests/data/golden/text/tokenize.json): a JSON list of strings with the ids the
// official tokenizers give. Tokenization must be exact, so each of the three tokenizations is one output
// that passes only if every row is equal:
//   llama           tokenizer(text) of the LLM encoder: BOS + ids
//   llama_template  the text through the row's HunyuanVideo template at the row's max_length: input_ids
//                   and attention_mask (and the template's crop_start must be the row's)
//   clip            the CLIP-L tokenizer at 77: input_ids and attention_mask
// In the report, rel_l2 is the fraction of rows that differ and max_abs the largest id difference at
// positions compared (both 0 when it passes); a failing output's problem names the first row that differs.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyvideo/golden/runner.hpp"
#include "hyvideo/text/clip_tokenizer.hpp"
#include "hyvideo/text/json_file.hpp"
#include "hyvideo/text/llama_tokenizer.hpp"
#include "hyvideo/text/prompt_template.hpp"

namespace hyvideo::golden {

namespace detail {

inline constexpr std::int64_t kMaxTokens = 1 << 20;  // a sanity bound on a row's max_length

// One tokenization's tally over the rows.
struct TokenizeTally {
    explicit TokenizeTally(std::string n) : name(std::move(n)) {}
    std::string name;
    std::int64_t rows = 0, differing = 0, compared = 0;
    double max_abs = 0;
    std::string first;  // the first difference, described

    void compare(std::size_t row, const std::string& text, const char* field, const std::vector<std::int64_t>& got,
                 const nlohmann::json& expected) {
        if (!expected.is_array()) throw Error("row " + std::to_string(row) + ": " + name + "." + field + " is not a list");
        std::optional<std::string> diff;
        if (got.size() != expected.size())
            diff = std::to_string(got.size()) + " ids, expected " + std::to_string(expected.size());
        for (std::size_t i = 0; i < std::min(got.size(), expected.size()); ++i) {
            const std::int64_t want = expected[i].get<std::int64_t>();
            ++compared;
            if (got[i] != want) {
                max_abs = std::max(max_abs, std::abs(static_cast<double>(got[i] - want)));
                if (!diff) diff = "position " + std::to_string(i) + " is " + std::to_string(got[i]) + ", expected " +
                                  std::to_string(want);
            }
        }
        if (diff) {
            if (first.empty()) {
                std::string shown = nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
                if (shown.size() > 60) shown = shown.substr(0, 57) + "...";
                first = "row " + std::to_string(row) + " " + shown + ": " + field + " " + *diff;
            }
            mark_differing(row);
        }
    }
    void fail_row(std::size_t row, const std::string& why) {
        if (first.empty()) first = "row " + std::to_string(row) + ": " + why;
        mark_differing(row);
    }
    void mark_differing(std::size_t row) {
        if (last_differing_row != static_cast<std::int64_t>(row)) ++differing;
        last_differing_row = static_cast<std::int64_t>(row);
    }

    OutputReport report() const {
        OutputReport o;
        o.output = name;
        o.cmp.compared = compared;
        o.cmp.rel_l2 = rows > 0 ? static_cast<double>(differing) / static_cast<double>(rows) : 0.0;
        o.cmp.max_abs = max_abs;
        o.pass = rows > 0 && differing == 0;
        if (differing > 0)
            o.problem = std::to_string(differing) + " of " + std::to_string(rows) + " rows differ; first: " + first;
        else if (rows == 0)
            o.problem = "no rows";
        return o;
    }

    std::int64_t last_differing_row = -1;
};

}  // namespace detail

// Runs tokenize.json with the two tokenizers given. Never throws for a bad file: the report says why.
inline FileReport run_tokenize_fixture(const std::filesystem::path& path, const text::LlamaTokenizer& llama,
                                       const text::ClipTokenizer& clip) {
    FileReport rep;
    rep.path = path;
    rep.case_name = "tokenize";
    try {
        const nlohmann::json rows = read_json_file(path, "tokenize fixture");
        if (!rows.is_array() || rows.empty()) throw Error(text::file_label("tokenize fixture", path) + ": not a JSON list of rows");
        detail::TokenizeTally ll("llama"), lt("llama_template"), cl("clip");
        for (std::size_t r = 0; r < rows.size(); ++r) {
            const auto& row = rows[r];
            try {
                const std::string text = row.at("text").get<std::string>();
                ++ll.rows;
                ++lt.rows;
                ++cl.rows;
                try {
                    ll.compare(r, text, "ids", llama.encode(text), row.at("llama").at("ids"));
                } catch (const Error& e) {
                    ll.fail_row(r, e.what());
                }
                try {
                    const auto& t = row.at("llama_template");
                    const text::PromptTemplate& tmpl = text::prompt_template(t.at("template").get<std::string>());
                    const auto crop = t.at("crop_start").get<std::size_t>();
                    if (crop != tmpl.crop_start) {
                        lt.fail_row(r, "template " + std::string(tmpl.name) + " has crop_start " +
                                           std::to_string(tmpl.crop_start) + ", the row " + std::to_string(crop));
                    } else {
                        const auto max_length = t.at("max_length").get<std::int64_t>();
                        if (max_length < 1 || max_length > detail::kMaxTokens)
                            throw Error("max_length " + std::to_string(max_length) + " is out of range");
                        const text::TokenizedText tok = llama.encode_padded(text::apply_template(tmpl, text),
                                                                            static_cast<std::size_t>(max_length));
                        lt.compare(r, text, "input_ids", tok.input_ids, t.at("input_ids"));
                        lt.compare(r, text, "attention_mask", tok.attention_mask, t.at("attention_mask"));
                    }
                } catch (const Error& e) {
                    lt.fail_row(r, e.what());
                }
                try {
                    const auto& c = row.at("clip");
                    const std::size_t length = c.at("input_ids").size();
                    const text::TokenizedText tok = clip.encode(text, length);
                    cl.compare(r, text, "input_ids", tok.input_ids, c.at("input_ids"));
                    cl.compare(r, text, "attention_mask", tok.attention_mask, c.at("attention_mask"));
                } catch (const Error& e) {
                    cl.fail_row(r, e.what());
                }
            } catch (const nlohmann::json::exception& e) {
                throw Error(text::file_label("tokenize fixture", path) + ": row " + std::to_string(r) +
                            " is malformed (" + e.what() + ")");
            }
        }
        rep.outputs = {ll.report(), lt.report(), cl.report()};
    } catch (const std::exception& e) {
        rep.outputs.clear();
        rep.error = e.what();
    }
    return rep;
}

// The same with the tokenizer folders under `assets_dir` (llama3-llava/, clip-vit-large-patch14/: the
// repository's assets/tokenizers). A folder that cannot be read is reported as the file's error.
inline FileReport run_tokenize_fixture(const std::filesystem::path& path, const std::filesystem::path& assets_dir) {
    try {
        const text::LlamaTokenizer llama(assets_dir / "llama3-llava");
        const text::ClipTokenizer clip(assets_dir / "clip-vit-large-patch14");
        return run_tokenize_fixture(path, llama, clip);
    } catch (const std::exception& e) {
        FileReport rep;
        rep.path = path;
        rep.case_name = "tokenize";
        rep.error = e.what();
        return rep;
    }
}

}  // namespace hyvideo::golden
