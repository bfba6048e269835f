//! The filterable fields: names, types, and the interface through which a frame hands its field
//! values to the evaluator.
//!
//! Adding a field means: a variant in the `fields!` table below (name, type, integer width), and
//! the [`FieldSource`] implementation filling it. Nothing else in the filter module changes.

use std::net::{Ipv4Addr, Ipv6Addr};

/// How a field's values are typed, which decides how literals written against it are parsed and
/// which operators apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// A protocol layer (`tcp`, `ip`, `frame`...): only its presence can be tested.
    Protocol,
    /// A flag bit (`tcp.flags.syn`). Present-but-false still counts as present, as in Wireshark.
    Bool,
    /// An unsigned integer; the table gives its width so out-of-range literals are rejected.
    UInt,
    /// A time offset in seconds (Wireshark's `FT_RELATIVE_TIME`), compared at nanosecond resolution.
    Float,
    Ipv4,
    Ipv6,
    String,
    Bytes,
    /// A label carrying no value (Wireshark's `FT_NONE`, e.g. `tcp.analysis.retransmission`):
    /// only its presence can be tested.
    None,
}

impl FieldType {
    /// The name used in error messages.
    pub fn describe(self) -> &'static str {
        match self {
            FieldType::Protocol => "protocol",
            FieldType::Bool => "boolean",
            FieldType::UInt => "unsigned integer",
            FieldType::Float => "time offset",
            FieldType::Ipv4 => "IPv4 address",
            FieldType::Ipv6 => "IPv6 address",
            FieldType::String => "character string",
            FieldType::Bytes => "byte sequence",
            FieldType::None => "label",
        }
    }
}

