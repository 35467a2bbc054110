#pragma once
// What a golden case produces: the implementation's outputs under the fixture's output names, and
// for outputs defined only on some rows, the mask of defined rows.
#include <map>
#include <string>

#include "hyvideo/core/tensor.hpp"

namespace hyvideo::golden {

struct CaseResult {
    std::map<std::string, Tensor> outputs;
    std::map<std::string, Tensor> row_masks;
};

}  // namespace hyvideo::golden
