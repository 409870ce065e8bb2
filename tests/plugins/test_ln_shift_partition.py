"""trt_swin::ln_shift_partition: the FP32 reference against timm's SwinTransformerBlock (CPU), schema / fake / opcheck
(CPU), and the CUDA kernel against the reference on every real and edge shape (GPU).

Also the FP8 E4M3 output rule shared by the kernels (`quantize_fp8`)."""
from __future__ import annotations

import pytest
import torch
from shapes import ALL_SHAPES, BlockShape
from test_ops_common import (Poison, assert_fp8_close, assert_fp8_rounding, assert_fp16_close, assert_int8_close,
                             fp8_scale_for, int8_scale_for)
from timm.models.swin_transformer import SwinTransformerBlock

from trt_swin.plugins.epilogue.reference import quantize_fp8, quantize_int8
from trt_swin.plugins.ln_shift_partition.op import ln_shift_partition
from trt_swin.plugins.ln_shift_partition.reference import ln_shift_partition_ref

# One entry per distinct geometry (the S/T and B/L stage shapes coincide), to keep the CPU timm runs short.
TIMM_SHAPES = list({(s.H, s.W, s.C, s.nH, s.ws, s.ss): s for s in ALL_SHAPES}.values())




class _CaptureWindows(torch.nn.Module):
    """Stands in for WindowAttention: records the partitioned windows timm feeds it, returns them unchanged."""

    def forward(self, x, mask=None):
        self.windows = x
        return x


