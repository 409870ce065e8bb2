"""`torch.ops.trt_swin.gemm`: schema, CPU kernel (the reference), fake kernel and typed wrapper.

The CUDA kernel (cuBLASLt, gemm.h) is registered by the compiled library (torch_op.cpp) when `trt_swin.plugins.load()`
runs.
"""
from __future__ import annotations

from typing import Literal

import torch

from .._library import require_for
from .reference import check_inputs, gemm_ref, out_dtype

torch.library.define(
    "trt_swin::gemm",
    "(Tensor a, Tensor b, Tensor? bias=None, Tensor? residual=None, str act=\"none\", float alpha=1.0, "
    "Tensor? a_scale=None, Tensor? b_scale=None, Tensor? out_scale_inv=None) -> Tensor",
)


def _check(a, b, bias, residual, act, alpha, a_scale=None, b_scale=None, out_scale_inv=None) -> None:
    try:
        check_inputs(a, b, bias, residual, act, alpha, a_scale, b_scale, out_scale_inv)
    except ValueError as e:
        torch._check(False, lambda: str(e))


@torch.library.impl("trt_swin::gemm", "cpu")
def _gemm_cpu(a, b, bias=None, residual=None, act="none", alpha=1.0, a_scale=None, b_scale=None, out_scale_inv=None):
    _check(a, b, bias, residual, act, alpha, a_scale, b_scale, out_scale_inv)
    return gemm_ref(a, b, bias, residual, act, alpha, a_scale, b_scale, out_scale_inv)


# The fake kernel lets torch.compile / torch.export trace the op without running it.
@torch.library.register_fake("trt_swin::gemm")
def _gemm_fake(a, b, bias=None, residual=None, act="none", alpha=1.0, a_scale=None, b_scale=None, out_scale_inv=None):
    _check(a, b, bias, residual, act, alpha, a_scale, b_scale, out_scale_inv)
    return a.new_empty((a.shape[0], b.shape[0]), dtype=out_dtype(a.dtype, out_scale_inv is not None))


def gemm(
    a: torch.Tensor,
    b: torch.Tensor,
    bias: torch.Tensor | None = None,
    residual: torch.Tensor | None = None,
    act: Literal["none", "gelu_tanh"] = "none",
    alpha: float = 1.0,
    a_scale: torch.Tensor | None = None,
    b_scale: torch.Tensor | None = None,
    out_scale_inv: torch.Tensor | None = None,
) -> torch.Tensor:
    """d = act(alpha * a @ b^T + bias) + residual through cuBLASLt, the epilogue fused into the GEMM.

    Args:
        a: [M, K] activations, float16 or int8, contiguous.
        b: [N, K] weights (nn.Linear layout) of a's dtype, contiguous. int8 needs K % 4 == 0.
        bias: [N] float16, or None.
        residual: [M, N] float16 added after the activation (cuBLASLt's C matrix with beta = 1), or None.
        act: "none" or "gelu_tanh" (cuBLASLt's GELU is the tanh approximation; torch.nn.GELU() is erf GELU, which the
            `epilogue` op provides).
        alpha: scales the product.
        a_scale, b_scale: float8_e4m3fn inputs only: float32 one-element tensors (on the device: cuBLASLt reads them
            there, so a CUDA graph can keep them), the per-tensor dequantization scales of a and b.
        out_scale_inv: float8_e4m3fn inputs only: a float32 one-element tensor 1 / s for an FP8 output
            sat(value / s); None for a float16 output.

    Returns:
        [M, N] float16 (FP32 accumulation) for float16 inputs; int32 accumulators for int8 inputs, which take no bias,
        residual, act or alpha (dequantize with `trt_swin.epilogue`); float16, or float8_e4m3fn with out_scale_inv,
        for float8_e4m3fn inputs (N % 16 == 0, K % 16 == 0; Hopper or Ada).
    """
    _check(a, b, bias, residual, act, alpha, a_scale, b_scale, out_scale_inv)  # a clear Python error first
    require_for(a, b, bias, residual)
    return torch.ops.trt_swin.gemm(a, b, bias, residual, act, alpha, a_scale, b_scale, out_scale_inv)
