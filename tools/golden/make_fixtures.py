#!/usr/bin/env python3
"""Writes golden fixtures (tests/data/golden/README.md) from diffusers' HunyuanVideo implementation.

    python tools/golden/make_fixtures.py --source diffusers --case CASE --seed N --out FILE.safetensors

CASE is one of double_block, single_block, transformer_tiny, vae_tiny, pipeline_tiny. The file has
exactly the layout of the committed fixture of that case (config keys, input/output names, metadata),
so `build/bin/hyvideo golden FILE` runs it; the seed picks the weights, the inputs AND the shapes
(token grid, text length, text masks, video size), so every seed is a new test.

The reference code is diffusers' (pip install -r tools/golden/requirements.txt):
HunyuanVideoTransformerBlock, HunyuanVideoSingleTransformerBlock, HunyuanVideoTransformer3DModel,
AutoencoderKLHunyuanVideo and FlowMatchEulerDiscreteScheduler, in fp32 on the CPU. The weights are
written under the OFFICIAL HunyuanVideo state_dict names (what the C++ loads): diffusers' names are
mapped back with the rules of include/hyvideo/checkpoint/diffusers_names.hpp (mirrored in DIT_RULES below).

Where diffusers' conventions differ from the official code, the script bridges them; each bridge is
marked "BRIDGE" below. In short:
  * names: diffusers splits the fused qkv (and the single block's linear1 = q|k|v|mlp) and renames the
    token refiner / embedders; the final layer's modulation is (scale, shift) in diffusers and
    (shift, scale) officially. Mapped back when the params are written.
  * text mask: diffusers turns the mask into a key mask from its COUNT of ones (it assumes the valid
    tokens come first, as the official flash-attn varlen call does), so masks here are always
    prefixes. Padded query rows then attend to valid keys in diffusers; the official code leaves them
    undefined, and the fixtures mark them so (they are not compared).
  * RoPE: diffusers' HunyuanVideoRotaryPosEmbed gives the official real (cos, sin) tables [S, head_dim]
    with interleaved pairs; for the block cases it is run on a dummy latent of the token-grid size.
  * guidance: both codes embed the value they are given; the official pipeline passes
    embedded_guidance_scale * 1000 (the fixtures: in fp32, 6000, not the bf16 6016).
  * VAE: diffusers' AutoencoderKLHunyuanVideo has the official names; its "framewise" encode/decode
    (temporal tiling above 16 frames / 4 latent frames) is on by default and is switched off here,
    since the fixture pins the untiled model.
  * pipeline: diffusers' HunyuanVideoPipeline needs the text encoders, runs true CFG as two
    forwards and post-processes the video itself, so the loop is written here from the official
    pipeline's semantics (see make_pipeline_tiny); diffusers' scheduler provides sigmas and steps.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import random
import re
import sys
from collections import OrderedDict

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from fixture_io import FixtureWriter, randomize_  # noqa: E402

CASES = ("double_block", "single_block", "transformer_tiny", "vae_tiny", "pipeline_tiny")

# ---- diffusers -> official names (mirrors include/hyvideo/checkpoint/diffusers_names.hpp rule for rule) --------
# (diffusers template, official template, part, parts, combine); {i} = block index, {s} = weight|bias.
R, CAT, SWAP = "rename", "concat", "swap_halves"
_TR = "context_embedder.token_refiner.refiner_blocks.{i}"
_OR = "txt_in.individual_token_refiner.blocks.{i}"
DIT_RULES = [
    ("x_embedder.proj.{s}", "img_in.proj.{s}", 0, 1, R),
    ("context_embedder.proj_in.{s}", "txt_in.input_embedder.{s}", 0, 1, R),
    ("context_embedder.time_text_embed.timestep_embedder.linear_1.{s}", "txt_in.t_embedder.mlp.0.{s}", 0, 1, R),
    ("context_embedder.time_text_embed.timestep_embedder.linear_2.{s}", "txt_in.t_embedder.mlp.2.{s}", 0, 1, R),
    ("context_embedder.time_text_embed.text_embedder.linear_1.{s}", "txt_in.c_embedder.linear_1.{s}", 0, 1, R),
    ("context_embedder.time_text_embed.text_embedder.linear_2.{s}", "txt_in.c_embedder.linear_2.{s}", 0, 1, R),
    (f"{_TR}.norm1.{{s}}", f"{_OR}.norm1.{{s}}", 0, 1, R),
    (f"{_TR}.norm2.{{s}}", f"{_OR}.norm2.{{s}}", 0, 1, R),
    (f"{_TR}.attn.to_q.{{s}}", f"{_OR}.self_attn_qkv.{{s}}", 0, 3, CAT),
    (f"{_TR}.attn.to_k.{{s}}", f"{_OR}.self_attn_qkv.{{s}}", 1, 3, CAT),
    (f"{_TR}.attn.to_v.{{s}}", f"{_OR}.self_attn_qkv.{{s}}", 2, 3, CAT),
    (f"{_TR}.attn.to_out.0.{{s}}", f"{_OR}.self_attn_proj.{{s}}", 0, 1, R),
    (f"{_TR}.ff.net.0.proj.{{s}}", f"{_OR}.mlp.fc1.{{s}}", 0, 1, R),
    (f"{_TR}.ff.net.2.{{s}}", f"{_OR}.mlp.fc2.{{s}}", 0, 1, R),
    # the refiner's adaLN gives two gates only: no halves to swap
    (f"{_TR}.norm_out.linear.{{s}}", f"{_OR}.adaLN_modulation.1.{{s}}", 0, 1, R),
    ("time_text_embed.timestep_embedder.linear_1.{s}", "time_in.mlp.0.{s}", 0, 1, R),
    ("time_text_embed.timestep_embedder.linear_2.{s}", "time_in.mlp.2.{s}", 0, 1, R),
    ("time_text_embed.guidance_embedder.linear_1.{s}", "guidance_in.mlp.0.{s}", 0, 1, R),
    ("time_text_embed.guidance_embedder.linear_2.{s}", "guidance_in.mlp.2.{s}", 0, 1, R),
    ("time_text_embed.text_embedder.linear_1.{s}", "vector_in.in_layer.{s}", 0, 1, R),
    ("time_text_embed.text_embedder.linear_2.{s}", "vector_in.out_layer.{s}", 0, 1, R),
    ("transformer_blocks.{i}.norm1.linear.{s}", "double_blocks.{i}.img_mod.linear.{s}", 0, 1, R),
    ("transformer_blocks.{i}.norm1_context.linear.{s}", "double_blocks.{i}.txt_mod.linear.{s}", 0, 1, R),
    ("transformer_blocks.{i}.attn.to_q.{s}", "double_blocks.{i}.img_attn_qkv.{s}", 0, 3, CAT),
    ("transformer_blocks.{i}.attn.to_k.{s}", "double_blocks.{i}.img_attn_qkv.{s}", 1, 3, CAT),
    ("transformer_blocks.{i}.attn.to_v.{s}", "double_blocks.{i}.img_attn_qkv.{s}", 2, 3, CAT),
    ("transformer_blocks.{i}.attn.add_q_proj.{s}", "double_blocks.{i}.txt_attn_qkv.{s}", 0, 3, CAT),
    ("transformer_blocks.{i}.attn.add_k_proj.{s}", "double_blocks.{i}.txt_attn_qkv.{s}", 1, 3, CAT),
    ("transformer_blocks.{i}.attn.add_v_proj.{s}", "double_blocks.{i}.txt_attn_qkv.{s}", 2, 3, CAT),
    ("transformer_blocks.{i}.attn.norm_q.{s}", "double_blocks.{i}.img_attn_q_norm.{s}", 0, 1, R),
    ("transformer_blocks.{i}.attn.norm_k.{s}", "double_blocks.{i}.img_attn_k_norm.{s}", 0, 1, R),
    ("transformer_blocks.{i}.attn.norm_added_q.{s}", "double_blocks.{i}.txt_attn_q_norm.{s}", 0, 1, R),
    ("transformer_blocks.{i}.attn.norm_added_k.{s}", "double_blocks.{i}.txt_attn_k_norm.{s}", 0, 1, R),
    ("transformer_blocks.{i}.attn.to_out.0.{s}", "double_blocks.{i}.img_attn_proj.{s}", 0, 1, R),
    ("transformer_blocks.{i}.attn.to_add_out.{s}", "double_blocks.{i}.txt_attn_proj.{s}", 0, 1, R),
    ("transformer_blocks.{i}.ff.net.0.proj.{s}", "double_blocks.{i}.img_mlp.fc1.{s}", 0, 1, R),
    ("transformer_blocks.{i}.ff.net.2.{s}", "double_blocks.{i}.img_mlp.fc2.{s}", 0, 1, R),
    ("transformer_blocks.{i}.ff_context.net.0.proj.{s}", "double_blocks.{i}.txt_mlp.fc1.{s}", 0, 1, R),
    ("transformer_blocks.{i}.ff_context.net.2.{s}", "double_blocks.{i}.txt_mlp.fc2.{s}", 0, 1, R),
    # official linear1 = [q | k | v | mlp input], split four ways by diffusers
    ("single_transformer_blocks.{i}.attn.to_q.{s}", "single_blocks.{i}.linear1.{s}", 0, 4, CAT),
    ("single_transformer_blocks.{i}.attn.to_k.{s}", "single_blocks.{i}.linear1.{s}", 1, 4, CAT),
    ("single_transformer_blocks.{i}.attn.to_v.{s}", "single_blocks.{i}.linear1.{s}", 2, 4, CAT),
    ("single_transformer_blocks.{i}.proj_mlp.{s}", "single_blocks.{i}.linear1.{s}", 3, 4, CAT),
    ("single_transformer_blocks.{i}.proj_out.{s}", "single_blocks.{i}.linear2.{s}", 0, 1, R),
    ("single_transformer_blocks.{i}.attn.norm_q.{s}", "single_blocks.{i}.q_norm.{s}", 0, 1, R),
    ("single_transformer_blocks.{i}.attn.norm_k.{s}", "single_blocks.{i}.k_norm.{s}", 0, 1, R),
    ("single_transformer_blocks.{i}.norm.linear.{s}", "single_blocks.{i}.modulation.linear.{s}", 0, 1, R),
    ("proj_out.{s}", "final_layer.linear.{s}", 0, 1, R),
    # BRIDGE: diffusers' AdaLayerNormContinuous orders its modulation (scale, shift), FinalLayer (shift, scale)
    ("norm_out.linear.{s}", "final_layer.adaLN_modulation.1.{s}", 0, 1, SWAP),
]


def _regex(tmpl):
    return re.compile("^" + re.escape(tmpl).replace(r"\{i\}", r"(?P<i>[1-9][0-9]*|0)")
                      .replace(r"\{s\}", r"(?P<s>weight|bias)") + "$")


_COMPILED = [(_regex(d), o, part, parts, comb) for d, o, part, parts, comb in DIT_RULES]


def official_dit_state_dict(diffusers_sd):
    """diffusers HunyuanVideoTransformer3DModel names -> official HYVideoDiffusionTransformer names."""
    pieces = {}  # official name -> {part: tensor}
    meta = {}
    for name, t in diffusers_sd.items():
        for rx, official, part, parts, comb in _COMPILED:
            m = rx.match(name)
            if not m:
                continue
            off = official.replace("{i}", m.groupdict().get("i") or "").replace("{s}", m.group("s"))
            if comb == SWAP:
                a, b = t.chunk(2, dim=0)
                t = torch.cat([b, a], dim=0)
            pieces.setdefault(off, {})[part] = t
            meta[off] = parts
            break
        else:
            raise KeyError(f"no official name for diffusers tensor {name}")
    out = OrderedDict()
    for off in sorted(pieces):
        parts = pieces[off]
        assert sorted(parts) == list(range(meta[off])), f"{off}: parts {sorted(parts)} of {meta[off]}"
        out[off] = torch.cat([parts[k] for k in range(meta[off])], dim=0) if meta[off] > 1 else parts[0]
    return out


def block_state_dict(block, diffusers_prefix, official_prefix):
    """A standalone block's weights under the official names, without the block prefix."""
    sd = official_dit_state_dict({diffusers_prefix + k: v for k, v in block.state_dict().items()})
    assert all(k.startswith(official_prefix) for k in sd), list(sd)[:3]
    return OrderedDict((k[len(official_prefix):], v) for k, v in sd.items())


