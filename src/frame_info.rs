//! The packet list's columns (protocol, source, destination, info), in tshark's style so that a
//! line can be matched against Wireshark by eye.

use std::fmt::Write as _;

use wirelag_dissectors::ip::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use wirelag_dissectors::link::NetProto;
use wirelag_dissectors::packet::DecodeNote;

use crate::pipeline::FrameRecord;

/// Protocol column: the highest layer wirelag decoded.
pub fn protocol(rec: &FrameRecord<'_>) -> &'static str {
    let d = &rec.decoded;
    if d.tcp.is_some() {
        return "TCP";
    }
    if d.udp.is_some() {
        return "UDP";
    }
    match (d.ip.as_ref(), d.net) {
        (Some(ip), _) => match ip.proto {
            PROTO_ICMP => "ICMP",
            PROTO_ICMPV6 => "ICMPv6",
            PROTO_TCP => "TCP",
            PROTO_UDP => "UDP",
            _ if ip.src.is_ipv4() => "IPv4",
            _ => "IPv6",
        },
        (None, Some(NetProto::Other(0x0806))) => "ARP",
        (None, Some(NetProto::Ipv4)) => "IPv4",
        (None, Some(NetProto::Ipv6)) => "IPv6",
        _ => "ETH",
    }
}

/// Source and destination columns: IP addresses when there is an IP layer.
pub fn addresses(rec: &FrameRecord<'_>) -> (String, String) {
    match rec.decoded.ip.as_ref() {
        Some(ip) => (ip.src.to_string(), ip.dst.to_string()),
        None => (String::new(), String::new()),
    }
}

/// Info column.
pub fn info(rec: &FrameRecord<'_>) -> String {
    let d = &rec.decoded;
    let mut s = String::new();
    if let (Some(seg), Some(t)) = (d.tcp.as_ref(), rec.tracked.as_ref()) {
        for label in t.analysis.labels() {
            let _ = write!(s, "[{label}] ");
        }
        if let Some((of, n)) = t.dup_ack {
            let _ = write!(s, "[TCP Dup ACK {of}#{n}] ");
        }
        let _ = write!(
            s,
            "{} → {} [{}] Seq={}",
            seg.src_port,
            seg.dst_port,
            seg.flags.names(),
            t.rel_seq
        );
        if seg.flags.ack() {
            let _ = write!(s, " Ack={}", t.rel_ack);
        }
        let _ = write!(s, " Win={} Len={}", t.window_size, seg.payload_len);
        let o = &seg.options;
        if let Some(mss) = o.mss {
            let _ = write!(s, " MSS={mss}");
        }
        if o.sack_permitted {
            s.push_str(" SACK_PERM");
        }
        if let Some((val, ecr)) = o.timestamp {
            let _ = write!(s, " TSval={val} TSecr={ecr}");
        }
        if let Some(ws) = o.window_scale {
            let _ = write!(s, " WS={}", 1u32 << ws.min(14));
        }
        if rec.cap_len < rec.orig_len {
            s.push_str(" [snaplen cut]");
        }
        return s;
    }
    if let Some(u) = d.udp.as_ref() {
        let _ = write!(s, "{} → {} Len={}", u.src, u.dst, u.len.saturating_sub(8));
        return s;
    }
    match d.note {
        Some(DecodeNote::IpFragment) => {
            if let Some(ip) = d.ip.as_ref() {
                let _ = write!(
                    s,
                    "Fragmented IP protocol (proto={}, id=0x{:04x})",
                    ip.proto, ip.id
                );
            }
        }
        Some(DecodeNote::TcpTruncated) => s.push_str("[Malformed: TCP header truncated]"),
        Some(DecodeNote::TcpBadHeaderLength) => s.push_str("[Malformed: bogus TCP header length]"),
        Some(DecodeNote::IpMalformed) => s.push_str("[Malformed: bad IP header]"),
        Some(DecodeNote::LinkTruncated) => s.push_str("[Malformed: link header truncated]"),
        Some(DecodeNote::NotIp) => match d.net {
            Some(NetProto::Other(t)) => {
                let _ = write!(s, "EtherType 0x{t:04x}");
            }
            _ => s.push_str("not IP"),
        },
        Some(DecodeNote::NotTcp) => {
            if let Some(ip) = d.ip.as_ref() {
                let _ = write!(s, "IP protocol {}", ip.proto);
            }
        }
        None => {}
    }
    s
}
