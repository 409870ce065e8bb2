#!/usr/bin/env bash
# One GPU session for fused_mlp: GPU tests, the benchmark at batch 128, compute-sanitizer memcheck (and racecheck if
# time is left) on small shapes. Logs and bench.json under $OUT. Sourced (its time checks read the calling shell's
# $SECONDS) from the repository root after
#   export PYTHONUNBUFFERED=1; source tools/device_setup.sh "fused_mlp;gemm"; export TRT_SWIN_OPS=fused_mlp,gemm
#   source plugins/fused_mlp/device_check.sh
OUT=${OUT:-/tmp/fused_mlp_out}
mkdir -p "$OUT"
cp /tmp/trt_swin_build.log "$OUT/build.log" 2>/dev/null
if [ ! -f plugins/lib/libtrt_swin_torch.so ]; then
  echo "build of fused_mlp;gemm failed: building fused_mlp alone (the bench's unfused column will be missing)"
  python3 -m trt_swin.plugins.build --archs 90 --ops fused_mlp --jobs 16 > "$OUT/build_alone.log" 2>&1 \
    || { tail -40 "$OUT/build_alone.log"; exit 1; }
  export TRT_SWIN_OPS=fused_mlp
fi
grep -E "spill" /tmp/trt_swin_build.log | grep fmlp | sed -E 's/.*TileIL/Tile/; s/EEELNS_6MlpAct.*Params.,//' | sort -u
echo "setup+build done at ${SECONDS}s"
timeout 70 python3 -m pytest -q -p no:cacheprovider tests/plugins/test_fused_mlp.py -rfs > "$OUT/pytest.log" 2>&1
echo "pytest rc=$? at ${SECONDS}s"; grep -E "passed|failed|error" "$OUT/pytest.log" | tail -2; grep -E "^FAILED|^ERROR|SKIPPED" "$OUT/pytest.log" | head -20
timeout 60 python3 -m trt_swin.plugins.fused_mlp.bench --batches 128 --json "$OUT/bench.json" > "$OUT/bench.log" 2>&1
echo "bench rc=$? at ${SECONDS}s"
if [ $SECONDS -lt 200 ]; then
  timeout $((225 - SECONDS)) compute-sanitizer --tool memcheck --error-exitcode 3 \
    python3 -m trt_swin.plugins.fused_mlp.sanitize_check > "$OUT/memcheck.log" 2>&1
  echo "memcheck rc=$? at ${SECONDS}s"; grep -E "ERROR SUMMARY|ok|MISMATCH" "$OUT/memcheck.log" | tail -7
fi
if [ $SECONDS -lt 185 ]; then
  timeout $((228 - SECONDS)) compute-sanitizer --tool racecheck --error-exitcode 3 \
    python3 -m trt_swin.plugins.fused_mlp.sanitize_check > "$OUT/racecheck.log" 2>&1
  echo "racecheck rc=$? at ${SECONDS}s"; grep -E "RACECHECK SUMMARY|ERROR SUMMARY|MISMATCH" "$OUT/racecheck.log" | tail -3
fi
tail -9 "$OUT/bench.log"
