#!/usr/bin/env python3
"""A known MySQL workload, run by a real client library against a real server, that writes down
what it did (the "ground truth" tests/mysql_real.rs compares wirelag's report with).

Usage: mysql_workload.py MODE PORT OUTFILE
  MODE: pymysql             PyMySQL, plaintext, user app (mysql_native_password)
        pymysql-ed25519     PyMySQL, plaintext, user app_ed (ed25519: the server switches plugin)
        pymysql-tls         PyMySQL over TLS, verifying the server with the throwaway CA
        connector-prepared  mysql-connector-python (pure Python), plaintext, plus server-side
                            prepared statements (COM_STMT_PREPARE / COM_STMT_EXECUTE)
  PORT: the server from scripts/mariadb.sh start PORT (127.0.0.1; CA in /tmp/wirelag-mariadb-PORT)

OUTFILE gets JSON (schema wirelag.mysql-workload/v1): the connection as the client saw it (server
version from SELECT VERSION() and from the greeting, connection id, user, database, TLS, auth
plugin), every statement in the order it was sent with the exact text, the command it went as, the
outcome the client got (ok / result_set / error + code), rows fetched, affected rows, and the
client's own start/end times; and the transactions the workload opened and closed.

Every client connects with autocommit=True (the server's default, so no library sends its own SET
autocommit on connect): the only transaction boundaries on the wire are the ones listed here.
"""

import json
import os
import sys
import time

HOST = "127.0.0.1"
TABLE = "app.wl_items"
LARGE_ROWS = 5000
SLEEP_S = 0.05
TIMEOUT_S = 30

MODES = ("pymysql", "pymysql-ed25519", "pymysql-tls", "connector-prepared")


def now_us():
    return time.time_ns() // 1000


class Recorder:
    """Runs statements through a client-specific executor and records each one."""

    def __init__(self, execute):
        # execute(sql, params, prepared) -> (rows or None, affected_rows or None)
        self._execute = execute
        self.statements = []
        self.transactions = []
        self._open_txn = None

    def _record(self, command, sql, **fields):
        entry = {
            "index": len(self.statements),
            "command": command,
            "sql": sql,
            "status": None,
            "error_code": None,
            "rows": None,
            "affected_rows": None,
            "start_epoch_us": None,
            "end_epoch_us": None,
        }
        entry.update(fields)
        self.statements.append(entry)
        if self._open_txn is not None:
            self._open_txn["statements"].append(entry["index"])
        return entry

    def run(self, sql, expect_error=None, command="COM_QUERY", params=None, prepare=False):
        """Sends one statement. With prepare=True a COM_STMT_PREPARE is recorded first (the
        library prepares an operation it has not prepared on that cursor before)."""
        if prepare:
            self._record("COM_STMT_PREPARE", sql, status="ok")
        entry = self._record(command, sql)
        if params is not None:
            entry["params"] = list(params)
        entry["start_epoch_us"] = now_us()
        try:
            rows, affected = self._execute(sql, params, command == "COM_STMT_EXECUTE")
        except Exception as e:  # the client library's own error type
            entry["end_epoch_us"] = now_us()
            code = error_code(e)
            if expect_error is None or code != expect_error:
                raise
            entry["status"] = "error"
            entry["error_code"] = code
            entry["error_message"] = str(e)
            return entry
        entry["end_epoch_us"] = now_us()
        if expect_error is not None:
            raise RuntimeError(f"{sql!r} was expected to fail with {expect_error} but succeeded")
        if rows is not None:
            entry["status"] = "result_set"
            entry["rows"] = len(rows)
            entry["result"] = rows if len(rows) <= 10 else None
        else:
            entry["status"] = "ok"
            entry["affected_rows"] = affected
        return entry

    def begin_transaction(self, name, end):
        assert self._open_txn is None
        self._open_txn = {"name": name, "statements": [], "end": end}

    def end_transaction(self):
        self.transactions.append(self._open_txn)
        self._open_txn = None


