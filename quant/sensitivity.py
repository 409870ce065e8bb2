"""Per-layer quantization sensitivity: which GEMMs to keep in floating point.

Two measurements on the calibrated model, both against the FP32 logits of the same images (training-split images,
never the evaluation split):
- `single`: only that module quantized, everything else floating point; sensitivity = KL(FP32 || quantized).
- `leave-out`: everything quantized except that module; sensitivity = KL(all quantized) - KL(all but this one),
  i.e. what keeping this module in floating point recovers.
KL is the mean per-image KL divergence of the softmax outputs. The calibrated amax are kept: the toggles only
enable / disable quantizers, so no recalibration happens.
"""
from __future__ import annotations

from typing import Any, Iterable, Literal

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ..calibration.calibrators import iter_quantizers

Method = Literal["single", "leave-out"]


def quantized_modules(model: nn.Module) -> dict[str, list[nn.Module]]:
    """Module path -> its enabled quantizers, for every module with at least one."""
    groups: dict[str, list[nn.Module]] = {}
    for name, q in iter_quantizers(model):
        if not q._disabled:
            groups.setdefault(name.rsplit(".", 1)[0], []).append(q)
    return groups


@torch.no_grad()
def _logits(model: nn.Module, batches: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([model(x).float().cpu() for x in batches])


def _kl(ref: torch.Tensor, out: torch.Tensor) -> float:
    return float(F.kl_div(F.log_softmax(out, 1), F.log_softmax(ref, 1), reduction="batchmean", log_target=True))


def layer_sensitivity(model: nn.Module, images: Iterable, device: str | torch.device = "cpu", method: Method = "single",
                      progress: bool = True) -> list[dict[str, Any]]:
    """Rank the quantized modules of `model` by sensitivity, most sensitive first.

    Args:
        model: calibrated fake-quantized model; left with the same quantizers enabled as on entry.
        images: batches of images [B, C, H, W] (or (images, labels) pairs) from the training split.
        method: `single` (quantize one module at a time) or `leave-out` (keep one module floating point).
    Returns:
        [{"module", "kl", "agreement", "rank"}] sorted by descending sensitivity (`kl` as defined above).
    """
    if method not in ("single", "leave-out"):
        raise ValueError(f"sensitivity method '{method}' unknown; use single or leave-out")
    device = torch.device(device)
    batches = [(b[0] if isinstance(b, (tuple, list)) else b).to(device) for b in images]
    if not batches:
        raise ValueError("the sensitivity analysis got no images")
    groups = quantized_modules(model)
    everything = [q for qs in groups.values() for q in qs]
    model.eval()
    try:
        for q in everything:
            q.disable()
        ref = _logits(model, batches)
        kl_all = None
        if method == "leave-out":
            for q in everything:
                q.enable()
            kl_all = _kl(ref, _logits(model, batches))
        rows = []
        for mod, qs in tqdm(groups.items(), desc=f"sensitivity ({method})", disable=not progress, leave=False):
            for q in qs:
                q.enable() if method == "single" else q.disable()
            out = _logits(model, batches)
            for q in qs:
                q.disable() if method == "single" else q.enable()
            kl = _kl(ref, out)
            rows.append({"module": mod, "kl": kl if method == "single" else kl_all - kl,
                         "agreement": 100.0 * float((out.argmax(1) == ref.argmax(1)).float().mean())})
    finally:
        for q in everything:
            q.enable()
    rows.sort(key=lambda r: -r["kl"])
    for i, r in enumerate(rows, 1):
        r["rank"] = i
    return rows


def most_sensitive(rows: list[dict[str, Any]], n: int) -> list[str]:
    """The `n` most sensitive module paths of a `layer_sensitivity` report."""
    if n < 0:
        raise ValueError(f"--keep-fp must be >= 0, got {n}")
    if n > len(rows):
        raise ValueError(f"--keep-fp {n}: the model has only {len(rows)} quantized modules")
    return [r["module"] for r in rows[:n]]


def keep_fp(model: nn.Module, modules: Iterable[str]) -> None:
    """Disable every quantizer of `modules` (they run in floating point from now on)."""
    groups = quantized_modules(model)
    for m in modules:
        if m not in groups:
            raise ValueError(f"module {m} has no enabled quantizer")
        for q in groups[m]:
            q.disable()
