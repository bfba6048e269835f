//! A typed builder for chaosblade-style `tc netem` delay rules.
//!
//! [`DelaySpec`] holds chaosblade's `network delay` vocabulary, parsed from its flag syntax;
//! [`build`] turns it into the ordered [`TcCommand`]s that chaosblade's tc executor
//! (chaosblade-exec-os `network_tc.go`) would run, each rendered to an exact `tc` argv. Nothing
//! here touches the OS: running the commands is the caller's business.
//!
//! The rule tree follows chaosblade:
//! - no target and no exclusion: netem is the root qdisc;
//! - a target (ports, destination IPs, protocol): `root handle 1: prio bands 4`, netem on band
//!   1:4 (handle 40:) and u32 filters at prio 4 that send matching packets to 1:4. The default
//!   priomap only uses bands 1:1..1:3, so unmatched traffic is not delayed. Exclusions are u32
//!   filters at prio 1 (evaluated first) that send the excluded traffic to the undelayed 1:3;
//! - only exclusions: netem on bands 1:1, 1:2 and 1:3 (all traffic), chaosblade's plain
//!   `prio` qdisc on 1:4, and prio-1 filters sending the excluded traffic to the undelayed 1:4.
//!
//! Beyond chaosblade: IPv6 (`protocol ipv6` filters with `ip6` matches), netem `loss` and `limit`.
//! A port-only target or exclusion gets both an IPv4 and an IPv6 filter, so a dual-stack service
//! is delayed (or spared) whichever family its clients use. The kernel keys a filter chain by
//! (prio, protocol) and refuses a second protocol at an existing prio, so IPv6 filters sit one
//! prio below their IPv4 counterparts (5 for targets, 2 for exclusions).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A bad value for one of the `inject delay` flags; the message names the flag and the value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{flag} {value:?}: {reason}")]
pub struct SpecError {
    pub flag: &'static str,
    pub value: String,
    pub reason: String,
}

