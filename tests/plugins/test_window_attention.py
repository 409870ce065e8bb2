"""torch.ops.trt_swin.window_attention: the CUDA kernel against the FP32 reference on every model shape, and the
reference against timm's own WindowAttention (CPU)."""
from __future__ import annotations

import math
import zlib
from functools import lru_cache

import pytest
import torch
from timm.models.swin_transformer import SwinTransformerBlock, WindowAttention

from shapes import ALL_SHAPES, BlockShape
from test_ops_common import run_in_triton_interpreter
from trt_swin.plugins import ops  # noqa: F401  (registers the schemas)
from trt_swin.plugins.window_attention.op import window_attention
from trt_swin.plugins.epilogue.reference import quantize_fp8, quantize_int8
from trt_swin.plugins.window_attention.reference import (
    gather_relative_position_bias,
    shift_mask,
    window_attention_fp32,
    window_attention_reference,
)

# (input dtype, output dtype) of the kernel variants
MODES = {"fp16": (torch.float16, torch.float16), "int8-fp16": (torch.int8, torch.float16),
         "int8-int8": (torch.int8, torch.int8), "fp16-int8": (torch.float16, torch.int8)}
FP16_REL_L2 = 2e-3          # FP32 reference vs fp16 output: P and O each rounded to fp16 once
INT8_MAX_LSB = 1            # int8 output: a value next to a rounding boundary may land one step away
INT8_MISMATCH_FRACTION = 0.02
# fp8 output: one E4M3 step of the value plus the kernel's own error before quantization (fp16 P and O: at most ~4.4e-4
# absolute on these O(1) outputs in a CPU emulation of the kernel's rounding; near zero that is many subnormal steps)
FP8_ATOL = 1e-3
FP8_MISMATCH_FRACTION = 0.05  # emulation: ~0.6 % of outputs land one step away from the quantized reference


@lru_cache(maxsize=None)
def _mask_of(H: int, W: int, ws: int, ss: int) -> torch.Tensor | None:
    """Real shift mask of timm's block for this geometry (dim/heads do not affect it: a small block suffices)."""
    block = SwinTransformerBlock(dim=8, input_resolution=(H, W), num_heads=1, window_size=ws, shift_size=ss)
    return shift_mask(block)


def _windows_per_image(s: BlockShape) -> int:
    return math.ceil(s.H / s.ws) * math.ceil(s.W / s.ws)


def _inputs(s: BlockShape, B: int, in_dtype: torch.dtype, device, bias_std: float = 2.0, seed: int = 0):
    """Random qkv [B*nW*N, 3C], bias [nH, N, N], the block's real mask, and scales; fresh values per (shape, B)."""
    g = torch.Generator().manual_seed(seed + 7919 * B + zlib.crc32(s.id.encode()))
    rows = B * _windows_per_image(s) * s.N
    mask = _mask_of(s.H, s.W, s.ws, s.ss)
    bias = (torch.randn(s.nH, s.N, s.N, generator=g) * bias_std).to(device)
    scales = dict(q_scale=1.0, k_scale=1.0, v_scale=1.0)
    if in_dtype == torch.int8:
        qkv = torch.randint(-127, 128, (rows, 3 * s.C), generator=g, dtype=torch.int8)
        scales = dict(q_scale=1 / 50, k_scale=1 / 60, v_scale=1 / 70)
    else:
        qkv = torch.randn(rows, 3 * s.C, generator=g).half()
    return qkv.to(device), bias, None if mask is None else mask.to(device), scales


def _poison_allocator(numel: int, dtype: torch.dtype, device) -> None:
    """Fill a freed block of the output's size with NaN (fp16) / 0x7F (int8), so the caching allocator hands the op
    poisoned memory: an element the kernel fails to write then shows up as NaN or as an int8 mismatch."""
    junk = torch.empty(numel, dtype=dtype, device=device)
    junk.fill_(float("nan") if dtype == torch.float16 else 0x7F)
    del junk


def _rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-30)).item()


