//! MySQL packet framing: turns a byte stream (one direction, in order) into logical packets.
//!
//! A physical packet is a 3-byte little-endian length, a 1-byte sequence id and the payload. A
//! payload of exactly 0xffffff bytes continues in the next physical packet; the logical packet
//! ends with the first physical packet shorter than that (possibly empty).
//!
//! Only a prefix of each logical payload is retained (`cap` bytes): the rest is counted and
//! skipped, so a 1 GiB row or a hostile length never grows memory.

use crate::Timestamp;

use super::wire::MAX_PACKET_PAYLOAD;

/// Where a byte came from: the frame and capture time of its segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    pub frame: u64,
    pub ts: Timestamp,
}

/// One logical packet handed to the protocol layer.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// Sequence id of the first physical packet.
    pub seq: u8,
    /// Sequence id of the last physical packet (differs for payloads >= 16 MiB).
    pub last_seq: u8,
    /// Logical payload length (all continuation packets).
    pub len: u64,
    /// Bytes on the wire at this layer: payload plus four header bytes per physical packet.
    pub wire_len: u64,
    /// The retained prefix of the payload.
    pub data: &'a [u8],
    /// Where the first header byte and the last payload byte came from.
    pub start: Pos,
    pub end: Pos,
}

impl Packet<'_> {
    pub fn truncated(&self) -> bool {
        (self.data.len() as u64) < self.len
    }

    pub fn first_byte(&self) -> Option<u8> {
        self.data.first().copied()
    }
}

/// What the protocol layer wants after a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// The framing changes after this packet (compression switched on, TLS started): hand
    /// back the remaining bytes.
    Stop,
    /// The protocol state no longer makes sense: drop framing and hunt for a boundary.
    Desync,
}

#[derive(Debug)]
pub struct Assembler {
    header: [u8; 4],
    header_have: usize,
    /// Payload bytes of the current physical packet still to come.
    body_left: usize,
    in_body: bool,
    /// The current physical packet is 0xffffff long: another one follows.
    continues: bool,
    retained: Vec<u8>,
    cap: usize,
    logical_len: u64,
    wire_len: u64,
    first_seq: u8,
    last_seq: u8,
    start: Option<Pos>,
    /// Payload bytes skipped beyond `cap`, over the life of the assembler.
    pub skipped_payload: u64,
}

impl Assembler {
    pub fn new(cap: usize) -> Self {
        Assembler {
            header: [0; 4],
            header_have: 0,
            body_left: 0,
            in_body: false,
            continues: false,
            retained: Vec::new(),
            cap,
            logical_len: 0,
            wire_len: 0,
            first_seq: 0,
            last_seq: 0,
            start: None,
            skipped_payload: 0,
        }
    }

    /// True between packets: the next byte starts a header.
    pub fn at_boundary(&self) -> bool {
        self.header_have == 0 && !self.in_body && self.start.is_none()
    }

    /// The logical packet in progress, if its payload has begun: its first sequence id, the
    /// retained payload so far and where it started.
    pub fn partial(&self) -> Option<(u8, &[u8], Pos)> {
        let start = self.start?;
        if self.retained.is_empty() {
            return None;
        }
        Some((self.first_seq, &self.retained, start))
    }

    /// Forgets any partial packet (after a gap).
    pub fn reset(&mut self) {
        self.header_have = 0;
        self.body_left = 0;
        self.in_body = false;
        self.continues = false;
        self.retained.clear();
        // Give back memory a huge packet made us take.
        if self.retained.capacity() > 64 * 1024 {
            self.retained = Vec::new();
        }
        self.logical_len = 0;
        self.wire_len = 0;
        self.start = None;
    }

