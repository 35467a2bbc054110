#pragma once
// HYVideoDiffusionTransformer (official modules/models.py): the HunyuanVideo DiT, built from the
// block components. The structure is fixed at compile time by one parts bundle (attention, QK-norm,
// positional embedding, MLP activation, text input path; models/dit_parts.hpp, HunyuanVideo's choices
// by default); sizes come from HYVideoConfig, whose structural fields must agree with the parts.
//
//   vec = time_in(t) + vector_in(text_states_2) [+ guidance_in(guidance)]
//   img = img_in(x);  txt = txt_in(text_states, t, text_mask)
//   double blocks on (img, txt) -> single blocks on [img; txt] -> final_layer(img) -> unpatchify
#include <algorithm>
#include <array>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "hyvideo/models/config.hpp"
#include "hyvideo/models/dit_parts.hpp"
#include "hyvideo/models/double_stream_block.hpp"
#include "hyvideo/models/final_layer.hpp"
#include "hyvideo/models/single_stream_block.hpp"
#include "hyvideo/models/text_projection.hpp"
#include "hyvideo/models/token_refiner.hpp"
#include "hyvideo/nn/mlp_embedder.hpp"
#include "hyvideo/nn/patch_embed.hpp"
#include "hyvideo/nn/streamed_blocks.hpp"
#include "hyvideo/nn/timestep_embedder.hpp"

namespace hyvideo {

// The model's inputs, as the official forward takes them.
struct DiTInputs {
    Tensor x;              // [B, in_channels, T, H, W] latents (noisy; + image latent and mask for latent_concat)
    Tensor t;              // [B] timesteps, 1000·σ
    Tensor text_states;    // [B, L, text_states_dim]
    Tensor text_mask;      // [B, L] int64, 1 = valid (a prefix)
    Tensor text_states_2;  // [B, text_states_dim_2]
    Tensor guidance;       // [B], required when guidance_embed (embedded_cfg_scale · 1000)
    // Valid text tokens per sample (the ones of text_mask, a prefix), known on the host: what the
    // attention masks are made from. Given, the forward reads nothing back from the device; empty, the
    // forward counts them from text_mask (one download). The pipeline counts them once per run.
    std::vector<std::int64_t> text_lengths;
};

// The valid tokens per row of a host mask [B, L] of 0/1 values that mark a prefix (right padding), as
// the official get_cu_seqlens counts them. Throws on a value other than 0 or 1 or a mask that is not
// a prefix, naming `what`.
inline std::vector<std::int64_t> text_lengths_of(const Tensor& host_mask, const char* what = "text_mask") {
    HYVIDEO_CHECK(host_mask.defined() && host_mask.device() == Device::cpu && host_mask.dim() == 2, what,
                  " must be a [B, L] host tensor");
    const auto v = host_mask.to_vector();
    const std::int64_t rows = host_mask.size(0), L = host_mask.size(1);
    std::vector<std::int64_t> out;
    for (std::int64_t b = 0; b < rows; ++b) {
        std::int64_t n = 0;
        while (n < L && v[b * L + n] == 1.0f) ++n;
        for (std::int64_t l = n; l < L; ++l)
            HYVIDEO_CHECK(v[b * L + l] == 0.0f, what, "[", b, ", ", l, "] is ", v[b * L + l],
                          ": the mask must be 0/1 and mark a prefix of valid tokens (right padding)");
        out.push_back(n);
    }
    return out;
}

template <Backend B, class Parts = HunyuanVideoParts>
    requires DiTPartsFor<Parts, B>
struct HYVideoDiffusionTransformer {
    using backend = B;
    using parts = Parts;
    using DoubleBlock = MMDoubleStreamBlock<B, Parts>;
    using SingleBlock = MMSingleStreamBlock<B, Parts>;
    using TextInput = typename Parts::template TextInput<B>;

    HYVideoConfig config;
    PatchEmbed<B> img_in;
    TextInput txt_in;
    TimestepEmbedder<B> time_in;
    MLPEmbedder<B> vector_in;
    TimestepEmbedder<B> guidance_in;  // only with guidance_embed
    std::vector<DoubleBlock> double_blocks;
    std::vector<SingleBlock> single_blocks;
    FinalLayer<B> final_layer;

