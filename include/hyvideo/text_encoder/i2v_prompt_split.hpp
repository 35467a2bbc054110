#pragma once
// How HunyuanVideo-I2V cuts the llava encoder's hidden states into what its DiT receives
// (TextEncoder.encode with i2v_mode and data_type "video"): the image rows, thinned to every
// `interleave`-th (4 for the token_replace model, 2 for latent_concat), followed by the prompt's rows
// without the template's system part and without the `<|eot_id|><|start_header_id|>assistant
// <|end_header_id|>` header that ends the template.
//
// Positions in the merged sequence: the image rows are [image_emb_start, image_emb_end) = [5, 581);
// the prompt starts at crop_start - 1 + image_emb_len = 103 - 1 + 576 = 678. The assistant header is
// found through k, the index in the *text* ids of the last "\n\n" token (271), which follows it: the
// rows [k + 571, k + 575) and the mask entries [k - 4, k) are dropped. When truncation cut the header
// off, only three 271 tokens remain and k is taken to be the sequence length, so the last four prompt
// tokens are dropped instead. Both are the official behaviour, kept as it is: the DiT was trained on it.
#include <cstdint>
#include <vector>

#include "hyvideo/backend/backend.hpp"

namespace hyvideo {

struct I2VSplit {
    std::int64_t crop_start = 103;
    std::int64_t image_emb_start = 5, image_emb_end = 581, image_emb_len = 576;
    std::int64_t double_return_token_id = 271;
    std::int64_t interleave = 4;  // image_embed_interleave
};

struct I2VPromptEmbeds {
    Tensor prompt_embeds;  // [N, image rows / interleave + text rows, D] on the device
    Tensor prompt_mask;    // int64 [N, same] on the host
};

// hidden [N, S - 1 + P, D] (device), ids and mask int64 [N, S] (host: the text before the merge).
template <Backend B>
I2VPromptEmbeds split_i2v_prompt(const Tensor& hidden, const Tensor& ids, const Tensor& mask, const I2VSplit& s) {
    HYVIDEO_CHECK(ids.dim() == 2 && ids.dtype() == DType::i64 && mask.shape() == ids.shape(),
                  "split_i2v_prompt: ids and mask must be int64 [N, S] alike");
    const std::int64_t N = ids.size(0), S = ids.size(1), M = hidden.size(1);
    HYVIDEO_CHECK(hidden.dim() == 3 && hidden.size(0) == N && M == S - 1 + s.image_emb_len, "split_i2v_prompt: hidden ",
                  shape_str(hidden.shape()), " is not the merged sequence of ", S, " tokens and ", s.image_emb_len,
                  " image rows");
    HYVIDEO_CHECK(s.interleave >= 1, "split_i2v_prompt: image_embed_interleave ", s.interleave, " must be at least 1");
    HYVIDEO_CHECK(0 <= s.image_emb_start && s.image_emb_start < s.image_emb_end && s.image_emb_end <= M,
                  "split_i2v_prompt: image rows [", s.image_emb_start, ", ", s.image_emb_end, ") outside ", M);
    const std::int64_t text_start = s.crop_start - 1 + s.image_emb_len;
    const Tensor id = ids.contiguous(), m = mask.contiguous();
    const auto* pid = id.data<const std::int64_t>();
    const auto* pm = m.data<const std::int64_t>();

    // The image rows kept: image_emb_start, + interleave, ... (a strided slice [::interleave]).
    std::vector<std::int64_t> image_rows;
    for (std::int64_t r = s.image_emb_start; r < s.image_emb_end; r += s.interleave) image_rows.push_back(r);

    std::vector<Tensor> embeds;
    std::vector<std::vector<std::int64_t>> masks;
    for (std::int64_t n = 0; n < N; ++n) {
        std::vector<std::int64_t> returns;
        for (std::int64_t j = 0; j < S; ++j)
            if (pid[n * S + j] == s.double_return_token_id) returns.push_back(j);
        HYVIDEO_CHECK(returns.size() >= 3, "split_i2v_prompt: prompt ", n, " has ", returns.size(), " '\\n\\n' tokens (",
                      s.double_return_token_id, "); the I2V template has at least three");
        const std::int64_t k = returns.size() == 3 ? S : returns.back();
        const std::int64_t cut_begin = k - 1 + s.image_emb_len - 4, cut_end = k - 1 + s.image_emb_len;
        HYVIDEO_CHECK(text_start <= cut_begin && cut_end <= M && s.crop_start <= k - 4, "split_i2v_prompt: prompt ", n,
                      ": its assistant header at ", k, " lies inside the template's first ", s.crop_start, " tokens");
        const Tensor row = hidden.select(0, n);
        std::vector<Tensor> parts;
        for (std::int64_t r : image_rows) parts.push_back(row.slice(0, r, r + 1));
        parts.push_back(row.slice(0, text_start, cut_begin));
        parts.push_back(row.slice(0, cut_end, M));
        embeds.push_back(B::cat(parts, 0));

        std::vector<std::int64_t> mk(image_rows.size(), 1);
        for (std::int64_t j = s.crop_start; j < k - 4; ++j) mk.push_back(pm[n * S + j]);
        for (std::int64_t j = k; j < S; ++j) mk.push_back(pm[n * S + j]);
        masks.push_back(std::move(mk));
    }
    const auto L = static_cast<std::int64_t>(masks.front().size());
    for (std::int64_t n = 1; n < N; ++n)
        HYVIDEO_CHECK(static_cast<std::int64_t>(masks[static_cast<std::size_t>(n)].size()) == L,
                      "split_i2v_prompt: prompt ", n, " gives ", masks[static_cast<std::size_t>(n)].size(),
                      " rows, prompt 0 gives ", L, " (their assistant headers are at different places)");
    I2VPromptEmbeds out;
    out.prompt_embeds = B::cat(embeds, 0).reshape({N, L, hidden.size(2)});
    out.prompt_mask = Tensor::empty({N, L}, DType::i64);
    auto* o = out.prompt_mask.data<std::int64_t>();
    for (std::int64_t n = 0; n < N; ++n) std::copy(masks[static_cast<std::size_t>(n)].begin(), masks[static_cast<std::size_t>(n)].end(), o + n * L);
    return out;
}

}  // namespace hyvideo
