"""Q/DQ ONNX export of a fake-quantized model, its onnxruntime check, and graph checks on GEMM outputs.

The TorchScript exporter is used (`dynamo=False`): the dynamo exporter, torch's default since 2.9, fails on
ModelOpt's fake-quant modules (trt_notes item 1). INT8 exports at opset 17 as standard QuantizeLinear /
DequantizeLinear (weights FP32 behind Q/DQ, per-channel axis 0). ModelOpt exports FP8 as `trt::TRT_FP8QuantizeLinear`
/ `TRT_FP8DequantizeLinear`; they are rewritten here into standard opset-21 QuantizeLinear / DequantizeLinear with
a FLOAT8E4M3FN zero point (what TensorRT's parser and onnxruntime read).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..calibration.calibrators import check_calibrated, iter_quantizers

INT8_OPSET = 17
FP8_OPSET = 21
_PASS_THROUGH = {"Reshape", "Transpose", "Identity", "Cast", "Squeeze", "Unsqueeze", "Flatten"}


def _has_fp8(model: nn.Module) -> bool:
    return any(not q._disabled and isinstance(q.num_bits, (tuple, list)) for _, q in iter_quantizers(model))


def _rewrite_trt_fp8(onnx_model, opset: int):
    """trt::TRT_FP8{Quantize,Dequantize}Linear -> standard Q/DQ with a float8e4m3fn zero point (in place)."""
    import onnx
    from onnx import TensorProto, helper

    g = onnx_model.graph
    zp_name = "trt_swin_fp8_zero_point"
    needs_zp = False
    for node in g.node:
        if node.domain == "trt" and node.op_type == "TRT_FP8QuantizeLinear":
            node.op_type, node.domain = "QuantizeLinear", ""
            del node.input[2:]
            node.input.append(zp_name)
            needs_zp = True
        elif node.domain == "trt" and node.op_type == "TRT_FP8DequantizeLinear":
            node.op_type, node.domain = "DequantizeLinear", ""
            del node.input[2:]
    # The exporter typed the custom ops' outputs uint8; drop the stale intermediate types (ORT re-infers them).
    del g.value_info[:]
    if needs_zp:
        g.initializer.append(helper.make_tensor(zp_name, TensorProto.FLOAT8E4M3FN, [], [0.0]))
    keep = [o for o in onnx_model.opset_import if o.domain not in ("", "trt")]
    del onnx_model.opset_import[:]
    onnx_model.opset_import.extend([helper.make_opsetid("", opset), *keep])
    onnx.checker.check_model(onnx_model)
    return onnx_model


def export_onnx(model: nn.Module, path: str | Path, sample: torch.Tensor, opset: int | None = None) -> Path:
    """Export the calibrated fake-quantized `model` to a Q/DQ ONNX file with a dynamic batch.

    Args:
        sample: an input batch [B, C, H, W] on the model's device (its values do not matter).
        opset: default 17 for INT8, 21 when FP8 quantizers are present (FP8 Q/DQ needs >= 19; 21 as ModelOpt).
    Raises:
        UncalibratedError: an enabled quantizer has no amax (the export would bake in garbage scales).
    """
    import onnx

    check_calibrated(model, "the model to export")
    fp8 = _has_fp8(model)
    opset = opset or (FP8_OPSET if fp8 else INT8_OPSET)
    if opset < (19 if fp8 else 13):
        raise ValueError(f"opset {opset} is too old for {'FP8' if fp8 else 'INT8'} Q/DQ (needs >= {19 if fp8 else 13})")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        # Tracing ModelOpt's amax checks emits TracerWarnings; the amax are constants of the exported graph.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(model, (sample,), str(path), dynamo=False, opset_version=min(opset, 20) if fp8 else opset,
                          input_names=["images"], output_names=["logits"],
                          dynamic_axes={"images": {0: "B"}, "logits": {0: "B"}})
    if fp8:
        onnx.save(_rewrite_trt_fp8(onnx.load(str(path)), opset), str(path))
    return path


def run_onnx(path: str | Path, images: torch.Tensor) -> torch.Tensor:
    """Logits of the ONNX model on onnxruntime's CPU provider. images: [B, C, H, W] float32."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # Reference semantics of Q/DQ: ORT's fusions would turn FP8 Q/DQ + MatMul into MatMulIntegerToFloat, which
    # rejects float8 inputs, and INT8 fusions would change rounding.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return torch.from_numpy(sess.run(None, {"images": images.detach().cpu().float().numpy()})[0])


