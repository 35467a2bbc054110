// The CPU backend's VAE primitives against their definitions: conv3d (both engines, f32 and bf16,
// zero and replicate padding, strides, slab edges), GroupNorm (+SiLU), nearest upsampling, the
// tile blend, clamp and exp.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/golden/compare.hpp"
#include "hyvideo/nn/init.hpp"

using namespace hyvideo;
using namespace hyvideo::cpu_detail;

namespace {

Tensor random_tensor(const Shape& shape, std::uint64_t seed, float scale = 1.0f, float offset = 0.0f) {
    Tensor t = Tensor::empty(shape);
    float* p = t.data<float>();
    for (std::int64_t i = 0; i < t.numel(); ++i)
        p[i] = offset + scale * hyvideo::detail::uniform_pm1(hyvideo::detail::splitmix64(seed * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(i)));
    return t;
}

double rel_l2(const Tensor& a, const Tensor& b) { return golden::compare(a, b).rel_l2; }

bool bitwise_equal(const Tensor& a, const Tensor& b) {
    if (a.shape() != b.shape()) return false;
    const auto va = a.to_vector(), vb = b.to_vector();
    return std::memcmp(va.data(), vb.data(), va.size() * sizeof(float)) == 0;
}

std::vector<Conv3dEngine> conv_engines() {
    std::vector<Conv3dEngine> list{Conv3dEngine::im2col};
    if (gemm_has_onednn) list.push_back(Conv3dEngine::onednn);
    return list;
}

class ConvScope {
public:
    ConvScope(Conv3dEngine e, std::int64_t slab_bytes) : engine_(conv3d_engine()), bytes_(conv3d_slab_bytes()) {
        set_conv3d_engine(e);
        set_conv3d_slab_bytes(slab_bytes);
    }
    ~ConvScope() {
        set_conv3d_engine(engine_);
        set_conv3d_slab_bytes(bytes_);
    }

private:
    Conv3dEngine engine_;
    std::int64_t bytes_;
};

class ThreadScope {
public:
    explicit ThreadScope(int n) : saved_(num_threads()) { set_num_threads(n); }
    ~ThreadScope() { set_num_threads(saved_); }

private:
    int saved_;
};

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
        {{2, 6, 3, 4, 5}, {7, 6, 1, 1, 1}, Conv3dSpec{}, true},   // pointwise: one GEMM
        {{1, 16, 2, 3, 3}, {16, 16, 3, 3, 3}, Conv3dSpec::causal(3), true},
        {{1, 2, 1, 1, 1}, {3, 2, 3, 3, 3}, Conv3dSpec::causal(3), true},  // one pixel, all padding
    };
}

}  // namespace

TEST_CASE("conv3d: both engines, f32 and bf16, every slab size, against the definition") {
    for (const auto& c : conv_cases()) {
        const Tensor x = random_tensor(c.x, 1), w = random_tensor(c.w, 2, 0.3f);
        const Tensor b = c.bias ? random_tensor({c.w[0]}, 3) : Tensor{};
        for (DType dt : {DType::f32, DType::bf16}) {
            const Tensor wd = w.to(dt);
            const Tensor ref = conv3d_naive(x, wd, b, c.spec);
            CHECK(ref.shape() == c.spec.output_shape(c.x, c.w));
            for (Conv3dEngine e : conv_engines())
                for (std::int64_t bytes : {std::int64_t{1}, std::int64_t{2000}, std::int64_t{64} << 20}) {
                    ConvScope scope(e, bytes);
                    INFO("x ", shape_str(c.x), " w ", shape_str(c.w), " ", dtype_name(dt), " ", conv3d_engine_name(e),
                         " slab bytes ", bytes);
                    const Tensor y = conv3d(x, wd, b, c.spec);
                    CHECK(rel_l2(y, ref) < (dt == DType::f32 ? 1e-6 : 1e-5));
                }
        }
    }
}

TEST_CASE("conv3d: strided input views and output shape rules") {
    const Tensor big = random_tensor({1, 4, 6, 8, 10}, 4);
    const Tensor x = big.slice(2, 1, 5).slice(4, 2, 9);  // not contiguous
    const Tensor w = random_tensor({5, 4, 3, 3, 3}, 5, 0.3f);
    const Conv3dSpec spec = Conv3dSpec::causal(3, {2, 2, 2});
    CHECK(conv3d(x, w, Tensor{}, spec).shape() == Shape{1, 5, 2, 4, 4});  // ⌊(T−1)/2⌋+1, ⌈H/2⌉
    CHECK(rel_l2(conv3d(x, w, Tensor{}, spec), conv3d_naive(x.contiguous(), w, Tensor{}, spec)) < 1e-6);
    CHECK_THROWS_AS(conv3d(x, random_tensor({5, 3, 3, 3, 3}, 6), Tensor{}, spec), Error);
    CHECK_THROWS_AS(conv3d(x, w, random_tensor({4}, 7), spec), Error);
    CHECK_THROWS_AS(conv3d(random_tensor({1, 4, 2, 2}, 8), w, Tensor{}, spec), Error);
}

TEST_CASE("conv3d: the same bits for one and two threads") {
    const Tensor x = random_tensor({1, 32, 5, 12, 20}, 9), w = random_tensor({48, 32, 3, 3, 3}, 10, 0.1f);
    const Tensor b = random_tensor({48}, 11);
    for (Conv3dEngine e : conv_engines()) {
        if (e == Conv3dEngine::im2col && gemm_engine() == GemmEngine::onednn) continue;  // gemm() may split K
        for (DType dt : {DType::f32, DType::bf16}) {
            ConvScope scope(e, 64 << 20);
            Tensor one, two;
            {
                ThreadScope t(1);
                one = conv3d(x, w.to(dt), b, Conv3dSpec::causal(3));
            }
            {
                ThreadScope t(2);
                two = conv3d(x, w.to(dt), b, Conv3dSpec::causal(3));
            }
            INFO(conv3d_engine_name(e), " ", dtype_name(dt));
            CHECK(bitwise_equal(one, two));
        }
    }
}
