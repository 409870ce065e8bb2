"""Patch embedding as one Triton kernel: images -> p x p patches -> GEMM (+ bias) -> LayerNorm, written once as the
residual stream [B, H / p, W / p, C] fp16. It replaces the engine's unfused stem (a permuting copy of the images into
patch rows, the K = Cin * p * p GEMM, a LayerNorm pass), which moved the stream through memory three times; the
engine also runs it on the caller's images before its CUDA graph, so the copy into the graph's input goes too.

One program per (image, patch row, block of BW patches): the [BW, K] patch tile gathered from the image (fp32 or fp16,
NCHW; each patch row is Cin * p rows of the image), widened to fp16, times W^T [K, C] with tl.dot, + bias, rounded to
fp16, LayerNorm over C in FP32, stored. K and C are padded to powers of two inside the program (masked loads; the
LayerNorm statistics cover the C real columns). Numerics: reference.patch_embed_ref.
"""
from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from .reference import check_inputs, output_for


@triton.jit
def _patch_embed_kernel(img_ptr, w_ptr, b_ptr, gamma_ptr, beta_ptr, out_ptr, Hin, Win, Hp, Wp, eps,
                        CIN: tl.constexpr, P: tl.constexpr, K: tl.constexpr, KW: tl.constexpr, KP: tl.constexpr,
                        C: tl.constexpr, CP: tl.constexpr, BW: tl.constexpr, NORM: tl.constexpr):
    row = tl.program_id(0)  # b * Hp + hp
    b = row // Hp
    hp = row % Hp
    wp = tl.program_id(1) * BW + tl.arange(0, BW)
    k = tl.arange(0, KP)  # (cin, i, j) flattened
    cin = k // (P * P)
    i = (k // P) % P
    j = k % P
    img_row = ((b * CIN + cin) * Hin + hp * P + i).to(tl.int64) * Win
    a = tl.load(img_ptr + img_row[None, :] + (wp * P)[:, None] + j[None, :],
                mask=(wp < Wp)[:, None] & (k < K)[None, :], other=0.0).to(tl.float16)
    n = tl.arange(0, CP)
    nmask = n < C
    wt = tl.load(w_ptr + n[None, :] * KW + k[:, None], mask=(k < K)[:, None] & nmask[None, :], other=0.0)
    y = tl.dot(a, wt) + tl.load(b_ptr + n, mask=nmask, other=0.0).to(tl.float32)[None, :]
    y = y.to(tl.float16).to(tl.float32)
    if NORM:
        mean = tl.sum(tl.where(nmask[None, :], y, 0.0), axis=1) / C
        d = tl.where(nmask[None, :], y - mean[:, None], 0.0)
        rstd = tl.rsqrt(tl.sum(d * d, axis=1) / C + eps)
        g = tl.load(gamma_ptr + n, mask=nmask, other=0.0)
        be = tl.load(beta_ptr + n, mask=nmask, other=0.0)
        y = d * rstd[:, None] * g[None, :] + be[None, :]
    out_row = (row.to(tl.int64) * Wp + wp) * C
    tl.store(out_ptr + out_row[:, None] + n[None, :], y.to(tl.float16), mask=(wp < Wp)[:, None] & nmask[None, :])


def patch_embed_triton(images: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, patch: int,
                       gamma: torch.Tensor | None = None, beta: torch.Tensor | None = None, eps: float = 1e-5,
                       out: torch.Tensor | None = None) -> torch.Tensor:
    """Patch embedding (+ LayerNorm) of images [B, Cin, H, W] float32 / float16 (NCHW, made contiguous).

    Args:
        weight: [C, K'] float16, the patch GEMM's weight with K' >= Cin * p * p (columns past Cin * p * p, zero
            padding of the engine's GEMM, are not read).
        bias: [C] (float16 or float32; rounded to fp16 as the engine's cuBLASLt bias epilogue reads it).
        gamma, beta: [C] float32 LayerNorm parameters, or None for no norm.
        out: optional [B, H / p, W / p, C] float16 contiguous destination (e.g. a CUDA graph's static input).

    Returns:
        [B, H / p, W / p, C] float16.
    """
    B, cin, Hp, Wp, C = check_inputs(images, weight, bias, patch, gamma, beta)
    if not images.is_cuda and os.environ.get("TRT_SWIN_TRITON_CPU") != "1":  # 1: under TRITON_INTERPRET, for tests
        raise ValueError("patch_embed_triton: images must be a CUDA tensor (reference.patch_embed_ref runs on CPU)")
    out = output_for("patch_embed_triton", images, (B, Hp, Wp, C), out)
    if B == 0:
        return out
    images, weight = images.contiguous(), weight.contiguous()
    bias16 = bias.half().contiguous()
    norm = gamma is not None
    g = gamma.float().contiguous() if norm else bias16  # unread when NORM is 0
    be = beta.float().contiguous() if norm else bias16
    bw = min(64, max(16, triton.next_power_of_2(Wp)))
    K = cin * patch * patch
    _patch_embed_kernel[(B * Hp, triton.cdiv(Wp, bw))](
        images, weight, bias16, g, be, out, images.shape[2], images.shape[3], Hp, Wp, eps,
        CIN=cin, P=patch, K=K, KW=weight.shape[1], KP=max(16, triton.next_power_of_2(K)), C=C,
        CP=max(16, triton.next_power_of_2(C)), BW=bw, NORM=norm, num_warps=4, num_stages=1)
    return out
