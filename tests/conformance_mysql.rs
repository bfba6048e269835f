//! Must show (MySQL issue): for every MySQL capture of the corpus (tests/corpus), `wirelag analyze --json`
//! finds the requests tshark finds, with the same command, the same response frame, the same error
//! code and the same response time to the microsecond.
//!
//! The ground truth is corpus/truth/<group>/<file>.tsv (tshark 4.0, see the corpus README). For
//! each `command` row, and each `login` row, wirelag's request on the same `tcp.stream` whose
//! `frame` (the request's last segment, where tshark completes the PDU) equals the truth's
//! `req_frame` is compared:
//! - `command`: tshark's names (QUERY, INIT_DB, ...) are COM_QUERY, COM_INIT_DB, ...; LOGIN is LOGIN;
//! - `response_frame` == `resp_first_frame` (null when tshark saw no response);
//! - `error_code` == the truth's `error_code`;
//! - `latency_us` == the response time computed exactly from the truth's two epoch timestamps
//!   (decimal strings with 9 decimals, integer nanoseconds, rounded to the nearest microsecond
//!   half up as wirelag does), when both sides agree on the response frame.
//!
//! Rows whose note says `tshark_unknown_cmd` are tshark misreads (compressed-protocol frames,
//! caching_sha2 RSA passwords, auth-switch responses read as a command byte): wirelag must not
//! report them as commands, and the allow-list must say what wirelag decodes there
//! (`stream S frame F decodes CMD field=value ...`), which is checked against the report.
//!
//! Then per stream and per command, wirelag's COM_* counts (LOGIN/AUTH/TLS turns excluded) must
//! equal the truth's counts of real commands, after applying the allow-listed differences.
//! wirelag requests the truth has no row for are differences too (`extra`), except AUTH turns and
//! TLS turns after the first, which tshark does not list as requests at all.
//!
//! Differences are keyed `stream S frame F <what> TRUTH->WIRELAG` (or `stream S count CMD T->W`,
//! `stream S frame F extra CMD`, `stream S frame F missing CMD`, `stream S frame F tls`), so an
//! allow-list entry in tests/conformance/mysql-allow.tsv pins the exact values it excuses.
//! Every entry needs a reason, and an entry that no longer matches anything is a failure.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use common::*;
use serde_json::Value;

/// One MySQL request row of the truth.
#[derive(Debug, Clone)]
struct TruthRow {
    stream: u64,
    /// `command` or `login`.
    kind: String,
    /// tshark's name: QUERY, LOGIN, UNKNOWN(205), ...
    command: String,
    command_code: Option<u64>,
    req_frame: u64,
    req_time_ns: i128,
    resp_first_frame: Option<u64>,
    resp_first_time_ns: Option<i128>,
    error_code: Option<u64>,
    misread: bool,
}

impl TruthRow {
    /// wirelag's name for the truth's command.
    fn wirelag_command(&self) -> String {
        if self.kind == "login" {
            "LOGIN".to_string()
        } else {
            format!("COM_{}", self.command)
        }
    }

    /// Response time in whole microseconds, rounded to nearest (half up, like wirelag's
    /// `Duration::as_micros`), from the exact nanosecond timestamps.
    fn expected_latency_us(&self) -> Option<i128> {
        Some(round_us(self.resp_first_time_ns? - self.req_time_ns))
    }
}

fn round_us(ns: i128) -> i128 {
    let q = ns.div_euclid(1000);
    if ns.rem_euclid(1000) >= 500 {
        q + 1
    } else {
        q
    }
}

/// "1674211248.837402000" → nanoseconds since the epoch, exactly.
fn epoch_ns(s: &str) -> Option<i128> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    assert!(
        frac.len() <= 9 && frac.bytes().all(|b| b.is_ascii_digit()),
        "timestamp with more than 9 decimals: {s}"
    );
    let secs: i128 = secs
        .parse()
        .unwrap_or_else(|e| panic!("bad timestamp {s}: {e}"));
    let frac_ns: i128 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().expect("digits")
    };
    Some(secs * 1_000_000_000 + frac_ns)
}

fn opt_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() {
        None
    } else {
        Some(
            s.parse()
                .unwrap_or_else(|e| panic!("truth: not a number {s:?}: {e}")),
        )
    }
}