    // Where the blocks' weights are read from while they are streamed (load_streamed), and how.
    struct StreamedWeights {
        std::shared_ptr<const WeightSource> source;
        std::string prefix;
        DType matmul = DType::f32;  // what set_matmul_dtype sets for the held weights
        BlockPrefetch prefetch = BlockPrefetch::none;  // may be changed between forwards
        typename B::Stream loader_stream{};            // the prefetching loader's backend stream
        // Reading and waiting time summed over every forward since load_streamed (a statistic: forwards
        // that run at the same time add to it unsynchronised).
        mutable StreamedTimes times;
    };
    std::optional<StreamedWeights> streamed;
    // The blocks' attention operands (B::attention): bf16 once the matrices are bf16 (set_matmul_dtype,
    // load_weights or load_streamed with matmul bf16), as the official model runs; set it back to f32
    // afterwards to keep bf16 GEMMs with f32 attention.
    DType attention_operands = DType::f32;

    // `cfg` with the structural fields this model type's parts stand for written in: how a preset
    // becomes the configuration of a variant, e.g. Variant model(Variant::structured(preset)).
    static HYVideoConfig structured(const HYVideoConfig& cfg) { return structured_config<Parts, B>(cfg); }

    // Builds the structure without touching weight memory: parameter_list() of a fresh model is the
    // checkpoint's manifest, and load_weights() fills it. `cfg` must be valid and its structural fields
    // (qk_norm, qk_norm_type, mlp_act_type, text_projection) those of the parts.
    explicit HYVideoDiffusionTransformer(const HYVideoConfig& cfg)
        : config(checked(cfg)), img_in(cfg.patch_size, cfg.in_channels, cfg.hidden_size), txt_in(make_text_in(cfg)),
          time_in(cfg.hidden_size), vector_in(cfg.text_states_dim_2, cfg.hidden_size), guidance_in(cfg.hidden_size),
          final_layer(cfg.hidden_size, cfg.patch_size, cfg.out_channels) {
        for (std::int64_t i = 0; i < cfg.mm_double_blocks_depth; ++i)
            double_blocks.emplace_back(cfg.hidden_size, cfg.heads_num, cfg.mlp_width_ratio, cfg.qkv_bias);
        for (std::int64_t i = 0; i < cfg.mm_single_blocks_depth; ++i)
            single_blocks.emplace_back(cfg.hidden_size, cfg.heads_num, cfg.mlp_width_ratio);
    }

    template <class V>
    void parameters(const std::string& prefix, V&& visit) {
        img_in.parameters(prefix + "img_in.", visit);
        txt_in.parameters(prefix + "txt_in.", visit);
        time_in.parameters(prefix + "time_in.", visit);
        vector_in.parameters(prefix + "vector_in.", visit);
        if (config.guidance_embed) guidance_in.parameters(prefix + "guidance_in.", visit);
        for (std::size_t i = 0; i < double_blocks.size(); ++i)
            double_blocks[i].parameters(prefix + "double_blocks." + std::to_string(i) + ".", visit);
        for (std::size_t i = 0; i < single_blocks.size(); ++i)
            single_blocks[i].parameters(prefix + "single_blocks." + std::to_string(i) + ".", visit);
        final_layer.parameters(prefix + "final_layer.", visit);
    }

