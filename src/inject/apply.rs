//! Applying a [`tc`](super::tc) rule tree to the kernel, safely, and taking it away again.
//!
//! # What [`apply`] does, in order
//!
//! 1. Pre-flight ([`super::preflight`]): the interface exists, `tc` is installed, the kernel has
//!    every module the tree needs (`sch_netem`; `sch_prio` and `cls_u32` for a targeted tree;
//!    missing ones name `--backend proxy` as the way out), and this process has CAP_NET_ADMIN.
//! 2. Refuses when wirelag already has a state file for the interface (`inject clear` first).
//! 3. Reads `tc -j qdisc show dev D`. Kernel-made qdiscs have handle `0:` (noqueue, pfifo_fast,
//!    mq and its per-queue children, fq_codel or fq as `net.core.default_qdisc`); any egress qdisc
//!    with another handle was made by someone, and wirelag refuses, naming it and `--force`.
//!    With `--force` the foreign root is recorded (kind, handle, options as tc printed them),
//!    deleted, and put back on revert/clear — see "What --force can restore" below.
//! 4. Claims the state file `inject-<dev>.json` in the state directory (`/run/wirelag`, or
//!    `$WIRELAG_STATE_DIR`) *before* changing anything, exclusively (hard link of a fully
//!    written temporary file: a second wirelag racing for the same interface loses cleanly), so
//!    that a crash at any later point leaves a record `inject clear` can act on.
//! 5. Runs the commands. After the first one (the root) it reads the root's handle back into the
//!    state file. If any command fails, it rolls back (deletes the root it added, restores the
//!    recorded previous root, removes the state file) and reports the failing command with tc's
//!    stderr; "qdisc kind is unknown" also names `--backend proxy`.
//! 6. Verifies ([`verify`]) from `tc -j qdisc show` and `tc -j filter show`; a mismatch reverts
//!    and fails.
//! 7. Returns an [`Applied`] guard. It reverts on [`Applied::revert`], on drop (so a panic
//!    unwinds into a revert), and in [`Applied::hold`] on Ctrl-C/SIGTERM/SIGHUP or at the
//!    deadline. If the state file has gone (someone ran `inject clear`) or now belongs to another
//!    run, the guard does not revert again.
//!
//! Reverting ([`revert_recorded`], shared by the guard and [`clear`]) deletes the root only when
//! it is still the one recorded (same kind and handle; a kernel default root means the tree is
//! already gone), restores the previous root if one was recorded, and removes the state file.
//! When the root is someone else's, it leaves everything, state file included, and says so.
//!
//! # What is verified
//!
//! From the commands themselves ([`Expectation`]s): the root (netem, or `prio` handle `1:` with
//! its band count); every netem qdisc at its parent (and handle when one was given) with the
//! requested delay and jitter (iproute2 prints seconds; tolerance 1 µs or 10 ppm, since it
//! prints `%g`), loss (printed as a fraction under `loss-random`) and limit when requested; the
//! undelayed `prio` on band 4; and, per (prio, protocol, class), exactly as many u32 rules
//! (filter entries carrying a `flowid`; the hash-table entries u32 adds are not rules) as
//! commands added. The u32 match keys themselves are not compared: iproute2 prints them as raw
//! 32-bit words at offsets, and their construction is covered by the dry-run goldens.
//!
//! # What --force can restore
//!
//! The previous root's kind and handle, and its options for `netem` (limit, delay, jitter,
//! loss), `prio` (bands, priomap), `pfifo`/`bfifo` (limit) and `pfifo_fast`/`noqueue` (none).
//! Other kinds come back with kernel defaults for their options (said at apply time). Child
//! qdiscs, classes and filters under it are **not** restored (an HTB tree comes back as a bare
//! `htb` root); apply says how many it is about to lose. `--force` is refused when a state file
//! already exists for the interface.
//!
//! # State file (`wirelag.inject-state/v1`)
//!
//! See [`InjectState`]. It is written atomically (temporary file + rename) on every update.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::tc::{self, DelaySpec, Family, Netem, TcCommand};
use super::Host;
use crate::signals::StopFlag;

pub const STATE_SCHEMA: &str = "wirelag.inject-state/v1";
pub const STATUS_SCHEMA: &str = "wirelag.inject-status/v1";
pub const DEFAULT_STATE_DIR: &str = "/run/wirelag";

// ---------------------------------------------------------------------------------------------
// Running tc

/// What one `tc` run printed.
#[derive(Debug, Clone, Default)]
pub struct TcOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a `tc` argv (`argv[0]` is `"tc"`). The real one is [`SysTc`]; tests use
/// [`super::fake::FakeTc`], a fake kernel.
pub trait TcRunner: Send + Sync {
    /// Err only when tc could not be run at all; a failing tc is `Ok` with `success: false`.
    fn run(&self, argv: &[String]) -> anyhow::Result<TcOutput>;
}

/// Shells out to the `tc` binary at `program`.
pub struct SysTc {
    pub program: PathBuf,
}

impl SysTc {
    /// `tc` as found on PATH by `host`.
    pub fn find(host: &dyn Host) -> anyhow::Result<SysTc> {
        let program = host.find_tc().ok_or_else(tc_missing)?;
        Ok(SysTc { program })
    }
}

fn tc_missing() -> anyhow::Error {
    anyhow!("tc not found: apt-get install iproute2")
}

