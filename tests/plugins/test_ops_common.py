"""Shared checks and helpers of the memory-bound op tests (ln_shift_partition, window_reverse, patch_merge, epilogue).

Helpers: `Poison` (outputs land on memory pre-filled with 0x7F bytes: NaN as fp16, 127 as int8), `rel_l2`,
`assert_fp16_close`, `assert_int8_close`. Tests here pin the INT8 rounding rule that every kernel follows.
"""
from __future__ import annotations

import pytest
import torch

from trt_swin.plugins.epilogue.reference import quantize_int8

POISON_BYTE = 0x7F  # fp16 0x7F7F is a NaN, int8 0x7F is 127


class Poison:
    """Makes the next CUDA allocations of the given byte sizes (in this order) land on memory filled with POISON_BYTE.

    Create it right before the op: the blocks are allocated, filled and freed at once, so the caching allocator's
    best-fit search, replayed from the same state by the op's own allocations, hands them back to the op's outputs.
    `check(*outputs)` fails loudly if an output did not land on one.
    """

    def __init__(self, *nbytes: int):
        bufs = [torch.full((n,), POISON_BYTE, dtype=torch.uint8, device="cuda") for n in nbytes]
        self.ptrs = {b.data_ptr() for b in bufs}
        del bufs

    def check(self, *outputs: torch.Tensor) -> None:
        for o in outputs:
            assert o.data_ptr() in self.ptrs, "test setup: the output did not land on poisoned memory"


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def assert_fp16_close(out: torch.Tensor, ref: torch.Tensor, bound: float = 1e-3) -> None:
    """Every element finite (written) and ||out - ref|| / ||ref|| <= bound (FP32 reference)."""
    assert out.dtype == torch.float16 and out.shape == ref.shape, (out.dtype, out.shape, ref.shape)
    assert torch.isfinite(out).all(), f"{(~torch.isfinite(out)).sum().item()} non-finite (unwritten?) elements"
    err = rel_l2(out, ref)
    assert err <= bound, f"relative L2 error {err:.3e} > {bound:.0e}"
    # Rows the reference leaves exactly zero (padding) must be exactly zero.
    assert (out[ref == 0] == 0).all()


def assert_int8_close(out: torch.Tensor, ref_q: torch.Tensor, min_exact: float = 0.99) -> None:
    """INT8 outputs equal the reference's quantization or differ by one step (FP32 rounding of a .5 tie), and
    at least `min_exact` of them match exactly."""
    assert out.dtype == torch.int8 and out.shape == ref_q.shape, (out.dtype, out.shape, ref_q.shape)
    diff = (out.int() - ref_q.int()).abs()
    assert diff.max().item() <= 1, f"{(diff > 1).sum().item()} int8 values off by more than one step"
    exact = (diff == 0).float().mean().item()
    assert exact >= min_exact, f"only {exact:.4f} of int8 values match exactly"


def int8_scale_for(ref: torch.Tensor) -> float:
    """A per-tensor scale that saturates the largest values of `ref` (so the clamp path is exercised too)."""
    return max(ref.abs().max().item() / 127 * 0.8, 1e-6)


@pytest.mark.parametrize(
    "value, scale, expected",
    [(2.5, 1.0, 2), (3.5, 1.0, 4), (-2.5, 1.0, -2), (0.74, 0.5, 1), (1000.0, 1.0, 127), (-1000.0, 1.0, -128),
     (-128.4, 1.0, -128), (126.5, 1.0, 126)],
    ids=["tie-even-down", "tie-even-up", "neg-tie", "scaled", "sat-high", "sat-low", "edge-low", "tie-126"],
)
def test_quantize_int8_rounds_half_even_and_saturates(value, scale, expected):
    assert quantize_int8(torch.tensor([value]), scale).item() == expected


def test_poison_pattern_is_nan_in_fp16_and_127_in_int8():
    raw = torch.full((4,), POISON_BYTE, dtype=torch.uint8)
    assert torch.isnan(raw.view(torch.float16)).all()
    assert (raw.view(torch.int8) == 127).all()
