// text/: the two tokenizers of HunyuanVideo's text encoders reproduce the official ids exactly on every
// row of tests/data/golden/text/tokenize.json, and their parts (UTF-8, Unicode tables, NFC, str.lower,
// the byte alphabet, BPE, the regex splits, the templates) behave as the references do.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "hyvideo/golden/tokenize_fixture.hpp"
#include "hyvideo/text/byte_level.hpp"
#include "hyvideo/text/clip_tokenizer.hpp"
#include "hyvideo/text/llama_tokenizer.hpp"
#include "hyvideo/text/prompt_template.hpp"
#include "hyvideo/text/unicode.hpp"
#include "../support/temp_dir.hpp"

namespace fs = std::filesystem;
using namespace hyvideo;
using namespace hyvideo::text;
using hyvideo::test::TempDir;

namespace {

const fs::path kAssets = fs::path(HYVIDEO_TEST_DATA_DIR) / ".." / ".." / "assets" / "tokenizers";
const fs::path kFixture = fs::path(HYVIDEO_TEST_DATA_DIR) / "golden" / "text" / "tokenize.json";

// Loaded once: tokenizer.json takes a moment to parse.
const LlamaTokenizer& shared_llama() {
    static const LlamaTokenizer t(kAssets / "llama3-llava");
    return t;
}
const ClipTokenizer& shared_clip() {
    static const ClipTokenizer t(kAssets / "clip-vit-large-patch14");
    return t;
}
const nlohmann::json& rows() {
    static const nlohmann::json r = read_json_file(kFixture, "tokenize fixture");
    return r;
}

std::vector<std::int64_t> ids_of(const nlohmann::json& j) { return j.get<std::vector<std::int64_t>>(); }

std::string utf8(std::u32string_view s) { return encode_utf8(s); }

}  // namespace

// ---- the reference rows ----------------------------------------------------------------------------

TEST_CASE("tokenize.json: Llama ids (BOS, no truncation) exact on every row") {
    REQUIRE(!rows().empty());
    int exact = 0;
    for (std::size_t r = 0; r < rows().size(); ++r) {
        const auto& row = rows()[r];
        const std::string text = row["text"];
        CAPTURE(r);
        CAPTURE(text);
        const auto got = shared_llama().encode(text);
        const auto want = ids_of(row["llama"]["ids"]);
        CHECK(got == want);
        exact += got == want;
    }
    MESSAGE("llama: " << exact << " of " << rows().size() << " rows exact");
    CHECK(exact == static_cast<int>(rows().size()));
}

TEST_CASE("tokenize.json: Llama through the row's template, truncated and padded, exact on every row") {
    int exact = 0;
    for (std::size_t r = 0; r < rows().size(); ++r) {
        const auto& row = rows()[r];
        const auto& t = row["llama_template"];
        const std::string text = row["text"];
        CAPTURE(r);
        CAPTURE(text);
        const PromptTemplate& tmpl = prompt_template(t["template"].get<std::string>());
        CHECK(tmpl.crop_start == t["crop_start"].get<std::size_t>());
        const std::size_t max_length = t["max_length"];
        CHECK(max_length == template_max_length(tmpl));
        const TokenizedText tok = shared_llama().encode_padded(apply_template(tmpl, text), max_length);
        const bool ok = tok.input_ids == ids_of(t["input_ids"]) && tok.attention_mask == ids_of(t["attention_mask"]);
        CHECK(tok.input_ids == ids_of(t["input_ids"]));
        CHECK(tok.attention_mask == ids_of(t["attention_mask"]));
        CHECK(shared_llama().encode_prompt(tmpl, text).input_ids == tok.input_ids);
        exact += ok;
    }
    MESSAGE("llama_template: " << exact << " of " << rows().size() << " rows exact");
    CHECK(exact == static_cast<int>(rows().size()));
}

TEST_CASE("tokenize.json: CLIP at 77 (slow CLIPTokenizer, no ftfy) exact on every row") {
    int exact = 0;
    for (std::size_t r = 0; r < rows().size(); ++r) {
        const auto& row = rows()[r];
        const std::string text = row["text"];
        CAPTURE(r);
        CAPTURE(text);
        const TokenizedText tok = shared_clip().encode(text);
        const bool ok = tok.input_ids == ids_of(row["clip"]["input_ids"]) &&
                        tok.attention_mask == ids_of(row["clip"]["attention_mask"]);
        CHECK(tok.input_ids == ids_of(row["clip"]["input_ids"]));
        CHECK(tok.attention_mask == ids_of(row["clip"]["attention_mask"]));
        exact += ok;
    }
    MESSAGE("clip: " << exact << " of " << rows().size() << " rows exact");
    CHECK(exact == static_cast<int>(rows().size()));
}

