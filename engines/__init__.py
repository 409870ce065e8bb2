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
        if device is not None and str(device).split(":")[0] != "cuda":
            raise ValueError(f"TensorRT plan {path} runs on CUDA only, not on {device}")
        from .tensorrt import load_plan  # raises a RuntimeError naming the pip command when tensorrt is missing

        return load_plan(path, **kwargs)
    from .native import load_native

    return load_native(path, device=device, **kwargs)


__all__ = ["load"]
