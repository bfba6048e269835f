#!/usr/bin/env bash
# Benchmarks wirelag against tshark on the same captures, in one invocation, and prints wall time
# (best and median of BENCH_RUNS=5 interleaved runs, after a warm-up run of each), peak RSS and
# the ratios.
#   scripts/bench.sh streams [CAPTURE...]   wirelag streams --json   vs  tshark -q -z conv,tcp
#   scripts/bench.sh analyze [CAPTURE...]   wirelag analyze --json   vs  tshark MySQL field extraction
# Captures: the arguments, or by default the shared sysbench capture (MariaDB on port 3309), a
# 10x concatenation of it (to show that memory does not grow with the file) and, when present, the
# full sysbench capture ($BENCH_BIG, default big.pcap beside the small one).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: scripts/bench.sh streams|analyze [CAPTURE...]}; shift
cargo build --release -q
W=$PWD/target/release/wirelag
caps=("$@")
if [ ${#caps[@]} -eq 0 ]; then
  small=${BENCH_CAPTURE:-$PWD/../shared/bench/sysbench-small.pcap}
  scaled=/tmp/wirelag-bench-10x.pcap
  if [ ! -s "$scaled" ]; then
    python3 scripts/scale-capture.py "$small" "$scaled" 10 "${BENCH_MYSQL_PORT:-3309}"
  fi
  caps=("$small" "$scaled")
  # The full sysbench run (about 420 MB) when one was generated: BENCH_BIG, or big.pcap next to
  # the small one (../shared/bench/gen-capture.sh writes it there).
  big=${BENCH_BIG:-$(dirname "$small")/big.pcap}
  if [ -s "$big" ]; then caps+=("$big"); fi
fi
PORT=${BENCH_MYSQL_PORT:-3309}
case $mode in
  streams) wl=("$W" streams --json); ts=(tshark -n -q -z conv,tcp -r);;
  analyze) wl=("$W" analyze --json --decode-as "$PORT=mysql")
           ts=(tshark -n -d "tcp.port==$PORT,mysql" -Y mysql.command -T fields -e frame.number -e tcp.stream
               -e mysql.command -e mysql.query -e mysql.response_code -e mysql.error_code -e frame.time_epoch -r);;
  *) echo "unknown mode $mode" >&2; exit 2;;
esac
RUNS=${BENCH_RUNS:-5}
echo "best and median of $RUNS interleaved runs after one warm-up run each; speed-up = tshark / wirelag"
printf '%-24s %5s %8s %15s %15s %8s %10s %9s %9s\n' capture MB packets 'wl s best/med' 'ts s best/med' 'wl RSS' 'tshark RSS' 'best' 'median'
for c in "${caps[@]}"; do
  cat "$c" >/dev/null   # warm the page cache for both
  mb=$(du -m "$c" | cut -f1)
  pk=$("$W" streams "$c" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["capture"]["packets"])')
  res=$(python3 scripts/benchlib.py "$RUNS" -- wirelag "${wl[@]}" "$c" --- tshark "${ts[@]}" "$c")
  read -r _ wb wmed wm < <(echo "$res" | sed -n 1p)
  read -r _ tb tmed tm < <(echo "$res" | sed -n 2p)
  best=$(python3 -c "print(f'{$tb/$wb:.0f}x')")
  med=$(python3 -c "print(f'{$tmed/$wmed:.0f}x')")
  printf '%-24s %5s %8s %15s %15s %7sM %9sM %9s %9s\n' "$(basename "$c")" "$mb" "$pk" "$wb/$wmed" "$tb/$tmed" "$wm" "$tm" "$best" "$med"
done
