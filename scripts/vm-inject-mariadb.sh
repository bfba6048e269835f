#!/usr/bin/env bash
# The real-kernel experiment behind tests/vm_netem.rs: a MariaDB datadir made on this host, then a
# QEMU VM (scripts/vm-netem.sh) running scripts/vm-inject-mariadb-payload.sh with real mariadbd,
# the mariadb CLI, tcpdump and wirelag's netem delay on lo. The VM's out/ (baseline.pcap,
# delayed.pcap, the tc state before/applied/after, CLI outputs) lands in OUTDIR.
#
#   scripts/vm-inject-mariadb.sh OUTDIR [DELAY_MS [MODE]]
#
# WIRELAG: the wirelag binary to put in the VM (default target/debug/wirelag). MODE: real
# (default: inject delay/status/clear, then wirelag experiment) or dry-run (the payload applies
# the rules `inject delay --dry-run` prints; no experiment).
# Needs mariadb-server, mariadb-client, tcpdump, iproute2 and vm-netem.sh's packages
# (qemu-system-x86 linux-image-amd64 busybox-static cpio); scripts/test.sh installs them all.
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
[ $# -ge 1 ] || {
  sed -n 7,12p "$0" >&2
  exit 2
}
out=$1
delay=${2:-40}
mode=${3:-real}
here=$(cd "$(dirname "$0")" && pwd)
wirelag=${WIRELAG:-$here/../target/debug/wirelag}
[ -x "$wirelag" ] || { echo "vm-inject-mariadb.sh: no wirelag binary at $wirelag (cargo build)" >&2; exit 2; }
for t in mariadbd mariadb-install-db mariadb; do
  command -v "$t" >/dev/null || {
    echo "vm-inject-mariadb.sh: $t not found: apt-get install mariadb-server mariadb-client" >&2
    exit 2
  }
done

T=$(mktemp -d /tmp/vm-inject-mariadb.XXXXXX)
trap 'rm -rf "$T"' EXIT
mariadb-install-db --no-defaults --user=root --datadir="$T/data" --skip-test-db \
  --auth-root-authentication-method=normal --innodb-log-file-size=4M >"$T/install.log" 2>&1 || {
  echo "vm-inject-mariadb.sh: mariadb-install-db failed:" >&2
  tail -20 "$T/install.log" >&2
  exit 1
}
tar czf "$T/db.tgz" -C "$T" data -C /usr/share mysql/english mysql/charsets
rc=0
"$here/vm-netem.sh" -m "${VM_MEM:-512}" -t "${VM_TIMEOUT:-240}" -x "$wirelag" -x mariadbd \
  -x mariadb -f "$T/db.tgz" -o "$out" "$here/vm-inject-mariadb-payload.sh" "$delay" "$mode" || rc=$?
exit $rc
