"""Run a deploy ONNX (plugin nodes) on onnxruntime's CPU provider, the plugins stood in by custom ops that call the
PyTorch references (onnxruntime-extensions Python ops), and compare it with the PyTorch model.

onnxruntime-extensions binds a Python op to one op_type with fixed input / output types and only in the domain
`ai.onnx.contrib` (trt_notes 4.4), so the verifier works on an in-memory copy of the graph whose plugin nodes are
renamed `<plugin>__<signature>` (the signature follows from the node's int8 flags and its input count) and moved to
that domain. Those Python ops cannot take float16 tensors, so in the copy each float16 plugin input / output passes
through a Cast to / from float32 (lossless both ways); the op casts back to float16 before calling the reference.
The file given to TensorRT is not changed.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .export import INPUT_NAME, plugin_nodes
from .plugin_specs import all_specs
from .references import run_plugin

ORT_DOMAIN = "ai.onnx.contrib"
_REGISTERED: set[str] = set()
_ORT_TYPE = {"float16": "float32", "float32": "float32", "int8": "int8"}  # what crosses the Python op boundary


def _signature(spec, n_inputs: int, values: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(input dtypes, output dtypes) of a plugin node, as numpy names."""
    op = spec.op
    if op == "window_attention":
        ins = ["int8" if values["qkv_int8"] else "float16"] + ["float32"] * (n_inputs - 1)
        outs = ["int8" if values["out_int8"] else "float16"]
    elif op == "window_reverse":
        ins = ["int8" if values["y_int8"] else "float16", "float16"] + ["float32"] * (n_inputs - 2)
        outs = ["float16"] + (["int8" if values["ln_out_int8"] else "float16"] if values["has_ln"] else [])
    else:
        ins = ["float16", "float32", "float32"]
        outs = ["int8" if values["out_int8"] else "float16"]
    return ins, outs


def _register(op_type: str, spec, ins: list[str], outs: list[str]) -> None:
    if op_type in _REGISTERED:
        return
    try:
        from onnxruntime_extensions import PyCustomOpDef, onnx_op
    except ImportError as e:  # pragma: no cover - a dependency of the package
        raise RuntimeError("onnxruntime-extensions is needed to run plugin graphs on onnxruntime: "
                           "pip install onnxruntime-extensions") from e
    dt = {"float16": PyCustomOpDef.dt_float, "float32": PyCustomOpDef.dt_float, "int8": PyCustomOpDef.dt_int8}
    attrs = {k: PyCustomOpDef.dt_int64 if f["type"] == "int" else PyCustomOpDef.dt_float for k, f in spec.fields.items()}
    attrs.update(plugin_version=PyCustomOpDef.dt_string, plugin_namespace=PyCustomOpDef.dt_string)

    def compute(*arrays, **values):
        tensors = [torch.from_numpy(np.ascontiguousarray(a, dtype=t)) for a, t in zip(arrays, ins)]
        with torch.no_grad():
            outputs = run_plugin(spec.op, values, tensors)
        res = tuple(o.cpu().numpy().astype(_ORT_TYPE[t], copy=False) for o, t in zip(outputs, outs))
        return res if len(res) > 1 else res[0]

    onnx_op(op_type=op_type, inputs=[dt[t] for t in ins], outputs=[dt[t] for t in outs], attrs=attrs)(compute)
    _REGISTERED.add(op_type)


def ort_model(onnx_model):
    """A copy of `onnx_model` whose plugin nodes are onnxruntime-extensions Python ops (see module docstring)."""
    from onnx import helper

    from .plugin_specs import decode_fields, parser_fields

    from onnx import TensorProto

    m = copy.deepcopy(onnx_model)
    specs = all_specs()
    nodes = []
    for n in m.graph.node:
        if n.op_type not in specs:
            nodes.append(n)
            continue
        spec = specs[n.op_type]
        values = decode_fields(parser_fields(n, spec))
        ins, outs = _signature(spec, len(n.input), values)
        op_type = f"{n.op_type}__{'_'.join(ins)}__{'_'.join(outs)}"
        _register(op_type, spec, ins, outs)
        n.op_type, n.domain = op_type, ORT_DOMAIN
        after = []
        for i, t in enumerate(ins):
            if t == "float16":
                name = f"{n.input[i]}__{n.name}__f32"
                nodes.append(helper.make_node("Cast", [n.input[i]], [name], to=TensorProto.FLOAT, name=name))
                n.input[i] = name
        for i, t in enumerate(outs):
            if t == "float16":
                name = f"{n.output[i]}__f32"
                after.append(helper.make_node("Cast", [name], [n.output[i]], to=TensorProto.FLOAT16, name=name + "_cast"))
                n.output[i] = name
        nodes += [n] + after
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    if not any(o.domain == ORT_DOMAIN for o in m.opset_import):
        m.opset_import.append(helper.make_opsetid(ORT_DOMAIN, 1))
    return m


def ort_session(path_or_model, optimize: bool = False):
    """An onnxruntime CPU session of a deploy (or plain) ONNX. `optimize=False` keeps Q/DQ reference semantics
    (onnxruntime's fusions would change INT8 rounding and reject FP8 MatMul fusions)."""
    import onnx
    import onnxruntime as ort
    from onnxruntime_extensions import get_library_path

    m = onnx.load(str(path_or_model)) if isinstance(path_or_model, (str, Path)) else path_or_model
    m = ort_model(m)
    opts = ort.SessionOptions()
    opts.register_custom_ops_library(get_library_path())
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def run_ort(path_or_model, images: torch.Tensor) -> torch.Tensor:
    """Logits [B, classes] float32 of the ONNX model on onnxruntime (plugins by the PyTorch references)."""
    sess = ort_session(path_or_model)
    return torch.from_numpy(sess.run(None, {INPUT_NAME: images.detach().cpu().float().numpy()})[0])


def compare(ref: torch.Tensor, out: torch.Tensor) -> dict[str, float]:
    """max |diff|, max |ref|, mean cosine per row, top-1 agreement (%)."""
    ref, out = ref.float(), out.float()
    return {"max_abs_diff": float((ref - out).abs().max()), "ref_max_abs": float(ref.abs().max()),
            "cosine": float(torch.nn.functional.cosine_similarity(ref, out, dim=1).mean()),
            "agreement": 100.0 * float((ref.argmax(1) == out.argmax(1)).float().mean()), "n": len(ref)}


def verify(path: str | Path, model: torch.nn.Module, images: torch.Tensor) -> dict[str, float]:
    """Run the exported graph on onnxruntime and compare with `model` (the PyTorch model it came from) on `images`."""
    with torch.no_grad():
        ref = model(images.float()).float()
    return compare(ref, run_ort(path, images))
