"""GEMMs that read or write the residual stream through Swin's window permutation, as Triton kernels (Hopper), each
replacing a memory-bound op + a GEMM of the two-kernel path:

    ln_gemm_triton:              out[m, :] = act(LN(gather(x)[m, :]) @ W^T + bias)
        (norm1 + shift + window partition -> QKV; norm2 -> FC1 + GELU)
    gemm_window_reverse_triton:  x[token(m), :] += a[m, :] @ W^T + bias, in place
        (proj -> window reverse + unshift + residual)

reference.py has the gathers, the LayerNorm fold and the oracles. The LayerNorm is folded into the GEMM
(reference.fold_layer_norm, once at engine load), so the kernel is a plain GEMM over the gathered raw x with the row
statistics summed on the way:  LN(x) @ W^T + b = rstd * (x @ W'^T - mean * u) + v.

What they save is launches and the LayerNorm output's round trip; cuBLASLt's GEMMs are faster on all but the
smallest problems (BENCHMARKS.md, session 10), so the engine runs them at batch 1 only.

Numerics: statistics in FP32 from sums of (x - x[first]) and its square (shifted by the row's first element, so that
a large mean does not cancel), the GEMM over fp16 x and fp16 W' with FP32 sums, the fold's subtraction in FP32. The
two-kernel path rounds the LayerNorm output to fp16 instead; here W' is rounded, an error of the same size. GELU:
the fused MLP's (tanh in half2 math, or erf in FP32).
"""
from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from ..fused_mlp.triton_mlp import _act
from ..triton_utils import pdl_enabled, pdl_launch, pdl_wait
from .reference import FoldedLayerNormGemm, check_inputs, check_window_reverse_inputs

# (row bound, config where N <= K, config where N > K); config = (block_m, block_n, block_k, num_warps, num_stages).
# The first rule whose bound is >= M applies. In the Swin-T engine at batch 1 on the H100 these beat four other rule
# sets by 6 - 12 % (BENCHMARKS.md, session 10). block_k is capped at the largest power of two dividing K.
RULES = ((256, (64, 32, 128, 4, 3), (64, 64, 64, 4, 4)), (1024, (64, 128, 64, 4, 3), (64, 128, 64, 4, 3)))
LARGE = (128, 128, 64, 8, 3)
ACTS = {"none": -1, "gelu_erf": 0, "gelu_tanh": 1}


