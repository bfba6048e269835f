//! The TCP stream table: Wireshark's `tcp.stream` numbering, client/server roles, handshake RTT,
//! Wireshark-style sequence analysis (retransmissions, out-of-order, lost segments, duplicate
//! ACKs, zero windows, keep-alives) and, when asked, reassembly of each direction.
//!
//! Numbering follows Wireshark's TCP dissector so that every stream index can be typed into
//! Wireshark as `tcp.stream eq N`:
//! - streams are numbered from 0 in order of their first frame;
//! - a frame belongs to the latest stream with the same address/port pair (either direction);
//! - a SYN without ACK starts a new stream on a pair already seen when its sequence number
//!   differs from the base sequence number of that direction (a reused 4-tuple); a SYN with the
//!   same sequence number is a retransmission of the same connection.
//!
//! The base sequence number of a direction is the SYN's sequence number, or, when the capture
//! starts mid-stream, one less than the first sequence number seen in that direction, or one
//! less than the first acknowledgement number the other side sent (as in Wireshark).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use crate::ip::IpHeader;
use crate::tcp::reassembly::{Budget, Chunk, Limits, Reassembler, ReassemblyStats};
use crate::tcp::{SeqNumber, TcpSegment};
use crate::time::Duration;
use crate::Timestamp;

/// Index of a stream: equal to Wireshark's `tcp.stream`.
pub type StreamId = u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

/// Direction of a segment relative to the connection's roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    ToServer,
    ToClient,
}

impl Direction {
    pub fn index(self) -> usize {
        match self {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        }
    }

    pub fn reverse(self) -> Direction {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }
}

/// How the client of a stream was identified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleEvidence {
    /// It sent the SYN.
    Syn,
    /// The other side sent a SYN/ACK (the SYN was not captured).
    SynAck,
    /// The other side uses a well-known service port.
    ServicePort,
    /// The other side uses the lower port number (neither is a known service port).
    LowerPort,
    /// It sent the first frame (both ports equal).
    FirstSender,
}

impl RoleEvidence {
    pub fn name(self) -> &'static str {
        match self {
            RoleEvidence::Syn => "syn",
            RoleEvidence::SynAck => "syn_ack",
            RoleEvidence::ServicePort => "service_port",
            RoleEvidence::LowerPort => "lower_port",
            RoleEvidence::FirstSender => "first_sender",
        }
    }
}

/// Wireshark's `tcp.analysis.*` findings for one segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Analysis(pub u16);

impl Analysis {
    pub const RETRANSMISSION: u16 = 1 << 0;
    pub const FAST_RETRANSMISSION: u16 = 1 << 1;
    pub const SPURIOUS_RETRANSMISSION: u16 = 1 << 2;
    pub const OUT_OF_ORDER: u16 = 1 << 3;
    pub const LOST_SEGMENT: u16 = 1 << 4;
    pub const DUPLICATE_ACK: u16 = 1 << 5;
    pub const ZERO_WINDOW: u16 = 1 << 6;
    pub const ZERO_WINDOW_PROBE: u16 = 1 << 7;
    pub const KEEP_ALIVE: u16 = 1 << 8;
    pub const WINDOW_UPDATE: u16 = 1 << 9;
    pub const PORTS_REUSED: u16 = 1 << 10;
    pub const ACKED_UNSEEN: u16 = 1 << 11;

