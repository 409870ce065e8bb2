"""Small driver for compute-sanitizer (memcheck / racecheck): calls the op once per variant on a few shapes and
checks the result against the reference, exiting non-zero on a mismatch.

    compute-sanitizer --tool racecheck python -m trt_swin.plugins.window_attention.sanitize_check [--cases 0,4]
"""
from __future__ import annotations

import sys

import torch

from trt_swin.plugins.window_attention.op import window_attention
from trt_swin.plugins.epilogue.reference import quantize_int8
from trt_swin.plugins.window_attention.reference import window_attention_fp32

# (windows, N, heads, head_dim, nW or 0 for no mask): ws 7 / 12 / 4, several windows per CTA, head groups, a ragged
# last CTA (odd window counts); the last one, run with TRT_SWIN_WA_CTAS_PER_SM=1, gives the persistent N = 49
# kernel walks of several units per CTA that cross (head, mask window) pairs (603 units, 67 per pair).
CASES = [(5, 49, 3, 32, 5), (3, 144, 2, 64, 3), (7, 16, 3, 16, 7), (3, 49, 48, 32, 0), (9, 25, 4, 32, 3),
         (201, 49, 3, 32, 3)]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    picked = CASES
    if len(argv) == 2 and argv[0] == "--cases":  # indices into CASES, to keep a slow sanitizer run short
        picked = [CASES[int(i)] for i in argv[1].split(",")]
    torch.manual_seed(0)
    bad = 0
    for windows, N, nH, hd, nW in picked:
        C = nH * hd
        bias = torch.randn(nH, N, N, device="cuda")
        mask = torch.where(torch.rand(nW, N, N, device="cuda") < 0.3, -100.0, 0.0) if nW else None
        for in_int8 in (False, True):
            qkv = (torch.randint(-127, 128, (windows * N, 3 * C), device="cuda", dtype=torch.int8) if in_int8
                   else torch.randn(windows * N, 3 * C, device="cuda").half())
            scales = (0.02, 0.02, 0.02) if in_int8 else (1.0, 1.0, 1.0)
            for out_scale, fp8 in ((None, False), (0.01, False), (1 / 64, True)):
                out = window_attention(qkv, bias, mask, nH, hd ** -0.5, *scales, out_scale=out_scale, out_fp8=fp8)
                ref = window_attention_fp32(qkv, bias, mask, nH, hd ** -0.5, *scales)
                if out_scale is None:
                    err = ((out.float() - ref).norm() / ref.norm()).item()
                    ok = err < 2e-3
                elif fp8:  # dequantized: within one E4M3 step (1/8 relative, subnormal 2^-9) + 1e-3 of the reference
                    step = torch.exp2(torch.floor(torch.log2((ref / out_scale).abs().clamp_min(2.0 ** -6))) - 3)
                    err = ((out.float() * out_scale - ref).abs() / (step * out_scale + 1e-3)).max().item()
                    ok = err <= 1
                else:
                    err = (out.int() - quantize_int8(ref, out_scale).int()).abs().max().item()
                    ok = err <= 1
                bad += not ok
                print(f"windows={windows} N={N} nH={nH} hd={hd} nW={nW} int8_in={in_int8} out_scale={out_scale} fp8={fp8}: "
                      f"err={err:.3g} {'ok' if ok else 'MISMATCH'}")
    torch.cuda.synchronize()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
