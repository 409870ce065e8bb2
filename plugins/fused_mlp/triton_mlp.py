"""The fused MLP half as a Triton kernel, for Hopper: the same function as the CUDA kernel (`fused_mlp_`), written
so that Triton lowers both GEMMs to warpgroup MMAs (wgmma) and pipelines the weight loads, which the hand-written
mma.sync kernel does not do (plugins/fused_mlp/README.md: it runs at 150-200 TFLOP/s on the H100).

    x[m, :] += fc2(act(fc1(LayerNorm(x[m, :]))))     x [M, C] fp16, in place

Numerics: LayerNorm statistics in FP32, its output rounded to fp16; FC1 accumulates in FP32, + b1; erf GELU in FP32,
tanh GELU in half2 math with the hardware tanh (unlike the CUDA kernel's FP32 form: about 2 fp16 ulps on the hidden,
which is rounded to fp16 anyway); FC2 accumulates in FP32, + b2 + x rounded once. Block shapes are powers of
two: a C that is not one runs as two column blocks C0 + C1 (96 = 64 + 32, 192 = 128 + 64, 384 = 256 + 128) where
C1 is a power of two too, else padded to the next power of two (masked loads).

FP8 form (an FP8 engine's MLP, `fp8_scales`): FP8 weights with per-tensor scales, the LayerNorm output (FP32) and the
activated hidden (fp16) quantized to FP8 with the FC inputs' scales, FP8 wgmma with FP32 sums, each scaled by input
scale x weight scale (reference.fused_mlp_fp8_ref).

INT8 form (an INT8 engine's MLP, `int8_scales`): INT8 weights with per-output-channel scales, the LayerNorm output and
the GELU'd hidden (FP32 erf, or the tanh form's fp16) quantized to INT8 (multiplying by the scale's reciprocal), INT8
wgmma with exact int32 sums (FC2's over the whole hidden), each dequantized as the INT8 GEMMs' epilogue does; FC2's
output optionally quantized and dequantized before the residual (recipe int8) (reference.fused_mlp_int8_ref).
"""
from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from .reference import TRITON_MAX_C, Int8MlpScales, check_fp8_inputs, check_inputs, check_int8_inputs
from ..triton_utils import (pdl_enabled, pdl_launch, pdl_wait, quantize_e4m3, quantize_i8_rcp, quantize_operand,
                            round_sat_i8)

# (block_m, block_h, num_warps, num_stages) per C: the fastest of 17 configs on the H100 at batch 128 (BENCHMARKS.md,
# session 5; 64 x 64, 4 warps, 3 stages is within 5 % at C = 128 and 23 % slower at C = 96 / 192). Other C take the
# entry of the next larger C, or the last.
DEFAULT_CONFIGS = {96: (64, 32, 4, 3), 128: (64, 64, 4, 3), 192: (64, 32, 4, 3), 256: (128, 64, 8, 2)}
MAX_C = TRITON_MAX_C


@triton.jit
def _act(v, ACT: tl.constexpr):
    """GELU of the FP32 FC1 output v (+ b1) -> fp16."""
    if ACT == 0:  # erf GELU in FP32
        return (0.5 * v * (1.0 + tl.math.erf(v * 0.7071067811865476))).to(tl.float16)
    elif ACT == 2:  # the tanh GELU below in portable math, for Triton's CPU interpreter (it cannot run PTX)
        vh = v.to(tl.float16)
        u = (vh * (0.7978845608028654 + 0.035677408136300125 * vh * vh).to(tl.float16)).to(tl.float32)
        t = (2.0 / (1.0 + tl.exp(-2.0 * u)) - 1.0).to(tl.float16)
        hv = vh * 0.5
        return hv + hv * t
    else:
        # tanh GELU 0.5 v (1 + tanh(0.79788 v (1 + 0.044715 v^2))) in packed half2 math on v rounded to fp16, with the
        # hardware tanh: 3 instructions per element; the FP32 form (v * sigmoid(2u)) made the kernel 1.34x slower at
        # C 96 on the H100, tanh.approx.f32 1.06x (BENCHMARKS.md, session 7). Constants: 0.035677 (0x2891),
        # 0.79788 (0x3A62), 0.5 (0x3800) in fp16.
        return tl.inline_asm_elementwise(
            """{
            .reg .b32 v2, u, t, hv, c1, c0, half;
            mov.b32 c1, 0x28912891;
            mov.b32 c0, 0x3A623A62;
            mov.b32 half, 0x38003800;
            mul.rn.f16x2 v2, $1, $1;
            fma.rn.f16x2 u, v2, c1, c0;
            mul.rn.f16x2 u, u, $1;
            tanh.approx.f16x2 t, u;
            mul.rn.f16x2 hv, $1, half;
            fma.rn.f16x2 $0, hv, t, hv;
            }""", "=r,r", [v.to(tl.float16)], dtype=tl.float16, is_pure=True, pack=2)