    /// Feeds bytes. `first` is where the first of `bytes` came from, `cur` where the rest came
    /// from (they differ only below a decompressor). Returns how many bytes were consumed and
    /// the flow the last packet asked for: fewer than `bytes.len()` only on `Stop`/`Desync`.
    pub fn feed(
        &mut self,
        bytes: &[u8],
        first: Pos,
        cur: Pos,
        on_packet: &mut dyn FnMut(Packet<'_>) -> Flow,
    ) -> (usize, Flow) {
        let mut at = 0usize;
        while at < bytes.len() {
            let here = if at == 0 { first } else { cur };
            // Fast path: between packets, a whole single-part packet inside `bytes` is served
            // from `bytes` itself, without copying it into `retained`. It yields exactly the
            // packet the byte-by-byte path below would.
            if self.at_boundary() {
                if let Some((len, seq, body)) = whole_packet_at(bytes, at) {
                    let keep = len.min(self.cap);
                    self.skipped_payload += (len - keep) as u64;
                    at += 4 + len;
                    let pkt = Packet {
                        seq,
                        last_seq: seq,
                        len: len as u64,
                        wire_len: len as u64 + 4,
                        data: body.get(..keep).unwrap_or(&[]),
                        start: here,
                        // The packet spans at least its 4 header bytes: its end is past byte 0.
                        end: cur,
                    };
                    let flow = on_packet(pkt);
                    if flow != Flow::Continue {
                        return (at, flow);
                    }
                    continue;
                }
            }
            if !self.in_body {
                let Some(rest) = bytes.get(at..) else { break };
                let need = 4 - self.header_have;
                let n = need.min(rest.len());
                for (dst, src) in self
                    .header
                    .iter_mut()
                    .skip(self.header_have)
                    .zip(rest.iter().take(n))
                {
                    *dst = *src;
                }
                if self.header_have == 0 && self.start.is_none() {
                    self.start = Some(here);
                    self.first_seq = self.header[3];
                }
                self.header_have += n;
                at += n;
                if self.header_have < 4 {
                    break;
                }
                let [a, b, c, seq] = self.header;
                let len = u32::from_le_bytes([a, b, c, 0]) as usize;
                if self.logical_len == 0 && self.wire_len == 0 {
                    self.first_seq = seq;
                }
                self.last_seq = seq;
                self.header_have = 0;
                self.body_left = len;
                self.in_body = true;
                self.continues = len == MAX_PACKET_PAYLOAD;
                self.wire_len += 4;
            }
            if self.in_body {
                let Some(rest) = bytes.get(at..) else { break };
                let n = self.body_left.min(rest.len());
                let body = rest.get(..n).unwrap_or(&[]);
                let room = self.cap.saturating_sub(self.retained.len());
                let keep = room.min(body.len());
                self.retained
                    .extend_from_slice(body.get(..keep).unwrap_or(&[]));
                self.skipped_payload += (body.len() - keep) as u64;
                self.logical_len += n as u64;
                self.wire_len += n as u64;
                self.body_left -= n;
                at += n;
                if self.body_left > 0 {
                    break;
                }
                self.in_body = false;
                if self.continues {
                    continue;
                }
                // `at` is one past the packet's last byte; only byte 0 came from `first`.
                let end = if at <= 1 { first } else { cur };
                let pkt = Packet {
                    seq: self.first_seq,
                    last_seq: self.last_seq,
                    len: self.logical_len,
                    wire_len: self.wire_len,
                    data: &self.retained,
                    start: self.start.unwrap_or(end),
                    end,
                };
                let flow = on_packet(pkt);
                self.retained.clear();
                if self.retained.capacity() > 64 * 1024 {
                    self.retained = Vec::new();
                }
                self.logical_len = 0;
                self.wire_len = 0;
                self.start = None;
                if flow != Flow::Continue {
                    return (at, flow);
                }
            }
        }
        (at, Flow::Continue)
    }
}

/// A packet that is not continued (shorter than 0xffffff) and lies wholly in `bytes` from `off`:
/// its payload length, sequence id and payload.
fn whole_packet_at(bytes: &[u8], off: usize) -> Option<(usize, u8, &[u8])> {
    let (len, seq) = header_at(bytes, off)?;
    if len >= MAX_PACKET_PAYLOAD {
        return None;
    }
    let body_start = off.checked_add(4)?;
    let body = bytes.get(body_start..body_start.checked_add(len)?)?;
    Some((len, seq, body))
}

/// A physical header read at `off`, if four bytes are there.
pub fn header_at(bytes: &[u8], off: usize) -> Option<(usize, u8)> {
    let h = bytes.get(off..off.checked_add(4)?)?;
    let len = u32::from_le_bytes([*h.first()?, *h.get(1)?, *h.get(2)?, 0]) as usize;
    Some((len, *h.get(3)?))
}

/// How a run of packet headers ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainEnd {
    /// The last packet ends exactly at the end of the bytes.
    Exact,
    /// The last packet (or its header) runs past the end of the bytes.
    Beyond,
    /// A sequence id broke the run.
    Broken,
}

