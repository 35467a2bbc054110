// One MMDoubleStreamBlock: image and text streams with their own weights, one joint attention.
//
// vec (the timestep, CLIP and guidance conditioning) modulates both streams: LayerNorm, then
// x·(1+scale)+shift, and each residual branch is gated. The block loads the official weight names;
// here they come from deterministic random initialisation.
#include <cmath>
#include <cstdio>

#include "hyvideo/backend/cpu/cpu.hpp"
#include "hyvideo/models/double_stream_block.hpp"
#include "hyvideo/nn/init.hpp"

using namespace hyvideo;

int main() {
    const std::int64_t hidden = 96, heads = 4, frames = 2, h = 3, w = 4, text = 6;
    MMDoubleStreamBlock<cpu> block(hidden, heads, 4.0);
    std::printf("MMDoubleStreamBlock(hidden %lld, %lld heads): %lld parameters, e.g.\n", static_cast<long long>(hidden),
                static_cast<long long>(heads), static_cast<long long>(parameter_count(block)));
    for (const auto& p : parameter_list(block, "double_blocks.0."))
        if (p.name.find("img_") != std::string::npos)
            std::printf("  %-40s %s\n", p.name.c_str(), shape_str(p.shape).c_str());
    init_weights(block, 5);

    BlockContext ctx;
    ctx.vec = Tensor::full({1, hidden}, 0.1f);
    ctx.rope = rope3d_tables({8, 8, 8}, {frames, h, w});
    const std::int64_t img_tokens = frames * h * w;
    ctx.layout = {img_tokens, {img_tokens + 4}};  // 4 of the 6 text tokens are valid
    Tensor img = Tensor::empty({1, img_tokens, hidden}), txt = Tensor::empty({1, text, hidden});
    for (std::int64_t i = 0; i < img.numel(); ++i) img.data<float>()[i] = std::cos(0.01f * static_cast<float>(i));
    for (std::int64_t i = 0; i < txt.numel(); ++i) txt.data<float>()[i] = std::sin(0.02f * static_cast<float>(i));

    const auto [img_out, txt_out] = block.forward(img, txt, ctx);
    std::printf("img %s -> %s, txt %s -> %s\n", shape_str(img.shape()).c_str(), shape_str(img_out.shape()).c_str(),
                shape_str(txt.shape()).c_str(), shape_str(txt_out.shape()).c_str());
    std::printf("first image token, first 4 channels: %.4f %.4f %.4f %.4f\n", img_out.item({0, 0, 0}),
                img_out.item({0, 0, 1}), img_out.item({0, 0, 2}), img_out.item({0, 0, 3}));
    return 0;
}
