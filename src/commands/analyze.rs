//! `wirelag analyze`: request/response timing of the database protocols in a capture, grouped
//! into transactions and logical units; text or JSON (`wirelag.report/v1`).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use wirelag_dissectors::tcp::stream::{NoPayload, TrackerConfig};
use wirelag_dissectors::Timestamp;

use crate::amplify::{Amplification, BaselineUnits, KnownDelay};
use crate::analysis::{fold_whitespace, Analyzer, FingerprintJson, LatencyJson, SessionJson};
use crate::capture::PacketSource;
use crate::commands::streams::{stream_json, StreamJson};
use crate::commands::{
    frame_matches_with, mysql_index_for, open_capture, parse_filter, truncation_error,
};
use crate::filter::DisplayFilter;
use crate::handoff;
use crate::pipeline::{self, Pipeline};
use crate::report::{AtomicFile, CaptureJson, ReportOut};

pub struct AnalyzeArgs {
    pub capture: PathBuf,
    pub filter: Option<String>,
    pub json: bool,
    pub output: Option<PathBuf>,
    pub requests: bool,
    /// `PORT=mysql` pairs.
    pub decode_as: Vec<String>,
    /// A capture of the same workload without the delay, to measure the added time against.
    pub baseline: Option<PathBuf>,
    /// The injected delay per round trip, when known.
    pub delay: Option<KnownDelay>,
    /// `experiment`'s record of what it did (windows, injection, verification), reported first.
    pub experiment: Option<serde_json::Value>,
}

fn parse_decode_as(items: &[String]) -> anyhow::Result<Vec<u16>> {
    let mut ports = Vec::new();
    for item in items {
        let (port, proto) = item.split_once('=').ok_or_else(|| {
            crate::UsageError(format!("--decode-as {item:?}: expected PORT=mysql"))
        })?;
        let port: u16 = port.trim().parse().map_err(|_| {
            crate::UsageError(format!("--decode-as {item:?}: {port:?} is not a TCP port"))
        })?;
        match proto.trim() {
            "mysql" | "mariadb" => ports.push(port),
            "mongodb" | "mongo" => {
                return Err(crate::UsageError(format!(
                    "--decode-as {item:?}: the MongoDB dissector is not built yet; only mysql is supported"
                ))
                .into())
            }
            other => return Err(crate::UsageError(format!("--decode-as {item:?}: unknown protocol {other:?} (known: mysql)")).into()),
        }
    }
    Ok(ports)
}

#[derive(Serialize)]
struct StreamReportJson {
    #[serde(flatten)]
    tcp: StreamJson,
    mysql: Option<SessionJson>,
    latency: Option<LatencyJson>,
}

#[derive(Serialize)]
struct LatencySectionJson {
    by_command: std::collections::BTreeMap<&'static str, LatencyJson>,
    by_fingerprint: Vec<FingerprintJson>,
    by_stream: std::collections::BTreeMap<u32, LatencyJson>,
    by_server: std::collections::BTreeMap<String, LatencyJson>,
}

fn first_timestamp(path: &Path) -> Option<Timestamp> {
    let mut s = crate::capture::file::FileSource::open_for_peek(path).ok()?;
    s.next_packet().ok().flatten().map(|p| p.ts)
}

/// One capture analysed: the analyzer's results and the pipeline's stream table.
struct Analysed {
    analyzer: Analyzer,
    pipeline: Pipeline,
    summary: crate::capture::SourceSummary,
    /// Streams selected by the display filter (None: all).
    selected: Option<Vec<bool>>,
}

