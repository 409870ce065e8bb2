"""plugins/ln_gemm: the row-gathered GEMMs (LayerNorm folded into QKV / FC1, proj + window reverse + residual).

CPU: the fold's algebra, input errors, and the Triton kernel's math under Triton's CPU interpreter. GPU: the kernels
against the FP32 references on every real and edge block shape that the engine can send them (C % 16 == 0), at
batch 1 and 2, with poisoned outputs; every config of the engine's rules on two shapes (with the dot's load feeding
the statistics too, Triton 3.6 once summed wrong on some configs: the kernel loads twice); inside a CUDA graph with
programmatic dependent launch.

Bounds: rel-L2 <= 2e-3 against the FP32 reference (measured 2e-4 - 4.5e-4 on the H100: fp16 output rounding).
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from shapes import ALL_SHAPES
from test_ops_common import Poison, rel_l2, run_in_triton_interpreter

from trt_swin.plugins.ln_gemm.reference import (check_inputs, check_window_reverse_inputs, fold_layer_norm,
                                                gemm_window_reverse_ref, ln_gemm_ref)

try:
    from trt_swin.plugins.ln_gemm import triton_ln_gemm
except ImportError:  # triton not installed
    triton_ln_gemm = None

needs_triton = pytest.mark.skipif(triton_ln_gemm is None, reason="triton is not installed")
EPS = 1e-5
BOUND = 2e-3
# distinct (H, W, C, ws, ss) of the real and edge blocks the kernels take (C % 16 == 0)
BLOCKS = sorted({(s.H, s.W, s.C, s.ws, s.ss) for s in ALL_SHAPES if s.C % 16 == 0})
BLOCK_IDS = [f"{h}x{w}c{c}w{ws}s{ss}" for h, w, c, ws, ss in BLOCKS]


def _params(C: int, N: int, device="cpu", seed=0, bias=True):
    g = torch.Generator().manual_seed(seed)
    gamma = 1 + 0.2 * torch.randn(C, generator=g)
    beta = 0.2 * torch.randn(C, generator=g)
    w = (torch.randn(N, C, generator=g) / C ** 0.5).half()
    b = 0.1 * torch.randn(N, generator=g) if bias else None
    return [t.to(device) if t is not None else None for t in (gamma, beta, w, b)]


def _x(B, H, W, C, device="cpu", seed=1):
    g = torch.Generator().manual_seed(seed)
    # a mean well away from 0 and per-channel offsets, as residual streams have
    return (torch.randn(B, H, W, C, generator=g) * 1.5 + 2.0 + torch.randn(C, generator=g)).half().to(device)


def test_fold_is_the_layer_norm():
    """rstd (x W'^T - mean u) + v equals LN(x) W^T + b (float64 algebra; the only difference is W' in fp16)."""
    gamma, beta, w, b = _params(96, 288)
    x = _x(1, 4, 4, 96).reshape(-1, 96).double()
    f = fold_layer_norm(w, gamma, beta, b)
    assert torch.equal(f.u, f.weight.float().sum(1)) and torch.equal(f.bias, b)
    mean, var = x.mean(1, keepdim=True), x.var(1, unbiased=False, keepdim=True)
    folded = (x @ f.weight.double().T - mean * f.u.double()) / (var + EPS).sqrt() + f.v.double()
    ref = F.linear(F.layer_norm(x, (96,), gamma.double(), beta.double(), EPS), w.double(), b.double())
    assert rel_l2(folded, ref) < 5e-4


@pytest.mark.parametrize("gather,act", [(("rows",), "none"), (("rows",), "gelu_tanh"), (("window", 7, 3), "none")])
def test_reference_is_the_two_kernel_path(gather, act):
    """ln_gemm_ref = LayerNorm (+ roll + pad + window partition) then the GEMM, as the engine's unfused path."""
    from trt_swin.plugins.ln_shift_partition.reference import ln_shift_partition_ref

    gamma, beta, w, b = _params(64, 128)
    x = _x(2, 9, 10, 64)
    ws, ss = (gather[1], gather[2]) if gather[0] == "window" else (1, 0)
    y = F.linear(ln_shift_partition_ref(x, gamma, beta, EPS, ws, ss), w.float(), b)
    if act == "gelu_tanh":
        y = F.gelu(y, approximate="tanh")
    torch.testing.assert_close(ln_gemm_ref(x, gamma, beta, EPS, w, b, gather, act), y)


@pytest.mark.parametrize("change,match", [
    ({"gather": ("merge",)}, "gather must be"),
    ({"gather": ("window", 7, 7)}, "gather must be"),
    ({"x": torch.zeros(1, 4, 4, 40, dtype=torch.float16)}, "multiple of 16"),
    ({"x": torch.zeros(1, 4, 4, 64)}, "float16"),
    ({"w": torch.zeros(96, 32, dtype=torch.float16)}, r"\[N, C=64\]"),
    ({"u": torch.zeros(96, dtype=torch.float16)}, "u must be"),
    ({"v": torch.zeros(95)}, "v must be"),
])
def test_bad_inputs(change, match):
    gamma, beta, w, b = _params(64, 96)
    f = fold_layer_norm(w, gamma, beta, b)
    f = f._replace(**{k: change[k] for k in ("u", "v") if k in change})
    if "w" in change:
        f = f._replace(weight=change["w"])
    with pytest.raises(ValueError, match=match):
        check_inputs(change.get("x", torch.zeros(1, 4, 4, 64, dtype=torch.float16)), f,
                     change.get("gather", ("window", 4, 2)))


