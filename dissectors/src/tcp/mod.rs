//! TCP: the segment header (a checked view), sequence-number arithmetic, stream tracking with
//! Wireshark's `tcp.stream` numbering, and per-direction reassembly.

pub mod reassembly;
pub mod stream;

use std::cmp::Ordering;

use etherparse::err::tcp::{HeaderError, HeaderSliceError};
use etherparse::{TcpHeaderSlice, TcpOptionElement, TcpOptionsIterator};

/// A TCP sequence number: arithmetic and comparison modulo 2^32 (RFC 1982 serial numbers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    pub fn advance(self, n: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(n))
    }

    /// Signed distance `self - other`, valid while the two are within 2^31 of each other.
    pub fn diff(self, other: SeqNumber) -> i64 {
        i64::from(self.0.wrapping_sub(other.0) as i32)
    }

    pub fn wrapping_cmp(self, other: SeqNumber) -> Ordering {
        self.diff(other).cmp(&0)
    }

    pub fn lt(self, other: SeqNumber) -> bool {
        self.diff(other) < 0
    }

    pub fn le(self, other: SeqNumber) -> bool {
        self.diff(other) <= 0
    }

    pub fn gt(self, other: SeqNumber) -> bool {
        self.diff(other) > 0
    }
}

/// TCP flag bits as in the header's 12-bit flags field (`tcp.flags`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    pub const FIN: u16 = 0x001;
    pub const SYN: u16 = 0x002;
    pub const RST: u16 = 0x004;
    pub const PSH: u16 = 0x008;
    pub const ACK: u16 = 0x010;
    pub const URG: u16 = 0x020;
    pub const ECE: u16 = 0x040;
    pub const CWR: u16 = 0x080;
    pub const AE: u16 = 0x100;

    pub fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
    pub fn syn(self) -> bool {
        self.has(Self::SYN)
    }
    pub fn ack(self) -> bool {
        self.has(Self::ACK)
    }
    pub fn fin(self) -> bool {
        self.has(Self::FIN)
    }
    pub fn rst(self) -> bool {
        self.has(Self::RST)
    }
    pub fn psh(self) -> bool {
        self.has(Self::PSH)
    }

    /// Flag names in Wireshark's Info-column order, e.g. `SYN, ACK`.
    pub fn names(self) -> String {
        const ORDER: [(u16, &str); 9] = [
            (TcpFlags::FIN, "FIN"),
            (TcpFlags::SYN, "SYN"),
            (TcpFlags::RST, "RST"),
            (TcpFlags::PSH, "PSH"),
            (TcpFlags::ACK, "ACK"),
            (TcpFlags::URG, "URG"),
            (TcpFlags::ECE, "ECE"),
            (TcpFlags::CWR, "CWR"),
            (TcpFlags::AE, "AE"),
        ];
        let mut out = String::new();
        for (bit, name) in ORDER {
            if self.has(bit) {
                if !out.is_empty() {
                    out.push_str(", ");
                }
                out.push_str(name);
            }
        }
        if out.is_empty() {
            out.push_str("<None>");
        }
        out
    }
}

/// Options wirelag reports (others are skipped by length).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOptions {
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    pub timestamp: Option<(u32, u32)>,
    pub sack_blocks: u8,
}

/// A decoded TCP segment header plus the payload bytes present in the capture.
#[derive(Clone, Copy, Debug)]
pub struct TcpSegment<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: SeqNumber,
    pub ack: SeqNumber,
    pub header_len: u8,
    pub flags: TcpFlags,
    pub window: u16,
    pub options: TcpOptions,
    /// Payload length according to the IP header (`tcp.len`).
    pub payload_len: u32,
    /// Payload bytes actually captured (shorter than `payload_len` when snaplen-cut).
    pub payload: &'a [u8],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpError {
    /// Fewer than 20 bytes of header captured.
    Truncated,
    /// Data offset below 5 words, or beyond the segment's length.
    BadHeaderLength(u8),
}

