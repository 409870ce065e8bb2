"""Calibrators: entropy equals ModelOpt's definition, mse minimizes the quantization error, every calibrator
clips at or below the max calibrator, and bad calibration inputs fail clearly."""
from __future__ import annotations

import pytest
import torch

from trt_swin.calibration import UncalibratedError, calibrate, calibration_subset, check_calibrated
from trt_swin.calibration.calibrators import entropy_amax, mse_amax


def _histogram(kind: str):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200_000, generator=g).abs()
    if kind == "laplace":
        x = torch.distributions.Laplace(0.0, 1.0).sample((200_000,)).abs()
    if kind == "outliers":
        x = torch.cat([x, torch.rand(20, generator=g) * 50])
    hist = torch.histc(x, bins=2048, min=0, max=float(x.max()))
    return x, hist.double(), torch.linspace(0, float(x.max()), 2049).double()


@pytest.mark.parametrize("kind", ["gauss", "laplace", "outliers"])
def test_entropy_matches_modelopt(kind):
    from modelopt.torch.quantization.calib.histogram import _compute_amax_entropy

    _, hist, edges = _histogram(kind)
    ref = _compute_amax_entropy(hist.int().numpy().copy(), edges.numpy(), 8, False, 1, 128)
    assert float(entropy_amax(hist, edges, 8)) == pytest.approx(float(ref), rel=1e-6)


@pytest.mark.parametrize("kind", ["gauss", "laplace", "outliers"])
def test_mse_minimizes_quantization_error(kind):
    """The histogram MSE amax is within a bin of the brute-force optimum over the raw samples."""
    x, hist, edges = _histogram(kind)
    amax = float(mse_amax(hist, edges, 8))
    cands = ((edges[1:] + edges[:-1]) / 2)[128::8].float()

    def err(a):
        q = torch.round(x / a * 127).clamp(-127, 127) * a / 127
        return float(((q - x) ** 2).mean())

    best = min(cands.tolist(), key=err)
    assert err(amax) <= err(best) * 1.01
    assert amax < float(x.max()) or kind == "gauss"


@pytest.mark.parametrize("calibrator", ["percentile", "entropy", "mse"])
def test_histogram_calibrators_clip_at_or_below_max(quantizable, loader, calibrator):
    ref_model, ref_plan = quantizable("int8", "max")
    ref = calibrate(ref_model, ref_plan, loader, progress=False)
    model, plan = quantizable("int8", calibrator)
    amax = calibrate(model, plan, loader, progress=False)
    assert set(amax) == set(plan.enabled) == set(ref)
    acts = [n for n, q in plan.enabled.items() if q.role != "weight"]
    # Histogram edges grow in whole bins, so an unclipped amax may sit up to one bin (< max / 2048) above the max.
    assert all(float(amax[n]) <= float(ref[n]) * (1 + 1e-3) for n in acts)
    assert any(float(amax[n]) < float(ref[n]) * 0.999 for n in acts)  # histogram calibrators do clip
    for n, q in plan.enabled.items():
        if q.role == "weight":  # weights always use per-channel max
            assert torch.equal(amax[n], ref[n])
    check_calibrated(model)


def test_fp8_refuses_entropy(quantizable, loader):
    model, plan = quantizable("fp8", "entropy")
    with pytest.raises(ValueError, match="entropy calibrator is defined for INT8"):
        calibrate(model, plan, loader, progress=False)


def test_empty_calibration_set(quantizable):
    model, plan = quantizable()
    with pytest.raises(ValueError, match="calibration set is empty"):
        calibrate(model, plan, [], progress=False)


def test_uncalibrated_is_reported(quantizable):
    model, _ = quantizable()
    with pytest.raises(UncalibratedError, match="amax=missing"):
        check_calibrated(model)


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_images=0), "an empty calibration set"),
    (dict(num_images=8, split="test"), "must come from the training split"),
], ids=["zero", "test-split"])
def test_calibration_subset_errors(train_split, kwargs, message):
    with pytest.raises(ValueError, match=message):
        calibration_subset(train_split, **kwargs)


def test_calibration_subset_is_reproducible(train_split):
    a, b = calibration_subset(train_split, 64, seed=3), calibration_subset(train_split, 64, seed=3)
    assert a.indices == b.indices and len(set(a.indices)) == 64
    assert calibration_subset(train_split, 64, seed=4).indices != a.indices
