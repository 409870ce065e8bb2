"""Shared fixtures of the quantization tests: the committed fmnist-mini model, a fixed calibration set (256
training images), a fixed 2000-image test subset with its FP32 logits, and a cache of PTQ models per
(recipe, calibrator) so each is calibrated once per session."""
from __future__ import annotations

import copy
import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import torch

from trt_swin.calibration.sampling import calibration_subset
from trt_swin.data import build_dataset, build_loader
from trt_swin.models import CHECKPOINT_DIR, load_model
from trt_swin.quant.ptq import quantize_ptq
from trt_swin.quant.rules import compile_plan

CALIB_IMAGES = 256
TEST_IMAGES = 2000
from quant_test_utils import MODEL_SPEC, logits_of


def committed_model_reason() -> str | None:
    if MODEL_SPEC == "fmnist-mini" and not (CHECKPOINT_DIR / "fmnist-mini.safetensors").exists():
        return "committed checkpoint trt_swin/checkpoints/fmnist-mini.safetensors is missing (accuracy needs trained weights)"
    return None


@pytest.fixture(scope="session")
def trained():
    """Skip accuracy tests (with the reason) when the trained mini checkpoint is absent."""
    reason = committed_model_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def mini():
    """(float fmnist-mini model in eval mode, ModelInfo)."""
    torch.manual_seed(0)
    return load_model(MODEL_SPEC)


@pytest.fixture(scope="session")
def train_set(mini):
    return build_dataset(None, "train", mini[1])


@pytest.fixture(scope="session")
def calib_loader(mini, train_set):
    return build_loader(calibration_subset(train_set, CALIB_IMAGES, seed=0), 64)


@pytest.fixture(scope="session")
def test_batches(mini):
    """The first TEST_IMAGES test images as (images [n, C, H, W], labels [n])."""
    ds = build_dataset(None, "test", mini[1])
    loader = build_loader(ds, 500, limit=TEST_IMAGES)
    xs, ys = zip(*loader)
    return torch.cat(xs), torch.cat(ys)


@pytest.fixture(scope="session")
def fp32_logits(mini, test_batches):
    return logits_of(mini[0], test_batches[0])


def quantize_fresh(mini, calib_loader, recipe: str, calibrator: str | None = None, rules=()):
    """A new PTQ model of the mini model (float weights copied) and its plan."""
    model = copy.deepcopy(mini[0])
    plan = compile_plan(model, recipe, list(rules), calibrator=calibrator)
    with redirect_stdout(io.StringIO()):
        quantize_ptq(model, plan, calib_loader, progress=False)
    return model.eval(), plan


@pytest.fixture(scope="session")
def ptq_models(mini, calib_loader):
    """ptq_models(recipe, calibrator) -> (model, plan), calibrated once per session per key (do not modify)."""
    cache: dict = {}

    def get(recipe: str, calibrator: str | None = None):
        key = (recipe, calibrator)
        if key not in cache:
            cache[key] = quantize_fresh(mini, calib_loader, recipe, calibrator)
        return cache[key]

    return get


@pytest.fixture
def tmp_out(tmp_path) -> Path:
    return tmp_path
