"""One training step of a tiny config, the CLI, and the committed model's recorded accuracy."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from trt_swin.cli import main
from trt_swin.models import CHECKPOINT_DIR, load_model, preset_info
from trt_swin.training import TrainConfig, augment, train


def test_one_training_step_changes_weights(tmp_path):
    info = preset_info("fmnist-mini")
    rec = train(info, None, tmp_path / "m.safetensors", TrainConfig(epochs=1, batch_size=32, max_steps=2, eval_every=0),
                device="cpu", progress=False, limit=256)
    assert rec["steps"] == 2
    m, info2 = load_model(str(tmp_path / "m.safetensors"))
    assert info2.meta["steps"] == 2 and 0.0 <= info2.meta["test_top1"] <= 100.0
    assert info2.meta["git_revision"]
    fresh = torch.nn.utils.parameters_to_vector(type(m)(**info.kwargs).parameters())
    assert fresh.shape == torch.nn.utils.parameters_to_vector(m.parameters()).shape


def test_augment_keeps_shape_and_changes_pixels():
    x = torch.randn(8, 1, 28, 28)
    y = augment(x, generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape and not torch.equal(x, y)


def test_cli_help_lists_every_command(capsys):
    from trt_swin.cli import build_parser

    parser, _ = build_parser()
    text = parser.format_help()
    for cmd in ("train", "eval", "quantize", "build-engine", "bench"):
        assert cmd in text


def test_python_m_entry_points():
    for mod in ("trt_swin", "trt_swin.train", "trt_swin.eval"):
        r = subprocess.run([sys.executable, "-m", mod, "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and "usage" in r.stdout, (mod, r.stderr)


def test_cli_error_is_one_line(capsys):
    rc = main(["eval", "--model", "swin_tinny_patch4_window7_224"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: unknown model") and err.count("\n") == 1


@pytest.mark.slow
def test_committed_mini_reproduces_its_recorded_accuracy(tmp_path):
    """Full 10k test set on CPU: same preprocessing, deterministic -> exactly the sidecar's number."""
    side = json.loads((CHECKPOINT_DIR / "fmnist-mini.json").read_text())
    out = tmp_path / "eval.json"
    assert main(["eval", "--model", "fmnist-mini", "--device", "cpu", "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["n"] == 10000
    assert rep["top1"] == side["meta"]["test_top1"]
