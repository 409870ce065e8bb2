#!/usr/bin/env bash
# The session's final GPU call, everything in one machine start (carry .devlib, .whl, .data):
#   TRT_SWIN_PREBUILT=1 bash tools/device_final.sh
# In the background while the correctness steps run (they time nothing): train fmnist-swin-t, PTQ int8 / fp8.
# Foreground: GPU tests of all ops and the engine, fmnist-mini engine accuracy; then, alone on the GPU: fmnist-swin-t
# engine accuracy, Swin-T bench (all batch sizes), Swin-B / Swin-L / Swin-B 384 benches.
# All of it does NOT fit one 600 s call (measured: the GPU tests alone took over 200 s next to the training): pick
# steps with FINAL_STEPS (default "tests mini swint bench_t bench_bl"), e.g. "tests mini" in one call and
# "swint bench_t bench_bl" in the next, and never pipe the call through `tail` (a killed pipeline returns nothing).
# FINAL_SWINT_PRECISIONS (default "int8 fp8"): the PTQ runs of the swint step, e.g. "fp8" alone to fit one call.
# Optional steps: "row_sweep" (bench_memops per TRT_SWIN_ROW_TARGET_VPT), "sanitizer" (tools/sanitize_ops.sh: memcheck + racecheck over every op, in the background beside the
# tests), "memops" (plugins/bench_memops.py at batch 1 / 32 / 128), "ncu" (the memory ops under their bar) and
# "fattn" (plugins/fused_attention/bench.py; FINAL_FATTN_TRITON), "wattn" (plugins/window_attention/bench.py with
# the Triton configs FINAL_WATTN_TRITON), "fmlp" (plugins/fused_mlp/bench.py;
# FINAL_FMLP_VARIANTS, FINAL_FMLP_TRITON), "ncu_fattn" (warp stall reasons; FINAL_NCU_FATTN_WPC), "variants" (Swin-T engine build variants, tools/engine_variants.py; FINAL_VARIANTS overrides the list).
set -u
STEPS=${FINAL_STEPS:-tests mini swint bench_t bench_bl}
has() { [[ " $STEPS " == *" $1 "* ]]; }
OUT=${OUT:-/tmp/trt_swin_final}; mkdir -p "$OUT" engines runs
export PYTHONUNBUFFERED=1
source tools/device_setup.sh
python3 -c "import pulp" 2>/dev/null || { mkdir -p /tmp/site/pulp &&  # see tools/device_accuracy_swint.sh
  printf 'def __getattr__(name):\n    if name.startswith("__"):\n        raise AttributeError(name)\n    return type(name, (), {})\n' > /tmp/site/pulp/__init__.py; }
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
export TRT_SWIN_DATA=$PWD/.data/fashion-mnist
D=$TRT_SWIN_DATA
T0=$(date +%s); el() { echo "[$(( $(date +%s) - T0 ))s]"; }
left() { echo $(( 590 - ($(date +%s) - T0) )); }  # seconds to the end of a 600 s device call
clean() { tr '\r' '\n' | grep -v -E '%\||^\s*$|it/s\]' ; }

M=runs/fmnist-swin-t.safetensors
BG=
has swint && (
  python3 -m trt_swin train --preset fmnist-swin-t --data "$D" -o $M --json "$OUT/train_swint.json" > "$OUT/bg_train.txt" 2>&1
  for r in "int8 percentile 99.99" "fp8 max"; do
    set -- $r
    [[ " ${FINAL_SWINT_PRECISIONS:-int8 fp8} " == *" $1 "* ]] || continue
    python3 -m trt_swin quantize --model $M --recipe $1 --calibrator $2 ${3:+--percentile $3} --data "$D" --device cuda \
      --batch-size 500 --calib-images 512 --quiet --output-dir runs/q/$1 --json "$OUT/q_swint_$1.json" >> "$OUT/bg_train.txt" 2>&1
  done
) &
has swint && BG=$!

