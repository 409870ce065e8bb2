#!/usr/bin/env bash
# Prebuild the op library for the GPU machine's torch on this (GPU-less) machine, so a device call need not compile:
#   bash tools/prebuild_device_lib.sh TORCH_ROOT [ARCHS]
# TORCH_ROOT: the torch/ folder of the device's torch wheel, unpacked (its include/ and lib/), e.g. from
#   pip download --no-deps --python-version 3.12 --platform manylinux_2_28_x86_64 torch==2.11.0
# Writes .devlib/libtrt_swin_torch.so.xz (git-ignored); a device command carries ".devlib" and copies it to plugins/lib/
# (tools/device_setup.sh does this when TRT_SWIN_PREBUILT=1). The local plugins/lib/ library is left untouched.
set -euo pipefail
root=$(realpath "$1"); archs=${2:-90}
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${TRT_SWIN_DEVICE_BUILD_DIR:-/tmp/trt_swin_build_device}
keep=$(mktemp -d)
[ -f "$repo/plugins/lib/libtrt_swin_torch.so" ] && cp "$repo/plugins/lib/libtrt_swin_torch.so" "$keep/"
trap 'if [ -f "$keep/libtrt_swin_torch.so" ]; then cp "$keep/libtrt_swin_torch.so" "$repo/plugins/lib/"; else rm -f "$repo/plugins/lib/libtrt_swin_torch.so"; fi; rm -rf "$keep"' EXIT
TRT_SWIN_TORCH_ROOT="$root" python "$repo/plugins/build.py" --archs "$archs" --build-dir "$build" --jobs "$(nproc)"
mkdir -p "$repo/.devlib"
# xz: the fat binary is ~30 MB, about 4.5 MB compressed (the device transfer is limited to 64 MiB)
xz -T0 -c "$repo/plugins/lib/libtrt_swin_torch.so" > "$repo/.devlib/libtrt_swin_torch.so.xz"
rm -f "$repo/.devlib/libtrt_swin_torch.so"
echo "wrote $repo/.devlib/libtrt_swin_torch.so.xz (torch at $root, archs $archs)"