def _check_against_reference(out: torch.Tensor, qkv, bias, mask, nH, scale, scales, out_scale):
    ref32 = window_attention_fp32(qkv, bias, mask, nH, scale, **scales)
    if out_scale is None:
        assert out.dtype == torch.float16
        assert torch.isfinite(out).all(), "non-finite (unwritten or overflowed) output elements"
        err = _rel_l2(out, ref32)
        assert err <= FP16_REL_L2, f"relative L2 error {err:.2e} > {FP16_REL_L2}"
    else:
        assert out.dtype == torch.int8
        ref8 = quantize_int8(ref32, out_scale)
        diff = (out.int() - ref8.int()).abs()
        assert diff.max().item() <= INT8_MAX_LSB, f"int8 output off by {diff.max().item()} steps"
        frac = (diff > 0).float().mean().item()
        assert frac <= INT8_MISMATCH_FRACTION, f"{frac:.2%} of int8 outputs differ from the reference"


def _cases():
    for s in ALL_SHAPES:
        for B in (1, 3):
            for mode in MODES:
                yield pytest.param(s, B, mode, id=f"{s.id}-b{B}-{mode}")


@pytest.mark.gpu
@pytest.mark.parametrize("shape,B,mode", list(_cases()))
def test_kernel_matches_reference(shape: BlockShape, B: int, mode: str, cuda_device):
    in_dtype, out_dtype = MODES[mode]
    qkv, bias, mask, scales = _inputs(shape, B, in_dtype, cuda_device)
    scale = shape.hd ** -0.5
    out_scale = None if out_dtype == torch.float16 else 1 / 100  # outputs are O(1): int8 range covers +-1.27
    _poison_allocator(qkv.shape[0] * shape.C, out_dtype, cuda_device)
    out = window_attention(qkv, bias, mask, shape.nH, scale, out_scale=out_scale, **scales)
    torch.cuda.synchronize()
    assert out.shape == (qkv.shape[0], shape.C)
    _check_against_reference(out, qkv, bias, mask, shape.nH, scale, scales, out_scale)


EXTREME_SHAPES = [s for s in ALL_SHAPES if s.id in (
    "swin_t-224w7-s1-56x56w7-shift-h3", "swin_l384-384w12-s1-96x96w12-shift-h6", "edge-s3-24x24w12-shift-h4",
    "edge-s1-8x8w4-shift-h3")]


@pytest.mark.gpu
@pytest.mark.parametrize("shape", EXTREME_SHAPES, ids=lambda s: s.id)
@pytest.mark.parametrize("magnitude", [3e4, 1e5])
def test_large_bias_stays_finite(shape: BlockShape, magnitude: float, cuda_device):
    """Bias entries of +-3e4 / +-1e5: logits far outside fp16 (and sums that would overflow fp16 if added there)."""
    qkv, _, mask, scales = _inputs(shape, 2, torch.float16, cuda_device)
    g = torch.Generator().manual_seed(1)
    bias = (torch.randint(-1, 2, (shape.nH, shape.N, shape.N), generator=g).float() * magnitude
            + torch.randn(shape.nH, shape.N, shape.N, generator=g)).to(cuda_device)
    out = window_attention(qkv, bias, mask, shape.nH, shape.hd ** -0.5)
    torch.cuda.synchronize()
    assert torch.isfinite(out).all()
    _check_against_reference(out, qkv, bias, mask, shape.nH, shape.hd ** -0.5, scales, None)


