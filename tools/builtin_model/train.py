#!/usr/bin/env python3
"""Trains hyvideo's built-in model: HunyuanVideo's architecture at a tiny width, on the synthetic world of
world.py, in just under two hours on two CPU cores. It is also the worked example of the training
objective (docs/builtin_model.md).

    python tools/builtin_model/train.py --hyvideo build/bin/hyvideo --work /tmp/builtin --out assets/models/builtin

Stages, each cached in --work so that a run can be resumed:
  embeds   every caption through hyvideo's own text path (`hyvideo encode-text` with the built-in tiny
           Llama and CLIP encoders and the real tokenizers), so that training sees exactly what
           `hyvideo generate --prompt` gives the DiT;
  vae      the causal 3D VAE (diffusers' AutoencoderKLHunyuanVideo, the official structure) as an
           autoencoder of clips: L1 + MSE reconstruction (the shape's pixels weighted up) of the
           posterior mean, and a small KL term;
  latents  the training clips encoded once (posterior mean x scaling_factor);
  dit      the transformer (diffusers' HunyuanVideoTransformer3DModel) with the flow-matching
           objective (see `flow_matching_loss`);
  export   the weights under the official names in safetensors (DiT in bf16, VAE in f32), the loss
           curves as docs/images/builtin_model_loss.png.

The model's sizes are hyvideo's learned_dit_config() / learned_vae_config()
(include/hyvideo/pipelines/default_model.hpp); change them together.
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import load_file as load_numpy
from safetensors.torch import save_file

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "golden"))
import world  # noqa: E402
from make_fixtures import official_dit_state_dict  # noqa: E402

SIZE, FRAMES = 64, 33            # the built-in model's default video
GUIDANCE = 6.0                   # generate's default --embedded-cfg-scale; the DiT sees 1000x it
NEGATIVE = ""                    # the embeds table's key of the unconditional (negative-prompt) embedding
TRAIN_SHIFT = 3.0                # time shift of the training sigmas (the sampler's default is 7)

DIT = dict(in_channels=16, out_channels=16, num_attention_heads=4, attention_head_dim=32, num_layers=2,
           num_single_layers=2, num_refiner_layers=2, mlp_ratio=4.0, patch_size=2, patch_size_t=1,
           qk_norm="rms_norm", guidance_embeds=True, text_embed_dim=64, pooled_projection_dim=32, rope_theta=256.0,
           rope_axes_dim=(8, 12, 12))
VAE = dict(in_channels=3, out_channels=3, latent_channels=16, down_block_types=("HunyuanVideoDownBlock3D",) * 4,
           up_block_types=("HunyuanVideoUpBlock3D",) * 4, block_out_channels=(16, 32, 32, 32), layers_per_block=1,
           act_fn="silu", norm_num_groups=8, spatial_compression_ratio=8, temporal_compression_ratio=4,
           mid_block_add_attention=True)


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


# ---- embeds -------------------------------------------------------------------------------------------------

def stage_embeds(args):
    out = args.work / "embeds.pt"
    tmp = args.work / "embeds"
    tmp.mkdir(parents=True, exist_ok=True)
    if out.exists():
        # The cache does not know which encoders made it: delete --work when they change.
        table = torch.load(out)
        assert NEGATIVE in table, f"{out}: a cache from before caption dropout; delete it"
        return table
    table = {}
    for i, combo in enumerate(world.all_combinations()):
        cap = world.caption(*combo)
        f = tmp / f"{i}.safetensors"
        if not f.exists():
            subprocess.run([args.hyvideo, "encode-text", "--prompt", cap, "--video-length", str(FRAMES), "-o", str(f)],
                           check=True, stdout=subprocess.DEVNULL)
        table[cap] = read_embeds(f)
    log(f"embeds: {len(table)} captions, {min(t[0].shape[0] for t in table.values())}.."
        f"{max(t[0].shape[0] for t in table.values())} valid tokens")
    table[NEGATIVE] = negative_embedding(args, tmp)
    torch.save(table, out)
    return table


def read_embeds(f, prefix=""):
    """(valid text states [n, D], pooled [D]) of one prompt in an encode-text file; `prefix` "negative_"
    reads the negative prompt's."""
    e = load_numpy(str(f))
    n = int(e[prefix + "text_mask"].sum())
    assert e[prefix + "text_mask"][0, :n].all(), "the mask is a prefix"
    return torch.from_numpy(e[prefix + "text_states"][0, :n].copy()), torch.from_numpy(e[prefix + "text_states_2"][0].copy())


