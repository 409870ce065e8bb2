"""`python -m trt_swin.plugins.fused_mlp.bench --json OUT.json`: the fused MLP half vs the unfused path it replaces.

Per (model, stage, batch), M = batch * H * W tokens of width C, Hd = 4C:
  fused      fused_mlp_ (LayerNorm + FC1 + GELU-tanh + FC2 + residual, hidden kept on chip), its default kernel: the
             Hopper (wgmma) one on compute capability 9.0 for C <= 96, else the mma.sync one's default tile
  mma        the mma.sync kernel's default tile where the default is the Hopper kernel ($TRT_SWIN_MLP_IMPL=mma)
  variant V  the mma.sync kernel with $TRT_SWIN_MLP_VARIANT=V for each V of --variants (tile shapes in
             fused_mlp_kernel.cuh; a C without variant V runs variant 0)
  triton     fused_mlp_triton_ with its default config (the engine's), and with each BMxBHxWARPSxSTAGES of
             --triton-configs
  unfused    torch LayerNorm + trt_swin gemm(h, w1, b1, act="gelu_tanh") + gemm(hidden, w2, b2, residual=x)
  torch      torch LayerNorm + F.linear + F.gelu(tanh) + F.linear + x (eager)
Median times (CUDA events through triton.testing.do_bench), achieved TFLOP/s (4 M C Hd flops), and the bytes floor:
x read and written once plus the weights once, at a device-to-device copy bandwidth measured in the same run.
"""
from __future__ import annotations

import argparse
import math
import os
import sys

import torch
import torch.nn.functional as F

from trt_swin.plugins.bench_utils import rotating, start_cuda_bench, time_ms, write_results

from trt_swin.plugins.fused_mlp.op import fused_mlp_

try:
    from trt_swin.plugins.fused_mlp.triton_mlp import fused_mlp_triton_
except ImportError:  # no triton: the triton columns are left out
    fused_mlp_triton_ = None

try:
    from trt_swin.plugins.gemm.op import gemm
except ImportError:  # a checkout without the gemm op: the unfused column is left out
    gemm = None

# (model, stage) -> (C, H = W) at 224 input
CASES = {("swin_t", 1): (96, 56), ("swin_t", 2): (192, 28), ("swin_b", 1): (128, 56), ("swin_b", 2): (256, 28)}
ROTATE_BYTES = 256 << 20  # rotate among copies of x until this many bytes, so large cases are not timed from L2
EPS = 1e-5


def _time_ms(fn) -> float:
    return time_ms(fn, rep=150)


