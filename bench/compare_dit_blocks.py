#!/usr/bin/env python3
"""hyvideo's DiT blocks against PyTorch's in one run: bench_dit_blocks and bench_dit_blocks_torch.py with
the same flags, each block and mode alternating between the two (the machine's speed drifts over minutes,
so the two sides of a ratio are measured next to each other), repeated, and the median of the repeats
reported with the ratio PyTorch / hyvideo (above 1: hyvideo is faster).

    venv/bin/python bench/compare_dit_blocks.py --bench build/bin/bench_dit_blocks \\
        --img-tokens 2304 --txt-tokens 256 --mode bf16 [--block double|single] [--runs 3] [--repeats 3]

Needs torch (pip); the library and its tests never do.
"""
import argparse
import json
import pathlib
import statistics
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def one(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default="build/bin/bench_dit_blocks", help="the bench_dit_blocks binary")
    ap.add_argument("--img-tokens", type=int, default=2304)
    ap.add_argument("--txt-tokens", type=int, default=256)
    ap.add_argument("--mode", choices=["f32", "bf16"], action="append", help="default: both")
    ap.add_argument("--block", choices=["double", "single"], action="append", help="default: both")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per measurement (median)")
    ap.add_argument("--repeats", type=int, default=3, help="alternating measurements per side")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    common = ["--img-tokens", str(args.img_tokens), "--txt-tokens", str(args.txt_tokens), "--runs", str(args.runs),
              "--threads", str(args.threads), "--json"]
    rows = []
    for mode in args.mode or ["f32", "bf16"]:
        for block in args.block or ["double", "single"]:
            flags = common + ["--mode", mode, "--block", block]
            ours, theirs = [], []
            for _ in range(args.repeats):
                ours += one([args.bench] + flags)
                theirs += one([sys.executable, str(HERE / "bench_dit_blocks_torch.py")] + flags)
            o = statistics.median(r["seconds"] for r in ours)
            t = statistics.median(r["seconds"] for r in theirs)
            rows.append((block, mode, o, t, max(r["peak_rss_mib"] for r in ours), max(r["peak_rss_mib"] for r in theirs),
                         theirs[0]["impl"]))
            print(json.dumps({"block": block, "mode": mode, "img_tokens": args.img_tokens, "txt_tokens": args.txt_tokens,
                              "hyvideo_s": round(o, 4), "torch_s": round(t, 4), "torch_over_hyvideo": round(t / o, 3),
                              "hyvideo_all_s": [r["seconds"] for r in ours], "torch_all_s": [r["seconds"] for r in theirs]}),
                  file=sys.stderr, flush=True)
    print(f"{args.img_tokens} image + {args.txt_tokens} text tokens, {args.threads} threads, median of {args.repeats} "
          f"alternating measurements of {args.runs} runs each ({rows[0][6]})")
    print(f"{'block':8} {'mode':6} {'hyvideo [s]':>12} {'torch [s]':>10} {'torch/hyvideo':>14} {'RSS ours':>9} {'RSS torch':>10}")
    for block, mode, o, t, ro, rt, _ in rows:
        print(f"{block:8} {mode:6} {o:12.3f} {t:10.3f} {t / o:14.2f} {ro:9.0f} {rt:10.0f}")
    if len(rows) > 1 and len({r[1] for r in rows}) == 1:
        o, t = sum(r[2] for r in rows), sum(r[3] for r in rows)
        print(f"{'sum':8} {rows[0][1]:6} {o:12.3f} {t:10.3f} {t / o:14.2f}")


if __name__ == "__main__":
    main()
