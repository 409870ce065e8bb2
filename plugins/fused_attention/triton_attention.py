"""The fused attention half as a Triton kernel, for Hopper: the same function and contract as the CUDA kernel
(`fused_attention_`), written so that Triton lowers its GEMMs to warpgroup MMAs (wgmma, operands read from shared
memory by the tensor cores) and pipelines the per-head weight loads. The mma.sync CUDA kernel is bound by shared-memory
traffic through ldmatrix (BENCHMARKS.md, session 5: L1 / shared at 75 %, short-scoreboard stalls).

    x += window_reverse(unshift(proj(WindowAttention(window_partition(shift(norm1(x)))))))     x [B, H, W, C] fp16

One program per window, its N = ws * ws tokens padded to NP rows (64 for ws 7 / 8): rows gathered from x by index
math (shift, crop, zero padding after the norm), LayerNorm, then per head q / k / v = LN(x) W^T + b, softmax(q k^T *
scale + bias64[h] + mask) v, and that head's share of the projection accumulated in FP32 over the heads; finally
x[token] += proj + b_proj for the window's tokens inside the map (each token belongs to one window: in place is safe).
The shift mask is derived from the window coordinates as in the CUDA kernel (timm's regions of the padded, shifted
map). Roundings as the CUDA kernel: LN output, q / k / v, P and the normalized head output, proj + b_proj to fp16;
statistics, logits, softmax, accumulations in FP32; the residual sum rounded once. C that is not a power of two runs
as two power-of-two column blocks C0 + C1 (96 = 64 + 32, 160 = 128 + 32, 192 = 128 + 64).

FP8 form (QUANT 1, an FP8 engine's attention half): FP8 QKV and proj GEMMs, the attention itself as above. INT8 form
(QUANT 2, an INT8 engine's): the INT8 recipes' quantization points (reference `fused_attention_ref(...,
int8_scales=)`): int8 LayerNorm output, int8 q / k / v from the QKV GEMM's exact int32 sums, q k^T as an int8 dot,
P V on fp16 P and the int8 v (exact in fp16), the head output quantized to int8, the projection summed over all heads
in int32, dequantized, then quantized and dequantized into the residual (or rounded to fp16).
"""
from __future__ import annotations

import os
import re

import torch
import triton
import triton.language as tl

from ..epilogue.reference import check_fp8_scales
from ..triton_utils import (pdl_enabled, pdl_launch, pdl_wait, quantize_e4m3, quantize_i8_rcp, quantize_operand,
                            round_sat_i8)
from .reference import HEAD_DIM, KEYS, Int8AttentionScales, check_inputs, check_int8_scales

# (num_warps, num_stages, staged, maxnreg) per C, the fastest measured on the H100 at batch 128 with a float16 bias
# table (BENCHMARKS.md, sessions 6 and 7): staged = the head outputs go through a global staging buffer and the
# projection runs once after the head loop, so no projection accumulators stay live across it (fewer registers, more
# programs per SM: C 192 0.233 vs 0.323 ms, C 96 0.323 vs 0.350 ms with maxnreg 168; C 128 was slower staged);
# maxnreg 0 = the compiler's choice. Other C take the entry of the next larger C, or the last.
DEFAULT_CONFIGS = {96: (4, 2, True, 168), 128: (4, 2, False, 0), 192: (4, 2, True, 0)}


@triton.jit
def _region(y, P, WS: tl.constexpr, shift):
    """timm's get_attn_mask slices (0, -ws), (-ws, -shift), (-shift, None) of a padded extent P."""
    return tl.where(y < P - WS, 0, tl.where(y < P - shift, 1, 2))


@triton.jit
def shift_regions(y, x, nWh, nWw, WS: tl.constexpr, shift):
    """Shift-mask region id (0..8) of tokens at (y, x) of the padded, shifted map (nWh x nWw windows of WS): tokens of
    different regions do not attend to each other (timm's -100). All 0 for an unshifted block. Shared with the Triton
    window attention."""
    rid = _region(y, nWh * WS, WS, shift) * 3 + _region(x, nWw * WS, WS, shift)
    return tl.where(shift > 0, rid, 0)