def negative_embedding(args, tmp):
    """The unconditional branch of classifier-free guidance: what `generate --cfg-scale` feeds the DiT
    when no --neg-prompt is given (the official default negative prompt through the same encoders)."""
    f = tmp / "negative.safetensors"
    if not f.exists():
        subprocess.run([args.hyvideo, "encode-text", "--prompt", world.caption(*world.all_combinations()[0]),
                        "--negative", "--video-length", str(FRAMES), "-o", str(f)], check=True, stdout=subprocess.DEVNULL)
    return read_embeds(f, "negative_")


def text_batch(table, captions):
    n = max(table[c][0].shape[0] for c in captions)
    states = torch.zeros(len(captions), n, DIT["text_embed_dim"])
    mask = torch.zeros(len(captions), n, dtype=torch.long)
    pooled = torch.stack([table[c][1] for c in captions])
    for i, c in enumerate(captions):
        s = table[c][0]
        states[i, :s.shape[0]] = s
        mask[i, :s.shape[0]] = 1
    return states, mask, pooled


# ---- data ---------------------------------------------------------------------------------------------------

def clip_tensor(video):
    """uint8 [F, H, W, 3] -> float [3, F, H, W] in [-1, 1]."""
    return torch.from_numpy(video).permute(3, 0, 1, 2).float() / 127.5 - 1.0


def make_vae(seed=0):
    from diffusers import AutoencoderKLHunyuanVideo
    torch.manual_seed(seed)
    vae = AutoencoderKLHunyuanVideo(**VAE)
    vae.use_tiling = False
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    return vae


def make_dit(seed=0):
    from diffusers import HunyuanVideoTransformer3DModel
    torch.manual_seed(seed)
    return HunyuanVideoTransformer3DModel(**DIT)


def timed_loop(minutes, step_fn, log_every, name):
    """Calls step_fn(i, fraction of the time spent) until `minutes` have passed; returns
    [(step, seconds, mean loss since the last entry)]."""
    t0, i, curve, acc = time.time(), 0, [], []
    while time.time() - t0 < minutes * 60:
        acc.append(step_fn(i, (time.time() - t0) / (minutes * 60)))
        i += 1
        if i % log_every == 0:
            curve.append((i, time.time() - t0, float(np.mean(acc))))
            acc = []
            log(f"{name} step {i}: loss {curve[-1][2]:.5f} ({curve[-1][1] / 60:.1f} min)")
    return curve


# ---- vae ----------------------------------------------------------------------------------------------------

def learning_rate(peak, i, progress, warmup=100, floor=0.05):
    """Linear warm-up, then a cosine from `peak` down to `floor` x peak at the end of the time budget."""
    return peak * min(1.0, (i + 1) / warmup) * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def train_vae(args, vae, minutes, lr, pieces, seed, name):
    """One phase of VAE training: each step draws a (frames, batch) from `pieces`, and that many pieces of
    that length from random clips."""
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    rng = np.random.default_rng(seed)
    combos = world.all_combinations()  # the VAE sees every colour/shape/background; the DiT's held-out are captions

    def step(i, progress):
        for g in opt.param_groups:
            g["lr"] = learning_rate(lr, i, progress)
        frames, batch = pieces[rng.integers(len(pieces))]
        x = torch.stack([clip_tensor(world.render(*combos[rng.integers(len(combos))], rng, frames=FRAMES)[
            (s := rng.integers(FRAMES - frames + 1)):s + frames]) for _ in range(batch)])
        post = vae.encode(x).latent_dist
        # The decoder learns from the posterior's mean, the latent the DiT is trained on: a sample's unit
        # noise, before the encoder has learnt to shrink it, buries what small latents carry.
        rec = vae.decode(post.mode()).sample
        kl = post.kl().mean() / x[0].numel()
        # The shape covers a few percent of the frame: its pixels (those that differ from the corner, which
        # is always background) weigh `object_weight` times more, or the VAE learns the background and a
        # blob of the mean colour.
        weight = 1 + args.object_weight * ((x - x[:, :, :, :1, :1]).abs().amax(1, keepdim=True) > 0.01).float()
        err = (rec - x).abs()
        loss = ((err + err * err) * weight).mean() / weight.mean() + args.kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        return loss.item()

    vae.train()
    curve = timed_loop(minutes, step, 25, name)
    vae.eval()
    return curve


