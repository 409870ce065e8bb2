"""`trt_swin build-engine`: build an inference engine (native: our kernels + cuBLASLt + CUDA graphs; or TensorRT).

    trt_swin build-engine --model fmnist-mini --precision fp16 -o engines/fmnist-mini-fp16.engine
    trt_swin build-engine --quantized runs/quantize/fmnist-mini-int8/fmnist-mini-int8.pth --precision int8 \
        --max-batch 128 -o engines/fmnist-mini-int8.engine
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .args import add_model_args, add_report_args, load_model_from_args, print_table, write_json

NAME = "build-engine"
HELP = "build a native (.engine) or TensorRT (.plan) engine of a model, FP16 / INT8 / FP8"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_args(p, required=False)
    add_report_args(p)
    g = p.add_argument_group("engine")
    g.add_argument("--quantized", metavar="CKPT", help="quantized checkpoint from `trt_swin quantize` (.pth + .json): "
                   "weights and calibrated scales; its recipe decides what runs INT8 / FP8")
    g.add_argument("--scales", metavar="JSON", help="scales.json (from `trt_swin quantize`) for a float --model")
    g.add_argument("--calib-images", type=int, metavar="N",
                   help="without --quantized / --scales: max-calibrate on N training images (quick, less accurate "
                   "than `trt_swin quantize`); with --calib-random on random images (timing only)")
    g.add_argument("--calib-random", action="store_true", help="calibrate on random images (timing runs)")
    g.add_argument("--recipe", help="recipe for --calib-images (default: the precision's, int8 or fp8)")
    g.add_argument("--precision", choices=("fp16", "int8", "fp8"), default="fp16")
    g.add_argument("--backend", choices=("native", "tensorrt"), default="native")
    g.add_argument("--max-batch", type=int, default=128)
    g.add_argument("--keep-fp32", action="append", metavar="GLOB",
                   help="module path glob to run in FP32 (repeatable; default: head.fc; pass '' for none)")
    g.add_argument("--gelu", choices=("erf", "tanh"), default="tanh",
                   help="FC1 GELU: erf (exact, timm's; an epilogue kernel) or tanh (fused into cuBLASLt's GEMM epilogue)")
    g.add_argument("--fused-mlp-max-c", type=int, default=128, metavar="C",
                   help="blocks with C <= this run their FP16 MLP as one fused kernel (0: never)")
    g.add_argument("--mlp-kernel", choices=("auto", "cuda", "triton"), default="auto",
                   help="fused MLP kernel: triton (wgmma via Triton), cuda, or auto: triton on compute capability 9.x "
                   "when Triton is installed, decided at load")
    g.add_argument("--fused-attention-max-c", type=int, default=None, metavar="C",
                   help="blocks with C <= this (at most 192) run their FP16 attention half as one fused kernel (0: never; "
                   "default: 128 with the Triton kernel, 96 with the CUDA one, decided at load)")
    g.add_argument("--attention-kernel", choices=("auto", "cuda", "triton"), default="auto",
                   help="fused attention kernel: triton, cuda, or auto (as --mlp-kernel)")
    g.add_argument("--device", default="auto", help="GPU the engine is built for (recorded and checked at load)")
    g.add_argument("-o", "--output", required=True, help="engine file (.engine native, .plan TensorRT)")
    g = p.add_argument_group("TensorRT backend")
    g.add_argument("--opt-batch", type=int, default=None)
    g.add_argument("--workspace-gb", type=float, default=8.0)
    g.add_argument("--timing-cache")
    g.add_argument("--plugin-lib")
    g.add_argument("--no-plugins", action="store_true")


def _build_tensorrt(args) -> int:
    try:
        from ..engines.tensorrt import build_plan
    except ImportError as e:
        raise RuntimeError(f"the TensorRT backend is unavailable ({e}); install it with pip install 'trt_swin[tensorrt]'") from e
    if not args.model and not args.quantized:
        raise ValueError("give --model (or --quantized)")
    out = build_plan(args.model or args.quantized, quantized=args.quantized, precision=args.precision,
                     max_batch=args.max_batch, opt_batch=args.opt_batch or args.max_batch, output=args.output,
                     workspace_gb=args.workspace_gb, timing_cache=args.timing_cache, plugin_lib=args.plugin_lib,
                     use_plugins=not args.no_plugins)
    print(f"wrote {out}")
    return 0


def _calibration_images(info, n: int, random: bool):
    import torch

    if random:
        g = torch.Generator().manual_seed(0)
        return torch.randn((n, info.in_chans, info.img_size, info.img_size), generator=g)
    from .. import data as data_mod

    ds = data_mod.build_dataset(None, "train", info)
    return torch.stack([ds[i][0] for i in range(min(n, len(ds)))])


def load_for_engine(args):
    """(model, ModelInfo, scales or None, recipe or None) from --model / --quantized / --scales / --calib-images."""
    scales = recipe = None
    if args.quantized:
        from ..engines.native import scales_from_model
        from ..quant import load_quantized
        from ..quant.checkpoint import read_quantized_sidecar

        model, info = load_quantized(args.quantized)
        scales, recipe = scales_from_model(model), read_quantized_sidecar(args.quantized).get("recipe")
    else:
        if not args.model:
            raise ValueError("give --model (preset, timm name or checkpoint) or --quantized CKPT")
        model, info = load_model_from_args(args)
        if args.scales:
            doc = json.loads(Path(args.scales).read_text())
            scales, recipe = doc.get("quantizers", doc), doc.get("recipe")
        elif args.precision != "fp16" and args.calib_images:
            from ..engines.native import calibrate_max

            recipe = args.recipe or args.precision
            scales = calibrate_max(model, _calibration_images(info, args.calib_images, args.calib_random), recipe)
    return model.eval(), info, scales, recipe


def run(args) -> int:
    if args.backend == "tensorrt" or args.output.endswith(".plan"):
        return _build_tensorrt(args)
    import torch

    from ..engines.native import BuildConfig, build_native_engine, save_engine
    from .args import resolve_device

    device = resolve_device(args.device)
    model, info, scales, recipe = load_for_engine(args)
    keep = tuple(g for g in (args.keep_fp32 if args.keep_fp32 is not None else ["head.fc"]) if g)
    cfg = BuildConfig(precision=args.precision, max_batch=args.max_batch, recipe=recipe if args.precision != "fp16" else None,
                      keep_fp32=keep, gelu=args.gelu, fused_mlp_max_c=args.fused_mlp_max_c,
                      fused_attention_max_c=args.fused_attention_max_c, mlp_kernel=args.mlp_kernel,
                      attention_kernel=args.attention_kernel)
    plan, tensors, build = build_native_engine(model, cfg, scales, model_info=info.to_dict(),
                                               device=torch.device(device) if device.startswith("cuda") else None)
    path = save_engine(args.output, plan, tensors, build)
    size = path.stat().st_size / 2**20
    row = {"engine": str(path), "MiB": size, "precision": args.precision, "recipe": cfg.recipe or "-",
           "GEMMs": ", ".join(f"{k} {v}" for k, v in build["gemm_modes"].items()), "max batch": args.max_batch,
           "GPU": build["gpu"] or "any (CPU build)"}
    print_table([row])
    for note in build["notes"]:
        print(f"note: {note}")
    write_json({**row, "build": build}, args.json)
    return 0
