"""Inference engines: `native` (our kernels + cuBLASLt + CUDA graphs, `.engine`) and `tensorrt` (`.plan`).

`load(path)(images) -> logits` is the one-line runtime API for both.
"""
from __future__ import annotations

from pathlib import Path


def load(path: str | Path, device=None, **kwargs):
    """A callable `engine(images [B, C, H, W]) -> logits [B, num_classes]` for an engine file.

    `.plan` files are TensorRT engines (`trt_swin.engines.tensorrt.load_plan`); anything else is read as a native
    engine (`trt_swin.engines.native.load_native`: device, cuda_graphs, buckets, capture, verify).
    """
    path = Path(path)
    if path.suffix == ".plan":
        try:
            from .tensorrt import load_plan
        except ImportError as e:
            raise RuntimeError(f"cannot load TensorRT plan {path}: the TensorRT backend is unavailable ({e}); "
                               "install it with pip install 'trt_swin[tensorrt]'") from e
        return load_plan(path, **({"device": device} if device is not None else {}), **kwargs)
    from .native import load_native

    return load_native(path, device=device, **kwargs)


__all__ = ["load"]
