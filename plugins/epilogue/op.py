"""`torch.ops.trt_swin.epilogue`: schema, CPU kernel (the FP32 reference), fake kernel, typed wrapper.

The CUDA kernel is registered by the compiled library (torch_op.cpp) when `trt_swin.plugins.load()` runs.
"""
from __future__ import annotations

from typing import Literal

import torch

from .._library import require_for
from .reference import epilogue_ref

torch.library.define(
    "trt_swin::epilogue",
    "(Tensor x, float in_scale=1.0, Tensor? col_scale=None, Tensor? bias=None, str act=\"none\", "
    "Tensor? residual=None, float? out_scale=None) -> Tensor",
)

_IN_DTYPES = (torch.float16, torch.int8, torch.int32)


def _check(x, col_scale, bias, act, residual, out_scale) -> None:
    torch._check(x.dtype in _IN_DTYPES, lambda: f"epilogue: x must be float16, int8 or int32, got {x.dtype}")
    torch._check(x.dim() >= 1, lambda: "epilogue: x must have at least one dimension")
    torch._check(act in ("none", "gelu"), lambda: f"epilogue: act must be 'none' or 'gelu', got {act!r}")
    N = x.shape[-1]
    for name, t in (("col_scale", col_scale), ("bias", bias)):
        torch._check(t is None or (t.dtype == torch.float32 and tuple(t.shape) == (N,)),
                     lambda: f"epilogue: {name} must be float32 [N={N}], got {t.dtype} {tuple(t.shape)}")
    torch._check(residual is None or (residual.dtype == torch.float16 and residual.shape == x.shape),
                 lambda: f"epilogue: residual must be float16 with x's shape {tuple(x.shape)}")
    torch._check(out_scale is None or out_scale > 0, lambda: "epilogue: out_scale must be positive")


@torch.library.impl("trt_swin::epilogue", "cpu")
def _epilogue_cpu(x, in_scale=1.0, col_scale=None, bias=None, act="none", residual=None, out_scale=None):
    _check(x, col_scale, bias, act, residual, out_scale)
    out = epilogue_ref(x, in_scale, col_scale, bias, act, residual, out_scale)
    return out if out_scale is not None else out.half()


# The fake kernel lets torch.compile / torch.export trace the op without running it.
@torch.library.register_fake("trt_swin::epilogue")
def _epilogue_fake(x, in_scale=1.0, col_scale=None, bias=None, act="none", residual=None, out_scale=None):
    _check(x, col_scale, bias, act, residual, out_scale)
    return x.new_empty(x.shape, dtype=torch.int8 if out_scale is not None else torch.float16)


def epilogue(
    x: torch.Tensor,
    in_scale: float = 1.0,
    col_scale: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    act: Literal["none", "gelu"] = "none",
    residual: torch.Tensor | None = None,
    out_scale: float | None = None,
) -> torch.Tensor:
    """out = act(x * in_scale * col_scale + bias) + residual, then float16 or int8, in one pass.

    Args:
        x: [..., N] GEMM output (CUDA, contiguous): float16, int8, or int32 accumulators.
        in_scale: per-tensor dequantization scale of x.
        col_scale: [N] float32 per-output-channel scale (per-channel INT8 weights), or None.
        bias: [N] float32, or None.
        act: "none" or "gelu" (erf GELU, as torch.nn.GELU()).
        residual: [..., N] float16 like x, added after the activation, or None.
        out_scale: per-tensor INT8 scale: out = sat(round(value / out_scale)); None for float16 output.

    Returns:
        [..., N] float16 (int8 with out_scale).
    """
    _check(x, col_scale, bias, act, residual, out_scale)  # a clear Python error before any native code runs
    require_for(x, col_scale, bias, residual)
    return torch.ops.trt_swin.epilogue(x, in_scale, col_scale, bias, act, residual, out_scale)
