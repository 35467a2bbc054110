"""The synthetic world the built-in model learns: one shape of one colour crossing a plain background.

Captions are exactly "a {colour} {shape} moving {motion} on a {background} background". A clip's
randomness (the shape's size, where it crosses, how far it travels) comes from the generator it is given,
so that the dataset, and the checks of tests/tools/test_builtin_model.cpp, are reproducible.
"""
import itertools

import numpy as np

COLOURS = {"red": (220, 30, 30), "green": (30, 190, 40), "blue": (40, 70, 235), "yellow": (235, 215, 30),
           "white": (240, 240, 240)}
SHAPES = ("circle", "square", "triangle")
# motion -> (axis the shape travels along: 1 = x, 0 = y; direction along it)
MOTIONS = {"from left to right": (1, +1), "from right to left": (1, -1), "from top to bottom": (0, +1),
           "from bottom to top": (0, -1)}
BACKGROUNDS = {"black": (0, 0, 0), "gray": (128, 128, 128)}

# Combinations never shown in training; each of their words is seen in other combinations.
HELD_OUT = (
    ("red", "triangle", "from top to bottom", "gray"),
    ("green", "circle", "from right to left", "black"),
    ("blue", "square", "from bottom to top", "black"),
    ("yellow", "circle", "from left to right", "gray"),
    ("white", "triangle", "from right to left", "black"),
    ("blue", "triangle", "from left to right", "gray"),
    ("green", "square", "from top to bottom", "gray"),
    ("red", "square", "from bottom to top", "black"),
)


def caption(colour, shape, motion, background):
    return f"a {colour} {shape} moving {motion} on a {background} background"


def all_combinations():
    return list(itertools.product(COLOURS, SHAPES, MOTIONS, BACKGROUNDS))


def training_combinations():
    held = set(HELD_OUT)
    return [c for c in all_combinations() if c not in held]


def shape_mask(shape, cy, cx, r, size):
    """Boolean [size, size] mask of `shape` centred at (cy, cx) with half-size r (pixels)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dy, dx = y - cy, x - cx
    if shape == "circle":
        return dy * dy + dx * dx <= r * r
    if shape == "square":
        s = r * 0.85  # the same area as the circle, roughly
        return (np.abs(dy) <= s) & (np.abs(dx) <= s)
    if shape == "triangle":  # apex up; base at cy + r, apex at cy - r
        t = (dy + r) / (2 * r)  # 0 at the apex, 1 at the base
        return (t >= 0) & (t <= 1) & (np.abs(dx) <= t * r * 1.1)
    raise ValueError(f"unknown shape {shape!r}")


def render(colour, shape, motion, background, rng, frames=33, size=64):
    """uint8 [frames, size, size, 3]: the shape crosses the frame along the motion's axis."""
    axis, sign = MOTIONS[motion]
    r = rng.uniform(7.0, 9.5)
    margin = r + 2.0
    start = rng.uniform(margin, margin + 6.0)
    end = rng.uniform(size - margin - 6.0, size - margin)
    across = rng.uniform(size * 0.3, size * 0.7)
    video = np.empty((frames, size, size, 3), np.uint8)
    video[:] = np.array(BACKGROUNDS[background], np.uint8)
    col = np.array(COLOURS[colour], np.uint8)
    for f in range(frames):
        a = f / max(frames - 1, 1)
        along = start + (end - start) * a
        if sign < 0:
            along = size - along
        cy, cx = (along, across) if axis == 0 else (across, along)
        video[f][shape_mask(shape, cy, cx, r, size)] = col
    return video