impl<'a> TcpSegment<'a> {
    /// Parses a segment. `transport_len` is the segment length the IP header states; `bytes` the
    /// captured part of it. The checksum is never checked: loopback and offloaded captures carry
    /// zero or partial ones.
    pub fn parse(bytes: &'a [u8], transport_len: u32) -> Result<Self, TcpError> {
        match TcpHeaderSlice::from_slice(bytes) {
            Ok(h) => {
                let header_len = h.slice().len();
                if header_len as u32 > transport_len.max(20) {
                    return Err(TcpError::BadHeaderLength(h.data_offset()));
                }
                Ok(Self::from_view(
                    &h,
                    h.options(),
                    bytes.get(header_len..).unwrap_or(&[]),
                    transport_len,
                ))
            }
            Err(HeaderSliceError::Content(HeaderError::DataOffsetTooSmall { data_offset })) => {
                Err(TcpError::BadHeaderLength(data_offset))
            }
            Err(HeaderSliceError::Len(_)) => Self::parse_cut(bytes, transport_len),
        }
    }

    /// A header the snaplen cut inside its options (or before its fixed 20 bytes). etherparse
    /// wants the whole header in the slice; the segment is still worth tracking when the fixed
    /// part is there and the data offset fits the length the IP header states. Its fixed part is
    /// viewed through a 20-byte copy whose data offset says 5, and the options are read as far
    /// as they were captured.
    #[cold]
    fn parse_cut(bytes: &'a [u8], transport_len: u32) -> Result<Self, TcpError> {
        let mut fixed: [u8; 20] = bytes
            .get(..20)
            .and_then(|s| s.try_into().ok())
            .ok_or(TcpError::Truncated)?;
        let data_offset = fixed[12] >> 4;
        let header_len = usize::from(data_offset) * 4;
        if data_offset < 5 || header_len as u32 > transport_len.max(20) {
            return Err(TcpError::BadHeaderLength(data_offset));
        }
        fixed[12] = (fixed[12] & 0x0f) | (5 << 4);
        let h = TcpHeaderSlice::from_slice(&fixed).map_err(|_| TcpError::Truncated)?;
        let options = bytes.get(20..).unwrap_or(&[]);
        let mut seg = Self::from_view(&h, options, &[], transport_len);
        seg.header_len = data_offset * 4;
        seg.payload_len = transport_len.saturating_sub(header_len as u32);
        Ok(seg)
    }

    fn from_view(
        h: &TcpHeaderSlice<'_>,
        options: &[u8],
        payload: &'a [u8],
        transport_len: u32,
    ) -> Self {
        let header_len = h.data_offset() * 4;
        let flag = |set: bool, bit: u16| if set { bit } else { 0 };
        let flags = flag(h.fin(), TcpFlags::FIN)
            | flag(h.syn(), TcpFlags::SYN)
            | flag(h.rst(), TcpFlags::RST)
            | flag(h.psh(), TcpFlags::PSH)
            | flag(h.ack(), TcpFlags::ACK)
            | flag(h.urg(), TcpFlags::URG)
            | flag(h.ece(), TcpFlags::ECE)
            | flag(h.cwr(), TcpFlags::CWR)
            | flag(h.ns(), TcpFlags::AE);
        TcpSegment {
            src_port: h.source_port(),
            dst_port: h.destination_port(),
            seq: SeqNumber(h.sequence_number()),
            ack: SeqNumber(h.acknowledgment_number()),
            header_len,
            flags: TcpFlags(flags),
            window: h.window_size(),
            options: parse_options(options),
            payload_len: transport_len.saturating_sub(u32::from(header_len)),
            payload,
        }
    }

    /// Sequence space this segment occupies: payload plus one for SYN and one for FIN.
    pub fn seq_len(&self) -> u32 {
        self.payload_len + u32::from(self.flags.syn()) + u32::from(self.flags.fin())
    }
}