@triton.jit
def _window_token(rm, mm, H, W, n_ww, n_w, WS: tl.constexpr, SS: tl.constexpr):
    """(token of x, real row?) of window-order rows rm: the position (hs, ws) in the rolled, padded map, rolled back
    by SS; rows of the padding are not real (zeros after the norm in the forward direction, dropped in reverse)."""
    win = rm // (WS * WS)
    t = rm - win * (WS * WS)
    b = win // n_w
    wi = win - b * n_w
    hs = (wi // n_ww) * WS + t // WS
    ws_ = (wi % n_ww) * WS + t % WS
    tok = (b.to(tl.int64) * H + (hs + SS) % H) * W + (ws_ + SS) % W
    return tok, mm & (hs < H) & (ws_ < W)


@triton.jit
def _row_gemm_kernel(x_ptr, w_ptr, u_ptr, v_ptr, b_ptr, out_ptr, M, H, W, n_ww, n_w, eps, K: tl.constexpr,
                     N: tl.constexpr, WINDOW: tl.constexpr, LN: tl.constexpr, SCATTER: tl.constexpr,
                     ACT: tl.constexpr, WS: tl.constexpr, SS: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
                     BK: tl.constexpr, PDL: tl.constexpr):
    """Rows of A: x [M, K] (WINDOW: window-order rows of x [B, H, W, K]). LN: the folded LayerNorm (u, v; padded
    window rows give b). SCATTER: out is the residual stream [B, H, W, N], row m added in place at its window token.
    ACT: -1 none, else _act's."""
    pdl_wait(PDL)
    pid = tl.program_id(0)
    n_n = tl.cdiv(N, BN)
    # the column tiles of a row tile run next to each other: its rows are read from DRAM once
    pid_m = pid // n_n
    pid_n = pid % n_n
    rm = pid_m * BM + tl.arange(0, BM)
    rn = pid_n * BN + tl.arange(0, BN)
    rk = tl.arange(0, BK)
    mm = rm < M
    nm = rn < N
    if WINDOW:
        tok, row_ok = _window_token(rm, mm, H, W, n_ww, n_w, WS, SS)
    else:
        tok = rm.to(tl.int64)
        row_ok = mm
    a_ptrs = x_ptr + (tok * K)[:, None] + rk[None, :]
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    s1 = tl.zeros((BM,), dtype=tl.float32)
    s2 = tl.zeros((BM,), dtype=tl.float32)
    shift = tl.zeros((BM,), dtype=tl.float32)
    if LN:
        shift = tl.load(x_ptr + tok * K, mask=row_ok, other=0.0).to(tl.float32)
    for k in range(0, K, BK):
        a = tl.load(a_ptrs + k, mask=row_ok[:, None], other=0.0)
        w = tl.load(w_ptr + rn[None, :] * K + (k + rk)[:, None], mask=nm[None, :], other=0.0)
        acc = tl.dot(a, w, acc)
        if LN:
            # the statistics from a second load of the block (an L1 / L2 hit): with the dot's load feeding them too,
            # Triton 3.6 produced wrong sums on the H100 for some block shapes (BENCHMARKS.md, session 10)
            a2 = tl.load(a_ptrs + k, mask=row_ok[:, None], other=0.0, cache_modifier=".cg")
            d = tl.where(row_ok[:, None], a2.to(tl.float32) - shift[:, None], 0.0)
            s1 += tl.sum(d, axis=1)
            s2 += tl.sum(d * d, axis=1)
    if LN:
        md = s1 / K
        mean = shift + md
        rstd = tl.rsqrt(tl.maximum(s2 / K - md * md, 0.0) + eps)
        u = tl.load(u_ptr + rn, mask=nm, other=0.0)
        v = tl.load(v_ptr + rn, mask=nm, other=0.0)
        y = rstd[:, None] * (acc - mean[:, None] * u[None, :]) + v[None, :]
        if WINDOW:  # padded rows: zeros after the norm, their output is the bias
            y = tl.where(row_ok[:, None], y, tl.load(b_ptr + rn, mask=nm, other=0.0)[None, :])
    else:
        y = acc + tl.load(b_ptr + rn, mask=nm, other=0.0)[None, :]
    if ACT >= 0:
        y = _act(y, ACT).to(tl.float32)
    if SCATTER:
        tok_out, real = _window_token(rm, mm, H, W, n_ww, n_w, WS, SS)
        offs = tok_out[:, None] * N + rn[None, :]
        om = real[:, None] & nm[None, :]
        y = y + tl.load(out_ptr + offs, mask=om, other=0.0).to(tl.float32)
    else:
        offs = rm.to(tl.int64)[:, None] * N + rn[None, :]
        om = mm[:, None] & nm[None, :]
    tl.store(out_ptr + offs, y.to(tl.float16), mask=om)


def max_block_k(K: int) -> int:
    """The largest power of two <= 128 dividing K."""
    return min(128, K & -K)


def default_config(M: int, K: int, N: int) -> tuple[int, int, int, int, int]:
    """The config of an [M, K] x [K, N] GEMM (RULES)."""
    for max_m, narrow, wide in RULES:
        if M <= max_m:
            return narrow if N <= K else wide
    return LARGE


def _act_code(act: str) -> int:
    if act not in ACTS:
        raise ValueError(f"ln_gemm: act must be one of {sorted(ACTS)}, got {act!r}")
    # the tanh GELU's half2 PTX cannot run under Triton's CPU interpreter: its portable form there
    return 2 if act == "gelu_tanh" and os.environ.get("TRITON_INTERPRET") == "1" else ACTS[act]


def _require_cuda(x: torch.Tensor, name: str) -> None:
    if not x.is_cuda and os.environ.get("TRT_SWIN_TRITON_CPU") != "1":  # 1: under TRITON_INTERPRET, for the tests
        raise ValueError(f"{name}: tensors must be on a CUDA device (the Triton kernel has no CPU path; the "
                         "two-kernel path has)")


def _launch(a, w, u, v, b, out, M, geometry, K, N, window, eps, scatter, act, ws, ss, config):
    bm, bn, bk, warps, stages = config or default_config(M, K, N)
    H, W, n_ww, n_w = geometry
    grid = (triton.cdiv(M, bm) * triton.cdiv(N, bn),)
    _row_gemm_kernel[grid](a, w, u, v, b, out, M, H, W, n_ww, n_w, 1e-5 if eps is None else float(eps), K=K, N=N,
                           WINDOW=window, LN=eps is not None, SCATTER=scatter, ACT=act, WS=ws, SS=ss, BM=bm, BN=bn,
                           BK=min(bk, max_block_k(K)), num_warps=warps, num_stages=stages,
                           **pdl_launch(pdl_enabled(a)))


def ln_gemm_triton(x: torch.Tensor, folded: FoldedLayerNormGemm, eps: float, gather: tuple, act: str = "none",
                   config: tuple[int, int, int, int, int] | None = None) -> torch.Tensor:
    """act(LN(gather(x)) @ W^T + bias) in one kernel (module docstring).

    Args:
        x: [B, H, W, C] float16 residual stream (C % 16 == 0); for the rows gather also [M, C].
        folded: reference.fold_layer_norm of the GEMM's weight [N, C], the LayerNorm's gamma / beta [C] and the
            GEMM's bias.
        eps: the LayerNorm's epsilon.
        gather: ("rows",) or ("window", ws, ss).
        act: "none", "gelu_tanh" or "gelu_erf".
        config: (block_m, block_n, block_k, num_warps, num_stages), default `default_config`; block_k is capped at
            max_block_k(C).

    Returns:
        rows: [B * H * W, N]; window: [B * nW * ws * ws, N] in window order (the QKV GEMM's output); float16.
    """
    kind, ws, ss = check_inputs(x, folded, gather)
    _require_cuda(x, "ln_gemm_triton")
    code = _act_code(act)
    C = x.shape[-1]
    N = folded.weight.shape[0]
    if kind == "rows":
        M, geometry = x.numel() // C, (1, 1, 1, 1)
    else:
        B, H, W, _ = x.shape
        n_wh, n_ww = -(-H // ws), -(-W // ws)
        M, geometry = B * n_wh * n_ww * ws * ws, (H, W, n_ww, n_wh * n_ww)
    out = torch.empty((M, N), dtype=torch.float16, device=x.device)
    if M:
        _launch(x.contiguous(), *folded, out, M, geometry, C, N, kind == "window", eps, False, code, ws, ss, config)
    return out


def gemm_window_reverse_triton(a: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, x: torch.Tensor,
                               ws: int, ss: int,
                               config: tuple[int, int, int, int, int] | None = None) -> torch.Tensor:
    """x[token(m)] += a[m] @ weight^T + bias, in place: the proj GEMM, window reverse, unshift, crop and residual.

    Args:
        a: [B * nW * ws * ws, K] float16, window-order rows (the window attention's output).
        weight: [C, K] float16; bias: [C] float32 or None.
        x: [B, H, W, C] float16 residual stream, contiguous, updated in place.
        ws, ss: the block's window size and shift.
        config: as ln_gemm_triton's.

    Returns:
        x.
    """
    check_window_reverse_inputs(a, weight, bias, x, ws, ss)
    _require_cuda(a, "gemm_window_reverse_triton")
    B, H, W, C = x.shape
    n_wh, n_ww = -(-H // ws), -(-W // ws)
    M, K = a.shape
    if M:
        b = bias.float().contiguous() if bias is not None else torch.zeros(C, device=a.device)
        _launch(a.contiguous(), weight.contiguous(), b, b, b, x, M, (H, W, n_ww, n_wh * n_ww), K, C, False, None,
                True, -1, ws, ss, config)
    return x
