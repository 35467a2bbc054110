#!/usr/bin/env python3
"""The whole 13B DiT on this machine: `hyvideo generate` at 256x256x33 from the official fp8 layout.

Writes once, into --cache, random-weight stand-ins of the released files (names and shapes from the
manifests in tests/data/golden, the values drawn N(0, 0.02), norm weights 1):

  transformers/mp_rank_00_model_states_fp8.pt      HYVideo-T/2-cfgdistill, the block linears in
  transformers/mp_rank_00_model_states_fp8_map.pt  float8_e4m3fn with per-tensor scales (the reference
                                                   quantiser's max|W| / 448), the rest bf16: ~13 GB
  vae/pytorch_model.pt                             the 884-16c VAE in f32
  embeds.safetensors                               text_states [1, 256, 4096] (200 valid), text_states_2

then runs `hyvideo generate --precision bf16` on them (blocks streamed from the mapped file, as a user's
run) under /usr/bin/time, and prints the time of each step, the sampling total, how much of it went to
reading, dequantising and converting the streamed blocks' weights, the VAE decode, and the peak RSS.

  python3 bench/bench_full_model.py [--steps 50] [--cache DIR] [--hyvideo build/bin/hyvideo] [--teacache T]
                                    [--vae-precision f32|bf16] [--prefetch none|next-block]

Needs torch and safetensors (bench/ and tools/ may use Python; the library does not).
"""
import argparse
import collections
import json
import os
import re
import subprocess
import sys
import time

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "..", "tests", "data", "golden")
E4M3_MAX = 448.0


def is_fp8_layer(name, shape):
    return name.startswith(("double_blocks.", "single_blocks.")) and name.endswith(".weight") and len(shape) == 2


def random_tensor(name, shape, gen, dtype):
    if name.endswith(".weight") and len(shape) == 1 and "norm" in name:
        return torch.ones(shape, dtype=dtype)
    return (torch.randn(shape, generator=gen, dtype=torch.float32) * 0.02).to(dtype)


def write_dit(path, map_path):
    tensors = json.load(open(os.path.join(GOLDEN, "manifest_dit_t2_cfgdistill.json")))["tensors"]
    gen = torch.Generator().manual_seed(2024)
    sd, scales = collections.OrderedDict(), collections.OrderedDict()
    for i, (name, shape) in enumerate(tensors.items()):
        w = random_tensor(name, shape, gen, torch.bfloat16)
        if is_fp8_layer(name, shape):
            scale = w.abs().max() / E4M3_MAX
            sd[name] = (w / scale).to(torch.float8_e4m3fn)
            scales[name[: -len(".weight")]] = scale
        else:
            sd[name] = w
        if i % 100 == 0:
            print(f"  DiT tensors {i}/{len(tensors)}", file=sys.stderr)
    torch.save({"module": sd}, path)
    torch.save(scales, map_path)


def write_vae(path):
    tensors = json.load(open(os.path.join(GOLDEN, "manifest_vae_884_16c.json")))["tensors"]
    gen = torch.Generator().manual_seed(2025)
    torch.save({k: random_tensor(k, s, gen, torch.float32) for k, s in tensors.items()}, path)


def write_embeds(path):
    gen = torch.Generator().manual_seed(2026)
    mask = torch.zeros(1, 256, dtype=torch.int64)
    mask[0, :200] = 1
    save_file({"text_states": torch.randn(1, 256, 4096, generator=gen),
               "text_mask": mask,
               "text_states_2": torch.randn(1, 768, generator=gen)}, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/hyvideo-bench/full-model"))
    ap.add_argument("--hyvideo", default=os.path.join(HERE, "..", "build", "bin", "hyvideo"))
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--teacache", type=float, default=None, help="run with --teacache THRESH")
    ap.add_argument("--vae-precision", choices=["f32", "bf16"], default="f32", help="the VAE's compute (generate's flag)")
    ap.add_argument("--prefetch", choices=["none", "next-block"], default="none",
                    help="how the streamed blocks are read (generate's flag)")
    args = ap.parse_args()

    dit = os.path.join(args.cache, "transformers", "mp_rank_00_model_states_fp8.pt")
    dit_map = os.path.join(args.cache, "transformers", "mp_rank_00_model_states_fp8_map.pt")
    vae = os.path.join(args.cache, "vae", "pytorch_model.pt")
    embeds = os.path.join(args.cache, "embeds.safetensors")
    os.makedirs(os.path.dirname(dit), exist_ok=True)
    os.makedirs(os.path.dirname(vae), exist_ok=True)
    if not (os.path.exists(dit) and os.path.exists(dit_map)):
        t0 = time.time()
        write_dit(dit, dit_map)
        print(f"wrote {dit} ({os.path.getsize(dit) / 2**30:.1f} GiB) in {time.time() - t0:.0f} s", file=sys.stderr)
    if not os.path.exists(vae):
        write_vae(vae)
    if not os.path.exists(embeds):
        write_embeds(embeds)

    cmd = ["/usr/bin/time", "-v", args.hyvideo, "generate", "--dit", dit, "--vae", vae, "--text-embeds", embeds,
           "--video-size", "256", "256", "--video-length", "33", "--infer-steps", str(args.steps), "--precision", "bf16",
           "--seed", "1", "-o", os.path.join(args.cache, "out.mp4")]
    if args.teacache is not None:
        cmd += ["--teacache", str(args.teacache)]
    cmd += ["--vae-precision", args.vae_precision, "--prefetch", args.prefetch]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - t0
    out = r.stdout + r.stderr
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out}")
    steps = [float(x) for x in re.findall(r"step \d+/\d+\s+t=\s*[0-9.]+\s+([0-9.]+) s/step", out)]
    sampled = re.search(r"sampled in ([0-9.]+) s, of which ([0-9.]+) s reading", out)
    waiting = re.search(r"([0-9.]+) s waiting for them", out)
    decoded = re.search(r"decoded \d+ frames in ([0-9.]+) s", out)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", out)
    cache = re.search(r"computed the blocks on (\d+) of (\d+) steps", out)
    print(f"HYVideo-T/2-cfgdistill (random weights, official fp8 .pt), 256x256x33, bf16 compute, blocks streamed, "
          f"{args.steps} steps{'' if args.teacache is None else f', --teacache {args.teacache}'}, --prefetch {args.prefetch}")
    print("  per step (s): " + " ".join(f"{s:.1f}" for s in steps))
    if sampled:
        total, reading = float(sampled.group(1)), float(sampled.group(2))
        print(f"  sampling {total:.1f} s ({total / max(len(steps), 1):.1f} s/step), of which reading and converting "
              f"the streamed weights {reading:.1f} s ({100 * reading / total:.0f} %)"
              + ("" if not waiting else f" on a loader thread, waited for {float(waiting.group(1)):.1f} s"))
    if cache:
        print(f"  blocks computed on {cache.group(1)} of {cache.group(2)} steps")
    if decoded:
        print(f"  VAE decode ({args.vae_precision}, tiled) {float(decoded.group(1)):.1f} s")
    print(f"  whole command {wall:.1f} s; peak RSS {int(rss.group(1)) / 2**20:.1f} GiB (mapped pages included)" if rss
          else f"  whole command {wall:.1f} s")


if __name__ == "__main__":
    main()