fn spec_err(flag: &'static str, value: &str, reason: impl Into<String>) -> SpecError {
    SpecError {
        flag,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// An inclusive port range; a single port is `first == last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    /// The minimal set of aligned (value, mask) blocks that together match exactly this range,
    /// in ascending order. Each block is what one u32 `match ip dport VALUE MASK` matches.
    pub fn blocks(self) -> Vec<PortBlock> {
        let mut blocks = Vec::new();
        let last = u32::from(self.last);
        let mut cur = u32::from(self.first);
        while cur <= last {
            // The largest power-of-two block aligned at `cur` (65536 at 0) that fits in the range.
            let mut size: u32 = if cur == 0 {
                1 << 16
            } else {
                cur & cur.wrapping_neg()
            };
            while cur + size - 1 > last {
                size >>= 1;
            }
            // `cur` and the mask both fit in 16 bits: cur <= last <= 0xffff, size >= 1.
            let value = u16::try_from(cur).unwrap_or(u16::MAX);
            let mask = u16::try_from(0xffff & !(size - 1)).unwrap_or(u16::MAX);
            blocks.push(PortBlock { value, mask });
            cur += size;
        }
        blocks
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// One u32 port match: the port `p` matches when `p & mask == value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortBlock {
    pub value: u16,
    pub mask: u16,
}

/// An IPv4 or IPv6 network in CIDR notation; host bits are cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }

    fn family(&self) -> Family {
        if self.is_ipv6() {
            Family::V6
        } else {
            Family::V4
        }
    }
}

impl std::str::FromStr for IpNet {
    type Err = String;

    /// `10.0.0.5`, `10.0.0.0/24`, `2001:db8::/64`, `::1`; a bare address is a host network.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr_text, prefix_text) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| format!("{addr_text:?} is not an IPv4 or IPv6 address"))?;
        let max: u8 = if addr.is_ipv6() { 128 } else { 32 };
        let prefix = match prefix_text {
            None => max,
            Some(p) => {
                let bits: u8 =
                    p.parse().ok().filter(|b| *b <= max).ok_or_else(|| {
                        format!("prefix length {p:?} is not a number in 0..={max}")
                    })?;
                bits
            }
        };
        let addr = match addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        };
        Ok(IpNet { addr, prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The transport protocol a rule is restricted to (`--protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
}

impl Proto {
    /// The IP protocol number u32 matches on. For IPv6 the filter matches the next-header field,
    /// so ICMP there means ICMPv6 (58).
    fn number(self, family: Family) -> u8 {
        match (self, family) {
            (Proto::Tcp, _) => 6,
            (Proto::Udp, _) => 17,
            (Proto::Icmp, Family::V4) => 1,
            (Proto::Icmp, Family::V6) => 58,
        }
    }
}

/// What `inject delay` was asked to do, in chaosblade's vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub struct DelaySpec {
    pub dev: String,
    pub time_ms: u32,
    /// Jitter (`--offset`).
    pub offset_ms: Option<u32>,
    /// Matched as the destination port of egress packets (`--remote-port`).
    pub remote_ports: Vec<PortRange>,
    /// Matched as the source port of egress packets (`--local-port`).
    pub local_ports: Vec<PortRange>,
    pub destination_ips: Vec<IpNet>,
    pub exclude_ports: Vec<PortRange>,
    pub exclude_ips: Vec<IpNet>,
    pub protocol: Option<Proto>,
    pub loss_pct: Option<f32>,
    pub limit: Option<u32>,
    /// Auto-revert deadline; it does not change the rules.
    pub duration_s: Option<u32>,
}

impl DelaySpec {
    /// A spec that delays all of `dev`'s egress by `time_ms`; add targets and options to it.
    pub fn new(dev: &str, time_ms: u32) -> Self {
        DelaySpec {
            dev: dev.to_string(),
            time_ms,
            offset_ms: None,
            remote_ports: Vec::new(),
            local_ports: Vec::new(),
            destination_ips: Vec::new(),
            exclude_ports: Vec::new(),
            exclude_ips: Vec::new(),
            protocol: None,
            loss_pct: None,
            limit: None,
            duration_s: None,
        }
    }

    /// Checks what the parsers cannot: the interface name and the netem parameters.
    pub fn validate(&self) -> Result<(), SpecError> {
        validate_dev(&self.dev)?;
        if self.time_ms == 0 {
            return Err(spec_err("--time", "0", "the delay must be at least 1 ms"));
        }
        if let Some(loss) = self.loss_pct {
            if !(loss.is_finite() && loss > 0.0 && loss <= 100.0) {
                return Err(spec_err(
                    "--loss",
                    &loss.to_string(),
                    "must be a percentage in (0, 100]",
                ));
            }
        }
        if self.limit == Some(0) {
            return Err(spec_err(
                "--limit",
                "0",
                "netem's queue limit must be at least 1 packet",
            ));
        }
        Ok(())
    }

    fn has_target(&self) -> bool {
        !self.remote_ports.is_empty()
            || !self.local_ports.is_empty()
            || !self.destination_ips.is_empty()
            || self.protocol.is_some()
    }

    fn has_exclusion(&self) -> bool {
        !self.exclude_ports.is_empty() || !self.exclude_ips.is_empty()
    }

    fn netem(&self) -> Netem {
        Netem {
            delay_ms: self.time_ms,
            jitter_ms: self.offset_ms,
            loss_pct: self.loss_pct,
            limit: self.limit,
        }
    }
}

/// Linux interface names: 1..=15 bytes (IFNAMSIZ - 1), no `/`, `:`, whitespace, not `.`/`..`.
/// Checking this also means a name never needs shell quoting in the dry-run output.
pub fn validate_dev(dev: &str) -> Result<(), SpecError> {
    let ok = !dev.is_empty()
        && dev.len() <= 15
        && dev != "."
        && dev != ".."
        && dev
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':' && b != b'\'' && b != b'"');
    if ok {
        Ok(())
    } else {
        Err(spec_err(
            "--dev",
            dev,
            "not a valid interface name (1 to 15 characters, no '/', ':', quotes or spaces)",
        ))
    }
}

/// Parses chaosblade's port list syntax: `80`, `80,8080`, `8000-8010`, `22,8000-8010`.
pub fn parse_ports(flag: &'static str, text: &str) -> Result<Vec<PortRange>, SpecError> {
    let mut ranges = Vec::new();
    for part in text.split(',').map(str::trim) {
        if part.is_empty() {
            continue;
        }
        let port = |p: &str| -> Result<u16, SpecError> {
            let p = p.trim();
            let n: u32 = p
                .parse()
                .map_err(|_| spec_err(flag, text, format!("{p:?} is not a port number")))?;
            u16::try_from(n)
                .map_err(|_| spec_err(flag, text, format!("port {n} is out of range 0-65535")))
        };
        let range = match part.split_once('-') {
            None => {
                let p = port(part)?;
                PortRange { first: p, last: p }
            }
            Some((a, b)) => {
                let (first, last) = (port(a)?, port(b)?);
                if first > last {
                    return Err(spec_err(
                        flag,
                        text,
                        format!("range {first}-{last} ends before it starts"),
                    ));
                }
                PortRange { first, last }
            }
        };
        if !ranges.contains(&range) {
            ranges.push(range);
        }
    }
    if ranges.is_empty() {
        return Err(spec_err(flag, text, "no port given"));
    }
    Ok(ranges)
}

/// Parses a comma-separated list of IPv4/IPv6 addresses or CIDR networks.
pub fn parse_ips(flag: &'static str, text: &str) -> Result<Vec<IpNet>, SpecError> {
    let mut nets = Vec::new();
    for part in text.split(',').map(str::trim) {
        if part.is_empty() {
            continue;
        }
        let net: IpNet = part.parse().map_err(|e: String| spec_err(flag, text, e))?;
        if !nets.contains(&net) {
            nets.push(net);
        }
    }
    if nets.is_empty() {
        return Err(spec_err(flag, text, "no address given"));
    }
    Ok(nets)
}

/// netem's parameters, rendered as `netem delay T [J] [loss P%] [limit N]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Netem {
    pub delay_ms: u32,
    pub jitter_ms: Option<u32>,
    pub loss_pct: Option<f32>,
    pub limit: Option<u32>,
}

impl Netem {
    fn push_args(&self, argv: &mut Vec<String>) {
        argv.push("netem".into());
        argv.push("delay".into());
        argv.push(format!("{}ms", self.delay_ms));
        if let Some(j) = self.jitter_ms {
            argv.push(format!("{j}ms"));
        }
        if let Some(p) = self.loss_pct {
            argv.push("loss".into());
            // f32's Display is the shortest exact form: 1 -> "1", 0.5 -> "0.5".
            argv.push(format!("{p}%"));
        }
        if let Some(n) = self.limit {
            argv.push("limit".into());
            argv.push(n.to_string());
        }
    }
}

/// The address family a filter applies to: `protocol ip` + `match ip`, or `protocol ipv6` +
/// `match ip6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    fn protocol(self) -> &'static str {
        match self {
            Family::V4 => "ip",
            Family::V6 => "ipv6",
        }
    }

    fn selector(self) -> &'static str {
        match self {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        }
    }
}

/// One `match` clause of a u32 filter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum U32Match {
    Src(IpNet),
    Dst(IpNet),
    Sport(PortBlock),
    Dport(PortBlock),
    Protocol(u8),
}

