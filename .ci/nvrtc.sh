#!/usr/bin/env bash
# CI: compile every fused CUDA kernel of the package with NVRTC, on a machine without a
# GPU (tests/test_nvrtc_kernels.py). Installs CuPy and NVRTC into the current virtual
# environment; later steps still choose the stand-in with MINITRANSFORMER_FAKE_CUPY.
# MINITRANSFORMER_REQUIRE_NVRTC=1 turns the tests' "cannot compile here" skip into a
# failure, so that this step cannot pass without compiling anything.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s.%N)
report_time() {
    local seconds
    seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
    echo "== NVRTC step: ${seconds} s wall time =="
}
trap report_time EXIT

echo "== Fused CUDA kernels compiled with NVRTC (CuPy's generated source, no GPU) =="
# Exact versions: the test uses private CuPy API (pinned to 14.x); the runtime wheel
# brings the CUDA headers CuPy's compiler options need.
pip install 'cupy-cuda12x==14.2.0' 'nvidia-cuda-nvrtc-cu12==12.9.86' \
    'nvidia-cuda-runtime-cu12==12.9.79'
env -u MINITRANSFORMER_FAKE_CUPY MINITRANSFORMER_REQUIRE_NVRTC=1 \
    python -m pytest -q -p no:cacheprovider tests/test_nvrtc_kernels.py -rs