TEST_CASE("golden::run_tokenize_fixture: three passing outputs, and failures reported, not thrown") {
    const golden::FileReport rep = golden::run_tokenize_fixture(kFixture, kAssets);
    CHECK(rep.error == "");
    CHECK(rep.case_name == "tokenize");
    REQUIRE(rep.outputs.size() == 3);
    CHECK(rep.outputs[0].output == "llama");
    CHECK(rep.outputs[1].output == "llama_template");
    CHECK(rep.outputs[2].output == "clip");
    for (const auto& o : rep.outputs) {
        CAPTURE(o.output);
        CAPTURE(o.problem);
        CHECK(o.pass);
        CHECK(o.cmp.rel_l2 == 0.0);
        CHECK(o.cmp.compared > 1000);
    }
    CHECK(rep.passed());

    // A row with one wrong id fails its output only, naming the row.
    TempDir d;
    nlohmann::json changed = rows();
    changed[3]["clip"]["input_ids"][2] = 1;
    changed[5]["llama_template"]["crop_start"] = 37;
    std::ofstream(d / "tokenize.json") << changed.dump();
    const golden::FileReport bad = golden::run_tokenize_fixture(d / "tokenize.json", shared_llama(), shared_clip());
    REQUIRE(bad.outputs.size() == 3);
    CHECK(bad.outputs[0].pass);
    CHECK_FALSE(bad.outputs[1].pass);
    CHECK(bad.outputs[1].problem == "1 of 150 rows differ; first: row 5: template dit-llm-encode-i2v has crop_start 36, "
                                    "the row 37");
    CHECK_FALSE(bad.outputs[2].pass);
    CHECK(bad.outputs[2].problem.find("1 of 150 rows differ; first: row 3 ") == 0);
    CHECK(bad.outputs[2].problem.find("input_ids position 2 is ") != std::string::npos);
    CHECK(bad.outputs[2].cmp.rel_l2 == doctest::Approx(1.0 / 150));
    CHECK_FALSE(bad.passed());

    const golden::FileReport missing = golden::run_tokenize_fixture(d / "nothing.json", shared_llama(), shared_clip());
    CHECK(missing.error.find("nothing.json") != std::string::npos);
    CHECK_FALSE(missing.passed());
    std::ofstream(d / "object.json") << "{\"text\": \"a\"}";
    CHECK(golden::run_tokenize_fixture(d / "object.json", shared_llama(), shared_clip()).error.find("not a JSON list") !=
          std::string::npos);
    std::ofstream(d / "row.json") << "[{\"text\": \"a\"}]";
    CHECK(golden::run_tokenize_fixture(d / "row.json", shared_llama(), shared_clip()).error.find("row 0 is malformed") !=
          std::string::npos);
    const golden::FileReport no_assets = golden::run_tokenize_fixture(kFixture, d.path());
    CHECK(no_assets.error.find("tokenizer.json") != std::string::npos);
    CHECK(no_assets.outputs.empty());
}

TEST_CASE("Both tokenizers are shared by threads: concurrent encodes give the reference ids") {
    shared_llama().clear_cache();
    shared_clip().clear_cache();
    std::vector<int> wrong(4, 0);
    std::vector<std::thread> threads;
    for (int k = 0; k < 4; ++k)
        threads.emplace_back([k, &wrong] {
            for (int round = 0; round < 2; ++round)
                for (std::size_t r = static_cast<std::size_t>(k); r < rows().size() + static_cast<std::size_t>(k); ++r) {
                    const auto& row = rows()[r % rows().size()];
                    const std::string text = row["text"];
                    wrong[k] += shared_llama().encode(text) != ids_of(row["llama"]["ids"]);
                    wrong[k] += shared_clip().encode(text).input_ids != ids_of(row["clip"]["input_ids"]);
                }
        });
    for (auto& t : threads) t.join();
    CHECK(wrong == std::vector<int>(4, 0));
}

// ---- UTF-8 -------------------------------------------------------------------------------------------

TEST_CASE("UTF-8: well-formed text decodes; malformed bytes are refused with their offset") {
    CHECK(decode_utf8("a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x90\xB1") == U"a\u00E9\u4E2D\U0001F431");
    CHECK(encode_utf8(U"a\u00E9\u4E2D\U0001F431") == "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x90\xB1");
    CHECK(decode_utf8(std::string_view("\0x", 2)) == std::u32string(U"\0x", 2));
    const std::vector<std::pair<std::string, std::size_t>> bad = {
        {"ab\xFF", 2},               // never valid
        {"\x80", 0},                 // stray continuation
        {"\xC0\xAF", 0},             // overlong '/'
        {"\xE0\x80\xAF", 0},         // overlong, three bytes
        {"x\xED\xA0\x80", 1},        // UTF-16 surrogate U+D800
        {"\xF4\x90\x80\x80", 0},     // past U+10FFFF
        {"ok\xE4\xB8", 2},           // truncated at the end
        {"\xE4\xB8x", 0},            // truncated in the middle
    };
    for (const auto& [bytes, at] : bad) {
        CAPTURE(at);
        CHECK_THROWS_WITH_AS(check_utf8(bytes, "prompt"),
                             doctest::Contains(("prompt: invalid UTF-8 at byte " + std::to_string(at)).c_str()), Error);
        CHECK_THROWS_AS(shared_llama().encode(bytes), Error);
        CHECK_THROWS_AS(shared_clip().encode(bytes), Error);
    }
    CHECK_THROWS_WITH_AS(shared_llama().encode("caf\xE9"), doctest::Contains("invalid UTF-8 at byte 3 (0xe9)"), Error);
}

