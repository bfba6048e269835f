#!/usr/bin/env bash
# A throwaway Linux VM with a real kernel that has sch_netem, for the real-kernel tests of
# `wirelag inject` (tests/vm_netem.rs). It boots the host's Debian linux-image-amd64 kernel under
# QEMU with a busybox initramfs, loads the traffic-control modules, runs one payload script as root
# and powers off. No qdisc is applied here: the payload decides (wirelag inject, or tc itself).
#
#   scripts/vm-netem.sh [-x PROG]... [-f FILE]... [-o OUTDIR] [-M MODULE]... [-m MEM_MB] \
#                       [-t TIMEOUT_S] SCRIPT [ARGS...]
#
#   -x PROG    copy a host program (a path, or a name on PATH) and the shared libraries `ldd` lists
#              to the same path in the VM, with a /usr/local/bin/NAME link (repeatable). iproute2's tc
#              and tcpdump are always copied.
#   -f FILE    copy FILE into /payload (repeatable).
#   -o OUTDIR  what the payload writes to /payload/out comes back into OUTDIR.
#   -M MODULE  load this kernel module too (after its dependencies, from modules.dep). Always
#              loaded: sch_netem, sch_prio, cls_u32.
#   -m MEM_MB  guest memory (default 512; MariaDB inside needs 256-512).
#   -t SECS    the whole VM run is killed after SECS (default 240); the payload itself gets
#              SECS-30 inside the VM, so its out/ still comes back when it hangs.
#   SCRIPT     copied into /payload and sourced there by busybox sh with ARGS as $1...,
#              after /etc/vm-prelude.sh (functions that make e.g. `tc` mean the copied iproute2
#              tc, not busybox's applet). PATH: /usr/local/bin (the copied programs), then
#              busybox's applets.
#
# Prints the payload's output, then `# vm: ...` lines on stderr (accelerator, kernel, boot time,
# wall time), and exits with the payload's exit code; 125 when the VM gave no result (console
# tail on stderr). Env: KVER (kernel version; default: the last /lib/modules/*-amd64, in name order, with a
# /boot/vmlinuz), ACCEL (tcg, the default: software emulation, works everywhere; kvm: faster where
# nested KVM really works; on a host where /dev/kvm exists but cannot run a guest it hangs or
# aborts, so it is never chosen automatically).
# Needs: apt-get install --no-install-recommends qemu-system-x86 linux-image-amd64 busybox-static cpio
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

usage() {
  sed -n '7,31p' "$0" >&2
  exit 2
}
die() {
  echo "vm-netem.sh: $*" >&2
  exit 2
}

PROGS=() FILES=() OUT='' MODULES=(sch_netem sch_prio cls_u32) MEM=512 TIMEOUT=240
while getopts x:f:o:M:m:t:h opt; do
  case $opt in
  x) p=$(command -v "$OPTARG") || die "program not found: $OPTARG"
    PROGS+=("$(readlink -f "$p")") ;;
  f) [ -f "$OPTARG" ] || die "no such file: $OPTARG"
    FILES+=("$OPTARG") ;;
  o) OUT=$OPTARG ;;
  M) MODULES+=("$OPTARG") ;;
  m) [[ "$OPTARG" =~ ^[0-9]+$ ]] || die "-m wants megabytes"
    MEM=$OPTARG ;;
  t) [[ "$OPTARG" =~ ^[0-9]+$ ]] && [ "$OPTARG" -ge 40 ] || die "-t wants seconds (>= 40)"
    TIMEOUT=$OPTARG ;;
  *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || usage
SCRIPT=$1
shift
[ -f "$SCRIPT" ] || die "no such script: $SCRIPT"

missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || missing+=(busybox-static)
command -v cpio >/dev/null || missing+=(cpio)
command -v tc >/dev/null || missing+=(iproute2)
command -v tcpdump >/dev/null || missing+=(tcpdump)
if [ -z "${KVER:-}" ]; then
  for d in /lib/modules/*-amd64; do
    [ -f "/boot/vmlinuz-${d##*/}" ] && KVER=${d##*/}
  done
fi
[ -n "${KVER:-}" ] && [ -f "/boot/vmlinuz-$KVER" ] || missing+=(linux-image-amd64)
[ ${#missing[@]} -eq 0 ] ||
  die "missing: apt-get install --no-install-recommends ${missing[*]} (scripts/test.sh installs them)"
MODDIR=/lib/modules/$KVER

ACCEL=${ACCEL:-tcg}
case $ACCEL in kvm) ACCEL_ARGS=(-accel kvm -cpu host) ;; tcg) ACCEL_ARGS=(-accel tcg -cpu max) ;;
*) die "ACCEL is tcg or kvm" ;; esac

W=$(mktemp -d /tmp/vm-netem.XXXXXX)
trap 'rm -rf "$W"' EXIT
R=$W/root
mkdir -p "$R"/{bin,sbin,usr/local/bin,proc,sys,dev,tmp,etc,lib/modules,payload/out}
cp /bin/busybox "$R/bin/busybox" # static: no libraries
echo 'root:x:0:0:root:/:/bin/sh' >"$R/etc/passwd"
echo 'root:x:0:' >"$R/etc/group"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$R/etc/hosts"

# Programs and their libraries, at their host paths (ldd also names the dynamic loader).
for p in "$(readlink -f "$(command -v tc)")" "$(readlink -f "$(command -v tcpdump)")" "${PROGS[@]}"; do
  cp -L --parents "$p" "$R/"
  ln -sf "$p" "$R/usr/local/bin/$(basename "$p")"
  for l in $(ldd "$p" 2>/dev/null | grep -o '/[^ ]*'); do
    [ -e "$R$l" ] || cp -L --parents "$l" "$R/"
  done
