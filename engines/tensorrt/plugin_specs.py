"""The TensorRT plugin contracts (`plugins/<op>/plugin.yaml`) as Python objects, and the ONNX-attribute side of them.

One YAML file per op names the plugin, its version and namespace, its inputs / outputs and its fields. The exporter
builds plugin-node attributes from it; `parser_fields` reproduces what TensorRT's ONNX parser hands the creator
(INT -> kINT32, FLOAT -> kFLOAT32, only advertised names; trt_notes 4.1), which the tests compare with the C++
creators' getFieldNames().
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

PLUGIN_OPS = ("window_attention", "ln_shift_partition", "window_reverse", "patch_merge")
# ONNX domain of plugin nodes in the deploy graph. TensorRT ignores it once plugin_namespace is given (trt_notes 4.1);
# onnxruntime needs its own domain for the stand-in custom ops, so the verifier rewrites it in memory.
PLUGIN_DOMAIN = "trt.plugins"
_PLUGINS_DIR = Path(__file__).resolve().parents[2] / "plugins"


class PluginAttributeError(ValueError):
    """Plugin-node attributes that the C++ creator would refuse or silently ignore."""


@dataclass(frozen=True)
class PluginSpec:
    op: str                 # op folder, e.g. window_attention
    name: str               # plugin name = ONNX op_type, e.g. SwinWindowAttention_TRT
    version: str
    namespace: str
    fields: dict[str, dict[str, Any]]   # name -> {type: int|float, default?}
    inputs: tuple[dict[str, Any], ...]
    outputs: tuple[dict[str, Any], ...]

    def attributes(self, **values: Any) -> dict[str, Any]:
        """Complete, typed node attributes: every field (defaults filled in) + plugin_version / plugin_namespace.

        Raises:
            PluginAttributeError: an unknown field, a missing required one, or a value of the wrong kind.
        """
        unknown = sorted(set(values) - set(self.fields))
        if unknown:
            raise PluginAttributeError(f"{self.name}: unknown fields {unknown}; fields are {sorted(self.fields)}")
        out: dict[str, Any] = {}
        for fname, f in self.fields.items():
            if fname in values and values[fname] is not None:
                v = values[fname]
            elif "default" in f:
                v = f["default"]
            else:
                raise PluginAttributeError(f"{self.name}: field '{fname}' has no default and was not given")
            if f["type"] == "int":
                if isinstance(v, bool):
                    v = int(v)
                if not isinstance(v, int) or not -2**31 <= v < 2**31:
                    raise PluginAttributeError(f"{self.name}: field '{fname}' must be an int32, got {v!r}")
            else:
                if not isinstance(v, (int, float)) or isinstance(v, bool):
                    raise PluginAttributeError(f"{self.name}: field '{fname}' must be a float, got {v!r}")
                v = float(v)
            out[fname] = v
        out["plugin_version"] = self.version
        out["plugin_namespace"] = self.namespace
        return out


@lru_cache(maxsize=None)
def plugin_spec(op: str) -> PluginSpec:
    """The contract of plugins/<op>/plugin.yaml."""
    path = _PLUGINS_DIR / op / "plugin.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no TensorRT plugin contract {path} (ops with plugins: {', '.join(PLUGIN_OPS)})")
    doc = yaml.safe_load(path.read_text())
    for f, d in doc["fields"].items():
        if d.get("type") not in ("int", "float"):
            raise ValueError(f"{path}: field {f} must have type int or float (what the ONNX parser passes as scalars)")
    return PluginSpec(op, doc["plugin"], str(doc["version"]), str(doc.get("namespace", "")), dict(doc["fields"]),
                      tuple(doc["inputs"]), tuple(doc["outputs"]))


def all_specs() -> dict[str, PluginSpec]:
    """Plugin name (ONNX op_type) -> spec, for every op with a TensorRT plugin."""
    return {s.name: s for s in map(plugin_spec, PLUGIN_OPS)}


def parser_fields(node, spec: PluginSpec) -> list[tuple[str, str, bytes]]:
    """The PluginFields TensorRT's ONNX parser builds from `node` (an onnx NodeProto): (name, type, raw bytes).

    Only names in the creator's field list are read; INT becomes kINT32 (narrowed), FLOAT kFLOAT32, STRING kCHAR.
    Raises:
        PluginAttributeError: an attribute kind the parser would pass with another type than the creator expects.
    """
    from onnx import AttributeProto

    out = []
    for a in node.attribute:
        if a.name not in spec.fields:
            continue  # ignored by the parser (plugin_version / plugin_namespace are read separately)
        want = spec.fields[a.name]["type"]
        if a.type == AttributeProto.INT and want == "int":
            if not -2**31 <= a.i < 2**31:
                raise PluginAttributeError(f"{node.name}: attribute {a.name}={a.i} does not fit the kINT32 it becomes")
            out.append((a.name, "kINT32", struct.pack("<i", a.i)))
        elif a.type == AttributeProto.FLOAT and want == "float":
            out.append((a.name, "kFLOAT32", struct.pack("<f", a.f)))
        else:
            kind = AttributeProto.AttributeType.Name(a.type)
            raise PluginAttributeError(f"{node.name}: attribute {a.name} is ONNX {kind}; {spec.name} expects {want} "
                                       f"({'kINT32' if want == 'int' else 'kFLOAT32'})")
    return out


def decode_fields(fields: list[tuple[str, str, bytes]]) -> dict[str, int | float]:
    """Values of `parser_fields` output, as the C++ parseFields reads them."""
    return {n: struct.unpack("<i" if t == "kINT32" else "<f", b)[0] for n, t, b in fields}