// ---- Unicode tables ----------------------------------------------------------------------------------

TEST_CASE("Unicode tables: version, categories and the two white-space sets") {
    CHECK(kUnicodeVersion == "14.0.0");
    CHECK(category(U'a') == Category::Ll);
    CHECK(category(U'A') == Category::Lu);
    CHECK(category(U'5') == Category::Nd);
    CHECK(category(U'\u4E2D') == Category::Lo);
    CHECK(category(U'\u00BD') == Category::No);      // ½
    CHECK(category(U'\u2163') == Category::Nl);      // Ⅳ
    CHECK(category(U'\u0301') == Category::Mn);
    CHECK(category(U'\u200B') == Category::Cf);      // ZWSP
    CHECK(category(U'\uE000') == Category::Co);
    CHECK(category(U'\uFDD0') == Category::Cn);      // noncharacter
    CHECK(category(U'\U0010FFFD') == Category::Co);
    CHECK(category(U'\u3000') == Category::Zs);
    CHECK(category(U'\U0001F431') == Category::So);
    CHECK(category(U'\U00020000') == Category::Lo);  // CJK extension B
    CHECK(category(U'\U0001FAE8') == Category::Cn);  // assigned in Unicode 15.0, not yet in 14.0
    CHECK(is_white_space(U'\u00A0'));
    CHECK(is_white_space(U'\u0085'));
    CHECK_FALSE(is_white_space(U'\u200B'));
    CHECK_FALSE(is_white_space(U'\u001C'));
    CHECK(is_python_space(U'\u001C'));               // str.isspace() goes further than White_Space
    CHECK(is_python_space(U'\u2029'));
    CHECK_FALSE(is_python_space(U'\uFEFF'));
    CHECK(combining_class(U'\u0301') == 230);
    CHECK(combining_class(U'\u0323') == 220);
    CHECK(combining_class(U'a') == 0);
}

TEST_CASE("NFC: composition, canonical order, blocking, singletons, exclusions, Hangul") {
    CHECK(nfc(U"cafe\u0301") == U"caf\u00E9");
    CHECK(nfc(U"A\u030A") == U"\u00C5");
    CHECK(nfc(U"\u212B") == U"\u00C5");                    // ANGSTROM SIGN: singleton
    CHECK(nfc(U"\u00C5") == U"\u00C5");
    CHECK(nfc(U"q\u0307\u0323") == U"q\u0323\u0307");      // reordered: below (220) before above (230)
    CHECK(nfc(U"s\u0307\u0323") == U"\u1E69");            // ṩ: both marks compose after reordering
    CHECK(nfc(U"a\u0328\u0301") == U"\u0105\u0301");      // ą then the acute
    CHECK(nfc(U"e\u0301\u0301") == U"\u00E9\u0301");      // the second acute is blocked
    CHECK(nfc(U"\u0958") == U"\u0915\u093C");             // composition exclusion stays decomposed
    CHECK(nfc(U"\u0344") == U"\u0308\u0301");             // non-starter decomposition
    CHECK(nfc(U"\u1100\u1161\u11A8") == U"\uAC01");        // Hangul L V T
    CHECK(nfc(U"\uAC00\u11A8") == U"\uAC01");              // LV + T
    CHECK(nfc(U"\uAC01") == U"\uAC01");
    CHECK(nfc(U"\u0301a") == U"\u0301a");                  // a leading mark has nothing to join
    CHECK(nfc(U"\uF900") == U"\u8C48");                    // CJK compatibility ideograph
    CHECK(nfc(U"\u1E9B\u0323") == U"\u1E9B\u0323");
    CHECK(nfc(U"") == U"");
}

