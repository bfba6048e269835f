//! Link layers: from a captured frame to the network-layer packet it carries.
//!
//! Supported: Ethernet (with any stack of 802.1Q / 802.1ad / QinQ tags and MPLS labels), Linux
//! cooked capture v1 (SLL) and v2 (SLL2, `tcpdump -i any` on newer libpcap), BSD NULL and
//! OpenBSD LOOP, raw IP (DLT_RAW and LINKTYPE_IPV4/IPV6), and PPP (with or without HDLC framing).
//!
//! Ethernet II and VLAN tags are read through etherparse's checked slices. The rest are small
//! shims, each for something etherparse does not decode or decodes more strictly than a capture
//! needs:
//! - Linux SLL: etherparse's `LinuxSllHeaderSlice` refuses every ARPHRD type but Ethernet,
//!   netlink, GRE, radiotap and FRAD, so `tcpdump -i any` on `lo` (ARPHRD_LOOPBACK), a tun
//!   device (ARPHRD_NONE) or PPP would not decode; the protocol field is read as an EtherType.
//! - SLL2, BSD NULL / OpenBSD LOOP, PPP (HDLC or not), PPPoE sessions, MPLS label stacks and raw
//!   IP: etherparse has no parser for them.

/// A link-layer header type as written in pcap/pcapng (the LINKTYPE_* registry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    Null,
    Ethernet,
    Ppp,
    PppHdlc,
    Raw,
    Loop,
    LinuxSll,
    LinuxSll2,
    Ipv4,
    Ipv6,
}

impl LinkType {
    /// Maps a LINKTYPE_* number; `None` for link types wirelag does not decode.
    pub fn from_linktype(code: u32) -> Option<Self> {
        Some(match code {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            9 => LinkType::Ppp,
            50 => LinkType::PppHdlc,
            // 101 is LINKTYPE_RAW; 12 and 14 are DLT_RAW on some BSDs as they appear in old files.
            101 | 12 | 14 => LinkType::Raw,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            _ => return None,
        })
    }

    /// The LINKTYPE_* number written to a pcap file header for this link type.
    pub fn code(self) -> u32 {
        match self {
            LinkType::Null => 0,
            LinkType::Ethernet => 1,
            LinkType::Ppp => 9,
            LinkType::PppHdlc => 50,
            LinkType::Raw => 101,
            LinkType::Loop => 108,
            LinkType::LinuxSll => 113,
            LinkType::LinuxSll2 => 276,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LinkType::Null => "BSD loopback (NULL)",
            LinkType::Ethernet => "Ethernet",
            LinkType::Ppp => "PPP",
            LinkType::PppHdlc => "PPP in HDLC framing",
            LinkType::Raw => "raw IP",
            LinkType::Loop => "OpenBSD loopback",
            LinkType::LinuxSll => "Linux cooked (SLL)",
            LinkType::LinuxSll2 => "Linux cooked v2 (SLL2)",
            LinkType::Ipv4 => "raw IPv4",
            LinkType::Ipv6 => "raw IPv6",
        }
    }
}

/// Human name for a link type number, including ones wirelag does not decode (for errors).
pub fn linktype_name(code: u32) -> String {
    match LinkType::from_linktype(code) {
        Some(lt) => lt.name().to_string(),
        None => match code {
            105 => "IEEE 802.11".to_string(),
            127 => "IEEE 802.11 radiotap".to_string(),
            147..=162 => "user-defined (DLT_USER)".to_string(),
            _ => format!("link type {code}"),
        },
    }
}

/// The network-layer protocol a link header announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetProto {
    Ipv4,
    Ipv6,
    /// Anything else (ARP, LLDP, IPX, ...), with its EtherType or equivalent.
    Other(u16),
}

/// What the link layer yielded: the network protocol, its bytes, and the VLAN ids crossed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkPayload<'a> {
    pub proto: NetProto,
    pub bytes: &'a [u8],
    /// Outermost VLAN id, if the frame was tagged.
    pub vlan: Option<u16>,
}

/// Why a frame's link layer could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkError {
    Truncated,
}

use etherparse::{EtherType, Ethernet2Slice, SingleVlanSlice};

