//! `decode_frame` over generated frames. Frames are built from random layer stacks
//! (VLAN/QinQ/MPLS/PPPoE, IPv4 options, IPv6 extension headers and fragments, TCP options known
//! and unknown), and the generator records what it built in an [`Expected`]. Then:
//! - a whole frame must decode to exactly the fields the generator set;
//! - a frame cut as a snaplen would must decode as far as the cut allows and report where it
//!   stopped with the note the decoder gives for that layer;
//! - a corrupted frame (bytes overwritten, a length field or data offset mangled, junk behind an
//!   IP protocol number) must not panic, and what comes out must be internally sane.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use wirelag_dissectors::ip::IpHeader;
use wirelag_dissectors::link::{LinkType, NetProto};
use wirelag_dissectors::packet::{DecodeNote, Decoded, UdpPorts};
use wirelag_dissectors::tcp::TcpOptions;
use wirelag_dissectors::testutil::XorShift;

/// What reading one built TCP option does to the options reported.
#[derive(Clone, Copy, Debug)]
enum OptEffect {
    Nop,
    /// End of list, or a length below 2: the walk stops.
    End,
    Mss(u16),
    WindowScale(u8),
    SackPermitted,
    SackBlocks(u8),
    Timestamp(u32, u32),
    /// Unknown kind, or a known one of a length it cannot have: skipped by its length.
    Skip,
    /// A random byte: what the walk makes of it and of what follows is not predicted.
    Opaque,
}

/// One built option: where it ends in the options area, and its effect.
#[derive(Clone, Copy, Debug)]
struct BuiltOption {
    end: usize,
    effect: OptEffect,
}

#[derive(Clone, Debug)]
struct ExpectedTcp {
    src_port: u16,
    dst_port: u16,
    seq: u32,
    ack: u32,
    /// The 9 flag bits, AE (the former NS) included.
    flags: u16,
    window: u16,
    /// Data offset in bytes.
    header_len: usize,
    /// In the order built; some may lie past the options area (cut at 40 bytes).
    options: Vec<BuiltOption>,
}

#[derive(Clone, Debug)]
enum ExpectedTransport {
    Tcp(ExpectedTcp),
    /// UDP ports and length as written.
    Udp(UdpPorts),
    /// ICMP, GRE, ESP, no next header, ...: no transport decoded.
    Other,
}

/// How the IPv4 total length field was written.
#[derive(Clone, Copy, Debug)]
enum StatedLen {
    Exact,
    /// Zero, as TCP segmentation offload leaves it: the captured length counts.
    Zero,
    /// Longer than what was built by this much: the rest was never captured.
    Longer(usize),
}

/// An IPv6 extension header as built, offsets from the start of the IP header.
#[derive(Clone, Copy, Debug)]
struct ExtHeader {
    start: usize,
    len: usize,
    fragment_header: bool,
}

#[derive(Clone, Debug)]
struct ExpectedIp {
    version: u8,
    src: IpAddr,
    dst: IpAddr,
    /// Protocol after the extension headers walked.
    proto: u8,
    ttl: u8,
    id: u32,
    /// Fixed header plus IPv4 options (20..60 or 40).
    fixed_len: usize,
    /// IPv6 extension headers walked (up to and including a fragmenting fragment header).
    exts: Vec<ExtHeader>,
    /// Bytes before the transport header (fixed header, options, extension headers walked).
    header_len: usize,
    fragment: bool,
    stated: StatedLen,
    /// Length of the packet as built.
    built_len: usize,
    transport: ExpectedTransport,
}

/// What the generator built into one frame.
#[derive(Clone, Debug)]
struct Expected {
    vlan: Option<u16>,
    /// What the link layer announces.
    net: NetProto,
    /// The network protocol is guessed from the version nibble (raw IP, MPLS).
    guessed: bool,
    /// PPP with HDLC address/control bytes.
    hdlc: bool,
    /// Offset of the network packet in the frame.
    ip_start: usize,
    /// `None` when the network bytes are junk.
    ip: Option<ExpectedIp>,
    /// Bytes overwritten or a field mangled: only sanity is checked.
    corrupt: bool,
}

/// A built network-layer packet and what it holds.
struct Net {
    ethertype: u16,
    bytes: Vec<u8>,
    ip: Option<ExpectedIp>,
}

