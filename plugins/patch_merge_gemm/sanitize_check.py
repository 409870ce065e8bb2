"""Small driver for compute-sanitizer (memcheck / racecheck): runs the Hopper kernel (compute capability 9.0) on a few
shapes (one tile; a ragged last tile; several tiles per warpgroup; each C) and checks each against the reference,
exiting non-zero on a mismatch.

    compute-sanitizer --tool memcheck python -m trt_swin.plugins.patch_merge_gemm.sanitize_check
"""
from __future__ import annotations

import sys

import torch

from trt_swin.plugins.ln_gemm.reference import fold_layer_norm
from trt_swin.plugins.patch_merge_gemm.op import patch_merge_gemm, patch_merge_gemm_available
from trt_swin.plugins.patch_merge_gemm.reference import patch_merge_gemm_ref
from trt_swin.plugins.sanitize_utils import rel_l2, report

# (B, H, W, C): 1 tile; 7 tiles, the last ragged; 2 x 3 x 784 merged tokens over 37 tiles of 64 (the grid's CTAs
# loop); C 32 / 64
CASES = [(1, 2, 2, 96), (2, 14, 14, 96), (6, 56, 56, 96), (3, 14, 6, 64), (1, 28, 32, 32)]


def main() -> int:
    if not patch_merge_gemm_available(torch.device("cuda")):
        print("patch_merge_gemm: no kernel on this device (compute capability 9.0 only); nothing to check")
        return 0
    torch.manual_seed(0)
    bad = 0
    for B, H, W, C in CASES:
        x = (torch.randn(B, H, W, C, device="cuda") * 1.5 + 1).half()
        gamma, beta = 1 + 0.1 * torch.randn(4 * C, device="cuda"), 0.1 * torch.randn(4 * C, device="cuda")
        f = fold_layer_norm((torch.randn(2 * C, 4 * C, device="cuda") * (4 * C) ** -0.5).half(), gamma, beta)
        out = patch_merge_gemm(x, f.weight, f.u, f.v, 1e-5)
        ref = patch_merge_gemm_ref(x, f.weight, f.u, f.v, 1e-5)
        bad += report(f"B={B} {H}x{W} C={C}", rel_l2(out, ref), out, 1e-3)
    torch.cuda.synchronize()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
