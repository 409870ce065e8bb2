"""Quantization-aware training: fine-tune a calibrated fake-quantized model with distillation from its FP teacher.

Loss = (1 - kd_weight) * CE(student, label) + kd_weight * T^2 * KL(softmax(teacher / T) || softmax(student / T)),
the Hinton form (T^2 keeps the gradient scale independent of T). The amax values stay frozen (ModelOpt keeps them
as buffers); only the weights adapt, as ModelOpt and pytorch-quantization recommend (about 10% of the training
schedule at about 1% of the training learning rate, cosine decay).

Distributed: launched by `torchrun --nproc-per-node N -m trt_swin.quantize --mode qat ...` (WORLD_SIZE > 1 in the
environment, or an already initialized process group), each rank trains a DistributedDataParallel replica on its
shard (DistributedSampler) on `cuda:LOCAL_RANK` (NCCL) or the CPU (Gloo); rank 0 writes the checkpoints.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm


@dataclass(frozen=True)
class QATConfig:
    """QAT hyper-parameters (CLI: --epochs --lr --train-batch-size --kd-temperature --kd-weight --amp --max-steps)."""

    epochs: int = 1
    lr: float = 1e-5
    weight_decay: float = 0.0
    batch_size: int = 64
    kd_temperature: float = 2.0
    kd_weight: float = 0.7
    amp: bool = False             # bf16 autocast (no loss scaling needed)
    max_steps: int | None = None  # stop after this many optimizer steps in total (short runs, tests)
    train_images: int | None = None  # use a fixed random subset of the training split
    seed: int = 0
    workers: int = 0

    def __post_init__(self):
        if self.epochs < 1:
            raise ValueError(f"--epochs must be >= 1, got {self.epochs}")
        if not self.lr > 0:
            raise ValueError(f"--lr must be > 0, got {self.lr}")
        if self.batch_size < 1:
            raise ValueError(f"--train-batch-size must be >= 1, got {self.batch_size}")
        if not self.kd_temperature > 0:
            raise ValueError(f"--kd-temperature must be > 0, got {self.kd_temperature}")
        if not 0.0 <= self.kd_weight <= 1.0:
            raise ValueError(f"--kd-weight must be in [0, 1], got {self.kd_weight}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, temperature: float,
                      kd_weight: float) -> torch.Tensor:
    """Task CE + Hinton KD. student, teacher: logits [B, K]; labels: [B]."""
    t = temperature
    kd = F.kl_div(F.log_softmax(student.float() / t, dim=1), F.log_softmax(teacher.float() / t, dim=1),
                  reduction="batchmean", log_target=True) * (t * t)
    ce = F.cross_entropy(student.float(), labels)
    return (1.0 - kd_weight) * ce + kd_weight * kd


def _dist_setup(device: torch.device) -> tuple[bool, int, int, torch.device]:
    """(distributed, rank, world size, this rank's device). Initializes the process group under torchrun."""
    if not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend)
    if not dist.is_initialized():
        return False, 0, 1, device
    rank, world = dist.get_rank(), dist.get_world_size()
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank % max(torch.cuda.device_count(), 1))))
        torch.cuda.set_device(device)
    return True, rank, world, device


def train_qat(model: nn.Module, teacher: nn.Module, train_set: Dataset, cfg: QATConfig,
              device: str | torch.device = "cpu", checkpoint_fn: Callable[[nn.Module, int], Any] | None = None,
              progress: bool = True) -> dict[str, Any]:
    """Fine-tune the calibrated fake-quantized `model` in place; returns the training record.

    Args:
        model: calibrated fake-quantized model (from PTQ); its amax stay fixed.
        teacher: the floating-point model it was quantized from (frozen).
        train_set: training split, items (image [C, H, W], label).
        checkpoint_fn: called on rank 0 after each epoch with (unwrapped model, epoch) to write a checkpoint.
    """
    distributed, rank, world, device = _dist_setup(torch.device(device))
    torch.manual_seed(cfg.seed)
    if cfg.train_images is not None:
        from ..calibration.sampling import calibration_subset

        train_set = calibration_subset(train_set, cfg.train_images, seed=cfg.seed + 1)
    model.to(device).train()
    teacher.to(device).eval().requires_grad_(False)
    sampler = (torch.utils.data.distributed.DistributedSampler(train_set, world, rank, shuffle=True, seed=cfg.seed)
               if distributed else None)
    g = torch.Generator().manual_seed(cfg.seed)
    loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=sampler is None, sampler=sampler,
                        num_workers=cfg.workers, drop_last=len(train_set) >= cfg.batch_size * world, generator=g)
    if len(loader) == 0:
        raise ValueError("QAT has no training batches: the training set is empty")
    student: nn.Module = model
    if distributed:
        student = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = cfg.epochs * len(loader) if cfg.max_steps is None else min(cfg.max_steps, cfg.epochs * len(loader))
    # Cosine from lr down to 1% of it (pytorch-quantization's QAT guidance).
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(s, total) / max(total, 1))))
    record: dict[str, Any] = {"config": cfg.to_dict(), "distributed": distributed, "world_size": world, "epochs": []}
    step = 0
    for epoch in range(cfg.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        student.train()
        loss_sum, n = 0.0, 0
        bar = tqdm(loader, desc=f"qat epoch {epoch + 1}/{cfg.epochs}", disable=not progress or rank != 0, leave=False)
        for x, y in bar:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp):
                with torch.no_grad():
                    t_logits = teacher(x)
                s_logits = student(x)
            loss = distillation_loss(s_logits, t_logits, y, cfg.kd_temperature, cfg.kd_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            loss_sum += float(loss.detach()) * len(y)
            n += len(y)
            bar.set_postfix(loss=f"{loss_sum / n:.4f}")
            if step >= total:
                break
        record["epochs"].append({"epoch": epoch + 1, "steps": step, "loss": loss_sum / max(n, 1), "images": n})
        model.eval()
        if checkpoint_fn is not None and rank == 0:
            checkpoint_fn(model, epoch + 1)
        if distributed:
            dist.barrier()
        if step >= total:
            break
    record["steps"] = step
    model.eval()
    return record


def checkpoint_writer(out_dir: str | Path, save: Callable[[nn.Module, Path], Any]) -> Callable[[nn.Module, int], Any]:
    """A `checkpoint_fn` writing `out_dir/qat-epoch{N}.pth` (+ sidecar) through `save(model, path)`."""
    out_dir = Path(out_dir)

    def write(model: nn.Module, epoch: int):
        return save(model, out_dir / f"qat-epoch{epoch}.pth")

    return write
