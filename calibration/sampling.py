"""Which images calibrate: a fixed random subset of the training split (as FasterTransformer does), never the
evaluation split, so the accuracy reported on the test split is not tuned on it."""
from __future__ import annotations

import torch
from torch.utils.data import Dataset, Subset


def calibration_subset(dataset: Dataset, num_images: int, seed: int = 0, split: str = "train") -> Subset:
    """`num_images` images of `dataset` drawn without replacement with `seed` (sorted indices, reproducible).

    Args:
        dataset: the training split (`split` says which split it is, to refuse the evaluation split).
        num_images: how many images; more than the dataset holds uses all of it.
    Raises:
        ValueError: `split` is the evaluation split, `num_images` < 1, or the dataset is empty.
    """
    if split != "train":
        raise ValueError(f"calibration images must come from the training split, not '{split}': calibrating on the "
                         "evaluation split would tune the reported accuracy on its own test images")
    if num_images < 1:
        raise ValueError(f"--calib-images must be at least 1, got {num_images} (an empty calibration set)")
    if len(dataset) == 0:
        raise ValueError("the calibration set is empty: the training split holds no images (check --data)")
    n = min(num_images, len(dataset))
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(dataset), generator=g)[:n].sort().values.tolist()
    return Subset(dataset, idx)
