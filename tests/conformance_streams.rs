//! Must show (issue 2): for every capture of the corpus (tests/corpus) that tshark reads,
//! `wirelag streams --json` gives the same streams as tshark's `tcp.stream`: same numbers, same
//! endpoints, same packet count per stream. Differences must be listed, with a reason, in
//! tests/conformance/streams-allow.tsv.

mod common;

use std::collections::BTreeMap;

use common::*;

#[derive(Debug, PartialEq, Eq, Clone)]
struct StreamFacts {
    /// Endpoints as a sorted pair of "ip:port".
    endpoints: (String, String),
    packets: u64,
}

fn pair(a: String, b: String) -> (String, String) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

fn endpoint(ip: &str, port: &str) -> String {
    format!("{ip}|{port}")
}

fn tshark_streams(path: &str) -> BTreeMap<u64, StreamFacts> {
    let out = tshark(&[
        "-r",
        path,
        "-T",
        "fields",
        "-E",
        "separator=\t",
        "-E",
        "occurrence=l",
        "-e",
        "tcp.stream",
        "-e",
        "ip.src",
        "-e",
        "ipv6.src",
        "-e",
        "tcp.srcport",
        "-e",
        "ip.dst",
        "-e",
        "ipv6.dst",
        "-e",
        "tcp.dstport",
    ]);
    let mut m: BTreeMap<u64, StreamFacts> = BTreeMap::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let Some(stream) = f.first().and_then(|s| s.parse::<u64>().ok()) else {
            continue;
        };
        let src_ip = if f[1].is_empty() { f[2] } else { f[1] };
        let dst_ip = if f[4].is_empty() { f[5] } else { f[4] };
        let eps = pair(endpoint(src_ip, f[3]), endpoint(dst_ip, f[6]));
        m.entry(stream)
            .or_insert(StreamFacts {
                endpoints: eps,
                packets: 0,
            })
            .packets += 1;
    }
    m
}

fn wirelag_streams(path: &str) -> Result<BTreeMap<u64, StreamFacts>, String> {
    let out = run_wirelag(&["streams", path, "--json"]);
    if out.stdout.is_empty() {
        return Err(format!(
            "wirelag failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("bad JSON: {e}"))?;
    assert_eq!(doc["schema"], "wirelag.streams/v1");
    let mut m = BTreeMap::new();
    for s in doc["streams"].as_array().ok_or("no streams array")? {
        let ep = |o: &serde_json::Value| {
            endpoint(o["ip"].as_str().unwrap_or(""), &o["port"].to_string())
        };
        m.insert(
            s["stream"].as_u64().ok_or("stream not a number")?,
            StreamFacts {
                endpoints: pair(ep(&s["client"]), ep(&s["server"])),
                packets: s["packets"].as_u64().unwrap_or(0),
            },
        );
    }
    Ok(m)
}

#[test]
fn streams_match_tshark_on_the_whole_corpus() {
    let allow = allow_list(&repo_root().join("tests/conformance/streams-allow.tsv"));
    let mut failures = Vec::new();
    let mut used_allow = vec![false; allow.len()];
    let mut compared = 0;
    let mut total_streams = 0;
    for (rel, path) in corpus_captures() {
        let p = path.to_str().expect("utf-8 path");
        let want = tshark_streams(p);
        let got = match wirelag_streams(p) {
            Ok(g) => g,
            Err(e) => {
                failures.push(format!("{rel}: {e}"));
                continue;
            }
        };
        compared += 1;
        total_streams += want.len();
        let mut diffs = Vec::new();
        for (id, w) in &want {
            match got.get(id) {
                None => diffs.push(format!("stream {id} missing (tshark: {w:?})")),
                Some(g) if g != w => diffs.push(format!("stream {id}: wirelag {g:?} tshark {w:?}")),
                _ => {}
            }
        }
        for id in got.keys().filter(|id| !want.contains_key(id)) {
            diffs.push(format!("stream {id} extra: {:?}", got[id]));
        }
        for d in diffs {
            let key = d
                .split(':')
                .next()
                .unwrap_or("")
                .split(' ')
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            match allow
                .iter()
                .position(|(f, k, _)| f == &rel && (k == "*" || *k == key))
            {
                Some(i) => used_allow[i] = true,
                None => failures.push(format!("{rel}: {d}")),
            }
        }
    }
    for (i, used) in used_allow.iter().enumerate() {
        if !used {
            failures.push(format!("allow-list entry no longer needed: {:?}", allow[i]));
        }
    }
    eprintln!("compared {compared} captures, {total_streams} tshark streams");
    assert!(compared >= 100, "only {compared} captures compared");
    assert!(
        failures.is_empty(),
        "{} differences from tshark:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
