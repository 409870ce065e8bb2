"""Swin (float or ModelOpt fake-quantized) -> ONNX for TensorRT: plugin nodes for the fused ops, Q/DQ per the recipe,
FP16 tensors where the model runs FP16, dynamic batch.

Route (see docs/tensorrt.md for why): the model is traced by the TorchScript exporter (`dynamo=False`, the only
exporter that handles ModelOpt's fake quant) in float32, with the plugin pieces as autograd functions whose
`symbolic` emits the plugin node (`symbolic.py`). An FP16 export then rewrites the float32 graph to float16: every
float initializer / constant / Cast target becomes float16 (so Q/DQ scales are float16 and DQ outputs float16, which
strongly typed TensorRT requires), except the float32 constants the plugins read (bias, mask, LayerNorm
parameters); graph input and output stay float32 behind Cast nodes.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .plugin_specs import PLUGIN_DOMAIN, PluginAttributeError, all_specs, parser_fields

INPUT_NAME, OUTPUT_NAME = "images", "logits"
DEFAULT_OPSET = 19        # float16 QuantizeLinear / DequantizeLinear scales need opset >= 19
FP8_OPSET = 21            # as trt_swin.quant: FP8 Q/DQ rewritten to standard ops with a FLOAT8E4M3FN zero point
PRECISIONS = ("fp16", "fp32")
META_PREFIX = "trt_swin."


@dataclass
class LoadedModel:
    model: nn.Module
    info: Any                   # trt_swin.models.ModelInfo
    quantized: str | None       # checkpoint path
    recipe: str | None
    quant_formats: set[str]     # {"int8"}, {"fp8"}, ... of the enabled quantizers


def load_for_export(model_spec: str | None, quantized: str | None = None) -> LoadedModel:
    """The model to export: a quantized checkpoint (`trt_swin quantize` output) when given, else the float model."""
    if quantized:
        from trt_swin.calibration.calibrators import iter_quantizers
        from trt_swin.quant import load_quantized
        from trt_swin.quant.checkpoint import read_quantized_sidecar

        model, info = load_quantized(quantized, "cpu")
        formats = {("fp8" if isinstance(q.num_bits, (tuple, list)) else f"int{q.num_bits}")
                   for _, q in iter_quantizers(model) if not q._disabled}
        return LoadedModel(model.eval(), info, str(quantized), read_quantized_sidecar(quantized).get("recipe"), formats)
    if not model_spec:
        raise ValueError("give a model (preset, timm name or checkpoint) or a quantized checkpoint")
    from trt_swin.models import load_model

    model, info = load_model(model_spec)
    return LoadedModel(model.eval(), info, None, None, set())


class _FloatIO(nn.Module):
    """images float32 [B, C, H, W] -> logits float32 [B, classes]."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images).float()


def export_model(model: nn.Module, output: str | Path, sample: torch.Tensor, *, precision: str = "fp16",
                 use_plugins: bool = True, opset: int | None = None, metadata: dict[str, Any] | None = None) -> Path:
    """Export `model` (timm Swin V1, float or fake-quantized, CPU) to `output`.

    Args:
        sample: an input batch [B, C, H, W] float32 (values do not matter; the batch axis is exported dynamic).
        precision: "fp16" (float16 graph, float32 I/O) or "fp32".
        use_plugins: fused plugin nodes; False exports plain ONNX ops (TensorRT's own fusions, for comparison).
        opset: default 19 (21 with FP8 quantizers).
    """
    import onnx

    from .deploy import deploy_model

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    fp8 = _has_fp8(model)
    opset = opset or (FP8_OPSET if fp8 else DEFAULT_OPSET)
    if opset < 19 and (precision == "fp16" or fp8):
        raise ValueError(f"opset {opset} is too old: float16 or FP8 Q/DQ need opset >= 19")
    if opset < 17:
        raise ValueError(f"opset {opset} is too old: LayerNormalization needs opset >= 17")
    net = deploy_model(model) if use_plugins else model
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript-exporter deprecation and tracer warnings
        torch.onnx.export(_FloatIO(net).eval(), (sample.float(),), str(output), dynamo=False,
                          opset_version=min(opset, 20), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                          custom_opsets={PLUGIN_DOMAIN: 1})
    m = onnx.load(str(output))
    if fp8:
        from trt_swin.quant.onnx_export import _rewrite_trt_fp8

        m = _rewrite_trt_fp8(m, opset)
    if precision == "fp16":
        m = to_float16(m)
    meta = {"precision": precision, "plugins": str(bool(use_plugins)).lower(), **(metadata or {})}
    for k, v in meta.items():
        m.metadata_props.add(key=META_PREFIX + k, value=v if isinstance(v, str) else json.dumps(v))
    onnx.checker.check_model(m)
    onnx.save(m, str(output))
    return output


