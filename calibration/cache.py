"""Calibration cache: the amax of every enabled quantizer, reusable for the same model + data + calibrator.

The file is a safetensors archive (one tensor per quantizer, named by quantizer path) whose metadata holds a key:
the SHA-256 of three parts, each kept so a mismatch can say which one changed:
- `model`: the float model's state dict (names, dtypes, shapes, bytes);
- `quantizers`: the enabled quantizers and their settings (bits, axis, calibrator and percentile), i.e. the
  recipe + rules + calibrator as resolved on this model;
- `data`: the calibration images exactly as fed to the model (bytes) and their count.
A cache whose key differs is refused, never silently reused.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from ..quant.rules import QuantPlan

CACHE_FORMAT = "trt_swin.calib_cache/1"


class CacheMismatchError(ValueError):
    """The cache exists but was made for another model, data or calibrator."""


@dataclass(frozen=True)
class CacheKey:
    """Digests of what determines the amax values."""

    model: str
    quantizers: str
    data: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"{self.model}|{self.quantizers}|{self.data}".encode()).hexdigest()


def model_digest(model: nn.Module) -> str:
    """SHA-256 of a float model's state dict (call before inserting quantizers)."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def plan_digest(plan: QuantPlan) -> str:
    enabled = {k: {"bits": q.bits, "axis": q.axis, "calibrator": str(q.calibrator)} for k, q in plan.enabled.items()}
    return hashlib.sha256(json.dumps(enabled, sort_keys=True).encode()).hexdigest()


def data_digest(loader: Iterable) -> tuple[str, int]:
    """SHA-256 of the calibration images as the loader yields them, and their count."""
    h, n = hashlib.sha256(), 0
    for batch in loader:
        x = (batch[0] if isinstance(batch, (tuple, list)) else batch).detach().cpu().float().contiguous()
        h.update(x.numpy().tobytes())
        n += len(x)
    h.update(str(n).encode())
    return h.hexdigest(), n


def load_cache(path: str | Path, key: CacheKey) -> dict[str, torch.Tensor] | None:
    """The cached amax values, or None when `path` does not exist.

    Raises:
        CacheMismatchError: the cache was made for a different model, data or quantizer/calibrator setting.
        ValueError: the file is not a calibration cache.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        raise ValueError(f"calibration cache {path} cannot be read ({type(e).__name__}: {e}); delete it to recalibrate") from e
    if meta.get("format") != CACHE_FORMAT:
        raise ValueError(f"{path} is not a trt_swin calibration cache (format {meta.get('format')!r})")
    if meta.get("key") != key.digest:
        stored = json.loads(meta.get("components", "{}"))
        changed = [part for part, value in asdict(key).items() if stored.get(part) != value]
        raise CacheMismatchError(
            f"calibration cache {path} was made for a different {' and '.join(changed) or 'setting'} "
            f"(key {meta.get('key', '?')[:12]} vs {key.digest[:12]}); it is refused. Pass another --calib-cache path, "
            "or delete the file to recalibrate")
    return tensors


def save_cache(path: str | Path, key: CacheKey, amax: dict[str, torch.Tensor]) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().float().cpu().contiguous() for k, v in amax.items()}, str(path),
              metadata={"format": CACHE_FORMAT, "key": key.digest, "components": json.dumps(asdict(key))})
    return path