@pytest.mark.parametrize("change,match", [
    ({"a": torch.zeros(15, 64, dtype=torch.float16)}, r"B\*nW\*ws\*ws=16"),
    ({"w": torch.zeros(64, 32, dtype=torch.float16)}, r"\[C=64, K=64\]"),
    ({"x": torch.zeros(1, 4, 4, 64, dtype=torch.float16).transpose(1, 2)}, "contiguous"),
    ({"bias": torch.zeros(63)}, r"bias must be \[C=64\]"),
])
def test_window_reverse_bad_inputs(change, match):
    kw = {"a": torch.zeros(16, 64, dtype=torch.float16), "w": torch.zeros(64, 64, dtype=torch.float16),
          "bias": None, "x": torch.zeros(1, 4, 4, 64, dtype=torch.float16)} | change
    with pytest.raises(ValueError, match=match):
        check_window_reverse_inputs(kw["a"], kw["w"], kw["bias"], kw["x"], 4, 2)


@needs_triton
def test_rejects_cpu_tensors_and_bad_act():
    gamma, beta, w, b = _params(64, 96)
    f = fold_layer_norm(w, gamma, beta, b)
    x = torch.zeros(1, 4, 4, 64, dtype=torch.float16)
    with pytest.raises(ValueError, match="CUDA device"):
        triton_ln_gemm.ln_gemm_triton(x, f, EPS, ("rows",))
    with pytest.raises(ValueError, match="act must be"):
        triton_ln_gemm._act_code("relu")
    with pytest.raises(ValueError, match="CUDA device"):
        triton_ln_gemm.gemm_window_reverse_triton(torch.zeros(16, 64, dtype=torch.float16), w[:64], None, x, 4, 2)


_INTERPRET = """
import torch
from trt_swin.plugins.ln_gemm import triton_ln_gemm as LG
from trt_swin.plugins.ln_gemm.reference import fold_layer_norm, ln_gemm_ref, gemm_window_reverse_ref
torch.manual_seed(0)
worst = 0.0
for (B, H, W, C), N, bias, gather, act, cfg in (
        ((1, 14, 14, 48), 144, True, ("window", 7, 3), "none", (32, 64, 16, 4, 1)),
        ((2, 8, 8, 32), 96, True, ("window", 4, 2), "none", (32, 32, 32, 4, 1)),
        ((1, 10, 9, 64), 192, False, ("window", 7, 3), "none", (64, 64, 64, 4, 1)),
        ((2, 5, 7, 64), 256, True, ("rows",), "gelu_tanh", (32, 64, 32, 4, 1)),
        ((1, 6, 6, 32), 128, True, ("rows",), "gelu_erf", (32, 32, 32, 4, 1))):
    x = (torch.randn(B, H, W, C) * 1.5 + 3.0 + torch.randn(C)).half()
    g = 1 + 0.2 * torch.randn(C); b = 0.2 * torch.randn(C)
    w = (torch.randn(N, C) / C ** 0.5).half()
    bi = torch.randn(N) if bias else None
    out = LG.ln_gemm_triton(x, fold_layer_norm(w, g, b, bi), 1e-5, gather, act, cfg)
    ref = ln_gemm_ref(x, g, b, 1e-5, w, bi, gather, act)
    assert out.shape == ref.shape, (out.shape, ref.shape)
    worst = max(worst, ((out.double() - ref.double()).norm() / ref.double().norm()).item())
for (B, H, W, C), ws, ss, K, cfg in (((1, 14, 14, 48), 7, 3, 48, (32, 64, 16, 4, 1)),
                                     ((2, 10, 9, 32), 7, 3, 32, (64, 32, 32, 4, 1)),
                                     ((1, 8, 8, 64), 4, 0, 64, (32, 64, 64, 4, 1))):
    rows = B * -(-H // ws) * -(-W // ws) * ws * ws
    a = torch.randn(rows, K).half(); w = (torch.randn(C, K) / K ** 0.5).half(); bi = torch.randn(C)
    x = torch.randn(B, H, W, C).half()
    ref = gemm_window_reverse_ref(a, w, bi, x, ws, ss)
    out = LG.gemm_window_reverse_triton(a, w, bi, x.clone(), ws, ss, cfg)
    worst = max(worst, ((out.double() - ref.double()).norm() / ref.double().norm()).item())
print(worst)
"""


@needs_triton
def test_kernel_math_in_the_interpreter():
    worst = run_in_triton_interpreter(_INTERPRET)
    assert worst <= 1e-3, f"relative L2 error {worst:.2e} > 1e-3 under the interpreter"


