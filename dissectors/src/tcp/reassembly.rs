//! Per-direction TCP reassembly: turns segments (in any order, with retransmissions and overlaps)
//! into an in-order byte stream with explicit gaps.
//!
//! Memory is bounded twice: each direction buffers at most [`Limits::per_direction`] bytes of
//! out-of-order data and all directions together at most what the shared [`Budget`] allows.
//! When a bound is hit, the missing range is declared a gap and delivery moves on: a gap is
//! counted, memory never grows without bound.

use crate::tcp::SeqNumber;
use crate::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Out-of-order bytes one direction may hold while waiting for a hole to fill.
    pub per_direction: usize,
    /// Out-of-order segments one direction may hold.
    pub max_segments: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_direction: 4 << 20,
            max_segments: 4096,
        }
    }
}

/// Out-of-order bytes held across all streams, against a global cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub used: usize,
    pub cap: usize,
    /// Times a direction had to give up waiting because the global cap was reached.
    pub exhausted: u64,
}

impl Budget {
    pub fn new(cap: usize) -> Self {
        Budget {
            used: 0,
            cap,
            exhausted: 0,
        }
    }
}

/// What reassembly hands on: bytes in order, or a range of the stream that will never arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// In-order payload bytes, from the segment captured in `frame` at `ts`.
    Data {
        bytes: &'a [u8],
        frame: u64,
        ts: Timestamp,
    },
    /// `len` bytes of the stream were not captured (loss before the tap, snaplen cut, or
    /// given up on after a memory bound). `frame`/`ts` are where the gap was noticed.
    Gap {
        len: u64,
        frame: u64,
        ts: Timestamp,
        reason: GapReason,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GapReason {
    /// The peer acknowledged bytes the capture never saw.
    AckedUnseen,
    /// A later segment arrived and the hole never filled before the direction ended.
    NeverFilled,
    /// The frame was cut by the snaplen.
    Snaplen,
    /// Waiting any longer would exceed a memory bound.
    MemoryBound,
}

/// Counters for the stream report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    pub delivered_bytes: u64,
    pub duplicate_segments: u64,
    pub overlap_bytes: u64,
    pub out_of_order_segments: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub memory_bound_hits: u64,
}

#[derive(Debug)]
struct Pending {
    seq: SeqNumber,
    data: Vec<u8>,
    /// Bytes the segment had on the wire beyond `data` (snaplen cut).
    missing_tail: u32,
    frame: u64,
    ts: Timestamp,
}

impl Pending {
    fn end(&self) -> SeqNumber {
        self.seq.advance(self.data.len() as u32 + self.missing_tail)
    }
}

/// Reassembly state of one direction of one connection.
#[derive(Debug, Default)]
pub struct Reassembler {
    next: Option<SeqNumber>,
    /// Out-of-order segments, sorted by sequence number relative to `next`.
    pending: Vec<Pending>,
    held: usize,
    fin: Option<SeqNumber>,
    pub stats: ReassemblyStats,
}

impl Reassembler {
    pub fn new() -> Self {
        Reassembler::default()
    }

    /// The sequence number of the next byte expected, once known.
    pub fn next_seq(&self) -> Option<SeqNumber> {
        self.next
    }

    /// Out-of-order bytes currently held.
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// Records the initial sequence number from a SYN: data starts at `isn + 1`.
    pub fn set_isn(&mut self, isn: SeqNumber) {
        if self.next.is_none() {
            self.next = Some(isn.advance(1));
        }
    }

    /// Records where this direction's FIN sits in sequence space.
    pub fn set_fin(&mut self, fin_seq: SeqNumber) {
        self.fin.get_or_insert(fin_seq);
    }

