#!/usr/bin/env bash
# Runs compute-sanitizer memcheck and racecheck over plugins/sanitize_check.py (every built trt_swin op on a
# representative set of shapes). Exit status: non-zero if either tool reports an error or the script fails.
#   tools/sanitize_ops.sh [LOG_DIR]      (needs the op library built: python -m trt_swin.plugins.build)
set -u
LOG_DIR="${1:-.}"
PY="${PYTHON:-python3}"
# Without the caching allocator every tensor is its own cudaMalloc, so memcheck sees out-of-bounds accesses that
# would otherwise land inside a larger cached block.
export PYTORCH_NO_CUDA_MEMORY_CACHING=1
status=0
for tool in memcheck racecheck; do
  echo "== compute-sanitizer --tool $tool"
  compute-sanitizer --tool "$tool" --error-exitcode 97 --print-limit 20 \
    "$PY" -m trt_swin.plugins.sanitize_check > "$LOG_DIR/sanitize_$tool.log" 2>&1
  rc=$?
  tail -5 "$LOG_DIR/sanitize_$tool.log"
  if [ $rc -ne 0 ]; then
    echo "$tool: FAILED (exit $rc, log $LOG_DIR/sanitize_$tool.log)"
    status=1
  else
    echo "$tool: clean"
  fi
done
exit $status
