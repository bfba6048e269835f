//! Unit tests. The expected results encode tshark 4.0 behaviour verified on the corpus (see
//! the notes at the top of mod.rs).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;

/// An owned field value for the fake frame.
#[derive(Clone, Debug)]
enum Owned {
    UInt(u64),
    Bool(bool),
    Float(f64),
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    Str(String),
    Bytes(Vec<u8>),
    Present,
}

/// A frame as a list of (field, value) occurrences, in order.
#[derive(Default)]
struct FakeFrame(Vec<(Field, Owned)>);

impl FakeFrame {
    fn with(mut self, field: Field, value: Owned) -> Self {
        self.0.push((field, value));
        self
    }

    fn protocol(self, field: Field) -> Self {
        self.with(field, Owned::Present)
    }
}

impl FieldSource for FakeFrame {
    fn visit(&self, field: Field, out: &mut dyn FnMut(Value<'_>)) {
        for (f, value) in &self.0 {
            if *f != field {
                continue;
            }
            out(match value {
                Owned::UInt(n) => Value::UInt(*n),
                Owned::Bool(b) => Value::Bool(*b),
                Owned::Float(x) => Value::Float(*x),
                Owned::Ipv4(a) => Value::Ipv4(*a),
                Owned::Ipv6(a) => Value::Ipv6(*a),
                Owned::Str(s) => Value::Str(s),
                Owned::Bytes(b) => Value::Bytes(b),
                Owned::Present => Value::Present,
            });
        }
    }
}

/// A TCP/IPv4 frame with the usual fields filled.
#[allow(clippy::too_many_arguments)]
fn tcp4(
    number: u64,
    src: [u8; 4],
    dst: [u8; 4],
    sport: u64,
    dport: u64,
    flags: u64,
    payload: &[u8],
) -> FakeFrame {
    use Field::*;
    let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
    FakeFrame::default()
        .protocol(Frame)
        .with(FrameNumber, Owned::UInt(number))
        .with(FrameTimeRelative, Owned::Float(number as f64 * 0.25))
        .with(FrameLen, Owned::UInt(54 + payload.len() as u64))
        .protocol(Eth)
        .protocol(Ip)
        .with(IpSrc, Owned::Ipv4(src))
        .with(IpAddr, Owned::Ipv4(src))
        .with(IpDst, Owned::Ipv4(dst))
        .with(IpAddr, Owned::Ipv4(dst))
        .with(IpProto, Owned::UInt(6))
        .with(IpTtl, Owned::UInt(64))
        .protocol(Tcp)
        .with(TcpSrcport, Owned::UInt(sport))
        .with(TcpPort, Owned::UInt(sport))
        .with(TcpDstport, Owned::UInt(dport))
        .with(TcpPort, Owned::UInt(dport))
        .with(TcpStream, Owned::UInt(0))
        .with(TcpLen, Owned::UInt(payload.len() as u64))
        .with(TcpSeq, Owned::UInt(1))
        .with(TcpAck, Owned::UInt(1))
        .with(TcpFlags, Owned::UInt(flags))
        .with(TcpFlagsFin, Owned::Bool(flags & 0x01 != 0))
        .with(TcpFlagsSyn, Owned::Bool(flags & 0x02 != 0))
        .with(TcpFlagsReset, Owned::Bool(flags & 0x04 != 0))
        .with(TcpFlagsPush, Owned::Bool(flags & 0x08 != 0))
        .with(TcpFlagsAck, Owned::Bool(flags & 0x10 != 0))
        .with(TcpWindowSizeValue, Owned::UInt(512))
        .with(TcpPayload, Owned::Bytes(payload.to_vec()))
}

fn syn() -> FakeFrame {
    tcp4(1, [192, 168, 33, 1], [10, 0, 0, 5], 51000, 3306, 0x002, b"")
}

fn query() -> FakeFrame {
    // A MySQL COM_QUERY from the client.
    tcp4(
        4,
        [127, 0, 0, 1],
        [127, 0, 0, 1],
        51000,
        3306,
        0x018,
        b"\x0f\x00\x00\x00\x03SELECT 1 FROM t",
    )
}

fn ipv6_frame() -> FakeFrame {
    use Field::*;
    let (src, dst): (std::net::Ipv6Addr, std::net::Ipv6Addr) =
        ("::1".parse().unwrap(), "fe80::1".parse().unwrap());
    FakeFrame::default()
        .protocol(Frame)
        .with(FrameNumber, Owned::UInt(9))
        .protocol(Ipv6)
        .with(Ipv6Src, Owned::Ipv6(src))
        .with(Ipv6Addr, Owned::Ipv6(src))
        .with(Ipv6Dst, Owned::Ipv6(dst))
        .with(Ipv6Addr, Owned::Ipv6(dst))
        .with(Ipv6Nxt, Owned::UInt(17))
        .protocol(Udp)
        .with(UdpSrcport, Owned::UInt(53))
        .with(UdpPort, Owned::UInt(53))
        .with(UdpDstport, Owned::UInt(40000))
        .with(UdpPort, Owned::UInt(40000))
}

fn matches(filter: &str, frame: &FakeFrame) -> bool {
    match DisplayFilter::parse(filter) {
        Ok(f) => f.matches(frame),
        Err(e) => panic!("{filter:?} should parse:\n{e}"),
    }
}

fn error(filter: &str) -> FilterError {
    match DisplayFilter::parse(filter) {
        Ok(f) => panic!("{filter:?} should be rejected, parsed as {f:?}"),
        Err(e) => e,
    }
}

/// The expressions the end-to-end cross-check runs against tshark.
const MUST_PARSE: &[&str] = &[
    "tcp.flags.syn == 1 && tcp.flags.ack == 0",
    "tcp.flags.syn == 1",
    "tcp.stream eq 0",
    "tcp.stream == 3",
    "tcp.port == 3306",
    "tcp.port in {3306 27017}",
    "tcp.port in {3306, 27017}",
    "tcp.dstport in {3306, 13001, 3307}",
    "tcp.srcport >= 1024 and tcp.srcport <= 5000",
    "ip.addr == 127.0.0.1",
    "ip.src == 192.168.33.1",
    "ip.addr == 10.0.0.0/8",
    "!(tcp.port == 22)",
    "not tcp.port == 3306",
    "tcp.port != 3306",
    "tcp.flags.fin == 1 or tcp.flags.reset == 1",
    "tcp.flags.push == 1 && tcp.len > 0",
    "tcp.len == 0",
    "frame.number <= 100",
    "frame.number > 5 and frame.number < 20",
    "tcp.payload contains \"SELECT\"",
    "tcp.payload contains \"autocommit\"",
    "ipv6.addr == ::1",
    "ipv6",
    "tcp && !ip",
    "tcp.analysis.retransmission",
    "tcp.window_size_value == 0",
    "frame.time_relative <= 0.5",
    "tcp.stream in {0..2}",
    "(tcp.srcport == 3306 || tcp.dstport == 3306) && tcp.len > 100",
    "tcp.flags == 0x012",
    "ip.proto == 6",
    "tcp.seq == 1",
    "tcp.ack == 1",
];

#[test]
fn must_show_expressions_parse() {
    for text in MUST_PARSE {
        let filter = DisplayFilter::parse(text).unwrap_or_else(|e| panic!("{text:?}:\n{e}"));
        assert_eq!(filter.text(), *text);
        assert!(!filter.fields().is_empty(), "{text}");
    }
}

#[test]
fn must_show_expressions_evaluate() {
    let (syn, query) = (syn(), query());
    let expect = |text: &str, on_syn: bool, on_query: bool| {
        assert_eq!(matches(text, &syn), on_syn, "{text} on the SYN");
        assert_eq!(matches(text, &query), on_query, "{text} on the query");
    };
    expect("tcp.flags.syn == 1 && tcp.flags.ack == 0", true, false);
    expect("tcp.port in {3306 27017}", true, true);
    expect("tcp.dstport in {3306, 13001, 3307}", true, true);
    expect("tcp.srcport >= 1024 and tcp.srcport <= 5000", false, false);
    expect("ip.addr == 127.0.0.1", false, true);
    expect("ip.src == 192.168.33.1", true, false);
    expect("ip.addr == 10.0.0.0/8", true, false);
    expect("tcp.flags.push == 1 && tcp.len > 0", false, true);
    expect("tcp.len == 0", true, false);
    expect("tcp.payload contains \"SELECT\"", false, true);
    expect("tcp.flags == 0x012", false, false);
    expect("tcp.flags == 0x002", true, false);
    expect("frame.time_relative <= 0.5", true, false);
    expect(
        "(tcp.srcport == 3306 || tcp.dstport == 3306) && tcp.len > 10",
        false,
        true,
    );
    expect("tcp && !ip", false, false);
}

#[test]
fn field_table_is_consistent() {
    for (index, &field) in Field::all().iter().enumerate() {
        assert_eq!(
            field as usize, index,
            "table row order must follow the enum"
        );
        assert_eq!(Field::from_name(field.name()), Some(field));
    }
    assert_eq!(
        Field::from_name("tcp.flags.rst"),
        Some(Field::TcpFlagsReset)
    );
    assert_eq!(Field::TcpFlagsReset.name(), "tcp.flags.reset");
    assert_eq!(Field::TcpPort.max_uint(), 65535);
    assert_eq!(Field::IpTtl.max_uint(), 255);
    assert_eq!(Field::TcpStream.max_uint(), u64::from(u32::MAX));
    assert_eq!(Field::IpAddr.ty(), FieldType::Ipv4);
    assert_eq!(Field::TcpAnalysisRetransmission.ty(), FieldType::None);
    assert_eq!(
        Field::from_name("TCP.PORT"),
        None,
        "names are case-sensitive, as in Wireshark"
    );
}

#[test]
fn precedence_and_binds_tighter_than_or() {
    let udp = ipv6_frame();
    let syn = syn();
    // a or b and c  ==  a or (b and c)
    assert!(matches("udp or tcp and tcp.port == 1", &udp));
    assert!(!matches("(udp or tcp) and tcp.port == 1", &udp));
    // b and c or a  ==  (b and c) or a
    assert!(matches("tcp.port == 1 and tcp or udp", &udp));
    // not binds tighter than and/or; a comparison tighter than not.
    assert!(matches("not tcp and ipv6", &udp));
    assert!(!matches("not (tcp or ipv6)", &udp));
    assert!(matches("not tcp.port == 22", &syn));
    assert!(matches("!!tcp", &syn));
    assert!(matches("not not not udp", &syn));
    // Mixed chains.
    assert!(matches("tcp.port == 1 or udp and not ip or icmp", &udp));
    assert!(!matches("tcp.port == 1 or udp and not ipv6 or icmp", &udp));
}

#[test]
fn multiple_occurrences() {
    let syn = syn(); // ports 51000 and 3306
    let udp = ipv6_frame();
    assert!(matches("tcp.port == 3306", &syn));
    // != is "present and no occurrence equals" in Wireshark 4.0.
    assert!(!matches("tcp.port != 3306", &syn));
    assert!(matches("tcp.port != 22", &syn));
    assert!(
        !matches("tcp.port != 22", &udp),
        "absent field: every comparison is false"
    );
    assert!(
        matches("!(tcp.port == 22)", &udp),
        "negation of a false test"
    );
    assert!(matches("tcp.port ne 80", &syn));
    // any_ne / all_eq.
    assert!(matches("tcp.port !== 3306", &syn));
    assert!(matches("tcp.port ~= 3306", &syn));
    assert!(matches("tcp.port any_ne 3306", &syn));
    assert!(!matches("tcp.port === 3306", &syn));
    assert!(!matches("tcp.port all_eq 3306", &syn));
    assert!(!matches("tcp.port !== 3306", &udp));
    let loopback = query();
    assert!(matches("ip.addr === 127.0.0.1", &loopback));
    assert!(!matches("ip.addr !== 127.0.0.1", &loopback));
    // Ordering is "any".
    assert!(matches("tcp.port < 4000", &syn));
    assert!(matches("tcp.port > 50000", &syn));
    assert!(!matches("tcp.port > 60000", &syn));
}

#[test]
fn field_to_field() {
    let syn = syn();
    let loopback = query();
    assert!(matches("tcp.srcport > tcp.dstport", &syn));
    assert!(!matches("tcp.srcport == tcp.dstport", &syn));
    assert!(matches("tcp.port == tcp.port", &syn));
    assert!(!matches("tcp.port != tcp.port", &syn));
    assert!(matches("tcp.port !== tcp.port", &syn));
    assert!(matches("ip.src == ip.dst", &loopback));
    assert!(!matches("ip.src != ip.dst", &loopback));
    assert!(matches("ip.src != ip.dst", &syn));
    assert!(
        !matches("tcp.srcport != udp.srcport", &syn),
        "absent right side"
    );
    assert!(
        matches("tcp.srcport > ip.ttl", &syn),
        "integers of different widths compare"
    );
    assert!(matches("ip.src[0] == ip.dst[0]", &loopback));
    let err = error("tcp.srcport == ip.src");
    assert_eq!(err.position, 15);
    assert!(err.message.contains("not of compatible types"), "{err}");
    error("tcp.flags.syn == tcp.srcport");
    error("tcp.port == tcp");
}

#[test]
fn bool_fields() {
    let syn = syn();
    let ack = tcp4(2, [1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 0x010, b"");
    for text in [
        "tcp.flags.syn == 1",
        "tcp.flags.syn == True",
        "tcp.flags.syn == TRUE",
        "tcp.flags.syn == 2",
        "tcp.flags.syn == 0x1",
        "tcp.flags.syn == Set",
        "tcp.flags.syn == \"set\"",
        "tcp.flags.syn > 0",
        "tcp.flags.syn != 0",
        "tcp.flags.syn != False",
        "tcp.flags.syn == tcp.flags.syn",
    ] {
        assert!(matches(text, &syn), "{text}");
        assert!(
            !matches(text, &ack) || text.ends_with("tcp.flags.syn"),
            "{text}"
        );
    }
    for text in [
        "tcp.flags.syn == 0",
        "tcp.flags.syn == False",
        "tcp.flags.syn == FALSE",
        "tcp.flags.syn == \"Not set\"",
        "tcp.flags.syn < 1",
    ] {
        assert!(matches(text, &ack), "{text}");
        assert!(!matches(text, &syn), "{text}");
    }
    // A false flag is still present.
    assert!(matches("tcp.flags.syn", &ack));
    assert!(!matches("tcp.flags.syn", &ipv6_frame()));
    assert!(matches("tcp.flags.rst == 0", &ack), "documented alias");
    for bad in [
        "tcp.flags.syn == true",
        "tcp.flags.syn == \"1\"",
        "tcp.flags.syn == 1.0",
        "tcp.flags.syn == -1",
        "tcp.flags.syn contains 1",
        "tcp.flags.syn & 1",
    ] {
        error(bad);
    }
}

#[test]
fn presence_only_fields() {
    let retrans = syn()
        .with(Field::TcpAnalysisFlags, Owned::Present)
        .with(Field::TcpAnalysisRetransmission, Owned::Present);
    assert!(matches("tcp.analysis.retransmission", &retrans));
    assert!(matches(
        "tcp.analysis.flags && !tcp.analysis.fast_retransmission",
        &retrans
    ));
    assert!(!matches("tcp.analysis.retransmission", &syn()));
    assert!(matches("not tcp.analysis.retransmission", &syn()));
    let err = error("tcp.analysis.retransmission == 1");
    assert_eq!(err.position, 0);
    assert!(err.message.contains("presence"), "{err}");
    let err = error("tcp == 1");
    assert!(err.message.contains("protocol"), "{err}");
    error("frame contains \"x\"");
}

#[test]
fn contains_on_bytes_and_strings() {
    let q = query();
    for text in [
        "tcp.payload contains \"SELECT\"",
        "tcp.payload contains 53:45:4c",
        "tcp.payload contains 53-45-4c",
        "tcp.payload contains 53.45.4c",
        "tcp.payload contains 53454c",
        "tcp.payload contains 0x53",
        "tcp.payload contains 'S'",
        "tcp.payload contains \"\\x53EL\"",
        "tcp.payload contains \"\\123EL\"",
        "tcp.payload contains 3",
        "tcp.payload contains 0f:00",
        "tcp.payload contains \"\"",
        "tcp.payload contains \"\\x0f\\0\"",
        "tcp.payload contains r\"SEL\"",
        "tcp.payload contains 0.0",
    ] {
        assert!(matches(text, &q), "{text}");
    }
    assert!(
        !matches("tcp.payload contains \"select\"", &q),
        "contains is case-sensitive"
    );
    assert!(!matches("tcp.payload contains \"SELECT\"", &syn()));
    // Byte strings: an odd digit run ends with a byte of its own (`534` is 53:04).
    assert!(!matches("tcp.payload contains 534", &q));
    assert!(matches("tcp.payload contains 00003", &q), "00:00:03");
    // Equality and length-first ordering of bytes.
    assert!(matches("tcp.payload[0:4] == 0f:00:00:00", &q));
    assert!(matches("tcp.payload > 0xff", &q), "longer is greater");
    assert!(!matches("tcp.payload < ff:ff", &q));

    // Strings, through the test-only string field.
    let s = FakeFrame::default().with(
        Field::TestString,
        Owned::Str("SELECT name FROM users".into()),
    );
    assert!(matches("wirelag.test.string contains \"FROM\"", &s));
    assert!(
        matches("wirelag.test.string contains FROM", &s),
        "bare words are strings for string fields"
    );
    assert!(
        !matches("wirelag.test.string contains 46:52", &s),
        "not bytes: the literal text \"46:52\""
    );
    assert!(matches(
        "wirelag.test.string == \"SELECT name FROM users\"",
        &s
    ));
    assert!(matches("wirelag.test.string > \"S\"", &s), "lexicographic");
    assert!(
        matches("wirelag.test.string < \"T\"", &s),
        "lexicographic, not length-first"
    );
    assert!(matches("wirelag.test.string[0:6] == \"SELECT\"", &s));
    assert!(
        matches("wirelag.test.string[0:2] == 53:45", &s),
        "a slice is bytes"
    );
    assert!(matches(
        "wirelag.test.string in {\"x\", \"SELECT name FROM users\"}",
        &s
    ));
    error("wirelag.test.string == ip.src");
    error("wirelag.test.string == tcp.payload");
}

#[test]
fn sets_and_ranges() {
    let syn = syn();
    assert!(matches("tcp.port in {3306}", &syn));
    assert!(matches("tcp.port in {22, 3306}", &syn));
    assert!(
        matches("tcp.port in {22 3306}", &syn),
        "whitespace separators (3.x syntax) accepted"
    );
    assert!(matches("tcp.port in{22,\n3306}", &syn));
    assert!(matches("tcp.port in {1..1024, 3000..4000}", &syn));
    assert!(matches("tcp.port in {3306..3306}", &syn), "inclusive");
    assert!(!matches("tcp.port in {3307..50999}", &syn));
    assert!(
        !matches("tcp.port in {4000..3000}", &syn),
        "reversed range is empty"
    );
    assert!(!matches("tcp.port not in {3306}", &syn));
    assert!(matches("tcp.port ! in {22}", &syn));
    assert!(
        matches("tcp.port not in {22}", &ipv6_frame()),
        "not in is the plain negation"
    );
    assert!(matches("tcp.stream in {0..2}", &syn));
    assert!(matches("ip.addr in {10.0.0.0/8, 127.0.0.1}", &syn));
    assert!(matches("ip.addr in {10.0.0.0 .. 10.0.0.9}", &syn));
    assert!(matches("frame.time_relative in {0..0.25}", &syn));
    assert!(matches("ipv6.addr in {fe80::/10}", &ipv6_frame()));
    for (bad, position) in [
        ("tcp.port in {}", 13),
        ("tcp.port in {1,,2}", 15),
        ("tcp.port in {1,}", 15),
        ("tcp.port in 1", 12),
        ("tcp.port in {1", 14),
        ("tcp.port in {1..65536}", 16),
        ("tcp.port in {tcp.srcport}", 13),
        ("tcp.payload[0] in {00}", 0),
        ("tcp.port in {\"a\"}", 13),
    ] {
        assert_eq!(error(bad).position, position, "{bad}: {}", error(bad));
    }
}

#[test]
fn cidr_and_addresses() {
    let syn = syn(); // 192.168.33.1 -> 10.0.0.5
    assert!(matches("ip.addr == 10.0.0.0/8", &syn));
    assert!(
        matches("ip.addr == 10.9.9.9/8", &syn),
        "host bits are ignored"
    );
    assert!(matches("ip.dst == 10.0.0.5/32", &syn));
    assert!(matches("ip.src == 192.168.0.0/16", &syn));
    assert!(!matches("ip.src == 10.0.0.0/8", &syn));
    assert!(matches("ip.addr == 0.0.0.0/0", &syn));
    assert!(matches("ip.dst < 11.0.0.0", &syn));
    assert!(
        !matches("ip.dst < 10.0.0.0/8", &syn),
        "compares the prefix bits only"
    );
    assert!(matches("ip.dst <= 10.0.0.0/8", &syn));
    assert!(matches("ip.src[0] == c0", &syn));
    assert!(matches("ip.src[2:2] == 21:01", &syn));
    for bad in [
        "ip.addr == 10/8",
        "ip.addr == 10.0.0.0/33",
        "ip.addr == 127.1",
        "ip.addr == 256.0.0.1",
        "ip.addr == localhost",
        "ip.addr == \"127.0.0.1\"",
        "ip.addr == 127.0.0.01",
        "ip.addr == 1.2.3.4/",
        "ip.addr == ::1",
        "ip.addr contains 7f",
    ] {
        error(bad);
    }
}

#[test]
fn ipv6() {
    let v6 = ipv6_frame(); // ::1 -> fe80::1
    assert!(matches("ipv6", &v6));
    assert!(matches("ipv6.addr == ::1", &v6));
    assert!(matches("ipv6.src == 0:0:0:0:0:0:0:1", &v6));
    assert!(matches("ipv6.dst == FE80::1", &v6));
    assert!(matches("ipv6.addr == fe80::/10", &v6));
    assert!(!matches("ipv6.src == fe80::/10", &v6));
    assert!(matches("ipv6.addr == ::/0", &v6));
    assert!(!matches("ipv6.addr != ::1", &v6));
    assert!(matches("ipv6.addr !== ::1", &v6));
    assert!(matches("ipv6.dst > ::1", &v6));
    assert!(matches("ipv6.src[15] == 01", &v6));
    assert!(matches("ipv6.nxt == 17 and udp.port == 53", &v6));
    assert!(!matches("ipv6.addr == ::1", &syn()));
    for bad in [
        "ipv6.addr == fe80::/129",
        "ipv6.addr == [::1]",
        "ipv6.addr == \"::1\"",
        "ipv6.addr == 127.0.0.1",
        "ipv6.addr == 1::2::3",
        "ipv6.addr == fe80::1%eth0",
        "ipv6.addr == ::1/",
    ] {
        error(bad);
    }
}

#[test]
fn numbers() {
    let syn = syn(); // dport 3306
    for text in [
        "tcp.port == 3306",
        "tcp.port == 0xcea",
        "tcp.port == 0XCEA",
        "tcp.port == 06352",
        "tcp.port == 0b110011101010",
        "tcp.port eq 3306",
        "tcp.port==3306",
        "ip.ttl == '@'",
    ] {
        assert!(matches(text, &syn), "{text}");
    }
    assert!(
        !matches("tcp.port == 03306", &syn),
        "a leading zero means octal"
    );
    assert!(matches("frame.number > 0 and frame.number < 2", &syn));
    assert!(matches("tcp.flags & 0x02", &syn));
    assert!(matches("tcp.flags bitwise_and 0x12 == 0x02", &syn));
    assert!(!matches("tcp.flags & 0x10", &syn));
    assert!(matches("tcp.stream == 4294967295 or tcp.stream == 0", &syn));
    let cases = [
        ("tcp.port == 65536", "too big for tcp.port, maximum 65535"),
        ("tcp.port == 99999999999999999999", "integer overflow"),
        ("tcp.port == -1", "negative"),
        ("tcp.port == 08", "not a valid number"),
        ("tcp.port == 3306.0", "not a valid number"),
        ("tcp.port == abc", "not a valid number"),
        ("tcp.port == \"abc\"", "cannot be compared with the string"),
        ("tcp.port == True", "not a valid number"),
        ("ip.ttl & 0x100", "too big"),
        (
            "tcp.port == tcp.dstprt",
            "did you mean the field \"tcp.dstport\"",
        ),
    ];
    for (bad, needle) in cases {
        let err = error(bad);
        assert!(err.message.contains(needle), "{bad}: {err}");
    }
}

#[test]
fn times() {
    let frame = syn(); // time_relative 0.25
    assert!(matches("frame.time_relative <= 0.25", &frame));
    assert!(matches("frame.time_relative == 0.250000000", &frame));
    assert!(!matches("frame.time_relative < 0.25", &frame));
    assert!(matches("frame.time_relative > 0.249999999", &frame));
    assert!(matches("frame.time_relative > -1", &frame));
    assert!(matches("frame.time_relative <= 1", &frame));
    // Float rounding in the source must not break exact boundaries.
    let inexact = FakeFrame::default().with(Field::FrameTimeRelative, Owned::Float(0.1 + 0.2));
    assert!(matches("frame.time_relative == 0.3", &inexact));
    for bad in [
        "frame.time_relative <= .5",
        "frame.time_relative <= 5e-1",
        "frame.time_relative <= 1.",
        "frame.time_relative <= 0x1",
        "frame.time_relative <= \"1\"",
        "frame.time_relative > 0.0000000001",
        "frame.time_relative contains 1",
    ] {
        error(bad);
    }
}

#[test]
fn slices() {
    let q = query(); // payload 0f 00 00 00 03 "SELECT 1 FROM t"
    assert!(matches("tcp.payload[4] == 03", &q));
    assert!(matches("tcp.payload[4] == 3", &q));
    assert!(matches("tcp.payload[4] == \"\\x03\"", &q));
    assert!(matches("tcp.payload[5:6] == \"SELECT\"", &q));
    assert!(matches("tcp.payload[5-10] == \"SELECT\"", &q));
    assert!(matches("tcp.payload[:1] == 0f", &q));
    assert!(matches("tcp.payload[5:] contains \"FROM\"", &q));
    assert!(matches("tcp.payload[-1] == \"t\"", &q));
    assert!(matches("tcp.payload[-2:2] == \" t\"", &q));
    // Out of range: the occurrence is dropped, not truncated.
    assert!(!matches("tcp.payload[1000]", &q));
    assert!(!matches("tcp.payload[0:1000] contains \"SELECT\"", &q));
    assert!(
        matches("tcp.payload[1000] != 00", &q),
        "present and no occurrence equals"
    );
    assert!(!matches("tcp.payload[1000] === 00", &q));
    assert!(matches("tcp.payload[1000] !== 00", &q));
    assert!(matches("tcp.payload[0]", &q));
    assert!(!matches("tcp.payload[0]", &syn()), "empty payload");
    for (bad, position) in [
        ("tcp.payload[0:0]", 12),
        ("tcp.port[0] == 0c", 0),
        ("tcp.payload[1,2]", 12),
        ("tcp.payload[x]", 12),
        ("tcp.payload[0", 11),
        ("tcp.payload[3-1]", 12),
        ("tcp[0:4] == 00", 0),
    ] {
        assert_eq!(error(bad).position, position, "{bad}: {}", error(bad));
    }
}

#[test]
fn regular_expressions() {
    let q = query();
    for text in [
        "tcp.payload matches \"select\"",
        "tcp.payload ~ \"SEL.CT\"",
        "tcp.payload matches \"^\\\\x0f\"",
        "tcp.payload matches \"\\\\bFROM\\\\s+\\\\w+$\"",
        "tcp.payload matches \"(insert|select) [0-9]+\"",
        "tcp.payload matches \"[[:upper:]]{6}\"",
        "tcp.payload matches \"(?-i)SELECT\"",
        "tcp.payload matches \"t\\\\z\"",
        "tcp.payload matches \"1 (?i:from)\"",
        "tcp.payload matches \"x*\"",
    ] {
        assert!(matches(text, &q), "{text}");
    }
    for text in [
        "tcp.payload matches \"(?-i)select\"",
        "tcp.payload matches \"^SELECT\"",
        "tcp.payload matches \"SELECT$\"",
        "tcp.payload matches \"\\\\bELECT\"",
        "tcp.payload matches \"a{2}\"",
    ] {
        assert!(!matches(text, &q), "{text}");
    }
    let multi = FakeFrame::default().with(Field::TestString, Owned::Str("one\ntwo\n".into()));
    assert!(
        !matches("wirelag.test.string matches \"one$\"", &multi),
        "$ is not a line end by default"
    );
    assert!(matches("wirelag.test.string matches \"(?m)one$\"", &multi));
    assert!(
        matches("wirelag.test.string matches \"two$\"", &multi),
        "$ before a final newline"
    );
    assert!(
        !matches("wirelag.test.string matches \"one.two\"", &multi),
        ". excludes newline"
    );
    assert!(matches(
        "wirelag.test.string matches \"(?s)one.two\"",
        &multi
    ));
    assert!(matches("wirelag.test.string matches \"(?m)^two\"", &multi));
    for bad in [
        "tcp.payload matches \"[\"",
        "tcp.payload matches \"(a\"",
        "tcp.payload matches \"a)\"",
        "tcp.payload matches \"(a)\\\\1\"",
        "tcp.payload matches \"(?=a)\"",
        "tcp.payload matches \"a++\"",
        "tcp.payload matches \"*a\"",
        "tcp.payload matches \"a{3,1}\"",
        "tcp.payload matches \"(?x)a\"",
        "tcp.payload matches 53",
        "tcp.port matches \"1\"",
        "tcp.payload matches \"(a{1000}){1000}\"",
    ] {
        error(bad);
    }
}

#[test]
fn a_pathological_regex_stays_linear() {
    let hay = vec![b'a'; 20_000];
    let frame = FakeFrame::default().with(Field::TcpPayload, Owned::Bytes(hay));
    let start = std::time::Instant::now();
    assert!(!matches("tcp.payload matches \"(a*)*b\"", &frame));
    assert!(!matches("tcp.payload matches \"(a|aa)+b$\"", &frame));
    assert!(!matches("tcp.payload matches \"(a|aa)+\\\\zb\"", &frame));
    assert!(matches("tcp.payload matches \"^(a|aa)+$\"", &frame));
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn error_positions_and_messages() {
    let cases: &[(&str, usize, &str)] = &[
        ("", 0, "empty"),
        ("   ", 0, "empty"),
        (
            "tcp.sream == 1",
            0,
            "\"tcp.sream\" is not a valid field name (did you mean \"tcp.stream\"?)",
        ),
        ("TCP", 0, "did you mean \"tcp\""),
        (
            "tcp.port == \"abc\"",
            12,
            "cannot be compared with the string",
        ),
        ("tcp.port == 3306 and", 20, "unexpected end of the filter"),
        ("tcp.port ==", 11, "expected a value"),
        ("(tcp.port == 3306", 0, "never closed"),
        ("tcp.port == 3306)", 16, "without a matching"),
        ("tcp.port = 3306", 9, "use \"==\""),
        ("tcp.port == 3306 AND tcp", 17, "unexpected \"AND\""),
        ("NOT tcp", 0, "operators are lowercase"),
        ("tcp tcp", 4, "unexpected \"tcp\""),
        ("tcp.payload contains \"SELECT", 21, "unterminated string"),
        (
            "tcp.payload contains \"S\\ELECT\"",
            23,
            "\\E is not a valid character escape sequence",
        ),
        ("tcp.payload contains \"\\777\"", 22, "larger than 255"),
        ("ip.addr == 1.2.3.999", 11, "not a valid IPv4 address"),
        ("ip.addr == 10.0.0.0/33", 11, "0 to 32"),
        ("tcp xor udp", 4, "no \"xor\""),
        ("tcp ^^ udp", 4, "no \"xor\""),
        ("len(tcp.payload) > 1", 0, "functions"),
        ("tcp.srcport + 1 == 2", 12, "arithmetic"),
        ("tcp.port == ${tcp.port}", 12, "field references"),
        ("ip.addr#1 == 1.1.1.1", 7, "layer"),
        ("3306 == tcp.port", 0, "must start with a field name"),
        ("tcp.payload contains SELECT", 21, "not a valid byte string"),
        ("tcp.payload contains 'ab'", 21, "too long"),
        ("tcp &&& udp", 6, "unexpected"),
        ("tcp | udp", 4, "\"||\""),
        ("tcp.port == 1 ]", 14, "\"]\""),
        ("tcp.port == 1 £", 14, "unexpected character"),
        // Positions are in characters, not bytes.
        ("tcp.payload contains \"é\" or tcp.sream", 28, "tcp.stream"),
        // A refused regular expression: the character of the pattern, through the string's
        // own escapes (in characters, raw strings too).
        (
            "tcp.payload matches \"(a)\\\\1\"",
            24,
            "backreferences are not supported",
        ),
        ("tcp.payload matches \"\\x41(?=a)\"", 25, "lookahead"),
        ("tcp.payload matches \"\\x41\\x42a++\"", 31, "possessive"),
        ("tcp.payload matches r\"a++\"", 24, "possessive"),
        ("tcp.payload matches \"é(?<=a)\"", 22, "lookbehind"),
        ("tcp.payload ~ \"[z-a]\"", 16, "out of order"),
        ("tcp.payload matches \"\\\\p{L}\"", 21, "Unicode"),
        ("tcp.payload matches \"a$\\\\n\"", 22, "\"$\""),
        ("tcp.payload matches \"(?m)^$\"", 25, "multiline"),
        (
            "tcp.payload matches \"(\"",
            21,
            "missing closing parenthesis",
        ),
        ("tcp.payload matches \"(a{1000}){1000}\"", 21, "too large"),
    ];
    for &(text, position, needle) in cases {
        let err = error(text);
        assert_eq!(err.position, position, "{text:?}: {err}");
        assert!(err.message.contains(needle), "{text:?}: {err}");
        assert_eq!(err.text, text);
    }
}

#[test]
fn error_display_has_caret_under_the_position() {
    let err = error("tcp.port == 3306 and tcp.sream == 1");
    let expected = [
        "display filter error at column 22: \"tcp.sream\" is not a valid field name (did you mean \"tcp.stream\"?)",
        "  tcp.port == 3306 and tcp.sream == 1",
        "                       ^",
    ];
    assert_eq!(err.to_string(), expected.join("\n"));
}

#[test]
fn fields_lists_every_mentioned_field_once() {
    let filter = DisplayFilter::parse(
        "(tcp.srcport == 3306 || tcp.dstport == 3306) && tcp.len > 100 and not ip.addr in {10.0.0.0/8} \
         or tcp.srcport == udp.srcport or tcp.payload[0:2] == 00:01 or tcp.analysis.flags",
    )
    .unwrap();
    use Field::*;
    assert_eq!(
        filter.fields(),
        vec![
            TcpSrcport,
            TcpDstport,
            TcpLen,
            IpAddr,
            UdpSrcport,
            TcpPayload,
            TcpAnalysisFlags
        ]
    );
    assert!(filter.uses(TcpLen));
    assert!(!filter.uses(Tcp));
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let deep = format!("{}tcp{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(error(&deep).message.contains("nested too deeply"));
    let nots = format!("{}tcp", "!".repeat(10_000));
    assert!(error(&nots).message.contains("nested too deeply"));
    let limit = parser::MAX_DEPTH - 1;
    let fine = format!("{}tcp{}", "(".repeat(limit), ")".repeat(limit));
    assert!(matches(&fine, &syn()));
    let fine = format!("{}tcp", "!".repeat(limit));
    assert!(!matches(&fine, &syn()), "an odd number of negations");
    let over = format!("{}tcp{}", "(".repeat(limit + 1), ")".repeat(limit + 1));
    assert_eq!(error(&over).position, parser::MAX_DEPTH);
    // Long flat chains are not nesting.
    let chain = vec!["tcp.port == 1"; 5_000].join(" or ");
    assert!(!matches(&chain, &syn()));
    let regex_groups = format!(
        "tcp.payload matches \"{}a{}\"",
        "(".repeat(1000),
        ")".repeat(1000)
    );
    error(&regex_groups);
}

/// The fuzz test's deterministic random source.
use wirelag_dissectors::testutil::XorShift as Rng;

trait Pick {
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str;
}

impl Pick for Rng {
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

#[test]
fn fuzz_parse_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let frames = [syn(), query(), ipv6_frame(), FakeFrame::default()];
    // Random bytes over an alphabet rich in filter syntax.
    let alphabet = "tcp.ipv6addr01239afx:/-_ ()[]{},.=!<>&|^~\"'\\\\r$#@+*%én\t";
    let chars: Vec<char> = alphabet.chars().collect();
    for _ in 0..20_000 {
        let len = (rng.next() % 40) as usize;
        let text: String = (0..len)
            .map(|_| chars[(rng.next() % chars.len() as u64) as usize])
            .collect();
        if let Ok(filter) = DisplayFilter::parse(&text) {
            for frame in &frames {
                filter.matches(frame);
            }
        }
    }
    // Random sequences of plausible tokens, which get much further into the parser.
    let tokens = [
        "tcp",
        "ip.addr",
        "tcp.port",
        "tcp.payload",
        "tcp.flags.syn",
        "frame.time_relative",
        "ipv6.addr",
        "wirelag.test.string",
        "tcp.analysis.flags",
        "==",
        "!=",
        "===",
        "!==",
        "~=",
        ">",
        "<=",
        "contains",
        "matches",
        "~",
        "in",
        "not",
        "!",
        "and",
        "&&",
        "or",
        "||",
        "(",
        ")",
        "{",
        "}",
        ",",
        "..",
        "[0:2]",
        "[-1]",
        "[",
        "]",
        "&",
        "3306",
        "0x12",
        "010",
        "-1",
        "1.5",
        "10.0.0.0/8",
        "::1",
        "fe80::/10",
        "0a:0b",
        "\"SEL\"",
        "\"(a|b)*c\"",
        "\"[\"",
        "'S'",
        "True",
        "Set",
        "1..2",
        "\"\\x41\"",
        "r\"\\d\"",
        "",
        " ",
    ];
    for _ in 0..50_000 {
        let count = 1 + (rng.next() % 12) as usize;
        let text: Vec<&str> = (0..count).map(|_| rng.pick(&tokens)).collect();
        let text = text.join(" ");
        if let Ok(filter) = DisplayFilter::parse(&text) {
            for frame in &frames {
                filter.matches(frame);
            }
        }
    }
}
