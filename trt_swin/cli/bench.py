"""`trt_swin bench`: latency and throughput of a model's PyTorch baselines and our engines, in one run on one GPU.

Backends: eager-fp32, eager-fp16, eager-fp16-graph (CUDA graph of the FP16 module), compile-max-autotune
(`torch.compile(mode="max-autotune")` FP16, one compiled object per model, specialized per batch size), and native
engines (`--engine` files, or `--build fp16,int8,fp8` built in-process; INT8 / FP8 built this way are max-calibrated on
random images: right for timing, not for accuracy). Every backend gets the same FP16 images (eager-fp32 casts them
inside its timing; `--engine-input fp32` hands the engines an FP32 copy instead). Latency: median and p90 of CUDA-event
times over --iters calls after --warmup calls; throughput = batch / median latency.

max-autotune compiles take minutes per batch size. Warm the inductor cache first, then measure everything in a second
run on the same machine (compiled kernels persist in TORCHINDUCTOR_CACHE_DIR):
    trt_swin bench --model swin_tiny_patch4_window7_224 --backends compile-max-autotune --compile-only
    trt_swin bench --model swin_tiny_patch4_window7_224 --build fp16,int8,fp8 --json runs/bench/swin_t.json --plot runs/bench/swin_t.png
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from .args import print_table, write_json

NAME = "bench"
HELP = "latency / throughput of PyTorch eager, CUDA graph, torch.compile and our engines at several batch sizes"

BASELINES = ("eager-fp32", "eager-fp16", "eager-fp16-graph", "compile-max-autotune")
DEFAULT_MODELS = ("swin_tiny_patch4_window7_224", "swin_base_patch4_window7_224", "swin_large_patch4_window7_224",
                  "swin_base_patch4_window12_384")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", action="append", help=f"preset / timm name / checkpoint (repeatable; default: {', '.join(DEFAULT_MODELS)})")
    p.add_argument("--engine", action="append", default=[], help="engine file to time (repeatable; for the first --model)")
    p.add_argument("--build", default="", help="comma list of native engine precisions to build in-process: fp16,int8,fp8")
    p.add_argument("--gelu", choices=("erf", "tanh"), default="tanh", help="FC1 GELU flavour of engines built with --build")
    p.add_argument("--fused-mlp-max-c", type=int, default=128, metavar="C",
                   help="engines built with --build: blocks with C <= this run a fused FP16 MLP kernel (0: never)")
    p.add_argument("--mlp-kernel", choices=("auto", "cuda", "triton"), default="auto",
                   help="engines built with --build: the fused MLP kernel (auto: triton on compute capability 9.x)")
    p.add_argument("--fused-attention-max-c", type=int, default=None, metavar="C",
                   help="engines built with --build: blocks with C <= this run a fused FP16 attention half (0: never; "
                   "default: by the attention kernel, see build-engine)")
    p.add_argument("--attention-kernel", choices=("auto", "cuda", "triton"), default="auto",
                   help="engines built with --build: the fused attention kernel (auto: triton on compute capability 9.x)")
    p.add_argument("--backends", default=",".join(BASELINES), help=f"comma list of baselines ({', '.join(BASELINES)}) or 'none'")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 128])
    p.add_argument("--engine-input", choices=("fp16", "fp32"), default="fp16",
                   help="images the engines get: fp16 (default), the tensor the FP16 baselines get, or its FP32 copy")
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--compile-only", action="store_true", help="only compile the torch.compile baselines (cache warm-up)")
    p.add_argument("--json", metavar="PATH", help="write all results as JSON")
    p.add_argument("--md", metavar="PATH", help="write the markdown table")
    p.add_argument("--plot", metavar="PATH", help="PNG: throughput vs batch per backend, one panel per model")


def time_fn(fn, x, iters: int, warmup: int) -> dict:
    """Median / p90 latency (ms) of fn(x) over `iters` CUDA-event-timed calls after `warmup` calls."""
    import torch

    for _ in range(warmup):
        fn(x)
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    for s, e in zip(starts, ends):
        s.record()
        fn(x)
        e.record()
    torch.cuda.synchronize()
    ms = sorted(s.elapsed_time(e) for s, e in zip(starts, ends))
    med, p90 = ms[len(ms) // 2], ms[min(len(ms) - 1, int(0.9 * len(ms)))]
    return {"median_ms": med, "p90_ms": p90, "images_per_s": x.shape[0] * 1000.0 / med}


def _graphed(module, x):
    """A callable replaying a CUDA graph of module(x) for x's shape (the eager + CUDA graph baseline)."""
    import torch

    static_in = x.clone()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            module(static_in)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        static_out = module(static_in)

    def run(inp):
        static_in.copy_(inp)
        g.replay()
        return static_out
    return run