// EtherTypes etherparse has no constant for (it does not decode these layers).
const ETHERTYPE_MPLS: EtherType = EtherType(0x8847);
const ETHERTYPE_MPLS_MC: EtherType = EtherType(0x8848);
const ETHERTYPE_PPPOE_SESSION: EtherType = EtherType(0x8864);

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
            // Without FCS: captures rarely keep it, and the IP total length bounds the payload.
            let eth = Ethernet2Slice::from_slice_without_fcs(frame)
                .map_err(|_| LinkError::Truncated)?
                .payload();
            by_ethertype(eth.ether_type, eth.payload, None)
        }
        LinkType::LinuxSll => {
            // Shim (see the module comment): 16-byte header; protocol (EtherType) at 14.
            let proto = be16(frame, 14).ok_or(LinkError::Truncated)?;
            let rest = frame.get(16..).ok_or(LinkError::Truncated)?;
            by_ethertype(EtherType(proto), rest, None)
        }
        LinkType::LinuxSll2 => {
            // Shim: 20-byte header; protocol (EtherType) first.
            let proto = be16(frame, 0).ok_or(LinkError::Truncated)?;
            let rest = frame.get(20..).ok_or(LinkError::Truncated)?;
            by_ethertype(EtherType(proto), rest, None)
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
    mut ethertype: EtherType,
    mut rest: &[u8],
    mut vlan: Option<u16>,
) -> Result<LinkPayload<'_>, LinkError> {
    // Bounded: every step consumes at least 4 bytes, so the loop ends with the frame.
    loop {
        match ethertype {
            EtherType::IPV4 => {
                return Ok(LinkPayload {
                    proto: NetProto::Ipv4,
                    bytes: rest,
                    vlan,
                })
            }
            EtherType::IPV6 => {
                return Ok(LinkPayload {
                    proto: NetProto::Ipv6,
                    bytes: rest,
                    vlan,
                })
            }
            // 802.1Q, 802.1ad and the pre-standard QinQ 0x9100, stacked to any depth (etherparse's
            // packet slicers stop after a fixed number of link extensions; one tag at a time
            // does not).
            EtherType::VLAN_TAGGED_FRAME
            | EtherType::PROVIDER_BRIDGING
            | EtherType::VLAN_DOUBLE_TAGGED_FRAME => {
                let tag = SingleVlanSlice::from_slice(rest).map_err(|_| LinkError::Truncated)?;
                vlan.get_or_insert(tag.vlan_identifier().value());
                let inner = tag.payload();
                ethertype = inner.ether_type;
                rest = inner.payload;
            }
            ETHERTYPE_MPLS | ETHERTYPE_MPLS_MC => {
                // Shim: pop labels until bottom-of-stack, then guess IPv4/IPv6 from the version nibble.
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
                // Shim: 6-byte PPPoE header, then PPP protocol.
                let inner = rest.get(6..).ok_or(LinkError::Truncated)?;
                let mut p = ppp_payload(inner)?;
                p.vlan = vlan;
                return Ok(p);
            }
            other => {
                return Ok(LinkPayload {
                    proto: NetProto::Other(other.0),
                    bytes: rest,
                    vlan,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qinq_reaches_ipv4() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[
            0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0xc8, 0x08, 0x00, 0x45,
        ]);
        let p = decode_link(LinkType::Ethernet, &f).unwrap();
        assert_eq!(p.proto, NetProto::Ipv4);
        assert_eq!(p.vlan, Some(100));
        assert_eq!(p.bytes, &[0x45]);
    }

    #[test]
    fn truncated_frames_are_errors_not_panics() {
        for link in [
            LinkType::Ethernet,
            LinkType::LinuxSll,
            LinkType::LinuxSll2,
            LinkType::Null,
            LinkType::Ppp,
        ] {
            for n in 0..22 {
                let f = vec![0x81u8; n];
                let _ = decode_link(link, &f);
            }
        }
    }

    #[test]
    fn null_family_in_either_byte_order() {
        let le = [2u8, 0, 0, 0, 0x45];
        let be = [0u8, 0, 0, 2, 0x45];
        assert_eq!(
            decode_link(LinkType::Null, &le).unwrap().proto,
            NetProto::Ipv4
        );
        assert_eq!(
            decode_link(LinkType::Null, &be).unwrap().proto,
            NetProto::Ipv4
        );
    }
}
