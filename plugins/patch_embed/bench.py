"""`python -m trt_swin.plugins.patch_embed.bench --json OUT.json`: the CUDA and Triton stems vs the unfused stem.

Per (model, batch, image dtype), images [B, 3, S, S] float32 or float16:
  cuda      torch.ops.trt_swin.patch_embed (patch gather + GEMM + bias + LayerNorm, one kernel; op.patch_embed)
  triton    patch_embed_triton (the same in Triton)
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

from .op import patch_embed
from .triton_patch_embed import patch_embed_triton

# model -> (image size, embed dim); Cin 3, patch 4
CASES = {"swin_t": (224, 96), "swin_b": (224, 128), "swin_l": (224, 192), "swin_b384": (384, 128)}
EPS = 1e-5


def bench_case(model: str, batch: int, dtype: torch.dtype, copy_gbs: float) -> dict:
    from trt_swin.plugins.gemm.op import gemm
    from trt_swin.plugins.ln_shift_partition.op import ln_shift_partition

    S, C = CASES[model]
    p, cin = 4, 3
    K, Hp = cin * p * p, S // p
    dev = "cuda"
    img = torch.randn(batch, cin, S, S, device=dev).to(dtype)
    w = (torch.randn(C, K, device=dev) * K ** -0.5).half()
    b = 0.1 * torch.randn(C, device=dev)
    b16 = b.half()
    gamma, beta = 1 + 0.1 * torch.randn(C, device=dev), 0.1 * torch.randn(C, device=dev)
    static_in = torch.empty_like(img)
    patches = torch.empty((batch, Hp, Hp, cin, p, p), device=dev, dtype=torch.float16)

    def cuda_stem():
        return patch_embed(img, w, b16, p, gamma, beta, EPS)

    def triton_stem():
        return patch_embed_triton(img, w, b16, p, gamma, beta, EPS)

    def unfused():
        static_in.copy_(img)
        patches.copy_(static_in.reshape(batch, cin, Hp, p, Hp, p).permute(0, 2, 4, 1, 3, 5))
        y = gemm(patches.view(-1, K), w, b16, None, "none").view(batch, Hp, Hp, C)
        return ln_shift_partition(y, gamma, beta, EPS, 1, 0).view(batch, Hp, Hp, C)

    c, a, r_ = cuda_stem().float(), triton_stem().float(), unfused().float()
    rel = lambda x: ((x - r_).norm() / r_.norm()).item()  # noqa: E731
    r = dict(model=model, batch=batch, C=C, images=str(dtype).replace("torch.", ""), rel_l2_cuda_vs_unfused=rel(c),
             rel_l2_triton_vs_unfused=rel(a), cuda_ms=time_ms(cuda_stem), triton_ms=time_ms(triton_stem),
             unfused_ms=time_ms(unfused))
    r["bytes_floor_ms"] = (img.numel() * img.element_size() + batch * Hp * Hp * C * 2) / copy_gbs / 1e6
    return r


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="1,32,128", help="comma list (default: %(default)s)")
    p.add_argument("--dtypes", default="float16,float32", help="image dtypes, comma list (default: %(default)s)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    copy_gbs = start_cuda_bench()
    if copy_gbs is None:
        return 2
    rows = [bench_case(m, int(b), getattr(torch, d), copy_gbs) for d in args.dtypes.split(",")
            for b in args.batches.split(",") for m in CASES]
    out = write_results(rows, args.json, copy_gbs=copy_gbs)
    print(f"\npatch_embed on {out['device']}; device copy bandwidth {copy_gbs:.0f} GB/s (read + write)\n")
    print("| model | batch | C | images | cuda ms | triton ms | unfused ms | bytes floor ms | rel err cuda / triton |")
    print("|---" * 9 + "|")
    for r in rows:
        print(f"| {r['model']} | {r['batch']} | {r['C']} | {r['images']} | {r['cuda_ms']:.4f} | {r['triton_ms']:.4f} | "
              f"{r['unfused_ms']:.4f} | {r['bytes_floor_ms']:.4f} | {r['rel_l2_cuda_vs_unfused']:.1e} / "
              f"{r['rel_l2_triton_vs_unfused']:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
