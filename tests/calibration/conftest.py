"""Fixtures of the calibration tests: the fmnist-mini float model and a fixed set of training images."""
from __future__ import annotations

import copy
import os
import io
from contextlib import redirect_stdout

import pytest
import torch

from trt_swin.calibration import insert_quantizers
from trt_swin.calibration.sampling import calibration_subset
from trt_swin.data import build_dataset, build_loader
from trt_swin.models import load_model
from trt_swin.quant.rules import compile_plan

# Development override only (a locally trained stand-in); CI uses the committed checkpoint.
MODEL_SPEC = os.environ.get("TRT_SWIN_QUANT_TEST_MODEL", "fmnist-mini")


@pytest.fixture(scope="session")
def float_mini():
    torch.manual_seed(0)
    return load_model(MODEL_SPEC)


@pytest.fixture(scope="session")
def train_split(float_mini):
    return build_dataset(None, "train", float_mini[1])


@pytest.fixture(scope="session")
def loader(train_split):
    return build_loader(calibration_subset(train_split, 128, seed=0), 64)


@pytest.fixture
def quantizable(float_mini):
    """factory(recipe, calibrator) -> (fresh model with uncalibrated quantizers, plan)."""
    def make(recipe="int8", calibrator=None):
        model = copy.deepcopy(float_mini[0])
        plan = compile_plan(model, recipe, calibrator=calibrator)
        with redirect_stdout(io.StringIO()):
            insert_quantizers(model, plan)
        return model, plan

    return make
