"""Plain-PyTorch reference of `trt_swin::patch_merge`, in FP32, written as timm's PatchMerging.forward does it (pad
odd sizes with zeros, 2x2 gather by reshape/permute, LayerNorm over 4C; the reduction GEMM is not part of the op):
the test oracle and the op's CPU kernel.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..ln_shift_partition.reference import quantize_output


def patch_merge_ref(
    x: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    eps: float,
    out_scale: float | None = None,
    out_fp8: bool = False,
) -> torch.Tensor:
    """Zero-pad to even H, W -> 2x2 gather to 4C (timm channel order) -> LayerNorm(4C), in FP32.

    Args:
        x: [B, H, W, C].
        gamma, beta: [4C] LayerNorm affine parameters (timm's PatchMerging.norm).
        eps: LayerNorm epsilon.
        out_scale: quantize to int8 (or fp8 with out_fp8) with this scale, or None.
        out_fp8: quantize to float8_e4m3fn instead of int8 (needs out_scale).

    Returns:
        [B, ceil(H/2), ceil(W/2), 4C] float32 (int8 with out_scale, float8_e4m3fn with out_fp8); channel blocks in
        the order
        x[2i, 2j], x[2i+1, 2j], x[2i, 2j+1], x[2i+1, 2j+1].
    """
    B, H, W, C = x.shape
    x = F.pad(x.float(), (0, 0, 0, W % 2, 0, H % 2))
    _, H, W, _ = x.shape
    x = x.reshape(B, H // 2, 2, W // 2, 2, C).permute(0, 1, 3, 4, 2, 5).flatten(3)  # B, H/2, W/2, 4C
    x = F.layer_norm(x, (4 * C,), gamma.float(), beta.float(), eps)
    return quantize_output(x, out_scale, out_fp8, "patch_merge")
