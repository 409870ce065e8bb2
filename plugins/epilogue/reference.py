"""Plain-PyTorch reference of `trt_swin::epilogue`, in FP32: the test oracle and the op's CPU kernel.

    out[m, n] = act(x[m, n] * in_scale * col_scale[n] + bias[n]) + residual[m, n]    (then fp16, or int8)

`quantize_int8` is the INT8 rounding rule of every trt_swin memory-bound kernel: saturating round to nearest, ties
to even (the CUDA side uses `__float2int_rn` on an IEEE division, then clamps to [-128, 127]).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


FP8_E4M3_MAX = 448.0


def check_fp8_scales(op: str, scales, names: str) -> None:
    """ValueError unless `scales` are four positive numbers: the (input scale, weight scale) pairs of a fused kernel's
    two FP8 GEMMs, `names` spelling them out for the message."""
    if len(scales) != 4 or not all(float(v) > 0 for v in scales):
        raise ValueError(f"{op}: fp8 scales must be four positive numbers ({names}), got {scales}")


def quantize_int8(v: torch.Tensor, scale: float | torch.Tensor) -> torch.Tensor:
    """sat(round_half_even(v / scale)) as int8, for any shape; v is computed in FP32. The INT8 output rule of every
    kernel (an IEEE division, then round half to even and saturation); a scale tensor broadcasts (per-channel
    weights: [N, 1])."""
    return torch.round(v.float() / scale).clamp_(-128, 127).to(torch.int8)


def quantize_fp8(v: torch.Tensor, scale: float) -> torch.Tensor:
    """sat(v / scale, +-448) as float8_e4m3fn, rounded to nearest even, for any shape; v is computed in FP32.

    The FP8 output rule of the kernels (plugins/common/fp8.cuh: an IEEE division, then a saturating conversion).
    """
    return (v.float() / scale).clamp_(-FP8_E4M3_MAX, FP8_E4M3_MAX).to(torch.float8_e4m3fn)


def quantize_fp8_per_tensor(w: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(quantize_fp8(w, scale), scale) with the per-tensor amax scale amax(|w|) / 448: an FP8 weight as the test and
    sanitizer drivers of the FP8 kernels make one."""
    scale = w.float().abs().max().item() / FP8_E4M3_MAX
    return quantize_fp8(w, scale), scale


def quantize_int8_per_channel(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 w, float32 scales [rows]) with per-row amax scales amax(|w[n]|) / 127, as the engine builder quantizes an
    INT8 weight: what the test and sanitizer drivers of the INT8 kernels use."""
    scale = w.float().abs().amax(1).clamp_min(1e-12) / 127.0
    return quantize_int8(w, scale[:, None]), scale


def epilogue_ref(
    x: torch.Tensor,
    in_scale: float = 1.0,
    col_scale: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    act: str = "none",
    residual: torch.Tensor | None = None,
    out_scale: float | None = None,
) -> torch.Tensor:
    """The epilogue in FP32.

    Args:
        x: [..., N] GEMM output, float16, int8 or int32 (any leading dims).
        in_scale: per-tensor dequantization scale.
        col_scale: [N] per-output-channel scale, or None.
        bias: [N], or None.
        act: "none" or "gelu" (erf GELU, as torch.nn.GELU()).
        residual: [..., N] like x, added after the activation, or None.
        out_scale: quantize the result to int8 with this scale, or None for the FP32 result.

    Returns:
        [..., N] float32, or int8 when out_scale is given.
    """
    if act not in ("none", "gelu"):
        raise ValueError(f"epilogue: act must be 'none' or 'gelu', got {act!r}")
    v = x.float() * in_scale
    if col_scale is not None:
        v = v * col_scale.float()
    if bias is not None:
        v = v + bias.float()
    if act == "gelu":
        v = F.gelu(v)
    if residual is not None:
        v = v + residual.float()
    return quantize_int8(v, out_scale) if out_scale is not None else v
