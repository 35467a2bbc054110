// The conversions are checked exhaustively against a reference written from the format definitions
// alone: decoding as sign * 2^(e - bias) * (1 + m / 2^k), encoding as a search for the nearest value in
// the sorted table of every finite value, ties to the even pattern. It shares no bit tricks with
// dtype_convert.hpp, so a slip in the shifts and rounding biases there cannot be mirrored here.
// The PyTorch-specific choices (which NaN pattern comes out of which conversion, saturation of float8)
// are written down as explicit expectations below; they were measured on torch 2.15 for x86-64.
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "hyvideo/core/dtype_convert.hpp"

using namespace hyvideo;

namespace {

std::uint32_t bits(float x) { return std::bit_cast<std::uint32_t>(x); }
float from_bits(std::uint32_t u) { return std::bit_cast<float>(u); }

std::string hex(std::uint64_t v) {
    std::ostringstream os;
    os << "0x" << std::hex << std::uppercase << v;
    return os.str();
}

struct Format {
    const char* name;
    int exp_bits;
    int man_bits;
    int bias;
    bool has_inf;  // IEEE-style all-ones exponent for inf/NaN; otherwise (e4m3fn) only S.1111.111 is NaN
    std::uint32_t sign_bit() const { return 1u << (exp_bits + man_bits); }
    std::uint32_t patterns() const { return 2u * sign_bit(); }
};

const Format kBF16{"bf16", 8, 7, 127, true};
const Format kF16{"f16", 5, 10, 15, true};
const Format kF8{"f8e4m3", 4, 3, 7, false};

bool ref_is_nan(const Format& f, std::uint32_t p) {
    const std::uint32_t mag = p & (f.sign_bit() - 1);
    const std::uint32_t e = mag >> f.man_bits, m = mag & ((1u << f.man_bits) - 1);
    const std::uint32_t emax = (1u << f.exp_bits) - 1;
    return f.has_inf ? (e == emax && m != 0) : mag == f.sign_bit() - 1;
}

// The exact value of a non-NaN pattern.
double ref_value(const Format& f, std::uint32_t p) {
    const bool neg = (p & f.sign_bit()) != 0;
    const std::uint32_t mag = p & (f.sign_bit() - 1);
    const int e = static_cast<int>(mag >> f.man_bits);
    const int m = static_cast<int>(mag & ((1u << f.man_bits) - 1));
    double v;
    if (f.has_inf && e == (1 << f.exp_bits) - 1)
        v = std::numeric_limits<double>::infinity();
    else if (e == 0)
        v = std::ldexp(m, 1 - f.bias - f.man_bits);
    else
        v = std::ldexp((1 << f.man_bits) + m, e - f.bias - f.man_bits);
    return neg ? -v : v;
}

// What PyTorch's x86 build writes for a NaN input (see dtype_convert.hpp for where each comes from).
std::uint32_t torch_nan_encoding(const Format& f, float x) {
    const std::uint32_t u = bits(x);
    const std::uint32_t sign = u >> 31;
    if (&f == &kBF16) return 0xFFFF;
    if (&f == &kF16) return (sign << 15) | 0x7E00u | ((u >> 13) & 0x3FFu);
    return (sign << 7) | 0x7Fu;
}

// And the f32 bits it produces when widening a NaN pattern.
std::uint32_t torch_nan_decoding(const Format& f, std::uint32_t p) {
    if (&f == &kBF16) return p << 16;
    const std::uint32_t sign = (p & f.sign_bit()) ? 0x80000000u : 0u;
    if (&f == &kF16) return sign | 0x7FC00000u | ((p & 0x3FFu) << 13);
    return sign | 0x7FF00000u;
}

// Brute-force round-to-nearest-even over the table of all finite non-negative values.
class RefEncoder {
public:
    explicit RefEncoder(const Format& f) : f_(f) {
        for (std::uint32_t p = 0; p < f.sign_bit(); ++p)
            if (!ref_is_nan(f, p) && std::isfinite(ref_value(f, p))) table_.push_back({ref_value(f, p), p});
        std::sort(table_.begin(), table_.end(), [](const Entry& a, const Entry& b) { return a.v < b.v; });
        // The value one step past the largest finite one, as if the exponent were unbounded; its pattern
        // is max + 1: the inf pattern for f16/bf16, the NaN pattern for e4m3fn.
        const Entry& top = table_.back();
        const double step = top.v - table_[table_.size() - 2].v;
        beyond_ = {top.v + step, top.p + 1};
    }

