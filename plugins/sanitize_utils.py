"""The check every compute-sanitizer driver (plugins/sanitize_triton.py, plugins/<op>/sanitize_check.py) runs on a
result: relative L2 error against the reference within a loose bound, every element finite, one line printed."""
from __future__ import annotations

import torch


def rel_l2(out: torch.Tensor, ref: torch.Tensor) -> float:
    """||out - ref|| / ||ref|| in FP64."""
    return ((out.double() - ref.double()).norm() / ref.double().norm()).item()


def report(name: str, err: float, out: torch.Tensor, bound: float) -> int:
    """Prints `name: rel L2 err ok|MISMATCH`; 1 if err >= bound or out has a non-finite element, else 0."""
    ok = err < bound and bool(torch.isfinite(out).all())
    print(f"{name}: rel L2 {err:.2e} {'ok' if ok else 'MISMATCH'}")
    return 0 if ok else 1