@pytest.mark.gpu
@pytest.mark.parametrize("fill", [float("-inf"), -1e30], ids=["neg_inf", "neg_huge"])
def test_fully_masked_rows_are_finite(fill: float, cuda_device):
    """Rows whose every logit is -inf give 0 (no NaN); -1e30 everywhere gives a uniform average of v."""
    s = next(x for x in ALL_SHAPES if x.id == "swin_t-224w7-s1-56x56w7-shift-h3")
    qkv, bias, _, scales = _inputs(s, 1, torch.float16, cuda_device)
    mask = torch.zeros(4, s.N, s.N)
    mask[1, 5:20, :] = fill  # window 1 (mod 4): rows 5..19 fully masked
    mask[3, :, :] = fill     # window 3: every row
    mask = mask.to(cuda_device)
    out = window_attention(qkv, bias, mask, s.nH, s.hd ** -0.5)
    torch.cuda.synchronize()
    assert torch.isfinite(out).all()
    _check_against_reference(out, qkv, bias, mask, s.nH, s.hd ** -0.5, scales, None)
    if fill == float("-inf"):
        w = out.view(-1, s.N, s.C)
        assert (w[3::4] == 0).all() and (w[1::4, 5:20] == 0).all()


@pytest.mark.gpu
@pytest.mark.parametrize("N", [1, 4, 9, 25, 36, 64, 81, 100, 121])
def test_every_window_size(N: int, cuda_device):
    """ws 1..12 beyond the models' 4, 7 and 12: every padded key-tile width."""
    g = torch.Generator().manual_seed(N)
    nH, hd, windows = 5, 32, 6
    qkv = torch.randn(windows * N, 3 * nH * hd, generator=g).half().to(cuda_device)
    bias = torch.randn(nH, N, N, generator=g).to(cuda_device)
    mask = torch.where(torch.rand(3, N, N, generator=g) < 0.3, -100.0, 0.0)
    mask.diagonal(dim1=1, dim2=2).zero_()  # every row keeps itself, as a shift mask does
    mask = mask.to(cuda_device)
    out = window_attention(qkv, bias, mask, nH, hd ** -0.5)
    torch.cuda.synchronize()
    _check_against_reference(out, qkv, bias, mask, nH, hd ** -0.5, {}, None)


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["fp16", "int8-int8"])
def test_opcheck_cuda(mode: str, cuda_device):
    s = next(x for x in ALL_SHAPES if x.id == "edge-s1-30x30w7-shift-h3")
    in_dtype, out_dtype = MODES[mode]
    qkv, bias, mask, scales = _inputs(s, 1, in_dtype, cuda_device)
    out_scale = None if out_dtype == torch.float16 else 0.01
    torch.library.opcheck(torch.ops.trt_swin.window_attention.default,
                          (qkv, bias, mask, s.nH, s.hd ** -0.5, scales["q_scale"], scales["k_scale"],
                           scales["v_scale"], out_scale))


def _fp8_step(x: torch.Tensor) -> torch.Tensor:
    """Spacing of float8_e4m3fn values at magnitude |x| (in the quantized domain): 2^(e - 3), subnormals 2^-9."""
    e = torch.floor(torch.log2(x.abs().clamp_min(2.0 ** -6)))
    return torch.exp2(e - 3)


def _check_fp8_against_reference(out: torch.Tensor, qkv, bias, mask, nH, scale, scales, out_scale):
    """Dequantized fp8 output vs the FP32 reference saturated to +-448 * out_scale: within one E4M3 step + FP8_ATOL."""
    assert out.dtype == torch.float8_e4m3fn
    ref32 = window_attention_fp32(qkv, bias, mask, nH, scale, **scales).cpu()
    got = out.float().cpu()
    assert torch.isfinite(got).all(), "non-finite fp8 outputs (unwritten memory or no saturation)"
    limit = 448 * out_scale
    err = (got * out_scale - ref32.clamp(-limit, limit)).abs()
    tol = _fp8_step(ref32.abs() / out_scale) * out_scale + FP8_ATOL
    worst = (err / tol).max().item()
    assert worst <= 1, f"fp8 output error {worst:.2f}x the tolerance (one E4M3 step + {FP8_ATOL})"
    frac = (got != quantize_fp8(ref32, out_scale).float()).float().mean().item()
    assert frac <= FP8_MISMATCH_FRACTION, f"{frac:.2%} of fp8 outputs differ from the quantized reference"


def _fp8_cases():
    for s in ALL_SHAPES:
        for B in (1, 3):
            for in_dtype in ("fp16", "int8"):
                yield pytest.param(s, B, in_dtype, id=f"{s.id}-b{B}-{in_dtype}-fp8")


