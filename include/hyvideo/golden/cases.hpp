#pragma once
// The registry of golden cases: case name -> the implementation that reproduces it on backend B.
// A case listed in known_cases() but without an implementation yet is reported as such.
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "hyvideo/golden/cases/dit_blocks.hpp"
#include "hyvideo/golden/cases/pipeline.hpp"
#include "hyvideo/golden/cases/rope3d.hpp"
#include "hyvideo/golden/cases/scheduler.hpp"
#include "hyvideo/golden/cases/small_layers.hpp"
#include "hyvideo/golden/cases/text_encoders.hpp"
#include "hyvideo/golden/cases/timestep_embedder.hpp"
#include "hyvideo/golden/cases/transformer.hpp"
#include "hyvideo/golden/cases/vae.hpp"

namespace hyvideo::golden {

using CaseFn = std::function<CaseResult(const Fixture&)>;

template <Backend B>
const std::map<std::string, CaseFn>& case_registry() {
    static const std::map<std::string, CaseFn> registry = {
        {"rope3d", run_rope3d<B>},
        {"timestep_embedder", run_timestep_embedder<B>},
        {"small_layers", run_small_layers<B>},
        {"scheduler", run_scheduler<B>},
        {"token_refiner", run_token_refiner<B>},
        {"double_block", run_double_block<B>},
        {"single_block", run_single_block<B>},
        {"transformer_tiny", run_transformer_tiny<B>},
        {"vae_blocks", run_vae_blocks<B>},
        {"vae_tiny", run_vae_tiny<B>},
        {"vae_tiled", run_vae_tiled<B>},
        {"pipeline_tiny", run_pipeline_tiny<B>},
        {"i2v_token_replace", run_i2v<B>},
        {"i2v_latent_concat", run_i2v<B>},
        {"text_llm", run_text_llm<B>},
        {"text_clip", run_text_clip<B>},
        {"text_llava_i2v", run_text_llava_i2v<B>},
    };
    return registry;
}

// Every case the reference fixtures define (tests/data/golden/README.md).
inline const std::vector<std::string>& known_cases() {
    static const std::vector<std::string> cases = {
        "rope3d",       "timestep_embedder", "small_layers",     "token_refiner",     "double_block",
        "single_block", "transformer_tiny",  "scheduler",        "vae_blocks",        "vae_tiny",
        "vae_tiled",    "pipeline_tiny",     "i2v_token_replace", "i2v_latent_concat", "text_llm",
        "text_clip",    "text_llava_i2v",
    };
    return cases;
}

}  // namespace hyvideo::golden
