#!/usr/bin/env bash
# Installs every Debian package mneme's build, tests, benchmarks and demo need.
# Idempotent: packages already present are skipped, so a warm machine pays ~1 s.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config
  libboost1.81-dev libboost-json1.81-dev   # Asio (io_uring backend needs >= 1.78), Beast, JSON
  liburing-dev libtbb-dev libhwy-dev
  catch2 libbenchmark-dev
  zlib1g-dev libssl-dev
  libcurl4-openssl-dev nginx-light openssl   # HTTP(S)/S3 sources; nginx is the test origin
  pybind11-dev libdlpack-dev python3-dev python3-pytest   # the Python module and its tests
  python3 python3-numpy python3-torch time   # NumPy and PyTorch are test oracles
  clang-14 libclang-rt-14-dev                # libFuzzer and its sanitizers (scripts/fuzz.sh)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup-deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