impl U32Match {
    fn push_args(&self, family: Family, argv: &mut Vec<String>) {
        argv.push("match".into());
        argv.push(family.selector().into());
        match self {
            U32Match::Src(net) => argv.extend(["src".into(), net.to_string()]),
            U32Match::Dst(net) => argv.extend(["dst".into(), net.to_string()]),
            U32Match::Sport(b) => argv.extend(port_args("sport", *b)),
            U32Match::Dport(b) => argv.extend(port_args("dport", *b)),
            U32Match::Protocol(n) => argv.extend(["protocol".into(), n.to_string(), "0xff".into()]),
        }
    }
}

fn port_args(which: &str, b: PortBlock) -> [String; 3] {
    [which.into(), b.value.to_string(), format!("{:#x}", b.mask)]
}

/// A band of the root `1:` prio qdisc, 1..=4 (class `1:N`).
pub type Band = u8;

/// One `tc` invocation of the rule tree.
#[derive(Debug, Clone, PartialEq)]
pub enum TcCommand {
    /// `tc qdisc add dev D root netem ...`
    AddRootNetem { dev: String, netem: Netem },
    /// `tc qdisc add dev D root handle 1: prio bands N`
    AddRootPrio { dev: String, bands: u8 },
    /// `tc qdisc add dev D parent 1:B [handle H:] netem ...`
    AddBandNetem {
        dev: String,
        band: Band,
        handle: Option<u16>,
        netem: Netem,
    },
    /// `tc qdisc add dev D parent 1:B handle H: prio` (chaosblade's undelayed band 4)
    AddBandPrio {
        dev: String,
        band: Band,
        handle: u16,
    },
    /// `tc filter add dev D parent 1: prio P protocol ip|ipv6 u32 match ... flowid 1:B`
    AddU32Filter {
        dev: String,
        prio: u16,
        family: Family,
        matches: Vec<U32Match>,
        band: Band,
    },
    /// `tc qdisc del dev D root`: removes the whole tree, filters included.
    DelRoot { dev: String },
}

