//! `wirelag follow --stream N`: one connection as a timeline of payload messages. A message is
//! a run of reassembled payload in one direction; the gap before it is the silence since the
//! other side's previous message (for a response: the response time seen from the tap).

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use wirelag_dissectors::tcp::reassembly::Chunk;
use wirelag_dissectors::tcp::stream::{Direction, PayloadSink, StreamId, TrackerConfig};
use wirelag_dissectors::Timestamp;

use crate::analysis::{fold_whitespace, Analyzer, FollowedExchange};
use crate::commands::streams::{stream_json, StreamJson};
use crate::commands::{open_capture, truncation_error};
use crate::pipeline::{self, Pipeline};
use crate::report::CaptureJson;

const PREVIEW_BYTES: usize = 48;

/// A run of payload in one direction.
#[derive(Debug, Clone)]
pub struct Message {
    pub direction: Direction,
    pub first_frame: u64,
    pub last_frame: u64,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    pub bytes: u64,
    pub segments: u64,
    /// Bytes of this message that were never captured.
    pub missing_bytes: u64,
    pub preview: Vec<u8>,
}

/// Collects the messages of one stream from reassembled payload.
pub struct MessageCollector {
    target: StreamId,
    pub messages: Vec<Message>,
}

impl MessageCollector {
    pub fn new(target: StreamId) -> Self {
        MessageCollector {
            target,
            messages: Vec::new(),
        }
    }

    fn current(&mut self, dir: Direction, frame: u64, ts: Timestamp) -> &mut Message {
        let start_new = self.messages.last().is_none_or(|m| m.direction != dir);
        if start_new {
            self.messages.push(Message {
                direction: dir,
                first_frame: frame,
                last_frame: frame,
                first_ts: ts,
                last_ts: ts,
                bytes: 0,
                segments: 0,
                missing_bytes: 0,
                preview: Vec::new(),
            });
        }
        let len = self.messages.len();
        // A message was pushed above when none matched, so the last one exists.
        &mut self.messages[len - 1]
    }
}

/// Feeds the message timeline and the protocol analyzer from one reassembly.
struct FollowSink<'a> {
    messages: &'a mut MessageCollector,
    analyzer: &'a mut Analyzer,
}

impl PayloadSink for FollowSink<'_> {
    fn roles(
        &mut self,
        stream: StreamId,
        client: wirelag_dissectors::tcp::stream::Endpoint,
        server: wirelag_dissectors::tcp::stream::Endpoint,
    ) {
        self.analyzer.roles(stream, client, server);
    }

    fn payload(&mut self, stream: StreamId, dir: Direction, chunk: Chunk<'_>) {
        self.messages.payload(stream, dir, chunk);
        self.analyzer.payload(stream, dir, chunk);
    }

    fn direction_closed(&mut self, stream: StreamId, dir: Direction, frame: u64, ts: Timestamp) {
        self.analyzer.direction_closed(stream, dir, frame, ts);
    }
}

/// The decoded exchange a message carries: a request whose last segment lies in a message to
/// the server, or a response whose first segment lies in a message to the client.
fn exchange_of<'e>(m: &Message, exchanges: &'e [FollowedExchange]) -> Option<&'e FollowedExchange> {
    let within = |f: u64| (m.first_frame..=m.last_frame).contains(&f);
    match m.direction {
        Direction::ToServer => exchanges
            .iter()
            .find(|x| within(x.request_last_frame) || within(x.request_first_frame)),
        Direction::ToClient => exchanges
            .iter()
            .find(|x| x.response_first_frame.is_some_and(within)),
    }
}

fn describe_exchange(m: &Message, x: &FollowedExchange) -> String {
    match m.direction {
        Direction::ToServer => match &x.statement {
            Some(sql) => format!("{} {}", x.command, fold_whitespace(sql)),
            None => x.command.to_string(),
        },
        Direction::ToClient => {
            let mut s = match x.error_code {
                Some(code) => format!("{} error {code}", x.command),
                None => format!("{} {}", x.command, x.status),
            };
            if let Some(r) = x.rows {
                s.push_str(&format!(", {r} rows"));
            }
            if let Some(a) = x.affected_rows {
                s.push_str(&format!(", {a} affected"));
            }
            if let Some(l) = x.latency_us {
                s.push_str(&format!(", response time {:.3} ms", l as f64 / 1e3));
            }
            s
        }
    }
}

impl PayloadSink for MessageCollector {
    fn payload(&mut self, stream: StreamId, dir: Direction, chunk: Chunk<'_>) {
        if stream != self.target {
            return;
        }
        match chunk {
            Chunk::Data { bytes, frame, ts } => {
                let m = self.current(dir, frame, ts);
                if m.segments == 0 || m.last_frame != frame {
                    m.segments += 1;
                }
                m.last_frame = m.last_frame.max(frame);
                m.last_ts = m.last_ts.max(ts);
                m.bytes += bytes.len() as u64;
                let room = PREVIEW_BYTES.saturating_sub(m.preview.len());
                m.preview
                    .extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or(&[]));
            }
            Chunk::Gap { len, frame, ts, .. } => {
                let m = self.current(dir, frame, ts);
                m.missing_bytes += len;
                m.bytes += len;
            }
        }
    }
}

