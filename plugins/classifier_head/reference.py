"""PyTorch reference and input checks of the classifier head op (the Triton kernels' contract).

    feats[b]  = mean over tokens t of LayerNorm(x[b, t, :])                          [B, C]  float32
    logits[b] = feats[b] @ W^T + bias                                                [B, N]  float32

x is the last stage's residual stream (fp16). Everything after the fp16 read is FP32: the LayerNorm output is not
rounded to fp16 before the mean (the engine's unfused tail rounded it), and the head GEMM runs in IEEE FP32, as the
engine's `keep_fp32` head.
"""
from __future__ import annotations

import torch


def check_inputs(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, weight: torch.Tensor | None,
                 bias: torch.Tensor | None) -> tuple[int, int, int, int]:
    """Raise ValueError naming the argument when the inputs do not fit; return (B, L, C, N) (N = 0 without a
    weight)."""
    if x.dim() != 3 or x.dtype != torch.float16:
        raise ValueError(f"classifier_head: x must be [B, tokens, C] float16, got {x.dtype} {tuple(x.shape)}")
    B, L, C = x.shape
    if L < 1:
        raise ValueError("classifier_head: x has no tokens")
    for name, t in (("gamma", gamma), ("beta", beta)):
        if tuple(t.shape) != (C,) or not t.is_floating_point():
            raise ValueError(f"classifier_head: {name} must be [{C}] floating point, got {t.dtype} {tuple(t.shape)}")
    N = 0
    if weight is not None:
        if weight.dim() != 2 or weight.shape[1] != C or weight.dtype != torch.float32:
            raise ValueError(f"classifier_head: weight must be [N, {C}] float32, got {weight.dtype} "
                             f"{tuple(weight.shape)}")
        N = weight.shape[0]
        if bias is not None and tuple(bias.shape) != (N,):
            raise ValueError(f"classifier_head: bias must be [{N}], got {tuple(bias.shape)}")
    elif bias is not None:
        raise ValueError("classifier_head: a bias without a weight")
    for name, t in (("gamma", gamma), ("beta", beta), ("weight", weight), ("bias", bias)):
        if t is not None and t.device != x.device:
            raise ValueError(f"classifier_head: {name} is on {t.device}, x on {x.device}")
    return B, L, C, N


def classifier_head_ref(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float,
                        weight: torch.Tensor | None = None, bias: torch.Tensor | None = None) -> torch.Tensor:
    """[B, L, C] float16 -> logits [B, N] float32, or the pooled features [B, C] float32 without a weight."""
    check_inputs(x, gamma, beta, weight, bias)
    C = x.shape[-1]
    feats = torch.nn.functional.layer_norm(x.float(), (C,), gamma.float(), beta.float(), eps).mean(1)
    if weight is None:
        return feats
    return torch.nn.functional.linear(feats, weight, None if bias is None else bias.float())
