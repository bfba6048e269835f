//! The command line as a user meets it: error paths (one clear line, exit code 2), truncated
//! captures (output for the packets before the cut, then the error), help text.

mod common;

use common::pcapgen::temp_path;
use common::*;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_one_line_error(o: &std::process::Output, needles: &[&str]) {
    assert_eq!(o.status.code(), Some(2), "exit code; stderr: {}", stderr(o));
    let e = stderr(o);
    assert_eq!(
        e.trim_end().lines().count(),
        1,
        "error must be one line: {e:?}"
    );
    assert!(e.starts_with("wirelag: "), "{e:?}");
    for n in needles {
        assert!(e.contains(n), "stderr {e:?} lacks {n:?}");
    }
}

#[test]
fn missing_file_is_a_clear_error() {
    let o = run_wirelag(&["streams", "/nonexistent/x.pcap"]);
    assert_one_line_error(&o, &["cannot open /nonexistent/x.pcap", "No such file"]);
}

#[test]
fn a_file_that_is_not_a_capture_is_a_clear_error() {
    let p = temp_path("notes.txt");
    std::fs::write(&p, "hello, this is text\n").unwrap();
    let o = run_wirelag(&["frames", p.to_str().unwrap()]);
    assert_one_line_error(&o, &["not a pcap or pcapng capture", "byte offset 0"]);
    let empty = temp_path("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    assert_one_line_error(
        &run_wirelag(&["frames", empty.to_str().unwrap()]),
        &["not a pcap or pcapng capture"],
    );
}

#[test]
fn an_unsupported_link_type_is_a_clear_error() {
    let mut bytes = std::fs::read(fixture("syn-retrans.pcap")).unwrap();
    bytes[20..24].copy_from_slice(&105u32.to_le_bytes()); // IEEE 802.11
    let p = temp_path("wifi.pcap");
    std::fs::write(&p, bytes).unwrap();
    assert_one_line_error(
        &run_wirelag(&["streams", p.to_str().unwrap()]),
        &["unsupported link type 105", "802.11", "offset 20"],
    );
}

#[test]
fn a_truncated_capture_reports_the_cut_and_analyses_what_came_before() {
    let full = std::fs::read(fixture("mysql.pcap")).unwrap();
    let p = temp_path("cut.pcap");
    std::fs::write(&p, &full[..full.len() - 10]).unwrap();
    let o = run_wirelag(&["streams", p.to_str().unwrap(), "--json"]);
    assert_one_line_error(
        &o,
        &[
            "truncated",
            "byte offset",
            "56 packets before the cut were analysed",
        ],
    );
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON still written");
    assert_eq!(doc["capture"]["packets"], 56);
    assert!(doc["capture"]["truncated"]["offset"].as_u64().unwrap() > 24);
    assert_eq!(doc["streams"].as_array().unwrap().len(), 1);
}

