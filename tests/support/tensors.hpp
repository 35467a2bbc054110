#pragma once
// Tensors with known contents for tests: seeded normal values, and 0, 1, 2, ... so that every element
// says where it came from.
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "hyvideo/core/tensor.hpp"

namespace hyvideo::test {

inline Tensor random_normal(const Shape& shape, std::uint32_t seed) {
    Tensor t = Tensor::empty(shape);
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist;
    for (float& x : t.span<float>()) x = dist(rng);
    return t;
}

inline Tensor iota(Shape shape) {
    std::vector<float> v(static_cast<std::size_t>(shape_numel(shape)));
    std::iota(v.begin(), v.end(), 0.0f);
    return Tensor::from_vector(std::move(shape), v);
}

}  // namespace hyvideo::test