SAN=
if has sanitizer; then  # beside the tests (neither times anything); waited for before any timing step
  echo "$(el) == compute-sanitizer memcheck + racecheck (tools/sanitize_ops.sh), in the background"
  (timeout ${FINAL_SANITIZER_S:-400} bash tools/sanitize_ops.sh "$OUT" > "$OUT/sanitizer.txt" 2>&1; echo "sanitize_ops rc=$?" >> "$OUT/sanitizer.txt") &
  SAN=$!
fi

if has tests; then
echo "$(el) == GPU tests (ops + engine)"
# -v: one line per test as it finishes, so a run cut by the time limit still names its failures; pytest-xdist (carried
# in .whl) spreads the tests over FINAL_TESTS_WORKERS processes sharing the GPU
xd=; python3 -c "import xdist" 2>/dev/null && xd="-n ${FINAL_TESTS_WORKERS:-6}"
# FINAL_TESTS_K: a pytest -k expression, to re-run a subset
# -rN: no short summary at the end, so each failure is listed once (its progress line; tracebacks stay in the log)
timeout ${FINAL_TESTS_S:-300} python3 -m pytest -v -rN $xd -m gpu -p no:cacheprovider ${FINAL_TESTS_K:+-k "$FINAL_TESTS_K"} \
  tests/plugins tests/engines/test_native_gpu.py \
  > "$OUT/gpu_tests.txt" 2>&1
echo "tests rc=$? ($(grep -c PASSED "$OUT/gpu_tests.txt") PASSED lines)"
grep -E "^=+ .*(passed|failed|error)" "$OUT/gpu_tests.txt" | tail -1
grep -E "(FAILED|ERROR)( |$)" "$OUT/gpu_tests.txt" | grep -v "^=" | head -40 | cut -c1-300
fi

if [ -n "$SAN" ]; then
  wait $SAN; echo "$(el) == sanitizer:"; grep -E "clean|FAILED|rc=|failure" "$OUT/sanitizer.txt"
fi

if has ncu; then  # the shapes under their bar (tools/ncu_memops.py)
  echo "$(el) == ncu of the memory ops under their bar"
  for args in "ln_shift_partition 14 14 384 3" "ln_shift_partition 7 7 768 0" "patch_merge 28 28 192 0" \
              "patch_merge 14 14 384 0" "patch_merge 14 14 768 0" "window_reverse 56 56 96 3"; do
    echo "-- $args"
    timeout 60 ncu --kernel-name "regex:ln_shift|patch_merge|window_reverse" --launch-skip 1 --launch-count 1 \
      --section SpeedOfLight --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis \
      python3 tools/ncu_memops.py $args > "$OUT/ncu_${args// /_}.txt" 2>&1
    grep -E "Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|Theoretical Occupancy|Grid Size|Block Size|Registers Per|Waves Per SM" \
      "$OUT/ncu_${args// /_}.txt" | sed 's/  */ /g' | head -12
  done
fi

if has memops; then
  echo "$(el) == memory-bound ops vs eager / torch.compile, batch 1 / 32 / 128"
  limit=$(left); [ "$limit" -gt "${FINAL_MEMOPS_S:-260}" ] && limit=${FINAL_MEMOPS_S:-260}
  timeout $limit python3 -m trt_swin.plugins.bench_memops --batches 1,32,128 --json "$OUT/bench_memops.json" \
    > "$OUT/bench_memops.txt" 2>&1; echo "bench_memops rc=$?"; grep -E " B128 " "$OUT/bench_memops.txt" | head -40
fi

if has variants; then
  echo "$(el) == Swin-T engine variants"
  timeout 200 python3 tools/engine_variants.py --model swin_tiny_patch4_window7_224 \
    ${FINAL_VARIANTS:---variant fp16:erf:0 --variant fp16:erf:128 --variant fp16:tanh:128 --variant fp8:tanh:128 --variant int8:tanh:128} \
    --batch-sizes 1 128 --json "$OUT/variants.json" 2>&1 | grep -v -i warn | tail -30