@pytest.mark.gpu
@pytest.mark.parametrize("shape,B,in_name", list(_fp8_cases()))
def test_kernel_fp8_output_matches_reference(shape: BlockShape, B: int, in_name: str, cuda_device):
    in_dtype = torch.float16 if in_name == "fp16" else torch.int8
    qkv, bias, mask, scales = _inputs(shape, B, in_dtype, cuda_device, seed=3)
    scale = shape.hd ** -0.5
    out_scale = 1 / 64  # outputs are O(1): they land in E4M3's normal range, well under 448
    _poison_allocator(qkv.shape[0] * shape.C, torch.int8, cuda_device)  # 0x7F bytes: float8_e4m3fn NaN
    out = window_attention(qkv, bias, mask, shape.nH, scale, out_scale=out_scale, out_fp8=True, **scales)
    torch.cuda.synchronize()
    assert out.shape == (qkv.shape[0], shape.C)
    _check_fp8_against_reference(out, qkv, bias, mask, shape.nH, scale, scales, out_scale)


@pytest.mark.gpu
@pytest.mark.parametrize("shape", EXTREME_SHAPES, ids=lambda s: s.id)
def test_fp8_output_saturates(shape: BlockShape, cuda_device):
    """out_scale 1/1000: most outputs exceed 448 steps and must saturate to +-448, never inf / NaN."""
    qkv, bias, mask, scales = _inputs(shape, 2, torch.float16, cuda_device, seed=5)
    out = window_attention(qkv, bias, mask, shape.nH, shape.hd ** -0.5, out_scale=1e-3, out_fp8=True)
    torch.cuda.synchronize()
    assert (out.float().abs() == 448).float().mean().item() > 0.1
    _check_fp8_against_reference(out, qkv, bias, mask, shape.nH, shape.hd ** -0.5, scales, 1e-3)


@pytest.mark.gpu
def test_fp8_without_out_scale_is_a_clear_error(cuda_device):
    qkv = torch.randn(49 * 2, 3 * 96, device=cuda_device).half()
    with pytest.raises(RuntimeError, match="out_fp8 requires out_scale"):
        window_attention(qkv, torch.randn(3, 49, 49, device=cuda_device), None, 3, 0.1, out_fp8=True)


LONG_WALK_SHAPES = [s for s in ALL_SHAPES if s.model == "swin_t-224w7" and s.N == 49]


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["fp16", "int8-int8", "fp16-fp8"])
@pytest.mark.parametrize("shape", LONG_WALK_SHAPES, ids=lambda s: s.id)
def test_long_walks_match_reference(shape: BlockShape, mode: str, cuda_device):
    """Batch 24: the N = 49 kernel's CTAs walk many units each, across (head, mask window) pairs (table rebuilds)."""
    in_dtype = torch.int8 if mode.startswith("int8") else torch.float16
    qkv, bias, mask, scales = _inputs(shape, 24, in_dtype, cuda_device, seed=11)
    scale = shape.hd ** -0.5
    out_scale = {"fp16": None, "int8-int8": 1 / 100, "fp16-fp8": 1 / 64}[mode]
    out = window_attention(qkv, bias, mask, shape.nH, scale, out_scale=out_scale, out_fp8=mode == "fp16-fp8", **scales)
    torch.cuda.synchronize()
    if mode == "fp16-fp8":
        _check_fp8_against_reference(out, qkv, bias, mask, shape.nH, scale, scales, out_scale)
    else:
        _check_against_reference(out, qkv, bias, mask, shape.nH, scale, scales, out_scale)


BAD_INPUTS = {
    "bias_dtype": (3, lambda d: torch.randn(3, 49, 49, device=d).half(), None, "bias must have dtype"),
    "head_dim": (2, lambda d: torch.randn(2, 49, 49, device=d), None, "head_dim must be 16, 32 or 64"),
    "mask_windows": (3, lambda d: torch.randn(3, 49, 49, device=d), lambda d: torch.zeros(3, 49, 49, device=d),
                     "multiple of mask.shape"),
}


