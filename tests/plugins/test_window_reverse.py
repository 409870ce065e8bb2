"""trt_swin::window_reverse (+ window_reverse_inplace): the FP32 reference against timm's SwinTransformerBlock (CPU),
schema / fake / opcheck (CPU), and the CUDA kernel against the reference on every real and edge shape (GPU)."""
from __future__ import annotations

import pytest
import torch
from shapes import ALL_SHAPES, BlockShape
from test_ops_common import (Poison, assert_fp8_close, assert_fp8_rounding, assert_fp16_close, assert_int8_close,
                             fp8_scale_for, int8_scale_for)
from timm.models.swin_transformer import SwinTransformerBlock

from trt_swin.plugins.epilogue.reference import quantize_int8
from trt_swin.plugins.epilogue.reference import quantize_fp8
from trt_swin.plugins.window_reverse.op import window_reverse, window_reverse_
from trt_swin.plugins.window_reverse.reference import window_reverse_ref

TIMM_SHAPES = list({(s.H, s.W, s.C, s.nH, s.ws, s.ss): s for s in ALL_SHAPES}.values())

# (y dtype, proj bias added here, LayerNorm output dtype or None)
CASES = {
    "y16": ("fp16", False, None),
    "y16-bias-ln16": ("fp16", True, "fp16"),
    "y8-bias-ln8": ("int8", True, "int8"),
    "y8-ln16": ("int8", False, "fp16"),
    "y16-bias-lnfp8": ("fp16", True, "fp8"),
    "y8-lnfp8": ("int8", False, "fp8"),
}


def _bits(t: torch.Tensor) -> torch.Tensor:
    """fp8 tensors as bytes, for exact comparisons (torch.equal has no float8 kernels)."""
    return t.view(torch.uint8) if t.dtype == torch.float8_e4m3fn else t


class _ReturnGiven(torch.nn.Module):
    """Stands in for WindowAttention: returns a given window-order output."""

    def __init__(self, y: torch.Tensor):
        super().__init__()
        self.y = y

    def forward(self, x, mask=None):
        assert x.shape == self.y.shape
        return self.y


