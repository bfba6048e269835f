#!/usr/bin/env bash
# The main job on a shipped fixture, from a fresh machine: installs libpcap-dev if missing,
# builds wirelag in release mode, then, on an application + MySQL capture: the TCP conversations,
# the connection set-ups (SYN-only display filter), the MySQL timing report (latency per command
# and fingerprint, transactions and round trips) and one MySQL connection as a decoded timeline;
# then what a real 40 ms netem delay did to a MySQL workload (fixtures/netem40-*.pcap, recorded
# in the project's VM): per unit, round trips, added time and the amplification factor.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! { [ -f /usr/include/pcap.h ] || [ -f /usr/include/pcap/pcap.h ]; }; then
  DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends libpcap-dev >/dev/null
fi
cargo build --release -q
W=target/release/wirelag
F=${1:-fixtures/insecure.pcap}
echo "== wirelag streams $F"
$W streams "$F"
echo
echo "== wirelag frames $F -Y 'tcp.flags.syn == 1 && tcp.flags.ack == 0'   (connection set-ups)"
$W frames "$F" -Y 'tcp.flags.syn == 1 && tcp.flags.ack == 0'
echo
echo "== wirelag analyze $F"
$W analyze "$F"
echo
echo "== wirelag follow $F --stream 2"
$W follow "$F" --stream 2
echo
echo "== wirelag analyze fixtures/netem40-delayed.pcap --baseline fixtures/netem40-baseline.pcap --delay 40"
$W analyze fixtures/netem40-delayed.pcap --baseline fixtures/netem40-baseline.pcap --delay 40 |
  sed -n '/^Amplification/,/^MySQL streams/p' | sed '$d'
