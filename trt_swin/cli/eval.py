"""`trt_swin eval`: top-1 / top-5 / per-class accuracy and images/s of a model on a labelled image set."""
from __future__ import annotations

import argparse

from .args import (add_data_args, add_device_args, add_model_args, add_report_args, load_model_from_args,
                   print_table, resolve_device, write_json)

NAME = "eval"
HELP = "evaluate a model (preset, timm name, checkpoint, quantized checkpoint) on a labelled image set"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    add_data_args(p)
    add_device_args(p)
    add_report_args(p)
    p.add_argument("--split", default="test", choices=("train", "test"))


def load_any(args):
    """A float model, or a fake-quantized one when the checkpoint's sidecar says so."""
    from ..models import read_sidecar

    side = read_sidecar(args.model) if args.model.endswith((".safetensors", ".pth", ".pt")) else None
    if side is not None and str(side.get("format", "")).startswith("trt_swin.quantized"):
        from ..quant import load_quantized  # provided by the quantization package

        return load_quantized(args.model)
    return load_model_from_args(args)


def run(args) -> int:
    from .. import data as data_mod
    from ..evaluation import evaluate

    device = resolve_device(args.device)
    model, info = load_any(args)
    ds = data_mod.build_dataset(args.data, args.split, info, skip_corrupt=args.skip_corrupt)
    loader = data_mod.build_loader(ds, args.batch_size, workers=args.workers, limit=args.limit)
    res = evaluate(model.to(device), loader, device)
    classes = getattr(ds, "classes", None) or [str(i) for i in range(len(res["per_class"]))]
    report = {"model": args.model, "data": args.data or str(data_mod.FMNIST_DEFAULT), "split": args.split,
              "device": device, **{k: res[k] for k in ("top1", "top5", "n", "dropped", "images_per_s")},
              "per_class": dict(zip(classes, res["per_class"]))}
    print_table([{"model": info.name, "images": res["n"], "top-1 %": res["top1"], "top-5 %": res["top5"],
                  "images/s": res["images_per_s"], "device": device}])
    print()
    print_table([{"class": c, "top-1 %": a} for c, a in zip(classes, res["per_class"])])
    if res["dropped"]:
        print(f"skipped {res['dropped']} unreadable images")
    write_json(report, args.json)
    return 0
