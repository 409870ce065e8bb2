"""Helpers shared by the quantization tests (a uniquely named module: tests/calibration has its own conftest)."""
from __future__ import annotations

import os

import torch

# Development override only (a locally trained stand-in); CI uses the committed checkpoint.
MODEL_SPEC = os.environ.get("TRT_SWIN_QUANT_TEST_MODEL", "fmnist-mini")


@torch.no_grad()
def logits_of(model, images: torch.Tensor) -> torch.Tensor:
    """Logits [n, K] of `images` [n, C, H, W], in batches of 500."""
    model.eval()
    return torch.cat([model(images[i:i + 500]).float() for i in range(0, len(images), 500)])