/// Reads a tab-separated file whose first non-comment line is the header, as maps by column name.
fn read_tsv(path: &Path) -> Vec<HashMap<String, String>> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    let header: Vec<String> = lines
        .next()
        .unwrap_or_else(|| panic!("{}: no header", path.display()))
        .split('\t')
        .map(str::to_string)
        .collect();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(
                    l.split('\t')
                        .map(str::to_string)
                        .chain(std::iter::repeat(String::new())),
                )
                .collect()
        })
        .collect()
}

/// The MySQL captures of the corpus, from inventory.tsv: (group/file, capture path, truth path).
fn mysql_captures() -> Vec<(String, std::path::PathBuf, std::path::PathBuf)> {
    let corpus = corpus_dir();
    let mut out = Vec::new();
    for row in read_tsv(&corpus.join("inventory.tsv")) {
        if row["db_protocol"] != "mysql" {
            continue;
        }
        let rel_path = &row["rel_path"];
        let rel = rel_path
            .strip_prefix("pcaps/")
            .unwrap_or_else(|| panic!("inventory rel_path not under pcaps/: {rel_path}"))
            .to_string();
        let truth = corpus.join("truth").join(format!("{rel}.tsv"));
        out.push((rel, corpus.join(rel_path), truth));
    }
    out.sort();
    out
}

fn truth_rows(path: &Path) -> Vec<TruthRow> {
    read_tsv(path)
        .into_iter()
        .filter(|r| r["kind"] == "command" || r["kind"] == "login")
        .map(|r| TruthRow {
            stream: opt_u64(&r["tcp_stream"]).expect("tcp_stream"),
            kind: r["kind"].clone(),
            command: r["command"].clone(),
            command_code: opt_u64(&r["command_code"]),
            req_frame: opt_u64(&r["req_frame"]).expect("req_frame"),
            req_time_ns: epoch_ns(&r["req_time_epoch"]).expect("req_time_epoch"),
            resp_first_frame: opt_u64(&r["resp_first_frame"]),
            resp_first_time_ns: epoch_ns(&r["resp_first_time_epoch"]),
            error_code: opt_u64(&r["error_code"]),
            misread: r["note"].contains("tshark_unknown_cmd"),
        })
        .collect()
}

/// JSON scalar as it is written in keys and allow-list attributes: `null`, `12`, `ok`.
fn show(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn show_opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "null".to_string(), |v| v.to_string())
}

fn analyze(path: &Path) -> Result<Value, String> {
    let p = path.to_str().expect("utf-8 path");
    let out = run_wirelag(&["analyze", p, "--json"]);
    if out.stdout.is_empty() {
        return Err(format!(
            "wirelag analyze failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let doc: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "bad JSON ({e}), exit {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })?;
    if doc["schema"] != "wirelag.report/v1" {
        return Err(format!(
            "schema is {}, not wirelag.report/v1",
            doc["schema"]
        ));
    }
    if !doc["requests"].is_array() {
        return Err("no requests array".to_string());
    }
    Ok(doc)
}

/// wirelag's request: the fields the comparison reads.
struct Req<'a> {
    v: &'a Value,
    stream: u64,
    frame: u64,
    first_frame: u64,
    command: String,
}

impl Req<'_> {
    fn field(&self, name: &str) -> String {
        show(&self.v[name])
    }
    fn is_handshake(&self) -> bool {
        matches!(self.command.as_str(), "LOGIN" | "AUTH" | "TLS")
    }
    fn describe(&self) -> String {
        format!(
            "{} frames {}..{} -> response {}..{} status {} latency_us {} error {}",
            self.command,
            self.first_frame,
            self.frame,
            self.field("response_frame"),
            self.field("response_last_frame"),
            self.field("status"),
            self.field("latency_us"),
            self.field("error_code"),
        )
    }
}

fn requests(doc: &Value) -> Result<Vec<Req<'_>>, String> {
    let mut out = Vec::new();
    for r in doc["requests"].as_array().into_iter().flatten() {
        if r["protocol"] != "mysql" {
            continue;
        }
        let num = |k: &str| {
            r[k].as_u64()
                .ok_or_else(|| format!("request without numeric {k}: {r}"))
        };
        out.push(Req {
            v: r,
            stream: num("stream")?,
            frame: num("frame")?,
            first_frame: num("request_first_frame")?,
            command: r["command"]
                .as_str()
                .ok_or_else(|| format!("request without command: {r}"))?
                .to_string(),
        });
    }
    Ok(out)
}

/// The allow-list and which entries were used.
struct Allow {
    entries: Vec<(String, String, String)>,
    used: Vec<bool>,
}