    /// Takes one segment's payload. `seq` is the sequence number of its first payload byte,
    /// `wire_len` its length on the wire (`tcp.len`), `bytes` the captured part of it.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        seq: SeqNumber,
        wire_len: u32,
        bytes: &[u8],
        frame: u64,
        ts: Timestamp,
        limits: &Limits,
        budget: &mut Budget,
        out: &mut dyn FnMut(Chunk<'_>),
    ) {
        if wire_len == 0 {
            return;
        }
        let bytes = bytes.get(..wire_len as usize).unwrap_or(bytes);
        let next = *self.next.get_or_insert(seq);
        let offset = seq.diff(next);
        let end = offset + i64::from(wire_len);
        if end <= 0 {
            self.stats.duplicate_segments += 1;
            return;
        }
        if offset <= 0 {
            let skip = offset.unsigned_abs();
            if skip > 0 {
                self.stats.overlap_bytes += skip;
            }
            self.deliver(seq, wire_len, bytes, skip, frame, ts, out);
            self.drain(out, budget);
            return;
        }
        // A hole before this segment: hold it until the hole fills, the peer acknowledges past
        // it, or a bound is reached.
        self.stats.out_of_order_segments += 1;
        let over_direction = self.held + bytes.len() > limits.per_direction
            || self.pending.len() >= limits.max_segments;
        let over_global = budget.used + bytes.len() > budget.cap;
        if over_direction || over_global {
            self.stats.memory_bound_hits += 1;
            if over_global {
                budget.exhausted += 1;
            }
            while !self.pending.is_empty() {
                self.give_up_hole(frame, ts, GapReason::MemoryBound, out, budget);
            }
            // After giving up, everything held was delivered; the new segment may now follow
            // directly or leave a new hole, which is declared at once (nothing is held).
            let next = self.next.unwrap_or(seq);
            let hole = seq.diff(next);
            if hole > 0 {
                self.emit_gap(hole.unsigned_abs(), frame, ts, GapReason::MemoryBound, out);
                self.next = Some(seq);
            }
            let skip = (-seq.diff(self.next.unwrap_or(seq))).max(0).unsigned_abs();
            if skip < u64::from(wire_len) {
                self.deliver(seq, wire_len, bytes, skip, frame, ts, out);
            }
            return;
        }
        let at = self.pending.partition_point(|p| p.seq.diff(next) <= offset);
        let missing_tail = wire_len - bytes.len() as u32;
        self.held += bytes.len();
        budget.used += bytes.len();
        self.pending.insert(
            at,
            Pending {
                seq,
                data: bytes.to_vec(),
                missing_tail,
                frame,
                ts,
            },
        );
    }