fn announced(ethertype: u16) -> NetProto {
    match ethertype {
        0x0800 => NetProto::Ipv4,
        0x86dd => NetProto::Ipv6,
        other => NetProto::Other(other),
    }
}

/// Random layer stacks, cut and corrupted: enough structure to reach every header parser's
/// edge cases (options walks, extension header chains, cut headers), enough noise for the rest.
struct FrameGen {
    rng: XorShift,
    /// Set while building a frame when a length field or data offset was mangled.
    mangled: bool,
}

impl FrameGen {
    fn below(&mut self, n: usize) -> usize {
        self.rng.below(n)
    }
    fn one_in(&mut self, n: usize) -> bool {
        self.rng.below(n) == 0
    }
    fn byte(&mut self) -> u8 {
        self.rng.next() as u8
    }
    fn u16(&mut self) -> u16 {
        self.rng.next() as u16
    }
    fn u32(&mut self) -> u32 {
        self.rng.next() as u32
    }
    fn bytes(&mut self, out: &mut Vec<u8>, n: usize) {
        for _ in 0..n {
            let b = self.byte();
            out.push(b);
        }
    }
    fn array<const N: usize>(&mut self) -> [u8; N] {
        std::array::from_fn(|_| self.byte())
    }
    fn pick<T: Copy>(&mut self, of: &[T]) -> T {
        of[self.below(of.len())]
    }

    fn tcp_options(&mut self, out: &mut Vec<u8>, built: &mut Vec<BuiltOption>) {
        for _ in 0..self.below(7) {
            let effect = match self.below(12) {
                0 => {
                    let mss = self.u16();
                    out.extend_from_slice(&[2, 4]);
                    out.extend_from_slice(&mss.to_be_bytes());
                    OptEffect::Mss(mss)
                }
                1 => {
                    let shift = self.byte();
                    out.extend_from_slice(&[3, 3, shift]);
                    OptEffect::WindowScale(shift)
                }
                2 => {
                    out.extend_from_slice(&[4, 2]);
                    OptEffect::SackPermitted
                }
                3 => {
                    let blocks = self.below(5);
                    out.extend_from_slice(&[5, (2 + 8 * blocks) as u8]);
                    self.bytes(out, 8 * blocks);
                    OptEffect::SackBlocks(blocks as u8)
                }
                4 => {
                    let (val, ecr) = (self.u32(), self.u32());
                    out.extend_from_slice(&[8, 10]);
                    out.extend_from_slice(&val.to_be_bytes());
                    out.extend_from_slice(&ecr.to_be_bytes());
                    OptEffect::Timestamp(val, ecr)
                }
                5 => {
                    out.push(1);
                    OptEffect::Nop
                }
                6 => {
                    out.push(0);
                    OptEffect::End
                }
                7 => {
                    // An option etherparse does not know (MPTCP, TFO, MD5, user timeout).
                    let len = 2 + self.below(11);
                    out.extend_from_slice(&[self.pick(&[30, 34, 19, 28, 253]), len as u8]);
                    self.bytes(out, len - 2);
                    OptEffect::Skip
                }
                8 => {
                    // A known option with a length chosen at random: read when it is the one
                    // the option has, skipped by length otherwise (SACK counts whole blocks).
                    let kind = self.pick(&[2, 3, 4, 5, 8]);
                    let len = self.below(14);
                    out.extend_from_slice(&[kind, len as u8]);
                    let at = out.len();
                    self.bytes(out, len.saturating_sub(2));
                    let body = &out[at..];
                    match (kind, len) {
                        (_, 0 | 1) => OptEffect::End,
                        (2, 4) => OptEffect::Mss(u16::from_be_bytes([body[0], body[1]])),
                        (3, 3) => OptEffect::WindowScale(body[0]),
                        (4, 2) => OptEffect::SackPermitted,
                        (5, _) => OptEffect::SackBlocks(((len - 2) / 8) as u8),
                        (8, 10) => OptEffect::Timestamp(
                            u32::from_be_bytes(body[..4].try_into().unwrap()),
                            u32::from_be_bytes(body[4..].try_into().unwrap()),
                        ),
                        _ => OptEffect::Skip,
                    }
                }
                _ => {
                    let b = self.byte();
                    out.push(b);
                    match b {
                        0 => OptEffect::End,
                        1 => OptEffect::Nop,
                        _ => OptEffect::Opaque,
                    }
                }
            };
            built.push(BuiltOption {
                end: out.len(),
                effect,
            });
        }
        // At most 40 bytes of options: an option the cut runs through lies past the area.
        out.truncate(out.len().min(40));
        while out.len() % 4 != 0 {
            let pad = self.pick(&[0, 1]);
            out.push(pad);
            built.push(BuiltOption {
                end: out.len(),
                effect: if pad == 0 {
                    OptEffect::End
                } else {
                    OptEffect::Nop
                },
            });
        }
    }

