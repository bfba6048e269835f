//! The link → IP → TCP decoder as it was before it read its headers through etherparse (commit
//! 985c6c9), kept as an oracle: `decode_frame` must give the same `Decoded` for every frame,
//! including cut and corrupted ones the corpus does not hold. Frames are built from random
//! layer stacks (VLAN/QinQ/MPLS/PPPoE, IPv4 options, IPv6 extension headers and fragments, TCP
//! options known and unknown), then cut and corrupted at random.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use wirelag_dissectors::link::LinkType;
use wirelag_dissectors::testutil::XorShift;

/// The previous decoder, verbatim but for paths and the oracle's entry point names.
mod previous {
    #![allow(clippy::all)]
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use wirelag_dissectors::ip::{IpError, IpHeader, IpPacket, PROTO_TCP, PROTO_UDP};
    use wirelag_dissectors::link::{LinkError, LinkPayload, LinkType, NetProto};
    use wirelag_dissectors::packet::{DecodeNote, Decoded, UdpPorts};
    use wirelag_dissectors::tcp::{SeqNumber, TcpError, TcpFlags, TcpOptions, TcpSegment};

    fn empty(note: DecodeNote) -> Decoded<'static> {
        Decoded {
            vlan: None,
            net: None,
            ip: None,
            tcp: None,
            udp: None,
            note: Some(note),
        }
    }

    const ETHERTYPE_IPV4: u16 = 0x0800;
    const ETHERTYPE_IPV6: u16 = 0x86dd;
    const ETHERTYPE_VLAN: u16 = 0x8100;
    const ETHERTYPE_QINQ: u16 = 0x88a8;
    const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
    const ETHERTYPE_MPLS: u16 = 0x8847;
    const ETHERTYPE_MPLS_MC: u16 = 0x8848;
    const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;

    fn be16(b: &[u8], at: usize) -> Option<u16> {
        let s = b.get(at..at.checked_add(2)?)?;
        Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
    }

    fn le32(b: &[u8], at: usize) -> Option<u32> {
        let s = b.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes(s.try_into().ok()?))
    }

    fn be32(b: &[u8], at: usize) -> Option<u32> {
        let s = b.get(at..at.checked_add(4)?)?;
        Some(u32::from_be_bytes(s.try_into().ok()?))
    }

    /// Decodes the link layer of one captured frame.
    pub fn decode_link(link: LinkType, frame: &[u8]) -> Result<LinkPayload<'_>, LinkError> {
        match link {
            LinkType::Ethernet => {
                let ethertype = be16(frame, 12).ok_or(LinkError::Truncated)?;
                let rest = frame.get(14..).ok_or(LinkError::Truncated)?;
                by_ethertype(ethertype, rest, None)
            }
            LinkType::LinuxSll => {
                // 16-byte header; protocol (EtherType) at 14.
                let proto = be16(frame, 14).ok_or(LinkError::Truncated)?;
                let rest = frame.get(16..).ok_or(LinkError::Truncated)?;
                by_ethertype(proto, rest, None)
            }
            LinkType::LinuxSll2 => {
                // 20-byte header; protocol (EtherType) first.
                let proto = be16(frame, 0).ok_or(LinkError::Truncated)?;
                let rest = frame.get(20..).ok_or(LinkError::Truncated)?;
                by_ethertype(proto, rest, None)
            }
            LinkType::Null | LinkType::Loop => {
                // NULL: address family in the capturing host's byte order; LOOP: network order.
                let raw = if link == LinkType::Loop {
                    be32(frame, 0)
                } else {
                    le32(frame, 0)
                }
                .ok_or(LinkError::Truncated)?;
                let family = if link == LinkType::Null && raw > 0xffff {
                    raw.swap_bytes()
                } else {
                    raw
                };
                let rest = frame.get(4..).ok_or(LinkError::Truncated)?;
                let proto = match family {
                    2 => NetProto::Ipv4,
                    // AF_INET6 differs by OS: 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS), 10 (Linux).
                    10 | 24 | 28 | 30 => NetProto::Ipv6,
                    other => NetProto::Other(u16::try_from(other).unwrap_or(u16::MAX)),
                };
                Ok(LinkPayload {
                    proto,
                    bytes: rest,
                    vlan: None,
                })
            }
            LinkType::Raw => Ok(LinkPayload {
                proto: ip_version(frame),
                bytes: frame,
                vlan: None,
            }),
            LinkType::Ipv4 => Ok(LinkPayload {
                proto: NetProto::Ipv4,
                bytes: frame,
                vlan: None,
            }),
            LinkType::Ipv6 => Ok(LinkPayload {
                proto: NetProto::Ipv6,
                bytes: frame,
                vlan: None,
            }),
            LinkType::Ppp | LinkType::PppHdlc => {
                // Optional HDLC address/control (ff 03), then a 1- or 2-byte PPP protocol field.
                let mut at = 0;
                if frame.first() == Some(&0xff) && frame.get(1) == Some(&0x03) {
                    at = 2;
                }
                ppp_payload(frame.get(at..).ok_or(LinkError::Truncated)?)
            }
        }
    }

    fn ppp_payload(b: &[u8]) -> Result<LinkPayload<'_>, LinkError> {
        let first = *b.first().ok_or(LinkError::Truncated)?;
        // Protocol-field compression: an odd first byte is a 1-byte protocol.
        let (proto, rest) = if first & 1 == 1 {
            (u16::from(first), b.get(1..).ok_or(LinkError::Truncated)?)
        } else {
            (
                be16(b, 0).ok_or(LinkError::Truncated)?,
                b.get(2..).ok_or(LinkError::Truncated)?,
            )
        };
        let proto = match proto {
            0x0021 => NetProto::Ipv4,
            0x0057 => NetProto::Ipv6,
            other => NetProto::Other(other),
        };
        Ok(LinkPayload {
            proto,
            bytes: rest,
            vlan: None,
        })
    }

    fn ip_version(b: &[u8]) -> NetProto {
        match b.first().map(|v| v >> 4) {
            Some(4) => NetProto::Ipv4,
            Some(6) => NetProto::Ipv6,
            _ => NetProto::Other(0),
        }
    }

    /// Follows VLAN tags, MPLS labels and PPPoE sessions down to the network layer.
    fn by_ethertype(
        mut ethertype: u16,
        mut rest: &[u8],
        mut vlan: Option<u16>,
    ) -> Result<LinkPayload<'_>, LinkError> {
        // Bounded: every step consumes at least 4 bytes, so the loop ends with the frame.
        loop {
            match ethertype {
                ETHERTYPE_IPV4 => {
                    return Ok(LinkPayload {
                        proto: NetProto::Ipv4,
                        bytes: rest,
                        vlan,
                    })
                }
                ETHERTYPE_IPV6 => {
                    return Ok(LinkPayload {
                        proto: NetProto::Ipv6,
                        bytes: rest,
                        vlan,
                    })
                }
                ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                    let tci = be16(rest, 0).ok_or(LinkError::Truncated)?;
                    vlan.get_or_insert(tci & 0x0fff);
                    ethertype = be16(rest, 2).ok_or(LinkError::Truncated)?;
                    rest = rest.get(4..).ok_or(LinkError::Truncated)?;
                }
                ETHERTYPE_MPLS | ETHERTYPE_MPLS_MC => {
                    // Pop labels until bottom-of-stack, then guess IPv4/IPv6 from the version nibble.
                    loop {
                        let label = be32(rest, 0).ok_or(LinkError::Truncated)?;
                        rest = rest.get(4..).ok_or(LinkError::Truncated)?;
                        if label & 0x100 != 0 {
                            break;
                        }
                    }
                    return Ok(LinkPayload {
                        proto: ip_version(rest),
                        bytes: rest,
                        vlan,
                    });
                }
                ETHERTYPE_PPPOE_SESSION => {
                    // 6-byte PPPoE header, then PPP protocol.
                    let inner = rest.get(6..).ok_or(LinkError::Truncated)?;
                    let mut p = ppp_payload(inner)?;
                    p.vlan = vlan;
                    return Ok(p);
                }
                other => {
                    return Ok(LinkPayload {
                        proto: NetProto::Other(other),
                        bytes: rest,
                        vlan,
                    })
                }
            }
        }
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

    pub fn tcp_parse(bytes: &[u8], transport_len: u32) -> Result<TcpSegment<'_>, TcpError> {
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

    /// Decodes one captured frame as far as TCP.
    pub fn decode_frame(link: LinkType, frame: &[u8]) -> Decoded<'_> {
        let payload = match decode_link(link, frame) {
            Ok(p) => p,
            Err(_) => return empty(DecodeNote::LinkTruncated),
        };
        let parsed: Result<IpPacket<'_>, IpError> = match payload.proto {
            NetProto::Ipv4 => parse_ipv4(payload.bytes),
            NetProto::Ipv6 => parse_ipv6(payload.bytes),
            NetProto::Other(_) => {
                let mut d = empty(DecodeNote::NotIp);
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
            PROTO_TCP => match tcp_parse(ipp.transport, ipp.transport_len) {
                Ok(seg) => d.tcp = Some(seg),
                Err(TcpError::Truncated) => d.note = Some(DecodeNote::TcpTruncated),
                Err(TcpError::BadHeaderLength(_)) => d.note = Some(DecodeNote::TcpBadHeaderLength),
            },
            PROTO_UDP => {
                d.note = Some(DecodeNote::NotTcp);
                if let Some(h) = ipp
                    .transport
                    .get(..8)
                    .and_then(|s| <&[u8; 8]>::try_from(s).ok())
                {
                    d.udp = Some(UdpPorts {
                        src: u16::from_be_bytes([h[0], h[1]]),
                        dst: u16::from_be_bytes([h[2], h[3]]),
                        len: u16::from_be_bytes([h[4], h[5]]),
                    });
                }
            }
            _ => d.note = Some(DecodeNote::NotTcp),
        }
        d
    }
}

