"""The classifier tail: final LayerNorm + average pool over the tokens as one Triton kernel, then the FP32 head GEMM.

It replaces the engine's unfused tail's LayerNorm pass (which wrote fp16) and its mean kernel: one program per image
walks the image's tokens in chunks of TB rows, LayerNorms each row in FP32 and sums the normalized rows; the features
are gamma * sum / L + beta (the mean of the affine LayerNorm output), written in float32. The head GEMM stays cuBLAS's
FP32 GEMM (torch's F.linear): the head is kept in FP32 on purpose, and an IEEE-FP32 `tl.dot` head kernel measured
slower (BENCHMARKS.md, session 8).

Numerics: reference.classifier_head_ref (FP32 after the fp16 read).
"""
from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from ..triton_utils import pdl_enabled, pdl_launch, pdl_wait
from .reference import check_inputs

TOKENS_PER_PROGRAM = 16  # TB: Swin's 49 (w7) / 144 (w12) final tokens in 4 / 9 chunks per program


@triton.jit
def _pool_kernel(x_ptr, gamma_ptr, beta_ptr, feats_ptr, L, eps, C: tl.constexpr, CP: tl.constexpr,
                 TB: tl.constexpr, PDL: tl.constexpr):
    pdl_wait(PDL)
    b = tl.program_id(0)
    c = tl.arange(0, CP)
    cm = c < C
    acc = tl.zeros((CP,), dtype=tl.float32)
    for t0 in range(0, L, TB):
        t = t0 + tl.arange(0, TB)
        m = (t < L)[:, None] & cm[None, :]
        x = tl.load(x_ptr + (b.to(tl.int64) * L + t)[:, None] * C + c[None, :], mask=m, other=0.0).to(tl.float32)
        mean = tl.sum(x, axis=1) / C
        d = tl.where(m, x - mean[:, None], 0.0)  # rows past L and columns past C contribute 0
        rstd = tl.rsqrt(tl.sum(d * d, axis=1) / C + eps)
        acc += tl.sum(d * rstd[:, None], axis=0)
    g = tl.load(gamma_ptr + c, mask=cm, other=0.0)
    be = tl.load(beta_ptr + c, mask=cm, other=0.0)
    tl.store(feats_ptr + b.to(tl.int64) * C + c, acc / L * g + be, mask=cm)


def classifier_head_triton(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float,
                           weight: torch.Tensor | None = None, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Final LayerNorm + average pool (+ FP32 head) of the last stage's residual stream.

    Args:
        x: [B, L, C] float16, the tokens of each image (contiguous; a [B, H, W, C] stream viewed as [B, H*W, C]).
        gamma, beta, eps: the final LayerNorm's parameters ([C], read as float32).
        weight: [N, C] float32 head weight, or None for the pooled features only.
        bias: [N] (read as float32) or None.

    Returns:
        [B, N] float32 logits, or [B, C] float32 features without a weight.
    """
    B, L, C, N = check_inputs(x, gamma, beta, weight, bias)
    if not x.is_cuda and os.environ.get("TRT_SWIN_TRITON_CPU") != "1":  # 1: under TRITON_INTERPRET, for the tests
        raise ValueError("classifier_head_triton: x must be a CUDA tensor (reference.classifier_head_ref runs on CPU)")
    x = x.contiguous()
    feats = torch.empty((B, C), dtype=torch.float32, device=x.device)
    if B:
        cp = max(16, triton.next_power_of_2(C))
        _pool_kernel[(B,)](x, gamma.float().contiguous(), beta.float().contiguous(), feats, L, eps, C=C, CP=cp,
                           TB=TOKENS_PER_PROGRAM, num_warps=4 if cp <= 1024 else 8, num_stages=2,
                           **pdl_launch(pdl_enabled(x)))
    if weight is None:
        return feats
    return torch.nn.functional.linear(feats, weight, None if bias is None else bias.float())