impl TcCommand {
    /// The exact argv, `tc` first.
    pub fn argv(&self) -> Vec<String> {
        let mut a: Vec<String> = vec!["tc".into()];
        let s = |v: &mut Vec<String>, items: &[&str]| v.extend(items.iter().map(|x| x.to_string()));
        match self {
            TcCommand::AddRootNetem { dev, netem } => {
                s(&mut a, &["qdisc", "add", "dev", dev, "root"]);
                netem.push_args(&mut a);
            }
            TcCommand::AddRootPrio { dev, bands } => {
                s(
                    &mut a,
                    &["qdisc", "add", "dev", dev, "root", "handle", "1:", "prio"],
                );
                a.extend(["bands".into(), bands.to_string()]);
            }
            TcCommand::AddBandNetem {
                dev,
                band,
                handle,
                netem,
            } => {
                s(&mut a, &["qdisc", "add", "dev", dev, "parent"]);
                a.push(format!("1:{band}"));
                if let Some(h) = handle {
                    a.extend(["handle".into(), format!("{h}:")]);
                }
                netem.push_args(&mut a);
            }
            TcCommand::AddBandPrio { dev, band, handle } => {
                s(&mut a, &["qdisc", "add", "dev", dev, "parent"]);
                a.push(format!("1:{band}"));
                a.extend(["handle".into(), format!("{handle}:"), "prio".into()]);
            }
            TcCommand::AddU32Filter {
                dev,
                prio,
                family,
                matches,
                band,
            } => {
                s(
                    &mut a,
                    &["filter", "add", "dev", dev, "parent", "1:", "prio"],
                );
                a.push(prio.to_string());
                a.extend(["protocol".into(), family.protocol().into(), "u32".into()]);
                for m in matches {
                    m.push_args(*family, &mut a);
                }
                a.extend(["flowid".into(), format!("1:{band}")]);
            }
            TcCommand::DelRoot { dev } => s(&mut a, &["qdisc", "del", "dev", dev, "root"]),
        }
        a
    }
}

/// Filter priorities: exclusions are looked at before targets. IPv6 needs its own prio (see
/// the module docs).
const EXCLUDE_PRIO_V4: u16 = 1;
const EXCLUDE_PRIO_V6: u16 = 2;
const TARGET_PRIO_V4: u16 = 4;
const TARGET_PRIO_V6: u16 = 5;
/// The band netem sits on when there is a target (chaosblade's 1:4, handle 40:).
const DELAY_BAND: Band = 4;
const DELAY_HANDLE: u16 = 40;

