"""`trt_swin quantize` end to end on fmnist-mini (PTQ, default recipe, ONNX, calibration cache, --keep-fp) and its
user errors: one line naming the problem, exit code 2."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pathlib import Path

from trt_swin.cli import main as cli

from quant_test_utils import MODEL_SPEC

NAME = Path(MODEL_SPEC).stem  # fmnist-mini (or a development stand-in)
FAST = ["--model", MODEL_SPEC, "--device", "cpu", "--calib-images", "128", "--limit", "300", "--quiet"]


@pytest.fixture(scope="module")
def ptq_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli")
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli(["quantize", *FAST, "--onnx", "--output-dir", str(out), "--json", str(out / "report.json"),
                  "--calib-cache", str(out / "calib.safetensors")])
    return rc, out, buf.getvalue()


def test_ptq_writes_everything(trained, ptq_run):
    rc, out, stdout = ptq_run
    assert rc == 0, stdout
    for f in (f"{NAME}-int8.pth", f"{NAME}-int8.json", "scales.json", "summary.md", f"{NAME}-int8.onnx",
              "calib.safetensors"):
        assert (out / f).exists(), f
    report = json.loads((out / "report.json").read_text())
    acc = report["accuracy"]
    assert report["recipe"] == "int8" and report["calibrator"] == "percentile-99.99" and acc["n"] == 300
    assert acc["agreement"] >= 97.0 and acc["cosine"] >= 0.995 and acc["top1"] >= acc["top1_ref"] - 1.5
    assert report["onnx"]["ok"] and report["onnx"]["cosine"] >= 0.999
    # Printed: the summary table (one row per quantizable module) and the FP32 vs INT8 accuracy table.
    assert "| layers.1.downsample.reduction | Linear" in stdout
    assert f"{NAME} int8 ptq" in stdout and "agreement %" in stdout and "logit cosine" in stdout


def test_calibration_cache_is_reused_then_refused(trained, ptq_run, tmp_path, capsys):
    _, out, _ = ptq_run
    cache = str(out / "calib.safetensors")
    args = ["quantize", *FAST, "--no-eval", "--output-dir", str(tmp_path), "--calib-cache", cache]
    assert cli(args) == 0
    assert "calib.safetensors: hit" in capsys.readouterr().out
    assert cli(args + ["--calibrator", "max"]) == 2
    assert "made for a different quantizers" in capsys.readouterr().err
    assert cli(args + ["--seed", "1"]) == 2
    assert "made for a different data" in capsys.readouterr().err


def test_keep_fp(trained, tmp_path, capsys):
    assert cli(["quantize", *FAST, "--calib-images", "32", "--no-eval", "--output-dir", str(tmp_path), "--keep-fp", "2",
                "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    keep = report["keep_fp"]
    assert keep == [r["module"] for r in report["sensitivity"]["layers"][:2]]
    side = json.loads((tmp_path / f"{NAME}-int8.json").read_text())
    for m in keep:
        assert not any(v["enabled"] for k, v in side["quantizers"].items() if k.startswith(m + "."))
    assert "kept in floating point" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    (["--rule", "layers.*.mlp.fc3: enable=false"], "selects no quantizable module"),
    (["--recipe", "int4"], "unknown recipe 'int4'"),
    (["--calib-images", "0"], "an empty calibration set"),
    (["--rules", "/nonexistent/rules.yaml"], "does not exist"),
    (["--mode", "qat", "--kd-weight", "2"], "--kd-weight must be in"),
], ids=["rule-no-match", "recipe", "empty-calib", "rules-file", "kd-weight"])
def test_user_errors(tmp_path, capsys, extra, message):
    assert cli(["quantize", *FAST, "--no-eval", "--output-dir", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_unknown_calibrator_is_refused_by_argparse(capsys):
    with pytest.raises(SystemExit):
        cli(["quantize", *FAST, "--calibrator", "kl"])
    assert "invalid choice: 'kl'" in capsys.readouterr().err


def test_rule_file_that_does_not_parse(tmp_path, capsys):
    f = tmp_path / "bad.yaml"
    f.write_text("rules:\n  - match: [head\n")
    assert cli(["quantize", *FAST, "--no-eval", "--output-dir", str(tmp_path), "--rules", str(f)]) == 2
    assert "is not valid YAML" in capsys.readouterr().err


def test_module_shim():
    r = subprocess.run([sys.executable, "-m", "trt_swin.quantize", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "--keep-fp" in r.stdout and "--calib-cache" in r.stdout
