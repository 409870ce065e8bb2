"""Calibration cache: reused bit-exactly for the same model + data + calibrator, refused (naming what changed)
otherwise."""
from __future__ import annotations

import copy
import io
from contextlib import redirect_stdout

import pytest
import torch

from trt_swin.calibration import CacheMismatchError, calibration_subset, collect_amax
from trt_swin.data import build_loader
from trt_swin.quant.ptq import quantize_ptq
from trt_swin.quant.rules import compile_plan


def _ptq(float_mini, loader, cache, calibrator=None, perturb=False):
    model = copy.deepcopy(float_mini[0])
    if perturb:
        with torch.no_grad():
            model.head.fc.bias.add_(1e-3)
    plan = compile_plan(model, "int8", calibrator=calibrator)
    with redirect_stdout(io.StringIO()):
        rec = quantize_ptq(model, plan, loader, cache=cache, progress=False)
    return model, rec


@pytest.fixture(scope="module")
def written(float_mini, loader, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache") / "calib.safetensors"
    model, rec = _ptq(float_mini, loader, cache)
    assert rec["cache"] == "written" and cache.exists()
    return cache, model


def test_hit_reproduces_amax(float_mini, loader, written):
    cache, first = written
    model, rec = _ptq(float_mini, loader, cache)
    assert rec["cache"] == "hit"
    a, b = collect_amax(first), collect_amax(model)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("change, part", [("calibrator", "quantizers"), ("data", "data"), ("weights", "model")])
def test_mismatch_is_refused(float_mini, loader, train_split, written, change, part):
    cache, _ = written
    other_loader = build_loader(calibration_subset(train_split, 128, seed=1), 64) if change == "data" else loader
    with pytest.raises(CacheMismatchError, match=f"made for a different {part}"):
        _ptq(float_mini, other_loader, cache, calibrator="max" if change == "calibrator" else None,
             perturb=change == "weights")


def test_not_a_cache(float_mini, loader, tmp_path):
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="cannot be read"):
        _ptq(float_mini, loader, bad)