def parse_config(name: str) -> tuple[tuple[int, int, bool, int], bool]:
    """A benchmark's config name WARPSxSTAGES[h][s[MAXNREG]] -> ((num_warps, num_stages, staged, maxnreg), float16
    bias table): h = float16 bias table, s = staged head outputs, MAXNREG = a register cap (e.g. 4x2hs168)."""
    m = re.fullmatch(r"(\d+)x(\d+)(h?)(?:(s)(\d*))?", name)
    if not m:
        raise ValueError(f"fused attention config {name!r}: expected WARPSxSTAGES[h][s[MAXNREG]], e.g. 4x2hs168")
    warps, stages, half, staged, maxnreg = m.groups()
    return (int(warps), int(stages), bool(staged), int(maxnreg or 0)), bool(half)


@triton.jit
def _wt(w_ptr, row0, C: tl.constexpr, cols, d):
    """[len(cols), HD] operand W[row0 + d, cols]^T of a row-major [*, C] weight."""
    return tl.load(w_ptr + (row0 + d)[None, :] * C + cols[:, None])


@triton.jit
def _qkv_part(h0, h1, wqkv_ptr, bqkv_ptr, wqkvs_ptr, row0, C: tl.constexpr, c0, c1, d, C1: tl.constexpr, s_deq,
              s_out_inv, QUANT: tl.constexpr):
    """One head's q, k or v (weight rows row0 + d) of the window: [NP, HD] fp16 (+ bias; FP8: the sums times s_deq),
    or int8 (QUANT 2: the int32 sums times s_deq (the input scale), times the rows' weight scales, + bias, quantized
    with the q / k / v scale, s_out_inv its reciprocal)."""
    ACC: tl.constexpr = tl.int32 if QUANT == 2 else tl.float32
    acc = tl.dot(h0, _wt(wqkv_ptr, row0, C, c0, d), out_dtype=ACC)
    if C1 > 0:
        acc = tl.dot(h1, _wt(wqkv_ptr, row0, C, c1, d), acc, out_dtype=ACC)
    # (one return, the branches' results of different types: Triton compiles the untaken constexpr branch away, but
    # not a return after an if)
    if QUANT == 2:
        v = acc.to(tl.float32) * s_deq * tl.load(wqkvs_ptr + row0 + d)[None, :] + tl.load(bqkv_ptr + row0 + d)[None, :]
        out = quantize_i8_rcp(v, s_out_inv)
    elif QUANT == 1:
        out = (acc * s_deq + tl.load(bqkv_ptr + row0 + d)[None, :]).to(tl.float16)
    else:
        out = (acc + tl.load(bqkv_ptr + row0 + d)[None, :]).to(tl.float16)
    return out


@triton.jit
def _proj_out(acc, bp_ptr, wps_ptr, cols, s_deq, s_out, s_out_inv, QUANT: tl.constexpr, QDQ: tl.constexpr):
    """The projection's sums of a column block -> the FP32 increment: + b_proj rounded to fp16 (FP8: the sums times
    s_deq first); INT8: the int32 sums times s_deq (the input scale), times the weight scales, + b_proj, then
    quantized and dequantized with s_out (QDQ; s_out_inv its reciprocal) or rounded to fp16."""
    if QUANT == 2:
        y = acc.to(tl.float32) * s_deq * tl.load(wps_ptr + cols)[None, :] + tl.load(bp_ptr + cols)[None, :]
        if QDQ:
            y = round_sat_i8(y * s_out_inv) * s_out
        else:
            y = y.to(tl.float16).to(tl.float32)
    elif QUANT == 1:
        y = (acc * s_deq + tl.load(bp_ptr + cols)[None, :]).to(tl.float16).to(tl.float32)
    else:
        y = (acc + tl.load(bp_ptr + cols)[None, :]).to(tl.float16).to(tl.float32)
    return y


