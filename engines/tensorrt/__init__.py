"""TensorRT backend: IPluginV3 plugins (plugins/<op>/trt_plugin.*), ONNX export with plugin nodes and Q/DQ
(`export_onnx`), onnxruntime verification with the plugins stood in by the PyTorch references (`ort_verify`), the
engine builder (`build_plan`) and runner (`load_plan`). TensorRT itself is imported only by the builder and the
runner; see docs/tensorrt.md.
"""
from __future__ import annotations


def export_onnx(model_spec, *, quantized=None, precision="fp16", use_plugins=True, output, opset=None):
    """See `export.export_onnx`."""
    from .export import export_onnx as _export

    return _export(model_spec, quantized=quantized, precision=precision, use_plugins=use_plugins, output=output,
                   opset=opset)


def build_plan(model_spec, *, quantized, precision, max_batch, opt_batch, output, workspace_gb, timing_cache,
               plugin_lib, use_plugins=True):
    """See `builder.build_plan`."""
    from .builder import build_plan as _build

    return _build(model_spec, quantized=quantized, precision=precision, max_batch=max_batch, opt_batch=opt_batch,
                  output=output, workspace_gb=workspace_gb, timing_cache=timing_cache, plugin_lib=plugin_lib,
                  use_plugins=use_plugins)


def load_plan(path, plugin_lib=None):
    """See `runtime.load_plan`."""
    from .runtime import load_plan as _load

    return _load(path, plugin_lib)


__all__ = ["export_onnx", "build_plan", "load_plan"]
