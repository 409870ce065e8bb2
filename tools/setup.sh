#!/usr/bin/env bash
# Installs everything a fresh machine of the project's kind needs (as root): the Fashion-MNIST data set from
# Debian, and this package with its dependencies and test tools (editable, so the source tree is what runs).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null
fi
python -m pip install -q --disable-pip-version-check -e ".[test]" 2>&1 | grep -v -E "Running pip as|^$" || true
python -c "import trt_swin, trt_swin.quant, trt_swin.engines, trt_swin.plugins" 