pub fn run(args: &AnalyzeArgs, out: &mut dyn ReportOut) -> anyhow::Result<()> {
    let decode_as = parse_decode_as(&args.decode_as)?;
    let filter = parse_filter(args.filter.as_deref())?;
    let path = args.capture.as_path();
    if let Some(d) = &args.delay {
        if d.per_round_trip_us == 0 {
            return Err(crate::UsageError("--delay must be more than 0 ms".into()).into());
        }
    }

    // The baseline first: its units are what the delayed capture's units are compared with.
    let baseline = match &args.baseline {
        None => None,
        Some(b) => {
            let mut base = analyse(b, &decode_as, filter.as_ref(), None)
                .with_context(|| format!("baseline {}", b.display()))?;
            truncation_error(b, &base.summary, base.pipeline.frames())
                .with_context(|| format!("baseline {}", b.display()))?;
            let units = BaselineUnits::collect(&mut base.analyzer.units)
                .context("reading back the baseline's units")?;
            Some((b.display().to_string(), units))
        }
    };

    // With --json the report's head and the request list are written as the analysis runs
    // (requests come first: they are most of the report, and streaming them means they are
    // written once and never held or spilled). The output is opened only once the capture has
    // opened, so a capture that cannot be read leaves no half report behind.
    let mut file: Option<AtomicFile> = None;
    let mut begin = || -> anyhow::Result<Option<std::fs::File>> {
        if let Some(p) = args.output.as_deref() {
            file = Some(AtomicFile::create(p)?);
        }
        if !args.json {
            return Ok(None);
        }
        let target: &mut dyn ReportOut = match file.as_mut() {
            Some(f) => f,
            None => &mut *out,
        };
        target.write_all(b"{\"schema\":\"wirelag.report/v1\",")?;
        if let Some(e) = &args.experiment {
            target.write_all(b"\"experiment\":")?;
            serde_json::to_writer(&mut *target, e)?;
            target.write_all(b",")?;
        }
        target.write_all(b"\"requests\":[")?;
        Ok(target.stream_handle()?)
    };
    let Analysed {
        mut analyzer,
        pipeline,
        summary,
        selected,
    } = analyse(path, &decode_as, filter.as_ref(), Some(&mut begin))?;
    let is_selected = |stream: u32| {
        selected
            .as_ref()
            .is_none_or(|s| s.get(stream as usize).copied().unwrap_or(false))
    };
    let mut amplification = Amplification::compute(
        &mut analyzer.units,
        &analyzer.unit_totals,
        baseline,
        args.delay.as_ref(),
    )
    .context("reading back the unit list")?;
    let start = pipeline.first_ts().unwrap_or_default();
    let table = pipeline.table();

    let streams: Vec<StreamReportJson> = table
        .streams()
        .iter()
        .filter(|s| is_selected(s.id))
        .map(|s| {
            let mut tcp = stream_json(s, start);
            let mysql = analyzer.session(s.id).cloned();
            if mysql.is_some() {
                tcp.protocol = "mysql";
            }
            StreamReportJson {
                tcp,
                mysql,
                latency: analyzer.stream_latency(s.id),
            }
        })
        .collect();

    let latency = LatencySectionJson {
        by_command: analyzer.by_command().into_iter().collect(),
        by_fingerprint: analyzer.by_fingerprint(),
        by_stream: streams
            .iter()
            .filter_map(|s| Some((s.tcp.stream, s.latency.clone()?)))
            .collect(),
        by_server: analyzer
            .by_server()
            .into_iter()
            .map(|(e, l)| (format!("{}:{}", e.ip, e.port), l))
            .collect(),
    };
    let mut mysql_anomalies: HashMap<&'static str, u64> = analyzer.anomalies.clone();
    mysql_anomalies.retain(|_, v| *v > 0);
    let capture = CaptureJson::new(path, &summary, &pipeline);

    let target: &mut dyn ReportOut = match file.as_mut() {
        Some(f) => f,
        None => out,
    };
    if args.json {
        write_json(
            target,
            &capture,
            &streams,
            &mut analyzer,
            &latency,
            &mut amplification,
            &mysql_anomalies,
            &pipeline,
        )?;
    } else {
        if let Some(e) = &args.experiment {
            write_experiment(target, e)?;
        }
        write_text(
            target,
            path,
            &capture,
            &streams,
            args.requests,
            &latency,
            &mut analyzer,
            &amplification,
            &mysql_anomalies,
        )?;
    }
    if let Some(f) = file {
        f.commit()?;
    }
    out.flush()?;
    truncation_error(path, &summary, pipeline.frames())
}

