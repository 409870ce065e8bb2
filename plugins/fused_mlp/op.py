"""`torch.ops.trt_swin.fused_mlp_`: schema, CPU kernel (the reference), fake kernel and typed wrapper.

The CUDA kernel is registered by the compiled library (torch_op.cpp) when `trt_swin.plugins.load()` runs. The op
updates x in place (the residual stream) and returns it.
"""
from __future__ import annotations

from typing import Literal

import torch

from .._library import require_for
from .reference import check_inputs, fused_mlp_ref

torch.library.define(
    "trt_swin::fused_mlp_",
    "(Tensor(a!) x, Tensor gamma, Tensor beta, float eps, Tensor w1, Tensor b1, Tensor w2, Tensor b2, str act) "
    "-> Tensor(a!)",
)


def _check(x, gamma, beta, w1, b1, w2, b2, act) -> None:
    try:
        check_inputs(x, gamma, beta, w1, b1, w2, b2, act)
    except ValueError as e:
        torch._check(False, lambda: str(e))


@torch.library.impl("trt_swin::fused_mlp_", "cpu")
def _fused_mlp_cpu(x, gamma, beta, eps, w1, b1, w2, b2, act):
    _check(x, gamma, beta, w1, b1, w2, b2, act)
    x.copy_(fused_mlp_ref(x, gamma, beta, eps, w1, b1, w2, b2, act))
    return x


# The fake kernel lets torch.compile / torch.export trace the op without running it.
@torch.library.register_fake("trt_swin::fused_mlp_")
def _fused_mlp_fake(x, gamma, beta, eps, w1, b1, w2, b2, act):
    _check(x, gamma, beta, w1, b1, w2, b2, act)
    return x


def fused_mlp_(
    x: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    eps: float,
    w1: torch.Tensor,
    b1: torch.Tensor,
    w2: torch.Tensor,
    b2: torch.Tensor,
    act: Literal["gelu_erf", "gelu_tanh"] = "gelu_erf",
) -> torch.Tensor:
    """x += fc2(act(fc1(LayerNorm(x)))) row by row, in place: a Swin block's whole MLP half in one kernel.

    Args:
        x: [M, C] float16, contiguous: the residual stream (rows are tokens), updated in place. C is a multiple of
            32 in [32, 384] (Swin stages 1-2, and stage 3 of Swin-T/S).
        gamma, beta: [C] float32 LayerNorm (norm2) parameters.
        eps: LayerNorm epsilon (timm: 1e-5).
        w1: [Hd, C] float16 fc1 weight (nn.Linear layout); Hd a multiple of 64 (Swin: 4C).
        b1: [Hd] float32 fc1 bias.
        w2: [C, Hd] float16 fc2 weight.
        b2: [C] float32 fc2 bias.
        act: "gelu_erf" (exact, torch.nn.GELU()) or "gelu_tanh" (nn.GELU(approximate="tanh")).

    Returns:
        x itself. FP32 LayerNorm statistics and accumulations; the LayerNorm output and the activated hidden are
        rounded to float16 (as an FP16 engine stores them); x + fc2 + b2 is rounded once.
    """
    _check(x, gamma, beta, w1, b1, w2, b2, act)  # a clear Python error before any native code runs
    if x.is_cuda:
        torch._check(x.is_contiguous(), lambda: "fused_mlp_: x must be contiguous")
    require_for(x, gamma, beta, w1, b1, w2, b2)
    return torch.ops.trt_swin.fused_mlp_(x, gamma, beta, eps, w1, b1, w2, b2, act)