impl TcRunner for SysTc {
    fn run(&self, argv: &[String]) -> anyhow::Result<TcOutput> {
        let out = std::process::Command::new(&self.program)
            .args(argv.iter().skip(1))
            .stdin(std::process::Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", self.program.display()))?;
        Ok(TcOutput {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

fn argv_of(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Runs `argv`; a failure becomes an error quoting the command and tc's stderr.
fn run_checked(runner: &dyn TcRunner, argv: &[String]) -> anyhow::Result<String> {
    let out = runner.run(argv)?;
    if out.success {
        Ok(out.stdout)
    } else {
        Err(anyhow!(
            "`{}` failed: {}",
            tc::render_argv(argv),
            one_line(&out.stderr)
        ))
    }
}

fn one_line(s: &str) -> String {
    let t: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if t.is_empty() {
        "(no message)".into()
    } else {
        t.join("; ")
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the kernel: tc -j

/// One entry of `tc -j qdisc show dev D`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Qdisc {
    pub kind: String,
    pub handle: String,
    /// `None` for the root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(default)]
    pub root: bool,
    #[serde(default)]
    pub options: Value,
}

impl Qdisc {
    /// Made by the kernel (default root, mq's per-queue children), not by anyone.
    pub fn is_kernel_default(&self) -> bool {
        self.handle == "0:" || self.handle.is_empty()
    }

    /// Ingress and clsact hang off the ingress side; they do not shape egress.
    fn is_ingress(&self) -> bool {
        matches!(self.kind.as_str(), "ingress" | "clsact")
    }

    fn describe(&self) -> String {
        match &self.parent {
            _ if self.root => format!("root {} {}", self.kind, self.handle),
            Some(p) => format!("{} {} on {p}", self.kind, self.handle),
            None => format!("{} {}", self.kind, self.handle),
        }
    }
}

/// One u32 rule of `tc -j filter show dev D` (hash-table entries are left out).
#[derive(Debug, Clone, PartialEq)]
pub struct FilterRule {
    pub kind: String,
    pub pref: u64,
    pub protocol: String,
    pub flowid: String,
}

pub fn read_qdiscs(runner: &dyn TcRunner, dev: &str) -> anyhow::Result<Vec<Qdisc>> {
    let argv = argv_of(&["tc", "-j", "qdisc", "show", "dev", dev]);
    let out = run_checked(runner, &argv)?;
    parse_qdiscs(&out).with_context(|| format!("reading `{}`", argv.join(" ")))
}

pub fn parse_qdiscs(json: &str) -> anyhow::Result<Vec<Qdisc>> {
    if json.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut all: Vec<Qdisc> = serde_json::from_str(json)?;
    for q in &mut all {
        if q.parent.is_none() {
            q.root = true;
        }
    }
    Ok(all)
}

pub fn read_filters(runner: &dyn TcRunner, dev: &str) -> anyhow::Result<Vec<FilterRule>> {
    let argv = argv_of(&["tc", "-j", "filter", "show", "dev", dev]);
    let out = run_checked(runner, &argv)?;
    parse_filters(&out).with_context(|| format!("reading `{}`", argv.join(" ")))
}

pub fn parse_filters(json: &str) -> anyhow::Result<Vec<FilterRule>> {
    if json.trim().is_empty() {
        return Ok(Vec::new());
    }
    let all: Vec<Value> = serde_json::from_str(json)?;
    Ok(all
        .iter()
        .filter_map(|f| {
            let flowid = f.get("options")?.get("flowid")?.as_str()?;
            Some(FilterRule {
                kind: f.get("kind")?.as_str()?.to_string(),
                pref: f.get("pref")?.as_u64()?,
                protocol: f.get("protocol")?.as_str()?.to_string(),
                flowid: flowid.to_string(),
            })
        })
        .collect())
}

fn root_of(qdiscs: &[Qdisc]) -> Option<&Qdisc> {
    qdiscs.iter().find(|q| q.root && !q.is_ingress())
}

/// Egress qdiscs someone made (handle other than `0:`).
pub fn foreign_qdiscs(qdiscs: &[Qdisc]) -> Vec<&Qdisc> {
    qdiscs
        .iter()
        .filter(|q| !q.is_ingress() && !q.is_kernel_default())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Verification

/// One thing the kernel must show after applying.
#[derive(Debug, Clone, PartialEq)]
pub enum Expectation {
    /// A qdisc of `kind` at `parent` (None: the root), with `handle` when it was given.
    Qdisc {
        kind: &'static str,
        parent: Option<String>,
        handle: Option<String>,
        bands: Option<u8>,
        netem: Option<Netem>,
    },
    /// Exactly `count` u32 rules at (`pref`, `protocol`) sending to `flowid`.
    Filters {
        pref: u16,
        protocol: &'static str,
        flowid: String,
        count: usize,
    },
}

/// What the commands should leave in the kernel.
pub fn expectations(commands: &[TcCommand]) -> Vec<Expectation> {
    let mut out = Vec::new();
    for c in commands {
        match c {
            TcCommand::AddRootNetem { netem, .. } => out.push(Expectation::Qdisc {
                kind: "netem",
                parent: None,
                handle: None,
                bands: None,
                netem: Some(*netem),
            }),
            TcCommand::AddRootPrio { bands, .. } => out.push(Expectation::Qdisc {
                kind: "prio",
                parent: None,
                handle: Some("1:".into()),
                bands: Some(*bands),
                netem: None,
            }),
            TcCommand::AddBandNetem {
                band,
                handle,
                netem,
                ..
            } => out.push(Expectation::Qdisc {
                kind: "netem",
                parent: Some(format!("1:{band}")),
                handle: handle.map(|h| format!("{h}:")),
                bands: None,
                netem: Some(*netem),
            }),
            TcCommand::AddBandPrio { band, handle, .. } => out.push(Expectation::Qdisc {
                kind: "prio",
                parent: Some(format!("1:{band}")),
                handle: Some(format!("{handle}:")),
                bands: None,
                netem: None,
            }),
            TcCommand::AddU32Filter {
                prio, family, band, ..
            } => {
                let protocol = match family {
                    Family::V4 => "ip",
                    Family::V6 => "ipv6",
                };
                let flowid = format!("1:{band}");
                let existing = out.iter_mut().find(|e| {
                    matches!(e, Expectation::Filters { pref, protocol: p, flowid: f, .. }
                        if pref == prio && *p == protocol && *f == flowid)
                });
                match existing {
                    Some(Expectation::Filters { count, .. }) => *count += 1,
                    _ => out.push(Expectation::Filters {
                        pref: *prio,
                        protocol,
                        flowid,
                        count: 1,
                    }),
                }
            }
            TcCommand::DelRoot { .. } => {}
        }
    }
    out
}

/// One verified item: what was expected, and what the kernel showed when it differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub expected: String,
    pub ok: bool,
    /// What the kernel showed instead, when not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
}

/// The result of comparing the kernel's tree with the commands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    pub ok: bool,
    pub checks: Vec<Check>,
}

impl Verification {
    /// The failed checks, one per line-ish, for an error message.
    pub fn mismatches(&self) -> String {
        self.checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| {
                format!(
                    "expected {}, found {}",
                    c.expected,
                    c.found.as_deref().unwrap_or("?")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// `root prio 1: bands 4; netem 40: on 1:4 delay 200ms; 2 u32 rules ...`.
    pub fn summary(&self) -> String {
        self.checks
            .iter()
            .map(|c| c.expected.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn seconds_match(got: Option<f64>, want_ms: u32) -> bool {
    let want = f64::from(want_ms) / 1000.0;
    let got = got.unwrap_or(0.0);
    (got - want).abs() <= (want * 1e-5).max(1e-6)
}

fn fmt_s(v: Option<f64>) -> String {
    match v {
        Some(s) => format!("{}ms", (s * 1e6).round() / 1e3),
        None => "none".into(),
    }
}

fn netem_text(n: &Netem) -> String {
    let mut s = format!("delay {}ms", n.delay_ms);
    if let Some(j) = n.jitter_ms {
        s.push_str(&format!(" jitter {j}ms"));
    }
    if let Some(l) = n.loss_pct {
        s.push_str(&format!(" loss {l}%"));
    }
    if let Some(l) = n.limit {
        s.push_str(&format!(" limit {l}"));
    }
    s
}

/// Compares netem's options (as iproute2 prints them) with what was asked; None when they match.
fn netem_mismatch(options: &Value, want: &Netem) -> Option<String> {
    let delay = options.get("delay");
    let got_delay = delay.and_then(|d| d.get("delay")).and_then(Value::as_f64);
    let got_jitter = delay.and_then(|d| d.get("jitter")).and_then(Value::as_f64);
    let got_loss = options
        .get("loss-random")
        .and_then(|l| l.get("loss"))
        .and_then(Value::as_f64);
    let got_limit = options.get("limit").and_then(Value::as_u64);
    let mut bad = Vec::new();
    if !seconds_match(got_delay, want.delay_ms) {
        bad.push(format!("delay {}", fmt_s(got_delay)));
    }
    if !seconds_match(got_jitter, want.jitter_ms.unwrap_or(0)) {
        bad.push(format!("jitter {}", fmt_s(got_jitter)));
    }
    let want_loss = want.loss_pct.map(|p| f64::from(p) / 100.0).unwrap_or(0.0);
    if (got_loss.unwrap_or(0.0) - want_loss).abs() > 1e-6_f64.max(want_loss * 1e-5) {
        bad.push(format!(
            "loss {}",
            got_loss.map_or("none".into(), |l| format!("{}%", l * 100.0))
        ));
    }
    if let Some(limit) = want.limit {
        if got_limit != Some(u64::from(limit)) {
            bad.push(format!(
                "limit {}",
                got_limit.map_or("none".into(), |l| l.to_string())
            ));
        }
    }
    (!bad.is_empty()).then(|| bad.join(" "))
}

/// Checks the kernel's qdiscs and filters against what `commands` should have installed.
pub fn verify(commands: &[TcCommand], qdiscs: &[Qdisc], filters: &[FilterRule]) -> Verification {
    let mut checks = Vec::new();
    for e in expectations(commands) {
        match e {
            Expectation::Qdisc {
                kind,
                parent,
                handle,
                bands,
                netem,
            } => {
                let place = match &parent {
                    None => "root".to_string(),
                    Some(p) => format!("on {p}"),
                };
                let mut expected = kind.to_string();
                if let Some(h) = &handle {
                    expected.push_str(&format!(" {h}"));
                }
                expected = format!("{expected} {place}");
                if let Some(b) = bands {
                    expected.push_str(&format!(" bands {b}"));
                }
                if let Some(n) = &netem {
                    expected.push_str(&format!(" {}", netem_text(n)));
                }
                let at = qdiscs.iter().find(|q| match &parent {
                    None => q.root && !q.is_ingress(),
                    Some(p) => q.parent.as_deref() == Some(p.as_str()),
                });
                let found = match at {
                    None => Some(format!("nothing {place}")),
                    Some(q) if q.kind != kind => Some(q.describe()),
                    Some(q) if handle.as_ref().is_some_and(|h| *h != q.handle) => {
                        Some(q.describe())
                    }
                    Some(q)
                        if bands.is_some_and(|b| {
                            q.options.get("bands").and_then(Value::as_u64) != Some(u64::from(b))
                        }) =>
                    {
                        Some(format!("{} with options {}", q.describe(), q.options))
                    }
                    Some(q) => netem
                        .as_ref()
                        .and_then(|n| netem_mismatch(&q.options, n))
                        .map(|m| format!("{} {m}", q.describe())),
                };
                checks.push(Check {
                    expected,
                    ok: found.is_none(),
                    found,
                });
            }
            Expectation::Filters {
                pref,
                protocol,
                flowid,
                count,
            } => {
                let got = filters
                    .iter()
                    .filter(|f| {
                        f.kind == "u32"
                            && f.pref == u64::from(pref)
                            && f.protocol == protocol
                            && f.flowid == flowid
                    })
                    .count();
                let plural = if count == 1 { "rule" } else { "rules" };
                checks.push(Check {
                    expected: format!(
                        "{count} u32 {plural} prio {pref} protocol {protocol} to {flowid}"
                    ),
                    ok: got == count,
                    found: (got != count).then(|| format!("{got}")),
                });
            }
        }
    }
    Verification {
        ok: checks.iter().all(|c| c.ok),
        checks,
    }
}

// ---------------------------------------------------------------------------------------------
// State file

/// The flags, as text that parses back (`27017`, `8000-8010`, `10.0.0.0/24`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecRecord {
    pub time_ms: u32,
    pub offset_ms: Option<u32>,
    pub remote_ports: Vec<String>,
    pub local_ports: Vec<String>,
    pub destination_ips: Vec<String>,
    pub exclude_ports: Vec<String>,
    pub exclude_ips: Vec<String>,
    pub protocol: Option<String>,
    pub loss_pct: Option<f32>,
    pub limit: Option<u32>,
    pub duration_s: Option<u32>,
}

impl SpecRecord {
    pub fn from_spec(s: &DelaySpec) -> Self {
        let strs = |v: &[tc::PortRange]| v.iter().map(ToString::to_string).collect();
        let nets = |v: &[tc::IpNet]| v.iter().map(ToString::to_string).collect();
        SpecRecord {
            time_ms: s.time_ms,
            offset_ms: s.offset_ms,
            remote_ports: strs(&s.remote_ports),
            local_ports: strs(&s.local_ports),
            destination_ips: nets(&s.destination_ips),
            exclude_ports: strs(&s.exclude_ports),
            exclude_ips: nets(&s.exclude_ips),
            protocol: s.protocol.map(|p| match p {
                tc::Proto::Tcp => "tcp".to_string(),
                tc::Proto::Udp => "udp".to_string(),
                tc::Proto::Icmp => "icmp".to_string(),
            }),
            loss_pct: s.loss_pct,
            limit: s.limit,
            duration_s: s.duration_s,
        }
    }

    pub fn to_spec(&self, dev: &str) -> anyhow::Result<DelaySpec> {
        let ports = |flag: &'static str, v: &[String]| -> anyhow::Result<Vec<tc::PortRange>> {
            let mut all = Vec::new();
            for t in v {
                all.extend(tc::parse_ports(flag, t)?);
            }
            Ok(all)
        };
        let ips = |flag: &'static str, v: &[String]| -> anyhow::Result<Vec<tc::IpNet>> {
            let mut all = Vec::new();
            for t in v {
                all.extend(tc::parse_ips(flag, t)?);
            }
            Ok(all)
        };
        let protocol = match self.protocol.as_deref() {
            None => None,
            Some("tcp") => Some(tc::Proto::Tcp),
            Some("udp") => Some(tc::Proto::Udp),
            Some("icmp") => Some(tc::Proto::Icmp),
            Some(p) => bail!("unknown protocol {p:?}"),
        };
        Ok(DelaySpec {
            dev: dev.to_string(),
            time_ms: self.time_ms,
            offset_ms: self.offset_ms,
            remote_ports: ports("--remote-port", &self.remote_ports)?,
            local_ports: ports("--local-port", &self.local_ports)?,
            destination_ips: ips("--destination-ip", &self.destination_ips)?,
            exclude_ports: ports("--exclude-port", &self.exclude_ports)?,
            exclude_ips: ips("--exclude-ip", &self.exclude_ips)?,
            protocol,
            loss_pct: self.loss_pct,
            limit: self.limit,
            duration_s: self.duration_s,
        })
    }

    /// `delay 200ms jitter 10ms, remote ports 27017, ...` for people.
    pub fn describe(&self) -> String {
        let mut s = format!("delay {}ms", self.time_ms);
        if let Some(j) = self.offset_ms {
            s.push_str(&format!(" jitter {j}ms"));
        }
        if let Some(l) = self.loss_pct {
            s.push_str(&format!(" loss {l}%"));
        }
        if let Some(l) = self.limit {
            s.push_str(&format!(" limit {l}"));
        }
        for (name, v) in [
            ("remote ports", &self.remote_ports),
            ("local ports", &self.local_ports),
            ("destinations", &self.destination_ips),
            ("excluded ports", &self.exclude_ports),
            ("excluded addresses", &self.exclude_ips),
        ] {
            if !v.is_empty() {
                s.push_str(&format!(", {name} {}", v.join(",")));
            }
        }
        if let Some(p) = &self.protocol {
            s.push_str(&format!(", protocol {p}"));
        }
        if self.remote_ports.is_empty()
            && self.local_ports.is_empty()
            && self.destination_ips.is_empty()
            && self.exclude_ports.is_empty()
            && self.exclude_ips.is_empty()
            && self.protocol.is_none()
        {
            s.push_str(", all egress traffic");
        }
        s
    }
}

/// The root wirelag installed; `handle` is None until read back (root netem's handle is
/// chosen by the kernel).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootRecord {
    pub kind: String,
    pub handle: Option<String>,
}

/// A root qdisc wirelag replaced under `--force`, and how it will be put back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviousRoot {
    pub kind: String,
    pub handle: String,
    /// As `tc -j qdisc show` printed them.
    pub options: Value,
    /// The command that restores it.
    pub restore: Vec<String>,
    /// Whether `restore` carries its options (false: kernel defaults for this kind).
    pub options_restored: bool,
    /// Qdiscs below it and filters on the device, which are lost.
    pub children_lost: usize,
    pub filters_lost: usize,
}

/// `applying` from the claim until verification passes, then `applied`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Applying,
    Applied,
}

/// The state file, `<state dir>/inject-<dev>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InjectState {
    /// [`STATE_SCHEMA`].
    pub schema: String,
    pub dev: String,
    /// Always `tc` here (the proxy keeps no kernel state).
    pub backend: String,
    pub phase: Phase,
    pub spec: SpecRecord,
    /// The argv of every command, in order.
    pub commands: Vec<Vec<String>>,
    /// The command that removes wirelag's tree.
    pub revert: Vec<String>,
    pub root: RootRecord,
    pub previous_root: Option<PreviousRoot>,
    pub holder_pid: u32,
    /// /proc/PID/stat start time (clock ticks since boot), to tell a reused pid apart.
    pub holder_start: Option<u64>,
    pub applied_at: String,
    pub applied_at_epoch_ms: i64,
    /// Unique to one `apply` (two in the same process and millisecond still differ), so that a
    /// guard never takes a later claim on the interface for its own.
    #[serde(default)]
    pub claim: String,
    pub deadline: Option<String>,
    pub deadline_epoch_ms: Option<i64>,
}

/// A token no other `apply` of this or another process has: the clock in nanoseconds and a
/// per-process sequence number.
fn new_claim() -> String {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{ns:x}-{n}", std::process::id())
}

impl InjectState {
    fn same_claim(&self, other: &InjectState) -> bool {
        self.holder_pid == other.holder_pid
            && self.applied_at_epoch_ms == other.applied_at_epoch_ms
            && self.claim == other.claim
    }

    /// The commands, typed again (from the recorded flags).
    pub fn typed_commands(&self) -> anyhow::Result<Vec<TcCommand>> {
        let spec = self.spec.to_spec(&self.dev)?;
        let cmds = tc::build(&spec)?;
        let argv: Vec<Vec<String>> = cmds.iter().map(TcCommand::argv).collect();
        if argv != self.commands {
            bail!("the recorded commands do not match the recorded flags");
        }
        Ok(cmds)
    }
}

/// `$WIRELAG_STATE_DIR`, else `/run/wirelag`.
pub fn state_dir() -> PathBuf {
    std::env::var_os("WIRELAG_STATE_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
}

pub fn state_path(dir: &Path, dev: &str) -> PathBuf {
    dir.join(format!("inject-{dev}.json"))
}

/// The state for `path`; None when there is no file.
pub fn load_state(path: &Path) -> anyhow::Result<Option<InjectState>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let state: InjectState = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a wirelag state file (remove it by hand once `tc qdisc show` shows \
             nothing of wirelag's)",
            path.display()
        )
    })?;
    if state.schema != STATE_SCHEMA {
        bail!(
            "{}: schema {:?}, this wirelag reads {STATE_SCHEMA}",
            path.display(),
            state.schema
        );
    }
    Ok(Some(state))
}

fn state_bytes(state: &InjectState) -> anyhow::Result<Vec<u8>> {
    let mut b = serde_json::to_vec_pretty(state)?;
    b.push(b'\n');
    Ok(b)
}

/// Creates the state file only if there is none: written in full to a temporary file, then
/// hard-linked to its name (which fails if the name exists).
fn claim_state(path: &Path, state: &InjectState) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "cannot create the state directory {} (set WIRELAG_STATE_DIR to use another)",
            dir.display()
        )
    })?;
    let tmp = dir.join(format!(".claim-{}.{}.tmp", state.dev, std::process::id()));
    std::fs::write(&tmp, state_bytes(state)?)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!(
            "wirelag already has rules on {} (state file {}); `wirelag inject status --dev {}` \
             shows them, `wirelag inject clear --dev {}` removes them",
            state.dev,
            path.display(),
            state.dev,
            state.dev
        ),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

