"""`torch.ops.trt_swin.fused_attention_`: schema, CPU kernel (the reference), fake kernel and typed wrapper.

The CUDA kernel is registered by the compiled library (torch_op.cpp) when `trt_swin.plugins.load()` runs. The op
updates x in place (the residual stream) and returns it.
"""
from __future__ import annotations

import torch

from .._library import require_for
from .reference import check_inputs, fused_attention_ref, pad_bias

__all__ = ["fused_attention_", "pad_bias", "HOPPER_MAX_C"]

# The Hopper (wgmma) kernel's widest C: w_qkv and w_proj stay in shared memory (fused_attention_sm90a.cu)
HOPPER_MAX_C = 128

torch.library.define(
    "trt_swin::fused_attention_",
    "(Tensor(a!) x, Tensor gamma, Tensor beta, float eps, Tensor w_qkv, Tensor b_qkv, Tensor bias64, Tensor w_proj, "
    "Tensor b_proj, int window_size, int shift, float scale) -> Tensor(a!)",
)


def _check(x, gamma, beta, w_qkv, b_qkv, bias64, w_proj, b_proj, window_size, shift) -> None:
    try:
        check_inputs(x, gamma, beta, w_qkv, b_qkv, bias64, w_proj, b_proj, window_size, shift)
    except ValueError as e:
        torch._check(False, lambda: str(e))


@torch.library.impl("trt_swin::fused_attention_", "cpu")
def _fused_attention_cpu(x, gamma, beta, eps, w_qkv, b_qkv, bias64, w_proj, b_proj, window_size, shift, scale):
    _check(x, gamma, beta, w_qkv, b_qkv, bias64, w_proj, b_proj, window_size, shift)
    x.copy_(fused_attention_ref(x, gamma, beta, eps, w_qkv, b_qkv, bias64, w_proj, b_proj, window_size, shift, scale))
    return x


# The fake kernel lets torch.compile / torch.export trace the op without running it.
@torch.library.register_fake("trt_swin::fused_attention_")
def _fused_attention_fake(x, gamma, beta, eps, w_qkv, b_qkv, bias64, w_proj, b_proj, window_size, shift, scale):
    _check(x, gamma, beta, w_qkv, b_qkv, bias64, w_proj, b_proj, window_size, shift)
    return x


def fused_attention_(
    x: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    eps: float,
    w_qkv: torch.Tensor,
    b_qkv: torch.Tensor,
    bias64: torch.Tensor,
    w_proj: torch.Tensor,
    b_proj: torch.Tensor,
    window_size: int,
    shift: int,
    scale: float,
) -> torch.Tensor:
    """x += the attention branch of a Swin V1 block, in place: one kernel for norm1, shift, window partition, QKV,
    windowed attention (relative-position bias + shift mask), proj, window reverse, unshift and the residual add.

    Args:
        x: [B, H, W, C] float16, contiguous: the residual stream, updated in place. C = 32 * num_heads, a multiple of
            32 in [32, 192] (Swin stages 1-2).
        gamma, beta: [C] float32 norm1 parameters; eps its epsilon.
        w_qkv: [3C, C] float16 qkv weight (nn.Linear layout: rows q | k | v, each [num_heads][32]); b_qkv [3C] float32.
        bias64: [num_heads, 64, 64] float32 relative-position bias padded to 64 keys (`pad_bias` of the [nH, N, N]
            bias that `window_attention.reference.gather_relative_position_bias` gives).
        w_proj: [C, C] float16 proj weight; b_proj [C] float32.
        window_size: ws in 1..8 (windows of at most 64 tokens); the map is padded up to whole windows.
        shift: 0, or the cyclic shift of a shifted block (its mask is timm's, see `reference.swin_shift_mask`).
        scale: multiplies q k^T (timm: 32 ** -0.5; 1.0 when folded into the q rows of w_qkv and b_qkv).

    Returns:
        x itself, rounded once to float16 after the FP32 residual add (intermediates rounded as an FP16 engine
        stores them: reference.py).
    """
    _check(x, gamma, beta, w_qkv, b_qkv, bias64, w_proj, b_proj, window_size, shift)
    if x.is_cuda:
        torch._check(x.is_contiguous(), lambda: "fused_attention_: x must be contiguous")
    require_for(x, gamma, beta, w_qkv, b_qkv, bias64, w_proj, b_proj)
    return torch.ops.trt_swin.fused_attention_(x, gamma, beta, eps, w_qkv, b_qkv, bias64, w_proj, b_proj,
                                               window_size, shift, scale)
