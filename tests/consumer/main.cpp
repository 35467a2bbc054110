// A downstream program: y = RMSNorm(linear(x)) through hyvideo's CPU backend, checked against the
// same arithmetic written out in double. Prints the result and what the build linked; exits 1 on a
// mismatch. run.sh checks the printed line, so it proves the consumer compiled, linked and ran.
#include <cmath>
#include <cstdio>
#include <vector>

#include <hyvideo/backend/cpu/cpu.hpp>
#include <hyvideo/nn/rms_norm.hpp>

int main() {
    using hyvideo::Tensor;
    constexpr int rows = 2, in = 4, out = 3;
    const std::vector<float> x = {1, 2, 3, 4, -1, 0.5f, 2, -3};
    const std::vector<float> w = {0.5f, -1, 0.25f, 2, 1, 1, 1, 1, -0.5f, 0, 3, 0.125f};  // [out, in]
    const std::vector<float> b = {0.1f, -0.2f, 0.3f};
    const std::vector<float> g = {1, 0.5f, 2};  // RMSNorm weight

    hyvideo::RMSNorm<hyvideo::cpu> norm(out, 1e-6f);
    norm.weight = Tensor::from_vector({out}, g);
    const Tensor y = norm.forward(hyvideo::cpu::linear(Tensor::from_vector({rows, in}, x),
                                                      Tensor::from_vector({out, in}, w),
                                                      Tensor::from_vector({out}, b)));

    double sum = 0, max_err = 0;
    for (int r = 0; r < rows; ++r) {
        double h[out], ms = 0;
        for (int o = 0; o < out; ++o) {
            h[o] = b[o];
            for (int k = 0; k < in; ++k) h[o] += double(x[r * in + k]) * w[o * in + k];
            ms += h[o] * h[o] / out;
        }
        for (int o = 0; o < out; ++o) {
            const double ref = h[o] / std::sqrt(ms + 1e-6) * g[o];
            const double got = y.span<const float>()[r * out + o];
            max_err = std::fmax(max_err, std::fabs(got - ref));
            sum += got;
        }
    }
#ifdef HYVIDEO_HAS_ONEDNN
    const int onednn = 1;
#else
    const int onednn = 0;
#endif
    const bool ok = y.shape() == hyvideo::Shape{rows, out} && max_err < 1e-5;
    std::printf("hyvideo_consumer: sum=%.6f max_err=%.2e onednn=%d %s\n", sum, max_err, onednn, ok ? "OK" : "MISMATCH");
    return ok ? 0 : 1;
}
