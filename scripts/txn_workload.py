#!/usr/bin/env python3
"""A short, repeatable PyMySQL workload for the delay experiments (tests/inject_proxy.rs).

Usage: txn_workload.py PORT setup      # creates the table app.wl_px (run once, before the windows)
       txn_workload.py PORT [ROUNDS]   # the workload

Connects to 127.0.0.1:PORT as app/app (database app, plaintext, autocommit on), then ROUNDS times
(default 3): one transaction of five statements, each its own round trip (BEGIN, INSERT, UPDATE,
SELECT, COMMIT), and one single statement (SELECT 1). The table is created beforehand so that
both windows of an experiment do the same server work.
Prints one JSON line on stdout: the statements per transaction, the transactions, the singles, and
the client's own time for each transaction in microseconds.
"""

import json
import sys
import time

import pymysql


def main():
    port = int(sys.argv[1])
    setup = len(sys.argv) > 2 and sys.argv[2] == "setup"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 and not setup else 3
    conn = pymysql.connect(
        host="127.0.0.1",
        port=port,
        user="app",
        password="app",
        database="app",
        autocommit=True,
        connect_timeout=10,
        read_timeout=30,
        write_timeout=30,
        ssl_disabled=True,
    )
    cur = conn.cursor()
    if setup:
        cur.execute(
            "CREATE TABLE IF NOT EXISTS app.wl_px (id INT PRIMARY KEY AUTO_INCREMENT, n INT NOT NULL)"
        )
        conn.close()
        return
    txn_us = []
    for i in range(rounds):
        t0 = time.monotonic_ns()
        cur.execute("BEGIN")
        cur.execute("INSERT INTO app.wl_px (n) VALUES (%s)", (i,))
        cur.execute("UPDATE app.wl_px SET n = n + 1 WHERE id = %s", (cur.lastrowid,))
        cur.execute("SELECT COUNT(*) FROM app.wl_px")
        cur.fetchall()
        cur.execute("COMMIT")
        txn_us.append((time.monotonic_ns() - t0) // 1000)
        cur.execute("SELECT 1")
        cur.fetchall()
    conn.close()
    print(json.dumps({"transactions": rounds, "statements_per_transaction": 5,
                      "singles": rounds, "transaction_us": txn_us}))


if __name__ == "__main__":
    main()