fi

if has fattn; then
  echo "$(el) == fused attention half vs the unfused ops, batch 1 / 32 / 128"
  timeout ${FINAL_FATTN_S:-200} python3 -m trt_swin.plugins.fused_attention.bench --batches 1,32,128 \
    --triton-configs "${FINAL_FATTN_TRITON:-4x2h,4x1h}" --json "$OUT/bench_fused_attention.json" > "$OUT/bench_fused_attention.txt" 2>&1; echo "rc=$?"
  grep "^|" "$OUT/bench_fused_attention.txt"
fi

if has wattn; then
  echo "$(el) == window attention: the CUDA kernel and the Triton configs, batch ${FINAL_WATTN_BATCHES:-32,128}"
  timeout ${FINAL_WATTN_S:-200} python3 -m trt_swin.plugins.window_attention.bench --ours-only --no-compile \
    --models swin_t,swin_l --batches "${FINAL_WATTN_BATCHES:-32,128}" --triton-configs "${FINAL_WATTN_TRITON:-1x4x2}" \
    --json "$OUT/bench_window_attention.json" > "$OUT/bench_window_attention.txt" 2>&1
  echo "rc=$?"; grep "^|" "$OUT/bench_window_attention.txt"
fi

if has fmlp; then
  echo "$(el) == fused MLP half: tile variants and Triton configs vs the unfused GEMMs, batch 32 / 128"
  timeout ${FINAL_FMLP_S:-200} python3 -m trt_swin.plugins.fused_mlp.bench --batches 32,128 \
    --variants "${FINAL_FMLP_VARIANTS:-1}" --triton-configs "${FINAL_FMLP_TRITON:-}" --json "$OUT/bench_fused_mlp.json" > "$OUT/bench_fused_mlp.txt" 2>&1
  echo "rc=$?"; grep "^|" "$OUT/bench_fused_mlp.txt"
fi

if has ncu_fattn; then  # warp stall reasons of the fused attention, Swin-T stage 1 / 2 at batch 128, per WPC
  echo "$(el) == ncu: fused attention stall reasons"
  for cfg in ${FINAL_NCU_FATTN_WPC:-2}; do  # a Triton config (tools/ncu_fused_attention.py) where it has an x
    tri= wpc=$cfg; [[ $cfg == *x* ]] && { tri=$cfg; wpc=2; }
    TRT_SWIN_FATTN_WPC=$wpc TRT_SWIN_NCU_FATTN_TRITON=$tri timeout 120 ncu -k regex:fused_attention --launch-skip 2 \
      --launch-count 2 --section SpeedOfLight --section Occupancy --section LaunchStats --section SchedulerStats \
      --section WarpStateStats --section MemoryWorkloadAnalysis --metrics "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio" \
      python3 tools/ncu_fused_attention.py > "$OUT/ncu_fattn_wpc$cfg.txt" 2>&1
    echo "-- windows per CTA $cfg"
    grep -E "Duration|Registers Per|Shared Memory Configuration Size|Dynamic Shared Memory Per|Block Limit|L2 Cache Throughput|L1/TEX Hit|L2 Hit|Mem Busy|Max Bandwidth|Achieved Occupancy|Issued Warp Per Scheduler|No Eligible|Warp Cycles Per Issued" \
      "$OUT/ncu_fattn_wpc$cfg.txt" | sed 's/  */ /g'
    grep -E "issue_stalled" "$OUT/ncu_fattn_wpc$cfg.txt" | sed 's/  */ /g' | sort -k3 -g -r | head -16
  done
fi

