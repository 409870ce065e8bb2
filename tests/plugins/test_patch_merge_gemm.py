"""trt_swin::patch_merge_gemm: the folded reference against timm's PatchMerging (CPU), schema / fake / opcheck and
input errors (CPU), and the Hopper kernel against the reference on the real stage-1 maps, edge maps, ragged last tiles
and large means, with poisoned outputs (GPU, compute capability 9.0)."""
from __future__ import annotations

import pytest
import torch
from shapes import ALL_SHAPES
from test_ops_common import Poison, rel_l2
from timm.models.swin_transformer import PatchMerging

from trt_swin.plugins.ln_gemm.reference import fold_layer_norm
from trt_swin.plugins.patch_merge.op import patch_merge
from trt_swin.plugins.patch_merge_gemm.op import patch_merge_gemm, patch_merge_gemm_available
from trt_swin.plugins.patch_merge_gemm.reference import (SUPPORTED_C, patch_merge_gemm_ref, patch_merge_linear_ref)

EPS = 1e-5
# Every (H, W, C) of the real and edge block shapes the kernel takes (even maps, C in SUPPORTED_C; Swin-T / S stage 1 at
# 224 and 384), plus small maps of each C: 2 x 2 (one token per image), a non-square map, 7 tiles with a ragged one.
MAPS = sorted({(s.H, s.W, s.C) for s in ALL_SHAPES if s.C in SUPPORTED_C and s.H % 2 == 0 and s.W % 2 == 0}
              | {(2, 2, 32), (14, 6, 64), (8, 8, 96), (28, 32, 32), (4, 30, 64)})
MAP_IDS = [f"{h}x{w}c{c}" for h, w, c in MAPS]


def _inputs(H, W, C, B, device="cpu", seed=0, offset=2.0):
    """x [B, H, W, C] float16 with per-channel offsets (a mean the statistics must remove) and a timm-like reduction."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(B, H, W, C, generator=g) * 1.5 + offset + torch.randn(C, generator=g)).half()
    gamma = 1 + 0.2 * torch.randn(4 * C, generator=g)
    beta = 0.2 * torch.randn(4 * C, generator=g)
    weight = (torch.randn(2 * C, 4 * C, generator=g) * (4 * C) ** -0.5).half()
    return x.to(device), gamma.to(device), beta.to(device), weight.to(device)


def _folded(gamma, beta, weight):
    f = fold_layer_norm(weight, gamma, beta)
    return f.weight, f.u, f.v


@pytest.mark.parametrize("hwc", MAPS, ids=MAP_IDS)
def test_reference_matches_timm_patch_merging(hwc):
    """The folded form (the CPU op) computes timm's PatchMerging: within the fold's fp16 rounding of W diag(gamma)."""
    H, W, C = hwc
    x, gamma, beta, weight = _inputs(H, W, C, 2)
    pm = PatchMerging(C).eval()
    with torch.no_grad():
        pm.norm.weight.copy_(gamma)
        pm.norm.bias.copy_(beta)
        pm.reduction.weight.copy_(weight.float())
        expected = pm(x.float())
    out = patch_merge_gemm(x, *_folded(gamma, beta, weight), EPS)
    assert out.dtype == torch.float16 and out.shape == expected.shape
    assert rel_l2(out, expected) <= 1e-3


def test_reference_large_mean():
    """Rows whose mean is 50x their spread: u sums the rounded W', so mean * u removes the mean the GEMM summed."""
    x, gamma, beta, weight = _inputs(8, 8, 96, 2, offset=75.0)
    ref = patch_merge_linear_ref(x, gamma, beta, EPS, weight)
    assert rel_l2(patch_merge_gemm_ref(x, *_folded(gamma, beta, weight), EPS), ref) <= 1e-3


def test_fake_kernel_shape():
    x = torch.empty(3, 56, 40, 96, dtype=torch.float16, device="meta")
    w = torch.empty(192, 384, dtype=torch.float16, device="meta")
    uv = torch.empty(192, device="meta")
    out = torch.ops.trt_swin.patch_merge_gemm(x, w, uv, uv, EPS)
    assert out.shape == (3, 28, 20, 192) and out.dtype == torch.float16


def test_opcheck_cpu():
    x, gamma, beta, weight = _inputs(6, 4, 32, 2)
    torch.library.opcheck(torch.ops.trt_swin.patch_merge_gemm.default, (x, *_folded(gamma, beta, weight), EPS))


@pytest.mark.parametrize("H,W,C,wshape,match", [
    (7, 8, 96, (192, 384), r"H and W must be even"),
    (8, 8, 128, (256, 512), r"C must be one of \(32, 64, 96\)"),
    (8, 8, 96, (96, 384), r"w must be \[2C, 4C\] = \[192, 384\]"),
])
def test_bad_inputs_raise(H, W, C, wshape, match):
    x = torch.zeros(1, H, W, C, dtype=torch.float16)
    w = torch.zeros(wshape, dtype=torch.float16)
    uv = torch.zeros(2 * C)
    with pytest.raises(RuntimeError, match=match):
        patch_merge_gemm(x, w, uv, uv, EPS)


