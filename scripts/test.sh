#!/usr/bin/env bash
# Installs what is needed, builds and runs every test.
#   scripts/test.sh              release build (RelWithDebInfo) + ctest + the installed-package consumer
#   scripts/test.sh --sanitize   the same under -fsanitize=address,undefined
set -euo pipefail
cd "$(dirname "$0")/.."

mode=release
cmake_flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [ "${1:-}" = "--sanitize" ]; then
  mode=sanitize
  # (The Python module is not built here: loading an instrumented extension
  # into an uninstrumented interpreter needs the ASan runtime preloaded.)
  cmake_flags+=(-DMNEME_SANITIZE=ON -DMNEME_BUILD_BENCH=OFF -DMNEME_PYTHON=OFF)
  # allow_user_segv_handler: the mapping guard handles SIGBUS (io/mapping_guard.hpp).
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1:allow_user_segv_handler=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
elif [ -n "${1:-}" ]; then
  echo "usage: scripts/test.sh [--sanitize]" >&2
  exit 2
fi

bash scripts/setup-deps.sh
# The CUDA upload backend compiles wherever the toolkit's headers are (no GPU
# needed: its tests skip, saying why, when none answers).
cuda_home="${CUDA_HOME:-/usr/local/cuda}"
if [ -f "$cuda_home/include/cuda_runtime_api.h" ]; then
  cmake_flags+=(-DMNEME_WITH_CUDA=ON)
else
  echo "test.sh: SKIPPED building the CUDA backend: no CUDA headers under $cuda_home" >&2
  cmake_flags+=(-DMNEME_WITH_CUDA=OFF)
fi
build="build/$mode"
cmake -S . -B "$build" -G Ninja "${cmake_flags[@]}" >/dev/null
cmake --build "$build"
# The network tests' servers, on 127.0.0.1, stopped whatever happens. No test
# may leave loopback: never ask the EC2 instance metadata service.
export AWS_EC2_METADATA_DISABLED=true
servers="$(mktemp -d)"
trap 'bash scripts/net-servers.sh stop "$servers"; rm -rf "$servers"' EXIT
bash scripts/net-servers.sh start "$servers" "$build"
# shellcheck disable=SC1091
. "$servers/env"
ctest --test-dir "$build" --output-on-failure -j 2
# The installed package, built against as a downstream project would (the
# sanitizer build's libraries need the sanitizer runtime, so release only).
if [ "$mode" = release ]; then
  bash scripts/test_consumer.sh "$build"
fi