/// Printable preview: ASCII as is, other bytes as `\xNN`, like Follow TCP Stream's dots but
/// lossless.
pub fn escape_preview(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(char::from(b)),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

#[derive(Serialize)]
struct MessageJson {
    index: usize,
    direction: &'static str,
    first_frame: u64,
    last_frame: u64,
    time_rel_us: i64,
    end_rel_us: i64,
    duration_us: i64,
    /// Silence since the end of the previous message (any direction).
    gap_before_us: Option<i64>,
    bytes: u64,
    segments: u64,
    missing_bytes: u64,
    preview: String,
    /// The MySQL exchange this message carries, when the stream is MySQL.
    mysql: Option<FollowedExchange>,
}

#[derive(Serialize)]
struct FollowJson {
    schema: &'static str,
    stream: StreamJson,
    messages: Vec<MessageJson>,
    capture: CaptureJson,
}

fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::ToServer => "to_server",
        Direction::ToClient => "to_client",
    }
}

pub fn run(path: &Path, stream: u32, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut source = open_capture(path)?;
    let mut pipeline = Pipeline::new(TrackerConfig {
        reassemble: true,
        ..TrackerConfig::default()
    });
    let mut collector = MessageCollector::new(stream);
    let mut analyzer = Analyzer::new(Vec::new()).context("cannot create temporary files")?;
    analyzer.follow(stream);
    let summary = {
        let mut sink = FollowSink {
            messages: &mut collector,
            analyzer: &mut analyzer,
        };
        pipeline::run(&mut source, &mut pipeline, &mut sink, &mut |_| Ok(true))?
    };
    analyzer
        .finish(pipeline.table())
        .context("temporary files")?;
    let exchanges = &analyzer.followed;
    let start = pipeline.first_ts().unwrap_or_default();
    let Some(s) = pipeline.table().stream(stream) else {
        let n = pipeline.table().streams().len();
        anyhow::bail!(crate::UsageError(format!(
            "{}: no tcp.stream {stream} (the capture has {n} TCP stream{}{})",
            path.display(),
            if n == 1 { "" } else { "s" },
            if n > 0 {
                format!(", numbered 0..={}", n - 1)
            } else {
                String::new()
            }
        )));
    };
    let messages = &collector.messages;
    if json {
        let doc = FollowJson {
            schema: "wirelag.follow/v1",
            stream: stream_json(s, start),
            messages: messages
                .iter()
                .enumerate()
                .map(|(i, m)| MessageJson {
                    index: i,
                    direction: dir_name(m.direction),
                    first_frame: m.first_frame,
                    last_frame: m.last_frame,
                    time_rel_us: m.first_ts.since(start).as_micros(),
                    end_rel_us: m.last_ts.since(start).as_micros(),
                    duration_us: m.last_ts.since(m.first_ts).as_micros(),
                    gap_before_us: i
                        .checked_sub(1)
                        .and_then(|p| messages.get(p))
                        .map(|p| m.first_ts.since(p.last_ts).as_micros()),
                    bytes: m.bytes,
                    segments: m.segments,
                    missing_bytes: m.missing_bytes,
                    preview: escape_preview(&m.preview),
                    mysql: exchange_of(m, exchanges).cloned(),
                })
                .collect(),
            capture: CaptureJson::new(path, &summary, &pipeline),
        };
        serde_json::to_writer(&mut *out, &doc)?;
        out.write_all(b"\n")?;
    } else {
        let c = s.client();
        let v = s.server();
        writeln!(
            out,
            "Stream {}: client {}:{} → server {}:{} ({}), frames {}..{}, {} packets, {:.6} s, state {}{}",
            s.id,
            c.ip,
            c.port,
            v.ip,
            v.port,
            s.role_evidence.name(),
            s.first_frame,
            s.last_frame,
            s.packets(),
            s.duration().as_secs_f64(),
            s.state.name(),
            s.handshake_rtt().map_or(String::new(), |d| format!(", handshake RTT {:.3} ms", d.as_nanos() as f64 / 1e6))
        )?;
        if messages.is_empty() {
            writeln!(out, "(no payload in either direction)")?;
        }
        writeln!(
            out,
            "{:>5}  {:<3} {:>13} {:>12} {:>10} {:>11} {:>5}  Content",
            "#", "Dir", "Frames", "Time(s)", "Bytes", "Gap(ms)", "Segs"
        )?;
        for (i, m) in messages.iter().enumerate() {
            let gap = i.checked_sub(1).and_then(|p| messages.get(p)).map_or_else(
                || "-".to_string(),
                |p| format!("{:.3}", m.first_ts.since(p.last_ts).as_nanos() as f64 / 1e6),
            );
            let arrow = match m.direction {
                Direction::ToServer => "→",
                Direction::ToClient => "←",
            };
            // Decoded protocol content when there is some, the raw bytes otherwise.
            let shown = exchange_of(m, exchanges)
                .map_or_else(|| escape_preview(&m.preview), |x| describe_exchange(m, x));
            let missing = if m.missing_bytes > 0 {
                format!(" [{} bytes not captured]", m.missing_bytes)
            } else {
                String::new()
            };
            writeln!(
                out,
                "{:>5}  {:<3} {:>13} {:>12.6} {:>10} {:>11} {:>5}  {}{}",
                i,
                arrow,
                format!("{}-{}", m.first_frame, m.last_frame),
                m.first_ts.since(start).as_secs_f64(),
                m.bytes,
                gap,
                m.segments,
                shown,
                missing
            )?;
        }
    }
    out.flush()?;
    truncation_error(path, &summary, pipeline.frames())
}
