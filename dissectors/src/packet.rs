//! One frame, decoded from the link layer down to TCP.
//!
//! Each layer goes through its own checked view (etherparse's slices, or a shim where etherparse
//! has none; see [`crate::link`]) rather than etherparse's whole-packet `LaxSlicedPacket`: that
//! one stops at link types it does not know, walks IPv4 AH headers and a bounded number of VLAN
//! tags, and would report a header cut inside its options as missing, where wirelag keeps the
//! notes and numbering it has always given (and tshark gives).

use crate::ip::{self, IpHeader, IpPacket};
use crate::link::{self, LinkType, NetProto};
use crate::tcp::TcpSegment;
use etherparse::UdpHeaderSlice;

/// Why decoding stopped above TCP. Counted as anomalies; never fatal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeNote {
    LinkTruncated,
    /// Not IPv4/IPv6 (ARP, LLDP, ...): not an anomaly, just out of scope.
    NotIp,
    IpMalformed,
    /// An IP fragment: counted, not reassembled.
    IpFragment,
    /// IP carries something other than TCP (UDP, ICMP, ...).
    NotTcp,
    TcpTruncated,
    TcpBadHeaderLength,
}

/// A UDP header's ports (for filters and the packet list; UDP is otherwise out of scope).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpPorts {
    pub src: u16,
    pub dst: u16,
    pub len: u16,
}

#[derive(Clone, Copy, Debug)]
pub struct Decoded<'a> {
    pub vlan: Option<u16>,
    pub net: Option<NetProto>,
    pub ip: Option<IpHeader>,
    pub tcp: Option<TcpSegment<'a>>,
    pub udp: Option<UdpPorts>,
    /// Set when decoding stopped before a TCP segment was found.
    pub note: Option<DecodeNote>,
}

impl Decoded<'_> {
    fn empty(note: DecodeNote) -> Self {
        Decoded {
            vlan: None,
            net: None,
            ip: None,
            tcp: None,
            udp: None,
            note: Some(note),
        }
    }
}

/// Decodes one captured frame as far as TCP.
pub fn decode_frame(link: LinkType, frame: &[u8]) -> Decoded<'_> {
    let payload = match link::decode_link(link, frame) {
        Ok(p) => p,
        Err(_) => return Decoded::empty(DecodeNote::LinkTruncated),
    };
    let parsed: Result<IpPacket<'_>, ip::IpError> = match payload.proto {
        NetProto::Ipv4 => ip::parse_ipv4(payload.bytes),
        NetProto::Ipv6 => ip::parse_ipv6(payload.bytes),
        NetProto::Other(_) => {
            let mut d = Decoded::empty(DecodeNote::NotIp);
            d.vlan = payload.vlan;
            d.net = Some(payload.proto);
            return d;
        }
    };
    let mut d = Decoded {
        vlan: payload.vlan,
        net: Some(payload.proto),
        ip: None,
        tcp: None,
        udp: None,
        note: None,
    };
    let ipp = match parsed {
        Ok(p) => p,
        Err(_) => {
            d.note = Some(DecodeNote::IpMalformed);
            return d;
        }
    };
    d.ip = Some(ipp.header);
    if ipp.header.fragment {
        d.note = Some(DecodeNote::IpFragment);
        return d;
    }
    match ipp.header.proto {
        ip::PROTO_TCP => match TcpSegment::parse(ipp.transport, ipp.transport_len) {
            Ok(seg) => d.tcp = Some(seg),
            Err(crate::tcp::TcpError::Truncated) => d.note = Some(DecodeNote::TcpTruncated),
            Err(crate::tcp::TcpError::BadHeaderLength(_)) => {
                d.note = Some(DecodeNote::TcpBadHeaderLength)
            }
        },
        ip::PROTO_UDP => {
            d.note = Some(DecodeNote::NotTcp);
            if let Ok(h) = UdpHeaderSlice::from_slice(ipp.transport) {
                d.udp = Some(UdpPorts {
                    src: h.source_port(),
                    dst: h.destination_port(),
                    len: h.length(),
                });
            }
        }
        _ => d.note = Some(DecodeNote::NotTcp),
    }
    d
}
