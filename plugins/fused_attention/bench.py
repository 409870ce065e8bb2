"""`python -m trt_swin.plugins.fused_attention.bench --json OUT.json`: the fused attention half vs the unfused ops.

Per (model, stage, batch) of a shifted block ([B, H, W, C], windows 7 x 7, shift 3):
  mma_wpcN    fused_attention_'s mma.sync kernel with N windows per CTA ($TRT_SWIN_FATTN_IMPL=mma,
              $TRT_SWIN_FATTN_WPC=N)
  wgmma_wgN   its Hopper kernel with N warpgroups per CTA ($TRT_SWIN_FATTN_IMPL=wgmma, $TRT_SWIN_FATTN_WG=N; compute
              capability 9.0, C <= 128)
  triton_CFG  fused_attention_triton_ (triton_attention.py) with each config WARPSxSTAGES[h][s[MAXNREG]] of
              --triton-configs (h: the bias table in float16, as the engine passes it; s: head outputs staged;
              MAXNREG: a register cap; triton_attention.parse_config)
  unfused     ln_shift_partition + gemm (QKV + bias) + window_attention + gemm (proj + bias) + window_reverse_
              (the FP16 engine's unfused path, our kernels)
Median times (triton.testing.do_bench), achieved TFLOP/s (QKV 6 T C^2 + proj 2 T C^2 + attention 4 * 64 * T C over
T = windows * 64 padded tokens) and the bytes floor (x read and written once, weights once) at the device-to-device
copy bandwidth measured in the same run.
"""
from __future__ import annotations

import argparse
import math
import os
import sys

import torch

from trt_swin.plugins.bench_utils import rotating, start_cuda_bench, time_ms, write_results
from trt_swin.plugins.fused_attention.op import fused_attention_, pad_bias
from trt_swin.plugins.fused_attention.reference import swin_shift_mask
from trt_swin.plugins.gemm.op import gemm
from trt_swin.plugins.ln_shift_partition.op import ln_shift_partition
from trt_swin.plugins.window_attention.op import window_attention
from trt_swin.plugins.window_reverse.op import window_reverse_

try:
    from trt_swin.plugins.fused_attention.triton_attention import fused_attention_triton_, parse_config
except ImportError:  # no triton: the triton columns are left out
    fused_attention_triton_ = None

# (model, stage) -> (C, H = W) at 224 input
CASES = {("swin_t", 1): (96, 56), ("swin_t", 2): (192, 28), ("swin_b", 1): (128, 56), ("swin_l", 1): (192, 56)}
WS, SHIFT, EPS = 7, 3, 1e-5
# fused_attention_'s kernels: environment of each timed variant
VARIANTS = {"mma_wpc1": {"TRT_SWIN_FATTN_IMPL": "mma", "TRT_SWIN_FATTN_WPC": "1"},
            "mma_wpc2": {"TRT_SWIN_FATTN_IMPL": "mma", "TRT_SWIN_FATTN_WPC": "2"},
            "wgmma_wg2": {"TRT_SWIN_FATTN_IMPL": "wgmma", "TRT_SWIN_FATTN_WG": "2"},
            "wgmma_wg3": {"TRT_SWIN_FATTN_IMPL": "wgmma", "TRT_SWIN_FATTN_WG": "3"}}
ROTATE_BYTES = 256 << 20  # rotate among copies of x until this many bytes, so large cases are not timed from L2


