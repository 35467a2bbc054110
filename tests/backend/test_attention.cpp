// Attention on the CPU: the mask rules against the PyTorch expressions they stand for, flash
// attention against the explicit-matrix reference for every mask, kernel and awkward size, bitwise
// independence of the thread count, and the memory of a 32768-token head.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "hyvideo/backend/attention_mask.hpp"
#include "hyvideo/backend/cpu/attention.hpp"
#include "hyvideo/backend/cpu/blend.hpp"
#include "../support/tensors.hpp"

using namespace hyvideo;
using hyvideo::test::random_normal;
using cpu_detail::AttentionKernel;

namespace {

// q, k, v as the DiT produces them: strided slices of one fused projection [B, S, 3, H, D].
struct Qkv {
    Tensor fused, q, k, v;
};

Qkv fused_qkv(std::int64_t B, std::int64_t S, std::int64_t H, std::int64_t D, std::uint32_t seed) {
    Qkv t;
    t.fused = random_normal({B, S, 3, H, D}, seed);
    t.q = t.fused.select(2, 0);
    t.k = t.fused.select(2, 1);
    t.v = t.fused.select(2, 2);
    return t;
}

bool same_bits(const Tensor& a, const Tensor& b) {
    return a.shape() == b.shape() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

// Largest |a - b| / (atol + rtol·|b|); at most 1 means within tolerance.
double tolerance_ratio(const Tensor& a, const Tensor& b, double atol, double rtol) {
    const auto x = a.to_vector(), y = b.to_vector();
    REQUIRE(x.size() == y.size());
    double worst = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i)
        worst = std::max(worst, std::abs(double(x[i]) - double(y[i])) / (atol + rtol * std::abs(double(y[i]))));
    return worst;
}

std::vector<AttentionKernel> supported_kernels() {
    std::vector<AttentionKernel> out;
    for (auto k : {AttentionKernel::portable, AttentionKernel::avx2, AttentionKernel::avx512})
        if (cpu_detail::attention_kernel_supported(k)) out.push_back(k);
    return out;
}

// Selects a kernel (and optionally a thread count) for a scope, restoring the previous settings.
class Settings {
public:
    Settings() : kernel_(cpu_detail::attention_kernel()), threads_(num_threads()) {}
    ~Settings() {
        cpu_detail::set_attention_kernel(kernel_);
        set_num_threads(threads_);
    }
    Settings(const Settings&) = delete;
    Settings& operator=(const Settings&) = delete;

private:
    AttentionKernel kernel_;
    int threads_;
};

std::string kernel_name(AttentionKernel k) { return std::string(cpu_detail::attention_kernel_name(k)); }

// A [B, S] mask tensor from rows of 0/1.
Tensor mask_tensor(const std::vector<std::vector<int>>& rows, DType dtype = DType::f32) {
    std::vector<float> flat;
    for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
    Tensor t = Tensor::from_vector({static_cast<std::int64_t>(rows.size()), static_cast<std::int64_t>(rows[0].size())},
                                   flat);
    return dtype == DType::f32 ? t : t.to(dtype);
}

// The refiner's mask exactly as hyvideo/modules/token_refiner.py builds it, for one sample:
//   m1 = mask.view(B, 1, 1, S).repeat(1, 1, S, 1);  m2 = m1.transpose(2, 3)
//   A = (m1 & m2).bool();  A[:, :, :, 0] = True
std::vector<std::vector<bool>> torch_refiner_mask(const std::vector<int>& mask) {
    const std::size_t S = mask.size();
    std::vector<std::vector<int>> m1(S, mask), m2(S, std::vector<int>(S));
    for (std::size_t i = 0; i < S; ++i)
        for (std::size_t j = 0; j < S; ++j) m2[i][j] = m1[j][i];
    std::vector<std::vector<bool>> allowed(S, std::vector<bool>(S));
    for (std::size_t i = 0; i < S; ++i)
        for (std::size_t j = 0; j < S; ++j) allowed[i][j] = (m1[i][j] & m2[i][j]) != 0;
    for (std::size_t i = 0; i < S; ++i) allowed[i][0] = true;
    return allowed;
}

// The masks of the model, for a batch of two samples of S tokens with different valid lengths.
struct NamedMask {
    std::string name;
    AttentionMask mask;
};

// The mask with key 0 valid, as a causal mask needs it (query 0 sees only key 0).
std::vector<int> first_valid(std::vector<int> m) {
    m[0] = 1;
    return m;
}

std::vector<NamedMask> model_masks(std::int64_t S) {
    std::vector<int> scattered(static_cast<std::size_t>(S)), prefix(static_cast<std::size_t>(S));
    for (std::int64_t j = 0; j < S; ++j) {
        scattered[static_cast<std::size_t>(j)] = (j % 3 != 1) && j != 0;  // not a prefix, token 0 padded
        prefix[static_cast<std::size_t>(j)] = j < (2 * S) / 3;
    }
    return {
        {"full", AttentionMask::full()},
        {"segments", AttentionMask::segments({(3 * S) / 4, S})},
        {"refiner lengths", AttentionMask::refiner(std::vector<std::int64_t>{S / 3, S})},
        {"refiner non-prefix mask", AttentionMask::refiner(mask_tensor({scattered, prefix}))},
        {"block_causal", AttentionMask::block_causal(7)},
        {"causal", AttentionMask::causal()},
        // The text encoders' mask: right padding (Llama, CLIP), and a scattered one with key 0 valid.
        {"causal right padding", AttentionMask::causal(mask_tensor({first_valid(prefix), first_valid(prefix)}))},
        {"causal scattered keys", AttentionMask::causal(mask_tensor({first_valid(prefix), first_valid(scattered)}))},
    };
}

// ---- peak memory ------------------------------------------------------------------------------------

// Field `key` of /proc/self/status, in bytes (the file gives kB); -1 when unavailable.
std::int64_t proc_status_bytes(const std::string& key) {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind(key + ":", 0) == 0) return std::stoll(line.substr(key.size() + 1)) * 1024;
    return -1;
}

