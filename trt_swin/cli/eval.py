"""`trt_swin eval`: top-1 / top-5 / per-class accuracy and images/s of a model on a labelled image set."""
from __future__ import annotations

import argparse

from .args import (add_data_args, add_device_args, add_model_args, add_report_args, load_model_from_args,
                   print_table, resolve_device, write_json)

NAME = "eval"
HELP = "evaluate a model (preset, timm name, checkpoint, quantized checkpoint) on a labelled image set"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_args(p, required=False)
    p.add_argument("--engine", action="append", metavar="PATH",
                   help="evaluate an engine file (.engine native, .plan TensorRT; repeatable); with --model, the model "
                   "is evaluated too and each engine compared with it (top-1, agreement, logit cosine)")
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


def run_engines(args, device: str) -> int:
    """Accuracy of each --engine (and of --model as the reference, when given) on the same images."""
    from .. import data as data_mod
    from ..engines import load
    from ..evaluation import compare_logits, evaluate
    from ..models import ModelInfo

    engines = [(p, load(p, device=device)) for p in args.engine]
    ref = load_any(args)[0] if args.model else None
    plan_model = getattr(engines[0][1], "plan", {}).get("model")
    if args.model:
        info = load_any(args)[1]
    elif plan_model:
        info = ModelInfo.from_dict(plan_model)
    else:
        raise ValueError("the engine does not record its model's input spec; pass --model too")
    ds = data_mod.build_dataset(args.data, args.split, info, skip_corrupt=args.skip_corrupt)
    batch = min(args.batch_size, min(getattr(e, "max_batch", args.batch_size) for _, e in engines))
    loader = data_mod.build_loader(ds, batch, workers=args.workers, limit=args.limit)
    rows, report = [], {"data": args.data or str(data_mod.FMNIST_DEFAULT), "split": args.split, "device": device,
                        "engines": {}}
    ref_res = None
    if ref is not None:
        ref_res = evaluate(ref.to(device), loader, device, return_logits=True)
        rows.append({"model": f"{info.name} (FP32 PyTorch)", "images": ref_res["n"], "top-1 %": ref_res["top1"],
                     "agreement %": 100.0, "cosine": 1.0, "images/s": ref_res["images_per_s"]})
        report["reference"] = {k: ref_res[k] for k in ("top1", "top5", "n", "images_per_s")}
    for path, eng in engines:
        res = evaluate(eng, loader, device, return_logits=True)
        row = {"model": path, "images": res["n"], "top-1 %": res["top1"], "agreement %": float("nan"),
               "cosine": float("nan"), "images/s": res["images_per_s"]}
        entry = {k: res[k] for k in ("top1", "top5", "n", "images_per_s")}
        if ref_res is not None:
            cmp = compare_logits(ref_res["logits"], res["logits"], res["labels"])
            row.update({"agreement %": cmp["agreement"], "cosine": cmp["cosine"]})
            entry.update(agreement=cmp["agreement"], cosine=cmp["cosine"], rel_l2=cmp["rel_l2"],
                         delta_top1_pp=res["top1"] - ref_res["top1"])
        rows.append(row)
        report["engines"][path] = entry
    print_table(rows, floatfmt=".4g")
    write_json(report, args.json)
    return 0


def run(args) -> int:
    from .. import data as data_mod
    from ..evaluation import evaluate

    device = resolve_device(args.device)
    if args.engine:
        return run_engines(args, device)
    if not args.model:
        raise ValueError("give --model and/or --engine")
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
