"""`torch.ops.trt_swin.patch_embed`: schema, CPU kernel (the reference), fake kernel, typed wrapper.

The CUDA kernel (patch_embed.cu: 3 channels, patch 4, C in {96, 128, 192}) is registered by the compiled library
(torch_op.cpp) when `trt_swin.plugins.load()` runs; `patch_embed_cuda_supported` says whether it takes a call. Other
stems run the Triton kernel (triton_patch_embed.py) or the engine's unfused path.
"""
from __future__ import annotations

import functools

import torch

from .._library import load
from .reference import check_inputs, output_for, patch_embed_ref

torch.library.define(
    "trt_swin::patch_embed",
    "(Tensor images, Tensor weight, Tensor bias, int patch, Tensor? gamma, Tensor? beta, float eps, Tensor(a!) out) "
    "-> Tensor(a!)")

# The shapes patch_embed.cu is built for (patch_embed_supported there)
CUDA_CIN, CUDA_PATCH, CUDA_C = 3, 4, (96, 128, 192)


@torch.library.impl("trt_swin::patch_embed", "cpu")
def _patch_embed_cpu(images, weight, bias, patch, gamma, beta, eps, out):
    out.copy_(patch_embed_ref(images, weight, bias, patch, gamma, beta, eps))
    return out


# The fake kernel lets torch.compile / torch.export trace the op without running it.
@torch.library.register_fake("trt_swin::patch_embed")
def _patch_embed_fake(images, weight, bias, patch, gamma, beta, eps, out):
    check_inputs(images, weight, bias, patch, gamma, beta)
    return out


def patch_embed_cuda_fits(cin: int, patch: int, C: int, H: int, W: int) -> bool:
    """Whether the CUDA kernel is built for this stem: 3 channels, patch 4, C in CUDA_C, H % 4 == 0 and W % 8 == 0
    (whole 16-byte rows of fp16 images; fp32 images need only W % 4)."""
    return (cin, patch) == (CUDA_CIN, CUDA_PATCH) and C in CUDA_C and H % patch == 0 and W % 8 == 0


def patch_embed_cuda_available(device: torch.device | str) -> bool:
    """Whether `device` is a CUDA device and the op library has the kernel (loads the library; RuntimeError when it
    cannot be loaded)."""
    return torch.device(device).type == "cuda" and _cuda_kernel_registered()


@functools.lru_cache(maxsize=None)
def _cuda_kernel_registered() -> bool:
    # once per process (a loaded library stays loaded; a failed load raises and is not cached): the check runs on
    # every call of the wrapper, which at batch 1 is on the engine's latency path
    load()
    return torch._C._dispatch_has_kernel_for_dispatch_key("trt_swin::patch_embed", "CUDA")


def patch_embed_cuda_supported(images: torch.Tensor, weight: torch.Tensor, patch: int) -> bool:
    """Whether the CUDA kernel takes this call: patch_embed_cuda_fits, float16 / float32 images, a float16 weight
    with a 16-byte row pitch, both 16-byte aligned, and a library that has the kernel."""
    if not images.is_cuda or images.dim() != 4 or images.dtype not in (torch.float16, torch.float32):
        return False
    B, cin, H, W = images.shape
    if not patch_embed_cuda_fits(cin, patch, weight.shape[0], H, W):
        return False
    if weight.dtype != torch.float16 or weight.shape[1] % 8 or weight.data_ptr() % 16 or images.data_ptr() % 16:
        return False
    return patch_embed_cuda_available(images.device)


def patch_embed(images: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, patch: int,
                gamma: torch.Tensor | None = None, beta: torch.Tensor | None = None, eps: float = 1e-5,
                out: torch.Tensor | None = None) -> torch.Tensor:
    """Patch embedding (+ LayerNorm) of images [B, Cin, H, W] float32 / float16 (NCHW, made contiguous).

    Args:
        weight: [C, K'] float16, the patch GEMM's weight with K' >= Cin * p * p (columns past Cin * p * p, zero
            padding of the engine's GEMM, are not read).
        bias: [C] (rounded to fp16, as the engine's cuBLASLt bias epilogue reads it).
        gamma, beta: [C] float32 LayerNorm parameters, or None for no norm.
        out: optional [B, H / p, W / p, C] float16 contiguous destination (e.g. a CUDA graph's static input).

    Returns:
        [B, H / p, W / p, C] float16. On CUDA the call must fit the kernel (patch_embed_cuda_supported).
    """
    B, cin, Hp, Wp, C = check_inputs(images, weight, bias, patch, gamma, beta)
    out = output_for("patch_embed", images, (B, Hp, Wp, C), out)
    images, weight = images.contiguous(), weight.contiguous()
    if images.is_cuda and images.data_ptr() % 16:  # a view at an odd offset: the kernel reads 16-byte vectors
        images = images.clone()
    if images.is_cuda and not patch_embed_cuda_supported(images, weight, patch):
        raise ValueError(f"patch_embed: no CUDA kernel for {cin} channels, patch {patch}, C {C}, image "
                         f"{tuple(images.shape[2:])} {images.dtype} (patch_embed_cuda_supported); use "
                         "triton_patch_embed.patch_embed_triton")
    g = gamma.float().contiguous() if gamma is not None else None
    be = beta.float().contiguous() if beta is not None else None
    return torch.ops.trt_swin.patch_embed(images, weight, bias.half().contiguous(), patch, g, be, eps, out)
