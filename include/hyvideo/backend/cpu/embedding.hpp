#pragma once
// Row gather from an embedding table: nn.Embedding's forward.
#include <cstdint>
#include <string>
#include <vector>

#include "hyvideo/backend/cpu/elementwise.hpp"
#include "hyvideo/core/dtype_convert.hpp"

namespace hyvideo::cpu_detail {

// table [V, D] in any floating dtype (the table of an 8B LLM stays in its mapped file: only the rows
// asked for are read and widened), ids [...] int64 on the host -> f32 [..., D]. A negative id gives a
// row of zeros: llava zeroes the embeddings of its padding tokens, and the caller says which those are.
inline Tensor embedding(const Tensor& table, const Tensor& ids) {
    HYVIDEO_CHECK(table.defined() && table.dim() == 2 && is_floating(table.dtype()),
                  "embedding: the table must be a [V, D] float tensor, got ",
                  table.defined() ? shape_str(table.shape()) : std::string("none"));
    HYVIDEO_CHECK(ids.defined() && ids.dtype() == DType::i64 && ids.device() == Device::cpu,
                  "embedding: ids must be an int64 host tensor");
    const Tensor t = table.contiguous(), index = ids.contiguous();
    const std::int64_t V = t.size(0), D = t.size(1);
    Shape shape = ids.shape();
    shape.push_back(D);
    Tensor out = Tensor::empty(shape);
    const auto* id = index.data<const std::int64_t>();
    const std::int64_t n = index.numel();
    for (std::int64_t i = 0; i < n; ++i)
        HYVIDEO_CHECK(id[i] < V, "embedding: token id ", id[i], " at position ", i, " is outside the vocabulary of ", V);
    const auto* base = static_cast<const unsigned char*>(t.raw_data());
    const std::size_t row_bytes = static_cast<std::size_t>(D) * dtype_size(t.dtype());
    float* o = out.data<float>();
    parallel_for_chunks(0, n, 16, [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
            float* dst = o + r * D;
            if (id[r] < 0) std::fill_n(dst, D, 0.0f);
            else convert_buffer(base + static_cast<std::size_t>(id[r]) * row_bytes, t.dtype(), dst, DType::f32,
                                static_cast<std::size_t>(D));
        }
    });
    return out;
}

}  // namespace hyvideo::cpu_detail
