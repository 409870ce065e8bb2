"""Native engine on CPU: the whole runtime through the ops' PyTorch references, the file format and its error paths.

Numerical bounds (measured on the committed fmnist-mini, 16 test images; margin in brackets):
- FP16 engine vs the FP32 timm model: rel-L2 of logits 7e-4 (bound 5e-3), top-1 agreement 100 % (bound 100 %);
- INT8 / FP8 engine vs the ModelOpt fake-quantized model with the same scales: rel-L2 1.1e-2 - 1.7e-2 (bound 5e-2:
  INT8 rounding flips from float16 storage, same size as the quantization noise itself), agreement 100 % (>= 93.75 %).
"""
from __future__ import annotations

import copy
import json
import struct
from pathlib import Path

import pytest
import torch

from trt_swin.engines import load
from trt_swin.engines.native import (BuildConfig, EngineFormatError, NativeEngine, build_native_engine, calibrate_max,
                                     check_compatible, device_info, load_native, read_engine, save_engine)
from trt_swin.engines.native._format import META_KEY

from engine_test_utils import rel_l2

RECIPE_OF = {"int8": "int8", "int8-fc2-pm-int32": "int8", "fp8": "fp8"}


@pytest.fixture(scope="module")
def scales_of(mini):
    """Max-calibrated scales per recipe, computed once."""
    model, _, _, calib, _ = mini
    cache: dict[str, dict] = {}

    def get(recipe: str) -> dict:
        if recipe not in cache:
            cache[recipe] = calibrate_max(model, calib, recipe)
        return cache[recipe]
    return get


def _engine(model, info, precision, scales=None, recipe=None, **kw) -> NativeEngine:
    plan, tensors, build = build_native_engine(model, BuildConfig(precision, max_batch=16, recipe=recipe, **kw), scales,
                                               model_info=info.to_dict())
    return NativeEngine({"config": plan, "build": build}, tensors, "cpu")


@pytest.fixture(scope="module")
def mini_fp16_file(mini, tmp_path_factory) -> Path:
    model, info, *_ = mini
    plan, tensors, build = build_native_engine(model, BuildConfig("fp16", max_batch=4), model_info=info.to_dict())
    return save_engine(tmp_path_factory.mktemp("eng") / "fmnist-mini-fp16.engine", plan, tensors, build)


@pytest.mark.parametrize("gelu", ["erf", "tanh"])
def test_fp16_engine_matches_timm(mini, gelu):
    model, info, images, _, ref = mini
    out = _engine(model, info, "fp16", gelu=gelu)(images)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    assert rel_l2(out, ref) < 5e-3
    assert bool((out.argmax(1) == ref.argmax(1)).all())


@pytest.mark.parametrize("fused_attention_max_c", [0, 192])
@pytest.mark.parametrize("fused_mlp_max_c", [0, 128])
def test_fused_paths_match_the_unfused_path(mini, fused_mlp_max_c, fused_attention_max_c, monkeypatch):
    """fmnist-mini's stages with C = 64 and 128 take the fused MLP and the fused attention half (the unfused kernels
    with 0); every combination gives timm's logits."""
    import trt_swin.engines.native.runtime as rt

    model, info, images, _, ref = mini
    calls = {"mlp": [], "attn": []}
    real_mlp, real_attn = rt.fused_mlp_, rt.fused_attention_
    monkeypatch.setattr(rt, "fused_mlp_", lambda *a, **k: calls["mlp"].append(a[0].shape) or real_mlp(*a, **k))
    monkeypatch.setattr(rt, "fused_attention_",
                        lambda *a, **k: calls["attn"].append(a[0].shape) or real_attn(*a, **k))
    eng = _engine(model, info, "fp16", fused_mlp_max_c=fused_mlp_max_c, fused_attention_max_c=fused_attention_max_c)
    out = eng(images[:4])
    assert rel_l2(out, ref[:4]) < 5e-3 and bool((out.argmax(1) == ref[:4].argmax(1)).all())
    # two blocks each at C = 64 and C = 128; none at C = 256
    assert len(calls["mlp"]) == (4 if fused_mlp_max_c else 0)
    assert len(calls["attn"]) == (4 if fused_attention_max_c else 0)


