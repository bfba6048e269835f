#!/bin/sh
# Runs INSIDE the VM (busybox sh, as root), started by scripts/vm-inject-mariadb.sh through
# scripts/vm-netem.sh. Real mariadbd on 127.0.0.1:3306, the real mariadb CLI, tcpdump (libpcap)
# captures, and wirelag's netem delay on lo:
#
#   0. the workload once, uncaptured (warm-up)
#   1. tc qdisc show dev lo                          -> out/qdisc-before.txt (+ tc-qdisc-before.json)
#   2. BASELINE workload, captured                   -> out/baseline.pcap, out/baseline.cli.txt
#   3. apply the delay on the server's port (see apply_delay)
#      tc -j qdisc/filter show dev lo while applied  -> out/tc-{qdisc,filter}-applied.{json,txt}
#   4. DELAYED workload, same statements, captured   -> out/delayed.pcap, out/delayed.cli.txt
#      tc -s -j qdisc show dev lo (counters)         -> out/tc-qdisc-stats-applied.json
#   5. remove the delay (see clear_delay)
#   6. tc qdisc show dev lo                          -> out/qdisc-after.txt (+ tc-qdisc-after.json)
#
#   7. (MODE=real) wirelag experiment on the same workload -> out/experiment.json, out/experiment/
#
# Args: DELAY_MS (default 40) and MODE: `real` (wirelag inject delay / status / clear, then
# experiment) or `dry-run` (the commands `inject delay --dry-run` prints). Every wait is bounded.
set -u
DELAY_MS=${1:-40}
MODE=${2:-real}
PORT=3306
mkdir -p out
log() { echo "payload: $*"; }
fail() {
  echo "payload: FAILED: $*"
  [ -n "${DB_PID:-}" ] && kill "$DB_PID" 2>/dev/null
  exit 1
}

# The workload: one short connection (setup + one statement), then one connection with single
# statements and a 5-statement explicit transaction. The test (tests/vm_netem.rs) knows these.
# A script file, so that `wirelag experiment -- sh /tmp/workload.sh` runs exactly the same.
cat >/tmp/workload.sh <<EOF
sql() {
  mariadb --no-defaults -h127.0.0.1 -P$PORT -uroot --skip-ssl -vvv --skip-column-names "\$@"
}
sql -e 'SELECT 1' &&
  sql -e "SELECT 2; SELECT COUNT(*) FROM wl.t; SELECT @@version;
START TRANSACTION; INSERT INTO wl.t (n) VALUES (1); UPDATE wl.t SET n = n + 1 WHERE n = 1;
SELECT id, n FROM wl.t ORDER BY id; COMMIT;
SELECT 3"
EOF
workload() { sh /tmp/workload.sh; }

# tcpdump around the workload, one pcap per window. Immediate mode, and a kernel buffer that
# drops nothing: the test fails on a capture with drops.
capture_window() { # NAME
  tcpdump -i lo -n -s 0 -B 8192 --immediate-mode -U -Z root -w "out/$1.pcap" "tcp port $PORT" \
    2>"out/$1.tcpdump.txt" &
  tp=$!
  i=0
  until grep -q 'listening on' "out/$1.tcpdump.txt" 2>/dev/null; do
    i=$((i + 1))
    [ $i -gt 100 ] && fail "tcpdump did not start within 10 s: $(cat "out/$1.tcpdump.txt")"
    sleep 0.1
  done
  t0=$(cut -d' ' -f1 /proc/uptime)
  workload >"out/$1.cli.txt" 2>&1 || fail "$1 workload: $(tail -5 "out/$1.cli.txt")"
  t1=$(cut -d' ' -f1 /proc/uptime)
  sleep 0.5 # the server's last (delayed) segments and FIN reach the capture
  kill -INT $tp
  i=0
  while kill -0 $tp 2>/dev/null; do
    i=$((i + 1))
    [ $i -gt 100 ] && { kill -KILL $tp; fail "tcpdump ignored SIGINT for 10 s"; }
    sleep 0.1
  done
  wait $tp
  log "$1 workload $t0..$t1 s (uptime); $(grep -E 'captured|dropped by kernel' "out/$1.tcpdump.txt" | tr '\n' ' ')"
}