# ---- shapes and inputs from the seed -----------------------------------------------------------------

def prefix_masks(rng, batch, length, full_first=False):
    """[batch, length] int64 masks whose ones come first (BRIDGE: the only masks both the official varlen
    attention and diffusers' count-based key mask read the same way). At least one row is padded."""
    rows = []
    for b in range(batch):
        n = length if (full_first and b == 0) else rng.randint(1, length)
        rows.append([1] * n + [0] * (length - n))
    if all(sum(r) == length for r in rows) and length > 1:
        n = rng.randint(1, length - 1)
        rows[-1] = [1] * n + [0] * (length - n)
    return torch.tensor(rows, dtype=torch.int64)


def key_mask(text_mask, img_len):
    """diffusers' attention mask for the joint sequence: [B, 1, 1, img_len + L] bool, True = attend.
    Built exactly as HunyuanVideoTransformer3DModel.forward builds it (from the count of valid text)."""
    B, L = text_mask.shape
    n = img_len + text_mask.sum(dim=1, dtype=torch.int)
    return (torch.arange(img_len + L)[None] < n[:, None])[:, None, None, :]


def rope_tables(rope_dim_list, rope_sizes, theta):
    """The official get_nd_rotary_pos_embed(use_real=True) tables, from diffusers' RoPE module."""
    from diffusers.models.transformers.transformer_hunyuan_video import HunyuanVideoRotaryPosEmbed
    rope = HunyuanVideoRotaryPosEmbed(patch_size=1, patch_size_t=1, rope_dim=list(rope_dim_list), theta=theta)
    cos, sin = rope(torch.zeros(1, 1, *rope_sizes))
    return cos.float().contiguous(), sin.float().contiguous()