    std::vector<std::pair<double, std::uint32_t>> values() const {
        std::vector<std::pair<double, std::uint32_t>> out;
        for (const Entry& e : table_) out.emplace_back(e.v, e.p);
        return out;
    }
    double beyond_value() const { return beyond_.v; }

    std::uint32_t operator()(float x) const {
        if (std::isnan(x)) return torch_nan_encoding(f_, x);
        const std::uint32_t sign = std::signbit(x) ? f_.sign_bit() : 0u;
        const double a = std::fabs(static_cast<double>(x));
        std::uint32_t p;
        if (a >= beyond_.v) {
            p = beyond_.p;
        } else {
            auto it = std::upper_bound(table_.begin(), table_.end(), a,
                                       [](double v, const Entry& e) { return v < e.v; });
            const Entry lo = *(it - 1);
            const Entry hi = it == table_.end() ? beyond_ : *it;
            const double mid = (lo.v + hi.v) / 2;  // exact: few significant bits, nearby exponents
            if (a < mid)
                p = lo.p;
            else if (a > mid)
                p = hi.p;
            else
                p = (lo.p % 2 == 0) ? lo.p : hi.p;
        }
        // Rounding past the largest finite value: IEEE formats overflow to inf (pattern max+1 already is
        // inf), e4m3fn saturates to 448 as torch >= 2.13 does.
        if (!f_.has_inf && p >= beyond_.p) p = beyond_.p - 1;
        return sign | p;
    }

private:
    struct Entry {
        double v;
        std::uint32_t p;
    };
    const Format& f_;
    std::vector<Entry> table_;
    Entry beyond_{};
};

// Built once per format: the table takes a sort of up to 32768 entries.
const RefEncoder& reference(const Format& f) {
    static const RefEncoder bf16(kBF16), f16(kF16), f8(kF8);
    return &f == &kBF16 ? bf16 : &f == &kF16 ? f16 : f8;
}

std::uint32_t lib_encode(const Format& f, float x) {
    if (&f == &kBF16) return f32_to_bf16(x);
    if (&f == &kF16) return f32_to_f16(x);
    return f32_to_f8e4m3(x);
}

float lib_decode(const Format& f, std::uint32_t p) {
    if (&f == &kBF16) return bf16_to_f32(static_cast<std::uint16_t>(p));
    if (&f == &kF16) return f16_to_f32(static_cast<std::uint16_t>(p));
    return f8e4m3_to_f32(static_cast<std::uint8_t>(p));
}

DType dtype_of_format(const Format& f) {
    if (&f == &kBF16) return DType::bf16;
    if (&f == &kF16) return DType::f16;
    return DType::f8e4m3;
}

// Counts mismatches and reports the first few, so a systematic error does not flood the output with
// tens of thousands of failures.
struct Mismatches {
    int count = 0;
    void report(const std::string& what) {
        if (++count <= 8) FAIL_CHECK(what);
    }
};

// Every f32 whose encoding must agree with the reference: each midpoint between neighbours and the
// floats either side, the values themselves, with both signs.
std::vector<float> probe_values(const RefEncoder& ref) {
    std::vector<float> out;
    const auto vals = ref.values();
    const float inf = std::numeric_limits<float>::infinity();
    auto add = [&](double v) {
        if (v > std::numeric_limits<float>::max()) return;  // bf16's overflow step, 2^128
        const float x = static_cast<float>(v);
        // A probe means something only if the midpoint is exactly an f32.
        REQUIRE(static_cast<double>(x) == v);
        for (float y : {x, std::nextafter(x, inf), std::nextafter(x, -inf)}) {
            out.push_back(y);
            out.push_back(-y);
        }
    };
    for (std::size_t i = 0; i + 1 < vals.size(); ++i) {
        add(vals[i].first);
        add((vals[i].first + vals[i + 1].first) / 2);
    }
    add(vals.back().first);
    add((vals.back().first + ref.beyond_value()) / 2);
    add(ref.beyond_value());
    return out;
}

}  // namespace

