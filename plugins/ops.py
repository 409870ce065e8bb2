"""The Python surface of the fused ops: `torch.ops.trt_swin.*`.

Each op folder's `op.py` defines its schema once (torch.library), registers its PyTorch reference as the CPU
kernel and a fake (meta) kernel for torch.compile / torch.export, and exposes a typed wrapper. The CUDA kernels are
registered by the compiled library (TORCH_LIBRARY_IMPL(trt_swin, CUDA, m) in each torch_op.cpp) when
`trt_swin.plugins.load()` runs. Importing this module registers every op.
"""
import importlib
import os

# Each entry is an op folder with an op.py; a folder whose op.py does not exist yet is skipped.
# TRT_SWIN_OPS (comma list) narrows this while developing one op.
_OP_FOLDERS = ("window_attention", "ln_shift_partition", "window_reverse", "patch_merge", "epilogue", "gemm", "fused_mlp",
               "fused_attention", "patch_merge_gemm", "patch_embed")
_only = [s for s in os.environ.get("TRT_SWIN_OPS", "").replace(";", ",").split(",") if s]

for _name in _OP_FOLDERS if not _only else [n for n in _OP_FOLDERS if n in _only]:
    try:
        importlib.import_module(f"{__package__}.{_name}.op")
    except ModuleNotFoundError as e:
        if e.name != f"{__package__}.{_name}.op":
            raise
