#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_torch_pickle into fuzz/corpus_pt/ (see docs/fuzzing.md). Needs torch.

Every seed starts with the harness's mode byte: 0x00 = the rest is a whole torch.save archive, 0x01 = the
rest is a data.pkl that the harness wraps in an archive with eight storages "0".."7" of
48, 6, 64, 1, 24, 0, 128 and 7 bytes. The pickle seeds are taken from torch.save files whose storages
have exactly those sizes, in that order, so that they are accepted as they are and mutations start from
valid tensors. Together the seeds use every construct torch.save writes for checkpoints: typed storages
(_rebuild_tensor_v2) and untyped ones with a dtype (v3, float8), shared storages, offsets and strides,
empty and 0-d tensors, nn.Parameter, OrderedDict with _metadata (BUILD), nested dicts, lists, tuples,
torch.Size, bytes (_codecs.encode in protocol 2), ints, floats, bools, None and strings.
"""
import collections
import io
import json
import pathlib
import struct
import sys
import zipfile

import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus_pt"
GOLDEN = ROOT / "tests" / "data" / "golden"
sys.path.insert(0, str(ROOT / "tools"))
from make_test_checkpoints import diffusers_dit  # noqa: E402  (the official -> diffusers name table)


def saved(obj, name="archive"):
    buf = io.BytesIO()
    torch.save(obj, buf)
    raw = buf.getvalue()
    # torch.save to a buffer names its root "archive"; to a file, after the file. Both are seeds.
    if name != "archive":
        src = zipfile.ZipFile(io.BytesIO(raw))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
            for info in src.infolist():
                dst.writestr(name + info.filename[len("archive"):], src.read(info))
        raw = out.getvalue()
    return raw


def zip64(raw):
    """The same archive with ZIP64 records: every central-directory entry saturates its sizes and offset
    and carries the 64-bit values in an extra field, and a ZIP64 end record and locator precede the end
    record, as for the real 25.6 GB transformer (Python's zipfile writes these only past 4 GiB)."""
    z = zipfile.ZipFile(io.BytesIO(raw))
    body, central = bytearray(), bytearray()
    for info in z.infolist():
        start = len(body)
        name = info.filename.encode()
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, info.CRC, info.file_size, info.file_size,
                            len(name), 0) + name + z.read(info)
        extra = struct.pack("<HHQQQ", 1, 24, info.file_size, info.file_size, start)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, info.CRC, 0xFFFFFFFF, 0xFFFFFFFF,
                               len(name), len(extra), 0, 0, 0, 0, 0xFFFFFFFF) + name + extra
    n, cd_offset = len(z.infolist()), len(body)
    end64 = len(body) + len(central)
    tail = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, len(central), cd_offset)
    tail += struct.pack("<IIQI", 0x07064B50, 0, end64, 1)
    tail += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return bytes(body + central + tail)


def pickle_of(raw):
    z = zipfile.ZipFile(io.BytesIO(raw))
    return z.read([n for n in z.namelist() if n.endswith("/data.pkl")][0])


def sized_state_dict():
    """Tensors whose storages, in order of appearance, are 48, 6, 64, 1, 24, 0, 128 and 7 bytes."""
    g = torch.Generator().manual_seed(0)
    t0 = torch.randn(3, 4, generator=g)                                  # "0": 12 x f32
    t6 = torch.randn(8, 8, generator=g).to(torch.bfloat16)
    sd = collections.OrderedDict()
    sd["img_in.proj.weight"] = t0
    sd["img_in.proj.bias"] = torch.randn(3, generator=g).half()          # "1": 3 x f16
    sd["double_blocks.0.img_attn_qkv.weight"] = torch.randn(4, 8, generator=g).to(torch.bfloat16)  # "2"
    sd["double_blocks.0.img_mlp.fc1.weight"] = torch.tensor([1.5]).to(torch.float8_e4m3fn)         # "3" (v3)
    sd["step"] = torch.tensor([1, 2, 3])                                 # "4": 3 x i64
    sd["empty"] = torch.empty(0)                                         # "5"
    sd["single_blocks.0.linear1.weight"] = t6                            # "6": 64 x bf16
    sd["mask"] = torch.tensor([True, False, True, True, False, False, True])  # "7": 7 x bool
    sd["transposed"] = t0.t()                                            # shares "0", strides (1, 4)
    sd["rows"] = t6[2:4]                                                 # shares "6", offset 16
    sd["scalar"] = t0[1, 2]                                              # 0-d view
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("img_in", {"version": 1})])
    return sd


def miniature(manifest, dims, base):
    """A model with the real model's names, every dimension mapped through `dims`, and every tensor a view
    of the start of one shared storage `base` (so the file stays small however many names it has)."""
    sd = collections.OrderedDict()
    for name, shape in sorted(json.loads((GOLDEN / manifest).read_text())["tensors"].items()):
        if name.startswith(("double_blocks.", "single_blocks.")) and not name.split(".")[1] == "0":
            continue  # one block of each kind
        shape = [dims.get(d, d) for d in shape]
        n = 1
        for d in shape:
            n *= d
        assert n <= base.numel(), (name, shape)
        sd[name] = base[:n].view(shape)
    return sd


