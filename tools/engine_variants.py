"""Ablation of native-engine build options on one GPU: latency per variant and where each variant's time goes.

    python3 tools/engine_variants.py --model swin_tiny_patch4_window7_224 \
        --variant fp16:erf:0 --variant fp16:tanh:256 --variant fp8:tanh:256 --batch-sizes 1 128 --json OUT.json

A variant is PRECISION:GELU:FUSED_MLP_MAX_C[:FUSED_ATTENTION_MAX_C[:WPC[:MLP_VARIANT[:MLP_KERNEL[:ATTENTION_KERNEL]]]]]
(FUSED_ATTENTION_MAX_C "auto" or absent: the engine's default; WPC and MLP_VARIANT set the sweep knobs $TRT_SWIN_FATTN_WPC and $TRT_SWIN_MLP_VARIANT
before the engine captures its graphs, 0 or absent: the op's default; MLP_KERNEL and ATTENTION_KERNEL auto (default),
cuda or triton; INT8 / FP8 max-calibrated on random images:
timing only, as in
`trt_swin bench --build`). For each variant: median / p90 latency per batch size (CUDA graphs, CUDA events), and the
kernel time of one replay per batch size by category (torch.profiler): GEMM (cuBLASLt), window attention, fused
MLP, row-wise memory ops (LN / partition / reverse / merge / epilogue), other (PyTorch copies, fills).
"""
from __future__ import annotations

import argparse
import json
import os
import re
from collections import defaultdict

import torch

from trt_swin.cli.args import print_table
from trt_swin.cli.bench import time_fn, timing_engine
from trt_swin.models import load_model

KNOBS = ("TRT_SWIN_FATTN_WPC", "TRT_SWIN_MLP_VARIANT")  # variant fields 5 and 6

CATEGORIES = (  # first match wins
    ("fused_attention", re.compile(r"fused_attention|fattn")),
    ("window_attention", re.compile(r"window_attention|wattn")),
    ("fused_mlp", re.compile(r"fused_mlp")),
    ("patch_merge_gemm", re.compile(r"patch_merge_gemm")),
    ("memops", re.compile(r"ln_shift|window_reverse|patch_merge|epilogue")),
    ("gemm", re.compile(r"nvjet|gemm|cutlass|xmma|sm90_|sm80_|cublas", re.I)),
)


def category(name: str) -> str:
    return next((c for c, rx in CATEGORIES if rx.search(name)), "other")


def profile(engine, x) -> tuple[dict[str, float], list[tuple[str, float]], dict[str, float]]:
    """Kernel time (ms) per category of one engine call and the number of kernels ("launches"); every GEMM
    kernel of the call in launch order as (name, us), so that two precisions can be compared GEMM by GEMM (the
    engine runs its GEMMs in the same order at every precision); and the other kernels' us summed by name."""
    engine(x)
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        engine(x)
        torch.cuda.synchronize()
    out: dict[str, float] = defaultdict(float)
    for ev in prof.key_averages():
        t = getattr(ev, "device_time_total", None) or getattr(ev, "cuda_time_total", 0.0)
        if t and ev.key not in ("cudaGraphLaunch",):
            out[category(ev.key)] += t / 1000.0
            out["launches"] += ev.count
    kernels = sorted((ev.time_range.start, ev.name, ev.time_range.elapsed_us()) for ev in prof.events()
                     if ev.device_type == torch.autograd.DeviceType.CUDA)
    others: dict[str, float] = defaultdict(float)
    for _, name, us in kernels:
        if category(name) != "gemm":
            others[name[:80]] += us
    return (dict(out), [(name[:80], round(us, 2)) for _, name, us in kernels if category(name) == "gemm"],
            {k: round(v, 2) for k, v in sorted(others.items(), key=lambda kv: -kv[1])})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="swin_tiny_patch4_window7_224")
    p.add_argument("--variant", action="append", required=True, help="PRECISION:GELU:FUSED_MLP_MAX_C[:FUSED_ATTENTION_MAX_C[:WPC[:MLP_VARIANT[:MLP_KERNEL[:ATTENTION_KERNEL]]]]]")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 128])
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--json")
    args = p.parse_args()
    torch.manual_seed(0)
    model, info = load_model(args.model)
    model = model.eval()
    rows, profiles, gemms, others = [], {}, {}, {}
    for spec in args.variant:
        prec, gelu, max_c, *rest = spec.split(":")
        attn_max_c = int(rest[0]) if rest and rest[0] != "auto" else None
        for i, knob in enumerate(KNOBS, start=1):
            if len(rest) > i and rest[i] != "0":
                os.environ[knob] = rest[i]
            else:
                os.environ.pop(knob, None)
        eng = timing_engine(model, info, prec, args.batch_sizes, gelu, int(max_c), attn_max_c,
                            rest[3] if len(rest) > 3 else "auto", rest[4] if len(rest) > 4 else "auto")
        for B in args.batch_sizes:
            x = torch.randn(B, info.in_chans, info.img_size, info.img_size, device="cuda")
            r = time_fn(eng, x, args.iters, 20)
            rows.append({"variant": spec, "batch": B, **{k: round(v, 4) for k, v in r.items()}})
            print(f"{spec} bs{B}: median {r['median_ms']:.3f} ms p90 {r['p90_ms']:.3f} ms", flush=True)
        for B in args.batch_sizes:
            x = torch.randn(B, info.in_chans, info.img_size, info.img_size, device="cuda")
            prof, gemms[f"{spec} bs{B}"], others[f"{spec} bs{B}"] = profile(eng, x)
            profiles[f"{spec} bs{B}"] = {k: round(v, 4) for k, v in sorted(prof.items())}
            print(f"{spec} bs{B} kernel ms by category: {profiles[f'{spec} bs{B}']}", flush=True)
        del eng
        torch.cuda.empty_cache()
    print_table(rows, floatfmt=".3f")
    cats = sorted({c for v in profiles.values() for c in v})
    print_table([{"variant": k, **{c: v.get(c, 0.0) for c in cats},
                  "total ms": round(sum(x for c, x in v.items() if c != "launches"), 4)}
                 for k, v in profiles.items()], floatfmt=".3f")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "model": args.model,
                       "latency": rows, "kernel_ms_by_category": profiles, "gemm_kernels_in_order": gemms,
                       "other_kernels_us_by_name": others}, f, indent=1)


if __name__ == "__main__":
    main()
