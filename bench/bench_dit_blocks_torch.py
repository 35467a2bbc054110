#!/usr/bin/env python3
"""The DiT blocks of bench_dit_blocks.cpp in PyTorch, for a side-by-side comparison.

Written from the block equations in docs/model.md#double-stream-block and #single-stream-block (not the
official module code): one double- and one single-stream block of the real width (hidden 3072, 24 heads,
batch 1; 768 image + 256 text tokens of which 200 are valid by default), in f32 and under CPU bf16
autocast, timed as median of several runs. The flags are bench_dit_blocks's:

    python3 bench/bench_dit_blocks_torch.py [--img-tokens N] [--txt-tokens M] [--mode f32|bf16]
                                            [--block double|single] [--runs R] [--threads T] [--json]

Needs torch (pip); the library and its tests never do.
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn.functional as F

HIDDEN, HEADS = 3072, 24
IMG, TXT = 768, 256  # set from --img-tokens / --txt-tokens in main()
D = HIDDEN // HEADS
MLP = 4 * HIDDEN


def lin(i, o):
    return torch.nn.Linear(i, o)


def rms(x, w):
    return (x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6)).type_as(x) * w


def ln(x):
    return F.layer_norm(x, (x.shape[-1],), eps=1e-6)


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def rope(x, cos, sin):
    xr = x.float().reshape(*x.shape[:-1], -1, 2)
    rot = torch.stack([-xr[..., 1], xr[..., 0]], dim=-1).flatten(3)
    return (x.float() * cos[None, :, None] + rot * sin[None, :, None]).type_as(x)


def attention(q, k, v, allowed):
    o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=allowed)
    return o.transpose(1, 2).flatten(2)


class Stream(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.mod, self.qkv, self.proj = lin(HIDDEN, 6 * HIDDEN), lin(HIDDEN, 3 * HIDDEN), lin(HIDDEN, HIDDEN)
        self.fc1, self.fc2 = lin(HIDDEN, MLP), lin(MLP, HIDDEN)
        self.q_norm, self.k_norm = torch.nn.Parameter(torch.ones(D)), torch.nn.Parameter(torch.ones(D))


class DoubleBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.img, self.txt = Stream(), Stream()

    def forward(self, img, txt, vec, cos, sin, allowed):
        outs, qkvs = [], []
        for s, x in ((self.img, img), (self.txt, txt)):
            m = s.mod(F.silu(vec)).chunk(6, dim=-1)
            q, k, v = s.qkv(modulate(ln(x), m[0], m[1])).unflatten(2, (3, HEADS, D)).unbind(2)
            q, k = rms(q, s.q_norm), rms(k, s.k_norm)
            if s is self.img:
                q, k = rope(q, cos, sin), rope(k, cos, sin)
            qkvs.append((q, k, v))
            outs.append(m)
        q, k, v = (torch.cat([a, b], 1) for a, b in zip(*qkvs))
        a = attention(q, k, v, allowed)
        res = []
        for (s, x, m, ai) in ((self.img, img, outs[0], a[:, :IMG]), (self.txt, txt, outs[1], a[:, IMG:])):
            x = x + s.proj(ai) * m[2].unsqueeze(1)
            x = x + s.fc2(F.gelu(s.fc1(modulate(ln(x), m[3], m[4])), approximate="tanh")) * m[5].unsqueeze(1)
            res.append(x)
        return res


class SingleBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear1, self.linear2 = lin(HIDDEN, 3 * HIDDEN + MLP), lin(HIDDEN + MLP, HIDDEN)
        self.mod = lin(HIDDEN, 3 * HIDDEN)
        self.q_norm, self.k_norm = torch.nn.Parameter(torch.ones(D)), torch.nn.Parameter(torch.ones(D))

    def forward(self, x, vec, cos, sin, allowed):
        shift, scale, gate = self.mod(F.silu(vec)).chunk(3, dim=-1)
        qkv, mlp = torch.split(self.linear1(modulate(ln(x), shift, scale)), [3 * HIDDEN, MLP], dim=-1)
        q, k, v = qkv.unflatten(2, (3, HEADS, D)).unbind(2)
        q, k = rms(q, self.q_norm), rms(k, self.k_norm)
        q = torch.cat([rope(q[:, :IMG], cos, sin), q[:, IMG:]], 1)
        k = torch.cat([rope(k[:, :IMG], cos, sin), k[:, IMG:]], 1)
        out = self.linear2(torch.cat([attention(q, k, v, allowed), F.gelu(mlp, approximate="tanh")], 2))
        return x + out * gate.unsqueeze(1)


def median_seconds(runs, fn):
    fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main():
    global IMG, TXT
    ap = argparse.ArgumentParser()
    ap.add_argument("--img-tokens", type=int, default=768)
    ap.add_argument("--txt-tokens", type=int, default=256, help="of which 25/32 valid (200 of 256), as in C++")
    ap.add_argument("--mode", choices=["f32", "bf16"])
    ap.add_argument("--block", choices=["double", "single"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="one JSON line per result")
    args = ap.parse_args()
    if args.img_tokens < 1 or args.txt_tokens < 1 or args.runs < 1 or args.threads < 1:
        ap.error("--img-tokens, --txt-tokens, --runs and --threads must be at least 1")
    IMG, TXT = args.img_tokens, args.txt_tokens
    valid_txt = max(1, TXT * 200 // 256)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    S = IMG + TXT
    valid = torch.zeros(S, dtype=torch.bool)
    valid[: IMG + valid_txt] = True
    allowed = (valid[:, None] == valid[None, :])[None, None]  # varlen segments: valid|valid, pad|pad
    cos, sin = torch.rand(IMG, D), torch.rand(IMG, D)
    vec = torch.randn(1, HIDDEN)
    img, txt, x = torch.randn(1, IMG, HIDDEN), torch.randn(1, TXT, HIDDEN), torch.randn(1, S, HIDDEN)
    C = float(HIDDEN)
    flops_double = 2 * (S * (C * 3 * C + C * C + 2 * C * MLP) + 12 * C * C + 2 * S * S * C)
    flops_single = 2 * (S * (C * (3 * C + MLP) + (C + MLP) * C) + 3 * C * C + 2 * S * S * C)
    if not args.json:
        print(f"PyTorch {torch.__version__}, {IMG} image + {TXT} text tokens ({valid_txt} valid), "
              f"{args.threads} threads, median of {args.runs}")
        print(f"{'block':8} {'mode':6} {'time [s]':>10} {'GFLOP/s':>10} {'peak RSS [MiB]':>15}")
    with torch.inference_mode():
        for mode in ("f32", "bf16"):
            if args.mode and args.mode != mode:
                continue
            for name, make, call, flops in (
                ("double", DoubleBlock, lambda b: b(img, txt, vec, cos, sin, allowed), flops_double),
                ("single", SingleBlock, lambda b: b(x, vec, cos, sin, allowed), flops_single),
            ):
                if args.block and args.block != name:
                    continue
                block = make()

                def run():
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=(mode == "bf16")):
                        call(block)
                s = median_seconds(args.runs, run)
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                if args.json:
                    print(json.dumps({"impl": f"torch {torch.__version__}", "block": name, "mode": mode,
                                      "img_tokens": IMG, "txt_tokens": TXT, "threads": args.threads,
                                      "seconds": round(s, 6), "gflops": round(flops / s / 1e9, 1),
                                      "peak_rss_mib": round(peak)}), flush=True)
                else:
                    print(f"{name:8} {mode:6} {s:10.3f} {flops / s / 1e9:10.1f} {peak:15.0f}", flush=True)


if __name__ == "__main__":
    main()