def version_of(dist):
    from importlib.metadata import version

    return version(dist)


def error_code(e):
    code = getattr(e, "errno", None)  # mysql-connector-python
    if isinstance(code, int) and code > 0:
        return code
    if e.args and isinstance(e.args[0], int):  # PyMySQL: (code, message)
        return e.args[0]
    return None


def workload(rec, prepared):
    """The statements every mode sends, in this order. The transaction boundaries are recorded
    around exactly the statements that belong to them."""
    version = rec.run("SELECT VERSION()")["result"][0][0]
    rec.run(
        f"CREATE TABLE IF NOT EXISTS {TABLE} (id INT PRIMARY KEY AUTO_INCREMENT, "
        "name VARCHAR(64) NOT NULL, n INT NOT NULL) ENGINE=InnoDB"
    )

    # The chatty transaction from the incident: isolation level, autocommit off, work, COMMIT.
    rec.begin_transaction("autocommit_off", "commit")
    rec.run("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    rec.run("SET autocommit=0")
    rec.run(f"DELETE FROM {TABLE}")
    rec.run(f"INSERT INTO {TABLE} (name, n) VALUES ('a', 1), ('b', 2), ('c', 3)")
    rec.run(f"UPDATE {TABLE} SET n = n + 10 WHERE name = 'b'")
    rec.run(f"SELECT id, name, n FROM {TABLE} ORDER BY id")
    if prepared:
        select = f"SELECT id, name, n FROM {TABLE} WHERE n > ? ORDER BY id"
        rec.run(select, command="COM_STMT_EXECUTE", params=(5,), prepare=True)
        rec.run(select, command="COM_STMT_EXECUTE", params=(0,))
        insert = f"INSERT INTO {TABLE} (name, n) VALUES (?, ?)"
        rec.run(insert, command="COM_STMT_EXECUTE", params=("d", 4), prepare=True)
    rec.run("COMMIT")
    rec.end_transaction()
    rec.run("SET autocommit=1")

    rec.run("SELECT * FROM app.no_such_table", expect_error=1146)
    big = rec.run(f"SELECT seq, REPEAT('x', 1024) FROM seq_1_to_{LARGE_ROWS}")
    if big["rows"] != LARGE_ROWS:
        raise RuntimeError(f"large result: {big['rows']} rows, expected {LARGE_ROWS}")
    rec.run(f"DO SLEEP({SLEEP_S})")

    # An explicit transaction: 4 statements, 4 round trips.
    rec.begin_transaction("explicit", "commit")
    rec.run("BEGIN")
    rec.run(f"INSERT INTO {TABLE} (name, n) VALUES ('e', 5)")
    rec.run(f"UPDATE {TABLE} SET n = n + 1 WHERE name = 'e'")
    rec.run("COMMIT")
    rec.end_transaction()
    return version


def run_pymysql(mode, port):
    import pymysql

    user = "app_ed" if mode == "pymysql-ed25519" else "app"
    kwargs = dict(
        host=HOST,
        port=port,
        user=user,
        password="app",
        database="app",
        autocommit=True,
        connect_timeout=10,
        read_timeout=TIMEOUT_S,
        write_timeout=TIMEOUT_S,
    )
    if mode == "pymysql-tls":
        ca = f"/tmp/wirelag-mariadb-{port}/ssl/ca.pem"
        kwargs.update(ssl_ca=ca, ssl_verify_cert=True, ssl_verify_identity=True)
    else:
        kwargs.update(ssl_disabled=True)  # PyMySQL >= 1.2 would use TLS when offered

    # The plugin the server switched the client to, as the client saw it (no switch: the
    # greeting's plugin).
    switched = []
    original = pymysql.connections.Connection._process_auth

    def process_auth(self, plugin_name, auth_packet, *rest):
        switched.append(plugin_name.decode() if isinstance(plugin_name, bytes) else plugin_name)
        return original(self, plugin_name, auth_packet, *rest)

    pymysql.connections.Connection._process_auth = process_auth
    conn = pymysql.connect(**kwargs)
    cur = conn.cursor()

    def execute(sql, params, _prepared):
        cur.execute(sql)
        if cur.description is None:
            return None, cur.rowcount
        return [list(r) for r in cur.fetchall()], None

    rec = Recorder(execute)
    version = workload(rec, prepared=False)
    sock = conn._sock
    tls_version = sock.version() if hasattr(sock, "version") else None
    info = {
        "library": "PyMySQL",
        "library_version": version_of("PyMySQL"),
        "server_version": version,
        "greeting_version": conn.get_server_info(),
        "connection_id": conn.thread_id(),
        "user": user,
        "database": "app",
        "tls": tls_version is not None,
        "tls_version": tls_version,
        "auth_plugin": switched[-1] if switched else conn._auth_plugin_name,
        "auth_switched": bool(switched),
    }
    cur.close()
    conn.close()
    if mode == "pymysql-ed25519" and info["auth_plugin"] != "client_ed25519":
        raise RuntimeError(f"app_ed logged in with {info['auth_plugin']}, not client_ed25519")
    return rec, info


def run_connector(port):
    import mysql.connector

    conn = mysql.connector.connect(
        host=HOST,
        port=port,
        user="app",
        password="app",
        database="app",
        use_pure=True,
        ssl_disabled=True,
        autocommit=True,
        connection_timeout=10,
    )
    text = conn.cursor()
    # One prepared cursor per statement: the library prepares an operation the first time its
    # cursor executes it and reuses it after that. (A prepared cursor keeps the previous result's
    # description after a statement without rows, so sharing one would misreport the INSERT.)
    prepared_cursors = {}

    def execute(sql, params, prepared):
        if prepared:
            if sql not in prepared_cursors:
                prepared_cursors[sql] = conn.cursor(prepared=True)
            cur = prepared_cursors[sql]
            cur.execute(sql, tuple(params))
        else:
            cur = text
            cur.execute(sql)
        if not cur.with_rows:
            return None, cur.rowcount
        return [[v.decode() if isinstance(v, (bytes, bytearray)) else v for v in r]
                for r in cur.fetchall()], None

    rec = Recorder(execute)
    version = workload(rec, prepared=True)
    info = {
        "library": "mysql-connector-python",
        "library_version": version_of("mysql-connector-python"),
        "server_version": version,
        "greeting_version": conn.server_info,
        "connection_id": conn.connection_id,
        "user": "app",
        "database": "app",
        "tls": False,
        "tls_version": None,
        # The library does not expose these; the pinned version answers the greeting's
        # mysql_native_password for a mysql_native_password user, so there is no switch.
        "auth_plugin": "mysql_native_password",
        "auth_switched": False,
    }
    for cur in prepared_cursors.values():
        cur.close()
    text.close()
    conn.close()
    return rec, info


def main(argv):
    if len(argv) != 4 or argv[1] not in MODES or not argv[2].isdigit():
        sys.exit(__doc__)
    mode, port, outfile = argv[1], int(argv[2]), argv[3]
    started = now_us()
    if mode == "connector-prepared":
        rec, info = run_connector(port)
    else:
        rec, info = run_pymysql(mode, port)
    truth = {
        "schema": "wirelag.mysql-workload/v1",
        "mode": mode,
        "server": {"host": HOST, "port": port},
        "connection": info,
        "started_epoch_us": started,
        "finished_epoch_us": now_us(),
        "statements": rec.statements,
        "transactions": rec.transactions,
        "large_rows": LARGE_ROWS,
        "sleep_us": int(SLEEP_S * 1_000_000),
    }
    tmp = outfile + ".tmp"
    with open(tmp, "w") as f:
        json.dump(truth, f, indent=1, default=str)
    os.replace(tmp, outfile)
    print(f"{mode}: {len(rec.statements)} statements, {len(rec.transactions)} transactions")


if __name__ == "__main__":
    main(sys.argv)
