#!/usr/bin/env bash
# Installs what is needed, builds the mneme CLI and runs the main job on the
# bundled sample model (fixtures/sample-model: three safetensors shards).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-deps.sh
build=build/release
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target mneme_cli
mneme="$build/mneme"
mkdir -p out

echo "== mneme inspect fixtures/sample-model (headers only)"
"$mneme" inspect fixtures/sample-model
echo
echo "== mneme remember fixtures/sample-model --to bf16 -o out/sample.bf16.safetensors"
"$mneme" remember fixtures/sample-model --to bf16 -o out/sample.bf16.safetensors
echo
echo "== mneme inspect out/sample.bf16.safetensors"
"$mneme" inspect out/sample.bf16.safetensors | head -n 12
echo
echo "== mneme load fixtures/sample-model --to f32 --threads 2"
"$mneme" load fixtures/sample-model --to f32 --threads 2
