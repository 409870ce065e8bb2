"""trt_swin::gemm (cuBLASLt) against its FP32 reference, over the real models' GEMM shapes (tests/shapes.py).

FP16 bound: max error at most 2x that of the same reference computed in float16 (PyTorch's own error) + 1e-3.
INT8 -> INT32: exact.
FP8 (E4M3 in, Hopper / Ada): against the reference on the same FP8 inputs; FP16 out as FP16, FP8 out within one FP8
step (2^-3 relative) of the reference value, computed in FP32 before its own rounding.
"""
from __future__ import annotations

import pytest
import torch

import trt_swin.plugins.ops  # noqa: F401
from shapes import BLOCK_SHAPES
from test_ops_common import Poison, run_in_triton_interpreter
from trt_swin.plugins.gemm.op import gemm
from trt_swin.plugins.gemm.reference import gemm_fp32, gemm_int8_ref, gemm_ref

# One entry per distinct (K, N) of a block's four GEMMs across the real models, with few rows (M = 2 windows of N).
_KN = sorted({(k, n) for s in BLOCK_SHAPES for (k, n) in ((s.C, 3 * s.C), (s.C, s.C), (s.C, 4 * s.C), (4 * s.C, s.C))})
GEMM_SHAPES = [pytest.param(98, k, n, id=f"M98-K{k}-N{n}") for k, n in _KN] + [
    pytest.param(1, 48, 96, id="patch_embed-M1"), pytest.param(37, 8, 64, id="mini_patch_embed-K8")]


def fp16_output_atol(ref: torch.Tensor) -> float:
    """The FP16-output bound: twice the error of one float16 rounding of the FP32 reference (PyTorch's own) + 1e-3."""
    return 2 * float((ref.half().float() - ref).abs().max()) + 1e-3


def _inputs(M, K, N, dtype, device, seed=0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    if dtype == torch.int8:
        a = torch.randint(-128, 128, (M, K), generator=g, dtype=torch.int8)
        b = torch.randint(-128, 128, (N, K), generator=g, dtype=torch.int8)
    else:
        a = (torch.randn(M, K, generator=g)).half()
        b = (torch.randn(N, K, generator=g) * K ** -0.5).half()
    return a.to(device), b.to(device)


# ---- CPU: reference, schema, fake kernel, errors ----------------------------------------------------------------

def test_cpu_kernel_is_the_reference():
    a, b = _inputs(5, 16, 8, torch.float16, "cpu")
    bias, res = torch.randn(8).half(), torch.randn(5, 8).half()
    out = gemm(a, b, bias, res, "gelu_tanh", 0.5)
    assert out.dtype == torch.float16 and torch.equal(out, gemm_ref(a, b, bias, res, "gelu_tanh", 0.5))


def test_int8_reference_is_exact():
    a, b = _inputs(7, 64, 24, torch.int8, "cpu")
    out = gemm(a, b)
    assert out.dtype == torch.int32 and torch.equal(out.long(), a.long() @ b.long().t())


def test_fake_kernel_shapes():
    with torch.device("meta"):
        assert gemm(torch.empty(3, 16, dtype=torch.float16), torch.empty(8, 16, dtype=torch.float16)).shape == (3, 8)
        assert gemm(torch.empty(3, 16, dtype=torch.int8), torch.empty(8, 16, dtype=torch.int8)).dtype == torch.int32


@pytest.mark.parametrize("kwargs,match", [
    (dict(a=torch.zeros(2, 8).half(), b=torch.zeros(4, 6).half()), "K of a"),
    (dict(a=torch.zeros(2, 8), b=torch.zeros(4, 8)), "float16, int8 or float8_e4m3fn"),
    (dict(a=torch.zeros(2, 8, dtype=torch.int8), b=torch.zeros(4, 8, dtype=torch.int8), bias=torch.zeros(4).half()), "int32 accumulators"),
    (dict(a=torch.zeros(2, 6, dtype=torch.int8), b=torch.zeros(4, 6, dtype=torch.int8)), "K % 4"),
    (dict(a=torch.zeros(2, 8).half(), b=torch.zeros(4, 8).half(), bias=torch.zeros(4)), "bias must be"),
    (dict(a=torch.zeros(2, 8).half(), b=torch.zeros(4, 8).half(), residual=torch.zeros(2, 5).half()), "residual must be"),
    (dict(a=torch.zeros(2, 8).half(), b=torch.zeros(4, 8).half(), act="relu"), "act must be"),
    (dict(a=torch.zeros(2, 16).to(torch.float8_e4m3fn), b=torch.zeros(16, 16).to(torch.float8_e4m3fn)), "a_scale"),
    (dict(a=torch.zeros(2, 8).to(torch.float8_e4m3fn), b=torch.zeros(16, 8).to(torch.float8_e4m3fn),
          a_scale=torch.ones(1), b_scale=torch.ones(1)), "K % 16"),
    (dict(a=torch.zeros(2, 16).half(), b=torch.zeros(16, 16).half(), a_scale=torch.ones(1)), "for fp8 inputs"),
])
def test_bad_inputs(kwargs, match):
    with pytest.raises(RuntimeError, match=match):
        gemm(**kwargs)


def test_fp8_reference_dequantizes_then_rounds():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5, 32, generator=g).to(torch.float8_e4m3fn)
    b = torch.randn(16, 32, generator=g).to(torch.float8_e4m3fn)
    sa, sb, inv = torch.tensor([0.5]), torch.tensor([0.25]), torch.tensor([4.0])
    want = (a.float() * 0.5) @ (b.float() * 0.25).t()
    assert torch.equal(gemm(a, b, a_scale=sa, b_scale=sb), want.half())
    out = gemm(a, b, a_scale=sa, b_scale=sb, out_scale_inv=inv)
    assert out.dtype == torch.float8_e4m3fn and torch.equal(out.float(), (want * 4).clamp(-448, 448).to(out.dtype).float())


