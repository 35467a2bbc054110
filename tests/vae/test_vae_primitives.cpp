// The CPU backend's VAE primitives against their definitions: conv3d (both engines, f32 and bf16,
// zero and replicate padding, strides, slab edges, input layouts, the fused input map and residual),
// GroupNorm (+SiLU, and as a map fused into conv3d), the vectorised channel map, nearest upsampling,
// the tile blend, clamp and exp.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/golden/compare.hpp"
#include "hyvideo/nn/init.hpp"
#include "../support/thread_scope.hpp"

using namespace hyvideo;
using namespace hyvideo::cpu_detail;

namespace {

Tensor random_tensor(const Shape& shape, std::uint64_t seed, float scale = 1.0f, float offset = 0.0f) {
    Tensor t = Tensor::empty(shape);
    float* p = t.data<float>();
    for (std::int64_t i = 0; i < t.numel(); ++i)
        p[i] = offset + scale * hyvideo::detail::uniform_pm1(
                                    hyvideo::detail::splitmix64(seed * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(i)));
    return t;
}

double rel_l2(const Tensor& a, const Tensor& b) { return golden::compare(a, b).rel_l2; }

bool bitwise_equal(const Tensor& a, const Tensor& b) {
    if (a.shape() != b.shape()) return false;
    const auto va = a.to_vector(), vb = b.to_vector();
    return std::memcmp(va.data(), vb.data(), va.size() * sizeof(float)) == 0;
}

std::vector<Conv3dEngine> conv_engines() {
    std::vector<Conv3dEngine> list{Conv3dEngine::im2row};
    if (gemm_has_onednn) list.push_back(Conv3dEngine::onednn);
    return list;
}

std::vector<ChannelMapKernel> map_kernels() {
    std::vector<ChannelMapKernel> list{ChannelMapKernel::portable};
    if (channel_map_kernel_supported(ChannelMapKernel::avx512)) list.push_back(ChannelMapKernel::avx512);
    return list;
}

// Sets the convolution engine, slab budget and channel-map kernel for one scope and restores them,
// so a failing check cannot leak the settings into later tests.
class Settings {
public:
    Settings(Conv3dEngine e, std::int64_t slab_bytes, ChannelMapKernel k = channel_map_kernel())
        : engine_(conv3d_engine()), bytes_(conv3d_slab_bytes()), kernel_(channel_map_kernel()) {
        set_conv3d_engine(e);
        set_conv3d_slab_bytes(slab_bytes);
        set_channel_map_kernel(k);
    }
    ~Settings() {
        set_conv3d_engine(engine_);
        set_conv3d_slab_bytes(bytes_);
        set_channel_map_kernel(kernel_);
    }

private:
    Conv3dEngine engine_;
    std::int64_t bytes_;
    ChannelMapKernel kernel_;
};

using hyvideo::test::ThreadScope;

struct ConvCase {
    Shape x, w;
    Conv3dSpec spec;
    bool bias;
};

std::vector<ConvCase> conv_cases() {
    return {
        {{1, 4, 5, 6, 7}, {6, 4, 3, 3, 3}, Conv3dSpec::causal(3), true},
        {{1, 4, 5, 6, 7}, {6, 4, 3, 3, 3}, Conv3dSpec::causal(3, {2, 2, 2}), true},
        {{1, 8, 3, 5, 9}, {8, 8, 3, 3, 3}, Conv3dSpec::causal(3, {1, 2, 2}), false},
        {{2, 5, 4, 7, 6}, {3, 5, 3, 3, 3}, Conv3dSpec{{1, 1, 1}, {1, 1, 1, 1, 1, 1}, PadMode::zeros}, true},
        {{1, 3, 6, 8, 8}, {4, 3, 2, 3, 1}, Conv3dSpec{{2, 1, 3}, {0, 1, 2, 0, 1, 1}, PadMode::replicate}, true},
        {{2, 6, 3, 4, 5}, {7, 6, 1, 1, 1}, Conv3dSpec{}, true},  // pointwise: one GEMM
        {{1, 16, 2, 3, 3}, {20, 16, 3, 3, 3}, Conv3dSpec::causal(3), true},
        {{1, 2, 1, 1, 1}, {3, 2, 3, 3, 3}, Conv3dSpec::causal(3), true},  // one pixel, all padding
    };
}

// The input in each layout conv3d reads: channels-first, channels-last, and a strided view.
std::vector<std::pair<std::string, Tensor>> layouts(const Tensor& x) {
    const Shape& s = x.shape();
    Tensor wide = random_tensor({s[0], s[1], s[2] + 1, s[3], s[4] + 2}, 99);
    Tensor view = wide.slice(2, 1, s[2] + 1).slice(4, 1, s[4] + 1);
    x.copy_to(view);
    return {{"channels-first", x}, {"channels-last", channels_last(x)}, {"strided view", view}};
}

}  // namespace