def export_onnx(model_spec: str | None, *, quantized: str | None = None, precision: str = "fp16",
                use_plugins: bool = True, output: str | Path, opset: int | None = None, batch: int = 1) -> Path:
    """CLI entry point: load `model_spec` (or the quantized checkpoint `quantized`) and export it to `output`."""
    lm = load_for_export(model_spec, quantized)
    sample = torch.zeros(batch, lm.info.in_chans, lm.info.img_size, lm.info.img_size)
    meta = {"model": lm.info.to_dict(), "quantized": lm.quantized, "recipe": lm.recipe,
            "quant_formats": sorted(lm.quant_formats)}
    return export_model(lm.model, output, sample, precision=precision, use_plugins=use_plugins, opset=opset,
                        metadata=meta)


def _has_fp8(model: nn.Module) -> bool:
    return any(not getattr(q, "_disabled", True) and isinstance(getattr(q, "num_bits", None), (tuple, list))
               for q in model.modules() if type(q).__name__ == "TensorQuantizer")


# --- float16 rewrite ------------------------------------------------------------------------------------------------

def plugin_nodes(onnx_model) -> list:
    specs = all_specs()
    return [n for n in onnx_model.graph.node if n.op_type in specs]


def to_float16(onnx_model):
    """Rewrite a float32 graph to float16 (in place) keeping float32 I/O and the plugins' float32 constants."""
    from onnx import TensorProto, helper, numpy_helper

    g = onnx_model.graph
    specs = all_specs()
    # The plugins' float32 constants (bias, mask, LayerNorm parameters) get initializers of their own: the exporter
    # merges identical initializers (through Identity nodes), so a source may also feed ordinary float16 ops.
    inits = {i.name: i for i in g.initializer}
    consts = {n.output[0]: n.attribute[0].t for n in g.node if n.op_type == "Constant" and n.attribute[0].name == "value"}
    identity = {n.output[0]: n.input[0] for n in g.node if n.op_type == "Identity"}
    keep: dict[str, str] = {}
    for n in plugin_nodes(onnx_model):
        first_const = 2 if specs[n.op_type].op == "window_reverse" else 1
        for k in range(first_const, len(n.input)):
            src = n.input[k]
            while src in identity:
                src = identity[src]
            tensor = inits.get(src, consts.get(src))
            if tensor is None:
                raise ValueError(f"{n.name}: input {k} ({n.input[k]}) is not a constant; plugin parameters must be")
            if src not in keep:
                keep[src] = src + "__fp32"
                own = g.initializer.add()
                own.CopyFrom(tensor)
                own.name = keep[src]
            n.input[k] = keep[src]
    keep_names = set(keep.values())

    def convert_tensor(t):
        if t.data_type == TensorProto.FLOAT and t.name not in keep_names:
            arr = numpy_helper.to_array(t).astype("float16")
            t.CopyFrom(numpy_helper.from_array(arr, t.name))

    for init in g.initializer:
        convert_tensor(init)
    for n in g.node:
        for a in n.attribute:
            if a.type == a.TENSOR:
                convert_tensor(a.t)
            if n.op_type == "Cast" and a.name == "to" and a.i == TensorProto.FLOAT:
                a.i = TensorProto.FLOAT16
    # float32 I/O behind Casts.
    for inp in g.input:
        if inp.type.tensor_type.elem_type == TensorProto.FLOAT:
            half = inp.name + "_fp16"
            for n in g.node:
                for i, name in enumerate(n.input):
                    if name == inp.name:
                        n.input[i] = half
            g.node.insert(0, helper.make_node("Cast", [inp.name], [half], to=TensorProto.FLOAT16, name=half + "_cast"))
    for out in g.output:
        if out.type.tensor_type.elem_type == TensorProto.FLOAT:
            half = out.name + "_fp16"
            for n in g.node:
                for i, name in enumerate(n.output):
                    if name == out.name:
                        n.output[i] = half
            g.node.append(helper.make_node("Cast", [half], [out.name], to=TensorProto.FLOAT, name=out.name + "_cast"))
    _drop_unused(g)
    del g.value_info[:]  # stale float32 types; consumers re-infer
    return onnx_model


def _drop_unused(g) -> None:
    """Remove Identity / Constant nodes and initializers nothing reads any more (left by the plugin constants)."""
    outputs = {o.name for o in g.output}
    while True:
        used = {i for n in g.node for i in n.input} | outputs
        dead = [n for n in g.node if n.op_type in ("Identity", "Constant") and not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            g.node.remove(n)
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)


# --- structural checks ----------------------------------------------------------------------------------------------