@triton.jit
def _hidden(s, b1, s_deq1, w1s_ptrs, s_in2, ACT: tl.constexpr, QUANT: tl.constexpr):
    """FC1's sums s of a hidden chunk -> FC2's operand: + b1, GELU; FP8: scaled, quantized; INT8: int32 sums
    dequantized as the INT8 epilogue ((s x in1 = s_deq1) x w1[n], the chunk's weight scales at w1s_ptrs), GELU (erf
    in FP32, or the tanh form's fp16 result), quantized (s_in2 = 1 / in2)."""
    # (one return, the branches' results of different types: Triton compiles the untaken constexpr branch away, but
    # not a return after an if)
    if QUANT == 2:
        v = s.to(tl.float32) * s_deq1 * tl.load(w1s_ptrs)[None, :] + b1[None, :]
        if ACT == 0:  # erf GELU in FP32
            g = 0.5 * v * (1.0 + tl.math.erf(v * 0.7071067811865476))
        else:  # the tanh GELU's half2 form (1.7x faster: the FP32 erf dominated the kernel, BENCHMARKS.md session 18)
            g = _act(v, ACT).to(tl.float32)
        p = quantize_i8_rcp(g, s_in2)
    elif QUANT == 1:
        p = quantize_e4m3(_act(s * s_deq1 + b1[None, :], ACT).to(tl.float32), s_in2)
    else:
        p = _act(s + b1[None, :], ACT)
    return p


@triton.jit
def _out(acc, b2, s_deq2, w2s_ptrs, cmask, s_out, s_out_inv, QUANT: tl.constexpr, QDQ: tl.constexpr):
    """FC2's sums -> the FP32 increment (+ b2); INT8: dequantized ((acc x in2 = s_deq2) x w2[n], the weight scales at
    w2s_ptrs where cmask), with QDQ quantized and dequantized with s_out (s_out_inv its reciprocal)."""
    if QUANT == 2:
        y = acc.to(tl.float32) * s_deq2 * tl.load(w2s_ptrs, mask=cmask, other=0.0)[None, :] + b2[None, :]
        if QDQ:
            y = round_sat_i8(y * s_out_inv) * s_out
    elif QUANT == 1:
        y = acc * s_deq2 + b2[None, :]
    else:
        y = acc + b2[None, :]
    return y