@triton.jit
def _fused_attention_kernel(x_ptr, gamma_ptr, beta_ptr, wqkv_ptr, bqkv_ptr, bias_ptr, wp_ptr, bp_ptr, stage_ptr,
                            wqkvs_ptr, wps_ptr, H, W, nWh, nWw, shift, eps, scale, s_qkv, s_qkv_deq, s_qkv_out,
                            s_qkv_out_inv, s_proj, s_proj_deq, s_proj_out, s_proj_out_inv, C: tl.constexpr,
                            C0: tl.constexpr, C1: tl.constexpr, NH: tl.constexpr, WS: tl.constexpr, NP: tl.constexpr,
                            STAGED: tl.constexpr, QUANT: tl.constexpr, QDQ: tl.constexpr, PDL: tl.constexpr):
    """One window's attention half (module docstring). s_qkv / s_proj quantize the QKV / proj GEMM inputs (FP8: the
    scales; INT8: their reciprocals), s_*_deq dequantize the GEMMs' sums (FP8: input x weight scale; INT8: the input
    scale, the weight scales per channel at wqkvs_ptr / wps_ptr); INT8: s_qkv_out the q / k / v scale, s_proj_out the
    proj output's (QDQ), *_inv their reciprocals."""
    pdl_wait(PDL)
    HD: tl.constexpr = 32
    LOG2E: tl.constexpr = 1.4426950408889634
    win = tl.program_id(0)
    nW = nWh * nWw
    b = win // nW
    wy = (win % nW) // nWw
    wx = (win % nW) % nWw
    r = tl.arange(0, NP)
    y = wy * WS + r // WS  # row / column in the padded, shifted frame
    xx = wx * WS + r % WS
    inmap = (r < WS * WS) & (y < H) & (xx < W)
    src = (b * H + (y + shift) % H).to(tl.int64) * W + (xx + shift) % W  # token of x (roll(-shift) undone)
    rm = inmap[:, None]

    # ---- gather + LayerNorm (padded rows: zeros after the norm, as timm pads) ----
    c0 = tl.arange(0, C0)
    c1 = c0  # the second column block, when C1 > 0
    x0 = tl.load(x_ptr + src[:, None] * C + c0[None, :], mask=rm, other=0.0).to(tl.float32)
    s1 = tl.sum(x0, axis=1)
    if C1 > 0:
        c1 = C0 + tl.arange(0, C1)
        x1 = tl.load(x_ptr + src[:, None] * C + c1[None, :], mask=rm, other=0.0).to(tl.float32)
        s1 += tl.sum(x1, axis=1)
    mean = s1 / C
    d0 = x0 - mean[:, None]
    s2 = tl.sum(d0 * d0, axis=1)
    if C1 > 0:
        d1 = x1 - mean[:, None]
        s2 += tl.sum(d1 * d1, axis=1)
    rstd = tl.rsqrt(s2 / C + eps)
    h0 = d0 * rstd[:, None] * tl.load(gamma_ptr + c0)[None, :] + tl.load(beta_ptr + c0)[None, :]
    h0 = quantize_operand(tl.where(rm, h0, 0.0), s_qkv, QUANT)  # the QKV GEMM's input, quantized from FP32
    h1 = h0  # unused when C1 == 0
    if C1 > 0:
        h1 = d1 * rstd[:, None] * tl.load(gamma_ptr + c1)[None, :] + tl.load(beta_ptr + c1)[None, :]
        h1 = quantize_operand(tl.where(rm, h1, 0.0), s_qkv, QUANT)

    # ---- shift mask: -100 between tokens of different regions (shifted blocks only) ----
    rid = shift_regions(y, xx, nWh, nWw, WS, shift)
    bias_offs = r[:, None] * 64 + r[None, :]  # bias64 is [NH, 64, 64] whatever NP is

    d = tl.arange(0, HD)
    ACC: tl.constexpr = tl.int32 if QUANT == 2 else tl.float32  # INT8: the projection summed exactly over the heads
    if STAGED:  # this window's [NP, C] rows of the staging buffer: the head outputs (as the proj GEMM takes them)
        stage_rows = stage_ptr + win.to(tl.int64) * (NP * C) + r[:, None] * C
    else:
        acc0 = tl.zeros((NP, C0), dtype=ACC)
        if C1 > 0:
            acc1 = tl.zeros((NP, C1), dtype=ACC)
    for h in range(NH):
        hq = h * HD
        q = _qkv_part(h0, h1, wqkv_ptr, bqkv_ptr, wqkvs_ptr, hq, C, c0, c1, d, C1, s_qkv_deq, s_qkv_out_inv, QUANT)
        k = _qkv_part(h0, h1, wqkv_ptr, bqkv_ptr, wqkvs_ptr, C + hq, C, c0, c1, d, C1, s_qkv_deq, s_qkv_out_inv,
                      QUANT)
        v = _qkv_part(h0, h1, wqkv_ptr, bqkv_ptr, wqkvs_ptr, 2 * C + hq, C, c0, c1, d, C1, s_qkv_deq, s_qkv_out_inv,
                      QUANT)
        # logits in FP32; bias64's -inf columns are the padded keys (probability 0); the mask recomputed per head
        # from the region ids (cheaper in registers than a live [NP, NP] table)
        bias = tl.load(bias_ptr + h * 4096 + bias_offs).to(tl.float32)
        if QUANT == 2:  # int8 q k^T, exact; q, k dequantized in the scale
            s = tl.dot(q, tl.trans(k), out_dtype=tl.int32).to(tl.float32) * (s_qkv_out * s_qkv_out * scale)
        else:
            s = tl.dot(q, tl.trans(k)) * scale
        s = s + bias + tl.where(rid[:, None] != rid[None, :], -100.0, 0.0)
        m = tl.max(s, axis=1)
        p = tl.exp2((s - m[:, None]) * LOG2E)
        if QUANT == 2:  # the proj GEMM's input: the FP32 head output (v dequantized in the scale), quantized
            o = quantize_i8_rcp(tl.dot(p.to(tl.float16), v.to(tl.float16))
                                * (s_qkv_out / tl.sum(p, axis=1))[:, None], s_proj)
        else:
            o = (tl.dot(p.to(tl.float16), v) / tl.sum(p, axis=1)[:, None]).to(tl.float16)
            if QUANT == 1:  # the proj GEMM's input (the fp16 head output, quantized)
                o = quantize_e4m3(o.to(tl.float32), s_proj)
        if STAGED:
            tl.store(stage_rows + hq + d[None, :], o)
        else:  # this head's share of proj: o [NP, HD] @ W_proj[:, hq:hq+HD]^T
            acc0 = tl.dot(o, tl.load(wp_ptr + c0[None, :] * C + (hq + d)[:, None]), acc0, out_dtype=ACC)
            if C1 > 0:
                acc1 = tl.dot(o, tl.load(wp_ptr + c1[None, :] * C + (hq + d)[:, None]), acc1, out_dtype=ACC)
    if STAGED:  # proj of the merged heads: [NP, C] @ W_proj^T in column blocks (K and N split as C0 + C1)
        tl.debug_barrier()  # the rows were written by all warps of the program
        o0 = tl.load(stage_rows + c0[None, :])
        acc0 = tl.dot(o0, tl.load(wp_ptr + c0[None, :] * C + c0[:, None]), out_dtype=ACC)
        if C1 > 0:
            o1 = tl.load(stage_rows + c1[None, :])
            acc0 = tl.dot(o1, tl.load(wp_ptr + c0[None, :] * C + c1[:, None]), acc0, out_dtype=ACC)
            acc1 = tl.dot(o0, tl.load(wp_ptr + c1[None, :] * C + c0[:, None]), out_dtype=ACC)
            acc1 = tl.dot(o1, tl.load(wp_ptr + c1[None, :] * C + c1[:, None]), acc1, out_dtype=ACC)

    # ---- epilogue: the projection's increment, + x once in FP32 (x re-read: not kept live across the head loop) ----
    y0 = _proj_out(acc0, bp_ptr, wps_ptr, c0, s_proj_deq, s_proj_out, s_proj_out_inv, QUANT, QDQ)
    offs0 = src[:, None] * C + c0[None, :]
    y0 += tl.load(x_ptr + offs0, mask=rm, other=0.0).to(tl.float32)
    tl.store(x_ptr + offs0, y0.to(tl.float16), mask=rm)
    if C1 > 0:
        y1 = _proj_out(acc1, bp_ptr, wps_ptr, c1, s_proj_deq, s_proj_out, s_proj_out_inv, QUANT, QDQ)
        offs1 = src[:, None] * C + c1[None, :]
        y1 += tl.load(x_ptr + offs1, mask=rm, other=0.0).to(tl.float32)
        tl.store(x_ptr + offs1, y1.to(tl.float16), mask=rm)