done
ln -sf "$(readlink -f "$(command -v tc)")" "$R/sbin/tc"

# Kernel modules in load order: each module after its dependencies (modules.dep lists a module's
# dependencies; insmod, unlike modprobe, does not resolve them).
declare -A seen=()
ORDER=()
add_module() { # NAME or path relative to $MODDIR
  local name=${1##*/} line path deps d
  name=${name%%.ko*}
  line=$(grep -E "(^|/)${name//_/[_-]}\.ko(\.[a-z]+)?:" "$MODDIR/modules.dep" | head -1) ||
    die "module $name is not in $MODDIR/modules.dep (built in modules need no loading; -M only for modules)"
  path=${line%%:*}
  [ -n "${seen[$path]:-}" ] && return 0
  seen[$path]=1
  deps=${line#*:}
  for d in $deps; do add_module "$d"; done
  ORDER+=("$path")
}
for m in "${MODULES[@]}"; do add_module "$m"; done
: >"$R/modules.list"
for path in "${ORDER[@]}"; do
  base=$(basename "$path")
  case $base in
  *.ko) cp "$MODDIR/$path" "$R/lib/modules/$base" ;;
  *.ko.xz) xz -dc "$MODDIR/$path" >"$R/lib/modules/${base%.xz}" ;;
  *.ko.zst) zstd -qdc "$MODDIR/$path" >"$R/lib/modules/${base%.zst}" ;;
  *.ko.gz) gzip -dc "$MODDIR/$path" >"$R/lib/modules/${base%.gz}" ;;
  *) die "unknown module format: $path" ;;
  esac
  echo "/lib/modules/${base%.ko*}.ko" >>"$R/modules.list"
done

# busybox sh runs its own applet for a command name even when a program of that name is first on
# PATH (and even when the applet's link is gone): busybox's `tc` would shadow iproute2's. The
# payload is sourced after a prelude of shell functions, which win over applets, for every copied
# program that has a busybox namesake. (Programs that wirelag itself spawns go by PATH; fine.)
applets=" $(/bin/busybox --list | tr '\n' ' ') "
: >"$R/etc/vm-prelude.sh"
for p in "$R"/usr/local/bin/*; do
  name=$(basename "$p")
  case $applets in *" $name "*)
    echo "$name() { $(readlink "$p") \"\$@\"; }" >>"$R/etc/vm-prelude.sh" ;;
  esac
done
cp "$SCRIPT" "$R/payload/"
for f in "${FILES[@]}"; do cp "$f" "$R/payload/"; done
printf '%q ' sh -c '. /etc/vm-prelude.sh && . "./$0"' "$(basename "$SCRIPT")" "$@" >"$R/payload/.cmd"

# Console markers carry a per-run token, so payload output can never fake them.
TOKEN=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
cat >"$R/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/ TMPDIR=/tmp
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
ip link set lo up
echo "@@$TOKEN BEGIN boot_s=\$(cut -d' ' -f1 /proc/uptime) clock=\$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
while read -r m; do insmod "\$m" || echo "insmod \$m failed"; done < /modules.list
cd /payload
timeout $((TIMEOUT - 30)) sh -c "\$(cat .cmd)" 2>&1; rc=\$?
if [ -n "\$(ls out)" ]; then
  echo "@@$TOKEN OUT-BEGIN"; tar c -C out . | gzip | base64; echo "@@$TOKEN OUT-END"; fi
echo "@@$TOKEN RC=\$rc"
poweroff -f
EOF
chmod +x "$R/init"
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) >"$W/initrd.gz"

start=$(date +%s.%N)
timeout "$TIMEOUT" qemu-system-x86_64 "${ACCEL_ARGS[@]}" -m "$MEM" -smp 1 -no-reboot \
  -display none -nodefaults -serial stdio -kernel "/boot/vmlinuz-$KVER" -initrd "$W/initrd.gz" \
  -append "console=ttyS0 quiet loglevel=1 panic=-1" </dev/null 2>"$W/qemu.err" |
  tr -d '\r' >"$W/console.log" || true
end=$(date +%s.%N)

M="@@$TOKEN"
sed -n "/^$M BEGIN/,/^$M RC=/p" "$W/console.log" |
  sed "/^$M OUT-BEGIN/,/^$M OUT-END/d; /^$M /d"
if [ -n "$OUT" ] && grep -q "^$M OUT-END" "$W/console.log"; then
  mkdir -p "$OUT"
  sed -n "/^$M OUT-BEGIN/,/^$M OUT-END/{/^$M /d;p}" "$W/console.log" | base64 -d | tar xz -C "$OUT"
fi
begin=$(sed -n "s/^$M BEGIN //p" "$W/console.log")
rc=$(sed -n "s/^$M RC=//p" "$W/console.log")
echo "# vm: accel=$ACCEL kernel=$KVER mem=${MEM}M ${begin:-no-boot} modules=$(
  IFS=,
  echo "${ORDER[*]##*/}"
) wall_s=$(awk "BEGIN{printf \"%.1f\", $end - $start}") rc=${rc:-none}" >&2
if [ -z "$rc" ]; then
  echo "# vm: no result (timeout ${TIMEOUT}s or crash); qemu stderr and console tail:" >&2
  tail -5 "$W/qemu.err" >&2
  tail -30 "$W/console.log" >&2
  exit 125
fi
exit "$rc"