# The DiT at hidden 2 (one head of 2), patch [1, 2, 2], 2 latent channels, text dimensions 3 and 3.
DIT_DIMS = {3072: 2, 6144: 4, 9216: 6, 12288: 8, 15360: 10, 18432: 12, 21504: 14, 4096: 3, 768: 3, 256: 2, 128: 2,
            16: 2, 64: 8}
# The VAE at 2 channels per block, 2 latent channels.
VAE_DIMS = {128: 2, 256: 2, 512: 2, 32: 4, 16: 2}


def main():
    CORPUS.mkdir(parents=True, exist_ok=True)
    for old in CORPUS.iterdir():
        old.unlink()
    seeds = {}

    sd = sized_state_dict()
    seeds["pickle_state_dict"] = b"\x01" + pickle_of(saved(sd))
    seeds["pickle_wrapped_module"] = b"\x01" + pickle_of(saved({"module": sd, "epoch": 3}))
    param = collections.OrderedDict((k, torch.nn.Parameter(v, requires_grad=False)) if v.is_floating_point() and v.dim()
                                    else (k, v) for k, v in sized_state_dict().items())
    seeds["pickle_parameters"] = b"\x01" + pickle_of(saved(param))

    seeds["archive_state_dict"] = b"\x00" + saved(sd, "mp_rank_00_model_states")
    seeds["archive_fp8_map"] = b"\x00" + saved(collections.OrderedDict(
        [("double_blocks.0.img_mlp.fc1", torch.tensor(0.01)), ("single_blocks.0.linear1", torch.tensor(0.02).bfloat16())]))
    seeds["archive_values"] = b"\x00" + saved({
        "module": {"vae.decoder.conv_in.conv.weight": torch.zeros(2, 1, 1, 1, 1, dtype=torch.float16)},
        "ema": {"x_embedder.proj.weight": torch.zeros(2, 1, 1, 1, 1)},
        "args": {"lr": 1e-4, "name": "hunyuan", "flag": True, "none": None, "big": 2**40, "neg": -7},
        "shape": torch.Size([3, 4]), "blob": b"\x00\xffbytes", "pair": (1, "two"), "list": [torch.ones(2), 3],
    })
    seeds["archive_empty"] = b"\x00" + saved({})
    seeds["archive_zip64"] = b"\x00" + zip64(saved(sd))

    # Whole models, so that mutations reach the layers above the reader: model detection, the diffusers
    # fusions (q/k/v, linear1, the final modulation's swap), fp8 scales and config inference.
    base = torch.arange(256, dtype=torch.float32).to(torch.bfloat16)
    dit = miniature("manifest_dit_t2_cfgdistill.json", DIT_DIMS, base)
    seeds["archive_dit_official"] = b"\x00" + saved({"module": dit}, "mp_rank_00_model_states")
    diffusers = collections.OrderedDict(p for k, v in dit.items() for p in diffusers_dit(k, v, 2))
    seeds["archive_dit_diffusers"] = b"\x00" + saved(diffusers)
    seeds["archive_vae"] = b"\x00" + saved({"state_dict": collections.OrderedDict(
        ("vae." + k, v) for k, v in miniature("manifest_vae_884_16c.json", VAE_DIMS, base).items())})
    # As wrapped pickles: six storages of the harness's first sizes, then the model's, 128 bytes, as "6".
    small = torch.arange(64, dtype=torch.float32).to(torch.bfloat16)
    for scheme, tensors in (("official", miniature("manifest_dit_t2_cfgdistill.json", DIT_DIMS, small)), ("diffusers", None)):
        if tensors is None:
            tensors = collections.OrderedDict(
                p for k, v in miniature("manifest_dit_t2_cfgdistill.json", DIT_DIMS, small).items()
                for p in diffusers_dit(k, v, 2) if p[1].untyped_storage().data_ptr() == small.untyped_storage().data_ptr())
        # (The 1-byte storage is a bool here: an fp8 tensor would make the whole model an fp8 checkpoint.)
        pads = [v for _, v in list(sized_state_dict().items())[:6]]
        pads[3] = torch.tensor([True])
        sd = collections.OrderedDict((f"pad.{i}", v) for i, v in enumerate(pads))
        sd.update(tensors)
        seeds[f"pickle_dit_{scheme}"] = b"\x01" + pickle_of(saved(sd))

    for name, data in seeds.items():
        (CORPUS / name).write_bytes(data)
    print(f"wrote {len(seeds)} seeds, {sum(len(d) for d in seeds.values())} bytes, to {CORPUS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
