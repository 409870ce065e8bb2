"""PyTorch references, LayerNorm folding and input checks of the row-gathered GEMMs (the Triton kernels' contract).

    ln_gemm:              out = act(LN(gather(x)) @ W^T + bias)      x [B, H, W, C] float16 -> out [rows, N]
    gemm_window_reverse:  x += unshift(window_reverse(a @ W^T + bias)), in place

`gather` is one of the row gathers that precede a LayerNorm + GEMM in a Swin V1 block:
- ("rows",): the tokens as they are (norm2 -> FC1);
- ("window", ws, ss): roll by -ss, zero-pad to multiples of ws, window partition (norm1 -> QKV): rows
  [B * nW * ws * ws] in window order; padded rows are zeros after the norm (timm), so their output is the bias.
gemm_window_reverse undoes the window gather on the output side: window reverse, crop, roll by +ss, + residual.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from ..ln_shift_partition.reference import ln_shift_partition_ref
from ..window_reverse.reference import window_reverse_ref


class FoldedLayerNormGemm(NamedTuple):
    """A GEMM with its LayerNorm's affine parameters folded in (`fold_layer_norm`)."""

    weight: torch.Tensor  # W' = W diag(gamma), float16 [N, K]
    u: torch.Tensor  # row sums of that float16 W', float32 [N]
    v: torch.Tensor  # W beta + bias, float32 [N]
    bias: torch.Tensor  # the GEMM's own bias (zeros without one), float32 [N]: the output of zero (padded) rows


def fold_layer_norm(weight: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                    bias: torch.Tensor | None = None) -> FoldedLayerNormGemm:
    """Fold LayerNorm(gamma, beta) into the GEMM that follows it:

        LN(a) @ W^T + b = rstd * (a @ W'^T - mean * u) + v,   W' = W diag(gamma), u = rowsum(W'), v = W beta + b

    u sums the float16-rounded W', so that the kernel's `mean * u` removes exactly the mean its GEMM summed."""
    wf = weight.float()
    wg = (wf * gamma.float()[None, :]).half()
    b = torch.zeros(weight.shape[0], device=weight.device) if bias is None else bias.float()
    return FoldedLayerNormGemm(wg.contiguous(), wg.float().sum(1).contiguous(), (wf @ beta.float() + b).contiguous(),
                               b.contiguous())


def gather_rows(gather: tuple) -> tuple[str, int, int]:
    """(kind, ws, ss) of a gather spec ("rows",) or ("window", ws, ss); ValueError otherwise."""
    if tuple(gather) == ("rows",):
        return "rows", 0, 0
    if gather and gather[0] == "window" and len(gather) == 3 and gather[1] >= 1 and 0 <= gather[2] < gather[1]:
        return "window", int(gather[1]), int(gather[2])
    raise ValueError(f"ln_gemm: gather must be ('rows',) or ('window', ws, ss) with 0 <= ss < ws, got {gather!r}")


def ln_gemm_ref(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float, weight: torch.Tensor,
                bias: torch.Tensor | None, gather: tuple, act: str = "none") -> torch.Tensor:
    """The oracle, in FP32: the two-kernel path's LayerNorm (ln_shift_partition_ref for a window gather) then the GEMM
    and the activation ("none", "gelu_erf", "gelu_tanh"). -> [rows, N] float32."""
    kind, ws, ss = gather_rows(gather)
    if kind == "rows":
        a = F.layer_norm(x.float().reshape(-1, x.shape[-1]), (x.shape[-1],), gamma.float(), beta.float(), eps)
    else:
        a = ln_shift_partition_ref(x, gamma, beta, eps, ws, ss)
    y = F.linear(a, weight.float(), None if bias is None else bias.float())
    if act == "none":
        return y
    return F.gelu(y, approximate="tanh" if act == "gelu_tanh" else "none")


def gemm_window_reverse_ref(a: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, x: torch.Tensor,
                            ws: int, ss: int) -> torch.Tensor:
    """The oracle of gemm_window_reverse, in FP32: x + unshift(crop(window_reverse(a @ W^T + bias))) -> [B, H, W, C]
    float32 (not in place)."""
    y = F.linear(a.float(), weight.float(), None if bias is None else bias.float())
    return window_reverse_ref(y, x, None, ws, ss)[0]


def check_window_reverse_inputs(a: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, x: torch.Tensor,
                                ws: int, ss: int) -> None:
    """gemm_window_reverse's contract: a [B * nW * ws * ws, K] float16, weight [C, K] float16 (K % 16 == 0), bias
    [C] or None, x [B, H, W, C] float16 contiguous (updated in place), one device."""
    if x.dim() != 4 or x.dtype != torch.float16 or not x.is_contiguous():
        raise ValueError(f"gemm_window_reverse: x must be a contiguous [B, H, W, C] float16 tensor (updated in "
                         f"place), got {tuple(x.shape)} {x.dtype}")
    gather_rows(("window", ws, ss))
    B, H, W, C = x.shape
    rows = B * -(-H // ws) * -(-W // ws) * ws * ws
    if a.dim() != 2 or a.shape[0] != rows or a.dtype != torch.float16 or a.shape[1] % 16:
        raise ValueError(f"gemm_window_reverse: a must be [B*nW*ws*ws={rows}, K] float16 with K % 16 == 0, got "
                         f"{tuple(a.shape)} {a.dtype}")
    if tuple(weight.shape) != (C, a.shape[1]) or weight.dtype != torch.float16:
        raise ValueError(f"gemm_window_reverse: weight must be [C={C}, K={a.shape[1]}] float16, got "
                         f"{tuple(weight.shape)} {weight.dtype}")
    if bias is not None and tuple(bias.shape) != (C,):
        raise ValueError(f"gemm_window_reverse: bias must be [C={C}], got {tuple(bias.shape)}")
    if len({t.device for t in (a, weight, x) + ((bias,) if bias is not None else ())}) != 1:
        raise ValueError("gemm_window_reverse: a, weight, bias and x must be on one device")


def check_inputs(x: torch.Tensor, folded: FoldedLayerNormGemm, gather: tuple) -> tuple[str, int, int]:
    """ln_gemm's contract: x [B, H, W, C] (rows: or [M, C]) float16 with C % 16 == 0; the folded weight [N, C]
    float16; u, v, bias [N] float32; one device. Returns gather_rows(gather)."""
    kind, ws, ss = gather_rows(gather)
    if not (x.dim() == 4 or (x.dim() == 2 and kind == "rows")) or x.dtype != torch.float16:
        raise ValueError(f"ln_gemm: x must be [B, H, W, C] (or [M, C] for rows) float16, got {tuple(x.shape)} "
                         f"{x.dtype}")
    C = x.shape[-1]
    if C % 16:
        raise ValueError(f"ln_gemm: C must be a multiple of 16, got {C}")
    w = folded.weight
    if w.dim() != 2 or w.shape[1] != C or w.dtype != torch.float16:
        raise ValueError(f"ln_gemm: the folded weight must be [N, C={C}] float16, got {tuple(w.shape)} {w.dtype}")
    N = w.shape[0]
    for name in ("u", "v", "bias"):
        t = getattr(folded, name)
        if tuple(t.shape) != (N,) or t.dtype != torch.float32:
            raise ValueError(f"ln_gemm: {name} must be [N={N}] float32, got {tuple(t.shape)} {t.dtype}")
    if len({t.device for t in (x, *folded)}) != 1:
        raise ValueError("ln_gemm: x and the folded GEMM must be on one device")
    return kind, ws, ss