def block_config(args, with_qkv_bias):
    c = {"hidden_size": args.hidden_size, "heads_num": args.heads_num, "mlp_width_ratio": 4.0,
         "mlp_act_type": "gelu_tanh", "qk_norm": True, "qk_norm_type": "rms"}
    if with_qkv_bias:
        c["qkv_bias"] = True  # diffusers' Attention(bias=True): the official qkv_bias
    return c


def default_rope_dims(head_dim):
    """A split of head_dim over (t, h, w), each even: [4, 6, 6] for 16 (the committed fixtures' split)."""
    t = 2 * round(head_dim / 8)
    hw = (head_dim - t) // 2
    return [head_dim - 2 * hw, hw, hw]


# ---- cases ---------------------------------------------------------------------------------------------

@torch.no_grad()
def make_block(args, single):
    from diffusers.models.transformers.transformer_hunyuan_video import (
        HunyuanVideoSingleTransformerBlock, HunyuanVideoTransformerBlock)
    rng, g = random.Random(args.seed), torch.Generator().manual_seed(args.seed)
    H, heads = args.hidden_size, args.heads_num
    head_dim = H // heads
    rope_dims = default_rope_dims(head_dim)
    rope_sizes = args.rope_sizes or [rng.randint(1, 3), rng.randint(2, 4), rng.randint(2, 5)]
    B, Lt = args.batch, args.text_len or rng.randint(3, 9)
    S = rope_sizes[0] * rope_sizes[1] * rope_sizes[2]

    cls = HunyuanVideoSingleTransformerBlock if single else HunyuanVideoTransformerBlock
    block = cls(heads, head_dim, 4.0, qk_norm="rms_norm").eval()
    randomize_(block, args.seed)

    text_mask = prefix_masks(rng, B, Lt, full_first=True)
    img = torch.randn(B, S, H, generator=g)
    txt = torch.randn(B, Lt, H, generator=g)
    vec = torch.randn(B, H, generator=g)
    cos, sin = rope_tables(rope_dims, rope_sizes, 256.0)
    mask = key_mask(text_mask, S)

    config = dict(block_config(args, with_qkv_bias=not single), rope_dim_list=rope_dims, rope_sizes=rope_sizes,
                  rope_theta=256.0)
    src = f" Generated by tools/golden/make_fixtures.py from diffusers {_diffusers_version()}."
    if single:
        img_out, txt_out = block(img, txt, vec, mask, (cos, sin))
        w = FixtureWriter("single_block", config, args.seed,
                          "x = cat(img, txt) along tokens; output rows of padded text tokens are undefined." + src)
        # official names: linear1 = cat(to_q, to_k, to_v, proj_mlp), linear2 = proj_out, modulation = norm
        w.add_params(block_state_dict(block, "single_transformer_blocks.0.", "single_blocks.0."))
        w.add_inputs(freqs_cos=cos, freqs_sin=sin, img_len=torch.tensor([S]), text_mask=text_mask, vec=vec,
                     x=torch.cat([img, txt], dim=1))
        w.add_outputs(x=torch.cat([img_out, txt_out], dim=1))
    else:
        img_out, txt_out = block(img, txt, vec, mask, (cos, sin))
        w = FixtureWriter("double_block", config, args.seed,
                          "output.txt is defined only where text_mask is 1; padded text tokens never reach image "
                          "or valid text tokens." + src)
        w.add_params(block_state_dict(block, "transformer_blocks.0.", "double_blocks.0."))
        w.add_inputs(freqs_cos=cos, freqs_sin=sin, img=img, text_mask=text_mask, txt=txt, vec=vec)
        w.add_outputs(img=img_out, txt=txt_out)
    return w


