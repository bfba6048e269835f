#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing (libpcap-dev to build and
# capture, tshark as the reference the conformance tests compare with, tcpdump), checks the shared
# corpus is there, then formats, lints, builds and runs every test. Tests that need a peer fail
# when it is missing; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v tshark >/dev/null 2>&1 || need_pkgs+=(tshark)
command -v tcpdump >/dev/null 2>&1 || need_pkgs+=(tcpdump)
command -v mergecap >/dev/null 2>&1 || need_pkgs+=(wireshark-common)
[ -x /usr/bin/time ] || need_pkgs+=(time)
{ [ -f /usr/include/pcap.h ] || [ -f /usr/include/pcap/pcap.h ]; } || need_pkgs+=(libpcap-dev)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "== installing: ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

export WIRELAG_CORPUS=${WIRELAG_CORPUS:-$PWD/../shared/corpus}
[ -d "$WIRELAG_CORPUS/pcaps" ] || { echo "shared corpus not found at $WIRELAG_CORPUS" >&2; exit 1; }

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace --no-fail-fast 2>&1 | tee /tmp/wirelag-test.log
grep -q '^test result: ' /tmp/wirelag-test.log
