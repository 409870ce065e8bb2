"""Quantized checkpoints: `NAME.pth` (ModelOpt `mto.save`: quantizer modules, amax and weights) + `NAME.json` sidecar
(format `trt_swin.quantized/1`: the float model's ModelInfo, recipe, rules, calibrator, resolved quantizers, the
float parameter shapes), and `scales.json` for engine builders.

Restoring builds the float architecture from the sidecar and applies `mto.restore` to it, which reproduces the
fake-quantized model bit-exactly.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..calibration.calibrators import check_calibrated, iter_quantizers
from .rules import QuantPlan

QUANT_FORMAT = "trt_swin.quantized/1"
SCALES_FORMAT = "trt_swin.scales/1"


def _param_shapes(model: nn.Module) -> dict[str, list[int]]:
    """Shapes of the float parameters and buffers (quantizer state excluded): the architecture fingerprint."""
    return {k: list(v.shape) for k, v in model.state_dict().items() if "_quantizer" not in k}


def sidecar_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


def save_quantized(model: nn.Module, info: Any, plan: QuantPlan, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write the quantized checkpoint `path` (.pth) and its `.json` sidecar. Refuses an uncalibrated model.

    Args:
        model: the fake-quantized model (after calibration or QAT; a DDP wrapper must be unwrapped first).
        info: the float model's `trt_swin.models.ModelInfo`.
        plan: the QuantPlan the model was quantized with.
        extra: more sidecar fields (accuracy, calibration settings, QAT record).
    """
    import modelopt.torch.opt as mto

    check_calibrated(model, "the model to save")
    path = Path(path).with_suffix(".pth")
    path.parent.mkdir(parents=True, exist_ok=True)
    mto.save(model, str(path))
    side = {"format": QUANT_FORMAT, "model": info.to_dict(), "recipe": plan.recipe, "calibrator": str(plan.calibrator),
            "rules": [r.to_dict() for r in plan.rules], "quantizers": plan.to_dict()["quantizers"],
            "param_shapes": _param_shapes(model), **(extra or {})}
    sidecar_path(path).write_text(json.dumps(side, indent=1, default=str) + "\n")
    return path


def read_quantized_sidecar(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"quantized checkpoint {path} does not exist")
    side = sidecar_path(path)
    if not side.exists():
        raise ValueError(f"{path} has no sidecar {side.name}; it is not a trt_swin quantized checkpoint "
                         "(write one with trt_swin quantize)")
    try:
        meta = json.loads(side.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"sidecar {side} is not valid JSON: {e}") from e
    if not str(meta.get("format", "")).startswith("trt_swin.quantized"):
        raise ValueError(f"{side} has format {meta.get('format')!r}, not a quantized checkpoint ({QUANT_FORMAT}); "
                         "float checkpoints load with trt_swin.models.load_model")
    return meta


def restore_quantized(model: nn.Module, path: str | Path) -> nn.Module:
    """Restore the quantized checkpoint `path` onto the freshly built float `model` (same architecture).

    Raises:
        ValueError: the checkpoint was made for another architecture (names the first differing tensors),
            or holds uncalibrated quantizers.
    """
    import modelopt.torch.opt as mto

    meta = read_quantized_sidecar(path)
    want, have = meta.get("param_shapes", {}), _param_shapes(model)
    if want and want != have:
        diff = [f"{k}: checkpoint {want.get(k)} vs model {have.get(k)}" for k in sorted(set(want) | set(have))
                if want.get(k) != have.get(k)]
        raise ValueError(f"quantized checkpoint {path} is for a different architecture "
                         f"({meta.get('model', {}).get('name', '?')}): {'; '.join(diff[:4])}"
                         + (f" (+{len(diff) - 4} more)" if len(diff) > 4 else ""))
    mto.restore(model, str(path))
    check_calibrated(model, f"quantized checkpoint {path}")
    return model.eval()


def load_quantized(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, Any]:
    """The fake-quantized model of checkpoint `path` and its float `ModelInfo` (what `trt_swin eval` loads)."""
    from ..models import ModelInfo, build_model

    meta = read_quantized_sidecar(path)
    info = ModelInfo.from_dict(meta["model"])
    model = restore_quantized(build_model(info), path)
    return model.to(device), info


def quantizer_table(model: nn.Module, plan: QuantPlan | None = None) -> dict[str, dict[str, Any]]:
    """Every quantizer by module path: enabled, bits, axis, amax (float or per-channel list), calibrator."""
    out: dict[str, dict[str, Any]] = {}
    for name, q in iter_quantizers(model):
        bits = q.num_bits
        amax = q.amax
        entry = {
            "enabled": not q._disabled,
            "bits": "e4m3" if isinstance(bits, (tuple, list)) and tuple(bits) == (4, 3) else bits,
            "axis": q.axis if not isinstance(q.axis, (tuple, list)) else (list(q.axis) or None),
            "amax": None if amax is None or q._disabled else (
                float(amax) if amax.numel() == 1 else amax.detach().cpu().flatten().tolist()),
        }
        if plan is not None and name in plan.quantizers:
            entry["calibrator"] = str(plan.quantizers[name].calibrator) if entry["enabled"] else None
        out[name] = entry
    return out


def write_scales(model: nn.Module, path: str | Path, plan: QuantPlan | None = None, extra: dict[str, Any] | None = None) -> Path:
    """`scales.json`: every quantizer by module path (enabled, bits, axis, amax). INT8 scale = amax / 127."""
    check_calibrated(model, "the model whose scales are written")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"format": SCALES_FORMAT, "recipe": plan.recipe if plan else None,
           "note": "INT8: q = clamp(round(x * 127 / amax), -128, 127); FP8 E4M3: q = fp8(x * 448 / amax). "
                   "Weight amax with axis 0 has one value per output channel.",
           **(extra or {}), "quantizers": quantizer_table(model, plan)}
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path
