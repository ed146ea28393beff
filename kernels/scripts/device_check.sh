#!/usr/bin/env bash
# One GPU session for the kernel package: prove no run-time compile with a carried
# AOT build, run the GPU test matrix, benchmark beside peers. Logs go to $OUT.
#   usage (repo root): kernels/scripts/device_check.sh PREBUILT_DIR [KERNELS]
set -o pipefail
PREBUILT=${1:?usage: device_check.sh PREBUILT_DIR [KERNELS]}
KERNELS=${2:-rms_norm,add_rms_norm,rotary_embedding,silu_and_mul,quantize_fp8_per_token,fp8_rowwise_gemm}
OUT=${OUT:-/tmp/kernels-device}
mkdir -p "$OUT"
export PYTHONPATH=$PWD:$PWD/kernels${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$OUT/device.txt"
python -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__)' | tee -a "$OUT/device.txt"
echo "== prove no JIT"
timeout 150 python kernels/scripts/prove_no_jit.py --prebuilt "$PREBUILT" --json "$OUT/prove.json" 2>&1 | tee "$OUT/prove.log"
echo "== GPU tests"
TESTS=(kernels/tests/test_rms_norm.py kernels/tests/test_rotary.py kernels/tests/test_silu_and_mul.py kernels/tests/test_fp8.py)
ROCSTACK_KERNELS_PREBUILT=$PREBUILT timeout 200 python -m pytest "${TESTS[@]}" -q -m "not slow" -p no:cacheprovider 2>&1 \
  | tee "$OUT/tests.log" | tail -25
echo "== bench"
timeout 330 python -m rocstack_kernels.bench --kernel "$KERNELS" --json "$OUT/bench.json" --plot "$OUT/bench.png" \
  2>"$OUT/bench.err" | tee "$OUT/bench.txt"
tail -3 "$OUT/bench.err"
