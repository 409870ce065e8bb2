"""Plain-PyTorch references of `trt_swin::patch_merge_gemm`, in FP32:

    patch_merge_gemm_ref:  the kernel's contract on the folded weight: rstd * (g @ W'^T - mean * u) + v
    patch_merge_linear_ref: what it stands for, timm's PatchMerging: LN(2x2 gather) @ W^T (patch_merge_ref + linear)

The first is the op's CPU kernel and the kernel tests' oracle; tests hold it to the second with the fold
(plugins/ln_gemm/reference.fold_layer_norm) in between.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..patch_merge.reference import patch_merge_ref

SUPPORTED_C = (32, 64, 96)  # W' [2C, 4C] fp16 stays in shared memory (C 96: 144 KB)


def check_inputs(x: torch.Tensor, w: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> None:
    """The op's contract: x [B, H, W, C] (H, W even, C in SUPPORTED_C), w [2C, 4C], u and v [2C]."""
    torch._check(x.dim() == 4, lambda: f"patch_merge_gemm: x must be [B, H, W, C], got shape {tuple(x.shape)}")
    B, H, W, C = x.shape
    torch._check(C in SUPPORTED_C, lambda: f"patch_merge_gemm: C must be one of {SUPPORTED_C}, got {C}")
    torch._check(H % 2 == 0 and W % 2 == 0,
                 lambda: f"patch_merge_gemm: H and W must be even (odd maps: patch_merge pads), got {H}x{W}")
    torch._check(tuple(w.shape) == (2 * C, 4 * C),
                 lambda: f"patch_merge_gemm: w must be [2C, 4C] = [{2 * C}, {4 * C}], got {tuple(w.shape)}")
    torch._check(tuple(u.shape) == (2 * C,) and tuple(v.shape) == (2 * C,),
                 lambda: f"patch_merge_gemm: u and v must be [2C={2 * C}], got {tuple(u.shape)}, {tuple(v.shape)}")


def gather_2x2(x: torch.Tensor) -> torch.Tensor:
    """[B, H, W, C] (H, W even) -> [B, H/2, W/2, 4C], channel blocks x[2i, 2j], x[2i+1, 2j], x[2i, 2j+1],
    x[2i+1, 2j+1] (timm's order)."""
    B, H, W, C = x.shape
    return x.reshape(B, H // 2, 2, W // 2, 2, C).permute(0, 1, 3, 4, 2, 5).flatten(3)


def patch_merge_gemm_ref(x: torch.Tensor, w: torch.Tensor, u: torch.Tensor, v: torch.Tensor, eps: float) -> torch.Tensor:
    """rstd * (g @ w^T - mean * u) + v over the 2x2 gather g of x, its statistics over 4C, in FP32.

    Args:
        x: [B, H, W, C], H and W even.
        w, u, v: the folded reduction (fold_layer_norm(W, gamma, beta)): w [2C, 4C], u = rowsum(w), v = W beta [2C].
        eps: the LayerNorm's epsilon.

    Returns:
        [B, H/2, W/2, 2C] float32.
    """
    g = gather_2x2(x.float())
    var, mean = torch.var_mean(g, dim=-1, unbiased=False, keepdim=True)
    return torch.rsqrt(var + eps) * (g @ w.float().t() - mean * u.float()) + v.float()


def patch_merge_linear_ref(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float,
                           weight: torch.Tensor) -> torch.Tensor:
    """timm's PatchMerging in FP32: LN(2x2 gather of x) @ weight^T -> [B, H/2, W/2, 2C] float32."""
    return F.linear(patch_merge_ref(x, gamma, beta, eps), weight.float())
