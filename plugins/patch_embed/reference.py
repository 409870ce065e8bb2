"""PyTorch reference and input checks of the patch embedding op (the Triton kernel's contract).

    out[b, hp, wp, :] = LN(fp16(patch(b, hp, wp) @ W[:, :K]^T + bias))      (LN optional)

patch(b, hp, wp) is the p x p x Cin block of the image under patch (hp, wp), flattened as (cin, i, j), the order of
timm's Conv2d(Cin, C, p, stride p) weight reshaped to [C, Cin * p * p]. Roundings as the engine's unfused path: the
patch in fp16, the GEMM in FP32 plus the fp16 bias, rounded to fp16; LayerNorm statistics in FP32, output fp16.
"""
from __future__ import annotations

import torch


def check_inputs(images: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, patch: int,
                 gamma: torch.Tensor | None, beta: torch.Tensor | None) -> tuple[int, int, int, int, int]:
    """Raise ValueError naming the argument when the inputs do not fit; return (B, Cin, Hp, Wp, C)."""
    if images.dim() != 4 or images.dtype not in (torch.float32, torch.float16):
        raise ValueError(f"patch_embed: images must be [B, Cin, H, W] float32 or float16, got {images.dtype} "
                         f"{tuple(images.shape)}")
    B, cin, H, W = images.shape
    if patch < 1 or H % patch or W % patch:
        raise ValueError(f"patch_embed: the image size {H}x{W} must be a multiple of the patch size {patch}")
    K = cin * patch * patch
    if weight.dim() != 2 or weight.dtype != torch.float16 or weight.shape[1] < K:
        raise ValueError(f"patch_embed: weight must be [C, K >= Cin * p * p = {K}] float16 (K may be zero-padded), "
                         f"got {weight.dtype} {tuple(weight.shape)}")
    C = weight.shape[0]
    if tuple(bias.shape) != (C,):
        raise ValueError(f"patch_embed: bias must be [{C}], got {tuple(bias.shape)}")
    if (gamma is None) != (beta is None):
        raise ValueError("patch_embed: pass both gamma and beta (LayerNorm) or neither")
    if gamma is not None and (tuple(gamma.shape) != (C,) or tuple(beta.shape) != (C,)):
        raise ValueError(f"patch_embed: gamma and beta must be [{C}], got {tuple(gamma.shape)}, {tuple(beta.shape)}")
    for name, t in (("weight", weight), ("bias", bias), ("gamma", gamma), ("beta", beta)):
        if t is not None and t.device != images.device:
            raise ValueError(f"patch_embed: {name} is on {t.device}, images on {images.device}")
    return B, cin, H // patch, W // patch, C


def output_for(op: str, images: torch.Tensor, shape: tuple[int, int, int, int],
               out: torch.Tensor | None) -> torch.Tensor:
    """The kernels' destination: `out` after checking it is a contiguous float16 tensor of `shape` (ValueError naming
    `op` otherwise), or a new one on the images' device."""
    if out is None:
        return torch.empty(shape, dtype=torch.float16, device=images.device)
    if tuple(out.shape) != tuple(shape) or out.dtype != torch.float16 or not out.is_contiguous():
        raise ValueError(f"{op}: out must be a contiguous {list(shape)} float16 tensor, got {out.dtype} "
                         f"{tuple(out.shape)}")
    return out


def patch_embed_ref(images: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, patch: int,
                    gamma: torch.Tensor | None = None, beta: torch.Tensor | None = None,
                    eps: float = 1e-5) -> torch.Tensor:
    """[B, Cin, H, W] -> [B, H / p, W / p, C] float16 (see the module docstring)."""
    B, cin, Hp, Wp, C = check_inputs(images, weight, bias, patch, gamma, beta)
    p, K = patch, cin * patch * patch
    x = images.half().reshape(B, cin, Hp, p, Wp, p).permute(0, 2, 4, 1, 3, 5).reshape(B, Hp, Wp, K)
    y = (x.float() @ weight[:, :K].float().t() + bias.half().float()).half()
    if gamma is None:
        return y
    return torch.nn.functional.layer_norm(y.float(), (C,), gamma.float(), beta.float(), eps).half()
