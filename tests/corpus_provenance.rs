//! The corpus shipped in tests/corpus stands on its own: every capture has a row in
//! tools/provenance.tsv (source repository, path, commit, git blob id) and still has that blob id,
//! and every group has its licence text. A file added or changed without its provenance fails here.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

/// `git hash-object` for many paths in one call (the blob id a repository would give each file).
fn blob_ids(paths: &[std::path::PathBuf]) -> Vec<String> {
    let mut child = Command::new("git")
        .args(["hash-object", "--no-filters", "--stdin-paths"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("git is required for this test");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        for p in paths {
            writeln!(stdin, "{}", p.display()).expect("write path");
        }
    }
    let out = child.wait_with_output().expect("git hash-object");
    assert!(out.status.success(), "git hash-object failed");
    String::from_utf8(out.stdout)
        .expect("hex ids")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_capture_has_its_provenance_and_blob_id() {
    let dir = common::corpus_dir();
    let table = std::fs::read_to_string(dir.join("tools/provenance.tsv")).expect("provenance.tsv");
    let mut rows = BTreeMap::new();
    for (n, line) in table.lines().enumerate() {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 5, "provenance.tsv line {}: {line:?}", n + 1);
        assert!(
            cols[1].contains('/'),
            "line {}: repository {:?}",
            n + 1,
            cols[1]
        );
        assert_eq!(cols[3].len(), 40, "line {}: commit {:?}", n + 1, cols[3]);
        assert!(
            rows.insert(cols[0].to_string(), cols[4].to_string())
                .is_none(),
            "provenance.tsv lists {} twice",
            cols[0]
        );
    }

    let captures = common::corpus_captures();
    assert_eq!(captures.len(), 109, "the corpus has 109 captures");
    let paths: Vec<_> = captures.iter().map(|(_, p)| p.clone()).collect();
    let ids = blob_ids(&paths);
    assert_eq!(ids.len(), captures.len());
    let mut problems = Vec::new();
    for ((rel, _), id) in captures.iter().zip(&ids) {
        match rows.remove(&format!("pcaps/{rel}")) {
            None => problems.push(format!("{rel}: no row in tools/provenance.tsv")),
            Some(want) if &want != id => {
                problems.push(format!("{rel}: blob {id}, provenance says {want}"))
            }
            Some(_) => {}
        }
    }
    for stale in rows.keys() {
        problems.push(format!("{stale}: listed in provenance.tsv but not present"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_group_has_its_licence_text() {
    let dir = common::corpus_dir();
    let licences = [
        ("packetbeat", "Apache-2.0.txt"),
        ("packetbeat", "beats-NOTICE.txt"),
        ("zeek-mysql", "zeek-COPYING.txt"),
        ("deepflow", "deepflow-LICENSE.txt"),
        ("pcap2mysql-log", "pcap2mysql-log-LICENSE.txt"),
        ("mongo-tools", "mongo-tools-LICENSE.md"),
        ("gopacket-vendored", "gopacket-LICENSE.txt"),
        ("ndpi", "nDPI-COPYING-LGPL-3.0.txt"),
        ("ndpi", "GPL-3.0.txt"),
    ];
    let notes = std::fs::read_to_string(dir.join("PROVENANCE.md")).expect("PROVENANCE.md");
    for (group, file) in licences {
        let text = std::fs::read_to_string(dir.join("licenses").join(file))
            .unwrap_or_else(|e| panic!("licence text {file} for {group}: {e}"));
        assert!(text.len() > 200, "{file} looks empty");
        assert!(notes.contains(file), "PROVENANCE.md does not name {file}");
        assert!(
            notes.contains(group),
            "PROVENANCE.md does not name group {group}"
        );
    }
}
