#!/usr/bin/env bash
# One GPU session: build every fused op, run the GPU tests, compute-sanitizer, and a bad-input probe.
#   bash tools/device_check_kernels.sh        (results under $OUT when set)
OPS="window_attention;ln_shift_partition;window_reverse;patch_merge;epilogue"
source tools/device_setup.sh "$OPS"
export TRT_SWIN_OPS="${OPS//;/,}"
OUT="${OUT:-/tmp/trt_swin_check}"; mkdir -p "$OUT"
echo "== toolchain"; which -a g++ c++ | head -3; g++ --version | head -1
grep -E "^CMAKE_CXX_COMPILER:|^CMAKE_CUDA_HOST_COMPILER:" build/CMakeCache.txt
LIB=plugins/lib/libtrt_swin_torch.so
echo "libstdc++ code defined inside the op library: $(nm -C --defined-only $LIB | grep -c -E 'std::ostream::_M_insert|codecvt')"
ldd $LIB | grep -E "stdc\+\+|gcc_s"
echo "== bad-input probe (a C++ TORCH_CHECK with integers in its message)"
python3 - <<'PY'
import torch, trt_swin.plugins as p
p.load()
x = torch.randn(2, 7, 7, 96, device="cuda", dtype=torch.half)
try:
    torch.ops.trt_swin.patch_merge(x, torch.ones(96, device="cuda"), torch.zeros(96, device="cuda"), 1e-5, None)
except RuntimeError as e:
    print("raised cleanly:", str(e).splitlines()[0][:160])
PY
echo "probe exit: $?"
echo "== GPU tests"
python3 -m pytest -q -m gpu tests/plugins -p no:cacheprovider 2>&1 | tail -15 | tee "$OUT/gpu_tests.txt"
echo "== sanitizer"
bash tools/sanitize_ops.sh "$OUT" 2>&1 | tail -12