    // Loads the model from `source` with its blocks streamed: everything but the double and single
    // blocks is loaded now, and each block is loaded when the forward reaches it, converted to its
    // compute dtype, and released after it. The blocks' weights (99.6 % of the 13B model) therefore
    // stay in the source as stored (a mapped checkpoint: bf16, or fp8 dequantised block by block) and
    // a forward holds one block's converted weights at a time, where load_weights would hold all of
    // them (13B in f32: 51 GB). After each block the source's mapped pages are released from the
    // process (WeightSource::release_pages; they stay in the page cache), so the mapped file does not
    // become resident as a whole either. Checks the whole source strictly first, reading no weight. The
    // source must be shared (Checkpoint::shared_weights()) because the model keeps reading it. With
    // BlockPrefetch::next_block the next block is read on a loader thread while the current one
    // computes (nn/streamed_blocks.hpp): the same results, two blocks' weights in memory at a time.
    void load_streamed(std::shared_ptr<const WeightSource> source, const std::string& prefix = "",
                       DType matmul = DType::f32, BlockPrefetch prefetch = BlockPrefetch::none) {
        HYVIDEO_CHECK(source, "load_streamed: no weight source");
        check_weights_strict(*this, *source, prefix);
        const std::string dbl = prefix + "double_blocks.", sgl = prefix + "single_blocks.";
        module_detail::load_parameters(*this, *source, prefix, matmul, [&](const std::string& name) {
            return !name.starts_with(dbl) && !name.starts_with(sgl);
        });
        // Drop any weights the blocks held from an earlier load.
        for (auto& blk : double_blocks) blk.parameters("", [](const std::string&, const Shape&, Tensor& slot) { slot = {}; });
        for (auto& blk : single_blocks) blk.parameters("", [](const std::string&, const Shape&, Tensor& slot) { slot = {}; });
        streamed = StreamedWeights{std::move(source), prefix, matmul, prefetch, B::new_stream(), {}};
        module_detail::note_matmul_dtype(*this, matmul);
    }

    // Latent grid after patching: (T/pt, H/ph, W/pw), which is also the RoPE grid.
    std::array<std::int64_t, 3> token_grid(const Shape& x_shape) const {
        return {x_shape[2] / config.patch_size[0], x_shape[3] / config.patch_size[1], x_shape[4] / config.patch_size[2]};
    }

    // The RoPE tables for a latent of shape [B, C, T, H, W] (official get_rotary_pos_embed).
    RopeTables rope_tables(const Shape& x_shape) const {
        const auto g = token_grid(x_shape);
        const RopeTables host = rope3d_tables(config.rope_dim_list, {g[0], g[1], g[2]}, config.rope_theta);
        return {B::upload(host.cos), B::upload(host.sin)};
    }

    // The velocity prediction [B, out_channels, T, H, W].
    Tensor forward(const DiTInputs& in) const { return forward(in, rope_tables(in.x.shape())); }

    Tensor forward(const DiTInputs& in, const RopeTables& rope) const {
        ForwardState s = embed(in, rope);
        run_double_blocks(s, 0, double_blocks.size());
        run_single_blocks(s);
        return output(s);
    }

    // ---- the forward in stages, for policies that skip blocks (pipelines/step_cache.hpp) ----------------
    // forward() is embed, the double blocks, the single blocks, output; a step cache runs the stages
    // itself and may replace the blocks' effect on the image tokens by a cached residual.
    struct ForwardState {
        BlockContext ctx;
        Tensor img, txt;  // [B, Li, hidden], [B, Lt, hidden]: after the embedders, then after each block run
        std::array<std::int64_t, 3> grid{};
    };

