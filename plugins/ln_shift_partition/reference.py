"""Plain-PyTorch reference of `trt_swin::ln_shift_partition`, in FP32, written as timm's SwinTransformerBlock does it
(`norm1`, then `_attn`'s roll, pad and `window_partition`): the test oracle and the op's CPU kernel.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..epilogue.reference import quantize_fp8, quantize_int8


def quantize_output(v: torch.Tensor, out_scale: float | None, out_fp8: bool, op: str) -> torch.Tensor:
    """v as is (out_scale None), int8 (out_scale), or fp8 e4m3 (out_scale and out_fp8): the ops' output kinds."""
    if out_fp8 and out_scale is None:
        raise ValueError(f"{op}: out_fp8 needs out_scale (the FP8 per-tensor scale)")
    if out_scale is None:
        return v
    return quantize_fp8(v, out_scale) if out_fp8 else quantize_int8(v, out_scale)


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """[B, Hp, Wp, C] (Hp, Wp multiples of window_size) -> [B * nWh * nWw, ws, ws, C], as timm's window_partition."""
    B, H, W, C = x.shape
    x = x.view(B, H // window_size, window_size, W // window_size, window_size, C)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, window_size, window_size, C)


def ln_shift_partition_ref(
    x: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    eps: float,
    window_size: int,
    shift: int,
    out_scale: float | None = None,
    out_fp8: bool = False,
) -> torch.Tensor:
    """LayerNorm -> roll(-shift) -> zero pad to multiples of the window -> window partition, in FP32.

    Args:
        x: [B, H, W, C] (any float dtype; computed in FP32).
        gamma, beta: [C] LayerNorm affine parameters (timm's norm1).
        eps: LayerNorm epsilon.
        window_size: ws; the map is padded to nWh = ceil(H / ws), nWw = ceil(W / ws) windows.
        shift: cyclic shift ss (0 for unshifted blocks).
        out_scale: quantize to int8 (or fp8 with out_fp8) with this scale, or None.
        out_fp8: quantize to float8_e4m3fn instead of int8 (needs out_scale).

    Returns:
        [B * nWh * nWw * ws * ws, C] float32 (int8 with out_scale, float8_e4m3fn with out_fp8), window-major rows.
    """
    B, H, W, C = x.shape
    x = F.layer_norm(x.float(), (C,), gamma.float(), beta.float(), eps)
    if shift:
        x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
    pad_h = (window_size - H % window_size) % window_size
    pad_w = (window_size - W % window_size) % window_size
    x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))  # B, Hp, Wp, C: zeros after the norm, as in timm
    windows = window_partition(x, window_size).reshape(-1, C)  # B*nW*N, C
    return quantize_output(windows, out_scale, out_fp8, "ln_shift_partition")
