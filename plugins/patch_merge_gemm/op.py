"""`torch.ops.trt_swin.patch_merge_gemm`: schema, CPU kernel (the FP32 reference), fake kernel, typed wrapper.

The CUDA kernel (compute capability 9.0 only) is registered by the compiled library (torch_op.cpp) when
`trt_swin.plugins.load()` runs.
"""
from __future__ import annotations

import torch

from .._library import require_for, runs_hopper_kernels
from .reference import check_inputs, patch_merge_gemm_ref

torch.library.define("trt_swin::patch_merge_gemm", "(Tensor x, Tensor w, Tensor u, Tensor v, float eps) -> Tensor")


@torch.library.impl("trt_swin::patch_merge_gemm", "cpu")
def _patch_merge_gemm_cpu(x, w, u, v, eps):
    check_inputs(x, w, u, v)
    return patch_merge_gemm_ref(x, w, u, v, eps).half()


# The fake kernel lets torch.compile / torch.export trace the op without running it.
@torch.library.register_fake("trt_swin::patch_merge_gemm")
def _patch_merge_gemm_fake(x, w, u, v, eps):
    check_inputs(x, w, u, v)
    B, H, W, C = x.shape
    return x.new_empty((B, H // 2, W // 2, 2 * C), dtype=torch.float16)


def patch_merge_gemm_available(device: torch.device) -> bool:
    """Whether patch_merge_gemm has a kernel for `device`: CPU (the reference), or compute capability 9.0 with the
    library's sm_90a kernels built."""
    return torch.device(device).type == "cpu" or runs_hopper_kernels(device)


def patch_merge_gemm(x: torch.Tensor, w: torch.Tensor, u: torch.Tensor, v: torch.Tensor, eps: float) -> torch.Tensor:
    """Swin V1 patch merging with its reduction GEMM, the LayerNorm folded in: LN(2x2 gather of x) @ W^T.

    Args:
        x: [B, H, W, C] float16; H, W even; C in (32, 64, 96) (Swin V1 stage 1).
        w, u, v: `plugins.ln_gemm.reference.fold_layer_norm(W, gamma, beta)` of the reduction W [2C, 4C] and the
            PatchMerging norm: w = W diag(gamma) float16 [2C, 4C], u = rowsum(w) float32 [2C], v = W beta float32.
        eps: the LayerNorm's epsilon (timm: 1e-5).

    Returns:
        [B, H/2, W/2, 2C] float16.

    On CUDA it needs compute capability 9.0 and a library built with its sm_90a kernels (patch_merge_gemm_available);
    elsewhere run patch_merge + a GEMM.
    """
    check_inputs(x, w, u, v)
    if x.is_cuda:
        torch._check(x.dtype == w.dtype == torch.float16 and u.dtype == v.dtype == torch.float32,
                     lambda: f"patch_merge_gemm: CUDA needs float16 x, w and float32 u, v, got {x.dtype}, {w.dtype}, "
                             f"{u.dtype}, {v.dtype}")
    require_for(x, w, u, v)
    if x.is_cuda and not patch_merge_gemm_available(x.device):
        raise RuntimeError(f"patch_merge_gemm: no kernel for {torch.cuda.get_device_name(x.device)} (it needs compute "
                           "capability 9.0 and the library's sm_90a kernels); run patch_merge + a GEMM instead")
    return torch.ops.trt_swin.patch_merge_gemm(x, w, u, v, eps)
