#!/usr/bin/env python3
"""Writes the small checkpoints under tests/data/checkpoints/ (see its README.md and docs/checkpoints.md).

The weights are those of two golden fixtures: `transformer_tiny` (the DiT, 2 double + 2 single blocks,
hidden 64) and `vae_tiny` (the causal 3D VAE). Each is saved in the layouts a user downloads:

  official/transformers/mp_rank_00_model_states.pt         torch.save({"module": state_dict}), bf16
  official/transformers/mp_rank_00_model_states_fp8.pt     block linears in float8_e4m3fn, the rest bf16
  official/transformers/mp_rank_00_model_states_fp8_map.pt {module path: scale}, docs/model.md#fp8-weights
  official/vae/pytorch_model.pt + config.json              {"state_dict": {"vae." + name: tensor}}, f16
  diffusers/transformer/                                   two safetensors shards + index, diffusers names, bf16
  diffusers/vae/                                           one safetensors file, diffusers names, f16

plus `expected.json`, the values the C++ tests compare against that only torch can vouch for: CRC-32s of
torch's own fp8 dequantisation and of the reference fp8 quantisation of the bf16 weights.

The state dicts are written by torch.save itself, so the .pt files are byte for byte what PyTorch
produces. The safetensors files are written here (the format is 30 lines of code) so that the script
needs nothing but torch. The diffusers names come from this script's own mapping table, which mirrors
include/hyvideo/checkpoint/diffusers_names.hpp rule for rule; `--check-diffusers` additionally loads the written
files into diffusers' own HunyuanVideoTransformer3DModel and AutoencoderKLHunyuanVideo (strict) and runs
them on the fixture inputs, which proves the mapping against the real library (pip install diffusers).

Run from anywhere: python3 tools/make_test_checkpoints.py [--check-diffusers]
The output is deterministic: running it again rewrites identical files.

`--large OUT.pt` instead writes a big random DiT in the official layout (not committed): the 13B model's
names and shapes at half the width and a fifth of the depth (hidden 1536, 4 double + 8 single blocks, the
real text dimensions; 721M parameters, 1.44 GB in bf16), for measuring the readers' memory and speed on a
file of realistic structure (docs/checkpoints.md, "Memory").
"""
import argparse
import collections
import json
import pathlib
import re
import struct
import sys
import zlib

import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "data" / "golden"
OUT = ROOT / "tests" / "data" / "checkpoints"

E4M3_MAX = 448.0

ST_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float8_e4m3fn: "F8_E4M3",
             torch.int64: "I64", torch.bool: "BOOL"}
ST_DTYPES_INV = {v: k for k, v in ST_DTYPES.items()}


# ---- safetensors ------------------------------------------------------------------------------------