    pub fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }

    fn set(&mut self, bit: u16) {
        self.0 |= bit;
    }

    /// Wireshark's Info-column labels, in the order it prints them.
    pub fn labels(self) -> impl Iterator<Item = &'static str> {
        const LABELS: [(u16, &str); 11] = [
            (Analysis::PORTS_REUSED, "TCP Port numbers reused"),
            (Analysis::LOST_SEGMENT, "TCP Previous segment not captured"),
            (Analysis::ACKED_UNSEEN, "TCP ACKed unseen segment"),
            (
                Analysis::SPURIOUS_RETRANSMISSION,
                "TCP Spurious Retransmission",
            ),
            (Analysis::FAST_RETRANSMISSION, "TCP Fast Retransmission"),
            (Analysis::RETRANSMISSION, "TCP Retransmission"),
            (Analysis::OUT_OF_ORDER, "TCP Out-Of-Order"),
            (Analysis::ZERO_WINDOW_PROBE, "TCP ZeroWindowProbe"),
            (Analysis::KEEP_ALIVE, "TCP Keep-Alive"),
            (Analysis::WINDOW_UPDATE, "TCP Window Update"),
            (Analysis::ZERO_WINDOW, "TCP ZeroWindow"),
        ];
        let bits = self.0;
        LABELS
            .into_iter()
            .filter(move |(b, _)| bits & b != 0)
            .map(|(_, l)| l)
    }

    /// Wireshark sets `tcp.analysis.retransmission` for fast and spurious retransmissions too.
    pub fn is_retransmission(self) -> bool {
        self.has(Self::RETRANSMISSION)
            || self.has(Self::FAST_RETRANSMISSION)
            || self.has(Self::SPURIOUS_RETRANSMISSION)
    }
}

/// The tracker's verdict on one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tracked {
    pub stream: StreamId,
    pub direction: Direction,
    /// True when this frame opened the stream.
    pub new_stream: bool,
    /// Sequence and acknowledgement numbers relative to each direction's base (`tcp.seq`,
    /// `tcp.ack`, as Wireshark shows them).
    pub rel_seq: u32,
    pub rel_ack: u32,
    pub analysis: Analysis,
    /// Window after scaling, when the scale is known (`tcp.window_size`).
    pub window_size: u64,
    /// For a duplicate ACK: the frame it duplicates and how many duplicates so far.
    pub dup_ack: Option<(u64, u32)>,
}

/// Per-direction counters, reported per stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionStats {
    pub packets: u64,
    /// Frame bytes (on-the-wire frame length), as Wireshark's conversation table counts.
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

#[derive(Debug, Default)]
struct DirectionState {
    base_seq: Option<SeqNumber>,
    /// Highest sequence number + length seen (Wireshark's `nextseq`), and when.
    next_seq: Option<SeqNumber>,
    next_seq_ts: Timestamp,
    last_ack: Option<SeqNumber>,
    last_ack_ts: Timestamp,
    window: Option<u16>,
    window_scale: Option<u8>,
    dup_acks_in_row: u32,
    /// The last ACK that was not a duplicate (Wireshark's "Dup ACK N#k" names it).
    last_non_dup_ack_frame: u64,
    stats: DirectionStats,
    reassembler: Option<Box<Reassembler>>,
    /// Reassembly counters kept after the reassembler is dropped at close.
    reassembly: ReassemblyStats,
}

/// Lifecycle of a connection as seen on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamState {
    Handshake,
    Established,
    Closing,
    Closed,
    Reset,
}

impl StreamState {
    pub fn name(self) -> &'static str {
        match self {
            StreamState::Handshake => "handshake",
            StreamState::Established => "established",
            StreamState::Closing => "closing",
            StreamState::Closed => "closed",
            StreamState::Reset => "reset",
        }
    }
}

/// One TCP conversation.
#[derive(Debug)]
pub struct Stream {
    pub id: StreamId,
    /// Source of the stream's first frame.
    a: Endpoint,
    b: Endpoint,
    client_is_a: bool,
    pub role_evidence: RoleEvidence,
    pub first_frame: u64,
    pub last_frame: u64,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    /// Indexed by `from_a as usize ^ 1`: 0 = a→b, 1 = b→a.
    dirs: [DirectionState; 2],
    pub syn_seen: bool,
    syn_ts: Option<Timestamp>,
    syn_ack_ts: Option<Timestamp>,
    handshake_ack_ts: Option<Timestamp>,
    pub state: StreamState,
}

/// Services whose port identifies the server side when the SYN was not captured.
const SERVICE_PORTS: &[u16] = &[
    20, 21, 22, 23, 25, 53, 80, 110, 143, 443, 465, 587, 993, 995, 1433, 1521, 2883, 3306, 3307,
    3309, 5432, 6033, 6379, 8080, 8443, 9200, 10086, 11211, 13001, 20000, 20130, 27017, 27018,
    27019, 27777, 30130,
];

