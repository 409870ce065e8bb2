"""What each plugin computes, as calls of the PyTorch reference ops (`torch.ops.trt_swin.*`, CPU kernels).

The same function runs a plugin node while the deploy model is traced for export and when onnxruntime executes the
exported graph with the plugins stood in by custom ops, so both see exactly the semantics of plugin.yaml.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch


def run_plugin(op: str, attrs: dict[str, Any], inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """Outputs of plugin `op` (op folder name) for its node attributes and input tensors (CPU).

    Args:
        attrs: the node's field values (plugin_version / plugin_namespace may be present and are ignored).
        inputs: the node's inputs in plugin.yaml order (optional ones present only when the node has them).
    """
    from trt_swin.plugins import ops  # noqa: F401  (registers torch.ops.trt_swin.*)

    a = attrs
    t = torch.ops.trt_swin
    if op == "window_attention":
        qkv, bias = inputs[0], inputs[1]
        mask = inputs[2] if len(inputs) > 2 else None
        if a["qkv_int8"] != (qkv.dtype == torch.int8):
            raise TypeError(f"SwinWindowAttention_TRT: qkv_int8={a['qkv_int8']} but qkv is {qkv.dtype}")
        out = t.window_attention(qkv, bias.float(), None if mask is None else mask.float(), int(a["num_heads"]),
                                 float(a["scale"]), float(a["q_scale"]), float(a["k_scale"]), float(a["v_scale"]),
                                 float(a["out_scale"]) if a["out_int8"] else None)
        return (out,)
    if op == "ln_shift_partition":
        x, gamma, beta = inputs
        out = t.ln_shift_partition(x.half(), gamma.float(), beta.float(), float(a["eps"]), int(a["window_size"]),
                                   int(a["shift"]), float(a["out_scale"]) if a["out_int8"] else None)
        return (out,)
    if op == "window_reverse":
        y, residual, rest = inputs[0], inputs[1], list(inputs[2:])
        if a["y_int8"] != (y.dtype == torch.int8):
            raise TypeError(f"SwinWindowReverse_TRT: y_int8={a['y_int8']} but y is {y.dtype}")
        bias = rest.pop(0).float() if a["has_bias"] else None
        gamma, beta = (rest[0].float(), rest[1].float()) if a["has_ln"] else (None, None)
        out, ln = t.window_reverse(y, residual.half(), bias, int(a["window_size"]), int(a["shift"]),
                                   float(a["y_scale"]) if a["y_int8"] else 1.0, gamma, beta, float(a["eps"]),
                                   float(a["ln_out_scale"]) if a["ln_out_int8"] else None)
        return (out, ln) if a["has_ln"] else (out,)
    if op == "patch_merge":
        x, gamma, beta = inputs
        out = t.patch_merge(x.half(), gamma.float(), beta.float(), float(a["eps"]),
                            float(a["out_scale"]) if a["out_int8"] else None)
        return (out,)
    raise KeyError(f"no plugin for op {op!r}")
