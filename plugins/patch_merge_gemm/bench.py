"""`python -m trt_swin.plugins.patch_merge_gemm.bench --json OUT.json`: the one-kernel patch merging against the two
kernels it replaces (patch_merge + cuBLASLt's FP16 GEMM), on Swin-T / S stage 1 (56 x 56 at 224, 96 x 96 at 384,
C 96) per batch.

Times: bench_utils.graph_us (CUDA-graph replays behind an L2 flush, the flush subtracted), us per call. bytes_floor_us:
x read once and the output written once at the device's copy bandwidth.
"""
from __future__ import annotations

import argparse

import torch

from trt_swin.cli.args import print_table
from trt_swin.plugins.bench_utils import graph_us, start_cuda_bench, write_results
from trt_swin.plugins.gemm.op import gemm
from trt_swin.plugins.ln_gemm.reference import fold_layer_norm
from trt_swin.plugins.patch_merge.op import patch_merge

from .op import patch_merge_gemm
from .reference import patch_merge_gemm_ref

MAPS = {"224": (56, 56, 96), "384": (96, 96, 96)}
EPS = 1e-5


def bench_case(res: str, batch: int, flush: torch.Tensor, bw_gbs: float) -> dict:
    H, W, C = MAPS[res]
    x = (1.5 * torch.randn(batch, H, W, C, device="cuda") + 1.0).half()
    gamma, beta = 1 + 0.2 * torch.randn(4 * C, device="cuda"), 0.2 * torch.randn(4 * C, device="cuda")
    weight = (torch.randn(2 * C, 4 * C, device="cuda") * (4 * C) ** -0.5).half()
    f = fold_layer_norm(weight, gamma, beta)
    one = lambda: patch_merge_gemm(x, f.weight, f.u, f.v, EPS)  # noqa: E731
    two = lambda: gemm(patch_merge(x, gamma, beta, EPS).view(-1, 4 * C), weight)  # noqa: E731
    ref = patch_merge_gemm_ref(x, f.weight, f.u, f.v, EPS)
    err = ((one().float() - ref).norm() / ref.norm()).item()
    nbytes = x.numel() * 2 + x.numel() // 2 * 2  # x, and the [M, 2C] output (half of x's elements)
    r = dict(res=res, batch=batch, M=batch * H * W // 4, one_kernel_us=graph_us(one, flush),
             two_kernels_us=graph_us(two, flush), bytes_floor_us=nbytes / bw_gbs / 1e3, rel_l2=err)
    r["speedup"] = r["two_kernels_us"] / r["one_kernel_us"]
    return r


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="1,8,32,128", help="comma list (default: %(default)s)")
    p.add_argument("--res", default="224,384", help="comma list of 224, 384 (default: %(default)s)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    bw = start_cuda_bench()
    if bw is None:
        return 2
    flush = torch.empty(64 << 20, dtype=torch.uint8, device="cuda")
    rows = [bench_case(res, int(b), flush, bw) for res in args.res.split(",") for b in args.batches.split(",")]
    out = write_results(rows, args.json, copy_bandwidth_gbs=bw)
    print(f"\npatch_merge_gemm vs patch_merge + cuBLASLt GEMM on {out['device']} (us per call, L2 flushed)\n")
    print_table(rows, floatfmt=".4g")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
