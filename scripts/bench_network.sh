#!/usr/bin/env bash
# Network benchmarks (docs/performance.md, "Loading over HTTP"): starts the
# test servers on 127.0.0.1, writes a 2 GiB four-shard and a 256 MiB
# two-shard F32 model into the served scratch folder (once), then times with
# farm-bench, A B A B:
#   (a) mneme load of the 2 GiB model from nginx against curl -o /dev/null of
#       its shards, and with --to bf16 against the same load without it;
#   (b) the 256 MiB model through the fault proxy capping every connection at
#       50 MiB/s, for --connections 1, 4 and 16, and unthrottled.
#   scripts/bench_network.sh BUILD_DIR [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:?usage: scripts/bench_network.sh BUILD_DIR [RUNS]}"
runs="${2:-5}"
mneme="$build/mneme"
scratch="$build/test-scratch"
for spec in bench-2g:2G:4 bench-256m:256M:2; do
  IFS=: read -r name size shards <<< "$spec"
  [ -f "$scratch/$name/model.safetensors.index.json" ] ||
    /usr/bin/python3 scripts/gen_safetensors_model.py "$scratch/$name" --size "$size" --shards "$shards"
done
servers="$(mktemp -d)"
trap 'bash scripts/net-servers.sh stop "$servers"; rm -rf "$servers"' EXIT
bash scripts/net-servers.sh start "$servers" "$build"
. "$servers/env"
cat "$scratch"/bench-2g/* > /dev/null

url="$MNEME_HTTP_URL/scratch/bench-2g"
curl_cmd="curl -s"
for i in 1 2 3 4; do curl_cmd+=" -o /dev/null $url/model-0000$i-of-00004.safetensors"; done
echo "== (a) 2 GiB from nginx: mneme load --to bf16 / curl"
farm-bench -n "$runs" --timeout 600 --vs "$curl_cmd" -- "$mneme" load "$url/model.safetensors.index.json" --to bf16 -q
echo "== (a) decode overlapped: --to bf16 / no conversion"
farm-bench -n "$runs" --timeout 600 --vs "$mneme load $url/model.safetensors.index.json -q" -- \
  "$mneme" load "$url/model.safetensors.index.json" --to bf16 -q
echo "== (a) the same load from local files"
farm-bench -n "$runs" --timeout 600 -- "$mneme" load "$scratch/bench-2g" --to bf16 -q

small="/scratch/bench-256m/model.safetensors.index.json"
echo "== (b) 256 MiB through the proxy, unthrottled"
farm-bench -n "$runs" --timeout 600 -- "$mneme" load "$MNEME_FAULT_URL/ok~u$small" -q
for n in 1 4 16; do
  echo "== (b) 256 MiB, every connection capped at 50 MiB/s, --connections $n"
  farm-bench -n 3 --warmup 0 --timeout 600 -- "$mneme" load "$MNEME_FAULT_URL/rate=52428800~r$n$small" -q --connections "$n"
done