fn update_state(path: &Path, state: &InjectState) -> anyhow::Result<()> {
    crate::report::write_atomically(path, &state_bytes(state)?)
}

fn remove_state(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Time and processes

fn epoch_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// RFC 3339 in UTC, millisecond precision.
pub fn rfc3339_ms(epoch_ms: i64) -> String {
    let ts = wirelag_dissectors::Timestamp::from_secs_nanos(
        epoch_ms.div_euclid(1000),
        u32::try_from(epoch_ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    );
    let us = crate::timefmt::rfc3339_us(ts);
    // `...SS.mmmuuuZ` -> `...SS.mmmZ`
    match us.len().checked_sub(4) {
        Some(cut) => format!("{}Z", &us[..cut]),
        None => us,
    }
}

/// `1h 02m 03s`, `4m 05s`, `7s`.
pub fn human_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// Field 22 of /proc/PID/stat: the start time in clock ticks since boot.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the holder recorded in a state file still runs (same pid, same start time).
pub fn holder_alive(state: &InjectState) -> bool {
    match (process_start(state.holder_pid), state.holder_start) {
        (Some(now), Some(then)) => now == then,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Restoring a previous root

fn fmt_secs_us(seconds: f64) -> String {
    format!("{}us", (seconds * 1e6).round())
}

/// The argv that re-creates `q` as the root, and whether its options are in it.
fn restore_argv(dev: &str, q: &Qdisc) -> (Vec<String>, bool) {
    let mut a = argv_of(&["tc", "qdisc", "add", "dev", dev, "root", "handle"]);
    a.push(q.handle.clone());
    a.push(q.kind.clone());
    let o = &q.options;
    let num = |k: &str| o.get(k).and_then(Value::as_u64);
    let restored = match q.kind.as_str() {
        "netem" => {
            if let Some(l) = num("limit") {
                a.extend(["limit".into(), l.to_string()]);
            }
            if let Some(d) = o.get("delay") {
                let delay = d.get("delay").and_then(Value::as_f64).unwrap_or(0.0);
                a.extend(["delay".into(), fmt_secs_us(delay)]);
                if let Some(j) = d.get("jitter").and_then(Value::as_f64).filter(|j| *j > 0.0) {
                    a.push(fmt_secs_us(j));
                }
            }
            if let Some(l) = o
                .get("loss-random")
                .and_then(|l| l.get("loss"))
                .and_then(Value::as_f64)
            {
                a.extend(["loss".into(), format!("{}%", l * 100.0)]);
            }
            true
        }
        "prio" => {
            if let Some(b) = num("bands") {
                a.extend(["bands".into(), b.to_string()]);
            }
            if let Some(map) = o.get("priomap").and_then(Value::as_array) {
                a.push("priomap".into());
                a.extend(map.iter().map(|v| v.to_string()));
            }
            true
        }
        "pfifo" | "bfifo" => {
            if let Some(l) = num("limit") {
                a.extend(["limit".into(), l.to_string()]);
            }
            true
        }
        "pfifo_fast" | "noqueue" => true,
        _ => false,
    };
    (a, restored)
}

// ---------------------------------------------------------------------------------------------
// Apply

/// How [`apply`] runs.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Replace a root qdisc wirelag did not make (recorded, restored on revert).
    pub force: bool,
    /// Where the state file goes ([`state_dir`] by default).
    pub state_dir: PathBuf,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            force: false,
            state_dir: state_dir(),
        }
    }
}

/// What a revert did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reverted {
    pub dev: String,
    /// wirelag's root that was deleted (`prio 1:`), None when it was already gone.
    pub removed: Option<String>,
    /// The previous root that was put back, with a note when its options could not be.
    pub restored: Option<String>,
    /// Said for people: "already gone", "options not restored", ...
    pub notes: Vec<String>,
}