@triton.jit
def _fused_mlp_kernel(x_ptr, gamma_ptr, beta_ptr, w1_ptr, b1_ptr, w2_ptr, b2_ptr, w1s_ptr, w2s_ptr, M, eps, s_in1,
                      s_deq1, s_in2, s_deq2, s_out, s_out_inv, C: tl.constexpr, CP: tl.constexpr, HD: tl.constexpr,
                      BM: tl.constexpr, BH: tl.constexpr, ACT: tl.constexpr, QUANT: tl.constexpr, QDQ: tl.constexpr,
                      PDL: tl.constexpr):
    """The MLP half of a [BM, C] row tile (C padded to CP); QUANT as in _fused_mlp_split_kernel."""
    pdl_wait(PDL)
    pid = tl.program_id(0)
    rows = pid.to(tl.int64) * BM + tl.arange(0, BM)
    cols = tl.arange(0, CP)
    rmask = rows < M
    cmask = cols < C
    m2 = rmask[:, None] & cmask[None, :]
    offs = rows[:, None] * C + cols[None, :]
    # LayerNorm of the row tile (padded columns are 0 and stay 0: gamma, beta load as 0 there)
    x = tl.load(x_ptr + offs, mask=m2, other=0.0).to(tl.float32)
    mean = tl.sum(x, axis=1) / C
    xc = tl.where(m2, x - mean[:, None], 0.0)
    rstd = tl.rsqrt(tl.sum(xc * xc, axis=1) / C + eps)
    gamma = tl.load(gamma_ptr + cols, mask=cmask, other=0.0)
    beta = tl.load(beta_ptr + cols, mask=cmask, other=0.0)
    h = quantize_operand(xc * rstd[:, None] * gamma[None, :] + beta[None, :], s_in1, QUANT)

    hid = tl.arange(0, BH)
    acc = tl.zeros((BM, CP), dtype=tl.int32 if QUANT == 2 else tl.float32)
    for j in range(0, HD, BH):
        # W1 rows j..j+BH as a [CP, BH] operand, W2 columns j..j+BH as [BH, CP] (both K-contiguous)
        w1t = tl.load(w1_ptr + (j + hid)[None, :] * C + cols[:, None], mask=cmask[:, None], other=0.0)
        p = _hidden(tl.dot(h, w1t, out_dtype=tl.int32 if QUANT == 2 else tl.float32), tl.load(b1_ptr + j + hid),
                    s_deq1, w1s_ptr + j + hid, s_in2, ACT, QUANT)
        w2t = tl.load(w2_ptr + cols[None, :] * HD + (j + hid)[:, None], mask=cmask[None, :], other=0.0)
        acc = tl.dot(p, w2t, acc, out_dtype=tl.int32 if QUANT == 2 else tl.float32)
    y = _out(acc, tl.load(b2_ptr + cols, mask=cmask, other=0.0), s_deq2, w2s_ptr + cols, cmask, s_out, s_out_inv,
             QUANT, QDQ)
    # x is read again rather than kept live across the loop (it would hold BM x CP FP32 registers)
    res = tl.load(x_ptr + offs, mask=m2, other=0.0).to(tl.float32)
    tl.store(x_ptr + offs, (y + res).to(tl.float16), mask=m2)