/// Reads the options with etherparse, one option at a time. Its iterator ends the walk at the
/// first option it does not know (MPTCP, TCP Fast Open, MD5, user timeout, ...) or whose length
/// it does not accept; Wireshark skips such an option by its length and reads on, and so do we,
/// so that a window scale or timestamp behind an MPTCP option still counts. NOP padding and EOL
/// are handled here rather than by a call to the iterator per byte.
fn parse_options(mut b: &[u8]) -> TcpOptions {
    // Fast path, measured: nearly every segment after a Linux handshake carries exactly NOP,
    // NOP, timestamp. Through the iterator that one option cost ~45 instructions a segment
    // (`streams` on the bench capture ran ~5% more instructions than the hand-written decoder);
    // this fixed layout is matched whole instead. Everything else goes to etherparse.
    if let [1, 1, 8, 10, v0, v1, v2, v3, e0, e1, e2, e3] = *b {
        return TcpOptions {
            timestamp: Some((
                u32::from_be_bytes([v0, v1, v2, v3]),
                u32::from_be_bytes([e0, e1, e2, e3]),
            )),
            ..TcpOptions::default()
        };
    }
    let mut o = TcpOptions::default();
    // Every round consumes at least one byte.
    loop {
        while let [1, rest @ ..] = b {
            b = rest;
        }
        if matches!(b, [] | [0, ..]) {
            break;
        }
        let mut it = TcpOptionsIterator::from_slice(b);
        match it.next() {
            Some(Ok(option)) => {
                match option {
                    TcpOptionElement::Noop => {}
                    TcpOptionElement::MaximumSegmentSize(mss) => o.mss = Some(mss),
                    TcpOptionElement::WindowScale(shift) => o.window_scale = Some(shift),
                    TcpOptionElement::SelectiveAcknowledgementPermitted => o.sack_permitted = true,
                    TcpOptionElement::SelectiveAcknowledgement(_, more) => {
                        o.sack_blocks = 1 + more.iter().flatten().count() as u8;
                    }
                    TcpOptionElement::Timestamp(val, ecr) => o.timestamp = Some((val, ecr)),
                }
                b = it.rest();
            }
            Some(Err(_)) => match skip_option(b, &mut o) {
                Some(rest) => b = rest,
                None => break,
            },
            None => break,
        }
    }
    o
}

/// Skips an option etherparse refused, by its length byte; `None` when the length is below 2
/// or runs past the header (the walk ends there, as in Wireshark). A SACK option of a length
/// etherparse does not accept still counts its whole 8-byte blocks.
fn skip_option<'b>(b: &'b [u8], o: &mut TcpOptions) -> Option<&'b [u8]> {
    let (&kind, rest) = b.split_first()?;
    let len = usize::from(*rest.first()?);
    if len < 2 {
        return None;
    }
    let body = b.get(2..len)?;
    if kind == 5 {
        o.sack_blocks = u8::try_from(body.len() / 8).unwrap_or(u8::MAX);
    }
    Some(b.get(len..).unwrap_or(&[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_numbers_compare_across_wrap() {
        let a = SeqNumber(u32::MAX - 10);
        let b = a.advance(20);
        assert!(a.lt(b));
        assert!(b.gt(a));
        assert_eq!(b.diff(a), 20);
        assert_eq!(a.diff(b), -20);
    }

    #[test]
    fn options_parse_and_never_overrun() {
        let mut h = vec![0u8; 20];
        h[12] = 8 << 4;
        h[13] = 0x02;
        h.extend_from_slice(&[2, 4, 0x05, 0xb4, 1, 3, 3, 7, 4, 2, 1, 1]);
        let s = TcpSegment::parse(&h, 32).unwrap();
        assert_eq!(s.options.mss, Some(1460));
        assert_eq!(s.options.window_scale, Some(7));
        assert!(s.options.sack_permitted);
        assert_eq!(s.payload_len, 0);
        for n in 0..40 {
            let _ = parse_options(&[8u8, 10, 1, 2, 3][..n.min(5)]);
            let _ = skip_option(&[5u8, 12, 1, 2, 3][..n.min(5)], &mut TcpOptions::default());
            let _ = TcpSegment::parse(&h[..n.min(h.len())], n as u32);
        }
    }

    #[test]
    fn timestamp_fast_path_agrees_with_the_iterator() {
        let ts = [1u8, 1, 8, 10, 0, 0, 1, 2, 0xff, 0, 0, 3];
        let fast = parse_options(&ts);
        assert_eq!(fast.timestamp, Some((258, 0xff00_0003)));
        // The same option behind a third NOP misses the fast path: the iterator must agree.
        let mut slow = vec![1u8];
        slow.extend_from_slice(&ts);
        assert_eq!(parse_options(&slow), fast);
        // Cut or with a trailing option, the block is walked as usual.
        assert_eq!(parse_options(&ts[..11]), TcpOptions::default());
        let mut more = ts.to_vec();
        more.extend_from_slice(&[3, 3, 7, 0]);
        assert_eq!(parse_options(&more).window_scale, Some(7));
        assert_eq!(parse_options(&more).timestamp, fast.timestamp);
    }

    #[test]
    fn flag_names_follow_wireshark_order() {
        assert_eq!(TcpFlags(TcpFlags::SYN | TcpFlags::ACK).names(), "SYN, ACK");
        assert_eq!(
            TcpFlags(TcpFlags::FIN | TcpFlags::PSH | TcpFlags::ACK).names(),
            "FIN, PSH, ACK"
        );
    }
}
