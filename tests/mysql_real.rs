//! Real peers: a real MariaDB server, real client libraries, real libpcap capture, and
//! `wirelag analyze --json` checked against what the clients did.
//!
//! - The server is a throwaway MariaDB from `scripts/mariadb.sh` on 127.0.0.1:3317 (not 3306, so
//!   wirelag has to recognise MySQL by content), started once for this test and stopped by a guard,
//!   also when an assertion fails.
//! - The clients are PyMySQL (mysql_native_password, ed25519, TLS) and mysql-connector-python with
//!   server-side prepared statements, run by `scripts/mysql_workload.py` from the project venv
//!   `scripts/.venv`, and the `mariadb` command-line client, plain and with `--compress`.
//! - Each workload is captured by tcpdump on `lo` (immediate mode, a buffer big enough that the
//!   kernel drops nothing: a capture that lost packets is a failure, not a result).
//! - The ground truth is what the client did and saw: the statements it sent, in order, with their
//!   exact text; the outcome it got (error code, rows fetched, affected rows); its own clock around
//!   each statement; the transactions it opened and closed; the server version it read with
//!   `SELECT VERSION()`; its connection id. For the Python clients it is the JSON file the workload
//!   writes; for the CLI it is parsed from the CLI's own `-vvv` output and error messages.
//!
//! Nothing is skipped: a missing server package, client library, tcpdump or tshark is a failure
//! that says what to install (`scripts/test.sh` installs all of them). All workloads run in one
//! test, one after another (they share the server and the port filter), and every difference is
//! collected before the test fails, so one run shows all of them. The captures and reports are
//! kept when the test fails; their directory is printed.

mod common;

use std::collections::BTreeMap;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::peers::*;
use common::*;
use serde_json::{json, Value};

/// The throwaway server's port: not MySQL's 3306, not mariadb.sh's default 3307.
const PORT: u16 = 3317;
/// Clock slack when comparing capture timestamps with the client's own clock (same host clock;
/// covers pcap's microsecond rounding and the CLI's millisecond display).
const SLACK_US: i64 = 2_000;
/// The statements the CLI runs, in order. The failing one is last: `mariadb -e` stops at the
/// first error.
const CLI_STATEMENTS: &[&str] = &[
    "SELECT VERSION(), CONNECTION_ID()",
    "CREATE TABLE IF NOT EXISTS app.wl_cli (id INT PRIMARY KEY AUTO_INCREMENT, n INT NOT NULL) ENGINE=InnoDB",
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
    "SET autocommit=0",
    "INSERT INTO app.wl_cli (n) VALUES (1), (2), (3)",
    "UPDATE app.wl_cli SET n = n + 1 WHERE n = 2",
    "SELECT id, n FROM app.wl_cli ORDER BY id",
    "COMMIT",
    "SET autocommit=1",
    "SELECT seq, REPEAT('x', 1024) FROM seq_1_to_5000",
    "DO SLEEP(0.05)",
    "BEGIN",
    "INSERT INTO app.wl_cli (n) VALUES (10)",
    "UPDATE app.wl_cli SET n = n + 1 WHERE n = 10",
    "COMMIT",
    "SELECT * FROM app.no_such_table",
];
/// Indices into CLI_STATEMENTS of its two transactions.
const CLI_TXN_AUTOCOMMIT: std::ops::RangeInclusive<usize> = 2..=7;
const CLI_TXN_EXPLICIT: std::ops::RangeInclusive<usize> = 11..=14;
const LARGE_ROWS: u64 = 5000;
const SLEEP_US: i64 = 50_000;

// ---------------------------------------------------------------------------------------------
// Processes: every one is started here, bounded in time, and ended by its own PID.

/// tcpdump writing `tcp port PORT` on `lo` to a pcap; killed by PID if never stopped.
struct Capture {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Vec<String>,
    stopped: bool,
}