def _rows(s: BlockShape, B: int) -> int:
    return B * -(-s.H // s.ws) * -(-s.W // s.ws) * s.N


def _inputs(s: BlockShape, B: int, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    residual = torch.randn(B, s.H, s.W, s.C, generator=g) * 2 + torch.randn(s.C, generator=g)
    y = torch.randn(_rows(s, B), s.C, generator=g)
    bias = 0.5 * torch.randn(s.C, generator=g)
    gamma = 1 + 0.2 * torch.randn(s.C, generator=g)
    beta = 0.2 * torch.randn(s.C, generator=g)
    return [t.to(device) for t in (y, residual, bias, gamma, beta)]


@pytest.mark.parametrize("with_bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("s", TIMM_SHAPES, ids=lambda s: s.id)
def test_reference_matches_timm_block(s: BlockShape, with_bias: bool):
    blk = SwinTransformerBlock(s.C, (s.H, s.W), num_heads=s.nH, window_size=s.ws, shift_size=s.ss).eval()
    y, residual, bias, gamma, beta = _inputs(s, 2)
    blk.attn = _ReturnGiven((y + bias if with_bias else y).view(-1, s.N, s.C))
    with torch.no_grad():
        blk.norm2.weight.copy_(gamma)
        blk.norm2.bias.copy_(beta)
        expected = residual + blk._attn(blk.norm1(residual))  # SwinTransformerBlock.forward, first half
        expected_ln = blk.norm2(expected)
    out, ln = window_reverse_ref(y, residual, bias if with_bias else None, s.ws, s.ss, ln_gamma=gamma, ln_beta=beta,
                                 eps=blk.norm2.eps)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(ln, expected_ln)


@pytest.mark.parametrize("s", [ALL_SHAPES[0], ALL_SHAPES[-10], ALL_SHAPES[-2]], ids=lambda s: s.id)
def test_fp8_reference_within_half_step(s: BlockShape):
    """The CPU op's fp8 LayerNorm output: saturated values +-448, the others within half an FP8 step of the FP32
    reference; the residual stream stays float16."""
    y, residual, bias, gamma, beta = _inputs(s, 1)
    y, residual = y.half(), residual.half()
    ref_out, ref_ln = window_reverse_ref(y, residual, bias, s.ws, s.ss, 1.0, gamma, beta, 1e-5, round_sum_to_fp16=True)
    scale = fp8_scale_for(ref_ln)
    out, q = window_reverse(y, residual, bias, s.ws, s.ss, 1.0, gamma, beta, 1e-5, scale, out_fp8=True)
    assert out.dtype == torch.float16 and torch.equal(out, ref_out.half())
    assert_fp8_rounding(q, ref_ln, scale)


@pytest.mark.parametrize("case", list(CASES))
def test_fake_kernel_shapes(case):
    y_dt, _, ln_dt = CASES[case]
    s = ALL_SHAPES[-9]  # 30x30 -> 35x35, shifted
    y = torch.empty(_rows(s, 2), s.C, dtype=torch.int8 if y_dt == "int8" else torch.float16, device="meta")
    r = torch.empty(2, s.H, s.W, s.C, dtype=torch.float16, device="meta")
    p = torch.empty(s.C, device="meta") if ln_dt else None
    out, ln = torch.ops.trt_swin.window_reverse(y, r, None, s.ws, s.ss, 0.1 if y_dt == "int8" else 1.0, p, p, 1e-5,
                                                0.1 if ln_dt in ("int8", "fp8") else None, ln_dt == "fp8")
    assert out.shape == r.shape and out.dtype == torch.float16
    assert ln.shape == (r.shape if ln_dt else (0,))
    dtypes = {None: torch.float16, "fp16": torch.float16, "int8": torch.int8, "fp8": torch.float8_e4m3fn}
    assert ln.dtype == dtypes[ln_dt]


def test_opcheck_cpu():
    s = ALL_SHAPES[-9]
    y, r, b, g, be = _inputs(s, 2)
    y, r = y.half(), r.half()
    torch.library.opcheck(torch.ops.trt_swin.window_reverse.default, (y, r, b, s.ws, s.ss, 1.0, g, be, 1e-5, None))
    torch.library.opcheck(torch.ops.trt_swin.window_reverse.default, (y, r, None, s.ws, s.ss, 1.0, None, None, 1e-5, None))
    torch.library.opcheck(torch.ops.trt_swin.window_reverse_inplace.default,
                          (y, r.clone(), b, s.ws, s.ss, 1.0, g, be, 1e-5, 0.05))
    torch.library.opcheck(torch.ops.trt_swin.window_reverse.default,
                          (y, r, b, s.ws, s.ss, 1.0, g, be, 1e-5, 0.05, True))
    torch.library.opcheck(torch.ops.trt_swin.window_reverse_inplace.default,
                          (y, r.clone(), b, s.ws, s.ss, 1.0, g, be, 1e-5, 0.05, True))


@pytest.mark.parametrize("bad, match", [("y_rows", "y must be"), ("y_scale", "y_scale applies to int8"),
                                        ("ln_half", "both ln_gamma and ln_beta"), ("bias", r"bias must be \[C"),
                                        ("fp8", "out_fp8 needs ln_out_scale")])
def test_bad_input_raises(bad, match):
    s = ALL_SHAPES[-9]
    y, r, b, g, be = _inputs(s, 1)
    y, r = y.half(), r.half()
    kw = dict(ln_gamma=g, ln_beta=be)
    y_scale = 1.0
    if bad == "y_rows":
        y = y[:-1]
    elif bad == "y_scale":
        y_scale = 0.5
    elif bad == "ln_half":
        kw = dict(ln_gamma=g)
    elif bad == "bias":
        b = b[:-8]
    else:
        kw["out_fp8"] = True  # without ln_out_scale
    with pytest.raises(RuntimeError, match=match):
        window_reverse(y, r, b, s.ws, s.ss, y_scale, **kw)


def _cuda_case(s: BlockShape, B: int, case: str):
    y_dt, with_bias, ln_dt = CASES[case]
    y, residual, bias, gamma, beta = _inputs(s, B, "cuda", seed=B)
    residual = residual.half()
    y_scale = 1.0
    if y_dt == "int8":
        y_scale = int8_scale_for(y)
        y = quantize_int8(y, y_scale)
    else:
        y = y.half()
    args = dict(bias=bias if with_bias else None, window_size=s.ws, shift=s.ss, y_scale=y_scale,
                ln_gamma=gamma if ln_dt else None, ln_beta=beta if ln_dt else None, eps=1e-5)
    ref_out, ref_ln = window_reverse_ref(y, residual, **args, round_sum_to_fp16=True)
    ln_scale = {"int8": int8_scale_for, "fp8": fp8_scale_for}[ln_dt](ref_ln) if ln_dt in ("int8", "fp8") else None
    args.update(ln_out_scale=ln_scale, out_fp8=ln_dt == "fp8")  # the LayerNorm output's quantization
    return y, residual, args, ref_out, ref_ln


@pytest.mark.gpu
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("s", ALL_SHAPES, ids=lambda s: s.id)
def test_cuda_matches_reference(s: BlockShape, B: int, case: str):
    y, residual, args, ref_out, ref_ln = _cuda_case(s, B, case)
    ln_dt = CASES[case][2]
    ln_scale = args["ln_out_scale"]
    n = residual.numel()
    poison = Poison(2 * n, *([n * (2 if ln_dt == "fp16" else 1)] if ln_dt else []))
    out, ln = window_reverse(y, residual, **args)
    torch.cuda.synchronize()
    poison.check(out, *([ln] if ln_dt else []))
    assert_fp16_close(out, ref_out)
    if ln_dt is None:
        assert ln.numel() == 0
    elif ln_dt == "fp16":
        assert_fp16_close(ln, ref_ln)
    elif ln_dt == "int8":
        assert_int8_close(ln, quantize_int8(ref_ln, ln_scale))
    else:
        assert_fp8_close(ln, quantize_fp8(ref_ln, ln_scale), ln_scale)


@pytest.mark.gpu
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("s", [ALL_SHAPES[1], ALL_SHAPES[-10], ALL_SHAPES[-3]], ids=lambda s: s.id)
def test_cuda_inplace_equals_out_of_place(s: BlockShape, case: str):
    """The launcher's out == residual alias: bit-identical to the out-of-place result."""
    y, residual, args, _, _ = _cuda_case(s, 2, case)
    out, ln = window_reverse(y, residual, **args)
    stream = residual.clone()
    ln_inplace = window_reverse_(y, stream, **args)
    assert torch.equal(stream, out)
    assert ln_inplace.dtype == ln.dtype and torch.equal(_bits(ln_inplace), _bits(ln))


@pytest.mark.gpu
@pytest.mark.parametrize("case", list(CASES))
def test_opcheck_cuda(case):
    s = ALL_SHAPES[-10]
    y, residual, args, _, _ = _cuda_case(s, 2, case)
    a = (y, residual, args["bias"], s.ws, s.ss, args["y_scale"], args["ln_gamma"], args["ln_beta"], 1e-5,
         args["ln_out_scale"], args["out_fp8"])
    torch.library.opcheck(torch.ops.trt_swin.window_reverse.default, a)
    torch.library.opcheck(torch.ops.trt_swin.window_reverse_inplace.default, (a[0], a[1].clone(), *a[2:]))


@pytest.mark.gpu
def test_cuda_op_rejects_fp8_without_scale():
    """The C++ check (torch.ops directly, past the Python wrapper's own check)."""
    s = ALL_SHAPES[-10]
    y, r, b, g, be = _inputs(s, 1, "cuda")
    with pytest.raises(RuntimeError, match="out_fp8 needs ln_out_scale"):
        torch.ops.trt_swin.window_reverse(y.half(), r.half(), b, s.ws, s.ss, 1.0, g, be, 1e-5, None, True)
