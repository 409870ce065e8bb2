"""Triton device functions shared by the op folders' Triton kernels (imported only where Triton is)."""
from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def quantize_e4m3(v, scale):
    """FP32 v -> float8 e4m3 of v / scale, saturated to +-448 explicitly (E4M3 has no inf), rounded to nearest even:
    the rule of `epilogue.reference.quantize_fp8` and of the CUDA kernels (plugins/common/fp8.cuh)."""
    return tl.minimum(tl.maximum(v / scale, -448.0), 448.0).to(tl.float8e4nv)


@triton.jit
def quantize_operand(h, s, QUANT: tl.constexpr):
    """An FP32 tile as a GEMM operand: fp16 (QUANT 0), FP8 (QUANT 1, s the scale) or INT8 (QUANT 2, s the scale's
    reciprocal): the fused kernels' LayerNorm outputs."""
    if QUANT == 1:
        q = quantize_e4m3(h, s)
    elif QUANT == 2:
        q = quantize_i8_rcp(h, s)
    else:
        q = h.to(tl.float16)
    return q


@triton.jit
def round_sat_i8(q):
    """FP32 q -> round_half_even(q) saturated to [-128, 127], still FP32 (exact small integers). Half to even by the
    1.5 * 2^23 trick (exact for |q| < 2^22), which Triton's CPU interpreter runs too (it has no libdevice rint)."""
    q = tl.minimum(tl.maximum(q, -128.0), 127.0)
    return (q + 12582912.0) - 12582912.0


@triton.jit
def quantize_i8_float(v, scale):
    """FP32 v -> sat(round_half_even(v / scale)) as FP32: the rule of `epilogue.reference.quantize_int8` and of the
    CUDA kernels, an IEEE division then rounding (bit for bit)."""
    return round_sat_i8(tl.math.div_rn(v, scale))


@triton.jit
def quantize_i8_rcp(v, inv_scale):
    """FP32 v -> int8 sat(round_half_even(v * inv_scale)), inv_scale = 1 / scale rounded once: the fused kernels'
    quantizer. The product is within an ulp of the IEEE quotient, so the result differs from quantize_int8's only where
    v / scale lies within an ulp of a rounding boundary. With the IEEE division (div.rn.f32, a subroutine with a slow
    path, and the register spills it brought) at every quantization point, Swin-T's stage-1 INT8 fused MLP took 650 us
    and the fused attention 1121 us, against 446 and 368 with the reciprocal (H100, batch 128, erf GELU; BENCHMARKS.md
    session 18)."""
    return round_sat_i8(v * inv_scale).to(tl.int8)


# Programmatic dependent launch (Hopper): a kernel launched with it may start while the kernel before it finishes (as
# soon as that one's programs have all started, or ended), and waits (griddepcontrol.wait) before touching memory: its
# launch overlaps the previous kernel's tail. Off by default; the engine turns it on while it launches a batch of at
# most NativeEngine.pdl_max_batch images.
PDL = False


def pdl_enabled(t) -> bool:
    """Whether kernels on tensor t's device launch with PDL now: PDL on, a CUDA tensor of compute capability >= 9,
    not under Triton's CPU interpreter."""
    import os

    import torch

    return (PDL and t.is_cuda and os.environ.get("TRITON_INTERPRET") != "1"
            and torch.cuda.get_device_capability(t.device)[0] >= 9)


def pdl_launch(on: bool) -> dict:
    """Launch keywords of a kernel with a PDL constexpr: PDL=on, and the launch attribute when on."""
    return {"PDL": on, "launch_pdl": True} if on else {"PDL": False}


@triton.jit
def pdl_wait(PDL: tl.constexpr):
    """At a kernel's start, before any memory access: wait for the previous kernel (a no-op without PDL), then let
    the next one launch. Every program runs it, so the wait chains: a kernel waits for all kernels before it."""
    if PDL:
        tl.extra.cuda.gdc_wait()
        tl.extra.cuda.gdc_launch_dependents()
