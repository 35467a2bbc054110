#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_safetensors into fuzz/corpus/ (see docs/fuzzing.md).

Seeds are cut down from the golden fixtures (their real headers and metadata, a few small tensors
each), plus hand-made files for the corners of the format that the fixtures never reach: every
dtype, empty and scalar tensors, header padding, gaps and misaligned data. Small seeds keep the
fuzzer fast; the mutations do the rest. Standard library only.
"""
import json
import pathlib
import struct
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "data" / "golden"
CORPUS = ROOT / "fuzz" / "corpus"

MAX_TENSOR_BYTES = 64  # per tensor kept from a fixture
MAX_TENSORS = 4        # per fixture


def pack(header: dict, data: bytes, pad_to: int = 8) -> bytes:
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % pad_to)
    return struct.pack("<Q", len(text)) + text + data


def read(path: pathlib.Path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def from_fixture(path: pathlib.Path) -> bytes:
    header, data = read(path)
    meta = header.pop("__metadata__", {})
    # The config and notes strings are long; their shape matters to the parser, not their length.
    meta = {k: v[:200] for k, v in meta.items()}
    out, blob = {"__metadata__": meta}, b""
    small = sorted(
        (name for name, e in header.items() if e["data_offsets"][1] - e["data_offsets"][0] <= MAX_TENSOR_BYTES),
        key=lambda name: (header[name]["dtype"], name),
    )
    for name in small[:MAX_TENSORS]:
        e = header[name]
        begin, end = e["data_offsets"]
        out[name] = {"dtype": e["dtype"], "shape": e["shape"], "data_offsets": [len(blob), len(blob) + end - begin]}
        blob += data[begin:end]
    return pack(out, blob)


def handmade() -> dict:
    seeds = {}
    sizes = {"F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "I64": 8, "BOOL": 1}
    header, blob = {}, b""
    for i, (dtype, size) in enumerate(sizes.items()):
        n = size * 3
        header[f"t.{dtype.lower()}"] = {"dtype": dtype, "shape": [3], "data_offsets": [len(blob), len(blob) + n]}
        blob += bytes(range(i * 16, i * 16 + n))
    seeds["all_dtypes"] = pack(header, blob)
    seeds["empty_header"] = pack({}, b"")
    seeds["metadata_only"] = pack({"__metadata__": {"case": "x", "seed": "0"}}, b"")
    seeds["zero_size_and_scalar"] = pack(
        {
            "empty": {"dtype": "F32", "shape": [2, 0, 3], "data_offsets": [0, 0]},
            "scalar": {"dtype": "I64", "shape": [], "data_offsets": [0, 8]},
        },
        struct.pack("<q", -7),
    )
    seeds["gap_and_unpadded"] = pack(
        {"a": {"dtype": "F16", "shape": [1], "data_offsets": [0, 2]}, "b": {"dtype": "F16", "shape": [1], "data_offsets": [4, 6]}},
        b"\x00\x3c\xff\xff\x00\xc0",
        pad_to=1,
    )
    seeds["misaligned"] = pack(
        {"flag": {"dtype": "BOOL", "shape": [1], "data_offsets": [0, 1]}, "x": {"dtype": "F32", "shape": [1, 1], "data_offsets": [1, 5]}},
        b"\x01\x00\x00\x80\x3f",
    )
    return seeds


def main() -> int:
    CORPUS.mkdir(parents=True, exist_ok=True)
    seeds = handmade()
    for path in sorted(GOLDEN.glob("*.safetensors")):
        seeds[f"golden_{path.stem}"] = from_fixture(path)
    for name, data in seeds.items():
        (CORPUS / f"{name}.safetensors").write_bytes(data)
    print(f"{len(seeds)} seeds, {sum(map(len, seeds.values()))} bytes in {CORPUS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
