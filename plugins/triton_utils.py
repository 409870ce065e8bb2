"""Triton device functions shared by the op folders' Triton kernels (imported only where Triton is)."""
from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def quantize_e4m3(v, scale):
    """FP32 v -> float8 e4m3 of v / scale, saturated to +-448 explicitly (E4M3 has no inf), rounded to nearest even:
    the rule of `epilogue.reference.quantize_fp8` and of the CUDA kernels (plugins/common/fp8.cuh)."""
    return tl.minimum(tl.maximum(v / scale, -448.0), 448.0).to(tl.float8e4nv)


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
