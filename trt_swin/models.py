"""Swin V1 models: timm names, the project's presets, and checkpoints.

A model is described by a `ModelInfo` (timm architecture + input spec + dataset), which travels with every checkpoint
as a JSON sidecar, so a checkpoint can be rebuilt without the command line that made it. Accepted checkpoints:
- trt_swin checkpoints: `NAME.safetensors` + `NAME.json` (written by `trt_swin train`);
- timm state dicts: `.pth` / `.pt` / `.bin` (torch.save) or `.safetensors`, with `--model <timm name>`;
- Microsoft Swin checkpoints: `.pth` holding `{"model": state_dict}`, converted by timm's `checkpoint_filter_fn`.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import timm
import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models.swin_transformer import SwinTransformer, checkpoint_filter_fn

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
SIDECAR_FORMAT = "trt_swin.model/1"

# Swin V1 only (V2 and S3 are other families with other attention).
SWIN_V1_NAMES: tuple[str, ...] = tuple(timm.list_models("swin_*", module="swin_transformer"))

# Fashion-MNIST statistics of the training split (pixels in [0, 1]).
FMNIST_MEAN, FMNIST_STD = (0.2860,), (0.3530,)

PRESETS: dict[str, dict[str, Any]] = {
    # Small enough to commit (<= 15 MB) and to evaluate on the full test set in < 60 s on 2 CPU cores, yet a real
    # Swin with the edge cases of the big ones: native 28x28 input, 14x14 tokens with Swin-T's window 7 / shift 3
    # (N = 49) in stage 1, a 7x7 stage at window size (no shift), an odd-size patch merge (7 -> 4, padded) and a
    # last stage whose window shrinks to its 4x4 resolution. Head dim 32, as in every Swin V1.
    "fmnist-mini": dict(
        timm_name="SwinTransformer",
        kwargs=dict(img_size=28, patch_size=2, in_chans=1, num_classes=10, embed_dim=64, depths=(2, 2, 2),
                    num_heads=(2, 4, 8), window_size=7, drop_path_rate=0.1),
        mean=FMNIST_MEAN, std=FMNIST_STD, dataset="fashion-mnist",
        train=dict(epochs=40, batch_size=256, lr=1e-3, weight_decay=0.05, warmup_epochs=2, label_smoothing=0.1,
                   clip_grad=5.0, final_eval_device="cpu"),
    ),
    # The real Swin-T architecture (224, window 7) with a 10-class head, for GPU-side accuracy checks.
    "fmnist-swin-t": dict(
        timm_name="swin_tiny_patch4_window7_224",
        kwargs=dict(num_classes=10, drop_path_rate=0.1),
        mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, dataset="fashion-mnist",
        train=dict(epochs=3, batch_size=128, lr=5e-4, weight_decay=0.05, warmup_epochs=0.5, label_smoothing=0.1,
                   clip_grad=5.0, eval_every=1, final_eval_device="cuda"),
    ),
}


class ModelSpecError(ValueError):
    """A model name, checkpoint or state dict that cannot be used; the message says why and what to do."""


@dataclass
class ModelInfo:
    """What is needed to rebuild a model and feed it: timm architecture, input spec, dataset, provenance."""

    name: str                      # preset, timm name, or checkpoint stem
    timm_name: str                 # timm model name, or "SwinTransformer" for explicit kwargs
    kwargs: dict[str, Any]         # timm kwargs (num_classes, in_chans, img_size, ...)
    img_size: int
    in_chans: int
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    dataset: str | None = None     # "fashion-mnist", "imagefolder", or None
    meta: dict[str, Any] = field(default_factory=dict)  # training record etc. (sidecar extras)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["format"] = SIDECAR_FORMAT
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelInfo":
        keys = {f for f in cls.__dataclass_fields__}
        d = {k: v for k, v in d.items() if k in keys}
        d["mean"], d["std"] = tuple(d["mean"]), tuple(d["std"])
        return cls(**d)


def build_model(info: ModelInfo) -> torch.nn.Module:
    """The float architecture of `info`, randomly initialized."""
    if info.timm_name == "SwinTransformer":
        return SwinTransformer(**info.kwargs)
    return timm.create_model(info.timm_name, pretrained=False, **info.kwargs)


def _info_for_timm_name(name: str, num_classes: int | None, in_chans: int | None) -> ModelInfo:
    if name not in SWIN_V1_NAMES:
        import difflib

        close = difflib.get_close_matches(name, SWIN_V1_NAMES + tuple(PRESETS), n=4, cutoff=0.4)
        raise ModelSpecError(
            f"unknown model '{name}': not a timm Swin V1 name, a preset, or an existing checkpoint file."
            + (f" Did you mean: {', '.join(close)}?" if close else f" Presets: {', '.join(PRESETS)}.")
        )
    kwargs: dict[str, Any] = {}
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if in_chans is not None:
        kwargs["in_chans"] = in_chans
    cfg = timm.get_pretrained_cfg(name)
    img = cfg.input_size[-1] if cfg is not None else 224
    return ModelInfo(
        name=name, timm_name=name, kwargs=kwargs, img_size=img, in_chans=in_chans or 3,
        num_classes=num_classes if num_classes is not None else (cfg.num_classes if cfg is not None else 1000),
        mean=tuple(cfg.mean) if cfg is not None else IMAGENET_DEFAULT_MEAN,
        std=tuple(cfg.std) if cfg is not None else IMAGENET_DEFAULT_STD,
    )


def preset_info(name: str) -> ModelInfo:
    p = PRESETS[name]
    m = build_model(ModelInfo(name, p["timm_name"], dict(p["kwargs"]), 0, 0, 0, (), ()))
    return ModelInfo(
        name=name, timm_name=p["timm_name"], kwargs=dict(p["kwargs"]), img_size=m.patch_embed.img_size[0],
        in_chans=m.patch_embed.proj.in_channels, num_classes=m.num_classes, mean=tuple(p["mean"]),
        std=tuple(p["std"]), dataset=p["dataset"],
    )


def read_sidecar(path: str | Path) -> dict[str, Any] | None:
    """The JSON sidecar next to a checkpoint (`x.safetensors` -> `x.json`), or None."""
    side = Path(path).with_suffix(".json")
    if not side.exists():
        return None
    try:
        return json.loads(side.read_text())
    except json.JSONDecodeError as e:
        raise ModelSpecError(f"checkpoint sidecar {side} is not valid JSON: {e}") from e


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file: safetensors, or torch.save'd (state dict, {'model': ...} or {'state_dict': ...})."""
    path = Path(path)
    if not path.exists():
        raise ModelSpecError(f"checkpoint not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt / truncated / not a checkpoint: name the file
        raise ModelSpecError(f"cannot read checkpoint {path}: {type(e).__name__}: {e}") from e
    for key in ("model", "state_dict", "model_ema"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelSpecError(f"checkpoint {path} does not hold a state dict of tensors")
    return obj


def load_state_dict_checked(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load `state` strictly; on mismatch raise an error listing missing, unexpected and wrongly shaped keys."""
    own = model.state_dict()
    # timm's filter would silently interpolate relative-position tables of another window size, which changes the
    # function; an inference checkpoint must match the architecture, so refuse instead.
    tables = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}" for k, v in state.items()
              if k.endswith("relative_position_bias_table") and k in own and v.shape != own[k].shape]
    if tables:
        raise ModelSpecError(
            f"state dict from {source} was trained with other window sizes (relative-position tables differ: "
            f"{', '.join(tables[:4])}). Note: timm < 1.0.31 computed the resolution after an odd-size patch merge "
            "differently; use the timm version and --model / img size the checkpoint was trained with."
        )
    # Microsoft checkpoints (layers.N.downsample, head.weight, ...) -> timm names; a no-op for timm state dicts.
    state = checkpoint_filter_fn(dict(state), model)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        def _fmt(xs: list[str]) -> str:
            return ", ".join(xs[:8]) + (f" (+{len(xs) - 8} more)" if len(xs) > 8 else "")

        parts = []
        if shapes:
            parts.append(f"shape mismatches: {_fmt(shapes)}")
        if missing:
            parts.append(f"missing keys: {_fmt(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_fmt(unexpected)}")
        raise ModelSpecError(
            f"state dict from {source} does not fit the model: " + "; ".join(parts)
            + ". Check --model (architecture) and --num-classes / --in-chans."
        )
    model.load_state_dict(state, strict=True)


def load_model(
    spec: str,
    *,
    checkpoint: str | Path | None = None,
    num_classes: int | None = None,
    in_chans: int | None = None,
) -> tuple[torch.nn.Module, ModelInfo]:
    """A float Swin V1 model in eval mode and its `ModelInfo`.

    Args:
        spec: a preset (`fmnist-mini` loads the committed checkpoint), a timm Swin V1 name (random init unless
            `checkpoint` is given), or a trt_swin checkpoint path (`.safetensors` with its `.json` sidecar).
        checkpoint: weights for a timm name: timm or Microsoft state dict, `.pth`/`.safetensors`.
        num_classes, in_chans: overrides for a timm name (must match the checkpoint's head / stem).
    """
    if spec in PRESETS:
        path = CHECKPOINT_DIR / f"{spec}.safetensors"
        if checkpoint is None and path.exists():
            return load_model(str(path))
        info = preset_info(spec)
    elif Path(spec).suffix in (".safetensors", ".pth", ".pt", ".bin") or Path(spec).exists():
        side = read_sidecar(spec)
        if side is None:
            raise ModelSpecError(
                f"{spec} has no trt_swin sidecar ({Path(spec).with_suffix('.json').name}); "
                "pass the architecture as --model <timm name> and the file as --checkpoint"
            )
        if side.get("format") != SIDECAR_FORMAT:
            raise ModelSpecError(
                f"{spec}: sidecar format {side.get('format')!r} is not a float model ({SIDECAR_FORMAT}); "
                "quantized checkpoints load with trt_swin.quant"
            )
        info = ModelInfo.from_dict(side)
        checkpoint = spec
    else:
        info = _info_for_timm_name(spec, num_classes, in_chans)
    model = build_model(info)
    if checkpoint is not None:
        load_state_dict_checked(model, read_state_dict(checkpoint), str(checkpoint))
    return model.eval(), info


def save_checkpoint(model: torch.nn.Module, info: ModelInfo, path: str | Path) -> Path:
    """Write `path` (.safetensors, float32) and its `.json` sidecar."""
    from safetensors.torch import save_file

    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path))
    path.with_suffix(".json").write_text(json.dumps(info.to_dict(), indent=2) + "\n")
    return path
