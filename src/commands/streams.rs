//! `wirelag streams`: the conversation table (like Wireshark's Statistics > Conversations > TCP),
//! one row per `tcp.stream`.

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use wirelag_dissectors::tcp::stream::{Direction, NoPayload, Stream, StreamTable, TrackerConfig};
use wirelag_dissectors::Timestamp;

use crate::commands::{
    frame_matches_with, mysql_index_for, open_capture, parse_filter, truncation_error,
};
use crate::pipeline::{self, Pipeline};
use crate::report::{CaptureJson, EndpointJson};
use crate::timefmt::rfc3339_us;

#[derive(Serialize)]
pub struct DirectionJson {
    pub packets: u64,
    pub bytes: u64,
    pub payload_bytes: u64,
    pub retransmissions: u64,
    pub out_of_order: u64,
    pub lost_segments: u64,
    pub duplicate_acks: u64,
    pub zero_windows: u64,
    pub fin: bool,
    pub rst: bool,
}

#[derive(Serialize)]
pub struct StreamJson {
    pub stream: u32,
    pub client: EndpointJson,
    pub server: EndpointJson,
    /// How the client side was identified (syn, syn_ack, service_port, lower_port, first_sender).
    pub role_evidence: &'static str,
    pub first_frame: u64,
    pub last_frame: u64,
    pub start: String,
    pub start_epoch_us: i64,
    pub start_rel_us: i64,
    pub duration_us: i64,
    pub packets: u64,
    pub bytes: u64,
    pub to_server: DirectionJson,
    pub to_client: DirectionJson,
    pub syn_seen: bool,
    pub handshake_rtt_us: Option<i64>,
    pub server_rtt_us: Option<i64>,
    pub client_rtt_us: Option<i64>,
    pub state: &'static str,
    /// Application protocol; until dissectors run, guessed from the server port.
    pub protocol: &'static str,
}

/// Application protocol suggested by the server port alone.
pub fn protocol_by_port(port: u16) -> &'static str {
    match port {
        3306 | 3307 | 3309 | 13001 | 6033 | 2883 | 20130 | 30130 => "mysql",
        27017..=27019 | 9991 | 3717 | 20000 => "mongodb",
        _ => "tcp",
    }
}

fn direction_json(s: &Stream, dir: Direction) -> DirectionJson {
    let d = s.stats(dir);
    DirectionJson {
        packets: d.packets,
        bytes: d.bytes,
        payload_bytes: d.payload_bytes,
        retransmissions: d.retransmissions,
        out_of_order: d.out_of_order,
        lost_segments: d.lost_segments,
        duplicate_acks: d.duplicate_acks,
        zero_windows: d.zero_windows,
        fin: d.fin,
        rst: d.rst,
    }
}

pub fn stream_json(s: &Stream, capture_start: Timestamp) -> StreamJson {
    StreamJson {
        stream: s.id,
        client: s.client().into(),
        server: s.server().into(),
        role_evidence: s.role_evidence.name(),
        first_frame: s.first_frame,
        last_frame: s.last_frame,
        start: rfc3339_us(s.first_ts),
        start_epoch_us: s.first_ts.epoch_us(),
        start_rel_us: s.first_ts.since(capture_start).as_micros(),
        duration_us: s.duration().as_micros(),
        packets: s.packets(),
        bytes: s.bytes(),
        to_server: direction_json(s, Direction::ToServer),
        to_client: direction_json(s, Direction::ToClient),
        syn_seen: s.syn_seen,
        handshake_rtt_us: s.handshake_rtt().map(|d| d.as_micros()),
        server_rtt_us: s.server_rtt().map(|d| d.as_micros()),
        client_rtt_us: s.client_rtt().map(|d| d.as_micros()),
        state: s.state.name(),
        protocol: protocol_by_port(s.server().port),
    }
}

