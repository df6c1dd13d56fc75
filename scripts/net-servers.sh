#!/usr/bin/env bash
# The servers the network tests need, on 127.0.0.1 only:
#   scripts/net-servers.sh start DIR [BUILD]   starts them, writes DIR/env (source it)
#   scripts/net-servers.sh stop DIR            stops them
# nginx serves the golden fixtures (/fixtures/), the repository's fixtures/
# (/repo-fixtures/, the bundled samples also as /samples/) and the tests'
# scratch files (/scratch/ = BUILD/test-scratch) over HTTP and HTTPS (a CA
# made here, DIR/ca.pem, given to the tests as MNEME_TEST_CA), with ranges and
# ETags; /redirect/X answers 302 to /samples/X, and /hub/ORG/REPO/resolve/REV/X
# to /samples/REPO/X for the token "mneme-test-token", like the Hub.
# tests/net/fault_proxy.py stands in front of it (MNEME_FAULT_URL) to inject
# the faults object stores produce. Two moto_server instances are the S3
# oracle (tests/net/s3_setup.py fills them): one verifying SigV4, one public.
set -euo pipefail
cmd="${1:-}"
dir="${2:-}"
build="${3:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
root="$(cd "$(dirname "$0")/.." && pwd)"

stop() {
  for pidfile in "$dir"/moto-*.pid; do
    [ -f "$pidfile" ] || continue
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  done
  if [ -f "$dir/proxy.pid" ]; then
    kill "$(cat "$dir/proxy.pid")" 2>/dev/null || true
    rm -f "$dir/proxy.pid"
  fi
  if [ -f "$dir/nginx.pid" ]; then
    kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true
    for _ in $(seq 50); do [ -f "$dir/nginx.pid" ] || break; sleep 0.1; done
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
  mkdir -p "$dir/tmp"
  local fixtures="${MNEME_FIXTURES:-$root/../shared/fixtures}"
  fixtures="$(cd "$fixtures" 2>/dev/null && pwd || echo "$fixtures")"
  # A CA and a server certificate for 127.0.0.1 signed by it.
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=mneme-test-ca \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\n' > "$dir/san.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 2 -extfile "$dir/san.ext" -out "$dir/server.pem" 2>/dev/null
  local scratch="${build:-$dir}"
  scratch="$(cd "$scratch" && pwd)/test-scratch"
  mkdir -p "$scratch"
  local http_port https_port user_line=""
  http_port="$(free_port)"
  https_port="$(free_port)"
  [ "$(id -u)" -eq 0 ] && user_line="user root root;"
  cat > "$dir/nginx.conf" <<EOF
$user_line
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  types { application/octet-stream safetensors gguf npz npy pth bin; application/json json; }
  default_type application/octet-stream;
  sendfile on;
  server {
    listen 127.0.0.1:$http_port;
    listen 127.0.0.1:$https_port ssl;
    ssl_certificate $dir/server.pem;
    ssl_certificate_key $dir/server.key;
    location /fixtures/ { alias $fixtures/; }
    location /samples/ { alias $root/fixtures/samples/; }
    location /repo-fixtures/ { alias $root/fixtures/; }
    location /scratch/ { alias $scratch/; }
    location /redirect/ { rewrite ^/redirect/(.*)\$ /samples/\$1 redirect; }
    # A Hub stand-in (HF_ENDPOINT=\$MNEME_HTTP_URL/hub): ORG/REPO/resolve/REV/FILE
    # answers 302 to the sample folder REPO, for the test token only.
    location ~ ^/hub/[^/]+/([^/]+)/resolve/[^/]+/(.*)\$ {
      if (\$http_authorization != "Bearer mneme-test-token") { return 401; }
      return 302 /samples/\$1/\$2;
    }
  }
}
EOF
  nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log"
  for _ in $(seq 50); do [ -f "$dir/nginx.pid" ] && break; sleep 0.1; done
  # S3: moto_server (the machine's Python 3.11, not Debian) twice: one checking
  # SigV4 against an IAM key made at start, one public (never authenticating).
  command -v moto_server >/dev/null || { echo "net-servers: moto_server is missing" >&2; exit 1; }
  local moto_auth moto_public
  moto_auth="$(free_port)"
  moto_public="$(free_port)"
  INITIAL_NO_AUTH_ACTION_COUNT=3 moto_server -H 127.0.0.1 -p "$moto_auth" > "$dir/moto-auth.log" 2>&1 &
  echo $! > "$dir/moto-auth.pid"
  moto_server -H 127.0.0.1 -p "$moto_public" > "$dir/moto-public.log" 2>&1 &
  echo $! > "$dir/moto-public.pid"
  for port in "$moto_auth" "$moto_public"; do
    for _ in $(seq 100); do
      python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null && break
      sleep 0.1
    done
  done
  local fixtures_dir="${MNEME_FIXTURES:-$root/../shared/fixtures}"
  python3 "$root/tests/net/s3_setup.py" "http://127.0.0.1:$moto_auth" \
    "http://127.0.0.1:$moto_public" "$root" "$fixtures_dir" > "$dir/s3.env"
  # The fault-injecting proxy in front of nginx (tests/net/fault_proxy.py).
  local proxy_port
  proxy_port="$(free_port)"
  /usr/bin/python3 "$root/tests/net/fault_proxy.py" --port "$proxy_port" \
    --upstream "127.0.0.1:$http_port" \
    --aws-creds "$(sed -n 's/^export MNEME_S3_ACCESS_KEY=//p' "$dir/s3.env"):$(sed -n 's/^export MNEME_S3_SECRET_KEY=//p' "$dir/s3.env")" > "$dir/proxy.log" 2>&1 &
  echo $! > "$dir/proxy.pid"
  for _ in $(seq 50); do grep -q ready "$dir/proxy.log" 2>/dev/null && break; sleep 0.1; done
  grep -q ready "$dir/proxy.log" || { echo "net-servers: the fault proxy did not start" >&2; exit 1; }
  cat > "$dir/env" <<EOF
$(cat "$dir/s3.env")
export MNEME_FAULT_URL=http://127.0.0.1:$proxy_port
export MNEME_HTTP_URL=http://127.0.0.1:$http_port
export MNEME_HTTPS_URL=https://127.0.0.1:$https_port
export MNEME_TEST_CA=$dir/ca.pem
EOF
}

case "$cmd" in
  start) stop; start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