/// Follows packet headers from `off`: how many whole packets chain with sequence ids increasing
/// by one, and how the run ends.
pub fn header_chain(bytes: &[u8], off: usize, max_packets: usize) -> (usize, ChainEnd) {
    let mut at = off;
    let mut count = 0usize;
    let mut prev_seq: Option<u8> = None;
    while count < max_packets {
        if at == bytes.len() {
            return (count, ChainEnd::Exact);
        }
        let Some((len, seq)) = header_at(bytes, at) else {
            return (count, ChainEnd::Beyond);
        };
        if prev_seq.is_some_and(|p| p.wrapping_add(1) != seq) {
            return (count, ChainEnd::Broken);
        }
        prev_seq = Some(seq);
        let end = at + 4 + len;
        if end > bytes.len() {
            return (count, ChainEnd::Beyond);
        }
        count += 1;
        at = end;
    }
    // The limit was reached with every header consistent so far.
    (
        count,
        if at == bytes.len() {
            ChainEnd::Exact
        } else {
            ChainEnd::Beyond
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(a: &mut Assembler, chunks: &[&[u8]]) -> Vec<(u8, u64, Vec<u8>, u64)> {
        let mut out = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            let p = Pos {
                frame: i as u64 + 1,
                ts: Timestamp(0),
            };
            a.feed(c, p, p, &mut |pkt| {
                out.push((pkt.seq, pkt.len, pkt.data.to_vec(), pkt.start.frame));
                Flow::Continue
            });
        }
        out
    }

    #[test]
    fn packets_split_anywhere_reassemble() {
        let stream = [&[3u8, 0, 0, 0, b'a', b'b', b'c'][..], &[1, 0, 0, 1, b'z']].concat();
        for cut in 0..stream.len() {
            let mut a = Assembler::new(100);
            let got = collect(&mut a, &[&stream[..cut], &stream[cut..]]);
            assert_eq!(got.len(), 2, "cut at {cut}");
            assert_eq!(got[0].2, b"abc");
            assert_eq!(got[1].2, b"z");
        }
    }

    type Seen = (u8, u8, u64, u64, Vec<u8>, Pos, Pos);

    /// Every packet field, feeding `chunks` with distinct `first` and `cur` positions.
    fn collect_all(a: &mut Assembler, chunks: &[&[u8]]) -> Vec<Seen> {
        let mut out = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            let first = Pos {
                frame: 2 * i as u64 + 1,
                ts: Timestamp(i as i64),
            };
            let cur = Pos {
                frame: 2 * i as u64 + 2,
                ts: Timestamp(i as i64 + 100),
            };
            a.feed(c, first, cur, &mut |p| {
                out.push((
                    p.seq,
                    p.last_seq,
                    p.len,
                    p.wire_len,
                    p.data.to_vec(),
                    p.start,
                    p.end,
                ));
                Flow::Continue
            });
        }
        out
    }

    #[test]
    fn whole_packets_served_in_place_match_the_byte_path() {
        let stream = [
            &[3u8, 0, 0, 0, b'a', b'b', b'c'][..],
            &[0, 0, 0, 1],
            &[12, 0, 0, 2],
            b"hello, world",
            &[1, 0, 0, 3, b'z'],
        ]
        .concat();
        for cap in [0, 2, 5, 100] {
            let mut whole = Assembler::new(cap);
            let fast = collect_all(&mut whole, &[&stream]);
            let bytes: Vec<&[u8]> = stream.chunks(1).collect();
            let mut byte_by_byte = Assembler::new(cap);
            let slow = collect_all(&mut byte_by_byte, &bytes);
            assert_eq!(fast.len(), 4);
            // Positions differ by construction (one chunk vs many): compare the rest, and
            // the positions against what one chunk means: only byte 0 came from `first`.
            let strip = |v: &[Seen]| -> Vec<(u8, u8, u64, u64, Vec<u8>)> {
                v.iter()
                    .map(|s| (s.0, s.1, s.2, s.3, s.4.clone()))
                    .collect()
            };
            assert_eq!(strip(&fast), strip(&slow), "cap {cap}");
            assert_eq!(whole.skipped_payload, byte_by_byte.skipped_payload);
            assert_eq!(fast[0].5.frame, 1);
            assert!(fast.iter().skip(1).all(|s| s.5.frame == 2));
            assert!(fast.iter().all(|s| s.6.frame == 2));
        }
        // A packet split across chunks still works after served-in-place ones.
        let mut a = Assembler::new(100);
        let got = collect_all(&mut a, &[&stream[..9], &stream[9..]]);
        assert_eq!(got.len(), 4);
        assert_eq!(got[2].4, b"hello, world");
        // The empty packet began in chunk 0 (not at its byte 0) and ended in chunk 1 after
        // byte 1; the next one lies wholly in chunk 1.
        assert_eq!((got[1].5.frame, got[1].6.frame), (2, 4));
        assert_eq!((got[2].5.frame, got[2].6.frame), (4, 4));
    }

    #[test]
    fn continuation_packets_form_one_logical_packet_and_cap_holds() {
        let mut stream = vec![0xff, 0xff, 0xff, 0];
        stream.extend(std::iter::repeat_n(b'x', MAX_PACKET_PAYLOAD));
        stream.extend([2, 0, 0, 1, b'y', b'z']);
        let mut a = Assembler::new(10);
        let got = collect(&mut a, &[&stream[..1000], &stream[1000..]]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, MAX_PACKET_PAYLOAD as u64 + 2);
        assert_eq!(got[0].2.len(), 10);
        assert_eq!(a.skipped_payload, MAX_PACKET_PAYLOAD as u64 + 2 - 10);
    }

    #[test]
    fn chain_detection() {
        let s = [&[1u8, 0, 0, 1, 9][..], &[2, 0, 0, 2, 8, 8]].concat();
        assert_eq!(header_chain(&s, 0, 10), (2, ChainEnd::Exact));
        assert_ne!(header_chain(&s, 1, 10).1, ChainEnd::Exact);
    }
}
