#!/usr/bin/env python3
"""Writes the seed corpora of fuzz_config (fuzz/corpus_config/) and fuzz_text_embeds
(fuzz/corpus_text_embeds/); see docs/fuzzing.md. Standard library only; run from anywhere.

fuzz_config seeds are JSON documents in every key set the readers know:
  * the official DiT argument names: the presets (HYVideo-T/2, -cfgdistill, S/2, as
    HYVideoConfig::to_json writes them), and the golden fixtures' own configs (their safetensors
    "config" metadata, pipelines with "dit" and "vae" parts included);
  * the official VAE config.json keys: the 884-16c-hy preset and the test checkpoint's config.json;
  * diffusers' transformer and VAE config.json keys: the test checkpoints' files, and the same key
    sets with the released sizes;
  * a few documents of the findings of issue 10 (norm_num_groups 0, 1e30 for an integer, a
    config that is an array), so that the fuzzer starts next to the edges they found.
fuzz_text_embeds seeds are small --text-embeds files: every states dtype and mask dtype the format
names, with and without a negative prompt, and a few that must be refused (a NaN, a mask that is
not a prefix, a shape that does not fit).
"""
import json
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
CONFIG_CORPUS = ROOT / "fuzz" / "corpus_config"
EMBEDS_CORPUS = ROOT / "fuzz" / "corpus_text_embeds"


def dit(**over):
    """HYVideoConfig::to_json of the HYVideo-T/2 preset, with `over` applied."""
    c = {
        "patch_size": [1, 2, 2], "in_channels": 16, "out_channels": 16, "hidden_size": 3072, "heads_num": 24,
        "mlp_width_ratio": 4.0, "mlp_act_type": "gelu_tanh", "mm_double_blocks_depth": 20,
        "mm_single_blocks_depth": 40, "refiner_depth": 2, "rope_dim_list": [16, 56, 56], "qkv_bias": True,
        "qk_norm": True, "qk_norm_type": "rms", "guidance_embed": False, "text_projection": "single_refiner",
        "use_attention_mask": True, "text_states_dim": 4096, "text_states_dim_2": 768, "rope_theta": 256.0,
        "i2v_condition_type": "",
    }
    c.update(over)
    return c


def vae(**over):
    """AutoencoderKLCausal3DConfig::to_json of the 884-16c-hy preset, with `over` applied."""
    c = {
        "in_channels": 3, "out_channels": 3, "down_block_types": ["DownEncoderBlockCausal3D"] * 4,
        "up_block_types": ["UpDecoderBlockCausal3D"] * 4, "block_out_channels": [128, 256, 512, 512],
        "layers_per_block": 2, "act_fn": "silu", "latent_channels": 16, "norm_num_groups": 32, "sample_size": 256,
        "sample_tsize": 64, "scaling_factor": 0.476986, "time_compression_ratio": 4, "spatial_compression_ratio": 8,
        "mid_block_add_attention": True,
    }
    c.update(over)
    return c


def golden_configs():
    out = {}
    for path in sorted((DATA / "golden").glob("*.safetensors")):
        raw = path.read_bytes()
        (n,) = struct.unpack("<Q", raw[:8])
        meta = json.loads(raw[8 : 8 + n]).get("__metadata__", {})
        if "config" in meta:
            cfg = json.loads(meta["config"])
            # Only the model configurations; the other fixtures' configs hold layer arguments.
            if any(k in cfg for k in ("hidden_size", "block_out_channels", "dit")) and "tables" not in cfg:
                out["golden_" + path.stem] = cfg
    return out


