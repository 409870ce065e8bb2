"""An INT8 GEMM with its epilogue fused, as a Triton kernel, for Hopper: what the INT8 engine otherwise runs as two
kernels, cuBLASLt's INT8 GEMM writing int32 accumulators and the `epilogue` op reading them back (BENCHMARKS.md,
session 3: the int32 round trip costs more than the GEMMs themselves).

    out[m, n] = act(sum_k a[m, k] w[n, k] * in_scale * col_scale[n] + bias[n]) (+ residual[m, n])
              -> float16, or int8 sat(round_half_even(out / out_scale)), or with out_qdq that int8 value times
                 out_scale (+ residual) as float16

a [M, K] int8 activations, w [N, K] int8 weights (nn.Linear layout), int8 wgmma with exact int32 sums; the epilogue
in FP32 in the order of `epilogue.reference.epilogue_ref` (erf GELU; an IEEE division before rounding, as every
trt_swin kernel quantizes). Reference: `reference.gemm_int8_ref`.
"""
from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from ..triton_utils import pdl_enabled, pdl_launch, pdl_wait, quantize_i8_float
from .reference import check_int8_epilogue_inputs

# (block_m, block_n, block_k, num_warps, num_stages): block_n follows N (the least padding, then the widest), block_k
# follows K (int8 wgmma steps K by 32). 3 stages rather than 4: on the five GEMMs the engine sends here (Swin-T stages
# 1-2 QKV, proj, FC2 at batch 128 on the H100) faster on three (stage-1 FC2 0.175 vs 0.258 ms), equal on one, 6 %
# slower on one (BENCHMARKS.md, session 9).
DEFAULT_BLOCK_M, DEFAULT_WARPS, DEFAULT_STAGES = 128, 8, 3


@triton.jit
def _gemm_int8_kernel(a_ptr, w_ptr, out_ptr, cs_ptr, bias_ptr, res_ptr, M, N, K, in_scale, out_scale,
                      HAS_BIAS: tl.constexpr, GELU: tl.constexpr, HAS_RES: tl.constexpr, OUT: tl.constexpr,
                      BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, GROUP_M: tl.constexpr, PDL: tl.constexpr):
    """OUT: 0 float16, 1 int8, 2 int8 then dequantized to float16 (the residual added after the dequantization)."""
    pdl_wait(PDL)
    pid = tl.program_id(0)
    n_m = tl.cdiv(M, BM)
    n_n = tl.cdiv(N, BN)
    # grouped order: GROUP_M row tiles share each weight column tile while it is in L2
    group = pid // (GROUP_M * n_n)
    first_m = group * GROUP_M
    size_m = tl.minimum(n_m - first_m, GROUP_M)
    pid_m = first_m + (pid % (GROUP_M * n_n)) % size_m
    pid_n = (pid % (GROUP_M * n_n)) // size_m
    rm = pid_m * BM + tl.arange(0, BM)
    rn = pid_n * BN + tl.arange(0, BN)
    rk = tl.arange(0, BK)
    mm = rm < M
    nm = rn < N
    a_ptrs = a_ptr + rm.to(tl.int64)[:, None] * K + rk[None, :]
    w_ptrs = w_ptr + rn[None, :] * K + rk[:, None]  # [BK, BN] operand: w^T
    acc = tl.zeros((BM, BN), dtype=tl.int32)
    for k in range(0, K, BK):
        km = (k + rk) < K
        a = tl.load(a_ptrs, mask=mm[:, None] & km[None, :], other=0)
        w = tl.load(w_ptrs, mask=km[:, None] & nm[None, :], other=0)
        acc = tl.dot(a, w, acc, out_dtype=tl.int32)
        a_ptrs += BK
        w_ptrs += BK

    v = acc.to(tl.float32) * in_scale
    v = v * tl.load(cs_ptr + rn, mask=nm, other=0.0)[None, :]
    if HAS_BIAS:
        v = v + tl.load(bias_ptr + rn, mask=nm, other=0.0)[None, :]
    if GELU:  # erf GELU, as torch.nn.GELU()
        v = 0.5 * v * (1.0 + tl.math.erf(v * 0.7071067811865476))
    offs = rm.to(tl.int64)[:, None] * N + rn[None, :]
    om = mm[:, None] & nm[None, :]
    if OUT == 0:
        if HAS_RES:
            v = v + tl.load(res_ptr + offs, mask=om, other=0.0).to(tl.float32)
        tl.store(out_ptr + offs, v.to(tl.float16), mask=om)
    else:
        if HAS_RES and OUT == 1:
            v = v + tl.load(res_ptr + offs, mask=om, other=0.0).to(tl.float32)
        q = quantize_i8_float(v, out_scale)
        if OUT == 1:
            tl.store(out_ptr + offs, q.to(tl.int8), mask=om)
        else:
            v = q * out_scale
            if HAS_RES:
                v = v + tl.load(res_ptr + offs, mask=om, other=0.0).to(tl.float32)
            tl.store(out_ptr + offs, v.to(tl.float16), mask=om)


