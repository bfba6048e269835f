#!/usr/bin/env bash
# Benchmarks wirelag against tshark on the same captures, in one invocation, and prints wall time
# (best of 3), peak RSS and the ratio.
#   scripts/bench.sh streams [CAPTURE...]   wirelag streams --json   vs  tshark -q -z conv,tcp
#   scripts/bench.sh analyze [CAPTURE...]   wirelag analyze --json   vs  tshark MySQL field extraction
# Captures: the arguments, or by default the shared sysbench capture (MariaDB on port 3309) plus a
# 10x concatenation of it, to show that memory does not grow with the file.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: scripts/bench.sh streams|analyze [CAPTURE...]}; shift
cargo build --release -q
W=$PWD/target/release/wirelag
caps=("$@")
if [ ${#caps[@]} -eq 0 ]; then
  small=${BENCH_CAPTURE:-$PWD/../shared/bench/sysbench-small.pcap}
  big=/tmp/wirelag-bench-10x.pcap
  if [ ! -s "$big" ]; then

    python3 scripts/scale-capture.py "$small" "$big" 10 "${BENCH_MYSQL_PORT:-3309}"
  fi
  caps=("$small" "$big")
fi
PORT=${BENCH_MYSQL_PORT:-3309}
case $mode in
  streams) wl=("$W" streams --json); ts=(tshark -n -q -z conv,tcp -r);;
  analyze) wl=("$W" analyze --json --decode-as "$PORT=mysql")
           ts=(tshark -n -d "tcp.port==$PORT,mysql" -Y mysql.command -T fields -e frame.number -e tcp.stream
               -e mysql.command -e mysql.query -e mysql.response_code -e mysql.error_code -e frame.time_epoch -r);;
  *) echo "unknown mode $mode" >&2; exit 2;;
esac
printf '%-24s %6s %9s %9s %10s %8s %11s %8s\n' capture MB packets 'wl s' 'tshark s' 'wl RSS' 'tshark RSS' speedup
for c in "${caps[@]}"; do
  cat "$c" >/dev/null   # warm the page cache for both
  mb=$(du -m "$c" | cut -f1)
  pk=$("$W" streams "$c" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["capture"]["packets"])')
  res=$(python3 scripts/benchlib.py 3 -- wirelag "${wl[@]:0:1}" "${wl[@]:1}" "$c" --- tshark "${ts[@]}" "$c")
  read -r _ wt wm < <(echo "$res" | sed -n 1p)
  read -r _ tt tm < <(echo "$res" | sed -n 2p)
  ratio=$(python3 -c "print(f'{$tt/$wt:.0f}x')")
  printf '%-24s %6s %9s %9s %10s %7sM %10sM %8s\n' "$(basename "$c")" "$mb" "$pk" "$wt" "$tt" "$wm" "$tm" "$ratio"
done
