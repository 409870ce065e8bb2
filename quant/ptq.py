"""Post-training quantization of a float Swin: insert quantizers by plan, calibrate (or reuse a calibration cache)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn

from ..calibration.cache import CacheKey, data_digest, load_cache, model_digest, plan_digest, save_cache
from ..calibration.calibrators import apply_amax, calibrate, insert_quantizers
from .rules import QuantPlan


def quantize_ptq(model: nn.Module, plan: QuantPlan, calib_loader: Iterable, device: str | torch.device = "cpu",
                 cache: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Quantize the float `model` in place with `plan` and calibrate it on `calib_loader`.

    Args:
        model: float model on `device`.
        calib_loader: (images [B, C, H, W], labels) batches from the training split.
        cache: calibration cache file: reused when its key matches (same weights, quantizer settings and images),
            written when absent, refused (CacheMismatchError) when it was made for something else.
    Returns:
        {"cache": None | "hit" | "written", "cache_key": str | None}
    """
    key = None
    if cache is not None:
        digest, n = data_digest(calib_loader)
        if n == 0:
            raise ValueError("the calibration set is empty: no images reached the model; check --data and --calib-images")
        key = CacheKey(model_digest(model), plan_digest(plan), digest)
    insert_quantizers(model, plan)
    model.to(device)
    if cache is not None:
        amax = load_cache(cache, key)
        if amax is not None:
            apply_amax(model, amax)
            return {"cache": "hit", "cache_key": key.digest}
    amax = calibrate(model, plan, calib_loader, device, progress=progress)
    if cache is not None:
        save_cache(cache, key, amax)
        return {"cache": "written", "cache_key": key.digest}
    return {"cache": None, "cache_key": None}
