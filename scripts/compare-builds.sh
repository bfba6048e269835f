#!/usr/bin/env bash
# Compares two wirelag binaries on every capture of tests/corpus and fixtures/: stdout, stderr and
# exit code of `frames --json`, `streams --json`, `follow --json --stream 0` and `analyze --json`
# (with the corpus's decode-as ports). For refactors that must not change what is read.
#   scripts/compare-builds.sh OLD_BINARY NEW_BINARY
# Prints one line per differing (capture, command) and a total; exits 1 when anything differs.
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?usage: scripts/compare-builds.sh OLD_BINARY NEW_BINARY}
new=${2:?usage: scripts/compare-builds.sh OLD_BINARY NEW_BINARY}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# MySQL decode-as ports per corpus capture (inventory.tsv: column 14 the protocol, 15 the ports).
declare -A ports
while IFS=$'\t' read -r rel _ _ _ _ _ _ _ _ _ _ _ _ proto decode _; do
  [ "$rel" = rel_path ] || [ "$proto" != mysql ] && continue
  ports[$rel]=$decode
done <tests/corpus/inventory.tsv

run() { # binary out-prefix args...
  local bin=$1 out=$2
  shift 2
  set +e
  "$bin" "$@" >"$out.stdout" 2>"$out.stderr"
  echo $? >"$out.rc"
  set -e
}

files=0 runs=0 differing=0
for cap in tests/corpus/pcaps/*/* fixtures/*.pcap fixtures/*.pcapng; do
  files=$((files + 1))
  rel=${cap#tests/corpus/}
  analyze=(analyze --json)
  for p in $(echo "${ports[$rel]:-}" | tr ',' ' '); do analyze+=(--decode-as "$p=mysql"); done
  for cmd in frames streams follow analyze; do
    case $cmd in
      frames) args=(frames "$cap" --json) ;;
      streams) args=(streams "$cap" --json) ;;
      follow) args=(follow "$cap" --json --stream 0) ;;
      analyze) args=("${analyze[@]}" "$cap") ;;
    esac
    run "$old" "$work/old" "${args[@]}"
    run "$new" "$work/new" "${args[@]}"
    runs=$((runs + 1))
    # The report names the capture file and nothing else varies between runs.
    if ! cmp -s "$work/old.stdout" "$work/new.stdout" || ! cmp -s "$work/old.stderr" "$work/new.stderr" ||
      ! cmp -s "$work/old.rc" "$work/new.rc"; then
      differing=$((differing + 1))
      echo "DIFFERS: $cmd $cap"
    fi
  done
done
echo "$files captures, $runs runs per binary, $differing differing"
[ "$differing" -eq 0 ]
