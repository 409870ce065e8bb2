"""The patch embedding op (plugins/patch_embed: patch gather + GEMM + bias + LayerNorm in one kernel: the CUDA
kernel `torch.ops.trt_swin.patch_embed` for 3 channels / patch 4 / C 96, 128, 192, the Triton kernel for any stem).

CPU: the reference against timm's PatchEmbed (Conv2d + LayerNorm) of every real model, input checks, the op's CPU
kernel (the reference), which stems the CUDA kernel takes, the Triton kernel under Triton's CPU interpreter. GPU: both
kernels against the reference over the real models' stems (batch 1 and 3) and edge shapes (non-square, ragged last
tile of 64 patches, zero-padded K, no norm; for Triton also one channel and patch 2), float32 and float16 images,
output on poisoned memory; `out=` writes only its slice; the CUDA kernel on an image view at an odd offset and its
errors for the stems it does not take. Bound: relative L2 <= 1e-3, every element finite.
"""
from __future__ import annotations

from functools import lru_cache

import pytest
import timm
import torch
from shapes import REAL_MODELS
from test_ops_common import Poison, rel_l2, run_in_triton_interpreter

from trt_swin.plugins.patch_embed.op import CUDA_C, patch_embed, patch_embed_cuda_fits
from trt_swin.plugins.patch_embed.reference import patch_embed_ref

try:
    from trt_swin.plugins.patch_embed.triton_patch_embed import patch_embed_triton
except ImportError:  # Triton is not installed: its tests skip
    patch_embed_triton = None
needs_triton = pytest.mark.skipif(patch_embed_triton is None, reason="triton is not installed")


@lru_cache(maxsize=None)
def _stem_of(model: str) -> tuple[int, int, int, int]:
    """(image size, Cin, patch, C) of a real model's stem, read off timm's module."""
    name, geom = REAL_MODELS[model]
    kw = {"img_size": 384, "window_size": 12} if geom == "384w12" and "384" not in name else {}
    with torch.device("meta"):
        m = timm.create_model(name, pretrained=False, **kw)
    pe = m.patch_embed
    return pe.img_size[0], pe.proj.in_channels, pe.proj.kernel_size[0], pe.proj.out_channels


# (H, W, Cin, p, C, K' (weight columns), norm)
def _real_case(model: str) -> tuple:
    size, cin, p, C = _stem_of(model)
    return size, size, cin, p, C, cin * p * p, True


REAL = {m: _real_case(m) for m in REAL_MODELS}
EDGE = {
    "gray-p2": (28, 28, 1, 2, 32, 8, True),         # one channel, K 4 padded to 8
    "nonsquare-ragged": (32, 280, 3, 4, 64, 48, True),  # Wp 70: a full and a ragged block of 64 patches
    "tiny": (8, 8, 3, 4, 48, 48, False),            # Wp 2, no norm
    "wide-C": (16, 16, 3, 4, 160, 56, True),        # C not a power of two, K 48 padded to 56
}
CASES = {**REAL, **EDGE}