@pytest.mark.gpu
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_a_clear_error(case: str, cuda_device):
    num_heads, bias, mask, message = BAD_INPUTS[case]
    qkv = torch.randn(49 * 2, 3 * 96, device=cuda_device).half()
    with pytest.raises(RuntimeError, match=message):
        window_attention(qkv, bias(cuda_device), None if mask is None else mask(cuda_device), num_heads, 0.1)


# ---- CPU: the reference against timm, the helpers, the fake kernel.

class _RoundToHalf(torch.nn.Module):
    """Makes timm's qkv exactly fp16-representable, so the reference (fp16 qkv in) sees the same numbers."""

    def forward(self, x):
        return x.half().float()


TIMM_SHAPES = [s for s in ALL_SHAPES if s.stage >= 3 or s.model == "edge"]


@pytest.mark.parametrize("fused", [False, True], ids=["timm_eager", "timm_sdpa"])
@pytest.mark.parametrize("shape", TIMM_SHAPES, ids=lambda s: s.id)
def test_reference_matches_timm(shape: BlockShape, fused: bool):
    torch.manual_seed(0)
    attn = WindowAttention(shape.C, num_heads=shape.nH, window_size=shape.ws).eval()
    with torch.no_grad():
        attn.relative_position_bias_table.normal_(std=1.0)  # timm's init (std 0.02) would hide a wrong gather
    attn.fused_attn = fused
    attn.proj = torch.nn.Identity()
    attn.qkv = torch.nn.Sequential(attn.qkv, _RoundToHalf())
    mask = _mask_of(shape.H, shape.W, shape.ws, shape.ss)
    B = 2
    x = torch.randn(B * _windows_per_image(shape), shape.N, shape.C)
    with torch.no_grad():
        expected = attn(x, mask=mask).reshape(-1, shape.C)
        qkv = attn.qkv(x).reshape(-1, 3 * shape.C).half()
    bias = gather_relative_position_bias(attn)
    got = window_attention_fp32(qkv, bias, mask, shape.nH, attn.scale)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [s for s in ALL_SHAPES if s.model.startswith("swin_t-") or s.model == "edge"],
                         ids=lambda s: s.id)
def test_helpers_match_timm_buffers(shape: BlockShape):
    block = SwinTransformerBlock(dim=8 * shape.nH, input_resolution=(shape.H, shape.W), num_heads=shape.nH,
                                 window_size=shape.ws, shift_size=shape.ss)
    mask = shift_mask(block)
    if shape.ss == 0:
        assert mask is None and block.attn_mask is None
    else:
        assert mask.shape == (_windows_per_image(shape), shape.N, shape.N) and mask.dtype == torch.float32
        torch.testing.assert_close(mask, block.attn_mask.float(), rtol=0, atol=0)
        assert set(mask.unique().tolist()) <= {0.0, -100.0}
    bias = gather_relative_position_bias(block.attn)
    torch.testing.assert_close(bias, block.attn._get_rel_pos_bias()[0], rtol=0, atol=0)


def test_cpu_op_is_the_reference():
    s = next(x for x in ALL_SHAPES if x.id == "edge-s1-8x8w4-shift-h3")
    qkv, bias, mask, _ = _inputs(s, 3, torch.int8, "cpu")
    out = torch.ops.trt_swin.window_attention(qkv, bias, mask, s.nH, 0.25, 0.02, 0.03, 0.04, 0.01)
    ref = window_attention_reference(qkv, bias, mask, s.nH, 0.25, 0.02, 0.03, 0.04, 0.01)
    assert out.dtype == torch.int8 and torch.equal(out, ref)


@pytest.mark.parametrize("out_scale,out_fp8,dtype", [(None, False, torch.float16), (0.02, False, torch.int8),
                                                      (0.02, True, torch.float8_e4m3fn)])
