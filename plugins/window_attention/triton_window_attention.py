"""Windowed attention on the QKV GEMM output as a Triton kernel (FP16 in; FP16 out, or FP8 out for an FP8 proj GEMM),
for the engine's unfused blocks with FP16 QKV outputs: softmax(q k^T * scale + bias[h] + mask) v per window and head,
the same function as the CUDA op `window_attention` for windows of at most 64 tokens, with the shift mask derived from
the window's coordinates (timm's regions of the padded, shifted map, as the fused attention kernels do) instead of
read from an [nW, N, N] table.

    qkv [num_windows * N, 3C] fp16 (window-major rows, per token [3][num_heads][32])  ->  out [num_windows * N, C]

One program per (window, group of heads), the grid window-major or heads-first: q, k, v of a head as [NP, 32] tiles
(rows >= N read as 0), logits in FP32 with the float16 or float32 bias table padded to 64 keys
(`fused_attention.reference.pad_bias`: -inf on padded keys), softmax with exp2, P rounded to fp16 for P v, the
normalized output rounded once (to fp16, or quantized to FP8).
"""
from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from ..fused_attention.reference import KEYS, pad_bias
from ..fused_attention.triton_attention import shift_regions
from ..triton_utils import pdl_enabled, pdl_launch, pdl_wait, quantize_e4m3

HEAD_DIM = 32


def default_config(num_windows: int, num_heads: int) -> tuple[int, int, int, bool]:
    """(heads per program, num_warps, num_stages, heads-first grid). On the H100: 2 x 4 x 3 was the fastest of 7
    configs on every Swin-T / Swin-L stage with an even head count and >= 1536 (window, head) pairs (BENCHMARKS.md,
    session 6); with fewer pairs (768: Swin-T stage 4 at batch 32) one head per program was faster,
    and at batch 1 the Swin-T engine ran 0.426 ms with one head per program everywhere against 0.435 ms with two.
    From 512 windows with a head count divisible by 4, 4 heads per program on a heads-first grid (the programs of a
    window run together and share its qkv rows in L2): Swin-T stage 3 at batch 128 41.4 us against 45.6 (session 17).
    """
    if num_heads % 4 == 0 and num_windows >= 512:
        return 4, 4, 3, True
    return (2, 4, 3, False) if num_heads % 2 == 0 and num_windows * num_heads >= 1024 else (1, 4, 2, False)


__all__ = ["window_attention_triton", "pad_bias"]


