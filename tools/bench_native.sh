#!/usr/bin/env bash
# GPU check of the native engine, in one device call (after `source tools/device_setup.sh`):
#   bash tools/bench_native.sh OUT_DIR [MODEL]
# 1. GPU tests of the gemm op and the engine; 2. fmnist-mini FP32 vs FP16 / INT8 engines on the Fashion-MNIST test set
# (INT8 max-calibrated on 256 training images: `trt_swin quantize` scales do better); 3. latency / throughput of
# MODEL (default random-init Swin-T) at batch 1, 8, 32, 128: eager FP16, eager FP16 + CUDA graph, native FP16 / INT8 /
# FP8 engines. torch.compile(max-autotune) is left out here (minutes per batch size); to include it, warm its cache
# first:  trt_swin bench --model M --backends compile-max-autotune --compile-only   and then add it to --backends.
set -u
OUT=${1:?usage: bench_native.sh OUT_DIR [MODEL]}
MODEL=${2:-swin_tiny_patch4_window7_224}
mkdir -p "$OUT" engines
DATA=${TRT_SWIN_DATA:-.data/fashion-mnist}

echo "== GPU tests"
timeout 130 python3 -m pytest -q -p no:cacheprovider tests/plugins/test_gemm.py tests/engines/test_native_gpu.py \
  > "$OUT/pytest_gpu.txt" 2>&1
tail -n 15 "$OUT/pytest_gpu.txt"

echo "== $MODEL: latency / throughput"
timeout 150 python3 -m trt_swin.bench --model "$MODEL" --backends eager-fp16,eager-fp16-graph --build fp16,int8,fp8 \
  --batch-sizes 1 8 32 128 --iters 50 --warmup 10 --json "$OUT/h5_bench.json" --md "$OUT/h5_bench.md" \
  --plot "$OUT/h5_bench.png" 2>&1 | grep -v Warning | tail -n 30

echo "== fmnist-mini engines: accuracy on the test set"
timeout 60 python3 -m trt_swin.build_engine --model fmnist-mini --precision fp16 --max-batch 256 -o engines/fmnist-mini-fp16.engine
timeout 90 python3 -m trt_swin.build_engine --model fmnist-mini --precision int8 --calib-images 256 --max-batch 256 \
  -o engines/fmnist-mini-int8.engine
timeout 120 python3 -m trt_swin.eval --model fmnist-mini --data "$DATA" --batch-size 256 \
  --engine engines/fmnist-mini-fp16.engine --engine engines/fmnist-mini-int8.engine --json "$OUT/h5_mini_accuracy.json" 2>/dev/null

