"""PyTorch reference of the windowed attention kernel, in timm's Swin V1 `WindowAttention` semantics, FP32 math.

It is the test oracle, the CPU kernel of `torch.ops.trt_swin.window_attention`, and the home of the build-time
helpers that turn a timm module into the kernel's inputs (`gather_relative_position_bias`, `shift_mask`).

INT8 output uses the kernel's rounding: sat(round_half_even(value / out_scale)) into [-128, 127] (the CUDA kernel
divides with IEEE division and converts with `__float2int_rn`; `torch.round` also rounds half to even). FP8 output is
(value / out_scale).clamp(-448, 448).to(torch.float8_e4m3fn), the kernel's `plugins/common/fp8.cuh`.
"""
from __future__ import annotations

import torch
from ..epilogue.reference import quantize_fp8, quantize_int8


def check_inputs(qkv: torch.Tensor, bias: torch.Tensor, mask: torch.Tensor | None, num_heads: int,
                 out_scale: float | None = None, out_fp8: bool = False) -> tuple[int, int, int, int]:
    """Validate shapes and dtypes; returns (num_windows, N, C, head_dim). Messages match the CUDA op's checks."""
    if out_fp8 and out_scale is None:
        raise ValueError("window_attention: out_fp8 requires out_scale")
    if out_scale is not None and not out_scale > 0:
        raise ValueError(f"window_attention: out_scale must be > 0, got {out_scale}")
    if qkv.dtype not in (torch.float16, torch.int8):
        raise ValueError(f"window_attention: qkv must be float16 or int8, got {qkv.dtype}")
    if bias.dtype != torch.float32:
        raise ValueError(f"window_attention: bias must be float32, got {bias.dtype}")
    if qkv.dim() != 2:
        raise ValueError(f"window_attention: qkv must be [num_windows * N, 3 * C], got {tuple(qkv.shape)}")
    if bias.dim() != 3 or bias.shape[1] != bias.shape[2]:
        raise ValueError(f"window_attention: bias must be [num_heads, N, N], got {tuple(bias.shape)}")
    N = bias.shape[-1]
    if not 1 <= N <= 144:
        raise ValueError(f"window_attention: N (bias.shape[-1]) must be in 1..144, got {N}")
    if num_heads < 1 or bias.shape[0] != num_heads:
        raise ValueError(f"window_attention: bias must have num_heads={num_heads} heads, got {tuple(bias.shape)}")
    if qkv.shape[1] % (3 * num_heads):
        raise ValueError(f"window_attention: qkv.shape[1]={qkv.shape[1]} is not 3 * num_heads * head_dim")
    C = qkv.shape[1] // 3
    hd = C // num_heads
    if hd not in (16, 32, 64):
        raise ValueError(f"window_attention: head_dim must be 16, 32 or 64, got {hd}")
    if qkv.shape[0] % N:
        raise ValueError(f"window_attention: qkv rows ({qkv.shape[0]}) must be num_windows * N, N={N}")
    num_windows = qkv.shape[0] // N
    if mask is not None:
        if mask.dtype != torch.float32:
            raise ValueError(f"window_attention: mask must be float32, got {mask.dtype}")
        if mask.dim() != 3 or tuple(mask.shape[1:]) != (N, N):
            raise ValueError(f"window_attention: mask must be [nW, N, N] with N={N}, got {tuple(mask.shape)}")
        if mask.shape[0] < 1 or num_windows % mask.shape[0]:
            raise ValueError(f"window_attention: num_windows ({num_windows}) must be a multiple of mask.shape[0] ({mask.shape[0]})")
    return num_windows, N, C, hd