    fn transport(&mut self, proto: u8) -> (Vec<u8>, ExpectedTransport) {
        let mut t = Vec::new();
        let expected = match proto {
            6 => {
                let (src_port, dst_port) = (self.u16(), self.u16());
                let (seq, ack) = (self.u32(), self.u32());
                let flags = self.u16() & 0x1ff;
                let window = self.u16();
                let mut opts = Vec::new();
                let mut options = Vec::new();
                if !self.one_in(3) {
                    self.tcp_options(&mut opts, &mut options);
                }
                let header_len = 20 + opts.len();
                t.extend_from_slice(&src_port.to_be_bytes());
                t.extend_from_slice(&dst_port.to_be_bytes());
                t.extend_from_slice(&seq.to_be_bytes());
                t.extend_from_slice(&ack.to_be_bytes());
                t.push(((header_len / 4) as u8) << 4 | (flags >> 8) as u8);
                t.push(flags as u8);
                t.extend_from_slice(&window.to_be_bytes());
                self.bytes(&mut t, 4); // checksum (never verified), urgent pointer
                if self.one_in(10) {
                    let mangled = (self.byte() & 0xf0) | (t[12] & 0x0f);
                    self.mangled |= mangled != t[12];
                    t[12] = mangled;
                }
                t.extend_from_slice(&opts);
                ExpectedTransport::Tcp(ExpectedTcp {
                    src_port,
                    dst_port,
                    seq,
                    ack,
                    flags,
                    window,
                    header_len,
                    options,
                })
            }
            17 => {
                let udp = UdpPorts {
                    src: self.u16(),
                    dst: self.u16(),
                    len: self.u16(),
                };
                t.extend_from_slice(&udp.src.to_be_bytes());
                t.extend_from_slice(&udp.dst.to_be_bytes());
                t.extend_from_slice(&udp.len.to_be_bytes());
                self.bytes(&mut t, 2);
                ExpectedTransport::Udp(udp)
            }
            _ => ExpectedTransport::Other,
        };
        let n = self.pick(&[0, 0, 1, 5, 40, 300]);
        self.bytes(&mut t, n);
        (t, expected)
    }