fn prio_for(family: Family, exclusion: bool) -> u16 {
    match (family, exclusion) {
        (Family::V4, true) => EXCLUDE_PRIO_V4,
        (Family::V6, true) => EXCLUDE_PRIO_V6,
        (Family::V4, false) => TARGET_PRIO_V4,
        (Family::V6, false) => TARGET_PRIO_V6,
    }
}

/// The commands that install `spec`, in the order they must run.
pub fn build(spec: &DelaySpec) -> Result<Vec<TcCommand>, SpecError> {
    spec.validate()?;
    let dev = spec.dev.clone();
    let netem = spec.netem();
    let mut cmds = Vec::new();

    if !spec.has_target() && !spec.has_exclusion() {
        cmds.push(TcCommand::AddRootNetem { dev, netem });
        return Ok(cmds);
    }

    cmds.push(TcCommand::AddRootPrio {
        dev: dev.clone(),
        bands: 4,
    });

    if !spec.has_target() {
        // Only exclusions: delay everything on the priomap's bands, spare band 4.
        for band in 1..=3 {
            cmds.push(TcCommand::AddBandNetem {
                dev: dev.clone(),
                band,
                handle: None,
                netem,
            });
        }
        // chaosblade gives the spared band an explicit (undelayed) prio qdisc; kept so that
        // the tree, and `tc qdisc show`, match what chaosblade users know.
        cmds.push(TcCommand::AddBandPrio {
            dev: dev.clone(),
            band: DELAY_BAND,
            handle: DELAY_HANDLE,
        });
        push_exclusions(spec, DELAY_BAND, &mut cmds);
        return Ok(cmds);
    }

    cmds.push(TcCommand::AddBandNetem {
        dev: dev.clone(),
        band: DELAY_BAND,
        handle: Some(DELAY_HANDLE),
        netem,
    });
    push_targets(spec, &mut cmds);
    // Excluded traffic goes to 1:3, a default (undelayed) band, by filters looked at first.
    push_exclusions(spec, 3, &mut cmds);
    Ok(cmds)
}

/// The revert: deleting the root qdisc removes every qdisc and filter below it.
pub fn revert(dev: &str) -> TcCommand {
    TcCommand::DelRoot {
        dev: dev.to_string(),
    }
}

fn filter(
    spec: &DelaySpec,
    family: Family,
    exclusion: bool,
    matches: Vec<U32Match>,
    band: Band,
) -> TcCommand {
    TcCommand::AddU32Filter {
        dev: spec.dev.clone(),
        prio: prio_for(family, exclusion),
        family,
        matches,
        band,
    }
}

/// Builds the u32 match for one port block: [`U32Match::Sport`] or [`U32Match::Dport`].
type PortMatch = fn(PortBlock) -> U32Match;

/// Target filters in chaosblade's order: local ports, then remote ports (each times every
/// destination network when there are some), then destination networks alone; the protocol
/// match goes last on each. Without destination networks, port filters exist for both families.
fn push_targets(spec: &DelaySpec, cmds: &mut Vec<TcCommand>) {
    let both = [Family::V4, Family::V6];
    let proto = |family: Family| spec.protocol.map(|p| U32Match::Protocol(p.number(family)));
    let port_sets: [(&[PortRange], PortMatch); 2] = [
        (&spec.local_ports, U32Match::Sport),
        (&spec.remote_ports, U32Match::Dport),
    ];
    for (ranges, make) in port_sets {
        for block in ranges.iter().flat_map(|r| r.blocks()) {
            if spec.destination_ips.is_empty() {
                for family in both {
                    let mut m = vec![make(block)];
                    m.extend(proto(family));
                    cmds.push(filter(spec, family, false, m, DELAY_BAND));
                }
            } else {
                for net in &spec.destination_ips {
                    let family = net.family();
                    let mut m = vec![U32Match::Dst(*net), make(block)];
                    m.extend(proto(family));
                    cmds.push(filter(spec, family, false, m, DELAY_BAND));
                }
            }
        }
    }
    if spec.local_ports.is_empty() && spec.remote_ports.is_empty() {
        if spec.destination_ips.is_empty() {
            // Only --protocol.
            for family in both {
                cmds.push(filter(
                    spec,
                    family,
                    false,
                    proto(family).into_iter().collect(),
                    DELAY_BAND,
                ));
            }
        }
        for net in &spec.destination_ips {
            let family = net.family();
            let mut m = vec![U32Match::Dst(*net)];
            m.extend(proto(family));
            cmds.push(filter(spec, family, false, m, DELAY_BAND));
        }
    }
}