impl Allow {
    fn position(&self, file: &str, key: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|(f, k, _)| f == file && k == key)
    }

    /// Records a difference: allowed (and the entry marked used) or a failure.
    fn check(&mut self, failures: &mut Vec<String>, file: &str, key: &str, detail: &str) -> bool {
        match self.position(file, key) {
            Some(i) => {
                self.used[i] = true;
                true
            }
            None => {
                failures.push(format!("{file}: {key}   [{detail}]"));
                false
            }
        }
    }
}

/// A `decodes` entry: `stream S frame F decodes CMD field=value ...`.
struct Decodes {
    index: usize,
    command: String,
    fields: Vec<(String, String)>,
}

fn decodes_entries(allow: &Allow, file: &str, stream: u64, frame: u64) -> Vec<Decodes> {
    let prefix = format!("stream {stream} frame {frame} decodes ");
    allow
        .entries
        .iter()
        .enumerate()
        .filter(|(_, (f, k, _))| f == file && k.starts_with(&prefix))
        .map(|(index, (_, k, _))| {
            let mut words = k[prefix.len()..].split_whitespace();
            let command = words.next().unwrap_or_default().to_string();
            let fields = words
                .map(|w| {
                    let (a, b) = w
                        .split_once('=')
                        .unwrap_or_else(|| panic!("allow-list: `{w}` is not field=value in {k}"));
                    (a.to_string(), b.to_string())
                })
                .collect();
            Decodes {
                index,
                command,
                fields,
            }
        })
        .collect()
}

/// wirelag's response time measured from the request's first segment (tshark's LOGIN row of a
/// TLS login is the SSLRequest alone; wirelag's TLS exchange ends with the ClientHello).
/// `exchange_us` (request first byte to response last byte) is exactly that when the response is
/// one frame; otherwise it is `latency_us` plus the request's own duration, taken from
/// `wirelag frames --json`, exact only for a capture with microsecond timestamps.
fn first_segment_us(capture: &Path, row: &TruthRow, r: &Req<'_>) -> Result<i128, String> {
    if r.v["response_last_frame"].as_u64() == r.v["response_frame"].as_u64() {
        return r.v["exchange_us"]
            .as_i64()
            .map(i128::from)
            .ok_or_else(|| "no-exchange_us".to_string());
    }
    let exact_us = |ns: Option<i128>| ns.is_some_and(|ns| ns % 1000 == 0);
    if !exact_us(Some(row.req_time_ns)) || !exact_us(row.resp_first_time_ns) {
        return Err("not-computable(ns-timestamps,multi-frame-response)".to_string());
    }
    let latency = r.v["latency_us"]
        .as_i64()
        .ok_or_else(|| "no-latency_us".to_string())?;
    let filter = format!("tcp.stream eq {}", r.stream);
    let out = run_wirelag(&[
        "frames",
        capture.to_str().expect("utf-8 path"),
        "-Y",
        &filter,
        "--json",
    ]);
    let doc: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("frames-json:{e}"))?;
    let epoch = |frame: u64| {
        doc["frames"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["frame"].as_u64() == Some(frame))
            .and_then(|f| f["time_epoch_us"].as_i64())
            .ok_or_else(|| format!("no-frame-{frame}"))
    };
    Ok(i128::from(
        latency + epoch(r.frame)? - epoch(r.first_frame)?,
    ))
}

#[derive(Default)]
struct Tally {
    files: usize,
    rows: usize,
    rows_agreeing: usize,
    rows_allowed: usize,
    misreads: usize,
    requests: usize,
}

