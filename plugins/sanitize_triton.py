"""Small driver for compute-sanitizer (memcheck / racecheck) over the Triton kernels: the fused MLP (FP16, FP8 and
INT8), the fused attention half (head outputs accumulated per head, and staged; FP16, FP8 and INT8), the window
attention (FP16 and FP8 output), the patch embedding, the classifier tail's pool and head GEMM and the INT8 GEMM with
its fused epilogue, each on a few small shapes with ragged edges (partial row tiles, padded maps, partial patch
blocks, a partial chunk of tokens, partial GEMM tiles), and the row-gathered GEMMs of plugins/ln_gemm (without and with
programmatic dependent launch), checked against its reference; exits non-zero on a mismatch.

    compute-sanitizer --tool memcheck python -m trt_swin.plugins.sanitize_triton
"""
from __future__ import annotations

import sys

import torch

from trt_swin.plugins.classifier_head.reference import classifier_head_ref
from trt_swin.plugins.classifier_head.triton_head import classifier_head_triton
from trt_swin.plugins.fused_attention.reference import fused_attention_ref, pad_bias, swin_shift_mask
from trt_swin.plugins.fused_attention.triton_attention import fused_attention_triton_
from trt_swin.plugins.epilogue.reference import quantize_fp8_per_tensor, quantize_int8_per_channel
from trt_swin.plugins.fused_attention.reference import Int8AttentionScales
from trt_swin.plugins.fused_mlp.reference import Int8MlpScales, fused_mlp_fp8_ref, fused_mlp_int8_ref, fused_mlp_ref
from trt_swin.plugins.fused_mlp.triton_mlp import fused_mlp_triton_
from trt_swin.plugins.gemm.reference import gemm_int8_ref
from trt_swin.plugins.gemm.triton_int8 import gemm_int8_triton
from trt_swin.plugins import triton_utils
from trt_swin.plugins.ln_gemm.reference import fold_layer_norm, gemm_window_reverse_ref, ln_gemm_ref
from trt_swin.plugins.ln_gemm.triton_ln_gemm import gemm_window_reverse_triton, ln_gemm_triton
from trt_swin.plugins.patch_embed.reference import patch_embed_ref
from trt_swin.plugins.patch_embed.triton_patch_embed import patch_embed_triton
from trt_swin.plugins.sanitize_utils import rel_l2, report
from trt_swin.plugins.window_attention.reference import window_attention_reference
from trt_swin.plugins.window_attention.triton_window_attention import window_attention_triton

DEV = "cuda"


