//! `wirelag inject delay --dry-run` golden outputs for chaosblade's `network delay` cases, and
//! the error paths that can run on any host. Run with `UPDATE_GOLDEN=1` to rewrite the golden
//! files under tests/golden/inject/ after an intended change, then review the diff by eye
//! against what chaosblade would run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn wirelag(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wirelag"))
        .args(args)
        .output()
        .expect("run wirelag")
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/inject")
}

fn check_dry_run(name: &str, extra: &[&str]) {
    let mut args = vec!["inject", "delay", "--dev", "eth0", "--time", "200"];
    args.extend_from_slice(extra);
    args.push("--dry-run");
    let out = wirelag(&args);
    assert!(
        out.status.success(),
        "wirelag {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = String::from_utf8(out.stdout).expect("UTF-8 output");
    let path = golden_dir().join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert_eq!(
        want,
        got,
        "`wirelag {}` differs from {}",
        args.join(" "),
        path.display()
    );
}

#[test]
fn interface_only() {
    check_dry_run("interface-only", &[]);
}

#[test]
fn remote_port() {
    check_dry_run("remote-port-27017", &["--remote-port", "27017"]);
}

#[test]
fn local_port() {
    check_dry_run("local-port-3306", &["--local-port", "3306"]);
}

#[test]
fn destination_ip_with_port() {
    check_dry_run(
        "destination-ip-with-port",
        &["--destination-ip", "10.0.0.5/32", "--remote-port", "3306"],
    );
}

#[test]
fn destination_ip_list_with_port_list() {
    check_dry_run(
        "destination-ips-with-ports",
        &[
            "--destination-ip",
            "10.0.0.5,192.168.1.0/24",
            "--remote-port",
            "3306,27017",
        ],
    );
}

#[test]
fn exclude_port_alone() {
    check_dry_run("exclude-port-22", &["--exclude-port", "22"]);
}

#[test]
fn exclude_ip_alone() {
    check_dry_run("exclude-ip", &["--exclude-ip", "10.0.0.1,2001:db8::1"]);
}

#[test]
fn exclude_port_with_target() {
    check_dry_run(
        "exclude-port-with-remote-port",
        &["--exclude-port", "22", "--remote-port", "3306"],
    );
}

#[test]
fn aligned_port_range() {
    check_dry_run("remote-port-range-aligned", &["--remote-port", "8000-8015"]);
}

#[test]
fn unaligned_port_range() {
    check_dry_run(
        "remote-port-range-unaligned",
        &["--remote-port", "3300-3310"],
    );
}

#[test]
fn ipv6_destination_with_port() {
    check_dry_run(
        "ipv6-destination-with-port",
        &["--destination-ip", "2001:db8::/64", "--remote-port", "3306"],
    );
}

#[test]
fn protocol_only() {
    check_dry_run("protocol-udp", &["--protocol", "udp"]);
}

#[test]
fn local_port_with_protocol() {
    check_dry_run(
        "local-port-with-protocol",
        &["--local-port", "3306", "--protocol", "tcp"],
    );
}

#[test]
fn netem_options() {
    check_dry_run(
        "offset-loss-limit",
        &[
            "--offset",
            "10",
            "--loss",
            "1.5",
            "--limit",
            "5000",
            "--duration",
            "60",
        ],
    );
}

#[test]
fn netem_options_on_target_band() {
    check_dry_run(
        "offset-loss-limit-with-port",
        &[
            "--remote-port",
            "27017",
            "--offset",
            "10",
            "--loss",
            "1",
            "--limit",
            "100",
        ],
    );
}

/// Runs wirelag, expects exit code `code` and a stderr containing every one of `needles`.
fn check_error(args: &[&str], code: i32, needles: &[&str]) {
    let out = wirelag(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "wirelag {args:?}: stderr {stderr}"
    );
    assert!(out.stdout.is_empty(), "wirelag {args:?} printed to stdout");
    for n in needles {
        assert!(
            stderr.contains(n),
            "wirelag {args:?}: stderr lacks {n:?}: {stderr}"
        );
    }
}

#[test]
fn bad_port_is_a_usage_error() {
    let base = [
        "inject",
        "delay",
        "--dev",
        "eth0",
        "--time",
        "20",
        "--dry-run",
    ];
    for (flag, value, needle) in [
        ("--remote-port", "70000", "port 70000 is out of range"),
        ("--local-port", "33o6", "\"33o6\" is not a port number"),
        ("--exclude-port", "9000-8000", "ends before it starts"),
        ("--remote-port", ",", "no port given"),
    ] {
        let mut args = base.to_vec();
        args.extend([flag, value]);
        check_error(&args, 2, &[flag, needle]);
    }
}

#[test]
fn bad_cidr_is_a_usage_error() {
    let base = [
        "inject",
        "delay",
        "--dev",
        "eth0",
        "--time",
        "20",
        "--dry-run",
    ];
    for (flag, value, needle) in [
        ("--destination-ip", "10.0.0.0/33", "prefix length"),
        (
            "--destination-ip",
            "10.0.0.256",
            "not an IPv4 or IPv6 address",
        ),
        ("--exclude-ip", "2001:db8::/129", "prefix length"),
    ] {
        let mut args = base.to_vec();
        args.extend([flag, value]);
        check_error(&args, 2, &[flag, needle]);
    }
}

#[test]
fn bad_netem_values_are_usage_errors() {
    check_error(
        &[
            "inject",
            "delay",
            "--dev",
            "eth0",
            "--time",
            "0",
            "--dry-run",
        ],
        2,
        &["--time"],
    );
    check_error(
        &[
            "inject",
            "delay",
            "--dev",
            "eth0",
            "--time",
            "20",
            "--loss",
            "101",
            "--dry-run",
        ],
        2,
        &["--loss"],
    );
    check_error(
        &[
            "inject",
            "delay",
            "--dev",
            "bad/name",
            "--time",
            "20",
            "--dry-run",
        ],
        2,
        &["not a valid interface name"],
    );
}

#[test]
fn unknown_interface_lists_the_real_ones() {
    check_error(
        &["inject", "delay", "--dev", "wlnope0", "--time", "20"],
        2,
        &["no interface named wlnope0 (available: ", "lo"],
    );
}

#[test]
fn proxy_backend_needs_its_addresses_and_refuses_netem_rules() {
    let base = ["inject", "delay", "--time", "20", "--backend", "proxy"];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let args = with(&["--upstream", "127.0.0.1:3306"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    check_error(&args, 2, &["--backend proxy needs --listen ADDR:PORT"]);
    let args = with(&["--listen", "127.0.0.1", "--upstream", "127.0.0.1:3306"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    check_error(&args, 2, &["--listen \"127.0.0.1\": expected ADDR:PORT"]);
    let args = with(&[
        "--listen",
        "127.0.0.1:13306",
        "--upstream",
        "127.0.0.1:3306",
        "--local-port",
        "3306",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    check_error(&args, 2, &["--local-port is a netem rule"]);
}

#[test]
fn proxy_dry_run_prints_the_plan() {
    let out = wirelag(&[
        "inject",
        "delay",
        "--time",
        "20",
        "--offset",
        "2",
        "--backend",
        "proxy",
        "--listen",
        "127.0.0.1:13306",
        "--upstream",
        "127.0.0.1:3306",
        "--direction",
        "to-client",
        "--dry-run",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("# proxy: listen 127.0.0.1:13306 -> upstream 127.0.0.1:3306;"),
        "{text}"
    );
    assert!(text.contains("to server: 0 ms"), "{text}");
    assert!(text.contains("to client: 20 ms ± 2 ms"), "{text}");
}