def stage_vae(args):
    """Three phases, each cached: short pieces (1, 5, 9 frames, 4 a step: many cheap steps, for the
    convolutions); whole 33-frame clips (the mid-block attention and the group norms see all 9 latent
    frames at once, as when generating; trained on short pieces only, later frames of a whole clip come
    out smeared with trails); then both mixed (whole clips one at a time had let the colours drift: red
    and green on black came out olive)."""
    out = args.work / "vae.pt"
    if out.exists():
        return torch.load(out)
    vae = make_vae(args.seed)
    phases = [("vae_short.pt", "vae (pieces)", args.vae_minutes, args.vae_lr, [(1, args.vae_batch), (5, args.vae_batch),
                                                                                (9, args.vae_batch)]),
              ("vae_whole.pt", "vae (whole clips)", args.vae_long_minutes, args.vae_long_lr, [(FRAMES, 1)]),
              ("vae.pt", "vae (mixed)", args.vae_mixed_minutes, args.vae_long_lr, [(5, 6), (FRAMES, 1)])]
    curve, steps = [], []
    for i, (file, name, minutes, lr, pieces) in enumerate(phases):
        path = args.work / file
        if path.exists():
            state = torch.load(path)
            vae.load_state_dict(state["state_dict"])
            curve, steps = state["curve"], state["phase_steps"]
            continue
        n, t = (curve[-1][0], curve[-1][1]) if curve else (0, 0.0)
        phase = train_vae(args, vae, minutes, lr, pieces, args.seed + 2 * i, name)
        curve = curve + [(n + k, t + s, l) for k, s, l in phase]
        steps = steps + [phase[-1][0] if phase else 0]
        state = {"state_dict": vae.state_dict(), "curve": curve, "phase_steps": steps}
        torch.save(state, path)
    return state


# ---- latents ------------------------------------------------------------------------------------------------

@torch.no_grad()
def stage_latents(args, vae_state):
    out = args.work / "latents.pt"
    if out.exists():
        return torch.load(out)
    vae = make_vae()
    vae.load_state_dict(vae_state["state_dict"])
    vae.eval()
    rng = np.random.default_rng(args.seed + 1)
    caps, lats = [], []
    for combo in world.training_combinations():
        for _ in range(args.clips_per_caption):
            x = clip_tensor(world.render(*combo, rng, frames=FRAMES))[None]
            lats.append(vae.encode(x).latent_dist.mean[0])
            caps.append(world.caption(*combo))
    lats = torch.stack(lats)
    # scaling_factor: latents x scaling_factor have unit variance, as the released VAE's 0.476986 does for its data.
    scale = float(1.0 / lats.std())
    state = {"captions": caps, "latents": lats * scale, "scaling_factor": scale}
    torch.save(state, out)
    log(f"latents: {tuple(lats.shape)}, scaling_factor {scale:.6f}")
    return state


# ---- dit ----------------------------------------------------------------------------------------------------

def flow_matching_loss(dit, x0, text, pooled_mask, gen):
    """HunyuanVideo's rectified-flow objective, as hyvideo's sampler (FlowMatchDiscreteScheduler,
    flow_reverse) integrates it:

      sigma in (0, 1): the noise level. Sampling walks sigma from 1 (pure noise) to 0 (data); the DiT sees
                       the timestep t = 1000 sigma.
      x_sigma = sigma * noise + (1 - sigma) * x0          the straight path from data to noise
      v       = d x_sigma / d sigma = noise - x0          the velocity the DiT learns to predict
      Euler:    x <- x + v (sigma_next - sigma)           each sampling step

    sigma is drawn as the sampler spends its steps: u ~ logit-normal, then the SD3 time shift
    sigma = s u / (1 + (s - 1) u), which puts more of training at high noise, where the layout is decided.
    """
    text_states, text_mask, pooled = text, *pooled_mask
    b = x0.shape[0]
    u = torch.sigmoid(torch.randn(b, generator=gen))
    sigma = TRAIN_SHIFT * u / (1 + (TRAIN_SHIFT - 1) * u)
    noise = torch.randn(x0.shape, generator=gen)
    s = sigma.view(b, 1, 1, 1, 1)
    x_sigma = s * noise + (1 - s) * x0
    v = dit(hidden_states=x_sigma, timestep=sigma * 1000, encoder_hidden_states=text_states,
            encoder_attention_mask=text_mask, pooled_projections=pooled,
            guidance=torch.full((b,), GUIDANCE * 1000.0), return_dict=False)[0]
    return F.mse_loss(v, noise - x0)