def bench_case(model: str, stage: int, batch: int, copy_gbs: float, triton_configs: list[str]) -> dict:
    C, res = CASES[(model, stage)]
    nH, dev = C // 32, "cuda"
    gamma, beta = 1 + 0.1 * torch.randn(C, device=dev), 0.1 * torch.randn(C, device=dev)
    w_qkv = (torch.randn(3 * C, C, device=dev) * C ** -0.5).half()
    b_qkv = 0.1 * torch.randn(3 * C, device=dev)
    # proj scaled down: the in-place op is timed over thousands of calls on the same x, which must stay in range
    w_proj = (torch.randn(C, C, device=dev) * 0.01 * C ** -0.5).half()
    b_proj = 0.001 * torch.randn(C, device=dev)
    bias = 0.5 * torch.randn(nH, WS * WS, WS * WS, device=dev)
    bias64, mask = pad_bias(bias), swin_shift_mask(res, res, WS, SHIFT).to(dev)
    b_qkv16, b_proj16 = b_qkv.half(), b_proj.half()
    x_bytes = batch * res * res * C * 2
    xs = [torch.randn(batch, res, res, C, device=dev).half() for _ in range(max(1, min(32, math.ceil(ROTATE_BYTES / x_bytes))))]

    def fused(x):
        fused_attention_(x, gamma, beta, EPS, w_qkv, b_qkv, bias64, w_proj, b_proj, WS, SHIFT, 1.0)

    def unfused(x):
        tok = ln_shift_partition(x, gamma, beta, EPS, WS, SHIFT)
        a = window_attention(gemm(tok, w_qkv, b_qkv16), bias, mask, nH, 1.0)
        window_reverse_(gemm(a, w_proj, b_proj16), x, None, WS, SHIFT)

    # Sanity: every fused variant computes the unfused path's increment (its *_inc_err).
    x0 = xs[0].clone()
    xu = x0.clone()
    unfused(xu)
    ref_inc = xu.double() - x0.double()

    sets = [(x,) for x in xs]
    windows = batch * math.ceil(res / WS) ** 2
    r = dict(model=model, stage=stage, batch=batch, C=C, tokens=batch * res * res)
    for name, env in VARIANTS.items():
        if name.startswith("wgmma") and not (torch.cuda.get_device_capability() == (9, 0) and C <= 128):
            continue
        os.environ.update(env)
        try:
            xv = x0.clone()
            fused(xv)
            r[f"{name}_inc_err"] = ((xv.double() - x0.double() - ref_inc).norm() / ref_inc.norm()).item()
            r[f"{name}_ms"] = time_ms(rotating(fused, sets), rep=150)
        finally:
            for k in env:
                del os.environ[k]
    r["unfused_ms"] = time_ms(rotating(unfused, sets), rep=150)
    for name in triton_configs:
        cfg, fp16_bias = parse_config(name)
        bias_t = bias64.half() if fp16_bias else bias64

        def triton_fused(x, cfg=cfg, bias_t=bias_t):
            fused_attention_triton_(x, gamma, beta, EPS, w_qkv, b_qkv, bias_t, w_proj, b_proj, WS, SHIFT, 1.0,
                                    config=cfg)

        try:
            xt = x0.clone()
            triton_fused(xt)
            r[f"triton_{name}_inc_err"] = ((xt.double() - x0.double() - ref_inc).norm() / ref_inc.norm()).item()
            r[f"triton_{name}_ms"] = time_ms(rotating(triton_fused, sets), rep=150)
        except Exception as e:  # e.g. triton's OutOfResources for a config too large for this C: recorded, not fatal
            r[f"triton_{name}_error"] = f"{type(e).__name__}: {str(e)[:200]}"
    T = windows * 64
    flops = 8 * T * C * C + 4 * 64 * T * C
    best = min(r[f"{n}_ms"] for n in VARIANTS if f"{n}_ms" in r)
    tri = [r[f"triton_{n}_ms"] for n in triton_configs if f"triton_{n}_ms" in r]
    if tri:
        r["triton_best_ms"] = min(tri)
        r["triton_tflops"] = flops / r["triton_best_ms"] / 1e9
    r["fused_tflops"] = flops / best / 1e9
    r["bytes_floor_ms"] = (2 * x_bytes + 4 * C * C * 2) / copy_gbs / 1e6
    r["speedup_vs_unfused"] = r["unfused_ms"] / best
    return r


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="1,32,128", help="comma list (default: %(default)s)")
    p.add_argument("--triton-configs", default="4x2h,4x1h",
                   help="comma list of Triton configs WARPSxSTAGES[h][s[MAXNREG]] (h: float16 bias table, s: staged, "
                        "MAXNREG: register cap), '' for none (default: %(default)s)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    copy_gbs = start_cuda_bench()
    if copy_gbs is None:
        return 2
    triton_configs = [c for c in args.triton_configs.split(",") if c] if fused_attention_triton_ else []
    rows = [bench_case(m, s, b, copy_gbs, triton_configs) for b in (int(v) for v in args.batches.split(",")) for (m, s) in CASES]
    out = write_results(rows, args.json, copy_gbs=copy_gbs)
    print(f"\nfused_attention on {out['device']}; device copy bandwidth {copy_gbs:.0f} GB/s (read + write)\n")
    tcols = "".join(f" triton {n} ms |" for n in triton_configs)
    vcols = "".join(f" {n} ms |" for n in VARIANTS)
    print(f"| model | stage | batch | C |{vcols} TFLOP/s |{tcols} unfused ms | bytes floor ms | speedup | max inc err |")
    print("|---|---|---|---|" + "---|" * (len(VARIANTS) + 1 + len(triton_configs)) + "---|---|---|---|")
    for r in rows:
        vvals = "".join(f" {r[f'{n}_ms']:.4f} |" if f"{n}_ms" in r else " - |" for n in VARIANTS)
        tvals = "".join(f" {r[f'triton_{n}_ms']:.4f} |" if f"triton_{n}_ms" in r else " error |" for n in triton_configs)
        err = max(v for k, v in r.items() if k.endswith("_inc_err"))
        print(f"| {r['model']} | {r['stage']} | {r['batch']} | {r['C']} |{vvals} {r['fused_tflops']:.0f} |{tvals} "
              f"{r['unfused_ms']:.4f} | {r['bytes_floor_ms']:.4f} | {r['speedup_vs_unfused']:.2f}x | {err:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