def test_patch_merge_in_one_kernel_matches_the_two_kernel_path(mini, monkeypatch):
    """The Hopper path of stage 1's patch merging (patch_merge_gemm, the norm folded into the reduction), here on its
    CPU reference: fmnist-mini's one foldable merging (14 x 14, C 64; stage 2's 7 x 7 map is odd and C 128) gives the
    two-kernel path's logits and timm's."""
    import trt_swin.engines.native.runtime as rt

    model, info, images, _, ref = mini
    calls = []
    real = rt.patch_merge_gemm
    monkeypatch.setattr(rt, "patch_merge_gemm", lambda *a: calls.append(a[0].shape) or real(*a))
    monkeypatch.setattr(rt, "HOPPER_MERGE_MIN_TOKENS", 4 * 7 * 7)  # from this batch of 4
    eng = _engine(model, info, "fp16")
    assert not eng.merge_folds  # CPU: not a Hopper engine
    default, default3 = eng(images[:4]), eng(images[:3])
    eng._prepare_merge_folds()
    assert list(eng.merge_folds) == ["layers.1.downsample.reduction"]
    out = eng(images[:4])
    assert calls == [(4, 14, 14, 64)]
    assert torch.equal(eng(images[:3]), default3) and len(calls) == 1  # below the bound: the two kernels
    assert rel_l2(out, default) < 2e-3
    assert rel_l2(out, ref[:4]) < 5e-3 and bool((out.argmax(1) == ref[:4].argmax(1)).all())


def test_fused_attention_needs_timms_mask(mini):
    """An engine whose stored shift mask is not the one the fused kernel derives runs the unfused attention."""
    model, info, *_ = mini
    plan, tensors, build = build_native_engine(model, BuildConfig("fp16", max_batch=4), model_info=info.to_dict())
    blk = plan["stages"][0]["blocks"][1]
    eng = NativeEngine({"config": plan, "build": build}, tensors, "cpu")
    assert blk["mask"] and eng._attention_fusable(blk, eng.fused_attention_max_c)
    tensors[blk["mask"]] = tensors[blk["mask"]].clone()
    tensors[blk["mask"]][0, 0, 1] = -100.0
    eng = NativeEngine({"config": plan, "build": build}, tensors, "cpu")
    assert not eng._attention_fusable(blk, eng.fused_attention_max_c) and blk["rel_bias"] + ":64" not in eng.t


def _fake_quantized(model, scales, recipe):
    from trt_swin.calibration.calibrators import apply_amax, insert_quantizers
    from trt_swin.quant import compile_plan

    fq = copy.deepcopy(model)
    insert_quantizers(fq, compile_plan(fq, recipe))
    modules = dict(fq.named_modules())
    amax = {}
    for name, e in scales.items():
        if e["enabled"]:
            a = torch.tensor(e["amax"], dtype=torch.float32)
            if e["axis"] == 0:  # per output channel: ModelOpt keeps amax broadcastable against the weight
                a = a.reshape(-1, *([1] * (modules[name.rsplit(".", 1)[0]].weight.dim() - 1)))
            amax[name] = a
    apply_amax(fq, amax)
    return fq.eval()


@pytest.mark.parametrize("recipe", ["int8", "int8-fc2-pm-int32", "fp8"])
def test_quantized_engine_matches_fake_quant_model(mini, scales_of, recipe):
    model, info, images, calib, _ = mini
    scales = scales_of(recipe)
    with torch.no_grad():
        ref = _fake_quantized(model, scales, recipe)(images)
    eng = _engine(model, info, RECIPE_OF[recipe], scales, recipe)
    modes = eng.build["gemm_modes"]
    assert modes.get(RECIPE_OF[recipe], 0) == 26  # qkv, proj, fc1, fc2 x 6 blocks + 2 reductions
    out = eng(images)
    assert rel_l2(out, ref) < 5e-2
    assert float((out.argmax(1) == ref.argmax(1)).float().mean()) >= 0.9375


