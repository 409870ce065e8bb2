"""The classifier tail op (plugins/classifier_head: final LayerNorm + average pool in one Triton kernel, FP32 head).

CPU: the reference against timm's own tail (norm, then forward_head) of every real model, input checks, the Triton
kernel under Triton's CPU interpreter. GPU: the op against the reference over the real models' tails (batch 1, 3 and
130), edge shapes (C not a power of two, few tokens, no bias, features only), features and logits on poisoned memory.
Bound: relative L2 <= 1e-5 (both sides FP32 after the fp16 read; the head GEMM as cuBLAS's FP32 GEMM or the tf32x3
Triton kernel), every element finite.
"""
from __future__ import annotations

from functools import lru_cache

import pytest
import timm
import torch
from shapes import REAL_MODELS
from test_ops_common import Poison, rel_l2, run_in_triton_interpreter

from trt_swin.plugins.classifier_head.reference import classifier_head_ref

try:
    from trt_swin.plugins.classifier_head.triton_head import classifier_head_triton
except ImportError:  # Triton is not installed: its tests skip
    classifier_head_triton = None
needs_triton = pytest.mark.skipif(classifier_head_triton is None, reason="triton is not installed")


def _timm_kwargs(geom: str, name: str) -> dict:
    return {"img_size": 384, "window_size": 12} if geom == "384w12" and "384" not in name else {}


@lru_cache(maxsize=None)
def _tail_of(model: str) -> tuple[int, int, int]:
    """(final tokens, C, classes) of a real model, read off timm's module."""
    name, geom = REAL_MODELS[model]
    with torch.device("meta"):
        m = timm.create_model(name, pretrained=False, **_timm_kwargs(geom, name))
    H = m.patch_embed.img_size[0] // m.patch_embed.patch_size[0] // 2 ** (len(m.layers) - 1)
    return H * H, m.num_features, m.head.fc.out_features


# (tokens, C, N (0: features only), bias)
CASES = {m: (*_tail_of(m), True) for m in REAL_MODELS}
CASES.update({
    "wide-C-no-bias": (49, 160, 40, False),  # C not a power of two
    "few-tokens": (3, 64, 16, True),          # one ragged chunk of tokens
    "features-only": (49, 768, 0, False),     # a model without a classifier
})


def _inputs(L, C, N, bias, B, device):
    g = torch.Generator().manual_seed(0)
    x = (2 * torch.randn(B, L, C, generator=g) + 0.5).half()  # a mean offset, as a residual stream has
    gamma = 1 + 0.1 * torch.randn(C, generator=g)
    beta = 0.1 * torch.randn(C, generator=g)
    w = torch.randn(N, C, generator=g) * C ** -0.5 if N else None
    b = torch.randn(N, generator=g) if (bias and N) else None
    mv = lambda t: None if t is None else t.to(device)  # noqa: E731
    return mv(x), mv(gamma), mv(beta), mv(w), mv(b)


@pytest.mark.parametrize("model", list(REAL_MODELS))
def test_reference_matches_timm(model):
    name, geom = REAL_MODELS[model]
    torch.manual_seed(0)
    m = timm.create_model(name, pretrained=False, num_classes=10, **_timm_kwargs(geom, name)).eval()
    L, C, _, _ = CASES[model]
    H = int(L ** 0.5)
    stream = torch.randn(2, H, H, C).half()
    with torch.no_grad():
        expected = m.forward_head(m.norm(stream.float()))
        out = classifier_head_ref(stream.view(2, L, C), m.norm.weight, m.norm.bias, m.norm.eps, m.head.fc.weight,
                                  m.head.fc.bias)
    assert out.dtype == torch.float32 and out.shape == expected.shape
    assert rel_l2(out, expected) <= 1e-5, f"reference vs timm: relative L2 {rel_l2(out, expected):.2e}"


