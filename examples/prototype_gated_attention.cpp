// Test your own component against your PyTorch prototype (docs/testing_components.md).
//
// examples/prototype/gated_attention.py defines a variant attention in PyTorch and writes a fixture
// (weights, input, reference outputs) with tools/golden/fixture_io.py. Here the same component is
// built from hyvideo's parts as a template over the backend, loads that fixture's weights strictly
// (every name, every shape, nothing extra), runs, and compares EVERY output with the golden criterion:
// relative L2 <= 1e-4.
//
//   example_prototype_gated_attention [FIXTURE]   (default: examples/prototype/gated_attention.safetensors)
#include <cmath>
#include <cstdio>
#include <string>

#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/golden/compare.hpp"
#include "hyvideo/golden/fixture.hpp"
#include "hyvideo/nn/linear.hpp"
#include "hyvideo/nn/module.hpp"
#include "hyvideo/nn/rms_norm.hpp"

using namespace hyvideo;

// y = proj(attention(rms(q), rms(k), v) * silu(gate(x))), q|k|v from one fused linear.
template <Backend B>
struct GatedAttention {
    using backend = B;  // load_weights converts each stored weight with B::weight
    std::int64_t dim = 0, heads = 0;
    Linear<B> qkv, gate, proj;
    RMSNorm<B> q_norm, k_norm;

    GatedAttention(std::int64_t d, std::int64_t h)
        : dim(d), heads(h), qkv(d, 3 * d), gate(d, d), proj(d, d), q_norm(d / h), k_norm(d / h) {}

    // The weights, under the PyTorch state_dict names: this list IS the loader.
    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        qkv.parameters(prefix + "qkv.", visit);
        q_norm.parameters(prefix + "q_norm.", visit);
        k_norm.parameters(prefix + "k_norm.", visit);
        gate.parameters(prefix + "gate.", visit);
        proj.parameters(prefix + "proj.", visit);
    }

    struct Out {
        Tensor attn, y;
    };
    // x [N, S, dim] -> attn (before the gate) and y, both [N, S, dim].
    Out forward(const Tensor& x) const {
        const std::int64_t N = x.size(0), S = x.size(1), D = dim / heads;
        const Tensor t = qkv.forward(x).reshape({N, S, 3, heads, D});  // [N, S, 3, H, D], like .view in torch
        const Tensor q = q_norm.forward(t.select(2, 0)), k = k_norm.forward(t.select(2, 1));
        const Tensor v = B::contiguous(t.select(2, 2));
        const float scale = 1.0f / std::sqrt(static_cast<float>(D));  // SDPA's default
        const Tensor attn = B::attention(q, k, v, AttentionMask::full(), scale).reshape({N, S, dim});
        return {attn, proj.forward(B::mul(attn, B::silu(gate.forward(x))))};
    }
};

int main(int argc, char** argv) {
    const std::string path =
        argc > 1 ? argv[1] : std::string(HYVIDEO_SOURCE_DIR) + "/examples/prototype/gated_attention.safetensors";
    const golden::Fixture f(path);
    const auto& c = f.config();

    GatedAttention<cpu> block(golden::Fixture::get<std::int64_t>(c, "dim"), golden::Fixture::get<std::int64_t>(c, "heads"));
    load_weights_strict(block, f.params());  // param.* of the fixture, checked name by name
    const auto out = block.forward(cpu::upload(f.input("x")));

    bool ok = true;
    for (const std::string& name : f.output_names()) {  // every output, or it has not passed
        const Tensor got = cpu::download(name == "attn" ? out.attn : name == "y" ? out.y : Tensor{});
        if (!got.defined()) {
            std::printf("%-5s not produced: FAIL\n", name.c_str());
            ok = false;
            continue;
        }
        const golden::Comparison cmp = golden::compare(got, f.output(name));
        const bool pass = cmp.rel_l2 <= 1e-4;
        ok = ok && pass;
        std::printf("%-5s %s rel L2 %.3e  max |diff| %.3e  %s\n", name.c_str(), shape_str(got.shape()).c_str(),
                    cmp.rel_l2, cmp.max_abs, pass ? "PASS" : "FAIL");
    }
    std::printf("%s: %s\n", f.case_name().c_str(), ok ? "matches the PyTorch prototype" : "DIFFERS");
    return ok ? 0 : 1;
}