TEST_CASE("Python str.lower(): full mappings and the final sigma") {
    CHECK(python_lower(U"HeLLo ÀÉÎ") == U"hello àéî");
    CHECK(python_lower(U"\u0130stanbul") == U"i\u0307stanbul");    // İ -> i + combining dot
    CHECK(python_lower(U"I\u0131") == U"i\u0131");                  // dotless ı stays
    CHECK(python_lower(U"\u1E9E") == U"\u00DF");                    // ẞ -> ß
    CHECK(python_lower(U"\u212A") == U"k");                         // Kelvin sign
    CHECK(python_lower(U"\u2163") == U"\u2173");                    // Ⅳ -> ⅳ
    CHECK(python_lower(U"\uFF21") == U"\uFF41");                    // fullwidth A
    CHECK(python_lower(U"\U00010400") == U"\U00010428");            // Deseret
    CHECK(python_lower(U"\u0100\u0102") == U"\u0101\u0103");        // stride-2 runs
    CHECK(python_lower(U"\u01C5") == U"\u01C6");                    // titlecase Dž
    CHECK(python_lower(U"\u03A3") == U"\u03C3");                    // alone: not final
    CHECK(python_lower(U"\u039F\u0394\u039F\u03A3") == U"\u03BF\u03B4\u03BF\u03C2");  // ΟΔΟΣ -> οδος
    CHECK(python_lower(U"\u03A3\u0391") == U"\u03C3\u03B1");       // initial
    CHECK(python_lower(U"A\u03A3'") == U"a\u03C2'");                // an apostrophe is case-ignorable
    CHECK(python_lower(U"A\u03A3'B") == U"a\u03C3'b");
    CHECK(python_lower(U"A\u03A3.") == U"a\u03C2.");
    CHECK(python_lower(U"1\u03A3") == U"1\u03C3");                  // no cased letter before it
}

TEST_CASE("GPT-2 byte alphabet: 256 distinct characters, round trip") {
    CHECK(byte_to_unicode(' ') == U'\u0120');   // Ġ
    CHECK(byte_to_unicode('\n') == U'\u010A');  // Ċ
    CHECK(byte_to_unicode('a') == U'a');
    CHECK(byte_to_unicode(0xAD) == U'\u0143');
    CHECK(byte_to_unicode(0xFF) == U'\u00FF');
    std::vector<bool> seen(0x200, false);
    for (unsigned b = 0; b < 256; ++b) {
        const char32_t c = byte_to_unicode(static_cast<std::uint8_t>(b));
        REQUIRE(c < 0x200);
        CHECK_FALSE(seen[c]);
        seen[c] = true;
        CHECK(unicode_to_byte(c) == static_cast<int>(b));
    }
    CHECK(unicode_to_byte(U'\u0144') == -1);
    std::string raw;
    const std::string all = [] {
        std::string s;
        for (int b = 0; b < 256; ++b) s.push_back(static_cast<char>(b));
        return s;
    }();
    CHECK(byte_level_to_bytes(bytes_to_byte_level(all), raw));
    CHECK(raw == all);
    CHECK_FALSE(byte_level_to_bytes("\u0144", raw));
}

TEST_CASE("BPE: lowest rank first, leftmost of equals, new pairs considered") {
    // ids: a=0 b=1 c=2 ab=3 bc=4 abc=5 aa=6 aaa=7
    MergeTable m;
    m.add(1, 2, 0, 4);  // b c
    m.add(0, 1, 1, 3);  // a b
    m.add(0, 4, 2, 5);  // a bc
    m.add(0, 0, 3, 6);  // a a
    m.add(6, 0, 4, 7);  // aa a
    CHECK_FALSE(m.add(1, 2, 9, 9));  // the first listing of a pair wins
    std::vector<TokenId> s{0, 1, 2};
    bpe_merge(m, s);
    CHECK(s == std::vector<TokenId>{5});  // b c (rank 0), then a bc
    s = {0, 0, 0, 0};
    bpe_merge(m, s);
    CHECK(s == std::vector<TokenId>{6, 6});  // leftmost first: (aa)(aa), not a(aa)a
    s = {0, 0, 0};
    bpe_merge(m, s);
    CHECK(s == std::vector<TokenId>{7});
    s = {2, 2};
    bpe_merge(m, s);
    CHECK(s == std::vector<TokenId>{2, 2});
    MergeTable big;
    for (TokenId i = 0; i < 5000; ++i) REQUIRE(big.add(i, i + 1, static_cast<std::uint32_t>(i), 100000 + i));
    std::uint32_t rank = 0;
    TokenId merged = 0;
    CHECK(big.find(4321, 4322, rank, merged));
    CHECK(rank == 4321);
    CHECK(merged == 104321);
    CHECK_FALSE(big.find(4322, 4321, rank, merged));
}

// ---- the Llama 3 split -------------------------------------------------------------------------------

namespace {
std::vector<std::string> llama_pieces(std::u32string_view s) {
    std::vector<std::uint8_t> classes;
    std::vector<std::size_t> ends;
    split_llama3(s, classes, ends);
    std::vector<std::string> out;
    std::size_t b = 0;
    for (std::size_t e : ends) {
        out.push_back(utf8(s.substr(b, e - b)));
        b = e;
    }
    return out;
}
using P = std::vector<std::string>;
}  // namespace