def test_fc2_and_reduction_outputs_follow_the_recipe(mini, scales_of):
    model, info, *_ = mini
    mode1 = _engine(model, info, "int8", scales_of("int8"), "int8").plan
    mode2 = _engine(model, info, "int8", scales_of("int8-fc2-pm-int32"), "int8-fc2-pm-int32").plan
    fc2_1, fc2_2 = mode1["stages"][0]["blocks"][0]["fc2"], mode2["stages"][0]["blocks"][0]["fc2"]
    red_1, red_2 = mode1["stages"][1]["downsample"]["gemm"], mode2["stages"][1]["downsample"]["gemm"]
    assert fc2_1["out_qdq"] and red_1["out_qdq"]  # int8_mode 1: INT8 outputs, dequantized for the residual stream
    assert fc2_2["out_scale"] is None and red_2["out_scale"] is None  # int8_mode 2: INT32 -> FP16 directly
    qkv = mode1["stages"][0]["blocks"][0]["qkv"]
    assert qkv["out_scale"] is not None and not qkv["out_qdq"]  # INT8 q/k/v straight into the attention kernel


def test_attention_scale_folded_only_in_float_gemms(mini, scales_of):
    model, info, *_ = mini
    fp16 = _engine(model, info, "fp16").plan["stages"][0]["blocks"][0]
    int8 = _engine(model, info, "int8", scales_of("int8"), "int8").plan["stages"][0]["blocks"][0]
    assert fp16["attn_scale"] == 1.0 and fp16["qkv"]["q_scale_folded"]
    assert int8["attn_scale"] == pytest.approx(32 ** -0.5) and "q_scale_folded" not in int8["qkv"]


@pytest.mark.parametrize("batch", [1, 3])
def test_dynamic_batch_gives_per_image_results(mini, mini_fp16_file, batch):
    _, _, images, _, _ = mini
    eng = load(mini_fp16_file, device="cpu")
    full = eng(images[:4])
    part = eng(images[:batch])
    assert torch.allclose(part, full[:batch], atol=1e-5, rtol=1e-5)


def test_random_swin_t_fp16_engine_matches_timm():
    from trt_swin.models import load_model

    torch.manual_seed(0)
    model, info = load_model("swin_tiny_patch4_window7_224", num_classes=10)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        ref = model(x)
    out = _engine(model, info, "fp16")(x)
    assert rel_l2(out, ref) < 1e-2


def test_round_trip(mini, mini_fp16_file):
    model, info, images, _, _ = mini
    doc, tensors = read_engine(mini_fp16_file)
    assert doc["build"]["precision"] == "fp16" and doc["build"]["max_batch"] == 4
    assert doc["config"]["model"]["name"] == info.name
    for key in ("gpu", "compute_capability", "cuda", "torch", "trt_swin", "timm", "recipe"):
        assert key in doc["build"]
    plan, tensors2, _ = build_native_engine(model, BuildConfig("fp16", max_batch=4), model_info=info.to_dict())
    assert json.loads(json.dumps(plan)) == doc["config"] and sorted(tensors) == sorted(tensors2)
    assert all(torch.equal(tensors[k], tensors2[k]) for k in tensors)
    eng = load(mini_fp16_file, device="cpu")
    direct = NativeEngine({"config": plan, "build": doc["build"]}, tensors2, "cpu")
    assert torch.equal(eng(images[:2]), direct(images[:2]))