    // The embedders: the conditioning vector, the image and text tokens, the token layout.
    ForwardState embed(const DiTInputs& in, const RopeTables& rope) const {
        check_inputs(in);
        const std::int64_t N = in.x.size(0);
        ForwardState s;
        s.grid = token_grid(in.x.shape());
        BlockContext& ctx = s.ctx;
        const Tensor clip = vector_in.forward(in.text_states_2);
        ctx.vec = B::add(time_in.forward(in.t), clip);
        if (config.i2v_condition_type == I2VConditionType::token_replace) {
            // The first latent frame is the clean image: its tokens are modulated as at t = 0, and
            // without the guidance term (HunyuanVideo-I2V).
            ctx.vec_tr = B::add(time_in.forward(B::zeros({N})), clip);
            ctx.tr_tokens = s.grid[1] * s.grid[2];
        }
        if (config.guidance_embed) ctx.vec = B::add(ctx.vec, guidance_in.forward(in.guidance));

        const std::vector<std::int64_t> text_lengths =
            in.text_lengths.empty() ? text_lengths_of(B::download(in.text_mask)) : in.text_lengths;
        s.img = img_in.forward(in.x);
        s.txt = config.use_attention_mask ? txt_in.forward(in.text_states, in.t, in.text_mask, text_lengths)
                                          : txt_in.forward(in.text_states, in.t, Tensor{});
        // Padded text tokens never reach an image token: the varlen attention keeps them among
        // themselves, and the final layer reads the image tokens only. The blocks therefore run on the
        // text up to the longest valid prompt of the batch, which gives the official velocity with less
        // work (at 256x256x33 a 40-token prompt leaves 216 of 2,560 tokens padding). An attention part
        // that does not claim this (FullAttention lets padding through) gets every token.
        if constexpr (attention_keeps_padding_apart<typename Parts::Attention>) {
            const std::int64_t longest =
                text_lengths.empty() ? s.txt.size(1) : *std::max_element(text_lengths.begin(), text_lengths.end());
            const std::int64_t keep = std::max<std::int64_t>(longest, 1);
            if (keep < s.txt.size(1)) s.txt = s.txt.slice(1, 0, keep);
        }
        const std::int64_t Li = s.img.size(1);
        HYVIDEO_CHECK(rope.cos.defined() && rope.cos.size(0) == Li, "RoPE tables for ",
                      rope.cos.defined() ? rope.cos.size(0) : 0, " tokens, the latent has ", Li);
        ctx.rope = rope;
        ctx.layout = token_layout(text_lengths, Li);
        ctx.attention_operands = attention_operands;
        return s;
    }

    // Double blocks [begin, end) on (img, txt).
    void run_double_blocks(ForwardState& s, std::size_t begin, std::size_t end) const {
        end = std::min(end, double_blocks.size());
        const auto run = [&](const DoubleBlock& blk) { std::tie(s.img, s.txt) = blk.forward(s.img, s.txt, s.ctx); };
        if (streamed)
            run_streamed(double_blocks, "double_blocks.", begin, end, run);
        else
            for (std::size_t i = begin; i < end; ++i) run(double_blocks[i]);
    }

    // Every single block on [img; txt], split back into img and txt.
    void run_single_blocks(ForwardState& s) const {
        const std::int64_t Li = s.img.size(1), L = Li + s.txt.size(1);
        Tensor x = B::cat({s.img, s.txt}, 1);
        const auto run = [&](const SingleBlock& blk) { x = blk.forward(x, s.ctx); };
        if (streamed)
            run_streamed(single_blocks, "single_blocks.", 0, single_blocks.size(), run);
        else
            for (const SingleBlock& blk : single_blocks) run(blk);
        s.img = x.slice(1, 0, Li);
        s.txt = x.slice(1, Li, L);
    }

    // The final layer on the image tokens, unpatchified: the velocity [B, out_channels, T, H, W].
    Tensor output(const ForwardState& s) const {
        const Tensor y = final_layer.forward(s.img, s.ctx.vec);
        return unpatchify<B>(y, config.out_channels, s.grid, config.patch_size);
    }

    // The first double block's modulated image input, LayerNorm(img)·(1 + scale1) + shift1 (the signal
    // TeaCache compares between steps), for the state after embed(). Streamed, only the block's img_mod
    // is read for it.
    Tensor first_block_modulated_input(const ForwardState& s) const {
        HYVIDEO_CHECK(!double_blocks.empty(), "first_block_modulated_input: the model has no double block");
        const DoubleBlock& first = double_blocks.front();
        const auto im = (streamed ? stream_in(first.img_mod, "double_blocks.0.img_mod.") : first.img_mod).forward(s.ctx.vec);
        return B::modulate(first.img_norm1.forward(s.img), im[0], im[1]);
    }

    // Valid tokens per sample: all image tokens plus the valid text (official get_cu_seqlens).
    static TokenLayout token_layout(const std::vector<std::int64_t>& text_lengths, std::int64_t img_len) {
        TokenLayout layout{img_len, {}};
        for (std::int64_t n : text_lengths) layout.valid_len.push_back(img_len + n);
        return layout;
    }

private:
    // A copy of a block (or part of one), which holds no weights while streamed, with its weights read
    // from the stream under `name` ("double_blocks.3.").
    template <class Module>
    Module stream_in(const Module& structure, const std::string& name) const {
        Module blk = structure;
        load_weights(blk, *streamed->source, streamed->prefix + name, streamed->matmul);
        return blk;
    }

