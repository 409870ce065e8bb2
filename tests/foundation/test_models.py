"""Model loading: timm names, presets, each checkpoint format, and the error cases."""
from __future__ import annotations

import json

import pytest
import timm
import torch

from trt_swin.models import (PRESETS, SWIN_V1_NAMES, ModelSpecError, build_model, load_model, preset_info,
                             save_checkpoint)

TINY = "swin_tiny_patch4_window7_224"


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_v1_names_cover_the_product_models():
    for name in ("swin_tiny_patch4_window7_224", "swin_small_patch4_window7_224", "swin_base_patch4_window7_224",
                 "swin_large_patch4_window7_224", "swin_base_patch4_window12_384", "swin_large_patch4_window12_384"):
        assert name in SWIN_V1_NAMES
    assert not any(n.startswith("swinv2") for n in SWIN_V1_NAMES)


def test_timm_name_with_overrides():
    m, info = load_model(TINY, num_classes=7, in_chans=1)
    assert info.img_size == 224 and info.num_classes == 7 and info.in_chans == 1
    assert m(torch.randn(1, 1, 224, 224)).shape == (1, 7)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_timm_state_dict_roundtrip(tmp_path, suffix):
    ref = timm.create_model(TINY, pretrained=False, num_classes=10)
    path = tmp_path / f"w{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(path))
    else:
        torch.save(ref.state_dict(), path)
    m, _ = load_model(TINY, checkpoint=path, num_classes=10)
    _same_weights(m, ref)


def test_microsoft_checkpoint(tmp_path):
    """Microsoft's layout: {'model': sd} with layers.N.downsample (timm: layers.N+1.downsample) and head.weight."""
    ref = timm.create_model(TINY, pretrained=False, num_classes=10)
    ms = {}
    for k, v in ref.state_dict().items():
        if k.startswith("head.fc."):
            k = k.replace("head.fc.", "head.")
        if ".downsample." in k:  # timm's stage i+1 downsample is Microsoft's stage i downsample
            i = int(k.split(".")[1])
            k = k.replace(f"layers.{i}.downsample", f"layers.{i - 1}.downsample")
        if k.endswith("relative_position_index") or k.endswith("attn_mask"):
            continue
        ms[k] = v
    torch.save({"model": ms, "epoch": 300}, tmp_path / "ms.pth")
    m, _ = load_model(TINY, checkpoint=tmp_path / "ms.pth", num_classes=10)
    _same_weights(m, ref)


def test_trt_swin_checkpoint_with_sidecar(tmp_path):
    info = preset_info("fmnist-mini")
    ref = build_model(info)
    path = save_checkpoint(ref, info, tmp_path / "mini.safetensors")
    m, info2 = load_model(str(path))
    _same_weights(m, ref)
    assert info2.kwargs == json.loads(json.dumps(info.kwargs)) or info2.img_size == info.img_size
    assert info2.img_size == 28 and info2.in_chans == 1


def test_committed_mini_checkpoint_is_small_and_loads():
    p = PRESETS["fmnist-mini"]
    from trt_swin.models import CHECKPOINT_DIR

    path = CHECKPOINT_DIR / "fmnist-mini.safetensors"
    assert path.exists(), "the trained fmnist-mini checkpoint must be committed"
    assert path.stat().st_size <= 15 * 1024 * 1024
    m, info = load_model("fmnist-mini")
    assert info.meta["test_top1"] >= 90.0
    blocks = [b for layer in m.layers for b in layer.blocks]
    assert any(b.shift_size[0] > 0 for b in blocks), "must have shifted windows"
    assert sum(layer.downsample is not None and not isinstance(layer.downsample, torch.nn.Identity)
               for layer in m.layers) >= 2, "must have two patch-merging steps"
    assert p["kwargs"]["embed_dim"] // p["kwargs"]["num_heads"][0] == 32


@pytest.mark.parametrize(
    "spec, kwargs, match",
    [
        ("swin_tinny_patch4_window7_224", {}, "Did you mean: swin_tiny_patch4_window7_224"),
        ("swinv2_tiny_window8_256", {}, "unknown model"),
        (TINY, {"checkpoint": "/nonexistent/w.pth"}, "checkpoint not found"),
        ("/nonexistent/model.safetensors", {}, "no trt_swin sidecar"),
    ],
)
def test_bad_specs(spec, kwargs, match):
    with pytest.raises(ModelSpecError, match=match):
        load_model(spec, **kwargs)


def test_mismatched_state_dict_lists_keys(tmp_path):
    small = timm.create_model(TINY, pretrained=False, num_classes=10)
    torch.save(small.state_dict(), tmp_path / "t.pth")
    with pytest.raises(ModelSpecError, match=r"shape mismatches: head\.fc\.weight: checkpoint \(10, 768\) vs model \(1000, 768\)"):
        load_model(TINY, checkpoint=tmp_path / "t.pth")
    with pytest.raises(ModelSpecError, match=r"missing keys: layers\.2\.blocks\.6\.norm1\.weight.*\(\+148 more\)"):
        load_model("swin_small_patch4_window7_224", checkpoint=tmp_path / "t.pth", num_classes=10)


def test_corrupt_checkpoint(tmp_path):
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ModelSpecError, match="cannot read checkpoint .*bad.pth"):
        load_model(TINY, checkpoint=tmp_path / "bad.pth")
