//! Helpers shared by the end-to-end tests: locating the binary, the capture corpus and tshark.
//! A test that needs a peer (tshark, the corpus) fails when it is missing; it never skips.
#![allow(dead_code)]

pub mod pcapgen;
pub mod peers;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn wirelag() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wirelag"))
}

pub fn run_wirelag(args: &[&str]) -> Output {
    wirelag().args(args).output().expect("run wirelag")
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    repo_root().join("fixtures").join(name)
}

/// The real-capture corpus shipped with the repository (tests/corpus, see its PROVENANCE.md), or
/// $WIRELAG_CORPUS to run the same tests over another copy. Panics with a clear message when it is
/// absent.
pub fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("WIRELAG_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("tests/corpus"));
    assert!(
        dir.join("pcaps").is_dir(),
        "capture corpus not found at {} (tests/corpus, or set WIRELAG_CORPUS)",
        dir.display()
    );
    dir
}

/// Every capture under corpus/pcaps, sorted, as (relative name, path).
pub fn corpus_captures() -> Vec<(String, PathBuf)> {
    let pcaps = corpus_dir().join("pcaps");
    let mut out = Vec::new();
    for group in std::fs::read_dir(&pcaps).expect("read corpus") {
        let group = group.expect("dir entry").path();
        if !group.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&group).expect("read group") {
            let p = f.expect("entry").path();
            let rel = p
                .strip_prefix(&pcaps)
                .expect("prefix")
                .to_string_lossy()
                .into_owned();
            out.push((rel, p));
        }
    }
    out.sort();
    out
}

/// Runs tshark with the options every comparison uses (no name resolution, sequence analysis
/// on) and returns its output whatever its exit status; panics (test failure) when tshark is
/// missing.
pub fn tshark_output(args: &[&str]) -> Output {
    Command::new("tshark")
        .args(["-n", "-o", "tcp.analyze_sequence_numbers:TRUE"])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("tshark is required for this test (apt-get install tshark): {e}")
        })
}

/// Runs tshark and returns stdout; panics (test failure) when tshark is missing or fails.
pub fn tshark(args: &[&str]) -> String {
    let out = tshark_output(args);
    assert!(
        out.status.success() || !out.stdout.is_empty(),
        "tshark {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("tshark output is UTF-8")
}

/// Reads an allow-list: lines `file<TAB>key<TAB>reason`, `#` comments. Every entry must have a
/// reason.
pub fn allow_list(path: &Path) -> Vec<(String, String, String)> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut it = l.splitn(3, '\t');
            let f = it.next().unwrap_or_default().to_string();
            let k = it.next().unwrap_or_default().to_string();
            let r = it.next().unwrap_or_default().trim().to_string();
            assert!(!r.is_empty(), "allow-list entry without a reason: {l}");
            (f, k, r)
        })
        .collect()
}

/// Where a golden text and the text produced now first part: the line number and both lines, or
/// the two line counts when one is a prefix of the other.
pub fn first_difference(want: &str, got: &str) -> String {
    want.lines()
        .zip(got.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| format!("line {}:\n  want {a}\n  got  {b}", i + 1))
        .unwrap_or_else(|| {
            format!(
                "{} lines recorded, {} now",
                want.lines().count(),
                got.lines().count()
            )
        })
}