@pytest.mark.parametrize("change,match", [
    ("x-dtype", "x must be"),
    ("x-dims", "x must be"),
    ("gamma", "gamma must be"),
    ("weight-dtype", "weight must be"),
    ("weight-k", "weight must be"),
    ("bias", "bias must be"),
    ("bias-only", "bias without a weight"),
])
def test_bad_inputs(change, match):
    x, gamma, beta, w, b = _inputs(49, 64, 16, True, 1, "cpu")
    if change == "x-dtype":
        x = x.float()
    elif change == "x-dims":
        x = x[0]
    elif change == "gamma":
        gamma = gamma[:32]
    elif change == "weight-dtype":
        w = w.half()
    elif change == "weight-k":
        w = w[:, :32]
    elif change == "bias":
        b = b[:8]
    else:
        w = None
    with pytest.raises(ValueError, match=match):
        classifier_head_ref(x, gamma, beta, 1e-5, w, b)


@needs_triton
def test_triton_rejects_cpu_tensors():
    x, gamma, beta, w, b = _inputs(49, 64, 16, True, 1, "cpu")
    with pytest.raises(ValueError, match="CUDA tensor"):
        classifier_head_triton(x, gamma, beta, 1e-5, w, b)


_INTERPRET = """
import torch
import trt_swin.plugins.classifier_head.triton_head as th
from trt_swin.plugins.classifier_head.triton_head import classifier_head_triton
th.HEAD_GEMM = "triton"  # the tf32x3 head kernel at every batch
from trt_swin.plugins.classifier_head.reference import classifier_head_ref
torch.manual_seed(0)
worst = 0.0
for B, L, C, N, bias in ((3, 49, 768, 1008, True), (17, 144, 160, 40, False), (2, 5, 64, 0, False)):
    x = (2 * torch.randn(B, L, C) + 0.5).half()
    g, be = 1 + 0.1 * torch.randn(C), 0.1 * torch.randn(C)
    w = torch.randn(N, C) * C ** -0.5 if N else None
    b = torch.randn(N) if (bias and N) else None
    out = classifier_head_triton(x, g, be, 1e-5, w, b).double()
    ref = classifier_head_ref(x, g, be, 1e-5, w, b).double()
    assert out.shape == ref.shape, (out.shape, ref.shape)
    worst = max(worst, ((out - ref).norm() / ref.norm()).item())
print(worst)
"""


@needs_triton
def test_triton_kernel_math_in_the_interpreter():
    worst = run_in_triton_interpreter(_INTERPRET)
    assert worst <= 1e-5, f"relative L2 error {worst:.2e} > 1e-5 under the interpreter"


@pytest.mark.gpu
@needs_triton
@pytest.mark.parametrize("head_gemm", ["auto", "triton", "cublas"])
@pytest.mark.parametrize("B", [1, 3, 130])
@pytest.mark.parametrize("case", list(CASES))
def test_triton_kernel_matches_reference(case, B, head_gemm, monkeypatch):
    """Both head GEMMs (the tf32x3 Triton kernel, cuBLAS's FP32) and the batch rule between them."""
    import trt_swin.plugins.classifier_head.triton_head as th

    monkeypatch.setattr(th, "HEAD_GEMM", head_gemm)
    L, C, N, bias = CASES[case]
    x, gamma, beta, w, b = _inputs(L, C, N, bias, B, "cuda")
    poison = Poison(B * C * 4, *([B * N * 4] if N else []))  # the op allocates the features, then the logits
    out = classifier_head_triton(x, gamma, beta, 1e-5, w, b)
    poison.check(out)
    ref = classifier_head_ref(*(None if t is None else t.cpu() for t in (x, gamma, beta)), 1e-5,
                              None if w is None else w.cpu(), None if b is None else b.cpu())
    assert out.shape == ref.shape and out.dtype == torch.float32
    assert torch.isfinite(out).all(), f"{(~torch.isfinite(out)).sum().item()} outputs not written (NaN poison)"
    err = rel_l2(out.cpu(), ref)
    assert err <= 1e-5, f"relative L2 error {err:.2e} > 1e-5"