/// One occurrence of a field in a frame, as handed to the evaluator by a [`FieldSource`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    UInt(u64),
    Bool(bool),
    /// Seconds. Compared after rounding to whole nanoseconds, the resolution Wireshark uses.
    Float(f64),
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    Str(&'a str),
    Bytes(&'a [u8]),
    /// For `Protocol` and `None` fields, which have no value.
    Present,
}

/// The frame being tested.
///
/// Give each field values of the variant matching its [`FieldType`] (`UInt` for `UInt` fields,
/// `Present` for `Protocol` and `None` fields...); an occurrence of another variant counts as
/// present but compares equal to nothing.
pub trait FieldSource {
    /// Calls `out` once per occurrence of `field` in the frame: zero times when the field is
    /// absent, twice for `ip.addr` (source then destination) and `tcp.port`, and so on.
    fn visit(&self, field: Field, out: &mut dyn FnMut(Value<'_>));
}

/// Declares the `Field` enum and its name table in one place so they cannot drift apart.
/// `bits` is the integer width for `UInt` fields (0 for the other types).
macro_rules! fields {
    ($( $(#[doc = $doc:expr])* $(#[cfg($cfg:meta)])? $variant:ident = $name:literal, $ty:ident, $bits:literal; )*) => {
        /// Every filterable field.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Field {
            $( $(#[doc = $doc])* $(#[cfg($cfg)])? $variant, )*
        }

        const FIELD_TABLE: &[(Field, &str, FieldType, u8)] = &[
            $( $(#[cfg($cfg)])? (Field::$variant, $name, FieldType::$ty, $bits), )*
        ];

        const ALL_FIELDS: &[Field] = &[ $( $(#[cfg($cfg)])? Field::$variant, )* ];
    };
}

fields! {
    Frame = "frame", Protocol, 0;
    FrameNumber = "frame.number", UInt, 32;
    /// Seconds since the first frame of the capture.
    FrameTimeRelative = "frame.time_relative", Float, 0;
    /// Seconds since the previous captured frame.
    FrameTimeDelta = "frame.time_delta", Float, 0;
    FrameLen = "frame.len", UInt, 32;
    FrameCapLen = "frame.cap_len", UInt, 32;

    Eth = "eth", Protocol, 0;
    Vlan = "vlan", Protocol, 0;
    VlanId = "vlan.id", UInt, 16;

    Ip = "ip", Protocol, 0;
    IpSrc = "ip.src", Ipv4, 0;
    IpDst = "ip.dst", Ipv4, 0;
    /// Source then destination.
    IpAddr = "ip.addr", Ipv4, 0;
    IpProto = "ip.proto", UInt, 8;
    IpTtl = "ip.ttl", UInt, 8;
    IpLen = "ip.len", UInt, 16;
    IpId = "ip.id", UInt, 16;

    Ipv6 = "ipv6", Protocol, 0;
    Ipv6Src = "ipv6.src", Ipv6, 0;
    Ipv6Dst = "ipv6.dst", Ipv6, 0;
    /// Source then destination.
    Ipv6Addr = "ipv6.addr", Ipv6, 0;
    Ipv6Nxt = "ipv6.nxt", UInt, 8;
    Ipv6Plen = "ipv6.plen", UInt, 16;

    Tcp = "tcp", Protocol, 0;
    TcpSrcport = "tcp.srcport", UInt, 16;
    TcpDstport = "tcp.dstport", UInt, 16;
    /// Source then destination.
    TcpPort = "tcp.port", UInt, 16;
    TcpStream = "tcp.stream", UInt, 32;
    TcpLen = "tcp.len", UInt, 32;
    /// Relative to the stream's initial sequence number, as Wireshark shows it by default.
    TcpSeq = "tcp.seq", UInt, 32;
    TcpAck = "tcp.ack", UInt, 32;
    TcpSeqRaw = "tcp.seq_raw", UInt, 32;
    TcpAckRaw = "tcp.ack_raw", UInt, 32;
    /// Header length in bytes.
    TcpHdrLen = "tcp.hdr_len", UInt, 8;
    TcpWindowSizeValue = "tcp.window_size_value", UInt, 16;
    /// After window scaling.
    TcpWindowSize = "tcp.window_size", UInt, 32;
    /// The 12-bit flags value (Wireshark declares it 16 bits wide, hence the 65535 limit).
    TcpFlags = "tcp.flags", UInt, 16;
    TcpFlagsSyn = "tcp.flags.syn", Bool, 0;
    TcpFlagsAck = "tcp.flags.ack", Bool, 0;
    TcpFlagsFin = "tcp.flags.fin", Bool, 0;
    TcpFlagsReset = "tcp.flags.reset", Bool, 0;
    TcpFlagsPush = "tcp.flags.push", Bool, 0;
    TcpFlagsUrg = "tcp.flags.urg", Bool, 0;
    TcpFlagsEce = "tcp.flags.ece", Bool, 0;
    TcpFlagsCwr = "tcp.flags.cwr", Bool, 0;
    TcpPayload = "tcp.payload", Bytes, 0;
    TcpAnalysisFlags = "tcp.analysis.flags", None, 0;
    TcpAnalysisRetransmission = "tcp.analysis.retransmission", None, 0;
    TcpAnalysisFastRetransmission = "tcp.analysis.fast_retransmission", None, 0;
    TcpAnalysisOutOfOrder = "tcp.analysis.out_of_order", None, 0;
    TcpAnalysisDuplicateAck = "tcp.analysis.duplicate_ack", None, 0;
    TcpAnalysisLostSegment = "tcp.analysis.lost_segment", None, 0;
    TcpAnalysisZeroWindow = "tcp.analysis.zero_window", None, 0;
    TcpAnalysisKeepAlive = "tcp.analysis.keep_alive", None, 0;

    Udp = "udp", Protocol, 0;
    UdpSrcport = "udp.srcport", UInt, 16;
    UdpDstport = "udp.dstport", UInt, 16;
    /// Source then destination.
    UdpPort = "udp.port", UInt, 16;

    Icmp = "icmp", Protocol, 0;
    Icmpv6 = "icmpv6", Protocol, 0;

    /// Frames of a stream decoded as MySQL that carry payload.
    Mysql = "mysql", Protocol, 0;
    /// The command byte of the request that completes in this frame (3 = COM_QUERY).
    MysqlCommand = "mysql.command", UInt, 8;
    /// The SQL text of the COM_QUERY or COM_STMT_PREPARE that completes in this frame.
    MysqlQuery = "mysql.query", String, 0;
    /// The error code of the ERR response in this frame.
    MysqlErrorCode = "mysql.error_code", UInt, 16;

    // Test-only fields (keep them last so row indexes match in every build): a String and a
    // Bytes field whose values the unit tests set freely.
    #[cfg(test)]
    TestString = "wirelag.test.string", String, 0;
    #[cfg(test)]
    TestBytes = "wirelag.test.bytes", Bytes, 0;
}

/// Names accepted in filters that Wireshark itself does not know, mapped to the real field.
/// tshark 4.0 rejects `tcp.flags.rst`, but it is the spelling people guess first.
const ALIASES: &[(&str, Field)] = &[("tcp.flags.rst", Field::TcpFlagsReset)];

impl Field {
    /// Looks up a field by its Wireshark name (case-sensitive, as in Wireshark) or an alias.
    pub fn from_name(name: &str) -> Option<Field> {
        FIELD_TABLE
            .iter()
            .find(|row| row.1 == name)
            .map(|row| row.0)
            .or_else(|| {
                ALIASES
                    .iter()
                    .find(|(alias, _)| *alias == name)
                    .map(|&(_, f)| f)
            })
    }

    pub fn name(self) -> &'static str {
        self.row().1
    }

    pub fn ty(self) -> FieldType {
        self.row().2
    }

    pub fn all() -> &'static [Field] {
        ALL_FIELDS
    }

    /// Largest value a `UInt` field can hold, from its declared width.
    pub fn max_uint(self) -> u64 {
        match self.row().3 {
            0 | 64.. => u64::MAX,
            bits => (1u64 << bits) - 1,
        }
    }

    /// Value labels a `Bool` field accepts besides True/False and numbers, like Wireshark's
    /// true/false strings ("Set"/"Not set" for the TCP flag bits), matched case-insensitively.
    pub(crate) fn bool_labels(self) -> Option<(&'static str, &'static str)> {
        match self {
            Field::TcpFlagsSyn
            | Field::TcpFlagsAck
            | Field::TcpFlagsFin
            | Field::TcpFlagsReset
            | Field::TcpFlagsPush
            | Field::TcpFlagsUrg
            | Field::TcpFlagsEce
            | Field::TcpFlagsCwr => Some(("Set", "Not set")),
            _ => None,
        }
    }

    fn row(self) -> &'static (Field, &'static str, FieldType, u8) {
        // The macro emits the table in variant order, so the discriminant is the row index
        // (a unit test checks it); the fallback only exists to avoid an indexing panic.
        const FALLBACK: (Field, &str, FieldType, u8) =
            (Field::Frame, "frame", FieldType::Protocol, 0);
        FIELD_TABLE.get(self as usize).unwrap_or(&FALLBACK)
    }

    /// The closest known field name, for "did you mean" hints on typos.
    pub(crate) fn suggest(name: &str) -> Option<&'static str> {
        let names = FIELD_TABLE
            .iter()
            .map(|row| row.1)
            .chain(ALIASES.iter().map(|a| a.0));
        let mut best: Option<(usize, &'static str)> = None;
        for candidate in names {
            let distance = edit_distance(name, candidate);
            match best {
                Some((best_distance, _)) if best_distance <= distance => {}
                _ => best = Some((distance, candidate)),
            }
        }
        // Allow roughly one typo per four characters, so short names don't attract
        // unrelated suggestions.
        let limit = (name.chars().count() / 4).clamp(1, 3);
        best.filter(|&(distance, _)| distance <= limit)
            .map(|(_, candidate)| candidate)
    }
}

/// Levenshtein distance, case-insensitive so that `TCP.Port` suggests `tcp.port`.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    // previous[j]: distance between the prefix of `a` seen so far and the first j chars of `b`.
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().map(|c| c.to_ascii_lowercase()).enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for ((cb, diagonal), above) in b.iter().zip(&previous).zip(previous.iter().skip(1)) {
            let left = current.last().copied().unwrap_or(usize::MAX - 1);
            let substitution = diagonal + usize::from(ca != *cb);
            current.push(substitution.min(above + 1).min(left + 1));
        }
        previous = current;
    }
    previous.last().copied().unwrap_or(0)
}