def test_opcheck():
    a, b = _inputs(4, 16, 8, torch.float16, "cpu")
    torch.library.opcheck(torch.ops.trt_swin.gemm.default, (a, b, torch.zeros(8).half(), None, "none", 1.0))


# ---- GPU: cuBLASLt against the reference --------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize("M,K,N", GEMM_SHAPES)
@pytest.mark.parametrize("epi", ["plain", "bias", "bias_gelu", "residual", "alpha"])
def test_fp16_gemm(cuda_device, M, K, N, epi):
    a, b = _inputs(M, K, N, torch.float16, cuda_device)
    bias = torch.randn(N, device=cuda_device).half() if epi in ("bias", "bias_gelu") else None
    res = torch.randn(M, N, device=cuda_device).half() if epi == "residual" else None
    act = "gelu_tanh" if epi == "bias_gelu" else "none"
    alpha = 0.37 if epi == "alpha" else 1.0
    out = gemm(a, b, bias, res, act, alpha)
    ref = gemm_fp32(a, b, bias, res, act, alpha)
    assert out.dtype == torch.float16 and out.shape == (M, N)
    assert float((out.float() - ref).abs().max()) <= fp16_output_atol(ref)


@pytest.mark.gpu
@pytest.mark.parametrize("M,K,N", GEMM_SHAPES)
def test_int8_gemm_is_exact(cuda_device, M, K, N):
    a, b = _inputs(M, K, N, torch.int8, cuda_device)
    out = gemm(a, b)
    assert out.dtype == torch.int32 and torch.equal(out.cpu(), gemm_ref(a.cpu(), b.cpu()))


def _fp8_capable(device) -> bool:
    return torch.cuda.get_device_capability(device) >= (8, 9)