def _inputs(s: BlockShape, B: int, device="cpu", dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    # Non-zero mean per channel and per token: the statistics must not rely on centered inputs.
    x = torch.randn(B, s.H, s.W, s.C, generator=g) * 1.5 + 3.0 + torch.randn(s.C, generator=g)
    gamma = 1 + 0.2 * torch.randn(s.C, generator=g)
    beta = 0.2 * torch.randn(s.C, generator=g)
    return x.to(device, dtype), gamma.to(device), beta.to(device)


@pytest.mark.parametrize("s", TIMM_SHAPES, ids=lambda s: s.id)
def test_reference_matches_timm_block(s: BlockShape):
    blk = SwinTransformerBlock(s.C, (s.H, s.W), num_heads=s.nH, window_size=s.ws, shift_size=s.ss).eval()
    assert (blk.window_size[0], blk.shift_size[0]) == (s.ws, s.ss)
    blk.attn = _CaptureWindows()
    x, gamma, beta = _inputs(s, 2)
    with torch.no_grad():
        blk.norm1.weight.copy_(gamma)
        blk.norm1.bias.copy_(beta)
        blk._attn(blk.norm1(x))
    expected = blk.attn.windows.reshape(-1, s.C)
    got = ln_shift_partition_ref(x, gamma, beta, blk.norm1.eps, s.ws, s.ss)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize(
    "value, scale, expected",
    [(1.0625, 1.0, 1.0), (1.1875, 1.0, 1.25), (-1.0625, 1.0, -1.0), (0.53, 0.5, 1.0), (500.0, 1.0, 448.0),
     (-1000.0, 1.0, -448.0), (460.0, 1.0, 448.0), (2.0 ** -10, 1.0, 0.0), (3 * 2.0 ** -10, 1.0, 2.0 ** -8),
     (0.3, 1.0, 0.3125)],
    ids=["tie-even-down", "tie-even-up", "neg-tie", "scaled", "sat-high", "sat-low", "sat-below-next", "sub-tie-zero",
         "sub-tie-even", "plain"],
)
def test_quantize_fp8_rounds_half_even_and_saturates(value, scale, expected):
    q = quantize_fp8(torch.tensor([value]), scale)
    assert q.dtype == torch.float8_e4m3fn
    assert q.float().item() == expected


@pytest.mark.parametrize("s", [ALL_SHAPES[0], ALL_SHAPES[-10], ALL_SHAPES[-2]], ids=lambda s: s.id)
def test_fp8_reference_within_half_step(s: BlockShape):
    """The CPU op's fp8 output: padded rows exactly 0, saturated values +-448, the others within half an FP8 step of
    the FP32 reference."""
    x, gamma, beta = _inputs(s, 1, dtype=torch.float16)
    ref = ln_shift_partition_ref(x, gamma, beta, 1e-5, s.ws, s.ss)
    scale = fp8_scale_for(ref)
    q = ln_shift_partition(x, gamma, beta, 1e-5, s.ws, s.ss, scale, out_fp8=True)
    assert_fp8_rounding(q, ref, scale)
    assert (q.float()[ref == 0] == 0).all()


@pytest.mark.parametrize("out", ["fp16", "int8", "fp8"])
def test_fake_kernel_shapes(out):
    x = torch.empty(3, 30, 13, 96, dtype=torch.float16, device="meta")
    p = torch.empty(96, device="meta")
    out_scale = None if out == "fp16" else 0.05
    result = torch.ops.trt_swin.ln_shift_partition(x, p, p, 1e-5, 7, 3, out_scale, out == "fp8")
    assert result.shape == (3 * 5 * 2 * 49, 96)
    assert result.dtype == {"fp16": torch.float16, "int8": torch.int8, "fp8": torch.float8_e4m3fn}[out]


def test_opcheck_cpu():
    x, g, b = _inputs(ALL_SHAPES[-10], 2, dtype=torch.float16)  # padded and shifted
    torch.library.opcheck(torch.ops.trt_swin.ln_shift_partition.default, (x, g, b, 1e-5, 7, 3, None))
    torch.library.opcheck(torch.ops.trt_swin.ln_shift_partition.default, (x, g, b, 1e-5, 7, 3, 0.05))
    torch.library.opcheck(torch.ops.trt_swin.ln_shift_partition.default, (x, g, b, 1e-5, 7, 3, 0.05, True))


@pytest.mark.parametrize("bad, match", [("C", "multiple of 8"), ("gamma", r"gamma and beta must be \[C"),
                                        ("rank", r"\[B, H, W, C\]"), ("fp8", "out_fp8 needs out_scale")])
def test_bad_input_raises(bad, match):
    x, g, b = _inputs(ALL_SHAPES[0], 1, dtype=torch.float16)
    out_fp8 = False
    if bad == "C":
        x, g, b = x[..., :90], g[:90], b[:90]
    elif bad == "gamma":
        g = g[:-8]
    elif bad == "rank":
        x = x[0]
    else:
        out_fp8 = True  # without out_scale
    with pytest.raises(RuntimeError, match=match):
        ln_shift_partition(x, g, b, 1e-5, 7, 3, out_fp8=out_fp8)


@pytest.mark.gpu
@pytest.mark.parametrize("out", ["fp16", "int8", "fp8"])
@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("s", ALL_SHAPES, ids=lambda s: s.id)
def test_cuda_matches_reference(s: BlockShape, B: int, out: str):
    nW = -(-s.H // s.ws) * -(-s.W // s.ws)
    rows = B * nW * s.N
    x, gamma, beta = _inputs(s, B, "cuda", torch.float16, seed=B)
    ref = ln_shift_partition_ref(x, gamma, beta, 1e-5, s.ws, s.ss)
    scale = {"fp16": None, "int8": int8_scale_for, "fp8": fp8_scale_for}[out]
    scale = scale(ref) if scale else None
    poison = Poison(rows * s.C * (2 if out == "fp16" else 1))
    got = ln_shift_partition(x, gamma, beta, 1e-5, s.ws, s.ss, scale, out_fp8=out == "fp8")
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
    x, g, b = _inputs(ALL_SHAPES[-10], 2, "cuda", torch.float16)
    out_scale = None if out == "fp16" else 0.05
    torch.library.opcheck(torch.ops.trt_swin.ln_shift_partition.default,
                          (x, g, b, 1e-5, 7, 3, out_scale, out == "fp8"))


@pytest.mark.gpu
def test_cuda_op_rejects_fp8_without_scale():
    """The C++ check (torch.ops directly, past the Python wrapper's own check)."""
    x, g, b = _inputs(ALL_SHAPES[-10], 1, "cuda", torch.float16)
    with pytest.raises(RuntimeError, match="out_fp8 needs out_scale"):
        torch.ops.trt_swin.ln_shift_partition(x, g, b, 1e-5, 7, 3, None, True)