impl Capture {
    fn start(pcap: &Path) -> Capture {
        let mut child = Command::new("tcpdump")
            .args(["-i", "lo", "-n", "--immediate-mode", "-U", "-s", "0"])
            // 64 MiB of kernel buffer: a 5 MB result set arrives in 64 KiB loopback frames
            // faster than tcpdump writes them with the default 2 MiB.
            .args(["-B", "65536", "-Z", "root", "-w"])
            .arg(pcap)
            .arg(format!("tcp port {PORT}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("tcpdump is required (scripts/test.sh installs it; needs CAP_NET_RAW): {e}")
            });
        let (tx, lines) = mpsc::channel();
        let err = child.stderr.take().expect("tcpdump stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut cap = Capture {
            child,
            lines,
            stderr: Vec::new(),
            stopped: false,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match cap.lines.recv_timeout(left) {
                Ok(line) => {
                    let listening = line.contains("listening on");
                    cap.stderr.push(line);
                    if listening {
                        return cap;
                    }
                }
                Err(_) => panic!(
                    "tcpdump did not start listening on lo within 10 s:\n{}",
                    cap.stderr.join("\n")
                ),
            }
        }
    }

    /// Lets the last packets arrive, stops tcpdump with SIGINT (so it flushes), and returns its
    /// statistics. Fails when the kernel dropped packets: such a capture cannot be a reference.
    fn stop(&mut self) -> String {
        std::thread::sleep(Duration::from_millis(300));
        let pid = self.child.id().to_string();
        let _ = Command::new("sh")
            .args(["-c", "kill -INT \"$1\"", "sh", &pid])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().expect("wait tcpdump").is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("tcpdump (pid {pid}) ignored SIGINT for 10 s; killed");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stopped = true;
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.stderr.push(line);
        }
        let stats = self.stderr.join("\n");
        let dropped = stats
            .lines()
            .find_map(|l| l.strip_suffix(" packets dropped by kernel"))
            .and_then(|n| n.trim().parse::<u64>().ok());
        assert_eq!(
            dropped,
            Some(0),
            "tcpdump must drop no packets (a capture with holes is no reference):\n{stats}"
        );
        stats
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if !self.stopped && matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Workloads: each returns the capture and the ground truth.

struct Run {
    name: String,
    pcap: PathBuf,
    truth: Value,
    /// The client spoke TLS: statements must be invisible.
    tls: bool,
    /// The client used the compressed protocol.
    compressed: bool,
}

fn venv_python() -> PathBuf {
    let py = repo_root().join("scripts/.venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: scripts/test.sh creates the venv with PyMySQL, PyNaCl, cryptography and \
         mysql-connector-python",
        py.display()
    );
    py
}

fn python_workload(mode: &str, dir: &Path) -> Run {
    let pcap = dir.join(format!("{mode}.pcap"));
    let truth_path = dir.join(format!("{mode}.truth.json"));
    let mut cmd = Command::new(venv_python());
    cmd.arg(repo_root().join("scripts/mysql_workload.py"))
        .args([mode, &PORT.to_string()])
        .arg(&truth_path);
    let mut cap = Capture::start(&pcap);
    let out = run_bounded(cmd, mode, dir, Duration::from_secs(120));
    let stats = cap.stop();
    assert!(
        out.status.success(),
        "workload {mode} failed ({}):\n{}{}",
        out.status,
        out.stdout,
        out.stderr
    );
    eprintln!(
        "{mode}: {} | {}",
        out.stdout.trim(),
        stats.replace('\n', "; ")
    );
    let truth: Value = serde_json::from_str(
        &std::fs::read_to_string(&truth_path).expect("workload wrote its ground truth"),
    )
    .expect("ground truth is JSON");
    Run {
        name: mode.to_string(),
        pcap,
        tls: truth["connection"]["tls"] == true,
        compressed: false,
        truth,
    }
}

/// What `mariadb -vvv` printed after one statement.
#[derive(Debug, Default)]
struct CliOutcome {
    sql: String,
    rows: Option<u64>,
    affected: Option<u64>,
    seconds: Option<f64>,
    first_row: Vec<String>,
}

/// Parses `mariadb -vvv --skip-column-names` output: each statement is echoed between two lines
/// of dashes, then its table (if any) and a summary line with the client's elapsed time.
fn parse_cli_output(stdout: &str) -> Vec<CliOutcome> {
    const RULE: &str = "--------------";
    let lines: Vec<&str> = stdout.lines().collect();
    let mut out: Vec<CliOutcome> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i] == RULE {
            let start = i + 1;
            let end = (start..lines.len())
                .find(|&j| lines[j] == RULE)
                .unwrap_or(lines.len());
            out.push(CliOutcome {
                sql: lines[start..end].join("\n"),
                ..CliOutcome::default()
            });
            i = end + 1;
            continue;
        }
        if let Some(cur) = out.last_mut() {
            let line = lines[i];
            let seconds = line
                .rsplit_once(" (")
                .and_then(|(_, t)| t.strip_suffix(" sec)"))
                .and_then(|t| t.parse::<f64>().ok());
            let first_word = line
                .split_whitespace()
                .next()
                .and_then(|w| w.parse::<u64>().ok());
            if line.contains(" in set (") {
                cur.rows = first_word;
                cur.seconds = seconds;
            } else if line.starts_with("Empty set") {
                cur.rows = Some(0);
                cur.seconds = seconds;
            } else if let Some(rest) = line.strip_prefix("Query OK, ") {
                cur.affected = rest
                    .split_whitespace()
                    .next()
                    .and_then(|w| w.parse::<u64>().ok());
                cur.seconds = seconds;
            } else if line.starts_with("| ") && cur.first_row.is_empty() {
                cur.first_row = line
                    .trim_matches('|')
                    .split(" | ")
                    .map(|c| c.trim().to_string())
                    .collect();
            }
        }
        i += 1;
    }
    out
}