/// Exclusion filters, as chaosblade: an excluded network by source and by destination, an
/// excluded port by destination and by source (it may be either end of a connection).
/// Excluded ports apply to both families. Unlike chaosblade, the protocol is not added to
/// exclusions: sparing a port whatever the protocol is the safe side.
fn push_exclusions(spec: &DelaySpec, band: Band, cmds: &mut Vec<TcCommand>) {
    for net in &spec.exclude_ips {
        for m in [U32Match::Src(*net), U32Match::Dst(*net)] {
            cmds.push(filter(spec, net.family(), true, vec![m], band));
        }
    }
    for block in spec.exclude_ports.iter().flat_map(|r| r.blocks()) {
        for family in [Family::V4, Family::V6] {
            for m in [U32Match::Dport(block), U32Match::Sport(block)] {
                cmds.push(filter(spec, family, true, vec![m], band));
            }
        }
    }
}

/// One shell line per command: the `--dry-run` output. Arguments are quoted only when they
/// hold something a POSIX shell would interpret.
pub fn render(commands: &[TcCommand]) -> String {
    let mut out = String::new();
    for cmd in commands {
        out.push_str(&render_argv(&cmd.argv()));
        out.push('\n');
    }
    out
}

/// One argv as a shell line, quoted as [`render`] does (no newline).
pub fn render_argv(argv: &[String]) -> String {
    let line: Vec<String> = argv.iter().map(|a| shell_quote(a)).collect();
    line.join(" ")
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"%+,-./:=@_".contains(&b));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wirelag_dissectors::testutil::XorShift;

    fn range(first: u16, last: u16) -> PortRange {
        PortRange { first, last }
    }

    fn vm(blocks: &[PortBlock]) -> Vec<(u16, u16)> {
        blocks.iter().map(|b| (b.value, b.mask)).collect()
    }

    /// Every port in the range is matched by exactly one block, none outside it is, and no
    /// two adjacent blocks could merge into one (minimality of a prefix cover).
    fn assert_exact_cover(r: PortRange) {
        let blocks = r.blocks();
        let mut hits = vec![0u8; 1 << 16];
        for b in &blocks {
            assert_eq!(b.value & !b.mask, 0, "{r}: block {b:?} is not aligned");
            let size = u32::from(!b.mask) + 1;
            for p in u32::from(b.value)..u32::from(b.value) + size {
                hits[p as usize] += 1;
            }
        }
        for (p, h) in hits.iter().enumerate() {
            let inside = (usize::from(r.first)..=usize::from(r.last)).contains(&p);
            assert_eq!(*h, u8::from(inside), "{r}: port {p} matched {h} times");
        }
        for w in blocks.windows(2) {
            let (a, b) = (w[0], w[1]);
            let size = u32::from(!a.mask) + 1;
            let mergeable = a.mask == b.mask && u32::from(a.value) % (2 * size) == 0;
            assert!(!mergeable, "{r}: blocks {a:?} and {b:?} could be one");
        }
    }

    #[test]
    fn aligned_range_is_one_block() {
        assert_eq!(vm(&range(8000, 8015).blocks()), vec![(8000, 0xfff0)]);
        assert_eq!(vm(&range(27017, 27017).blocks()), vec![(27017, 0xffff)]);
        assert_eq!(vm(&range(0, 65535).blocks()), vec![(0, 0)]);
    }

    #[test]
    fn unaligned_range_is_several_blocks() {
        // 3300..=3303 (3300 = 0b1100_1110_0100), 3304..=3311 would overshoot: 3304..=3307,
        // then 3308..=3309, 3310.
        assert_eq!(
            vm(&range(3300, 3310).blocks()),
            vec![
                (3300, 0xfffc),
                (3304, 0xfffc),
                (3308, 0xfffe),
                (3310, 0xffff)
            ]
        );
        assert_eq!(vm(&range(65534, 65535).blocks()), vec![(65534, 0xfffe)]);
        assert_eq!(vm(&range(1, 2).blocks()), vec![(1, 0xffff), (2, 0xffff)]);
    }

    #[test]
    fn random_ranges_are_covered_exactly() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for i in 0..400 {
            // Mix short ranges near powers of two with wide ones.
            let a = u16::try_from(rng.below(1 << 16)).unwrap();
            let span = if i % 2 == 0 {
                rng.below(64)
            } else {
                rng.below(1 << 16)
            };
            let b = u16::try_from((usize::from(a) + span).min(65535)).unwrap();
            assert_exact_cover(range(a, b));
        }
        for edge in [0u16, 1, 255, 256, 1023, 1024, 32767, 32768, 65534, 65535] {
            assert_exact_cover(range(edge, edge));
            assert_exact_cover(range(0, edge));
            assert_exact_cover(range(edge, 65535));
        }
    }

    #[test]
    fn ports_parse_chaosblade_syntax() {
        assert_eq!(
            parse_ports("--remote-port", "80, 8080,8000-8010,80").unwrap(),
            vec![range(80, 80), range(8080, 8080), range(8000, 8010)]
        );
        for bad in ["70000", "x", "10-5", "1-2-3", "", "-5", "5-"] {
            assert!(
                parse_ports("--remote-port", bad).is_err(),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn cidrs_parse_and_clear_host_bits() {
        let n: IpNet = "10.0.0.5".parse().unwrap();
        assert_eq!(n.to_string(), "10.0.0.5/32");
        let n: IpNet = "10.1.2.3/16".parse().unwrap();
        assert_eq!(n.to_string(), "10.1.0.0/16");
        let n: IpNet = "2001:db8::1/64".parse().unwrap();
        assert_eq!(n.to_string(), "2001:db8::/64");
        let n: IpNet = "0.0.0.0/0".parse().unwrap();
        assert_eq!(n.to_string(), "0.0.0.0/0");
        for bad in [
            "10.0.0.256",
            "10.0.0.0/33",
            "2001:db8::/129",
            "10.0.0.0/",
            "host",
            "/24",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn interface_only_is_root_netem() {
        let cmds = build(&DelaySpec::new("eth0", 200)).unwrap();
        assert_eq!(
            render(&cmds),
            "tc qdisc add dev eth0 root netem delay 200ms\n"
        );
        assert_eq!(
            revert("eth0").argv(),
            vec!["tc", "qdisc", "del", "dev", "eth0", "root"]
        );
    }

    #[test]
    fn bad_specs_are_refused() {
        assert!(build(&DelaySpec::new("eth0", 0)).is_err());
        assert!(build(&DelaySpec::new("a/b", 10)).is_err());
        assert!(build(&DelaySpec::new("averyveryverylongname", 10)).is_err());
        let mut s = DelaySpec::new("eth0", 10);
        s.loss_pct = Some(150.0);
        assert!(build(&s).is_err());
        s.loss_pct = Some(f32::NAN);
        assert!(build(&s).is_err());
    }

    #[test]
    fn quoting_only_when_needed() {
        assert_eq!(shell_quote("1:4"), "1:4");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
