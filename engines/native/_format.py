"""The native engine file: one safetensors file holding every tensor plus a JSON document in its metadata.

    metadata["trt_swin.engine"] = {"format": "trt_swin.native-engine/1", "config": {...}, "build": {...},
                                   "content_hash": "<blake2b of the tensor bytes>"}

`config` is the execution plan the runtime follows (geometry of every block, the precision of every GEMM and its
scales, the names of its tensors); `build` says how and where the engine was built (GPU name and compute capability,
CUDA / torch / trt_swin / timm versions, precision, recipe, max batch). The file needs neither timm nor the model code
to load. Loading validates: format version, content hash (truncated or corrupt files), compute capability against the
GPU, and the torch / CUDA / trt_swin major versions.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

FORMAT = "trt_swin.native-engine/1"
META_KEY = "trt_swin.engine"


class EngineFormatError(ValueError):
    """An engine file that cannot be loaded here; the message says why and what to do."""


def content_hash(tensors: dict[str, torch.Tensor]) -> str:
    """blake2b over names, dtypes, shapes and bytes of `tensors` in name order: detects corrupt payloads."""
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def write_engine(path: str | Path, tensors: dict[str, torch.Tensor], config: dict[str, Any], build: dict[str, Any]) -> Path:
    """Write `tensors` and the JSON document to `path` (parent folders created)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    doc = {"format": FORMAT, "config": config, "build": build, "content_hash": content_hash(tensors)}
    save_file(tensors, str(path), metadata={META_KEY: json.dumps(doc)})
    return path


def read_engine(path: str | Path, verify: bool = True) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(document, tensors on the CPU) of the engine at `path`.

    Raises:
        FileNotFoundError: no such file.
        EngineFormatError: not an engine, truncated or corrupt, or another format version.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"engine file {path} does not exist (build one with `trt_swin build-engine`)")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for bad headers and short files
        raise EngineFormatError(
            f"engine file {path} is truncated or corrupt ({type(e).__name__}: {e}); rebuild it with "
            "`trt_swin build-engine`") from e
    if META_KEY not in meta:
        raise EngineFormatError(f"{path} is a safetensors file but not a trt_swin native engine (no '{META_KEY}' "
                                "metadata); model checkpoints load with `trt_swin eval --model`")
    try:
        doc = json.loads(meta[META_KEY])
    except json.JSONDecodeError as e:
        raise EngineFormatError(f"engine file {path} has corrupt metadata ({e}); rebuild it") from e
    if doc.get("format") != FORMAT:
        raise EngineFormatError(f"engine file {path} has format {doc.get('format')!r}; this trt_swin reads {FORMAT}. "
                                "Rebuild the engine with this version of trt_swin.")
    if verify and content_hash(tensors) != doc.get("content_hash"):
        raise EngineFormatError(f"engine file {path} is corrupt: its tensor data does not match the recorded content "
                                "hash; rebuild it with `trt_swin build-engine`")
    return doc, tensors


def _major(version: str | None) -> str | None:
    return None if not version else str(version).split("+")[0].split(".")[0]


def device_info(device: torch.device | str | None = None) -> dict[str, Any]:
    """What an engine build records and a load checks: GPU name, compute capability, CUDA, torch, trt_swin, timm."""
    import trt_swin

    info: dict[str, Any] = {"gpu": None, "compute_capability": None, "cuda": torch.version.cuda,
                            "torch": torch.__version__.split("+")[0], "trt_swin": trt_swin.__version__}
    try:
        import timm

        info["timm"] = timm.__version__
    except ImportError:
        info["timm"] = None
    device = torch.device(device) if device is not None else None
    if device is not None and device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu"] = props.name
        info["compute_capability"] = [props.major, props.minor]
    return info


def check_compatible(build: dict[str, Any], here: dict[str, Any], path: str | Path = "engine") -> None:
    """Refuse an engine built for another GPU architecture or incompatible software (clear EngineFormatError).

    An engine built without a GPU (compute_capability None: CPU reference build) loads anywhere; one built on a GPU
    loads only on the same compute capability, since its GEMM layouts and precision choices were made for it.
    """
    want, have = build.get("compute_capability"), here.get("compute_capability")
    if want is not None and have is not None and list(want) != list(have):
        raise EngineFormatError(
            f"{path} was built for compute capability sm_{want[0]}{want[1]} ({build.get('gpu')}); this GPU is "
            f"sm_{have[0]}{have[1]} ({here.get('gpu')}). Rebuild the engine on this GPU with `trt_swin build-engine`.")
    for key, what in (("trt_swin", "trt_swin"), ("torch", "PyTorch"), ("cuda", "CUDA")):
        a, b = _major(build.get(key)), _major(here.get(key))
        if a is not None and b is not None and a != b:
            raise EngineFormatError(
                f"{path} was built with {what} {build.get(key)}, this environment has {what} {here.get(key)} "
                f"(major versions differ). Rebuild the engine here with `trt_swin build-engine`.")