def read_safetensors(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = bytearray(raw[8 + n:])
    tensors = collections.OrderedDict()
    for name in sorted(header):
        e = header[name]
        b, end = e["data_offsets"]
        dtype = ST_DTYPES_INV[e["dtype"]]
        t = torch.frombuffer(data[b:end], dtype=dtype) if end > b else torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(e["shape"]).clone()
    return tensors, meta


def tensor_bytes(t):
    return t.contiguous().view(torch.uint8).numpy().tobytes() if t.numel() else b""


def write_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        data = tensor_bytes(t)
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


# ---- official -> diffusers names (mirrors include/hyvideo/checkpoint/diffusers_names.hpp) ----------------------

def diffusers_dit(name, t, hidden):
    """The diffusers tensors an official DiT tensor becomes: [(diffusers name, tensor), ...]."""
    parts = name.split(".")
    suffix = parts[-1]  # weight or bias

    def rest(n):  # the name from component n on, without the suffix
        return ".".join(parts[n:-1])

    fixed = {
        "img_in.proj": "x_embedder.proj",
        "txt_in.input_embedder": "context_embedder.proj_in",
        "txt_in.t_embedder.mlp.0": "context_embedder.time_text_embed.timestep_embedder.linear_1",
        "txt_in.t_embedder.mlp.2": "context_embedder.time_text_embed.timestep_embedder.linear_2",
        "txt_in.c_embedder.linear_1": "context_embedder.time_text_embed.text_embedder.linear_1",
        "txt_in.c_embedder.linear_2": "context_embedder.time_text_embed.text_embedder.linear_2",
        "time_in.mlp.0": "time_text_embed.timestep_embedder.linear_1",
        "time_in.mlp.2": "time_text_embed.timestep_embedder.linear_2",
        "guidance_in.mlp.0": "time_text_embed.guidance_embedder.linear_1",
        "guidance_in.mlp.2": "time_text_embed.guidance_embedder.linear_2",
        "vector_in.in_layer": "time_text_embed.text_embedder.linear_1",
        "vector_in.out_layer": "time_text_embed.text_embedder.linear_2",
        "final_layer.linear": "proj_out",
    }
    module = ".".join(parts[:-1])
    if module in fixed:
        return [(f"{fixed[module]}.{suffix}", t)]
    if module == "final_layer.adaLN_modulation.1":
        shift, scale = t.chunk(2, dim=0)  # diffusers' AdaLayerNormContinuous wants (scale, shift)
        return [(f"norm_out.linear.{suffix}", torch.cat([scale, shift]))]

    if name.startswith("txt_in.individual_token_refiner.blocks."):
        i, sub = parts[3], rest(4)
        base = f"context_embedder.token_refiner.refiner_blocks.{i}"
        if sub == "self_attn_qkv":
            q, k, v = t.chunk(3, dim=0)
            return [(f"{base}.attn.to_{n}.{suffix}", x) for n, x in zip("qkv", (q, k, v))]
        table = {"norm1": "norm1", "norm2": "norm2", "self_attn_proj": "attn.to_out.0", "mlp.fc1": "ff.net.0.proj",
                 "mlp.fc2": "ff.net.2", "adaLN_modulation.1": "norm_out.linear"}
        return [(f"{base}.{table[sub]}.{suffix}", t)]

    if name.startswith("double_blocks."):
        i, sub = parts[1], rest(2)
        base = f"transformer_blocks.{i}"
        if sub == "img_attn_qkv":
            return [(f"{base}.attn.to_{n}.{suffix}", x) for n, x in zip("qkv", t.chunk(3, dim=0))]
        if sub == "txt_attn_qkv":
            return [(f"{base}.attn.add_{n}_proj.{suffix}", x) for n, x in zip("qkv", t.chunk(3, dim=0))]
        table = {"img_mod.linear": "norm1.linear", "txt_mod.linear": "norm1_context.linear",
                 "img_attn_q_norm": "attn.norm_q", "img_attn_k_norm": "attn.norm_k",
                 "txt_attn_q_norm": "attn.norm_added_q", "txt_attn_k_norm": "attn.norm_added_k",
                 "img_attn_proj": "attn.to_out.0", "txt_attn_proj": "attn.to_add_out",
                 "img_mlp.fc1": "ff.net.0.proj", "img_mlp.fc2": "ff.net.2",
                 "txt_mlp.fc1": "ff_context.net.0.proj", "txt_mlp.fc2": "ff_context.net.2"}
        return [(f"{base}.{table[sub]}.{suffix}", t)]

    if name.startswith("single_blocks."):
        i, sub = parts[1], rest(2)
        base = f"single_transformer_blocks.{i}"
        if sub == "linear1":
            q, k, v, mlp = torch.split(t, [hidden, hidden, hidden, t.shape[0] - 3 * hidden], dim=0)
            return [(f"{base}.attn.to_q.{suffix}", q), (f"{base}.attn.to_k.{suffix}", k),
                    (f"{base}.attn.to_v.{suffix}", v), (f"{base}.proj_mlp.{suffix}", mlp)]
        table = {"linear2": "proj_out", "q_norm": "attn.norm_q", "k_norm": "attn.norm_k",
                 "modulation.linear": "norm.linear"}
        return [(f"{base}.{table[sub]}.{suffix}", t)]

    raise KeyError(f"no diffusers name for {name}")


def diffusers_dit_config(c):
    return {
        "_class_name": "HunyuanVideoTransformer3DModel",
        "in_channels": c["in_channels"], "out_channels": c["out_channels"],
        "num_attention_heads": c["heads_num"], "attention_head_dim": c["hidden_size"] // c["heads_num"],
        "num_layers": c["mm_double_blocks_depth"], "num_single_layers": c["mm_single_blocks_depth"],
        "num_refiner_layers": 2, "mlp_ratio": c["mlp_width_ratio"],
        "patch_size": c["patch_size"][1], "patch_size_t": c["patch_size"][0],
        "qk_norm": "rms_norm", "guidance_embeds": c["guidance_embed"],
        "text_embed_dim": c["text_states_dim"], "pooled_projection_dim": c["text_states_dim_2"],
        "rope_theta": c["rope_theta"], "rope_axes_dim": c["rope_dim_list"], "image_condition_type": None,
    }


def diffusers_vae_config(c):
    return {
        "_class_name": "AutoencoderKLHunyuanVideo",
        "in_channels": c["in_channels"], "out_channels": c["out_channels"], "latent_channels": c["latent_channels"],
        "down_block_types": ["HunyuanVideoDownBlock3D"] * len(c["block_out_channels"]),
        "up_block_types": ["HunyuanVideoUpBlock3D"] * len(c["block_out_channels"]),
        "block_out_channels": c["block_out_channels"], "layers_per_block": c["layers_per_block"],
        "act_fn": c["act_fn"], "norm_num_groups": c["norm_num_groups"], "scaling_factor": c["scaling_factor"],
        "spatial_compression_ratio": c["spatial_compression_ratio"],
        "temporal_compression_ratio": c["time_compression_ratio"],
        "mid_block_add_attention": c["mid_block_add_attention"],
    }


# ---- fp8 (docs/model.md#fp8-weights) -------------------------------------------------------------------

def is_fp8_layer(name, t):
    """The official rule: every nn.Linear inside double_blocks / single_blocks. Their only 2-D weights are
    Linear weights (the QK norms are 1-D), so the rule reads as: 2-D weights of those blocks."""
    return name.startswith(("double_blocks.", "single_blocks.")) and name.endswith(".weight") and t.dim() == 2


def reference_fp8_quantise(w):
    """The reference quantiser (hyvideo/modules/fp8_optimization.py), re-derived: everything runs in the
    weight's own dtype. scale = max|W| / 448; x = W / scale; x is clamped to ±448 and rounded to the e4m3
    grid by splitting it into a power-of-two step (floor(log2|x|) + bias, at least 1 so that subnormals share
    the smallest step) and rounding half to even on that step. Returns (e4m3 tensor, scale tensor)."""
    scale = w.abs().max() / E4M3_MAX
    x = w / scale
    x = x.clamp(-E4M3_MAX, E4M3_MAX)
    bias, mantissa_bits = 7, 3
    exponent = torch.clamp(torch.floor(torch.log2(x.abs())) + bias, min=1.0)
    step = 2.0 ** (exponent - mantissa_bits - bias)
    qdq = torch.round(x / step) * step
    q = qdq.to(torch.float8_e4m3fn)
    # The C++ converter relies on this being torch's own saturating round-to-nearest-even cast of W / scale.
    assert torch.equal(q.view(torch.uint8), x.to(torch.float8_e4m3fn).view(torch.uint8)), "e4m3 rounding differs"
    return q, scale


def crc(t):
    return zlib.crc32(tensor_bytes(t)) & 0xFFFFFFFF


# ---- writing -------------------------------------------------------------------------------------------

def state_dict_with_metadata(tensors):
    """An OrderedDict carrying `_metadata`, as nn.Module.state_dict() returns it; torch.save pickles that
    attribute through BUILD, which the C++ reader must accept."""
    sd = collections.OrderedDict((k, v.clone()) for k, v in tensors.items())
    sd._metadata = collections.OrderedDict([("", {"version": 1})])
    return sd


def write_large(path):
    """The real transformer's manifest with every hidden-size multiple halved and fewer blocks."""
    manifest = json.loads((GOLDEN / "manifest_dit_t2_cfgdistill.json").read_text())["tensors"]
    hidden = {3072 * k: 1536 * k for k in range(1, 8)}  # hidden, 2x, 3x (qkv), 4x (mlp), 5x, 6x, 7x (linear1)
    beyond = re.compile(r"(double_blocks\.[4-9]|double_blocks\.1\d|single_blocks\.([89]|[1-3]\d))\.")
    g = torch.Generator().manual_seed(0)
    sd = collections.OrderedDict()
    for name, shape in sorted(manifest.items()):
        if beyond.match(name):  # blocks past 4 double and 8 single
            continue
        shape = [hidden.get(d, d) for d in shape]
        sd[name] = (torch.randn(shape, generator=g) * 0.02).to(torch.bfloat16)
    torch.save({"module": state_dict_with_metadata(sd)}, path)
    n = sum(t.numel() for t in sd.values())
    print(f"wrote {path}: {len(sd)} tensors, {n:,} parameters")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check-diffusers", action="store_true",
                    help="also load the diffusers files into diffusers' own models and compare their outputs")
    ap.add_argument("--large", metavar="OUT.pt", help="write a large random DiT for memory measurements, and nothing else")
    args = ap.parse_args()
    if args.large:
        return write_large(args.large)
    torch.manual_seed(0)

    dit_fx, dit_meta = read_safetensors(GOLDEN / "transformer_tiny.safetensors")
    vae_fx, vae_meta = read_safetensors(GOLDEN / "vae_tiny.safetensors")
    dit_cfg, vae_cfg = json.loads(dit_meta["config"]), json.loads(vae_meta["config"])
    dit = collections.OrderedDict((k[6:], v) for k, v in dit_fx.items() if k.startswith("param."))
    vae = collections.OrderedDict((k[6:], v) for k, v in vae_fx.items() if k.startswith("param."))
    hidden = dit_cfg["hidden_size"]
    expected = {"source": {"dit": "golden/transformer_tiny.safetensors", "vae": "golden/vae_tiny.safetensors"}}

    # Official DiT, bf16 as released, under "module" (the official --load-key).
    d = OUT / "official" / "transformers"
    d.mkdir(parents=True, exist_ok=True)
    bf16 = collections.OrderedDict((k, v.to(torch.bfloat16)) for k, v in dit.items())
    torch.save({"module": state_dict_with_metadata(bf16)}, d / "mp_rank_00_model_states.pt")

    # Official fp8: the reference quantisation of the f32 weights, so that the scales are f32 values that
    # bf16 cannot hold exactly and the dequantisation's bf16(scale) rounding is exercised. The map holds
    # 0-d scale tensors, the shape the reference quantiser produces.
    fp8_sd, fp8_map, dequant_crc = collections.OrderedDict(), collections.OrderedDict(), {}
    for k, v in dit.items():
        if is_fp8_layer(k, v):
            q, scale = reference_fp8_quantise(v)
            module = k[: -len(".weight")]
            fp8_sd[k], fp8_map[module] = q, scale
            # docs/model.md#fp8-weights: W = bf16(bf16(W8) · bf16(scale)), computed here by torch itself.
            dequant_crc[module] = crc(q.to(torch.bfloat16) * scale.to(torch.bfloat16))
        else:
            fp8_sd[k] = v.to(torch.bfloat16)
    torch.save({"module": state_dict_with_metadata(fp8_sd)}, d / "mp_rank_00_model_states_fp8.pt")
    torch.save(fp8_map, d / "mp_rank_00_model_states_fp8_map.pt")
    expected["fp8_dequant_bf16_crc32"] = dequant_crc

    # What `hyvideo convert --fp8` must produce from the bf16 file: the reference quantiser run on bf16.
    expected["fp8_from_bf16"] = {}
    for k, v in bf16.items():
        if is_fp8_layer(k, v):
            q, scale = reference_fp8_quantise(v)
            expected["fp8_from_bf16"][k[: -len(".weight")]] = {"scale": scale.float().item(), "weight_crc32": crc(q)}

    # Official VAE: under "state_dict" with the "vae." prefix, the two options the official loader strips.
    d = OUT / "official" / "vae"
    d.mkdir(parents=True, exist_ok=True)
    vae16 = collections.OrderedDict((f"vae.{k}", v.to(torch.float16)) for k, v in vae.items())
    torch.save({"state_dict": state_dict_with_metadata(vae16)}, d / "pytorch_model.pt")
    (d / "config.json").write_text(json.dumps(dict(_class_name="AutoencoderKLCausal3D", **vae_cfg), indent=2) + "\n")

    # Diffusers transformer: bf16, two shards and the index, as from_pretrained reads them.
    d = OUT / "diffusers" / "transformer"
    d.mkdir(parents=True, exist_ok=True)
    mapped = collections.OrderedDict()
    for k, v in bf16.items():
        for name, t in diffusers_dit(k, v, hidden):
            assert name not in mapped, name
            mapped[name] = t
    names = sorted(mapped)
    half = len(names) // 2
    weight_map, total = {}, 0
    for i, chunk in enumerate((names[:half], names[half:])):
        fname = f"diffusion_pytorch_model-{i + 1:05d}-of-00002.safetensors"
        write_safetensors(d / fname, collections.OrderedDict((n, mapped[n]) for n in chunk), {"format": "pt"})
        for n in chunk:
            weight_map[n] = fname
            total += mapped[n].numel() * mapped[n].element_size()
    (d / "diffusion_pytorch_model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2) + "\n")
    (d / "config.json").write_text(json.dumps(diffusers_dit_config(dit_cfg), indent=2) + "\n")

    # Diffusers VAE: the diffusers names are the official ones (checked by --check-diffusers).
    d = OUT / "diffusers" / "vae"
    d.mkdir(parents=True, exist_ok=True)
    write_safetensors(d / "diffusion_pytorch_model.safetensors",
                      collections.OrderedDict((k, vae[k].to(torch.float16)) for k in sorted(vae)), {"format": "pt"})
    (d / "config.json").write_text(json.dumps(diffusers_vae_config(vae_cfg), indent=2) + "\n")

    (OUT / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT.relative_to(ROOT)}: {total / 1e6:.2f} MB")

    if args.check_diffusers:
        check_diffusers(dit, dit_fx, dit_cfg, vae, vae_fx, vae_cfg, hidden)


def check_diffusers(dit, dit_fx, dit_cfg, vae, vae_fx, vae_cfg, hidden):
    """Loads the mapping into diffusers' own models (strict) and compares their outputs with the fixtures.
    The mapped weights are f32 here, so a difference can only come from the mapping or the models."""
    from diffusers import AutoencoderKLHunyuanVideo, HunyuanVideoTransformer3DModel
    from diffusers.loaders.single_file_utils import convert_hunyuan_video_transformer_to_diffusers

    def rel(a, b):
        return ((a.double() - b.double()).norm() / b.double().norm()).item()

    cfg = {k: v for k, v in diffusers_dit_config(dit_cfg).items() if not k.startswith("_")}
    cfg["rope_axes_dim"] = tuple(cfg["rope_axes_dim"])
    model = HunyuanVideoTransformer3DModel(**cfg).eval()
    mapped = {n: t for k, v in dit.items() for n, t in diffusers_dit(k, v, hidden)}
    model.load_state_dict(mapped, strict=True)

    # Diffusers' own converter must agree on every tensor. It fixes hidden_size = 3072 where it splits
    # single_blocks.N.linear1, so those tensors are left out of it and checked through the model run below.
    theirs = convert_hunyuan_video_transformer_to_diffusers(collections.OrderedDict(
        (k, v.clone()) for k, v in dit.items() if not re.fullmatch(r"single_blocks\.\d+\.linear1\.(weight|bias)", k)))
    split = re.compile(r"single_transformer_blocks\.\d+\.(attn\.to_[qkv]|proj_mlp)\.(weight|bias)")
    ours = {n: t for n, t in mapped.items() if not split.fullmatch(n)}
    assert set(theirs) == set(ours), f"the mappings differ: {sorted(set(theirs) ^ set(ours))[:6]}"
    for n, t in ours.items():
        assert torch.equal(theirs[n], t), f"diffusers' converter disagrees on {n}"
    print(f"diffusers' convert_hunyuan_video_transformer_to_diffusers agrees on all {len(ours)} tensors it can convert")

    with torch.no_grad():
        out = model(hidden_states=dit_fx["input.x"], timestep=dit_fx["input.t"],
                    encoder_hidden_states=dit_fx["input.text_states"],
                    encoder_attention_mask=dit_fx["input.text_mask"],
                    pooled_projections=dit_fx["input.text_states_2"], guidance=dit_fx["input.guidance"],
                    return_dict=False)[0]
    print(f"diffusers HunyuanVideoTransformer3DModel on the mapped weights: rel L2 {rel(out, dit_fx['output.x']):.3e} "
          f"against the official output.x ({len(mapped)} tensors, strict load)")

    vcfg = {k: v for k, v in diffusers_vae_config(vae_cfg).items() if not k.startswith("_")}
    for k in ("down_block_types", "up_block_types", "block_out_channels"):
        vcfg[k] = tuple(vcfg[k])
    vmodel = AutoencoderKLHunyuanVideo(**vcfg).eval()
    vmodel.load_state_dict(vae, strict=True)
    with torch.no_grad():
        dec = vmodel.decode(vae_fx["input.z"]).sample
        post = vmodel.encode(vae_fx["input.video"]).latent_dist
    print(f"diffusers AutoencoderKLHunyuanVideo on the official names: decode rel L2 "
          f"{rel(dec, vae_fx['output.decoded']):.3e}, encode mean {rel(post.mean, vae_fx['output.mean']):.3e} "
          f"({len(vae)} tensors, strict load)")


if __name__ == "__main__":
    sys.exit(main())
