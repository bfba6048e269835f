//! IPv4 and IPv6: checked parsing down to the transport payload.
//!
//! The headers are read through etherparse's checked slices (no checksum is verified: offloaded
//! and loopback captures carry zero or stale ones). wirelag's own policy sits around them: the
//! transport bytes end at the stated length (Ethernet padding is not payload), a zero IPv4 total
//! length means TSO and takes the captured length, and fragments are flagged, not reassembled.

use std::net::IpAddr;

use etherparse::err::ipv4::{HeaderError, HeaderSliceError};
use etherparse::err::ipv6;
use etherparse::{
    IpAuthHeaderSlice, IpNumber, Ipv4HeaderSlice, Ipv6FragmentHeaderSlice, Ipv6Header,
    Ipv6HeaderSlice, Ipv6RawExtHeaderSlice,
};

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

pub fn parse_ipv4(b: &[u8]) -> Result<IpPacket<'_>, IpError> {
    // The checked view covers version, IHL >= 5 and the whole header (options included) being
    // captured. What follows the header is ours to bound: etherparse's lax IPv4 slice would take
    // the rest of the frame when the total length is below the header length (we call that
    // malformed) and would walk an IPv4 AH header (we report protocol 51 as it is).
    let h = Ipv4HeaderSlice::from_slice(b).map_err(|e| match e {
        HeaderSliceError::Len(_) => IpError::Truncated,
        HeaderSliceError::Content(HeaderError::UnexpectedVersion { version_number }) => {
            IpError::BadVersion(version_number)
        }
        HeaderSliceError::Content(HeaderError::HeaderLengthSmallerThanHeader { ihl }) => {
            IpError::BadHeaderLength(ihl)
        }
    })?;
    let header_len = h.slice().len();
    let mut total = u32::from(h.total_len());
    if total == 0 {
        // TCP segmentation offload: the stack had not filled the length yet (Wireshark assumes
        // the same). The captured length is all we know.
        total = u32::try_from(b.len()).unwrap_or(u32::MAX);
    }
    if (total as usize) < header_len {
        return Err(IpError::BadTotalLength(total));
    }
    let end = (total as usize).min(b.len());
    let transport = b.get(header_len..end).unwrap_or(&[]);
    Ok(IpPacket {
        header: IpHeader {
            src: IpAddr::V4(h.source_addr()),
            dst: IpAddr::V4(h.destination_addr()),
            proto: h.protocol().0,
            ttl: h.ttl(),
            id: u32::from(h.identification()),
            total_len: total,
            header_len: u16::try_from(header_len).unwrap_or(u16::MAX),
            fragment: h.is_fragmenting_payload(),
        },
        transport,
        transport_len: total - header_len as u32,
    })
}

/// Extension headers walked before the transport protocol. ESP (50) and "no next header" (59)
/// end the walk: what follows is opaque (etherparse's `is_ipv6_ext_header_value` counts ESP and
/// the experimental numbers 253/254 as extensions, which we do not walk).
fn is_ipv6_extension(next: IpNumber) -> bool {
    matches!(
        next,
        IpNumber::IPV6_HEADER_HOP_BY_HOP
            | IpNumber::IPV6_ROUTE_HEADER
            | IpNumber::IPV6_FRAGMENTATION_HEADER
            | IpNumber::AUTHENTICATION_HEADER
            | IpNumber::IPV6_DESTINATION_OPTIONS
            | IpNumber::MOBILITY_HEADER
            | IpNumber::HIP
            | IpNumber::SHIM6
    )
}

/// Next header and length of an extension header that etherparse's slices refuse: one cut by
/// the snaplen, or an AH with a zero length field. Its first two bytes still say what follows
/// and how far, so the walk goes on as Wireshark's does: the transport bytes come out empty (a
/// TCP header behind it is then reported truncated) instead of the whole packet being dropped
/// as malformed. `unit`/`extra`: the length field counts `unit`-byte words beyond `extra`.
fn cut_extension(b: &[u8], unit: usize, extra: usize) -> Result<(IpNumber, usize), IpError> {
    let next = *b.first().ok_or(IpError::Truncated)?;
    let words = usize::from(*b.get(1).ok_or(IpError::Truncated)?);
    Ok((IpNumber(next), (words + extra) * unit))
}

pub fn parse_ipv6(b: &[u8]) -> Result<IpPacket<'_>, IpError> {
    let h = Ipv6HeaderSlice::from_slice(b).map_err(|e| match e {
        ipv6::HeaderSliceError::Len(_) => IpError::Truncated,
        ipv6::HeaderSliceError::Content(ipv6::HeaderError::UnexpectedVersion {
            version_number,
        }) => IpError::BadVersion(version_number),
    })?;
    let payload_len = u32::from(h.payload_length());
    let mut next = h.next_header();
    let mut at = Ipv6Header::LEN;
    let mut fragment = false;
    let mut id = 0u32;
    // Each extension header is at least 8 bytes, so the walk ends within the packet.
    while is_ipv6_extension(next) {
        let rest = b.get(at..).unwrap_or(&[]);
        let (nh, len) = match next {
            IpNumber::IPV6_FRAGMENTATION_HEADER => {
                let f =
                    Ipv6FragmentHeaderSlice::from_slice(rest).map_err(|_| IpError::Truncated)?;
                // An "atomic fragment" (offset 0, M clear) is a whole datagram.
                fragment = f.is_fragmenting_payload();
                id = f.identification();
                (f.next_header(), f.slice().len())
            }
            IpNumber::AUTHENTICATION_HEADER => match IpAuthHeaderSlice::from_slice(rest) {
                Ok(ah) => (ah.next_header(), ah.slice().len()),
                Err(_) => cut_extension(rest, 4, 2)?,
            },
            _ => match Ipv6RawExtHeaderSlice::from_slice(rest) {
                Ok(ext) => (ext.next_header(), ext.slice().len()),
                Err(_) => cut_extension(rest, 8, 1)?,
            },
        };
        next = nh;
        at += len;
        if fragment {
            break;
        }
    }
    let total = Ipv6Header::LEN as u32 + payload_len;
    let end = (total as usize).min(b.len());
    let transport = b.get(at..end).unwrap_or(&[]);
    let transport_len = total.saturating_sub(u32::try_from(at).unwrap_or(u32::MAX));
    Ok(IpPacket {
        header: IpHeader {
            src: IpAddr::V6(h.source_addr()),
            dst: IpAddr::V6(h.destination_addr()),
            proto: next.0,
            ttl: h.hop_limit(),
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