def main() -> int:
    torch.manual_seed(0)
    bad = 0
    for M, C in ((130, 96), (33, 192), (70, 128)):  # fused MLP: ragged last row tile, split and power-of-two C
        x = (torch.randn(M, C, device=DEV) * 2).half()
        g, b = 1 + 0.1 * torch.randn(C, device=DEV), 0.1 * torch.randn(C, device=DEV)
        w1, b1 = (torch.randn(4 * C, C, device=DEV) * C ** -0.5).half(), 0.1 * torch.randn(4 * C, device=DEV)
        w2, b2 = (torch.randn(C, 4 * C, device=DEV) * (4 * C) ** -0.5).half(), 0.1 * torch.randn(C, device=DEV)
        ref = fused_mlp_ref(x, g, b, 1e-5, w1, b1, w2, b2, "gelu_tanh") - x.float()
        x0 = x.clone()
        out = fused_mlp_triton_(x, g, b, 1e-5, w1, b1, w2, b2, "gelu_tanh").float() - x0.float()
        bad += report(f"fused_mlp_triton M={M} C={C}", rel_l2(out, ref), out, 5e-3)
        (w1q, ws1), (w2q, ws2) = quantize_fp8_per_tensor(w1), quantize_fp8_per_tensor(w2)
        sc = (4 / 448, ws1, 3 / 448, ws2)
        ref8 = fused_mlp_fp8_ref(x, g, b, 1e-5, w1q, b1, w2q, b2, sc) - x.float()
        x0 = x.clone()
        out = fused_mlp_triton_(x0, g, b, 1e-5, w1q, b1, w2q, b2, "gelu_tanh", fp8_scales=sc).float() - x.float()
        bad += report(f"fused_mlp_triton fp8 M={M} C={C}", rel_l2(out, ref8), out, 2e-2)
        (w1i, ws1), (w2i, ws2) = quantize_int8_per_channel(w1), quantize_int8_per_channel(w2)
        for act, out2, bound in (("gelu_tanh", 0.02, 2e-2), ("gelu_erf", None, 5e-3)):
            sc8 = Int8MlpScales(4 / 127, ws1, 3 / 127, ws2, out2)
            ref_i = fused_mlp_int8_ref(x, g, b, 1e-5, w1i, b1, w2i, b2, sc8, act) - x.float()
            x0 = x.clone()
            out = fused_mlp_triton_(x0, g, b, 1e-5, w1i, b1, w2i, b2, act, int8_scales=sc8).float() - x.float()
            bad += report(f"fused_mlp_triton int8 {act} out2={out2} M={M} C={C}", rel_l2(out, ref_i), out, bound)
    for B, H, W, C, ws, shift in ((1, 9, 13, 64, 7, 3), (3, 21, 21, 96, 7, 3), (1, 14, 14, 192, 7, 0)):
        nH, N = C // 32, ws * ws
        x = (torch.randn(B, H, W, C, device=DEV) * 2).half()
        g, b = 1 + 0.1 * torch.randn(C, device=DEV), 0.1 * torch.randn(C, device=DEV)
        wq, bq = (torch.randn(3 * C, C, device=DEV) * C ** -0.5).half(), 0.1 * torch.randn(3 * C, device=DEV)
        wp, bp = (torch.randn(C, C, device=DEV) * C ** -0.5).half(), 0.1 * torch.randn(C, device=DEV)
        bias = 0.5 * torch.randn(nH, N, N, device=DEV)
        ref = fused_attention_ref(x, g, b, 1e-5, wq, bq, bias, wp, bp, ws, shift, 32 ** -0.5) - x.float()
        for config in ((4, 2, False, 0), (4, 2, True, 0), (4, 2, True, 168)):
            x0 = x.clone()
            out = fused_attention_triton_(x0, g, b, 1e-5, wq, bq, pad_bias(bias).half(), wp, bp, ws, shift,
                                          32 ** -0.5, config=config).float() - x.float()
            bad += report(f"fused_attention_triton {B}x{H}x{W} C={C} ws={ws} shift={shift} config={config}",
                           rel_l2(out, ref), out, 5e-3)
        (wq8, wsq), (wp8, wsp) = quantize_fp8_per_tensor(wq), quantize_fp8_per_tensor(wp)
        sc = (4 / 448, wsq, 2 / 448, wsp)
        ref8 = fused_attention_ref(x, g, b, 1e-5, wq8, bq, bias, wp8, bp, ws, shift, 32 ** -0.5,
                                   fp8_scales=sc) - x.float()
        for config in ((4, 2, False, 0), (4, 2, True, 0)):
            x0 = x.clone()
            out = fused_attention_triton_(x0, g, b, 1e-5, wq8, bq, pad_bias(bias).half(), wp8, bp, ws, shift,
                                          32 ** -0.5, config=config, fp8_scales=sc).float() - x.float()
            bad += report(f"fused_attention_triton fp8 {B}x{H}x{W} C={C} config={config}", rel_l2(out, ref8), out,
                           2e-2)
        (wqi, wsq), (wpi, wsp) = quantize_int8_per_channel(wq), quantize_int8_per_channel(wp)
        for config, proj_out in (((4, 2, False, 0), None), ((4, 2, True, 0), 5 / 127)):
            sc8 = Int8AttentionScales(4 / 127, wsq, 5 / 127, 3 / 127, wsp, proj_out)
            ref_i = fused_attention_ref(x, g, b, 1e-5, wqi, bq, bias, wpi, bp, ws, shift, 32 ** -0.5,
                                        int8_scales=sc8) - x.float()
            x0 = x.clone()
            out = fused_attention_triton_(x0, g, b, 1e-5, wqi, bq, pad_bias(bias).half(), wpi, bp, ws, shift,
                                          32 ** -0.5, config=config, int8_scales=sc8).float() - x.float()
            bad += report(f"fused_attention_triton int8 {B}x{H}x{W} C={C} config={config} proj_out={proj_out}",
                           rel_l2(out, ref_i), out, 2e-2)
    for B, H, C, ws, shift in ((2, 14, 192, 7, 3), (1, 7, 768, 7, 0), (1, 10, 96, 5, 2)):  # window attention
        nH, N = C // 32, ws * ws
        nW = (-(-H // ws)) ** 2
        qkv = torch.randn(B * nW * N, 3 * C, device=DEV).half()
        bias = 0.5 * torch.randn(nH, N, N, device=DEV)
        mask = swin_shift_mask(H, H, ws, shift)
        ref = window_attention_reference(qkv, bias, None if mask is None else mask.to(DEV), nH, 32 ** -0.5)
        for config in (None, (4, 4, 3, True)) if nH % 4 == 0 else (None,):  # + the heads-first large-grid form
            out = window_attention_triton(qkv, pad_bias(bias).half(), nH, 32 ** -0.5, H, H, ws, shift, config=config)
            bad += report(f"window_attention_triton B={B} {H}x{H} C={C} ws={ws} shift={shift} config={config}",
                           rel_l2(out, ref), out, 2e-3)
        out8 = window_attention_triton(qkv, pad_bias(bias), nH, 32 ** -0.5, H, H, ws, shift, out_scale=1 / 64)
        out8 = out8.float() / 64  # E4M3 rounding: about 2 % RMS
        bad += report(f"window_attention_triton fp8 out B={B} {H}x{H} C={C}", rel_l2(out8, ref), out8, 5e-2)
    for B, S, cin, p, C in ((2, 40, 3, 4, 96), (1, 28, 1, 2, 32), (1, 16, 3, 4, 160)):  # patch embedding
        img = torch.randn(B, cin, S, S, device=DEV)
        w = (torch.randn(C, cin * p * p, device=DEV) * (cin * p * p) ** -0.5).half()
        b, be = 0.1 * torch.randn(C, device=DEV), 0.1 * torch.randn(C, device=DEV)
        g = 1 + 0.1 * torch.randn(C, device=DEV)
        out = patch_embed_triton(img, w, b, p, g, be)
        bad += report(f"patch_embed_triton B={B} {S}x{S} Cin={cin} p={p} C={C}",
                       rel_l2(out, patch_embed_ref(img, w, b, p, g, be)), out, 1e-3)
    # classifier tail: ragged token chunk, C not 2^k; from 32 images the Triton head GEMM (partial M and N tiles)
    for B, L, C, N in ((3, 49, 768, 1008), (2, 5, 160, 40), (33, 7, 160, 40)):
        x = (2 * torch.randn(B, L, C, device=DEV) + 0.5).half()
        g, be = 1 + 0.1 * torch.randn(C, device=DEV), 0.1 * torch.randn(C, device=DEV)
        w, b = torch.randn(N, C, device=DEV) * C ** -0.5, torch.randn(N, device=DEV)
        out = classifier_head_triton(x, g, be, 1e-5, w, b)
        bad += report(f"classifier_head_triton B={B} L={L} C={C} N={N}",
                       rel_l2(out, classifier_head_ref(x, g, be, 1e-5, w, b)), out, 1e-5)
    int8_gemms = ((300, 96, 288, "none", False, 0.05, False), (129, 384, 96, "none", True, None, False),
                  (70, 192, 768, "gelu", True, 0.04, True))  # INT8 GEMM: partial tiles; int8, fp16, QDQ outputs
    for M, K, N, act, res, osc, qdq in int8_gemms:
        a = torch.randint(-128, 128, (M, K), dtype=torch.int8, device=DEV)
        w = torch.randint(-128, 128, (N, K), dtype=torch.int8, device=DEV)
        cs, b = (torch.rand(N, device=DEV) + 0.1) * 0.1 / K, torch.randn(N, device=DEV)
        r = torch.randn(M, N, device=DEV).half() if res else None
        out = gemm_int8_triton(a, w, 0.02, cs, b, act, r, osc, qdq)
        ref = gemm_int8_ref(a.cpu(), w.cpu(), 0.02, cs.cpu(), b.cpu(), act, None if r is None else r.cpu(), osc, qdq)
        bad += report(f"gemm_int8_triton M={M} K={K} N={N} {act} out={'int8' if out.dtype == torch.int8 else 'fp16'}",
                       rel_l2(out.cpu().float(), ref.float()), out.float(), 1e-2)
    # row-gathered GEMMs (batch-1 path): padded, shifted windows (10 x 9 map, window 7), ragged row and column tiles;
    # once more with programmatic dependent launch (the kernels' griddepcontrol instructions)
    for pdl in (False, True):
        triton_utils.PDL = pdl
        for (B, H, W, C), N, gather, act in (((1, 10, 9, 64), 192, ("window", 7, 3), "none"),
                                             ((2, 5, 7, 96), 384, ("rows",), "gelu_tanh")):
            x = (torch.randn(B, H, W, C, device=DEV) + 1.0).half()
            g, b = 1 + 0.1 * torch.randn(C, device=DEV), 0.1 * torch.randn(C, device=DEV)
            w, bias = (torch.randn(N, C, device=DEV) * C ** -0.5).half(), 0.1 * torch.randn(N, device=DEV)
            out = ln_gemm_triton(x, fold_layer_norm(w, g, b, bias), 1e-5, gather, act)
            ref = ln_gemm_ref(x.cpu(), g.cpu(), b.cpu(), 1e-5, w.cpu(), bias.cpu(), gather, act)
            bad += report(f"ln_gemm_triton {gather[0]} C={C} N={N} pdl={pdl}", rel_l2(out.cpu().float(), ref), out,
                           2e-3)
        a = torch.randn(4 * 7 * 7, 64, device=DEV).half()  # 2 x 2 windows
        w, bias = (torch.randn(64, 64, device=DEV) * 0.125).half(), 0.1 * torch.randn(64, device=DEV)
        x = torch.randn(1, 10, 9, 64, device=DEV).half()
        ref = gemm_window_reverse_ref(a.cpu(), w.cpu(), bias.cpu(), x.cpu(), 7, 3)
        out = gemm_window_reverse_triton(a, w, bias, x, 7, 3)
        bad += report(f"gemm_window_reverse_triton 10x9 C=64 pdl={pdl}", rel_l2(out.cpu().float(), ref), out, 2e-3)
    triton_utils.PDL = False
    torch.cuda.synchronize()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