impl Stream {
    pub fn client(&self) -> Endpoint {
        if self.client_is_a {
            self.a
        } else {
            self.b
        }
    }

    pub fn server(&self) -> Endpoint {
        if self.client_is_a {
            self.b
        } else {
            self.a
        }
    }

    fn dir_index(&self, dir: Direction) -> usize {
        // dirs[0] is a→b. ToServer is a→b when the client is a.
        match (dir, self.client_is_a) {
            (Direction::ToServer, true) | (Direction::ToClient, false) => 0,
            _ => 1,
        }
    }

    pub fn stats(&self, dir: Direction) -> &DirectionStats {
        &self.dir_ref(dir).stats
    }

    fn dir_ref(&self, dir: Direction) -> &DirectionState {
        dir_ref(&self.dirs, self.dir_index(dir))
    }

    /// Reassembly counters of one direction (zero when reassembly was off).
    pub fn reassembly(&self, dir: Direction) -> ReassemblyStats {
        let d = self.dir_ref(dir);
        d.reassembler.as_ref().map_or(d.reassembly, |r| r.stats)
    }

    pub fn packets(&self) -> u64 {
        self.dirs[0].stats.packets + self.dirs[1].stats.packets
    }

    pub fn bytes(&self) -> u64 {
        self.dirs[0].stats.bytes + self.dirs[1].stats.bytes
    }

    pub fn duration(&self) -> Duration {
        self.last_ts.since(self.first_ts)
    }

    /// SYN to the client's ACK of the SYN/ACK (Wireshark's `tcp.analysis.initial_rtt`).
    pub fn handshake_rtt(&self) -> Option<Duration> {
        Some(self.handshake_ack_ts?.since(self.syn_ts?))
    }

    /// SYN to SYN/ACK: the network and stack delay between the capture point and the server.
    pub fn server_rtt(&self) -> Option<Duration> {
        Some(self.syn_ack_ts?.since(self.syn_ts?))
    }

    /// SYN/ACK to the handshake's final ACK: the delay on the client's side of the tap.
    pub fn client_rtt(&self) -> Option<Duration> {
        Some(self.handshake_ack_ts?.since(self.syn_ack_ts?))
    }
}

/// Options of the tracker.
#[derive(Clone, Copy, Debug)]
pub struct TrackerConfig {
    /// Reassemble payload and hand it to the sink (off for packet lists and conversation
    /// tables, which need no payload).
    pub reassemble: bool,
    pub limits: Limits,
    /// Out-of-order bytes held across all streams.
    pub global_buffer_cap: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            reassemble: false,
            limits: Limits::default(),
            global_buffer_cap: 64 << 20,
        }
    }
}

