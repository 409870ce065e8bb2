"""`python -m trt_swin.plugins.bench_memops`: the memory-bound fused ops against the eager PyTorch code they replace
and against torch.compile of that code, on Swin-T and Swin-L shapes (every stage) at batch 1, 32 and 128.

Each op's bytes are its minimal traffic (inputs read once, outputs written once); GB/s and the fraction of a
device-to-device copy's bandwidth (bytes read + written, measured in the same run) are reported for our kernel.
Calls are timed as CUDA-graph replays of many calls over rotating input sets (so launch gaps and L2 hits do not
count where the inputs are larger than L2); small shapes still measure launch-bound work. Prints a markdown table;
--json writes every row. --out int8 / fp8 times the LayerNorm ops with that output kind (1-byte outputs, fewer
bytes; the eager and compiled baselines stay fp16).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from trt_swin.plugins import load

# (model, stage, H, W, C, ws, shift of the stage's shifted block; 0 where the stage has none)
STAGES = [
    ("swin_t", 1, 56, 56, 96, 7, 3), ("swin_t", 2, 28, 28, 192, 7, 3), ("swin_t", 3, 14, 14, 384, 7, 3),
    ("swin_t", 4, 7, 7, 768, 7, 0),
    ("swin_l", 1, 56, 56, 192, 7, 3), ("swin_l", 2, 28, 28, 384, 7, 3), ("swin_l", 3, 14, 14, 768, 7, 3),
    ("swin_l", 4, 7, 7, 1536, 7, 0),
]
L2_BYTES = 50 << 20


@dataclass
class Row:
    op: str
    model: str
    stage: int
    batch: int
    shape: str
    bytes: int
    ours_us: float
    eager_us: float
    compiled_us: float | None
    ours_gbps: float
    copy_frac: float
    vs_eager: float
    vs_compiled: float | None


def time_us(fn, arg_sets: list[tuple], target_ms: float = 20.0, replays: int = 15) -> float:
    """Median time of one call, from CUDA-graph replays of calls cycling over arg_sets (plain loop if capture fails)."""
    for a in arg_sets:
        fn(*a)
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for a in arg_sets:
        fn(*a)
    end.record()
    torch.cuda.synchronize()
    per_call_ms = max(start.elapsed_time(end) / len(arg_sets), 1e-3)
    n = max(len(arg_sets), min(2000, math.ceil(target_ms / per_call_ms)))
    calls = [arg_sets[i % len(arg_sets)] for i in range(n)]
    try:
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for a in arg_sets:
                fn(*a)
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for a in calls:
                fn(*a)
        run = g.replay
    except Exception as e:  # noqa: BLE001 - report and fall back to a launch loop
        print(f"  (graph capture failed: {type(e).__name__}: {e}; timing a launch loop)", file=sys.stderr)
        torch.cuda.synchronize()

        def run():
            for a in calls:
                fn(*a)
    run()
    times = []
    for _ in range(replays):
        start.record()
        run()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) * 1e3 / n)
    return statistics.median(times)


def copy_bandwidth_gbps() -> tuple[float, float]:
    """Device-to-device copy of 1 GiB, (bytes read + bytes written) / time: (cudaMemcpy via copy_, a copy kernel).

    The copy engine path (cudaMemcpyAsync) can run well under what a kernel reaches, so both are measured and the
    larger is the reference."""
    src = torch.randn(1 << 29, dtype=torch.float16, device="cuda")
    dst = torch.empty_like(src)
    nbytes = 2 * src.numel() * src.element_size()
    t_memcpy = time_us(lambda: dst.copy_(src), [()], target_ms=50, replays=10)
    t_kernel = time_us(lambda: torch.mul(src, 1.0, out=dst), [()], target_ms=50, replays=10)
    return nbytes / (t_memcpy * 1e-6) / 1e9, nbytes / (t_kernel * 1e-6) / 1e9


# --- the eager PyTorch code each op replaces (fp16 model, timm's code path) ------------------------------------------

def eager_ln_shift_partition(x, g, b, g16, b16, ws, shift):
    B, H, W, C = x.shape
    x = F.layer_norm(x, (C,), g16, b16, 1e-5)
    if shift:
        x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
    x = x.view(B, H // ws, ws, W // ws, ws, C).permute(0, 1, 3, 2, 4, 5).contiguous()
    return x.view(-1, C)


def eager_window_reverse(y, residual, g, b, g16, b16, ws, shift):
    B, H, W, C = residual.shape
    x = y.view(B, H // ws, W // ws, ws, ws, C).permute(0, 1, 3, 2, 4, 5).contiguous().view(B, H, W, C)
    if shift:
        x = torch.roll(x, shifts=(shift, shift), dims=(1, 2))
    x = residual + x
    return x, F.layer_norm(x, (C,), g16, b16, 1e-5)


def eager_patch_merge(x, g, b, g16, b16):
    B, H, W, C = x.shape
    x = x.reshape(B, H // 2, 2, W // 2, 2, C).permute(0, 1, 3, 4, 2, 5).flatten(3)
    return F.layer_norm(x, (4 * C,), g16, b16, 1e-5)


def eager_bias_gelu(x, bias, b16):
    return F.gelu(x + b16)


def eager_int32_dequant_bias_residual(x, residual, scale, col, bias):
    return (x.float() * scale * col + bias).half() + residual


def bench_cases(stage, H, W, C, ws, shift, B, out="fp16"):
    """Yields (op, bytes, ours, eager, extra args, input-set builder) per op at one shape; both callables take
    (*inputs, *extra). The eager functions are module-level so that one torch.compile object serves every shape.
    `out`: the LayerNorm ops' output kind (fp16, int8 or fp8; the op names get a [int8] / [fp8] suffix)."""
    dev = "cuda"
    T = B * H * W
    g, b = torch.randn(C, device=dev), torch.randn(C, device=dev)
    g4, b4 = torch.randn(4 * C, device=dev), torch.randn(4 * C, device=dev)
    ops = torch.ops.trt_swin
    scale, fp8 = (None, False) if out == "fp16" else (0.05, out == "fp8")
    ob = 2 if out == "fp16" else 1  # bytes per output element
    tag = "" if out == "fp16" else f"[{out}]"

    yield (f"ln_shift_partition{tag}", (2 + ob) * T * C,
           lambda x, g, b, g16, b16, ws, shift: ops.ln_shift_partition(x, g, b, 1e-5, ws, shift, scale, fp8),
           eager_ln_shift_partition, (g, b, g.half(), b.half(), ws, shift),
           lambda: (torch.randn(B, H, W, C, device=dev, dtype=torch.float16),))
    yield (f"window_reverse+ln{tag}", (6 + ob) * T * C,
           lambda y, r, g, b, g16, b16, ws, shift: ops.window_reverse(y, r, None, ws, shift, 1.0, g, b, 1e-5, scale,
                                                                      fp8),
           eager_window_reverse, (g, b, g.half(), b.half(), ws, shift),
           lambda: (torch.randn(T, C, device=dev, dtype=torch.float16),
                    torch.randn(B, H, W, C, device=dev, dtype=torch.float16)))
    if stage < 4:
        yield (f"patch_merge{tag}", (2 + ob) * T * C,
               lambda x, g, b, g16, b16: ops.patch_merge(x, g, b, 1e-5, scale, fp8),
               eager_patch_merge, (g4, b4, g4.half(), b4.half()),
               lambda: (torch.randn(B, H, W, C, device=dev, dtype=torch.float16),))
    bias4 = torch.randn(4 * C, device=dev)
    yield ("epilogue fc1 bias+gelu", 2 * 2 * T * 4 * C,
           lambda x, bias, b16: ops.epilogue(x, 1.0, None, bias, "gelu", None, None),
           eager_bias_gelu, (bias4, bias4.half()),
           lambda: (torch.randn(T, 4 * C, device=dev, dtype=torch.float16),))
    col = torch.rand(C, device=dev)
    yield ("epilogue int32 deq+bias+res", (4 + 2 + 2) * T * C,
           lambda x, r, scale, col, bias: ops.epilogue(x, scale, col, bias, "none", r, None),
           eager_int32_dequant_bias_residual, (1e-4, col, b),
           lambda: (torch.randint(-30000, 30000, (T, C), device=dev, dtype=torch.int32),
                    torch.randn(T, C, device=dev, dtype=torch.float16)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trt_swin.plugins.bench_memops", description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="1,32,128")
    p.add_argument("--models", default="swin_t,swin_l")
    p.add_argument("--compile", choices=["auto", "static", "dynamic", "none"], default="auto",
                   help="torch.compile baseline: static shapes, dynamic shapes, or auto (static at the largest batch, "
                        "dynamic below it, which bounds the number of compilations)")
    p.add_argument("--ops", default="", help="comma list of op names to run (default: all)")
    p.add_argument("--out", choices=["fp16", "int8", "fp8"], default="fp16",
                   help="output kind of ln_shift_partition, window_reverse's LayerNorm and patch_merge")
    p.add_argument("--json", help="write all rows and the copy bandwidth here")
    args = p.parse_args(argv)
    load()
    torch.backends.cuda.matmul.allow_tf32 = True
    torch._dynamo.config.cache_size_limit = 256
    batches = [int(b) for b in args.batches.split(",")]
    models = args.models.split(",")
    memcpy_gbps, kernel_copy_gbps = copy_bandwidth_gbps()
    copy_gbps = max(memcpy_gbps, kernel_copy_gbps)
    print(f"device: {torch.cuda.get_device_name()}, device-to-device copy (read + write): cudaMemcpy {memcpy_gbps:.0f} "
          f"GB/s, copy kernel {kernel_copy_gbps:.0f} GB/s; reference {copy_gbps:.0f} GB/s")
    compiled: dict = {}
    rows: list[Row] = []

    def compiled_fn(eager, dynamic):
        key = (eager.__name__, dynamic)
        if key not in compiled:
            compiled[key] = torch.compile(eager, dynamic=dynamic)
        return compiled[key]

    for model, stage, H, W, C, ws, shift in STAGES:
        if model not in models:
            continue
        for B in batches:
            for op, nbytes, ours, eager, extra, make in bench_cases(stage, H, W, C, ws, shift, B, args.out):
                if args.ops and op.split("[")[0] not in args.ops.split(","):  # names without the [int8] / [fp8] tag
                    continue
                n_sets = max(1, min(256, math.ceil(2 * L2_BYTES / nbytes)))
                sets = [make() + extra for _ in range(n_sets)]
                t_ours = time_us(ours, sets)
                t_eager = time_us(eager, sets)
                t_comp = None
                if args.compile != "none":
                    dynamic = args.compile == "dynamic" or (args.compile == "auto" and B != max(batches))
                    try:
                        t_comp = time_us(compiled_fn(eager, dynamic), sets)
                    except Exception as e:  # noqa: BLE001
                        print(f"  torch.compile failed for {op} {model} s{stage} B{B}: {e}", file=sys.stderr)
                gbps = nbytes / (t_ours * 1e-6) / 1e9
                rows.append(Row(op, model, stage, B, f"{B}x{H}x{W}x{C}", nbytes, round(t_ours, 2), round(t_eager, 2),
                                None if t_comp is None else round(t_comp, 2), round(gbps, 1),
                                round(gbps / copy_gbps, 3), round(t_eager / t_ours, 2),
                                None if t_comp is None else round(t_comp / t_ours, 2)))
                r = rows[-1]
                print(f"  {op:30s} {model} s{stage} B{B:<3d} ours {r.ours_us:9.2f} us  eager {r.eager_us:9.2f}  "
                      f"compiled {r.compiled_us}  {r.ours_gbps:7.1f} GB/s  {r.copy_frac:.2f} of copy", flush=True)
                del sets
            if args.json:
                with open(args.json, "w") as f:
                    json.dump({"device": torch.cuda.get_device_name(), "copy_gbps": copy_gbps,
                               "memcpy_gbps": memcpy_gbps, "kernel_copy_gbps": kernel_copy_gbps,
                               "compile_mode": args.compile,
                               "row_target_vpt": os.environ.get("TRT_SWIN_ROW_TARGET_VPT", "default (6)"), "rows": [asdict(r) for r in rows]}, f, indent=1)

    print("\n| op | model | stage | B | ours us | eager us | compiled us | ours GB/s | of copy | x eager | x compiled |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.op} | {r.model} | {r.stage} | {r.batch} | {r.ours_us} | {r.eager_us} | {r.compiled_us} | "
              f"{r.ours_gbps} | {r.copy_frac} | {r.vs_eager} | {r.vs_compiled} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