#[test]
fn the_streamed_report_is_the_same_on_stdout_in_a_pipe_and_with_o() {
    // The request list is written into the output while the capture is read; the report must
    // come out the same whichever output it is, and a capture that cannot be read must leave no
    // half report behind.
    let f = fixture("mysql-statement.pcap");
    let f = f.to_str().unwrap();
    let to_file = temp_path("stdout-report.json");
    let o = wirelag()
        .args(["analyze", f, "--json"])
        .stdout(std::fs::File::create(&to_file).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let redirected = std::fs::read(&to_file).unwrap();
    let piped = run_wirelag(&["analyze", f, "--json"]);
    assert!(piped.status.success(), "{}", stderr(&piped));
    let report = temp_path("o-report.json");
    let o = run_wirelag(&["analyze", f, "--json", "-o", report.to_str().unwrap()]);
    assert!(o.status.success() && o.stdout.is_empty(), "{}", stderr(&o));
    let written = std::fs::read(&report).unwrap();
    assert_eq!(redirected, piped.stdout);
    assert_eq!(written, piped.stdout);
    let doc: serde_json::Value = serde_json::from_slice(&written).unwrap();
    let requests = doc["requests"].as_array().unwrap();
    assert!(!requests.is_empty());
    assert!(doc["capture"]["packets"].as_u64().unwrap() > 0);
    assert!(
        written.starts_with(b"{\"schema\":\"wirelag.report/v1\",\"requests\":[{"),
        "requests come first"
    );

    let junk = temp_path("junk.pcap");
    std::fs::write(&junk, b"not a capture at all").unwrap();
    let never = temp_path("never.json");
    let o = run_wirelag(&["analyze", junk.to_str().unwrap(), "--json"]);
    assert_one_line_error(&o, &["not a pcap or pcapng capture"]);
    assert!(
        o.stdout.is_empty(),
        "nothing written for an unreadable capture"
    );
    let o = run_wirelag(&[
        "analyze",
        junk.to_str().unwrap(),
        "--json",
        "-o",
        never.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!never.exists(), "no report file for an unreadable capture");
}

#[test]
fn a_bad_display_filter_names_the_position() {
    let f = fixture("mysql.pcap");
    let o = run_wirelag(&["frames", f.to_str().unwrap(), "-Y", "tcp.port == 3306 &&"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("column"), "{}", stderr(&o));
    let o = run_wirelag(&["frames", f.to_str().unwrap(), "-Y", "tcp.sream eq 0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("tcp.sream"), "{}", stderr(&o));
    assert!(
        o.stdout.is_empty(),
        "no frames printed for an invalid filter"
    );
}

#[test]
fn following_a_stream_that_does_not_exist_is_an_error() {
    let f = fixture("mysql.pcap");
    assert_one_line_error(
        &run_wirelag(&["follow", f.to_str().unwrap(), "--stream", "7"]),
        &["no tcp.stream 7", "1 TCP stream"],
    );
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let f = fixture("insecure.pcap");
    let mut child = wirelag()
        .args(["frames", f.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn help_lists_the_commands() {
    let o = run_wirelag(&["--help"]);
    assert!(o.status.success());
    let h = String::from_utf8_lossy(&o.stdout);
    for cmd in ["frames", "streams", "follow", "live"] {
        assert!(h.contains(cmd), "--help lacks {cmd}:\n{h}");
    }
    let o = run_wirelag(&["frames", "--help"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("--display-filter"));
}

#[test]
fn live_capture_without_the_interface_is_a_clear_error() {
    let o = run_wirelag(&["live", "-i", "no-such-iface0", "-c", "1"]);
    assert_ne!(o.status.code(), Some(0));
    let e = stderr(&o);
    assert!(e.contains("no-such-iface0"), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{e:?}");
}

#[test]
fn whitespace_separated_sets_mean_the_same_as_comma_separated() {
    // DESIGN.md writes `tcp.port in {3306 27017}` (Wireshark 3.x syntax); tshark 4.0 only accepts
    // commas. wirelag takes both, with the same meaning.
    let f = fixture("insecure.pcap");
    let a = run_wirelag(&[
        "frames",
        f.to_str().unwrap(),
        "-Y",
        "tcp.port in {3306 27017}",
        "--json",
    ]);
    let b = run_wirelag(&[
        "frames",
        f.to_str().unwrap(),
        "-Y",
        "tcp.port in {3306, 27017}",
        "--json",
    ]);
    assert!(a.status.success() && b.status.success());
    let frames = |o: &std::process::Output| -> Vec<u64> {
        let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        d["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["frame"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(frames(&a), frames(&b));
    assert!(frames(&a).len() > 100);
}

#[test]
fn experiment_refuses_what_cannot_work_before_its_first_window() {
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--backend",
                "proxy",
                "--listen",
                "127.0.0.1:13306",
                "--upstream",
                "127.0.0.1:3306",
                "--time",
                "20",
                "--port",
                "3306",
                "--",
                "true",
            ],
            "--port 3306 must be the proxy's --listen port (13306)",
        ),
        (
            &[
                "--dev",
                "lo",
                "--remote-port",
                "80",
                "--time",
                "40",
                "--port",
                "3306",
            ],
            "the rule never delays traffic of port 3306",
        ),
        (
            &[
                "--dev", "lo", "--time", "40", "--port", "3306", "--window", "0",
            ],
            "--window 0: expected seconds",
        ),
        (
            &["--dev", "lo", "--time", "40", "--port", "3306", "--dry-run"],
            "experiment does not take --dry-run",
        ),
        (
            &[
                "--dev",
                "lo",
                "--time",
                "40",
                "--port",
                "3306",
                "--duration",
                "5",
            ],
            "experiment does not take --duration",
        ),
        (
            &["--dev", "nosuchif0", "--time", "40", "--port", "3306"],
            "no interface named nosuchif0",
        ),
    ];
    for (args, needle) in cases {
        let mut argv = vec!["experiment"];
        argv.extend_from_slice(args);
        assert_one_line_error(&run_wirelag(&argv), &[needle]);
    }
}

#[test]
fn analyze_delay_and_baseline_errors_are_clear() {
    let f = fixture("mysql.pcap");
    let f = f.to_str().unwrap();
    let o = run_wirelag(&["analyze", f, "--delay", "0"]);
    assert_one_line_error(&o, &["--delay 0: expected milliseconds"]);
    let o = run_wirelag(&["analyze", f, "--baseline", "/nonexistent/b.pcap"]);
    assert_one_line_error(&o, &["baseline /nonexistent/b.pcap", "cannot open"]);
}

#[test]
fn analyze_against_itself_as_baseline_finds_no_delay() {
    let f = fixture("insecure.pcap");
    let f = f.to_str().unwrap();
    let o = run_wirelag(&["analyze", "--json", f, "--baseline", f]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let a = &v["amplification"];
    assert_eq!(a["basis"], "baseline");
    assert_eq!(a["verdict"]["status"], "not_visible");
    assert_eq!(a["verdict"]["delay_visible"], false);
    let units = a["units"].as_array().unwrap();
    assert!(!units.is_empty());
    for u in units {
        assert_eq!(u["added_us"], 0, "{u}");
        assert_eq!(u["baseline_duration_us"], u["duration_us"], "{u}");
    }
    // With a delay given as well, the same capture cannot have paid it.
    let o = run_wirelag(&["analyze", "--json", f, "--baseline", f, "--delay", "20"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["amplification"]["verdict"]["status"], "not_visible");
    assert_eq!(v["amplification"]["delay_source"], "given");
}
