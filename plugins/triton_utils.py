"""Triton device functions shared by the op folders' Triton kernels (imported only where Triton is)."""
from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def quantize_e4m3(v, scale):
    """FP32 v -> float8 e4m3 of v / scale, saturated to +-448 explicitly (E4M3 has no inf), rounded to nearest even:
    the rule of `epilogue.reference.quantize_fp8` and of the CUDA kernels (plugins/common/fp8.cuh)."""
    return tl.minimum(tl.maximum(v / scale, -448.0), 448.0).to(tl.float8e4nv)
