"""Small driver for compute-sanitizer (memcheck / racecheck): calls the op once per variant on a few shapes and
checks the result against the reference, exiting non-zero on a mismatch.

    compute-sanitizer --tool racecheck python -m trt_swin.plugins.window_attention.sanitize_check
"""
from __future__ import annotations

import sys

import torch

from trt_swin.plugins.window_attention.op import window_attention
from trt_swin.plugins.window_attention.reference import quantize_int8, window_attention_fp32

# (windows, N, heads, head_dim, nW or 0 for no mask): ws 7 / 12 / 4, several windows per CTA, head groups, a ragged
# last CTA (odd window counts)
CASES = [(5, 49, 3, 32, 5), (3, 144, 2, 64, 3), (7, 16, 3, 16, 7), (3, 49, 48, 32, 0), (9, 25, 4, 32, 3)]


def main() -> int:
    torch.manual_seed(0)
    bad = 0
    for windows, N, nH, hd, nW in CASES:
        C = nH * hd
        bias = torch.randn(nH, N, N, device="cuda")
        mask = torch.where(torch.rand(nW, N, N, device="cuda") < 0.3, -100.0, 0.0) if nW else None
        for in_int8 in (False, True):
            qkv = (torch.randint(-127, 128, (windows * N, 3 * C), device="cuda", dtype=torch.int8) if in_int8
                   else torch.randn(windows * N, 3 * C, device="cuda").half())
            scales = (0.02, 0.02, 0.02) if in_int8 else (1.0, 1.0, 1.0)
            for out_scale in (None, 0.01):
                out = window_attention(qkv, bias, mask, nH, hd ** -0.5, *scales, out_scale=out_scale)
                ref = window_attention_fp32(qkv, bias, mask, nH, hd ** -0.5, *scales)
                if out_scale is None:
                    err = ((out.float() - ref).norm() / ref.norm()).item()
                    ok = err < 2e-3
                else:
                    err = (out.int() - quantize_int8(ref, out_scale).int()).abs().max().item()
                    ok = err <= 1
                bad += not ok
                print(f"windows={windows} N={N} nH={nH} hd={hd} nW={nW} int8_in={in_int8} out_scale={out_scale}: "
                      f"err={err:.3g} {'ok' if ok else 'MISMATCH'}")
    torch.cuda.synchronize()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