    fn ipv4(&mut self) -> (Vec<u8>, ExpectedIp) {
        let proto = self.pick(&[6, 6, 6, 6, 17, 1, 51, 47]);
        let ihl = if self.one_in(4) { 5 + self.below(4) } else { 5 };
        let id = self.u16();
        let (frag, fragment): (u16, bool) = match self.below(8) {
            0 => (0x2000, true),
            1 => {
                let offset = u16::from(self.byte());
                (offset, offset != 0)
            }
            2 => (0x2000 | u16::from(self.byte()), true),
            _ => (0x4000, false),
        };
        let ttl = self.byte();
        let (src, dst) = (self.array::<4>(), self.array::<4>());
        let mut p = vec![0x40 | ihl as u8, self.byte(), 0, 0];
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&frag.to_be_bytes());
        p.extend_from_slice(&[ttl, proto, 0, 0]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        self.bytes(&mut p, (ihl - 5) * 4);
        let (t, transport) = self.transport(proto);
        let built_len = p.len() + t.len();
        let (total, stated) = match self.below(10) {
            0 => (0, StatedLen::Zero),
            1 => {
                let total = u16::from(self.byte());
                self.mangled |= usize::from(total) != built_len;
                (total, StatedLen::Exact)
            }
            2 => {
                let k = self.below(30);
                ((built_len + k) as u16, StatedLen::Longer(k))
            }
            _ => (built_len as u16, StatedLen::Exact),
        };
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&t);
        let ip = ExpectedIp {
            version: 4,
            src: IpAddr::V4(Ipv4Addr::from(src)),
            dst: IpAddr::V4(Ipv4Addr::from(dst)),
            proto,
            ttl,
            id: u32::from(id),
            fixed_len: ihl * 4,
            exts: Vec::new(),
            header_len: ihl * 4,
            fragment,
            stated,
            built_len,
            transport,
        };
        (p, ip)
    }

    fn ipv6(&mut self) -> (Vec<u8>, ExpectedIp) {
        let proto = self.pick(&[6, 6, 6, 17, 58, 50, 59]);
        let hop_limit = self.byte();
        let (src, dst) = (self.array::<16>(), self.array::<16>());
        // Version, then traffic class and flow label at random.
        let mut p = vec![
            0x60 | (self.byte() & 0x0f),
            self.byte(),
            self.byte(),
            self.byte(),
        ];
        p.extend_from_slice(&[0, 0, 0, hop_limit]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        let mut chain: Vec<u8> = Vec::new();
        for _ in 0..self.pick(&[0, 0, 0, 1, 2, 3]) {
            chain.push(self.pick(&[0, 43, 60, 44, 51, 135, 139, 140]));
        }
        chain.push(proto);
        p[6] = chain[0];
        // The walk stops after a fragment header that fragments; what it saw up to there.
        let (mut exts, mut walked_to, mut id, mut fragment) = (Vec::new(), None, 0, false);
        for w in chain.windows(2) {
            let (kind, next) = (w[0], w[1]);
            let start = p.len();
            match kind {
                44 => {
                    p.extend_from_slice(&[next, 0]);
                    let off_flags: u16 = match self.below(4) {
                        0 => 1,
                        1 => u16::from(self.byte()) << 3,
                        _ => 0,
                    };
                    p.extend_from_slice(&off_flags.to_be_bytes());
                    let ident = self.u32();
                    p.extend_from_slice(&ident.to_be_bytes());
                    if walked_to.is_none() {
                        id = ident;
                        fragment = off_flags != 0;
                    }
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
            if walked_to.is_none() {
                exts.push(ExtHeader {
                    start,
                    len: p.len() - start,
                    fragment_header: kind == 44,
                });
                if fragment {
                    walked_to = Some((p.len(), next));
                }
            }
        }
        let (header_len, walked_proto) = walked_to.unwrap_or((p.len(), proto));
        let (t, transport) = self.transport(proto);
        let built_len = p.len() + t.len();
        let mut payload = (built_len - 40) as u16;
        if self.one_in(8) {
            let stated = u16::from(self.byte());
            self.mangled |= stated != payload;
            payload = stated;
        }
        p[4..6].copy_from_slice(&payload.to_be_bytes());
        p.extend_from_slice(&t);
        let ip = ExpectedIp {
            version: 6,
            src: IpAddr::V6(Ipv6Addr::from(src)),
            dst: IpAddr::V6(Ipv6Addr::from(dst)),
            proto: walked_proto,
            ttl: hop_limit,
            id,
            fixed_len: 40,
            exts,
            header_len,
            fragment,
            stated: StatedLen::Exact,
            built_len,
            transport: if fragment {
                ExpectedTransport::Other
            } else {
                transport
            },
        };
        (p, ip)
    }

    fn net(&mut self) -> Net {
        match self.below(10) {
            0..=5 => {
                let (bytes, ip) = self.ipv4();
                Net {
                    ethertype: 0x0800,
                    bytes,
                    ip: Some(ip),
                }
            }
            6..=8 => {
                let (bytes, ip) = self.ipv6();
                Net {
                    ethertype: 0x86dd,
                    bytes,
                    ip: Some(ip),
                }
            }
            _ => {
                let mut bytes = Vec::new();
                let n = self.below(60);
                self.bytes(&mut bytes, n);
                Net {
                    ethertype: self.pick(&[0x0806, 0x88cc, 0x0800, 0x86dd]),
                    bytes,
                    ip: None,
                }
            }
        }
    }

    /// Ethernet payload: VLAN tags, MPLS labels or a PPPoE session, then the network packet.
    fn ether_stack(&mut self, out: &mut Vec<u8>, e: &mut Expected) {
        let net = self.net();
        for _ in 0..self.pick(&[0, 0, 0, 1, 1, 2, 4]) {
            let tci = self.u16();
            out.extend_from_slice(&u16::to_be_bytes(self.pick(&[0x8100, 0x88a8, 0x9100])));
            out.extend_from_slice(&tci.to_be_bytes());
            e.vlan.get_or_insert(tci & 0x0fff);
        }
        e.net = announced(net.ethertype);
        match self.below(10) {
            0 => {
                out.extend_from_slice(&[0x88, 0x47]);
                for i in (0..=self.below(3)).rev() {
                    let mut label = self.u32() & !0x100;
                    if i == 0 {
                        label |= 0x100;
                    }
                    out.extend_from_slice(&label.to_be_bytes());
                }
                e.guessed = true;
            }
            1 => {
                out.extend_from_slice(&[0x88, 0x64, 0x11, 0, 0, 1, 0, 0]);
                let ppp: &[u8] = match (net.ethertype, self.below(2)) {
                    (0x0800, 0) => &[0x21],
                    (0x0800, _) => &[0x00, 0x21],
                    (0x86dd, _) => &[0x00, 0x57],
                    _ => &[0xc0, 0x21],
                };
                out.extend_from_slice(ppp);
                if ppp == [0xc0, 0x21] {
                    e.net = NetProto::Other(0xc021);
                }
            }
            _ => out.extend_from_slice(&net.ethertype.to_be_bytes()),
        }
        e.ip_start = out.len();
        e.ip = net.ip;
        out.extend_from_slice(&net.bytes);
    }

    fn frame(&mut self) -> (LinkType, Vec<u8>, Expected) {
        self.mangled = false;
        let mut e = Expected {
            vlan: None,
            net: NetProto::Other(0),
            guessed: false,
            hdlc: false,
            ip_start: 0,
            ip: None,
            corrupt: false,
        };
        let mut f = Vec::new();
        let put = |f: &mut Vec<u8>, e: &mut Expected, net: Net| {
            e.ip_start = f.len();
            e.ip = net.ip;
            f.extend_from_slice(&net.bytes);
        };
        let link = match self.below(14) {
            0..=5 => {
                self.bytes(&mut f, 12);
                self.ether_stack(&mut f, &mut e);
                LinkType::Ethernet
            }
            6 => {
                self.bytes(&mut f, 14);
                let net = self.net();
                f.extend_from_slice(&net.ethertype.to_be_bytes());
                e.net = announced(net.ethertype);
                put(&mut f, &mut e, net);
                LinkType::LinuxSll
            }
            7 => {
                let net = self.net();
                f.extend_from_slice(&net.ethertype.to_be_bytes());
                self.bytes(&mut f, 18);
                e.net = announced(net.ethertype);
                put(&mut f, &mut e, net);
                LinkType::LinuxSll2
            }
            8 | 9 => {
                let net = self.net();
                let family: u32 = if net.ethertype == 0x0800 {
                    2
                } else {
                    self.pick(&[10, 24, 28, 30, 7])
                };
                e.net = match family {
                    2 => NetProto::Ipv4,
                    7 => NetProto::Other(7),
                    _ => NetProto::Ipv6,
                };
                let null = self.one_in(2);
                if null && self.one_in(2) {
                    f.extend_from_slice(&family.to_le_bytes());
                } else {
                    f.extend_from_slice(&family.to_be_bytes());
                }
                put(&mut f, &mut e, net);
                if null {
                    LinkType::Null
                } else {
                    LinkType::Loop
                }
            }
            10 => {
                let net = self.net();
                put(&mut f, &mut e, net);
                let link = self.pick(&[LinkType::Raw, LinkType::Ipv4, LinkType::Ipv6]);
                match link {
                    LinkType::Ipv4 => e.net = NetProto::Ipv4,
                    LinkType::Ipv6 => e.net = NetProto::Ipv6,
                    _ => e.guessed = true,
                }
                link
            }
            11 => {
                if self.one_in(2) {
                    f.extend_from_slice(&[0xff, 0x03]);
                    e.hdlc = true;
                }
                let net = self.net();
                e.net = if net.ethertype == 0x86dd {
                    f.extend_from_slice(&[0x00, 0x57]);
                    NetProto::Ipv6
                } else {
                    f.extend_from_slice(&[0x00, 0x21]);
                    NetProto::Ipv4
                };
                put(&mut f, &mut e, net);
                self.pick(&[LinkType::Ppp, LinkType::PppHdlc])
            }
            _ => {
                let n = self.below(120);
                self.bytes(&mut f, n);
                e.corrupt = true;
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
        if e.guessed {
            e.net = match e.ip.as_ref().map(|ip| ip.version) {
                Some(4) => NetProto::Ipv4,
                Some(6) => NetProto::Ipv6,
                _ => NetProto::Other(0),
            };
        }
        // Junk announced as IP is as good as corrupted.
        let junk_as_ip =
            e.ip.is_none() && (e.guessed || matches!(e.net, NetProto::Ipv4 | NetProto::Ipv6));
        e.corrupt |= self.mangled || junk_as_ip;
        // Corrupt a few bytes, and cut the frame as a snaplen would.
        if self.one_in(3) && !f.is_empty() {
            for _ in 0..=self.below(3) {
                let at = self.below(f.len());
                f[at] = self.byte();
            }
            e.corrupt = true;
        }
        if self.one_in(3) {
            let keep = self.below(f.len() + 1);
            f.truncate(keep);
        }
        (link, f, e)
    }
}

/// A TCP segment as compared: `options` is `None` where the generator does not predict them.
#[derive(Debug, PartialEq)]
struct SeenTcp {
    src_port: u16,
    dst_port: u16,
    seq: u32,
    ack: u32,
    flags: u16,
    window: u16,
    header_len: u8,
    options: Option<TcpOptions>,
    payload_len: u32,
    payload: Vec<u8>,
}

/// A `Decoded` as compared.
#[derive(Debug, PartialEq)]
struct Seen {
    vlan: Option<u16>,
    net: Option<NetProto>,
    ip: Option<IpHeader>,
    tcp: Option<SeenTcp>,
    udp: Option<UdpPorts>,
    note: Option<DecodeNote>,
}

impl Seen {
    fn stopped(note: DecodeNote) -> Self {
        Seen {
            vlan: None,
            net: None,
            ip: None,
            tcp: None,
            udp: None,
            note: Some(note),
        }
    }

    /// `opaque_options`: leave the options out (the expectation does not predict them).
    fn of(d: &Decoded<'_>, opaque_options: bool) -> Self {
        Seen {
            vlan: d.vlan,
            net: d.net,
            ip: d.ip,
            tcp: d.tcp.map(|t| SeenTcp {
                src_port: t.src_port,
                dst_port: t.dst_port,
                seq: t.seq.0,
                ack: t.ack.0,
                flags: t.flags.0,
                window: t.window,
                header_len: t.header_len,
                options: (!opaque_options).then_some(t.options),
                payload_len: t.payload_len,
                payload: t.payload.to_vec(),
            }),
            udp: d.udp,
            note: d.note,
        }
    }
}

/// The options a walk over the first `area` bytes of the options reports; `None` if it meets a
/// random byte. An option that runs past the area ends the walk.
fn walk_options(built: &[BuiltOption], area: usize) -> Option<TcpOptions> {
    let mut o = TcpOptions::default();
    for opt in built {
        if opt.end > area {
            break;
        }
        match opt.effect {
            OptEffect::Nop | OptEffect::Skip => {}
            OptEffect::End => break,
            OptEffect::Mss(mss) => o.mss = Some(mss),
            OptEffect::WindowScale(shift) => o.window_scale = Some(shift),
            OptEffect::SackPermitted => o.sack_permitted = true,
            OptEffect::SackBlocks(n) => o.sack_blocks = n,
            OptEffect::Timestamp(val, ecr) => o.timestamp = Some((val, ecr)),
            OptEffect::Opaque => return None,
        }
    }
    Some(o)
}

/// What `decode_frame` must report for the (possibly cut) uncorrupted frame `captured`, and
/// whether its TCP options are predicted.
fn expect(e: &Expected, captured: &[u8]) -> (Seen, bool) {
    let cap = captured.len();
    if cap < e.ip_start {
        // A cut link header, but for HDLC framing cut after its first byte: 0xff alone reads as
        // a compressed (odd) PPP protocol number.
        if e.hdlc && cap == 1 {
            let mut s = Seen::stopped(DecodeNote::NotIp);
            s.net = Some(NetProto::Other(0xff));
            return (s, false);
        }
        return (Seen::stopped(DecodeNote::LinkTruncated), false);
    }
    let ip_bytes = cap - e.ip_start;
    let net = if e.guessed && ip_bytes == 0 {
        NetProto::Other(0)
    } else {
        e.net
    };
    let mut s = Seen {
        vlan: e.vlan,
        net: Some(net),
        ip: None,
        tcp: None,
        udp: None,
        note: None,
    };
    let version = match net {
        NetProto::Ipv4 => 4,
        NetProto::Ipv6 => 6,
        NetProto::Other(_) => {
            s.note = Some(DecodeNote::NotIp);
            return (s, false);
        }
    };
    let ip = e.ip.as_ref().expect("junk announced as IP is corrupt");
    // Wrong version for the link type, or a header cut before its end.
    let malformed = ip.version != version
        || ip_bytes < ip.fixed_len
        || ip.exts.iter().any(|x| {
            // A cut extension header still says what follows and how far, if its first two
            // bytes are there; a cut fragment header does not count.
            ip_bytes < x.start + x.len && (ip_bytes < x.start + 2 || x.fragment_header)
        });
    if malformed {
        s.note = Some(DecodeNote::IpMalformed);
        return (s, false);
    }
    let total = match ip.stated {
        StatedLen::Exact => ip.built_len,
        StatedLen::Zero => ip_bytes,
        StatedLen::Longer(k) => ip.built_len + k,
    };
    s.ip = Some(IpHeader {
        src: ip.src,
        dst: ip.dst,
        proto: ip.proto,
        ttl: ip.ttl,
        id: ip.id,
        total_len: total as u32,
        header_len: ip.header_len as u16,
        fragment: ip.fragment,
    });
    if ip.fragment {
        s.note = Some(DecodeNote::IpFragment);
        return (s, false);
    }
    // The transport ends where the IP header says, or where the capture does.
    let t_start = e.ip_start + ip.header_len;
    let t_end = e.ip_start + total.min(ip_bytes);
    let t_captured = t_end.saturating_sub(t_start);
    let t_len = total - ip.header_len;
    match &ip.transport {
        ExpectedTransport::Tcp(t) => {
            if t_captured < 20 {
                s.note = Some(DecodeNote::TcpTruncated);
                return (s, false);
            }
            if t.header_len > t_len.max(20) {
                s.note = Some(DecodeNote::TcpBadHeaderLength);
                return (s, false);
            }
            let options = walk_options(&t.options, t_captured.min(t.header_len) - 20);
            let payload = if t_captured >= t.header_len {
                captured[t_start + t.header_len..t_end].to_vec()
            } else {
                Vec::new()
            };
            s.tcp = Some(SeenTcp {
                src_port: t.src_port,
                dst_port: t.dst_port,
                seq: t.seq,
                ack: t.ack,
                flags: t.flags,
                window: t.window,
                header_len: t.header_len as u8,
                options,
                payload_len: (t_len - t.header_len) as u32,
                payload,
            });
            (s, options.is_none())
        }
        ExpectedTransport::Udp(u) => {
            s.note = Some(DecodeNote::NotTcp);
            s.udp = (t_captured >= 8).then_some(*u);
            (s, false)
        }
        ExpectedTransport::Other => {
            s.note = Some(DecodeNote::NotTcp);
            (s, false)
        }
    }
}

/// What holds for any frame, corrupted or not: the layers reported agree with each other and
/// with the note, and the payload lies inside the frame.
fn check_sane(frame: &[u8], d: &Decoded<'_>) -> Result<(), String> {
    let ip_net = matches!(d.net, Some(NetProto::Ipv4 | NetProto::Ipv6));
    if d.tcp.is_some() != d.note.is_none() {
        return Err("a TCP segment exactly when no note".into());
    }
    if let Some(ip) = d.ip {
        let matching = matches!(
            (d.net, ip.src, ip.dst),
            (Some(NetProto::Ipv4), IpAddr::V4(_), IpAddr::V4(_))
                | (Some(NetProto::Ipv6), IpAddr::V6(_), IpAddr::V6(_))
        );
        if !matching {
            return Err("IP addresses of another version than the network protocol".into());
        }
        if ip.fragment != (d.note == Some(DecodeNote::IpFragment)) {
            return Err("fragment flag and note disagree".into());
        }
    }
    if let Some(t) = d.tcp {
        let ip = d.ip.ok_or("TCP without IP")?;
        if ip.proto != 6 || d.udp.is_some() {
            return Err("TCP under another protocol, or beside UDP".into());
        }
        if t.header_len < 20 || t.header_len % 4 != 0 {
            return Err(format!("TCP header length {}", t.header_len));
        }
        if t.payload.len() > t.payload_len as usize {
            return Err("more payload captured than the IP header states".into());
        }
        if !t.payload.is_empty() {
            let (f, p) = (frame.as_ptr_range(), t.payload.as_ptr_range());
            if p.start < f.start || p.end > f.end {
                return Err("payload outside the frame".into());
            }
        }
    }
    if d.udp.is_some()
        && (d.note != Some(DecodeNote::NotTcp) || d.ip.map(|ip| ip.proto) != Some(17))
    {
        return Err("UDP ports without a UDP packet".into());
    }
    match d.note {
        Some(DecodeNote::LinkTruncated) if d.net.is_some() || d.vlan.is_some() => {
            Err("a cut link layer with a network protocol".into())
        }
        Some(DecodeNote::NotIp) if ip_net || d.ip.is_some() => Err("not IP, yet IP".into()),
        Some(DecodeNote::IpMalformed) if !ip_net || d.ip.is_some() => {
            Err("a malformed IP header decoded".into())
        }
        Some(
            DecodeNote::IpFragment
            | DecodeNote::NotTcp
            | DecodeNote::TcpTruncated
            | DecodeNote::TcpBadHeaderLength,
        ) if d.ip.is_none() => Err("a note above IP without an IP header".into()),
        _ => Ok(()),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// How many frames reached each kind of check (the generator must reach them all).
#[derive(Debug, Default)]
struct Reached {
    whole_tcp: usize,
    whole_tcp_options: usize,
    whole_udp: usize,
    whole_not_ip: usize,
    whole_fragment: usize,
    cut_link: usize,
    cut_ip: usize,
    cut_tcp_header: usize,
    cut_tcp_options: usize,
    cut_payload: usize,
    corrupt: usize,
}

#[test]
fn generated_frames_decode_to_what_was_built() {
    let mut gen = FrameGen {
        rng: XorShift(0x5eed_e7e4_2025_0013),
        mangled: false,
    };
    let mut r = Reached::default();
    for _ in 0..150_000 {
        let (link, frame, e) = gen.frame();
        let d = wirelag_dissectors::decode_frame(link, &frame);
        let context = || format!("{link:?} frame {}\n{e:#?}", hex(&frame));
        if let Err(why) = check_sane(&frame, &d) {
            panic!("{why}: {d:?}\n{}", context());
        }
        if e.corrupt {
            r.corrupt += 1;
            continue;
        }
        let (want, opaque_options) = expect(&e, &frame);
        assert_eq!(Seen::of(&d, opaque_options), want, "{}", context());
        // Where the frame stopped, for the tallies.
        let built = e.ip_start + e.ip.as_ref().map_or(0, |ip| ip.built_len);
        let cut = frame.len() < built;
        let tcp = d.tcp.filter(|_| !opaque_options);
        match (cut, d.note, tcp) {
            (false, None, Some(t)) => {
                r.whole_tcp += 1;
                r.whole_tcp_options += usize::from(t.options != TcpOptions::default());
            }
            (false, Some(DecodeNote::NotTcp), _) if d.udp.is_some() => r.whole_udp += 1,
            (false, Some(DecodeNote::NotIp), _) => r.whole_not_ip += 1,
            (false, Some(DecodeNote::IpFragment), _) => r.whole_fragment += 1,
            (true, Some(DecodeNote::LinkTruncated), _) => r.cut_link += 1,
            (true, Some(DecodeNote::IpMalformed), _) => r.cut_ip += 1,
            (true, Some(DecodeNote::TcpTruncated), _) => r.cut_tcp_header += 1,
            (true, None, Some(t)) => {
                let header_end =
                    e.ip_start + e.ip.as_ref().unwrap().header_len + usize::from(t.header_len);
                if frame.len() < header_end {
                    r.cut_tcp_options += 1;
                } else if t.payload.len() < t.payload_len as usize {
                    r.cut_payload += 1;
                }
            }
            _ => {}
        }
    }
    eprintln!("{r:?}");
    // The generator reaches every path the checks are about.
    assert!(r.whole_tcp > 6_000, "{r:?}");
    assert!(r.whole_tcp_options > 1_500, "{r:?}");
    assert!(r.whole_udp > 2_500, "{r:?}");
    assert!(r.whole_not_ip > 1_500, "{r:?}");
    assert!(r.whole_fragment > 6_000, "{r:?}");
    assert!(r.cut_link > 2_500, "{r:?}");
    assert!(r.cut_ip > 5_000, "{r:?}");
    assert!(r.cut_tcp_header > 800, "{r:?}");
    assert!(r.cut_tcp_options > 200, "{r:?}");
    assert!(r.cut_payload > 500, "{r:?}");
    assert!(r.corrupt > 50_000, "{r:?}");
}
