"""Plain-PyTorch reference of `trt_swin::fused_mlp_`: the test oracle and the op's CPU kernel.

    x[m, :] += fc2(act(fc1(LayerNorm(x[m, :]))))

FP32 math with the kernel's two intermediate roundings to float16: the LayerNorm output (FC1's operand) and the
hidden after the activation (what an FP16 engine stores between FC1 and FC2). FC2's sum + b2 + x stays FP32 until
the single final rounding.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from dataclasses import dataclass

from ..epilogue.reference import check_fp8_scales, quantize_fp8, quantize_int8

ACTS = ("gelu_erf", "gelu_tanh")
MAX_C = 384
# Widest C of the Triton kernel (triton_mlp.py): its FC2 accumulators live in registers (C = 256 at BM 128 / 8 warps
# is 128 a thread). Here, not there, so the engine can read it without importing Triton.
TRITON_MAX_C = 256


def check_inputs(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor,
                 w2: torch.Tensor, b2: torch.Tensor, act: str, weight_dtype: torch.dtype = torch.float16) -> None:
    """Raise ValueError naming the argument when the inputs do not fit the op (messages match the CUDA checks);
    weight_dtype float8_e4m3fn / int8 for the Triton kernel's FP8 / INT8 forms."""
    if x.dim() != 2:
        raise ValueError(f"fused_mlp_: x must be [M, C], got shape {tuple(x.shape)}")
    C = x.shape[1]
    if C % 32 or not 32 <= C <= MAX_C:
        raise ValueError(f"fused_mlp_: C must be a multiple of 32 in [32, {MAX_C}], got C={C}")
    if w1.dim() != 2 or w1.shape[1] != C:
        raise ValueError(f"fused_mlp_: w1 must be [Hd, C={C}], got shape {tuple(w1.shape)}")
    Hd = w1.shape[0]
    if Hd % 64 or Hd == 0:
        raise ValueError(f"fused_mlp_: Hd must be a positive multiple of 64, got Hd={Hd}")
    if tuple(w2.shape) != (C, Hd):
        raise ValueError(f"fused_mlp_: w2 must be [C={C}, Hd={Hd}], got shape {tuple(w2.shape)}")
    for name, t, n in (("gamma", gamma, C), ("beta", beta, C), ("b1", b1, Hd), ("b2", b2, C)):
        if tuple(t.shape) != (n,):
            raise ValueError(f"fused_mlp_: {name} must be [{n}], got shape {tuple(t.shape)}")
    if x.dtype != torch.float16 or w1.dtype != weight_dtype or w2.dtype != weight_dtype:
        if weight_dtype == torch.float16:
            raise ValueError(f"fused_mlp_: x, w1 and w2 must be float16, got {x.dtype}, {w1.dtype}, {w2.dtype}")
        raise ValueError(f"fused_mlp_: x must be float16 and w1, w2 {str(weight_dtype).removeprefix('torch.')}, "
                         f"got {x.dtype}, {w1.dtype}, {w2.dtype}")
    for name, t in (("gamma", gamma), ("beta", beta), ("b1", b1), ("b2", b2)):
        if t.dtype != torch.float32:
            raise ValueError(f"fused_mlp_: {name} must be float32, got {t.dtype}")
    if act not in ACTS:
        raise ValueError(f"fused_mlp_: act must be 'gelu_erf' or 'gelu_tanh', got {act!r}")
    devices = {t.device for t in (x, gamma, beta, w1, b1, w2, b2)}
    if len(devices) != 1:
        raise ValueError(f"fused_mlp_: all tensors must be on one device, got {sorted(str(d) for d in devices)}")


def fused_mlp_ref(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float, w1: torch.Tensor,
                  b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor, act: str,
                  round_to_fp16: bool = True) -> torch.Tensor:
    """The op's result, out of place, in FP32.

    Args:
        x: [M, C] residual stream (any float dtype; read as FP32).
        gamma, beta: [C] LayerNorm (norm2) parameters; eps its epsilon.
        w1: [Hd, C], b1: [Hd] fc1 (nn.Linear layout); w2: [C, Hd], b2: [C] fc2.
        act: "gelu_erf" (torch.nn.GELU()) or "gelu_tanh" (nn.GELU(approximate="tanh")).
        round_to_fp16: round the LayerNorm output and the activated hidden to float16, as the kernel does; False
            gives the plain FP32 module math.

    Returns:
        [M, C] float32: x + fc2(act(fc1(LayerNorm(x)))), before the final rounding to float16.
    """
    xf = x.float()
    h = F.layer_norm(xf, (xf.shape[-1],), gamma.float(), beta.float(), eps)
    if round_to_fp16:
        h = h.half().float()
    h = F.gelu(F.linear(h, w1.float(), b1.float()), approximate="tanh" if act == "gelu_tanh" else "none")
    if round_to_fp16:
        h = h.half().float()
    return xf + F.linear(h, w2.float(), b2.float())


