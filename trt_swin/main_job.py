"""`python -m trt_swin.main_job`: the README's end-to-end job on the committed `fmnist-mini` model.

Today: evaluate it on the Fashion-MNIST test set (CPU, or CUDA when present) and print the accuracy table.
Later stages (quantize + build + check) are added as the quantization and engine issues land.
"""
from __future__ import annotations

import sys

from trt_swin.cli import main as cli


def main() -> int:
    print("== fmnist-mini: FP32 accuracy on the Fashion-MNIST test set ==", flush=True)
    return cli(["eval", "--model", "fmnist-mini", "--json", "runs/main_job/eval_fp32.json"])


if __name__ == "__main__":
    sys.exit(main())