fn compare_file(
    rel: &str,
    capture: &Path,
    truth_path: &Path,
    allow: &mut Allow,
    failures: &mut Vec<String>,
    tally: &mut Tally,
) {
    let truth = truth_rows(truth_path);
    let doc = match analyze(capture) {
        Ok(d) => d,
        Err(e) => {
            failures.push(format!("{rel}: {e}"));
            return;
        }
    };
    let reqs = match requests(&doc) {
        Ok(r) => r,
        Err(e) => {
            failures.push(format!("{rel}: {e}"));
            return;
        }
    };
    tally.files += 1;
    tally.requests += reqs.len();

    let mut by_frame: HashMap<(u64, u64), Vec<usize>> = HashMap::new();
    for (i, r) in reqs.iter().enumerate() {
        by_frame.entry((r.stream, r.frame)).or_default().push(i);
    }
    let mut matched = vec![false; reqs.len()];
    // Expected COM_* counts per stream, after the allow-listed differences.
    let mut expected: BTreeMap<u64, BTreeMap<String, i64>> = BTreeMap::new();

    for row in &truth {
        let s = row.stream;
        let f = row.req_frame;
        tally.rows += 1;
        if row.misread {
            tally.misreads += 1;
            // tshark read a byte that is not a command byte as one: wirelag must not.
            for &i in by_frame.get(&(s, f)).into_iter().flatten() {
                let r = &reqs[i];
                let code = r.v["command_code"].as_u64();
                if r.command == "COM_UNKNOWN" || (code.is_some() && code == row.command_code) {
                    failures.push(format!(
                        "{rel}: stream {s} frame {f} misread   [tshark's {} (not a real command) \
                         is a command in wirelag too: {}]",
                        row.command,
                        r.describe()
                    ));
                }
            }
            let entries = decodes_entries(allow, rel, s, f);
            if entries.is_empty() {
                failures.push(format!(
                    "{rel}: stream {s} frame {f} misread {}   [tshark misread; say in \
                     mysql-allow.tsv what wirelag decodes there: `stream {s} frame {f} decodes CMD \
                     field=value ...`]",
                    row.command
                ));
                continue;
            }
            for d in entries {
                allow.used[d.index] = true;
                let key = &allow.entries[d.index].1;
                // The wirelag request whose bytes cover frame F.
                let found = reqs.iter().enumerate().find(|(_, r)| {
                    r.stream == s && r.first_frame <= f && f <= r.frame && r.command == d.command
                });
                let Some((i, r)) = found else {
                    let here: Vec<String> = reqs
                        .iter()
                        .filter(|r| r.stream == s && r.first_frame <= f && f <= r.frame)
                        .map(Req::describe)
                        .collect();
                    failures.push(format!(
                        "{rel}: allow-list `{key}` does not hold: no {} covering frame {f} on \
                         stream {s} (wirelag there: {here:?})",
                        d.command
                    ));
                    continue;
                };
                let wrong: Vec<String> = d
                    .fields
                    .iter()
                    .filter(|(k, v)| r.field(k) != *v)
                    .map(|(k, v)| format!("{k}={} (allow-list says {v})", r.field(k)))
                    .collect();
                if !wrong.is_empty() {
                    failures.push(format!(
                        "{rel}: allow-list `{key}` does not hold: {}",
                        wrong.join(", ")
                    ));
                    continue;
                }
                // Where the decoded request ends on this very frame and answers with the
                // truth's response frame, the timing must agree too.
                if r.frame == f
                    && row.resp_first_frame.is_some()
                    && r.v["response_frame"].as_u64() == row.resp_first_frame
                {
                    let want = row.expected_latency_us().expect("response time");
                    let got = r.v["latency_us"].as_i64().map(i128::from);
                    if got != Some(want) {
                        failures.push(format!(
                            "{rel}: stream {s} frame {f} latency_us {want}->{}   [{}]",
                            show_opt(got),
                            r.describe()
                        ));
                        continue;
                    }
                }
                if !matched[i] {
                    matched[i] = true;
                    if !r.is_handshake() {
                        *expected
                            .entry(s)
                            .or_default()
                            .entry(r.command.clone())
                            .or_default() += 1;
                    }
                }
                tally.rows_allowed += 1;
            }
            continue;
        }

        let want_cmd = row.wirelag_command();
        let cands: Vec<usize> = by_frame
            .get(&(s, f))
            .into_iter()
            .flatten()
            .copied()
            .filter(|&i| !matched[i])
            .collect();
        let pick = if row.kind == "login" {
            cands.iter().copied().find(|&i| reqs[i].command == "LOGIN")
        } else {
            cands
                .iter()
                .copied()
                .find(|&i| reqs[i].command == want_cmd)
                .or_else(|| {
                    cands
                        .iter()
                        .copied()
                        .find(|&i| !matches!(reqs[i].command.as_str(), "AUTH" | "TLS"))
                })
        };
        // A login that starts TLS: tshark's LOGIN row is the SSLRequest; wirelag's first TLS
        // exchange starts with that SSLRequest and runs through the ClientHello, so it is found
        // by its first segment and timed from it.
        let tls = pick.is_none() && row.kind == "login";
        let pick = pick.or_else(|| {
            if !tls {
                return None;
            }
            reqs.iter()
                .enumerate()
                .find(|(i, r)| {
                    !matched[*i] && r.stream == s && r.command == "TLS" && r.first_frame == f
                })
                .map(|(i, _)| i)
        });
        let Some(i) = pick else {
            let near: Vec<String> = reqs
                .iter()
                .filter(|r| r.stream == s && r.first_frame <= f + 2 && f <= r.frame + 2)
                .map(Req::describe)
                .collect();
            let ok = allow.check(
                failures,
                rel,
                &format!("stream {s} frame {f} missing {want_cmd}"),
                &format!("tshark: {want_cmd} at frame {f}; wirelag near it: {near:?}"),
            );
            if !ok {
                // Counted below as a count difference too; keep the expectation so it shows.
                if want_cmd.starts_with("COM_") {
                    *expected
                        .entry(s)
                        .or_default()
                        .entry(want_cmd.clone())
                        .or_default() += 1;
                }
            }
            continue;
        };
        matched[i] = true;
        let r = &reqs[i];
        let mut agree = true;
        let mut excused = false;
        let mut diff = |allow: &mut Allow, key: String, detail: String| {
            agree = false;
            if allow.check(failures, rel, &key, &detail) {
                excused = true;
            }
        };

        let mut counted_cmd = want_cmd.clone();
        if tls {
            diff(
                allow,
                format!("stream {s} frame {f} tls"),
                format!(
                    "tshark's LOGIN row is wirelag's TLS exchange {}",
                    r.describe()
                ),
            );
        } else if r.command != want_cmd {
            let ok = allow.position(
                rel,
                &format!("stream {s} frame {f} command {want_cmd}->{}", r.command),
            );
            diff(
                allow,
                format!("stream {s} frame {f} command {want_cmd}->{}", r.command),
                r.describe(),
            );
            if ok.is_some() {
                counted_cmd = r.command.clone();
            }
        }
        if counted_cmd.starts_with("COM_") {
            *expected
                .entry(s)
                .or_default()
                .entry(counted_cmd)
                .or_default() += 1;
        }

        let got_resp = r.v["response_frame"].as_u64();
        let same_response = got_resp == row.resp_first_frame;
        if !same_response {
            diff(
                allow,
                format!(
                    "stream {s} frame {f} response_frame {}->{}",
                    show_opt(row.resp_first_frame),
                    show_opt(got_resp)
                ),
                r.describe(),
            );
        }
        let got_err = r.v["error_code"].as_u64();
        if got_err != row.error_code {
            diff(
                allow,
                format!(
                    "stream {s} frame {f} error_code {}->{}",
                    show_opt(row.error_code),
                    show_opt(got_err)
                ),
                r.describe(),
            );
        }
        if same_response {
            if let Some(want) = row.expected_latency_us() {
                if tls {
                    let got = first_segment_us(capture, row, r);
                    if got != Ok(want) {
                        diff(
                            allow,
                            format!(
                                "stream {s} frame {f} first_segment_us {want}->{}",
                                got.clone().map_or_else(|e| e, |v| v.to_string())
                            ),
                            r.describe(),
                        );
                    }
                } else {
                    let got = r.v["latency_us"].as_i64().map(i128::from);
                    if got != Some(want) {
                        diff(
                            allow,
                            format!("stream {s} frame {f} latency_us {want}->{}", show_opt(got)),
                            r.describe(),
                        );
                    }
                }
            }
        }
        if agree {
            tally.rows_agreeing += 1;
        } else if excused {
            tally.rows_allowed += 1;
        }
    }

    // wirelag requests the truth has no row for.
    for (i, r) in reqs.iter().enumerate() {
        if matched[i] || matches!(r.command.as_str(), "AUTH" | "TLS") {
            continue;
        }
        let key = format!("stream {} frame {} extra {}", r.stream, r.frame, r.command);
        if allow.check(failures, rel, &key, &r.describe()) && r.command.starts_with("COM_") {
            *expected
                .entry(r.stream)
                .or_default()
                .entry(r.command.clone())
                .or_default() += 1;
        }
    }

    // Per stream, per command counts.
    let mut got: BTreeMap<u64, BTreeMap<String, i64>> = BTreeMap::new();
    for r in reqs.iter().filter(|r| !r.is_handshake()) {
        *got.entry(r.stream)
            .or_default()
            .entry(r.command.clone())
            .or_default() += 1;
    }
    let streams: std::collections::BTreeSet<u64> =
        expected.keys().chain(got.keys()).copied().collect();
    for s in streams {
        let empty = BTreeMap::new();
        let e = expected.get(&s).unwrap_or(&empty);
        let g = got.get(&s).unwrap_or(&empty);
        let cmds: std::collections::BTreeSet<&String> = e.keys().chain(g.keys()).collect();
        for c in cmds {
            let (want, have) = (
                e.get(c).copied().unwrap_or(0),
                g.get(c).copied().unwrap_or(0),
            );
            if want != have {
                allow.check(
                    failures,
                    rel,
                    &format!("stream {s} count {c} {want}->{have}"),
                    "count of requests per stream and command",
                );
            }
        }
    }
}

