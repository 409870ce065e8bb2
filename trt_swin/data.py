"""Labelled image data for calibration, training and accuracy checks.

Two sources:
- Fashion-MNIST IDX files (Debian's `dataset-fashion-mnist` installs them in /usr/share/datasets/fashion-mnist):
  `{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`; 28x28 gray, 10 classes.
- An ImageFolder tree (ImageNet val layout): `ROOT/{train,val}/<class>/<image>`, or `ROOT/<class>/<image>` for one split.

Every image is brought to the model's input: [in_chans, img_size, img_size] float, normalized with the model's
mean/std (gray is repeated to 3 channels where the model has 3). The evaluation transform is deterministic, so the
same checkpoint gives the same accuracy on every run.
"""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

if TYPE_CHECKING:
    from .models import ModelInfo

# Debian's dataset-fashion-mnist location; TRT_SWIN_DATA points elsewhere (machines without the Debian package).
FMNIST_DEFAULT = Path(os.environ.get("TRT_SWIN_DATA", "/usr/share/datasets/fashion-mnist"))
FMNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
Split = Literal["train", "test"]


class DataError(ValueError):
    """Unusable data (missing, corrupt, wrong format); the message names the file."""


def _read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read IDX file {path}: {e}") from e
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"IDX file {path} is truncated ({len(raw)} bytes, header needs {header})")
    got_magic, *dims = struct.unpack(f">I{ndim}I", raw[:header])
    if got_magic != magic:
        raise DataError(f"IDX file {path} has magic {got_magic:#x}, expected {magic:#x} (not an IDX {ndim}-D uint8 file)")
    n = int(np.prod(dims))
    if len(raw) - header != n:
        raise DataError(f"IDX file {path} holds {len(raw) - header} data bytes, its header says {n} ({dims})")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find(root: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (root / name).exists():
            return root / name
    raise DataError(f"Fashion-MNIST file {stem}[.gz] not found in {root} (apt-get install dataset-fashion-mnist, or pass --data)")


def load_fashion_mnist(root: str | Path, split: Split) -> tuple[torch.Tensor, torch.Tensor]:
    """Images uint8 [N, 28, 28] and labels int64 [N] of one split."""
    root = Path(root)
    prefix = "train" if split == "train" else "t10k"
    images = _read_idx(_find(root, f"{prefix}-images-idx3-ubyte"), 0x00000803, 3)
    labels = _read_idx(_find(root, f"{prefix}-labels-idx1-ubyte"), 0x00000801, 1)
    if len(images) != len(labels):
        raise DataError(f"Fashion-MNIST {split} split in {root}: {len(images)} images but {len(labels)} labels")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def gray_to_model_input(images: torch.Tensor, info: "ModelInfo") -> torch.Tensor:
    """uint8 [B, h, w] gray -> float [B, in_chans, S, S], resized (bilinear) and normalized. Deterministic.

    Works on any device, so the GPU training loop and CPU evaluation use the very same function.
    """
    x = images.unsqueeze(1).float().div_(255.0)
    if x.shape[-1] != info.img_size or x.shape[-2] != info.img_size:
        x = F.interpolate(x, size=(info.img_size, info.img_size), mode="bilinear", align_corners=False)
    if info.in_chans != 1:
        x = x.expand(-1, info.in_chans, -1, -1)
    mean = torch.tensor(info.mean, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(info.std, device=x.device).view(1, -1, 1, 1)
    if mean.shape[1] != x.shape[1]:  # gray statistics for a 3-channel model, or the reverse: use the first
        mean, std = mean[:, :1], std[:, :1]
    return ((x - mean) / std).contiguous()


class FashionMNIST(Dataset):
    """Fashion-MNIST in the model's input format. Items: (float [C, S, S], int label)."""

    classes = FMNIST_CLASSES

    def __init__(self, root: str | Path, split: Split, info: "ModelInfo"):
        self.images, self.labels = load_fashion_mnist(root, split)
        self.info = info
        self.root = Path(root)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return gray_to_model_input(self.images[i : i + 1], self.info)[0], int(self.labels[i])


class ImageFolderData(Dataset):
    """An ImageFolder tree with timm's evaluation transform (resize, center crop 0.875, normalize).

    An unreadable image raises an error naming the file, or, with `skip_corrupt`, is dropped from the batch and
    counted in `corrupt` (see `collate_skip_none`).
    """

    def __init__(self, root: str | Path, info: "ModelInfo", skip_corrupt: bool = False):
        from timm.data import create_transform
        from torchvision.datasets import ImageFolder

        root = Path(root)
        try:
            self.folder = ImageFolder(str(root), loader=lambda p: p)  # paths; decoding happens in __getitem__
        except (FileNotFoundError, RuntimeError) as e:
            raise DataError(f"{root} is not an ImageFolder tree (<class>/<image>): {e}") from e
        self.classes = self.folder.classes
        self.transform = create_transform(
            input_size=(info.in_chans, info.img_size, info.img_size), mean=info.mean, std=info.std, crop_pct=0.875
        )
        self.in_chans = info.in_chans
        self.skip_corrupt = skip_corrupt

    def __len__(self) -> int:
        return len(self.folder.samples)

    def __getitem__(self, i: int):
        from PIL import Image, UnidentifiedImageError

        path, label = self.folder.samples[i]
        try:
            with Image.open(path) as im:
                im = im.convert("L" if self.in_chans == 1 else "RGB")
                return self.transform(im), label
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            if self.skip_corrupt:
                return None
            raise DataError(f"cannot decode image {path}: {e} (remove it, or pass --skip-corrupt)") from e


def collate_skip_none(batch):
    """Default collation after dropping the items a dataset returned as None (corrupt images, counted by the caller
    as dataset length minus images seen)."""
    kept = [b for b in batch if b is not None]
    if not kept:
        return torch.empty(0), torch.empty(0, dtype=torch.long)
    return torch.utils.data.default_collate(kept)


def build_dataset(data: str | Path | None, split: Split, info: "ModelInfo", augment: bool = False,
                  skip_corrupt: bool = False) -> Dataset:
    """The dataset at `data` (None: Fashion-MNIST at its Debian location) for one split.

    `augment` is accepted for API symmetry; augmentation happens on the batch in the training loop.
    """
    root = Path(data) if data is not None else FMNIST_DEFAULT
    if not root.exists():
        raise DataError(f"data path {root} does not exist")
    if root.is_dir() and any(p.name.startswith(("t10k-", "train-images")) for p in root.iterdir()):
        return FashionMNIST(root, split, info)
    sub = root / ("train" if split == "train" else "val")
    if sub.is_dir():
        return ImageFolderData(sub, info, skip_corrupt)
    if root.is_dir():
        return ImageFolderData(root, info, skip_corrupt)
    raise DataError(f"{root}: expected a folder of Fashion-MNIST IDX files or an ImageFolder tree")


def build_loader(dataset: Dataset, batch_size: int, shuffle: bool = False, workers: int = 0, seed: int = 0,
                 limit: int | None = None) -> DataLoader:
    """A loader yielding (images [B, C, S, S], labels [B]). `limit` keeps the first N items (a fixed subset)."""
    if limit is not None and limit < len(dataset):
        dataset = torch.utils.data.Subset(dataset, range(limit))
    if len(dataset) == 0:
        raise DataError("the dataset is empty")
    g = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers, generator=g,
                      collate_fn=collate_skip_none, persistent_workers=False)
