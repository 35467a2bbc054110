// The command's runs on the thrust_omp backend, instantiated in a translation unit of their own so that the
// backends' heavy instantiations compile side by side (tools/backend_choice.hpp).
#include "hyvideo/backend/thrust/omp.hpp"
#include "hyvideo/golden/runner.hpp"
#include "generate.hpp"

namespace hyvideo::cli {

int run_generate_thrust_omp(const GenerateArgs& a) { return run_generate_on<thrust_omp>(a); }

golden::FileReport run_golden_thrust_omp(const std::filesystem::path& fixture) { return golden::run_fixture<thrust_omp>(fixture); }

}  // namespace hyvideo::cli
