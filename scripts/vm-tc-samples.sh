#!/usr/bin/env bash
# Regenerates fixtures/tc/<kernel>-<iproute2>/: what a real kernel with sch_netem reports
# (`tc -j qdisc/filter show dev lo`) for each rule layout `wirelag inject delay --dry-run` builds,
# applied for real in the QEMU VM of scripts/vm-netem.sh. Samples for the verifier's parser.
#
#   scripts/vm-tc-samples.sh [OUTDIR]     # default fixtures/tc/linux-6.1-iproute2-6.1
#
# WIRELAG: the binary (default target/debug/wirelag).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../fixtures/tc/linux-6.1-iproute2-6.1}
wirelag=${WIRELAG:-$here/../target/debug/wirelag}
[ -x "$wirelag" ] || { echo "vm-tc-samples.sh: no wirelag binary at $wirelag (cargo build)" >&2; exit 2; }
"$here/vm-netem.sh" -m 256 -t 120 -x "$wirelag" -o "$out" "$here/vm-tc-samples-payload.sh"