impl Reverted {
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match &self.removed {
            Some(r) => parts.push(format!("removed wirelag's {r} tree from {}", self.dev)),
            None => parts.push(format!("wirelag's tree on {} was already gone", self.dev)),
        }
        if let Some(r) = &self.restored {
            parts.push(format!("restored the previous root {r}"));
        }
        parts.extend(self.notes.iter().cloned());
        parts.join("; ")
    }
}

/// Undoes what `state` records: deletes wirelag's root if it is still the recorded one,
/// restores the previous root, removes the state file at `path`. Used by [`Applied`] and
/// [`clear`]. Errors leave the state file in place, so that `inject clear` can try again.
pub fn revert_recorded(
    state: &InjectState,
    runner: &dyn TcRunner,
    path: &Path,
) -> anyhow::Result<Reverted> {
    let dev = &state.dev;
    let qdiscs = read_qdiscs(runner, dev)?;
    let root = root_of(&qdiscs);
    let mut done = Reverted {
        dev: dev.clone(),
        removed: None,
        restored: None,
        notes: Vec::new(),
    };
    let ours = root.is_some_and(|r| {
        r.kind == state.root.kind
            && state.root.handle.as_ref().is_none_or(|h| *h == r.handle)
            && !r.is_kernel_default()
    });
    let previous_in_place = match (&state.previous_root, root) {
        (Some(p), Some(r)) => p.kind == r.kind && p.handle == r.handle,
        _ => false,
    };
    if ours {
        let r = root.map(|r| format!("{} {}", r.kind, r.handle));
        run_checked(runner, &state.revert)
            .with_context(|| format!("removing wirelag's tree from {dev}"))?;
        done.removed = r;
    } else if previous_in_place {
        done.notes.push(format!(
            "the previous root is still in place: wirelag's tree was never installed on {dev}"
        ));
        remove_state(path)?;
        return Ok(done);
    } else if let Some(r) = root.filter(|r| !r.is_kernel_default()) {
        bail!(
            "the root qdisc of {dev} is now {} {}, not the {} wirelag installed; left it and the \
             state file {} alone (remove the state file by hand once the interface is as you want it)",
            r.kind,
            r.handle,
            state.root.kind,
            path.display()
        );
    }
    if let Some(prev) = &state.previous_root {
        run_checked(runner, &prev.restore).with_context(|| {
            format!(
                "restoring the previous root {} {} on {dev}",
                prev.kind, prev.handle
            )
        })?;
        let now = read_qdiscs(runner, dev)?;
        match root_of(&now) {
            Some(r) if r.kind == prev.kind && r.handle == prev.handle => {}
            other => bail!(
                "restored {} {} on {dev}, but the root is now {}",
                prev.kind,
                prev.handle,
                other.map_or("missing".into(), Qdisc::describe)
            ),
        }
        done.restored = Some(format!("{} {}", prev.kind, prev.handle));
        if !prev.options_restored {
            done.notes.push(format!(
                "{}'s options were not restored (kernel defaults)",
                prev.kind
            ));
        }
        if prev.children_lost > 0 || prev.filters_lost > 0 {
            done.notes.push(format!(
                "its {} child qdiscs and {} filters were not restored",
                prev.children_lost, prev.filters_lost
            ));
        }
    }
    remove_state(path)?;
    Ok(done)
}

