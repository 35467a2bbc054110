// Every golden fixture on the thrust-omp backend: the kernels the CUDA backend shares with it
// (backend/thrust/thrust_backend.hpp) reproduce the official code, and no component reads a device
// tensor from the host (thrust-omp memory is a device to Tensor: a host read throws).
#include <doctest/doctest.h>

#include "hyvideo/backend/thrust/omp.hpp"
#include "../golden/golden_check.hpp"

TEST_CASE("golden: every fixture on thrust-omp") { check_every_fixture<hyvideo::thrust_omp>(); }