def test_fake_kernel_shapes(out_scale, out_fp8, dtype):
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        qkv = torch.empty(64 * 49 * 2, 3 * 128, dtype=torch.int8)
        bias = torch.empty(4, 49, 49)
        mask = torch.empty(64, 49, 49)
        out = torch.ops.trt_swin.window_attention(qkv, bias, mask, 4, 0.17, 1.0, 1.0, 1.0, out_scale, out_fp8)
    assert out.shape == (64 * 49 * 2, 128)
    assert out.dtype == dtype


def test_cpu_op_fp8_is_the_reference():
    s = next(x for x in ALL_SHAPES if x.id == "edge-s1-8x8w4-shift-h3")
    qkv, bias, mask, _ = _inputs(s, 3, torch.float16, "cpu")
    out = torch.ops.trt_swin.window_attention(qkv, bias, mask, s.nH, 0.25, 1.0, 1.0, 1.0, 1 / 64, True)
    ref32 = window_attention_fp32(qkv, bias, mask, s.nH, 0.25)
    assert out.dtype == torch.float8_e4m3fn
    assert torch.equal(out.view(torch.uint8), (ref32 * 64).clamp(-448, 448).to(torch.float8_e4m3fn).view(torch.uint8))


def test_fp8_rounding_is_half_even_and_saturating():
    # E4M3 around 1: step 1/8; 1 + 1/16 is a tie -> 1 (even mantissa), 1 + 3/16 -> 1.25; 17 (step 2) ties to 16
    x = torch.tensor([1.0625, 1.1875, -1.0625, 17.0, 19.0, 500.0, -1e6, 448.0, 2.0 ** -10])
    got = quantize_fp8(x, 1.0).float().tolist()
    assert got == [1.0, 1.25, -1.0, 16.0, 20.0, 448.0, -448.0, 448.0, 0.0]
    assert quantize_fp8(torch.tensor([3.0]), 0.5).float().item() == 6.0


def test_fp8_without_out_scale_is_rejected_on_cpu():
    qkv = torch.randn(49 * 2, 3 * 96).half()
    with pytest.raises(ValueError, match="out_fp8 requires out_scale"):
        torch.ops.trt_swin.window_attention(qkv, torch.randn(3, 49, 49), None, 3, 0.1, 1.0, 1.0, 1.0, None, True)


def test_opcheck_cpu():
    s = next(x for x in ALL_SHAPES if x.id == "edge-s3-4x4w4-noshift-h3")
    qkv, bias, mask, _ = _inputs(s, 2, torch.float16, "cpu")
    torch.library.opcheck(torch.ops.trt_swin.window_attention.default, (qkv, bias, mask, s.nH, s.hd ** -0.5))


def test_int8_rounding_is_half_even_and_saturating():
    x = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, 300.0, -300.0, 127.49])
    assert quantize_int8(x, 1.0).tolist() == [0, 2, 2, 0, -2, -2, 126, 127, -128, 127]


def test_cpu_reference_rejects_bad_input():
    qkv = torch.randn(49 * 2, 3 * 96).half()
    with pytest.raises(ValueError, match="N \\(bias.shape\\[-1\\]\\) must be in 1..144"):
        window_attention_reference(qkv, torch.randn(3, 150, 150), None, 3, 0.1)
    with pytest.raises(ValueError, match="qkv must be float16 or int8"):
        window_attention_reference(qkv.float(), torch.randn(3, 49, 49), None, 3, 0.1)


# ---- the Triton kernel (FP16 engines' unfused blocks: head_dim 32, N <= 64, timm's mask derived in-kernel) --------

try:
    from trt_swin.plugins.window_attention import triton_window_attention
except ImportError:  # no triton
    triton_window_attention = None
needs_triton = pytest.mark.skipif(triton_window_attention is None, reason="triton is not installed")
TRITON_SHAPES = [s for s in ALL_SHAPES if s.hd == 32 and s.N <= 64]


