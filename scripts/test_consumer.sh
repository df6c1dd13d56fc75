#!/usr/bin/env bash
# The installed package as a downstream project sees it: `cmake --install`
# BUILD_DIR into a temporary prefix, then tests/consumer built twice against it,
# with find_package(mneme) and with pkg-config, and run on the sample model.
#   scripts/test_consumer.sh BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: scripts/test_consumer.sh BUILD_DIR}
tmp=$(mktemp -d /tmp/mneme-consumer.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S tests/consumer -B "$tmp/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/build" >/dev/null
"$tmp/build/consumer" fixtures/sample-model | tail -n 1

libdir=$(ls -d "$tmp"/prefix/lib*/pkgconfig | head -n 1)
# shellcheck disable=SC2046
g++ -O1 -o "$tmp/consumer-pc" tests/consumer/main.cpp $(PKG_CONFIG_PATH="$libdir" pkg-config --cflags --libs mneme)
"$tmp/consumer-pc" fixtures/sample-model | tail -n 1
echo "consumer: find_package and pkg-config builds both load the sample model"
