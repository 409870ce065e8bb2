"""`trt_swin train`: train a reference model from scratch (presets fmnist-mini, fmnist-swin-t)."""
from __future__ import annotations

import argparse
from dataclasses import fields

from .args import add_data_args, add_device_args, add_report_args, resolve_device, write_json

NAME = "train"
HELP = "train a reference Swin from scratch (presets: fmnist-mini, fmnist-swin-t) and write safetensors + JSON sidecar"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..models import PRESETS
    from ..training import TrainConfig

    p.add_argument("--preset", required=True, choices=sorted(PRESETS))
    p.add_argument("-o", "--output", required=True, help="checkpoint path (.safetensors; the .json sidecar goes beside it)")
    add_data_args(p, batch_size=None)
    add_device_args(p)
    add_report_args(p)
    g = p.add_argument_group("recipe (defaults come from the preset)")
    for f in fields(TrainConfig):
        if f.name == "batch_size":  # from the data group
            continue
        g.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default) if f.default is not None else int, default=None)


def run(args) -> int:
    from ..models import PRESETS, preset_info
    from ..training import TrainConfig, train

    info = preset_info(args.preset)
    cfg = TrainConfig(**PRESETS[args.preset]["train"])
    for f in fields(TrainConfig):
        v = getattr(args, f.name, None)
        if v is not None:
            setattr(cfg, f.name, v)
    rec = train(info, args.data, args.output, cfg, device=resolve_device(args.device), workers=args.workers,
                limit=args.limit)
    print(f"wrote {rec['checkpoint']}: test top-1 {rec['test_top1']:.2f}% ({rec['test_eval_device']}), "
          f"{rec['epochs_run']} epochs in {rec['train_time_s']:.0f} s on {rec['train_device']}")
    write_json(rec, args.json)
    return 0