@triton.jit
def _fused_mlp_split_kernel(x_ptr, gamma_ptr, beta_ptr, w1_ptr, b1_ptr, w2_ptr, b2_ptr, w1s_ptr, w2s_ptr, M, eps,
                            s_in1, s_deq1, s_in2, s_deq2, s_out, s_out_inv, C: tl.constexpr, C0: tl.constexpr,
                            C1: tl.constexpr, HD: tl.constexpr, BM: tl.constexpr, BH: tl.constexpr,
                            ACT: tl.constexpr, QUANT: tl.constexpr, QDQ: tl.constexpr, PDL: tl.constexpr):
    """_fused_mlp_kernel for C = C0 + C1 (both powers of two): the row tile, the FC1 K and the FC2 N each in two
    column blocks, so no padded column is computed. QUANT 1, FP8 weights and FC inputs (an FP8 engine's MLP): the
    LayerNorm output quantized with s_in1 and the activated hidden with s_in2, each GEMM's FP32 sum times s_deq
    (input scale x per-tensor weight scale). QUANT 2, INT8 (an INT8 engine's): the same points quantized to int8
    (s_in1 / s_in2 the reciprocals of the input scales), int32 sums dequantized with the input scale (s_deq) and the
    per-channel weight scales w1s / w2s; QDQ: FC2's output quantized and dequantized with s_out."""
    pdl_wait(PDL)
    pid = tl.program_id(0)
    rows = pid.to(tl.int64) * BM + tl.arange(0, BM)
    c0 = tl.arange(0, C0)
    c1 = C0 + tl.arange(0, C1)
    rm = (rows < M)[:, None]
    offs0 = rows[:, None] * C + c0[None, :]
    offs1 = rows[:, None] * C + c1[None, :]
    x0 = tl.load(x_ptr + offs0, mask=rm, other=0.0).to(tl.float32)
    x1 = tl.load(x_ptr + offs1, mask=rm, other=0.0).to(tl.float32)
    mean = (tl.sum(x0, axis=1) + tl.sum(x1, axis=1)) / C
    d0 = x0 - mean[:, None]
    d1 = x1 - mean[:, None]
    rstd = tl.rsqrt((tl.sum(d0 * d0, axis=1) + tl.sum(d1 * d1, axis=1)) / C + eps)
    h0 = d0 * rstd[:, None] * tl.load(gamma_ptr + c0)[None, :] + tl.load(beta_ptr + c0)[None, :]
    h1 = d1 * rstd[:, None] * tl.load(gamma_ptr + c1)[None, :] + tl.load(beta_ptr + c1)[None, :]
    h0 = quantize_operand(h0, s_in1, QUANT)
    h1 = quantize_operand(h1, s_in1, QUANT)

    hid = tl.arange(0, BH)
    ACC: tl.constexpr = tl.int32 if QUANT == 2 else tl.float32
    acc0 = tl.zeros((BM, C0), dtype=ACC)
    acc1 = tl.zeros((BM, C1), dtype=ACC)
    for j in range(0, HD, BH):
        w1r = w1_ptr + (j + hid)[None, :] * C
        s = tl.dot(h0, tl.load(w1r + c0[:, None]), out_dtype=ACC)
        s = tl.dot(h1, tl.load(w1r + c1[:, None]), s, out_dtype=ACC)
        p = _hidden(s, tl.load(b1_ptr + j + hid), s_deq1, w1s_ptr + j + hid, s_in2, ACT, QUANT)
        w2c = w2_ptr + (j + hid)[:, None]
        acc0 = tl.dot(p, tl.load(w2c + c0[None, :] * HD), acc0, out_dtype=ACC)
        acc1 = tl.dot(p, tl.load(w2c + c1[None, :] * HD), acc1, out_dtype=ACC)
    y0 = _out(acc0, tl.load(b2_ptr + c0), s_deq2, w2s_ptr + c0, c0 < C, s_out, s_out_inv, QUANT, QDQ)
    y1 = _out(acc1, tl.load(b2_ptr + c1), s_deq2, w2s_ptr + c1, c1 < C, s_out, s_out_inv, QUANT, QDQ)
    res0 = tl.load(x_ptr + offs0, mask=rm, other=0.0).to(tl.float32)
    res1 = tl.load(x_ptr + offs1, mask=rm, other=0.0).to(tl.float32)
    tl.store(x_ptr + offs0, (y0 + res0).to(tl.float16), mask=rm)
    tl.store(x_ptr + offs1, (y1 + res1).to(tl.float16), mask=rm)


def _next_pow2(n: int) -> int:
    return 1 << (n - 1).bit_length()


def default_config(C: int) -> tuple[int, int, int, int]:
    return DEFAULT_CONFIGS[min((c for c in DEFAULT_CONFIGS if c >= C), default=max(DEFAULT_CONFIGS))]


