"""Fixtures shared by the native-engine tests (CPU and GPU)."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def mini():
    from trt_swin import data as data_mod
    from trt_swin.models import load_model

    model, info = load_model("fmnist-mini")
    ds = data_mod.build_dataset(None, "test", info)
    images = torch.stack([ds[i][0] for i in range(16)])
    calib = torch.stack([ds[i][0] for i in range(5000, 5064)])
    with torch.no_grad():
        ref = model(images)
    return model, info, images, calib, ref
