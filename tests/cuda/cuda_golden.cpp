// Every golden fixture on the CUDA backend, as tests/backend/test_thrust_omp_golden.cpp on thrust-omp.
#include <doctest/doctest.h>

#include "hyvideo/backend/cuda/cuda.hpp"
#include "../golden/golden_check.hpp"

TEST_CASE("golden: every fixture on cuda") { check_every_fixture<hyvideo::cuda>(); }