@pytest.mark.gpu
@pytest.mark.parametrize("M,K,N", [p for p in GEMM_SHAPES if p.values[1] % 16 == 0 and p.values[2] % 16 == 0])
@pytest.mark.parametrize("epi", ["plain", "bias", "bias_gelu", "residual", "fp8_out", "bias_gelu_fp8_out"])
def test_fp8_gemm(cuda_device, M, K, N, epi):
    if not _fp8_capable(cuda_device):
        pytest.skip("FP8 GEMMs need compute capability >= 8.9")
    a16, b16 = _inputs(M, K, N, torch.float16, cuda_device)
    a, b = (a16 / 0.05).to(torch.float8_e4m3fn), (b16 / 0.01).to(torch.float8_e4m3fn)
    sa, sb = (torch.tensor([v], device=cuda_device) for v in (0.05, 0.01))
    bias = torch.randn(N, device=cuda_device).half() if "bias" in epi else None
    res = torch.randn(M, N, device=cuda_device).half() if epi == "residual" else None
    act = "gelu_tanh" if "gelu" in epi else "none"
    inv = torch.tensor([1 / 0.02], device=cuda_device) if "fp8_out" in epi else None
    out = gemm(a, b, bias, res, act, 1.0, sa, sb, inv)
    ref = gemm_fp32(a.float() * 0.05, b.float() * 0.01, bias, res, act)
    if inv is None:
        assert out.dtype == torch.float16 and out.shape == (M, N)
        assert float((out.float() - ref).abs().max()) <= fp16_output_atol(ref)
    else:
        assert out.dtype == torch.float8_e4m3fn and out.shape == (M, N)
        want = (ref / 0.02).clamp(-448, 448)
        got = out.float()
        # One FP8 step of the value, plus the accuracy the FP16-output test allows the GEMM itself: Hopper's FP8
        # tensor cores accumulate with fewer bits than FP32 (measured on the H100: errors up to 3e-5 of sum|a||b|,
        # below FP16 output rounding), which moves near-zero outputs by a few FP8 subnormal steps.
        gemm_atol = fp16_output_atol(ref) / 0.02
        bad = ~((got - want).abs() <= want.abs() * 2 ** -3 + 2 ** -9 + gemm_atol)  # NaN counts as bad
        idx = bad.nonzero()[:5].tolist()
        assert not bad.any(), (f"{int(bad.sum())} of {bad.numel()} fp8 outputs off by more than one step "
                               f"({int(torch.isnan(got).sum())} NaN); first (row, col, got, want): "
                               f"{[(r, c, got[r, c].item(), want[r, c].item()) for r, c in idx]}")


@pytest.mark.gpu
def test_gemm_autotuned_call_adds_the_residual_once(cuda_device):
    """The first call of a shape times several cuBLASLt candidates before the real run: its result is still exact."""
    a, b = _inputs(512, 96, 96, torch.float16, cuda_device, seed=3)
    x = torch.randn(512, 96, device=cuda_device).half()
    want = gemm_fp32(a, b, None, x).half()
    out = torch.ops.trt_swin.gemm(a, b, None, x, "none", 1.0)  # fresh shape: this call autotunes
    assert torch.allclose(out.float(), want.float(), atol=2e-2, rtol=1e-2)


@pytest.mark.gpu
def test_gemm_in_cuda_graph(cuda_device):
    a, b = _inputs(256, 96, 288, torch.float16, cuda_device)
    bias = torch.randn(288, device=cuda_device).half()
    eager = gemm(a, b, bias)  # first call outside capture: workspace and heuristic
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = gemm(a, b, bias)
    a.mul_(2)
    g.replay()
    torch.cuda.synchronize()
    assert torch.allclose(out.float(), gemm_fp32(a, b, bias), atol=5e-2, rtol=1e-2)
    assert not torch.equal(out, eager)


@pytest.mark.gpu
@pytest.mark.parametrize("M", [96, 4096], ids=["small-M-workspace", "large-M-no-workspace"])
@pytest.mark.parametrize("env", [None, "0", "32"], ids=["policy", "ws0", "ws32"])
def test_fp16_gemm_with_and_without_workspace(cuda_device, monkeypatch, M, env):
    """cuBLASLt's workspace (offered for M <= 1024, or as $TRT_SWIN_GEMM_WORKSPACE_MB says) changes the algorithms it
    may pick (split-K, dynamically scheduled kernels), never the result; inside a CUDA graph too."""
    if env is None:
        monkeypatch.delenv("TRT_SWIN_GEMM_WORKSPACE_MB", raising=False)
    else:
        monkeypatch.setenv("TRT_SWIN_GEMM_WORKSPACE_MB", env)
    a, b = _inputs(M, 768, 3072, torch.float16, cuda_device, seed=7)
    bias = torch.randn(3072, device=cuda_device).half()
    res = torch.randn(M, 3072, device=cuda_device).half()
    ref = gemm_fp32(a, b, bias, res)
    eager = gemm(a, b, bias, res)
    assert float((eager.float() - ref).abs().max()) <= fp16_output_atol(ref)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = gemm(a, b, bias, res)
    g.replay()
    torch.cuda.synchronize()
    assert float((out.float() - ref).abs().max()) <= fp16_output_atol(ref)


