"""Plain-PyTorch reference of `trt_swin::fused_attention_`: the test oracle and the op's CPU kernel.

    x += window_reverse(unshift(proj(WindowAttention(window_partition(shift(norm1(x)))))))

composed from the unfused ops' references (ln_shift_partition -> qkv Linear -> window attention -> proj Linear ->
window_reverse) with the unfused FP16 engine's roundings to float16: the LayerNorm output, q / k / v, the attention
output and the projection output; the residual sum stays FP32 until the caller's single final rounding. The shift mask
is timm's, computed by `swin_shift_mask` (the kernel derives it from the window coordinates).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from dataclasses import dataclass

from ..epilogue.reference import quantize_fp8, quantize_int8
from ..ln_shift_partition.reference import ln_shift_partition_ref
from ..window_reverse.reference import window_reverse_ref

HEAD_DIM = 32
KEYS = 64  # keys per window, padded: the kernel takes windows of N = ws * ws <= 64 tokens
MAX_C = 192


@dataclass(frozen=True)
class Int8AttentionScales:
    """The scales of an INT8 attention half (the INT8 recipes' quantizers, quant/README.md): per-tensor activation
    scales, per-output-channel weight scales (float32 tensors on the kernel's device)."""

    qkv_in: float  # the QKV GEMM's input: the LayerNorm output
    qkv_w: torch.Tensor  # [3C] the QKV weight rows
    qkv_out: float  # the QKV output: int8 q, k and v share it
    proj_in: float  # the proj GEMM's input: the attention output
    proj_w: torch.Tensor  # [C] the proj weight rows
    proj_out: float | None = None  # the proj output, quantized and dequantized into the residual; None: fp16


def check_int8_scales(scales: "Int8AttentionScales", C: int, device: torch.device) -> None:
    """ValueError unless `scales` fit an INT8 attention half of width C on `device`."""
    if not isinstance(scales, Int8AttentionScales):
        raise ValueError(f"fused_attention_: int8_scales must be an Int8AttentionScales, got {type(scales).__name__}")
    acts = (scales.qkv_in, scales.qkv_out, scales.proj_in) + (() if scales.proj_out is None else (scales.proj_out,))
    if not all(v > 0 for v in acts):
        raise ValueError(f"fused_attention_: INT8 activation scales must be positive, got {scales}")
    for name, t, n in (("qkv_w", scales.qkv_w, 3 * C), ("proj_w", scales.proj_w, C)):
        if tuple(t.shape) != (n,) or t.dtype != torch.float32 or t.device != device:
            raise ValueError(f"fused_attention_: int8_scales.{name} must be float32 [{n}] on {device}, got "
                             f"{t.dtype} {tuple(t.shape)} on {t.device}")


def swin_shift_mask(H: int, W: int, window_size: int, shift: int) -> torch.Tensor | None:
    """timm's [nW, N, N] float32 shift mask (0 / -100) for an H x W map (padded up to whole windows), None when
    shift == 0: tokens of different regions of the padded, shifted map (slices (0, -ws), (-ws, -shift),
    (-shift, None) of each axis) do not attend to each other."""
    if shift == 0:
        return None
    ws = window_size
    Hp, Wp = -(-H // ws) * ws, -(-W // ws) * ws

    def regions(P: int) -> torch.Tensor:
        y = torch.arange(P)
        return torch.where(y < P - ws, 0, torch.where(y < P - shift, 1, 2))

    ids = regions(Hp)[:, None] * 3 + regions(Wp)[None, :]  # Hp, Wp
    ids = ids.view(Hp // ws, ws, Wp // ws, ws).permute(0, 2, 1, 3).reshape(-1, ws * ws)  # nW, N
    diff = ids[:, :, None] != ids[:, None, :]
    return torch.where(diff, -100.0, 0.0).float()


def pad_bias(bias: torch.Tensor) -> torch.Tensor:
    """[nH, N, N] relative-position bias -> the kernel's [nH, 64, 64] float32: keys >= N get -inf (probability 0),
    query rows >= N get 0 (their outputs are dropped)."""
    nH, N, _ = bias.shape
    if N > KEYS:
        raise ValueError(f"fused_attention_: windows of at most {KEYS} tokens, got N={N}")
    out = torch.zeros(nH, KEYS, KEYS, dtype=torch.float32, device=bias.device)
    out[:, :, N:] = float("-inf")
    out[:, :N, :N] = bias.float()
    return out.contiguous()


def check_inputs(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, w_qkv: torch.Tensor, b_qkv: torch.Tensor,
                 bias64: torch.Tensor, w_proj: torch.Tensor, b_proj: torch.Tensor, window_size: int,
                 shift: int, bias_dtypes: tuple[torch.dtype, ...] = (torch.float32,),
                 weight_dtype: torch.dtype = torch.float16) -> None:
    """Raise ValueError naming the argument when the inputs do not fit the op (messages match the CUDA checks).
    bias_dtypes: what bias64 may be (the Triton kernel also reads float16); weight_dtype: float8_e4m3fn or int8 for the
    Triton kernel's FP8 / INT8 forms."""
    if x.dim() != 4:
        raise ValueError(f"fused_attention_: x must be [B, H, W, C], got shape {tuple(x.shape)}")
    C = x.shape[3]
    if C % HEAD_DIM or not HEAD_DIM <= C <= MAX_C:
        raise ValueError(f"fused_attention_: C must be a multiple of 32 in [32, {MAX_C}] (head_dim 32), got C={C}")
    if not 1 <= window_size <= 8:
        raise ValueError(f"fused_attention_: window_size must be in 1..8 (N <= 64 tokens), got {window_size}")
    if not 0 <= shift < window_size:
        raise ValueError(f"fused_attention_: shift must be in [0, window_size={window_size}), got {shift}")
    nH = C // HEAD_DIM
    for name, t, shape in (("gamma", gamma, (C,)), ("beta", beta, (C,)), ("w_qkv", w_qkv, (3 * C, C)),
                           ("b_qkv", b_qkv, (3 * C,)), ("bias64", bias64, (nH, KEYS, KEYS)),
                           ("w_proj", w_proj, (C, C)), ("b_proj", b_proj, (C,))):
        if tuple(t.shape) != shape:
            raise ValueError(f"fused_attention_: {name} must be {list(shape)}, got shape {tuple(t.shape)}")
    for name, t, dtype in (("x", x, torch.float16), ("w_qkv", w_qkv, weight_dtype), ("w_proj", w_proj, weight_dtype),
                           ("gamma", gamma, torch.float32), ("beta", beta, torch.float32),
                           ("b_qkv", b_qkv, torch.float32), ("b_proj", b_proj, torch.float32)):
        if t.dtype != dtype:
            raise ValueError(f"fused_attention_: {name} must be {dtype}, got {t.dtype}")
    if bias64.dtype not in bias_dtypes:
        raise ValueError(f"fused_attention_: bias64 must be {' or '.join(map(str, bias_dtypes))}, got {bias64.dtype}")
    devices = {t.device for t in (x, gamma, beta, w_qkv, b_qkv, bias64, w_proj, b_proj)}
    if len(devices) != 1:
        raise ValueError(f"fused_attention_: all tensors must be on one device, got {sorted(str(d) for d in devices)}")
    if x.shape[0] * x.shape[1] * x.shape[2] >= 2**31:
        raise ValueError("fused_attention_: B * H * W must be below 2^31")


def fused_attention_ref(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float, w_qkv: torch.Tensor,
                        b_qkv: torch.Tensor, bias: torch.Tensor, w_proj: torch.Tensor, b_proj: torch.Tensor,
                        window_size: int, shift: int, scale: float, round_to_fp16: bool = True,
                        fp8_scales: tuple[float, float, float, float] | None = None,
                        int8_scales: Int8AttentionScales | None = None) -> torch.Tensor:
    """The op's result, out of place, in FP32.

    Args:
        x: [B, H, W, C] residual stream (read as FP32).
        gamma, beta: [C] norm1 parameters; eps its epsilon.
        w_qkv: [3C, C], b_qkv: [3C] qkv Linear; w_proj: [C, C], b_proj: [C] proj Linear.
        bias: [nH, N, N] relative-position bias, or the kernel's padded [nH, 64, 64] (`pad_bias`).
        window_size, shift: ws and ss of the block; scale multiplies q k^T.
        round_to_fp16: round where an FP16 engine stores (see the module docstring); False: plain FP32 math.
        fp8_scales: (qkv in_scale, qkv w_scale, proj in_scale, proj w_scale) for the FP8 form (an FP8 engine's
            attention half): float8_e4m3fn weights with per-tensor scales; the LayerNorm output (FP32) quantized to
            FP8 for the QKV GEMM, the fp16 head outputs quantized for the proj GEMM (`quantize_fp8`).
        int8_scales: the INT8 form (an INT8 engine's attention half, as its unfused kernels compute it): int8
            weights with per-channel scales; the LayerNorm output (FP32) quantized (`quantize_int8`), the QKV GEMM's
            exact integer sums times qkv_in, times qkv_w[n], + b_qkv, quantized to int8 q / k / v (qkv_out); the
            attention in FP32 on the dequantized q / k / v, its output quantized (proj_in); the proj GEMM likewise,
            its output quantized and dequantized (proj_out) or rounded to fp16.

    Returns:
        [B, H, W, C] float32: x + the block's attention branch, before the final rounding to float16.
    """
    B, H, W, C = x.shape
    N = window_size * window_size
    nH = C // HEAD_DIM
    if bias.shape[-1] == KEYS and N != KEYS:
        bias = bias[:, :N, :N]
    rnd = (lambda t: t.half().float()) if round_to_fp16 else (lambda t: t)
    tok = ln_shift_partition_ref(x, gamma, beta, eps, window_size, shift)  # B*nW*N, C
    if int8_scales is not None:
        return _fused_attention_int8_ref(x, tok, w_qkv, b_qkv, bias, w_proj, b_proj, window_size, shift, scale,
                                         int8_scales)
    wq, wp = w_qkv.float(), w_proj.float()
    if fp8_scales is not None:
        s_qkv, ws_qkv, s_proj, ws_proj = (float(v) for v in fp8_scales)
        tok = quantize_fp8(tok, s_qkv).float() * s_qkv
        wq, wp = wq * ws_qkv, wp * ws_proj
    else:
        tok = rnd(tok)
    qkv = rnd(F.linear(tok, wq, b_qkv.float()))
    q, k, v = qkv.view(-1, N, 3, nH, HEAD_DIM).permute(2, 0, 3, 1, 4).unbind(0)  # nWin, nH, N, hd
    logits = (q * scale) @ k.transpose(-2, -1) + bias.float().to(x.device)  # nWin, nH, N, N
    mask = swin_shift_mask(H, W, window_size, shift)
    if mask is not None:
        logits = (logits.view(-1, mask.shape[0], nH, N, N) + mask.to(x.device)[None, :, None]).view_as(logits)
    a = rnd((logits.softmax(-1) @ v).transpose(1, 2).reshape(-1, C))  # nWin*N, C
    if fp8_scales is not None:
        a = quantize_fp8(a, s_proj).float() * s_proj
    y = rnd(F.linear(a, wp, b_proj.float()))
    out, _ = window_reverse_ref(y, x, None, window_size, shift)
    return out


def _fused_attention_int8_ref(x: torch.Tensor, tok: torch.Tensor, w_qkv: torch.Tensor, b_qkv: torch.Tensor,
                              bias: torch.Tensor, w_proj: torch.Tensor, b_proj: torch.Tensor, window_size: int,
                              shift: int, scale: float, sc: Int8AttentionScales) -> torch.Tensor:
    """fused_attention_ref's INT8 form (its docstring), from the LayerNorm'd, partitioned tokens `tok`. (Integer sums
    of K <= 192 products of int8 are exact in FP32.)"""
    from ..window_attention.reference import window_attention_fp32

    B, H, W, C = x.shape
    N = window_size * window_size
    nH = C // HEAD_DIM
    tq = quantize_int8(tok, sc.qkv_in).float()
    qkv = F.linear(tq, w_qkv.float()) * sc.qkv_in * sc.qkv_w.float().to(x.device) + b_qkv.float()
    qkv = quantize_int8(qkv, sc.qkv_out)
    mask = swin_shift_mask(H, W, window_size, shift)
    a = window_attention_fp32(qkv, bias.float().to(x.device), None if mask is None else mask.to(x.device), nH, scale,
                              sc.qkv_out, sc.qkv_out, sc.qkv_out)
    aq = quantize_int8(a, sc.proj_in).float()
    y = F.linear(aq, w_proj.float()) * sc.proj_in * sc.proj_w.float().to(x.device) + b_proj.float()
    y = y.half().float() if sc.proj_out is None else quantize_int8(y, sc.proj_out).float() * sc.proj_out
    out, _ = window_reverse_ref(y, x, None, window_size, shift)
    return out
