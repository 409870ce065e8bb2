"""trt_swin::epilogue: the FP32 reference against timm's Mlp / residual math (CPU), schema / fake / opcheck (CPU), and
the CUDA kernel against the reference for the GEMM outputs of every real and edge shape (GPU)."""
from __future__ import annotations

import pytest
import torch
from shapes import ALL_SHAPES
from test_ops_common import Poison, assert_fp16_close, assert_int8_close, int8_scale_for
from timm.layers import Mlp

from trt_swin.plugins.epilogue.op import epilogue
from trt_swin.plugins.epilogue.reference import epilogue_ref, quantize_int8

MAPS = sorted({(s.H, s.W, s.C) for s in ALL_SHAPES})
MAP_IDS = [f"{h}x{w}c{c}" for h, w, c in MAPS]

# name: (GEMM width as a multiple of C, input dtype, col_scale, bias, act, residual, int8 output)
CASES = {
    "fc1-fp16-bias-gelu": (4, torch.float16, False, True, "gelu", False, False),
    "fc1-int32-colscale-bias-gelu-q8": (4, torch.int32, True, True, "gelu", False, True),
    "fc2-int32-colscale-bias-residual": (1, torch.int32, True, True, "none", True, False),
    "qkv-int8-bias-q8": (3, torch.int8, False, True, "none", False, True),
    "dequant-int8": (1, torch.int8, False, False, "none", False, False),
    "quant-fp16": (1, torch.float16, False, False, "none", False, True),
}


def _inputs(M: int, N: int, in_dtype, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    if in_dtype == torch.float16:
        x, in_scale = torch.randn(M, N, generator=g) * 2, 1.0
    elif in_dtype == torch.int8:
        x, in_scale = torch.randint(-128, 128, (M, N), generator=g, dtype=torch.int8), 0.02
    else:
        x, in_scale = torch.randint(-60000, 60000, (M, N), generator=g, dtype=torch.int32), 4e-5
    col_scale = 0.5 + torch.rand(N, generator=g)
    bias = 0.5 * torch.randn(N, generator=g)
    residual = torch.randn(M, N, generator=g) * 2
    x = x.to(in_dtype) if in_dtype == torch.float16 else x
    return x.to(device), in_scale, col_scale.to(device), bias.to(device), residual.half().to(device)


@pytest.mark.parametrize("C", sorted({c for _, _, c in MAPS}))
def test_reference_matches_timm_mlp(C: int):
    """bias + GELU of fc1 (timm Mlp), then fc2's bias + the block's residual add."""
    mlp = Mlp(C, 4 * C).eval()
    x = torch.randn(2, 7, C)
    residual = torch.randn(2, 7, C)
    with torch.no_grad():
        hidden = epilogue_ref(x @ mlp.fc1.weight.T, bias=mlp.fc1.bias, act="gelu")
        torch.testing.assert_close(hidden, mlp.act(mlp.fc1(x)))
        out = epilogue_ref(hidden @ mlp.fc2.weight.T, bias=mlp.fc2.bias, residual=residual)
        torch.testing.assert_close(out, residual + mlp(x))


def test_reference_per_channel_dequant():
    x = torch.randint(-1000, 1000, (5, 16), dtype=torch.int32)
    cs = torch.rand(16)
    torch.testing.assert_close(epilogue_ref(x, 0.01, cs), x.float() * 0.01 * cs)


@pytest.mark.parametrize("out_scale", [None, 0.05], ids=["fp16", "int8"])
def test_fake_kernel_shapes(out_scale):
    x = torch.empty(2, 49, 384, dtype=torch.int32, device="meta")
    out = torch.ops.trt_swin.epilogue(x, 1.0, None, None, "gelu", None, out_scale)
    assert out.shape == x.shape and out.dtype == (torch.int8 if out_scale else torch.float16)


@pytest.mark.parametrize("case", list(CASES))
def test_opcheck_cpu(case):
    mult, dt, cs, b, act, res, q = CASES[case]
    x, s, col, bias, r = _inputs(10, 16 * mult, dt)
    torch.library.opcheck(torch.ops.trt_swin.epilogue.default,
                          (x, s, col if cs else None, bias if b else None, act, r if res else None, 0.05 if q else None))


@pytest.mark.parametrize("bad, match", [("act", "act must be 'none' or 'gelu'"), ("bias", r"bias must be float32 \[N"),
                                        ("dtype", "float16, int8 or int32")])
def test_bad_input_raises(bad, match):
    x, s, col, bias, r = _inputs(4, 16, torch.float16)
    act = "relu" if bad == "act" else "none"
    bias = bias[:8] if bad == "bias" else bias
    x = x.float() if bad == "dtype" else x
    with pytest.raises(RuntimeError, match=match):
        epilogue(x, s, None, bias, act)


def _run_cuda_case(M: int, N: int, case: str, seed: int):
    _, dt, cs, b, act, res, q = CASES[case]
    x, s, col, bias, r = _inputs(M, N, dt, "cuda", seed=seed)
    kw = dict(in_scale=s, col_scale=col if cs else None, bias=bias if b else None, act=act, residual=r if res else None)
    ref = epilogue_ref(x, **kw)
    scale = int8_scale_for(ref) if q else None
    poison = Poison(ref.numel() * (1 if q else 2))
    got = epilogue(x, **kw, out_scale=scale)
    torch.cuda.synchronize()
    poison.check(got)
    if q:
        assert_int8_close(got, quantize_int8(ref, scale))
    else:
        assert_fp16_close(got, ref)


@pytest.mark.gpu
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("hwc", MAPS, ids=MAP_IDS)
def test_cuda_matches_reference(hwc, B: int, case: str):
    H, W, C = hwc
    _run_cuda_case(B * H * W, CASES[case][0] * C, case, seed=B)


@pytest.mark.gpu
@pytest.mark.parametrize("case", list(CASES))
def test_cuda_scalar_path_odd_width(case):
    """N % 8 != 0 takes the scalar kernel."""
    _run_cuda_case(37, 25 * CASES[case][0], case, seed=7)


@pytest.mark.gpu
@pytest.mark.parametrize("case", list(CASES))
def test_opcheck_cuda(case):
    mult, dt, cs, b, act, res, q = CASES[case]
    x, s, col, bias, r = _inputs(98, 96 * mult, dt, "cuda")
    torch.library.opcheck(torch.ops.trt_swin.epilogue.default,
                          (x, s, col if cs else None, bias if b else None, act, r if res else None, 0.05 if q else None))