def _triton_cases():
    for s in TRITON_SHAPES:
        for B in (1, 3):
            for hpp in sorted({1, 2 if s.nH % 2 == 0 else 1}):
                for heads_first in (False, True):
                    name = f"{s.id}-b{B}-hpp{hpp}" + "-heads_first" * heads_first
                    yield pytest.param(s, B, hpp, heads_first, id=name)
            if s.nH % 4 == 0:  # the large-grid default: 4 heads per program, heads-first
                yield pytest.param(s, B, 4, True, id=f"{s.id}-b{B}-hpp4-heads_first")


@pytest.mark.gpu
@needs_triton
@pytest.mark.parametrize("shape,B,hpp,heads_first", list(_triton_cases()))
def test_triton_kernel_matches_reference(shape: BlockShape, B: int, hpp: int, heads_first: bool, cuda_device):
    from trt_swin.plugins.fused_attention.reference import pad_bias

    qkv, bias, mask, _ = _inputs(shape, B, torch.float16, cuda_device)
    scale = shape.hd ** -0.5
    _poison_allocator(qkv.shape[0] * shape.C, torch.float16, cuda_device)
    cfg = (hpp, 4, 3 if hpp > 1 else 2, heads_first)
    out = triton_window_attention.window_attention_triton(qkv, pad_bias(bias).half(), shape.nH, scale, shape.H,
                                                          shape.W, shape.ws, shape.ss, config=cfg)
    torch.cuda.synchronize()
    assert out.shape == (qkv.shape[0], shape.C)
    # the bias table in float16 adds its rounding (bias_std 2: ~1e-3 absolute on the logits) to the fp16 P / O
    ref32 = window_attention_fp32(qkv, pad_bias(bias).half().float()[:, :shape.N, :shape.N], mask, shape.nH, scale)
    assert torch.isfinite(out).all(), "non-finite (unwritten) output elements"
    err = _rel_l2(out, ref32)
    assert err <= FP16_REL_L2, f"relative L2 error {err:.2e} > {FP16_REL_L2}"


@pytest.mark.gpu
@needs_triton
@pytest.mark.parametrize("shape,B", [pytest.param(s, B, id=f"{s.id}-b{B}") for s in TRITON_SHAPES for B in (1, 3)])
def test_triton_kernel_fp8_output_matches_reference(shape: BlockShape, B: int, cuda_device):
    """FP8 output (an FP8 proj GEMM's input) with the float32 bias table: the CUDA op's FP8 bound."""
    from trt_swin.plugins.fused_attention.reference import pad_bias

    qkv, bias, mask, scales = _inputs(shape, B, torch.float16, cuda_device, seed=3)
    scale, out_scale = shape.hd ** -0.5, 1 / 64
    _poison_allocator(qkv.shape[0] * shape.C, torch.int8, cuda_device)  # 0x7F bytes: float8_e4m3fn NaN
    out = triton_window_attention.window_attention_triton(qkv, pad_bias(bias), shape.nH, scale, shape.H, shape.W,
                                                          shape.ws, shape.ss, out_scale=out_scale)
    torch.cuda.synchronize()
    assert out.shape == (qkv.shape[0], shape.C)
    _check_fp8_against_reference(out, qkv, bias, mask, shape.nH, scale, scales, out_scale)


@pytest.mark.gpu
@needs_triton
@pytest.mark.parametrize("shape", [s for s in EXTREME_SHAPES if s in TRITON_SHAPES], ids=lambda s: s.id)
def test_triton_fp8_output_saturates(shape: BlockShape, cuda_device):
    from trt_swin.plugins.fused_attention.reference import pad_bias

    qkv, bias, mask, scales = _inputs(shape, 2, torch.float16, cuda_device, seed=5)
    out = triton_window_attention.window_attention_triton(qkv, pad_bias(bias), shape.nH, shape.hd ** -0.5, shape.H,
                                                          shape.W, shape.ws, shape.ss, out_scale=1e-3)
    torch.cuda.synchronize()
    assert (out.float().abs() == 448).float().mean().item() > 0.1
    _check_fp8_against_reference(out, qkv, bias, mask, shape.nH, shape.hd ** -0.5, scales, 1e-3)