TEST_CASE("dtype_convert: every bf16, f16 and f8e4m3 pattern decodes to its exact value") {
    for (const Format* f : {&kBF16, &kF16, &kF8}) {
        const std::string name = f->name;
        CAPTURE(name);
        Mismatches bad;
        std::vector<float> bulk(f->patterns());
        std::vector<unsigned char> raw(f->patterns() * dtype_size(dtype_of_format(*f)));
        for (std::uint32_t p = 0; p < f->patterns(); ++p) {
            if (dtype_size(dtype_of_format(*f)) == 1)
                raw[p] = static_cast<unsigned char>(p);
            else {
                const auto h = static_cast<std::uint16_t>(p);
                std::memcpy(&raw[2 * p], &h, 2);
            }
        }
        convert_buffer(raw.data(), dtype_of_format(*f), bulk.data(), DType::f32, f->patterns());
        for (std::uint32_t p = 0; p < f->patterns(); ++p) {
            const float got = lib_decode(*f, p);
            std::uint32_t want;
            if (ref_is_nan(*f, p)) {
                if (!std::isnan(got))
                    bad.report(std::string(f->name) + " " + hex(p) + " should decode to NaN");
                want = torch_nan_decoding(*f, p);
            } else {
                const double v = ref_value(*f, p);
                want = bits(static_cast<float>(v));
                REQUIRE(static_cast<double>(static_cast<float>(v)) == v);
            }
            if (bits(got) != want)
                bad.report(std::string(f->name) + " " + hex(p) + " -> " + hex(bits(got)) + ", want " +
                           hex(want));
            if (bits(bulk[p]) != want)
                bad.report(std::string(f->name) + " bulk " + hex(p) + " -> " + hex(bits(bulk[p])) +
                           ", want " + hex(want));
        }
        CHECK(bad.count == 0);
    }
}

TEST_CASE("dtype_convert: every finite pattern survives a round trip through f32") {
    for (const Format* f : {&kBF16, &kF16, &kF8}) {
        const std::string name = f->name;
        CAPTURE(name);
        Mismatches bad;
        for (std::uint32_t p = 0; p < f->patterns(); ++p) {
            if (ref_is_nan(*f, p) || !std::isfinite(ref_value(*f, p))) continue;
            const std::uint32_t back = lib_encode(*f, lib_decode(*f, p));
            if (back != p) bad.report(std::string(f->name) + " " + hex(p) + " came back as " + hex(back));
        }
        CHECK(bad.count == 0);
        // Zero keeps its sign.
        CHECK(lib_encode(*f, 0.0f) == 0u);
        CHECK(lib_encode(*f, -0.0f) == f->sign_bit());
    }
}

TEST_CASE("dtype_convert: midpoints round to the even pattern, their neighbours to the nearer value") {
    for (const Format* f : {&kBF16, &kF16, &kF8}) {
        const std::string name = f->name;
        CAPTURE(name);
        const RefEncoder& ref = reference(*f);
        const std::vector<float> xs = probe_values(ref);
        std::vector<unsigned char> bulk(xs.size() * dtype_size(dtype_of_format(*f)));
        convert_buffer(xs.data(), DType::f32, bulk.data(), dtype_of_format(*f), xs.size());
        Mismatches bad;
        for (std::size_t i = 0; i < xs.size(); ++i) {
            const std::uint32_t want = ref(xs[i]);
            const std::uint32_t got = lib_encode(*f, xs[i]);
            std::uint32_t got_bulk = 0;
            std::memcpy(&got_bulk, &bulk[i * dtype_size(dtype_of_format(*f))],
                        dtype_size(dtype_of_format(*f)));
            if (got != want || got_bulk != want)
                bad.report(std::string(f->name) + " encode " + hex(bits(xs[i])) + " -> " + hex(got) +
                           " / bulk " + hex(got_bulk) + ", want " + hex(want));
        }
        CHECK(bad.count == 0);
    }
}