def test_loads_without_timm(mini_fp16_file, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "timm", None)  # any `import timm` now raises ImportError
    monkeypatch.setitem(sys.modules, "timm.models", None)
    eng = load_native(mini_fp16_file, device="cpu")
    assert eng(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


# ---- error paths ------------------------------------------------------------------------------------------------

def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load(tmp_path / "nope.engine", device="cpu")


def test_truncated_file(mini_fp16_file, tmp_path):
    data = mini_fp16_file.read_bytes()
    bad = tmp_path / "truncated.engine"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(EngineFormatError, match="truncated or corrupt"):
        load(bad, device="cpu")


def test_corrupt_payload(mini_fp16_file, tmp_path):
    data = bytearray(mini_fp16_file.read_bytes())
    data[-100] ^= 0xFF  # inside the tensor data: the header still parses
    bad = tmp_path / "corrupt.engine"
    bad.write_bytes(bytes(data))
    with pytest.raises(EngineFormatError, match="content hash"):
        load(bad, device="cpu")


def _rewrite_doc(src: Path, dst: Path, edit) -> Path:
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    doc = json.loads(meta[META_KEY])
    edit(doc)
    save_file(tensors, str(dst), metadata={META_KEY: json.dumps(doc)})
    return dst


def test_other_format_version(mini_fp16_file, tmp_path):
    bad = _rewrite_doc(mini_fp16_file, tmp_path / "v99.engine", lambda d: d.update(format="trt_swin.native-engine/99"))
    with pytest.raises(EngineFormatError, match="native-engine/99.*Rebuild"):
        load(bad, device="cpu")


def test_not_an_engine(tmp_path):
    from safetensors.torch import save_file

    p = tmp_path / "weights.safetensors"
    save_file({"w": torch.zeros(2)}, str(p))
    with pytest.raises(EngineFormatError, match="not a trt_swin native engine"):
        load(p, device="cpu")


def test_other_compute_capability():
    built = {**device_info(), "gpu": "NVIDIA H100 80GB HBM3", "compute_capability": [9, 0]}
    here = {**device_info(), "gpu": "NVIDIA A100-SXM4-80GB", "compute_capability": [8, 0]}
    with pytest.raises(EngineFormatError, match="sm_90.*this GPU is sm_80.*Rebuild"):
        check_compatible(built, here, "x.engine")
    check_compatible(built, {**here, "compute_capability": [9, 0]})  # same GPU: fine


@pytest.mark.parametrize("key", ["torch", "cuda", "trt_swin"])
def test_incompatible_versions(key):
    built = {**device_info(), key: "1.0.0"}
    here = {**device_info(), key: "2.0.0"}
    with pytest.raises(EngineFormatError, match="major versions differ"):
        check_compatible(built, here)


def test_batch_above_max(mini_fp16_file):
    eng = load(mini_fp16_file, device="cpu")
    with pytest.raises(ValueError, match="batch 5 exceeds the engine's max batch 4.*--max-batch"):
        eng(torch.zeros(5, 1, 28, 28))


@pytest.mark.parametrize("shape", [(2, 3, 28, 28), (2, 1, 32, 32), (1, 28, 28)])
def test_wrong_image_shape(mini_fp16_file, shape):
    eng = load(mini_fp16_file, device="cpu")
    with pytest.raises(ValueError, match=r"takes images \[B, 1, 28, 28\]"):
        eng(torch.zeros(shape))


def test_int8_needs_scales(mini):
    model, info, *_ = mini
    with pytest.raises(ValueError, match="needs calibrated scales"):
        build_native_engine(model, BuildConfig("int8"))


def test_bad_build_config():
    with pytest.raises(ValueError, match="precision must be"):
        BuildConfig("int4")
    with pytest.raises(ValueError, match="max_batch"):
        BuildConfig("fp16", max_batch=0)
    with pytest.raises(ValueError, match=r"fused_attention_max_c must be in 0\.\.192"):
        BuildConfig("fp16", fused_attention_max_c=256)


# ---- CLI -----------------------------------------------------------------------------------------------------------

def test_cli_build_and_eval(tmp_path, capsys):
    from trt_swin.cli import main

    out = tmp_path / "fmnist-mini-int8.engine"
    assert main(["build-engine", "--model", "fmnist-mini", "--precision", "int8", "--calib-images", "32",
                 "--max-batch", "8", "-o", str(out), "--device", "cpu"]) == 0
    assert out.exists()
    report = tmp_path / "eval.json"
    assert main(["eval", "--model", "fmnist-mini", "--engine", str(out), "--limit", "16", "--device", "cpu",
                 "--batch-size", "8", "--json", str(report)]) == 0
    res = json.loads(report.read_text())["engines"][str(out)]
    assert res["n"] == 16 and res["agreement"] >= 87.5


def test_cli_int8_without_scales_is_a_clear_error(tmp_path, capsys):
    from trt_swin.cli import main

    assert main(["build-engine", "--model", "fmnist-mini", "--precision", "int8", "-o", str(tmp_path / "x.engine"),
                 "--device", "cpu"]) == 2
    assert "needs calibrated scales" in capsys.readouterr().err


@pytest.mark.parametrize("choice,device,triton_installed,expected", [
    ("auto", "cpu", True, "cuda"),        # CPU engines run the op's reference
    ("triton", "cpu", False, "cuda"),
    ("cuda", "cuda:0", True, "cuda"),
    ("auto", "cuda:0", False, "cuda"),    # no Triton: the CUDA kernel, silently (auto promises nothing more)
    ("triton", "cuda:0", True, "triton"),
])
def test_mlp_kernel_resolution(monkeypatch, choice, device, triton_installed, expected):
    import importlib.util

    from trt_swin.engines.native.runtime import resolve_fused_kernel

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (real(name, *a) if triton_installed else None) if name == "triton" else real(name, *a))
    if triton_installed and importlib.util.find_spec("triton") is None:
        pytest.skip("triton is not installed")
    assert resolve_fused_kernel(choice, torch.device(device)) == expected


