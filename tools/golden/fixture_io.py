"""fixture_io: write a golden fixture (tests/data/golden/README.md) from a PyTorch module.

A fixture is one safetensors file holding, for one *case*:

    param.<name>    the module's weights, under the names the C++ component loads
    input.<name>    the inputs
    output.<name>   the reference outputs
    __metadata__    {"case", "config" (JSON), "seed", "notes"}

`hyvideo golden FILE` (or a program using hyvideo::golden::Fixture) reads it back, runs the C++
component and compares every output.* with a relative L2 error <= 1e-4.

Typical use, from any prototype:

    from fixture_io import FixtureWriter, randomize_
    w = FixtureWriter("my_case", config={"dim": 64}, seed=0, notes="what is defined")
    randomize_(module, seed=0)                 # no zero-init identities
    w.add_params(module.state_dict())          # or a renamed/fused dict, or prefix="vae."
    w.add_inputs(x=x, mask=mask)
    w.add_outputs(y=module(x, mask))
    w.save("my_case.safetensors")

Only torch and safetensors are needed. Tensors are stored contiguous, float tensors as F32 and
integer/bool ones as I64 (the fixture convention).
"""
from __future__ import annotations

import json
import math
from collections import OrderedDict
from typing import Mapping

import torch
from safetensors.torch import save_file


def _canonical(t: torch.Tensor) -> torch.Tensor:
    t = t.detach().cpu()
    if t.is_floating_point():
        t = t.to(torch.float32)
    else:  # masks, lengths, ids: I64 in every fixture
        t = t.to(torch.int64)
    return t.contiguous().clone()


@torch.no_grad()
def randomize_(module: torch.nn.Module, seed: int, weight_std: float | None = None) -> torch.nn.Module:
    """Overwrites every parameter with seeded random values, so that no block is an identity.

    The official (and diffusers') initialisations zero the modulation and final layers (and some
    norms are exactly 1/0), which would make a fixture blind to whole sub-modules. Here:
      * >= 2-D weights (linear, conv): N(0, 1/fan_in)   (weight_std overrides the scale)
      * 1-D weights (the affine of LayerNorm/GroupNorm/RMSNorm): 1 + 0.1 N(0, 1)
      * biases and anything else: 0.1 N(0, 1)
    Parameters are visited in name order, so the values depend only on the seed and the names.
    """
    g = torch.Generator().manual_seed(seed)
    for name, p in sorted(module.named_parameters(), key=lambda kv: kv[0]):
        noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
        if name.endswith("weight") and p.dim() >= 2:
            std = weight_std if weight_std is not None else 1.0 / math.sqrt(p[0].numel())
            p.copy_(noise * std)
        elif name.endswith("weight"):
            p.copy_(1.0 + 0.1 * noise)
        else:
            p.copy_(0.1 * noise)
    return module


class FixtureWriter:
    """Collects params / inputs / outputs and writes them as one fixture file."""

    def __init__(self, case: str, config: Mapping, seed: int, notes: str = ""):
        self.case, self.config, self.seed, self.notes = case, dict(config), int(seed), notes
        self.tensors: "OrderedDict[str, torch.Tensor]" = OrderedDict()

    def _put(self, kind: str, name: str, t: torch.Tensor) -> None:
        key = f"{kind}.{name}"
        if key in self.tensors:
            raise KeyError(f"fixture already holds {key}")
        self.tensors[key] = _canonical(t)

    def add_params(self, state_dict: Mapping[str, torch.Tensor], prefix: str = "") -> "FixtureWriter":
        """Adds a state_dict as param.<prefix><name> (buffers included: pass a filtered dict if the
        C++ component does not list them, since strict loading rejects unexpected tensors)."""
        for name, t in state_dict.items():
            self._put("param", prefix + name, t)
        return self

    def add_module(self, module: torch.nn.Module, prefix: str = "") -> "FixtureWriter":
        """The module's parameters (not its buffers) under their state_dict names."""
        params = {n for n, _ in module.named_parameters()}
        return self.add_params({n: t for n, t in module.state_dict().items() if n in params}, prefix)

    def add_inputs(self, **tensors: torch.Tensor) -> "FixtureWriter":
        for name, t in tensors.items():
            self._put("input", name, t)
        return self

    def add_outputs(self, **tensors: torch.Tensor) -> "FixtureWriter":
        for name, t in tensors.items():
            self._put("output", name, t)
        return self

    def metadata(self) -> dict:
        return {"case": self.case, "config": json.dumps(self.config), "seed": str(self.seed), "notes": self.notes}

    def save(self, path: str) -> None:
        if not any(k.startswith("output.") for k in self.tensors):
            raise ValueError("a fixture without output.* tensors tests nothing")
        for k, t in self.tensors.items():
            if t.is_floating_point() and not torch.isfinite(t).all():
                raise ValueError(f"{k} is not finite")
        save_file(dict(self.tensors), path, metadata=self.metadata())


def write_fixture(path: str, case: str, config: Mapping, seed: int, notes: str,
                  params: Mapping[str, torch.Tensor], inputs: Mapping[str, torch.Tensor],
                  outputs: Mapping[str, torch.Tensor]) -> None:
    """One-call form of FixtureWriter."""
    w = FixtureWriter(case, config, seed, notes)
    w.add_params(params)
    w.add_inputs(**inputs)
    w.add_outputs(**outputs)
    w.save(path)
