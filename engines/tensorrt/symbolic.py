"""Autograd functions that run eagerly as the PyTorch references and export (TorchScript exporter) as one ONNX node:
a TensorRT plugin node, a QuantizeLinear or a DequantizeLinear.

Why this route: ModelOpt's fake-quant modules export only through the TorchScript exporter (`dynamo=False`,
trt_notes item 1), and an autograd function's `symbolic` emits exactly the node we want there (op_type = plugin name,
typed attributes, no ONNX function wrapper), while the traced eager forward gives the exporter real shapes and dtypes.
"""
from __future__ import annotations

import json

import torch

from .plugin_specs import PLUGIN_DOMAIN, plugin_spec
from .references import run_plugin

_INT8_ZERO = torch.tensor(0, dtype=torch.int8)


class _PluginCall(torch.autograd.Function):
    @staticmethod
    def forward(ctx, op: str, attrs_json: str, *inputs: torch.Tensor):
        out = run_plugin(op, json.loads(attrs_json), inputs)
        return out if len(out) > 1 else out[0]

    @staticmethod
    def symbolic(g, op: str, attrs_json: str, *inputs):
        spec = plugin_spec(op)
        attrs = json.loads(attrs_json)
        kw = {}
        for k, v in attrs.items():
            kind = "s" if isinstance(v, str) else ("i" if spec.fields[k]["type"] == "int" else "f")
            kw[f"{k}_{kind}"] = v
        n_out = len(spec.outputs) if op != "window_reverse" or attrs["has_ln"] else 1
        return g.op(f"{PLUGIN_DOMAIN}::{spec.name}", *inputs, outputs=n_out, **kw)


def plugin_call(op: str, *inputs: torch.Tensor, **fields):
    """Run plugin `op` on `inputs` (eager reference; a plugin node when exported). Returns a tensor or a tuple."""
    attrs = plugin_spec(op).attributes(**fields)
    return _PluginCall.apply(op, json.dumps(attrs), *inputs)


class _Quantize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float):
        return torch.round(x.float() / scale).clamp_(-128, 127).to(torch.int8)

    @staticmethod
    def symbolic(g, x, scale: float):
        s = g.op("Constant", value_t=torch.tensor(scale, dtype=torch.float32))
        return g.op("QuantizeLinear", x, s, g.op("Constant", value_t=_INT8_ZERO))


class _Dequantize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q: torch.Tensor, scale: float):
        return q.float() * scale

    @staticmethod
    def symbolic(g, q, scale: float):
        s = g.op("Constant", value_t=torch.tensor(scale, dtype=torch.float32))
        return g.op("DequantizeLinear", q, s, g.op("Constant", value_t=_INT8_ZERO))


def quantize_int8(x: torch.Tensor, scale: float) -> torch.Tensor:
    """sat(round_half_even(x / scale)) as int8 (QuantizeLinear with a zero zero-point when exported)."""
    return _Quantize.apply(x, float(scale))


def dequantize_int8(q: torch.Tensor, scale: float) -> torch.Tensor:
    """q * scale in float32 (DequantizeLinear when exported; the FP16 pass makes the scale, so the output, fp16)."""
    return _Dequantize.apply(q, float(scale))
