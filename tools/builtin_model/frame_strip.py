#!/usr/bin/env python3
"""Runs `hyvideo generate` with the built-in model for a few prompts and writes one PNG of frame strips
(one row per prompt, every `--every`-th frame, upscaled), as docs/images/builtin_model_frames.png shows.

    python tools/builtin_model/frame_strip.py --hyvideo build/bin/hyvideo --out docs/images/builtin_model_frames.png
"""
import argparse
import pathlib
import subprocess
import tempfile

from PIL import Image, ImageDraw

PROMPTS = (
    ("a red circle moving from left to right on a black background", 42),
    ("a yellow circle moving from left to right on a gray background", 7),   # held out of training
    ("a green square moving from top to bottom on a gray background", 3),    # held out of training
    ("a white triangle moving from bottom to top on a black background", 5),
)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hyvideo", required=True)
    ap.add_argument("--out", type=pathlib.Path, required=True)
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--scale", type=int, default=2)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (prompt, seed) in enumerate(PROMPTS):
            frames = pathlib.Path(tmp) / f"f{i}"
            subprocess.run([args.hyvideo, "generate", "--prompt", prompt, "--seed", str(seed), "-o",
                            str(pathlib.Path(tmp) / f"{i}.mp4"), "--frames-dir", str(frames)], check=True,
                           stdout=subprocess.DEVNULL)
            files = sorted(frames.glob("*.png"))[::args.every]
            rows.append((prompt, [Image.open(f).convert("RGB") for f in files]))
    w, h = rows[0][1][0].size
    s, gap, label = args.scale, 4, 16
    cols = max(len(r[1]) for r in rows)
    sheet = Image.new("RGB", (cols * (w * s + gap) - gap, len(rows) * (h * s + label + gap)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, (prompt, frames) in enumerate(rows):
        y = r * (h * s + label + gap)
        draw.text((2, y + 2), f'"{prompt}"', fill=(0, 0, 0))
        for c, f in enumerate(frames):
            sheet.paste(f.resize((w * s, h * s), Image.NEAREST), (c * (w * s + gap), y + label))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