/// Rules wirelag has applied; reverts them when dropped.
///
/// Keep it alive for as long as the delay should be in place. [`Applied::revert`] reverts and
/// reports; dropping reverts and prints a failure to stderr (it cannot return it); a panic
/// unwinds into the drop. Both do nothing if the state file is gone (`inject clear` ran) or
/// belongs to another run.
pub struct Applied<'r> {
    runner: &'r dyn TcRunner,
    state: InjectState,
    path: PathBuf,
    verification: Verification,
    deadline: Option<Instant>,
    notes: Vec<String>,
    done: bool,
}

/// Why [`Applied::hold`] stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum HoldEnd {
    /// Ctrl-C, SIGTERM or SIGHUP (or [`StopFlag::request`]): reverted.
    Stopped(Reverted),
    /// The `--duration` deadline: reverted.
    Deadline(Reverted),
    /// The state file went away (`inject clear`): not reverted again.
    ClearedElsewhere,
}

impl std::fmt::Debug for Applied<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Applied")
            .field("state", &self.state)
            .field("path", &self.path)
            .field("done", &self.done)
            .finish()
    }
}

impl Applied<'_> {
    pub fn state(&self) -> &InjectState {
        &self.state
    }

    pub fn state_path(&self) -> &Path {
        &self.path
    }

    pub fn verification(&self) -> &Verification {
        &self.verification
    }

    /// Things the caller should tell people (what `--force` will not restore).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The `--duration` deadline, if any (monotonic clock).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the state file still records this run (false after `inject clear`). An
    /// unreadable file counts as ours: holding on and reverting is the safe side.
    pub fn still_recorded(&self) -> bool {
        match load_state(&self.path) {
            Ok(Some(s)) => s.same_claim(&self.state),
            Ok(None) => false,
            Err(_) => true,
        }
    }

    fn revert_inner(&mut self) -> anyhow::Result<Option<Reverted>> {
        self.done = true;
        match load_state(&self.path) {
            Ok(Some(s)) if s.same_claim(&self.state) => {}
            Ok(_) => return Ok(None),
            // Unreadable: we still know what we applied.
            Err(_) => {}
        }
        revert_recorded(&self.state, self.runner, &self.path).map(Some)
    }

    /// Reverts now. `Ok(None)`: someone else already cleared it.
    pub fn revert(mut self) -> anyhow::Result<Option<Reverted>> {
        self.revert_inner()
    }

    /// Waits for `stop`, the deadline or the state file's removal, then reverts (not in the
    /// last case). Checks the state file about once a second.
    pub fn hold(self, stop: &StopFlag) -> anyhow::Result<HoldEnd> {
        let deadline = self.deadline;
        self.hold_until(stop, deadline)
    }

    /// [`Applied::hold`] with an explicit deadline (tests pass one in the past).
    pub fn hold_until(
        mut self,
        stop: &StopFlag,
        deadline: Option<Instant>,
    ) -> anyhow::Result<HoldEnd> {
        loop {
            let step = Instant::now() + Duration::from_secs(1);
            let wake = deadline.map_or(step, |d| d.min(step));
            if stop.wait_until(Some(wake)) {
                return Ok(match self.revert_inner()? {
                    Some(r) => HoldEnd::Stopped(r),
                    None => HoldEnd::ClearedElsewhere,
                });
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(match self.revert_inner()? {
                    Some(r) => HoldEnd::Deadline(r),
                    None => HoldEnd::ClearedElsewhere,
                });
            }
            if !self.still_recorded() {
                self.done = true;
                return Ok(HoldEnd::ClearedElsewhere);
            }
        }
    }
}

