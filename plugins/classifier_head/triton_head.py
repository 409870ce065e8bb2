"""The classifier tail: final LayerNorm + average pool over the tokens as one Triton kernel, then the FP32 head GEMM.

It replaces the engine's unfused tail's LayerNorm pass (which wrote fp16) and its mean kernel: one program per image
walks the image's tokens in chunks of TB rows, LayerNorms each row in FP32 and sums the normalized rows; the features
are gamma * sum / L + beta (the mean of the affine LayerNorm output), written in float32. The head is kept in FP32 on
purpose: below HEAD_GEMM_MIN_M images it is cuBLAS's FP32 GEMM (torch's F.linear), from there `_head_kernel`, a
`tl.dot` with tf32x3 (three TF32 tensor-core products per FP32 product, FP32-level error) that beats cuBLAS's FP32
SIMT GEMM at those sizes (an IEEE-FP32 `tl.dot` measured slower everywhere, BENCHMARKS.md session 8).

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
    if HEAD_GEMM == "triton" or (HEAD_GEMM == "auto" and B >= HEAD_GEMM_MIN_M):
        return head_gemm_triton(feats, weight, bias)
    return torch.nn.functional.linear(feats, weight, None if bias is None else bias.float())


# The head GEMM: "triton" (head_gemm_triton, tf32x3 on tensor cores), "cublas" (F.linear, FP32 on the FP32 pipes) or
# "auto": Triton from HEAD_GEMM_MIN_M rows. H100, [M, 768] x [1000, 768]^T, us (BENCHMARKS.md, session 17): cuBLAS /
# Triton 3.0 / 9.4 at M 1, 5.8 / 9.4 at 8, 12.1 / 8.5 at 32, 16.2 / 11.1 at 128.
HEAD_GEMM = os.environ.get("TRT_SWIN_HEAD_GEMM", "auto")
HEAD_GEMM_MIN_M = 32


# (BM, BN, BK, num_warps, num_stages) of head_gemm_triton: 16 x 32 tiles were the fastest of 10 configs at M 32 and
# 128 on the H100 (more programs than larger tiles).
HEAD_CONFIG = (16, 32, 64, 4, 3)


@triton.jit
def _head_kernel(f_ptr, w_ptr, b_ptr, out_ptr, M, N, K, HAS_BIAS: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
                 BK: tl.constexpr):
    rm = tl.program_id(0) * BM + tl.arange(0, BM)
    rn = tl.program_id(1) * BN + tl.arange(0, BN)
    mm, nm = (rm < M)[:, None], (rn < N)[None, :]
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for k0 in range(0, K, BK):
        rk = k0 + tl.arange(0, BK)
        km = rk < K
        a = tl.load(f_ptr + rm.to(tl.int64)[:, None] * K + rk[None, :], mask=mm & km[None, :], other=0.0)
        w = tl.load(w_ptr + rn.to(tl.int64)[None, :] * K + rk[:, None], mask=nm & km[:, None], other=0.0)
        acc = tl.dot(a, w, acc, input_precision="tf32x3")
    if HAS_BIAS:
        acc += tl.load(b_ptr + rn, mask=rn < N, other=0.0)[None, :]
    tl.store(out_ptr + rm.to(tl.int64)[:, None] * N + rn[None, :], acc, mask=mm & nm)


def head_gemm_triton(feats: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                     config: tuple[int, int, int, int, int] | None = None) -> torch.Tensor:
    """feats [M, K] float32 @ weight [N, K]^T float32 (+ bias [N]) -> [M, N] float32 on tensor cores with tf32x3
    (each operand split into two TF32 parts, three products: FP32-level error, about 1e-6 relative, where cuBLAS's
    FP32 GEMM runs on the FP32 pipes)."""
    M, K = feats.shape
    N = weight.shape[0]
    if weight.shape[1] != K or feats.dtype != torch.float32 or weight.dtype != torch.float32:
        raise ValueError(f"head_gemm_triton: feats [M, K] and weight [N, K] float32, got {feats.dtype} "
                         f"{tuple(feats.shape)} and {weight.dtype} {tuple(weight.shape)}")
    feats, weight = feats.contiguous(), weight.contiguous()
    b = None if bias is None else bias.float().contiguous()
    out = torch.empty((M, N), dtype=torch.float32, device=feats.device)
    if M and N:
        bm, bn, bk, warps, stages = config or HEAD_CONFIG
        _head_kernel[(triton.cdiv(M, bm), triton.cdiv(N, bn))](feats, weight, feats if b is None else b, out, M, N, K,
                                                              HAS_BIAS=b is not None, BM=bm, BN=bn, BK=bk,
                                                              num_warps=warps, num_stages=stages)
    return out
