"""`torch.ops.trt_swin.window_reverse` (and `window_reverse_inplace`): schemas, CPU kernels (the FP32 reference),
fake kernels, typed wrappers.

The CUDA kernels are registered by the compiled library (torch_op.cpp) when `trt_swin.plugins.load()` runs.
`window_reverse_inplace` is the launcher's out == residual mode (the residual stream updated in place, saving one
[B, H, W, C] buffer); it returns only the LayerNorm output.
"""
from __future__ import annotations

import torch

from .._library import require_for
from .reference import window_reverse_ref

_ARGS = ("Tensor y, Tensor{mut} residual, Tensor? bias, int window_size, int shift, float y_scale=1.0, "
         "Tensor? ln_gamma=None, Tensor? ln_beta=None, float eps=1e-5, float? ln_out_scale=None, "
         "bool out_fp8=False")
torch.library.define("trt_swin::window_reverse", f"({_ARGS.format(mut='')}) -> (Tensor, Tensor)")
torch.library.define("trt_swin::window_reverse_inplace", f"({_ARGS.format(mut='(a!)')}) -> Tensor")


def _check(y, residual, bias, window_size, shift, y_scale, ln_gamma, ln_beta, ln_out_scale, out_fp8) -> None:
    torch._check(residual.dim() == 4, lambda: f"window_reverse: residual must be [B, H, W, C], got {tuple(residual.shape)}")
    B, H, W, C = residual.shape
    torch._check(C % 8 == 0, lambda: f"window_reverse: C must be a multiple of 8, got {C}")
    torch._check(window_size > 0 and shift >= 0,
                 lambda: f"window_reverse: need window_size > 0 and shift >= 0, got {window_size}, {shift}")
    nW = ((H + window_size - 1) // window_size) * ((W + window_size - 1) // window_size)
    torch._check(tuple(y.shape) == (B * nW * window_size * window_size, C),
                 lambda: f"window_reverse: y must be [B*nW*ws*ws={B * nW * window_size * window_size}, C={C}], got {tuple(y.shape)}")
    torch._check(y.dtype in (torch.float16, torch.int8), lambda: f"window_reverse: y must be float16 or int8, got {y.dtype}")
    torch._check(y.dtype == torch.int8 or y_scale == 1.0,
                 lambda: f"window_reverse: y_scale applies to int8 y only; got y_scale={y_scale} with {y.dtype} y")
    torch._check((ln_gamma is None) == (ln_beta is None), lambda: "window_reverse: give both ln_gamma and ln_beta, or neither")
    torch._check(ln_gamma is not None or ln_out_scale is None, lambda: "window_reverse: ln_out_scale needs ln_gamma / ln_beta")
    torch._check(not out_fp8 or ln_out_scale is not None,
                 lambda: "window_reverse: out_fp8 needs ln_out_scale (the FP8 per-tensor scale)")
    for name, t in (("bias", bias), ("ln_gamma", ln_gamma), ("ln_beta", ln_beta)):
        torch._check(t is None or tuple(t.shape) == (C,), lambda: f"window_reverse: {name} must be [C={C}], got {tuple(t.shape)}")


def _ln_out_like(residual: torch.Tensor, ln_gamma, ln_out_scale, out_fp8) -> torch.Tensor:
    if ln_gamma is None:
        return residual.new_empty((0,), dtype=torch.float16)
    dtype = torch.float16 if ln_out_scale is None else torch.float8_e4m3fn if out_fp8 else torch.int8
    return residual.new_empty(residual.shape, dtype=dtype)


def _cpu(y, residual, bias, window_size, shift, y_scale, ln_gamma, ln_beta, eps, ln_out_scale, out_fp8):
    _check(y, residual, bias, window_size, shift, y_scale, ln_gamma, ln_beta, ln_out_scale, out_fp8)
    out, ln = window_reverse_ref(y, residual, bias, window_size, shift, y_scale, ln_gamma, ln_beta, eps, ln_out_scale,
                                 round_sum_to_fp16=True, out_fp8=out_fp8)
    if ln is None:
        ln = _ln_out_like(residual, None, None, False)
    elif ln_out_scale is None:
        ln = ln.half()
    return out.half(), ln


@torch.library.impl("trt_swin::window_reverse", "cpu")
def _window_reverse_cpu(y, residual, bias, window_size, shift, y_scale=1.0, ln_gamma=None, ln_beta=None, eps=1e-5,
                        ln_out_scale=None, out_fp8=False):
    return _cpu(y, residual, bias, window_size, shift, y_scale, ln_gamma, ln_beta, eps, ln_out_scale, out_fp8)


@torch.library.impl("trt_swin::window_reverse_inplace", "cpu")
def _window_reverse_inplace_cpu(y, residual, bias, window_size, shift, y_scale=1.0, ln_gamma=None, ln_beta=None,
                                eps=1e-5, ln_out_scale=None, out_fp8=False):
    out, ln = _cpu(y, residual, bias, window_size, shift, y_scale, ln_gamma, ln_beta, eps, ln_out_scale, out_fp8)
    residual.copy_(out)
    return ln


# The fake kernels let torch.compile / torch.export trace the ops without running them.
@torch.library.register_fake("trt_swin::window_reverse")
def _window_reverse_fake(y, residual, bias, window_size, shift, y_scale=1.0, ln_gamma=None, ln_beta=None, eps=1e-5,
                         ln_out_scale=None, out_fp8=False):
    _check(y, residual, bias, window_size, shift, y_scale, ln_gamma, ln_beta, ln_out_scale, out_fp8)
    return (residual.new_empty(residual.shape, dtype=torch.float16),
            _ln_out_like(residual, ln_gamma, ln_out_scale, out_fp8))


@torch.library.register_fake("trt_swin::window_reverse_inplace")
def _window_reverse_inplace_fake(y, residual, bias, window_size, shift, y_scale=1.0, ln_gamma=None, ln_beta=None,
                                 eps=1e-5, ln_out_scale=None, out_fp8=False):
    _check(y, residual, bias, window_size, shift, y_scale, ln_gamma, ln_beta, ln_out_scale, out_fp8)
    return _ln_out_like(residual, ln_gamma, ln_out_scale, out_fp8)


def window_reverse(
    y: torch.Tensor,
    residual: torch.Tensor,
    bias: torch.Tensor | None,
    window_size: int,
    shift: int,
    y_scale: float = 1.0,
    ln_gamma: torch.Tensor | None = None,
    ln_beta: torch.Tensor | None = None,
    eps: float = 1e-5,
    ln_out_scale: float | None = None,
    out_fp8: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Window reverse + crop + roll(+shift) of the attention output, + bias + residual, and optionally norm2 of it.

    Args:
        y: [B * nWh * nWw * ws * ws, C] window-order proj output (CUDA): float16, or int8 with y_scale.
        residual: [B, H, W, C] float16 block input; C % 8 == 0, C <= 4096.
        bias: [C] float32 proj bias (when the GEMM did not add it), or None.
        window_size, shift: the block's ws and ss.
        y_scale: dequantization scale of int8 y (must stay 1.0 for float16 y).
        ln_gamma, ln_beta: [C] float32 norm2 parameters, or None for no LayerNorm output.
        eps: LayerNorm epsilon.
        ln_out_scale: per-tensor INT8 scale of the LayerNorm output, or None for float16.
        out_fp8: FP8 E4M3 LayerNorm output with ln_out_scale instead of INT8: sat(LN / ln_out_scale, +-448),
            round to nearest even (the input of the FP8 FC1 GEMM); needs ln_out_scale. The residual stream out
            stays float16.

    Returns:
        (out [B, H, W, C] float16 (a new tensor), ln_out [B, H, W, C] float16 / int8 / float8_e4m3fn, or an empty
        float16 tensor when ln_gamma is None). ln_out is the LayerNorm of the fp16-rounded out.
    """
    # Checked here too, not only in the C++ op: a clear Python error before any native code runs.
    _check(y, residual, bias, window_size, shift, y_scale, ln_gamma, ln_beta, ln_out_scale, out_fp8)
    require_for(y, residual, bias, ln_gamma, ln_beta)
    return torch.ops.trt_swin.window_reverse(y, residual, bias, window_size, shift, y_scale, ln_gamma, ln_beta, eps,
                                             ln_out_scale, out_fp8)


def window_reverse_(
    y: torch.Tensor,
    residual: torch.Tensor,
    bias: torch.Tensor | None,
    window_size: int,
    shift: int,
    y_scale: float = 1.0,
    ln_gamma: torch.Tensor | None = None,
    ln_beta: torch.Tensor | None = None,
    eps: float = 1e-5,
    ln_out_scale: float | None = None,
    out_fp8: bool = False,
) -> torch.Tensor:
    """`window_reverse` writing the new residual stream into `residual` itself; returns ln_out only (same shapes)."""
    _check(y, residual, bias, window_size, shift, y_scale, ln_gamma, ln_beta, ln_out_scale, out_fp8)
    require_for(y, residual, bias, ln_gamma, ln_beta)
    return torch.ops.trt_swin.window_reverse_inplace(y, residual, bias, window_size, shift, y_scale, ln_gamma, ln_beta,
                                                     eps, ln_out_scale, out_fp8)
