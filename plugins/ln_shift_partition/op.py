"""`torch.ops.trt_swin.ln_shift_partition`: schema, CPU kernel (the FP32 reference), fake kernel, typed wrapper.

The CUDA kernel is registered by the compiled library (torch_op.cpp) when `trt_swin.plugins.load()` runs.
"""
from __future__ import annotations

import torch

from .._library import require_for
from .reference import ln_shift_partition_ref

torch.library.define(
    "trt_swin::ln_shift_partition",
    "(Tensor x, Tensor gamma, Tensor beta, float eps, int window_size, int shift, float? out_scale=None, "
    "bool out_fp8=False) -> Tensor",
)


def _check(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, window_size: int, shift: int,
           out_scale: float | None, out_fp8: bool) -> None:
    torch._check(x.dim() == 4, lambda: f"ln_shift_partition: x must be [B, H, W, C], got shape {tuple(x.shape)}")
    C = x.shape[-1]
    torch._check(C % 8 == 0, lambda: f"ln_shift_partition: C must be a multiple of 8, got {C}")
    torch._check(tuple(gamma.shape) == (C,) and tuple(beta.shape) == (C,),
                 lambda: f"ln_shift_partition: gamma and beta must be [C={C}], got {tuple(gamma.shape)}, {tuple(beta.shape)}")
    torch._check(window_size > 0 and shift >= 0,
                 lambda: f"ln_shift_partition: need window_size > 0 and shift >= 0, got {window_size}, {shift}")
    torch._check(out_scale is None or out_scale > 0, lambda: "ln_shift_partition: out_scale must be positive")
    torch._check(not out_fp8 or out_scale is not None,
                 lambda: "ln_shift_partition: out_fp8 needs out_scale (the FP8 per-tensor scale)")


def _out_dtype(out_scale: float | None, out_fp8: bool) -> torch.dtype:
    return torch.float16 if out_scale is None else torch.float8_e4m3fn if out_fp8 else torch.int8


@torch.library.impl("trt_swin::ln_shift_partition", "cpu")
def _ln_shift_partition_cpu(x, gamma, beta, eps, window_size, shift, out_scale=None, out_fp8=False):
    _check(x, gamma, beta, window_size, shift, out_scale, out_fp8)
    out = ln_shift_partition_ref(x, gamma, beta, eps, window_size, shift, out_scale, out_fp8)
    return out if out_scale is not None else out.half()


# The fake kernel lets torch.compile / torch.export trace the op without running it.
@torch.library.register_fake("trt_swin::ln_shift_partition")
def _ln_shift_partition_fake(x, gamma, beta, eps, window_size, shift, out_scale=None, out_fp8=False):
    _check(x, gamma, beta, window_size, shift, out_scale, out_fp8)
    B, H, W, C = x.shape
    rows = B * ((H + window_size - 1) // window_size) * ((W + window_size - 1) // window_size) * window_size * window_size
    return x.new_empty((rows, C), dtype=_out_dtype(out_scale, out_fp8))


def ln_shift_partition(
    x: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    eps: float,
    window_size: int,
    shift: int,
    out_scale: float | None = None,
    out_fp8: bool = False,
) -> torch.Tensor:
    """LayerNorm (norm1) + cyclic shift + zero padding + window partition of a Swin block input.

    Args:
        x: [B, H, W, C] float16 (CUDA) block input; C % 8 == 0, C <= 4096.
        gamma, beta: [C] float32 norm1 parameters.
        eps: LayerNorm epsilon (timm: 1e-5).
        window_size: ws; H and W are padded up to nWh * ws and nWw * ws.
        shift: ss, 0 for unshifted blocks.
        out_scale: per-tensor INT8 scale: out = sat(round(LN / out_scale)); None for float16 output.
        out_fp8: FP8 E4M3 output with out_scale instead of INT8: out = sat(LN / out_scale, +-448), round to
            nearest even (the input of an FP8 GEMM); needs out_scale.

    Returns:
        [B * nWh * nWw * ws * ws, C] window-major tokens, float16 (int8 with out_scale, float8_e4m3fn with
        out_fp8); padded tokens are 0.
    """
    # Checked here too, not only in the C++ op: a clear Python error before any native code runs.
    _check(x, gamma, beta, window_size, shift, out_scale, out_fp8)
    if x.is_cuda:
        torch._check(x.dtype == torch.float16 and gamma.dtype == beta.dtype == torch.float32,
                     lambda: f"ln_shift_partition: CUDA needs float16 x and float32 gamma / beta, got {x.dtype}, {gamma.dtype}")
    require_for(x, gamma, beta)
    return torch.ops.trt_swin.ln_shift_partition(x, gamma, beta, eps, window_size, shift, out_scale, out_fp8)
