#!/usr/bin/env bash
# GPU checks of the package, run from the repository root on a machine with a CUDA GPU, nvcc and a
# CUDA build of torch in the environment:
#   build  - compile the extension ssm._C in place (for this GPU's architecture unless
#            TORCH_CUDA_ARCH_LIST says otherwise)
#   test   - every test marked cuda (kernels, backends on CUDA tensors, layers), the kernel self-test
#   bench  - benchmarks/kernels.py and benchmarks/layers.py on the GPU
# Usage: benchmarks/gpu.sh OUTDIR [build] [test] [bench]     (no step named: all three)
# Logs, the built module and the benchmark tables (txt, csv, json) go to OUTDIR.
# Environment: MARKERS (pytest -m expression, default "cuda"), BACKENDS (kernel backends for the
# self-test and the kernel benchmark, default "ref torch keops cuda"; "auto" is always benchmarked).
set -uo pipefail
OUT=${1:?usage: benchmarks/gpu.sh OUTDIR [build] [test] [bench]}
shift
STEPS=${*:-build test bench}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
MARKERS=${MARKERS:-cuda}
BACKENDS=${BACKENDS:-ref torch keops cuda}
status=0

has() { [[ " $STEPS " == *" $1 "* ]]; }

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
$PY - <<'EOF' | tee -a "$OUT/gpu.txt"
import torch
p = torch.cuda.get_device_properties(0)
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}); {p.name}, sm_{p.major}{p.minor}, "
      f"{p.multi_processor_count} SMs, {p.total_memory / 2**30:.1f} GiB")
EOF

if has build; then
    export CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$(command -v nvcc)")")}
    export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$($PY -c \
        "import torch; print('%d.%d' % torch.cuda.get_device_capability())")}
    export MAX_JOBS=${MAX_JOBS:-$(nproc)}
    echo "build: CUDA_HOME=$CUDA_HOME TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST MAX_JOBS=$MAX_JOBS"
    start=$(date +%s)
    SSM_BUILD_EXT=1 $PY setup.py -q build_ext --inplace >"$OUT/build.log" 2>&1 || {
        tail -50 "$OUT/build.log"; echo "build FAILED"; exit 1; }
    echo "build: $(( $(date +%s) - start )) s"
    cp ssm/_C*.so "$OUT/"
fi

if has test; then
    $PY -c "import ssm.kernels as k; print('backends:', k.available_backends())"
    $PY -m pytest -m "$MARKERS" -ra -q -p no:cacheprovider tests \
        >"$OUT/pytest_cuda.log" 2>&1 || status=1
    grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/pytest_cuda.log" | tail -40
    grep -E "^SKIPPED" "$OUT/pytest_cuda.log" | cut -c1-220 | sort | uniq -c | head -20
    $PY -m ssm.kernels --backends $BACKENDS >"$OUT/selftest.log" 2>&1 || status=1
    tail -25 "$OUT/selftest.log"
fi

if has bench; then
    $PY -m benchmarks.kernels --backends $BACKENDS auto --ref-max-gb 40 --json "$OUT/kernels.json" --csv "$OUT/kernels.csv" \
        2>"$OUT/kernels.err" | tee "$OUT/kernels.txt" || status=1
    grep -E "Error|error" "$OUT/kernels.err" | head -10
    # the same kernels on a problem that fills the GPU (launch and Python overheads amortized)
    $PY -m benchmarks.kernels --backends cuda --H 4096 --L 16384 --json "$OUT/kernels_large.json" \
        2>/dev/null | tee "$OUT/kernels_large.txt" || status=1
    $PY -m benchmarks.layers --device cuda --csv "$OUT/layers.csv" 2>"$OUT/layers.err" \
        | tee "$OUT/layers.txt" || { status=1; tail -20 "$OUT/layers.err"; }
fi
find "$OUT" -type f -empty -delete  # stderr logs with nothing in them
exit $status