def column_blocks(C: int) -> tuple[int, int]:
    """C = C0 + C1 with C0 a power of two and C1 a power of two or 0 (every multiple of 32 up to 192 splits so)."""
    c0 = 1 << (C.bit_length() - 1)
    c1 = C - c0
    if c1 & (c1 - 1):
        raise ValueError(f"fused_attention_triton_: C={C} is not a sum of two powers of two")
    return c0, c1


def default_config(C: int, windows: int | None = None, sms: int | None = None) -> tuple[int, int, bool, int]:
    """DEFAULT_CONFIGS' entry for C; per-head (not staged) when the grid has no more windows than the GPU has SMs:
    with one program per SM the staged form's extra pass is pure latency (H100, batch 1: C 96, 64 windows, 0.0144 vs
    0.0182 ms; C 192, 16 windows, 0.0269 vs 0.0302; BENCHMARKS.md, session 7)."""
    cfg = DEFAULT_CONFIGS[min((c for c in DEFAULT_CONFIGS if c >= C), default=max(DEFAULT_CONFIGS))]
    if cfg[2] and windows is not None and sms is not None and windows <= sms:
        return cfg[0], cfg[1], False, 0
    return cfg


def fused_attention_triton_(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float, w_qkv: torch.Tensor,
                            b_qkv: torch.Tensor, bias64: torch.Tensor, w_proj: torch.Tensor, b_proj: torch.Tensor,
                            window_size: int, shift: int, scale: float,
                            config: tuple[int, ...] | None = None,
                            fp8_scales: tuple[float, float, float, float] | None = None,
                            int8_scales: Int8AttentionScales | None = None) -> torch.Tensor:
    """x [B, H, W, C] fp16 += the block's attention branch, in place; returns x. Arguments as `fused_attention_`
    (op.py), except that bias64 may also be float16 (half the bytes each program reads; 1.10x at C 96, batch 128 on
    the H100). config = (num_warps, num_stages[, staged[, maxnreg]]), default `default_config`; staged
    allocates a [windows, 64, C] float16 staging buffer per call (float8 in the FP8 form).
    fp8_scales = (qkv in_scale, qkv w_scale, proj in_scale, proj w_scale): the FP8 form (an FP8 engine's attention
    half, reference `fused_attention_ref(..., fp8_scales=)`): w_qkv and w_proj float8_e4m3fn with per-tensor scales,
    the QKV and proj GEMMs on FP8 inputs, the attention itself in FP16 / FP32 as the FP16 form.
    int8_scales: the INT8 form (an INT8 engine's attention half, reference `fused_attention_ref(..., int8_scales=)`):
    w_qkv and w_proj int8 with per-channel scales. num_warps must be 4."""
    if fp8_scales is not None and int8_scales is not None:
        raise ValueError("fused_attention_triton_: give fp8_scales or int8_scales, not both")
    weight_dtype = (torch.float8_e4m3fn if fp8_scales is not None else torch.int8 if int8_scales is not None
                    else torch.float16)
    check_inputs(x, gamma, beta, w_qkv, b_qkv, bias64, w_proj, b_proj, window_size, shift,
                 bias_dtypes=(torch.float32, torch.float16), weight_dtype=weight_dtype)  # the CUDA op's contract
    if fp8_scales is not None:
        check_fp8_scales("fused_attention_triton_", fp8_scales,
                         "qkv in_scale, qkv w_scale, proj in_scale, proj w_scale")
    if int8_scales is not None:
        check_int8_scales(int8_scales, x.shape[3], x.device)
    if config is not None and config[0] != 4:
        # one warpgroup per window: the only form measured and tested; Triton 3.6 compiled 8 warps x 1 stage at C 128
        # into a kernel that faulted (illegal address) on the H100 (BENCHMARKS.md, session 11)
        raise ValueError(f"fused_attention_triton_: config num_warps must be 4, got {config[0]}")
    if not x.is_cuda and os.environ.get("TRT_SWIN_TRITON_CPU") != "1":  # 1: under TRITON_INTERPRET, for the tests
        raise ValueError("fused_attention_triton_: x must be a CUDA tensor (the Triton kernel has no CPU path; "
                         "fused_attention_ has)")
    if not x.is_contiguous():
        raise ValueError("fused_attention_triton_: x must be contiguous")
    B, H, W, C = x.shape
    if B == 0:
        return x
    ws = window_size
    nWh, nWw = -(-H // ws), -(-W // ws)
    c0, c1 = column_blocks(C)
    windows = B * nWh * nWw
    if config is None:
        sms = torch.cuda.get_device_properties(x.device).multi_processor_count if x.is_cuda else None
        config = default_config(C, windows, sms)
    warps, stages, staged, maxnreg = (*config, False, 0)[:4]  # 2- and 3-tuples: not staged, no register cap
    np_rows = max(16, triton.next_power_of_2(ws * ws))
    assert np_rows <= KEYS
    w_qkv, w_proj, gamma, beta, b_qkv, b_proj, bias64 = (
        t.contiguous() for t in (w_qkv, w_proj, gamma, beta, b_qkv, b_proj, bias64))
    quant = 1 if fp8_scales is not None else 2 if int8_scales is not None else 0
    stage = torch.empty((windows, np_rows, C), dtype=weight_dtype, device=x.device) if staged else x
    wqkvs = wps = b_qkv  # unread placeholders outside the INT8 form
    s_qkv_out, s_proj_out, qdq = 1.0, 1.0, False
    if int8_scales is not None:  # quantizing multiplies by the reciprocal (triton_utils.quantize_i8_rcp)
        sc = int8_scales
        q_qkv, deq_qkv, q_proj, deq_proj = 1.0 / sc.qkv_in, float(sc.qkv_in), 1.0 / sc.proj_in, float(sc.proj_in)
        wqkvs, wps = sc.qkv_w.contiguous(), sc.proj_w.contiguous()
        s_qkv_out, qdq = float(sc.qkv_out), sc.proj_out is not None
        s_proj_out = float(sc.proj_out) if qdq else 1.0
    else:
        s_qkv, ws_qkv, s_proj, ws_proj = (float(v) for v in (fp8_scales or (1.0, 1.0, 1.0, 1.0)))
        q_qkv, deq_qkv, q_proj, deq_proj = s_qkv, s_qkv * ws_qkv, s_proj, s_proj * ws_proj
    _fused_attention_kernel[(windows,)](
        x, gamma, beta, w_qkv, b_qkv, bias64, w_proj, b_proj, stage, wqkvs, wps, H, W, nWh, nWw, shift, eps, scale,
        q_qkv, deq_qkv, s_qkv_out, 1.0 / s_qkv_out, q_proj, deq_proj, s_proj_out, 1.0 / s_proj_out,
        C=C, C0=c0, C1=c1, NH=C // HEAD_DIM, WS=ws, NP=np_rows, STAGED=bool(staged), QUANT=quant, QDQ=qdq,
        num_warps=warps, num_stages=stages, **({"maxnreg": maxnreg} if maxnreg else {}), **pdl_launch(pdl_enabled(x)))
    return x
