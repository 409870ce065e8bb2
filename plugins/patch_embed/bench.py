"""`python -m trt_swin.plugins.patch_embed.bench --json OUT.json`: the Triton stem vs the unfused stem it replaces.

Per (model, batch), images [B, 3, S, S] float32:
  triton    patch_embed_triton (patch gather + GEMM + bias + LayerNorm, one kernel)
  unfused   the engine's other stem: images copied into a static buffer (a CUDA graph's input), the permuting copy
            into fp16 patch rows, trt_swin gemm (+ fp16 bias), ln_shift_partition as a plain LayerNorm
Median times (CUDA events through triton.testing.do_bench) and the bytes floor (images read once, the stream written
once) at a device-to-device copy bandwidth measured in the same run.
"""
from __future__ import annotations

import argparse
import sys

import torch

from trt_swin.plugins.bench_utils import start_cuda_bench, time_ms, write_results

from .triton_patch_embed import patch_embed_triton

# model -> (image size, embed dim); Cin 3, patch 4
CASES = {"swin_t": (224, 96), "swin_b": (224, 128), "swin_l": (224, 192), "swin_b384": (384, 128)}
EPS = 1e-5


def bench_case(model: str, batch: int, copy_gbs: float) -> dict:
    from trt_swin.plugins.gemm.op import gemm
    from trt_swin.plugins.ln_shift_partition.op import ln_shift_partition

    S, C = CASES[model]
    p, cin = 4, 3
    K, Hp = cin * p * p, S // p
    dev = "cuda"
    img = torch.randn(batch, cin, S, S, device=dev)
    w = (torch.randn(C, K, device=dev) * K ** -0.5).half()
    b = 0.1 * torch.randn(C, device=dev)
    b16 = b.half()
    gamma, beta = 1 + 0.1 * torch.randn(C, device=dev), 0.1 * torch.randn(C, device=dev)
    static_in = torch.empty_like(img)
    patches = torch.empty((batch, Hp, Hp, cin, p, p), device=dev, dtype=torch.float16)

    def triton_stem():
        return patch_embed_triton(img, w, b16, p, gamma, beta, EPS)

    def unfused():
        static_in.copy_(img)
        patches.copy_(static_in.reshape(batch, cin, Hp, p, Hp, p).permute(0, 2, 4, 1, 3, 5))
        y = gemm(patches.view(-1, K), w, b16, None, "none").view(batch, Hp, Hp, C)
        return ln_shift_partition(y, gamma, beta, EPS, 1, 0).view(batch, Hp, Hp, C)

    a, r_ = triton_stem().float(), unfused().float()
    err = ((a - r_).norm() / r_.norm()).item()
    r = dict(model=model, batch=batch, C=C, rel_l2_vs_unfused=err, triton_ms=time_ms(triton_stem),
             unfused_ms=time_ms(unfused))
    r["bytes_floor_ms"] = (img.numel() * 4 + batch * Hp * Hp * C * 2) / copy_gbs / 1e6
    r["speedup"] = r["unfused_ms"] / r["triton_ms"]
    return r


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="1,32,128", help="comma list (default: %(default)s)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    copy_gbs = start_cuda_bench()
    if copy_gbs is None:
        return 2
    rows = [bench_case(m, int(b), copy_gbs) for b in args.batches.split(",") for m in CASES]
    out = write_results(rows, args.json, copy_gbs=copy_gbs)
    print(f"\npatch_embed on {out['device']}; device copy bandwidth {copy_gbs:.0f} GB/s (read + write)\n")
    print("| model | batch | C | triton ms | unfused ms | bytes floor ms | speedup | rel err |")
    print("|---" * 8 + "|")
    for r in rows:
        print(f"| {r['model']} | {r['batch']} | {r['C']} | {r['triton_ms']:.4f} | {r['unfused_ms']:.4f} | "
              f"{r['bytes_floor_ms']:.4f} | {r['speedup']:.2f}x | {r['rel_l2_vs_unfused']:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
