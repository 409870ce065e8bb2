"""Helpers of the engine tests (a uniquely named module: other test folders have their own conftest)."""
import torch


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b|| in float32, on the CPU."""
    return float((a.float().cpu() - b.float().cpu()).norm() / b.float().cpu().norm())