TEST_CASE("conv3d: both engines, f32 and bf16, every slab size and input layout, against the definition") {
    for (const auto& c : conv_cases()) {
        const Tensor x = random_tensor(c.x, 1), w = random_tensor(c.w, 2, 0.3f);
        const Tensor b = c.bias ? random_tensor({c.w[0]}, 3) : Tensor{};
        for (DType dt : {DType::f32, DType::bf16}) {
            const Tensor wd = w.to(dt);
            const Tensor ref = conv3d_naive(x, wd, b, c.spec);
            CHECK(ref.shape() == c.spec.output_shape(c.x, c.w));
            for (Conv3dEngine e : conv_engines())
                for (std::int64_t bytes : {std::int64_t{1}, std::int64_t{2000}, std::int64_t{64} << 20})
                    for (const auto& [layout, xin] : layouts(x)) {
                        Settings scope(e, bytes);
                        INFO("x ", shape_str(c.x), " w ", shape_str(c.w), " ", dtype_name(dt), " ", conv3d_engine_name(e),
                             " slab bytes ", bytes, " ", layout);
                        const Tensor y = conv3d(xin, wd, b, c.spec);
                        CHECK(is_channels_last(y));
                        CHECK(rel_l2(y, ref) < (dt == DType::f32 ? 1e-6 : 1e-5));
                    }
        }
    }
}

TEST_CASE("conv3d: the fused input map (GroupNorm + SiLU) and residual") {
    for (const auto& c : conv_cases()) {
        const Tensor x = random_tensor(c.x, 4, 2.0f, 0.5f), w = random_tensor(c.w, 5, 0.3f);
        const Tensor b = c.bias ? random_tensor({c.w[0]}, 6) : Tensor{};
        const Tensor gamma = random_tensor({c.x[1]}, 7, 0.5f, 1.0f), beta = random_tensor({c.x[1]}, 8);
        const Tensor map = group_norm_affine(x, gamma, beta, 1, 1e-6f);
        const Shape out = c.spec.output_shape(c.x, c.w);
        const Tensor residual = random_tensor(out, 9);
        for (bool silu : {false, true}) {
            Conv3dFusion f{map.select(0, 0), map.select(0, 1), silu, residual};
            const Tensor ref = conv3d_naive(x, w, b, c.spec, f);
            // The fused map is the same computation as the GroupNorm pass.
            const Tensor separate = add(conv3d_naive(group_norm(x, gamma, beta, 1, 1e-6f, silu), w, b, c.spec), residual);
            CHECK(rel_l2(ref, separate) < 1e-6);
            for (Conv3dEngine e : conv_engines())
                for (std::int64_t bytes : {std::int64_t{1}, std::int64_t{64} << 20})
                    for (const auto& [layout, xin] : layouts(x))
                        for (DType dt : {DType::f32, DType::bf16}) {
                            Settings scope(e, bytes);
                            INFO("x ", shape_str(c.x), " ", conv3d_engine_name(e), " bytes ", bytes, " ", layout,
                                 " silu ", silu, " ", dtype_name(dt));
                            const Tensor y = conv3d(xin, w.to(dt), b, c.spec, f);
                            const Tensor want = dt == DType::f32 ? ref : conv3d_naive(x, w.to(dt), b, c.spec, f);
                            CHECK(rel_l2(y, want) < (dt == DType::f32 ? 1e-6 : 1e-5));
                        }
        }
    }
    const Tensor x = random_tensor({1, 4, 2, 3, 3}, 10), w = random_tensor({5, 4, 3, 3, 3}, 11);
    CHECK_THROWS_AS(conv3d(x, w, Tensor{}, Conv3dSpec::causal(3), {Tensor::zeros({1, 4}), Tensor{}, false, {}}), Error);
    CHECK_THROWS_AS(conv3d(x, w, Tensor{}, Conv3dSpec::causal(3), {Tensor::zeros({1, 5}), Tensor::zeros({1, 5}), false, {}}),
                    Error);
    CHECK_THROWS_AS(conv3d(x, w, Tensor{}, Conv3dSpec::causal(3), {{}, {}, false, Tensor::zeros({1, 5, 2, 3, 4})}), Error);
}