def _inputs(H, W, cin, p, C, Kw, norm, B, device, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    K = cin * p * p
    img = torch.randn(B, cin, H, W, generator=g).to(dtype)
    w = torch.zeros(C, Kw)
    w[:, :K] = torch.randn(C, K, generator=g) * K ** -0.5
    b = 0.1 * torch.randn(C, generator=g)
    gamma = 1 + 0.1 * torch.randn(C, generator=g) if norm else None
    beta = 0.1 * torch.randn(C, generator=g) if norm else None
    mv = lambda t: None if t is None else t.to(device)  # noqa: E731
    return mv(img), mv(w.half()), mv(b), mv(gamma), mv(beta)


@pytest.mark.parametrize("model", list(REAL_MODELS))
def test_reference_matches_timm(model):
    name, geom = REAL_MODELS[model]
    kw = {"img_size": 384, "window_size": 12} if geom == "384w12" and "384" not in name else {}
    torch.manual_seed(0)
    pe = timm.create_model(name, pretrained=False, **kw).patch_embed.eval()
    H = pe.img_size[0]
    img = torch.randn(1, pe.proj.in_channels, H, H)
    with torch.no_grad():
        expected = pe(img)  # [1, Hp, Wp, C] (timm's NHWC output)
        w = pe.proj.weight.reshape(pe.proj.out_channels, -1).half()
        out = patch_embed_ref(img, w, pe.proj.bias, pe.proj.kernel_size[0], pe.norm.weight, pe.norm.bias,
                              pe.norm.eps)
    assert out.shape == expected.shape
    assert rel_l2(out, expected) <= 2e-3, f"reference vs timm: relative L2 {rel_l2(out, expected):.2e}"


@pytest.mark.parametrize("change,match", [
    ("size", "multiple of the patch size"),
    ("weight-dtype", "weight must be"),
    ("weight-k", "weight must be"),
    ("bias", "bias must be"),
    ("gamma-only", "both gamma and beta"),
    ("int-images", "float32 or float16"),
])
def test_bad_inputs(change, match):
    img, w, b, gamma, beta = _inputs(16, 16, 3, 4, 32, 48, True, 1, "cpu")
    if change == "size":
        img = img[..., :15]
    elif change == "weight-dtype":
        w = w.float()
    elif change == "weight-k":
        w = w[:, :40]
    elif change == "bias":
        b = b[:16]
    elif change == "gamma-only":
        beta = None
    else:
        img = img.to(torch.int32)
    with pytest.raises(ValueError, match=match):
        patch_embed_ref(img, w, b, 4, gamma, beta)


@needs_triton
def test_triton_rejects_cpu_tensors_and_bad_out():
    img, w, b, gamma, beta = _inputs(16, 16, 3, 4, 32, 48, True, 1, "cpu")
    with pytest.raises(ValueError, match="CUDA tensor"):
        patch_embed_triton(img, w, b, 4, gamma, beta)


_INTERPRET = """
import torch
from trt_swin.plugins.patch_embed.triton_patch_embed import patch_embed_triton
from trt_swin.plugins.patch_embed.op import CUDA_C, patch_embed, patch_embed_cuda_fits
from trt_swin.plugins.patch_embed.reference import patch_embed_ref
torch.manual_seed(0)
worst = 0.0
for B, cin, H, W, p, C, Kw, norm, dt in ((2, 3, 32, 40, 4, 96, 48, True, torch.float32),
                                         (1, 1, 28, 28, 2, 32, 8, False, torch.float16),
                                         (1, 3, 8, 280, 4, 64, 56, True, torch.float32)):
    K = cin * p * p
    img = torch.randn(B, cin, H, W).to(dt)
    w = torch.zeros(C, Kw)
    w[:, :K] = torch.randn(C, K) * K ** -0.5
    w = w.half()
    b = 0.1 * torch.randn(C)
    g, be = (1 + 0.1 * torch.randn(C), 0.1 * torch.randn(C)) if norm else (None, None)
    out = patch_embed_triton(img, w, b, p, g, be).double()
    ref = patch_embed_ref(img, w, b, p, g, be).double()
    worst = max(worst, ((out - ref).norm() / ref.norm()).item())
print(worst)
"""


@needs_triton
def test_triton_kernel_math_in_the_interpreter():
    worst = run_in_triton_interpreter(_INTERPRET)
    assert worst <= 1e-3, f"relative L2 error {worst:.2e} > 1e-3 under the interpreter"


@pytest.mark.gpu
@needs_triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32-images", "fp16-images"])
@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("case", list(CASES))
def test_triton_kernel_matches_reference(case, B, dtype):
    _assert_kernel_matches_reference(patch_embed_triton, CASES[case], B, dtype)


def _assert_kernel_matches_reference(kernel, shape: tuple, B: int, dtype: torch.dtype) -> None:
    """kernel (patch_embed or patch_embed_triton) on a (H, W, Cin, p, C, K', norm) case, output on poisoned memory,
    against the reference: every element written, relative L2 <= 1e-3."""
    H, W, cin, p, C, Kw, norm = shape
    img, w, b, gamma, beta = _inputs(H, W, cin, p, C, Kw, norm, B, "cuda", dtype)
    poison = Poison(B * (H // p) * (W // p) * C * 2)
    out = kernel(img, w, b, p, gamma, beta)
    poison.check(out)
    ref = patch_embed_ref(img.cpu(), w.cpu(), b.cpu(), p, None if gamma is None else gamma.cpu(),
                          None if beta is None else beta.cpu())
    assert torch.isfinite(out).all(), f"{(~torch.isfinite(out)).sum().item()} outputs not written (NaN poison)"
    err = rel_l2(out.cpu(), ref)
    assert err <= 1e-3, f"relative L2 error {err:.2e} > 1e-3"


@pytest.mark.gpu
@pytest.mark.parametrize("kernel", [pytest.param("triton", marks=needs_triton), "cuda"])
def test_out_writes_only_its_slice(kernel):
    op = patch_embed_triton if kernel == "triton" else patch_embed
    H, W, cin, p, C, Kw, norm = CASES["swin_t"]
    img, w, b, gamma, beta = _inputs(H, W, cin, p, C, Kw, norm, 2, "cuda")
    buf = torch.full((5, H // p, W // p, C), float("nan"), dtype=torch.float16, device="cuda")
    got = op(img, w, b, p, gamma, beta, out=buf[1:3])
    assert got.data_ptr() == buf[1:3].data_ptr()
    assert torch.isnan(buf[0]).all() and torch.isnan(buf[3:]).all(), "wrote outside its slice"
    ref = patch_embed_ref(img.cpu(), w.cpu(), b.cpu(), p, gamma.cpu(), beta.cpu())
    assert rel_l2(buf[1:3].cpu(), ref) <= 1e-3
    with pytest.raises(ValueError, match="out must be"):
        op(img, w, b, p, gamma, beta, out=buf[:1])


# ---- the CUDA kernel ---------------------------------------------------------------------------------------------
CUDA_CASES = {k: v for k, v in CASES.items() if patch_embed_cuda_fits(v[2], v[3], v[4], v[0], v[1])}
CUDA_CASES.update({
    "ragged-C192": (8, 264, 3, 4, 192, 48, True),     # Wp 66: a ragged tile of 2 patches, Swin-L's C
    "padded-K-C128": (12, 24, 3, 4, 128, 56, True),   # K 48 padded to 56 (the weight's row pitch), Hp 3
    "no-norm-C96": (4, 8, 3, 4, 96, 48, False),       # one patch row of 2 patches, no LayerNorm
})


def test_cuda_kernel_takes_every_real_stem():
    assert set(REAL) <= set(CUDA_CASES), sorted(set(REAL) - set(CUDA_CASES))
    assert not patch_embed_cuda_fits(1, 2, 32, 28, 28)  # fmnist-mini's stem: the Triton kernel
    assert not patch_embed_cuda_fits(3, 4, 64, 224, 224)  # C outside CUDA_C
    assert not patch_embed_cuda_fits(3, 4, 96, 224, 220)  # rows of partial 16-byte vectors
    assert CUDA_C == (96, 128, 192)


@pytest.mark.parametrize("norm", [True, False], ids=["norm", "no-norm"])
def test_op_cpu_kernel_is_the_reference(norm):
    img, w, b, gamma, beta = _inputs(8, 16, 3, 4, 96, 56, norm, 2, "cpu")
    out = patch_embed(img, w, b, 4, gamma, beta)
    assert torch.equal(out, patch_embed_ref(img, w, b, 4, gamma, beta))
    buf = torch.full((3, 2, 4, 96), float("nan"), dtype=torch.float16)
    assert patch_embed(img, w, b, 4, gamma, beta, out=buf[1:]).data_ptr() == buf[1:].data_ptr()
    assert torch.isnan(buf[0]).all() and torch.equal(buf[1:], out)
    with pytest.raises(ValueError, match="out must be"):
        patch_embed(img, w, b, 4, gamma, beta, out=buf[:1])


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32-images", "fp16-images"])
@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("case", list(CUDA_CASES))
def test_cuda_kernel_matches_reference(case, B, dtype, cuda_device):
    _assert_kernel_matches_reference(patch_embed, CUDA_CASES[case], B, dtype)


@pytest.mark.gpu
def test_cuda_kernel_reads_images_at_an_odd_offset(cuda_device):
    H, W, cin, p, C, Kw, norm = CASES["swin_t"]
    img, w, b, gamma, beta = _inputs(H, W, cin, p, C, Kw, norm, 2, "cuda", torch.float16)
    ref = patch_embed_ref(img.cpu(), w.cpu(), b.cpu(), p, gamma.cpu(), beta.cpu())
    flat = torch.empty(img.numel() + 1, dtype=torch.float16, device="cuda")
    odd = flat[1:].view(img.shape)  # 2 bytes past an allocation's start: not 16-byte aligned
    odd.copy_(img)
    assert odd.data_ptr() % 16
    assert rel_l2(patch_embed(odd, w, b, p, gamma, beta).cpu(), ref) <= 1e-3


@pytest.mark.gpu
@pytest.mark.parametrize("case,match", [("gray-p2", "no CUDA kernel"), ("wide-C", "no CUDA kernel")])
def test_cuda_kernel_refuses_stems_it_does_not_take(case, match, cuda_device):
    H, W, cin, p, C, Kw, norm = CASES[case]
    img, w, b, gamma, beta = _inputs(H, W, cin, p, C, Kw, norm, 1, "cuda")
    with pytest.raises(ValueError, match=match):
        patch_embed(img, w, b, p, gamma, beta)
    with pytest.raises(RuntimeError, match="no CUDA kernel"):  # the op itself, past the wrapper's check
        torch.ops.trt_swin.patch_embed(img, w, b.half(), p, gamma, beta, 1e-5,
                                       torch.empty(1, H // p, W // p, C, dtype=torch.float16, device="cuda"))