/// Runs the analysis of one capture (with the display filter's stream selection).
/// `begin` runs once the capture has opened, just before the main pass: it may return the
/// output descriptor the request list is streamed to. Without it (a baseline) the request list
/// is not kept.
fn analyse(
    path: &Path,
    decode_as: &[u16],
    filter: Option<&DisplayFilter>,
    begin: Option<&mut dyn FnMut() -> anyhow::Result<Option<std::fs::File>>>,
) -> anyhow::Result<Analysed> {
    let decode_as = decode_as.to_vec();
    // With a display filter, a first pass selects the streams that have a matching frame.
    let selected: Option<Vec<bool>> = match filter {
        None => None,
        Some(f) => {
            let mysql = mysql_index_for(Some(f), path, &decode_as)?;
            let mut source = open_capture(path)?;
            let mut p = Pipeline::new(TrackerConfig::default());
            let mut sel = Vec::new();
            pipeline::run(&mut source, &mut p, &mut NoPayload, &mut |rec| {
                if let Some(t) = rec.tracked {
                    let i = t.stream as usize;
                    if sel.len() <= i {
                        sel.resize(i + 1, false);
                    }
                    if frame_matches_with(Some(f), rec, mysql.as_ref()) {
                        if let Some(s) = sel.get_mut(i) {
                            *s = true;
                        }
                    }
                }
                Ok(true)
            })?;
            Some(sel)
        }
    };
    let mut analyzer =
        Analyzer::new(decode_as).context("cannot create temporary files for the report")?;
    if let Some(ts) = first_timestamp(path) {
        analyzer.set_capture_start(ts);
    }
    if let Some(sel) = &selected {
        analyzer.restrict_to(sel.clone());
    }
    let mut source = open_capture(path)?;
    match begin {
        Some(begin) => {
            if let Some(output) = begin()? {
                analyzer.requests.stream_to(output);
            }
        }
        // A baseline: only its units are compared.
        None => analyzer.requests.discard(),
    }
    let mut pipeline = Pipeline::new(TrackerConfig {
        reassemble: true,
        ..TrackerConfig::default()
    });
    let summary = handoff::run(&mut source, &mut pipeline, &mut analyzer)?;
    analyzer
        .finish(pipeline.table())
        .context("cannot write the temporary request list")?;
    Ok(Analysed {
        analyzer,
        pipeline,
        summary,
        selected,
    })
}

#[allow(clippy::too_many_arguments)]
fn write_json(
    out: &mut dyn ReportOut,
    capture: &CaptureJson,
    streams: &[StreamReportJson],
    analyzer: &mut Analyzer,
    latency: &LatencySectionJson,
    amplification: &mut Amplification,
    mysql_anomalies: &HashMap<&'static str, u64>,
    pipeline: &Pipeline,
) -> anyhow::Result<()> {
    // The head, the experiment and the requests' opening went out before the analysis.
    analyzer
        .requests
        .write_array_rest(out)
        .context("writing the request list")?;
    out.write_all(b",\"capture\":")?;
    serde_json::to_writer(&mut *out, capture)?;
    out.write_all(b",\"streams\":")?;
    serde_json::to_writer(&mut *out, streams)?;
    out.write_all(b",\"latency\":")?;
    serde_json::to_writer(&mut *out, latency)?;
    out.write_all(b",\"transactions\":")?;
    analyzer
        .transactions
        .write_array(out)
        .context("reading back the transaction list")?;
    out.write_all(b",\"amplification\":")?;
    amplification
        .write_json(&mut analyzer.units, out)
        .context("reading back the unit list")?;
    let c = pipeline.counters();
    let mut tcp = serde_json::Map::new();
    let (mut retrans, mut lost, mut gaps, mut gap_bytes, mut bound) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    for s in pipeline.table().streams() {
        for d in [
            wirelag_dissectors::tcp::stream::Direction::ToServer,
            wirelag_dissectors::tcp::stream::Direction::ToClient,
        ] {
            retrans += s.stats(d).retransmissions;
            lost += s.stats(d).lost_segments;
            let r = s.reassembly(d);
            gaps += r.gaps;
            gap_bytes += r.gap_bytes;
            bound += r.memory_bound_hits;
        }
    }
    for (k, v) in [
        ("retransmissions", retrans),
        ("lost_segments", lost),
        ("reassembly_gaps", gaps),
        ("reassembly_gap_bytes", gap_bytes),
        ("reassembly_memory_bound_hits", bound),
        ("malformed_frames", c.malformed()),
        ("ip_fragments", c.ip_fragments),
        ("snaplen_cut_frames", c.snaplen_cut),
    ] {
        tcp.insert(k.into(), v.into());
    }
    out.write_all(b",\"anomalies\":")?;
    let mysql: std::collections::BTreeMap<_, _> = mysql_anomalies.iter().collect();
    serde_json::to_writer(
        &mut *out,
        &serde_json::json!({ "mysql": mysql, "tcp": tcp }),
    )?;
    out.write_all(b"}\n")?;
    Ok(())
}

