//! Field values of a decoded frame, for the display filter (`-Y`). Protocol dissectors add their
//! fields here as they arrive (mysql.*, mongo.*): a `Field` variant, and a match arm below.

use std::net::IpAddr;

use wirelag_dissectors::ip::{PROTO_ICMP, PROTO_ICMPV6};
use wirelag_dissectors::link::LinkType;
use wirelag_dissectors::tcp::stream::Analysis;
use wirelag_dissectors::tcp::TcpFlags;

use crate::analysis::MysqlFrameIndex;
use crate::filter::{Field, FieldSource, Value};
use crate::pipeline::FrameRecord;

/// Adapts a [`FrameRecord`] to the filter's [`FieldSource`].
pub struct FrameFields<'r, 'a> {
    rec: &'r FrameRecord<'a>,
    mysql: Option<&'r MysqlFrameIndex>,
}

impl<'r, 'a> FrameFields<'r, 'a> {
    pub fn new(rec: &'r FrameRecord<'a>) -> Self {
        FrameFields { rec, mysql: None }
    }

    /// With the MySQL facts a first pass collected (for `mysql.*` fields).
    pub fn with_mysql(rec: &'r FrameRecord<'a>, mysql: Option<&'r MysqlFrameIndex>) -> Self {
        FrameFields { rec, mysql }
    }
}

fn ns_to_secs(ns: i64) -> f64 {
    ns as f64 / 1e9
}

