#!/usr/bin/env bash
# The upload queue on a real GPU, in one go (under 5 minutes on one H200):
#   1. every golden family through the ring into cuda:0, read back and
#      compared byte for byte with the in-memory load (the tests' upload
#      cases with MNEME_UPLOAD_DEVICE=cuda:0), rings of 1 and 2 slots;
#   2. a generated F32 model of 4 GiB: per-tensor CRC-32 of device memory
#      against the host result, the floors (page-cache read; one copy from
#      pinned memory of the same bytes), and the ring for slot sizes
#      4/16/64 MiB x 2/4/8 slots (bench/upload_check.cpp);
#   3. `mneme load MODEL --device cuda:0`, as a user runs it.
# Writes everything it prints to REPORT (default gpu-check.txt).
#
#   scripts/gpu-check.sh [REPORT]
#
# Builds build/gpu with -DMNEME_WITH_CUDA=ON, unless MNEME_GPU_BIN names a
# folder holding prebuilt mneme, upload_check and the test_* binaries (a
# machine without the build dependencies). MNEME_GPU_MODEL: where the model
# is written (default /tmp/mneme-gpu-4g); MNEME_FIXTURES: the golden fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."
report="${1:-gpu-check.txt}"

if [ -n "${MNEME_GPU_BIN:-}" ]; then
  bin() { echo "$MNEME_GPU_BIN/$1"; }
else
  cmake -S . -B build/gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DMNEME_WITH_CUDA=ON \
    -DMNEME_PYTHON=OFF >/dev/null
  cmake --build build/gpu --target mneme_cli upload_check test_upload test_gguf_pipeline \
    test_quant_pipeline test_fp8_pipeline
  bin() {
    case "$1" in
      mneme) echo build/gpu/mneme ;;
      upload_check) echo build/gpu/bench/upload_check ;;
      *) echo "build/gpu/tests/$1" ;;
    esac
  }
fi

exec > >(tee "$report") 2>&1
echo "== gpu-check $(date -u +%FT%TZ), $(git rev-parse --short HEAD 2>/dev/null || echo 'no git')"
nvidia-smi --query-gpu=name,driver_version,memory.total,pcie.link.gen.max,pcie.link.width.max \
  --format=csv,noheader || true
nproc

status=0
# A test binary that skipped something (exit 77) still checked what it ran.
check() {
  local rc=0
  "$@" || rc=$?
  if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then status=1; fi
}

echo "== 1. golden families through the ring into cuda:0"
export MNEME_UPLOAD_DEVICE=cuda:0
check "$(bin test_upload)" "*upload ring*,*CUDA backend*"
check "$(bin test_gguf_pipeline)" "*upload ring*"
check "$(bin test_quant_pipeline)" "*upload ring*"
check "$(bin test_fp8_pipeline)" "*FP8 golden*"

echo "== 2. a 4 GiB F32 model"
model="${MNEME_GPU_MODEL:-/tmp/mneme-gpu-4g}"
[ -f "$model/model.safetensors.index.json" ] ||
  python3 scripts/gen_safetensors_model.py "$model" --size 4G --shards 4 >/dev/null
check "$(bin upload_check)" cuda:0 "$model"
check "$(bin upload_check)" cuda:0 "$model" --to bf16

echo "== 3. the CLI"
for io in auto mmap; do
  check "$(bin mneme)" load "$model" --io "$io" --device cuda:0
  check "$(bin mneme)" load "$model" --io "$io" --device cuda:0 --to bf16
done

echo "== gpu-check: $([ "$status" = 0 ] && echo passed || echo FAILED)"
exit "$status"
