//! The userspace proxy backend end to end with real peers: a throwaway MariaDB
//! (`scripts/mariadb.sh`, 127.0.0.1:3319), PyMySQL transactions (`scripts/txn_workload.py` in the
//! project venv), libpcap capture on `lo`, and `wirelag experiment --backend proxy`, whose report
//! must attribute the injected 20 ms to each round trip and N x 20 ms to each transaction of N
//! round trips (within 10%), with a baseline window that shows none of it.
//!
//! Nothing is skipped: a missing server, venv or capture privilege fails with what to install
//! (`scripts/test.sh` sets all of it up).

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::peers::*;
use common::*;
use serde_json::Value;

const DB_PORT: u16 = 3319;

/// The tests of this file run one at a time: a second MariaDB starting on a 2-core machine would
/// add its own milliseconds to the round trips being measured.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}
const DELAY_MS: u64 = 20;

fn workdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wirelag-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create the test directory");
    d
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local address").port()
}

fn venv_python() -> PathBuf {
    let py = repo_root().join("scripts/.venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run scripts/test.sh, which creates the venv with PyMySQL",
        py.display()
    );
    py
}

fn within(actual: f64, expected: f64, tolerance: f64) -> bool {
    (actual - expected).abs() <= tolerance * expected
}

fn analyze_json(args: &[&str], dir: &Path, name: &str) -> Value {
    let mut cmd = wirelag();
    cmd.args(["analyze", "--json"]).args(args);
    let out = run_bounded(cmd, name, dir, Duration::from_secs(60));
    assert!(out.status.success(), "analyze {args:?}: {}", out.stderr);
    serde_json::from_str(&out.stdout).expect("analyze --json output is JSON")
}