def bench_case(model: str, stage: int, batch: int, copy_gbs: float, variants: list[int],
               triton_configs: list[str]) -> dict:
    C, res = CASES[(model, stage)]
    Hd = 4 * C
    M = batch * res * res
    dev = "cuda"
    gamma, beta = 1 + 0.1 * torch.randn(C, device=dev), 0.1 * torch.randn(C, device=dev)
    w1 = (torch.randn(Hd, C, device=dev) * C ** -0.5).half()
    b1 = 0.1 * torch.randn(Hd, device=dev)
    # fc2 scaled down: the in-place op is timed over thousands of calls on the same x, which must stay in fp16 range.
    w2 = (torch.randn(C, Hd, device=dev) * 0.01 * Hd ** -0.5).half()
    b2 = 0.001 * torch.randn(C, device=dev)
    gamma16, beta16, b1h, b2h = gamma.half(), beta.half(), b1.half(), b2.half()
    x_bytes = M * C * 2
    n_sets = max(1, min(32, math.ceil(ROTATE_BYTES / x_bytes)))
    xs = [torch.randn(M, C, device=dev).half() for _ in range(n_sets)]

    def fused(x):
        fused_mlp_(x, gamma, beta, EPS, w1, b1, w2, b2, "gelu_tanh")

    def unfused(x):
        h = F.layer_norm(x, (C,), gamma16, beta16, EPS)
        hidden = gemm(h, w1, b1h, None, "gelu_tanh")
        return gemm(hidden, w2, b2h, x, "none")

    def eager(x):
        h = F.layer_norm(x, (C,), gamma16, beta16, EPS)
        return F.linear(F.gelu(F.linear(h, w1, b1h), approximate="tanh"), w2, b2h) + x

    # Sanity: the fused op and the unfused path compute the same increment (both gelu_tanh, fp16 hidden).
    x0 = xs[0].clone()
    ref_inc = (unfused if gemm is not None else eager)(x0).double() - x0.double()

    def inc_err(fn) -> float:
        """Relative L2 distance of fn's increment of x0 (on a copy) from the unfused path's."""
        x = x0.clone()
        fn(x)
        return ((x.double() - x0.double() - ref_inc).norm() / ref_inc.norm()).item()

    sets = [(x,) for x in xs]
    r = dict(model=model, stage=stage, batch=batch, M=M, C=C, Hd=Hd, inc_rel_l2_vs_unfused=inc_err(fused))
    r["fused_ms"] = _time_ms(rotating(fused, sets))
    if torch.cuda.get_device_capability() == (9, 0) and C <= 96:  # the default ran the Hopper kernel
        os.environ["TRT_SWIN_MLP_IMPL"] = "mma"
        try:
            r["mma_inc_rel_l2_vs_unfused"] = inc_err(fused)
            r["mma_ms"] = _time_ms(rotating(fused, sets))
        finally:
            del os.environ["TRT_SWIN_MLP_IMPL"]
    r["variant_ms"] = {}
    for v in variants:
        os.environ.update(TRT_SWIN_MLP_VARIANT=str(v), TRT_SWIN_MLP_IMPL="mma")
        try:
            r.setdefault("variant_inc_rel_l2_vs_unfused", {})[str(v)] = inc_err(fused)
            r["variant_ms"][str(v)] = _time_ms(rotating(fused, sets))
        finally:
            del os.environ["TRT_SWIN_MLP_VARIANT"], os.environ["TRT_SWIN_MLP_IMPL"]
    r["triton_ms"], r["triton_inc_rel_l2_vs_unfused"] = {}, {}
    for cfg in ["default", *triton_configs] if fused_mlp_triton_ is not None else []:
        shape = None if cfg == "default" else tuple(int(v) for v in cfg.split("x"))

        def tri(x, shape=shape):
            fused_mlp_triton_(x, gamma, beta, EPS, w1, b1, w2, b2, "gelu_tanh", config=shape)

        try:
            r["triton_inc_rel_l2_vs_unfused"][cfg] = inc_err(tri)
        except Exception as e:  # e.g. a config whose pipeline stages exceed the shared memory: left out, reported
            r.setdefault("triton_failed", {})[cfg] = f"{type(e).__name__}: {str(e)[:120]}"
            continue
        r["triton_ms"][cfg] = _time_ms(rotating(tri, sets))
    r["unfused_ms"] = _time_ms(rotating(unfused, sets)) if gemm is not None else float("nan")
    r["torch_ms"] = _time_ms(rotating(eager, sets))
    flops = 4 * M * C * Hd
    if r["triton_ms"]:
        r["best_triton"] = min(r["triton_ms"], key=r["triton_ms"].get)
        r["best_triton_tflops"] = flops / r["triton_ms"][r["best_triton"]] / 1e9
    best = min([r["fused_ms"], r.get("mma_ms", math.inf), *r["variant_ms"].values(), *r["triton_ms"].values()])
    r["best_variant"] = min(r["variant_ms"], key=r["variant_ms"].get) if r["variant_ms"] else "0"
    r["fused_tflops"] = flops / r["fused_ms"] / 1e9
    r["variant_tflops"] = {v: flops / ms / 1e9 for v, ms in r["variant_ms"].items()}
    r["unfused_tflops"] = flops / r["unfused_ms"] / 1e9
    fused_bytes = 2 * x_bytes + 2 * C * Hd * 2
    r["bytes_floor_ms"] = fused_bytes / copy_gbs / 1e6
    r["fused_gbs"] = fused_bytes / best / 1e6
    r["speedup_vs_unfused"] = r["unfused_ms"] / best
    return r


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="1,32,128", help="comma list (default: %(default)s)")
    p.add_argument("--variants", default="1", help="tile variants to time beside the default (default: %(default)s)")
    p.add_argument("--triton-configs", default="",
                   help="Triton kernel configs BMxBHxWARPSxSTAGES, comma list (default: none)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    copy_gbs = start_cuda_bench()
    if copy_gbs is None:
        return 2
    variants = [int(v) for v in args.variants.split(",") if v]
    tcfgs = [c for c in args.triton_configs.split(",") if c]
    rows = [bench_case(m, s, b, copy_gbs, variants, tcfgs) for b in (int(v) for v in args.batches.split(",")) for (m, s) in CASES]
    out = write_results(rows, args.json, copy_gbs=copy_gbs)
    print(f"\nfused_mlp on {out['device']}; device copy bandwidth {copy_gbs:.0f} GB/s (read + write)\n")
    vcols = "".join(f" variant {v} ms (TFLOP/s) |" for v in variants)
    print(f"| model | stage | batch | M | C | fused ms (TFLOP/s) | mma ms |{vcols} best triton ms (TFLOP/s) | unfused "
          "gemm ms (TFLOP/s) | torch ms | bytes floor ms | best | speedup | inc err |")
    print("|---" * (14 + len(variants)) + "|")
    for r in rows:
        vals = "".join(f" {r['variant_ms'][str(v)]:.4f} ({r['variant_tflops'][str(v)]:.0f}) |" for v in variants)
        tri = (f"{r['triton_ms'][r['best_triton']]:.4f} ({r['best_triton_tflops']:.0f}) {r['best_triton']}"
               if r["triton_ms"] else "-")
        mma = f"{r['mma_ms']:.4f}" if "mma_ms" in r else "-"
        print(f"| {r['model']} | {r['stage']} | {r['batch']} | {r['M']} | {r['C']} | {r['fused_ms']:.4f} "
              f"({r['fused_tflops']:.0f}) | {mma} |{vals} {tri} | "
              f"{r['unfused_ms']:.4f} ({r['unfused_tflops']:.0f}) | {r['torch_ms']:.4f} | {r['bytes_floor_ms']:.4f} | "
              f"{r['best_variant']} | {r['speedup_vs_unfused']:.2f}x | {r['inc_rel_l2_vs_unfused']:.1e} |")
    if any(r["triton_ms"] for r in rows):
        print("\nTriton configs (ms, inc err vs unfused):")
        for r in rows:
            print(f"{r['model']} s{r['stage']} bs{r['batch']}: " + ", ".join(
                f"{c} {ms:.4f} ({r['triton_inc_rel_l2_vs_unfused'][c]:.1e})" for c, ms in sorted(
                    r["triton_ms"].items(), key=lambda kv: kv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
