#!/usr/bin/env bash
# Benchmark: `wirelag streams` against `tshark -q -z conv,tcp` on the same captures, in one run.
# Prints wall time (best of 3), peak RSS and the ratios. Captures: the arguments, or by default
# the shared sysbench capture plus a 10x concatenation of it (memory must not grow with size).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
W=$PWD/target/release/wirelag
caps=("$@")
if [ ${#caps[@]} -eq 0 ]; then
  small=${BENCH_CAPTURE:-$PWD/../shared/bench/sysbench-small.pcap}
  big=/tmp/wirelag-bench-10x.pcap
  if [ ! -s "$big" ]; then
    args=(); for _ in $(seq 10); do args+=("$small"); done
    mergecap -a -F pcap -w "$big" "${args[@]}"
  fi
  caps=("$small" "$big")
fi
printf '%-28s %7s %9s %8s %10s %9s %10s %8s\n' capture MB packets 'wl s' 'tshark s' 'wl RSS' 'tshark RSS' speedup
for c in "${caps[@]}"; do
  cat "$c" >/dev/null   # warm the page cache for both
  mb=$(du -m "$c" | cut -f1)
  pk=$("$W" streams "$c" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["capture"]["packets"])')
  res=$(python3 scripts/benchlib.py 3 -- wirelag "$W" streams "$c" --json --- tshark tshark -n -q -r "$c" -z conv,tcp)
  read -r _ wt wm < <(echo "$res" | sed -n 1p)
  read -r _ tt tm < <(echo "$res" | sed -n 2p)
  ratio=$(python3 -c "print(f'{$tt/$wt:.0f}x')")
  printf '%-28s %7s %9s %8s %10s %8sM %9sM %8s\n' "$(basename "$c")" "$mb" "$pk" "$wt" "$tt" "$wm" "$tm" "$ratio"
done
