"""Quantization of Swin models with NVIDIA ModelOpt: declarative per-layer rules and built-in recipes (`rules`,
`recipes/*.yaml`), PTQ (`ptq`, with `trt_swin.calibration`), QAT with distillation (`qat`), sensitivity report
(`sensitivity`), checkpoints and scales.json (`checkpoint`), Q/DQ ONNX export (`onnx_export`).

ModelOpt is imported lazily, so `import trt_swin.quant` stays cheap.
"""
from .rules import (Calibrator, QuantPlan, Recipe, Rule, RuleError, available_recipes, compile_plan, load_recipe,
                    load_rules_file)


def load_quantized(path, device="cpu"):
    """(fake-quantized model, float ModelInfo) of a quantized checkpoint; see `quant.checkpoint.load_quantized`."""
    from .checkpoint import load_quantized as _load

    return _load(path, device)


__all__ = ["Calibrator", "QuantPlan", "Recipe", "Rule", "RuleError", "available_recipes", "compile_plan",
           "load_recipe", "load_rules_file", "load_quantized"]