    // run(block) for blocks [begin, end) of `blocks`, each streamed in under `kind` + index (the
    // prefetch, the timing and the page release: nn/streamed_blocks.hpp).
    template <class Block, class Run>
    void run_streamed(const std::vector<Block>& blocks, const std::string& kind, std::size_t begin, std::size_t end,
                      Run&& run) const {
        run_streamed_blocks<B>(
            begin, end, streamed->prefetch, streamed->loader_stream, streamed->times,
            [&](std::size_t i) { return stream_in(blocks[i], kind + std::to_string(i) + "."); }, run,
            [&] { streamed->source->release_pages(); });
    }

    // Checked before any member is built, so a mismatch allocates nothing.
    static const HYVideoConfig& checked(const HYVideoConfig& cfg) {
        cfg.validate();
        check_structure<Parts, B>(cfg);
        return cfg;
    }

    // A text input built as the token refiner is (sizes, depth, MLP ratio, QKV bias) or as a projection is.
    static TextInput make_text_in(const HYVideoConfig& cfg) {
        if constexpr (std::is_constructible_v<TextInput, std::int64_t, std::int64_t, std::int64_t, std::int64_t, double, bool>)
            return TextInput(cfg.text_states_dim, cfg.hidden_size, cfg.heads_num, cfg.refiner_depth, cfg.mlp_width_ratio,
                             cfg.qkv_bias);
        else
            return TextInput(cfg.text_states_dim, cfg.hidden_size);
    }

    void check_inputs(const DiTInputs& in) const {
        HYVIDEO_CHECK(in.x.defined() && in.x.dim() == 5 && in.x.size(1) == config.in_channels,
                      "DiT input x must be [B, ", config.in_channels, ", T, H, W], got ",
                      in.x.defined() ? shape_str(in.x.shape()) : "nothing");
        const std::int64_t N = in.x.size(0);
        const auto g = token_grid(in.x.shape());
        HYVIDEO_CHECK(g[0] > 0 && g[1] > 0 && g[2] > 0 && in.x.size(3) % config.patch_size[1] == 0 &&
                          in.x.size(4) % config.patch_size[2] == 0,
                      "latent ", shape_str(in.x.shape()), " does not divide into patches ",
                      shape_str({config.patch_size.begin(), config.patch_size.end()}));
        HYVIDEO_CHECK(in.t.defined() && in.t.shape() == Shape{N}, "t must be [", N, "]");
        HYVIDEO_CHECK(in.text_states.defined() && in.text_states.dim() == 3 && in.text_states.size(0) == N &&
                          in.text_states.size(2) == config.text_states_dim,
                      "text_states must be [", N, ", L, ", config.text_states_dim, "], got ",
                      in.text_states.defined() ? shape_str(in.text_states.shape()) : "nothing");
        HYVIDEO_CHECK(in.text_mask.defined() && in.text_mask.shape() == (Shape{N, in.text_states.size(1)}),
                      "text_mask must be [", N, ", ", in.text_states.size(1), "]");
        HYVIDEO_CHECK(in.text_lengths.empty() || static_cast<std::int64_t>(in.text_lengths.size()) == N,
                      "text_lengths must give one length per sample (", N, "), got ", in.text_lengths.size());
        for (std::int64_t n : in.text_lengths)
            HYVIDEO_CHECK(n >= 0 && n <= in.text_states.size(1), "text_lengths: ", n, " valid tokens of ",
                          in.text_states.size(1));
        HYVIDEO_CHECK(in.text_states_2.defined() && in.text_states_2.shape() == (Shape{N, config.text_states_dim_2}),
                      "text_states_2 must be [", N, ", ", config.text_states_dim_2, "]");
        if (config.guidance_embed)
            HYVIDEO_CHECK(in.guidance.defined() && in.guidance.shape() == Shape{N},
                          "this model embeds guidance: guidance must be [", N, "] (embedded_cfg_scale·1000)");
    }
};

}  // namespace hyvideo
