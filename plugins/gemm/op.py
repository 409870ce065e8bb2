"""`torch.ops.trt_swin.gemm`: schema, CPU kernel (the reference), fake kernel and typed wrapper.

The CUDA kernel (cuBLASLt, gemm.h) is registered by the compiled library (torch_op.cpp) when `trt_swin.plugins.load()`
runs.
"""
from __future__ import annotations

from typing import Literal

import torch

from .._library import require_for
from .reference import check_inputs, gemm_ref

torch.library.define(
    "trt_swin::gemm",
    "(Tensor a, Tensor b, Tensor? bias=None, Tensor? residual=None, str act=\"none\", float alpha=1.0) -> Tensor",
)


def _check(a, b, bias, residual, act, alpha) -> None:
    try:
        check_inputs(a, b, bias, residual, act, alpha)
    except ValueError as e:
        torch._check(False, lambda: str(e))


@torch.library.impl("trt_swin::gemm", "cpu")
def _gemm_cpu(a, b, bias=None, residual=None, act="none", alpha=1.0):
    _check(a, b, bias, residual, act, alpha)
    return gemm_ref(a, b, bias, residual, act, alpha)


# The fake kernel lets torch.compile / torch.export trace the op without running it.
@torch.library.register_fake("trt_swin::gemm")
def _gemm_fake(a, b, bias=None, residual=None, act="none", alpha=1.0):
    _check(a, b, bias, residual, act, alpha)
    return a.new_empty((a.shape[0], b.shape[0]), dtype=torch.int32 if a.dtype == torch.int8 else torch.float16)


def gemm(
    a: torch.Tensor,
    b: torch.Tensor,
    bias: torch.Tensor | None = None,
    residual: torch.Tensor | None = None,
    act: Literal["none", "gelu_tanh"] = "none",
    alpha: float = 1.0,
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

    Returns:
        [M, N] float16 (FP32 accumulation) for float16 inputs; int32 accumulators for int8 inputs, which take no bias,
        residual, act or alpha (dequantize with `trt_swin.epilogue`).
    """
    _check(a, b, bias, residual, act, alpha)  # a clear Python error before any native code runs
    require_for(a, b, bias, residual)
    return torch.ops.trt_swin.gemm(a, b, bias, residual, act, alpha)