# ---- the Triton INT8 GEMM with its epilogue fused (plugins/gemm/triton_int8.py) -----------------------------------

try:
    from trt_swin.plugins.gemm import triton_int8
except ImportError:  # Triton is not installed: its tests skip
    triton_int8 = None
needs_triton = pytest.mark.skipif(triton_int8 is None, reason="triton is not installed")

# name -> (bias, act, residual, out_scale, out_qdq): the epilogues the INT8 engine asks for
INT8_EPILOGUES = {
    "scale": (False, "none", False, None, False),
    "bias": (True, "none", False, None, False),
    "bias_gelu_int8out": (True, "gelu", False, 0.05, False),
    "bias_residual": (True, "none", True, None, False),
    "bias_int8out": (True, "none", False, 0.3, False),
    "bias_residual_int8out": (True, "none", True, 0.3, False),
    "bias_gelu_qdq_residual": (True, "gelu", True, 0.04, True),
}


def _int8_epilogue_inputs(M, K, N, epi, device, seed=0):
    bias, act, res, out_scale, qdq = INT8_EPILOGUES[epi]
    a, w = _inputs(M, K, N, torch.int8, "cpu", seed)
    g = torch.Generator().manual_seed(seed + 1)
    col_scale = (torch.rand(N, generator=g) + 0.1) * 2e-3 * 64 / K  # keeps the FP32 result O(1)
    b = torch.randn(N, generator=g) if bias else None
    r = torch.randn(M, N, generator=g).half() if res else None
    on = [t if t is None else t.to(device) for t in (a, w, col_scale, b, r)]
    return on, (a, w, col_scale, b, r), (act, out_scale, qdq)


