#!/usr/bin/env bash
# GPU accuracy run for fmnist-swin-t (issue #3). Its checkpoint is too large to carry, so it is retrained here first:
#   train -> 18 PTQ cells (recipe x calibrator) + 1 QAT run, ACC_PARALLEL jobs at a time on the one GPU
#   -> [ACC_ENGINES=1] native engines FP16 / INT8 / FP8 built and evaluated -> $OUT/accuracy_swint.{md,json}
# Run from the repository root, e.g. (device call, carry [".data", ".whl", ".devlib"]):
#   TRT_SWIN_PREBUILT=1 bash tools/device_accuracy_swint.sh
# Every step runs under `timeout` against one deadline (ACC_BUDGET_S after the start, minus ACC_RESERVE_S for the
# summary), so a slow run ends with a partial table instead of being killed; a failed job is listed, not fatal.
# Per job: $OUT/logs/<name>.log, $OUT/jobs/<name>.status ("rc seconds"), $OUT/q_<cell>.json / qat_<cell>.json.
#
# Settings (env):                                            default
#   ACC_MODEL       model to use instead of training (preset name or checkpoint); empty: train ACC_PRESET
#   ACC_PRESET      preset trained when ACC_MODEL is empty    fmnist-swin-t
#   ACC_DEVICE      cuda / cpu                                cuda
#   ACC_DATA        Fashion-MNIST IDX folder                  .data/fashion-mnist, else the Debian location
#   ACC_RUNS        checkpoints and engines (not returned)    runs/acc
#   ACC_BATCH       eval batch size                           500 (as in last session's 4 cells)
#   ACC_LIMIT       evaluate on the first N test images only  (all 10,000)
#   ACC_CALIB_IMAGES calibration images per cell              512
#   ACC_PARALLEL    concurrent quantize jobs                  4
#   ACC_WORKERS     DataLoader workers per job                3 if /dev/shm has 12 GB free, else 0
#                   (each image is resized 28->224 on the CPU: ~1 ms, 20,000 per cell)
#   ACC_THREADS     OMP/torch threads per job                 3
#   ACC_QAT_STEPS   QAT optimizer steps (batch ACC_QAT_BATCH) 300 (x 64 = 19,200 images, a third of an epoch)
#   ACC_QAT_BATCH   QAT batch size                            64
#   ACC_CELLS       regex over "recipe calibrator percentile|-" lines: the PTQ cells to run   (all 18)
#   ACC_QAT         1: run the QAT job                        1
#   ACC_ENGINES     1: build and evaluate native engines      1
#   ACC_SETUP       1: source tools/device_setup.sh           1
#   ACC_BUDGET_S    seconds for the whole script              470
#   ACC_RESERVE_S   seconds kept for the summary              10
START=$SECONDS
BUDGET=${ACC_BUDGET_S:-470}; RESERVE=${ACC_RESERVE_S:-10}
left() { echo $((BUDGET - RESERVE - (SECONDS - START))); }
export PYTHONUNBUFFERED=1
[ "${ACC_SETUP:-1}" = 1 ] && source tools/device_setup.sh
set +e
# ModelOpt imports pulp at import time for its NAS searcher, which quantization never calls; pulp's 16 MB wheel does
# not fit the device transfer next to the data set, so an empty module stands in for it where pulp is missing.
python3 -c "import pulp" 2>/dev/null || { mkdir -p /tmp/site/pulp &&
  printf 'def __getattr__(name):  # stand-in: names used in annotations only\n    if name.startswith("__"):\n        raise AttributeError(name)\n    return type(name, (), {})\n' > /tmp/site/pulp/__init__.py
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}; }