impl Drop for Applied<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Err(e) = self.revert_inner() {
            eprintln!(
                "wirelag: reverting on {} failed: {e:#}; `wirelag inject clear --dev {}` retries",
                self.state.dev, self.state.dev
            );
        }
    }
}

/// Pre-flight, the foreign-root check, the state file, the commands, verification: see the
/// module docs. On success the rules are in place until the returned guard reverts them.
pub fn apply<'r>(
    spec: &DelaySpec,
    opts: &ApplyOptions,
    host: &dyn Host,
    runner: &'r dyn TcRunner,
) -> anyhow::Result<Applied<'r>> {
    let commands = tc::build(spec).map_err(|e| crate::UsageError(format!("inject delay: {e}")))?;
    super::preflight(&spec.dev, &commands, host)?;
    let dev = spec.dev.as_str();
    let path = state_path(&opts.state_dir, dev);
    if let Some(s) = load_state(&path)? {
        let who = if holder_alive(&s) {
            format!("held by pid {}", s.holder_pid)
        } else {
            format!("pid {} is gone", s.holder_pid)
        };
        bail!(
            "wirelag already has rules on {dev} ({who}; state file {}); `wirelag inject status \
             --dev {dev}` shows them, `wirelag inject clear --dev {dev}` removes them{}",
            path.display(),
            if opts.force {
                " (--force never replaces wirelag's own rules)"
            } else {
                ""
            }
        );
    }

    let qdiscs = read_qdiscs(runner, dev)?;
    let foreign = foreign_qdiscs(&qdiscs);
    let mut notes = Vec::new();
    let mut previous_root = None;
    if let Some(first) = foreign.first() {
        if !opts.force {
            bail!(
                "{dev} already has a qdisc wirelag did not make: {}{}; wirelag will not replace \
                 it. Remove it yourself, or pass --force to replace it (the root is recorded and \
                 restored on revert/clear; child qdiscs, classes and filters are not)",
                first.describe(),
                if foreign.len() > 1 {
                    format!(" (and {} more)", foreign.len() - 1)
                } else {
                    String::new()
                }
            );
        }
        let filters = read_filters(runner, dev)?;
        match root_of(&qdiscs).filter(|r| !r.is_kernel_default()) {
            Some(r) => {
                let (restore, options_restored) = restore_argv(dev, r);
                let children = qdiscs
                    .iter()
                    .filter(|q| !q.root && !q.is_ingress())
                    .count();
                let prev = PreviousRoot {
                    kind: r.kind.clone(),
                    handle: r.handle.clone(),
                    options: r.options.clone(),
                    restore,
                    options_restored,
                    children_lost: children,
                    filters_lost: filters.len(),
                };
                notes.push(format!(
                    "--force: replacing the root {} {} of {dev}; on revert it comes back as `{}`{}{}",
                    r.kind,
                    r.handle,
                    tc::render_argv(&prev.restore),
                    if options_restored {
                        ""
                    } else {
                        " (its options are not restored: kernel defaults)"
                    },
                    if children > 0 || !filters.is_empty() {
                        format!(
                            "; its {children} child qdiscs and {} filters are NOT restored",
                            filters.len()
                        )
                    } else {
                        String::new()
                    }
                ));
                previous_root = Some(prev);
            }
            None => notes.push(format!(
                "--force: the kernel's default root of {dev} has qdiscs someone made below it ({}); \
                 they are replaced and NOT restored (the kernel's defaults come back on revert)",
                foreign
                    .iter()
                    .map(|q| q.describe())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    let now = SystemTime::now();
    let applied_ms = epoch_ms(now);
    let deadline_ms = spec
        .duration_s
        .map(|s| applied_ms.saturating_add(i64::from(s) * 1000));
    let pid = std::process::id();
    let root = match commands.first() {
        Some(TcCommand::AddRootPrio { .. }) => RootRecord {
            kind: "prio".into(),
            handle: Some("1:".into()),
        },
        _ => RootRecord {
            kind: "netem".into(),
            handle: None,
        },
    };
    let mut state = InjectState {
        schema: STATE_SCHEMA.into(),
        dev: dev.to_string(),
        backend: "tc".into(),
        phase: Phase::Applying,
        spec: SpecRecord::from_spec(spec),
        commands: commands.iter().map(TcCommand::argv).collect(),
        revert: tc::revert(dev).argv(),
        root,
        previous_root,
        holder_pid: pid,
        holder_start: process_start(pid),
        applied_at: rfc3339_ms(applied_ms),
        applied_at_epoch_ms: applied_ms,
        claim: new_claim(),
        deadline: deadline_ms.map(rfc3339_ms),
        deadline_epoch_ms: deadline_ms,
    };
    claim_state(&path, &state)?;
    let started = Instant::now();

    // From here on every failure rolls back through the guard.
    let mut guard = Applied {
        runner,
        state: state.clone(),
        path: path.clone(),
        verification: Verification {
            ok: false,
            checks: Vec::new(),
        },
        deadline: spec
            .duration_s
            .map(|s| started + Duration::from_secs(u64::from(s))),
        notes,
        done: false,
    };
    let rollback = |guard: Applied<'r>, what: anyhow::Error| -> anyhow::Error {
        let dev = guard.state.dev.clone();
        match guard.revert() {
            Ok(_) => what.context(format!("rolled back: {dev} is as it was before")),
            Err(e) => what.context(format!(
                "rolling back failed too ({e:#}); `wirelag inject clear --dev {dev}` retries"
            )),
        }
    };

    if state.previous_root.is_some() {
        if let Err(e) = run_checked(runner, &state.revert) {
            return Err(rollback(
                guard,
                e.context(format!("removing the root of {dev}")),
            ));
        }
    }
    for (i, cmd) in commands.iter().enumerate() {
        if let Err(e) = run_checked(runner, &cmd.argv()) {
            let hint = if e.to_string().contains("qdisc kind is unknown") {
                "; this kernel lacks a qdisc the tree needs: use the userspace proxy instead \
                 (--backend proxy)"
            } else {
                ""
            };
            return Err(rollback(
                guard,
                anyhow!("applying the rules on {dev}: {e:#}{hint}"),
            ));
        }
        if i == 0 && state.root.handle.is_none() {
            let handle = read_qdiscs(runner, dev)
                .ok()
                .and_then(|q| root_of(&q).map(|r| r.handle.clone()));
            state.root.handle = handle;
            guard.state = state.clone();
            if let Err(e) = update_state(&path, &state) {
                return Err(rollback(guard, e));
            }
        }
    }

    let verification = match read_qdiscs(runner, dev)
        .and_then(|q| read_filters(runner, dev).map(|f| verify(&commands, &q, &f)))
    {
        Ok(v) => v,
        Err(e) => return Err(rollback(guard, e.context("verifying the rules"))),
    };
    if !verification.ok {
        let msg = anyhow!(
            "verification failed on {dev}: the kernel does not show what wirelag applied: {}",
            verification.mismatches()
        );
        return Err(rollback(guard, msg));
    }
    guard.verification = verification;
    state.phase = Phase::Applied;
    guard.state = state.clone();
    if let Err(e) = update_state(&path, &state) {
        return Err(rollback(guard, e));
    }
    Ok(guard)
}

// ---------------------------------------------------------------------------------------------
// Status

/// What `inject status` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub schema: &'static str,
    pub dev: String,
    pub state_file: String,
    /// wirelag's record, when there is one.
    pub state: Option<InjectState>,
    pub holder_alive: Option<bool>,
    pub age_s: Option<u64>,
    /// Seconds to the deadline (negative: past it, the holder should have reverted).
    pub remaining_s: Option<i64>,
    /// The kernel compared with the record.
    pub verification: Option<Verification>,
    /// The live qdiscs (None when tc could not be read).
    pub qdiscs: Option<Vec<Qdisc>>,
    /// Egress qdiscs with a handle other than 0: that wirelag's record does not account for.
    pub foreign: Vec<String>,
    /// Why the kernel could not be read or the record not checked.
    pub errors: Vec<String>,
}

/// Reads the state file and the kernel; never changes anything.
pub fn status(
    dev: &str,
    host: &dyn Host,
    runner: Option<&dyn TcRunner>,
    state_dir: &Path,
) -> anyhow::Result<Status> {
    let path = state_path(state_dir, dev);
    let state = load_state(&path)?;
    if state.is_none() {
        super::check_interface(dev, host)?;
    }
    let now_ms = epoch_ms(SystemTime::now());
    let mut st = Status {
        schema: STATUS_SCHEMA,
        dev: dev.to_string(),
        state_file: path.display().to_string(),
        holder_alive: state.as_ref().map(holder_alive),
        age_s: state
            .as_ref()
            .map(|s| u64::try_from((now_ms - s.applied_at_epoch_ms) / 1000).unwrap_or(0)),
        remaining_s: state
            .as_ref()
            .and_then(|s| s.deadline_epoch_ms)
            .map(|d| (d - now_ms).div_euclid(1000)),
        state,
        verification: None,
        qdiscs: None,
        foreign: Vec::new(),
        errors: Vec::new(),
    };
    let Some(runner) = runner else {
        st.errors.push(tc_missing().to_string());
        return Ok(st);
    };
    let qdiscs = match read_qdiscs(runner, dev) {
        Ok(q) => q,
        Err(e) => {
            st.errors.push(format!("{e:#}"));
            return Ok(st);
        }
    };
    if let Some(s) = &st.state {
        match s.typed_commands() {
            Ok(cmds) => match read_filters(runner, dev) {
                Ok(f) => st.verification = Some(verify(&cmds, &qdiscs, &f)),
                Err(e) => st.errors.push(format!("{e:#}")),
            },
            Err(e) => st.errors.push(format!("cannot check the record: {e:#}")),
        }
    } else {
        st.foreign = foreign_qdiscs(&qdiscs)
            .iter()
            .map(|q| q.describe())
            .collect();
    }
    st.qdiscs = Some(qdiscs);
    Ok(st)
}

/// The readable `inject status` report.
pub fn render_status(st: &Status) -> String {
    let mut o = String::new();
    let dev = &st.dev;
    let Some(s) = &st.state else {
        o.push_str(&format!(
            "nothing of wirelag's on {dev} (no state file {})\n",
            st.state_file
        ));
        if let Some(q) = &st.qdiscs {
            match root_of(q) {
                Some(r) if r.is_kernel_default() => {
                    o.push_str(&format!("root qdisc: {} (the kernel's default)\n", r.kind))
                }
                Some(r) => o.push_str(&format!("root qdisc: {} {}\n", r.kind, r.handle)),
                None => o.push_str("root qdisc: none\n"),
            }
        }
        if !st.foreign.is_empty() {
            o.push_str(&format!(
                "not wirelag's: {} (made by someone else; `inject delay` refuses to replace it \
                 without --force)\n",
                st.foreign.join(", ")
            ));
        }
        for e in &st.errors {
            o.push_str(&format!("cannot read the kernel: {e}\n"));
        }
        return o;
    };
    o.push_str(&format!(
        "wirelag {} on {dev} ({}; state file {})\n",
        match s.phase {
            Phase::Applied => "delay applied",
            Phase::Applying => "delay being applied (or the holder died while applying)",
        },
        s.backend,
        st.state_file
    ));
    o.push_str(&format!("  {}\n", s.spec.describe()));
    o.push_str(&format!(
        "  applied {} ({} ago)\n",
        s.applied_at,
        human_duration(st.age_s.unwrap_or(0))
    ));
    match (&s.deadline, st.remaining_s) {
        (Some(d), Some(r)) if r >= 0 => o.push_str(&format!(
            "  reverts at {d} (in {})\n",
            human_duration(r.unsigned_abs())
        )),
        (Some(d), Some(r)) => o.push_str(&format!(
            "  deadline {d} passed {} ago\n",
            human_duration(r.unsigned_abs())
        )),
        _ => o.push_str("  no deadline: until the holder stops or `inject clear`\n"),
    }
    if st.holder_alive == Some(true) {
        o.push_str(&format!("  held by pid {} (running)\n", s.holder_pid));
    } else {
        o.push_str(&format!(
            "  holder pid {} is not running: nothing will revert this; `wirelag inject clear \
             --dev {dev}` does\n",
            s.holder_pid
        ));
    }
    if let Some(p) = &s.previous_root {
        o.push_str(&format!(
            "  replaced root {} {} (--force); clear restores it with `{}`\n",
            p.kind,
            p.handle,
            tc::render_argv(&p.restore)
        ));
    }
    o.push_str("  rules:\n");
    for c in &s.commands {
        o.push_str(&format!("    {}\n", tc::render_argv(c)));
    }
    match &st.verification {
        Some(v) if v.ok => o.push_str(&format!("  kernel: matches the record ({})\n", v.summary())),
        Some(v) => o.push_str(&format!(
            "  kernel: DIFFERS from the record: {}\n",
            v.mismatches()
        )),
        None => {}
    }
    for e in &st.errors {
        o.push_str(&format!("  cannot check the kernel: {e}\n"));
    }
    o
}

// ---------------------------------------------------------------------------------------------
// Clear

/// What `inject clear` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Cleared {
    /// No state file: nothing was touched.
    Nothing,
    /// The interface no longer exists (its qdiscs went with it); the stale state was removed.
    InterfaceGone,
    Reverted(Reverted),
}