TEST_CASE("dtype_convert: special values and range boundaries") {
    const float inf = std::numeric_limits<float>::infinity();
    const float fmax = std::numeric_limits<float>::max();
    std::vector<float> xs = {0.0f,
                             -0.0f,
                             inf,
                             -inf,
                             fmax,
                             -fmax,
                             std::numeric_limits<float>::min(),
                             -std::numeric_limits<float>::min(),
                             from_bits(0x00000001),
                             from_bits(0x80000001),
                             from_bits(0x00000002),
                             from_bits(0x007FFFFF),
                             from_bits(0x807FFFFF),
                             0x1p-24f,
                             0x1p-25f,
                             0x1.000002p-25f,
                             0x1p-9f,
                             0x1p-10f,
                             0x1.000002p-10f,
                             0x1p-133f,
                             0x1p-134f,
                             65504.0f,
                             65519.996f,
                             65520.0f,
                             448.0f,
                             464.0f,
                             464.00003f,
                             479.99997f,
                             480.0f,
                             1e30f,
                             -1e30f};
    for (std::uint32_t nan : {0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0xFF800001u, 0x7FBFFFFFu, 0x7FC02000u,
                              0xFFFFFFFFu, 0x7F802000u})
        xs.push_back(from_bits(nan));
    for (const Format* f : {&kBF16, &kF16, &kF8}) {
        const std::string name = f->name;
        CAPTURE(name);
        const RefEncoder& ref = reference(*f);
        for (float x : xs) {
            CAPTURE(hex(bits(x)));
            CHECK(lib_encode(*f, x) == ref(x));
        }
    }

    // Anchors with the expected bits written out, as measured in torch 2.15 on x86-64, so that a shared
    // misconception between the reference and the library would still be caught.
    CHECK(f32_to_bf16(1.0f) == 0x3F80);
    CHECK(f32_to_bf16(fmax) == 0x7F80);
    CHECK(f32_to_bf16(-inf) == 0xFF80);
    CHECK(f32_to_bf16(from_bits(0x3F808000)) == 0x3F80);  // tie, even stays
    CHECK(f32_to_bf16(from_bits(0x3F818000)) == 0x3F82);  // tie, odd goes up
    CHECK(f32_to_bf16(from_bits(0x00008000)) == 0x0000);
    CHECK(f32_to_bf16(from_bits(0x00008001)) == 0x0001);
    CHECK(f32_to_bf16(from_bits(0x007FFFFF)) == 0x0080);
    CHECK(f32_to_bf16(from_bits(0x7FC00000)) == 0xFFFF);
    CHECK(f32_to_bf16(from_bits(0xFFC00000)) == 0xFFFF);
    CHECK(f32_to_f16(65504.0f) == 0x7BFF);
    CHECK(f32_to_f16(65519.996f) == 0x7BFF);
    CHECK(f32_to_f16(65520.0f) == 0x7C00);
    CHECK(f32_to_f16(-1e30f) == 0xFC00);
    CHECK(f32_to_f16(0x1p-24f) == 0x0001);
    CHECK(f32_to_f16(0x1p-25f) == 0x0000);
    CHECK(f32_to_f16(0x1.8p-24f) == 0x0002);
    CHECK(f32_to_f16(from_bits(0x7F800001)) == 0x7E00);
    CHECK(f32_to_f16(from_bits(0x7FBFFFFF)) == 0x7FFF);
    CHECK(f32_to_f16(from_bits(0xFFC00001)) == 0xFE00);
    CHECK(f32_to_f16(from_bits(0x7FC02000)) == 0x7E01);
    CHECK(f32_to_f8e4m3(448.0f) == 0x7E);
    CHECK(f32_to_f8e4m3(464.0f) == 0x7E);
    CHECK(f32_to_f8e4m3(470.0f) == 0x7E);
    CHECK(f32_to_f8e4m3(480.0f) == 0x7E);
    CHECK(f32_to_f8e4m3(inf) == 0x7E);
    CHECK(f32_to_f8e4m3(-inf) == 0xFE);
    CHECK(f32_to_f8e4m3(-1e30f) == 0xFE);
    CHECK(f32_to_f8e4m3(from_bits(0x7FC00000)) == 0x7F);
    CHECK(f32_to_f8e4m3(from_bits(0xFFC00000)) == 0xFF);
    CHECK(f32_to_f8e4m3(0x1p-9f) == 0x01);
    CHECK(f32_to_f8e4m3(0x1p-10f) == 0x00);
    CHECK(f32_to_f8e4m3(0x1.8p-9f) == 0x02);
    CHECK(f32_to_f8e4m3(-0x1p-6f) == 0x88);
    CHECK(f32_to_f8e4m3(0.3f) == 0x2A);
    CHECK(bits(f16_to_f32(0x7C01)) == 0x7FC02000u);
    CHECK(bits(f16_to_f32(0x0001)) == bits(0x1p-24f));
    CHECK(bits(f8e4m3_to_f32(0x7F)) == 0x7FF00000u);
    CHECK(bits(f8e4m3_to_f32(0xFF)) == 0xFFF00000u);
    CHECK(f8e4m3_to_f32(0x7E) == 448.0f);
    CHECK(f8e4m3_to_f32(0x01) == 0x1p-9f);

    // A NaN reaches bf16 as 0xFFFF from f32 but as 0x7FC0 from f16 and f8, as in torch.
    const std::uint16_t f16_nan[3] = {0x7C01, 0xFE00, 0x3C00};
    const std::uint8_t f8_nan[3] = {0x7F, 0xFF, 0x38};
    std::uint16_t out[3];
    convert_buffer(f16_nan, DType::f16, out, DType::bf16, 3);
    CHECK(out[0] == 0x7FC0);
    CHECK(out[1] == 0x7FC0);
    CHECK(out[2] == 0x3F80);
    convert_buffer(f8_nan, DType::f8e4m3, out, DType::bf16, 3);
    CHECK(out[0] == 0x7FC0);
    CHECK(out[1] == 0x7FC0);
    CHECK(out[2] == 0x3F80);
    const float f32_nan[1] = {from_bits(0xFFC00000)};
    convert_buffer(f32_nan, DType::f32, out, DType::bf16, 1);
    CHECK(out[0] == 0xFFFF);
}