def _check_int8_epilogue(out, ref, out_scale=None):
    """int8 outputs: at most 1 step off, on at most 0.1 % of the elements (a value on a rounding tie after an erf GELU
    one ulp apart); float16 outputs: within one float16 rounding of the reference's, except (quantize-dequantize,
    out_scale) on those elements, one INT8 step (out_scale) more."""
    assert out.dtype == ref.dtype and out.shape == ref.shape, (out.dtype, ref.dtype, out.shape, ref.shape)
    few = max(1, ref.numel() // 1000)
    if out.dtype == torch.int8:
        d = (out.cpu().int() - ref.int()).abs()
        assert int(d.max()) <= 1 and int((d > 0).sum()) <= few, (int(d.max()), int((d > 0).sum()))
        return
    o, r = out.cpu().float(), ref.float()
    assert torch.isfinite(o).all(), f"{(~torch.isfinite(o)).sum().item()} outputs not written (NaN poison)"
    d = (o - r).abs()
    tol = float(r.abs().max()) * 2 ** -10 + 1e-6
    off = d > tol
    if out_scale is None:
        assert not bool(off.any()), float(d.max())
    else:
        worst = float(d.max())
        assert int(off.sum()) <= few and worst <= tol + out_scale * (1 + 2 ** -9), (int(off.sum()), worst)


@pytest.mark.parametrize("change,match", [
    ("a_dtype", "must be int8"), ("k_mismatch", r"a must be \[M, K\]"), ("col_scale", "col_scale must be"),
    ("bias", "bias must be float32"), ("act", "act must be"), ("residual", "residual must be"),
    ("out_scale", "out_scale must be positive"), ("qdq", "out_qdq needs out_scale"),
])
def test_triton_int8_bad_inputs(change, match):
    a, w = _inputs(4, 32, 8, torch.int8, "cpu")
    kw = dict(a=a, w=w, in_scale=0.1, col_scale=torch.ones(8), bias=None, act="none", residual=None, out_scale=None,
              out_qdq=False)
    kw.update({"a_dtype": dict(a=a.half()), "k_mismatch": dict(w=w[:, :16]), "col_scale": dict(col_scale=torch.ones(7)),
               "bias": dict(bias=torch.ones(8).half()), "act": dict(act="gelu_tanh"),
               "residual": dict(residual=torch.zeros(4, 8)), "out_scale": dict(out_scale=0.0),
               "qdq": dict(out_qdq=True)}[change])
    with pytest.raises(ValueError, match=match):
        gemm_int8_ref(**kw)


@needs_triton
def test_triton_int8_rejects_cpu_tensors():
    a, w = _inputs(4, 32, 8, torch.int8, "cpu")
    with pytest.raises(ValueError, match="CUDA tensor"):
        triton_int8.gemm_int8_triton(a, w, 0.1, torch.ones(8))


_INTERPRET_INT8 = """
import torch
from trt_swin.plugins.gemm.triton_int8 import gemm_int8_triton
from trt_swin.plugins.gemm.reference import gemm_int8_ref
torch.manual_seed(0)
worst, off = 0.0, 0
for M, N, K, bias, act, res, osc, qdq in ((70, 96, 96, True, "none", False, None, False),
                                          (33, 288, 64, True, "gelu", False, 0.05, False),
                                          (130, 40, 160, False, "none", True, None, False),
                                          (65, 384, 128, True, "gelu", True, 0.04, True),
                                          (17, 48, 96, True, "none", True, 0.3, False)):
    a = torch.randint(-128, 128, (M, K), dtype=torch.int8)
    w = torch.randint(-128, 128, (N, K), dtype=torch.int8)
    cs = (torch.rand(N) + 0.1) * 1e-3
    b = torch.randn(N) if bias else None
    r = torch.randn(M, N).half() if res else None
    out = gemm_int8_triton(a, w, 0.02, cs, b, act, r, osc, qdq, (32, 32, 32, 4, 1))
    ref = gemm_int8_ref(a, w, 0.02, cs, b, act, r, osc, qdq)
    assert out.dtype == ref.dtype and out.shape == ref.shape, (out.dtype, ref.dtype)
    if out.dtype == torch.int8:
        off = max(off, int((out.int() - ref.int()).abs().max()))
    else:
        worst = max(worst, ((out.double() - ref.double()).norm() / ref.double().norm()).item())
assert off == 0, off
print(worst)
"""


@needs_triton
def test_triton_int8_kernel_math_in_the_interpreter():
    worst = run_in_triton_interpreter(_INTERPRET_INT8)
    assert worst <= 1e-6, f"relative L2 error {worst:.2e} > 1e-6 under the interpreter"


@pytest.mark.gpu
@needs_triton
@pytest.mark.parametrize("M,K,N", GEMM_SHAPES + [pytest.param(3137, 96, 384, id="M3137-K96-N384"),
                                                pytest.param(4099, 1536, 384, id="M4099-K1536-N384")])
@pytest.mark.parametrize("epi", list(INT8_EPILOGUES))
def test_triton_int8_gemm_matches_reference(cuda_device, M, K, N, epi):
    (a, w, cs, b, r), cpu, (act, out_scale, qdq) = _int8_epilogue_inputs(M, K, N, epi, cuda_device)
    poison = Poison(M * N * (1 if out_scale is not None and not qdq else 2))
    out = triton_int8.gemm_int8_triton(a, w, 0.02, cs, b, act, r, out_scale, qdq)
    poison.check(out)
    _check_int8_epilogue(out, gemm_int8_ref(cpu[0], cpu[1], 0.02, cpu[2], cpu[3], act, cpu[4], out_scale, qdq),
                         out_scale if qdq else None)


@pytest.mark.gpu
@needs_triton
def test_triton_int8_gemm_in_cuda_graph(cuda_device):
    (a, w, cs, b, r), cpu, (act, out_scale, qdq) = _int8_epilogue_inputs(256, 96, 384, "bias_residual", cuda_device)
    eager = triton_int8.gemm_int8_triton(a, w, 0.02, cs, b, act, r)  # compiles outside capture
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = triton_int8.gemm_int8_triton(a, w, 0.02, cs, b, act, r)
    r.mul_(2)
    g.replay()
    torch.cuda.synchronize()
    _check_int8_epilogue(out, gemm_int8_ref(cpu[0], cpu[1], 0.02, cpu[2], cpu[3], act, r.cpu()))
    assert not torch.equal(out, eager)
