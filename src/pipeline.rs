//! The per-frame pipeline: a captured frame is decoded (link → IP → TCP), tracked in the stream
//! table (Wireshark numbering, sequence analysis, optional reassembly) and handed to whoever
//! consumes frames; reassembled payload goes to a [`PayloadSink`].

use wirelag_dissectors::link::LinkType;
use wirelag_dissectors::packet::{decode_frame, DecodeNote, Decoded};
use wirelag_dissectors::tcp::stream::{PayloadSink, StreamTable, Tracked, TrackerConfig};
use wirelag_dissectors::time::Duration;
use wirelag_dissectors::Timestamp;

use crate::capture::{PacketSource, RawPacket, SourceSummary};

/// One frame after decoding and tracking.
#[derive(Clone, Copy, Debug)]
pub struct FrameRecord<'a> {
    /// 1-based position in the capture (`frame.number`).
    pub number: u64,
    pub ts: Timestamp,
    /// Since the first frame of the capture (`frame.time_relative`).
    pub time_rel: Duration,
    /// Since the previous frame (`frame.time_delta`).
    pub time_delta: Duration,
    pub orig_len: u32,
    pub cap_len: u32,
    pub link: LinkType,
    pub decoded: Decoded<'a>,
    /// Set for TCP frames.
    pub tracked: Option<Tracked>,
}

/// Frames that did not reach TCP, by reason; anomalies are the malformed kinds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeCounters {
    pub tcp_frames: u64,
    pub not_ip: u64,
    pub not_tcp: u64,
    pub ip_fragments: u64,
    pub link_truncated: u64,
    pub ip_malformed: u64,
    pub tcp_truncated: u64,
    pub tcp_bad_header: u64,
    /// Frames cut by the snaplen (captured length below the wire length).
    pub snaplen_cut: u64,
    /// Frames whose timestamp is earlier than the previous frame's.
    pub time_went_back: u64,
}

impl DecodeCounters {
    /// Frames whose link, IP or TCP header could not be decoded.
    pub fn malformed(&self) -> u64 {
        self.link_truncated + self.ip_malformed + self.tcp_truncated + self.tcp_bad_header
    }
}

pub struct Pipeline {
    table: StreamTable,
    first_ts: Option<Timestamp>,
    last_ts: Option<Timestamp>,
    prev_ts: Option<Timestamp>,
    frames: u64,
    counters: DecodeCounters,
}

impl Pipeline {
    pub fn new(config: TrackerConfig) -> Self {
        Pipeline {
            table: StreamTable::new(config),
            first_ts: None,
            prev_ts: None,
            last_ts: None,
            frames: 0,
            counters: DecodeCounters::default(),
        }
    }

    pub fn table(&self) -> &StreamTable {
        &self.table
    }

    pub fn counters(&self) -> DecodeCounters {
        self.counters
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }

    pub fn first_ts(&self) -> Option<Timestamp> {
        self.first_ts
    }

    pub fn last_ts(&self) -> Option<Timestamp> {
        self.last_ts
    }

    /// Decodes and tracks one frame.
    pub fn process<'a>(
        &mut self,
        pkt: RawPacket<'a>,
        sink: &mut dyn PayloadSink,
    ) -> FrameRecord<'a> {
        self.frames += 1;
        let number = self.frames;
        let first = *self.first_ts.get_or_insert(pkt.ts);
        if self.last_ts.is_some_and(|prev| pkt.ts < prev) {
            self.counters.time_went_back += 1;
        }
        self.last_ts = Some(self.last_ts.map_or(pkt.ts, |prev| prev.max(pkt.ts)));
        let time_delta = pkt.ts.since(self.prev_ts.unwrap_or(pkt.ts));
        self.prev_ts = Some(pkt.ts);
        let cap_len = u32::try_from(pkt.data.len()).unwrap_or(u32::MAX);
        if cap_len < pkt.orig_len {
            self.counters.snaplen_cut += 1;
        }
        let decoded = decode_frame(pkt.link_type, pkt.data);
        let mut tracked = None;
        match (decoded.ip.as_ref(), decoded.tcp.as_ref()) {
            (Some(ip), Some(seg)) => {
                self.counters.tcp_frames += 1;
                tracked = Some(
                    self.table
                        .track(number, pkt.ts, pkt.orig_len, ip, seg, sink),
                );
            }
            _ => match decoded.note {
                Some(DecodeNote::NotIp) => self.counters.not_ip += 1,
                Some(DecodeNote::NotTcp) => self.counters.not_tcp += 1,
                Some(DecodeNote::IpFragment) => self.counters.ip_fragments += 1,
                Some(DecodeNote::LinkTruncated) => self.counters.link_truncated += 1,
                Some(DecodeNote::IpMalformed) => self.counters.ip_malformed += 1,
                Some(DecodeNote::TcpTruncated) => self.counters.tcp_truncated += 1,
                Some(DecodeNote::TcpBadHeaderLength) => self.counters.tcp_bad_header += 1,
                None => {}
            },
        }
        FrameRecord {
            number,
            ts: pkt.ts,
            time_rel: pkt.ts.since(first),
            time_delta,
            orig_len: pkt.orig_len,
            cap_len,
            link: pkt.link_type,
            decoded,
            tracked,
        }
    }

    /// End of input: flushes reassembly of every open stream.
    pub fn finish(&mut self, sink: &mut dyn PayloadSink) {
        self.table.finish(sink);
    }
}

/// Reads `source` to the end through `pipeline`, calling `on_frame` for every frame. Stops early
/// when `on_frame` returns `Ok(false)`.
pub fn run(
    source: &mut dyn PacketSource,
    pipeline: &mut Pipeline,
    sink: &mut dyn PayloadSink,
    on_frame: &mut dyn FnMut(&FrameRecord<'_>) -> anyhow::Result<bool>,
) -> anyhow::Result<SourceSummary> {
    // The one progress hook of every command's read (a no-op unless the CLI enabled the bar);
    // cleared when it drops, before the caller prints anything.
    let mut meter = crate::progress::Meter::start(source);
    loop {
        let pkt = match source.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => return Err(anyhow::Error::new(e)),
        };
        let rec = pipeline.process(pkt, sink);
        if !on_frame(&rec)? {
            break;
        }
        meter.packet(source);
    }
    meter.finish();
    pipeline.finish(sink);
    Ok(source.summary())
}
