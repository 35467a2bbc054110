#!/usr/bin/env python3
"""A researcher's attention variant, prototyped in PyTorch, pinned as a golden fixture.

GatedAttention: multi-head self-attention with RMS-normalised q and k (as in HunyuanVideo's blocks)
and an output gate: y = proj(attention(q, k, v) * silu(gate(x))). The gate lets each token scale
its attention read-out per channel (a "gated attention" variant; SiLU here, a sigmoid is as easy).

This script writes examples/prototype/gated_attention.safetensors with fixture_io: the weights under
the module's state_dict names, the input, and TWO outputs: the attention read-out before the gate
(`attn`, to localise a bug) and the result `y`. examples/prototype_gated_attention.cpp rebuilds the
module from hyvideo's parts and compares both.

    pip install -r tools/golden/requirements.txt
    python examples/prototype/gated_attention.py [--seed N] [--out FILE]
"""
import argparse
import pathlib
import sys

import torch
import torch.nn.functional as F
from torch import nn

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "golden"))
from fixture_io import FixtureWriter, randomize_  # noqa: E402


class GatedAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)          # fused q | k | v, as HunyuanVideo's img_attn_qkv
        self.q_norm = nn.RMSNorm(self.head_dim, eps=1e-6)
        self.k_norm = nn.RMSNorm(self.head_dim, eps=1e-6)
        self.gate = nn.Linear(dim, dim)              # the variant: a per-channel output gate
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, S, _ = x.shape
        q, k, v = self.qkv(x).view(B, S, 3, self.heads, self.head_dim).unbind(2)  # [B, S, H, D] each
        q, k = self.q_norm(q), self.k_norm(k)
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        attn = o.transpose(1, 2).reshape(B, S, -1)
        return attn, self.proj(attn * F.silu(self.gate(x)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(pathlib.Path(__file__).with_name("gated_attention.safetensors")))
    args = ap.parse_args()

    config = {"dim": 32, "heads": 4}
    model = GatedAttention(**config).eval()
    randomize_(model, args.seed)  # random everything: no identity gate or zero bias hides a bug
    x = torch.randn(2, 12, config["dim"], generator=torch.Generator().manual_seed(args.seed))
    with torch.no_grad():
        attn, y = model(x)

    w = FixtureWriter("prototype_gated_attention", config, args.seed,
                      "x [B, S, dim] -> attn (before the gate), y = proj(attn * silu(gate(x))); full attention, "
                      "scale 1/sqrt(head_dim), RMSNorm(eps 1e-6) on q and k per head")
    w.add_module(model)          # param.qkv.weight, param.q_norm.weight, ...
    w.add_inputs(x=x)
    w.add_outputs(attn=attn, y=y)
    w.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