TEST_CASE("Llama 3 regex split, alternative by alternative") {
    CHECK(llama_pieces(U"Hello world") == P{"Hello", " world"});
    CHECK(llama_pieces(U"it's THEY'LL y'all") == P{"it", "'s", " THEY", "'LL", " y", "'all"});
    CHECK(llama_pieces(U"x'\u017F") == P{"x", "'\u017F"});  // ſ folds to s
    CHECK(llama_pieces(U"12345 1234567") == P{"123", "45", " ", "123", "456", "7"});
    CHECK(llama_pieces(U"(hi) ...!") == P{"(hi", ")", " ...!"});  // one non-letter may lead a word
    CHECK(llama_pieces(U"end.\n\nNext") == P{"end", ".\n\n", "Next"});
    CHECK(llama_pieces(U"a  \n  b") == P{"a", "  \n", " ", " b"});
    CHECK(llama_pieces(U"a   b") == P{"a", "  ", " b"});
    CHECK(llama_pieces(U"a \tb") == P{"a", " ", "\tb"});
    CHECK(llama_pieces(U"trailing   ") == P{"trailing", "   "});
    CHECK(llama_pieces(U"\nword") == P{"\n", "word"});
    CHECK(llama_pieces(U"\u00A0caf\u00E9") == P{"\u00A0caf\u00E9"});
    CHECK(llama_pieces(U"\u4E2D\u6587abc") == P{"\u4E2D\u6587abc"});
    CHECK(llama_pieces(U"\U0001F431\U0001F436") == P{"\U0001F431\U0001F436"});
    CHECK(llama_pieces(U"").empty());
}

TEST_CASE("Llama tokenizer: BOS, added tokens anywhere, ignore_merges, padding") {
    const LlamaTokenizer& t = shared_llama();
    CHECK(t.bos_id() == 128000);
    CHECK(t.pad_id() == 128258);
    CHECK(t.vocab_size() == 128259);
    CHECK(t.encode("") == std::vector<std::int64_t>{128000});
    CHECK(t.encode("", false).empty());
    CHECK(t.encode("\n\n", false) == std::vector<std::int64_t>{271});
    CHECK(t.encode("<image>x<|eot_id|>", false) == std::vector<std::int64_t>{128257, 87, 128009});
    CHECK(t.token_to_id("<pad>") == 128258);
    CHECK(t.token_to_id(" the") == 279);
    CHECK_FALSE(t.token_to_id("no such token at all").has_value());
    CHECK(t.decode(t.encode("A cat \xE4\xB8\xAD 12345!", false)) == "A cat \xE4\xB8\xAD 12345!");
    const TokenizedText p = t.encode_padded("a b c", 6);
    CHECK(p.input_ids == std::vector<std::int64_t>{128000, 64, 293, 272, 128258, 128258});
    CHECK(p.attention_mask == std::vector<std::int64_t>{1, 1, 1, 1, 0, 0});
    const TokenizedText cut = t.encode_padded("a b c", 2);
    CHECK(cut.input_ids == std::vector<std::int64_t>{128000, 64});
    CHECK(cut.attention_mask == std::vector<std::int64_t>{1, 1});
    CHECK_THROWS_AS(t.encode_padded("a", 0), Error);
    // Letters assigned after Unicode 14.0 are not \p{L} for HF tokenizers 0.20.3 either (its ids).
    CHECK(t.encode("a\U00011F04b") == std::vector<std::int64_t>{128000, 64, 172, 239, 120, 226, 65});
    CHECK(t.encode(" \U0001E4D0\U0001E4D1") == std::vector<std::int64_t>{128000, 109697, 252, 241, 238, 172, 252, 241, 239});
    CHECK(t.encode("x\U0001E030y") == std::vector<std::int64_t>{128000, 87, 172, 252, 222, 108, 88});
    // The word cache gives what the first computation gave.
    const auto first = t.encode(" supercalifragilisticexpialidocious", false);
    CHECK(first.size() > 3);
    CHECK(t.encode(" supercalifragilisticexpialidocious", false) == first);
}

