"""Running a TensorRT plan from PyTorch: `load_plan(path)` -> a callable images -> logits on the GPU, with
torch-allocated input / output buffers and the current torch CUDA stream (for `trt_swin bench` and `trt_swin eval`).

Written against the TensorRT 10.x / 11.x Python API (named-tensor I/O, execute_async_v3); not run here.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch

from ._trt import load_plugin_library, make_logger, require_tensorrt


def _torch_dtype(trt, dt) -> torch.dtype:
    table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int8: torch.int8, trt.int32: torch.int32}
    if dt not in table:
        raise TypeError(f"plan I/O type {dt} is not supported by the trt_swin runner")
    return table[dt]


class PlanRunner:
    """images [B, C, H, W] (any device / float dtype) -> logits [B, classes] float32 on CUDA."""

    def __init__(self, path: str | Path, plugin_lib: str | None = None, verbose: bool = False):
        trt = require_tensorrt()
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"TensorRT plan {path} does not exist")
        side = path.with_suffix(".json")
        self.meta: dict[str, Any] = json.loads(side.read_text()) if side.exists() else {}
        if self.meta.get("compute_capability"):  # the GPU check and message of a native engine; TensorRT checks its own version
            from ..native._format import check_compatible, device_info

            check_compatible({k: self.meta.get(k) for k in ("compute_capability", "gpu")}, device_info("cuda"), path)
        if self.meta.get("plugins", True):
            load_plugin_library(trt, plugin_lib)  # the creators must be registered before deserialization
        self._trt = trt
        self._runtime = trt.Runtime(make_logger(trt, verbose))
        self.engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise RuntimeError(f"TensorRT could not deserialize {path}: built by another TensorRT version "
                               f"({self.meta.get('tensorrt', 'unknown')} vs {trt.__version__}) or for another GPU?")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        ins = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(ins) != 1 or len(outs) != 1:
            raise RuntimeError(f"expected one input and one output, the plan has inputs {ins} and outputs {outs}")
        self.input_name, self.output_name = ins[0], outs[0]
        self.input_dtype = _torch_dtype(trt, self.engine.get_tensor_dtype(self.input_name))
        self.output_dtype = _torch_dtype(trt, self.engine.get_tensor_dtype(self.output_name))
        _, _, max_shape = self.engine.get_tensor_profile_shape(self.input_name, 0)
        self.max_batch = int(max_shape[0])

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4:
            raise ValueError(f"images must be [B, C, H, W], got {tuple(images.shape)}")
        if images.shape[0] > self.max_batch:
            raise ValueError(f"batch {images.shape[0]} exceeds the plan's max batch {self.max_batch} "
                             "(rebuild with a larger --max-batch, or split the batch)")
        x = images.to(device="cuda", dtype=self.input_dtype).contiguous()
        if not self.context.set_input_shape(self.input_name, tuple(x.shape)):
            raise ValueError(f"input shape {tuple(x.shape)} is outside the plan's profile")
        out = torch.empty(tuple(self.context.get_tensor_shape(self.output_name)), dtype=self.output_dtype,
                          device=x.device)
        self.context.set_tensor_address(self.input_name, x.data_ptr())
        self.context.set_tensor_address(self.output_name, out.data_ptr())
        if not self.context.execute_async_v3(torch.cuda.current_stream(x.device).cuda_stream):
            raise RuntimeError("TensorRT execution failed (see the TensorRT log)")
        return out.float()


def load_plan(path: str | Path, plugin_lib: str | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """A callable running the plan: images [B, C, H, W] -> logits [B, classes] float32 (CUDA).

    Raises:
        RuntimeError: TensorRT is missing (the message gives the pip command), the plugin library is missing, or
            the plan cannot be deserialized by this TensorRT.
    """
    return PlanRunner(path, plugin_lib)
