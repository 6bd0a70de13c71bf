#!/usr/bin/env bash
# Issue #21's GPU check in one device call (../shared/docs/gpu.md): the tests
# of the CUDA code paths, then the benchmark (DeepLabV3+ and PSPNet, fp32 and
# AMP, stream stride 1 and 2, the compiled path on and off, with profiles).
#
# On the lent GPU machine, from the repository root, with the wheels of
# ../shared/wheels/gpu-py312 copied to .whl/ here and carried (carry: [".whl"]):
#     bash tools/gpu_check.sh                      # results under $OUT
# Here, before spending device time (CPU, tiny sizes, a minute or two):
#     GPU_CHECK_DRY_RUN=1 OUT=/tmp/gpu-check bash tools/gpu_check.sh
# Environment: OUT (results; the device tool's $OUT), TIME_LIMIT (seconds the
# benchmark may start columns in, default 330), PY (python, default python3).
set -u
OUT=${OUT:-/tmp/mmgscnn-gpu-check}
mkdir -p "$OUT"
PY=${PY:-python3}
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --target "$PWD/.whl/site" .whl/*.whl \
    >/dev/null 2>&1
  export PYTHONPATH=$PWD:$PWD/.whl/site
fi
export PYTHONWARNINGS=ignore
"$PY" - <<'PYEOF' | tee "$OUT/device.txt"
import torch
print('torch', torch.__version__, '| cuda', torch.version.cuda, '| cudnn',
      torch.backends.cudnn.version(), '|',
      torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA device')
PYEOF

if [ -n "${GPU_CHECK_DRY_RUN:-}" ]; then
  export MMGSCNN_CUDA_STANDIN=cpu
  BENCH=(--device cpu --batch 2 --crop 64 128 --infer-size 64 128 --warmup 0 --iters 1
         --rounds 1 --precision fp32 --threads 2 --groups deeplabv3plus
         --cfg-options model.backbone.depth=50)
else
  BENCH=(--device cuda --groups deeplabv3plus pspnet --batch 2 --crop 512 1024
         --infer-size 1024 2048 --warmup 4 --iters 10 --precision fp32 amp
         --profile "$OUT/profiles")
fi

# 1. the CUDA paths against the CPU (about a minute)
"$PY" -m pytest -q -p no:cacheprovider tests/test_cuda_paths.py tests/test_fuse_conv_act.py \
  > "$OUT/tests.log" 2>&1
echo "[gpu_check] tests: $(tail -1 "$OUT/tests.log")"

# 2. the benchmark: stride 1 and 2, the compiled path as a variant
"$PY" tools/benchmark.py "${BENCH[@]}" --skip-flops \
  --variant s2 model.shape_head.shape_stream.stride=2 \
  --variant compiled model.shape_head.compile=True \
  --time-limit "${TIME_LIMIT:-330}" --out "$OUT/latest.json" --markdown "$OUT/latest.md" \
  > "$OUT/benchmark.log" 2>&1
status=$?
echo "[gpu_check] benchmark exit $status; last lines:"
grep -E '^\| (gscnn|dualtask)[^|]* / baseline' "$OUT/latest.md" 2>/dev/null || tail -5 "$OUT/benchmark.log"
exit $status
