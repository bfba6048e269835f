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

/// The names after "available interfaces: " in a one-line error.
fn listed_interfaces(e: &str) -> Vec<String> {
    let list = e
        .split_once("available interfaces: ")
        .map(|(_, rest)| rest.trim_end())
        .unwrap_or_else(|| panic!("no interface list in {e:?}"));
    let list = list
        .split_once(" (see `wirelag interfaces`)")
        .map_or(list, |(names, _)| names);
    list.split(", ").map(str::to_string).collect()
}

#[test]
fn live_capture_on_an_unknown_interface_lists_the_ones_there_are() {
    let o = run_wirelag(&["live", "-i", "no-such-if0", "-c", "1"]);
    assert_one_line_error(
        &o,
        &[
            "live capture on no-such-if0",
            "no interface named \"no-such-if0\"",
        ],
    );
    let names = listed_interfaces(&stderr(&o));
    assert!(names.iter().any(|n| n == "lo"), "{names:?}");
    // libpcap's pseudo-device is a name live -i takes, so it is listed too.
    assert!(names.iter().any(|n| n == "any"), "{names:?}");
    assert!(o.stdout.is_empty());
}

/// `ip -j addr` (iproute2): the reference for `wirelag interfaces`.
fn ip_addr_json() -> Vec<serde_json::Value> {
    let o = std::process::Command::new("ip")
        .args(["-j", "addr"])
        .output()
        .expect("ip from iproute2 (apt-get install iproute2)");
    assert!(o.status.success(), "ip -j addr failed");
    serde_json::from_slice::<serde_json::Value>(&o.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// (family, address, prefix length) of each element of a JSON array of addresses, with the names
/// the two sides use for the address and prefix fields.
fn addresses(list: &serde_json::Value, address: &str, prefix: &str) -> Vec<(String, String, u64)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["family"].as_str().unwrap().to_string(),
                a[address].as_str().unwrap().to_string(),
                a[prefix].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn interfaces_lists_what_iproute2_lists() {
    let o = run_wirelag(&["interfaces", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["schema"], "wirelag.interfaces/v1");
    let ours = doc["interfaces"].as_array().unwrap();
    let reference = ip_addr_json();
    assert_eq!(
        ours.len(),
        reference.len(),
        "{ours:?}\nvs ip: {reference:?}"
    );
    for want in &reference {
        let name = want["ifname"].as_str().unwrap();
        let got = ours
            .iter()
            .find(|i| i["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing from {ours:?}"));
        let flags: Vec<&str> = want["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert_eq!(got["index"], want["ifindex"], "{name}");
        assert_eq!(got["mtu"], want["mtu"], "{name}");
        assert_eq!(got["up"], flags.contains(&"UP"), "{name} {flags:?}");
        assert_eq!(got["loopback"], flags.contains(&"LOOPBACK"), "{name}");
        assert_eq!(got["broadcast"], flags.contains(&"BROADCAST"), "{name}");
        assert_eq!(got["multicast"], flags.contains(&"MULTICAST"), "{name}");
        if matches!(want["link_type"].as_str(), Some("ether" | "loopback")) {
            assert_eq!(got["mac"], want["address"], "{name}");
        }
        let mut want_addrs = addresses(&want["addr_info"], "local", "prefixlen");
        let mut got_addrs = addresses(&got["addresses"], "address", "prefix_len");
        want_addrs.sort();
        got_addrs.sort();
        assert_eq!(got_addrs, want_addrs, "{name}");
    }
    let lo = ours.iter().find(|i| i["name"] == "lo").expect("lo listed");
    assert_eq!(lo["loopback"], true);
    assert!(lo["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["address"] == "127.0.0.1" && a["prefix_len"] == 8));

    // The table: lo's row has its index, the loopback flag and 127.0.0.1 with its prefix.
    let o = run_wirelag(&["interfaces"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.starts_with("INDEX  NAME"), "{text}");
    let lo_index = lo["index"].to_string();
    let mut rows = text.lines().skip_while(|l| {
        let mut cells = l.split_whitespace();
        !(cells.next() == Some(lo_index.as_str()) && cells.next() == Some("lo"))
    });
    let row = rows
        .next()
        .unwrap_or_else(|| panic!("no row for lo in\n{text}"));
    assert!(row.contains("LOOPBACK"), "{row}");
    let lo_block: Vec<&str> = std::iter::once(row)
        .chain(rows.take_while(|l| l.starts_with(' ')))
        .collect();
    assert!(
        lo_block
            .iter()
            .any(|l| l.trim_end().ends_with("127.0.0.1/8")),
        "{lo_block:?}"
    );
}

#[test]
fn completions_name_every_subcommand() {
    let o = run_wirelag(&["completions", "bash"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let script = String::from_utf8(o.stdout).unwrap();
    assert!(
        script.contains("complete -F _wirelag"),
        "not a bash completion script"
    );
    for sub in [
        "frames",
        "streams",
        "follow",
        "analyze",
        "interfaces",
        "live",
        "inject",
        "experiment",
        "completions",
        "man",
    ] {
        assert!(script.contains(sub), "bash completion lacks {sub}");
    }
    // bash accepts it.
    let check = std::process::Command::new("bash")
        .args(["-n", "-c", &script])
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", stderr(&check));
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let o = run_wirelag(&["completions", shell]);
        assert!(o.status.success() && !o.stdout.is_empty(), "{shell}");
    }
    assert_eq!(run_wirelag(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn the_man_page_is_roff_listing_the_subcommands() {
    let o = run_wirelag(&["man"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let page = String::from_utf8(o.stdout).unwrap();
    assert!(page.contains(".TH wirelag 1"), "{page}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    for sub in [
        "frames",
        "analyze",
        "interfaces",
        "experiment",
        "completions",
    ] {
        assert!(
            page.contains(&format!("wirelag\\-{sub}(1)")),
            "man page lacks {sub}"
        );
    }
    // Rendered by man-db (scripts/test.sh installs it; a missing `man` fails here).
    let path = temp_path("wirelag.1");
    std::fs::write(&path, &page).unwrap();
    let o = std::process::Command::new("man")
        .arg("-l")
        .arg(&path)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .expect("man from man-db is required for this test (apt-get install man-db)");
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("SUBCOMMANDS") && text.contains("wirelag-analyze(1)"),
        "{text}"
    );
    assert!(!text.contains(".TH"), "not rendered: {text}");

    let dir = temp_path("man-pages");
    let o = run_wirelag(&["man", "--out", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listed = String::from_utf8(o.stdout).unwrap();
    for name in ["wirelag.1", "wirelag-analyze.1", "wirelag-inject-clear.1"] {
        let path = dir.join(name);
        assert!(
            listed.lines().any(|l| l == path.to_str().unwrap()),
            "{listed}"
        );
        assert!(std::fs::read_to_string(&path).unwrap().contains(".TH"));
    }
}

/// A capture of `n` small segments on one connection: large enough for the progress meter to
/// look at the source several times.
fn many_segments(n: u32) -> std::path::PathBuf {
    use common::pcapgen::{pcap, Seg, ACK, PSH};
    let c = ("10.0.0.1".parse().unwrap(), 40000);
    let s = ("10.0.0.2".parse().unwrap(), 3306);
    let segs: Vec<Seg> = (0..n)
        .map(|i| Seg {
            src: if i % 2 == 0 { c } else { s },
            dst: if i % 2 == 0 { s } else { c },
            seq: 1000 + (i / 2) * 4,
            ack: 5000 + (i / 2) * 4,
            flags: ACK | PSH,
            payload: b"ping".to_vec(),
            t_us: u64::from(i) * 10,
        })
        .collect();
    let path = temp_path("many-segments.pcap");
    std::fs::write(&path, pcap(&segs)).unwrap();
    path
}

#[test]
fn the_progress_bar_shows_on_a_terminal_only() {
    let f = many_segments(40_000);
    let f = f.to_str().unwrap();
    // stderr is no terminal here: nothing but the output, even with the bar due at once.
    for args in [
        vec!["streams", f],
        vec!["frames", f],
        vec!["follow", f, "--stream", "0"],
        vec!["analyze", f],
        vec!["analyze", f, "--json"],
    ] {
        let o = wirelag()
            .args(&args)
            .env("WIRELAG_PROGRESS_AFTER_MS", "0")
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(
            o.stderr.is_empty(),
            "{args:?} wrote to stderr: {}",
            stderr(&o)
        );
    }
    let plain = run_wirelag(&["streams", f]).stdout;

    // Under a pseudo-terminal (script from util-linux) the bar is drawn on stderr and cleared;
    // stdout, redirected to a file, is the same as without a terminal.
    let out = temp_path("progress-stdout.txt");
    let under_tty = |extra: &str| {
        let cmd = format!(
            "{} streams {f}{extra} > {}",
            env!("CARGO_BIN_EXE_wirelag"),
            out.display()
        );
        let o = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env("WIRELAG_PROGRESS_AFTER_MS", "0")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("script from util-linux");
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let tty = under_tty("");
    assert!(tty.contains("wirelag: reading "), "{tty:?}");
    assert!(tty.contains("\x1b[2K"), "bar not cleared: {tty:?}");
    assert_eq!(std::fs::read(&out).unwrap(), plain);
    // --no-progress: nothing on the terminal.
    let quiet = under_tty(" --no-progress");
    assert!(!quiet.contains("wirelag: reading"), "{quiet:?}");
    assert_eq!(std::fs::read(&out).unwrap(), plain);
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
        (
            &[
                "--backend",
                "proxy",
                "--dev",
                "nosuchif0",
                "--listen",
                "127.0.0.1:13306",
                "--upstream",
                "127.0.0.1:3306",
                "--time",
                "20",
                "--port",
                "13306",
                "--",
                "true",
            ],
            "no interface named \"nosuchif0\"; available interfaces: lo",
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

/// Regression (issue 9, small mends): the `--requests` table's stream, frame and response-frame
/// columns are right-aligned under their headers (serde_json values ignored the width before).
#[test]
fn the_requests_table_is_aligned_under_its_header() {
    let o = run_wirelag(&[
        "analyze",
        fixture("netem40-delayed.pcap").to_str().unwrap(),
        "--requests",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let mut lines = text.lines().skip_while(|l| *l != "Requests").skip(1);
    let header = lines.next().expect("header line");
    let end_of = |line: &str, word: &str| line.find(word).map(|i| i + word.len());
    let column_ends = [
        end_of(header, "stream").unwrap(),
        end_of(header, "frame").unwrap(),
        end_of(header, "resp").unwrap(),
    ];
    let mut rows = 0;
    for line in lines.take_while(|l| !l.is_empty()) {
        let mut at = 0;
        for (i, want_end) in column_ends.iter().enumerate() {
            let rest = &line[at..];
            let start = at + rest.len() - rest.trim_start().len();
            let end = start + line[start..].find(' ').unwrap();
            assert_eq!(end, *want_end, "column {i} of {line:?} under {header:?}");
            at = end;
        }
        rows += 1;
    }
    assert!(rows >= 10, "only {rows} request rows:\n{text}");
}