// How far the process's resident memory rose above its level at the start while fn ran. Two
// measurements, the larger one wins: (1) the kernel's own high-water mark VmHWM, after resetting it
// to the current RSS by writing "5" to /proc/self/clear_refs (Linux 4.0+; exact, nothing is missed);
// (2) a thread that samples VmRSS every millisecond, the fallback where the reset is not permitted
// (an S×S buffer would be resident far longer than a millisecond).
template <class F>
std::int64_t resident_growth(F&& fn) {
    const std::int64_t before = proc_status_bytes("VmRSS");
    const bool hwm_reset = static_cast<bool>(std::ofstream("/proc/self/clear_refs") << "5");
    std::atomic<bool> done{false};
    std::atomic<std::int64_t> sampled_peak{before};
    std::thread sampler([&] {
        while (!done.load()) {
            sampled_peak = std::max(sampled_peak.load(), proc_status_bytes("VmRSS"));
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    });
    fn();
    done = true;
    sampler.join();
    std::int64_t peak = std::max(sampled_peak.load(), proc_status_bytes("VmRSS"));
    if (hwm_reset) peak = std::max(peak, proc_status_bytes("VmHWM"));
    MESSAGE("resident growth measured with ", std::string(hwm_reset ? "VmHWM after a reset and " : ""), "VmRSS sampling: ",
            (peak - before) / 1024, " KiB");
    return peak - before;
}

// Row i of full attention for one head, in double: the exact softmax the flash kernel approximates.
std::vector<double> exact_row(const Tensor& q, const Tensor& k, const Tensor& v, std::int64_t i, double scale) {
    const std::int64_t S = q.size(1), D = q.size(3);
    auto at = [](const Tensor& t, std::int64_t s, std::int64_t d) {
        return double(t.data<const float>()[s * t.stride(1) + d * t.stride(3)]);
    };
    std::vector<double> score(static_cast<std::size_t>(S));
    for (std::int64_t j = 0; j < S; ++j) {
        double dot = 0.0;
        for (std::int64_t d = 0; d < D; ++d) dot += at(q, i, d) * at(k, j, d);
        score[static_cast<std::size_t>(j)] = dot * scale;
    }
    const double top = *std::max_element(score.begin(), score.end());
    std::vector<double> row(static_cast<std::size_t>(D), 0.0);
    double sum = 0.0;
    for (std::int64_t j = 0; j < S; ++j) {
        const double p = std::exp(score[static_cast<std::size_t>(j)] - top);
        sum += p;
        for (std::int64_t d = 0; d < D; ++d) row[static_cast<std::size_t>(d)] += p * at(v, j, d);
    }
    for (double& x : row) x /= sum;
    return row;
}

}  // namespace

