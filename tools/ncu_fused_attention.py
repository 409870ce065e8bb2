"""Driver for Nsight Compute on the fused attention half: one launch per case after a warm-up, so that
`ncu -k regex:fused_attention --launch-skip 2 --launch-count 2` profiles Swin-T stage 1 and stage 2 at batch 128.

    ncu -k regex:fused_attention --launch-skip 2 --launch-count 2 --set full python3 tools/ncu_fused_attention.py

$TRT_SWIN_NCU_FATTN_TRITON=WARPSxSTAGES[h]: the Triton kernel (triton_attention.py) with that config
instead (h: float16 bias table).
"""
from __future__ import annotations

import os

import torch

from trt_swin.plugins.fused_attention.op import fused_attention_, pad_bias

CASES = [(128, 56, 96), (128, 28, 192)]  # (B, H = W, C): Swin-T stages 1 and 2, windows 7, shift 3


def main() -> None:
    torch.manual_seed(0)
    args = []
    for B, R, C in CASES:
        x = torch.randn(B, R, R, C, device="cuda").half()
        w_qkv = (torch.randn(3 * C, C, device="cuda") * C ** -0.5).half()
        w_proj = (torch.randn(C, C, device="cuda") * 0.01 * C ** -0.5).half()
        args.append((x, torch.ones(C, device="cuda"), torch.zeros(C, device="cuda"), 1e-5, w_qkv,
                     torch.zeros(3 * C, device="cuda"), pad_bias(torch.randn(C // 32, 49, 49, device="cuda")), w_proj,
                     torch.zeros(C, device="cuda"), 7, 3, 1.0))
    op, cfg = fused_attention_, os.environ.get("TRT_SWIN_NCU_FATTN_TRITON")
    if cfg:
        from trt_swin.plugins.fused_attention.triton_attention import fused_attention_triton_, parse_config

        config, fp16_bias = parse_config(cfg)
        if fp16_bias:
            args = [a[:6] + (a[6].half(),) + a[7:] for a in args]

        def triton_op(*a):
            return fused_attention_triton_(*a, config=config)
        op = triton_op
    for rnd in range(2):  # round 0 warms up; ncu skips its two launches
        for a in args:
            op(*a)
    torch.cuda.synchronize()


if __name__ == "__main__":
    main()