/// The experiment's header in the text report: what was injected, checked and undone.
fn write_experiment(out: &mut dyn Write, e: &serde_json::Value) -> anyhow::Result<()> {
    let s = |v: &serde_json::Value| match v {
        serde_json::Value::String(t) => t.clone(),
        other => other.to_string(),
    };
    writeln!(
        out,
        "Experiment: {} ms on {} ({} backend), port {}: {} delay(s) per round trip",
        s(&e["time_ms"]),
        s(&e["dev"]),
        s(&e["backend"]),
        s(&e["port"]),
        s(&e["directions_per_round_trip"])
    )?;
    for w in ["baseline", "delayed"] {
        writeln!(
            out,
            "  {w:<8} window: {}, {} packets captured{}",
            s(&e[w]["window"]),
            s(&e[w]["packets"]),
            if e["captures_kept"] == true {
                format!(" into {}", s(&e[w]["capture"]))
            } else {
                " (temporary file; --keep-captures DIR keeps it)".to_string()
            }
        )?;
    }
    writeln!(out, "  applied and verified: {}", s(&e["verification"]))?;
    writeln!(out, "  reverted: {}\n", s(&e["reverted"]))?;
    Ok(())
}

fn write_amplification(out: &mut dyn Write, a: &Amplification) -> anyhow::Result<()> {
    use crate::amplify::{fmt_ms, Basis};
    let delay = match (a.injected_delay_us, a.delay_source) {
        (Some(d), src) => format!(
            "injected delay {} per round trip ({})",
            fmt_ms(d as i64),
            serde_json::to_value(src)?.as_str().unwrap_or("")
        ),
        (None, _) => "no injected delay known".to_string(),
    };
    let basis = match (a.basis, &a.baseline_file) {
        (Basis::Baseline, Some(f)) => format!(
            "measured against the baseline {f} ({} units{})",
            a.baseline_units,
            if a.baseline_dropped > 0 {
                format!(
                    ", {} beyond the memory bound not compared",
                    a.baseline_dropped
                )
            } else {
                String::new()
            }
        ),
        (Basis::Model, _) => "attributed as round trips × delay (no baseline)".to_string(),
        _ => "give --delay MS or --baseline CAPTURE to see what a delay adds".to_string(),
    };
    writeln!(out, "\nAmplification: {delay}; {basis}")?;
    if a.basis != Basis::None {
        writeln!(out, "  assumption: {}", a.assumption)?;
        writeln!(
            out,
            "  verdict: {} — {}",
            serde_json::to_value(a.verdict.status)?
                .as_str()
                .unwrap_or("")
                .to_uppercase()
                .replace('_', " "),
            a.verdict.reason
        )?;
    }
    writeln!(
        out,
        "  {:<12} {:>7} {:>8} {:>11} {:>13} {:>13} {:>13} {:>7}",
        "unit", "count", "matched", "round trips", "duration", "added", "added/rt", "factor"
    )?;
    for (kind, k) in &a.by_kind {
        let opt = |v: Option<i64>| v.map_or("-".to_string(), fmt_ms);
        writeln!(
            out,
            "  {:<12} {:>7} {:>8} {:>11} {:>13} {:>13} {:>13} {:>7}",
            kind,
            k.units,
            if a.basis == Basis::Baseline {
                k.matched.to_string()
            } else {
                "-".into()
            },
            k.round_trips,
            fmt_ms(k.duration_us),
            opt(k.added_us),
            opt(k.added_per_round_trip_us),
            k.mean_factor.map_or("-".into(), |f| format!("{f:.2}"))
        )?;
    }
    if !a.top.is_empty() {
        writeln!(out, "  most amplified:")?;
        for u in &a.top {
            let base = u
                .baseline_duration_us
                .map_or(String::new(), |b| format!(" (baseline {})", fmt_ms(b)));
            let factor = match (u.factor, a.injected_delay_us) {
                (Some(f), Some(d)) => format!(" = {f:.2} × {}", fmt_ms(d as i64)),
                _ => String::new(),
            };
            writeln!(
                out,
                "    {} on stream {} frames {}-{}: {} round trip{}, {}{base}; added {}{factor}",
                u.unit.kind,
                u.unit.stream,
                u.unit.first_frame,
                u.unit.last_frame,
                u.unit.round_trips,
                if u.unit.round_trips == 1 { "" } else { "s" },
                fmt_ms(u.unit.duration_us),
                fmt_ms(u.added_us.unwrap_or(0)),
            )?;
        }
    }
    Ok(())
}