// ---- masks ----------------------------------------------------------------------------------------------

TEST_CASE("attention mask: runs cover the queries and agree with the rule") {
    const std::int64_t S = 13;
    const std::vector<NamedMask> masks = {
        {"full", AttentionMask::full()},
        {"segments", AttentionMask::segments({5, 0, 13})},
        {"refiner lengths", AttentionMask::refiner(std::vector<std::int64_t>{5, 0, 13})},
        {"refiner non-prefix mask",
         AttentionMask::refiner(mask_tensor({{0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 0},
                                             {1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1},
                                             {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0}}))},
        {"block_causal 4", AttentionMask::block_causal(4)},
        {"block_causal 20", AttentionMask::block_causal(20)},
        {"causal", AttentionMask::causal()},
        {"causal with a key mask",
         AttentionMask::causal(mask_tensor({{1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
                                            {1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1},
                                            {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}}))},
    };
    for (const NamedMask& named : masks) {
        const AttentionMask& mask = named.mask;
        CAPTURE(named.name);
        const std::int64_t B = 3;
        mask.check(B, S);
        for (std::int64_t b = 0; b < B; ++b) {
            CAPTURE(b);
            std::int64_t next_query = 0;
            for (const QueryRun& run : mask.runs(b, S)) {
                REQUIRE(run.begin == next_query);
                REQUIRE(run.begin < run.end);
                REQUIRE(0 <= run.keys.begin);
                REQUIRE(run.keys.begin < run.keys.end);  // every query attends at least one key
                REQUIRE(run.keys.end <= S);
                next_query = run.end;
                for (std::int64_t i = run.begin; i < run.end; ++i)
                    for (std::int64_t j = 0; j < S; ++j) {
                        const bool in_run = run.keys.begin <= j && j < run.keys.end &&
                                            (!run.filtered || mask.key_filter(b)[j] != 0) && (!run.causal || j <= i);
                        CAPTURE(i);
                        CAPTURE(j);
                        CHECK(mask.allows(b, i, j) == in_run);
                    }
            }
            CHECK(next_query == S);
        }
    }
}

TEST_CASE("attention mask: the named rules") {
    const auto seg = AttentionMask::segments({3});
    CHECK(seg.allows(0, 0, 2));
    CHECK_FALSE(seg.allows(0, 0, 3));
    CHECK_FALSE(seg.allows(0, 4, 2));
    CHECK(seg.allows(0, 4, 3));  // padded text attends padded text

    const auto causal = AttentionMask::block_causal(4);
    CHECK(causal.allows(0, 0, 3));      // own frame, later token
    CHECK_FALSE(causal.allows(0, 3, 4));  // next frame
    CHECK(causal.allows(0, 9, 11));
    CHECK_FALSE(causal.allows(0, 9, 12));
}

TEST_CASE("attention mask: the refiner rule is PyTorch's column-0 expression") {
    const std::vector<std::vector<int>> rows = {
        {1, 1, 1, 0, 0, 0, 0, 0},  // prefix
        {1, 1, 1, 1, 1, 1, 1, 1},  // all valid
        {0, 0, 0, 0, 0, 0, 0, 0},  // all padded
        {1, 0, 0, 0, 0, 0, 0, 0},  // only token 0
    };
    const std::vector<std::vector<int>> scattered = {
        {1, 0, 1, 1, 0, 0, 1, 0},  // holes
        {0, 1, 1, 1, 0, 0, 0, 0},  // token 0 padded, the rest a run
        {1, 1, 1, 0, 0, 0, 0, 0},  // a prefix, but a batch with any other pattern keeps the filter
    };
    const auto check_rule = [](const AttentionMask& mask, const std::vector<std::vector<int>>& rows) {
        for (std::size_t b = 0; b < rows.size(); ++b) {
            const auto expected = torch_refiner_mask(rows[b]);
            for (std::size_t i = 0; i < rows[b].size(); ++i)
                for (std::size_t j = 0; j < rows[b].size(); ++j) {
                    CAPTURE(b);
                    CAPTURE(i);
                    CAPTURE(j);
                    CHECK(mask.allows(std::int64_t(b), std::int64_t(i), std::int64_t(j)) == expected[i][j]);
                }
        }
    };

    for (DType dtype : {DType::f32, DType::i64, DType::boolean}) {
        CAPTURE(dtype_name(dtype));
        const auto prefix = AttentionMask::refiner(mask_tensor(rows, dtype));
        CHECK_FALSE(prefix.has_key_filter());
        CHECK(prefix.valid_len() == std::vector<std::int64_t>{3, 8, 0, 1});
        check_rule(prefix, rows);
        check_rule(AttentionMask::refiner(std::vector<std::int64_t>{3, 8, 0, 1}), rows);

        const auto general = AttentionMask::refiner(mask_tensor(scattered, dtype));
        CHECK(general.has_key_filter());
        check_rule(general, scattered);
    }
}

TEST_CASE("attention mask: bad input is rejected") {
    CHECK_THROWS_AS(AttentionMask::segments({4, -1}), Error);
    CHECK_THROWS_AS(AttentionMask::refiner(std::vector<std::int64_t>{-2}), Error);
    CHECK_THROWS_AS(AttentionMask::block_causal(0), Error);
    CHECK_THROWS_AS(AttentionMask::refiner(mask_tensor({{1, 2, 0}})), Error);
    CHECK_THROWS_AS(AttentionMask::refiner(Tensor::zeros({2, 3, 1})), Error);

    const Qkv t = fused_qkv(2, 5, 1, 16, 1);
    CHECK_THROWS_AS(cpu_detail::attention(t.q, t.k, t.v, AttentionMask::segments({5}), 0.25f), Error);
    CHECK_THROWS_AS(cpu_detail::attention(t.q, t.k, t.v, AttentionMask::segments({5, 6}), 0.25f), Error);
    CHECK_THROWS_AS(cpu_detail::attention(t.q, t.k, t.v, AttentionMask::refiner(mask_tensor({{1, 1, 0, 0}, {1, 0, 1, 0}})),
                                          0.25f),
                    Error);
    CHECK_THROWS_AS(cpu_detail::attention(t.q, t.k.slice(1, 0, 4), t.v, AttentionMask::full(), 0.25f), Error);
    CHECK_THROWS_AS(cpu_detail::attention(t.q.to(DType::bf16), t.k, t.v, AttentionMask::full(), 0.25f), Error);
    CHECK_THROWS_AS(cpu_detail::attention(t.q.select(2, 0), t.k.select(2, 0), t.v.select(2, 0), AttentionMask::full(),
                                          0.25f),
                    Error);
}

// ---- flash attention -------------------------------------------------------------------------------

TEST_CASE("flash attention matches the explicit-matrix reference") {
    Settings restore;
    const auto kernels = supported_kernels();
    // S = 1, a size inside one query tile, and one that spans several query and key tiles with a
    // remainder; the model's head sizes and one smaller than a register block.
    for (std::int64_t D : {5, 16, 64, 96, 128})
        for (std::int64_t S : {1, 37, 200}) {
            const Qkv t = fused_qkv(2, S, 2, D, static_cast<std::uint32_t>(D * 1000 + S));
            const float scale = 1.0f / std::sqrt(float(D));
            for (const NamedMask& named : model_masks(S)) {
                const AttentionMask& mask = named.mask;
                const Tensor expected = cpu_detail::attention_naive(t.q, t.k, t.v, mask, scale);
                for (AttentionKernel kernel : kernels) {
                    cpu_detail::set_attention_kernel(kernel);
                    CAPTURE(D);
                    CAPTURE(S);
                    CAPTURE(named.name);
                    CAPTURE(kernel_name(kernel));
                    const Tensor got = cpu_detail::attention(t.q, t.k, t.v, mask, scale);
                    REQUIRE(got.shape() == (Shape{2, S, 2, D}));
                    REQUIRE(got.is_contiguous());
                    CHECK(tolerance_ratio(got, expected, 2e-6, 2e-5) <= 1.0);
                }
            }
        }
}

TEST_CASE("flash attention: grouped-query heads read their key/value head") {
    // Llama 3's 32 query heads over 8 key/value heads, scaled down: 6 over 2 (and 6 over 1, 3, 6).
    // The reference repeats each key/value head H / H_kv times, as transformers' repeat_kv does.
    Settings restore;
    const std::int64_t B = 2, S = 150, H = 6, D = 16;
    const Tensor q = random_normal({B, S, H, D}, 11);
    std::vector<int> prefix(S);
    for (std::int64_t j = 0; j < S; ++j) prefix[static_cast<std::size_t>(j)] = j < 100;
    const AttentionMask mask = AttentionMask::causal(mask_tensor({prefix, std::vector<int>(S, 1)}));
    for (std::int64_t Hkv : {1, 2, 3, 6}) {
        const Tensor k = random_normal({B, S, Hkv, D}, 12), v = random_normal({B, S, Hkv, D}, 13);
        Tensor k_rep = Tensor::empty({B, S, H, D}), v_rep = Tensor::empty({B, S, H, D});
        for (std::int64_t h = 0; h < H; ++h) {
            cpu_detail::assign(k_rep.select(2, h), k.select(2, h / (H / Hkv)));
            cpu_detail::assign(v_rep.select(2, h), v.select(2, h / (H / Hkv)));
        }
        const Tensor expected = cpu_detail::attention_naive(q, k_rep, v_rep, mask, 0.25f);
        CHECK(tolerance_ratio(cpu_detail::attention_naive(q, k, v, mask, 0.25f), expected, 1e-7, 1e-6) <= 1.0);
        for (AttentionKernel kernel : supported_kernels()) {
            cpu_detail::set_attention_kernel(kernel);
            CAPTURE(Hkv);
            CAPTURE(kernel_name(kernel));
            CHECK(tolerance_ratio(cpu_detail::attention(q, k, v, mask, 0.25f), expected, 2e-6, 2e-5) <= 1.0);
        }
    }
    // 4 key/value heads do not divide 6 query heads.
    CHECK_THROWS_AS(cpu_detail::attention(q, random_normal({B, S, 4, D}, 1), random_normal({B, S, 4, D}, 2), mask, 0.25f),
                    Error);
}

TEST_CASE("attention mask: causal with a masked first key is refused") {
    CHECK_THROWS_WITH_AS(AttentionMask::causal(mask_tensor({{1, 1, 0}, {0, 1, 1}})),
                         doctest::Contains("key 0 of sample 1 is masked"), Error);
    CHECK_THROWS_AS(AttentionMask::causal(mask_tensor({{1, 2, 0}})), Error);
}

TEST_CASE("flash attention keeps its precision when the softmax is sharp") {
    // Scale 1 instead of 1/√D: scores spread over ±40, the running maximum moves between key tiles
    // and most probabilities underflow, which exercises the rescaling of the partial sums.
    Settings restore;
    const Qkv t = fused_qkv(1, 300, 2, 64, 7);
    for (const auto& mask : {AttentionMask::full(), AttentionMask::block_causal(50), AttentionMask::causal()}) {
        const Tensor expected = cpu_detail::attention_naive(t.q, t.k, t.v, mask, 1.0f);
        for (AttentionKernel kernel : supported_kernels()) {
            cpu_detail::set_attention_kernel(kernel);
            CAPTURE(kernel_name(kernel));
            CHECK(tolerance_ratio(cpu_detail::attention(t.q, t.k, t.v, mask, 1.0f), expected, 2e-5, 2e-4) <= 1.0);
        }
    }
}

TEST_CASE("flash attention: padded refiner queries copy v[0]") {
    const Qkv t = fused_qkv(1, 9, 2, 16, 3);
    const Tensor out = cpu_detail::attention(t.q, t.k, t.v, AttentionMask::refiner(std::vector<std::int64_t>{4}), 0.25f);
    for (std::int64_t i = 4; i < 9; ++i)
        for (std::int64_t h = 0; h < 2; ++h)
            for (std::int64_t d = 0; d < 16; ++d) CHECK(out.item({0, i, h, d}) == t.v.item({0, 0, h, d}));
}

TEST_CASE("flash attention: strided and contiguous inputs give the same bits") {
    const Qkv t = fused_qkv(2, 150, 3, 64, 11);
    const auto mask = AttentionMask::segments({100, 150});
    const Tensor from_views = cpu_detail::attention(t.q, t.k, t.v, mask, 0.125f);
    const Tensor from_copies = cpu_detail::attention(t.q.contiguous(), t.k.contiguous(), t.v.contiguous(), mask, 0.125f);
    CHECK(same_bits(from_views, from_copies));

    // A view strided along D ([B, S, H, D] seen through a [B, S, D, H] buffer) is copied, same result.
    const Tensor q_t = t.q.contiguous().permute({0, 1, 3, 2}).contiguous().permute({0, 1, 3, 2});
    REQUIRE(q_t.stride(3) != 1);
    CHECK(same_bits(cpu_detail::attention(q_t, t.k, t.v, mask, 0.125f), from_views));
}

TEST_CASE("flash attention: 1 and 2 threads give the same bits") {
    Settings restore;
    const Qkv t = fused_qkv(2, 300, 3, 128, 5);
    const std::vector<NamedMask> masks = {{"full", AttentionMask::full()},
                                          {"segments", AttentionMask::segments({250, 129})},
                                          {"block_causal", AttentionMask::block_causal(50)}};
    for (AttentionKernel kernel : supported_kernels()) {
        cpu_detail::set_attention_kernel(kernel);
        for (const NamedMask& named : masks) {
            const AttentionMask& mask = named.mask;
            CAPTURE(kernel_name(kernel));
            CAPTURE(named.name);
            set_num_threads(1);
            const Tensor one = cpu_detail::attention(t.q, t.k, t.v, mask, 0.088f);
            set_num_threads(2);
            const Tensor two = cpu_detail::attention(t.q, t.k, t.v, mask, 0.088f);
            CHECK(same_bits(one, two));
        }
    }
}

TEST_CASE("flash attention with bf16 operands: every kernel agrees, any thread count, views read in place") {
    // The bf16 tile products (AVX512_BF16) and the f32 kernels rounding their operands compute the same
    // thing; they may differ where the two round a probability on either side of a bf16 step. The
    // conformance suite checks all of them against the reference on rounded inputs.
    Settings restore;
    const Qkv t = fused_qkv(2, 301, 3, 128, 21);
    const std::vector<NamedMask> masks = {{"full", AttentionMask::full()},
                                          {"segments", AttentionMask::segments({250, 129})},
                                          {"causal", AttentionMask::causal()}};
    for (const NamedMask& named : masks) {
        CAPTURE(named.name);
        std::vector<Tensor> results;
        for (AttentionKernel kernel : supported_kernels()) {
            CAPTURE(kernel_name(kernel));
            cpu_detail::set_attention_kernel(kernel);
            set_num_threads(1);
            const Tensor one = cpu_detail::attention(t.q, t.k, t.v, named.mask, 0.088f, DType::bf16);
            set_num_threads(2);
            const Tensor two = cpu_detail::attention(t.q, t.k, t.v, named.mask, 0.088f, DType::bf16);
            CHECK(same_bits(one, two));
            CHECK(same_bits(two, cpu_detail::attention(t.q.contiguous(), t.k.contiguous(), t.v.contiguous(),
                                                       named.mask, 0.088f, DType::bf16)));
            // The operands are rounded: not the f32 result.
            CHECK_FALSE(same_bits(two, cpu_detail::attention(t.q, t.k, t.v, named.mask, 0.088f)));
            results.push_back(two);
        }
        for (const Tensor& r : results) CHECK(tolerance_ratio(r, results.front(), 1e-3, 1e-2) <= 1.0);
    }
    MESSAGE("bf16 tile products (AVX512_BF16) on this CPU: ",
            cpu_detail::attention_bf16_operands_supported(128) ? "yes" : "no, the f32 kernels round");
}

TEST_CASE("flash attention over a 32768-token head needs no S×S memory") {
    // One head, D = 128: an S×S f32 score matrix would be 4 GiB. The output itself is 16 MiB.
#ifdef __OPTIMIZE__
    const std::int64_t S = 32768;
#else
    // Unoptimised code is tens of times slower; 8192 tokens (a 256 MiB S×S matrix) make the same point.
    const std::int64_t S = 8192;
#endif
    const std::int64_t D = 128;
    const Qkv t = fused_qkv(1, S, 1, D, 2024);
    const float scale = 1.0f / std::sqrt(float(D));
    Tensor out;
    const std::int64_t growth = resident_growth([&] { out = cpu_detail::attention(t.q, t.k, t.v, AttentionMask::full(), scale); });
    CHECK(growth < 64 * 1024 * 1024);

    for (std::int64_t i : {std::int64_t{0}, std::int64_t{1}, std::int64_t{12345}, S - 1}) {
        CAPTURE(i);
        const std::vector<double> expected = exact_row(t.q, t.k, t.v, i, scale);
        double worst = 0.0;
        for (std::int64_t d = 0; d < D; ++d)
            worst = std::max(worst, std::abs(double(out.item({0, i, 0, d})) - expected[static_cast<std::size_t>(d)]));
        CHECK(worst < 1e-5);
    }
}
