#!/usr/bin/env python3
"""The text encoders of bench_text_encoder.cpp in PyTorch (transformers), for a side-by-side comparison.

LLM: transformers' LlamaModel with llava-llama-3-8b's widths (hidden 4096, 32 heads, 8 KV heads,
head_dim 128, MLP 14336, vocab 128320, rms eps 1e-5, rope theta 500000) but only --layers decoder
layers (default 4): the 30 layers the encoder runs take 13 GB in bf16, which does not fit in memory
beside the page cache of the weight file. The weights of those layers, the embedding and the final
norm are read from the same folder bench_text_encoder reads (--llm, written by make_random_llama.py).
It runs in bf16 (the model's parameters bf16, as from_pretrained(torch_dtype=torch.bfloat16) gives it)
and, with --llm-f32, in f32, on the same 351 tokens (--tokens, written by bench_text_encoder
--tokens-out), with the same attention mask. Each decoder layer is timed by forward hooks: the
per-layer figure is the median over every layer of --runs forwards, after one untimed warm-up.

CLIP: transformers' CLIPTextModel at CLIP-L's size (hidden 768, 12 layers, 12 heads, MLP 3072,
quick_gelu, 77 positions), random weights, in f32 and in bf16, the same 77 CLIP tokens and mask.

--profile prints torch.profiler's table of one LLM layer's operators (bf16), to compare with
bench_text_encoder --parts.

    OMP_WAIT_POLICY=passive python3 bench/bench_text_encoder_torch.py --llm DIR --tokens tokens.json \
        [--threads 2] [--layers 4] [--runs 5] [--clip-runs 20] [--llm-f32] [--skip-llm] [--skip-clip] [--profile]

Needs torch, transformers and safetensors (pip); the library and its tests never do.
"""
import argparse
import json
import os
import pathlib
import resource
import statistics
import time

import torch
from safetensors import safe_open
from transformers import CLIPTextConfig, CLIPTextModel, LlamaConfig, LlamaModel


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_anon_mib():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class OtherLoad:
    """CPU time other processes used since construction, per second of wall time, in cores."""

    def __init__(self):
        self.wall, self.busy, self.own = time.perf_counter(), self._busy(), self._own()

    @staticmethod
    def _busy():
        v = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
        return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own():
        t = os.times()
        return t.user + t.system

    def cores(self):
        return ((self._busy() - self.busy) - (self._own() - self.own)) / (time.perf_counter() - self.wall)


class LayerTimer:
    """Forward hooks that time every call of the given modules."""

    def __init__(self, modules):
        self.times, self.start, self.enabled = [], {}, False
        for m in modules:
            m.register_forward_pre_hook(self._pre)
            m.register_forward_hook(self._post)

    def _pre(self, module, args):
        self.start[id(module)] = time.perf_counter()

    def _post(self, module, args, out):
        if self.enabled:
            self.times.append(time.perf_counter() - self.start[id(module)])


def timed_forwards(runs, fn, timer):
    fn()  # warm-up
    timer.times, timer.enabled, totals = [], True, []
    load = OtherLoad()
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        totals.append(time.perf_counter() - t0)
    timer.enabled = False
    return statistics.median(totals), statistics.median(timer.times), load.cores()


def llama_config(layers):
    return LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=layers, num_attention_heads=32,
                       num_key_value_heads=8, head_dim=128, vocab_size=128320, rms_norm_eps=1e-5, rope_theta=500000.0,
                       max_position_embeddings=8192, hidden_act="silu", attention_bias=False, mlp_bias=False)


def load_llm(folder, layers):
    """LlamaModel(layers) in bf16 with the folder's embedding, first `layers` layers and final norm."""
    folder = pathlib.Path(folder)
    weight_map = json.loads((folder / "model.safetensors.index.json").read_text())["weight_map"]
    torch.set_default_dtype(torch.bfloat16)
    model = LlamaModel(llama_config(layers)).eval()
    torch.set_default_dtype(torch.float32)
    wanted = {k: v for k, v in weight_map.items() if k.startswith("model.") and
              (not k.startswith("model.layers.") or int(k.split(".")[2]) < layers)}
    state = {}
    for shard in sorted(set(wanted.values())):
        with safe_open(folder / shard, framework="pt") as f:
            for k in wanted:
                if wanted[k] == shard:
                    state[k[len("model."):]] = f.get_tensor(k)
    model.load_state_dict(state, strict=True)
    del state
    return model