// oneDNN's f32 Winograd path (3×3 in space, stride 1, channel counts multiples of 16), against the
// definition and against the direct kernels, for whole-frame and partial-frame slabs.
TEST_CASE("conv3d (oneDNN): the Winograd path") {
    if (!gemm_has_onednn) return;
    struct Case {
        Shape x, w;
        Conv3dSpec spec;
    };
    // (At least kWinogradMinPixels output pixels per sample, or the direct path is taken anyway.)
    const std::vector<Case> cases{
        {{1, 16, 5, 40, 44}, {32, 16, 3, 3, 3}, Conv3dSpec::causal(3)},
        {{1, 32, 3, 48, 61}, {16, 32, 2, 3, 3}, Conv3dSpec{{1, 1, 1}, {1, 0, 1, 1, 1, 1}, PadMode::zeros}},
        {{1, 16, 1, 91, 97}, {16, 16, 3, 3, 3}, Conv3dSpec::causal(3)},
    };
    for (const auto& c : cases) {
        const Tensor x = random_tensor(c.x, 60), w = random_tensor(c.w, 61, 0.2f), b = random_tensor({c.w[0]}, 62);
        const Tensor map = group_norm_affine(x, Tensor{}, Tensor{}, 4, 1e-6f);
        const Conv3dFusion f{map.select(0, 0), map.select(0, 1), true, random_tensor(c.spec.output_shape(c.x, c.w), 63)};
        for (bool fused : {false, true}) {
            const Conv3dFusion fu = fused ? f : Conv3dFusion{};
            const Tensor ref = conv3d_naive(x, w, b, c.spec, fu);
            for (std::int64_t bytes : {std::int64_t{200000}, std::int64_t{64} << 20}) {
                Settings scope(Conv3dEngine::onednn, bytes);
                INFO("x ", shape_str(c.x), " w ", shape_str(c.w), " fused ", fused, " slab bytes ", bytes);
                set_conv3d_winograd(true);
                const Tensor wino = conv3d(x, w, b, c.spec, fu);
                set_conv3d_winograd(false);
                const Tensor direct = conv3d(x, w, b, c.spec, fu);
                set_conv3d_winograd(true);
                CHECK(rel_l2(wino, ref) < 2e-6);
                CHECK(rel_l2(direct, ref) < 1e-6);
            }
        }
    }
}

TEST_CASE("conv3d: output shape rules and bad arguments") {
    const Tensor x = random_tensor({1, 4, 4, 6, 7}, 12);
    const Tensor w = random_tensor({5, 4, 3, 3, 3}, 13, 0.3f);
    const Conv3dSpec spec = Conv3dSpec::causal(3, {2, 2, 2});
    CHECK(conv3d(x, w, Tensor{}, spec).shape() == Shape{1, 5, 2, 3, 4});  // ⌊(T−1)/2⌋+1, ⌈H/2⌉
    CHECK_THROWS_AS(conv3d(x, random_tensor({5, 3, 3, 3, 3}, 14), Tensor{}, spec), Error);
    CHECK_THROWS_AS(conv3d(x, w, random_tensor({4}, 15), spec), Error);
    CHECK_THROWS_AS(conv3d(random_tensor({1, 4, 2, 2}, 16), w, Tensor{}, spec), Error);
    CHECK_THROWS_AS(conv3d(random_tensor({1, 4, 1, 1, 1}, 17), w, Tensor{}, Conv3dSpec{}), Error);  // smaller than the kernel
}

// oneDNN's convolution splits its work over output pixels and channels only; the im2row engine's
// products are gemm()'s, whose summation order may follow the thread count (gemm.hpp), so it is
// not held to this.
TEST_CASE("conv3d (oneDNN): the same bits for one and two threads") {
    if (!gemm_has_onednn) return;
    const Tensor x = random_tensor({1, 32, 5, 40, 48}, 18), w = random_tensor({48, 32, 3, 3, 3}, 19, 0.1f);
    const Tensor b = random_tensor({48}, 20);
    const Tensor map = group_norm_affine(x, Tensor{}, Tensor{}, 4, 1e-6f);
    const Conv3dFusion f{map.select(0, 0), map.select(0, 1), true, random_tensor({1, 48, 5, 40, 48}, 21)};
    for (DType dt : {DType::f32, DType::bf16})
        for (std::int64_t bytes : {std::int64_t{1} << 20, std::int64_t{64} << 20}) {
            Settings scope(Conv3dEngine::onednn, bytes);
            Tensor one, two;
            {
                ThreadScope t(1);
                one = conv3d(x, w.to(dt), b, Conv3dSpec::causal(3), f);
            }
            {
                ThreadScope t(2);
                two = conv3d(x, w.to(dt), b, Conv3dSpec::causal(3), f);
            }
            INFO(dtype_name(dt), " slab bytes ", bytes);
            CHECK(bitwise_equal(one, two));
        }
}