@triton.jit
def _window_attention_kernel(qkv_ptr, bias_ptr, out_ptr, nWh, nWw, shift, scale, out_scale,
                             C: tl.constexpr, HPP: tl.constexpr, WS: tl.constexpr, NP: tl.constexpr,
                             HEADS_FIRST: tl.constexpr, OUT_FP8: tl.constexpr, PDL: tl.constexpr):
    pdl_wait(PDL)
    HD: tl.constexpr = 32
    N: tl.constexpr = WS * WS
    LOG2E: tl.constexpr = 1.4426950408889634
    win = tl.program_id(1) if HEADS_FIRST else tl.program_id(0)
    hg = tl.program_id(0) if HEADS_FIRST else tl.program_id(1)
    r = tl.arange(0, NP)
    valid = (r < N)[:, None]
    rows = (win.to(tl.int64) * N + r)[:, None]
    wi = win % (nWh * nWw)
    rid = shift_regions((wi // nWw) * WS + r // WS, (wi % nWw) * WS + r % WS, nWh, nWw, WS, shift)
    mask_add = tl.where(rid[:, None] != rid[None, :], -100.0, 0.0)
    d = tl.arange(0, HD)[None, :]
    for i in range(HPP):
        h = hg * HPP + i
        col = h * HD + d
        q = tl.load(qkv_ptr + rows * (3 * C) + col, mask=valid, other=0.0)
        k = tl.load(qkv_ptr + rows * (3 * C) + C + col, mask=valid, other=0.0)
        v = tl.load(qkv_ptr + rows * (3 * C) + 2 * C + col, mask=valid, other=0.0)
        bias = tl.load(bias_ptr + h * (64 * 64) + r[:, None] * 64 + r[None, :]).to(tl.float32)
        s = tl.dot(q, tl.trans(k)) * scale + bias + mask_add
        m = tl.max(s, axis=1)
        p = tl.exp2((s - m[:, None]) * LOG2E)
        o = tl.dot(p.to(tl.float16), v) / tl.sum(p, axis=1)[:, None]
        if OUT_FP8:  # the proj GEMM's FP8 input: (o / out_scale), saturated to +-448, rounded to nearest even
            tl.store(out_ptr + rows * C + col, quantize_e4m3(o, out_scale), mask=valid)
        else:
            tl.store(out_ptr + rows * C + col, o.to(tl.float16), mask=valid)


def window_attention_triton(qkv: torch.Tensor, bias64: torch.Tensor, num_heads: int, scale: float, H: int, W: int,
                            window_size: int, shift: int, config: tuple[int, int, int] | None = None,
                            out_scale: float | None = None) -> torch.Tensor:
    """Windowed attention of a Swin block's QKV GEMM output.

    Args:
        qkv: [num_windows * N, 3C] float16, contiguous, N = window_size^2 <= 64, head_dim 32 (C = 32 * num_heads);
            windows of the B x ceil(H / ws) x ceil(W / ws) padded, shifted map, window-major (as after
            window_partition).
        bias64: [num_heads, 64, 64] float16 or float32 relative-position bias padded to 64 keys (`pad_bias`).
        num_heads, scale: heads; multiplier of q k^T.
        H, W, window_size, shift: the block's map (unpadded), ws and cyclic shift: the mask is timm's for these.
        config: (heads per program, num_warps, num_stages[, heads-first grid]), default `default_config`; heads
            per program must divide num_heads. A heads-first grid runs the programs of a window together.
        out_scale: None -> float16 output; a float -> float8_e4m3fn output (value / out_scale) clamped to +-448,
            rounded to nearest even (the CUDA op's `out_fp8` rule, `epilogue.reference.quantize_fp8`): an FP8 proj
            GEMM's input.

    Returns:
        [num_windows * N, C] float16 (or float8_e4m3fn), heads merged per token ([num_heads][32]): the proj GEMM's
        input.
    """
    N = window_size * window_size
    if qkv.dtype != torch.float16 or qkv.dim() != 2:
        raise ValueError(f"window_attention_triton: qkv must be a 2-D float16 tensor, got {qkv.dtype} "
                         f"{tuple(qkv.shape)}")
    if not 1 <= window_size <= 8:
        raise ValueError(f"window_attention_triton: window_size must be in 1..8 (N <= {KEYS}), got {window_size}")
    if not 0 <= shift < window_size:
        raise ValueError(f"window_attention_triton: shift must be in [0, window_size={window_size}), got {shift}")
    C = HEAD_DIM * num_heads
    if qkv.shape[1] != 3 * C:
        raise ValueError(f"window_attention_triton: qkv must be [num_windows * N, 3 * 32 * num_heads = {3 * C}], got "
                         f"{tuple(qkv.shape)} (head_dim 32 only)")
    nWh, nWw = -(-H // window_size), -(-W // window_size)
    if qkv.shape[0] % (N * nWh * nWw):
        raise ValueError(f"window_attention_triton: qkv rows ({qkv.shape[0]}) must be B * {nWh * nWw} windows * N={N}")
    if tuple(bias64.shape) != (num_heads, KEYS, KEYS) or bias64.dtype not in (torch.float16, torch.float32):
        raise ValueError(f"window_attention_triton: bias64 must be [{num_heads}, {KEYS}, {KEYS}] float16 or float32, "
                         f"got {bias64.dtype} {tuple(bias64.shape)}")
    if bias64.device != qkv.device:
        raise ValueError(f"window_attention_triton: bias64 is on {bias64.device}, qkv on {qkv.device}")
    num_windows = qkv.shape[0] // N
    hpp, warps, stages, *rest = config or default_config(num_windows, num_heads)
    heads_first = bool(rest and rest[0]) and num_windows < 65536  # grid dimension 1's limit
    if num_heads % hpp:
        raise ValueError(f"window_attention_triton: heads per program {hpp} must divide num_heads={num_heads}")
    if out_scale is not None and not out_scale > 0:
        raise ValueError(f"window_attention_triton: out_scale must be positive, got {out_scale}")
    if not qkv.is_cuda and os.environ.get("TRT_SWIN_TRITON_CPU") != "1":  # 1: under TRITON_INTERPRET, for the tests
        raise ValueError("window_attention_triton: qkv must be a CUDA tensor (the op window_attention has a CPU path)")
    qkv, bias64 = qkv.contiguous(), bias64.contiguous()
    out = torch.empty((qkv.shape[0], C), dtype=torch.float16 if out_scale is None else torch.float8_e4m3fn,
                      device=qkv.device)
    if num_windows == 0:
        return out
    grid = (num_heads // hpp, num_windows) if heads_first else (num_windows, num_heads // hpp)
    _window_attention_kernel[grid](
        qkv, bias64, out, nWh, nWw, shift, scale, 1.0 if out_scale is None else float(out_scale), C=C, HPP=hpp,
        WS=window_size, NP=max(16, triton.next_power_of_2(N)), HEADS_FIRST=heads_first,
        OUT_FP8=out_scale is not None, num_warps=warps,
        num_stages=stages, **pdl_launch(pdl_enabled(qkv)))
    return out