def check_fp8_inputs(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor,
                     w2: torch.Tensor, b2: torch.Tensor, act: str, scales: tuple[float, float, float, float]) -> None:
    """check_inputs for the FP8 form: float8_e4m3fn weights, tanh GELU, four positive scales."""
    check_inputs(x, gamma, beta, w1, b1, w2, b2, act, weight_dtype=torch.float8_e4m3fn)
    if act != "gelu_tanh":
        raise ValueError(f"fused_mlp_: the FP8 form takes gelu_tanh, got {act!r}")
    check_fp8_scales("fused_mlp_", scales, "in_scale1, w_scale1, in_scale2, w_scale2")


def fused_mlp_fp8_ref(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float, w1: torch.Tensor,
                      b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor,
                      scales: tuple[float, float, float, float]) -> torch.Tensor:
    """The FP8 form's result, out of place, in FP32 (an FP8 engine's MLP, as its unfused kernels compute it).

    w1, w2: float8_e4m3fn weights with per-tensor scales; scales = (in_scale1, w_scale1, in_scale2, w_scale2). The
    LayerNorm output is quantized to FP8 with in_scale1 (`quantize_fp8`), FC1 runs on the dequantized operands + b1,
    tanh GELU, the hidden rounded to fp16 then quantized with in_scale2, FC2 likewise + b2 + x.
    """
    s1, ws1, s2, ws2 = (float(v) for v in scales)
    xf = x.float()
    h = F.layer_norm(xf, (xf.shape[-1],), gamma.float(), beta.float(), eps)
    h = quantize_fp8(h, s1).float() * s1
    h = F.gelu(F.linear(h, w1.float() * ws1, b1.float()), approximate="tanh").half().float()
    h = quantize_fp8(h, s2).float() * s2
    return xf + F.linear(h, w2.float() * ws2, b2.float())


@dataclass(frozen=True)
class Int8MlpScales:
    """The scales of an INT8 MLP half (the INT8 recipes' quantizers, quant/README.md): per-tensor activation scales,
    per-output-channel weight scales (float32 tensors on the kernel's device)."""

    in1: float  # FC1's input: the LayerNorm output
    w1: torch.Tensor  # [Hd] FC1's weight rows
    in2: float  # FC2's input: the activated hidden (FC1's output quantizer, or FC2's input one)
    w2: torch.Tensor  # [C] FC2's weight rows
    out2: float | None = None  # FC2's output quantized and dequantized before the residual (recipe int8), or None


def check_int8_inputs(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor,
                      w2: torch.Tensor, b2: torch.Tensor, act: str, scales: Int8MlpScales) -> None:
    """check_inputs for the INT8 form: int8 weights, positive scales with one weight scale per output channel."""
    check_inputs(x, gamma, beta, w1, b1, w2, b2, act, weight_dtype=torch.int8)
    if not isinstance(scales, Int8MlpScales):
        raise ValueError(f"fused_mlp_: int8_scales must be an Int8MlpScales, got {type(scales).__name__}")
    if not (scales.in1 > 0 and scales.in2 > 0 and (scales.out2 is None or scales.out2 > 0)):
        raise ValueError(f"fused_mlp_: INT8 activation scales must be positive, got in1={scales.in1}, "
                         f"in2={scales.in2}, out2={scales.out2}")
    for name, t, n in (("w1", scales.w1, w1.shape[0]), ("w2", scales.w2, w2.shape[0])):
        if tuple(t.shape) != (n,) or t.dtype != torch.float32 or t.device != x.device:
            raise ValueError(f"fused_mlp_: int8_scales.{name} must be float32 [{n}] on {x.device}, got "
                             f"{t.dtype} {tuple(t.shape)} on {t.device}")


def fused_mlp_int8_ref(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float, w1: torch.Tensor,
                       b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor, scales: Int8MlpScales,
                       act: str = "gelu_erf") -> torch.Tensor:
    """The INT8 form's result, out of place, in FP32: with gelu_erf an INT8 engine's MLP half as its unfused kernels
    compute it (window_reverse's LN2 quantized, the INT8 GEMMs' epilogues: `epilogue.reference.epilogue_ref`).

    The LayerNorm output (FP32) quantized with in1 (`quantize_int8`); FC1 as exact integer sums times in1, times
    w1[n], + b1, GELU (erf in FP32; gelu_tanh: the tanh form rounded to fp16, as the FP16 kernels), quantized with
    in2; FC2 likewise (times in2, times w2[n]) + b2; with out2 quantized and dequantized; + x. (Integer sums of K <=
    768 products of int8 are exact in FP32.)
    """
    xf = x.float()
    h = F.layer_norm(xf, (xf.shape[-1],), gamma.float(), beta.float(), eps)
    hq = quantize_int8(h, scales.in1).float()
    s = F.linear(hq, w1.float()) * scales.in1 * scales.w1.float().to(x.device) + b1.float()
    g = F.gelu(s) if act == "gelu_erf" else F.gelu(s, approximate="tanh").half().float()
    pq = quantize_int8(g, scales.in2).float()
    y = F.linear(pq, w2.float()) * scales.in2 * scales.w2.float().to(x.device) + b2.float()
    if scales.out2 is not None:
        y = quantize_int8(y, scales.out2).float() * scales.out2
    return xf + y
