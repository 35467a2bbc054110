#!/usr/bin/env python3
"""The decode of bench_vae.cpp in PyTorch, for a side-by-side comparison.

Written from the VAE description in docs/model.md#vae (not the official module code): the decoding half
of the 884-16c VAE (post_quant_conv and DecoderCausal3D: widths 512, 512, 256, 128, three resnets per
block, the frame-causal mid-block attention) with random weights, decoding latents [1, 16, 3, 32, 32] to
a video [1, 3, 9, 256, 256], untiled, in f32 and under CPU bf16 autocast. Reported: best of `runs`
decodes (wall clock, and CPU time of all threads, which stays comparable on a shared machine) and the
process's resident high-water mark during them (VmHWM, reset before), weights included, as bench_vae
reports them.

    python3 bench/bench_vae_torch.py [--threads 2] [--runs 2]

Needs torch (pip); the library and its tests never do.
"""
import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

GROUPS, EPS = 32, 1e-6
TFLOP = 10.66  # the decode's convolution FLOPs, as bench_vae counts them


def vm_kib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


class CausalConv3d(nn.Module):
    """Replicate padding k//2 on H and W, k-1 frames in front of T, then an unpadded Conv3d."""

    def __init__(self, cin, cout, k=3):
        super().__init__()
        self.pad = (k // 2, k // 2, k // 2, k // 2, k - 1, 0)
        self.conv = nn.Conv3d(cin, cout, k)

    def forward(self, x):
        return self.conv(F.pad(x, self.pad, mode="replicate"))


class Resnet(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(GROUPS, cin, EPS), CausalConv3d(cin, cout)
        self.norm2, self.conv2 = nn.GroupNorm(GROUPS, cout, EPS), CausalConv3d(cout, cout)
        self.shortcut = CausalConv3d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.shortcut(x) if self.shortcut else x) + h


class Upsample(nn.Module):
    """Nearest upsampling, frame 0 in space only, then a causal conv."""

    def __init__(self, c, factor):
        super().__init__()
        self.factor, self.conv = factor, CausalConv3d(c, c)

    def forward(self, x):
        first = F.interpolate(x[:, :, 0], scale_factor=self.factor[1:], mode="nearest").unsqueeze(2)
        if x.shape[2] > 1:
            rest = F.interpolate(x[:, :, 1:], scale_factor=self.factor, mode="nearest")
            first = torch.cat([first, rest], dim=2)
        return self.conv(first)


class Attention(nn.Module):
    """One head over all channels, GroupNorm first, frame-causal mask, residual."""

    def __init__(self, c):
        super().__init__()
        self.norm = nn.GroupNorm(GROUPS, c, EPS)
        self.q, self.k, self.v, self.out = (nn.Linear(c, c) for _ in range(4))

    def forward(self, x):
        b, c, t, h, w = x.shape
        s = self.norm(x).flatten(2).transpose(1, 2)
        frame = torch.arange(t * h * w) // (h * w)
        allowed = frame[None, :] <= frame[:, None]
        a = F.scaled_dot_product_attention(self.q(s)[:, None], self.k(s)[:, None], self.v(s)[:, None], attn_mask=allowed)
        return x + self.out(a[:, 0]).transpose(1, 2).reshape(b, c, t, h, w)


class Decoder(nn.Module):
    def __init__(self, latent=16, widths=(512, 512, 256, 128)):
        super().__init__()
        self.post_quant_conv = nn.Conv3d(latent, latent, 1)
        self.conv_in = CausalConv3d(latent, widths[0])
        self.mid = nn.ModuleList([Resnet(widths[0], widths[0]), Attention(widths[0]), Resnet(widths[0], widths[0])])
        self.up = nn.ModuleList()
        factors = [(1, 2, 2), (2, 2, 2), (2, 2, 2), None]
        for i, out in enumerate(widths):
            cin = widths[max(i - 1, 0)]
            block = nn.ModuleList([Resnet(cin if j == 0 else out, out) for j in range(3)])
            if factors[i]:
                block.append(Upsample(out, factors[i]))
            self.up.append(block)
        self.norm_out, self.conv_out = nn.GroupNorm(GROUPS, widths[-1], EPS), CausalConv3d(widths[-1], 3)

    def forward(self, z):
        h = self.conv_in(self.post_quant_conv(z))
        for m in self.mid:
            h = m(h)
        for block in self.up:
            for m in block:
                h = m(h)
        return self.conv_out(F.silu(self.norm_out(h)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    decoder = Decoder().eval()
    params = sum(p.numel() for p in decoder.parameters())
    z = torch.randn(1, 16, 3, 32, 32)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, decoder parameters {params:,}, "
          f"oneDNN {torch.backends.mkldnn.is_available()}")
    for name, dtype in (("float32", None), ("bfloat16", torch.bfloat16)):
        weights_mib = vm_kib("VmRSS") / 1024
        reset_peak()
        best = best_cpu = float("inf")
        with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            for _ in range(args.runs):
                t0, c0 = time.perf_counter(), time.process_time()
                video = decoder(z)
                best = min(best, time.perf_counter() - t0)
                best_cpu = min(best_cpu, time.process_time() - c0)
                assert video.shape == (1, 3, 9, 256, 256)
                del video
        # FLOPs as bench_vae counts them (the convolutions, 10.66e12).
        print(f"decode {name:8s} 16x3x32x32 -> 3x9x256x256  {best:7.2f} s  {TFLOP * 1e3 / best:6.1f} GFLOP/s  "
              f"cpu {best_cpu:7.2f} s  {TFLOP * 1e3 / best_cpu:6.1f} GFLOP/cpu-s  "
              f"peak {vm_kib('VmHWM') / 1024:6.0f} MiB  weights {weights_mib:5.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
