#!/usr/bin/env bash
# Records the benchmark captures: a MariaDB sysbench run on loopback, captured with tcpdump.
#
#   scripts/gen-bench-capture.sh [OUTDIR]     (default target/bench)
#
# Writes OUTDIR/sysbench-big.pcap (the whole run, about 420 MB with the defaults) and
# OUTDIR/sysbench-small.pcap (its first 10% of packets, about 40 MB). The workload, all on
# 127.0.0.1:$PORT against a throwaway server (scripts/mariadb.sh; stopped again at the end):
#   - two sysbench oltp_read_write instances, one on the text protocol (COM_QUERY) and one with
#     prepared statements (COM_STMT_*), restarted every SEG seconds so that new connections appear;
#   - sysbench oltp_point_select at a fixed rate (many small exchanges);
#   - short-lived mariadb CLI connections (handshake, login, COM_QUIT churn), at most 20 a second.
# Every load is bounded in time (DUR seconds) and the CLI loop also in count. Needs root for
# tcpdump on lo; installs sysbench, tcpdump and editcap (wireshark-common) when missing.
# Tunables: DUR (90), SEG (15), RATE (50 tx/s per oltp_read_write instance), PSRATE (1000 point
# selects/s), PORT (3309).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mkdir -p "${1:-target/bench}" && cd "${1:-target/bench}" && pwd)
PORT=${PORT:-3309}
DUR=${DUR:-90}
SEG=${SEG:-15}
RATE=${RATE:-50}
PSRATE=${PSRATE:-1000}
PATH=$PATH:/usr/sbin:/sbin

need=()
command -v sysbench >/dev/null 2>&1 || need+=(sysbench)
command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump)
command -v editcap >/dev/null 2>&1 || need+=(wireshark-common)
command -v mariadbd >/dev/null 2>&1 || need+=(mariadb-server)
command -v mariadb >/dev/null 2>&1 || need+=(mariadb-client)
if [ ${#need[@]} -gt 0 ]; then
  echo "gen-bench-capture: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

work=$out/work
rm -rf "$work"
mkdir -p "$work"
server_pid=$(scripts/mariadb.sh start "$PORT")
tcpdump_pid=
cleanup() {
  [ -n "$tcpdump_pid" ] && kill -INT "$tcpdump_pid" 2>/dev/null || true
  scripts/mariadb.sh stop "$PORT" >/dev/null 2>&1 || true
}
trap cleanup EXIT
echo "gen-bench-capture: mariadbd pid $server_pid on 127.0.0.1:$PORT" >&2

sb=(sysbench --db-driver=mysql --mysql-host=127.0.0.1 "--mysql-port=$PORT" --mysql-user=app
  --mysql-password=app --mysql-db=app --mysql-ssl=off --tables=4 --table-size=20000)
"${sb[@]}" oltp_read_write prepare >"$work/prepare.log" 2>&1

tcpdump -i lo -s 0 -B 131072 -w "$out/sysbench-big.pcap" "tcp port $PORT" 2>"$work/tcpdump.err" &
tcpdump_pid=$!
sleep 2
start=$(date +%s)
end=$((start + DUR))

# One sysbench oltp_read_write instance, run in segments of at most SEG seconds until the end.
segments() { # $1 = --db-ps-mode, $2 = log
  while [ $(($(date +%s) + 2)) -lt "$end" ]; do
    local left=$((end - $(date +%s)))
    [ "$left" -gt "$SEG" ] && left=$SEG
    "${sb[@]}" --threads=4 "--time=$left" "--rate=$RATE" "--db-ps-mode=$1" oltp_read_write run \
      >>"$2" 2>&1 || true
  done
}
segments disable "$work/sb-text.log" &
text_pid=$!
segments auto "$work/sb-ps.log" &
ps_pid=$!
"${sb[@]}" --threads=2 "--time=$((DUR - 2))" "--rate=$PSRATE" --db-ps-mode=auto oltp_point_select run \
  >"$work/sb-point.log" 2>&1 &
point_pid=$!
(
  n=0
  while [ "$(date +%s)" -lt $((end - 1)) ] && [ "$n" -lt $((DUR * 20)) ]; do
    mariadb --no-defaults --skip-ssl -h127.0.0.1 "-P$PORT" -uapp -papp app -e \
      "SELECT COUNT(*) FROM sbtest1 WHERE id < $((RANDOM % 20000)); SHOW STATUS LIKE 'Threads_connected'; SELECT c FROM sbtest2 WHERE id=$((RANDOM % 20000 + 1))" \
      >/dev/null 2>&1 || true
    n=$((n + 1))
    sleep 0.05
  done
  echo "$n" >"$work/cli-connections"
) &
cli_pid=$!
wait "$text_pid" "$ps_pid" "$point_pid" "$cli_pid"
sleep 1
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" || true
tcpdump_pid=
cat "$work/tcpdump.err" >&2

packets=$(capinfos -c -M "$out/sysbench-big.pcap" | awk -F: '/Number of packets/ {gsub(/ /, "", $2); print $2}')
editcap -F pcap -r "$out/sysbench-big.pcap" "$out/sysbench-small.pcap" "1-$((packets / 10))"
echo "gen-bench-capture: $((DUR)) s of load, $(cat "$work/cli-connections") CLI connections," \
  "$packets packets in $out/sysbench-big.pcap; first $((packets / 10)) in $out/sysbench-small.pcap" >&2
