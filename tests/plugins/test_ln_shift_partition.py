"""trt_swin::ln_shift_partition: the FP32 reference against timm's SwinTransformerBlock (CPU), schema / fake / opcheck
(CPU), and the CUDA kernel against the reference on every real and edge shape (GPU)."""
from __future__ import annotations

import pytest
import torch
from shapes import ALL_SHAPES, BlockShape
from test_ops_common import Poison, assert_fp16_close, assert_int8_close, int8_scale_for
from timm.models.swin_transformer import SwinTransformerBlock

from trt_swin.plugins.epilogue.reference import quantize_int8
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


@pytest.mark.parametrize("out_scale", [None, 0.05], ids=["fp16", "int8"])
def test_fake_kernel_shapes(out_scale):
    x = torch.empty(3, 30, 13, 96, dtype=torch.float16, device="meta")
    p = torch.empty(96, device="meta")
    out = torch.ops.trt_swin.ln_shift_partition(x, p, p, 1e-5, 7, 3, out_scale)
    assert out.shape == (3 * 5 * 2 * 49, 96)
    assert out.dtype == (torch.int8 if out_scale else torch.float16)


def test_opcheck_cpu():
    x, g, b = _inputs(ALL_SHAPES[-10], 2, dtype=torch.float16)  # padded and shifted
    torch.library.opcheck(torch.ops.trt_swin.ln_shift_partition.default, (x, g, b, 1e-5, 7, 3, None))
    torch.library.opcheck(torch.ops.trt_swin.ln_shift_partition.default, (x, g, b, 1e-5, 7, 3, 0.05))


@pytest.mark.parametrize("bad, match", [("C", "multiple of 8"), ("gamma", r"gamma and beta must be \[C"),
                                        ("rank", r"\[B, H, W, C\]")])
def test_bad_input_raises(bad, match):
    x, g, b = _inputs(ALL_SHAPES[0], 1, dtype=torch.float16)
    if bad == "C":
        x, g, b = x[..., :90], g[:90], b[:90]
    elif bad == "gamma":
        g = g[:-8]
    else:
        x = x[0]
    with pytest.raises(RuntimeError, match=match):
        ln_shift_partition(x, g, b, 1e-5, 7, 3)


@pytest.mark.gpu
@pytest.mark.parametrize("out", ["fp16", "int8"])
@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("s", ALL_SHAPES, ids=lambda s: s.id)
def test_cuda_matches_reference(s: BlockShape, B: int, out: str):
    nW = -(-s.H // s.ws) * -(-s.W // s.ws)
    rows = B * nW * s.N
    x, gamma, beta = _inputs(s, B, "cuda", torch.float16, seed=B)
    ref = ln_shift_partition_ref(x, gamma, beta, 1e-5, s.ws, s.ss)
    scale = int8_scale_for(ref) if out == "int8" else None
    poison = Poison(rows * s.C * (2 if out == "fp16" else 1))
    got = ln_shift_partition(x, gamma, beta, 1e-5, s.ws, s.ss, scale)
    torch.cuda.synchronize()
    poison.check(got)
    if out == "fp16":
        assert_fp16_close(got, ref)
    else:
        assert_int8_close(got, quantize_int8(ref, scale))


@pytest.mark.gpu
@pytest.mark.parametrize("out_scale", [None, 0.05], ids=["fp16", "int8"])
def test_opcheck_cuda(out_scale):
    x, g, b = _inputs(ALL_SHAPES[-10], 2, "cuda", torch.float16)
    torch.library.opcheck(torch.ops.trt_swin.ln_shift_partition.default, (x, g, b, 1e-5, 7, 3, out_scale))