#[test]
fn experiment_through_the_proxy_attributes_the_delay_to_every_round_trip() {
    let _serial = serial();
    let dir = workdir("inject-proxy");
    let _db = MariaDb::start(&dir, DB_PORT);
    let listen = free_port();
    let py = venv_python();
    let report_path = dir.join("report.json");
    let captures = dir.join("captures");
    let mut setup = Command::new(&py);
    setup
        .arg(repo_root().join("scripts/txn_workload.py"))
        .args([&DB_PORT.to_string(), "setup"]);
    let out = run_bounded(setup, "workload-setup", &dir, Duration::from_secs(60));
    assert!(out.status.success(), "workload setup: {}", out.stderr);
    // One uncaptured pass straight to the server: the first run of a statement opens tables and
    // warms caches, which would otherwise make the baseline's first transaction an outlier.
    let mut warm = Command::new(&py);
    warm.arg(repo_root().join("scripts/txn_workload.py"))
        .arg(DB_PORT.to_string());
    let out = run_bounded(warm, "workload-warm-up", &dir, Duration::from_secs(60));
    assert!(out.status.success(), "workload warm-up: {}", out.stderr);

    let mut cmd = wirelag();
    cmd.args([
        "experiment",
        "--backend",
        "proxy",
        "--dev",
        "lo",
        "--listen",
        &format!("127.0.0.1:{listen}"),
        "--upstream",
        &format!("127.0.0.1:{DB_PORT}"),
        "--direction",
        "to-client",
        "--time",
        &DELAY_MS.to_string(),
        "--port",
        &listen.to_string(),
        "--json",
        "-o",
    ])
    .arg(&report_path)
    .arg("--keep-captures")
    .arg(&captures)
    .arg("--")
    .arg(&py)
    .arg(repo_root().join("scripts/txn_workload.py"))
    .arg(listen.to_string());
    let out = run_bounded(cmd, "experiment", &dir, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "wirelag experiment failed (needs CAP_NET_RAW for the capture on lo; kept in {}):\n{}",
        dir.display(),
        out.stderr
    );
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(&report_path).expect("the report was written"),
    )
    .expect("the report is JSON");
    let amp = &report["amplification"];
    let delay_us = (DELAY_MS * 1000) as f64;

    // The experiment's own record.
    assert_eq!(report["experiment"]["backend"], "proxy");
    assert_eq!(report["experiment"]["directions_per_round_trip"], 1);
    assert_eq!(amp["injected_delay_us"], DELAY_MS * 1000);
    assert_eq!(amp["delay_source"], "recorded");
    assert_eq!(amp["basis"], "baseline");
    assert!(
        amp["assumption"].as_str().unwrap().contains("proxy"),
        "{}",
        amp["assumption"]
    );

    // The verdict: the delay is visible, about one delay per round trip.
    let v = &amp["verdict"];
    assert_eq!(v["status"], "visible", "verdict: {v}");
    assert_eq!(v["delay_visible"], true);
    let observed = v["observed_per_round_trip_us"].as_f64().unwrap();
    assert!(
        within(observed, delay_us, 0.10),
        "observed {observed} µs per round trip"
    );

    // Each transaction: 5 statements, 5 round trips, 5 x 20 ms added. The typical (median)
    // transaction is within 10%; each one pays at least 90% of it (the delay is a floor) and at
    // most 30% more (server time on a shared 2-core machine wanders by a few ms).
    let units = amp["units"].as_array().unwrap();
    let txns: Vec<&Value> = units
        .iter()
        .filter(|u| u["kind"] == "transaction")
        .collect();
    assert_eq!(txns.len(), 3, "transactions: {txns:?}");
    let mut txn_added = Vec::new();
    let mut txn_per_rt = Vec::new();
    for t in &txns {
        assert_eq!(t["statements"], 5, "{t}");
        assert_eq!(t["round_trips"], 5, "{t}");
        let added = t["added_us"].as_f64().expect("matched to the baseline");
        assert!(
            (0.9 * 5.0 * delay_us..=1.3 * 5.0 * delay_us).contains(&added),
            "transaction added {added} µs: {t}"
        );
        txn_added.push(added);
        txn_per_rt.push(t["added_per_round_trip_us"].as_f64().unwrap());
        let factor = t["factor"].as_f64().unwrap();
        assert!((4.5..=6.5).contains(&factor), "factor {factor}: {t}");
        assert!(
            t["baseline_duration_us"].as_f64().unwrap() < delay_us,
            "the baseline transaction already took a delay's worth: {t}"
        );
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let m = median(&mut txn_added);
    assert!(
        within(m, 5.0 * delay_us, 0.10),
        "median transaction added {m} µs: {txn_added:?}"
    );
    let m = median(&mut txn_per_rt);
    assert!(
        within(m, delay_us, 0.10),
        "median transaction added {m} µs per round trip: {txn_per_rt:?}"
    );
    // Each single statement: one round trip, one delay.
    let singles: Vec<&Value> = units.iter().filter(|u| u["kind"] == "statement").collect();
    assert_eq!(singles.len(), 3, "3 x SELECT 1: {singles:?}");
    let mut single_added = Vec::new();
    for s in &singles {
        let added = s["added_us"].as_f64().expect("matched to the baseline");
        assert!(
            (0.9 * delay_us..=1.3 * delay_us).contains(&added),
            "statement added {added} µs: {s}"
        );
        single_added.push(added);
    }
    let m = median(&mut single_added);
    assert!(
        within(m, delay_us, 0.10),
        "median statement added {m} µs: {single_added:?}"
    );

    // Every request in the delayed window waited at least the delay; none in the baseline did.
    let delayed = report["requests"].as_array().unwrap();
    assert!(delayed.len() >= 20, "{} requests", delayed.len());
    for r in delayed {
        if let Some(l) = r["latency_us"].as_f64() {
            assert!(l >= delay_us, "delayed request faster than the delay: {r}");
        }
    }
    let base = analyze_json(
        &[captures.join("baseline.pcap").to_str().unwrap()],
        &dir,
        "analyze-baseline",
    );
    let base_requests = base["requests"].as_array().unwrap();
    assert_eq!(base_requests.len(), delayed.len(), "same workload twice");
    for r in base_requests {
        if let Some(l) = r["latency_us"].as_f64() {
            assert!(l < delay_us / 2.0, "baseline request shows a delay: {r}");
        }
    }

    // The same comparison from the two kept captures.
    let again = analyze_json(
        &[
            captures.join("delayed.pcap").to_str().unwrap(),
            "--baseline",
            captures.join("baseline.pcap").to_str().unwrap(),
            "--delay",
            &DELAY_MS.to_string(),
        ],
        &dir,
        "analyze-again",
    );
    assert_eq!(again["amplification"]["delay_source"], "given");
    assert_eq!(again["amplification"]["verdict"]["status"], "visible");
    assert_eq!(
        again["amplification"]["by_kind"]["transaction"]["matched"],
        3
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Reads the server greeting's first byte through the proxy and returns how long it took.
fn time_to_greeting(addr: &str) -> Duration {
    let deadline = Instant::now() + Duration::from_secs(10);
    let started = Instant::now();
    let mut s = loop {
        match TcpStream::connect(addr) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("cannot connect to the proxy at {addr}: {e}"),
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).expect("the greeting arrives");
    started.elapsed()
}

/// `wirelag inject delay --backend proxy` from `addr` to the MariaDB on `db_port`, plus `extra`.
fn proxy_in_foreground(addr: &str, db_port: u16, extra: &[&str]) -> std::process::Child {
    let upstream = format!("127.0.0.1:{db_port}");
    wirelag()
        .args(["inject", "delay", "--backend", "proxy", "--listen", addr])
        .args(["--upstream", &upstream])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wirelag inject delay --backend proxy")
}

/// Waits for `child` to exit; kills it (by its own PID) and fails with `what` past `within`.
fn wait_exit(child: &mut std::process::Child, within: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn inject_delay_proxy_runs_in_the_foreground_and_stops_cleanly() {
    let _serial = serial();
    let dir = workdir("inject-proxy-fg");
    let _db = MariaDb::start(&dir, DB_PORT + 1);
    let listen = free_port();
    let addr = format!("127.0.0.1:{listen}");

    // --duration: stops by itself.
    let started = Instant::now();
    let mut child = proxy_in_foreground(&addr, DB_PORT + 1, &["--time", "30", "--duration", "2"]);
    // Both directions are delayed by default: the greeting pays the delay once.
    let t = time_to_greeting(&addr);
    assert!(t >= Duration::from_millis(30), "greeting after {t:?}");
    let status = wait_exit(
        &mut child,
        Duration::from_secs(10),
        "the proxy did not stop at its deadline",
    );
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(status.success(), "{stdout}");
    assert!(stdout.contains("proxy stopped"), "{stdout}");
    assert!(started.elapsed() >= Duration::from_secs(2));

    // SIGTERM: stops cleanly too (the PID is the child's own).
    let mut child = proxy_in_foreground(
        &addr,
        DB_PORT + 1,
        &["--time", "60", "--direction", "to-server"],
    );
    let t = time_to_greeting(&addr);
    assert!(
        t < Duration::from_millis(45),
        "only requests are delayed, yet the greeting took {t:?}"
    );
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = wait_exit(
        &mut child,
        Duration::from_secs(5),
        "the proxy ignored SIGTERM",
    );
    assert!(status.success());
    let _ = std::fs::remove_dir_all(&dir);
}
