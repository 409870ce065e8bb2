"""The native engine: our fused CUDA kernels + cuBLASLt GEMMs + CUDA graphs, driven from PyTorch.

    plan, tensors, build = build_native_engine(model, BuildConfig(precision="fp16", max_batch=128))
    save_engine("engines/swin_t-fp16.engine", plan, tensors, build)
    engine = load_native("engines/swin_t-fp16.engine")      # or trt_swin.engines.load(path)
    logits = engine(images)                                  # images [B, C, H, W], 1 <= B <= max_batch

`builder` does the load-time preprocessing of FasterTransformer once, `_format` is the self-contained file (safetensors
+ JSON plan and build record, validated on load), `runtime` chains the ops under CUDA graphs per batch bucket.
"""
from ._format import EngineFormatError, check_compatible, device_info, read_engine
from .builder import BuildConfig, build_native_engine, calibrate_max, save_engine, scales_from_model
from .runtime import NativeEngine, default_buckets, load_native

__all__ = ["BuildConfig", "EngineFormatError", "NativeEngine", "build_native_engine", "calibrate_max",
           "check_compatible", "default_buckets", "device_info", "load_native", "read_engine", "save_engine",
           "scales_from_model"]