#[test]
fn mysql_requests_match_tshark_on_the_corpus() {
    let started = std::time::Instant::now();
    let entries = allow_list(&repo_root().join("tests/conformance/mysql-allow.tsv"));
    let mut allow = Allow {
        used: vec![false; entries.len()],
        entries,
    };
    let mut failures = Vec::new();
    let mut tally = Tally::default();
    let captures = mysql_captures();
    for (rel, capture, truth) in &captures {
        compare_file(rel, capture, truth, &mut allow, &mut failures, &mut tally);
    }
    for (i, used) in allow.used.iter().enumerate() {
        if !used {
            failures.push(format!(
                "allow-list entry no longer needed: {:?}",
                allow.entries[i]
            ));
        }
    }
    eprintln!(
        "mysql conformance: {} of {} MySQL captures compared, {} truth rows: {} agree exactly, \
         {} differ as the allow-list says ({} tshark misreads), {} wirelag requests; {:.1?}",
        tally.files,
        captures.len(),
        tally.rows,
        tally.rows_agreeing,
        tally.rows_allowed,
        tally.misreads,
        tally.requests,
        started.elapsed()
    );
    // The corpus README counts 834 MySQL commands; with the logins the truth has 902 rows.
    assert!(tally.rows >= 834, "only {} truth rows read", tally.rows);
    assert!(
        captures.len() >= 62,
        "only {} MySQL captures in inventory.tsv",
        captures.len()
    );
    assert!(
        failures.is_empty(),
        "{} differences from tshark:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn exact_response_time_arithmetic() {
    // caching_sha2_password-after-auth-switch frame 16: tshark's float subtraction says 432 µs,
    // the exact gap is 431.451 µs.
    let row = TruthRow {
        stream: 0,
        kind: "command".into(),
        command: "QUERY".into(),
        command_code: Some(3),
        req_frame: 16,
        req_time_ns: epoch_ns("1681280718.398438993").unwrap(),
        resp_first_frame: Some(17),
        resp_first_time_ns: epoch_ns("1681280718.398870444"),
        error_code: None,
        misread: false,
    };
    assert_eq!(row.expected_latency_us(), Some(431));
    assert_eq!(round_us(500), 1);
    assert_eq!(round_us(499), 0);
    assert_eq!(epoch_ns("12.5"), Some(12_500_000_000));
    assert_eq!(epoch_ns(""), None);
}

/// The captures that use the compressed protocol: the three pcap2mysql-log ones negotiate it at
/// login (tshark: CLIENT_COMPRESS in the HandshakeResponse, `mysql.caps.cp == 1`); the three
/// deepflow ones start mid-connection, and every client packet carries the 7-byte compressed
/// header (`0f0000 00 000000` + `0b000000 03 'use `test`'` in mysql-use frame 1), every server
/// packet a zlib stream (`78 9c`). No other MySQL capture of the corpus is compressed.
const COMPRESSED: [&str; 6] = [
    "deepflow/mysql-compressed-response.pcap",
    "deepflow/mysql-use.pcap",
    "deepflow/partial-packet-compressed.pcap",
    "pcap2mysql-log/compressed-data-missing.pcap",
    "pcap2mysql-log/compressed.pcap",
    "pcap2mysql-log/error.pcap",
];

/// The allow-list excuses tshark's COM_SLEEP on the deepflow captures because wirelag detects the
/// compressed protocol mid-stream: the report must say so (`streams[].mysql.compressed`).
#[test]
fn compressed_protocol_is_reported() {
    let mut failures = Vec::new();
    for (rel, capture, _) in mysql_captures() {
        let doc = match analyze(&capture) {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{rel}: {e}"));
                continue;
            }
        };
        let want = COMPRESSED.contains(&rel.as_str());
        for s in doc["streams"].as_array().into_iter().flatten() {
            if s["mysql"].is_null() {
                continue;
            }
            if s["mysql"]["compressed"].as_bool() != Some(want) {
                failures.push(format!(
                    "{rel}: stream {} mysql.compressed is {}, expected {want}",
                    s["stream"], s["mysql"]["compressed"]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