fn anomalies_text(s: &Stream) -> String {
    let mut parts = Vec::new();
    let (c, v) = (s.stats(Direction::ToServer), s.stats(Direction::ToClient));
    let retrans = c.retransmissions + v.retransmissions;
    let lost = c.lost_segments + v.lost_segments;
    let ooo = c.out_of_order + v.out_of_order;
    let dup = c.duplicate_acks + v.duplicate_acks;
    let zw = c.zero_windows + v.zero_windows;
    for (n, label) in [
        (retrans, "retrans"),
        (lost, "lost"),
        (ooo, "ooo"),
        (dup, "dupack"),
        (zw, "zerowin"),
    ] {
        if n > 0 {
            parts.push(format!("{label}={n}"));
        }
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(",")
    }
}

fn endpoint_text(e: wirelag_dissectors::tcp::stream::Endpoint) -> String {
    match e.ip {
        std::net::IpAddr::V4(a) => format!("{a}:{}", e.port),
        std::net::IpAddr::V6(a) => format!("[{a}]:{}", e.port),
    }
}

fn ms(d: Option<wirelag_dissectors::time::Duration>) -> String {
    d.map_or_else(
        || "-".into(),
        |d| format!("{:.3}", d.as_nanos() as f64 / 1e6),
    )
}

pub fn print_text(
    table: &StreamTable,
    selected: &[bool],
    capture_start: Timestamp,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "{:>6}  {:<28} {:<28} {:>13} {:>21} {:>11} {:>10} {:>9} {:<11} Anomalies",
        "Stream",
        "Client",
        "Server",
        "Frames c>s/s>c",
        "Bytes c>s/s>c",
        "Start(s)",
        "Dur(s)",
        "HS-RTT(ms)",
        "State"
    )?;
    for s in table
        .streams()
        .iter()
        .filter(|s| selected.get(s.id as usize).copied().unwrap_or(false))
    {
        let (c, v) = (s.stats(Direction::ToServer), s.stats(Direction::ToClient));
        writeln!(
            out,
            "{:>6}  {:<28} {:<28} {:>13} {:>21} {:>11.6} {:>10.6} {:>9} {:<11} {}",
            s.id,
            endpoint_text(s.client()),
            endpoint_text(s.server()),
            format!("{}/{}", c.packets, v.packets),
            format!("{}/{}", c.bytes, v.bytes),
            s.first_ts.since(capture_start).as_secs_f64(),
            s.duration().as_secs_f64(),
            ms(s.handshake_rtt()),
            s.state.name(),
            anomalies_text(s)
        )?;
    }
    Ok(())
}

pub fn run(
    path: &Path,
    filter: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let filter = parse_filter(filter)?;
    let mysql = mysql_index_for(filter.as_ref(), path, &[])?;
    let mut source = open_capture(path)?;
    let mut pipeline = Pipeline::new(TrackerConfig::default());
    // With a filter, a stream is listed when at least one of its frames matches.
    let mut selected: Vec<bool> = Vec::new();
    let summary = pipeline::run(&mut source, &mut pipeline, &mut NoPayload, &mut |rec| {
        if let Some(t) = rec.tracked {
            let i = t.stream as usize;
            if selected.len() <= i {
                selected.resize(i + 1, false);
            }
            if filter.is_none() || frame_matches_with(filter.as_ref(), rec, mysql.as_ref()) {
                if let Some(slot) = selected.get_mut(i) {
                    *slot = true;
                }
            }
        }
        Ok(true)
    })?;
    let start = pipeline.first_ts().unwrap_or_default();
    let table = pipeline.table();
    if json {
        out.write_all(b"{\"schema\":\"wirelag.streams/v1\",\"streams\":[")?;
        let mut first = true;
        for s in table
            .streams()
            .iter()
            .filter(|s| selected.get(s.id as usize).copied().unwrap_or(false))
        {
            if !first {
                out.write_all(b",")?;
            }
            first = false;
            serde_json::to_writer(&mut *out, &stream_json(s, start))?;
        }
        out.write_all(b"],\"capture\":")?;
        serde_json::to_writer(&mut *out, &CaptureJson::new(path, &summary, &pipeline))?;
        out.write_all(b"}\n")?;
    } else {
        print_text(table, &selected, start, out)?;
    }
    out.flush()?;
    truncation_error(path, &summary, pipeline.frames())
}