/// The mariadb CLI, plain or with the compressed protocol; its ground truth is what it printed.
fn cli_workload(compress: bool, dir: &Path) -> Run {
    let name = if compress { "cli-compress" } else { "cli" };
    let pcap = dir.join(format!("{name}.pcap"));
    let mut cmd = Command::new("mariadb");
    cmd.args(["--no-defaults", "--skip-ssl", "-vvv", "--skip-column-names"])
        .args(["--connect-timeout=10", "-h127.0.0.1"])
        .arg(format!("-P{PORT}"))
        .args(["-uapp", "-papp", "app"]);
    if compress {
        cmd.arg("--compress");
    }
    cmd.arg("-e").arg(CLI_STATEMENTS.join("; "));
    let mut cap = Capture::start(&pcap);
    let started = std::time::SystemTime::now();
    let out = run_bounded(cmd, name, dir, Duration::from_secs(60));
    let finished = std::time::SystemTime::now();
    let stats = cap.stop();
    eprintln!("{name}: {}", stats.replace('\n', "; "));

    // The last statement fails on purpose, so the CLI exits 1 with the server's error.
    let error_code = out
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("ERROR "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|c| c.parse::<u64>().ok());
    assert!(
        !out.status.success() && error_code.is_some(),
        "{name}: the mariadb CLI should end with the error of its last statement; exit {}, \
         stderr:\n{}",
        out.status,
        out.stderr
    );
    let outcomes = parse_cli_output(&out.stdout);
    let echoed: Vec<&str> = outcomes.iter().map(|o| o.sql.as_str()).collect();
    assert_eq!(
        echoed, CLI_STATEMENTS,
        "{name}: the CLI did not echo the statements it was given (is it the mariadb client?)"
    );
    let last = outcomes.len() - 1;
    let statements: Vec<Value> = outcomes
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let (status, code) = if i == last {
                ("error", error_code)
            } else if o.rows.is_some() {
                ("result_set", None)
            } else {
                ("ok", None)
            };
            json!({
                "index": i, "command": "COM_QUERY", "sql": o.sql, "status": status,
                "error_code": code, "rows": o.rows, "affected_rows": o.affected,
                "client_us": o.seconds.map(|s| (s * 1e6).round() as i64),
            })
        })
        .collect();
    let version_row = &outcomes[0].first_row;
    assert_eq!(
        version_row.len(),
        2,
        "{name}: cannot read SELECT VERSION(), CONNECTION_ID() from the CLI output: {version_row:?}"
    );
    let epoch_us = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_micros() as i64
    };
    let truth = json!({
        "mode": name,
        "connection": {
            "server_version": version_row[0],
            "connection_id": version_row[1].parse::<u64>().expect("CONNECTION_ID() is a number"),
            "user": "app", "database": "app", "tls": false,
            // The mariadb client answers the greeting's plugin: no switch for this user.
            "auth_plugin": "mysql_native_password", "auth_switched": false,
        },
        "started_epoch_us": epoch_us(started),
        "finished_epoch_us": epoch_us(finished),
        "statements": statements,
        "transactions": [
            {"name": "autocommit_off", "statements": CLI_TXN_AUTOCOMMIT.collect::<Vec<_>>(), "end": "commit"},
            {"name": "explicit", "statements": CLI_TXN_EXPLICIT.collect::<Vec<_>>(), "end": "commit"},
        ],
        "large_rows": LARGE_ROWS,
        "sleep_us": SLEEP_US,
    });
    std::fs::write(
        dir.join(format!("{name}.truth.json")),
        serde_json::to_string_pretty(&truth).expect("serialize"),
    )
    .expect("write CLI ground truth");
    Run {
        name: name.to_string(),
        pcap,
        truth,
        tls: false,
        compressed: compress,
    }
}

