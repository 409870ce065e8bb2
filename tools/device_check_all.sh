#!/usr/bin/env bash
# One device call over everything GPU-side (the session's combined check):
#   TRT_SWIN_PREBUILT=1 bash tools/device_check_all.sh          (carry .devlib, .whl, .data)
# 1. GPU tests of every op and the native engine; 2. compute-sanitizer on a small subset; 3. engine build variants
# of Swin-T (latency + kernel time by category, tools/engine_variants.py); 4. fmnist-mini accuracy of FP16 / INT8 / FP8
# engines on the Fashion-MNIST test set. Each step has its own time limit; results in $OUT.
# CHECK_STEPS (default "tests sanitizer variants accuracy") picks steps.
set -u
OUT=${OUT:-/tmp/trt_swin_check}; mkdir -p "$OUT" engines
export PYTHONUNBUFFERED=1
source tools/device_setup.sh
STEPS=${CHECK_STEPS:-tests sanitizer variants accuracy}
DATA=${TRT_SWIN_DATA:-.data/fashion-mnist}
has() { [[ " $STEPS " == *" $1 "* ]]; }

if has tests; then
  echo "== GPU tests"
  timeout ${CHECK_TESTS_S:-260} python3 -m pytest -q -m gpu -p no:cacheprovider tests/plugins tests/engines/test_native_gpu.py \
    --maxfail=40 > "$OUT/gpu_tests.txt" 2>&1
  grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/gpu_tests.txt" | tail -40
fi
if has sanitizer; then
  echo "== compute-sanitizer (memcheck) on small cases of the new paths"
  timeout 90 compute-sanitizer --tool memcheck --error-exitcode 3 python3 -m pytest -q -m gpu -p no:cacheprovider \
    tests/plugins/test_ln_shift_partition.py tests/plugins/test_window_reverse.py tests/plugins/test_patch_merge.py \
    -k "fp8 and edge-s1-30x30 and 1-" > "$OUT/sanitizer.txt" 2>&1; echo "memcheck rc=$? $(tail -1 "$OUT/sanitizer.txt")"
  timeout 60 compute-sanitizer --tool memcheck --error-exitcode 3 python3 -m trt_swin.plugins.fused_mlp.sanitize_check \
    > "$OUT/sanitizer_mlp.txt" 2>&1; echo "fused_mlp memcheck rc=$? $(tail -1 "$OUT/sanitizer_mlp.txt")"
fi
if has variants; then
  echo "== Swin-T engine variants"
  timeout ${CHECK_VARIANTS_S:-200} python3 tools/engine_variants.py --model swin_tiny_patch4_window7_224 \
    ${CHECK_VARIANTS:---variant fp16:erf:0 --variant fp16:erf:128 --variant fp16:tanh:128 --variant fp8:tanh:128 --variant int8:tanh:128} \
    --batch-sizes 1 128 --json "$OUT/variants.json" 2>&1 | grep -v -i warn | tail -30
fi
if has accuracy; then
  echo "== fmnist-mini engines: accuracy on the test set"
  for spec in fp16:erf fp16:tanh fp8:tanh int8:tanh; do
    prec=${spec%%:*}; gelu=${spec##*:}
    extra=""; [ "$prec" != fp16 ] && extra="--calib-images 256"
    timeout 60 python3 -m trt_swin.build_engine --model fmnist-mini --precision $prec --gelu $gelu $extra --max-batch 256 \
      -o engines/mini-$prec-$gelu.engine > "$OUT/build_$prec-$gelu.txt" 2>&1 || { echo "build $spec failed"; tail -5 "$OUT/build_$prec-$gelu.txt"; }
  done
  timeout 120 python3 -m trt_swin.eval --model fmnist-mini --data "$DATA" --batch-size 256 \
    $(for f in engines/mini-*.engine; do echo --engine $f; done) --json "$OUT/mini_accuracy.json" 2>&1 | grep -v -i warn | tail -12
fi
