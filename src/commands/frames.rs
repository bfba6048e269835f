//! `wirelag frames`: the packet list, one line per frame (like tshark's default output).

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::commands::{
    frame_matches_with, mysql_index_for, open_capture, parse_filter, truncation_error,
};
use crate::frame_info;
use crate::pipeline::{self, FrameRecord, Pipeline};
use crate::report::CaptureJson;
use crate::timefmt::rfc3339_us;
use wirelag_dissectors::tcp::stream::{NoPayload, TrackerConfig};

#[derive(Serialize)]
struct FrameJson<'a> {
    frame: u64,
    time_rel_us: i64,
    time_epoch_us: i64,
    timestamp: String,
    src: String,
    dst: String,
    src_port: Option<u16>,
    dst_port: Option<u16>,
    protocol: &'static str,
    stream: Option<u32>,
    len: u32,
    cap_len: u32,
    tcp: Option<TcpJson<'a>>,
    info: String,
}

#[derive(Serialize)]
struct TcpJson<'a> {
    flags: String,
    seq: u32,
    ack: u32,
    len: u32,
    window: u64,
    direction: &'static str,
    analysis: Vec<&'a str>,
}

fn frame_json(rec: &FrameRecord<'_>) -> FrameJson<'static> {
    let (src, dst) = frame_info::addresses(rec);
    let seg = rec.decoded.tcp.as_ref();
    let udp = rec.decoded.udp.as_ref();
    FrameJson {
        frame: rec.number,
        time_rel_us: rec.time_rel.as_micros(),
        time_epoch_us: rec.ts.epoch_us(),
        timestamp: rfc3339_us(rec.ts),
        src,
        dst,
        src_port: seg.map(|s| s.src_port).or(udp.map(|u| u.src)),
        dst_port: seg.map(|s| s.dst_port).or(udp.map(|u| u.dst)),
        protocol: frame_info::protocol(rec),
        stream: rec.tracked.map(|t| t.stream),
        len: rec.orig_len,
        cap_len: rec.cap_len,
        tcp: match (seg, rec.tracked.as_ref()) {
            (Some(s), Some(t)) => Some(TcpJson {
                flags: s.flags.names(),
                seq: t.rel_seq,
                ack: t.rel_ack,
                len: s.payload_len,
                window: t.window_size,
                direction: match t.direction {
                    wirelag_dissectors::tcp::stream::Direction::ToServer => "to_server",
                    wirelag_dissectors::tcp::stream::Direction::ToClient => "to_client",
                },
                analysis: t.analysis.labels().collect(),
            }),
            _ => None,
        },
        info: frame_info::info(rec),
    }
}

/// One text line, tshark-style: number, relative time, source → destination, protocol, length,
/// stream, info.
pub fn frame_line(rec: &FrameRecord<'_>) -> String {
    let (src, dst) = frame_info::addresses(rec);
    let stream = rec
        .tracked
        .map_or_else(|| "-".to_string(), |t| t.stream.to_string());
    format!(
        "{:>6} {:>12} {:>15} → {:<15} {:<6} {:>5} {:>5}  {}",
        rec.number,
        format!("{:.6}", rec.time_rel.as_secs_f64()),
        src,
        dst,
        frame_info::protocol(rec),
        rec.orig_len,
        stream,
        frame_info::info(rec)
    )
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
    if json {
        out.write_all(b"{\"schema\":\"wirelag.frames/v1\",\"frames\":[")?;
    } else {
        writeln!(
            out,
            "{:>6} {:>12} {:>15}   {:<15} {:<6} {:>5} {:>5}  Info",
            "No.", "Time", "Source", "Destination", "Proto", "Len", "Strm"
        )?;
    }
    let mut first = true;
    let summary = pipeline::run(&mut source, &mut pipeline, &mut NoPayload, &mut |rec| {
        if !frame_matches_with(filter.as_ref(), rec, mysql.as_ref()) {
            return Ok(true);
        }
        if json {
            if !first {
                out.write_all(b",")?;
            }
            first = false;
            serde_json::to_writer(&mut *out, &frame_json(rec))?;
        } else {
            writeln!(out, "{}", frame_line(rec))?;
        }
        Ok(true)
    })?;
    if json {
        out.write_all(b"],\"capture\":")?;
        serde_json::to_writer(&mut *out, &CaptureJson::new(path, &summary, &pipeline))?;
        out.write_all(b"}\n")?;
    }
    out.flush()?;
    truncation_error(path, &summary, pipeline.frames())
}

/// A frame as one JSON object (for `live --json-lines`).
pub fn frame_json_line(rec: &FrameRecord<'_>) -> anyhow::Result<String> {
    Ok(serde_json::to_string(&frame_json(rec))?)
}
