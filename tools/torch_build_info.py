"""Prints, one per line, what CMake needs to build against the installed torch without its CMake config:
include dirs (comma-separated), torch's lib dir, the C++11 ABI flag, and pip's CUDA include dirs (comma-separated).

TRT_SWIN_TORCH_ROOT=<dir holding include/ and lib/ of an unpacked torch wheel> builds against that torch instead of
the importable one (to prebuild the op library for another machine's torch; torch >= 2.9 wheels use the C++11 ABI)."""
import os

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
root = os.environ.get("TRT_SWIN_TORCH_ROOT")
if root:
    print(",".join([os.path.join(root, "include"), os.path.join(root, "include", "torch", "csrc", "api", "include")]))
    print(os.path.join(root, "lib"))
    print(1)
else:
    import torch
    from torch.utils import cpp_extension

    print(",".join(cpp_extension.include_paths()))
    print(os.path.join(os.path.dirname(torch.__file__), "lib"))
    print(int(torch._C._GLIBCXX_USE_CXX11_ABI))
print(",".join(nvidia_inc))
