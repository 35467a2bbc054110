#!/usr/bin/env python3
"""Step caching on the built-in model: what each policy saves and what it costs.

Runs `hyvideo generate` on the built-in model for the 16 prompts of its test (tests/tools/
test_builtin_model.cpp: the same colours, shapes, motions, backgrounds and seeds) once without a step
cache and once per policy, alternating per prompt so that a noisy machine slows all alike, and prints
per policy:

  - the sampling time per run and its ratio to the uncached run's, median over the prompts: the wall
    time of `generate` less that of a one-step run of the same prompt (startup, text encoding and
    decoding), since the progress line's s/step has too few digits at this size;
  - how many steps computed the blocks;
  - the PSNR of the decoded frames against the uncached run's (8-bit frames, over the whole video);
  - how many prompts the test's judge still calls right (colour and direction of motion), so that a
    cost shows as a count as well as in dB.

The built-in model is small (docs/builtin_model.md), so its steps are short and the fixed cost of a
step (embedding, the signal, the final layer) weighs more than at 13B; TeaCache's polynomial was
fitted to HunyuanVideo 13B, not to this model.

  python3 bench/compare_step_cache.py [--hyvideo build/bin/hyvideo] [--policies "teacache 0.1,teacache 0.15,fbcache 0.1"]
                                      [--prompts 16] [--steps 50] [--json]
"""
import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools", "builtin_model"))
import world  # noqa: E402  (the built-in model's captions and colours)

# The test's 16 cases: colour, shape, motion index, background, held out of training.
CASES = [("red", "triangle", 2, "gray", 1), ("green", "circle", 1, "black", 1), ("blue", "square", 3, "black", 1),
         ("yellow", "circle", 0, "gray", 1), ("white", "triangle", 1, "black", 1), ("blue", "triangle", 0, "gray", 1),
         ("green", "square", 2, "gray", 1), ("red", "square", 3, "black", 1), ("red", "circle", 0, "black", 0),
         ("green", "triangle", 3, "gray", 0), ("blue", "circle", 2, "black", 0), ("yellow", "square", 1, "black", 0),
         ("white", "circle", 3, "gray", 0), ("yellow", "triangle", 2, "black", 0), ("white", "square", 0, "gray", 0),
         ("blue", "square", 1, "gray", 0)]


def generate(hyvideo, prompt, seed, steps, flags, out):
    cmd = [hyvideo, "generate", "--prompt", prompt, "--seed", str(seed), "--infer-steps", str(steps), *flags,
           "-o", os.path.join(out, "v.mp4"), "--frames-dir", os.path.join(out, "f")]
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stdout}{r.stderr}")
    computed = re.search(r"computed the blocks on (\d+) of (\d+) steps", r.stdout)
    frames = np.stack([np.asarray(Image.open(p).convert("RGB"), dtype=np.float64)
                       for p in sorted(glob.glob(os.path.join(out, "f", "*.png")))])
    return {"seconds": wall,
            "computed": int(computed.group(1)) if computed else steps, "frames": frames}


def judge(frames, colour, motion):
    """The built-in test's rule: the object's colour, and a displacement of at least 12 pixels along the
    prompt's axis, larger than across it."""
    background = np.median(frames.reshape(-1, 3), 0)
    mask = np.abs(frames - background).max(-1) >= 60
    if not mask.any():
        return False
    mean = frames[mask].mean(0)
    name = min(world.COLOURS, key=lambda k: ((np.array(world.COLOURS[k]) - mean) ** 2).sum())
    centres = [np.argwhere(m).mean(0) for m in mask if m.any()]
    q = len(centres) // 4
    if q == 0:
        return False
    axis, sign = world.MOTIONS[motion]
    d = np.mean(centres[-q:], 0) - np.mean(centres[:q], 0)
    return name == colour and d[axis] * sign >= 12 and abs(d[axis]) > abs(d[1 - axis])


def psnr(a, b):
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hyvideo", default=os.path.join(HERE, "..", "build", "bin", "hyvideo"))
    ap.add_argument("--policies", default="teacache 0.1,teacache 0.15,fbcache 0.05,fbcache 0.1")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--json", action="store_true", help="one JSON line per policy")
    args = ap.parse_args()
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    motions = list(world.MOTIONS)
    results = {p: {"ratio": [], "computed": [], "psnr": [], "right": 0} for p in ["none"] + policies}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (colour, shape, m, bg, _) in enumerate(CASES[: args.prompts]):
            prompt = world.caption(colour, shape, motions[m], bg)
            fixed = generate(args.hyvideo, prompt, 100 + i, 1, [], os.path.join(tmp, f"{i}_fixed"))["seconds"]
            base = generate(args.hyvideo, prompt, 100 + i, args.steps, [], os.path.join(tmp, f"{i}_none"))
            results["none"]["right"] += judge(base["frames"], colour, motions[m])
            results["none"]["computed"].append(base["computed"])
            for p in policies:
                name, value = p.split()
                r = generate(args.hyvideo, prompt, 100 + i, args.steps, [f"--{name}", value], os.path.join(tmp, f"{i}_{p}"))
                results[p]["ratio"].append((base["seconds"] - fixed) / max(r["seconds"] - fixed, 1e-3))
                results[p]["computed"].append(r["computed"])
                results[p]["psnr"].append(psnr(r["frames"], base["frames"]))
                results[p]["right"] += judge(r["frames"], colour, motions[m])
            print(f"prompt {i + 1}/{args.prompts} done", file=sys.stderr)
    n = min(args.prompts, len(CASES))
    for p, r in results.items():
        row = {"policy": p, "prompts": n, "steps": args.steps, "right": r["right"],
               "computed_steps_median": statistics.median(r["computed"]),
               "speedup_median": statistics.median(r["ratio"]) if r["ratio"] else 1.0,
               "psnr_db_median": statistics.median(r["psnr"]) if r["psnr"] else None,
               "psnr_db_min": min(r["psnr"]) if r["psnr"] else None}
        if args.json:
            print(json.dumps(row))
        else:
            extra = "" if p == "none" else (f"  speedup {row['speedup_median']:.2f}x  PSNR median {row['psnr_db_median']:.1f} dB"
                                            f" (min {row['psnr_db_min']:.1f})")
            print(f"{p:16s} blocks on {row['computed_steps_median']:g}/{args.steps} steps  right {r['right']}/{n}{extra}")


if __name__ == "__main__":
    main()
