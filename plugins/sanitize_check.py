"""`python -m trt_swin.plugins.sanitize_check`: calls the row-wise memory ops (ln_shift_partition, window_reverse,
patch_merge) and the epilogue once per representative shape, for `tools/sanitize_ops.sh` to run under
compute-sanitizer (memcheck, racecheck). window_attention and fused_mlp have drivers of their own
(plugins/<op>/sanitize_check.py), which that script runs too.

Shapes: padded + shifted maps, B = 1, the widest rows (C = 1536; 4C = 3072 for patch merge), odd patch-merge sizes,
int8 / fp8 outputs and int8 inputs, the in-place window_reverse and the epilogue's scalar path. Each result is checked
against the CPU/FP32 reference loosely (the tests hold the tight bounds); exit code 1 on any failure.
"""
from __future__ import annotations

import sys
import traceback

import torch

from trt_swin.plugins import load

# (B, H, W, C, ws, shift)
GEOMETRIES = [(1, 30, 30, 96, 7, 3), (2, 15, 13, 192, 7, 3), (1, 7, 7, 1536, 7, 0), (1, 14, 14, 768, 7, 3),
              (1, 8, 8, 48, 4, 2), (1, 24, 24, 256, 12, 6)]


def _close(got: torch.Tensor, ref: torch.Tensor, what: str) -> None:
    if got.dtype == torch.float8_e4m3fn:  # one E4M3 step is 1/8 relative: compare in value space, loosely
        got, ref = got.cpu().float(), ref.cpu().float()
        bad = ((got - ref).norm() / ref.norm().clamp_min(1e-30)).item() > 0.08
    elif got.dtype == torch.int8:
        bad = (got.cpu().int() - ref.cpu().int()).abs().max().item() > 1
    else:
        bad = not torch.isfinite(got).all().item() or \
            ((got.cpu().double() - ref.cpu().double()).norm() / ref.cpu().double().norm().clamp_min(1e-30)).item() > 2e-3
    if bad:
        raise AssertionError(f"{what}: result differs from the reference")


def check_memops(B, H, W, C, ws, shift) -> None:
    from trt_swin.plugins.epilogue.op import epilogue
    from trt_swin.plugins.epilogue.reference import epilogue_ref, quantize_fp8, quantize_int8
    from trt_swin.plugins.ln_shift_partition.op import ln_shift_partition
    from trt_swin.plugins.ln_shift_partition.reference import ln_shift_partition_ref
    from trt_swin.plugins.patch_merge.op import patch_merge
    from trt_swin.plugins.patch_merge.reference import patch_merge_ref
    from trt_swin.plugins.window_reverse.op import window_reverse, window_reverse_
    from trt_swin.plugins.window_reverse.reference import window_reverse_ref

    tag = f"B{B} {H}x{W} C{C} ws{ws} s{shift}"
    x = (torch.randn(B, H, W, C) + 1).half().cuda()
    g, b = (1 + 0.1 * torch.randn(C)).cuda(), (0.1 * torch.randn(C)).cuda()
    ref = ln_shift_partition_ref(x, g, b, 1e-5, ws, shift)
    _close(ln_shift_partition(x, g, b, 1e-5, ws, shift), ref, f"ln_shift_partition {tag}")
    _close(ln_shift_partition(x, g, b, 1e-5, ws, shift, 0.05), quantize_int8(ref, 0.05), f"ln_shift_partition int8 {tag}")
    _close(ln_shift_partition(x, g, b, 1e-5, ws, shift, 0.05, out_fp8=True), quantize_fp8(ref, 0.05),
           f"ln_shift_partition fp8 {tag}")

    y = torch.randn(ref.shape[0], C).half().cuda()
    y8 = torch.randint(-128, 128, (ref.shape[0], C), dtype=torch.int8).cuda()
    for yy, ys, lns in ((y, 1.0, None), (y8, 0.02, 0.05)):
        r_out, r_ln = window_reverse_ref(yy, x, b, ws, shift, ys, g, b, 1e-5, lns, round_sum_to_fp16=True)
        out, ln = window_reverse(yy, x, b, ws, shift, ys, g, b, 1e-5, lns)
        _close(out, r_out, f"window_reverse {tag}")
        _close(ln, r_ln, f"window_reverse ln {tag}")
        stream = x.clone()
        window_reverse_(yy, stream, b, ws, shift, ys, g, b, 1e-5, lns)
        _close(stream, r_out, f"window_reverse in-place {tag}")
    _, r_ln = window_reverse_ref(y, x, b, ws, shift, 1.0, g, b, 1e-5, 0.05, round_sum_to_fp16=True, out_fp8=True)
    _, ln = window_reverse(y, x, b, ws, shift, 1.0, g, b, 1e-5, 0.05, out_fp8=True)
    _close(ln, r_ln, f"window_reverse fp8 ln {tag}")
    out, ln = window_reverse(y, x, None, ws, shift)
    assert ln.numel() == 0

    if C <= 1024:
        g4, b4 = (1 + 0.1 * torch.randn(4 * C)).cuda(), (0.1 * torch.randn(4 * C)).cuda()
        r = patch_merge_ref(x, g4, b4, 1e-5)
        _close(patch_merge(x, g4, b4, 1e-5), r, f"patch_merge {tag}")
        _close(patch_merge(x, g4, b4, 1e-5, 0.05), quantize_int8(r, 0.05), f"patch_merge int8 {tag}")
        _close(patch_merge(x, g4, b4, 1e-5, 0.05, out_fp8=True), quantize_fp8(r, 0.05), f"patch_merge fp8 {tag}")

    M = B * H * W
    for N, dt in ((4 * C, torch.float16), (C, torch.int32), (3 * C, torch.int8), (C + 4, torch.float16)):
        xin = torch.randn(M, N).half().cuda() if dt == torch.float16 else torch.randint(-100, 100, (M, N), dtype=dt).cuda()
        cs, bias, res = torch.rand(N).cuda(), torch.randn(N).cuda(), torch.randn(M, N).half().cuda()
        _close(epilogue(xin, 0.01, cs, bias, "gelu", res), epilogue_ref(xin, 0.01, cs, bias, "gelu", res),
               f"epilogue {dt} N={N} {tag}")
        _close(epilogue(xin, 0.01, None, bias, "none", None, 0.05),
               epilogue_ref(xin, 0.01, None, bias, "none", None, 0.05), f"epilogue int8 out {dt} N={N} {tag}")


def main() -> int:
    load()
    torch.manual_seed(0)
    failures = 0
    for geom in GEOMETRIES:
        try:
            check_memops(*geom)
            torch.cuda.synchronize()
            print(f"memops {geom}: ok", flush=True)
        except Exception:  # noqa: BLE001 - report every failing geometry, then fail
            failures += 1
            traceback.print_exc()
    print(f"sanitize_check: {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