def _run_ln_gemm(H, W, C, ws, ss, B, kind, config=None):
    """(out, FP32 reference) of the QKV (window gather, N = 3C) or FC1 (rows, N = 4C, tanh GELU) form."""
    N, gather, act = (3 * C, ("window", ws, ss), "none") if kind == "qkv" else (4 * C, ("rows",), "gelu_tanh")
    gamma, beta, w, b = _params(C, N, "cuda")
    x = _x(B, H, W, C, "cuda")
    f = fold_layer_norm(w, gamma, beta, b)
    rows = B * -(-H // ws) * -(-W // ws) * ws * ws if kind == "qkv" else B * H * W
    poison = Poison(rows * N * 2)
    out = triton_ln_gemm.ln_gemm_triton(x, f, EPS, gather, act, config)
    poison.check(out)
    ref = ln_gemm_ref(x.cpu(), gamma.cpu(), beta.cpu(), EPS, w.cpu(), b.cpu(), gather, act)
    return out.cpu(), ref


@pytest.mark.gpu
@needs_triton
@pytest.mark.parametrize("B", [1, 2])
@pytest.mark.parametrize("kind", ["qkv", "fc1"])
@pytest.mark.parametrize("blk", BLOCKS, ids=BLOCK_IDS)
def test_ln_gemm_matches_reference(cuda_device, blk, kind, B):
    out, ref = _run_ln_gemm(*blk, B, kind)
    assert bool(torch.isfinite(out).all())
    assert rel_l2(out, ref) <= BOUND


@pytest.mark.gpu
@needs_triton
@pytest.mark.parametrize("B", [1, 2])
@pytest.mark.parametrize("blk", BLOCKS, ids=BLOCK_IDS)
def test_gemm_window_reverse_matches_reference(cuda_device, blk, B):
    H, W, C, ws, ss = blk
    rows = B * -(-H // ws) * -(-W // ws) * ws * ws
    g = torch.Generator().manual_seed(2)
    a = torch.randn(rows, C, generator=g).half().cuda()
    w = (torch.randn(C, C, generator=g) / C ** 0.5).half().cuda()
    b = (0.1 * torch.randn(C, generator=g)).cuda()
    x = _x(B, H, W, C, "cuda")
    ref = gemm_window_reverse_ref(a.cpu(), w.cpu(), b.cpu(), x.cpu(), ws, ss)
    out = triton_ln_gemm.gemm_window_reverse_triton(a, w, b, x, ws, ss)
    assert out.data_ptr() == x.data_ptr()
    assert rel_l2(out.cpu(), ref) <= BOUND


def _rule_configs():
    return sorted({cfg for _, narrow, wide in triton_ln_gemm.RULES for cfg in (narrow, wide)} | {triton_ln_gemm.LARGE})


@pytest.mark.gpu
@needs_triton
@pytest.mark.parametrize("blk,B", [((14, 14, 384, 7, 3), 1), ((28, 28, 192, 7, 3), 4), ((14, 14, 384, 7, 3), 32)],
                         ids=["s3-b1", "s2-b4", "s3-b32"])
@pytest.mark.parametrize("kind", ["qkv", "fc1"])
def test_every_rule_config(cuda_device, blk, B, kind):
    for cfg in _rule_configs():
        out, ref = _run_ln_gemm(*blk, B, kind, cfg)
        assert rel_l2(out, ref) <= BOUND, cfg


@pytest.mark.gpu
@needs_triton
def test_chain_in_cuda_graph_with_pdl(cuda_device):
    """QKV (window) -> proj + window reverse (in place) -> FC1 (rows), captured with programmatic dependent launch:
    replays after the input changes give the eager results without PDL."""
    from trt_swin.plugins import triton_utils

    if torch.cuda.get_device_capability()[0] < 9:
        pytest.skip("programmatic dependent launch needs compute capability 9.x")
    H, W, C, ws, ss = 14, 14, 384, 7, 3
    gamma, beta, wq, bq = _params(C, 3 * C, "cuda")
    _, _, wf, bf = _params(C, 4 * C, "cuda", seed=3)
    fq, ff = fold_layer_norm(wq, gamma, beta, bq), fold_layer_norm(wf, gamma, beta, bf)
    wp = wq[:C, :].contiguous()
    x = _x(1, H, W, C, "cuda")

    def chain(x):
        qkv = triton_ln_gemm.ln_gemm_triton(x, fq, EPS, ("window", ws, ss))
        triton_ln_gemm.gemm_window_reverse_triton(qkv[:, :C], wp, bq[:C], x, ws, ss)
        return triton_ln_gemm.ln_gemm_triton(x, ff, EPS, ("rows",), "gelu_tanh")

    x0 = x.clone()
    eager = chain(x.clone())
    triton_utils.PDL = True
    try:
        chain(x.clone())  # compiles the PDL variants outside capture
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            out = chain(x)
    finally:
        triton_utils.PDL = False
    x.copy_(x0)
    g.replay()
    torch.cuda.synchronize()
    assert torch.equal(out, eager)
    x.copy_(x0 * 0.5)
    g.replay()
    assert torch.equal(out, chain(x0 * 0.5))
