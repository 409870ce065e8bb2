"""Per-layer sensitivity: one row per quantized module, ranked; --keep-fp N keeps the N most sensitive in FP."""
from __future__ import annotations

import copy

import pytest
import torch

from trt_swin.quant.sensitivity import _kl, keep_fp, layer_sensitivity, most_sensitive, quantized_modules

from quant_test_utils import logits_of


@pytest.fixture(scope="module")
def images(calib_loader):
    return [next(iter(calib_loader))[0][:32]]  # 32 training images: enough to rank, cheap on 2 CPU cores


@pytest.fixture(scope="module")
def reports(ptq_models, images):
    model, _ = ptq_models("int8")
    before = {n: q._disabled for n, q in model.named_modules() if n.endswith("_quantizer")}
    rows = {m: layer_sensitivity(model, images, method=m, progress=False) for m in ("single", "leave-out")}
    after = {n: q._disabled for n, q in model.named_modules() if n.endswith("_quantizer")}
    return rows, before, after


@pytest.mark.parametrize("method", ["single", "leave-out"])
def test_ranking_covers_every_quantized_module(ptq_models, reports, method):
    _, plan = ptq_models("int8")
    rows, before, after = reports
    rows = rows[method]
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert {r["module"] for r in rows} == {q.module for q in plan.enabled.values()}
    assert all(a["kl"] >= b["kl"] for a, b in zip(rows, rows[1:]))
    if method == "single":
        assert all(r["kl"] >= 0 for r in rows) and rows[0]["kl"] > 0
    # The analysis leaves the model as it found it.
    assert before == after


def test_keep_fp_recovers_what_leave_out_predicts(ptq_models, images, reports):
    model, _ = ptq_models("int8")
    model = copy.deepcopy(model)
    x = torch.cat(images)
    groups = quantized_modules(model)
    for q in (q for qs in groups.values() for q in qs):
        q.disable()
    ref = logits_of(model, x)
    for q in (q for qs in groups.values() for q in qs):
        q.enable()
    kl_all = _kl(ref, logits_of(model, x))
    rows = reports[0]["leave-out"]
    keep = most_sensitive(rows, 1)
    keep_fp(model, keep)
    kl_kept = _kl(ref, logits_of(model, x))
    assert kl_kept == pytest.approx(kl_all - rows[0]["kl"], rel=1e-4, abs=1e-9)
    assert kl_kept < kl_all
    assert keep[0] not in quantized_modules(model)


def test_keep_fp_bounds():
    rows = [{"module": f"m{i}", "kl": 1.0 / (i + 1)} for i in range(3)]
    assert most_sensitive(rows, 2) == ["m0", "m1"]
    with pytest.raises(ValueError, match="only 3 quantized modules"):
        most_sensitive(rows, 4)
