"""Shapes of the real models, read off timm's own modules, plus the edge cases the kernels must handle.

`BLOCK_SHAPES` has one entry per distinct (model, stage, shift) of Swin-T/S/B/L at 224/w7 and 384/w12 and of the
committed mini model; `EDGE_SHAPES` adds padded resolutions, odd sizes and head dims outside the real models.
Test ids read like `swin_t-224w7-s1-shift`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import timm
import torch

REAL_MODELS = {
    "swin_t": ("swin_tiny_patch4_window7_224", "224w7"),
    "swin_s": ("swin_small_patch4_window7_224", "224w7"),
    "swin_b": ("swin_base_patch4_window7_224", "224w7"),
    "swin_l": ("swin_large_patch4_window7_224", "224w7"),
    "swin_t384": ("swin_tiny_patch4_window7_224", "384w12"),  # timm has no T/S at 384: same arch, img 384 window 12
    "swin_b384": ("swin_base_patch4_window12_384", "384w12"),
    "swin_l384": ("swin_large_patch4_window12_384", "384w12"),
}


@dataclass(frozen=True)
class BlockShape:
    """One Swin block's geometry: input x is [B, H, W, C]; windows are ws x ws (N = ws*ws), shifted by ss."""

    model: str
    stage: int  # 1-based
    H: int
    W: int
    C: int
    nH: int
    ws: int
    ss: int

    @property
    def hd(self) -> int:
        return self.C // self.nH

    @property
    def N(self) -> int:
        return self.ws * self.ws

    @property
    def id(self) -> str:
        return f"{self.model}-s{self.stage}-{self.H}x{self.W}w{self.ws}-{'shift' if self.ss else 'noshift'}-h{self.nH}"


@lru_cache(maxsize=None)
def block_shapes_of(model_name: str, img_size: int | None = None, window_size: int | None = None, label: str = "") -> tuple[BlockShape, ...]:
    kw = {}
    if img_size is not None:
        kw["img_size"] = img_size
    if window_size is not None:
        kw["window_size"] = window_size
    with torch.device("meta"):
        m = timm.create_model(model_name, pretrained=False, **kw)
    out = []
    for si, stage in enumerate(m.layers, start=1):
        for blk in stage.blocks:
            H, W = blk.input_resolution
            s = BlockShape(label or model_name, si, H, W, blk.dim, blk.attn.num_heads, blk.window_size[0], blk.shift_size[0])
            if s not in out:
                out.append(s)
    return tuple(out)


def _real() -> list[BlockShape]:
    shapes: list[BlockShape] = []
    for label, (name, cfg) in REAL_MODELS.items():
        img, ws = (224, 7) if cfg == "224w7" else (384, 12)
        shapes += block_shapes_of(name, img, ws, label=f"{label}-{cfg}")
    return shapes


BLOCK_SHAPES: list[BlockShape] = _real()

# Not in the real models, but timm handles them and so must we: padding (H or W not a multiple of ws),
# shifted windows over padded maps, odd sizes, head dim 64, many heads.
EDGE_SHAPES: list[BlockShape] = [
    BlockShape("edge", 1, 30, 30, 96, 3, 7, 3),    # pad 30 -> 35, shifted
    BlockShape("edge", 1, 30, 30, 96, 3, 7, 0),
    BlockShape("edge", 2, 15, 15, 192, 6, 7, 3),   # odd resolution, pad 15 -> 21
    BlockShape("edge", 2, 20, 13, 128, 4, 7, 3),   # non-square
    BlockShape("edge", 3, 10, 10, 384, 6, 7, 3),   # head dim 64, padded, shifted
    BlockShape("edge", 3, 14, 14, 512, 8, 7, 3),   # head dim 64
    BlockShape("edge", 3, 24, 24, 256, 4, 12, 6),  # head dim 64, window 12
    BlockShape("edge", 4, 7, 7, 1536, 48, 7, 0),   # 48 heads
    BlockShape("edge", 1, 8, 8, 48, 3, 4, 2),      # tiny windows (N = 16), the mini model's geometry
    BlockShape("edge", 3, 4, 4, 96, 3, 4, 0),
]

ALL_SHAPES = BLOCK_SHAPES + EDGE_SHAPES
