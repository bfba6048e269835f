#!/bin/sh
# Runs INSIDE the VM (scripts/vm-tc-samples.sh): for each rule layout wirelag's `inject delay
# --dry-run` builds, apply its tc commands on lo, record what the kernel reports (`tc -j` and plain
# text, qdiscs and filters), then apply its revert line and check lo is back to what it was.
# Output: out/<case>/{inject-dry-run.txt,tc-qdisc.json,tc-filter.json,tc-qdisc.txt,tc-filter.txt}.
set -u
mkdir -p out
tc qdisc show dev lo >out/qdisc-before.txt
tc -j qdisc show dev lo >out/tc-qdisc-before.json
rc=0
sample() { # NAME ARGS...
  name=$1
  shift
  mkdir -p "out/$name"
  # shellcheck disable=SC2068
  wirelag inject delay --dev lo $@ --dry-run >"out/$name/inject-dry-run.txt" || { echo "$name: dry-run failed"; rc=1; return; }
  # Sourced: a new busybox sh would run busybox's own `tc` applet (see vm-netem.sh).
  if (set -e; . "./out/$name/inject-dry-run.txt") 2>"out/$name/apply.err"; then
    tc -j qdisc show dev lo >"out/$name/tc-qdisc.json"
    tc -j filter show dev lo >"out/$name/tc-filter.json"
    tc qdisc show dev lo >"out/$name/tc-qdisc.txt"
    tc filter show dev lo >"out/$name/tc-filter.txt"
    echo "$name: applied"
  else
    echo "$name: the kernel refused: $(cat "out/$name/apply.err")"
    rc=1
  fi
  [ -s "out/$name/apply.err" ] || rm -f "out/$name/apply.err"
  sed -n 's/^# revert[^:]*: //p' "out/$name/inject-dry-run.txt" >/tmp/revert.sh
  (. /tmp/revert.sh) 2>/dev/null
  if [ "$(tc qdisc show dev lo)" != "$(cat out/qdisc-before.txt)" ]; then
    echo "$name: revert left $(tc qdisc show dev lo)"
    rc=1
  fi
}
sample root-netem --time 40
sample local-port-3306 --local-port 3306 --time 40
sample remote-port-27017 --remote-port 27017 --time 200
sample remote-port-range --remote-port 3300-3310 --time 200
sample destination-ip-with-ports --destination-ip 10.0.0.5/32,2001:db8::/64 --remote-port 3306 --time 200
sample exclude-port-22 --exclude-port 22 --time 200
sample exclude-port-with-remote-port --exclude-port 22 --remote-port 3306 --time 200
sample exclude-ip --exclude-ip 10.0.0.1,2001:db8::1 --time 200
sample offset-loss-limit-with-port --remote-port 27017 --time 200 --offset 10 --loss 1 --limit 100
sample protocol-udp --protocol udp --time 200
tc -V >out/tc-version.txt 2>&1
uname -r >out/kernel-release.txt
exit $rc