/// Receives reassembled payload.
pub trait PayloadSink {
    /// Called before any payload of a segment is delivered, with the stream's current roles
    /// (they can change when a late SYN/ACK settles them), so protocol detection by port works
    /// from the first byte.
    fn roles(&mut self, _stream: StreamId, _client: Endpoint, _server: Endpoint) {}
    fn payload(&mut self, stream: StreamId, dir: Direction, chunk: Chunk<'_>);
    /// A direction ended (FIN or RST) or the capture ended; no more payload follows for it.
    fn direction_closed(
        &mut self,
        _stream: StreamId,
        _dir: Direction,
        _frame: u64,
        _ts: Timestamp,
    ) {
    }
}

/// A sink that discards everything (for callers that only need the table).
pub struct NoPayload;

impl PayloadSink for NoPayload {
    fn payload(&mut self, _: StreamId, _: Direction, _: Chunk<'_>) {}
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FlowKey {
    lo: Endpoint,
    hi: Endpoint,
}

/// An endpoint folded into integers for hashing: the derived `Hash` of `IpAddr` feeds the
/// hasher byte by byte, which showed up in profiles of the per-packet path.
fn endpoint_words(e: &Endpoint) -> (u64, u64) {
    match e.ip {
        IpAddr::V4(a) => ((u64::from(u32::from(a)) << 16) | u64::from(e.port), 0),
        IpAddr::V6(a) => {
            let v = u128::from(a);
            ((v as u64) ^ u64::from(e.port), ((v >> 64) as u64) | 1)
        }
    }
}

impl std::hash::Hash for FlowKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (a, b) = endpoint_words(&self.lo);
        let (c, d) = endpoint_words(&self.hi);
        state.write_u64(a);
        state.write_u64(b);
        state.write_u64(c);
        state.write_u64(d);
    }
}

impl FlowKey {
    fn new(x: Endpoint, y: Endpoint) -> Self {
        if x <= y {
            FlowKey { lo: x, hi: y }
        } else {
            FlowKey { lo: y, hi: x }
        }
    }
}

/// FxHash: the flow map is on the per-packet path and its keys are not attacker-chosen in a
/// way that matters for an offline analyzer with a bounded table.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Whole words straight from the slice; the tail (if any) packed into one more word. A
        // byte-wise copy into a scratch array per word compiled to a call to memcpy.
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.mix(<[u8; 8]>::try_from(w).map_or(0, u64::from_le_bytes));
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let v = tail
                .iter()
                .rev()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            self.mix(v);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.mix(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl FxHasher {
    fn mix(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub type FxBuildHasher = BuildHasherDefault<FxHasher>;

/// Wireshark's default out-of-order threshold when no handshake RTT is known.
const OOO_THRESHOLD_DEFAULT_NS: i64 = 3_000_000;
/// Wireshark's window for a retransmission to count as "fast" after duplicate ACKs.
const FAST_RETRANSMISSION_WINDOW_NS: i64 = 20_000_000;

/// All TCP conversations of a capture.
pub struct StreamTable {
    config: TrackerConfig,
    by_flow: HashMap<FlowKey, StreamId, FxBuildHasher>,
    streams: Vec<Stream>,
    budget: Budget,
}

impl StreamTable {
    pub fn new(config: TrackerConfig) -> Self {
        StreamTable {
            budget: Budget::new(config.global_buffer_cap),
            config,
            by_flow: HashMap::default(),
            streams: Vec::new(),
        }
    }

    pub fn streams(&self) -> &[Stream] {
        &self.streams
    }

    pub fn stream(&self, id: StreamId) -> Option<&Stream> {
        self.streams.get(id as usize)
    }

    /// Out-of-order bytes currently held and how often the global cap forced a gap.
    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// Tracks one TCP segment of frame `frame` (1-based), captured at `ts`, `frame_len` bytes on
    /// the wire.
    pub fn track(
        &mut self,
        frame: u64,
        ts: Timestamp,
        frame_len: u32,
        ip: &IpHeader,
        seg: &TcpSegment<'_>,
        sink: &mut dyn PayloadSink,
    ) -> Tracked {
        let src = Endpoint {
            ip: ip.src,
            port: seg.src_port,
        };
        let dst = Endpoint {
            ip: ip.dst,
            port: seg.dst_port,
        };
        let key = FlowKey::new(src, dst);
        let pure_syn = seg.flags.syn() && !seg.flags.ack();

        let mut new_stream = false;
        let mut reused = false;
        let id = match self.by_flow.get(&key).copied() {
            Some(id) => {
                let existing = self.streams.get(id as usize);
                let restart = pure_syn
                    && existing.is_some_and(|s| {
                        let from_a = s.a == src;
                        let d = if from_a { &s.dirs[0] } else { &s.dirs[1] };
                        d.base_seq.is_some_and(|b| b != seg.seq)
                    });
                if restart {
                    reused = true;
                    self.close_stream(id, frame, ts, sink);
                    self.open_stream(key, src, dst, seg, frame, ts)
                } else {
                    id
                }
            }
            None => self.open_stream(key, src, dst, seg, frame, ts),
        };
        if self
            .streams
            .get(id as usize)
            .is_some_and(|s| s.first_frame == frame)
        {
            new_stream = true;
        }
        let reassemble = self.config.reassemble;
        let limits = self.config.limits;
        let Some(stream) = self.streams.get_mut(id as usize) else {
            // Unreachable by construction (ids index `streams`); degrade gracefully anyway.
            return Tracked {
                stream: id,
                direction: Direction::ToServer,
                new_stream,
                rel_seq: 0,
                rel_ack: 0,
                analysis: Analysis::default(),
                window_size: u64::from(seg.window),
                dup_ack: None,
            };
        };
        let from_a = stream.a == src;
        let direction = if from_a == stream.client_is_a {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let (fwd_i, rev_i) = if from_a { (0, 1) } else { (1, 0) };

        stream.last_frame = frame;
        stream.last_ts = ts;

        // Roles: a SYN or SYN/ACK settles them even when the stream began mid-connection.
        if seg.flags.syn() && !matches!(stream.role_evidence, RoleEvidence::Syn) {
            let sender_is_client = !seg.flags.ack();
            stream.client_is_a = if sender_is_client { from_a } else { !from_a };
            stream.role_evidence = if sender_is_client {
                RoleEvidence::Syn
            } else {
                RoleEvidence::SynAck
            };
        }
        let direction = if seg.flags.syn() {
            if from_a == stream.client_is_a {
                Direction::ToServer
            } else {
                Direction::ToClient
            }
        } else {
            direction
        };

        // Handshake timing.
        if pure_syn {
            stream.syn_seen = true;
            stream.syn_ts.get_or_insert(ts);
        } else if seg.flags.syn() && seg.flags.ack() {
            stream.syn_ack_ts.get_or_insert(ts);
        } else if seg.flags.ack()
            && direction == Direction::ToServer
            && stream.syn_ack_ts.is_some()
            && stream.handshake_ack_ts.is_none()
        {
            stream.handshake_ack_ts = Some(ts);
            if stream.state == StreamState::Handshake {
                stream.state = StreamState::Established;
            }
        }
        if stream.state == StreamState::Handshake && !seg.flags.syn() && stream.syn_ack_ts.is_none()
        {
            // Began mid-connection.
            stream.state = StreamState::Established;
        }

        // Base sequence numbers (Wireshark's relative numbering).
        {
            let fwd = dir_mut(&mut stream.dirs, fwd_i);
            if fwd.base_seq.is_none() {
                fwd.base_seq = Some(if seg.flags.syn() {
                    seg.seq
                } else {
                    SeqNumber(seg.seq.0.wrapping_sub(1))
                });
            }
            if seg.flags.syn() {
                fwd.window_scale = seg.options.window_scale;
            }
        }
        let rev = dir_mut(&mut stream.dirs, rev_i);
        if seg.flags.ack() && rev.base_seq.is_none() {
            rev.base_seq = Some(SeqNumber(seg.ack.0.wrapping_sub(1)));
        }

        let ooo_threshold = stream
            .handshake_rtt()
            .map_or(OOO_THRESHOLD_DEFAULT_NS, |d| {
                if d.as_nanos() > 0 {
                    d.as_nanos()
                } else {
                    OOO_THRESHOLD_DEFAULT_NS
                }
            });
        let mut analysis = analyze(
            &mut stream.dirs,
            fwd_i,
            rev_i,
            seg,
            frame,
            ts,
            ooo_threshold,
        );
        let dup_ack = analysis.has(Analysis::DUPLICATE_ACK).then(|| {
            (
                dir_ref(&stream.dirs, fwd_i).last_non_dup_ack_frame,
                dir_ref(&stream.dirs, fwd_i).dup_acks_in_row,
            )
        });
        if reused {
            analysis.set(Analysis::PORTS_REUSED);
        }

        // Counters.
        {
            let fwd = dir_mut(&mut stream.dirs, fwd_i);
            fwd.stats.packets += 1;
            fwd.stats.bytes += u64::from(frame_len);
            fwd.stats.payload_bytes += u64::from(seg.payload_len);
            if analysis.is_retransmission() {
                fwd.stats.retransmissions += 1;
            }
            if analysis.has(Analysis::OUT_OF_ORDER) {
                fwd.stats.out_of_order += 1;
            }
            if analysis.has(Analysis::LOST_SEGMENT) {
                fwd.stats.lost_segments += 1;
            }
            if analysis.has(Analysis::DUPLICATE_ACK) {
                fwd.stats.duplicate_acks += 1;
            }
            if analysis.has(Analysis::ZERO_WINDOW) {
                fwd.stats.zero_windows += 1;
            }
        }

        let fwd = dir_ref(&stream.dirs, fwd_i);
        let base = fwd.base_seq.unwrap_or(seg.seq);
        let rel_seq = seg.seq.0.wrapping_sub(base.0);
        let rel_ack = if seg.flags.ack() {
            dir_ref(&stream.dirs, rev_i)
                .base_seq
                .map_or(0, |b| seg.ack.0.wrapping_sub(b.0))
        } else {
            0
        };
        // Scaling applies only when both SYNs carried the option (RFC 7323).
        let window_size = match (fwd.window_scale, dir_ref(&stream.dirs, rev_i).window_scale) {
            (Some(shift), Some(_)) if !seg.flags.syn() => u64::from(seg.window) << shift.min(14),
            _ => u64::from(seg.window),
        };

        // Reassembly.
        if reassemble {
            sink.roles(stream.id, stream.client(), stream.server());
            let stream_id = stream.id;
            let budget = &mut self.budget;
            let fwd_dir = direction;
            let rev_dir = direction.reverse();
            {
                let fwd = dir_mut(&mut stream.dirs, fwd_i);
                if !fwd.stats.fin && !fwd.stats.rst || seg.payload_len > 0 {
                    let r = fwd.reassembler.get_or_insert_with(Box::default);
                    if seg.flags.syn() {
                        r.set_isn(seg.seq);
                    }
                    let data_seq = if seg.flags.syn() {
                        seg.seq.advance(1)
                    } else {
                        seg.seq
                    };
                    r.push(
                        data_seq,
                        seg.payload_len,
                        seg.payload,
                        frame,
                        ts,
                        &limits,
                        budget,
                        &mut |c| sink.payload(stream_id, fwd_dir, c),
                    );
                    if seg.flags.fin() {
                        r.set_fin(data_seq.advance(seg.payload_len));
                    }
                }
            }
            if seg.flags.ack() && !seg.flags.rst() {
                if let Some(r) = dir_mut(&mut stream.dirs, rev_i).reassembler.as_mut() {
                    r.acked(
                        seg.ack,
                        frame,
                        ts,
                        &mut |c| sink.payload(stream_id, rev_dir, c),
                        budget,
                    );
                }
            }
        }

        // Closing.
        {
            let fwd = dir_mut(&mut stream.dirs, fwd_i);
            if seg.flags.fin() {
                fwd.stats.fin = true;
            }
            if seg.flags.rst() {
                fwd.stats.rst = true;
            }
        }
        if seg.flags.rst() {
            stream.state = StreamState::Reset;
        } else if seg.flags.fin() {
            stream.state = if stream.dirs[0].stats.fin && stream.dirs[1].stats.fin {
                StreamState::Closed
            } else {
                StreamState::Closing
            };
        }
        let ended = seg.flags.rst() || (stream.dirs[0].stats.fin && stream.dirs[1].stats.fin);
        if reassemble && ended {
            self.finish_reassembly(id, frame, ts, sink);
        }

        Tracked {
            stream: id,
            direction,
            new_stream,
            rel_seq,
            rel_ack,
            analysis,
            window_size,
            dup_ack,
        }
    }

    fn open_stream(
        &mut self,
        key: FlowKey,
        src: Endpoint,
        dst: Endpoint,
        seg: &TcpSegment<'_>,
        frame: u64,
        ts: Timestamp,
    ) -> StreamId {
        let id = StreamId::try_from(self.streams.len()).unwrap_or(StreamId::MAX);
        let (client_is_a, evidence) = infer_roles(src, dst, seg);
        self.streams.push(Stream {
            id,
            a: src,
            b: dst,
            client_is_a,
            role_evidence: evidence,
            first_frame: frame,
            last_frame: frame,
            first_ts: ts,
            last_ts: ts,
            dirs: Default::default(),
            syn_seen: false,
            syn_ts: None,
            syn_ack_ts: None,
            handshake_ack_ts: None,
            state: StreamState::Handshake,
        });
        self.by_flow.insert(key, id);
        id
    }

    /// Flushes a stream's reassembly (holes become gaps) and frees its buffers.
    fn finish_reassembly(
        &mut self,
        id: StreamId,
        frame: u64,
        ts: Timestamp,
        sink: &mut dyn PayloadSink,
    ) {
        let Some(stream) = self.streams.get_mut(id as usize) else {
            return;
        };
        let client_is_a = stream.client_is_a;
        for (i, d) in stream.dirs.iter_mut().enumerate() {
            let dir = if (i == 0) == client_is_a {
                Direction::ToServer
            } else {
                Direction::ToClient
            };
            if let Some(mut r) = d.reassembler.take() {
                r.finish(
                    frame,
                    ts,
                    &mut |c| sink.payload(id, dir, c),
                    &mut self.budget,
                );
                r.release(&mut self.budget);
                d.reassembly = r.stats;
                sink.direction_closed(id, dir, frame, ts);
            }
        }
    }

    fn close_stream(
        &mut self,
        id: StreamId,
        frame: u64,
        ts: Timestamp,
        sink: &mut dyn PayloadSink,
    ) {
        if self.config.reassemble {
            self.finish_reassembly(id, frame, ts, sink);
        }
    }

    /// End of capture: every open stream's reassembly is flushed.
    pub fn finish(&mut self, sink: &mut dyn PayloadSink) {
        for i in 0..self.streams.len() {
            let (frame, ts) = match self.streams.get(i) {
                Some(s) => (s.last_frame, s.last_ts),
                None => continue,
            };
            self.finish_reassembly(
                StreamId::try_from(i).unwrap_or(StreamId::MAX),
                frame,
                ts,
                sink,
            );
        }
    }
}

/// The direction state at index 0 (a→b) or 1 (b→a), without indexing that could panic.
fn dir_mut(dirs: &mut [DirectionState; 2], i: usize) -> &mut DirectionState {
    let [a, b] = dirs;
    if i == 0 {
        a
    } else {
        b
    }
}

fn dir_ref(dirs: &[DirectionState; 2], i: usize) -> &DirectionState {
    let [a, b] = dirs;
    if i == 0 {
        a
    } else {
        b
    }
}

/// Decides which side is the client for a stream whose first frame is `seg` from `src`.
fn infer_roles(src: Endpoint, dst: Endpoint, seg: &TcpSegment<'_>) -> (bool, RoleEvidence) {
    if seg.flags.syn() {
        return if seg.flags.ack() {
            (false, RoleEvidence::SynAck)
        } else {
            (true, RoleEvidence::Syn)
        };
    }
    let src_service = SERVICE_PORTS.contains(&src.port);
    let dst_service = SERVICE_PORTS.contains(&dst.port);
    match (src_service, dst_service) {
        (false, true) => (true, RoleEvidence::ServicePort),
        (true, false) => (false, RoleEvidence::ServicePort),
        _ if src.port == dst.port => (true, RoleEvidence::FirstSender),
        _ => (src.port > dst.port, RoleEvidence::LowerPort),
    }
}

/// Wireshark's sequence analysis (`tcp_analyze_sequence_number`), for the flags its filters and
/// Info column show. `fwd_i` is the direction of this segment, `rev_i` the other.
fn analyze(
    dirs: &mut [DirectionState; 2],
    fwd_i: usize,
    rev_i: usize,
    seg: &TcpSegment<'_>,
    frame: u64,
    ts: Timestamp,
    ooo_threshold_ns: i64,
) -> Analysis {
    let mut a = Analysis::default();
    let (fwd, rev) = match (fwd_i, rev_i) {
        (0, _) => {
            let [x, y] = dirs;
            (x, y)
        }
        _ => {
            let [y, x] = dirs;
            (x, y)
        }
    };
    let seq = seg.seq;
    let ack = seg.ack;
    let seglen = seg.payload_len;
    let flags = seg.flags;
    let syn_fin_rst = flags.syn() || flags.fin() || flags.rst();

    // Zero-window probe: one byte sent into a zero window.
    if seglen == 1 && fwd.next_seq == Some(seq) && rev.window == Some(0) {
        a.set(Analysis::ZERO_WINDOW_PROBE);
    }
    if seg.window == 0 && !syn_fin_rst {
        a.set(Analysis::ZERO_WINDOW);
    }
    if let Some(next) = fwd.next_seq {
        if seq.gt(next) && !flags.rst() {
            a.set(Analysis::LOST_SEGMENT);
        }
    }
    // Keep-alive: zero or one byte at next_seq - 1.
    if seglen <= 1
        && !syn_fin_rst
        && fwd
            .next_seq
            .is_some_and(|n| SeqNumber(n.0.wrapping_sub(1)) == seq)
    {
        a.set(Analysis::KEEP_ALIVE);
    }
    // Window update / duplicate ACK: an ACK with nothing new.
    if seglen == 0
        && !syn_fin_rst
        && fwd.next_seq == Some(seq)
        && fwd.last_ack == Some(ack)
        && !a.has(Analysis::KEEP_ALIVE)
    {
        if fwd.window.is_some_and(|w| w != seg.window) && seg.window != 0 {
            a.set(Analysis::WINDOW_UPDATE);
        } else if seg.window != 0 && fwd.window == Some(seg.window) && flags.ack() {
            fwd.dup_acks_in_row += 1;
            a.set(Analysis::DUPLICATE_ACK);
        }
    }
    if !a.has(Analysis::DUPLICATE_ACK) {
        fwd.dup_acks_in_row = 0;
        fwd.last_non_dup_ack_frame = frame;
    }
    // Retransmission family: new sequence space that starts before what was already seen.
    let occupies = seglen > 0 || flags.syn() || flags.fin();
    if occupies && !a.has(Analysis::KEEP_ALIVE) && !a.has(Analysis::ZERO_WINDOW_PROBE) {
        let behind = fwd.next_seq.is_some_and(|next| seq.lt(next));
        // Data the peer has already acknowledged, though this side's earlier copy was not
        // captured (capture-order inversions): Wireshark calls it a spurious retransmission.
        if !behind && seglen > 0 && rev.last_ack.is_some_and(|la| seq.advance(seglen).le(la)) {
            a.set(Analysis::SPURIOUS_RETRANSMISSION);
        }
        if let Some(next) = fwd.next_seq {
            if seq.lt(next) {
                // Wireshark keeps these spans unsigned: a frame timestamped before the one it is
                // compared with (capture-order inversion) is "long after", never "just after".
                let since_next =
                    u64::try_from(ts.since(fwd.next_seq_ts).as_nanos()).unwrap_or(u64::MAX);
                let since_rev_ack =
                    u64::try_from(ts.since(rev.last_ack_ts).as_nanos()).unwrap_or(u64::MAX);
                if rev.dup_acks_in_row >= 2
                    && rev.last_ack == Some(seq)
                    && since_rev_ack < FAST_RETRANSMISSION_WINDOW_NS as u64
                {
                    a.set(Analysis::FAST_RETRANSMISSION);
                } else if since_next < ooo_threshold_ns.max(0).unsigned_abs()
                    && next != seq.advance(seg.seq_len())
                {
                    a.set(Analysis::OUT_OF_ORDER);
                } else if seglen > 0 && rev.last_ack.is_some_and(|la| seq.advance(seglen).le(la)) {
                    a.set(Analysis::SPURIOUS_RETRANSMISSION);
                } else {
                    a.set(Analysis::RETRANSMISSION);
                }
            }
        }
    }
    // An ACK for data the capture never saw: the other side's data was lost before the tap.
    // Wireshark flags it and leaves that side's next_seq alone.
    if flags.ack() && !flags.rst() && rev.next_seq.is_some_and(|n| ack.gt(n)) {
        a.set(Analysis::ACKED_UNSEEN);
    }
    // Advance next_seq (a zero-window probe does not advance it).
    let end = seq.advance(seg.seq_len());
    if !a.has(Analysis::ZERO_WINDOW_PROBE) && fwd.next_seq.is_none_or(|n| end.gt(n)) {
        fwd.next_seq = Some(end);
        fwd.next_seq_ts = ts;
    }
    fwd.window = Some(seg.window);
    if flags.ack() {
        fwd.last_ack = Some(ack);
        fwd.last_ack_ts = ts;
    }
    a
}