def verify_onnx(path: str | Path, model: nn.Module, images: torch.Tensor, min_cosine: float = 0.999,
                min_agreement: float = 99.0) -> dict[str, Any]:
    """Run the export on onnxruntime and compare with the fake-quant PyTorch model on `images`.

    Small differences are expected: ModelOpt's fake quant clamps INT8 to [-127, 127] (narrow range) and computes
    x * 127 / amax, ONNX QuantizeLinear uses [-128, 127] and x / scale.
    Returns:
        dict with max_abs_diff, ref_max_abs, cosine (mean per image), agreement (% same top-1), ok.
    """
    device = next(model.parameters()).device
    with torch.no_grad():
        ref = model(images.to(device)).float().cpu()
    out = run_onnx(path, images)
    cos = float(torch.nn.functional.cosine_similarity(ref, out, dim=1).mean())
    agree = 100.0 * float((ref.argmax(1) == out.argmax(1)).float().mean())
    res = {"max_abs_diff": float((ref - out).abs().max()), "ref_max_abs": float(ref.abs().max()), "cosine": cos,
           "agreement": agree, "n": len(images)}
    res["ok"] = cos >= min_cosine and agree >= min_agreement
    return res


def qdq_counts(path_or_model) -> dict[str, int]:
    import onnx

    g = (onnx.load(str(path_or_model)) if isinstance(path_or_model, (str, Path)) else path_or_model).graph
    return {op: sum(n.op_type == op for n in g.node) for op in ("QuantizeLinear", "DequantizeLinear")}


def quantized_gemm_outputs(path_or_model) -> dict[str, bool]:
    """For every GEMM (MatMul / Gemm node of an exported Linear), whether its output reaches a QuantizeLinear
    directly, i.e. through its own bias Add and data-movement ops only (Reshape, Transpose, ...).

    Keys are the exporter's module scopes, e.g. `/layers/layers.0/blocks/blocks.0/mlp/fc2`. True means the GEMM
    produces INT8 / FP8 output (a Q on its output), False means its output stays floating point.
    """
    import onnx

    g = (onnx.load(str(path_or_model)) if isinstance(path_or_model, (str, Path)) else path_or_model).graph
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    out: dict[str, bool] = {}
    for n in g.node:
        if n.op_type not in ("MatMul", "Gemm") or "/" not in n.name:
            continue
        scope = n.name.rsplit("/", 1)[0]
        if scope.endswith("_quantizer"):
            continue
        frontier, seen, quantized = list(n.output), set(), False
        while frontier:
            t = frontier.pop()
            if t in seen:
                continue
            seen.add(t)
            for c in consumers.get(t, []):
                if c.op_type == "QuantizeLinear":
                    quantized = True
                elif c.op_type in _PASS_THROUGH or (c.op_type == "Add" and c.name.rsplit("/", 1)[0] == scope):
                    frontier.extend(c.output)  # the GEMM's own bias Add, or data movement
        # A module scope may hold several MatMuls (none in Swin's Linears); any quantized output counts.
        out[scope] = out.get(scope, False) or quantized
    return out


def scope_to_module(scope: str) -> str:
    """`/layers/layers.0/blocks/blocks.0/mlp/fc2` -> `layers.0.blocks.0.mlp.fc2` (TorchScript exporter scopes)."""
    parts = [p for p in scope.split("/") if p]
    path: list[str] = []
    for p in parts:
        # Containers appear twice ("layers", "layers.0"): keep the indexed form only.
        if path and p.startswith(path[-1] + "."):
            path[-1] = p
        else:
            path.append(p)
    return ".".join(path)


__all__ = ["export_onnx", "run_onnx", "verify_onnx", "quantized_gemm_outputs", "scope_to_module", "qdq_counts",
           "INT8_OPSET", "FP8_OPSET"]
