//! The MySQL reading pinned before the analysis core is redesigned (issue 9): `analyze --json` of
//! every corpus capture and every fixture, reduced to what the redesign must keep — each request,
//! transaction and amplification unit, and the capture's packet and stream counts — must equal the
//! files under tests/golden/analyze/. One line per row (`request {...}`, `transaction {...}`,
//! `unit {...}`), so that a diff names the rows that moved. Run with `UPDATE_GOLDEN=1` to rewrite
//! them after an intended change, review the diff, and say why in the commit.

mod common;

use std::path::PathBuf;

use common::*;

/// Every capture the golden files cover, as (name under tests/golden/analyze, path).
fn captures() -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = corpus_captures()
        .into_iter()
        .map(|(rel, p)| (format!("corpus/{rel}"), p))
        .collect();
    let mut fixtures: Vec<(String, PathBuf)> = std::fs::read_dir(repo_root().join("fixtures"))
        .expect("fixtures/")
        .filter_map(|e| {
            let p = e.ok()?.path();
            let n = p.file_name()?.to_str()?.to_string();
            (n.ends_with(".pcap") || n.ends_with(".pcapng")).then(|| (format!("fixtures/{n}"), p))
        })
        .collect();
    fixtures.sort();
    out.extend(fixtures);
    out
}

/// The reduced reading of one capture, one row per line.
fn reading(path: &std::path::Path) -> String {
    let out = run_wirelag(&["analyze", path.to_str().expect("utf-8 path"), "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: no JSON report ({e}); stderr: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let capture = &report["capture"];
    let mut text = format!(
        "capture {}\n",
        serde_json::json!({
            "packets": capture["packets"],
            "streams": capture["streams"],
            "exit_ok": out.status.success(),
        })
    );
    let rows = |key: &str| report[key].as_array().cloned().unwrap_or_default();
    for (label, list) in [
        ("request", rows("requests")),
        ("transaction", rows("transactions")),
        (
            "unit",
            report["amplification"]["units"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        ),
    ] {
        for row in list {
            text.push_str(label);
            text.push(' ');
            text.push_str(&serde_json::to_string(&row).expect("JSON row"));
            text.push('\n');
        }
    }
    text
}

#[test]
fn analyze_reads_every_capture_as_recorded() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let dir = repo_root().join("tests/golden/analyze");
    let all = captures();
    assert!(all.len() >= 109 + 20, "only {} captures", all.len());
    let mut differing = Vec::new();
    let mut rows = 0usize;
    for (name, path) in &all {
        let got = reading(path);
        rows += got.lines().count();
        let file = dir.join(format!("{name}.txt"));
        if update {
            std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
            std::fs::write(&file, &got).expect("write golden");
            continue;
        }
        let want = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 creates it)", file.display()));
        if want != got {
            let first = first_difference(&want, &got);
            differing.push(format!("{name}: {first}"));
        }
    }
    // Every golden file belongs to a capture that still exists.
    if !update {
        let mut stale = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("golden dir") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let rel = p.strip_prefix(&dir).expect("prefix").to_string_lossy();
                let name = rel.trim_end_matches(".txt");
                if !all.iter().any(|(n, _)| n == name) {
                    stale.push(rel.into_owned());
                }
            }
        }
        assert!(
            stale.is_empty(),
            "golden files without a capture: {stale:?}"
        );
    }
    eprintln!("{} captures, {rows} rows", all.len());
    assert!(
        differing.is_empty(),
        "{} captures read differently from tests/golden/analyze:\n{}",
        differing.len(),
        differing.join("\n")
    );
}
