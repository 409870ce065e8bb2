"""`python -m trt_swin.plugins.window_attention.bench --json OUT.json`: the fused kernel vs PyTorch on Swin shapes.

Per (model, stage, batch): our kernel (fp16, int8 in / int8 out, fp16 in / fp8 out), timm's eager math (matmul + bias + mask +
softmax + matmul), timm's SDPA path (bias + mask as attn_mask), torch.compile of the eager math, and with
--triton-configs the Triton kernel (triton_window_attention.py; head_dim 32, N <= 64, float16 bias table) per config
HEADSxWARPSxSTAGES. Reports the
median time (CUDA events through triton.testing.do_bench), the kernel's achieved GB/s (qkv read + out written once)
and its fraction of a device-to-device copy bandwidth measured in the same run.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

import torch

from trt_swin.plugins.bench_utils import rotating, start_cuda_bench, time_ms
from trt_swin.plugins.window_attention.op import window_attention

try:
    from trt_swin.plugins.window_attention.triton_window_attention import pad_bias, window_attention_triton
except ImportError:  # no triton: the triton columns are left out
    window_attention_triton = None

MODELS = {
    "swin_t": dict(C=96, heads=(3, 6, 12, 24), res=56, ws=7),
    "swin_l": dict(C=192, heads=(6, 12, 24, 48), res=56, ws=7),
    "swin_b384": dict(C=128, heads=(4, 8, 16, 32), res=96, ws=12),  # N = 144 windows
    "hd64": dict(C=192, heads=(3, 6, 12, 24), res=56, ws=7),        # not a real model: head_dim 64 at N = 49
}
ROTATE_BYTES = 256 << 20  # rotate among input copies until this many bytes, so small cases are not timed from L2


def shift_mask(res: int, ws: int, ss: int) -> torch.Tensor:
    from timm.models.swin_transformer import SwinTransformerBlock

    from .reference import shift_mask as block_mask

    return block_mask(SwinTransformerBlock(dim=8, input_resolution=(res, res), num_heads=1, window_size=ws, shift_size=ss))


def eager(qkv, bias, mask, nH, scale):
    """timm WindowAttention's non-fused math from the qkv GEMM output to the proj input."""
    N = bias.shape[-1]
    C = qkv.shape[1] // 3
    q, k, v = qkv.view(-1, N, 3, nH, C // nH).permute(2, 0, 3, 1, 4).unbind(0)
    attn = (q * scale) @ k.transpose(-2, -1) + bias.to(qkv.dtype).unsqueeze(0)
    if mask is not None:
        nW = mask.shape[0]
        attn = attn.view(-1, nW, nH, N, N) + mask.to(qkv.dtype).unsqueeze(1).unsqueeze(0)
        attn = attn.view(-1, nH, N, N)
    attn = attn.softmax(-1)
    return (attn @ v).transpose(1, 2).reshape(-1, C)


def sdpa(qkv, bias, mask, nH, scale):
    """timm WindowAttention's fused path: SDPA with bias (+ expanded mask) as attn_mask."""
    N = bias.shape[-1]
    C = qkv.shape[1] // 3
    q, k, v = qkv.view(-1, N, 3, nH, C // nH).permute(2, 0, 3, 1, 4).unbind(0)
    attn_mask = bias.to(qkv.dtype).unsqueeze(0)
    if mask is not None:
        nW = mask.shape[0]
        m = mask.to(qkv.dtype).view(1, nW, 1, N, N).expand(q.shape[0] // nW, -1, nH, -1, -1)
        attn_mask = attn_mask + m.reshape(-1, nH, N, N)
    x = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, scale=scale)
    return x.transpose(1, 2).reshape(-1, C)


def bench_case(model: str, stage: int, batch: int, copy_gbs: float, do_compile: bool, ours_only: bool = False,
               triton_configs: tuple[str, ...] = ()) -> dict:
    """Times one (model, stage, batch) shifted block (unshifted where timm has no shift: a last stage of one window)."""
    cfg = MODELS[model]
    res = cfg["res"] >> (stage - 1)
    nH = cfg["heads"][stage - 1]
    C = cfg["C"] << (stage - 1)
    ws = min(cfg["ws"], res)
    ss = ws // 2 if res > ws else 0  # the last stage (7x7) has no shift, as in timm
    N = ws * ws
    nW = (res // ws) ** 2
    rows = batch * nW * N
    scale = (C // nH) ** -0.5
    dev = "cuda"
    bias = torch.randn(nH, N, N, device=dev)
    mask = shift_mask(res, ws, ss)
    mask = None if mask is None else mask.to(dev)
    bytes_fp16 = rows * 3 * C * 2 + rows * C * 2
    bytes_int8 = rows * 3 * C + rows * C
    n_sets = max(1, min(32, math.ceil(ROTATE_BYTES / bytes_fp16)))
    qkv16 = [torch.randn(rows, 3 * C, device=dev).half() for _ in range(n_sets)]
    qkv8 = [torch.randint(-127, 128, (rows, 3 * C), device=dev, dtype=torch.int8) for _ in range(n_sets)]

    r = dict(model=model, stage=stage, batch=batch, num_windows=batch * nW, N=N, heads=nH, head_dim=C // nH,
             shifted=bool(ss), bytes_fp16=bytes_fp16, bytes_int8=bytes_int8)
    r["ours_fp16_ms"] = time_ms(rotating(lambda x: window_attention(x, bias, mask, nH, scale), [(x,) for x in qkv16]))
    r["ours_int8_ms"] = time_ms(rotating(
        lambda x: window_attention(x, bias, mask, nH, scale, 0.02, 0.02, 0.02, 0.01), [(x,) for x in qkv8]))
    r["ours_fp8_ms"] = time_ms(rotating(
        lambda x: window_attention(x, bias, mask, nH, scale, out_scale=1 / 64, out_fp8=True), [(x,) for x in qkv16]))
    if not ours_only:
        r["eager_ms"] = time_ms(rotating(lambda x: eager(x, bias, mask, nH, scale), [(x,) for x in qkv16]))
        r["sdpa_ms"] = time_ms(rotating(lambda x: sdpa(x, bias, mask, nH, scale), [(x,) for x in qkv16]))
    if do_compile and not ours_only:
        compiled = torch.compile(eager, dynamic=False)
        r["compile_ms"] = time_ms(rotating(lambda x: compiled(x, bias, mask, nH, scale), [(x,) for x in qkv16]))
    r["ours_fp16_gbs"] = bytes_fp16 / r["ours_fp16_ms"] / 1e6
    r["ours_int8_gbs"] = bytes_int8 / r["ours_int8_ms"] / 1e6
    r["ours_fp16_copy_frac"] = r["ours_fp16_gbs"] / copy_gbs
    r["ours_int8_copy_frac"] = r["ours_int8_gbs"] / copy_gbs
    # the kernel's error on this case, so a fast-but-wrong result cannot hide in the table
    from .reference import window_attention_fp32

    ref = window_attention_fp32(qkv16[0], bias, mask, nH, scale)
    out = window_attention(qkv16[0], bias, mask, nH, scale).float()
    r["ours_fp16_rel_l2"] = ((out - ref).norm() / ref.norm()).item()
    if window_attention_triton is not None and C // nH == 32 and N <= 64:
        bias64 = pad_bias(bias).half()
        for name in triton_configs:
            cfg = tuple(int(v) for v in name.split("x"))
            if nH % cfg[0]:
                continue

            def tri(x, cfg=cfg):
                return window_attention_triton(x, bias64, nH, scale, res, res, ws, ss, config=cfg)
            try:
                r[f"triton_{name}_rel_l2"] = ((tri(qkv16[0]).float() - ref).norm() / ref.norm()).item()
                r[f"triton_{name}_ms"] = time_ms(rotating(tri, [(x,) for x in qkv16]))
            except Exception as e:  # e.g. triton's OutOfResources: recorded, not fatal
                r[f"triton_{name}_error"] = f"{type(e).__name__}: {str(e)[:200]}"
        tri_ms = {n: r[f"triton_{n}_ms"] for n in triton_configs if f"triton_{n}_ms" in r}
        if tri_ms:
            r["triton_best"] = min(tri_ms, key=tri_ms.get)
            r["triton_best_ms"] = tri_ms[r["triton_best"]]
    return r


def markdown(rows: list[dict], copy_gbs: float, device: str, impl: str) -> str:
    lines = [f"window_attention ({impl}) on {device}; device copy bandwidth {copy_gbs:.0f} GB/s (read + write)", "",
             "| model | stage | batch | windows | N | nH | ours fp16 ms | GB/s (copy frac) | ours int8 ms | ours fp8-out ms | "
             "eager ms | sdpa ms | compile ms | speedup vs sdpa | rel L2 | triton fp16 ms (config) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def ms(r, k):
        return f"{r[k]:.4f}" if k in r else "-"

    for r in rows:
        speedup = f"{r['sdpa_ms'] / r['ours_fp16_ms']:.1f}x" if "sdpa_ms" in r else "-"
        lines.append(
            f"| {r['model']} | {r['stage']}{'s' if r['shifted'] else ''} | {r['batch']} | {r['num_windows']} | {r['N']} | "
            f"{r['heads']} | {r['ours_fp16_ms']:.4f} | {r['ours_fp16_gbs']:.0f} ({r['ours_fp16_copy_frac']:.2f}) | "
            f"{r['ours_int8_ms']:.4f} | {ms(r, 'ours_fp8_ms')} | {ms(r, 'eager_ms')} | {ms(r, 'sdpa_ms')} | "
            f"{ms(r, 'compile_ms')} | {speedup} | {r['ours_fp16_rel_l2']:.1e} | "
            + (f"{r['triton_best_ms']:.4f} ({r['triton_best']}) |" if "triton_best_ms" in r else "- |"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trt_swin.plugins.window_attention.bench", description=__doc__.splitlines()[0])
    p.add_argument("--json", help="write the results here")
    p.add_argument("--models", default="swin_t,swin_l")
    p.add_argument("--batches", default="1,32,128")
    p.add_argument("--stages", default="1,2,3,4")
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile (one compile per shape)")
    p.add_argument("--compile-batches", default="1,32,128", help="batches that also time torch.compile")
    p.add_argument("--ours-only", action="store_true", help="time only our kernel (no eager / SDPA / compile)")
    p.add_argument("--triton-configs", default="",
                   help="comma list HEADSxWARPSxSTAGES of the Triton kernel to time as well (default: none)")
    args = p.parse_args(argv)
    copy_gbs = start_cuda_bench()
    if copy_gbs is None:
        return 2
    rows = []
    for model in args.models.split(","):
        for stage in map(int, args.stages.split(",")):
            for batch in map(int, args.batches.split(",")):
                do_compile = not args.no_compile and str(batch) in args.compile_batches.split(",")
                rows.append(bench_case(model, stage, batch, copy_gbs, do_compile, args.ours_only,
                                       tuple(c for c in args.triton_configs.split(",") if c)))
                print(json.dumps(rows[-1]), flush=True)
    device = torch.cuda.get_device_name()
    impl = os.environ.get("TRT_SWIN_WA_IMPL", "auto")  # which kernel serves N = 49..64 (window_attention_kernel.cuh)
    table = markdown(rows, copy_gbs, device, impl)
    print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(device=device, torch=torch.__version__, impl=impl, copy_gbs=copy_gbs, results=rows, table=table),
                      f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