    /// The peer acknowledged up to `ack`: bytes before it that were never captured will not
    /// arrive any more (the sender does not retransmit acknowledged data).
    pub fn acked(
        &mut self,
        ack: SeqNumber,
        frame: u64,
        ts: Timestamp,
        out: &mut dyn FnMut(Chunk<'_>),
        budget: &mut Budget,
    ) {
        let Some(next) = self.next else { return };
        // The FIN occupies one sequence number but carries no byte.
        let limit = match self.fin {
            Some(fin) if fin.le(ack) => fin,
            _ => ack,
        };
        let missing = limit.diff(next);
        // Bound the jump: an ACK far outside any window is garbage, not a gap of gigabytes.
        if missing <= 0 || missing > (1 << 30) {
            return;
        }
        match self.pending.first() {
            Some(p) if p.seq.le(limit) => {
                self.give_up_hole(frame, ts, GapReason::AckedUnseen, out, budget);
                // Anything still missing up to the ack is a further gap.
                if let Some(n) = self.next {
                    let rest = limit.diff(n);
                    if rest > 0 && self.pending.is_empty() {
                        self.emit_gap(rest.unsigned_abs(), frame, ts, GapReason::AckedUnseen, out);
                        self.next = Some(limit);
                    }
                }
            }
            _ => {
                self.emit_gap(
                    missing.unsigned_abs(),
                    frame,
                    ts,
                    GapReason::AckedUnseen,
                    out,
                );
                self.next = Some(limit);
                self.drain(out, budget);
            }
        }
    }

    /// The direction ended (FIN, RST or end of capture): declare remaining holes as gaps and
    /// deliver everything held.
    pub fn finish(
        &mut self,
        frame: u64,
        ts: Timestamp,
        out: &mut dyn FnMut(Chunk<'_>),
        budget: &mut Budget,
    ) {
        while !self.pending.is_empty() {
            self.give_up_hole(frame, ts, GapReason::NeverFilled, out, budget);
        }
    }

    /// Declares the hole before the first held segment a gap and delivers what follows it.
    fn give_up_hole(
        &mut self,
        frame: u64,
        ts: Timestamp,
        reason: GapReason,
        out: &mut dyn FnMut(Chunk<'_>),
        budget: &mut Budget,
    ) {
        let Some(first_seq) = self.pending.first().map(|p| p.seq) else {
            return;
        };
        let next = self.next.unwrap_or(first_seq);
        let hole = first_seq.diff(next);
        if hole > 0 {
            self.emit_gap(hole.unsigned_abs(), frame, ts, reason, out);
            self.next = Some(first_seq);
        }
        self.drain(out, budget);
    }

    fn emit_gap(
        &mut self,
        len: u64,
        frame: u64,
        ts: Timestamp,
        reason: GapReason,
        out: &mut dyn FnMut(Chunk<'_>),
    ) {
        self.stats.gaps += 1;
        self.stats.gap_bytes += len;
        out(Chunk::Gap {
            len,
            frame,
            ts,
            reason,
        });
    }

    /// Delivers a segment that starts at or before `next`, skipping `skip` already-delivered
    /// bytes; a snaplen-cut tail becomes a gap.
    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &mut self,
        seq: SeqNumber,
        wire_len: u32,
        bytes: &[u8],
        skip: u64,
        frame: u64,
        ts: Timestamp,
        out: &mut dyn FnMut(Chunk<'_>),
    ) {
        let skip_usize = usize::try_from(skip).unwrap_or(usize::MAX);
        let fresh = bytes.get(skip_usize..).unwrap_or(&[]);
        if !fresh.is_empty() {
            self.stats.delivered_bytes += fresh.len() as u64;
            out(Chunk::Data {
                bytes: fresh,
                frame,
                ts,
            });
        }
        let captured_end = skip.max(bytes.len() as u64);
        let cut = u64::from(wire_len).saturating_sub(captured_end);
        if cut > 0 {
            self.emit_gap(cut, frame, ts, GapReason::Snaplen, out);
        }
        self.next = Some(seq.advance(wire_len));
    }

    /// Delivers held segments that have become contiguous.
    fn drain(&mut self, out: &mut dyn FnMut(Chunk<'_>), budget: &mut Budget) {
        while let Some(first) = self.pending.first() {
            let next = self.next.unwrap_or(first.seq);
            if first.seq.gt(next) {
                break;
            }
            let p = self.pending.remove(0);
            self.held -= p.data.len();
            budget.used = budget.used.saturating_sub(p.data.len());
            if p.end().le(next) {
                self.stats.duplicate_segments += 1;
                continue;
            }
            let skip = next.diff(p.seq).unsigned_abs();
            if skip > 0 {
                self.stats.overlap_bytes += skip;
            }
            let wire_len = p.data.len() as u32 + p.missing_tail;
            self.deliver(p.seq, wire_len, &p.data, skip, p.frame, p.ts, out);
        }
    }

    /// Releases held memory back to the budget (when a stream is dropped without finishing).
    pub fn release(&mut self, budget: &mut Budget) {
        budget.used = budget.used.saturating_sub(self.held);
        self.held = 0;
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Out {
        D(Vec<u8>, u64),
        G(u64, GapReason),
    }

    fn run(segs: &[(u32, &[u8], u32)], limits: Limits) -> (Vec<Out>, Reassembler) {
        let mut r = Reassembler::new();
        r.set_isn(SeqNumber(999));
        let mut budget = Budget::new(1 << 20);
        let mut out = Vec::new();
        for (i, (seq, bytes, wire)) in segs.iter().enumerate() {
            r.push(
                SeqNumber(*seq),
                *wire,
                bytes,
                i as u64 + 1,
                Timestamp(0),
                &limits,
                &mut budget,
                &mut |c| {
                    out.push(match c {
                        Chunk::Data { bytes, frame, .. } => Out::D(bytes.to_vec(), frame),
                        Chunk::Gap { len, reason, .. } => Out::G(len, reason),
                    })
                },
            );
        }
        r.finish(
            99,
            Timestamp(0),
            &mut |c| {
                out.push(match c {
                    Chunk::Data { bytes, frame, .. } => Out::D(bytes.to_vec(), frame),
                    Chunk::Gap { len, reason, .. } => Out::G(len, reason),
                })
            },
            &mut budget,
        );
        assert_eq!(budget.used, 0);
        (out, r)
    }

    #[test]
    fn out_of_order_is_put_back_in_order() {
        let (out, r) = run(&[(1003, b"cd", 2), (1000, b"abc", 3)], Limits::default());
        assert_eq!(
            out,
            vec![Out::D(b"abc".to_vec(), 2), Out::D(b"cd".to_vec(), 1)]
        );
        assert_eq!(r.stats.out_of_order_segments, 1);
    }

    #[test]
    fn retransmission_and_overlap_deliver_each_byte_once() {
        let (out, r) = run(
            &[(1000, b"abc", 3), (1000, b"abc", 3), (1002, b"cde", 3)],
            Limits::default(),
        );
        assert_eq!(
            out,
            vec![Out::D(b"abc".to_vec(), 1), Out::D(b"de".to_vec(), 3)]
        );
        assert_eq!(r.stats.duplicate_segments, 1);
        assert_eq!(r.stats.overlap_bytes, 1);
    }

    #[test]
    fn hole_never_filled_becomes_gap_at_finish() {
        let (out, _) = run(&[(1000, b"ab", 2), (1005, b"xy", 2)], Limits::default());
        assert_eq!(
            out,
            vec![
                Out::D(b"ab".to_vec(), 1),
                Out::G(3, GapReason::NeverFilled),
                Out::D(b"xy".to_vec(), 2)
            ]
        );
    }

    #[test]
    fn snaplen_cut_tail_is_a_gap() {
        let (out, _) = run(&[(1000, b"ab", 5), (1005, b"z", 1)], Limits::default());
        assert_eq!(
            out,
            vec![
                Out::D(b"ab".to_vec(), 1),
                Out::G(3, GapReason::Snaplen),
                Out::D(b"z".to_vec(), 2)
            ]
        );
    }

    #[test]
    fn memory_bound_gives_up_instead_of_growing() {
        let limits = Limits {
            per_direction: 4,
            max_segments: 10,
        };
        let (out, r) = run(&[(1010, b"abc", 3), (1020, b"def", 3)], limits);
        assert_eq!(r.held_bytes(), 0);
        assert!(r.stats.memory_bound_hits >= 1);
        let data: Vec<u8> = out
            .iter()
            .filter_map(|o| {
                if let Out::D(d, _) = o {
                    Some(d.clone())
                } else {
                    None
                }
            })
            .flatten()
            .collect();
        assert_eq!(data, b"abcdef");
    }

    #[test]
    fn peer_ack_past_a_hole_releases_held_data() {
        let mut r = Reassembler::new();
        r.set_isn(SeqNumber(0));
        let mut budget = Budget::new(1 << 20);
        let mut out = Vec::new();
        let l = Limits::default();
        r.push(
            SeqNumber(1),
            2,
            b"ab",
            1,
            Timestamp(0),
            &l,
            &mut budget,
            &mut |c| out.push(format!("{c:?}")),
        );
        r.push(
            SeqNumber(10),
            2,
            b"yz",
            2,
            Timestamp(0),
            &l,
            &mut budget,
            &mut |c| out.push(format!("{c:?}")),
        );
        assert_eq!(out.len(), 1);
        r.acked(
            SeqNumber(12),
            3,
            Timestamp(0),
            &mut |c| out.push(format!("{c:?}")),
            &mut budget,
        );
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(out[1].contains("Gap { len: 7"));
        assert_eq!(budget.used, 0);
    }

    #[test]
    fn sequence_wrap_is_seamless() {
        let mut r = Reassembler::new();
        r.set_isn(SeqNumber(u32::MAX - 1));
        let mut budget = Budget::new(1 << 20);
        let mut got = Vec::new();
        let l = Limits::default();
        r.push(
            SeqNumber(1),
            2,
            b"cd",
            2,
            Timestamp(0),
            &l,
            &mut budget,
            &mut |c| {
                if let Chunk::Data { bytes, .. } = c {
                    got.extend_from_slice(bytes)
                }
            },
        );
        r.push(
            SeqNumber(u32::MAX),
            2,
            b"ab",
            1,
            Timestamp(0),
            &l,
            &mut budget,
            &mut |c| {
                if let Chunk::Data { bytes, .. } = c {
                    got.extend_from_slice(bytes)
                }
            },
        );
        assert_eq!(got, b"abcd");
    }
}
