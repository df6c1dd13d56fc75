#!/usr/bin/env bash
# End-to-end `mneme remember` of one model to BF16 safetensors, against its
# parts measured alone on the same machine in the same session:
#   read    cat MODEL > /dev/null            (page cache warm)
#   write   dd of the output's size into a new file (page cache, no fsync)
#   kernel  mneme load --threads 1: decode seconds (DiscardSink, no file)
# and remember itself with 1 and 2 threads. Prints the median of REPS runs
# and the spread (min-max) of each. The output goes to $OUT_DIR (default: a
# temporary directory under $TMPDIR); OUT_DIR=/dev/shm takes the disk out of
# the measurement. Every timed step starts after a `sync`, so one step's dirty
# pages do not throttle the next.
#
#   scripts/gen_gguf_model.py /tmp/q4km.gguf --size 1.05G
#   scripts/bench_remember.sh /tmp/q4km.gguf [REPS=5]
set -euo pipefail

model=$1
reps=${2:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
mneme=${MNEME:-$root/build/mneme}
out=$(mktemp -d "${OUT_DIR:-${TMPDIR:-/tmp}}/mneme-bench.XXXXXX")/out.safetensors
trap 'rm -rf "$(dirname "$out")"' EXIT

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f s (min %.3f, max %.3f, n=%d)", m, a[1], a[NR], NR}'; }

cat "$model" > /dev/null  # warm the page cache
out_bytes=$("$mneme" inspect --json "$model" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["bf16_bytes"])')

read_t=() write_t=() kernel_t=() r1=() r2=()
for _ in $(seq "$reps"); do
  sync
  t0=$(now); cat "$model" > /dev/null; read_t+=("$(echo "$(now) - $t0" | bc)")
  t0=$(now); dd if=/dev/zero of="$out" bs=4M count="$out_bytes" iflag=count_bytes status=none; write_t+=("$(echo "$(now) - $t0" | bc)"); rm -f "$out"; sync
  kernel_t+=("$("$mneme" load "$model" --to bf16 --threads 1 2>&1 | sed -n 's/.*decode \([0-9.]*\) s.*/\1/p')")
  for threads in 1 2; do
    t0=$(now); "$mneme" remember "$model" --to bf16 --threads "$threads" -o "$out" 2> /dev/null
    t=$(echo "$(now) - $t0" | bc); rm -f "$out"; sync
    if [[ $threads == 1 ]]; then r1+=("$t"); else r2+=("$t"); fi
  done
done

printf 'model    %s (%s bytes in, %s bytes out)\n' "$model" "$(stat -c %s "$model")" "$out_bytes"
printf 'read     %s\n' "$(printf '%s\n' "${read_t[@]}" | median)"
printf 'write    %s\n' "$(printf '%s\n' "${write_t[@]}" | median)"
printf 'kernel   %s (1 thread)\n' "$(printf '%s\n' "${kernel_t[@]}" | median)"
printf 'remember %s (1 thread)\n' "$(printf '%s\n' "${r1[@]}" | median)"
printf 'remember %s (2 threads)\n' "$(printf '%s\n' "${r2[@]}" | median)"
