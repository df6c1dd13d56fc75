#!/usr/bin/env bash
# Fuzzes mneme with libFuzzer: builds build/fuzz with clang-14 (ASan + UBSan,
# everything instrumented, kernels included), seeds each target's corpus from
# the fixtures, and runs the target for SECONDS with its dictionary.
#
#   scripts/fuzz.sh TARGET|all SECONDS
#
# Targets (tests/fuzz/fuzz_<target>.cpp): safetensors gguf npz npy pth zip
# index quant. A crash, a sanitizer report, a leak or a timeout fails the run;
# its input is copied into tests/fuzz/regressions/<target>/, which the
# ordinary tests replay (commit it with the fix). The corpus grows in
# build/fuzz/corpus/<target>/ across runs.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:?usage: scripts/fuzz.sh TARGET|all SECONDS}"
seconds="${2:?usage: scripts/fuzz.sh TARGET|all SECONDS}"
all=(safetensors gguf npz npy pth zip index quant)
if [ "$target" = all ]; then
  targets=("${all[@]}")
else
  [[ " ${all[*]} " == *" $target "* ]] || { echo "fuzz.sh: no target '$target' (${all[*]})" >&2; exit 2; }
  targets=("$target")
fi

build=build/fuzz
CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMNEME_FUZZ=ON -DMNEME_BUILD_BENCH=OFF -DMNEME_PYTHON=OFF -DMNEME_WITH_CUDA=OFF >/dev/null
cmake --build "$build" --target mneme_fuzzers

fixtures="${MNEME_FIXTURES:-$PWD/../shared/fixtures}"
# Seeds: the model files of each format the repository and the golden
# fixtures hold (quant: config.json and model.safetensors framed as the
# target reads them).
seed() {
  local t="$1" corpus="$2" f
  case "$t" in
    safetensors) cp fixtures/sample-model/*.safetensors "$fixtures"/safetensors/*.safetensors "$corpus"/ 2>/dev/null || true ;;
    gguf) cp fixtures/samples/*.gguf "$corpus"/ ;;
    npz|zip) cp "$fixtures"/npz/*.npz "$fixtures"/pth/*.pth "$corpus"/ 2>/dev/null || true ;;
    pth) cp "$fixtures"/pth/*.pth "$corpus"/ 2>/dev/null || true ;;
    npy)  # the members of the NPZ fixtures
      python3 -c 'import sys, zipfile, pathlib
for f in sys.argv[2:]:
    with zipfile.ZipFile(f) as z:
        for n in z.namelist():
            pathlib.Path(sys.argv[1], pathlib.Path(f).stem + "-" + n.replace("/", "_")).write_bytes(z.read(n))' \
        "$corpus" "$fixtures"/npz/*.npz 2>/dev/null || true ;;
    index) cp fixtures/sample-model/model.safetensors.index.json "$corpus"/ ;;
    quant)
      for f in fixtures/samples/gptq fixtures/samples/fp8; do
        [ -f "$f/config.json" ] || continue
        python3 - "$f" "$corpus/$(basename "$f")" <<'EOF'
import pathlib, struct, sys
d = pathlib.Path(sys.argv[1])
config = (d / "config.json").read_bytes()
model = next(d.glob("*.safetensors")).read_bytes()
pathlib.Path(sys.argv[2]).write_bytes(struct.pack("<I", len(config)) + config + model)
EOF
      done ;;
  esac
  cp tests/fuzz/regressions/"$t"/* "$corpus"/ 2>/dev/null || true
}

export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1:abort_on_error=1:allow_user_segv_handler=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  artifacts="$build/artifacts/$t/"
  mkdir -p "$corpus" "$artifacts"
  seed "$t" "$corpus"
  log="$build/fuzz-$t.log"
  rc=0
  "$build/tests/fuzz_$t" "$corpus" -dict="tests/fuzz/dict/$t.dict" -max_total_time="$seconds" \
    -timeout=20 -rss_limit_mb=2048 -max_len=1048576 -artifact_prefix="$artifacts" \
    -print_final_stats=1 >"$log" 2>&1 || rc=$?
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)"
  if [ "$rc" = 0 ]; then
    echo "fuzz $t: ${seconds} s, $runs runs, $cov, no finding"
  else
    status=1
    echo "fuzz $t: FOUND something (exit $rc); the log's end:" >&2
    tail -40 "$log" >&2
    mkdir -p tests/fuzz/regressions/"$t"
    cp "$artifacts"* tests/fuzz/regressions/"$t"/ 2>/dev/null || true
    echo "fuzz $t: the input is in tests/fuzz/regressions/$t/ (replayed by the ordinary tests)" >&2
  fi
done
exit "$status"
