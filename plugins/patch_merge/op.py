"""`torch.ops.trt_swin.patch_merge`: schema, CPU kernel (the FP32 reference), fake kernel, typed wrapper.

The CUDA kernel is registered by the compiled library (torch_op.cpp) when `trt_swin.plugins.load()` runs.
"""
from __future__ import annotations

import torch

from .._library import require_for
from .reference import patch_merge_ref

torch.library.define(
    "trt_swin::patch_merge",
    "(Tensor x, Tensor gamma, Tensor beta, float eps, float? out_scale=None, bool out_fp8=False) -> Tensor",
)


def _check(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, out_scale: float | None, out_fp8: bool) -> None:
    torch._check(x.dim() == 4, lambda: f"patch_merge: x must be [B, H, W, C], got shape {tuple(x.shape)}")
    C = x.shape[-1]
    torch._check(C % 8 == 0, lambda: f"patch_merge: C must be a multiple of 8, got {C}")
    torch._check(tuple(gamma.shape) == (4 * C,) and tuple(beta.shape) == (4 * C,),
                 lambda: f"patch_merge: gamma and beta must be [4C={4 * C}], got {tuple(gamma.shape)}, {tuple(beta.shape)}")
    torch._check(out_scale is None or out_scale > 0, lambda: "patch_merge: out_scale must be positive")
    torch._check(not out_fp8 or out_scale is not None,
                 lambda: "patch_merge: out_fp8 needs out_scale (the FP8 per-tensor scale)")


@torch.library.impl("trt_swin::patch_merge", "cpu")
def _patch_merge_cpu(x, gamma, beta, eps, out_scale=None, out_fp8=False):
    _check(x, gamma, beta, out_scale, out_fp8)
    out = patch_merge_ref(x, gamma, beta, eps, out_scale, out_fp8)
    return out if out_scale is not None else out.half()


# The fake kernel lets torch.compile / torch.export trace the op without running it.
@torch.library.register_fake("trt_swin::patch_merge")
def _patch_merge_fake(x, gamma, beta, eps, out_scale=None, out_fp8=False):
    _check(x, gamma, beta, out_scale, out_fp8)
    B, H, W, C = x.shape
    dtype = torch.float16 if out_scale is None else torch.float8_e4m3fn if out_fp8 else torch.int8
    return x.new_empty((B, (H + 1) // 2, (W + 1) // 2, 4 * C), dtype=dtype)


def patch_merge(
    x: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    eps: float,
    out_scale: float | None = None,
    out_fp8: bool = False,
) -> torch.Tensor:
    """Swin V1 patch merging up to (not including) the 4C -> 2C reduction: zero-pad odd sizes, 2x2 gather, LN(4C).

    Args:
        x: [B, H, W, C] float16 (CUDA); C % 8 == 0, C <= 1024.
        gamma, beta: [4C] float32 PatchMerging.norm parameters.
        eps: LayerNorm epsilon (timm: 1e-5).
        out_scale: per-tensor INT8 scale: out = sat(round(LN / out_scale)); None for float16 output.
        out_fp8: FP8 E4M3 output with out_scale instead of INT8: out = sat(LN / out_scale, +-448), round to
            nearest even (the input of the FP8 reduction GEMM); needs out_scale.

    Returns:
        [B, ceil(H/2), ceil(W/2), 4C] float16 (int8 with out_scale, float8_e4m3fn with out_fp8), channels x[2i,2j],
        x[2i+1,2j], x[2i,2j+1], x[2i+1,2j+1].
    """
    # Checked here too, not only in the C++ op: a clear Python error before any native code runs.
    _check(x, gamma, beta, out_scale, out_fp8)
    if x.is_cuda:
        torch._check(x.dtype == torch.float16 and gamma.dtype == beta.dtype == torch.float32,
                     lambda: f"patch_merge: CUDA needs float16 x and float32 gamma / beta, got {x.dtype}, {gamma.dtype}")
        torch._check(x.shape[-1] <= 1024, lambda: f"patch_merge: C must be at most 1024 (4C <= 4096), got {x.shape[-1]}")
    require_for(x, gamma, beta)
    return torch.ops.trt_swin.patch_merge(x, gamma, beta, eps, out_scale, out_fp8)
