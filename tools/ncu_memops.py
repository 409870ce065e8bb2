"""Driver for `ncu` over the memory-bound ops at the shapes where BENCHMARKS.md records a missed bar (batch 128):
ln_shift_partition at Swin-T stages 3 / 4, patch_merge at Swin-T stages 2 / 3 and Swin-L stage 3, window_reverse + LN
at Swin-T stage 1. Each op runs twice per shape; profile the second call (tools/device_final.sh, step "ncu"):

    ncu --kernel-name regex:'ln_shift|patch_merge|window_reverse' --launch-skip 1 --launch-count 1 ... \
        python tools/ncu_memops.py OP H W C SHIFT
"""
from __future__ import annotations

import sys

import torch

from trt_swin.plugins.ln_shift_partition.op import ln_shift_partition
from trt_swin.plugins.patch_merge.op import patch_merge
from trt_swin.plugins.window_reverse.op import window_reverse


def main(op: str, H: int, W: int, C: int, shift: int, B: int = 128, ws: int = 7) -> None:
    torch.manual_seed(0)
    x = torch.randn(B, H, W, C, device="cuda", dtype=torch.half)
    g, b = torch.ones(C, device="cuda"), torch.zeros(C, device="cuda")
    if op == "ln_shift_partition":
        call = lambda: ln_shift_partition(x, g, b, 1e-5, ws, shift)  # noqa: E731
    elif op == "patch_merge":
        g4, b4 = torch.ones(4 * C, device="cuda"), torch.zeros(4 * C, device="cuda")
        call = lambda: patch_merge(x, g4, b4, 1e-5)  # noqa: E731
    elif op == "window_reverse":
        y = torch.randn(B * H * W, C, device="cuda", dtype=torch.half)
        call = lambda: window_reverse(y, x, b, ws, shift, 1.0, g, b, 1e-5, None)  # noqa: E731
    else:
        raise SystemExit(f"unknown op {op!r}")
    for _ in range(2):
        call()
    torch.cuda.synchronize()

if __name__ == "__main__":
    main(sys.argv[1], *map(int, sys.argv[2:6]))