namespace {

// GroupNorm by its definition, in double.
Tensor group_norm_naive(const Tensor& x, const Tensor& w, const Tensor& b, std::int64_t G, double eps, bool silu) {
    const Tensor xc = x.contiguous();
    const std::int64_t N = x.size(0), C = x.size(1), S = x.numel() / (N * C), cpg = C / G;
    Tensor out = Tensor::empty(x.shape());
    const float* in = xc.data<const float>();
    for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t g = 0; g < G; ++g) {
            const float* base = in + (n * C + g * cpg) * S;
            double mean = 0, var = 0;
            for (std::int64_t i = 0; i < cpg * S; ++i) mean += base[i];
            mean /= static_cast<double>(cpg * S);
            for (std::int64_t i = 0; i < cpg * S; ++i) var += (base[i] - mean) * (base[i] - mean);
            var /= static_cast<double>(cpg * S);
            for (std::int64_t c = g * cpg; c < (g + 1) * cpg; ++c)
                for (std::int64_t i = 0; i < S; ++i) {
                    double y = (in[(n * C + c) * S + i] - mean) / std::sqrt(var + eps);
                    if (w.defined()) y = y * w.data<const float>()[c] + b.data<const float>()[c];
                    if (silu) y = y / (1.0 + std::exp(-y));
                    out.data<float>()[(n * C + c) * S + i] = static_cast<float>(y);
                }
        }
    return out;
}

}  // namespace

TEST_CASE("group_norm: both layouts, both kernels, with and without affine and SiLU") {
    for (const Shape& s : {Shape{2, 8, 3, 5, 7}, Shape{1, 64, 2, 9, 40}, Shape{1, 12, 1, 1, 1}}) {
        const Tensor x = random_tensor(s, 30, 3.0f, 0.5f);
        const Tensor w = random_tensor({s[1]}, 31, 0.5f, 1.0f), b = random_tensor({s[1]}, 32);
        for (std::int64_t G : {std::int64_t{1}, std::int64_t{4}})
            for (bool affine : {false, true})
                for (bool silu : {false, true}) {
                    const Tensor wa = affine ? w : Tensor{}, ba = affine ? b : Tensor{};
                    const Tensor ref = group_norm_naive(x, wa, ba, G, 1e-6, silu);
                    for (ChannelMapKernel k : map_kernels())
                        for (const auto& [layout, xin] : layouts(x)) {
                            Settings scope(conv3d_engine(), conv3d_slab_bytes(), k);
                            INFO(shape_str(s), " groups ", G, " affine ", affine, " silu ", silu, " ",
                                 channel_map_kernel_name(k), " ", layout);
                            const Tensor y = group_norm(xin, wa, ba, G, 1e-6f, silu);
                            CHECK(rel_l2(y, ref) < 1e-6);
                            CHECK((is_channels_last(xin) ? is_channels_last(y) : y.is_contiguous()));
                        }
                }
    }
    // A large mean: the two-pass statistics do not lose the variance to it. (x·scale + shift then
    // cancels about 7 bits in float, as in PyTorch's kernel; lost statistics would be errors of order 1.)
    const Tensor far = random_tensor({1, 16, 3, 8, 8}, 34, 3.0f, 1000.0f);
    for (const auto& [layout, xin] : layouts(far)) {
        INFO(layout);
        CHECK(rel_l2(group_norm(xin, Tensor{}, Tensor{}, 4, 1e-6f), group_norm_naive(far, {}, {}, 4, 1e-6, false)) < 1e-4);
    }
    CHECK_THROWS_AS(group_norm(random_tensor({1, 6, 2}, 33), Tensor{}, Tensor{}, 4, 1e-6f), Error);
    CHECK_THROWS_AS(group_norm(random_tensor({1, 8, 2}, 33), random_tensor({8}, 1), Tensor{}, 4, 1e-6f), Error);
}