// ---------------------------------------------------------------------------------------------
// Checks.

/// Differences found for one workload; the test fails at the end with all of them.
struct Findings {
    name: String,
    items: Vec<String>,
}

impl Findings {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.items.push(what());
        }
    }
}

fn u(v: &Value) -> Option<u64> {
    v.as_u64()
}

fn i(v: &Value) -> Option<i64> {
    v.as_i64()
}

fn short(s: &str) -> String {
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(57).collect::<String>())
    } else {
        s.to_string()
    }
}

fn describe(r: &Value) -> String {
    format!(
        "request frame {} ({} {:?}, status {}, rows {}, affected {}, error {}, latency {} us)",
        r["frame"],
        r["command"].as_str().unwrap_or("?"),
        short(r["statement"].as_str().unwrap_or("")),
        r["status"],
        r["rows"],
        r["affected_rows"],
        r["error_code"],
        r["latency_us"]
    )
}

fn analyze(run: &Run, dir: &Path) -> Value {
    let mut cmd = wirelag();
    cmd.arg("analyze").arg(&run.pcap).arg("--json");
    let out = run_bounded(
        cmd,
        &format!("{}.analyze", run.name),
        dir,
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "{}: wirelag analyze {} --json failed ({}):\n{}",
        run.name,
        run.pcap.display(),
        out.status,
        out.stderr
    );
    std::fs::write(dir.join(format!("{}.report.json", run.name)), &out.stdout)
        .expect("keep the report");
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: wirelag analyze --json is not JSON ({e}): {}",
            run.name,
            short(&out.stdout)
        )
    })
}

/// `tshark -T fields` on the run's capture, with our port decoded as MySQL.
fn tshark_fields(run: &Run, filter: &str, fields: &[&str]) -> String {
    let pcap = run.pcap.to_string_lossy().into_owned();
    let decode = format!("tcp.port=={PORT},mysql");
    let mut args = vec!["-r", &pcap, "-d", &decode, "-Y", filter, "-T", "fields"];
    for field in fields {
        args.extend(["-e", field]);
    }
    tshark(&args)
}

/// tshark's reading of the same capture must contain the statements in order: otherwise the
/// capture, not wirelag, is wrong, and the test says so.
fn check_capture_with_tshark(run: &Run, f: &mut Findings) {
    let text = tshark_fields(run, "mysql.query", &["mysql.query"]);
    let seen: Vec<&str> = text.lines().collect();
    let mut at = 0;
    for st in run.truth["statements"].as_array().expect("statements") {
        if st["command"] != "COM_QUERY" {
            continue;
        }
        let sql = st["sql"].as_str().expect("sql");
        match seen[at..].iter().position(|q| *q == sql) {
            Some(k) => at += k + 1,
            None => {
                f.items.push(format!(
                    "CAPTURE PROBLEM (not wirelag): tshark does not see {:?} in order in {}",
                    short(sql),
                    run.pcap.display()
                ));
                return;
            }
        }
    }
}

