"""`trt_swin build-engine --backend tensorrt`: ONNX export + TensorRT engine build (TensorRT Python API).

Written against the documented API of TensorRT 10.x and 11.x; not run here (no TensorRT in this environment).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..native._format import device_info
from ._trt import load_plugin_library, make_logger, require_tensorrt, strongly_typed_only, version_tuple
from .export import INPUT_NAME, export_onnx, load_for_export

PLAN_FORMAT = "trt_swin.engine/1"
PRECISIONS = ("fp16", "int8", "fp8")


def sidecar_path(plan: str | Path) -> Path:
    return Path(plan).with_suffix(".json")


def check_build_args(precision: str, quant_formats: set[str], max_batch: int, opt_batch: int,
                     workspace_gb: float) -> None:
    """Refuse inconsistent options before anything is built (the messages say what to pass instead)."""
    if precision not in PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp16" and quant_formats:
        raise ValueError(f"--precision fp16 with a quantized checkpoint ({'/'.join(sorted(quant_formats))}): use "
                         f"--precision {sorted(quant_formats)[0]}, or the float model for an FP16 engine")
    if precision in ("int8", "fp8") and precision not in quant_formats:
        have = "/".join(sorted(quant_formats)) or "none (a float model)"
        raise ValueError(f"--precision {precision} needs a checkpoint quantized to {precision} (`trt_swin quantize`), "
                         f"got quantizers: {have}. TensorRT takes the quantization from the ONNX Q/DQ nodes.")
    if not 1 <= opt_batch <= max_batch:
        raise ValueError(f"need 1 <= opt batch ({opt_batch}) <= max batch ({max_batch})")
    if workspace_gb <= 0:
        raise ValueError(f"workspace must be > 0 GiB, got {workspace_gb}")


def build_plan(model_spec: str | None, *, quantized: str | None, precision: str, max_batch: int, opt_batch: int,
               output: str | Path, workspace_gb: float = 4.0, timing_cache: str | None = None,
               plugin_lib: str | None = None, use_plugins: bool = True, strongly_typed: bool = True,
               verbose: bool = False) -> Path:
    """Export the model to ONNX (next to `output`) and build a TensorRT plan with a dynamic-batch profile.

    Args:
        model_spec: preset / timm name / float checkpoint (ignored when `quantized` is given).
        quantized: quantized checkpoint (`trt_swin quantize`); required for int8 / fp8.
        precision: fp16 | int8 | fp8 (the FP16 graph carries the Q/DQ of the checkpoint).
        max_batch, opt_batch: the optimization profile is min 1, opt `opt_batch`, max `max_batch`.
        workspace_gb: builder workspace pool limit.
        timing_cache: file read (if present) and written back after the build.
        plugin_lib: the trt_swin plugin library (default: plugins/lib/ or $TRT_SWIN_TRT_PLUGINS).
        use_plugins: False builds the plain-ONNX export (TensorRT's own fusions).
        strongly_typed: TensorRT 10 only: False builds a weakly typed network with FP16 / INT8 / FP8 builder flags
            (deprecated since 10.12); TensorRT 11 is always strongly typed.
    Returns:
        the plan path; its `.json` sidecar records model, precision, profile, TensorRT version and the ONNX file.
    """
    lm = load_for_export(model_spec, quantized)
    check_build_args(precision, lm.quant_formats, max_batch, opt_batch, workspace_gb)
    trt = require_tensorrt()
    if not strongly_typed and strongly_typed_only(trt):
        raise ValueError(f"TensorRT {trt.__version__} has no weakly typed networks (removed in 11): drop the weak-typing "
                         "option; precision comes from the ONNX graph")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    onnx_path = export_onnx(model_spec, quantized=quantized, precision="fp16", use_plugins=use_plugins,
                            output=output.with_suffix(".onnx"), batch=opt_batch)
    logger = make_logger(trt, verbose)
    if use_plugins:
        load_plugin_library(trt, plugin_lib)

    builder = trt.Builder(logger)
    flags = 0
    if strongly_typed and not strongly_typed_only(trt):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)  # opt-in on 10.x, the only mode on 11.x
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "\n".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT's ONNX parser rejected {onnx_path}:\n{errors}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    if not strongly_typed:  # TensorRT 10 weak typing: the flags let TensorRT pick FP16 / INT8 / FP8 kernels
        config.set_flag(trt.BuilderFlag.FP16)
        if precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
        elif precision == "fp8":
            config.set_flag(trt.BuilderFlag.FP8)
    shape = (lm.info.in_chans, lm.info.img_size, lm.info.img_size)
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT_NAME, (1, *shape), (opt_batch, *shape), (max_batch, *shape))
    config.add_optimization_profile(profile)
    cache_path = Path(timing_cache) if timing_cache else None
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path and cache_path.exists() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)

    t0 = time.time()
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError("TensorRT failed to build the engine (see the TensorRT log above)")
    output.write_bytes(bytes(plan))
    if cache_path:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache_path.write_bytes(bytes(config.get_timing_cache().serialize()))
    meta: dict[str, Any] = {
        "format": PLAN_FORMAT, "backend": "tensorrt", "plan": output.name, "onnx": onnx_path.name,
        "model": lm.info.to_dict(), "quantized": lm.quantized, "recipe": lm.recipe, "precision": precision,
        "plugins": bool(use_plugins), "strongly_typed": bool(strongly_typed or strongly_typed_only(trt)),
        "input": {"name": INPUT_NAME, "shape": ["batch", *shape], "dtype": "float32"},
        "batch": {"min": 1, "opt": opt_batch, "max": max_batch}, "workspace_gb": workspace_gb,
        "tensorrt": trt.__version__, "tensorrt_major_minor": list(version_tuple(trt)),
        "build_seconds": round(time.time() - t0, 1),
        "max_batch": max_batch,
        # the same build record as a native engine: GPU, compute capability, CUDA / torch / trt_swin / timm versions
        **device_info("cuda"),
    }
    sidecar_path(output).write_text(json.dumps(meta, indent=1) + "\n")
    return output
