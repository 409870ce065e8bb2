"""Plain-PyTorch reference of `trt_swin::gemm`: the test oracle and the op's CPU kernel.

    d[m, n] = act(alpha * sum_k a[m, k] * b[n, k] + bias[n]) + residual[m, n]

float16 inputs: FP32 math, one rounding to float16 at the end (cuBLASLt accumulates in FP32 and rounds once).
int8 inputs: exact int32 accumulators (computed in float64, exact for K * 127 * 128 < 2^53); `gemm_int8_ref`: those
followed by the INT8 engine's epilogue, the reference of the fused Triton kernel (triton_int8.py).
float8_e4m3fn inputs: the float16 path on the dequantized inputs (a * a_scale, b * b_scale), then float16 or, with
out_scale_inv, sat(value * out_scale_inv) rounded to float8_e4m3fn.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..epilogue.reference import FP8_E4M3_MAX, epilogue_ref

ACTS = ("none", "gelu_tanh")
FP8 = torch.float8_e4m3fn


def out_dtype(in_dtype: torch.dtype, fp8_out: bool) -> torch.dtype:
    if in_dtype == torch.int8:
        return torch.int32
    return FP8 if fp8_out else torch.float16


def check_inputs(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None, residual: torch.Tensor | None,
                 act: str, alpha: float, a_scale: torch.Tensor | None = None, b_scale: torch.Tensor | None = None,
                 out_scale_inv: torch.Tensor | None = None) -> None:
    """Raise ValueError naming the argument when the inputs do not fit the op (messages match the CUDA checks)."""
    if a.dim() != 2 or b.dim() != 2:
        raise ValueError(f"gemm: a must be [M, K] and b [N, K], got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"gemm: K of a ({a.shape[1]}) and b ({b.shape[1]}) differ")
    if a.dtype != b.dtype or a.dtype not in (torch.float16, torch.int8, FP8):
        raise ValueError(f"gemm: a and b must both be float16, int8 or float8_e4m3fn, got {a.dtype} and {b.dtype}")
    if a.dtype == FP8:
        for name, t in (("a_scale", a_scale), ("b_scale", b_scale), ("out_scale_inv", out_scale_inv)):
            if (t is not None or name != "out_scale_inv") and (t is None or t.dtype != torch.float32 or t.numel() != 1):
                raise ValueError(f"gemm: fp8 GEMMs need {name} as a float32 one-element tensor on a's device")
        if b.shape[0] % 16 or a.shape[1] % 16:
            raise ValueError(f"gemm: fp8 GEMMs need N % 16 == 0 and K % 16 == 0, got N={b.shape[0]} K={a.shape[1]}")
    elif a_scale is not None or b_scale is not None or out_scale_inv is not None:
        raise ValueError("gemm: a_scale, b_scale and out_scale_inv are for fp8 inputs")
    if act not in ACTS:
        raise ValueError(f"gemm: act must be 'none' or 'gelu_tanh', got {act!r}")
    M, N = a.shape[0], b.shape[0]
    if a.dtype == torch.int8:
        if bias is not None or residual is not None or act != "none" or alpha != 1.0:
            raise ValueError("gemm: int8 GEMMs return int32 accumulators and take no bias, residual, act or alpha "
                             "(apply them with trt_swin.epilogue)")
        if a.shape[1] % 4:
            raise ValueError(f"gemm: int8 GEMMs need K % 4 == 0, got K={a.shape[1]}")
    if bias is not None and (bias.dtype != torch.float16 or tuple(bias.shape) != (N,)):
        raise ValueError(f"gemm: bias must be a contiguous float16 [N={N}] tensor, got {bias.dtype} {tuple(bias.shape)}")
    if residual is not None and (residual.dtype != torch.float16 or tuple(residual.shape) != (M, N)):
        raise ValueError(f"gemm: residual must be float16 [M={M}, N={N}], got {residual.dtype} {tuple(residual.shape)}")


def gemm_fp32(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None,
              residual: torch.Tensor | None = None, act: str = "none", alpha: float = 1.0) -> torch.Tensor:
    """The float16 GEMM before its output cast: [M, N] float32."""
    d = (a.float() @ b.float().t()) * alpha
    if bias is not None:
        d = d + bias.float()
    if act == "gelu_tanh":
        d = F.gelu(d, approximate="tanh")
    if residual is not None:
        d = d + residual.float()
    return d


def gemm_ref(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None,
             residual: torch.Tensor | None = None, act: str = "none", alpha: float = 1.0,
             a_scale: torch.Tensor | None = None, b_scale: torch.Tensor | None = None,
             out_scale_inv: torch.Tensor | None = None) -> torch.Tensor:
    """The op on any device in plain PyTorch.

    Args:
        a: [M, K] float16 or int8 activations.
        b: [N, K] weights of a's dtype (nn.Linear layout).
        bias: [N] float16 or None (float16 GEMMs only).
        residual: [M, N] float16 added after the activation, or None (float16 GEMMs only).
        act: "none" or "gelu_tanh" (cuBLASLt's GELU epilogue: the tanh approximation).
        alpha: multiplies the product (float16 GEMMs only).

        a_scale, b_scale, out_scale_inv: float8_e4m3fn inputs only (see the op).

    Returns:
        [M, N] float16 for float16 inputs, int32 accumulators for int8 inputs, float16 or float8_e4m3fn for
        float8_e4m3fn inputs.
    """
    check_inputs(a, b, bias, residual, act, alpha, a_scale, b_scale, out_scale_inv)
    if a.dtype == torch.int8:
        return (a.double() @ b.double().t()).to(torch.int32)
    if a.dtype == FP8:
        d = gemm_fp32(a.float() * a_scale.float().reshape(()), b.float() * b_scale.float().reshape(()), bias, residual,
                      act, alpha)
        if out_scale_inv is not None:
            return (d * out_scale_inv.float().reshape(())).clamp_(-FP8_E4M3_MAX, FP8_E4M3_MAX).to(FP8)
        return d.to(torch.float16)
    return gemm_fp32(a, b, bias, residual, act, alpha).to(torch.float16)


def check_int8_epilogue_inputs(a: torch.Tensor, w: torch.Tensor, col_scale: torch.Tensor, bias: torch.Tensor | None,
                               act: str, residual: torch.Tensor | None, out_scale: float | None, out_qdq: bool) -> None:
    """ValueError naming the argument when the inputs do not fit `gemm_int8_triton` (triton_int8.py)."""
    if a.dim() != 2 or w.dim() != 2 or a.shape[1] != w.shape[1]:
        raise ValueError(f"gemm_int8_triton: a must be [M, K] and w [N, K], got {tuple(a.shape)} and {tuple(w.shape)}")
    if a.dtype != torch.int8 or w.dtype != torch.int8:
        raise ValueError(f"gemm_int8_triton: a and w must be int8, got {a.dtype} and {w.dtype}")
    M, N = a.shape[0], w.shape[0]
    if col_scale.dtype != torch.float32 or tuple(col_scale.shape) != (N,):
        raise ValueError(f"gemm_int8_triton: col_scale must be float32 [N={N}], got {col_scale.dtype} "
                         f"{tuple(col_scale.shape)}")
    if bias is not None and (bias.dtype != torch.float32 or tuple(bias.shape) != (N,)):
        raise ValueError(f"gemm_int8_triton: bias must be float32 [N={N}], got {bias.dtype} {tuple(bias.shape)}")
    if act not in ("none", "gelu"):
        raise ValueError(f"gemm_int8_triton: act must be 'none' or 'gelu' (erf), got {act!r}")
    if residual is not None and (residual.dtype != torch.float16 or tuple(residual.shape) != (M, N)):
        raise ValueError(f"gemm_int8_triton: residual must be float16 [M={M}, N={N}], got {residual.dtype} "
                         f"{tuple(residual.shape)}")
    if out_scale is not None and not out_scale > 0:
        raise ValueError(f"gemm_int8_triton: out_scale must be positive, got {out_scale}")
    if out_qdq and out_scale is None:
        raise ValueError("gemm_int8_triton: out_qdq needs out_scale")
    for name, t in (("a", a), ("w", w), ("col_scale", col_scale), ("bias", bias), ("residual", residual)):
        if t is not None and t.device != a.device:
            raise ValueError(f"gemm_int8_triton: {name} is on {t.device}, a on {a.device}")


def gemm_int8_ref(a: torch.Tensor, w: torch.Tensor, in_scale: float, col_scale: torch.Tensor,
                  bias: torch.Tensor | None = None, act: str = "none", residual: torch.Tensor | None = None,
                  out_scale: float | None = None, out_qdq: bool = False) -> torch.Tensor:
    """`gemm_int8_triton` (an INT8 GEMM with its epilogue fused) as the engine's two-kernel path computes it: int32
    accumulators (gemm_ref), then the epilogue in FP32 (epilogue_ref; out_qdq: quantized, then dequantized and the
    residual added) -> float16, or int8."""
    check_int8_epilogue_inputs(a, w, col_scale, bias, act, residual, out_scale, out_qdq)
    acc = gemm_ref(a, w)
    if out_qdq:
        q = epilogue_ref(acc, in_scale, col_scale, bias, act, None, out_scale)
        return epilogue_ref(q, out_scale, None, None, "none", residual, None).half()
    y = epilogue_ref(acc, in_scale, col_scale, bias, act, residual, out_scale)
    return y if out_scale is not None else y.half()