def bench_llm(args, tokens):
    ids = torch.tensor([tokens["llm"]["input_ids"]], dtype=torch.long)
    mask = torch.tensor([tokens["llm"]["attention_mask"]], dtype=torch.long)
    anon0 = rss_anon_mib()
    model = load_llm(args.llm, args.layers)
    print(f"LLM: LlamaModel, {args.layers} layers of llava-llama-3-8b's width, attention "
          f"'{model.config._attn_implementation}', {ids.shape[1]} tokens ({int(mask.sum())} valid), "
          f"rope {model.config.rope_parameters}; weights loaded, RssAnon +{rss_anon_mib() - anon0:.0f} MiB")
    timer = LayerTimer(model.layers)
    modes = [("bf16", torch.bfloat16)] + ([("f32", torch.float32)] if args.llm_f32 else [])
    for name, dtype in modes:
        model.to(dtype)
        with torch.inference_mode():
            whole, layer, others = timed_forwards(
                args.runs, lambda: model(input_ids=ids, attention_mask=mask, use_cache=False), timer)
        print(f"  {name:5} forward of {args.layers} layers {whole:7.3f} s, layer {layer:.4f} s (median of {args.runs}; "
              f"other processes {others:.2f} cores); outside the layers {whole - args.layers * layer:.3f} s; "
              f"RssAnon {rss_anon_mib():.0f} MiB, peak RSS {peak_rss_mib():.0f} MiB")
        print(f"RESULT torch-llm {name} layer_s={layer:.4f} forward_s={whole:.3f} layers={args.layers} "
              f"est_30_layer_encode_s={whole - args.layers * layer + 30 * layer:.3f} peak_rss_mib={peak_rss_mib():.0f} "
              f"others_cores={others:.2f}")
        if args.profile and name == "bf16":
            from torch.profiler import ProfilerActivity, profile
            emb = model.embed_tokens(ids)
            with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(args.runs):
                    model(inputs_embeds=emb, attention_mask=mask, use_cache=False)
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18))
    del model


def bench_clip(args, tokens):
    ids = torch.tensor([tokens["clip"]["input_ids"]], dtype=torch.long)
    mask = torch.tensor([tokens["clip"]["attention_mask"]], dtype=torch.long)
    cfg = CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                         num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
                         layer_norm_eps=1e-5, projection_dim=768)
    torch.manual_seed(0)
    model = CLIPTextModel(cfg).eval()
    timer = LayerTimer(getattr(model, "text_model", model).encoder.layers)  # transformers 5 has no text_model
    print(f"CLIP-L text: CLIPTextModel, attention '{model.config._attn_implementation}', {ids.shape[1]} tokens "
          f"({int(mask.sum())} valid)")
    for name, dtype in (("f32", torch.float32), ("bf16", torch.bfloat16)):
        model.to(dtype)
        with torch.inference_mode():
            whole, layer, others = timed_forwards(args.clip_runs, lambda: model(input_ids=ids, attention_mask=mask),
                                                  timer)
        print(f"  {name:5} encode {whole * 1e3:7.2f} ms, layer {layer * 1e3:6.2f} ms (median of {args.clip_runs}; "
              f"other processes {others:.2f} cores); peak RSS {peak_rss_mib():.0f} MiB")
        print(f"RESULT torch-clip {name} encode_ms={whole * 1e3:.2f} layer_ms={layer * 1e3:.3f} "
              f"peak_rss_mib={peak_rss_mib():.0f} others_cores={others:.2f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llm", help="the folder bench/make_random_llama.py wrote")
    ap.add_argument("--tokens", required=True, help="the JSON bench_text_encoder --tokens-out wrote")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--clip-runs", type=int, default=20)
    ap.add_argument("--llm-f32", action="store_true")
    ap.add_argument("--skip-llm", action="store_true")
    ap.add_argument("--skip-clip", action="store_true")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tokens = json.loads(pathlib.Path(args.tokens).read_text())
    import transformers
    print(f"PyTorch {torch.__version__}, transformers {transformers.__version__}, {args.threads} threads, "
          f"oneDNN bf16 {torch.backends.mkldnn.is_available()}")
    if not args.skip_llm:
        bench_llm(args, tokens)
    if not args.skip_clip:
        bench_clip(args, tokens)


if __name__ == "__main__":
    main()
