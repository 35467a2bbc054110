#pragma once
// Golden cases of the DiT's parts: `token_refiner` (SingleTokenRefiner), `double_block`
// (MMDoubleStreamBlock) and `single_block` (MMSingleStreamBlock), with 3D RoPE and padded text.
#include <cmath>

#include "hyvideo/golden/case_result.hpp"
#include "hyvideo/golden/fixture.hpp"
#include "hyvideo/models/hunyuan_video.hpp"

namespace hyvideo::golden {

namespace detail {
// The block config of a fixture must be HunyuanVideo's structure: anything else would silently
// run a different model.
inline void require_hunyuan_block(const nlohmann::json& c) {
    if (c.contains("qk_norm"))
        HYVIDEO_CHECK(Fixture::get<bool>(c, "qk_norm") && Fixture::get<std::string>(c, "qk_norm_type") == "rms",
                      "fixture block uses a QK-norm other than RMS");
    if (c.contains("mlp_act_type"))
        HYVIDEO_CHECK(Fixture::get<std::string>(c, "mlp_act_type") == "gelu_tanh", "fixture block MLP is not gelu_tanh");
}

// Defined rows of a [B, L_img + L_txt] joint sequence: every image token and the valid text.
inline Tensor joint_row_mask(std::int64_t img_len, const Tensor& text_mask) {
    const std::int64_t N = text_mask.size(0), Lt = text_mask.size(1);
    const auto m = text_mask.to_vector();
    Tensor out = Tensor::full({N, img_len + Lt}, 1.0f);
    for (std::int64_t b = 0; b < N; ++b)
        for (std::int64_t l = 0; l < Lt; ++l) out.data<float>()[b * (img_len + Lt) + img_len + l] = m[b * Lt + l];
    return out;
}
}  // namespace detail

template <Backend B>
CaseResult run_token_refiner(const Fixture& f) {
    const auto& c = f.config();
    HYVIDEO_CHECK(Fixture::get<std::string>(c, "act") == "silu", "token_refiner: act must be silu");
    SingleTokenRefiner<B> refiner(Fixture::get<std::int64_t>(c, "in_channels"), Fixture::get<std::int64_t>(c, "hidden_size"),
                                  Fixture::get<std::int64_t>(c, "heads_num"), Fixture::get<std::int64_t>(c, "depth"),
                                  Fixture::get<double>(c, "mlp_width_ratio"), Fixture::get<bool>(c, "qkv_bias"));
    load_weights_strict(refiner, f.params(), "txt_in.");
    CaseResult r;
    r.outputs["y"] = B::download(
        refiner.forward(B::upload(f.input("x")), B::upload(f.input("t")), B::upload(f.input("mask"))));
    return r;
}

template <Backend B>
CaseResult run_double_block(const Fixture& f) {
    const auto& c = f.config();
    detail::require_hunyuan_block(c);
    MMDoubleStreamBlock<B> block(Fixture::get<std::int64_t>(c, "hidden_size"), Fixture::get<std::int64_t>(c, "heads_num"),
                                 Fixture::get<double>(c, "mlp_width_ratio"),
                                 c.contains("qkv_bias") ? Fixture::get<bool>(c, "qkv_bias") : true);
    load_weights_strict(block, f.params());
    const Tensor img = B::upload(f.input("img")), txt = B::upload(f.input("txt"));
    const Tensor mask = f.input("text_mask");
    BlockContext ctx;
    ctx.vec = B::upload(f.input("vec"));
    ctx.rope = {B::upload(f.input("freqs_cos")), B::upload(f.input("freqs_sin"))};
    HYVIDEO_CHECK(mask.dim() == 2 && mask.size(1) == txt.size(1), "double_block: text_mask ", shape_str(mask.shape()), " for ",
                  txt.size(1), " text tokens");
    ctx.layout = HYVideoDiffusionTransformer<B>::token_layout(text_lengths_of(mask), img.size(1));
    const auto [img_out, txt_out] = block.forward(img, txt, ctx);
    CaseResult r;
    r.outputs["img"] = B::download(img_out);
    r.outputs["txt"] = B::download(txt_out);
    r.row_masks["txt"] = mask.to(DType::f32);  // padded text rows are undefined in the reference
    return r;
}

template <Backend B>
CaseResult run_single_block(const Fixture& f) {
    const auto& c = f.config();
    detail::require_hunyuan_block(c);
    MMSingleStreamBlock<B> block(Fixture::get<std::int64_t>(c, "hidden_size"), Fixture::get<std::int64_t>(c, "heads_num"),
                                 Fixture::get<double>(c, "mlp_width_ratio"));
    load_weights_strict(block, f.params());
    const Tensor x = B::upload(f.input("x"));
    const Tensor mask = f.input("text_mask");
    const auto img_len = static_cast<std::int64_t>(f.input("img_len").to_vector().at(0));
    BlockContext ctx;
    ctx.vec = B::upload(f.input("vec"));
    ctx.rope = {B::upload(f.input("freqs_cos")), B::upload(f.input("freqs_sin"))};
    HYVIDEO_CHECK(mask.dim() == 2 && mask.size(1) == x.size(1) - img_len, "single_block: text_mask ", shape_str(mask.shape()),
                  " for ", x.size(1) - img_len, " text tokens");
    ctx.layout = HYVideoDiffusionTransformer<B>::token_layout(text_lengths_of(mask), img_len);
    CaseResult r;
    r.outputs["x"] = B::download(block.forward(x, ctx));
    r.row_masks["x"] = detail::joint_row_mask(img_len, mask);
    return r;
}

}  // namespace hyvideo::golden
