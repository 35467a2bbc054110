#!/usr/bin/env python3
"""Writes a random-weight stand-in for HunyuanVideo's text_encoder folder, for bench_text_encoder.

The folder has the layout and names of the released llava-llama-3-8b LLM (a LlamaForCausalLM saved by
save_pretrained): config.json, model-0000k-of-0000n.safetensors shards of at most --shard-gb GB and
model.safetensors.index.json. Every tensor is bf16: the matrices (embedding, projections, lm_head)
normal * 0.02 (transformers' initializer_range), the RMSNorm weights 1. 8.03 billion parameters, 16 GB.

The shards are written tensor by tensor in chunks of a few million values, so the script needs about
0.3 GB of memory whatever the model size; the values come from numpy's PCG64 with a fixed seed, so the
output is deterministic. --layers N (default 32) writes a shallower model with the same widths.

    python3 bench/make_random_llama.py OUT_DIR [--layers 32] [--shard-gb 5] [--seed 0]

Needs numpy (pip); the library and its tests never do.
"""
import argparse
import json
import os
import pathlib
import struct
import sys
import time

import numpy as np

HIDDEN, MLP, HEADS, KV_HEADS, HEAD_DIM, VOCAB = 4096, 14336, 32, 8, 128, 128320
CHUNK = 1 << 22  # values generated at a time


def tensors(layers):
    """(name, shape, kind) in the order save_pretrained's state_dict lists them."""
    out = [("model.embed_tokens.weight", (VOCAB, HIDDEN), "normal")]
    for i in range(layers):
        p = f"model.layers.{i}."
        out += [
            (p + "self_attn.q_proj.weight", (HEADS * HEAD_DIM, HIDDEN), "normal"),
            (p + "self_attn.k_proj.weight", (KV_HEADS * HEAD_DIM, HIDDEN), "normal"),
            (p + "self_attn.v_proj.weight", (KV_HEADS * HEAD_DIM, HIDDEN), "normal"),
            (p + "self_attn.o_proj.weight", (HIDDEN, HEADS * HEAD_DIM), "normal"),
            (p + "mlp.gate_proj.weight", (MLP, HIDDEN), "normal"),
            (p + "mlp.up_proj.weight", (MLP, HIDDEN), "normal"),
            (p + "mlp.down_proj.weight", (HIDDEN, MLP), "normal"),
            (p + "input_layernorm.weight", (HIDDEN,), "ones"),
            (p + "post_attention_layernorm.weight", (HIDDEN,), "ones"),
        ]
    out += [("model.norm.weight", (HIDDEN,), "ones"), ("lm_head.weight", (VOCAB, HIDDEN), "normal")]
    return out


def numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def bf16_bits(x):
    """float32 -> bf16 bit patterns, round to nearest even (no NaNs here)."""
    u = x.view(np.uint32)
    u += np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))
    return (u >> np.uint32(16)).astype(np.uint16)


def write_shard(path, entries, rng):
    header, offset = {}, 0
    for name, shape, _ in entries:
        n = numel(shape) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    one = np.full(CHUNK, 0x3F80, dtype=np.uint16)  # bf16 1.0
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name, shape, kind in entries:
            left = numel(shape)
            while left:
                m = min(left, CHUNK)
                if kind == "ones":
                    one[:m].tofile(f)
                else:
                    x = rng.standard_normal(m, dtype=np.float32)
                    x *= np.float32(0.02)
                    bf16_bits(x).tofile(f)
                left -= m
    return offset


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=pathlib.Path)
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--shard-gb", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    shards, current, size = [], [], 0
    limit = int(args.shard_gb * 1e9)
    for t in tensors(args.layers):
        n = numel(t[1]) * 2
        if current and size + n > limit:
            shards.append(current)
            current, size = [], 0
        current.append(t)
        size += n
    shards.append(current)

    rng = np.random.default_rng(args.seed)
    weight_map, total, t0 = {}, 0, time.time()
    for k, entries in enumerate(shards):
        fname = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        total += write_shard(args.out / fname, entries, rng)
        for name, _, _ in entries:
            weight_map[name] = fname
        print(f"{fname}: {len(entries)} tensors, {time.time() - t0:.0f} s", file=sys.stderr)
    (args.out / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2) + "\n")
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": MLP,
        "num_hidden_layers": args.layers,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "head_dim": HEAD_DIM,
        "vocab_size": VOCAB,
        "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0,
        "hidden_act": "silu",
        "max_position_embeddings": 8192,
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "bos_token_id": 128000,
        "eos_token_id": 128009,
        "torch_dtype": "bfloat16",
    }
    (args.out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    os.sync()
    print(f"{total / 1e9:.2f} GB in {len(shards)} shards, {time.time() - t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