def _const_value(g, name: str):
    from onnx import numpy_helper

    for i in g.initializer:
        if i.name == name:
            return numpy_helper.to_array(i)
    for n in g.node:
        if n.op_type == "Constant" and n.output[0] == name:
            return numpy_helper.to_array(n.attribute[0].t)
    return None


# (plugin op folder, int8 flag field, scale field, I/O side, index)
_INT8_PORTS = (
    ("window_attention", "qkv_int8", "q_scale", "in", 0),
    ("window_attention", "out_int8", "out_scale", "out", 0),
    ("ln_shift_partition", "out_int8", "out_scale", "out", 0),
    ("window_reverse", "y_int8", "y_scale", "in", 0),
    ("window_reverse", "ln_out_int8", "ln_out_scale", "out", 1),
    ("patch_merge", "out_int8", "out_scale", "out", 0),
)


def check_plugin_graph(onnx_model) -> dict[str, Any]:
    """Structural check of a deploy graph: plugin-node contracts and the Q -> plugin -> DQ pattern.

    Every plugin node must carry exactly its fields with the ONNX kinds the TensorRT parser maps to the creator's
    types, plugin_version / plugin_namespace strings, and the domain of plugin nodes; every INT8 plugin input must be
    produced by a QuantizeLinear and every INT8 output consumed only by DequantizeLinear nodes, with the same scale
    as the plugin field (and the float graph elsewhere). Returns {"counts": {plugin: n}, "int8_ports": n,
    "errors": [...]}; an empty error list means the graph passed.
    """
    from .plugin_specs import decode_fields

    g = onnx_model.graph
    specs = all_specs()
    producers = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    errors: list[str] = []
    counts: dict[str, int] = {}
    int8_ports = 0
    for n in plugin_nodes(onnx_model):
        spec = specs[n.op_type]
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
        if n.domain != PLUGIN_DOMAIN:
            errors.append(f"{n.name}: domain {n.domain!r}, expected {PLUGIN_DOMAIN!r}")
        attrs = {a.name: a for a in n.attribute}
        for key, want in (("plugin_version", spec.version), ("plugin_namespace", spec.namespace)):
            a = attrs.get(key)
            if a is None or a.type != a.STRING or a.s.decode() != want:
                errors.append(f"{n.name}: {key} must be the string {want!r}")
        missing = set(spec.fields) - set(attrs)
        extra = set(attrs) - set(spec.fields) - {"plugin_version", "plugin_namespace"}
        if missing or extra:
            errors.append(f"{n.name}: missing fields {sorted(missing)}, unexpected attributes {sorted(extra)}")
            continue
        try:
            values = decode_fields(parser_fields(n, spec))
        except PluginAttributeError as e:
            errors.append(str(e))
            continue
        for op, flag, scale_field, side, idx in _INT8_PORTS:
            if op != spec.op or not values[flag]:
                continue
            if side == "in":
                tensors, linked = [n.input[idx]], [producers.get(n.input[idx])]
                ok = linked[0] is not None and linked[0].op_type == "QuantizeLinear"
                what = "produced by a QuantizeLinear"
            else:
                tensors = [n.output[idx]]
                linked = consumers.get(n.output[idx], [])
                ok = bool(linked) and all(c.op_type == "DequantizeLinear" for c in linked)
                what = "consumed only by DequantizeLinear"
            if not ok:
                errors.append(f"{n.name}: INT8 {side}put {tensors[0]} is not {what}")
                continue
            int8_ports += 1
            for qdq in linked:
                s = _const_value(g, qdq.input[1])
                if s is None or s.size != 1 or abs(float(s) - values[scale_field]) > 1e-3 * values[scale_field]:
                    errors.append(f"{n.name}: {qdq.op_type} scale {None if s is None else float(s)} != field "
                                  f"{scale_field}={values[scale_field]}")
    return {"counts": counts, "int8_ports": int8_ports, "errors": errors}


def deploy_gemm_outputs(onnx_model) -> dict[str, bool]:
    """`trt_swin.quant.onnx_export.quantized_gemm_outputs` keyed by the float model's module paths (the deploy
    wrappers' `block` / `pm` levels removed, `attn` restored): True where a GEMM writes INT8 / FP8 (a Q right after
    it; for qkv / proj that Q feeds the attention / window-reverse plugin)."""
    from trt_swin.quant.onnx_export import quantized_gemm_outputs, scope_to_module

    out = {}
    for scope, q in quantized_gemm_outputs(onnx_model).items():
        parts = [p for p in scope_to_module(scope).split(".") if p not in ("block", "pm", "model")]
        if parts and parts[-1] in ("qkv", "proj") and (len(parts) < 2 or parts[-2] != "attn"):
            parts.insert(len(parts) - 1, "attn")  # the deploy block calls attn.qkv / attn.proj, not attn itself
        out[".".join(parts)] = q
    return out