def timing_engine(model, info, precision: str, batch_sizes: list[int], gelu: str, fused_mlp_max_c: int,
                  fused_attention_max_c: int | None = None, mlp_kernel: str = "auto",
                  attention_kernel: str = "auto"):
    """A native engine of `model` built in-process on CUDA, with CUDA graphs for `batch_sizes`. INT8 / FP8 scales are
    max-calibrated on 16 random images: right for timing, not for accuracy."""
    import torch

    from ..engines.native import BuildConfig, NativeEngine, build_native_engine, calibrate_max

    model = model.float().cpu()
    scales = None
    if precision != "fp16":
        g = torch.Generator().manual_seed(0)
        imgs = torch.randn((16, info.in_chans, info.img_size, info.img_size), generator=g)
        scales = calibrate_max(model, imgs, precision)
    cfg = BuildConfig(precision=precision, max_batch=max(batch_sizes), recipe=precision if precision != "fp16" else None,
                      gelu=gelu, fused_mlp_max_c=fused_mlp_max_c, fused_attention_max_c=fused_attention_max_c,
                      mlp_kernel=mlp_kernel, attention_kernel=attention_kernel)
    plan, tensors, build = build_native_engine(model, cfg, scales, model_info=info.to_dict(), device=torch.device("cuda"))
    return NativeEngine({"config": plan, "build": build}, tensors, "cuda", buckets=batch_sizes)


def bench_model(spec: str, args, engines_files: list[str]) -> list[dict]:
    import torch

    from ..engines import load
    from ..models import load_model

    model, info = load_model(spec)
    model = model.eval()
    rows = []
    baselines = [b for b in args.backends.split(",") if b and b != "none"]
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise ValueError(f"unknown --backends {unknown}; choose from {', '.join(BASELINES)}")
    shape = (info.in_chans, info.img_size, info.img_size)
    fns: dict[str, object] = {}
    compiled = None
    m32 = m16 = None
    import copy

    if "eager-fp32" in baselines:
        m32 = copy.deepcopy(model).cuda().float()
        fns["eager-fp32"] = lambda x: m32(x.float())
    if any(b in baselines for b in ("eager-fp16", "eager-fp16-graph", "compile-max-autotune")):
        m16 = copy.deepcopy(model).cuda().half()
        fns["eager-fp16"] = lambda x: m16(x)
    if "compile-max-autotune" in baselines:
        torch._dynamo.config.cache_size_limit = max(64, torch._dynamo.config.cache_size_limit)
        compiled = torch.compile(m16, mode="max-autotune", dynamic=False)  # kept: one specialization per batch size
    engines = {}
    if args.build and not args.compile_only:
        for prec in (p for p in args.build.split(",") if p):
            engines[f"native-{prec}"] = timing_engine(model, info, prec, args.batch_sizes, args.gelu,
                                                      args.fused_mlp_max_c, args.fused_attention_max_c,
                                                      args.mlp_kernel, args.attention_kernel)
    for path in engines_files:
        engines[Path(path).name] = load(path, device="cuda")
    with torch.no_grad():
        for B in args.batch_sizes:
            x16 = torch.randn((B, *shape), device="cuda").half()
            plan = []
            if compiled is not None:
                t0 = time.time()
                compiled(x16)  # compile (or load from the inductor cache) for this batch size
                torch.cuda.synchronize()
                print(f"[{info.name} bs{B}] torch.compile max-autotune ready in {time.time() - t0:.0f}s", flush=True)
                plan.append(("compile-max-autotune", compiled, x16))
            if args.compile_only:
                continue
            for name in ("eager-fp32", "eager-fp16"):
                if name in baselines:
                    plan.append((name, fns[name], x16))
            if "eager-fp16-graph" in baselines:
                plan.append(("eager-fp16-graph", _graphed(m16, x16), x16))
            for name, eng in engines.items():
                if B <= eng.max_batch:
                    plan.append((name, eng, x16 if args.engine_input == "fp16" else x16.float()))
            for name, fn, x in plan:
                r = time_fn(fn, x, args.iters, args.warmup)
                rows.append({"model": info.name, "backend": name, "batch": B, "input": str(x.dtype).split(".")[-1], **r})
                print(f"[{info.name} bs{B}] {name:24s} median {r['median_ms']:.3f} ms  p90 {r['p90_ms']:.3f} ms  "
                      f"{r['images_per_s']:.0f} img/s", flush=True)
    del m32, m16, engines
    torch.cuda.empty_cache()
    return rows


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.5), squeeze=False)
    for ax, m in zip(axes[0], models):
        for be in dict.fromkeys(r["backend"] for r in rows if r["model"] == m):
            pts = sorted((r["batch"], r["images_per_s"]) for r in rows if r["model"] == m and r["backend"] == be)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=be)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch")
        ax.set_ylabel("images/s")
        ax.set_title(m)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def run(args) -> int:
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("trt_swin bench measures on a GPU: CUDA is not available on this machine")
    models = args.model or list(DEFAULT_MODELS)
    rows: list[dict] = []
    for i, spec in enumerate(models):
        rows += bench_model(spec, args, args.engine if i == 0 else [])
    if args.compile_only:
        print("torch.compile caches warmed; rerun without --compile-only to measure")
        return 0
    table = [{"model": r["model"], "backend": r["backend"], "input": r["input"], "batch": r["batch"], "median ms": r["median_ms"],
              "p90 ms": r["p90_ms"], "images/s": r["images_per_s"]} for r in rows]
    print_table(table, floatfmt=".3f")
    gpu = torch.cuda.get_device_name()
    write_json({"gpu": gpu, "torch": torch.__version__, "iters": args.iters, "warmup": args.warmup, "results": rows},
               args.json)
    if args.md:
        import contextlib
        import io

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            print_table(table, floatfmt=".3f")
        Path(args.md).parent.mkdir(parents=True, exist_ok=True)
        Path(args.md).write_text(f"GPU: {gpu}, torch {torch.__version__}\n\n" + buf.getvalue())
    if args.plot:
        plot(rows, args.plot)
    return 0
