"""Shared checks and helpers of the memory-bound op tests (ln_shift_partition, window_reverse, patch_merge, epilogue).

Helpers: `Poison` (outputs land on memory pre-filled with 0x7F bytes: NaN as fp16, 127 as int8), `rel_l2`,
`assert_fp16_close`, `assert_int8_close`. Tests here pin the INT8 rounding rule that every kernel follows.
"""
from __future__ import annotations

import pytest
import torch

from trt_swin.plugins.epilogue.reference import FP8_E4M3_MAX, quantize_int8

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


def fp8_e4m3_step(v: torch.Tensor) -> torch.Tensor:
    """Spacing of FP8 E4M3 values around |v| (in FP8 units): 2^(e - 3) in binade [2^e, 2^(e+1)), 2^-9 below 2^-6."""
    e = torch.floor(torch.log2(v.float().abs().clamp_min(2.0 ** -6)))
    return torch.exp2(e - 3)


def fp8_scale_for(ref: torch.Tensor) -> float:
    """A per-tensor scale that saturates the largest values of `ref` (so the clamp path is exercised too)."""
    return max(ref.abs().max().item() / FP8_E4M3_MAX * 0.8, 1e-6)


def assert_fp8_rounding(q: torch.Tensor, ref: torch.Tensor, scale: float) -> None:
    """The CPU (reference-op) FP8 output rule: values past +-448 saturate (the test data must have some), the others
    are within half an FP8 step of ref / scale."""
    assert q.dtype == torch.float8_e4m3fn and q.shape == ref.shape, (q.dtype, q.shape, ref.shape)
    got, want = q.float(), ref / scale
    sat = want.abs() > FP8_E4M3_MAX
    assert sat.any() and (got[sat] == FP8_E4M3_MAX * want[sat].sign()).all()
    err = (got - want).abs()[~sat]
    assert (err <= fp8_e4m3_step(want[~sat]) / 2 * (1 + 1e-6)).all(), err.max().item()


def assert_fp8_close(out: torch.Tensor, ref_q: torch.Tensor, scale: float, min_exact: float = 0.99) -> None:
    """FP8 outputs, dequantized, equal the reference's quantization or differ by one FP8 step of the value (FP32
    rounding near a midpoint), at least `min_exact` of them exactly; none is NaN (0x7F poison bytes are NaN)."""
    assert out.dtype == torch.float8_e4m3fn and out.shape == ref_q.shape, (out.dtype, out.shape, ref_q.shape)
    got, want = out.float(), ref_q.float()
    assert not torch.isnan(got).any(), f"{torch.isnan(got).sum().item()} NaN (unwritten?) fp8 values"
    step = fp8_e4m3_step(torch.maximum(got.abs(), want.abs()))
    diff = (got * scale - want * scale).abs()
    # Near zero an FP8 step (2^-9 units) is far below the FP32/FP16 error of the value itself (LN of fp16 inputs:
    # ~1e-3 of the tensor's range), so the bound also allows that absolute error.
    atol = 1e-3 * float((want * scale).abs().max())
    bad = diff > step * scale + atol
    assert not bad.any(), f"{bad.sum().item()} fp8 values off by more than one step (+{atol:.2e} absolute)"
    exact = (got == want).float().mean().item()
    assert exact >= min_exact, f"only {exact:.4f} of fp8 values match exactly"
    # Rows the reference leaves exactly zero (padding) are exactly zero. (A single value that quantizes to zero may
    # come out as the smallest subnormal: that is the one-step rounding allowed above.)
    pad_rows = (want == 0).reshape(-1, want.shape[-1]).all(-1)
    assert (got.reshape(-1, got.shape[-1])[pad_rows] == 0).all()


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


