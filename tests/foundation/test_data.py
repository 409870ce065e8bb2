"""Both data loaders, their transforms, and unreadable input."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from trt_swin.data import DataError, FashionMNIST, build_dataset, build_loader, load_fashion_mnist
from trt_swin.models import load_model, preset_info

FMNIST = "/usr/share/datasets/fashion-mnist"


def test_fashion_mnist_splits():
    x, y = load_fashion_mnist(FMNIST, "test")
    assert x.shape == (10000, 28, 28) and x.dtype == torch.uint8
    assert torch.bincount(y).tolist() == [1000] * 10
    xt, yt = load_fashion_mnist(FMNIST, "train")
    assert xt.shape == (60000, 28, 28) and len(yt) == 60000


@pytest.mark.parametrize("preset, shape", [("fmnist-mini", (1, 28, 28)), ("fmnist-swin-t", (3, 224, 224))])
def test_fmnist_transform_matches_model_input(preset, shape):
    info = preset_info(preset)
    ds = build_dataset(None, "test", info)
    x, y = ds[0]
    assert tuple(x.shape) == shape and x.dtype == torch.float32
    if shape[0] == 3:  # gray repeated, then normalized per channel
        raw = x * torch.tensor(info.std).view(3, 1, 1) + torch.tensor(info.mean).view(3, 1, 1)
        torch.testing.assert_close(raw[0], raw[1]), torch.testing.assert_close(raw[1], raw[2])
    # normalized with the model statistics: O(1) values, not [0, 255] or [0, 1]
    batch = torch.stack([ds[i][0] for i in range(64)])
    assert abs(float(batch.mean())) < 1.0 and 0.5 < float(batch.std()) < 2.0


def _write_idx(path, arr: np.ndarray, magic: int):
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(f">I{arr.ndim}I", magic, *arr.shape) + arr.astype(np.uint8).tobytes())


def test_corrupt_idx_files(tmp_path):
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((5, 28, 28)), 0x803)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros((4,)), 0x801)
    with pytest.raises(DataError, match="5 images but 4 labels"):
        load_fashion_mnist(tmp_path, "test")
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros((5,)), 0x999)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz has magic 0x999"):
        load_fashion_mnist(tmp_path, "test")
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, 5, 28, 28) + b"\0" * 100)
    with pytest.raises(DataError, match="holds 100 data bytes"):
        load_fashion_mnist(tmp_path, "test")
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot read IDX file"):
        load_fashion_mnist(tmp_path, "test")


@pytest.fixture
def image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        d = tmp_path / "val" / cls
        d.mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (300 + 17 * i, 250, 3), dtype=np.uint8)).save(d / f"{i}.jpg")
    (tmp_path / "val" / "dog" / "broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    return tmp_path


def test_image_folder_sizes_and_corrupt_image(image_folder):
    _, info = load_model("swin_tiny_patch4_window7_224", num_classes=2)
    ds = build_dataset(image_folder, "test", info)
    assert ds.classes == ["cat", "dog"]
    x, y = ds[0]
    assert tuple(x.shape) == (3, 224, 224)  # any image size -> the model's input size
    broken = [i for i, (p, _) in enumerate(ds.folder.samples) if p.endswith("broken.jpg")][0]
    with pytest.raises(DataError, match="cannot decode image .*broken.jpg"):
        ds[broken]
    loader = build_loader(build_dataset(image_folder, "test", info, skip_corrupt=True), batch_size=4)
    seen = sum(len(y) for _, y in loader)
    assert seen == 6  # 7 files, 1 unreadable, skipped and counted by the caller


def test_missing_data_path():
    info = preset_info("fmnist-mini")
    with pytest.raises(DataError, match="does not exist"):
        build_dataset("/nonexistent/data", "test", info)


def test_fashion_mnist_dataset_is_deterministic():
    info = preset_info("fmnist-mini")
    a, b = FashionMNIST(FMNIST, "test", info), FashionMNIST(FMNIST, "test", info)
    assert torch.equal(a[123][0], b[123][0])
