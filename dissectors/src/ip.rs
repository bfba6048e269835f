//! IPv4 and IPv6: checked parsing down to the transport payload.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_ICMPV6: u8 = 58;

/// The facts of one IP header that the rest of wirelag needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpHeader {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Transport protocol (after IPv6 extension headers).
    pub proto: u8,
    pub ttl: u8,
    /// IPv4 identification (0 for IPv6 unless a fragment header carries one).
    pub id: u32,
    /// Total length as the header states it (IPv4 total length, IPv6 40 + payload length).
    pub total_len: u32,
    pub header_len: u16,
    /// A fragment that is not a whole datagram (offset != 0 or more-fragments set).
    pub fragment: bool,
}

/// A parsed IP packet: header facts plus the transport bytes actually captured.
#[derive(Clone, Copy, Debug)]
pub struct IpPacket<'a> {
    pub header: IpHeader,
    /// Transport bytes present in the capture (may be shorter than `transport_len` when the
    /// snaplen cut the frame).
    pub transport: &'a [u8],
    /// Transport length according to the IP header.
    pub transport_len: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpError {
    Truncated,
    BadVersion(u8),
    BadHeaderLength(u8),
    BadTotalLength(u32),
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes(s.try_into().ok()?))
}

pub fn parse_ipv4(b: &[u8]) -> Result<IpPacket<'_>, IpError> {
    let first = *b.first().ok_or(IpError::Truncated)?;
    if first >> 4 != 4 {
        return Err(IpError::BadVersion(first >> 4));
    }
    let ihl = first & 0x0f;
    if ihl < 5 {
        return Err(IpError::BadHeaderLength(ihl));
    }
    let header_len = usize::from(ihl) * 4;
    let fixed: &[u8; 20] = b
        .get(..20)
        .and_then(|s| s.try_into().ok())
        .ok_or(IpError::Truncated)?;
    if b.len() < header_len {
        return Err(IpError::Truncated);
    }
    let mut total = u32::from(u16::from_be_bytes([fixed[2], fixed[3]]));
    if total == 0 {
        // TCP segmentation offload: the stack had not filled the length yet (Wireshark assumes
        // the same). The captured length is all we know.
        total = u32::try_from(b.len()).unwrap_or(u32::MAX);
    }
    if (total as usize) < header_len {
        return Err(IpError::BadTotalLength(total));
    }
    let flags_frag = u16::from_be_bytes([fixed[6], fixed[7]]);
    let more_fragments = flags_frag & 0x2000 != 0;
    let offset = flags_frag & 0x1fff;
    let src = Ipv4Addr::new(fixed[12], fixed[13], fixed[14], fixed[15]);
    let dst = Ipv4Addr::new(fixed[16], fixed[17], fixed[18], fixed[19]);
    let end = (total as usize).min(b.len());
    let transport = b.get(header_len..end).unwrap_or(&[]);
    Ok(IpPacket {
        header: IpHeader {
            src: IpAddr::V4(src),
            dst: IpAddr::V4(dst),
            proto: fixed[9],
            ttl: fixed[8],
            id: u32::from(u16::from_be_bytes([fixed[4], fixed[5]])),
            total_len: total,
            header_len: u16::from(ihl) * 4,
            fragment: more_fragments || offset != 0,
        },
        transport,
        transport_len: total - header_len as u32,
    })
}

/// Extension headers walked before the transport protocol. ESP (50) and "no next header" (59)
/// end the walk: what follows is opaque.
fn is_ipv6_extension(next: u8) -> bool {
    matches!(next, 0 | 43 | 44 | 51 | 60 | 135 | 139 | 140)
}

pub fn parse_ipv6(b: &[u8]) -> Result<IpPacket<'_>, IpError> {
    let fixed: &[u8; 40] = b
        .get(..40)
        .and_then(|s| s.try_into().ok())
        .ok_or(IpError::Truncated)?;
    if fixed[0] >> 4 != 6 {
        return Err(IpError::BadVersion(fixed[0] >> 4));
    }
    let payload_len = u32::from(u16::from_be_bytes([fixed[4], fixed[5]]));
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src.copy_from_slice(&fixed[8..24]);
    dst.copy_from_slice(&fixed[24..40]);
    let mut next = fixed[6];
    let mut at = 40usize;
    let mut fragment = false;
    let mut id = 0u32;
    // Each extension header is at least 8 bytes, so the walk ends within the packet.
    while is_ipv6_extension(next) {
        let nh = *b.get(at).ok_or(IpError::Truncated)?;
        let len = match next {
            44 => {
                let off_flags = be16(b, at + 2).ok_or(IpError::Truncated)?;
                // An "atomic fragment" (offset 0, M clear) is a whole datagram.
                fragment = (off_flags & 0xfff8) != 0 || (off_flags & 1) != 0;
                let idb = b.get(at + 4..at + 8).ok_or(IpError::Truncated)?;
                id = u32::from_be_bytes(idb.try_into().map_err(|_| IpError::Truncated)?);
                8
            }
            51 => (usize::from(*b.get(at + 1).ok_or(IpError::Truncated)?) + 2) * 4,
            _ => (usize::from(*b.get(at + 1).ok_or(IpError::Truncated)?) + 1) * 8,
        };
        next = nh;
        at += len;
        if fragment {
            break;
        }
    }
    let total = 40 + payload_len;
    let end = (total as usize).min(b.len());
    let transport = b.get(at..end).unwrap_or(&[]);
    let transport_len = total.saturating_sub(u32::try_from(at).unwrap_or(u32::MAX));
    Ok(IpPacket {
        header: IpHeader {
            src: IpAddr::V6(Ipv6Addr::from(src)),
            dst: IpAddr::V6(Ipv6Addr::from(dst)),
            proto: next,
            ttl: fixed[7],
            id,
            total_len: total,
            header_len: u16::try_from(at).unwrap_or(u16::MAX),
            fragment,
        },
        transport,
        transport_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_payload_stops_at_total_length() {
        let mut p = vec![
            0x45, 0, 0, 24, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        p.extend_from_slice(&[1, 2, 3, 4, 0xee, 0xee]); // 2 bytes of Ethernet padding
        let ip = parse_ipv4(&p).unwrap();
        assert_eq!(ip.transport, &[1, 2, 3, 4]);
        assert_eq!(ip.transport_len, 4);
        assert!(!ip.header.fragment);
    }

    #[test]
    fn ipv6_atomic_fragment_is_whole() {
        let mut p = vec![0x60, 0, 0, 0, 0, 12, 44, 64];
        p.extend_from_slice(&[0; 32]);
        p.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 9]);
        p.extend_from_slice(&[1, 2, 3, 4]);
        let ip = parse_ipv6(&p).unwrap();
        assert_eq!(ip.header.proto, 6);
        assert!(!ip.header.fragment);
        assert_eq!(ip.transport, &[1, 2, 3, 4]);
    }

    #[test]
    fn garbage_never_panics() {
        for n in 0..64 {
            let v: Vec<u8> = (0..n).map(|i| (i * 37 + 5) as u8).collect();
            let _ = parse_ipv4(&v);
            let _ = parse_ipv6(&v);
            let mut w = v.clone();
            if let Some(f) = w.first_mut() {
                *f = 0x60;
            }
            let _ = parse_ipv6(&w);
        }
    }
}
