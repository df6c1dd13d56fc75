#!/usr/bin/env bash
# Network benchmarks (docs/performance.md, "Loading over HTTP"): starts the
# test servers on 127.0.0.1, writes a 2 GiB four-shard F32 model into the
# served scratch folder (once), then times with farm-bench, A B A B:
#   (a) mneme load of the 2 GiB model from nginx against curl -o /dev/null of
#       its shards, and with --to bf16 against the same load without it;
#   (b) the same model from a second nginx whose every connection the kernel
#       paces at 50 MiB/s (bench/net/pace_accepted.c, SO_MAX_PACING_RATE: a
#       scaled-down S3 connection), for --connections 1, 4 and 16.
#   scripts/bench_network.sh BUILD_DIR [RUNS] [PARTS]    (PARTS: a, b or ab)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:?usage: scripts/bench_network.sh BUILD_DIR [RUNS] [PARTS]}"
runs="${2:-5}"
parts="${3:-ab}"
mneme="$build/mneme"
scratch="$(realpath "$build")/test-scratch"
[ -f "$scratch/bench-2g/model.safetensors.index.json" ] ||
  /usr/bin/python3 scripts/gen_safetensors_model.py "$scratch/bench-2g" --size 2G --shards 4
servers="$(mktemp -d)"
paced="$servers/paced"
cleanup() {
  [ -f "$paced/nginx.pid" ] && kill "$(cat "$paced/nginx.pid")"
  bash scripts/net-servers.sh stop "$servers"
  rm -rf "$servers"
}
trap cleanup EXIT
bash scripts/net-servers.sh start "$servers" "$build"
. "$servers/env"
cat "$scratch"/bench-2g/* > /dev/null
model="scratch/bench-2g/model.safetensors.index.json"

if [[ $parts == *a* ]]; then
  url="$MNEME_HTTP_URL/scratch/bench-2g"
  curl_cmd="curl -s"
  for i in 1 2 3 4; do curl_cmd+=" -o /dev/null $url/model-0000$i-of-00004.safetensors"; done
  echo "== (a) 2 GiB from nginx: mneme load --to bf16 / curl"
  farm-bench -n "$runs" --timeout 600 --vs "$curl_cmd" -- "$mneme" load "$MNEME_HTTP_URL/$model" --to bf16 -q
  echo "== (a) decode overlapped: --to bf16 / no conversion"
  farm-bench -n "$runs" --timeout 600 --vs "$mneme load $MNEME_HTTP_URL/$model -q" -- \
    "$mneme" load "$MNEME_HTTP_URL/$model" --to bf16 -q
  echo "== (a) the same load from local files"
  farm-bench -n "$runs" --timeout 600 -- "$mneme" load "$scratch/bench-2g" --to bf16 -q
fi

if [[ $parts == *b* ]]; then
  mkdir -p "$paced/tmp"
  cc -O2 -shared -fPIC -o "$paced/pace.so" bench/net/pace_accepted.c -ldl
  port="$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  {
    [ "$(id -u)" = 0 ] && echo "user root;"
    echo "worker_processes 2; pid $paced/nginx.pid; error_log $paced/error.log warn;"
    echo "env MNEME_PACE_BYTES; events { worker_connections 256; }"
    echo "http { access_log off; client_body_temp_path $paced/tmp; sendfile on;"
    echo "  default_type application/octet-stream;"
    echo "  server { listen 127.0.0.1:$port; location /scratch/ { alias $scratch/; } } }"
  } > "$paced/nginx.conf"
  LD_PRELOAD="$paced/pace.so" MNEME_PACE_BYTES=52428800 \
    nginx -c "$paced/nginx.conf" -p "$paced" -e "$paced/error.log"
  for _ in $(seq 50); do [ -f "$paced/nginx.pid" ] && break; sleep 0.1; done
  for n in 1 4 16; do
    echo "== (b) 2 GiB, every connection paced at 50 MiB/s, --connections $n"
    farm-bench -n 3 --warmup 0 --timeout 600 -- \
      "$mneme" load "http://127.0.0.1:$port/$model" -q --connections "$n"
  done
  echo "== (b) the same model unpaced, --connections 16"
  farm-bench -n 3 --warmup 0 --timeout 600 -- "$mneme" load "$MNEME_HTTP_URL/$model" -q
fi
