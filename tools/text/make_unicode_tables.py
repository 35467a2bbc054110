#!/usr/bin/env python3
"""Writes include/hyvideo/text/unicode_tables.hpp from this Python's unicodedata.

The CLIP reference tokenization ran on Python 3.11, whose unicodedata is Unicode 14.0.0, and its
cleaning, NFC and lower-casing are Python's own; run this with a Python 3.11 so the tables are the
reference's (the script refuses another Unicode version unless --any-version is given).

    python3.11 tools/text/make_unicode_tables.py [--any-version] [OUTPUT]

Everything is derived from what Python computes (unicodedata, str.lower, str.isspace) rather than from
UCD files, so the tables agree with the reference by construction. The one exception is the
White_Space property, which unicodedata does not expose; it is listed below from PropList.txt.
"""
import argparse
import pathlib
import sys
import unicodedata

EXPECTED_VERSION = "14.0.0"
MAX_CP = 0x110000

CATEGORIES = ["Cc", "Cf", "Cn", "Co", "Cs", "Ll", "Lm", "Lo", "Lt", "Lu", "Mc", "Me", "Mn", "Nd", "Nl", "No",
              "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "Sc", "Sk", "Sm", "So", "Zl", "Zp", "Zs"]

# PropList.txt White_Space, unchanged since Unicode 6.3 (which dropped U+180E). It is what `\s` means in
# the regex engines of the Llama reference (Oniguruma in HF tokenizers, the regex crate in tiktoken).
WHITE_SPACE = [(0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
               (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000)]

S_BASE, S_COUNT = 0xAC00, 19 * 21 * 28


def ranges_of(values):
    """[(first code point, value)] where the value changes, starting at 0."""
    ranges, prev = [], None
    for cp, v in enumerate(values):
        if v != prev:
            ranges.append((cp, v))
            prev = v
    return ranges


def packed(entries, shift):
    return [(first << shift) | v for first, v in entries]


def full_decomposition(cp, canon):
    if cp not in canon:
        return [cp]
    result = []
    for c in canon[cp]:
        result.extend(full_decomposition(c, canon))
    return result


def canonical_order(cps):
    """Stable sort by combining class within each run of non-starters."""
    ordered = []
    for c in cps:
        k = len(ordered)
        cc = unicodedata.combining(chr(c))
        while cc and k > 0 and unicodedata.combining(chr(ordered[k - 1])) > cc:
            k -= 1
        ordered.insert(k, c)
    return ordered


def sigma_class(ch):
    """How CPython's final-sigma rule in str.lower() sees ch: 2 case-ignorable, 1 cased, 0 neither.

    unicodedata exposes neither property, so they are read off str.lower() itself: a capital sigma
    between 'A' and ch+'B' stays non-final when ch is skipped (ignorable) or cased; it is final after
    'A' alone exactly when ch is ignorable or not cased.
    """
    between = ("A\u03a3" + ch + "B").lower()[1] == "\u03c3"
    before_end = ("A\u03a3" + ch).lower()[1] == "\u03c3"  # ch cased and not ignorable
    if before_end:
        return 1
    if between:
        return 2
    return 0


def lower_runs(single):
    """Groups {cp: lower cp} into runs (first, count, stride, delta)."""
    runs = []
    cps = sorted(single)
    i = 0
    while i < len(cps):
        first = cps[i]
        delta = single[first] - first
        count, stride = 1, 0
        j = i + 1
        while j < len(cps):
            step = cps[j] - cps[j - 1]
            if single[cps[j]] - cps[j] != delta or step not in (1, 2) or (stride and step != stride) or count >= 0xFFFF:
                break
            stride = step
            count += 1
            j += 1
        runs.append((first, count, stride or 1, delta))
        i = j
    return runs


def check_clip_regex_classes(chars):
    """CLIP's regex runs in the `regex` module with IGNORECASE, which tests a character's case variants
    against a class: its classes are not always the character's category. clip_tokenizer.hpp hard-codes
    the one exception among characters that reach the regex (after cleaning and str.lower()); this
    checks that it is still the only one, when `regex` is installed."""
    try:
        import regex
    except ImportError:
        print("note: the regex module is not installed; CLIP's regex classes not checked")
        return
    letter = regex.compile(r"[\p{L}]", regex.IGNORECASE)
    number = regex.compile(r"[\p{N}]", regex.IGNORECASE)
    other = regex.compile(r"[^\s\p{L}\p{N}]", regex.IGNORECASE)
    odd = set()
    for c in chars:
        cat = unicodedata.category(c)
        if 0xD800 <= ord(c) < 0xE000 or cat[0] == "C" or cat == "Zs" or c.isspace():
            continue  # deleted or split on by the cleaning
        for ch in c.lower():
            cat = unicodedata.category(ch)
            got = (bool(letter.fullmatch(ch)), bool(number.fullmatch(ch)), bool(other.fullmatch(ch)))
            if got != (cat[0] == "L", cat[0] == "N", cat[0] not in "LN" and not ch.isspace()):
                odd.add(ord(ch))
    if odd != {0x345}:
        sys.exit(f"regex {regex.__version__}: CLIP's regex classes differ from the categories at "
                 f"{sorted(hex(c) for c in odd)}, not only at U+0345; update clip_match_end")
    print(f"regex {regex.__version__}: CLIP's regex classes follow the categories except at U+0345")


def fmt_list(values, per_line, fmt):
    lines = []
    for i in range(0, len(values), per_line):
        lines.append("    " + ", ".join(fmt(v) for v in values[i:i + per_line]) + ",")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("output", nargs="?", default=str(pathlib.Path(__file__).resolve().parents[2] /
                                                   "include/hyvideo/text/unicode_tables.hpp"))
    ap.add_argument("--any-version", action="store_true")
    args = ap.parse_args()
    if unicodedata.unidata_version != EXPECTED_VERSION and not args.any_version:
        sys.exit(f"unicodedata is Unicode {unicodedata.unidata_version}, the reference used {EXPECTED_VERSION} "
                 "(Python 3.11); pass --any-version to generate anyway")

    chars = [chr(cp) for cp in range(MAX_CP)]
    cat_index = {c: i for i, c in enumerate(CATEGORIES)}
    categories = ranges_of([cat_index[unicodedata.category(c)] for c in chars])
    ccc = ranges_of([unicodedata.combining(c) for c in chars])

    canon = {}
    for cp, c in enumerate(chars):
        d = unicodedata.decomposition(c)
        if d and not d.startswith("<"):
            canon[cp] = [int(x, 16) for x in d.split()]
    decomps, data = [], []
    for cp in sorted(canon):
        full = full_decomposition(cp, canon)
        decomps.append((cp, len(data), len(full)))
        data.extend(full)
    # Primary composites: the pairs that NFC recomposes. A two-character canonical decomposition is a
    # primary composite unless excluded (composition exclusions, non-starter decompositions), and an
    # excluded character is exactly one that NFC does not give back.
    compositions = sorted(((d[0] << 21) | d[1], cp) for cp, d in canon.items()
                          if len(d) == 2 and unicodedata.normalize("NFC", chars[cp]) == chars[cp])

    single, multi = {}, {}
    for cp, c in enumerate(chars):
        lo = c.lower()
        if lo == c or cp == 0x3A3:  # capital sigma depends on its context
            continue
        if len(lo) == 1:
            single[cp] = ord(lo)
        else:
            multi[cp] = [ord(x) for x in lo]
    runs = lower_runs(single)
    sigma = ranges_of([sigma_class(c) for c in chars])
    pyspace = ranges_of([1 if c.isspace() else 0 for c in chars])

    # Self-checks: the recursive decompositions in canonical order are Python's NFD; nothing below
    # U+0300 takes part in normalization (unicode.hpp's nfc() skips such text).
    for cp in canon:
        assert unicodedata.normalize("NFD", chars[cp]) == "".join(map(chr, canonical_order(
            full_decomposition(cp, canon)))), hex(cp)
    assert all(unicodedata.combining(c) == 0 and unicodedata.normalize("NFC", c) == c for c in chars[:0x300])
    assert all(key & 0x1FFFFF >= 0x300 for key, _ in compositions)
    assert len(multi) <= 8, multi
    check_clip_regex_classes(chars)

    out = []
    w = out.append
    w("#pragma once")
    w("// Generated by tools/text/make_unicode_tables.py from Python's unicodedata, str.lower and str.isspace:")
    w(f"// Unicode {unicodedata.unidata_version}. Do not edit; rerun the script (with Python 3.11, whose tables the")
    w("// reference tokenizations used). Layouts and the reasons for the version: include/hyvideo/text/unicode.hpp.")
    w("#include <cstdint>")
    w("")
    w("namespace hyvideo::text::unicode_data {")
    w("")
    w(f'inline constexpr char kUnicodeVersion[] = "{unicodedata.unidata_version}";')
    w("")
    w("// General categories, in this order (the values of text::Category): " + " ".join(CATEGORIES) + ".")
    w("// kCategoryRanges: (first code point << 5) | category, ascending; a range ends where the next begins.")
    w(f"inline constexpr std::uint32_t kCategoryRanges[{len(categories)}] = {{")
    w(fmt_list(packed(categories, 5), 8, lambda v: f"0x{v:08x}"))
    w("};")
    w("")
    w("// Canonical combining classes: (first code point << 8) | class, ascending.")
    w(f"inline constexpr std::uint32_t kCombiningClassRanges[{len(ccc)}] = {{")
    w(fmt_list(packed(ccc, 8), 8, lambda v: f"0x{v:08x}"))
    w("};")
    w("")
    w("// Full canonical decompositions (recursive, not yet reordered), Hangul syllables excluded (they")
    w("// are arithmetic): code point, offset and length in kDecompositionData.")
    w("struct Decomposition {")
    w("    std::uint32_t cp;")
    w("    std::uint16_t offset;")
    w("    std::uint16_t length;")
    w("};")
    w(f"inline constexpr Decomposition kDecompositions[{len(decomps)}] = {{")
    w(fmt_list(decomps, 6, lambda d: f"{{0x{d[0]:x}, {d[1]}, {d[2]}}}"))
    w("};")
    w(f"inline constexpr std::uint32_t kDecompositionData[{len(data)}] = {{")
    w(fmt_list(data, 10, lambda v: f"0x{v:x}"))
    w("};")
    w("")
    w("// Primary composites: (first << 21) | second -> composite, ascending by key (Hangul excluded).")
    w("struct Composition {")
    w("    std::uint64_t key;")
    w("    std::uint32_t composite;")
    w("};")
    w(f"inline constexpr Composition kCompositions[{len(compositions)}] = {{")
    w(fmt_list(compositions, 5, lambda c: f"{{0x{c[0]:x}, 0x{c[1]:x}}}"))
    w("};")
    w("")
    w("// str.lower() of single characters: first, first + stride, ... (count of them) map to cp + delta.")
    w("// U+03A3 is absent (final sigma depends on context); multi-character results are in kLowerMulti.")
    w("struct LowerRun {")
    w("    std::uint32_t first;")
    w("    std::uint16_t count;")
    w("    std::uint16_t stride;")
    w("    std::int32_t delta;")
    w("};")
    w(f"inline constexpr LowerRun kLowerRuns[{len(runs)}] = {{")
    w(fmt_list(runs, 4, lambda r: f"{{0x{r[0]:x}, {r[1]}, {r[2]}, {r[3]}}}"))
    w("};")
    w("struct LowerMulti {")
    w("    std::uint32_t cp;")
    w("    std::uint32_t lower[3];")
    w("};")
    w(f"inline constexpr LowerMulti kLowerMulti[{len(multi)}] = {{")
    w(fmt_list(sorted(multi.items()), 4,
               lambda m: "{0x%x, {%s}}" % (m[0], ", ".join("0x%x" % x for x in (m[1] + [0, 0, 0])[:3]))))
    w("};")
    w("")
    w("// How str.lower()'s final-sigma rule classes a character: (first << 2) | class, 2 = Case_Ignorable,")
    w("// 1 = Cased and not Case_Ignorable, 0 = neither.")
    w(f"inline constexpr std::uint32_t kSigmaClassRanges[{len(sigma)}] = {{")
    w(fmt_list(packed(sigma, 2), 8, lambda v: f"0x{v:08x}"))
    w("};")
    w("")
    w("// str.isspace() (what str.split() splits on): (first << 1) | is_space.")
    w(f"inline constexpr std::uint32_t kPythonSpaceRanges[{len(pyspace)}] = {{")
    w(fmt_list(packed(pyspace, 1), 8, lambda v: f"0x{v:08x}"))
    w("};")
    w("")
    w("// The White_Space property (regex \\s), inclusive ranges.")
    w(f"inline constexpr std::uint32_t kWhiteSpaceRanges[{len(WHITE_SPACE)}][2] = {{")
    w(fmt_list(WHITE_SPACE, 5, lambda r: f"{{0x{r[0]:x}, 0x{r[1]:x}}}"))
    w("};")
    w("")
    w("}  // namespace hyvideo::text::unicode_data")
    pathlib.Path(args.output).write_text("\n".join(out) + "\n")
    print(f"wrote {args.output}: {len(categories)} category ranges, {len(ccc)} ccc ranges, {len(decomps)} "
          f"decompositions, {len(compositions)} compositions, {len(runs)} lower runs, {len(sigma)} sigma ranges")


if __name__ == "__main__":
    main()
