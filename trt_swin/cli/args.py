"""Option groups shared by the subcommands (Polygraphy's argument groups, in function form)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_model_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", required=required,
                   help="preset (fmnist-mini, fmnist-swin-t), timm Swin V1 name, or trt_swin checkpoint (.safetensors + .json)")
    g.add_argument("--checkpoint", help="weights for a timm name: timm or Microsoft Swin state dict (.pth / .safetensors)")
    g.add_argument("--num-classes", type=int, help="classifier size for a timm name (must match the checkpoint)")
    g.add_argument("--in-chans", type=int, help="input channels for a timm name")


def add_data_args(p: argparse.ArgumentParser, batch_size: int | None = 250) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", help="Fashion-MNIST IDX folder or ImageFolder root (default: /usr/share/datasets/fashion-mnist)")
    g.add_argument("--batch-size", type=int, default=batch_size)
    g.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    g.add_argument("--limit", type=int, help="use only the first N images of the split")
    g.add_argument("--skip-corrupt", action="store_true", help="skip unreadable images (counted) instead of failing")


def add_device_args(p: argparse.ArgumentParser, default: str = "auto") -> None:
    p.add_argument("--device", default=default, help="cpu, cuda, cuda:N or auto (cuda when available)")


def add_report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH ('-' for stdout)")


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
    return name


def load_model_from_args(args):
    from ..models import load_model

    return load_model(args.model, checkpoint=args.checkpoint, num_classes=args.num_classes, in_chans=args.in_chans)


def write_json(report: dict, dest: str | None) -> None:
    if not dest:
        return
    text = json.dumps(report, indent=2, default=str)
    if dest == "-":
        sys.stdout.write(text + "\n")
    else:
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        Path(dest).write_text(text + "\n")


def print_table(rows: list[dict], columns: list[str] | None = None, floatfmt: str = ".2f") -> None:
    """A markdown table of `rows` (list of dicts) on stdout."""
    if not rows:
        return
    columns = columns or list(rows[0])

    def fmt(v):
        return format(v, floatfmt) if isinstance(v, float) else str(v)

    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |")