fn us(v: u64) -> String {
    if v >= 1_000_000 {
        format!("{:.3} s", v as f64 / 1e6)
    } else if v >= 1_000 {
        format!("{:.3} ms", v as f64 / 1e3)
    } else {
        format!("{v} µs")
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    } else {
        s.to_string()
    }
}

#[allow(clippy::too_many_arguments)]
fn write_text(
    out: &mut dyn Write,
    path: &Path,
    capture: &CaptureJson,
    streams: &[StreamReportJson],
    list_requests: bool,
    latency: &LatencySectionJson,
    analyzer: &mut Analyzer,
    amplification: &Amplification,
    mysql_anomalies: &HashMap<&'static str, u64>,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "Capture {}: {} {}, {} packets, {} TCP streams, {:.6} s{}",
        path.display(),
        capture.format,
        capture.link_types.join("+"),
        capture.packets,
        capture.streams,
        capture.duration_us as f64 / 1e6,
        capture
            .truncated
            .as_ref()
            .map_or(String::new(), |t| format!(
                " — TRUNCATED at byte {}",
                t.offset
            ))
    )?;
    let mysql_streams: Vec<&StreamReportJson> =
        streams.iter().filter(|s| s.mysql.is_some()).collect();
    writeln!(
        out,
        "MySQL: {} streams, {} requests",
        mysql_streams.len(),
        analyzer.requests.count
    )?;
    if mysql_streams.is_empty() {
        writeln!(out, "(no MySQL traffic found; for a server on an unusual port that was not recognised, try --decode-as PORT=mysql)")?;
        return Ok(());
    }

    writeln!(
        out,
        "\nLatency by command (response time: response first byte − request last byte)"
    )?;
    writeln!(
        out,
        "  {:<22} {:>7} {:>11} {:>11} {:>11} {:>11}",
        "command", "count", "p50", "p90", "p99", "max"
    )?;
    for (cmd, l) in &latency.by_command {
        writeln!(
            out,
            "  {:<22} {:>7} {:>11} {:>11} {:>11} {:>11}",
            cmd,
            l.count,
            us(l.p50_us),
            us(l.p90_us),
            us(l.p99_us),
            us(l.max_us)
        )?;
    }

    writeln!(out, "\nSlowest fingerprints (by total response time)")?;
    for f in latency.by_fingerprint.iter().take(10) {
        writeln!(
            out,
            "  {:>11} total {:>6}x p50 {:>10} max {:>10}  {}",
            us(f.total_us),
            f.count,
            us(f.p50_us),
            us(f.max_us),
            clip(&f.fingerprint, 90)
        )?;
    }
    let mut frequent: Vec<&FingerprintJson> = latency.by_fingerprint.iter().collect();
    frequent.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.fingerprint.cmp(&b.fingerprint))
    });
    writeln!(out, "\nMost frequent fingerprints")?;
    for f in frequent.iter().take(10) {
        writeln!(
            out,
            "  {:>7}x p50 {:>10} p99 {:>10}  {}",
            f.count,
            us(f.p50_us),
            us(f.p99_us),
            clip(&f.fingerprint, 90)
        )?;
    }

    writeln!(
        out,
        "\nTransactions: {} (longest first; each round trip pays the network delay again)",
        analyzer.transactions.count
    )?;
    for t in &analyzer.longest {
        writeln!(
            out,
            "  stream {:>4} frames {:>6}-{:<6} {:>3} statements {:>3} round trips {:>11} ({} waiting on responses) {}: {}",
            t.stream,
            t.first_frame,
            t.last_frame,
            t.statements,
            t.round_trips,
            us(t.duration_us.max(0).unsigned_abs()),
            us(t.response_time_us.max(0).unsigned_abs()),
            t.end,
            clip(&t.statements_text.join("; "), 100)
        )?;
    }

    write_amplification(out, amplification)?;

    if !analyzer.errors.is_empty() {
        writeln!(out, "\nErrors: {}", analyzer.errors.len())?;
        for (stream, frame, code, msg) in analyzer.errors.iter().take(20) {
            writeln!(
                out,
                "  stream {stream:>4} frame {frame:>6} error {code}: {}",
                clip(msg, 100)
            )?;
        }
    }
    if !mysql_anomalies.is_empty() {
        let mut a: Vec<_> = mysql_anomalies.iter().collect();
        a.sort();
        writeln!(
            out,
            "\nAnomalies: {}",
            a.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }

    writeln!(out, "\nMySQL streams")?;
    writeln!(
        out,
        "  {:>6}  {:<26} {:<24} {:<18} {:>8} {:>10} {:>10}  flags",
        "stream", "client → server", "server version", "user@db", "requests", "p50", "max"
    )?;
    for s in mysql_streams.iter().take(50) {
        let m = s
            .mysql
            .as_ref()
            .map_or_else(SessionJson::default, Clone::clone);
        let l = s.latency.clone().unwrap_or_default();
        let mut flags = vec![m.detected_by];
        if m.tls {
            flags.push("tls");
        }
        if m.compressed {
            flags.push("compressed");
        }
        writeln!(
            out,
            "  {:>6}  {:<26} {:<24} {:<18} {:>8} {:>10} {:>10}  {}",
            s.tcp.stream,
            clip(
                &format!(
                    "{}:{} → :{}",
                    s.tcp.client.ip, s.tcp.client.port, s.tcp.server.port
                ),
                26
            ),
            clip(m.server_version.as_deref().unwrap_or("-"), 24),
            clip(
                &format!(
                    "{}@{}",
                    m.user.as_deref().unwrap_or("?"),
                    m.database.as_deref().unwrap_or("-")
                ),
                18
            ),
            l.count,
            us(l.p50_us),
            us(l.max_us),
            flags.join(",")
        )?;
    }
    if mysql_streams.len() > 50 {
        writeln!(out, "  ... {} more (see --json)", mysql_streams.len() - 50)?;
    }

    if list_requests {
        writeln!(out, "\nRequests")?;
        writeln!(
            out,
            "  {:>6} {:>7} {:>7} {:<18} {:>11} {:<11} statement",
            "stream", "frame", "resp", "command", "latency", "status"
        )?;
        analyzer
            .requests
            .for_each_object(|object| {
                let r: serde_json::Value = serde_json::from_slice(object)?;
                let status = match r["error_code"].as_u64() {
                    Some(code) => format!("error {code}"),
                    None => r["status"].as_str().unwrap_or("").to_string(),
                };
                // serde_json's Display ignores width, so numbers are turned into strings first.
                let number =
                    |v: &serde_json::Value| v.as_u64().map_or("-".into(), |n| n.to_string());
                writeln!(
                    out,
                    "  {:>6} {:>7} {:>7} {:<18} {:>11} {:<11} {}",
                    number(&r["stream"]),
                    number(&r["frame"]),
                    number(&r["response_frame"]),
                    r["command"].as_str().unwrap_or(""),
                    r["latency_us"].as_u64().map_or("-".into(), us),
                    status,
                    clip(&fold_whitespace(r["statement"].as_str().unwrap_or("")), 100)
                )?;
                Ok(())
            })
            .context("reading back the request list")?;
    }
    Ok(())
}
