"""Small driver for compute-sanitizer (memcheck / racecheck): runs the op on a few small shapes (padded map, odd
window count so a two-window CTA is half empty, unshifted, every tile width class, both windows-per-CTA tilings) and
checks each against the reference, exiting non-zero on a mismatch.

    compute-sanitizer --tool memcheck python -m trt_swin.plugins.fused_attention.sanitize_check
"""
from __future__ import annotations

import os
import sys

import torch

from trt_swin.plugins.fused_attention.op import fused_attention_, pad_bias
from trt_swin.plugins.fused_attention.reference import fused_attention_ref
from trt_swin.plugins.sanitize_utils import rel_l2, report

# (B, H, W, C, ws, shift)
# the last: 432 windows, several per warpgroup of the persistent Hopper kernel
CASES = [(1, 9, 13, 64, 7, 3), (3, 21, 21, 96, 7, 3), (1, 14, 14, 192, 7, 0), (1, 8, 8, 128, 4, 2), (48, 21, 21, 96, 7, 3)]


def main() -> int:
    torch.manual_seed(0)
    bad = 0
    hopper = torch.cuda.get_device_capability() == (9, 0)
    for B, H, W, C, ws, shift in CASES:
        # the mma.sync kernel with 1 and 2 windows per CTA; on compute capability 9.0 the wgmma kernel (C <= 128) with
        # 2 and 3 warpgroups per CTA
        kernels = [("mma", "TRT_SWIN_FATTN_WPC", "1"), ("mma", "TRT_SWIN_FATTN_WPC", "2")]
        if hopper and C <= 128:
            kernels += [("wgmma", "TRT_SWIN_FATTN_WG", "2"), ("wgmma", "TRT_SWIN_FATTN_WG", "3")]
        for impl, knob, value in kernels:
            os.environ.update({"TRT_SWIN_FATTN_IMPL": impl, knob: value})
            wpc = f"{impl} {knob[-3:].lower()}={value}"
            nH, N = C // 32, ws * ws
            x = (torch.randn(B, H, W, C, device="cuda") * 2).half()
            gamma, beta = 1 + 0.1 * torch.randn(C, device="cuda"), 0.1 * torch.randn(C, device="cuda")
            w_qkv, b_qkv = (torch.randn(3 * C, C, device="cuda") * C ** -0.5).half(), 0.1 * torch.randn(3 * C, device="cuda")
            w_proj, b_proj = (torch.randn(C, C, device="cuda") * C ** -0.5).half(), 0.1 * torch.randn(C, device="cuda")
            bias = 0.5 * torch.randn(nH, N, N, device="cuda")
            ref = fused_attention_ref(x, gamma, beta, 1e-5, w_qkv, b_qkv, bias, w_proj, b_proj, ws, shift, 32 ** -0.5)
            x0 = x.clone()
            out = fused_attention_(x, gamma, beta, 1e-5, w_qkv, b_qkv, pad_bias(bias), w_proj, b_proj, ws, shift,
                                   32 ** -0.5)
            err = rel_l2(out.double() - x0.double(), ref.double() - x0.double())  # of the increment
            bad += report(f"B={B} {H}x{W} C={C} ws={ws} shift={shift} wpc={wpc} increment", err, out, 5e-3)
    torch.cuda.synchronize()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
