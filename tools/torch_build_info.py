"""Prints, one per line, what CMake needs to build against the installed torch without its CMake config:
include dirs (comma-separated), torch's lib dir, the C++11 ABI flag, and pip's CUDA include dirs (comma-separated)."""
import os

import torch
from torch.utils import cpp_extension

nvidia_inc = []
try:
    import nvidia

    for root in nvidia.__path__:
        for sub in ("cu13", "cu12", "cublas", "cusparse", "cuda_runtime"):
            inc = os.path.join(root, sub, "include")
            if os.path.isdir(inc):
                nvidia_inc.append(inc)
except ImportError:
    pass
print(",".join(cpp_extension.include_paths()))
print(os.path.join(os.path.dirname(torch.__file__), "lib"))
print(int(torch._C._GLIBCXX_USE_CXX11_ABI))
print(",".join(nvidia_inc))