@needs_triton
def test_triton_kernel_contract():
    from trt_swin.plugins.fused_attention.reference import pad_bias

    op = triton_window_attention.window_attention_triton
    qkv, bias64 = torch.zeros(2 * 49, 3 * 64).half(), pad_bias(torch.zeros(2, 49, 49))
    with pytest.raises(ValueError, match="qkv must be a CUDA tensor"):
        op(qkv, bias64, 2, 1.0, 7, 7, 7, 0)
    with pytest.raises(ValueError, match="head_dim 32 only"):
        op(torch.zeros(2 * 49, 3 * 128).half(), bias64, 2, 1.0, 7, 7, 7, 0)
    with pytest.raises(ValueError, match="must be B \\* 1 windows"):
        op(qkv[:50], bias64, 2, 1.0, 7, 7, 7, 0)
    with pytest.raises(ValueError, match="window_size must be in 1..8"):
        op(torch.zeros(144, 3 * 64).half(), bias64, 2, 1.0, 12, 12, 12, 0)
    with pytest.raises(ValueError, match=r"bias64 must be \[2, 64, 64\]"):
        op(qkv, bias64[:, :49, :49], 2, 1.0, 7, 7, 7, 0)
    with pytest.raises(ValueError, match="heads per program 4 must divide"):
        op(qkv, bias64, 2, 1.0, 7, 7, 7, 0, config=(4, 4, 2))
    with pytest.raises(ValueError, match="out_scale must be positive"):
        op(qkv, bias64, 2, 1.0, 7, 7, 7, 0, out_scale=0.0)


# Triton's interpreter (TRITON_INTERPRET=1, read when triton is imported: hence a subprocess) runs the kernel on the
# CPU, so CI checks its math without a GPU: shifted and not, padded maps, small windows, several heads per program.
_INTERPRET = """
import torch
from trt_swin.plugins.window_attention.triton_window_attention import window_attention_triton, pad_bias
from trt_swin.plugins.window_attention.reference import window_attention_reference
from trt_swin.plugins.fused_attention.reference import swin_shift_mask
torch.manual_seed(0)
worst = 0.0
for B, H, W, nH, ws, shift, cfg in ((2, 14, 14, 3, 7, 3, (1, 4, 2)), (1, 9, 13, 2, 7, 3, (2, 4, 2)),
                                    (1, 8, 8, 4, 4, 2, (4, 4, 1)), (2, 7, 7, 6, 7, 0, (3, 4, 2)),
                                    (1, 5, 11, 1, 3, 1, (1, 4, 2)), (2, 14, 14, 3, 7, 3, (1, 4, 2, True)),
                                    (2, 9, 13, 4, 7, 3, (4, 4, 3, True))):
    N = ws * ws
    nW = -(-H // ws) * -(-W // ws)
    qkv = torch.randn(B * nW * N, 3 * 32 * nH).half()
    bias = 0.5 * torch.randn(nH, N, N)
    ref = window_attention_reference(qkv, bias, swin_shift_mask(H, W, ws, shift), nH, 32 ** -0.5).double()
    out = window_attention_triton(qkv, pad_bias(bias), nH, 32 ** -0.5, H, W, ws, shift, config=cfg).double()
    worst = max(worst, ((out - ref).norm() / ref.norm()).item())
    # FP8 output (E4M3: 3 mantissa bits, about 2 % RMS rounding), scaled so nothing saturates: measured against the
    # FP16 bound times 50
    f8 = window_attention_triton(qkv, pad_bias(bias), nH, 32 ** -0.5, H, W, ws, shift, config=cfg, out_scale=1 / 64)
    assert f8.dtype == torch.float8_e4m3fn
    worst = max(worst, ((f8.double() / 64 - ref).norm() / ref.norm()).item() / 50)
print(worst)
"""


@needs_triton
def test_triton_kernel_math_in_the_interpreter():
    worst = run_in_triton_interpreter(_INTERPRET)
    assert worst < FP16_REL_L2, f"relative L2 error {worst:.2e} > {FP16_REL_L2} under the interpreter"
