"""Small driver for compute-sanitizer (memcheck / racecheck): runs the op on a few small shapes (ragged last tile,
both tile variants, both activations, the Hopper kernel's two forms) and checks each against the reference, exiting non-zero on a mismatch.

    compute-sanitizer --tool memcheck python -m trt_swin.plugins.fused_mlp.sanitize_check
"""
from __future__ import annotations

import os
import sys

import torch

from trt_swin.plugins.fused_mlp.op import fused_mlp_
from trt_swin.plugins.fused_mlp.reference import fused_mlp_ref
from trt_swin.plugins.sanitize_utils import rel_l2, report

# (M, C, Hd, variant): the 128-row register-resident tile, the wide-C (WN 2) tile, the 4-warp tile; ragged M
# (M, C, Hd, "wgmma"): the Hopper kernel (compute capability 9.0 only) over 20000 rows (several tiles per warpgroup,
# ragged last tile)
CASES = [(130, 96, 384, 0), (70, 384, 1536, 0), (33, 192, 768, 0), (33, 192, 768, 1), (20001, 96, 384, "wgmma"),
         (130, 64, 256, "wgmma")]


def main() -> int:
    torch.manual_seed(0)
    bad = 0
    hopper = torch.cuda.get_device_capability() == (9, 0)
    for M, C, Hd, variant in CASES:
        if isinstance(variant, str):
            if not hopper:
                continue
            os.environ.update(TRT_SWIN_MLP_IMPL="wgmma")
        else:
            os.environ.update(TRT_SWIN_MLP_IMPL="mma", TRT_SWIN_MLP_VARIANT=str(variant))
        for act in ("gelu_erf", "gelu_tanh"):
            x = (torch.randn(M, C, device="cuda") * 2).half()
            gamma, beta = 1 + 0.1 * torch.randn(C, device="cuda"), 0.1 * torch.randn(C, device="cuda")
            w1, b1 = (torch.randn(Hd, C, device="cuda") * C ** -0.5).half(), 0.1 * torch.randn(Hd, device="cuda")
            w2, b2 = (torch.randn(C, Hd, device="cuda") * Hd ** -0.5).half(), 0.1 * torch.randn(C, device="cuda")
            ref = fused_mlp_ref(x, gamma, beta, 1e-5, w1, b1, w2, b2, act)
            out = fused_mlp_(x, gamma, beta, 1e-5, w1, b1, w2, b2, act)
            bad += report(f"M={M} C={C} Hd={Hd} variant={variant} {act}", rel_l2(out, ref), out, 1e-3)
    torch.cuda.synchronize()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