# --- the injector ------------------------------------------------------------------------------
# MODE=real (tests/vm_netem.rs): wirelag applies, verifies, holds the rules in the foreground until
# --duration or a signal, and `wirelag inject clear` removes them. MODE=dry-run runs the exact tc
# commands `wirelag inject delay --dry-run` prints and removes them with its revert line (for
# comparing against plain tc by hand).
INJECT_ARGS="--dev lo --local-port $PORT --time $DELAY_MS"
apply_delay() {
  case $MODE in
  dry-run)
    # shellcheck disable=SC2086 # INJECT_ARGS are separate words
    wirelag inject delay $INJECT_ARGS --dry-run >out/inject-dry-run.txt ||
      fail "wirelag inject delay --dry-run"
    # Sourced, not `sh FILE`: a new busybox sh would run its own `tc` applet (vm-netem.sh's prelude).
    (set -e; . ./out/inject-dry-run.txt) || fail "applying the dry-run's tc commands"
    ;;
  real)
    # shellcheck disable=SC2086
    wirelag inject delay $INJECT_ARGS --duration 120 >out/inject-delay.txt 2>&1 &
    INJ_PID=$!
    i=0
    # The holder prints `verified: ...` once the kernel shows the rules it applied.
    until grep -q '^verified:' out/inject-delay.txt 2>/dev/null; do
      i=$((i + 1))
      kill -0 $INJ_PID 2>/dev/null || fail "wirelag inject delay exited: $(cat out/inject-delay.txt)"
      [ $i -gt 100 ] && fail "wirelag inject delay did not verify its rules within 10 s"
      sleep 0.1
    done
    wirelag inject status --dev lo >out/inject-status.txt 2>&1 || fail "wirelag inject status"
    ;;
  *) fail "MODE is dry-run or real, not $MODE" ;;
  esac
  log "delay applied ($MODE): $(tc qdisc show dev lo | tr '\n' ';')"
}
clear_delay() {
  case $MODE in
  dry-run)
    sed -n 's/^# revert[^:]*: //p' out/inject-dry-run.txt >out/inject-revert.txt
    (set -e; . ./out/inject-revert.txt) || fail "the dry-run's revert command"
    ;;
  real)
    wirelag inject clear --dev lo >out/inject-clear.txt 2>&1 || fail "wirelag inject clear: $(cat out/inject-clear.txt)"
    # The foreground holder notices its rules are gone, or is told to stop; bounded either way.
    kill -INT "$INJ_PID" 2>/dev/null
    i=0
    while kill -0 "$INJ_PID" 2>/dev/null; do
      i=$((i + 1))
      [ $i -gt 100 ] && { kill -KILL "$INJ_PID"; fail "wirelag inject delay did not exit within 10 s"; }
      sleep 0.1
    done
    wait "$INJ_PID"
    echo "exit=$?" >>out/inject-delay.txt
    ;;
  esac
}

# --- MariaDB ------------------------------------------------------------------------------------
tar xzf db.tgz -C /tmp && mkdir -p /usr/share && mv /tmp/mysql /usr/share/mysql || fail "unpacking db.tgz"
mariadbd --no-defaults --user=root --datadir=/tmp/data --socket=/tmp/my.sock --port=$PORT \
  --bind-address=127.0.0.1 --skip-name-resolve --skip-log-bin --performance-schema=OFF \
  --innodb-buffer-pool-size=32M --innodb-log-file-size=4M --lc-messages-dir=/usr/share/mysql \
  --innodb-flush-log-at-trx-commit=2 \
  --skip-ssl --max-connections=20 >/tmp/db.log 2>&1 &
DB_PID=$!
i=0
until mariadb --no-defaults -uroot --socket=/tmp/my.sock -e 'SELECT 1' >/dev/null 2>&1; do
  i=$((i + 1))
  [ $i -gt 600 ] && fail "mariadbd did not answer within 60 s: $(tail -5 /tmp/db.log)"
  kill -0 $DB_PID 2>/dev/null || fail "mariadbd exited: $(tail -5 /tmp/db.log)"
  sleep 0.1
done
log "mariadbd ready after ~$((i / 10)) s"
mariadb --no-defaults -uroot --socket=/tmp/my.sock -e \
  'CREATE DATABASE wl; CREATE TABLE wl.t (id INT PRIMARY KEY AUTO_INCREMENT, n INT NOT NULL) ENGINE=InnoDB' ||
  fail "creating wl.t"

# --- the experiment -----------------------------------------------------------------------------
# One uncaptured warm-up pass: under TCG a code path's first run is translated (and the table's
# first access opens it), which made cold baseline statements take up to 75 ms.
workload >out/warmup.cli.txt 2>&1 || fail "warm-up workload: $(tail -5 out/warmup.cli.txt)"
tc qdisc show dev lo >out/qdisc-before.txt
tc -j qdisc show dev lo >out/tc-qdisc-before.json
capture_window baseline
apply_delay
tc -j qdisc show dev lo >out/tc-qdisc-applied.json
tc -j filter show dev lo >out/tc-filter-applied.json
tc qdisc show dev lo >out/tc-qdisc-applied.txt
tc filter show dev lo >out/tc-filter-applied.txt
capture_window delayed
tc -s -j qdisc show dev lo >out/tc-qdisc-stats-applied.json
clear_delay
tc qdisc show dev lo >out/qdisc-after.txt
tc -j qdisc show dev lo >out/tc-qdisc-after.json
tc -V >out/tc-version.txt 2>&1
uname -r >out/kernel-release.txt
log "qdisc before: $(tr '\n' ';' <out/qdisc-before.txt) after: $(tr '\n' ';' <out/qdisc-after.txt)"

# --- wirelag experiment (MODE=real): the same in one command ------------------------------------
# Baseline window, inject + verify, delayed window, revert, compare; the workload runs once per
# window from a script (experiment runs a command, not a shell function).
if [ "$MODE" = real ]; then
  wirelag experiment --dev lo --local-port $PORT --time "$DELAY_MS" --port $PORT --settle-ms 500 \
    --keep-captures out/experiment --json -o out/experiment.json -- sh /tmp/workload.sh \
    >out/experiment.txt 2>&1 || fail "wirelag experiment: $(tail -5 out/experiment.txt)"
  tc qdisc show dev lo >out/qdisc-after-experiment.txt
  log "experiment: $(tail -3 out/experiment.txt | tr '\n' ' ')"
fi

kill $DB_PID
i=0
while kill -0 $DB_PID 2>/dev/null; do
  i=$((i + 1))
  [ $i -gt 150 ] && { kill -KILL $DB_PID; break; }
  sleep 0.1
done
log done