TEST_CASE("group_norm: the same bits for one and two threads") {
    const Tensor x = random_tensor({1, 32, 5, 40, 40}, 35, 2.0f, 3.0f);
    for (const auto& [layout, xin] : layouts(x)) {
        Tensor one, two;
        {
            ThreadScope t(1);
            one = group_norm(xin, Tensor{}, Tensor{}, 8, 1e-6f, true);
        }
        {
            ThreadScope t(2);
            two = group_norm(xin, Tensor{}, Tensor{}, 8, 1e-6f, true);
        }
        INFO(layout);
        CHECK(bitwise_equal(one, two));
    }
}

TEST_CASE("channel map: exp and SiLU against libm, bf16 rounding, NaN, the tail lanes") {
    std::vector<float> xs;
    for (float v = -100.0f; v <= 100.0f; v += 0.37f) xs.push_back(v);
    for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 88.5f, -87.0f}) xs.push_back(v);
    const std::int64_t n = static_cast<std::int64_t>(xs.size());  // not a multiple of 16: tails too
    for (ChannelMapKernel k : map_kernels()) {
        Settings scope(conv3d_engine(), conv3d_slab_bytes(), k);
        std::vector<float> out(xs.size());
        const float one = 1.0f, zero = 0.0f;
        map_channels(xs.data(), n, out.data(), n, DType::f32, 1, n, {&one, &zero, false, true});
        for (std::size_t i = 0; i < xs.size(); ++i) {
            const double want = xs[i] / (1.0 + std::exp(-static_cast<double>(xs[i])));
            INFO(channel_map_kernel_name(k), " x = ", xs[i]);
            // (Below x = −87.3 the exponential is clamped: |SiLU| < 1e-35 there.)
            CHECK(std::abs(out[i] - want) <= 4e-7 * std::abs(want) + 1e-35);
        }
        std::vector<std::uint16_t> bits(xs.size());
        map_channels(xs.data(), n, bits.data(), n, DType::bf16, 1, n, {});
        for (std::size_t i = 0; i < xs.size(); ++i) CHECK(bits[i] == f32_to_bf16(xs[i]));
        const float nan = std::nanf("");
        float y = 0;
        map_channels(&nan, 1, &y, 1, DType::f32, 1, 1, {nullptr, nullptr, true, true});
        CHECK(std::isnan(y));
    }
}

TEST_CASE("activations: GELU-tanh and SiLU tensors against double precision, both kernels") {
    std::vector<float> xs;
    for (float v = -30.0f; v <= 30.0f; v += 0.0137f) xs.push_back(v);
    for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-5f, -1e-5f, 100.0f, -100.0f, 3e38f, -3e38f}) xs.push_back(v);
    const Tensor x = Tensor::from_vector<float>({static_cast<std::int64_t>(xs.size())}, xs);
    for (ChannelMapKernel k : map_kernels()) {
        Settings scope(conv3d_engine(), conv3d_slab_bytes(), k);
        const auto gelu = cpu::gelu_tanh(x).to_vector(), silu = cpu::silu(x).to_vector();
        std::size_t gelu_bad = 0, silu_bad = 0;
        for (std::size_t i = 0; i < xs.size(); ++i) {
            const double v = xs[i], y = 0.7978845608028654 * (v + 0.044715 * v * v * v);
            // ½v(1 + tanh y) written as v / (1 + e^−2y), so that the reference has no cancellation either.
            const double want_gelu = v / (1.0 + std::exp(-2.0 * y)), want_silu = v / (1.0 + std::exp(-v));
            // The float argument of the exponential carries a relative error of a few ulps, which the
            // result inherits multiplied by the argument's size (torch's tanh form does the same).
            const double tol_gelu = 4e-7 * std::abs(want_gelu) * (1.0 + std::min(2.0 * std::abs(y), 200.0)) + 1e-37;
            const double tol_silu = 4e-7 * std::abs(want_silu) * (1.0 + std::min(std::abs(v), 100.0)) + 1e-37;
            if (!(std::abs(gelu[i] - want_gelu) <= tol_gelu)) {
                ++gelu_bad;
                MESSAGE(channel_map_kernel_name(k), " gelu_tanh(", xs[i], ") = ", gelu[i], ", want ", want_gelu);
            }
            if (!(std::abs(silu[i] - want_silu) <= tol_silu)) {
                ++silu_bad;
                MESSAGE(channel_map_kernel_name(k), " silu(", xs[i], ") = ", silu[i], ", want ", want_silu);
            }
        }
        CHECK(gelu_bad == 0);
        CHECK(silu_bad == 0);
        CHECK(std::isnan(cpu::gelu_tanh(Tensor::full({3}, std::nanf(""))).to_vector()[2]));
        // A column slice (rows of one stride, read in place) and a transposed view (copied first)
        // give the contiguous result, bit for bit; widths 37 and 5 exercise the tail lanes.
        const Tensor wide = Tensor::from_vector<float>({3, 7, 50}, std::vector<float>(xs.begin(), xs.begin() + 1050));
        for (const Tensor& view : {wide.slice(2, 8, 45), wide.slice(2, 40, 45), wide.transpose(1, 2)}) {
            CHECK(cpu::gelu_tanh(view).to_vector() == cpu::gelu_tanh(view.contiguous()).to_vector());
            CHECK(cpu::silu(view).to_vector() == cpu::silu(view.contiguous()).to_vector());
        }
    }
}