/// Random layer stacks, cut and corrupted: enough structure to reach every header parser's
/// edge cases (options walks, extension header chains, cut headers), enough noise for the rest.
struct FrameGen(XorShift);

impl FrameGen {
    fn below(&mut self, n: usize) -> usize {
        self.0.below(n)
    }
    fn one_in(&mut self, n: usize) -> bool {
        self.0.below(n) == 0
    }
    fn byte(&mut self) -> u8 {
        self.0.next() as u8
    }
    fn bytes(&mut self, out: &mut Vec<u8>, n: usize) {
        for _ in 0..n {
            let b = self.byte();
            out.push(b);
        }
    }
    fn pick<T: Copy>(&mut self, of: &[T]) -> T {
        of[self.below(of.len())]
    }

    fn tcp_options(&mut self, out: &mut Vec<u8>) {
        let start = out.len();
        for _ in 0..self.below(7) {
            match self.below(12) {
                0 => out.extend_from_slice(&[2, 4, self.byte(), self.byte()]),
                1 => out.extend_from_slice(&[3, 3, self.byte()]),
                2 => out.extend_from_slice(&[4, 2]),
                3 => {
                    let blocks = self.below(5);
                    out.extend_from_slice(&[5, (2 + 8 * blocks) as u8]);
                    self.bytes(out, 8 * blocks);
                }
                4 => {
                    out.extend_from_slice(&[8, 10]);
                    self.bytes(out, 8);
                }
                5 => out.push(1),
                6 => out.push(0),
                7 => {
                    // An option etherparse does not know (MPTCP, TFO, MD5, user timeout).
                    let len = 2 + self.below(11);
                    out.extend_from_slice(&[self.pick(&[30, 34, 19, 28, 253]), len as u8]);
                    self.bytes(out, len - 2);
                }
                8 => {
                    // A known option with a length etherparse refuses.
                    let kind = self.pick(&[2, 3, 4, 5, 8]);
                    let len = self.below(14);
                    out.extend_from_slice(&[kind, len as u8]);
                    self.bytes(out, len.saturating_sub(2));
                }
                _ => {
                    let b = self.byte();
                    out.push(b);
                }
            }
        }
        let len = (out.len() - start).min(40);
        out.truncate(start + len);
        while (out.len() - start) % 4 != 0 {
            out.push(self.pick(&[0, 1]));
        }
    }