def test_cpu_is_available():
    assert patch_merge_gemm_available(torch.device("cpu"))


# ---- GPU ------------------------------------------------------------------------------------------------------------
def _needs_kernel():
    if not patch_merge_gemm_available(torch.device("cuda")):
        pytest.skip("patch_merge_gemm's kernel needs compute capability 9.0 and the sm_90a kernels built")


def _run_poisoned(x, w, u, v):
    B, H, W, C = x.shape
    poison = Poison(B * (H // 2) * (W // 2) * 2 * C * 2)
    out = patch_merge_gemm(x, w, u, v, EPS)
    poison.check(out)
    torch.cuda.synchronize()
    return out


def _assert_close(out, ref):
    assert torch.isfinite(out).all(), f"{(~torch.isfinite(out)).sum().item()} non-finite (unwritten?) outputs"
    err = rel_l2(out, ref)
    assert err <= 1e-3, f"relative L2 error {err:.2e} > 1e-3"
    # per merged token too: a row written from another row's statistics would hide in the total
    o, r = out.double().flatten(0, 2), ref.double().flatten(0, 2)
    row_err = (o - r).norm(dim=1) / r.norm(dim=1).clamp_min(1e-6)
    assert row_err.max().item() <= 5e-3, f"token {row_err.argmax().item()} off by {row_err.max().item():.2e}"


@pytest.mark.gpu
@pytest.mark.parametrize("B", [1, 3, 37])
@pytest.mark.parametrize("hwc", MAPS, ids=MAP_IDS)
def test_kernel_matches_reference(hwc, B):
    """B 37 at 56 x 56: 454 tiles of 64 tokens, a ragged last one, several per warpgroup; small maps: one CTA."""
    _needs_kernel()
    H, W, C = hwc
    x, gamma, beta, weight = _inputs(H, W, C, B, "cuda", seed=B)
    w, u, v = _folded(gamma, beta, weight)
    out = _run_poisoned(x, w, u, v)
    _assert_close(out, patch_merge_gemm_ref(x, w, u, v, EPS))


@pytest.mark.gpu
def test_kernel_batch_128_and_unfused_path():
    """Swin-T stage 1 at batch 128 (1568 tiles, every SM busy), against the reference and the two-kernel path it
    replaces (patch_merge + an FP16 GEMM)."""
    _needs_kernel()
    x, gamma, beta, weight = _inputs(56, 56, 96, 128, "cuda", seed=5)
    w, u, v = _folded(gamma, beta, weight)
    out = _run_poisoned(x, w, u, v)
    _assert_close(out, patch_merge_gemm_ref(x, w, u, v, EPS))
    unfused = patch_merge(x, gamma, beta, EPS) @ weight.t()
    assert rel_l2(out, unfused) <= 2e-3


@pytest.mark.gpu
@pytest.mark.parametrize("offset", [0.0, 75.0])
def test_kernel_mean_offsets(offset):
    """Zero-mean rows and rows whose mean is 50x their spread (the shifted statistics and the u term)."""
    _needs_kernel()
    x, gamma, beta, weight = _inputs(56, 56, 96, 4, "cuda", seed=7, offset=offset)
    ref = patch_merge_linear_ref(x, gamma, beta, EPS, weight)
    _assert_close(patch_merge_gemm(x, *_folded(gamma, beta, weight), EPS), ref)


@pytest.mark.gpu
def test_cuda_graph_replay():
    _needs_kernel()
    x, gamma, beta, weight = _inputs(56, 56, 96, 8, "cuda", seed=3)
    w, u, v = _folded(gamma, beta, weight)
    patch_merge_gemm(x, w, u, v, EPS)  # warm-up outside capture
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = patch_merge_gemm(x, w, u, v, EPS)
    out.fill_(float("nan"))
    g.replay()
    torch.cuda.synchronize()
    _assert_close(out, patch_merge_gemm_ref(x, w, u, v, EPS))


@pytest.mark.gpu
def test_cuda_bad_dtype_raises():
    x, gamma, beta, weight = _inputs(8, 8, 96, 1, "cuda")
    w, u, v = _folded(gamma, beta, weight)
    with pytest.raises(RuntimeError, match="CUDA needs float16 x, w and float32 u, v"):
        patch_merge_gemm(x, w.float(), u, v, EPS)


@pytest.mark.gpu
def test_unsupported_device_raises_clearly():
    """Off compute capability 9.0 (or without the sm_90a kernels) the wrapper says so instead of a CUDA error."""
    if patch_merge_gemm_available(torch.device("cuda")):
        pytest.skip("this device has the kernel")
    x, gamma, beta, weight = _inputs(8, 8, 96, 1, "cuda")
    with pytest.raises(RuntimeError, match="needs compute capability 9.0"):
        patch_merge_gemm(x, *_folded(gamma, beta, weight), EPS)