def default_config(N: int, K: int) -> tuple[int, int, int, int, int]:
    """(block_m, block_n, block_k, num_warps, num_stages) for an [*, K] x [N, K] GEMM."""
    bn = min((256, 128, 64, 32), key=lambda b: (-(-N // b) * b, -b))
    bk = 128 if K % 128 == 0 else 64 if K % 64 == 0 else 32
    return DEFAULT_BLOCK_M, bn, bk, DEFAULT_WARPS, DEFAULT_STAGES


def gemm_int8_triton(a: torch.Tensor, w: torch.Tensor, in_scale: float, col_scale: torch.Tensor,
                     bias: torch.Tensor | None = None, act: str = "none", residual: torch.Tensor | None = None,
                     out_scale: float | None = None, out_qdq: bool = False,
                     config: tuple[int, int, int, int, int] | None = None) -> torch.Tensor:
    """act(a @ w^T * in_scale * col_scale + bias) (+ residual) in one kernel (module docstring); -> [M, N] float16,
    or int8 when out_scale is given (float16 again with out_qdq). a [M, K], w [N, K] int8; col_scale and bias
    float32 [N]; residual float16 [M, N]. config: (block_m, block_n, block_k, num_warps, num_stages), default
    `default_config`."""
    check_int8_epilogue_inputs(a, w, col_scale, bias, act, residual, out_scale, out_qdq)
    if not a.is_cuda and os.environ.get("TRT_SWIN_TRITON_CPU") != "1":  # 1: under TRITON_INTERPRET, for the tests
        raise ValueError("gemm_int8_triton: a must be a CUDA tensor (the Triton kernel has no CPU path; the gemm and "
                         "epilogue ops have)")
    M, K = a.shape
    N = w.shape[0]
    out_kind = 0 if out_scale is None else 2 if out_qdq else 1
    out = torch.empty((M, N), dtype=torch.int8 if out_kind == 1 else torch.float16, device=a.device)
    if M == 0:
        return out
    bm, bn, bk, warps, stages = config or default_config(N, K)
    a, w, col_scale = a.contiguous(), w.contiguous(), col_scale.contiguous()
    grid = (triton.cdiv(M, bm) * triton.cdiv(N, bn),)
    _gemm_int8_kernel[grid](
        a, w, out, col_scale, bias if bias is not None else col_scale,
        residual.contiguous() if residual is not None else out, M, N, K, float(in_scale),
        float(out_scale or 1.0), HAS_BIAS=bias is not None, GELU=act == "gelu", HAS_RES=residual is not None,
        OUT=out_kind, BM=bm, BN=bn, BK=bk, GROUP_M=8, num_warps=warps, num_stages=stages,
        **pdl_launch(pdl_enabled(a)))
    return out