    fn transport(&mut self, proto: u8) -> Vec<u8> {
        let mut t = Vec::new();
        match proto {
            6 => {
                self.bytes(&mut t, 20);
                let mut opts = Vec::new();
                if !self.one_in(3) {
                    self.tcp_options(&mut opts);
                }
                let words = 5 + opts.len() / 4;
                t[12] = ((words as u8) << 4) | (t[12] & 0x01);
                if self.one_in(10) {
                    t[12] = (self.byte() & 0xf0) | (t[12] & 0x0f);
                }
                t.extend_from_slice(&opts);
            }
            17 => self.bytes(&mut t, 8),
            _ => {}
        }
        let n = self.pick(&[0, 0, 1, 5, 40, 300]);
        self.bytes(&mut t, n);
        t
    }

    fn ipv4(&mut self) -> Vec<u8> {
        let proto = self.pick(&[6, 6, 6, 6, 17, 1, 51, 47]);
        let ihl = if self.one_in(4) { 5 + self.below(4) } else { 5 };
        let mut p = vec![0x40 | ihl as u8, 0, 0, 0];
        self.bytes(&mut p, 2); // id
        let frag: u16 = match self.below(8) {
            0 => 0x2000,
            1 => u16::from(self.byte()), // offset only
            2 => 0x2000 | (self.byte() as u16),
            _ => 0x4000,
        };
        p.extend_from_slice(&frag.to_be_bytes());
        p.push(64);
        p.push(proto);
        p.extend_from_slice(&[0, 0]);
        self.bytes(&mut p, 8);
        self.bytes(&mut p, (ihl - 5) * 4);
        let t = self.transport(proto);
        let mut total = (p.len() + t.len()) as u16;
        match self.below(10) {
            0 => total = 0,
            1 => total = self.byte() as u16,
            2 => total = total.wrapping_add(self.below(30) as u16),
            _ => {}
        }
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&t);
        p
    }

    fn ipv6(&mut self) -> Vec<u8> {
        let proto = self.pick(&[6, 6, 6, 17, 58, 50, 59]);
        let mut p = vec![0x60, 0, 0, 0, 0, 0, 0, 64];
        self.bytes(&mut p, 32);
        let mut chain: Vec<u8> = Vec::new();
        for _ in 0..self.pick(&[0, 0, 0, 1, 2, 3]) {
            chain.push(self.pick(&[0, 43, 60, 44, 51, 135, 139, 140]));
        }
        chain.push(proto);
        p[6] = chain[0];
        for w in chain.windows(2) {
            let (kind, next) = (w[0], w[1]);
            match kind {
                44 => {
                    p.extend_from_slice(&[next, 0]);
                    let off_flags: u16 = match self.below(4) {
                        0 => 1,
                        1 => (self.byte() as u16) << 3,
                        _ => 0,
                    };
                    p.extend_from_slice(&off_flags.to_be_bytes());
                    self.bytes(&mut p, 4);
                }
                51 => {
                    let len = self.below(4);
                    p.extend_from_slice(&[next, len as u8]);
                    self.bytes(&mut p, (len + 2) * 4 - 2);
                }
                _ => {
                    let len = self.below(3);
                    p.extend_from_slice(&[next, len as u8]);
                    self.bytes(&mut p, (len + 1) * 8 - 2);
                }
            }
        }
        let t = self.transport(proto);
        let mut payload = (p.len() - 40 + t.len()) as u16;
        if self.one_in(8) {
            payload = self.byte() as u16;
        }
        p[4..6].copy_from_slice(&payload.to_be_bytes());
        p.extend_from_slice(&t);
        p
    }

    fn net(&mut self) -> (u16, Vec<u8>) {
        match self.below(10) {
            0..=5 => (0x0800, self.ipv4()),
            6..=8 => (0x86dd, self.ipv6()),
            _ => {
                let mut junk = Vec::new();
                let n = self.below(60);
                self.bytes(&mut junk, n);
                (self.pick(&[0x0806, 0x88cc, 0x0800, 0x86dd]), junk)
            }
        }
    }

    /// Ethernet payload: VLAN tags, MPLS labels or a PPPoE session, then the network packet.
    fn ether_stack(&mut self, out: &mut Vec<u8>) {
        let (ethertype, net) = self.net();
        for _ in 0..self.pick(&[0, 0, 0, 1, 1, 2, 4]) {
            out.extend_from_slice(&u16::to_be_bytes(self.pick(&[0x8100, 0x88a8, 0x9100])));
            self.bytes(out, 2);
        }
        match self.below(10) {
            0 => {
                out.extend_from_slice(&[0x88, 0x47]);
                for i in (0..=self.below(3)).rev() {
                    let mut label = (self.0.next() as u32) & !0x100;
                    if i == 0 {
                        label |= 0x100;
                    }
                    out.extend_from_slice(&label.to_be_bytes());
                }
            }
            1 => {
                out.extend_from_slice(&[0x88, 0x64, 0x11, 0, 0, 1, 0, 0]);
                let ppp: &[u8] = match (ethertype, self.below(2)) {
                    (0x0800, 0) => &[0x21],
                    (0x0800, _) => &[0x00, 0x21],
                    (0x86dd, _) => &[0x00, 0x57],
                    _ => &[0xc0, 0x21],
                };
                out.extend_from_slice(ppp);
            }
            _ => out.extend_from_slice(&ethertype.to_be_bytes()),
        }
        out.extend_from_slice(&net);
    }

    fn frame(&mut self) -> (LinkType, Vec<u8>) {
        let mut f = Vec::new();
        let link = match self.below(14) {
            0..=5 => {
                self.bytes(&mut f, 12);
                self.ether_stack(&mut f);
                LinkType::Ethernet
            }
            6 => {
                self.bytes(&mut f, 14);
                let (et, net) = self.net();
                f.extend_from_slice(&et.to_be_bytes());
                f.extend_from_slice(&net);
                LinkType::LinuxSll
            }
            7 => {
                let (et, net) = self.net();
                f.extend_from_slice(&et.to_be_bytes());
                self.bytes(&mut f, 18);
                f.extend_from_slice(&net);
                LinkType::LinuxSll2
            }
            8 | 9 => {
                let (et, net) = self.net();
                let family: u32 = if et == 0x0800 {
                    2
                } else {
                    self.pick(&[10, 24, 28, 30, 7])
                };
                let null = self.one_in(2);
                if null && self.one_in(2) {
                    f.extend_from_slice(&family.to_le_bytes());
                } else {
                    f.extend_from_slice(&family.to_be_bytes());
                }
                f.extend_from_slice(&net);
                if null {
                    LinkType::Null
                } else {
                    LinkType::Loop
                }
            }
            10 => {
                let (_, net) = self.net();
                f.extend_from_slice(&net);
                self.pick(&[LinkType::Raw, LinkType::Ipv4, LinkType::Ipv6])
            }
            11 => {
                if self.one_in(2) {
                    f.extend_from_slice(&[0xff, 0x03]);
                }
                let (et, net) = self.net();
                f.extend_from_slice(if et == 0x86dd {
                    &[0x00, 0x57]
                } else {
                    &[0x00, 0x21]
                });
                f.extend_from_slice(&net);
                self.pick(&[LinkType::Ppp, LinkType::PppHdlc])
            }
            _ => {
                let n = self.below(120);
                self.bytes(&mut f, n);
                self.pick(&[
                    LinkType::Ethernet,
                    LinkType::LinuxSll,
                    LinkType::LinuxSll2,
                    LinkType::Null,
                    LinkType::Raw,
                    LinkType::Ppp,
                ])
            }
        };
        // Corrupt a few bytes, and cut the frame as a snaplen would.
        if self.one_in(3) && !f.is_empty() {
            for _ in 0..=self.below(3) {
                let at = self.below(f.len());
                f[at] = self.byte();
            }
        }
        if self.one_in(3) {
            let keep = self.below(f.len() + 1);
            f.truncate(keep);
        }
        (link, f)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn etherparse_decoder_agrees_with_the_previous_one() {
    let mut gen = FrameGen(XorShift(0x5eed_e7e4_2025_0013));
    let (mut with_tcp, mut payload_cut, mut with_options) = (0, 0, 0);
    for _ in 0..150_000 {
        let (link, frame) = gen.frame();
        let decoded = wirelag_dissectors::decode_frame(link, &frame);
        let new = format!("{decoded:?}");
        let old = format!("{:?}", previous::decode_frame(link, &frame));
        assert_eq!(new, old, "{link:?} frame {}", hex(&frame));
        if let Some(t) = decoded.tcp {
            with_tcp += 1;
            payload_cut += usize::from(t.payload.len() < t.payload_len as usize);
            with_options += usize::from(t.options != Default::default());
        }
    }
    // The generator reaches the paths the comparison is about.
    eprintln!("{with_tcp} TCP segments, {payload_cut} snaplen-cut, {with_options} with options");
    assert!(with_tcp > 20_000, "{with_tcp} TCP segments");
    assert!(payload_cut > 2_000, "{payload_cut} cut segments");
    assert!(with_options > 5_000, "{with_options} segments with options");
}
