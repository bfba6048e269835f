//! TCP: the segment header (a checked view), sequence-number arithmetic, stream tracking with
//! Wireshark's `tcp.stream` numbering, and per-direction reassembly.

pub mod reassembly;
pub mod stream;

use std::cmp::Ordering;

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
    /// captured part of it.
    pub fn parse(bytes: &'a [u8], transport_len: u32) -> Result<Self, TcpError> {
        let fixed: &[u8; 20] = bytes
            .get(..20)
            .and_then(|s| s.try_into().ok())
            .ok_or(TcpError::Truncated)?;
        let data_offset = fixed[12] >> 4;
        let header_len = usize::from(data_offset) * 4;
        if data_offset < 5 || header_len as u32 > transport_len.max(20) {
            return Err(TcpError::BadHeaderLength(data_offset));
        }
        let options_bytes = bytes.get(20..header_len.min(bytes.len())).unwrap_or(&[]);
        let payload = bytes.get(header_len..).unwrap_or(&[]);
        Ok(TcpSegment {
            src_port: u16::from_be_bytes([fixed[0], fixed[1]]),
            dst_port: u16::from_be_bytes([fixed[2], fixed[3]]),
            seq: SeqNumber(u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]])),
            ack: SeqNumber(u32::from_be_bytes([
                fixed[8], fixed[9], fixed[10], fixed[11],
            ])),
            header_len: data_offset * 4,
            flags: TcpFlags((u16::from(fixed[12] & 0x01) << 8) | u16::from(fixed[13])),
            window: u16::from_be_bytes([fixed[14], fixed[15]]),
            options: parse_options(options_bytes),
            payload_len: transport_len.saturating_sub(header_len as u32),
            payload,
        })
    }

    /// Sequence space this segment occupies: payload plus one for SYN and one for FIN.
    pub fn seq_len(&self) -> u32 {
        self.payload_len + u32::from(self.flags.syn()) + u32::from(self.flags.fin())
    }
}

fn parse_options(mut b: &[u8]) -> TcpOptions {
    let mut o = TcpOptions::default();
    // Every iteration consumes at least one byte.
    while let Some((&kind, rest)) = b.split_first() {
        match kind {
            0 => break,
            1 => {
                b = rest;
                continue;
            }
            _ => {}
        }
        let Some(&len) = rest.first() else { break };
        let len = usize::from(len);
        if len < 2 {
            break;
        }
        let Some(body) = b.get(2..len) else { break };
        match (kind, body) {
            (2, &[hi, lo]) => o.mss = Some(u16::from_be_bytes([hi, lo])),
            (3, &[shift]) => o.window_scale = Some(shift),
            (4, []) => o.sack_permitted = true,
            (5, blocks) => o.sack_blocks = u8::try_from(blocks.len() / 8).unwrap_or(u8::MAX),
            (8, &[a, b0, c, d, e, f, g, h]) => {
                o.timestamp = Some((
                    u32::from_be_bytes([a, b0, c, d]),
                    u32::from_be_bytes([e, f, g, h]),
                ));
            }
            _ => {}
        }
        b = b.get(len..).unwrap_or(&[]);
    }
    o
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
            let _ = TcpSegment::parse(&h[..n.min(h.len())], n as u32);
        }
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
