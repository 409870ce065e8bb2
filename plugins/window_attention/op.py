"""`torch.ops.trt_swin.window_attention`: schema, CPU kernel (the reference), fake kernel and typed wrapper.

The CUDA kernel is registered by the compiled library (torch_op.cpp) when `trt_swin.plugins.load()` runs.
"""
from __future__ import annotations

import torch

from .. import _library
from .reference import check_inputs, window_attention_reference

torch.library.define(
    "trt_swin::window_attention",
    "(Tensor qkv, Tensor bias, Tensor? mask, int num_heads, float scale, float q_scale=1.0, float k_scale=1.0, "
    "float v_scale=1.0, float? out_scale=None, bool out_fp8=False) -> Tensor",
)
torch.library.impl("trt_swin::window_attention", "CPU")(window_attention_reference)


@torch.library.register_fake("trt_swin::window_attention")
def _window_attention_fake(qkv, bias, mask, num_heads, scale, q_scale=1.0, k_scale=1.0, v_scale=1.0, out_scale=None,
                           out_fp8=False):
    num_windows, N, C, _ = check_inputs(qkv, bias, mask, num_heads, out_scale, out_fp8)
    dtype = torch.float16 if out_scale is None else torch.float8_e4m3fn if out_fp8 else torch.int8
    return qkv.new_empty((num_windows * N, C), dtype=dtype)


def window_attention(
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
    """Swin V1 windowed multi-head attention, softmax(q k^T * scale + bias[h] + mask[w % nW]) v, on the QKV GEMM output.

    Args:
        qkv: [num_windows * N, 3 * C], windows of N tokens one after another (window-major, as after
            window_partition), per token timm's qkv Linear layout [3][num_heads][head_dim]. float16, or int8 with
            real values q * q_scale, k * k_scale, v * v_scale. Contiguous.
        bias: [num_heads, N, N] float32 relative-position bias (`reference.gather_relative_position_bias`); N is
            bias.shape[-1], 1..144.
        mask: [nW, N, N] float32 shift mask (0 / -100, `reference.shift_mask`) or None; window w uses mask[w % nW],
            so num_windows must be a multiple of nW.
        num_heads: heads; head_dim = C / num_heads must be 16, 32 or 64.
        scale: multiplies q k^T (timm: head_dim ** -0.5).
        q_scale, k_scale, v_scale: dequantization scales of an int8 qkv (ignored for float16).
        out_scale: None -> float16 output; a float -> int8 output sat(round_half_even(value / out_scale)).
        out_fp8: with out_scale, FP8 E4M3 output instead of int8: (value / out_scale) clamped to +-448, rounded to
            nearest even (torch.float8_e4m3fn).

    Returns:
        [num_windows * N, C], heads merged (per token [num_heads][head_dim]): the proj GEMM's input. float16, or int8
        when out_scale is given, or float8_e4m3fn when out_fp8 is also set.
    """
    _library.require_for(qkv, bias, mask)
    return torch.ops.trt_swin.window_attention(qkv, bias, mask, num_heads, scale, q_scale, k_scale, v_scale, out_scale,
                                               out_fp8)
