"""Finding and loading the compiled op library (`libtrt_swin_torch.so`).

Loading is lazy: `import trt_swin` neither initializes CUDA nor needs the library. Op wrappers call
`require_for(tensor, ...)` before dispatching a CUDA tensor; CPU tensors run the PyTorch references.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

LIB_NAME = "libtrt_swin_torch.so"
_PKG_DIR = Path(__file__).resolve().parent
_state: dict = {"loaded": False, "error": None}


def library_path() -> Path | None:
    """The op library to load: $TRT_SWIN_TORCH_LIB, else plugins/lib/ (where `python -m trt_swin.plugins.build` puts it)."""
    env = os.environ.get("TRT_SWIN_TORCH_LIB")
    if env:
        return Path(env)
    p = _PKG_DIR / "lib" / LIB_NAME
    return p if p.exists() else None


def load() -> None:
    """Load the CUDA op library once; raises RuntimeError with the reason and the fix when it cannot."""
    if _state["loaded"]:
        return
    if _state["error"] is not None:
        raise RuntimeError(_state["error"])
    from . import ops  # noqa: F401  (schemas must exist before the library registers CUDA kernels)

    path = library_path()
    if path is None or not path.exists():
        _state["error"] = (
            f"trt_swin CUDA ops are not built ({LIB_NAME} not found in {_PKG_DIR / 'lib'} and TRT_SWIN_TORCH_LIB unset). "
            "Build them with `python -m trt_swin.plugins.build` on a machine with nvcc; the PyTorch reference ops serve CPU tensors."
        )
        raise RuntimeError(_state["error"])
    try:
        torch.ops.load_library(str(path))
    except OSError as e:
        _state["error"] = f"trt_swin CUDA ops at {path} failed to load: {e}. Rebuild with `python -m trt_swin.plugins.build`."
        raise RuntimeError(_state["error"]) from e
    _state["loaded"] = True


def available() -> tuple[bool, str]:
    """(True, path) when CUDA and the op library are usable, else (False, reason)."""
    if not torch.cuda.is_available():
        return False, "CUDA is not available"
    try:
        load()
    except RuntimeError as e:
        return False, str(e)
    return True, str(library_path())


def require_for(*tensors: torch.Tensor | None) -> None:
    """Load the CUDA library if any tensor lives on a CUDA device (raise a clear error if it cannot be)."""
    if any(t is not None and t.is_cuda for t in tensors):
        load()


def hopper_kernels_built() -> bool:
    """Whether the op library has the Hopper (sm_90a) kernels, which fused_attention_, fused_mlp_ and patch_merge_gemm
    run on a compute capability 9.0 device (loads the library; RuntimeError when it cannot)."""
    load()
    return bool(torch.ops.trt_swin.hopper_kernels_built())


def runs_hopper_kernels(device: torch.device | str) -> bool:
    """Whether `device` runs the library's Hopper kernels: a CUDA device of compute capability 9.0 exactly (sm_90a
    code runs nowhere else) and a library built with them."""
    device = torch.device(device)
    return (device.type == "cuda" and torch.cuda.get_device_capability(device) == (9, 0)
            and hopper_kernels_built())
