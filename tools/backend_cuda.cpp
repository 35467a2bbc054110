// The command's runs on the CUDA backend (built with -DHYVIDEO_CUDA=ON), in a translation unit of its
// own as the other backends' (tools/backend_choice.hpp).
#include "hyvideo/backend/cuda/cuda.hpp"
#include "hyvideo/golden/runner.hpp"
#include "generate.hpp"

namespace hyvideo::cli {

int run_generate_cuda(const GenerateArgs& a) { return run_generate_on<cuda>(a); }

golden::FileReport run_golden_cuda(const std::filesystem::path& fixture) { return golden::run_fixture<cuda>(fixture); }

bool cuda_device_available() { return cuda::available(); }

}  // namespace hyvideo::cli
