"""Q/DQ ONNX export: onnxruntime matches the fake-quantized PyTorch model, the opset and Q/DQ types are right, and
under int8-fc2-pm-int32 no QuantizeLinear sits directly on an FC2 or PatchMerge (reduction) GEMM output."""
from __future__ import annotations

import fnmatch
import warnings

import onnx
import pytest

from trt_swin.quant.onnx_export import export_onnx, qdq_counts, quantized_gemm_outputs, scope_to_module, verify_onnx

N_CHECK = 256  # test images compared between onnxruntime and PyTorch


@pytest.fixture(scope="module")
def exported(ptq_models, test_batches, tmp_path_factory):
    paths = {}

    def get(recipe):
        if recipe not in paths:
            model, _ = ptq_models(recipe)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                paths[recipe] = export_onnx(model, tmp_path_factory.mktemp(recipe) / "m.onnx", test_batches[0][:2])
        return paths[recipe]

    return get


@pytest.mark.parametrize("recipe", ["int8", "int8-fc2-pm-int32", "fp8"])
def test_onnxruntime_matches_fake_quant(trained, ptq_models, exported, test_batches, recipe):
    model, plan = ptq_models(recipe)
    res = verify_onnx(exported(recipe), model, test_batches[0][:N_CHECK])
    # Measured on fmnist-mini: cosine >= 0.9999x and 100% agreement; differences come from ModelOpt's narrow INT8
    # range and x*127/amax vs ONNX x/scale rounding.
    assert res["cosine"] >= 0.999, res
    assert res["agreement"] >= 99.0, res
    assert res["max_abs_diff"] <= 0.05 * res["ref_max_abs"], res
    # One Q/DQ pair per enabled quantizer.
    assert qdq_counts(exported(recipe)) == {"QuantizeLinear": len(plan.enabled), "DequantizeLinear": len(plan.enabled)}


@pytest.mark.parametrize("recipe, opset, zp_type", [("int8", 17, onnx.TensorProto.INT8),
                                                     ("fp8", 21, onnx.TensorProto.FLOAT8E4M3FN)])
def test_opset_and_qdq_types(exported, recipe, opset, zp_type):
    m = onnx.load(str(exported(recipe)))
    assert next(o.version for o in m.opset_import if o.domain == "") == opset
    assert not [n for n in m.graph.node if n.domain == "trt"]
    inits = {i.name: i for i in m.graph.initializer}
    consts = {o: n for n in m.graph.node if n.op_type == "Constant" for o in n.output}
    qs = [n for n in m.graph.node if n.op_type == "QuantizeLinear"]
    assert qs
    for q in qs:
        zp = q.input[2]
        t = inits[zp].data_type if zp in inits else consts[zp].attribute[0].t.data_type
        assert t == zp_type, q.name


def _outputs(path) -> dict[str, bool]:
    return {scope_to_module(k): v for k, v in quantized_gemm_outputs(path).items()}


FC2_PM = ("layers.*.blocks.*.mlp.fc2", "layers.*.downsample.reduction")


@pytest.mark.parametrize("recipe, fc2_pm_quantized", [("int8-fc2-pm-int32", False), ("int8", True)])
def test_fc2_and_patch_merge_outputs(exported, recipe, fc2_pm_quantized):
    out = _outputs(exported(recipe))
    fc2_pm = {k: v for k, v in out.items() if any(fnmatch.fnmatchcase(k, p) for p in FC2_PM)}
    assert len(fc2_pm) == 6 + 2  # 6 blocks, 2 patch merges in fmnist-mini
    assert all(v == fc2_pm_quantized for v in fc2_pm.values()), fc2_pm
    # Positive control in both recipes: qkv and proj do write INT8 (a Q right after the GEMM + bias).
    qkv_proj = {k: v for k, v in out.items() if k.endswith(("attn.qkv", "attn.proj"))}
    assert len(qkv_proj) == 12 and all(qkv_proj.values()), qkv_proj
    assert out["head.fc"] is False and all(v is False for k, v in out.items() if k.endswith("mlp.fc1"))


def test_old_opset_refused(ptq_models, test_batches, tmp_path):
    model, _ = ptq_models("fp8")
    with pytest.raises(ValueError, match="too old for FP8"):
        export_onnx(model, tmp_path / "x.onnx", test_batches[0][:2], opset=17)