def window_attention_reference(
    qkv: torch.Tensor,
    bias: torch.Tensor,
    mask: torch.Tensor | None,
    num_heads: int,
    scale: float,
    q_scale: float = 1.0,
    k_scale: float = 1.0,
    v_scale: float = 1.0,
    out_scale: float | None = None,
    out_fp8: bool = False,
) -> torch.Tensor:
    """softmax(q k^T * scale + bias[h] + mask[w % nW]) v per window w and head h, in FP32.

    Args:
        qkv: [num_windows * N, 3 * C] float16, or int8 (real = value * q_scale / k_scale / v_scale); per token the
            layout of timm's qkv Linear output, [3][num_heads][head_dim].
        bias: [num_heads, N, N] float32 relative-position bias (see `gather_relative_position_bias`).
        mask: [nW, N, N] float32 shift mask (0 / -100), window w uses mask[w % nW]; None for an unshifted block.
        num_heads: heads; head_dim = C / num_heads.
        scale: multiplies q k^T (timm: head_dim ** -0.5).
        out_scale: None -> float16 output; else int8 output sat(round_half_even(value / out_scale)).
        out_fp8: with out_scale, float8_e4m3fn output (value / out_scale).clamp(-448, 448) instead of int8.

    Returns:
        [num_windows * N, C], heads merged ([num_heads][head_dim] per token), float16, int8 or float8_e4m3fn.
        A row whose logits are all -inf yields zeros (the kernel's convention) instead of NaN.
    """
    check_inputs(qkv, bias, mask, num_heads, out_scale, out_fp8)
    out = window_attention_fp32(qkv, bias, mask, num_heads, scale, q_scale, k_scale, v_scale)
    if out_fp8:
        return quantize_fp8(out, out_scale)
    if out_scale is not None:
        return quantize_int8(out, out_scale)
    return out.to(torch.float16)


def window_attention_fp32(
    qkv: torch.Tensor,
    bias: torch.Tensor,
    mask: torch.Tensor | None,
    num_heads: int,
    scale: float,
    q_scale: float = 1.0,
    k_scale: float = 1.0,
    v_scale: float = 1.0,
) -> torch.Tensor:
    """`window_attention_reference` before the output cast: [num_windows * N, C] float32."""
    num_windows, N, C, hd = check_inputs(qkv, bias, mask, num_heads)
    x = qkv.float().reshape(num_windows, N, 3, num_heads, hd).permute(2, 0, 3, 1, 4)  # 3, B_, nH, N, hd
    q, k, v = x.unbind(0)
    if qkv.dtype == torch.int8:
        q, k, v = q * q_scale, k * k_scale, v * v_scale
    attn = (q * scale) @ k.transpose(-2, -1)  # B_, nH, N, N
    attn = attn + bias.float().to(attn.device).unsqueeze(0)
    if mask is not None:
        nW = mask.shape[0]
        attn = attn.view(-1, nW, num_heads, N, N) + mask.float().to(attn.device).unsqueeze(1).unsqueeze(0)
        attn = attn.view(-1, num_heads, N, N)
    attn = torch.softmax(attn, dim=-1).nan_to_num(nan=0.0)  # all -inf rows: NaN -> 0, as the kernel
    return (attn @ v).transpose(1, 2).reshape(num_windows * N, C)  # B_*N, nH*hd


def gather_relative_position_bias(attn_module: torch.nn.Module) -> torch.Tensor:
    """The [num_heads, N, N] float32 bias a timm `WindowAttention` adds to q k^T (its table gathered by its index)."""
    with torch.no_grad():
        table = attn_module.relative_position_bias_table.float()  # (2Wh-1)(2Ww-1), nH
        index = attn_module.relative_position_index.view(-1)
        N = attn_module.window_area
        return table[index].view(N, N, -1).permute(2, 0, 1).contiguous()  # nH, N, N


def shift_mask(block: torch.nn.Module) -> torch.Tensor | None:
    """The [nW, N, N] float32 shift mask (0 / -100) of a timm `SwinTransformerBlock`, None when it is unshifted."""
    mask = block.get_attn_mask(device=torch.device("cpu"), dtype=torch.float32)
    return None if mask is None else mask.contiguous()