def test_mlp_kernel_errors(monkeypatch):
    import importlib.util

    from trt_swin.engines.native.runtime import resolve_fused_kernel

    with pytest.raises(ValueError, match="unknown mlp_kernel 'cutlass'"):
        resolve_fused_kernel("cutlass", torch.device("cuda:0"), "x.engine")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(RuntimeError, match="built with mlp_kernel='triton' but Triton is not installed"):
        resolve_fused_kernel("triton", torch.device("cuda:0"), "x.engine")
    with pytest.raises(ValueError, match="mlp_kernel must be 'auto', 'cuda' or 'triton'"):
        BuildConfig(mlp_kernel="cutlass")
    # the attention kernel option goes through the same resolution, its errors naming it
    with pytest.raises(RuntimeError, match=r"built with attention_kernel='triton'.*--attention-kernel cuda"):
        resolve_fused_kernel("triton", torch.device("cuda:0"), "x.engine", "attention_kernel")
    with pytest.raises(ValueError, match="attention_kernel must be 'auto', 'cuda' or 'triton'"):
        BuildConfig(attention_kernel="cutlass")


_INTERPRET_BATCH1 = """
import torch
import trt_swin.engines.native.runtime as rt
from trt_swin import data as data_mod
from trt_swin.engines.native import BuildConfig, NativeEngine, build_native_engine
from trt_swin.models import load_model

calls = {"ln_gemm": 0, "window_reverse": 0}
for name, key in (("ln_gemm_triton", "ln_gemm"), ("gemm_window_reverse_triton", "window_reverse")):
    real = getattr(rt, name)
    setattr(rt, name, lambda *a, _real=real, _key=key: calls.__setitem__(_key, calls[_key] + 1) or _real(*a))
model, info = load_model("fmnist-mini")
ds = data_mod.build_dataset(None, "test", info)
images = torch.stack([ds[i][0] for i in range(3)])
with torch.no_grad():
    ref = model(images)
plan, tensors, build = build_native_engine(model, BuildConfig("fp16", max_batch=4, gelu="tanh", fused_mlp_max_c=0,
                                                              fused_attention_max_c=0), model_info=info.to_dict())
eng = NativeEngine({"config": plan, "build": build}, tensors, "cpu")
assert eng.ln_gemm_max_batch == 0 and not eng.folds  # CPU: the reference ops only
default = torch.cat([eng(images[i:i + 1]) for i in range(3)])
default3 = eng(images)
eng.ln_gemm_max_batch = 1  # the batch-1 path, its Triton kernels under the interpreter
eng._prepare_folds()
blocks = sum(len(st["blocks"]) for st in plan["stages"])
assert len(eng.folds) == 2 * blocks, (len(eng.folds), blocks)
out = torch.cat([eng(images[i:i + 1]) for i in range(3)])
assert calls == {"ln_gemm": 6 * blocks, "window_reverse": 3 * blocks}, calls
assert torch.equal(eng(images), default3)  # batch 3: the default path
rel = lambda a, b: ((a - b).norm() / b.norm()).item()
assert bool((out.argmax(1) == ref.argmax(1)).all())
print(max(rel(out, ref), rel(out, default)))
"""


def test_batch1_path_matches_the_default_path():
    """At batch 1 (where the Triton kernels run) unfused blocks take the row-gathered GEMMs (plugins/ln_gemm): QKV
    and FC1 with their LayerNorms folded in, proj + window reverse + residual. On CPU, with those kernels under
    Triton's interpreter and every other op's reference: the fmnist-mini logits vs the default path and vs timm."""
    pytest.importorskip("triton")
    import os
    import subprocess
    import sys

    env = dict(os.environ, TRITON_INTERPRET="1", TRT_SWIN_TRITON_CPU="1")
    r = subprocess.run([sys.executable, "-c", _INTERPRET_BATCH1], env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    worst = float(r.stdout.strip().splitlines()[-1])
    assert worst < 5e-3, f"rel-L2 {worst:.2e} against timm / the default path"
