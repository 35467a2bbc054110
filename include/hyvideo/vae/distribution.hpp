#pragma once
// DiagonalGaussianDistribution (official hyvideo/vae/vae.py, docs/model.md#vae-latent-distribution): the
// encoder's moments [N, 2·latent, ...] split on dim 1 into the mean and the log-variance, clamped to
// [−30, 20]. Inference takes the mode (the mean); sample() draws mean + std·noise from noise the caller
// gives, so that any random source (and the reference's generator, replayed) can be used.
#include "hyvideo/backend/backend.hpp"

namespace hyvideo {

template <Backend B>
struct DiagonalGaussianDistribution {
    Tensor mean, logvar, std, var;

    explicit DiagonalGaussianDistribution(const Tensor& moments) {
        HYVIDEO_CHECK(moments.dim() >= 2 && moments.size(1) % 2 == 0,
                      "DiagonalGaussianDistribution: moments must be [N, 2·C, ...], got ", shape_str(moments.shape()));
        const std::int64_t c = moments.size(1) / 2;
        mean = B::contiguous(moments.slice(1, 0, c));
        logvar = B::clamp(moments.slice(1, c, 2 * c), -30.0f, 20.0f);
        std = B::exp(B::scale(logvar, 0.5f));
        var = B::exp(logvar);
    }

    Tensor mode() const { return mean; }

    // mean + std·noise, noise of the mean's shape (standard normal for a sample of the posterior).
    Tensor sample(const Tensor& noise) const {
        HYVIDEO_CHECK(noise.shape() == mean.shape(), "DiagonalGaussianDistribution::sample: noise ",
                      shape_str(noise.shape()), " for a mean of ", shape_str(mean.shape()));
        return B::add(mean, B::mul(std, noise));
    }
};

}  // namespace hyvideo
