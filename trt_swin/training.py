"""The training recipe behind `trt_swin train` (reference models the project trains itself).

AdamW (fused on CUDA), linear warm-up + cosine decay per step, label smoothing, gradient clipping, bf16 autocast on
GPU. Fashion-MNIST trains from device-resident uint8 tensors with batched augmentation (random translation and
horizontal flip), so a small GPU model is not bound by data loading. The checkpoint is written as safetensors + a
JSON sidecar holding the architecture, the dataset, the recipe, the final test accuracy (measured on
`final_eval_device` through the same deterministic evaluation path as `trt_swin eval`) and the git revision.
"""
from __future__ import annotations

import math
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import data as data_mod
from .evaluation import evaluate
from .models import ModelInfo, build_model, save_checkpoint


@dataclass
class TrainConfig:
    epochs: int = 40
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 2
    label_smoothing: float = 0.1
    clip_grad: float = 5.0
    seed: int = 0
    max_steps: int | None = None          # stop early (tests, smoke runs)
    eval_every: int = 5                   # epochs between test evaluations on the training device (0: only at the end)
    final_eval_device: str = "cpu"        # the accuracy written to the sidecar is measured here


def git_revision() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                                       stderr=subprocess.DEVNULL, text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def augment(x: torch.Tensor, max_shift: float = 0.125, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random translation (up to `max_shift` of the size) and horizontal flip of a batch [B, C, S, S]."""
    B = x.shape[0]
    dev = x.device
    t = (torch.rand(B, 2, device=dev, generator=generator) * 2 - 1) * (2 * max_shift)  # affine grid spans [-1, 1]
    flip = torch.where(torch.rand(B, device=dev, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(B, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = flip, 1.0, t
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _lr_factor(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def train(info: ModelInfo, data: str | None, out: str | Path, cfg: TrainConfig, device: str = "cuda",
          workers: int = 4, progress: bool = True, limit: int | None = None) -> dict:
    """Train `info`'s architecture from scratch on `data`; write `out`.safetensors + .json; return the record.

    `limit` keeps the first N images of each split (smoke runs and tests).
    """
    torch.manual_seed(cfg.seed)
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    model = build_model(info).to(dev)
    train_set = data_mod.build_dataset(data, "train", info)
    test_set = data_mod.build_dataset(data, "test", info)
    if limit is not None:
        train_set = torch.utils.data.Subset(train_set, range(min(limit, len(train_set)))) if not isinstance(
            train_set, data_mod.FashionMNIST) else train_set
        test_set = torch.utils.data.Subset(test_set, range(min(limit, len(test_set))))

    # Fashion-MNIST: whole split on the device as uint8, transformed per batch by the evaluation transform.
    on_device = isinstance(train_set, data_mod.FashionMNIST)
    if on_device:
        images, labels = train_set.images[:limit].to(dev), train_set.labels[:limit].to(dev)
        n_train = len(labels)
    else:
        loader = data_mod.build_loader(train_set, cfg.batch_size, shuffle=True, workers=workers, seed=cfg.seed)
        n_train = len(train_set)
    steps_per_epoch = max(1, n_train // cfg.batch_size) if on_device else len(loader)
    total = cfg.epochs * steps_per_epoch
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    warmup = int(cfg.warmup_epochs * steps_per_epoch)

    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=cuda or None)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, warmup, total))
    gen = torch.Generator(device=dev).manual_seed(cfg.seed)
    history = []
    step = 0
    t0 = time.time()
    bar = tqdm(total=total, desc="train", disable=not progress, dynamic_ncols=True)
    epoch = 0
    while step < total:
        model.train()
        if on_device:
            perm = torch.randperm(n_train, device=dev, generator=gen)
            batches = (
                (data_mod.gray_to_model_input(images[idx], info), labels[idx])
                for idx in perm[: steps_per_epoch * cfg.batch_size].view(steps_per_epoch, -1)
            )
        else:
            batches = ((x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)) for x, y in loader)
        loss_sum, seen = 0.0, 0
        for x, y in batches:
            if step >= total:
                break
            x = augment(x, generator=gen if on_device else None)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip_grad:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            opt.step()
            sched.step()
            step += 1
            if step % 20 == 0 or step == total:
                loss_sum += float(loss.detach()) * 20
                seen += 20
                bar.set_postfix(epoch=epoch + 1, loss=f"{float(loss.detach()):.3f}", lr=f"{sched.get_last_lr()[0]:.2e}")
            bar.update(1)
        epoch += 1
        rec = {"epoch": epoch, "train_loss": loss_sum / max(seen, 1), "time_s": time.time() - t0}
        if cfg.eval_every and (epoch % cfg.eval_every == 0) and step < total:
            test_loader = data_mod.build_loader(test_set, 500)  # same deterministic path as `trt_swin eval`
            rec["test_top1"] = evaluate(model, test_loader, dev, progress=False)["top1"]
            tqdm.write(f"epoch {epoch}: test top-1 {rec['test_top1']:.2f}%")
        history.append(rec)
    bar.close()
    train_time = time.time() - t0

    model = model.float().eval().to(cfg.final_eval_device)
    final = evaluate(model, data_mod.build_loader(test_set, 250), cfg.final_eval_device, progress=progress)
    info.meta = {
        "dataset": info.dataset,
        "data_path": str(data) if data else str(data_mod.FMNIST_DEFAULT),
        "train": asdict(cfg),
        "epochs_run": epoch,
        "steps": step,
        "train_time_s": round(train_time, 1),
        "train_device": torch.cuda.get_device_name(dev) if cuda else "cpu",
        "test_top1": final["top1"],
        "test_top5": final["top5"],
        "test_eval_device": cfg.final_eval_device,
        "history": history,
        "git_revision": git_revision(),
        "torch": torch.__version__,
        "timm": __import__("timm").__version__,
    }
    path = save_checkpoint(model, info, out)
    return {"checkpoint": str(path), **info.meta}
