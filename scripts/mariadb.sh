#!/usr/bin/env bash
# A throwaway MariaDB for the real-peer tests (tests/mysql_real.rs).
#
#   scripts/mariadb.sh start [PORT]   # prints the server's PID on stdout (progress goes to stderr)
#   scripts/mariadb.sh stop  [PORT]   # kills that PID and deletes the server's directory
#
# PORT defaults to 3307; everything lives in /tmp/wirelag-mariadb-PORT (datadir, socket, pid file,
# logs, certificates). The server listens on 127.0.0.1 only, offers TLS with a self-signed CA
# (ssl/ca.pem, so clients can verify it) and has:
#   app/app      mysql_native_password
#   app_ed/app   ed25519 (MariaDB has no caching_sha2_password; auth_ed25519 is loaded)
#   database app, max_allowed_packet=64M, a small InnoDB buffer pool.
# `start` is idempotent: a server of ours that already answers on that directory is reused.
# Needs mariadb-server and mariadb-client (scripts/test.sh installs them) and openssl.
set -euo pipefail

cmd=${1:-}
port=${2:-3307}
case "$cmd" in start | stop) ;; *)
  echo "usage: $0 start|stop [PORT]" >&2
  exit 2
  ;;
esac
[[ "$port" =~ ^[0-9]+$ ]] || {
  echo "bad port: $port" >&2
  exit 2
}

base=/tmp/wirelag-mariadb-$port
data=$base/data
sock=$base/mysqld.sock
pidfile=$base/mysqld.pid
ssl=$base/ssl
PATH=$PATH:/usr/sbin:/sbin

log() { echo "mariadb.sh: $*" >&2; }

# The PID in our pid file, if that process is alive and really is a mariadbd of this directory
# (a recycled PID must never be killed).
our_pid() {
  [ -f "$pidfile" ] || return 1
  local pid
  pid=$(tr -dc '0-9' <"$pidfile")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--datadir=$data" || return 1
  echo "$pid"
}

answers() {
  mariadb-admin --no-defaults --connect-timeout=2 -uroot --socket="$sock" ping >/dev/null 2>&1
}

stop_server() {
  local pid
  if pid=$(our_pid); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do # up to 15 s for a clean shutdown
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid did not stop in 15 s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
    fi
    log "stopped pid $pid (port $port)"
  fi
  rm -rf "$base"
}

if [ "$cmd" = stop ]; then
  stop_server
  exit 0
fi

for tool in mariadbd mariadb-install-db mariadb-admin mariadb openssl; do
  command -v "$tool" >/dev/null 2>&1 || {
    log "$tool not found (apt-get install mariadb-server mariadb-client openssl; scripts/test.sh does it)"
    exit 1
  }
done

if pid=$(our_pid) && answers; then
  log "already running on 127.0.0.1:$port"
  echo "$pid"
  exit 0
fi
# Anything half-made (a dead server, a failed start) is thrown away.
stop_server
mkdir -p "$data" "$ssl"

# A CA and a server certificate it signs, valid for 127.0.0.1 and localhost.
openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=wirelag test CA" \
  -keyout "$ssl/ca-key.pem" -out "$ssl/ca.pem" >"$base/openssl.log" 2>&1
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$ssl/server-key.pem" -out "$ssl/server.csr" >>"$base/openssl.log" 2>&1
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$ssl/server.ext"
openssl x509 -req -in "$ssl/server.csr" -CA "$ssl/ca.pem" -CAkey "$ssl/ca-key.pem" \
  -CAcreateserial -days 7 -extfile "$ssl/server.ext" -out "$ssl/server-cert.pem" \
  >>"$base/openssl.log" 2>&1

mariadb-install-db --no-defaults --user=root --datadir="$data" --skip-test-db \
  --auth-root-authentication-method=normal >"$base/install.log" 2>&1 || {
  log "mariadb-install-db failed:"
  tail -20 "$base/install.log" >&2
  exit 1
}

# setsid + every descriptor redirected: the server outlives this script and never holds the
# caller's pipes open (a test harness waiting on our stdout would hang otherwise).
# --innodb-flush-log-at-trx-commit=2: a COMMIT does not wait for a disk flush, so the server's
# time does not swing with the disk (the delay tests compare round trips to the millisecond).
setsid mariadbd --no-defaults --user=root --datadir="$data" --socket="$sock" \
  --pid-file="$pidfile" --bind-address=127.0.0.1 --port="$port" --skip-name-resolve \
  --log-error="$base/error.log" --skip-log-bin --performance-schema=OFF \
  --innodb-buffer-pool-size=32M --innodb-log-file-size=16M --max-allowed-packet=64M \
  --innodb-flush-log-at-trx-commit=2 \
  --max-connections=50 --plugin-load-add=auth_ed25519 \
  --ssl-ca="$ssl/ca.pem" --ssl-cert="$ssl/server-cert.pem" --ssl-key="$ssl/server-key.pem" \
  </dev/null >"$base/mariadbd.out" 2>&1 &
spawned=$!

for _ in $(seq 1 300); do # up to 30 s
  answers && break
  kill -0 "$spawned" 2>/dev/null || break
  sleep 0.1
done
if ! answers; then
  log "mariadbd did not answer on $sock; error log:"
  tail -30 "$base/error.log" >&2 || true
  kill -TERM "$spawned" 2>/dev/null || true
  exit 1
fi
pid=$(our_pid) || {
  log "mariadbd answers but its pid file $pidfile does not name it"
  exit 1
}

mariadb --no-defaults -uroot --socket="$sock" <<'SQL'
CREATE DATABASE IF NOT EXISTS app;
CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('app');
CREATE USER IF NOT EXISTS 'app_ed'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('app');
GRANT ALL ON app.* TO 'app'@'%';
GRANT ALL ON app.* TO 'app_ed'@'%';
SQL

log "up on 127.0.0.1:$port pid $pid (dir $base, CA $ssl/ca.pem)"
echo "$pid"
