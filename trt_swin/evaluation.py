"""Accuracy of a model (or any callable images -> logits) on a labelled loader, and logit comparisons."""
from __future__ import annotations

import time
from typing import Callable

import torch
from tqdm import tqdm


@torch.no_grad()
def evaluate(
    model: Callable[[torch.Tensor], torch.Tensor],
    loader,
    device: str | torch.device = "cpu",
    progress: bool = True,
    return_logits: bool = False,
    input_dtype: torch.dtype = torch.float32,
) -> dict:
    """Top-1, top-5, per-class accuracy and images/s of `model` over `loader`.

    Returns a dict with `top1`, `top5` (percent), `per_class` (list of percent, by label), `images_per_s`, `n`
    (images evaluated), `dropped` (unreadable images skipped), and with `return_logits` the float32 `logits` [n, K]
    and `labels` [n] on the CPU.
    """
    device = torch.device(device)
    if isinstance(model, torch.nn.Module):
        model.eval()
    correct1 = correct5 = n = 0
    per_class_hit: torch.Tensor | None = None
    per_class_n: torch.Tensor | None = None
    all_logits, all_labels = [], []
    elapsed = 0.0
    for x, y in tqdm(loader, desc="eval", disable=not progress, leave=False):
        if len(y) == 0:
            continue
        x = x.to(device, input_dtype, non_blocking=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        logits = model(x).float()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed += time.perf_counter() - t0
        logits = logits.cpu()
        k = logits.shape[1]
        if per_class_hit is None:
            per_class_hit, per_class_n = torch.zeros(k, dtype=torch.long), torch.zeros(k, dtype=torch.long)
        top = logits.topk(min(5, k), dim=1).indices
        hit1 = top[:, 0] == y
        correct1 += int(hit1.sum())
        correct5 += int((top == y[:, None]).any(1).sum())
        per_class_n += torch.bincount(y, minlength=k)
        per_class_hit += torch.bincount(y[hit1], minlength=k)
        n += len(y)
        if return_logits:
            all_logits.append(logits)
            all_labels.append(y)
    if n == 0:
        raise ValueError("evaluation saw no images (empty dataset, or every image was unreadable)")
    total = len(loader.dataset) if hasattr(loader, "dataset") else n
    out = {
        "top1": 100.0 * correct1 / n,
        "top5": 100.0 * correct5 / n,
        "per_class": [100.0 * float(h) / max(int(c), 1) for h, c in zip(per_class_hit, per_class_n)],
        "images_per_s": n / elapsed if elapsed > 0 else float("nan"),
        "n": n,
        "dropped": total - n,
    }
    if return_logits:
        out["logits"] = torch.cat(all_logits)
        out["labels"] = torch.cat(all_labels)
    return out


def compare_logits(ref_logits: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> dict:
    """Top-1 of both, top-1 agreement and mean per-image cosine similarity of `logits` against `ref_logits`."""
    ref_logits, logits = ref_logits.float(), logits.float()
    p_ref, p = ref_logits.argmax(1), logits.argmax(1)
    return {
        "top1_ref": 100.0 * float((p_ref == labels).float().mean()),
        "top1": 100.0 * float((p == labels).float().mean()),
        "agreement": 100.0 * float((p_ref == p).float().mean()),
        "cosine": float(torch.nn.functional.cosine_similarity(ref_logits, logits, dim=1).mean()),
        "rel_l2": float((logits - ref_logits).norm() / ref_logits.norm().clamp_min(1e-12)),
    }
