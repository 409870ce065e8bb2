"""Quantized checkpoints restore bit-exactly, scales.json lists every quantizer, `trt_swin eval` loads the
checkpoint, and the bad inputs (uncalibrated quantizers, another architecture) fail with clear errors."""
from __future__ import annotations

import copy
import io
import json
from contextlib import redirect_stdout

import pytest
import torch

from trt_swin.calibration import UncalibratedError, insert_quantizers, iter_quantizers
from trt_swin.cli import main as cli
from trt_swin.models import ModelInfo, build_model, preset_info
from trt_swin.quant.checkpoint import load_quantized, restore_quantized, save_quantized, write_scales
from trt_swin.quant.onnx_export import export_onnx
from trt_swin.quant.rules import compile_plan


@pytest.mark.parametrize("recipe", ["int8", "int8-fc2-pm-int32", "fp8"])
def test_save_restore_bit_exact(mini, ptq_models, test_batches, tmp_out, recipe):
    model, plan = ptq_models(recipe)
    path = save_quantized(model, mini[1], plan, tmp_out / "q.pth")
    restored, info = load_quantized(path)
    x = test_batches[0][:200]
    with torch.no_grad():
        assert torch.equal(model(x), restored(x))
    assert info.to_dict() == mini[1].to_dict()
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["format"] == "trt_swin.quantized/1" and side["recipe"] == recipe
    assert {k for k, v in side["quantizers"].items() if v["enabled"]} == set(plan.enabled)


def test_scales_json_lists_every_quantizer(ptq_models, tmp_out):
    model, plan = ptq_models("int8")
    doc = json.loads(write_scales(model, tmp_out / "scales.json", plan).read_text())
    q = doc["quantizers"]
    assert set(q) == {n for n, _ in iter_quantizers(model)} == set(plan.quantizers)
    for name, spec in plan.quantizers.items():
        assert q[name]["enabled"] == spec.enabled
        if not spec.enabled:
            assert q[name]["amax"] is None
            continue
        assert q[name]["bits"] == 8 and q[name]["axis"] == spec.axis
        module = model.get_submodule(spec.module)
        if spec.role == "weight":  # per output channel, one amax each, equal to max |W| of that row
            assert q[name]["amax"] == pytest.approx(module.weight.detach().abs().amax(1).tolist(), rel=1e-6)
        else:
            assert isinstance(q[name]["amax"], float) and q[name]["amax"] > 0


def test_eval_cli_loads_quantized_checkpoint(mini, ptq_models, tmp_out, capsys):
    model, plan = ptq_models("int8")
    path = save_quantized(model, mini[1], plan, tmp_out / "mini-int8.pth")
    assert cli(["eval", "--model", str(path), "--limit", "100", "--device", "cpu", "--json", str(tmp_out / "e.json")]) == 0
    report = json.loads((tmp_out / "e.json").read_text())
    assert report["n"] == 100 and 0 <= report["top1"] <= 100


@pytest.fixture
def uncalibrated(mini):
    model = copy.deepcopy(mini[0])
    plan = compile_plan(model, "int8")
    with redirect_stdout(io.StringIO()):
        insert_quantizers(model, plan)
    return model, plan


def test_uncalibrated_refused_at_save(mini, uncalibrated, tmp_out):
    with pytest.raises(UncalibratedError, match="without a valid amax.*calibrate first"):
        save_quantized(uncalibrated[0], mini[1], uncalibrated[1], tmp_out / "u.pth")


def test_uncalibrated_refused_at_export(uncalibrated, tmp_out, test_batches):
    with pytest.raises(UncalibratedError, match="attn.qkv.input_quantizer"):
        export_onnx(uncalibrated[0], tmp_out / "u.onnx", test_batches[0][:2])


def test_uncalibrated_refused_at_eval_load(mini, ptq_models, tmp_out):
    """A checkpoint whose amax were stripped (FasterTransformer issue #357) does not load."""
    model, plan = ptq_models("int8")
    broken = copy.deepcopy(model)
    name, q = next((n, q) for n, q in iter_quantizers(broken) if not q._disabled)
    del q._amax
    path = tmp_out / "broken.pth"
    import modelopt.torch.opt as mto

    mto.save(broken, str(path))
    good = save_quantized(model, mini[1], plan, tmp_out / "good.pth")
    path.with_suffix(".json").write_text(good.with_suffix(".json").read_text())
    with pytest.raises(UncalibratedError, match=name):
        load_quantized(path)


def test_other_architecture_refused(mini, ptq_models, tmp_out):
    model, plan = ptq_models("int8")
    path = save_quantized(model, mini[1], plan, tmp_out / "q.pth")
    other = dict(preset_info("fmnist-mini").kwargs, embed_dim=32)
    info = ModelInfo("other", "SwinTransformer", other, 28, 1, 10, (0.286,), (0.353,))
    with pytest.raises(ValueError, match="different architecture.*layers"):
        restore_quantized(build_model(info), path)


def test_float_checkpoint_is_not_a_quantized_one(tmp_out):
    from trt_swin.models import CHECKPOINT_DIR

    with pytest.raises(ValueError, match="not a quantized checkpoint"):
        load_quantized(CHECKPOINT_DIR / "fmnist-mini.safetensors")