TEST_CASE("dtype_convert: a million random f32 bit patterns encode as the reference does") {
    std::mt19937 rng(20240607);
    std::vector<float> xs(1'000'000);
    for (float& x : xs) x = from_bits(static_cast<std::uint32_t>(rng()));
    // Half of them drawn near the formats' ranges, where uniform bit patterns rarely land.
    std::uniform_real_distribution<float> exponent(-30.0f, 20.0f);
    for (std::size_t i = 0; i < xs.size(); i += 2) {
        const float v = std::exp2(exponent(rng));
        xs[i] = (rng() & 1) ? -v : v;
    }
    for (const Format* f : {&kBF16, &kF16, &kF8}) {
        const std::string name = f->name;
        CAPTURE(name);
        const RefEncoder& ref = reference(*f);
        const std::size_t es = dtype_size(dtype_of_format(*f));
        std::vector<unsigned char> bulk(xs.size() * es);
        convert_buffer(xs.data(), DType::f32, bulk.data(), dtype_of_format(*f), xs.size());
        Mismatches bad;
        for (std::size_t i = 0; i < xs.size(); ++i) {
            const std::uint32_t want = ref(xs[i]);
            std::uint32_t got_bulk = 0;
            std::memcpy(&got_bulk, &bulk[i * es], es);
            const std::uint32_t got = lib_encode(*f, xs[i]);
            if (got != want || got_bulk != want)
                bad.report(std::string(f->name) + " encode " + hex(bits(xs[i])) + " -> " + hex(got) +
                           " / bulk " + hex(got_bulk) + ", want " + hex(want));
        }
        CHECK(bad.count == 0);
    }
}