# Bad input reaching the C++ checks (torch.ops called directly, past the Python wrappers' own checks). Run in a
# subprocess: a crash on the error path must fail this test, not kill the whole session.
CPP_ERROR_CASES = {
    "ln_shift_partition-dtype": (
        "x = torch.randn(1, 14, 14, 96, device='cuda'); g = torch.ones(96, device='cuda')\n"
        "torch.ops.trt_swin.ln_shift_partition(x, g, g, 1e-5, 7, 3, None)", "must have dtype"),
    "patch_merge-too-wide": (
        "x = torch.randn(1, 4, 4, 1536, device='cuda').half(); g = torch.ones(6144, device='cuda')\n"
        "torch.ops.trt_swin.patch_merge(x, g, g, 1e-5, None)", "at most 1024"),
    "window_reverse-y-rows": (
        "r = torch.randn(1, 14, 14, 96, device='cuda').half(); y = torch.randn(195, 96, device='cuda').half()\n"
        "torch.ops.trt_swin.window_reverse(y, r, None, 7, 3, 1.0, None, None, 1e-5, None)", "y must have shape"),
    "epilogue-act": (
        "x = torch.randn(4, 16, device='cuda').half()\n"
        "torch.ops.trt_swin.epilogue(x, 1.0, None, None, 'relu', None, None)", "act must be"),
}


@pytest.mark.gpu
@pytest.mark.parametrize("case", list(CPP_ERROR_CASES))
def test_cuda_op_rejects_bad_input_with_python_error(case):
    import subprocess
    import sys

    code, message = CPP_ERROR_CASES[case]
    script = "import torch\nimport trt_swin.plugins as p\np.load()\n" + code
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, (
        f"expected a Python RuntimeError (exit 1), got exit {proc.returncode} "
        f"({'killed by signal ' + str(-proc.returncode) if proc.returncode < 0 else 'no error'}); stderr tail:\n"
        + proc.stderr[-2000:])
    assert "RuntimeError" in proc.stderr and message in proc.stderr, proc.stderr[-2000:]


@pytest.mark.gpu
@pytest.mark.parametrize("target", [3, 4, 6])
@pytest.mark.parametrize("C", [48, 96, 128, 192, 384, 768, 1024, 1536])
def test_cuda_row_split_knob(monkeypatch, C: int, target: int):
    """Every (G, VPT) the $TRT_SWIN_ROW_TARGET_VPT knob can select computes the same LayerNorm results."""
    from trt_swin.plugins.ln_shift_partition.op import ln_shift_partition
    from trt_swin.plugins.ln_shift_partition.reference import ln_shift_partition_ref
    from trt_swin.plugins.patch_merge.op import patch_merge
    from trt_swin.plugins.patch_merge.reference import patch_merge_ref
    from trt_swin.plugins.window_reverse.op import window_reverse
    from trt_swin.plugins.window_reverse.reference import window_reverse_ref

    monkeypatch.setenv("TRT_SWIN_ROW_TARGET_VPT", str(target))
    x = (torch.randn(2, 10, 9, C, device="cuda") * 2 + 1).half()
    g, b = 1 + 0.1 * torch.randn(C, device="cuda"), 0.1 * torch.randn(C, device="cuda")
    ref = ln_shift_partition_ref(x, g, b, 1e-5, 7, 3)
    assert_fp16_close(ln_shift_partition(x, g, b, 1e-5, 7, 3), ref)
    y = torch.randn(ref.shape, device="cuda").half()
    r_out, r_ln = window_reverse_ref(y, x, b, 7, 3, 1.0, g, b, 1e-5, round_sum_to_fp16=True)
    out, ln = window_reverse(y, x, b, 7, 3, 1.0, g, b)
    assert_fp16_close(out, r_out)
    assert_fp16_close(ln, r_ln)
    if C <= 1024:
        g4, b4 = 1 + 0.1 * torch.randn(4 * C, device="cuda"), 0.1 * torch.randn(4 * C, device="cuda")
        assert_fp16_close(patch_merge(x, g4, b4, 1e-5), patch_merge_ref(x, g4, b4, 1e-5))


def run_in_triton_interpreter(script: str) -> float:
    """Runs `script` under Triton's CPU interpreter (TRITON_INTERPRET=1 is read when triton is imported: hence a
    subprocess, with the Triton wrappers' CUDA-tensor check lifted) and returns the float it prints last (the tests'
    worst relative error), so CI checks a Triton kernel's math without a GPU."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, TRITON_INTERPRET="1", TRT_SWIN_TRITON_CPU="1")
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    return float(r.stdout.strip().splitlines()[-1])
