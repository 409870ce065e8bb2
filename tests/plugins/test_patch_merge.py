"""trt_swin::patch_merge: the FP32 reference against timm's PatchMerging (CPU), schema / fake / opcheck (CPU), and the
CUDA kernel against the reference on every real and edge feature-map shape, odd sizes included (GPU)."""
from __future__ import annotations

import pytest
import torch
from shapes import ALL_SHAPES
from test_ops_common import (Poison, assert_fp8_close, assert_fp8_rounding, assert_fp16_close, assert_int8_close,
                             fp8_scale_for, int8_scale_for)
from timm.models.swin_transformer import PatchMerging

from trt_swin.plugins.epilogue.reference import quantize_int8
from trt_swin.plugins.patch_merge.op import patch_merge
from trt_swin.plugins.epilogue.reference import quantize_fp8
from trt_swin.plugins.patch_merge.reference import patch_merge_ref

# Every distinct feature map (H, W, C) of the real and edge shapes that the kernel supports (4C <= 4096), plus odd
# sizes the models never produce. Ids read like `56x56c96`.
MAPS = sorted({(s.H, s.W, s.C) for s in ALL_SHAPES if s.C <= 1024} | {(5, 7, 96), (9, 4, 192), (1, 1, 64)})
MAP_IDS = [f"{h}x{w}c{c}" for h, w, c in MAPS]


def _inputs(H, W, C, B, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, H, W, C, generator=g) * 1.5 + 2.0 + torch.randn(C, generator=g)
    gamma = 1 + 0.2 * torch.randn(4 * C, generator=g)
    beta = 0.2 * torch.randn(4 * C, generator=g)
    return x.to(device), gamma.to(device), beta.to(device)


@pytest.mark.parametrize("hwc", MAPS, ids=MAP_IDS)
def test_reference_matches_timm_patch_merging(hwc):
    H, W, C = hwc
    pm = PatchMerging(C).eval()
    pm.reduction = torch.nn.Identity()  # the op stops at the LayerNorm; the 4C -> 2C GEMM runs elsewhere
    x, gamma, beta = _inputs(H, W, C, 2)
    with torch.no_grad():
        pm.norm.weight.copy_(gamma)
        pm.norm.bias.copy_(beta)
        expected = pm(x)
    torch.testing.assert_close(patch_merge_ref(x, gamma, beta, pm.norm.eps), expected)


@pytest.mark.parametrize("hwc", [(56, 56, 96), (15, 13, 96), (5, 7, 96)], ids=["56x56c96", "15x13c96", "5x7c96"])
def test_fp8_reference_within_half_step(hwc):
    """The CPU op's fp8 output: saturated values +-448, the others within half an FP8 step of the FP32 reference."""
    H, W, C = hwc
    x, gamma, beta = _inputs(H, W, C, 1)
    x = x.half()
    ref = patch_merge_ref(x, gamma, beta, 1e-5)
    scale = fp8_scale_for(ref)
    q = patch_merge(x, gamma, beta, 1e-5, scale, out_fp8=True)
    assert_fp8_rounding(q, ref, scale)


@pytest.mark.parametrize("out", ["fp16", "int8", "fp8"])
def test_fake_kernel_shapes(out):
    x = torch.empty(3, 15, 20, 192, dtype=torch.float16, device="meta")
    p = torch.empty(768, device="meta")
    out_scale = None if out == "fp16" else 0.05
    result = torch.ops.trt_swin.patch_merge(x, p, p, 1e-5, out_scale, out == "fp8")
    assert result.shape == (3, 8, 10, 768)
    assert result.dtype == {"fp16": torch.float16, "int8": torch.int8, "fp8": torch.float8_e4m3fn}[out]


def test_opcheck_cpu():
    x, g, b = _inputs(15, 13, 96, 2)
    torch.library.opcheck(torch.ops.trt_swin.patch_merge.default, (x.half(), g, b, 1e-5, None))
    torch.library.opcheck(torch.ops.trt_swin.patch_merge.default, (x.half(), g, b, 1e-5, 0.05))
    torch.library.opcheck(torch.ops.trt_swin.patch_merge.default, (x.half(), g, b, 1e-5, 0.05, True))


def test_bad_gamma_raises():
    x, g, b = _inputs(8, 8, 96, 1)
    with pytest.raises(RuntimeError, match=r"gamma and beta must be \[4C=384\]"):
        patch_merge(x.half(), g[:96], b[:96], 1e-5)


def test_fp8_without_scale_raises():
    x, g, b = _inputs(8, 8, 96, 1)
    with pytest.raises(RuntimeError, match="patch_merge: out_fp8 needs out_scale"):
        patch_merge(x.half(), g, b, 1e-5, out_fp8=True)


@pytest.mark.gpu
@pytest.mark.parametrize("out", ["fp16", "int8", "fp8"])
@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("hwc", MAPS, ids=MAP_IDS)
def test_cuda_matches_reference(hwc, B: int, out: str):
    H, W, C = hwc
    x, gamma, beta = _inputs(H, W, C, B, "cuda", seed=B)
    x = x.half()
    ref = patch_merge_ref(x, gamma, beta, 1e-5)
    scale = {"fp16": None, "int8": int8_scale_for, "fp8": fp8_scale_for}[out]
    scale = scale(ref) if scale else None
    poison = Poison(ref.numel() * (2 if out == "fp16" else 1))
    got = patch_merge(x, gamma, beta, 1e-5, scale, out_fp8=out == "fp8")
    torch.cuda.synchronize()
    poison.check(got)
    if out == "fp16":
        assert_fp16_close(got, ref)
    elif out == "int8":
        assert_int8_close(got, quantize_int8(ref, scale))
    else:
        assert_fp8_close(got, quantize_fp8(ref, scale), scale)


@pytest.mark.gpu
@pytest.mark.parametrize("out", ["fp16", "int8", "fp8"])
def test_opcheck_cuda(out):
    x, g, b = _inputs(15, 13, 96, 2, "cuda")
    out_scale = None if out == "fp16" else 0.05
    torch.library.opcheck(torch.ops.trt_swin.patch_merge.default, (x.half(), g, b, 1e-5, out_scale, out == "fp8"))


@pytest.mark.gpu
def test_cuda_op_rejects_fp8_without_scale():
    """The C++ check (torch.ops directly, past the Python wrapper's own check)."""
    x, g, b = _inputs(8, 8, 96, 1, "cuda")
    with pytest.raises(RuntimeError, match="out_fp8 needs out_scale"):
        torch.ops.trt_swin.patch_merge(x.half(), g, b, 1e-5, None, True)