TEST_CASE("CLIP tokenizer: cleaning, CJK spacing, lower-casing, digits, special tokens") {
    const ClipTokenizer& t = shared_clip();
    CHECK(t.bos_id() == 49406);
    CHECK(t.eos_id() == 49407);
    CHECK(t.pad_id() == 49407);
    CHECK(t.vocab_size() == 49408);
    CHECK(t.tokenize("a photo of a cat") == std::vector<std::int64_t>{320, 1125, 539, 320, 2368});
    CHECK(t.tokenize("a photo of a dog") == std::vector<std::int64_t>{320, 1125, 539, 320, 1929});
    CHECK(t.tokenize("Hello world!") == std::vector<std::int64_t>{3306, 1002, 256});
    CHECK(t.tokenize("A PHOTO\tof\u00A0a\u200Bcat") == t.tokenize("a photo of acat"));
    CHECK(t.tokenize("<|endoftext|>") == std::vector<std::int64_t>{49407});
    CHECK(t.tokenize("<|ENDOFTEXT|>") == std::vector<std::int64_t>{49407});  // lower-cased, then the regex
    CHECK(t.tokenize("12") == t.tokenize("1 2"));                            // one digit per token
    CHECK(t.tokenize("\u732B\u732B") == t.tokenize("\u732B \u732B"));        // ideographs stand alone
    CHECK(t.tokenize("cafe\u0301") == t.tokenize("caf\u00E9"));              // NFC
    CHECK(t.tokenize("").empty());
    CHECK(t.id_to_token(320) == "a</w>");
    // Quirks of the reference, with HF CLIPTokenizer 4.46.3's ids: the regex module (IGNORECASE) matches
    // U+0345 with no alternative, so it vanishes; ſ matches the s of 's and of <|startoftext|>, but only
    // the exact special string maps to its id; str.lower() turns İ into i + U+0307 and ends ΟΔΟΣ with ς;
    // U+2028/U+2029 split words, U+001C is deleted.
    CHECK(t.tokenize("q\u0345x") == std::vector<std::int64_t>{336, 343});
    CHECK(t.tokenize("it'\u017F") == std::vector<std::int64_t>{585, 6, 129, 379});
    CHECK(t.tokenize("<|\u017Ftartoftext|>") == std::vector<std::int64_t>{27, 91, 129, 123, 2002, 6659, 18169, 91, 285});
    CHECK(t.tokenize("\u039F\u0394\u039F\u03A3") == std::vector<std::int64_t>{138, 123, 138, 112, 138, 123, 139, 480});
    CHECK(t.tokenize("\u0130stanbul") == std::vector<std::int64_t>{328, 16384, 11231});
    CHECK(t.tokenize("\u212Bngstr\u00F6m") == std::vector<std::int64_t>{23176, 10352, 807, 7255, 332});
    CHECK(t.tokenize("a\u2028b\u2029c\x1C" "d") == std::vector<std::int64_t>{320, 321, 4480});
    const TokenizedText e = t.encode("a photo", 5);
    CHECK(e.input_ids == std::vector<std::int64_t>{49406, 320, 1125, 49407, 49407});
    CHECK(e.attention_mask == std::vector<std::int64_t>{1, 1, 1, 1, 0});
    const TokenizedText cut = t.encode("a photo of a cat", 4);
    CHECK(cut.input_ids == std::vector<std::int64_t>{49406, 320, 1125, 49407});
    CHECK(t.encode("").input_ids.size() == kClipMaxLength);
    CHECK_THROWS_AS(t.encode("a", 1), Error);
}

// ---- templates ---------------------------------------------------------------------------------------

TEST_CASE("Prompt templates: names, crop_start against the tokens before the prompt, max_length") {
    CHECK(kPromptTemplates.size() == 4);
    CHECK_THROWS_WITH_AS(prompt_template("dit-llm-encode-audio"),
                         doctest::Contains("prompt template 'dit-llm-encode-audio': unknown (known: dit-llm-encode,"),
                         Error);
    for (const auto& tmpl : kPromptTemplates) {
        CAPTURE(tmpl.name);
        const std::string text(tmpl.text);
        const std::string before = text.substr(0, text.find("{}"));
        const std::size_t tokens = shared_llama().encode(before).size();
        // dit-llm-encode-i2v's constant is 36 for 38 tokens; the others are exact.
        CHECK(tokens == (tmpl.name == "dit-llm-encode-i2v" ? 38u : tmpl.crop_start));
    }
    CHECK(template_max_length(prompt_template("dit-llm-encode-video")) == 351);
    CHECK(template_max_length(prompt_template("dit-llm-encode")) == 351);
    CHECK(template_max_length(prompt_template("dit-llm-encode-video-i2v")) == 359);
    CHECK(template_max_length(prompt_template("dit-llm-encode-i2v")) == 359);
    CHECK(template_max_length(prompt_template("dit-llm-encode-video"), 128) == 223);
}

TEST_CASE("python_format: str.format with the one prompt") {
    CHECK(python_format("<{}>", "x") == "<x>");
    CHECK(python_format("{0}-{0}", "x") == "x-x");
    CHECK(python_format("{{}} {}", "{a} }{") == "{} {a} }{");  // the value is never parsed
    CHECK(python_format("none", "x") == "none");
    CHECK_THROWS_WITH_AS(python_format("{}{}", "x"), doctest::Contains("second '{}'"), Error);
    CHECK_THROWS_AS(python_format("{name}", "x"), Error);
    CHECK_THROWS_AS(python_format("{:>10}", "x"), Error);
    CHECK_THROWS_AS(python_format("{} {0}", "x"), Error);
    CHECK_THROWS_AS(python_format("a } b", "x"), Error);
    CHECK_THROWS_AS(python_format("a { b", "x"), Error);
}

// ---- damaged files -------------------------------------------------------------------------------------