def fused_mlp_triton_(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float, w1: torch.Tensor,
                      b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor, act: str = "gelu_erf",
                      config: tuple[int, int, int, int] | None = None,
                      fp8_scales: tuple[float, float, float, float] | None = None,
                      int8_scales: Int8MlpScales | None = None) -> torch.Tensor:
    """x [M, C] fp16 += the MLP half, in place; returns x. gamma, beta, b1, b2 FP32; w1 [Hd, C], w2 [C, Hd] fp16.
    config = (block_m, block_h, num_warps, num_stages), default per C (DEFAULT_CONFIGS).
    fp8_scales = (in_scale1, w_scale1, in_scale2, w_scale2): an FP8 MLP (reference.fused_mlp_fp8_ref), w1 and w2
    float8_e4m3fn with per-tensor scales, the FC1 / FC2 inputs quantized with in_scale1 / in_scale2 (tanh GELU).
    int8_scales: an INT8 MLP (reference.fused_mlp_int8_ref), w1 and w2 int8 with per-channel scales."""
    if fp8_scales is not None and int8_scales is not None:
        raise ValueError("fused_mlp_triton_: give fp8_scales or int8_scales, not both")
    if fp8_scales is not None:
        check_fp8_inputs(x, gamma, beta, w1, b1, w2, b2, act, fp8_scales)
    elif int8_scales is not None:
        check_int8_inputs(x, gamma, beta, w1, b1, w2, b2, act, int8_scales)
    else:
        check_inputs(x, gamma, beta, w1, b1, w2, b2, act)  # the CUDA op's contract (shapes, dtypes, one device)
    M, C = x.shape
    Hd = w1.shape[0]
    if C > MAX_C:
        raise ValueError(f"fused_mlp_triton_: C must be at most {MAX_C} (the CUDA op fused_mlp_ takes up to 384), "
                         f"got C={C}")
    if not x.is_cuda and os.environ.get("TRT_SWIN_TRITON_CPU") != "1":  # 1: under TRITON_INTERPRET, for the tests
        raise ValueError("fused_mlp_triton_: x must be a CUDA tensor (the Triton kernel has no CPU path; "
                         "fused_mlp_ has)")
    if not x.is_contiguous():
        raise ValueError("fused_mlp_triton_: x must be contiguous")
    bm, bh, warps, stages = config or default_config(C)
    if Hd % bh:
        raise ValueError(f"fused_mlp_triton_: the hidden width {Hd} must be a multiple of block_h {bh}")
    if M == 0:
        return x
    w1, w2, gamma, beta, b1, b2 = (t.contiguous() for t in (w1, w2, gamma, beta, b1, b2))
    grid = (triton.cdiv(M, bm),)
    a = 0 if act == "gelu_erf" else 2 if os.environ.get("TRITON_INTERPRET") == "1" else 1
    c0 = _next_pow2(C) // 2
    quant = 1 if fp8_scales is not None else 2 if int8_scales is not None else 0
    w1s = w2s = b1  # unread placeholders outside the INT8 form
    s_out, qdq = 1.0, False
    if int8_scales is not None:  # quantizing multiplies by the reciprocal (triton_utils.quantize_i8_rcp)
        in1, in2 = float(int8_scales.in1), float(int8_scales.in2)
        q1, deq1, q2, deq2 = 1.0 / in1, in1, 1.0 / in2, in2
        w1s, w2s = int8_scales.w1.contiguous(), int8_scales.w2.contiguous()
        qdq = int8_scales.out2 is not None
        s_out = float(int8_scales.out2) if qdq else 1.0
    else:
        in1, w_s1, in2, w_s2 = (float(v) for v in (fp8_scales or (1.0, 1.0, 1.0, 1.0)))
        q1, deq1, q2, deq2 = in1, in1 * w_s1, in2, in2 * w_s2
    args = (x, gamma, beta, w1, b1, w2, b2, w1s, w2s, M, eps, q1, deq1, q2, deq2, s_out, 1.0 / s_out)
    meta = dict(HD=Hd, BM=bm, BH=bh, ACT=a, QUANT=quant, QDQ=qdq, num_warps=warps, num_stages=stages,
                **pdl_launch(pdl_enabled(x)))
    # FP8 and INT8 dots take K in multiples of 32: a second column block of 16 (C = 16 * odd) runs padded
    if C & (C - 1) and C - c0 >= (32 if quant else 16) and not (C - c0) & (C - c0 - 1):
        _fused_mlp_split_kernel[grid](*args, C=C, C0=c0, C1=C - c0, **meta)
    else:
        _fused_mlp_kernel[grid](*args, C=C, CP=_next_pow2(C), **meta)
    return x
