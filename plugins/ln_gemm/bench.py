"""`python -m trt_swin.plugins.ln_gemm.bench --json OUT.json`: the row-gathered GEMMs vs the two kernels each replaces.

Per (model, stage, batch), on the block's residual stream [B, H, W, C] float16:
  qkv    ln_gemm_triton(window gather)            vs  ln_shift_partition + cuBLASLt GEMM (+ bias)
  fc1    ln_gemm_triton(rows, tanh GELU)          vs  LayerNorm (ln_shift_partition, 1 x 1 windows) + GEMM (+ bias
                                                      + tanh GELU epilogue)
  proj   gemm_window_reverse_triton               vs  GEMM (+ bias) + window_reverse_ (+ residual)
Times: CUDA-graph replays of 10 calls, each behind a 64 MB L2-flushing memset (as in the engine, the weights come from
DRAM), minus the same graph of memsets alone; median of 20 replays, us per call.
"""
from __future__ import annotations

import argparse

import torch

from trt_swin.cli.args import print_table
from trt_swin.plugins.bench_utils import graph_us, start_cuda_bench, write_results

from .reference import fold_layer_norm
from .triton_ln_gemm import gemm_window_reverse_triton, ln_gemm_triton

# model -> [(stage, H, W, C, ws)] of the blocks that run unfused at batch 1 (stage 1 of Swin-T runs the fused halves)
CASES = {"swin_t": [(2, 28, 28, 192, 7), (3, 14, 14, 384, 7), (4, 7, 7, 768, 7)],
         "swin_b": [(2, 28, 28, 256, 7), (3, 14, 14, 512, 7), (4, 7, 7, 1024, 7)]}
EPS = 1e-5


def bench_case(model: str, stage: int, H: int, W: int, C: int, ws: int, batch: int, flush: torch.Tensor) -> list[dict]:
    from trt_swin.plugins.gemm.op import gemm
    from trt_swin.plugins.ln_shift_partition.op import ln_shift_partition
    from trt_swin.plugins.window_reverse.op import window_reverse_

    dev = "cuda"
    ss = ws // 2 if H > ws else 0
    x = (1.5 * torch.randn(batch, H, W, C, device=dev) + 1.0).half()
    gamma, beta = 1 + 0.2 * torch.randn(C, device=dev), 0.2 * torch.randn(C, device=dev)
    rows = []
    for name, N in (("qkv", 3 * C), ("fc1", 4 * C), ("proj", C)):
        w = (torch.randn(N, C, device=dev) / C ** 0.5).half()
        b = 0.1 * torch.randn(N, device=dev)
        b16 = b.half()
        if name == "qkv":
            f = fold_layer_norm(w, gamma, beta, b)
            new = lambda: ln_gemm_triton(x, f, EPS, ("window", ws, ss))  # noqa: E731
            old = lambda: gemm(ln_shift_partition(x, gamma, beta, EPS, ws, ss), w, b16)  # noqa: E731
        elif name == "fc1":
            f = fold_layer_norm(w, gamma, beta, b)
            new = lambda: ln_gemm_triton(x, f, EPS, ("rows",), "gelu_tanh")  # noqa: E731
            old = lambda: gemm(ln_shift_partition(x, gamma, beta, EPS, 1, 0), w, b16, None, "gelu_tanh")  # noqa: E731
        else:
            a = torch.randn(batch * H * W, C, device=dev).half()
            new = lambda: gemm_window_reverse_triton(a, w, b, x, ws, ss)  # noqa: E731
            old = lambda: window_reverse_(gemm(a, w, b16), x, None, ws, ss)  # noqa: E731
        r = dict(model=model, stage=stage, batch=batch, op=name, M=batch * H * W, K=C, N=N,
                 triton_us=graph_us(new, flush), two_kernels_us=graph_us(old, flush))
        r["speedup"] = r["two_kernels_us"] / r["triton_us"]
        rows.append(r)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="1,2", help="comma list (default: %(default)s)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    if start_cuda_bench() is None:
        return 2
    flush = torch.empty(64 << 20, dtype=torch.uint8, device="cuda")
    rows = [r for b in args.batches.split(",") for m, stages in CASES.items() for st in stages
            for r in bench_case(m, *st, int(b), flush)]
    out = write_results(rows, args.json)
    print(f"\nrow-gathered GEMMs vs the two-kernel path on {out['device']} (us per call, weights from DRAM)\n")
    print_table(rows, floatfmt=".4g")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
