"""`python -m trt_swin.plugins.classifier_head.bench --json OUT.json`: the Triton tail vs the unfused tail it replaces.

Per (model, batch), the last stage's residual stream [B, L, C] float16 and a 1000-class FP32 head:
  triton    classifier_head_triton (LayerNorm + mean pool in one Triton kernel, then F.linear in FP32)
  unfused   the engine's other tail: ln_shift_partition as a plain LayerNorm (fp16 out), mean over the tokens in
            FP32, F.linear in FP32
Median times (CUDA events through triton.testing.do_bench).
"""
from __future__ import annotations

import argparse

import torch

from trt_swin.cli.args import print_table
from trt_swin.plugins.bench_utils import start_cuda_bench, time_ms, write_results

from .triton_head import classifier_head_triton

# model -> (final tokens, C)
CASES = {"swin_t": (49, 768), "swin_b": (49, 1024), "swin_l": (49, 1536), "swin_b384": (144, 1024)}
CLASSES = 1000
EPS = 1e-5


def bench_case(model: str, batch: int) -> dict:
    from trt_swin.plugins.ln_shift_partition.op import ln_shift_partition

    L, C = CASES[model]
    dev = "cuda"
    x = (2 * torch.randn(batch, L, C, device=dev) + 0.5).half()
    gamma, beta = 1 + 0.1 * torch.randn(C, device=dev), 0.1 * torch.randn(C, device=dev)
    w, b = torch.randn(CLASSES, C, device=dev) * C ** -0.5, 0.1 * torch.randn(CLASSES, device=dev)

    def triton_tail():
        return classifier_head_triton(x, gamma, beta, EPS, w, b)

    def unfused():
        h = ln_shift_partition(x.view(batch, L, 1, C), gamma, beta, EPS, 1, 0)
        return torch.nn.functional.linear(h.view(batch, L, C).mean(1, dtype=torch.float32), w, b)

    a, r_ = triton_tail(), unfused()
    err = ((a - r_).norm() / r_.norm()).item()
    r = dict(model=model, batch=batch, C=C, tokens=L, rel_l2_vs_unfused=err, triton_ms=time_ms(triton_tail),
             unfused_ms=time_ms(unfused))
    r["speedup"] = r["unfused_ms"] / r["triton_ms"]
    return r


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="1,32,128", help="comma list (default: %(default)s)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    if start_cuda_bench() is None:
        return 2
    rows = [bench_case(m, int(b)) for b in args.batches.split(",") for m in CASES]
    out = write_results(rows, args.json)
    print(f"\nclassifier tail on {out['device']}, {CLASSES} classes (rel_l2_vs_unfused: the LN output rounding)\n")
    print_table(rows, floatfmt=".4g")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
