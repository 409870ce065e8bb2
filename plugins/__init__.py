"""Fused Swin kernels: one folder per op (torch-free CUDA API, PyTorch op, TensorRT plugin, reference, bench).

`trt_swin.plugins.ops` is the Python surface (`torch.ops.trt_swin.*`); `available()` says whether the CUDA
library can be used here and why not.
"""
from ._library import available, load

__all__ = ["available", "load"]