def stage_dit(args, table, lat_state):
    out = args.work / "dit.pt"
    if out.exists():
        return torch.load(out)
    dit = make_dit(args.seed)
    ema = {k: v.detach().clone() for k, v in dit.state_dict().items()}
    opt = torch.optim.AdamW(dit.parameters(), lr=args.dit_lr, weight_decay=0.01)
    lats, caps = lat_state["latents"], lat_state["captions"]
    gen = torch.Generator().manual_seed(args.seed)

    def step(i, progress):
        for g in opt.param_groups:
            g["lr"] = learning_rate(args.dit_lr, i, progress, warmup=200)
        idx = torch.randint(len(caps), (args.dit_batch,), generator=gen)
        # Caption dropout: a share of the batch learns the unconditional velocity, so that sampling can
        # use classifier-free guidance (--cfg-scale > 1; the shipped model follows its prompts without).
        drop = torch.rand(args.dit_batch, generator=gen) < args.caption_dropout
        states, mask, pooled = text_batch(table, [NEGATIVE if d else caps[j] for j, d in zip(idx, drop)])
        loss = flow_matching_loss(dit, lats[idx], states, (mask, pooled), gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dit.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            d = min(args.ema, (1 + i) / (10 + i))
            for k, v in dit.state_dict().items():
                if v.dtype.is_floating_point:
                    ema[k].mul_(d).add_(v.detach(), alpha=1 - d)
        return loss.item()

    dit.train()
    curve = timed_loop(args.dit_minutes, step, 50, "dit")
    state = {"state_dict": ema, "curve": curve}
    torch.save(state, out)
    return state


# ---- export -------------------------------------------------------------------------------------------------

def stage_export(args, vae_state, lat_state, dit_state):
    args.out.mkdir(parents=True, exist_ok=True)
    dit_sd = official_dit_state_dict(dit_state["state_dict"])
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in dit_sd.items()}, str(args.out / "transformer.safetensors"),
              metadata={"format": "pt", "trained_by": "tools/builtin_model/train.py"})
    vae = make_vae()
    vae.load_state_dict(vae_state["state_dict"])
    names = {n for n, _ in vae.named_parameters()}
    save_file({k: v.float().contiguous() for k, v in sorted(vae.state_dict().items()) if k in names},
              str(args.out / "vae.safetensors"), metadata={"format": "pt", "trained_by": "tools/builtin_model/train.py"})
    # The configs in the official keys, as `hyvideo generate --dit-config/--vae-config` read them; hyvideo's
    # default_dit_config() / default_vae_config() (tests/pipelines/test_builtin_model.cpp checks they agree).
    dit_config = {"patch_size": [DIT["patch_size_t"], DIT["patch_size"], DIT["patch_size"]],
                  "in_channels": DIT["in_channels"], "out_channels": DIT["out_channels"],
                  "hidden_size": DIT["num_attention_heads"] * DIT["attention_head_dim"],
                  "heads_num": DIT["num_attention_heads"], "mlp_width_ratio": DIT["mlp_ratio"],
                  "mlp_act_type": "gelu_tanh", "mm_double_blocks_depth": DIT["num_layers"],
                  "mm_single_blocks_depth": DIT["num_single_layers"], "refiner_depth": DIT["num_refiner_layers"],
                  "rope_dim_list": list(DIT["rope_axes_dim"]), "qkv_bias": True, "qk_norm": True,
                  "qk_norm_type": "rms", "guidance_embed": DIT["guidance_embeds"], "text_projection": "single_refiner",
                  "use_attention_mask": True, "text_states_dim": DIT["text_embed_dim"],
                  "text_states_dim_2": DIT["pooled_projection_dim"], "rope_theta": DIT["rope_theta"],
                  "i2v_condition_type": ""}
    n = len(VAE["block_out_channels"])
    vae_config = {"in_channels": VAE["in_channels"], "out_channels": VAE["out_channels"],
                  "down_block_types": ["DownEncoderBlockCausal3D"] * n, "up_block_types": ["UpDecoderBlockCausal3D"] * n,
                  "block_out_channels": list(VAE["block_out_channels"]), "layers_per_block": VAE["layers_per_block"],
                  "act_fn": VAE["act_fn"], "latent_channels": VAE["latent_channels"],
                  "norm_num_groups": VAE["norm_num_groups"], "sample_size": 256, "sample_tsize": 64,
                  "scaling_factor": lat_state["scaling_factor"],
                  "time_compression_ratio": VAE["temporal_compression_ratio"],
                  "spatial_compression_ratio": VAE["spatial_compression_ratio"],
                  "mid_block_add_attention": VAE["mid_block_add_attention"]}
    (args.out / "transformer_config.json").write_text(json.dumps(dit_config, indent=1) + "\n")
    (args.out / "vae_config.json").write_text(json.dumps(vae_config, indent=1) + "\n")
    # generate's defaults for this model (BuiltinSampling in include/hyvideo/pipelines/default_model.hpp).
    (args.out / "sampling.json").write_text(json.dumps({"flow_shift": args.sample_flow_shift,
                                                        "cfg_scale": args.sample_cfg_scale}, indent=1) + "\n")
    (args.out / "training.json").write_text(json.dumps({
        "scaling_factor": lat_state["scaling_factor"],
        "size": [SIZE, SIZE, FRAMES], "guidance": GUIDANCE, "train_shift": TRAIN_SHIFT,
        "held_out": [world.caption(*c) for c in world.HELD_OUT],
        "vae_steps": vae_state["curve"][-1][0] if vae_state["curve"] else 0,
        "vae_phase_steps": vae_state.get("phase_steps", []),
        "dit_steps": dit_state["curve"][-1][0] if dit_state["curve"] else 0,
        "vae_minutes": round(vae_state["curve"][-1][1] / 60, 1) if vae_state["curve"] else 0,
        "dit_minutes": round(dit_state["curve"][-1][1] / 60, 1) if dit_state["curve"] else 0,
        "caption_dropout": args.caption_dropout, "dit_lr": args.dit_lr, "dit_batch": args.dit_batch,
        "torch": torch.__version__, "seed": args.seed}, indent=1) + "\n")
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
        for a, (name, st) in zip(ax, (("VAE: L1 + MSE + KL", vae_state), ("DiT: flow-matching MSE", dit_state))):
            c = np.array(st["curve"])
            a.plot(c[:, 0], c[:, 2])
            for x in np.cumsum(st.get("phase_steps", []))[:-1]:  # the VAE's phases: pieces | whole clips | mixed
                a.axvline(x, color="gray", lw=0.8, ls="--")
            a.set_yscale("log")
            a.set_xlabel("step")
            a.set_title(name)
            a.grid(alpha=0.3)
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=110)
    log(f"export: {args.out}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hyvideo", required=True, help="the hyvideo command (for its text encoders)")
    ap.add_argument("--work", type=pathlib.Path, required=True, help="cache of the stages")
    ap.add_argument("--out", type=pathlib.Path, required=True, help="where the weights go")
    ap.add_argument("--plot", type=pathlib.Path, help="the loss curves (PNG)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--vae-minutes", type=float, default=22)
    ap.add_argument("--vae-batch", type=int, default=4)
    ap.add_argument("--vae-lr", type=float, default=1e-3)
    ap.add_argument("--vae-long-minutes", type=float, default=12)
    ap.add_argument("--vae-long-lr", type=float, default=3e-4)
    ap.add_argument("--vae-mixed-minutes", type=float, default=12)
    ap.add_argument("--object-weight", type=float, default=8.0)
    ap.add_argument("--kl-weight", type=float, default=1e-4)
    ap.add_argument("--clips-per-caption", type=int, default=12)
    ap.add_argument("--dit-minutes", type=float, default=72)
    ap.add_argument("--dit-batch", type=int, default=16)
    ap.add_argument("--dit-lr", type=float, default=1e-3)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--sample-flow-shift", type=float, default=7.0, help="generate's --flow-shift for this model")
    ap.add_argument("--sample-cfg-scale", type=float, default=1.0, help="generate's --cfg-scale for this model")
    ap.add_argument("--caption-dropout", type=float, default=0.1, help="share of DiT samples trained unconditional")
    ap.add_argument("--stop-after", choices=["embeds", "vae", "latents", "dit", "export"], default="export")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.work.mkdir(parents=True, exist_ok=True)
    table = stage_embeds(args)
    if args.stop_after == "embeds":
        return
    vae_state = stage_vae(args)
    if args.stop_after == "vae":
        return
    lat_state = stage_latents(args, vae_state)
    if args.stop_after == "latents":
        return
    dit_state = stage_dit(args, table, lat_state)
    if args.stop_after == "dit":
        return
    stage_export(args, vae_state, lat_state, dit_state)


if __name__ == "__main__":
    main()
