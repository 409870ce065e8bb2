"""TensorRT builder and runner. The `trt` tests need TensorRT (hence a GPU) and the built plugin library
(`python -m trt_swin.plugins.build --tensorrt <root>`); without TensorRT they skip with "TensorRT not installed".
The option checks and the missing-TensorRT message run everywhere."""
from __future__ import annotations

import builtins
import json

import pytest
import torch

from trt_swin.engines.tensorrt import build_plan, load_plan
from trt_swin.engines.tensorrt.builder import check_build_args

BATCH = dict(max_batch=8, opt_batch=4, workspace_gb=2.0, timing_cache=None, plugin_lib=None)


@pytest.fixture
def no_tensorrt(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "tensorrt" or name.startswith("tensorrt."):
            raise ImportError("No module named 'tensorrt'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_build_without_tensorrt_says_how_to_install(no_tensorrt, tmp_path):
    with pytest.raises(RuntimeError, match=r"pip install 'trt_swin\[tensorrt\]'"):
        build_plan("fmnist-mini", quantized=None, precision="fp16", output=tmp_path / "m.plan", **BATCH)
    assert not (tmp_path / "m.plan").exists()


def test_load_plan_without_tensorrt_says_how_to_install(no_tensorrt, tmp_path):
    with pytest.raises(RuntimeError, match=r"pip install 'trt_swin\[tensorrt\]'"):
        load_plan(tmp_path / "m.plan")


@pytest.mark.parametrize("precision, formats, batches, match", [
    ("bf16", set(), (8, 4), "must be one of"),
    ("int8", set(), (8, 4), "needs a checkpoint quantized to int8"),
    ("fp8", {"int8"}, (8, 4), "needs a checkpoint quantized to fp8"),
    ("fp16", {"int8"}, (8, 4), "use --precision int8"),
    ("fp16", set(), (4, 8), "opt batch"),
])
def test_inconsistent_options_are_refused(precision, formats, batches, match):
    with pytest.raises(ValueError, match=match):
        check_build_args(precision, formats, batches[0], batches[1], 1.0)


@pytest.fixture(scope="module")
def mini_int8_checkpoint(tmp_path_factory):
    """A calibrated int8-fc2-pm-int32 checkpoint of fmnist-mini (written with trt_swin.quant)."""
    from trt_swin.calibration.calibrators import calibrate, insert_quantizers
    from trt_swin.data import build_dataset, build_loader
    from trt_swin.models import load_model
    from trt_swin.quant.checkpoint import save_quantized
    from trt_swin.quant.rules import compile_plan

    model, info = load_model("fmnist-mini")
    plan = compile_plan(model, "int8-fc2-pm-int32")
    insert_quantizers(model, plan)
    calibrate(model, plan, build_loader(build_dataset(None, "train", info), 64, limit=128), progress=False)
    return save_quantized(model, info, plan, tmp_path_factory.mktemp("q") / "mini_int8.pth")


def _test_images(n: int = 64):
    from trt_swin.data import build_dataset, build_loader
    from trt_swin.models import load_model

    info = load_model("fmnist-mini")[1]
    return next(iter(build_loader(build_dataset(None, "test", info), n, limit=n)))[0]


@pytest.mark.trt
@pytest.mark.parametrize("plugins", [True, False], ids=["plugins", "plain"])
def test_fp16_plan_matches_pytorch(plugins, tmp_path):
    from trt_swin.models import load_model

    plan = build_plan("fmnist-mini", quantized=None, precision="fp16", output=tmp_path / "mini.plan",
                      use_plugins=plugins, **{**BATCH, "timing_cache": str(tmp_path / "cache.bin")})
    meta = json.loads(plan.with_suffix(".json").read_text())
    assert meta["batch"] == {"min": 1, "opt": 4, "max": 8} and meta["plugins"] is plugins
    assert (tmp_path / "cache.bin").stat().st_size > 0
    run = load_plan(plan)
    images = _test_images(8)
    with torch.no_grad():
        ref = load_model("fmnist-mini")[0](images)
    for batch in (1, 3, 8):  # the dynamic-batch profile
        out = run(images[:batch]).cpu()
        assert out.shape == ref[:batch].shape
        assert torch.allclose(out, ref[:batch], atol=0.02 * float(ref.abs().max())), (out - ref[:batch]).abs().max()


@pytest.mark.trt
def test_int8_plan_matches_onnxruntime(mini_int8_checkpoint, tmp_path):
    from trt_swin.engines.tensorrt.ort_verify import compare, run_ort

    plan = build_plan(None, quantized=str(mini_int8_checkpoint), precision="int8", output=tmp_path / "mini_int8.plan",
                      **BATCH)
    images = _test_images(8)
    res = compare(run_ort(plan.with_suffix(".onnx"), images), load_plan(plan)(images).cpu())
    assert res["cosine"] >= 0.999 and res["agreement"] >= 87.5, res


@pytest.mark.trt
def test_batch_over_profile_is_refused(tmp_path):
    plan = build_plan("fmnist-mini", quantized=None, precision="fp16", output=tmp_path / "m.plan", **BATCH)
    with pytest.raises(ValueError, match="exceeds the plan's max batch 8"):
        load_plan(plan)(torch.zeros(9, 1, 28, 28))