def dit_official_config(args):
    return {"patch_size": [1, 2, 2], "in_channels": args.latent_channels, "out_channels": args.latent_channels,
            "hidden_size": args.hidden_size, "heads_num": args.heads_num, "mlp_width_ratio": 4.0,
            "mlp_act_type": "gelu_tanh", "mm_double_blocks_depth": 2, "mm_single_blocks_depth": 2,
            "rope_dim_list": default_rope_dims(args.hidden_size // args.heads_num), "qkv_bias": True,
            "qk_norm": True, "qk_norm_type": "rms", "guidance_embed": True, "text_projection": "single_refiner",
            "use_attention_mask": True, "text_states_dim": 32, "text_states_dim_2": 24, "rope_theta": 256.0}


def diffusers_dit(c, seed):
    from diffusers import HunyuanVideoTransformer3DModel
    model = HunyuanVideoTransformer3DModel(
        in_channels=c["in_channels"], out_channels=c["out_channels"], num_attention_heads=c["heads_num"],
        attention_head_dim=c["hidden_size"] // c["heads_num"], num_layers=c["mm_double_blocks_depth"],
        num_single_layers=c["mm_single_blocks_depth"],
        num_refiner_layers=2,  # the official SingleTokenRefiner has depth 2 (not in the official config)
        mlp_ratio=c["mlp_width_ratio"], patch_size=c["patch_size"][1], patch_size_t=c["patch_size"][0],
        qk_norm="rms_norm", guidance_embeds=c["guidance_embed"], text_embed_dim=c["text_states_dim"],
        pooled_projection_dim=c["text_states_dim_2"], rope_theta=c["rope_theta"],
        rope_axes_dim=tuple(c["rope_dim_list"])).eval()
    return randomize_(model, seed)


def dit_forward(model, x, t, text_states, text_mask, text_states_2, guidance):
    # BRIDGE: the official forward(x, t, text_states, text_mask, text_states_2, guidance) is diffusers'
    # (hidden_states, timestep, encoder_hidden_states, encoder_attention_mask, pooled_projections, guidance).
    return model(hidden_states=x, timestep=t, encoder_hidden_states=text_states, encoder_attention_mask=text_mask,
                 pooled_projections=text_states_2, guidance=guidance, return_dict=False)[0]


@torch.no_grad()
def make_transformer_tiny(args):
    rng, g = random.Random(args.seed), torch.Generator().manual_seed(args.seed)
    c = dit_official_config(args)
    model = diffusers_dit(c, args.seed)
    B, Lt = args.batch, args.text_len or rng.randint(3, 9)
    T, Hl, Wl = args.latent_size or [rng.randint(1, 3), 2 * rng.randint(2, 5), 2 * rng.randint(2, 5)]
    x = torch.randn(B, c["in_channels"], T, Hl, Wl, generator=g)
    t = torch.tensor([rng.uniform(0.0, 1000.0) for _ in range(B)], dtype=torch.float32)
    # the guidance input is the pipeline's embedded_guidance_scale * 1000 (one value per sample)
    guidance = torch.tensor([1000.0 * rng.uniform(1.0, 8.0) for _ in range(B)], dtype=torch.float32)
    text_mask = prefix_masks(rng, B, Lt)
    text_states = torch.randn(B, Lt, c["text_states_dim"], generator=g)
    text_states_2 = torch.randn(B, c["text_states_dim_2"], generator=g)
    out = dit_forward(model, x, t, text_states, text_mask, text_states_2, guidance)
    w = FixtureWriter("transformer_tiny", c, args.seed,
                      "rope tables are computed from the latent shape (T, H/2, W/2) with theta 256; state_dict names "
                      "are the official checkpoint's. Generated by tools/golden/make_fixtures.py from diffusers "
                      f"{_diffusers_version()} (HunyuanVideoTransformer3DModel, names mapped back).")
    w.add_params(official_dit_state_dict(model.state_dict()))
    w.add_inputs(guidance=guidance, t=t, text_mask=text_mask, text_states=text_states, text_states_2=text_states_2,
                 x=x)
    w.add_outputs(x=out)
    return w


def vae_official_config(latent_channels):
    return {"in_channels": 3, "out_channels": 3, "down_block_types": ["DownEncoderBlockCausal3D"] * 4,
            "up_block_types": ["UpDecoderBlockCausal3D"] * 4, "block_out_channels": [8, 16, 16, 16],
            "layers_per_block": 1, "act_fn": "silu", "latent_channels": latent_channels, "norm_num_groups": 4,
            "sample_size": 32, "sample_tsize": 16, "scaling_factor": 0.476986, "time_compression_ratio": 4,
            "spatial_compression_ratio": 8, "mid_block_add_attention": True}


def diffusers_vae(c, seed):
    from diffusers import AutoencoderKLHunyuanVideo
    n = len(c["block_out_channels"])
    vae = AutoencoderKLHunyuanVideo(
        in_channels=c["in_channels"], out_channels=c["out_channels"], latent_channels=c["latent_channels"],
        down_block_types=("HunyuanVideoDownBlock3D",) * n, up_block_types=("HunyuanVideoUpBlock3D",) * n,
        block_out_channels=tuple(c["block_out_channels"]), layers_per_block=c["layers_per_block"],
        act_fn=c["act_fn"], norm_num_groups=c["norm_num_groups"], scaling_factor=c["scaling_factor"],
        spatial_compression_ratio=c["spatial_compression_ratio"],
        temporal_compression_ratio=c["time_compression_ratio"],
        mid_block_add_attention=c["mid_block_add_attention"]).eval()
    # BRIDGE: diffusers encodes/decodes "framewise" (temporal tiles) above 16 frames / 4 latent frames by
    # default; the official AutoencoderKLCausal3D, and these fixtures, are untiled unless asked.
    vae.use_tiling = False
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    return randomize_(vae, seed)


def vae_params(vae):
    # The diffusers VAE names are the official ones (include/hyvideo/checkpoint/diffusers_names.hpp); parameters only.
    names = {n for n, _ in vae.named_parameters()}
    return OrderedDict((k, v) for k, v in sorted(vae.state_dict().items()) if k in names)


@torch.no_grad()
def make_vae_tiny(args):
    rng, g = random.Random(args.seed), torch.Generator().manual_seed(args.seed)
    c = vae_official_config(4)
    vae = diffusers_vae(c, args.seed)
    F = args.frames or 1 + 4 * rng.randint(0, 3)
    assert F % 4 == 1, "vae_tiny: frames must be 1 + 4k"
    Hs, Ws = args.video_size or [8 * rng.randint(2, 5), 8 * rng.randint(2, 5)]
    video = torch.rand(1, 3, F, Hs, Ws, generator=g) * 2 - 1
    z = torch.randn(1, c["latent_channels"], (F - 1) // 4 + 1, Hs // 8, Ws // 8, generator=g)
    post = vae.encode(video).latent_dist  # DiagonalGaussianDistribution: logvar clamped to [-30, 20]
    decoded = vae.decode(z).sample  # z as is: no scaling_factor division
    w = FixtureWriter("vae_tiny", c, args.seed,
                      "no tiling; decode takes z as is (no scaling_factor division); logvar is clamped to [-30, 20]. "
                      f"Generated by tools/golden/make_fixtures.py from diffusers {_diffusers_version()} "
                      "(AutoencoderKLHunyuanVideo, framewise/tiling off).")
    w.add_params(vae_params(vae))
    w.add_inputs(video=video, z=z)
    w.add_outputs(decoded=decoded, logvar=post.logvar, mean=post.mean)
    return w


@torch.no_grad()
def make_pipeline_tiny(args):
    """The official text-to-video loop (hyvideo/diffusion/pipelines/pipeline_hunyuan_video.py), written
    out here. BRIDGE: diffusers' HunyuanVideoPipeline is not used: it needs the text encoders, runs true
    CFG as two separate forwards with its own guidance argument, and post-processes the video itself.
    What it shares with the official loop is used from diffusers: the DiT, the VAE and the scheduler.
      * sigmas: official FlowMatchDiscreteScheduler(shift, reverse=True) = shift(linspace(1, 0, n + 1));
        diffusers' FlowMatchEulerDiscreteScheduler(shift) given linspace(1, 0, n + 1)[:-1] applies the same
        shift and appends the terminal 0 (this is how diffusers' pipeline calls it); timesteps = 1000·sigma.
      * each step: latents += v · (sigma_{i+1} − sigma_i) (Euler), v from one DiT forward at t, with
        guidance = embedded_guidance_scale · 1000 in fp32.
      * 'cfg': one forward on the batch [neg, pos] (the official cat order), v = u + s (c − u).
      * video = clamp(decode(latents / scaling_factor) / 2 + 0.5, 0, 1), untiled.
    """
    from diffusers import FlowMatchEulerDiscreteScheduler
    rng, g = random.Random(args.seed), torch.Generator().manual_seed(args.seed)
    dc, vc = dit_official_config(args), vae_official_config(args.latent_channels)
    dit = diffusers_dit(dc, args.seed)
    vae = diffusers_vae(vc, args.seed + 1)
    steps, shift, scale, cfg = args.steps, args.flow_shift, args.embedded_guidance_scale, args.cfg_scale
    Lt = args.text_len or rng.randint(3, 9)
    T, Hl, Wl = args.latent_size or [rng.randint(1, 3), 2 * rng.randint(2, 4), 2 * rng.randint(2, 4)]
    latents0 = torch.randn(1, dc["in_channels"], T, Hl, Wl, generator=g)
    masks = prefix_masks(rng, 2, Lt)
    text_mask, neg_text_mask = masks[:1], masks[1:]
    text_states = torch.randn(1, Lt, dc["text_states_dim"], generator=g)
    text_states_2 = torch.randn(1, dc["text_states_dim_2"], generator=g)
    neg_text_states = torch.randn(1, Lt, dc["text_states_dim"], generator=g)
    neg_text_states_2 = torch.randn(1, dc["text_states_dim_2"], generator=g)

    def denoise(cfg_scale=None):
        sched = FlowMatchEulerDiscreteScheduler(shift=shift)
        sched.set_timesteps(sigmas=np.linspace(1.0, 0.0, steps + 1)[:-1].tolist())
        latents = latents0.clone()
        for t in sched.timesteps:
            if cfg_scale is None:
                x, ts, tm, ts2 = latents, text_states, text_mask, text_states_2
            else:
                x = torch.cat([latents] * 2)
                ts, tm = torch.cat([neg_text_states, text_states]), torch.cat([neg_text_mask, text_mask])
                ts2 = torch.cat([neg_text_states_2, text_states_2])
            n = x.shape[0]
            guidance = torch.full((n,), scale, dtype=torch.float32) * 1000.0
            v = dit_forward(dit, x, t.expand(n).float(), ts, tm, ts2, guidance)
            if cfg_scale is not None:
                u, c = v.chunk(2)
                v = u + cfg_scale * (c - u)
            latents = sched.step(v, t, latents, return_dict=False)[0]
        return latents

    def decode(latents):
        return (vae.decode(latents / vc["scaling_factor"]).sample / 2 + 0.5).clamp(0, 1)

    emb, with_cfg = denoise(), denoise(cfg)
    config = {"dit": dc, "vae": vc, "num_inference_steps": steps, "flow_shift": shift, "flow_reverse": True,
              "embedded_guidance_scale": scale, "cfg_scale_for_cfg_run": cfg}
    w = FixtureWriter("pipeline_tiny", config, args.seed,
                      f"'embedded': one forward per step with guidance={scale * 1000:g} (fp32); 'cfg': batch [neg, pos], "
                      f"v = u + s(c-u), guidance={scale * 1000:g} too; video = clamp(decode(latents / scaling_factor)/2 "
                      "+ 0.5, 0, 1), no tiling; vae weights are under param.vae. Generated by "
                      f"tools/golden/make_fixtures.py from diffusers {_diffusers_version()} (DiT, VAE, "
                      "FlowMatchEulerDiscreteScheduler; the loop written from the official pipeline).")
    w.add_params(official_dit_state_dict(dit.state_dict()))
    w.add_params(vae_params(vae), prefix="vae.")
    w.add_inputs(latents=latents0, neg_text_mask=neg_text_mask, neg_text_states=neg_text_states,
                 neg_text_states_2=neg_text_states_2, text_mask=text_mask, text_states=text_states,
                 text_states_2=text_states_2)
    w.add_outputs(latents_cfg=with_cfg, latents_embedded=emb, video_cfg=decode(with_cfg),
                  video_embedded=decode(emb))
    return w


def _diffusers_version():
    import diffusers
    return diffusers.__version__


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", choices=["diffusers"], default="diffusers",
                    help="the PyTorch implementation the reference comes from")
    ap.add_argument("--case", choices=CASES, required=True)
    ap.add_argument("--seed", type=int, default=0, help="weights, inputs and (unless given) shapes")
    ap.add_argument("--out", required=True, help="the .safetensors file to write")
    ap.add_argument("--batch", type=int, default=2, help="batch of the block and transformer cases")
    ap.add_argument("--hidden-size", type=int, default=64)
    ap.add_argument("--heads-num", type=int, default=4)
    ap.add_argument("--latent-channels", type=int, default=16, help="DiT in/out channels (and the pipeline's VAE)")
    ap.add_argument("--text-len", type=int, help="text tokens (default: from the seed)")
    ap.add_argument("--rope-sizes", type=int, nargs=3, metavar=("T", "H", "W"),
                    help="token grid of the block cases (default: from the seed)")
    ap.add_argument("--latent-size", type=int, nargs=3, metavar=("T", "H", "W"),
                    help="latent frames/height/width of transformer_tiny and pipeline_tiny (H, W even)")
    ap.add_argument("--video-size", type=int, nargs=2, metavar=("H", "W"), help="vae_tiny video size (multiples of 8)")
    ap.add_argument("--frames", type=int, help="vae_tiny video frames, 1 + 4k (default: from the seed)")
    ap.add_argument("--steps", type=int, default=5, help="pipeline_tiny: inference steps")
    ap.add_argument("--flow-shift", type=float, default=7.0)
    ap.add_argument("--embedded-guidance-scale", type=float, default=6.0)
    ap.add_argument("--cfg-scale", type=float, default=4.0)
    args = ap.parse_args(argv)

    torch.manual_seed(args.seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    make = {"double_block": lambda: make_block(args, single=False), "single_block": lambda: make_block(args, single=True),
            "transformer_tiny": lambda: make_transformer_tiny(args), "vae_tiny": lambda: make_vae_tiny(args),
            "pipeline_tiny": lambda: make_pipeline_tiny(args)}[args.case]
    writer = make()
    writer.save(args.out)
    shapes = {k: list(v.shape) for k, v in writer.tensors.items() if not k.startswith("param.")}
    n_params = sum(1 for k in writer.tensors if k.startswith("param."))
    print(f"wrote {args.out}: case {args.case}, seed {args.seed}, {n_params} params, {json.dumps(shapes)}")


if __name__ == "__main__":
    main()
