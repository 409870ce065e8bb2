"""Plugin fields: ONNX attribute -> PluginField (the TensorRT parser's mapping) -> C++ creator -> serialized plan
fields -> runtime creator, without a TensorRT runtime.

The Python half runs in CI. The C++ half compiles plugins/tensorrt/tools/field_roundtrip.cpp with the plugin sources
against TensorRT headers (TensorRT_ROOT: a TensorRT install, or the include/ of the public NVIDIA/TensorRT
repository) and skips without them.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import onnx
import pytest
import torch
from onnx import helper

from trt_swin.engines.tensorrt.export import export_model, plugin_nodes
from trt_swin.engines.tensorrt.plugin_specs import (PLUGIN_OPS, PluginAttributeError, all_specs, decode_fields,
                                                   parser_fields, plugin_spec)
from trt_swin.models import load_model

REPO = Path(__file__).resolve().parents[2]
CUDA_HOME = Path(os.environ.get("CUDA_HOME", "/usr/local/cuda"))


@pytest.fixture(scope="module")
def mini_graph(tmp_path_factory):
    model, info = load_model("fmnist-mini")
    path = export_model(model, tmp_path_factory.mktemp("g") / "m.onnx", torch.zeros(1, 1, 28, 28))
    return onnx.load(str(path))


@pytest.mark.parametrize("op", PLUGIN_OPS)
def test_attributes_round_trip_through_parser_types(op):
    spec = plugin_spec(op)
    values = {k: (3 if f["type"] == "int" else 0.125) for k, f in spec.fields.items()}
    node = helper.make_node(spec.name, ["x"], ["y"], name="n", domain="trt.plugins", **spec.attributes(**values))
    fields = parser_fields(node, spec)
    assert sorted((n, t) for n, t, _ in fields) == sorted((k, "kINT32" if f["type"] == "int" else "kFLOAT32")
                                                          for k, f in spec.fields.items())
    assert decode_fields(fields) == values
    assert {a.name: helper.get_attribute_value(a) for a in node.attribute}["plugin_version"] == b"1"


@pytest.mark.parametrize("op", PLUGIN_OPS)
def test_bad_attributes_are_refused(op):
    spec = plugin_spec(op)
    with pytest.raises(PluginAttributeError, match="unknown fields"):
        spec.attributes(not_a_field=1)
    int_field = next(k for k, f in spec.fields.items() if f["type"] == "int")
    with pytest.raises(PluginAttributeError, match="must be an int32"):
        spec.attributes(**{int_field: 0.5})
    # An INT attribute where the creator wants a float would reach it as kINT32: refused at export / check time.
    float_field = next(k for k, f in spec.fields.items() if f["type"] == "float")
    node = helper.make_node(spec.name, ["x"], ["y"], name="n", **{float_field: 2})
    with pytest.raises(PluginAttributeError, match="expects float"):
        parser_fields(node, spec)


def _trt_include() -> Path | None:
    root = os.environ.get("TensorRT_ROOT") or os.environ.get("TRT_SWIN_TRT_INCLUDE")
    for cand in ([Path(root), Path(root) / "include"] if root else []) + [Path("/usr/include/x86_64-linux-gnu")]:
        if (cand / "NvInferRuntime.h").exists():
            return cand
    return None


@pytest.fixture(scope="module")
def harness(tmp_path_factory) -> Path:
    inc = _trt_include()
    if inc is None:
        pytest.skip("TensorRT headers not found (set TensorRT_ROOT to a TensorRT install or to the include/ of "
                    "the public NVIDIA/TensorRT repository)")
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None or not (CUDA_HOME / "include" / "cuda_runtime.h").exists():
        pytest.skip("a C++ compiler and the CUDA headers are needed to compile the plugins")
    exe = tmp_path_factory.mktemp("harness") / "field_roundtrip"
    srcs = [REPO / "plugins/tensorrt/tools/field_roundtrip.cpp", REPO / "plugins/tensorrt/registration.cpp",
            *sorted(REPO.glob("plugins/*/trt_plugin.cpp"))]
    cmd = [cxx, "-std=c++17", "-O0", "-Wno-deprecated-declarations", f"-I{inc}", f"-I{CUDA_HOME / 'include'}",
           f"-I{REPO / 'plugins'}", *map(str, srcs), f"-L{CUDA_HOME / 'lib64'}", "-lcudart",
           f"-Wl,-rpath,{CUDA_HOME / 'lib64'}", "-o", str(exe)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-4000:]
    return exe


def _run(exe: Path, lines: list[str], list_creators: bool = False) -> list[dict]:
    args = [str(exe)] + ([] if list_creators else ["--no-list"])
    res = subprocess.run(args, input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return [json.loads(l) for l in res.stdout.splitlines() if l.strip()]


def test_creators_match_plugin_yaml(harness):
    creators = {c["creator"]: c for c in _run(harness, [], list_creators=True) if "creator" in c}
    specs = all_specs()
    assert set(creators) == set(specs)
    for name, spec in specs.items():
        c = creators[name]
        assert (c["version"], c["namespace"]) == (spec.version, spec.namespace)
        assert [(f["name"], f["type"], f["length"]) for f in c["fields"]] == \
            [(k, "i" if f["type"] == "int" else "f", 1) for k, f in spec.fields.items()]


def _line(node, spec) -> str:
    vals = decode_fields(parser_fields(node, spec))
    toks = [f"{k}={'i' if spec.fields[k]['type'] == 'int' else 'f'}:{v!r}" for k, v in vals.items()]
    return " ".join([spec.name, str(len(node.input)), *toks])


def test_exported_nodes_round_trip_through_creators(harness, mini_graph):
    specs = all_specs()
    nodes = plugin_nodes(mini_graph)
    out = _run(harness, [_line(n, specs[n.op_type]) for n in nodes])
    assert len(out) == len(nodes)
    for node, r in zip(nodes, out):
        assert "error" not in r, (node.name, r)
        want = decode_fields(parser_fields(node, specs[node.op_type]))
        got = {f["name"]: f["value"] for f in r["built"]}
        assert got == pytest.approx(want, rel=1e-6)
        assert r["restored"] == r["built"] and r["cloned"] == r["built"]  # plan deserialization and clone
        assert r["nb_outputs"] == len(node.output)


def test_invalid_fields_are_refused_by_creators(harness):
    out = _run(harness, ["SwinLnShiftPartition_TRT 3 window_size=i:7 shift=f:3",      # float where int32 expected
                         "SwinPatchMerge_TRT 3 eps=f:0",                                # eps must be > 0
                         "SwinWindowAttention_TRT 2 num_heads=i:0 scale=f:0.2",         # no heads
                         "SwinWindowReverse_TRT 2 window_size=i:7 has_ln=i:0 ln_out_int8=i:1"])
    assert all(r.get("error") == "createPlugin refused the fields" for r in out), out


def test_output_types_follow_int8_fields(harness):
    out = _run(harness, ["SwinWindowAttention_TRT 3 num_heads=i:3 scale=f:0.17 qkv_int8=i:1 out_int8=i:1",
                         "SwinWindowReverse_TRT 4 window_size=i:7 shift=i:3 has_ln=i:1",
                         "SwinWindowReverse_TRT 2 window_size=i:7 has_ln=i:0"])
    kINT8, kHALF = 2, 1
    assert out[0]["out_types_int8_in"] == [kINT8]
    assert out[1]["out_types_fp16_in"] == [kHALF, kHALF] and out[1]["nb_outputs"] == 2
    assert out[2]["nb_outputs"] == 1
