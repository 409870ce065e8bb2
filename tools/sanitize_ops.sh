#!/usr/bin/env bash
# Runs compute-sanitizer memcheck and racecheck over plugins/sanitize_check.py (every built trt_swin op on a
# representative set of shapes). Exit status: non-zero if either tool reports an error or the script fails.
#   tools/sanitize_ops.sh [LOG_DIR]      (needs the op library built: python -m trt_swin.plugins.build)
# SANITIZE_OPS="fused_mlp fused_attention" runs only the named drivers (default: all).
set -u
LOG_DIR="${1:-.}"
PY="${PYTHON:-python3}"
# Without the caching allocator every tensor is its own cudaMalloc, so memcheck sees out-of-bounds accesses that
# would otherwise land inside a larger cached block.
export PYTORCH_NO_CUDA_MEMORY_CACHING=1
status=0
# One driver per op family: the memory ops + epilogue, window attention (once as dispatched, once forcing the
# persistent kernel with one CTA per SM so that each CTA walks several (window, head) units across mask windows; the
# choice is read once per process, from the environment a caller sets for `run`), the fused MLP, the fused attention,
# the one-kernel patch merging, the stem, and the Triton kernels (where Triton is installed).
run() {  # run TOOL NAME MODULE
  local tool=$1 name=$2 module=$3
  [ -n "${SANITIZE_OPS:-}" ] && [[ " $SANITIZE_OPS " != *" $name "* ]] && return 0
  compute-sanitizer --tool "$tool" --error-exitcode 97 --print-limit 20 "$PY" -m "$module" \
    > "$LOG_DIR/sanitize_${tool}_$name.log" 2>&1
  local rc=$?
  tail -3 "$LOG_DIR/sanitize_${tool}_$name.log"
  if [ $rc -ne 0 ]; then echo "$tool $name: FAILED (exit $rc, log $LOG_DIR/sanitize_${tool}_$name.log)"; status=1
  else echo "$tool $name: clean"; fi
}
for tool in memcheck racecheck; do
  echo "== compute-sanitizer --tool $tool"
  run "$tool" memops trt_swin.plugins.sanitize_check
  run "$tool" window_attention trt_swin.plugins.window_attention.sanitize_check
  TRT_SWIN_WA_IMPL=persistent TRT_SWIN_WA_CTAS_PER_SM=1 \
    run "$tool" window_attention_persistent trt_swin.plugins.window_attention.sanitize_check
  run "$tool" fused_mlp trt_swin.plugins.fused_mlp.sanitize_check
  run "$tool" fused_attention trt_swin.plugins.fused_attention.sanitize_check
  run "$tool" patch_merge_gemm trt_swin.plugins.patch_merge_gemm.sanitize_check
  run "$tool" patch_embed trt_swin.plugins.patch_embed.sanitize_check
  python3 -c "import triton" 2>/dev/null && run "$tool" triton trt_swin.plugins.sanitize_triton
done
exit $status