/// Removes wirelag's tree on `dev` as its state file records it (works after a crash), restores
/// the previous root, deletes the state file. Without a state file, touches nothing.
/// `runner` is None when tc is not installed (then only the no-state cases can succeed).
pub fn clear(
    dev: &str,
    host: &dyn Host,
    runner: Option<&dyn TcRunner>,
    state_dir: &Path,
) -> anyhow::Result<Cleared> {
    let path = state_path(state_dir, dev);
    let Some(state) = load_state(&path)? else {
        super::check_interface(dev, host)?;
        return Ok(Cleared::Nothing);
    };
    if !host.interfaces()?.iter().any(|n| n == dev) {
        remove_state(&path)?;
        return Ok(Cleared::InterfaceGone);
    }
    let runner = runner.ok_or_else(tc_missing)?;
    super::check_cap_net_admin(dev, host)?;
    revert_recorded(&state, runner, &path).map(Cleared::Reverted)
}

/// `inject delay` without `--dry-run`: apply, print, hold until stopped, revert.
pub fn run_delay(
    spec: &DelaySpec,
    opts: &ApplyOptions,
    host: &dyn Host,
    runner: &dyn TcRunner,
    stop: &StopFlag,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let applied = apply(spec, opts, host, runner)?;
    let dev = &spec.dev;
    let s = applied.state();
    // Printing may fail (closed terminal); the guard still reverts when dropped.
    writeln!(
        out,
        "wirelag: delaying egress on {dev}: {}",
        s.spec.describe()
    )?;
    for c in &s.commands {
        writeln!(out, "  {}", tc::render_argv(c))?;
    }
    for n in applied.notes() {
        writeln!(out, "{n}")?;
    }
    writeln!(out, "verified: {}", applied.verification().summary())?;
    writeln!(out, "state: {}", applied.state_path().display())?;
    match (&s.deadline, spec.duration_s) {
        (Some(d), Some(secs)) => writeln!(
            out,
            "reverting at {d} (in {}); press Ctrl-C to revert now",
            human_duration(u64::from(secs))
        )?,
        _ => writeln!(out, "press Ctrl-C to revert")?,
    }
    out.flush()?;
    let end = applied.hold(stop)?;
    // The rules are gone (or were cleared elsewhere); a failed write changes nothing now.
    let _ = match end {
        HoldEnd::Stopped(r) => writeln!(out, "stopped: {}", r.describe()),
        HoldEnd::Deadline(r) => writeln!(out, "deadline reached: {}", r.describe()),
        HoldEnd::ClearedElsewhere => writeln!(
            out,
            "the state file was removed (`inject clear`?): not reverting again"
        ),
    };
    let _ = out.flush();
    Ok(())
}

#[cfg(test)]
mod tests;
