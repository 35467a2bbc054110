// The command's runs on the cpu backend, instantiated in a translation unit of their own so that the
// backends' heavy instantiations compile side by side (tools/backend_choice.hpp).
#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/golden/runner.hpp"
#include "generate.hpp"

namespace hyvideo::cli {

int run_generate_cpu(const GenerateArgs& a) { return run_generate_on<cpu>(a); }

golden::FileReport run_golden_cpu(const std::filesystem::path& fixture) { return golden::run_fixture<cpu>(fixture); }

}  // namespace hyvideo::cli