impl FieldSource for FrameFields<'_, '_> {
    fn visit(&self, field: Field, out: &mut dyn FnMut(Value<'_>)) {
        let rec = self.rec;
        let d = &rec.decoded;
        let ip = d.ip.as_ref();
        let v4 = ip.and_then(|h| match (h.src, h.dst) {
            (IpAddr::V4(s), IpAddr::V4(t)) => Some((s, t)),
            _ => None,
        });
        let v6 = ip.and_then(|h| match (h.src, h.dst) {
            (IpAddr::V6(s), IpAddr::V6(t)) => Some((s, t)),
            _ => None,
        });
        let tcp = d.tcp.as_ref();
        let tracked = rec.tracked.as_ref();
        let flag = |bit: u16, out: &mut dyn FnMut(Value<'_>)| {
            if let Some(s) = tcp {
                out(Value::Bool(s.flags.has(bit)));
            }
        };
        let analysis = |bit: u16, out: &mut dyn FnMut(Value<'_>)| {
            if tracked.is_some_and(|t| t.analysis.has(bit)) {
                out(Value::Present);
            }
        };
        match field {
            Field::Frame => out(Value::Present),
            Field::FrameNumber => out(Value::UInt(rec.number)),
            Field::FrameTimeRelative => out(Value::Float(ns_to_secs(rec.time_rel.as_nanos()))),
            Field::FrameTimeDelta => out(Value::Float(ns_to_secs(rec.time_delta.as_nanos()))),
            Field::FrameLen => out(Value::UInt(u64::from(rec.orig_len))),
            Field::FrameCapLen => out(Value::UInt(u64::from(rec.cap_len))),
            Field::Eth if rec.link == LinkType::Ethernet => out(Value::Present),
            Field::Vlan if d.vlan.is_some() => out(Value::Present),
            Field::VlanId => {
                if let Some(id) = d.vlan {
                    out(Value::UInt(u64::from(id)))
                }
            }
            Field::Ip if v4.is_some() => out(Value::Present),
            Field::IpSrc => {
                if let Some((s, _)) = v4 {
                    out(Value::Ipv4(s))
                }
            }
            Field::IpDst => {
                if let Some((_, t)) = v4 {
                    out(Value::Ipv4(t))
                }
            }
            Field::IpAddr => {
                if let Some((s, t)) = v4 {
                    out(Value::Ipv4(s));
                    out(Value::Ipv4(t));
                }
            }
            Field::IpProto => {
                if let (Some(h), Some(_)) = (ip, v4) {
                    out(Value::UInt(u64::from(h.proto)))
                }
            }
            Field::IpTtl => {
                if let (Some(h), Some(_)) = (ip, v4) {
                    out(Value::UInt(u64::from(h.ttl)))
                }
            }
            Field::IpLen => {
                if let (Some(h), Some(_)) = (ip, v4) {
                    out(Value::UInt(u64::from(h.total_len)))
                }
            }
            Field::IpId => {
                if let (Some(h), Some(_)) = (ip, v4) {
                    out(Value::UInt(u64::from(h.id)))
                }
            }
            Field::Ipv6 if v6.is_some() => out(Value::Present),
            Field::Ipv6Src => {
                if let Some((s, _)) = v6 {
                    out(Value::Ipv6(s))
                }
            }
            Field::Ipv6Dst => {
                if let Some((_, t)) = v6 {
                    out(Value::Ipv6(t))
                }
            }
            Field::Ipv6Addr => {
                if let Some((s, t)) = v6 {
                    out(Value::Ipv6(s));
                    out(Value::Ipv6(t));
                }
            }
            Field::Ipv6Nxt => {
                if let (Some(h), Some(_)) = (ip, v6) {
                    out(Value::UInt(u64::from(h.proto)))
                }
            }
            Field::Ipv6Plen => {
                if let (Some(h), Some(_)) = (ip, v6) {
                    out(Value::UInt(u64::from(h.total_len.saturating_sub(40))))
                }
            }
            Field::Tcp if tcp.is_some() => out(Value::Present),
            Field::TcpSrcport => {
                if let Some(s) = tcp {
                    out(Value::UInt(u64::from(s.src_port)))
                }
            }
            Field::TcpDstport => {
                if let Some(s) = tcp {
                    out(Value::UInt(u64::from(s.dst_port)))
                }
            }
            Field::TcpPort => {
                if let Some(s) = tcp {
                    out(Value::UInt(u64::from(s.src_port)));
                    out(Value::UInt(u64::from(s.dst_port)));
                }
            }
            Field::TcpStream => {
                if let Some(t) = tracked {
                    out(Value::UInt(u64::from(t.stream)))
                }
            }
            Field::TcpLen => {
                if let Some(s) = tcp {
                    out(Value::UInt(u64::from(s.payload_len)))
                }
            }
            Field::TcpSeq => {
                if let Some(t) = tracked {
                    out(Value::UInt(u64::from(t.rel_seq)))
                }
            }
            Field::TcpAck => {
                if let (Some(t), Some(s)) = (tracked, tcp) {
                    if s.flags.ack() {
                        out(Value::UInt(u64::from(t.rel_ack)))
                    }
                }
            }
            Field::TcpSeqRaw => {
                if let Some(s) = tcp {
                    out(Value::UInt(u64::from(s.seq.0)))
                }
            }
            Field::TcpAckRaw => {
                if let Some(s) = tcp {
                    if s.flags.ack() {
                        out(Value::UInt(u64::from(s.ack.0)))
                    }
                }
            }
            Field::TcpHdrLen => {
                if let Some(s) = tcp {
                    out(Value::UInt(u64::from(s.header_len)))
                }
            }
            Field::TcpWindowSizeValue => {
                if let Some(s) = tcp {
                    out(Value::UInt(u64::from(s.window)))
                }
            }
            Field::TcpWindowSize => {
                if let Some(t) = tracked {
                    out(Value::UInt(t.window_size))
                }
            }
            Field::TcpFlags => {
                if let Some(s) = tcp {
                    out(Value::UInt(u64::from(s.flags.0)))
                }
            }
            Field::TcpFlagsSyn => flag(TcpFlags::SYN, out),
            Field::TcpFlagsAck => flag(TcpFlags::ACK, out),
            Field::TcpFlagsFin => flag(TcpFlags::FIN, out),
            Field::TcpFlagsReset => flag(TcpFlags::RST, out),
            Field::TcpFlagsPush => flag(TcpFlags::PSH, out),
            Field::TcpFlagsUrg => flag(TcpFlags::URG, out),
            Field::TcpFlagsEce => flag(TcpFlags::ECE, out),
            Field::TcpFlagsCwr => flag(TcpFlags::CWR, out),
            Field::TcpPayload => {
                if let Some(s) = tcp {
                    if s.payload_len > 0 && !s.payload.is_empty() {
                        out(Value::Bytes(s.payload))
                    }
                }
            }
            Field::TcpAnalysisFlags
                if tracked.is_some_and(|t| {
                    t.analysis.0 & !(Analysis::WINDOW_UPDATE | Analysis::PORTS_REUSED) != 0
                }) =>
            {
                out(Value::Present)
            }
            Field::TcpAnalysisRetransmission
                if tracked.is_some_and(|t| t.analysis.is_retransmission()) =>
            {
                out(Value::Present)
            }
            Field::TcpAnalysisFastRetransmission => analysis(Analysis::FAST_RETRANSMISSION, out),
            Field::TcpAnalysisOutOfOrder => analysis(Analysis::OUT_OF_ORDER, out),
            Field::TcpAnalysisDuplicateAck => analysis(Analysis::DUPLICATE_ACK, out),
            Field::TcpAnalysisLostSegment => analysis(Analysis::LOST_SEGMENT, out),
            Field::TcpAnalysisZeroWindow => analysis(Analysis::ZERO_WINDOW, out),
            Field::TcpAnalysisKeepAlive => analysis(Analysis::KEEP_ALIVE, out),
            Field::Udp if d.udp.is_some() => out(Value::Present),
            Field::UdpSrcport => {
                if let Some(u) = d.udp {
                    out(Value::UInt(u64::from(u.src)))
                }
            }
            Field::UdpDstport => {
                if let Some(u) = d.udp {
                    out(Value::UInt(u64::from(u.dst)))
                }
            }
            Field::UdpPort => {
                if let Some(u) = d.udp {
                    out(Value::UInt(u64::from(u.src)));
                    out(Value::UInt(u64::from(u.dst)));
                }
            }
            Field::Icmp if ip.is_some_and(|h| h.proto == PROTO_ICMP && !h.fragment) => {
                out(Value::Present)
            }
            Field::Icmpv6 if ip.is_some_and(|h| h.proto == PROTO_ICMPV6 && !h.fragment) => {
                out(Value::Present)
            }
            Field::Mysql => {
                let in_mysql_stream = tracked
                    .is_some_and(|t| self.mysql.is_some_and(|m| m.is_mysql_stream(t.stream)));
                if in_mysql_stream && tcp.is_some_and(|s| s.payload_len > 0) {
                    out(Value::Present)
                }
            }
            Field::MysqlCommand | Field::MysqlQuery | Field::MysqlErrorCode => {
                let Some(facts) = self.mysql.and_then(|m| m.frames.get(&rec.number)) else {
                    return;
                };
                match field {
                    Field::MysqlCommand => {
                        if let Some(c) = facts.command {
                            out(Value::UInt(u64::from(c)))
                        }
                    }
                    Field::MysqlQuery => {
                        if let Some(q) = facts.query.as_deref() {
                            out(Value::Str(q))
                        }
                    }
                    _ => {
                        if let Some(e) = facts.error_code {
                            out(Value::UInt(u64::from(e)))
                        }
                    }
                }
            }
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }
}
