"""Markers (declared in pyproject.toml): `gpu` needs CUDA and the built op library, `trt` needs TensorRT.

Each skips with its reason, so a CPU run says exactly what it did not check.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # tests/shapes.py


def _gpu_reason() -> str | None:
    if not torch.cuda.is_available():
        return "CUDA not available"
    from trt_swin.plugins import available

    ok, why = available()
    return None if ok else f"trt_swin CUDA ops not built: {why}"


def _trt_reason() -> str | None:
    return None if importlib.util.find_spec("tensorrt") is not None else "TensorRT not installed"


def pytest_collection_modifyitems(config, items):
    gpu_reason = trt_reason = None
    checked = set()
    for item in items:
        if "gpu" in item.keywords:
            if "gpu" not in checked:
                gpu_reason, _ = _gpu_reason(), checked.add("gpu")
            if gpu_reason:
                item.add_marker(pytest.mark.skip(reason=gpu_reason))
        if "trt" in item.keywords:
            if "trt" not in checked:
                trt_reason, _ = _trt_reason(), checked.add("trt")
            if trt_reason:
                item.add_marker(pytest.mark.skip(reason=trt_reason))


@pytest.fixture
def cuda_device() -> torch.device:
    return torch.device("cuda")