OUT="${OUT:-/tmp/trt_swin_acc}"; mkdir -p "$OUT/logs" "$OUT/jobs"
DEV=${ACC_DEVICE:-cuda}
D=${ACC_DATA:-.data/fashion-mnist}; [ -d "$D" ] || D=/usr/share/datasets/fashion-mnist
export TRT_SWIN_DATA=$(realpath "$D")
R=${ACC_RUNS:-runs/acc}; mkdir -p "$R"
P=${ACC_PARALLEL:-4}
# DataLoader workers hand batches over in /dev/shm: about 2 x workers x 300 MB per job at batch 500, so without room
# for all jobs (containers often mount a small /dev/shm) the jobs load in their own process instead.
SHM_KB=$(df -k --output=avail /dev/shm 2>/dev/null | tail -1); SHM_KB=${SHM_KB//[^0-9]/}
W=${ACC_WORKERS:-$(( ${SHM_KB:-0} > 12000000 ? 3 : 0 ))}
export OMP_NUM_THREADS=${ACC_THREADS:-3}
TABLE="python3 tools/accuracy_table.py"

# job NAME CMD...: CMD under the deadline, its output in logs/NAME.log, "rc seconds" in jobs/NAME.status, one line here.
job() {
  local name=$1; shift
  local t0=$SECONDS budget; budget=$(left)
  if (( budget < 5 )); then echo "[$((SECONDS - START))s] $name: not started, no time left"; return 0; fi
  timeout -k 5 "$budget" "$@" > "$OUT/logs/$name.log" 2>&1
  local rc=$?
  echo "$rc $((SECONDS - t0))" > "$OUT/jobs/$name.status"
  local what=ok; (( rc == 124 || rc == 137 )) && what="TIMED OUT"; (( rc != 0 && rc != 124 && rc != 137 )) && what="FAILED rc=$rc: $(grep -m1 '^error:' "$OUT/logs/$name.log" || tail -1 "$OUT/logs/$name.log")"
  echo "[$((SECONDS - START))s] $name ($((SECONDS - t0)) s): $what"
}

python3 - > "$OUT/env.json" 2>/dev/null <<'PY'
import json, torch, timm, importlib.metadata as md
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
print(json.dumps({"gpu": gpu, "torch": torch.__version__, "timm": timm.__version__,
                  "modelopt": md.version("nvidia-modelopt")}))
PY
echo "environment: $(cat "$OUT/env.json"); /dev/shm free ${SHM_KB:-?} kB -> $W DataLoader workers per job"

if [ "$DEV" != cpu ]; then
  # ModelOpt JIT-compiles its fake-quant CUDA extensions on first use (a minute or more); build them while the model
  # trains (CPU work), so the quantize jobs find them cached instead of each waiting on the build lock.
  ( timeout -k 5 "$(left)" python3 -c "
from modelopt.torch.quantization.extensions import get_cuda_ext, get_cuda_ext_fp8
print('modelopt_cuda_ext', get_cuda_ext() is not None, 'modelopt_cuda_ext_fp8', get_cuda_ext_fp8() is not None)" \
    > "$OUT/logs/modelopt_ext.log" 2>&1 ) &
  EXT_PID=$!
fi

if [ -n "${ACC_MODEL:-}" ]; then
  M=$ACC_MODEL; echo "model: $M (given, not trained)"
else
  M=$R/${ACC_PRESET:-fmnist-swin-t}.safetensors
  job train python3 -m trt_swin train --preset "${ACC_PRESET:-fmnist-swin-t}" --data "$D" -o "$M" \
    --json "$OUT/train_swint.json"
  tr '\r' '\n' < "$OUT/logs/train.log" | grep -v -E '%\||^\s*$' | tail -2
  [ -f "$M" ] || { echo "no checkpoint $M: training did not finish, nothing to quantize"; NO_MODEL=1; }
fi
if [ -n "${EXT_PID:-}" ]; then wait "$EXT_PID"; echo "[$((SECONDS - START))s] $(tail -1 "$OUT/logs/modelopt_ext.log")"; fi

common=(--model "$M" --data "$D" --device "$DEV" --batch-size "${ACC_BATCH:-500}" --workers "$W"
        --calib-images "${ACC_CALIB_IMAGES:-512}" --quiet ${ACC_LIMIT:+--limit "$ACC_LIMIT"})
cell() {  # recipe calibrator percentile|-
  local t="$1-$2" pct=()
  [ "$3" != - ] && { t="$t-$3"; pct=(--percentile "$3"); }
  job "q_$t" $TABLE quantize "${common[@]}" --recipe "$1" --calibrator "$2" "${pct[@]}" --output-dir "$R/q/$t" \
    --json "$OUT/q_$t.json"
}
qat() {  # the longest job: started first so it overlaps the PTQ cells
  job qat_int8-percentile-99.99 $TABLE quantize "${common[@]}" --mode qat --recipe int8 --calibrator percentile \
    --percentile 99.99 --amp --epochs 1 --max-steps "${ACC_QAT_STEPS:-300}" --train-batch-size "${ACC_QAT_BATCH:-64}" \
    --output-dir "$R/qat/int8-percentile-99.99" --json "$OUT/qat_int8-percentile-99.99.json"
}
if [ -z "${NO_MODEL:-}" ]; then
echo "[$((SECONDS - START))s] quantize: $($TABLE cells | grep -c -E "${ACC_CELLS:-.}") PTQ cells + QAT (${ACC_QAT:-1}), $P at a time, model $M, device $DEV"
[ "${ACC_QAT:-1}" = 1 ] && qat &
while read -r recipe calibrator pct; do
  while (( $(jobs -rp | wc -l) >= P )); do wait -n; done
  cell "$recipe" "$calibrator" "$pct" &
done < <($TABLE cells | grep -E "${ACC_CELLS:-.}")
wait

if [ "${ACC_ENGINES:-1}" = 1 ]; then
  E=$R/engines; mkdir -p "$E"; built=()
  eng() {  # name precision [--quantized CKPT]; without a checkpoint the FP32 model is built
    local name=$1 prec=$2; shift 2
    local src=("$@"); (( $# )) || src=(--model "$M")
    if (( $# )) && [ ! -f "$2" ]; then echo "engine $name: not built, no checkpoint (its PTQ cell did not finish)"; return; fi
    job "engine_$name" python3 -m trt_swin build-engine "${src[@]}" --precision "$prec" --max-batch 256 \
      -o "$E/swint-$name.engine"
    [ "$(cut -d' ' -f1 "$OUT/jobs/engine_$name.status" 2>/dev/null)" = 0 ] && built+=(--engine "$E/swint-$name.engine")
  }
  eng fp16 fp16
  eng int8 int8 --quantized "$(ls "$R"/q/int8-percentile-99.99/*-int8.pth 2>/dev/null)"
  eng int8m2 int8 --quantized "$(ls "$R"/q/int8-fc2-pm-int32-percentile-99.99/*-int8-fc2-pm-int32.pth 2>/dev/null)"
  eng fp8 fp8 --quantized "$(ls "$R"/q/fp8-max/*-fp8.pth 2>/dev/null)"
  if (( ${#built[@]} )); then
    job engines_eval python3 -m trt_swin eval --model "$M" "${built[@]}" --data "$D" --device "$DEV" --batch-size 256 \
      --workers "$W" ${ACC_LIMIT:+--limit "$ACC_LIMIT"} --json "$OUT/engines_swint.json"
  fi
fi
fi  # NO_MODEL

echo "[$((SECONDS - START))s] summary"
$TABLE table --dir "$OUT" --name accuracy_swint
