"""Small driver for compute-sanitizer (memcheck / racecheck): runs the CUDA stem kernel on a few shapes (one tile; a
ragged last tile; CTAs looping over several tiles; each C; fp16 and fp32 images; with and without the norm) and
checks each against the reference, exiting non-zero on a mismatch.

    compute-sanitizer --tool memcheck python -m trt_swin.plugins.patch_embed.sanitize_check
"""
from __future__ import annotations

import sys

import torch

from trt_swin.plugins.patch_embed.op import patch_embed, patch_embed_cuda_available
from trt_swin.plugins.patch_embed.reference import patch_embed_ref
from trt_swin.plugins.sanitize_utils import rel_l2, report

# (B, H, W, C, K' (weight pitch), norm, image dtype): one tile of 2 patches; Wp 70 (a ragged second tile); one Swin-T
# image; 300 images of 32 x 32 (2400 tiles of 8 patches: more than the grid's CTAs, so CTAs loop over tiles); C 128
# with K padded and no norm; C 192
CASES = [(1, 4, 8, 96, 48, True, torch.float16), (2, 8, 280, 96, 48, True, torch.float32),
         (1, 224, 224, 96, 48, True, torch.float16), (300, 32, 32, 128, 56, False, torch.float16),
         (2, 16, 264, 192, 48, True, torch.float32)]


def main() -> int:
    if not patch_embed_cuda_available(torch.device("cuda")):
        print("patch_embed: the op library has no CUDA kernel for it; nothing to check")
        return 1
    torch.manual_seed(0)
    bad = 0
    for B, H, W, C, Kw, norm, dt in CASES:
        img = torch.randn(B, 3, H, W, device="cuda").to(dt)
        w = torch.zeros(C, Kw, device="cuda")
        w[:, :48] = torch.randn(C, 48, device="cuda") * 48 ** -0.5
        w = w.half()
        b = 0.1 * torch.randn(C, device="cuda")
        g, be = (1 + 0.1 * torch.randn(C, device="cuda"), 0.1 * torch.randn(C, device="cuda")) if norm else (None, None)
        out = patch_embed(img, w, b, 4, g, be)
        ref = patch_embed_ref(img, w, b, 4, g, be)
        bad += report(f"B={B} {H}x{W} C={C} K'={Kw} norm={norm} {dt}", rel_l2(out, ref), out, 1e-3)
    torch.cuda.synchronize()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
