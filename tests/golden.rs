//! Golden tests: every fixture's `streams --json` and `frames --json` (and a few `follow`s) must
//! equal the checked-in JSON under tests/golden/. Run with `UPDATE_GOLDEN=1` to rewrite them after
//! an intended change, then review the diff.

mod common;

use std::path::Path;

use common::*;

fn check(name: &str, args: &[&str]) {
    let out = wirelag()
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("run wirelag");
    assert!(
        out.status.success(),
        "wirelag {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let pretty = serde_json::to_string_pretty(&got).unwrap() + "\n";
    let path = repo_root().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &pretty).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    if want != pretty {
        let first_diff = first_difference(&want, &pretty);
        panic!(
            "{name} differs from golden file {}\n{first_diff}",
            path.display()
        );
    }
}

fn fixtures() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo_root().join("fixtures"))
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let n = p.file_name()?.to_str()?.to_string();
            (n.ends_with(".pcap") || n.ends_with(".pcapng")).then_some(n)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn streams_of_every_fixture() {
    for f in fixtures() {
        let rel = format!("fixtures/{f}");
        check(&format!("{f}.streams.json"), &["streams", &rel, "--json"]);
    }
}

#[test]
fn frames_of_every_fixture() {
    for f in fixtures() {
        let rel = format!("fixtures/{f}");
        check(&format!("{f}.frames.json"), &["frames", &rel, "--json"]);
    }
}

#[test]
fn follow_timelines() {
    for (f, stream) in [
        ("mysql.pcap", "0"),
        ("insecure.pcap", "1"),
        ("out-of-order.pcap", "0"),
        ("ssh-dups.pcap", "0"),
    ] {
        let rel = format!("fixtures/{f}");
        check(
            &format!("{f}.follow-{stream}.json"),
            &["follow", &rel, "--stream", stream, "--json"],
        );
    }
}

#[test]
fn every_fixture_is_documented() {
    let readme =
        std::fs::read_to_string(Path::new(&repo_root()).join("fixtures/README.md")).unwrap();
    for f in fixtures() {
        assert!(
            readme.contains(&format!("| {f} |")),
            "fixtures/README.md lacks provenance for {f}"
        );
    }
}

/// fixtures/netem40-*.pcap: the same MySQL workload without and with a real 40 ms netem delay on
/// the server's replies (recorded in the project's VM). The comparison must find the delay once
/// per round trip: 3 for each set-up (SYN-ACK, greeting, login), 5 for the transaction, 1 per
/// single statement.
#[test]
fn amplification_of_a_real_netem_delay() {
    let out = wirelag()
        .args(["analyze", "--json", "--delay", "40", "--baseline"])
        .arg(fixture("netem40-baseline.pcap"))
        .arg(fixture("netem40-delayed.pcap"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = &v["amplification"];
    assert_eq!(a["verdict"]["status"], "visible", "{}", a["verdict"]);
    let expect = [("setup", 3.0), ("transaction", 5.0), ("statement", 1.0)];
    let units = a["units"].as_array().unwrap();
    for (kind, factor) in expect {
        let of_kind: Vec<_> = units.iter().filter(|u| u["kind"] == kind).collect();
        assert!(!of_kind.is_empty(), "no {kind} unit");
        for u in of_kind {
            assert_eq!(u["round_trips"].as_f64(), Some(factor), "{u}");
            let f = u["factor"].as_f64().unwrap();
            assert!((f - factor).abs() <= 0.1 * factor, "{kind} factor {f}: {u}");
        }
    }
    assert_eq!(a["by_kind"]["transaction"]["matched"], 1);
    assert_eq!(a["by_kind"]["statement"]["matched"], 5);
}
