#!/usr/bin/env bash
# The main job on a shipped fixture, from a fresh machine: installs libpcap-dev if missing,
# builds wirelag in release mode, then lists the TCP conversations of an application + MySQL
# capture, the connection set-ups (SYN-only display filter) and one connection as a timeline.
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
echo "== wirelag follow $F --stream 1"
$W follow "$F" --stream 1
