#!/usr/bin/env bash
# One call on a machine with a CUDA GPU and the project's dependencies installed
# (numpy, scipy, pytest, cupy) produces the whole GPU record, in under 8 minutes:
#
#   bash bench/gpu_check.sh            # from anywhere; writes bench/results/gpu-<gpu name>/
#
#   1. the GPU, CuPy, NumPy, CUDA versions            -> environment.txt
#   2. pytest -m gpu (every GPU test, incl. the fused kernels against their references)
#                                                     -> gpu_tests.log
#   3. float32 CPU against GPU: LSTM, attention, blockwise, 20 training steps of a tiny
#      translator from the same weights               -> gpu_compare.csv, compare.log
#   4. python -m minitransformer bench --device gpu --quick
#                                                     -> bench/ (the CSVs), bench.log
#   5. the cost model's prediction against the GPU's step time, four layers, n = 16 ... 4096
#                                                     -> predict/ (predict.csv: ratio =
#                                                        predicted / measured), predict.log
# Each step has its own time limit and a failing step does not stop the others; the
# exit status is that of the first step that failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export CUPY_TF32=0                       # float32 as float32: the tests' tolerances assume it
export CUPY_CACHE_DIR="${CUPY_CACHE_DIR:-$HOME/.cupy/kernel_cache}"   # compiled kernels kept between runs
unset MINITRANSFORMER_FAKE_CUPY          # the real CuPy, never the stand-in
PY="${PYTHON:-python3}"

gpu=$("$PY" -c "import minitransformer as mt; print(mt.backend.device_name('gpu'))" 2>/dev/null) || {
    echo "gpu_check: no usable GPU (CuPy missing or no CUDA device); nothing to do" >&2; exit 2; }
name=$(echo "$gpu" | tr -c 'A-Za-z0-9._-' '-' | sed 's/-\+/-/g; s/^-//; s/-$//')
out="bench/results/gpu-$name"
mkdir -p "$out/bench" "$out/predict"
status=0
step() {   # step LIMIT_SECONDS LOGFILE command...
    local limit=$1 log=$2; shift 2
    echo "== $* (limit ${limit}s) -> $log"
    timeout --kill-after=10 "$limit" "$@" > "$log" 2>&1
    local rc=$?
    tail -n 3 "$log"
    if [ $rc -ne 0 ]; then
        echo "   exit status $rc$([ $rc -eq 124 ] && echo ' (time limit)')"
        [ $status -eq 0 ] && status=$rc
    fi
}

{
    date -u +"%Y-%m-%dT%H:%M:%SZ"
    nvidia-smi -L 2>/dev/null || echo "nvidia-smi: not found"
    "$PY" -c "
import cupy, numpy, minitransformer as mt
from minitransformer.benchmarks import common
print('device:', mt.backend.device_name('gpu'))
print('cupy', cupy.__version__, '| numpy', numpy.__version__,
      '| CUDA runtime', cupy.cuda.runtime.runtimeGetVersion(), '| TF32:', mt.backend.tf32_setting())
print('description:', common.device_description('gpu'))
"
} > "$out/environment.txt" 2>&1
cat "$out/environment.txt"

step 200 "$out/gpu_tests.log" "$PY" -m pytest -m gpu -q -p no:cacheprovider -o addopts="" -ra
step 90 "$out/compare.log" "$PY" bench/gpu_compare.py --device gpu --out-dir "$out"
step 120 "$out/bench.log" "$PY" -m minitransformer bench --device gpu --quick --out-dir "$out/bench"
step 60 "$out/predict.log" "$PY" -m minitransformer bench predict --device gpu --out-dir "$out/predict" \
    --lengths 16 128 1024 4096 --repeats 3 --min-time 0 --max-seconds 40
echo "gpu_check: results in $out (exit status $status)"
exit $status