namespace {

// An element of any dtype held as raw bytes, plus the reference value torch would convert from.
struct Sample {
    std::vector<unsigned char> bytes;  // n elements of the source dtype
    std::vector<double> value;         // exact numeric value (NaN for NaN)
};

constexpr DType kAll[] = {DType::f32, DType::f16, DType::bf16, DType::f8e4m3, DType::i64, DType::boolean};

// x86's cvttss2si: truncation, INT64_MIN when NaN or outside [-2^63, 2^63).
std::int64_t ref_to_i64(double v) {
    if (std::isnan(v) || v >= 0x1p63 || v < -0x1p63) return std::numeric_limits<std::int64_t>::min();
    return static_cast<std::int64_t>(std::trunc(v));
}

Sample make_sample(DType t, std::size_t n) {
    const float inf = std::numeric_limits<float>::infinity();
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const std::vector<float> floats = {
        0.0f,     -0.0f, 1.0f,   -1.0f, 2.5f, -2.5f, 0.3f, -0.7f, 3.75f, 448.0f, 470.0f,  500.0f,   65504.0f,
        65520.0f, 1e10f, -1e10f, 3e38f, inf,  -inf,  nan,  -nan,  1e-8f, -7.9f,  9.5e18f, -9.3e18f, 1e-3f};
    const std::vector<std::int64_t> ints = {0,
                                            1,
                                            -1,
                                            (std::int64_t{1} << 30) + (1 << 22) + 1,
                                            (std::int64_t{1} << 62) + 1,
                                            std::numeric_limits<std::int64_t>::min(),
                                            std::numeric_limits<std::int64_t>::max(),
                                            65519,
                                            65521,
                                            448,
                                            470,
                                            -3,
                                            16777217,
                                            -16777219};
    Sample s;
    s.bytes.resize(n * dtype_size(t));
    for (std::size_t i = 0; i < n; ++i) {
        unsigned char* at = s.bytes.data() + i * dtype_size(t);
        const float x = floats[i % floats.size()];
        switch (t) {
            case DType::f32:
                std::memcpy(at, &x, 4);
                s.value.push_back(x);
                break;
            case DType::f16:
            case DType::bf16:
            case DType::f8e4m3: {
                const Format& f = t == DType::f16 ? kF16 : t == DType::bf16 ? kBF16 : kF8;
                const std::uint32_t p = reference(f)(x);
                std::memcpy(at, &p, dtype_size(t));  // little-endian: the low bytes hold the pattern
                s.value.push_back(ref_is_nan(f, p) ? std::nan("") : ref_value(f, p));
                break;
            }
            case DType::i64: {
                const std::int64_t v = ints[i % ints.size()];
                std::memcpy(at, &v, 8);
                s.value.push_back(static_cast<double>(v));  // not used: the pair test rounds v itself
                break;
            }
            case DType::boolean:
                *at = static_cast<unsigned char>((i * 7) % 3 != 0);
                s.value.push_back(*at);
                break;
        }
    }
    return s;
}

}  // namespace

