#!/usr/bin/env bash
# Installs what is needed, builds the mneme CLI and shows what it is for:
# reading quantized models' headers (GGUF K-quants, GPTQ, FP8 block scales),
# decoding them to plain BF16 safetensors in out/, and streaming a few hundred
# MB of synthetic Q4_K_M through the decoders. The samples are
# fixtures/samples (scripts/make_samples.py writes them).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-deps.sh
build=build/release
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target mneme_cli
mneme="$build/mneme"
samples=fixtures/samples
mkdir -p out

tmp=$(mktemp -d /tmp/mneme-demo.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM HUP  # the EXIT trap cleans up on these too

for s in q4k-q6k.gguf gptq fp8; do
  echo
  echo "== mneme inspect $samples/$s (headers only)"
  "$mneme" inspect "$samples/$s"
done

for s in q4k-q6k.gguf gptq fp8; do
  o="out/${s%.gguf}-bf16.safetensors"
  echo
  echo "== mneme remember $samples/$s -o $o --force"
  "$mneme" remember "$samples/$s" -o "$o" --force
done

echo
echo "== mneme inspect out/gptq-bf16.safetensors (qweight/qzeros/scales/g_idx became one [out, in] weight)"
"$mneme" inspect out/gptq-bf16.safetensors | head -n 12

echo
echo "== scripts/gen_gguf_model.py $tmp/q4k.gguf --size 300M (synthetic Q4_K_M, llama-7B layer shapes)"
scripts/gen_gguf_model.py "$tmp/q4k.gguf" --size 300M

echo
echo "== mneme load $tmp/q4k.gguf --to bf16 (decode every tensor into a discarding sink)"
"$mneme" load "$tmp/q4k.gguf" --to bf16