namespace {

// A small tokenizer.json of the Llama 3 layout: the 256 byte tokens (ids 0-255), three merges, BOS and
// <pad> as added tokens.
nlohmann::json tiny_tokenizer_json() {
    nlohmann::json vocab = nlohmann::json::object();
    for (unsigned b = 0; b < 256; ++b) vocab[utf8(std::u32string(1, byte_to_unicode(static_cast<std::uint8_t>(b))))] = b;
    vocab["ab"] = 256;
    vocab["abc"] = 257;
    vocab["\u0120a"] = 258;  // "Ġa": " a"
    nlohmann::json j;
    j["version"] = "1.0";
    j["normalizer"] = nullptr;
    j["added_tokens"] = {{{"id", 259}, {"content", "<|begin_of_text|>"}, {"special", true}},
                         {{"id", 260}, {"content", "<pad>"}, {"special", true}}};
    j["pre_tokenizer"] = {{"type", "Sequence"},
                          {"pretokenizers",
                           {{{"type", "Split"}, {"pattern", {{"Regex", std::string(kLlama3Pattern)}}},
                             {"behavior", "Isolated"}, {"invert", false}},
                            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
    j["post_processor"] = {{"type", "TemplateProcessing"},
                           {"single", {{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
                                       {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                           {"special_tokens", {{"<|begin_of_text|>", {{"id", "<|begin_of_text|>"}, {"ids", {259}}}}}}};
    j["model"] = {{"type", "BPE"}, {"ignore_merges", true}, {"vocab", vocab},
                  {"merges", {"a b", "ab c", "\u0120 a"}}};
    return j;
}

std::string write_json(const TempDir& d, const std::string& name, const nlohmann::json& j) {
    std::ofstream(d / name) << j.dump();
    return (d / name).string();
}

}  // namespace

TEST_CASE("LlamaTokenizer reads any tokenizer.json of the Llama 3 layout, merges as 'a b' or [a, b]") {
    TempDir d;
    nlohmann::json j = tiny_tokenizer_json();
    const LlamaTokenizer t(write_json(d, "tiny.json", j));
    CHECK(t.vocab_size() == 261);
    CHECK(t.bos_id() == 259);
    CHECK(t.pad_id() == 260);
    CHECK(t.encode("abc a abd") == std::vector<std::int64_t>{259, 257, 258, 32, 256, 100});
    for (auto& m : j["model"]["merges"]) {
        const std::string s = m;
        m = nlohmann::json::array({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
    }
    const LlamaTokenizer pairs(write_json(d, "pairs.json", j));
    CHECK(pairs.encode("abc a abd") == t.encode("abc a abd"));
    j["post_processor"] = nullptr;
    CHECK(LlamaTokenizer(write_json(d, "nobos.json", j)).encode("ab") == std::vector<std::int64_t>{256});
}

TEST_CASE("Tokenizer files: missing, truncated or wrong files are refused, naming the file") {
    TempDir d;
    CHECK_THROWS_WITH_AS(LlamaTokenizer(d / "absent"), doctest::Contains("tokenizer.json '"), Error);
    CHECK_THROWS_WITH_AS(LlamaTokenizer(d.path()), doctest::Contains("tokenizer.json': cannot open"), Error);
    CHECK_THROWS_WITH_AS(ClipTokenizer(d.path()), doctest::Contains("vocab.json '"), Error);
    fs::create_directory(d / "folder.json");
    CHECK_THROWS_WITH_AS(LlamaTokenizer(d / "folder.json" / "tokenizer.json"),
                         doctest::Contains("tokenizer.json': cannot open: No such file"), Error);
    fs::create_directory(d / "folder.json" / "tokenizer.json");
    CHECK_THROWS_WITH_AS(read_json_file(d / "folder.json" / "tokenizer.json", "tokenizer.json"),
                         doctest::Contains("tokenizer.json': is a directory"), Error);

    // the real tokenizer.json cut short
    {
        std::ifstream in(kAssets / "llama3-llava" / "tokenizer.json", std::ios::binary);
        std::string half(4 << 20, '\0');
        in.read(half.data(), static_cast<std::streamsize>(half.size()));
        std::ofstream(d / "cut.json") << half;
        CHECK_THROWS_WITH_AS(LlamaTokenizer(d / "cut.json"), doctest::Contains("cut.json': not valid JSON"), Error);
    }
    std::ofstream(d / "list.json") << "[1, 2]";
    CHECK_THROWS_WITH_AS(LlamaTokenizer(d / "list.json"), doctest::Contains("list.json': not an HF tokenizer.json"), Error);

    const nlohmann::json good = tiny_tokenizer_json();
    const auto refused = [&](const std::string& what, auto&& change, const char* message) {
        CAPTURE(what);
        nlohmann::json j = good;
        change(j);
        const std::string path = write_json(d, what + ".json", j);
        CHECK_THROWS_WITH_AS(LlamaTokenizer{path}, doctest::Contains((what + ".json': " + message).c_str()), Error);
    };
    refused("nomerges", [](nlohmann::json& j) { j["model"].erase("merges"); }, "model.merges is missing");
    refused("novocab", [](nlohmann::json& j) { j["model"]["vocab"] = nlohmann::json::array(); },
            "model.vocab is missing or not an object");
    refused("badmerge", [](nlohmann::json& j) { j["model"]["merges"][1] = "zz q"; },
            "model.merges[1] ('zz', 'q') names a token that is not in model.vocab");
    refused("oneword", [](nlohmann::json& j) { j["model"]["merges"][2] = "abc"; },
            "model.merges[2] 'abc' is not two tokens 'a b'");
    refused("regex", [](nlohmann::json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\s+"; },
            "pre_tokenizer is not");
    refused("normalizer", [](nlohmann::json& j) { j["normalizer"] = {{"type", "NFC"}}; }, "has a normalizer");
    refused("notbytes", [](nlohmann::json& j) { j["model"]["vocab"]["\u0144x"] = 261; },
            "model.vocab token '\u0144x' is not byte-level text");
    refused("nobyte", [](nlohmann::json& j) { j["model"]["vocab"].erase("a"); }, "model.vocab lacks the token of byte 97");
    refused("twice", [](nlohmann::json& j) { j["added_tokens"][1]["id"] = 259; }, "id 259 is given to two tokens");
    refused("gap", [](nlohmann::json& j) { j["added_tokens"][1]["id"] = 300; }, "no token has id 260 (ids must be dense)");
    refused("lstrip", [](nlohmann::json& j) { j["added_tokens"][1]["lstrip"] = true; },
            "added token '<pad>' has lstrip, which is not supported");
    refused("bytefallback", [](nlohmann::json& j) { j["model"]["byte_fallback"] = true; }, "model.byte_fallback");
    refused("wordpiece", [](nlohmann::json& j) { j["model"]["type"] = "WordPiece"; }, "model is not a BPE model");
    refused("badid", [](nlohmann::json& j) { j["model"]["vocab"]["ab"] = "x"; }, "model.vocab['ab'] is not a token id");
    refused("post", [](nlohmann::json& j) { j["post_processor"] = {{"type", "RobertaProcessing"}}; },
            "post_processor is not a TemplateProcessing");
    {
        nlohmann::json j = good;
        j["added_tokens"].erase(1);
        const LlamaTokenizer no_pad(write_json(d, "nopad.json", j));
        CHECK_THROWS_WITH_AS(no_pad.encode_padded("a", 4), doctest::Contains("nopad.json': has no <pad> token"), Error);
    }

    // CLIP: vocab.json damaged, merges.txt missing or damaged
    const fs::path clip_dir = kAssets / "clip-vit-large-patch14";
    fs::create_directory(d / "clip");
    std::ofstream(d / "clip" / "vocab.json") << "{\"a\": 1";
    CHECK_THROWS_WITH_AS(ClipTokenizer(d / "clip"), doctest::Contains("vocab.json '"), Error);
    CHECK_THROWS_WITH_AS(ClipTokenizer(d / "clip"), doctest::Contains("not valid JSON"), Error);
    std::ofstream(d / "clip" / "vocab.json") << "{\"a\": 0}";
    CHECK_THROWS_WITH_AS(ClipTokenizer(d / "clip"), doctest::Contains("lacks '\u0100' (a byte symbol)"), Error);
    std::ofstream(d / "clip" / "vocab.json") << "{\"a\": -3}";
    CHECK_THROWS_WITH_AS(ClipTokenizer(d / "clip"), doctest::Contains("the id of 'a' is not a token id"), Error);
    fs::copy_file(clip_dir / "vocab.json", d / "clip" / "vocab.json", fs::copy_options::overwrite_existing);
    CHECK_THROWS_WITH_AS(ClipTokenizer(d / "clip"), doctest::Contains("merges.txt '"), Error);
    std::ofstream(d / "clip" / "merges.txt") << "#version: 0.2\ni n\nt h\nnot_a_merge\n";
    CHECK_THROWS_WITH_AS(ClipTokenizer(d / "clip"), doctest::Contains("merges.txt '"), Error);
    CHECK_THROWS_WITH_AS(ClipTokenizer(d / "clip"), doctest::Contains("line 4 'not_a_merge' is not a merge"), Error);
    std::ofstream(d / "clip" / "merges.txt") << "#version: 0.2\ni n\nzz q\n";
    CHECK_THROWS_WITH_AS(ClipTokenizer(d / "clip"), doctest::Contains("line 3 merges 'zz' and 'q'"), Error);
    std::ofstream(d / "clip" / "merges.txt") << "i n\n";
    CHECK_THROWS_WITH_AS(ClipTokenizer(d / "clip"), doctest::Contains("does not start with a '#version' line"), Error);
    // A shortened merges.txt is a valid, smaller tokenizer.
    std::ofstream(d / "clip" / "merges.txt") << "#version: 0.2\ni n\n";
    const ClipTokenizer small(d / "clip");
    const auto ink = small.tokenize("ink");
    REQUIRE(ink.size() == 2);
    CHECK(small.id_to_token(ink[0]) == "in");
    CHECK(small.id_to_token(ink[1]) == "k</w>");
}