TEST_CASE("dtype_convert: convert_buffer between every pair of dtypes") {
    const std::size_t n = 3001;  // past the internal staging chunk and not a multiple of any vector width
    for (DType from : kAll) {
        const Sample s = make_sample(from, n);
        for (DType to : kAll) {
            CAPTURE(dtype_name(from));
            CAPTURE(dtype_name(to));
            // Offset by one byte so neither buffer is aligned for its element type.
            std::vector<unsigned char> src(s.bytes.size() + 1), dst(n * dtype_size(to) + 1);
            std::memcpy(src.data() + 1, s.bytes.data(), s.bytes.size());
            convert_buffer(src.data() + 1, from, dst.data() + 1, to, n);
            Mismatches bad;
            for (std::size_t i = 0; i < n; ++i) {
                const unsigned char* got = dst.data() + 1 + i * dtype_size(to);
                const unsigned char* in = s.bytes.data() + i * dtype_size(from);
                // torch turns int64 into float by a single rounding to nearest; reduced floats are then
                // rounded again from that float.
                float as_f32;
                if (from == DType::i64) {
                    std::int64_t v;
                    std::memcpy(&v, in, 8);
                    as_f32 = static_cast<float>(v);
                } else if (from == DType::f32) {
                    std::memcpy(&as_f32, in, 4);
                } else {
                    as_f32 = static_cast<float>(s.value[i]);
                }
                bool ok = true;
                if (from == to) {
                    ok = std::memcmp(got, in, dtype_size(to)) == 0;
                } else if (to == DType::f32) {
                    float g;
                    std::memcpy(&g, got, 4);
                    ok = std::isnan(as_f32) ? std::isnan(g) : bits(g) == bits(as_f32);
                    if (ok && std::isnan(as_f32) && from != DType::f32) {
                        const Format& f = from == DType::f16 ? kF16 : from == DType::bf16 ? kBF16 : kF8;
                        std::uint32_t p = 0;
                        std::memcpy(&p, in, dtype_size(from));
                        ok = bits(g) == torch_nan_decoding(f, p);
                    }
                } else if (to == DType::f16 || to == DType::bf16 || to == DType::f8e4m3) {
                    const Format& f = to == DType::f16 ? kF16 : to == DType::bf16 ? kBF16 : kF8;
                    std::uint32_t g = 0;
                    std::memcpy(&g, got, dtype_size(to));
                    // A NaN source reaches the encoder as the f32 NaN it widens to.
                    float staged = as_f32;
                    if (std::isnan(staged) && from != DType::f32) {
                        const Format& sf = from == DType::f16 ? kF16 : from == DType::bf16 ? kBF16 : kF8;
                        std::uint32_t p = 0;
                        std::memcpy(&p, in, dtype_size(from));
                        staged = from_bits(torch_nan_decoding(sf, p));
                    }
                    std::uint32_t want = reference(f)(staged);
                    // torch's f16/f8 -> bf16 runs c10's scalar cast, whose NaN is 0x7FC0.
                    if (to == DType::bf16 && std::isnan(staged) &&
                        (from == DType::f16 || from == DType::f8e4m3))
                        want = 0x7FC0;
                    ok = g == want;
                } else if (to == DType::i64) {
                    std::int64_t g;
                    std::memcpy(&g, got, 8);
                    ok = g == ref_to_i64(static_cast<double>(as_f32));
                } else {
                    ok = *got == ((std::isnan(as_f32) || as_f32 != 0.0f) ? 1 : 0);
                }
                if (!ok) bad.report("element " + std::to_string(i) + " differs");
            }
            CHECK(bad.count == 0);
        }
    }
}

