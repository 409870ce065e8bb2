#!/usr/bin/env bash
# One GPU session for this op: build, tests, compute-sanitizer, benchmark, tile-shape sweep, ncu snapshot.
# Usage (repository root, GPU machine): bash plugins/window_attention/device_check.sh   (logs under $OUT or /tmp/wa_out)
# WA_BENCH_ARGS: extra bench flags (e.g. --no-compile); WA_SANITIZE: sanitizer tools to run (" " for none);
# WA_SWEEP: "budget tiles" pairs for the CTA-shape sweep ("" for none).
OUT=${OUT:-/tmp/wa_out}; mkdir -p "$OUT"
source tools/device_setup.sh window_attention
export TRT_SWIN_OPS=window_attention PYTHONUNBUFFERED=1
cp /tmp/trt_swin_build.log "$OUT/build.log"
grep -cE "registers|spill" /tmp/trt_swin_build.log
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader
M=python3; B=trt_swin.plugins.window_attention.bench; T=tests/plugins/test_window_attention.py
# error-path tests first, in their own process (a crash there must not hide the other results)
timeout 60 $M -m pytest -q -p no:cacheprovider $T -rf -k bad_input > "$OUT/pytest_bad_input.log" 2>&1; rc=$?
echo "pytest bad_input rc=$rc"; tail -2 "$OUT/pytest_bad_input.log"
if [ $rc -ge 128 ]; then  # crashed: C++ backtrace of the crash
  timeout 90 cuda-gdb -batch -ex run -ex bt --args $M -m pytest -q -p no:cacheprovider $T -k bad_input > "$OUT/gdb_bad_input.log" 2>&1
  grep -E "^#[0-9]+ " "$OUT/gdb_bad_input.log" | head -16
fi
timeout 150 $M -m pytest -q -p no:cacheprovider $T -rf -k "not bad_input" > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; grep -E "passed|failed|error" "$OUT/pytest.log" | tail -2; grep -E "^FAILED" "$OUT/pytest.log" | head -20
for tool in ${WA_SANITIZE:-memcheck racecheck}; do
  timeout 75 compute-sanitizer --tool $tool --error-exitcode 9 $M -m trt_swin.plugins.window_attention.sanitize_check > "$OUT/san_$tool.log" 2>&1
  echo "sanitizer $tool rc=$?"; grep -E "ERROR SUMMARY|RACECHECK SUMMARY|MISMATCH|ok$" "$OUT/san_$tool.log" | sort | uniq -c | head -4
done
timeout 170 $M -m $B --json "$OUT/bench.json" ${WA_BENCH_ARGS:-} > "$OUT/bench.log" 2>&1; echo "bench rc=$?"
sed -n '/^window_attention on/,$p' "$OUT/bench.log"
echo "${WA_SWEEP:-}" | tr ',' '\n' | while read -r budget tiles; do [ -z "$budget" ] && continue
  TRT_SWIN_WA_SMEM_BUDGET=$budget TRT_SWIN_WA_MAX_TILES=$tiles timeout 40 $M -m $B --models swin_t,swin_l --stages 1,3 \
    --batches 128 --no-compile 2>&1 | grep "^| swin" | awk -v c="$budget/$tiles" '{print "sweep " c ": " $0}'
done | tee "$OUT/sweep.log"
timeout 45 ncu --kernel-name regex:window_attention --launch-skip 20 --launch-count 1 --section SpeedOfLight --section Occupancy \
  --section LaunchStats $M -m $B --models swin_t --stages 1 --batches 128 --no-compile > "$OUT/ncu.log" 2>&1
grep -E "DRAM Throughput|Memory Throughput|Achieved Occupancy|Duration|Registers Per|Block Limit (Reg|Shared)" "$OUT/ncu.log" | head -8