fn check_run(run: &Run, report: &Value) -> Findings {
    let mut f = Findings {
        name: run.name.clone(),
        items: Vec::new(),
    };
    let truth = &run.truth;
    let conn = &truth["connection"];
    f.check(report["schema"] == "wirelag.report/v1", || {
        format!("schema is {}", report["schema"])
    });

    // One MySQL connection, to our server, recognised as MySQL.
    let streams: Vec<&Value> = report["streams"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let mysql_streams: Vec<&Value> = streams
        .iter()
        .copied()
        .filter(|s| s["protocol"] == "mysql")
        .collect();
    if mysql_streams.len() != 1 || streams.len() != 1 {
        f.items.push(format!(
            "expected exactly one TCP stream, decoded as MySQL; got {} streams, {} MySQL: {:?}",
            streams.len(),
            mysql_streams.len(),
            streams
                .iter()
                .map(|s| (s["stream"].clone(), s["protocol"].clone()))
                .collect::<Vec<_>>()
        ));
        return f;
    }
    let stream = mysql_streams[0];
    let sid = stream["stream"].clone();
    let m = &stream["mysql"];
    f.check(
        u(&stream["server"]["port"]) == Some(u64::from(PORT)),
        || {
            format!(
                "stream server is {}, expected port {PORT}",
                stream["server"]
            )
        },
    );
    f.check(m["server_version"] == conn["server_version"], || {
        format!(
            "streams[{sid}].mysql.server_version is {}, the client read {} with SELECT VERSION() \
             (the greeting, as tshark reads it: frame and mysql.version {:?})",
            m["server_version"],
            conn["server_version"],
            tshark_fields(run, "mysql.version", &["frame.number", "mysql.version"]).trim()
        )
    });
    f.check(m["connection_id"] == conn["connection_id"], || {
        format!(
            "mysql.connection_id is {}, the client saw {}",
            m["connection_id"], conn["connection_id"]
        )
    });
    f.check(m["tls"] == run.tls, || {
        format!(
            "mysql.tls is {}, the client used TLS: {}",
            m["tls"], run.tls
        )
    });
    f.check(m["compressed"] == run.compressed, || {
        format!(
            "mysql.compressed is {}, the client used compression: {}",
            m["compressed"], run.compressed
        )
    });
    if !run.tls {
        for key in ["user", "database", "auth_plugin"] {
            f.check(m[key] == conn[key], || {
                format!(
                    "mysql.{key} is {}, the client logged in with {}",
                    m[key], conn[key]
                )
            });
        }
    }

    let requests: Vec<&Value> = report["requests"]
        .as_array()
        .map(|a| a.iter().filter(|r| r["stream"] == sid).collect())
        .unwrap_or_default();
    let statements = truth["statements"].as_array().expect("statements");
    let first_epoch = i(&report["capture"]["first_epoch_us"]);
    f.check(first_epoch.is_some(), || {
        "capture.first_epoch_us is missing".to_string()
    });

    if run.tls {
        check_tls(&mut f, truth, &requests, report, &sid);
        return f;
    }

    // The login, as the client went through it: LOGIN answered by OK, or (after the server
    // switched the client to another plugin) LOGIN answered by the switch, then AUTH answered by OK.
    let first_command = requests
        .iter()
        .position(|r| r["command"].as_str().is_some_and(|c| c.starts_with("COM_")))
        .unwrap_or(requests.len());
    let handshake = &requests[..first_command];
    let turns: Vec<(&str, &str)> = handshake
        .iter()
        .map(|r| {
            (
                r["command"].as_str().unwrap_or("?"),
                r["status"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    let expected: &[(&str, &str)] = if conn["auth_switched"] == true {
        &[("LOGIN", "auth_continue"), ("AUTH", "ok")]
    } else {
        &[("LOGIN", "ok")]
    };
    f.check(turns == expected, || {
        format!(
            "the login ({} with plugin {}, switched: {}) is reported as {turns:?}, expected \
             {expected:?}",
            conn["user"], conn["auth_plugin"], conn["auth_switched"]
        )
    });

    // Every statement, in order, with its command and outcome.
    let mut matched: Vec<Option<&Value>> = Vec::new();
    let mut at = 0;
    for st in statements {
        let sql = st["sql"].as_str().expect("sql");
        let command = st["command"].as_str().expect("command");
        let found = requests[at..]
            .iter()
            .position(|r| r["command"] == command && r["statement"] == sql);
        let Some(k) = found else {
            let anywhere = requests.iter().find(|r| r["statement"] == sql);
            f.items.push(format!(
                "statement #{} {command} {:?} not found in order after request {} ({})",
                st["index"],
                short(sql),
                at,
                match anywhere {
                    Some(r) => format!("present elsewhere as {}", describe(r)),
                    None => "no request has this text".to_string(),
                }
            ));
            matched.push(None);
            continue;
        };
        let r = requests[at + k];
        at += k + 1;
        matched.push(Some(r));
        check_outcome(&mut f, st, r);
        check_timing(&mut f, st, r, first_epoch);
    }

    // The slow statement and the large result, by their text.
    let sleep_us = i(&truth["sleep_us"]).expect("sleep_us");
    let large_rows = u(&truth["large_rows"]).expect("large_rows");
    for (st, r) in statements.iter().zip(&matched) {
        let (Some(r), Some(sql)) = (r, st["sql"].as_str()) else {
            continue;
        };
        if sql.starts_with("DO SLEEP") {
            f.check(i(&r["latency_us"]).is_some_and(|l| l >= sleep_us), || {
                format!(
                    "{:?} slept {sleep_us} us on the server but {}",
                    sql,
                    describe(r)
                )
            });
        }
        if sql.contains("seq_1_to_") {
            f.check(u(&r["rows"]) == Some(large_rows), || {
                format!("the large result has {large_rows} rows but {}", describe(r))
            });
        }
    }

    check_transactions(&mut f, run, &matched, report, &sid);
    f
}

fn check_outcome(f: &mut Findings, st: &Value, r: &Value) {
    let want = st["status"].as_str().unwrap_or("");
    let idx = &st["index"];
    if st["command"] == "COM_STMT_PREPARE" {
        f.check(r["status"] == "ok", || {
            format!(
                "statement #{idx}: the prepare succeeded but {}",
                describe(r)
            )
        });
        return;
    }
    f.check(r["status"] == want, || {
        format!(
            "statement #{idx}: the client got {want} but {}",
            describe(r)
        )
    });
    match want {
        "error" => f.check(r["error_code"] == st["error_code"], || {
            format!(
                "statement #{idx}: the client got error {} but {}",
                st["error_code"],
                describe(r)
            )
        }),
        "result_set" => f.check(u(&r["rows"]) == u(&st["rows"]), || {
            format!(
                "statement #{idx}: the client fetched {} rows but {}",
                st["rows"],
                describe(r)
            )
        }),
        _ => {
            if let Some(n) = u(&st["affected_rows"]) {
                f.check(u(&r["affected_rows"]) == Some(n), || {
                    format!(
                        "statement #{idx}: the client saw {n} affected rows but {}",
                        describe(r)
                    )
                });
            }
        }
    }
}

/// The capture point sits between the client's send and its receive: the request starts after
/// the client started the statement, and the response time fits in the client's elapsed time.
fn check_timing(f: &mut Findings, st: &Value, r: &Value, first_epoch: Option<i64>) {
    let idx = &st["index"];
    let client_us = match (i(&st["start_epoch_us"]), i(&st["end_epoch_us"])) {
        (Some(s), Some(e)) => {
            if let (Some(first), Some(rel)) = (first_epoch, i(&r["time_rel_us"])) {
                let at = first + rel;
                f.check(at >= s - SLACK_US && at <= e + SLACK_US, || {
                    format!(
                        "statement #{idx}: request time {at} us (epoch) is outside the client's \
                         [{s}, {e}]: {}",
                        describe(r)
                    )
                });
            }
            Some(e - s)
        }
        _ => i(&st["client_us"]),
    };
    if let Some(c) = client_us {
        for key in ["latency_us", "exchange_us"] {
            f.check(
                i(&r[key]).is_some_and(|l| l >= 0 && l <= c + SLACK_US),
                || {
                    format!(
                        "statement #{idx}: {key} {} exceeds the {c} us the client measured: {}",
                        r[key],
                        describe(r)
                    )
                },
            );
        }
    }
}

fn check_transactions(
    f: &mut Findings,
    run: &Run,
    matched: &[Option<&Value>],
    report: &Value,
    sid: &Value,
) {
    let truth = &run.truth;
    let statements = truth["statements"].as_array().expect("statements");
    let txns: Vec<&Value> = report["transactions"]
        .as_array()
        .map(|a| a.iter().filter(|t| t["stream"] == *sid).collect())
        .unwrap_or_default();
    for gt in truth["transactions"].as_array().expect("transactions") {
        let name = gt["name"].as_str().unwrap_or("?");
        let idx: Vec<usize> = gt["statements"]
            .as_array()
            .expect("indices")
            .iter()
            .map(|v| v.as_u64().expect("index") as usize)
            .collect();
        let (Some(&first), Some(&last)) = (idx.first(), idx.last()) else {
            continue;
        };
        let (Some(first_req), Some(last_req)) = (matched[first], matched[last]) else {
            f.items.push(format!(
                "transaction {name}: its first or last statement was not found"
            ));
            continue;
        };
        let Some(t) = txns
            .iter()
            .find(|t| t["first_frame"] == first_req["request_first_frame"])
        else {
            f.items.push(format!(
                "transaction {name} (frames {}..{}) is not in transactions[] (first frames: {:?})",
                first_req["request_first_frame"],
                last_req["response_last_frame"],
                txns.iter()
                    .map(|t| t["first_frame"].clone())
                    .collect::<Vec<_>>()
            ));
            continue;
        };
        let text_only = idx.iter().all(|&k| statements[k]["command"] == "COM_QUERY");
        // Statements executed: queries and prepared executions (a prepare is a round trip but
        // runs nothing).
        let executed: Vec<&str> = idx
            .iter()
            .filter(|&&k| statements[k]["command"] != "COM_STMT_PREPARE")
            .map(|&k| statements[k]["sql"].as_str().expect("sql"))
            .collect();
        let texts: Vec<&str> = t["statements_text"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let n = idx.len() as u64;
        f.check(t["end"] == gt["end"], || {
            format!(
                "transaction {name}: end is {}, the client sent {}",
                t["end"], gt["end"]
            )
        });
        f.check(t["last_frame"] == last_req["response_last_frame"], || {
            format!(
                "transaction {name}: last_frame is {}, its COMMIT's response ends at frame {}",
                t["last_frame"], last_req["response_last_frame"]
            )
        });
        if text_only {
            f.check(texts == executed, || {
                format!("transaction {name}: statements_text is {texts:?}, the client sent {executed:?}")
            });
            f.check(u(&t["statements"]) == Some(n), || {
                format!(
                    "transaction {name}: statements is {}, the client sent {n}",
                    t["statements"]
                )
            });
            f.check(u(&t["round_trips"]) == Some(n), || {
                format!(
                    "transaction {name}: round_trips is {}, the client made {n} (one per statement)",
                    t["round_trips"]
                )
            });
        } else {
            let mut at = 0;
            let in_order =
                executed
                    .iter()
                    .all(|sql| match texts[at..].iter().position(|t| t == sql) {
                        Some(k) => {
                            at += k + 1;
                            true
                        }
                        None => false,
                    });
            f.check(in_order, || {
                format!(
                    "transaction {name}: statements_text {texts:?} lacks, in order, {executed:?}"
                )
            });
            f.check(
                u(&t["statements"]).is_some_and(|s| s >= executed.len() as u64),
                || {
                    format!(
                        "transaction {name}: statements is {}, the client executed {}",
                        t["statements"],
                        executed.len()
                    )
                },
            );
            f.check(u(&t["round_trips"]).is_some_and(|s| s >= n), || {
                format!(
                    "transaction {name}: round_trips is {}, the client made at least {n}",
                    t["round_trips"]
                )
            });
            // The library adds exchanges of its own (COM_STMT_RESET before each execution,
            // COM_PING when a cursor opens): count them as tshark reads the plaintext capture.
            // COM_QUIT, COM_STMT_SEND_LONG_DATA and COM_STMT_CLOSE get no response.
            if !run.compressed {
                let filter = format!(
                    "mysql.command && frame.number >= {} && frame.number <= {}",
                    first_req["request_first_frame"], last_req["frame"]
                );
                let commands = tshark_fields(run, &filter, &["mysql.command"]);
                let exchanges = commands
                    .lines()
                    .flat_map(|l| l.split(','))
                    .filter(|c| !matches!(c.trim(), "" | "1" | "24" | "25"))
                    .count() as u64;
                f.check(u(&t["round_trips"]) == Some(exchanges), || {
                    format!(
                        "transaction {name}: round_trips is {}, tshark sees {exchanges} \
                         request/response exchanges in frames {}..={}",
                        t["round_trips"], first_req["request_first_frame"], last_req["frame"]
                    )
                });
            }
        }
        // Its duration is within what the client measured, and at least the server time of
        // its statements.
        let client = match (
            i(&statements[first]["start_epoch_us"]),
            i(&statements[last]["end_epoch_us"]),
        ) {
            (Some(s), Some(e)) => Some(e - s),
            _ => None,
        };
        let latencies: i64 = idx
            .iter()
            .filter_map(|&k| matched[k])
            .filter_map(|r| i(&r["latency_us"]))
            .sum();
        let duration = i(&t["duration_us"]);
        f.check(duration.is_some_and(|d| d >= latencies), || {
            format!(
                "transaction {name}: duration_us {} is less than its statements' response \
                 times ({latencies} us)",
                t["duration_us"]
            )
        });
        if let Some(c) = client {
            f.check(duration.is_some_and(|d| d <= c + SLACK_US), || {
                format!(
                    "transaction {name}: duration_us {} exceeds the {c} us the client measured",
                    t["duration_us"]
                )
            });
        }
    }
}

/// Over TLS nothing is readable after the greeting: every exchange is a TLS turn, none leaks a
/// statement, and there is at least one turn per statement the client sent. The turns still carry
/// the timing: one of them holds the server's sleep, one the large result.
fn check_tls(f: &mut Findings, truth: &Value, requests: &[&Value], report: &Value, sid: &Value) {
    let statements = truth["statements"].as_array().expect("statements");
    let tls_turns: Vec<&&Value> = requests.iter().filter(|r| r["command"] == "TLS").collect();
    let first_tls = requests.iter().position(|r| r["command"] == "TLS");
    f.check(first_tls.is_some(), || {
        "no TLS turn in a TLS connection".to_string()
    });
    if let Some(k) = first_tls {
        for r in &requests[k..] {
            f.check(r["command"] == "TLS", || {
                format!(
                    "after the TLS handshake every exchange is a TLS turn, but {}",
                    describe(r)
                )
            });
        }
    }
    for r in requests {
        f.check(r["statement"].is_null(), || {
            format!("a statement leaked from a TLS connection: {}", describe(r))
        });
    }
    let report_text = report.to_string();
    for st in statements {
        let sql = st["sql"].as_str().expect("sql");
        f.check(
            !report_text.contains(&serde_json::to_string(sql).expect("json")),
            || {
                format!(
                    "the report contains the TLS-protected statement {:?}",
                    short(sql)
                )
            },
        );
    }
    f.check(tls_turns.len() >= statements.len(), || {
        format!(
            "{} TLS turns for the {} statements the client sent",
            tls_turns.len(),
            statements.len()
        )
    });
    let sleep_us = i(&truth["sleep_us"]).expect("sleep_us");
    f.check(
        tls_turns
            .iter()
            .any(|r| i(&r["latency_us"]).is_some_and(|l| l >= sleep_us)),
        || {
            format!(
                "no TLS turn has a response time of at least the {sleep_us} us the server slept"
            )
        },
    );
    let large = u(&truth["large_rows"]).expect("large_rows") * 1024;
    f.check(
        tls_turns
            .iter()
            .any(|r| u(&r["response_bytes"]).is_some_and(|b| b >= large)),
        || format!("no TLS turn carries the large result (>= {large} bytes)"),
    );
    let txns = report["transactions"]
        .as_array()
        .map(|a| a.iter().filter(|t| t["stream"] == *sid).count())
        .unwrap_or(0);
    f.check(txns == 0, || {
        format!("{txns} transactions reported on a TLS connection, where no statement is visible")
    });
}

// ---------------------------------------------------------------------------------------------

#[test]
fn real_mariadb_clients_are_reported_as_they_ran() {
    let started = Instant::now();
    let dir = pcapgen::temp_path("mysql-real");
    std::fs::create_dir_all(&dir).expect("work dir");
    venv_python(); // fail before starting anything when the client libraries are missing
    let server = MariaDb::start(&dir, PORT);

    let mut runs = Vec::new();
    for mode in [
        "pymysql",
        "pymysql-ed25519",
        "pymysql-tls",
        "connector-prepared",
    ] {
        runs.push(python_workload(mode, &dir));
    }
    runs.push(cli_workload(false, &dir));
    runs.push(cli_workload(true, &dir));
    drop(server);

    let mut failures: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for run in &runs {
        let report = analyze(run, &dir);
        let mut f = check_run(run, &report);
        if !run.tls && !run.compressed {
            check_capture_with_tshark(run, &mut f);
        }
        eprintln!(
            "{}: {} differences ({} requests in the report)",
            f.name,
            f.items.len(),
            report["requests"].as_array().map_or(0, Vec::len)
        );
        if !f.items.is_empty() {
            failures.insert(f.name, f.items);
        }
    }
    eprintln!(
        "real-peer run took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if failures.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let mut msg = format!(
        "wirelag analyze disagrees with the real clients (captures, ground truths and reports kept \
         in {}):\n",
        dir.display()
    );
    for (name, items) in &failures {
        msg.push_str(&format!("\n[{name}] {} differences\n", items.len()));
        for item in items {
            msg.push_str(&format!("  - {item}\n"));
        }
    }
    panic!("{msg}");
}