TEST_CASE("dtype_convert: int64 and bool conversions follow torch's casts") {
    const std::int64_t ints[] = {(std::int64_t{1} << 30) + (1 << 22) + 1,
                                 -((std::int64_t{1} << 30) + (1 << 22) + 1), 16777217,
                                 std::numeric_limits<std::int64_t>::min()};
    std::uint16_t b[4], h[4];
    float f[4];
    std::uint8_t e[4];
    convert_buffer(ints, DType::i64, b, DType::bf16, 4);
    convert_buffer(ints, DType::i64, h, DType::f16, 4);
    convert_buffer(ints, DType::i64, f, DType::f32, 4);
    convert_buffer(ints, DType::i64, e, DType::f8e4m3, 4);
    // Rounded to f32 first (2^30 + 2^22, a bf16 tie), then to even: 2^30, not the nearer 2^30 + 2^23.
    CHECK(b[0] == 0x4E80);
    CHECK(b[1] == 0xCE80);
    CHECK(f[0] == 1077936128.0f);
    CHECK(f[2] == 16777216.0f);
    CHECK(f[3] == -0x1p63f);
    CHECK(h[0] == 0x7C00);
    CHECK(h[3] == 0xFC00);
    CHECK(e[0] == 0x7E);
    CHECK(e[3] == 0xFE);

    const float xs[] = {2.9f,
                        -2.9f,
                        -0.0f,
                        std::numeric_limits<float>::quiet_NaN(),
                        std::numeric_limits<float>::infinity(),
                        9.3e18f,
                        -0x1p63f,
                        0.5f,
                        0x1p63f,
                        0x1.fffffep62f,
                        -0x1.fffffep62f};
    std::int64_t out[11];
    std::uint8_t flags[11];
    convert_buffer(xs, DType::f32, out, DType::i64, 11);
    convert_buffer(xs, DType::f32, flags, DType::boolean, 11);
    const std::int64_t lowest = std::numeric_limits<std::int64_t>::min();
    const std::int64_t below = 9223371487098961920;  // the largest float under 2^63
    const std::int64_t want[] = {2, -2, 0, lowest, lowest, lowest, lowest, 0, lowest, below, -below};
    const std::uint8_t want_flags[] = {1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1};
    for (int i = 0; i < 11; ++i) {
        CAPTURE(i);
        CHECK(out[i] == want[i]);
        CHECK(flags[i] == want_flags[i]);
    }

    const std::uint8_t truthy[] = {0, 1, 2, 255};
    float tf[4];
    std::int64_t ti[4];
    convert_buffer(truthy, DType::boolean, tf, DType::f32, 4);
    convert_buffer(truthy, DType::boolean, ti, DType::i64, 4);
    CHECK(tf[0] == 0.0f);
    CHECK(tf[3] == 1.0f);
    CHECK(ti[1] == 1);
    CHECK(ti[2] == 1);
}

TEST_CASE("dtype_convert: convert_buffer rejects what it cannot convert") {
    float x[2] = {1.0f, 2.0f};
    float y[2];
    CHECK_THROWS_AS(convert_buffer(x, static_cast<DType>(42), y, DType::f32, 2), Error);
    CHECK_THROWS_AS(convert_buffer(x, DType::f32, y, static_cast<DType>(42), 2), Error);
    CHECK_THROWS_AS(convert_buffer(nullptr, DType::f32, y, DType::f16, 2), Error);
    CHECK_NOTHROW(convert_buffer(nullptr, DType::f32, nullptr, DType::f16, 0));
    convert_buffer(x, DType::f32, y, DType::f32, 2);
    CHECK(y[1] == 2.0f);
}

TEST_CASE("dtype_convert: uint8 (images) widens exactly and narrows by truncation") {
    const std::vector<std::uint8_t> bytes = {0, 1, 127, 128, 254, 255};
    std::vector<float> f(bytes.size());
    convert_buffer(bytes.data(), DType::u8, f.data(), DType::f32, bytes.size());
    for (std::size_t i = 0; i < bytes.size(); ++i) CHECK(f[i] == float(bytes[i]));
    const std::vector<float> in = {0.0f, 1.9f, 127.5f, 255.0f};
    std::vector<std::uint8_t> back(in.size());
    convert_buffer(in.data(), DType::f32, back.data(), DType::u8, in.size());
    CHECK(back == std::vector<std::uint8_t>{0, 1, 127, 255});
    CHECK(dtype_from_safetensors("U8") == DType::u8);
    CHECK_FALSE(is_floating(DType::u8));
}