def config_seeds():
    seeds = {
        "dit_t2": dit(),
        "dit_t2_cfgdistill": dit(guidance_embed=True),
        "dit_s2": dit(hidden_size=480, heads_num=5, mm_double_blocks_depth=6, mm_single_blocks_depth=12,
                      rope_dim_list=[12, 42, 42]),
        "dit_i2v_latent_concat": dit(in_channels=33, guidance_embed=True, i2v_condition_type="latent_concat"),
        "vae_884_16c_hy": vae(),
        "vae_884_official_keys": dict(vae(), _class_name="AutoencoderKLCausal3D", _diffusers_version="0.4.2"),
        "diffusers_transformer_released_sizes": {
            "_class_name": "HunyuanVideoTransformer3DModel", "_diffusers_version": "0.32.0", "in_channels": 16,
            "out_channels": 16, "num_attention_heads": 24, "attention_head_dim": 128, "num_layers": 20,
            "num_single_layers": 40, "num_refiner_layers": 2, "mlp_ratio": 4.0, "patch_size": 2, "patch_size_t": 1,
            "qk_norm": "rms_norm", "guidance_embeds": True, "text_embed_dim": 4096, "pooled_projection_dim": 768,
            "rope_theta": 256.0, "rope_axes_dim": [16, 56, 56], "image_condition_type": None,
        },
        "diffusers_vae_released_sizes": {
            "_class_name": "AutoencoderKLHunyuanVideo", "_diffusers_version": "0.32.0", "in_channels": 3,
            "out_channels": 3, "latent_channels": 16, "down_block_types": ["HunyuanVideoDownBlock3D"] * 4,
            "up_block_types": ["HunyuanVideoUpBlock3D"] * 4, "block_out_channels": [128, 256, 512, 512],
            "layers_per_block": 2, "act_fn": "silu", "norm_num_groups": 32, "scaling_factor": 0.476986,
            "spatial_compression_ratio": 8, "temporal_compression_ratio": 4, "mid_block_add_attention": True,
        },
        # The tiny checkpoints' sizes (tests/data/checkpoints) with the official keys, which the
        # harness's checks accept.
        "dit_tiny_rope": {"rope_dim_list": [4, 6, 6], "rope_theta": 256.0, "i2v_condition_type": None},
        # Findings of issue 10, as the documents that showed them.
        "finding_norm_num_groups_0": dict(vae(), norm_num_groups=0),
        "finding_hidden_size_1e30": {"hidden_size": 1e30},
        "finding_depth_1e9": dit(mm_single_blocks_depth=1000000000),
        "finding_not_an_object": [dit()],
        "finding_rope_theta_0": dit(rope_theta=0.0),
    }
    for name, path in {
        "checkpoint_official_vae": DATA / "checkpoints" / "official" / "vae" / "config.json",
        "checkpoint_diffusers_transformer": DATA / "checkpoints" / "diffusers" / "transformer" / "config.json",
        "checkpoint_diffusers_vae": DATA / "checkpoints" / "diffusers" / "vae" / "config.json",
    }.items():
        seeds[name] = json.loads(path.read_text())
    seeds.update(golden_configs())
    return seeds


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, bytes)]"""
    header, blob = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)
    return struct.pack("<Q", len(text)) + text + blob


def f32(values):
    return struct.pack(f"<{len(values)}f", *values)


def f16(values):
    return struct.pack(f"<{len(values)}e", *values)


def bf16(values):
    return b"".join(struct.pack("<f", v)[2:] for v in values)  # truncation: exact for these values


def mask(values, dtype):
    if dtype == "I64":
        return struct.pack(f"<{len(values)}q", *values)
    if dtype == "BOOL":
        return bytes(values)
    return f32(values)


def prompt(prefix, L, valid, states_dtype="F32", mask_dtype="I64", scale=1.0):
    enc = {"F32": f32, "F16": f16, "BF16": bf16}[states_dtype]
    states = [scale * ((i % 7) - 3) / 4 for i in range(L * 4)]
    pooled = [scale * 0.5, -scale * 0.25, 0.0]
    return [
        (prefix + "text_states", states_dtype, [1, L, 4], enc(states)),
        (prefix + "text_mask", mask_dtype, [1, L], mask([1] * valid + [0] * (L - valid), mask_dtype)),
        (prefix + "text_states_2", states_dtype, [1, 3], enc(pooled)),
    ]


def embeds_seeds():
    nan = float("nan")
    seeds = {
        "f32_i64_mask": safetensors(prompt("", 3, 2)),
        "bf16_bool_mask": safetensors(prompt("", 4, 4, "BF16", "BOOL")),
        "f16_f32_mask": safetensors(prompt("", 2, 1, "F16", "F32")),
        "with_negative": safetensors(prompt("", 3, 3) + prompt("negative_", 2, 1, "BF16", "BOOL", -1.0)),
        "one_token": safetensors(prompt("", 1, 1), {"prompt": "a cat"}),
        # Refused: a NaN, a mask with a gap, no valid token, a wrong width, a negative prompt in part.
        "finding_nan_state": safetensors(
            [("text_states", "F32", [1, 2, 4], f32([0.0] * 5 + [nan] + [0.0] * 2))] + prompt("", 2, 1)[1:]),
        "mask_not_prefix": safetensors(prompt("", 3, 3)[:1] + [("text_mask", "I64", [1, 3], mask([0, 1, 1], "I64"))]
                                       + prompt("", 3, 3)[2:]),
        "mask_empty": safetensors(prompt("", 2, 0)),
        "wrong_width": safetensors([("text_states", "F32", [1, 2, 5], f32([0.0] * 10))] + prompt("", 2, 1)[1:]),
        "negative_incomplete": safetensors(prompt("", 2, 2) + prompt("negative_", 2, 2)[:1]),
    }
    return seeds


def main():
    for directory, seeds, ext, encode in (
        (CONFIG_CORPUS, config_seeds(), ".json", lambda v: (json.dumps(v, indent=1) + "\n").encode()),
        (EMBEDS_CORPUS, embeds_seeds(), ".safetensors", lambda v: v),
    ):
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.iterdir():
            old.unlink()
        total = 0
        for name, value in seeds.items():
            data = encode(value)
            (directory / (name + ext)).write_bytes(data)
            total += len(data)
        print(f"{directory.relative_to(ROOT)}: {len(seeds)} seeds, {total} bytes")


if __name__ == "__main__":
    main()