if has mini; then
echo "$(el) == fmnist-mini engines: accuracy (FP16 / INT8 / FP8 builder-calibrated on 256 training images)"
for prec in fp16 int8 fp8; do
  extra=""; [ "$prec" != fp16 ] && extra="--calib-images 256"
  timeout 90 python3 -m trt_swin.build_engine --model fmnist-mini --precision $prec $extra --max-batch 256 \
    -o engines/mini-$prec.engine > "$OUT/build_mini_$prec.txt" 2>&1 || { echo "build $prec failed"; tail -3 "$OUT/build_mini_$prec.txt"; }
done
timeout 100 python3 -m trt_swin.eval --model fmnist-mini --data "$D" --batch-size 256 \
  $(for f in engines/mini-*.engine; do echo --engine $f; done) --json "$OUT/mini_accuracy.json" 2>&1 | clean | tail -6
fi

if has swint; then
echo "$(el) == waiting for fmnist-swin-t training + PTQ"
wait $BG; grep -E "wrote|top-1|error" "$OUT/bg_train.txt" | clean | tail -6
echo "$(el) == fmnist-swin-t engines: accuracy"
timeout 60 python3 -m trt_swin.build_engine --model $M --precision fp16 --max-batch 256 -o engines/swint-fp16.engine > "$OUT/build_swint.txt" 2>&1
for p in int8 fp8; do
  ck=$(ls runs/q/$p/*.pth 2>/dev/null | head -1)
  [ -n "$ck" ] && timeout 60 python3 -m trt_swin.build_engine --quantized "$ck" --precision $p --max-batch 256 \
    -o engines/swint-$p.engine >> "$OUT/build_swint.txt" 2>&1
done
timeout 120 python3 -m trt_swin.eval --model $M --data "$D" --batch-size 256 \
  $(for f in engines/swint-*.engine; do echo --engine $f; done) --json "$OUT/swint_accuracy.json" 2>&1 | clean | tail -6
fi

has bench_t && echo "$(el) == Swin-T bench" && timeout 150 python3 -m trt_swin.bench --model swin_tiny_patch4_window7_224 --backends eager-fp16,eager-fp16-graph \
  --build fp16,int8,fp8 --batch-sizes 1 8 32 128 --iters 50 --warmup 10 --json "$OUT/bench_swint.json" \
  --md "$OUT/bench_swint.md" --plot "$OUT/bench_swint.png" 2>&1 | grep "^|" | tail -22
if has bench_bl; then  # one process per model, so a model cut by its limit keeps the others' results
  for m in swin_base_patch4_window7_224 swin_large_patch4_window7_224 swin_base_patch4_window12_384; do
    echo "$(el) == $m bench"
    timeout ${FINAL_BENCH_MODEL_S:-150} python3 -m trt_swin.bench --model $m --backends eager-fp32,eager-fp16,eager-fp16-graph \
      --build fp16,int8,fp8 --batch-sizes 1 8 32 128 --iters 20 --warmup 5 --json "$OUT/bench_$m.json" \
      --md "$OUT/bench_$m.md" --plot "$OUT/bench_$m.png" > "$OUT/bench_$m.txt" 2>&1; echo "rc=$?"
    grep "^|" "$OUT/bench_$m.txt" | grep -v -- "---" | tail -20
  done
fi

if has row_sweep; then  # the row split of the row-wise memory ops (plugins/common/memops_rowwise.cuh), batch 128
  for v in 3 4 6; do
    echo "$(el) == TRT_SWIN_ROW_TARGET_VPT=$v"
    TRT_SWIN_ROW_TARGET_VPT=$v timeout 60 python3 -m trt_swin.plugins.bench_memops --batches 128 --compile none \
      --ops ln_shift_partition,patch_merge,window_reverse+ln --json "$OUT/row_sweep_$v.json" > "$OUT/row_sweep_$v.txt" 2>&1
    grep -E " B128 " "$OUT/row_sweep_$v.txt" | awk '{print $1, $2, $3, $6, $(NF-2)}'
  done
fi
echo "$(el) done"
