#!/usr/bin/env bash
# GPU accuracy run for fmnist-swin-t (its checkpoint is too large to commit, so it is retrained here first):
#   train -> PTQ per recipe x calibrator (trt_swin quantize) -> native engines FP16 / INT8 / FP8 -> accuracy tables.
# Needs the Fashion-MNIST IDX files in .data/fashion-mnist and, on a machine without nvidia-modelopt, its wheels in
# .whl/ (device_setup.sh installs them). Results: $OUT/*.json.
source tools/device_setup.sh
echo "libstdc++ code defined inside the op library: $(nm -C --defined-only plugins/lib/libtrt_swin_torch.so | grep -c -E 'std::ostream::_M_insert|codecvt')"
python3 - <<'PY'
import torch, trt_swin.plugins as p
p.load()
x = torch.randn(2, 7, 7, 96, device="cuda", dtype=torch.half)
try:
    torch.ops.trt_swin.patch_merge(x, torch.ones(96, device="cuda"), torch.zeros(96, device="cuda"), 1e-5, None)
except RuntimeError as e:
    print("bad-input probe raised cleanly:", str(e).splitlines()[0][:140])
PY
# ModelOpt imports pulp at import time for its NAS searcher, which quantization never calls; pulp's 16 MB wheel does
# not fit the device transfer next to the data set, so an empty module stands in for it on the measurement machine.
python3 -c "import pulp" 2>/dev/null || { mkdir -p /tmp/site/pulp &&
  printf 'def __getattr__(name):  # stand-in: names used in annotations only\n    if name.startswith("__"):\n        raise AttributeError(name)\n    return type(name, (), {})\n' > /tmp/site/pulp/__init__.py; }
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
OUT="${OUT:-/tmp/trt_swin_acc}"; mkdir -p "$OUT" runs
{ echo "== toolchain of the op library build"; env | grep -E "^(NVCC|CUDAHOSTCXX|CXX|CC|LIBRARY_PATH|LD_LIBRARY_PATH)=" ;
  grep -h "IMPLICIT_LINK_DIRECTORIES\|IMPLICIT_LINK_LIBRARIES" build/CMakeFiles/*/CMakeCUDACompiler.cmake build/CMakeFiles/*/CMakeCXXCompiler.cmake;
  ls -la /opt/gcc/lib64/libstdc++* 2>/dev/null; head -c 300 /opt/gcc/lib64/libstdc++.so 2>/dev/null; echo;
  grep -A2 "^build libtrt_swin_torch.so" build/build.ninja | head -5; } > "$OUT/toolchain.txt" 2>&1
D=.data/fashion-mnist
export TRT_SWIN_DATA=$PWD/$D
M=runs/fmnist-swin-t.safetensors
clean() { tr '\r' '\n' | grep -v -E '%\||^\s*$'; }
python3 -m trt_swin train --preset fmnist-swin-t --data $D -o $M --json "$OUT/train_swint.json" 2>&1 | clean | tail -2
q() {  # recipe calibrator [percentile]
  local tag="$1-$2${3:+-$3}"
  python3 -m trt_swin quantize --model $M --recipe "$1" --calibrator "$2" ${3:+--percentile $3} --data $D \
    --device cuda --batch-size 500 --calib-images 512 --quiet --output-dir "runs/q/$tag" --json "$OUT/q_$tag.json" 2>&1 \
    | clean | tail -4
}
q int8 percentile 99.99
q int8-fc2-pm-int32 percentile 99.99
q fp8 max
q int8 max
python3 -m pytest -q -m gpu tests/engines -p no:cacheprovider 2>&1 | tail -3
E=runs/engines; mkdir -p $E
python3 -m trt_swin build-engine --model $M --precision fp16 --max-batch 256 -o $E/swint-fp16.engine 2>&1 | clean | tail -3
python3 -m trt_swin build-engine --quantized runs/q/int8-percentile-99.99/fmnist-swin-t-int8.pth --precision int8 \
  --max-batch 256 -o $E/swint-int8.engine 2>&1 | clean | tail -3
python3 -m trt_swin build-engine --quantized runs/q/int8-fc2-pm-int32-percentile-99.99/fmnist-swin-t-int8-fc2-pm-int32.pth \
  --precision int8 --max-batch 256 -o $E/swint-int8m2.engine 2>&1 | clean | tail -3
python3 -m trt_swin build-engine --quantized runs/q/fp8-max/fmnist-swin-t-fp8.pth --precision fp8 --max-batch 256 \
  -o $E/swint-fp8.engine 2>&1 | clean | tail -3
python3 -m trt_swin eval --model $M --engine $E/swint-fp16.engine --engine $E/swint-int8.engine \
  --engine $E/swint-int8m2.engine --engine $E/swint-fp8.engine --data $D --batch-size 256 \
  --json "$OUT/engines_swint.json" 2>&1 | clean | tail -12
