#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing (libpcap-dev to build and
# capture, tshark as the reference the conformance tests compare with, tcpdump, MariaDB, QEMU and a
# Debian kernel for the real-kernel netem tier), checks the capture corpus (tests/corpus, in the
# repository) is there, then formats, lints, builds and runs every test. Tests that need a peer fail
# when it is missing; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v tshark >/dev/null 2>&1 || need_pkgs+=(tshark)
command -v tcpdump >/dev/null 2>&1 || need_pkgs+=(tcpdump)
command -v mergecap >/dev/null 2>&1 || need_pkgs+=(wireshark-common)
[ -x /usr/bin/time ] || need_pkgs+=(time)
{ [ -f /usr/include/pcap.h ] || [ -f /usr/include/pcap/pcap.h ]; } || need_pkgs+=(libpcap-dev)
# Real peers for tests/mysql_real.rs: a MariaDB server (scripts/mariadb.sh starts a throwaway one),
# the mariadb CLI, openssl for its certificates, and Python's venv for the client libraries.
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need_pkgs+=(mariadb-server)
command -v mariadb >/dev/null 2>&1 || need_pkgs+=(mariadb-client)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
/usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_pkgs+=(python3-venv)
# The real-kernel tier (tests/vm_netem.rs, scripts/vm-netem.sh): QEMU, Debian's kernel (its module
# tree has sch_netem, sch_prio and cls_u32, which the host kernel may lack), a static busybox and
# cpio for the VM's initramfs, and iproute2's tc, copied into the VM.
command -v qemu-system-x86_64 >/dev/null 2>&1 || need_pkgs+=(qemu-system-x86)
have_kernel=
for d in /lib/modules/*-amd64; do [ -f "/boot/vmlinuz-${d##*/}" ] && have_kernel=1; done
[ -n "$have_kernel" ] || need_pkgs+=(linux-image-amd64)
{ [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || need_pkgs+=(busybox-static)
command -v cpio >/dev/null 2>&1 || need_pkgs+=(cpio)
command -v tc >/dev/null 2>&1 || [ -x /usr/sbin/tc ] || [ -x /sbin/tc ] || need_pkgs+=(iproute2)
# tests/cli.rs: `man -l` renders the generated man page; `script` (util-linux) gives the progress
# bar a terminal.
command -v man >/dev/null 2>&1 || need_pkgs+=(man-db)
command -v script >/dev/null 2>&1 || need_pkgs+=(bsdutils)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "== installing: ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# The real client libraries, pinned, in a project venv (scripts/.venv, gitignored): PyMySQL
# (PyNaCl for its ed25519 auth, cryptography for its sha256/caching_sha2 paths) and
# mysql-connector-python (pure-Python mode). Rebuilt when the pins change or the venv is broken.
venv=scripts/.venv
venv_pins="PyMySQL==1.2.4 cryptography==50.0.2 PyNaCl==1.6.2 mysql-connector-python==26.10.0"
if [ "$(cat "$venv/.pins" 2>/dev/null)" != "$venv_pins" ] ||
  ! "$venv/bin/python" -c 'import pymysql, nacl.bindings, cryptography, mysql.connector' >/dev/null 2>&1; then
  echo "== python venv $venv: $venv_pins"
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  # shellcheck disable=SC2086 # the pins are separate words
  "$venv/bin/pip" install -q --disable-pip-version-check $venv_pins
  echo "$venv_pins" >"$venv/.pins"
fi

# The corpus ships in the repository; WIRELAG_CORPUS may point the same tests at another copy.
corpus=${WIRELAG_CORPUS:-$PWD/tests/corpus}
[ -d "$corpus/pcaps" ] || { echo "capture corpus not found at $corpus" >&2; exit 1; }

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace --no-fail-fast 2>&1 | tee /tmp/wirelag-test.log
grep -q '^test result: ' /tmp/wirelag-test.log