TEST_CASE("upsample_nearest: causal and plain, both layouts") {
    const Tensor x = random_tensor({2, 3, 3, 2, 4}, 40);
    for (bool causal : {false, true})
        for (const auto& [layout, xin] : layouts(x)) {
            const Tensor y = upsample_nearest(xin, {2, 3, 2}, causal);
            INFO(layout, " causal ", causal);
            CHECK(y.shape() == Shape{2, 3, causal ? 5 : 6, 6, 8});
            CHECK((is_channels_last(xin) ? is_channels_last(y) : y.is_contiguous()));
            for (std::int64_t t = 0; t < y.size(2); ++t) {
                const std::int64_t ti = causal ? (t == 0 ? 0 : 1 + (t - 1) / 2) : t / 2;
                for (std::int64_t h = 0; h < 6; ++h)
                    for (std::int64_t w = 0; w < 8; ++w)
                        CHECK(y.item({1, 2, t, h, w}) == x.item({1, 2, ti, h / 3, w / 2}));
            }
        }
}

TEST_CASE("blend, assign, clamp, exp") {
    const Tensor a = random_tensor({2, 3, 4}, 50), b = random_tensor({2, 3, 4}, 51);
    const Tensor m = blend(a, b, 1);
    for (std::int64_t y = 0; y < 3; ++y) {
        const float wb = static_cast<float>(y / 3.0), wa = static_cast<float>(1.0 - y / 3.0);
        CHECK(m.item({1, y, 2}) == a.item({1, y, 2}) * wa + b.item({1, y, 2}) * wb);
    }
    CHECK(bitwise_equal(blend(a, b, 0).select(0, 0), a.select(0, 0)));  // weight 1 on a at y = 0
    Tensor dst = Tensor::zeros({2, 3, 6});
    assign(dst.slice(2, 1, 5), a);
    CHECK(dst.item({1, 2, 3}) == a.item({1, 2, 2}));
    CHECK(dst.item({1, 2, 0}) == 0.0f);
    const Tensor c = clamp(Tensor::from_vector<float>({3}, {-50.0f, 1.0f, 40.0f}), -30.0f, 20.0f);
    CHECK(c.to_vector() == std::vector<float>{-30.0f, 1.0f, 20.0f});
    CHECK(exp(Tensor::full({1}, 0.0f)).item({0}) == 1.0f);
}

// The pipeline maps the decoded video from [-1, 1] to [0, 1] with affine, and makes its per-step
// timestep and guidance tensors with full, on the device: neither may change a bit of what the
// upload-and-add it replaced gave.
TEST_CASE("cpu::affine is scale then add, bit for bit, on contiguous and strided input; cpu::full") {
    const Tensor x = random_tensor({3, 5, 7}, 52);
    for (const Tensor& in : {x, x.permute({2, 0, 1}), x.slice(1, 1, 4)}) {
        const Tensor want = cpu::add(cpu::scale(in, 0.5f), Tensor::full({1}, 0.5f));
        const Tensor got = cpu::affine(in, 0.5f, 0.5f);
        CHECK(got.shape() == in.shape());
        CHECK(bitwise_equal(got, want));
    }
    CHECK(cpu::affine(Tensor::from_vector<float>({2}, {2.0f, -1.0f}), 3.0f, -1.0f).to_vector() ==
          std::vector<float>{5.0f, -4.0f});
    const Tensor f = cpu::full({2, 3}, 6000.0f);
    CHECK(f.shape() == Shape{2, 3});
    CHECK(f.dtype() == DType::f32);
    CHECK(f.to_vector() == std::vector<float>(6, 6000.0f));
}
