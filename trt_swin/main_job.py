"""`python -m trt_swin.main_job`: the README's end-to-end job on the committed `fmnist-mini` model.

1. FP32 accuracy on the Fashion-MNIST test set (`trt_swin eval`).
2. PTQ with the default `int8` recipe on training images, the Q/DQ ONNX export checked on onnxruntime, and the
   FP32 vs INT8 accuracy table (`trt_swin quantize --onnx`).
3. With a GPU and the built CUDA ops: FP16 and INT8 native engines, their accuracy against FP32 and their latency
   against PyTorch FP16 eager (`trt_swin build-engine`, `eval --engine`, `bench`). Without, it says so and skips.
Outputs go to runs/main_job/.
"""
from __future__ import annotations

import sys
from pathlib import Path

from trt_swin.cli import main as cli

OUT = Path("runs/main_job")


def _step(title: str, argv: list[str]) -> None:
    print(f"\n== {title} ==\n$ trt_swin {' '.join(argv)}", flush=True)
    rc = cli(argv)
    if rc != 0:
        raise SystemExit(f"main job: step '{title}' failed (exit {rc})")


def main() -> int:
    import torch

    from trt_swin.plugins import available

    _step("fmnist-mini: FP32 accuracy", ["eval", "--model", "fmnist-mini", "--json", str(OUT / "eval_fp32.json")])
    qdir = OUT / "quant"
    _step("fmnist-mini: INT8 PTQ (recipe int8), Q/DQ ONNX, FP32 vs INT8",
          ["quantize", "--model", "fmnist-mini", "--mode", "ptq", "--recipe", "int8", "--onnx", "--quiet",
           "--output-dir", str(qdir), "--json", str(OUT / "quant_int8.json")])
    ok, why = available()
    if not ok:
        print(f"\n== engines: skipped ({why}) ==\nOn a machine with a GPU: `python -m trt_swin.plugins.build`, then run "
              "this job again to build and check the FP16 and INT8 engines.")
        return 0
    fp16, int8 = OUT / "fmnist-mini-fp16.engine", OUT / "fmnist-mini-int8.engine"
    _step("FP16 engine", ["build-engine", "--model", "fmnist-mini", "--precision", "fp16", "--max-batch", "256",
                          "-o", str(fp16)])
    _step("INT8 engine (from the PTQ checkpoint)",
          ["build-engine", "--quantized", str(qdir / "fmnist-mini-int8.pth"), "--precision", "int8",
           "--max-batch", "256", "-o", str(int8)])
    _step("engine accuracy against FP32", ["eval", "--model", "fmnist-mini", "--engine", str(fp16), "--engine", str(int8),
                                           "--batch-size", "256", "--json", str(OUT / "eval_engines.json")])
    _step("latency: PyTorch FP16 eager vs the engines",
          ["bench", "--model", "fmnist-mini", "--backends", "eager-fp16,eager-fp16-graph", "--engine", str(fp16),
           "--engine", str(int8), "--batch-sizes", "1", "8", "32", "128", "--json", str(OUT / "bench.json"),
           "--md", str(OUT / "bench.md"), "--plot", str(OUT / "bench.png")])
    print(f"\nCUDA device: {torch.cuda.get_device_name()}; results in {OUT}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
