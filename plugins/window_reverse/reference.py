"""Plain-PyTorch reference of `trt_swin::window_reverse`, in FP32, written as timm's SwinTransformerBlock does it
(`window_reverse`, crop, roll(+shift), residual add, then `norm2`): the test oracle and the op's CPU kernel.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..ln_shift_partition.reference import quantize_output


def window_reverse(windows: torch.Tensor, window_size: int, Hp: int, Wp: int) -> torch.Tensor:
    """[B * nWh * nWw, ws, ws, C] -> [B, Hp, Wp, C], as timm's window_reverse."""
    C = windows.shape[-1]
    x = windows.view(-1, Hp // window_size, Wp // window_size, window_size, window_size, C)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, Hp, Wp, C)


def window_reverse_ref(
    y: torch.Tensor,
    residual: torch.Tensor,
    bias: torch.Tensor | None,
    window_size: int,
    shift: int,
    y_scale: float = 1.0,
    ln_gamma: torch.Tensor | None = None,
    ln_beta: torch.Tensor | None = None,
    eps: float = 1e-5,
    ln_out_scale: float | None = None,
    round_sum_to_fp16: bool = False,
    out_fp8: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """residual + crop(window_reverse(y * y_scale + bias)) rolled back by +shift, and its LayerNorm, in FP32.

    Args:
        y: [B * nWh * nWw * ws * ws, C] window-order attention output (float, or int8 with y_scale).
        residual: [B, H, W, C] block input.
        bias: [C] proj bias added to y, or None.
        window_size, shift: ws and ss of the block.
        y_scale: dequantization scale of an int8 y (real = y * y_scale).
        ln_gamma, ln_beta: [C] norm2 parameters, or None for no LayerNorm output.
        eps: LayerNorm epsilon.
        ln_out_scale: quantize the LayerNorm output to int8 (or fp8 with out_fp8) with this scale, or None.
        round_sum_to_fp16: round the sum to fp16 before the LayerNorm, as the fp16 kernel and model do.
        out_fp8: quantize the LayerNorm output to float8_e4m3fn instead of int8 (needs ln_out_scale).

    Returns:
        (out [B, H, W, C] float32, ln_out [B, H, W, C] float32 / int8 / float8_e4m3fn, or None without ln_gamma).
    """
    if out_fp8 and ln_out_scale is None:
        raise ValueError("window_reverse: out_fp8 needs ln_out_scale (the FP8 per-tensor scale)")
    B, H, W, C = residual.shape
    Hp = -(-H // window_size) * window_size
    Wp = -(-W // window_size) * window_size
    v = y.float() * y_scale if y.dtype == torch.int8 else y.float()
    if bias is not None:
        v = v + bias.float()
    shifted = window_reverse(v.view(-1, window_size, window_size, C), window_size, Hp, Wp)  # B, Hp, Wp, C
    shifted = shifted[:, :H, :W, :]
    if shift:
        shifted = torch.roll(shifted, shifts=(shift, shift), dims=(1, 2))
    out = residual.float() + shifted
    if round_sum_to_fp16:
        out = out.half().float()
    if ln_gamma is None:
        return out, None
    ln = F.layer_norm(out, (C,), ln_gamma.float(), ln_beta.float(), eps)
    return out, quantize_output(ln, ln_out_scale, out_fp8, "window_reverse")
