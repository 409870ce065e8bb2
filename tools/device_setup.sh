#!/usr/bin/env bash
# Source this at the start of a command on the GPU machine (python3.12 + torch preinstalled, no internet):
#   source tools/device_setup.sh [OPS]     OPS: semicolon list of plugins/<op> folders to build, default all
# Installs carried wheels (.whl/, if any) into /tmp/site, installs this checkout in editable mode without deps,
# and builds the CUDA op library for sm_90 (+sm_90a) only, to keep the build short (TRT_SWIN_PREBUILT=1: use the
# library carried in .devlib instead, see tools/prebuild_device_lib.sh).
set -e
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . 2>&1 | grep -v "Running pip as" || true
if [ "${TRT_SWIN_PREBUILT:-0}" = 1 ]; then  # op library built here by tools/prebuild_device_lib.sh, carried in .devlib
  mkdir -p plugins/lib && python3 -c "import lzma, shutil; shutil.copyfileobj(lzma.open('.devlib/libtrt_swin_torch.so.xz'), open('plugins/lib/libtrt_swin_torch.so', 'wb'))"
elif [ "${TRT_SWIN_SKIP_BUILD:-0}" != 1 ]; then
  export TRT_SWIN_OPS="${1:-}"
  python3 -m trt_swin.plugins.build --archs 90 --ops "${TRT_SWIN_OPS}" --jobs 16 > /tmp/trt_swin_build.log 2>&1 \
    || { tail -60 /tmp/trt_swin_build.log; echo "BUILD FAILED"; }
fi
set +e
