"""Timing helpers shared by the per-op benchmarks (`python -m trt_swin.plugins.<op>.bench`)."""
from __future__ import annotations

import json
import sys

import torch


def time_ms(fn, rep: int = 200) -> float:
    """Median milliseconds of fn() on the GPU: triton's do_bench (L2 flushed between calls), else CUDA events."""
    try:
        from triton.testing import do_bench

        return float(do_bench(fn, warmup=25, rep=rep, return_mode="median"))
    except ImportError:
        for _ in range(10):
            fn()
        times = []
        for _ in range(100):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b))
        return sorted(times)[len(times) // 2]


def copy_bandwidth_gbs(nbytes: int = 1 << 30) -> float:
    """Device-to-device copy bandwidth, counting bytes read plus bytes written."""
    src = torch.empty(nbytes // 2, dtype=torch.float16, device="cuda").normal_()
    dst = torch.empty_like(src)
    ms = time_ms(lambda: dst.copy_(src))
    return 2 * nbytes / ms / 1e6


def rotating(fn, sets):
    """A callable running fn(*sets[i]) with i cycling over the argument sets (inputs too large to stay in L2)."""
    state = {"i": 0}

    def call():
        args = sets[state["i"] % len(sets)]
        state["i"] += 1
        return fn(*args)

    return call


def start_cuda_bench() -> float | None:
    """The op benches' common start: None (after printing why) without CUDA; else a fixed seed and the device's
    copy bandwidth (GB/s, read + write), against which each bench states its bytes floor."""
    if not torch.cuda.is_available():
        print("error: CUDA is not available", file=sys.stderr)
        return None
    torch.manual_seed(0)
    return copy_bandwidth_gbs()


def write_results(rows: list[dict], json_path: str | None, **extra) -> dict:
    """The op benches' results document: the device, torch's version, `extra` fields and the rows; written to
    json_path when given. Returned for the bench's table."""
    out = dict(device=torch.cuda.get_device_name(), **extra, torch=torch.__version__, results=rows)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(out, f, indent=1)
    return out


def graph_us(fn, flush: torch.Tensor, iters: int = 20, reps: int = 10) -> float:
    """Median us per call of fn() behind an L2 flush: a CUDA graph of `reps` x (flush.zero_(), fn()) replayed `iters`
    times, minus the same graph of flushes alone (so weights come from DRAM, as in an engine)."""
    def run(with_fn: bool) -> float:
        fn()
        torch.cuda.synchronize()
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for _ in range(reps):
                flush.zero_()
                if with_fn:
                    fn()
        g.replay()
        torch.cuda.synchronize()
        ts = []
        for _ in range(iters):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            g.replay()
            b.record()
            b.synchronize()
            ts.append(a.elapsed_time(b) * 1000 / reps)
        return sorted(ts)[len(ts) // 2]

    return run(True) - run(False)
