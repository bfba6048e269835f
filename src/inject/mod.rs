//! `wirelag inject`: chaosblade-style delay injection, done safely.
//!
//! - [`tc`] builds the rule tree (typed commands, exact argv) and `--dry-run` prints it.
//! - [`apply`] runs it through a [`apply::TcRunner`], verifies it with `tc -j`, records it in a
//!   state file and reverts it (guard on drop, signals, deadline); `status` and `clear` read the
//!   state file. Its module docs list what is checked, verified and restored.
//! - This module: the CLI and the host checks ([`preflight`]) behind the [`Host`] trait, so tests
//!   fake the host (and [`fake::FakeTc`] fakes the kernel).
//!
//! Exit codes: 2 for usage and input errors (bad flags, unknown interface), 1 for everything the
//! system refuses (no CAP_NET_ADMIN, no sch_netem, a foreign qdisc, tc failing).

pub mod apply;
pub mod backend;
pub mod fake;
pub mod proxy;
pub mod tc;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

use crate::UsageError;
use tc::{DelaySpec, Proto};

#[derive(Args, Debug)]
pub struct InjectArgs {
    #[command(subcommand)]
    pub command: InjectCommand,
}

#[derive(Subcommand, Debug)]
// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum InjectCommand {
    /// Delay egress traffic on an interface (chaosblade's `network delay` vocabulary)
    #[command(
        long_about = "Delay egress traffic on an interface with tc netem, using chaosblade's \
`network delay` vocabulary and rule tree.\n\n\
Ports take lists and ranges (80,8080 or 8000-8010); --remote-port matches the destination port \
and --local-port the source port of outgoing packets. Addresses take comma-separated IPv4 or \
IPv6 addresses or CIDR networks. With no target and no exclusion the whole interface is delayed.\n\n\
--dry-run prints the exact tc commands and changes nothing.\n\n\
Otherwise (needs CAP_NET_ADMIN and a kernel with sch_netem, plus sch_prio and cls_u32 for targeted \
rules; without them use --backend proxy) it refuses if the interface has a qdisc wirelag did not \
make (--force replaces the root and restores it afterwards; its children and filters are not \
restored), records the rules in a state file ($WIRELAG_STATE_DIR or /run/wirelag), applies them, \
checks with `tc -j qdisc show` / `tc -j filter show` that the kernel shows exactly the requested \
netem, and stays in the foreground until Ctrl-C, SIGTERM, SIGHUP or the --duration deadline, then \
reverts (only wirelag's tree). Any failure while applying rolls back. `wirelag inject status` shows \
the rules; `wirelag inject clear` removes them, also after a crash."
    )]
    Delay(DelayArgs),
    /// Show wirelag's rules on an interface: flags, rules, age, time left, holder, kernel check
    #[command(
        long_about = "Show wirelag's rules on an interface from its state file \
($WIRELAG_STATE_DIR or /run/wirelag, inject-IFACE.json) and the kernel's live tree: the flags, the tc \
commands, when they were applied, the time left before the automatic revert, whether the process \
holding them still runs, and whether the kernel still shows exactly what was applied. Without a \
state file it says so and shows the interface's root qdisc and any qdisc someone else made. \
Changes nothing."
    )]
    Status(StatusArgs),
    /// Remove wirelag's rules from an interface (also after a crash), restoring what --force replaced
    #[command(
        long_about = "Remove wirelag's rules from an interface, as its state file records them: \
deletes wirelag's root qdisc only if it is still the one wirelag installed (same kind and handle), \
restores the root qdisc that --force replaced, and deletes the state file. Works after the holding \
process crashed or was killed; a running holder notices and exits without reverting again. \
Without a state file it touches nothing. Needs CAP_NET_ADMIN when there is something to remove."
    )]
    Clear(DevArgs),
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Network interface, e.g. eth0
    #[arg(long, visible_alias = "interface", value_name = "IFACE")]
    pub dev: String,
    /// JSON output (schema wirelag.inject-status/v1)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DevArgs {
    /// Network interface, e.g. eth0
    #[arg(long, visible_alias = "interface", value_name = "IFACE")]
    pub dev: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// Kernel netem through tc
    Tc,
    /// Userspace delaying TCP proxy (--listen, --upstream): no privileges, no netem needed
    Proxy,
}

#[derive(Args, Debug)]
pub struct DelayArgs {
    /// Network interface, e.g. eth0 (with --backend proxy: where `experiment` captures; lo by
    /// default)
    #[arg(long, visible_alias = "interface", value_name = "IFACE")]
    pub dev: Option<String>,
    /// Delay in milliseconds
    #[arg(long, value_name = "MS")]
    pub time: u32,
    /// Jitter in milliseconds (netem's second delay argument); none by default, like
    /// current chaosblade (`--offset 0`; older chaosblade releases defaulted to 10)
    #[arg(long, value_name = "MS")]
    pub offset: Option<u32>,
    /// Destination ports of outgoing packets: 3306, 80,8080 or 8000-8010 (repeatable)
    #[arg(long, value_name = "P")]
    pub remote_port: Vec<String>,
    /// Source ports of outgoing packets, usually the ports this host serves (repeatable)
    #[arg(long, value_name = "P")]
    pub local_port: Vec<String>,
    /// Destination addresses or networks, IPv4 or IPv6, comma-separated (repeatable)
    #[arg(long, value_name = "CIDR")]
    pub destination_ip: Vec<String>,
    /// Ports never delayed, as source or destination (repeatable)
    #[arg(long, value_name = "P")]
    pub exclude_port: Vec<String>,
    /// Addresses or networks never delayed, as source or destination (repeatable)
    #[arg(long, value_name = "CIDR")]
    pub exclude_ip: Vec<String>,
    /// Only delay this transport protocol
    #[arg(long, value_enum)]
    pub protocol: Option<Proto>,
    /// Also drop this percentage of the matched packets (netem loss)
    #[arg(long, value_name = "PCT")]
    pub loss: Option<f32>,
    /// netem queue limit in packets
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// Revert automatically after this many seconds
    #[arg(long, value_name = "S")]
    pub duration: Option<u32>,
    /// Print the tc commands instead of running them
    #[arg(long)]
    pub dry_run: bool,
    /// Replace a root qdisc wirelag did not make; it is recorded and restored on revert/clear
    /// (its child qdiscs, classes and filters are not)
    #[arg(long)]
    pub force: bool,
    /// How to delay: kernel netem (tc) or a userspace proxy
    #[arg(long, value_enum, default_value_t = Backend::Tc)]
    pub backend: Backend,
    /// Proxy backend: the address clients connect to, e.g. 127.0.0.1:13306
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Proxy backend: the server the proxy forwards to, e.g. 127.0.0.1:3306
    #[arg(long, value_name = "ADDR:PORT")]
    pub upstream: Option<String>,
    /// Proxy backend: which direction's data is delayed
    #[arg(long, value_enum, default_value_t = backend::ProxyDirection::Both)]
    pub direction: backend::ProxyDirection,
}

impl DelayArgs {
    /// The interface: required for tc; the proxy's capture interface defaults to lo.
    pub fn dev(&self) -> Result<&str, UsageError> {
        match (&self.dev, self.backend) {
            (Some(d), _) => Ok(d),
            (None, Backend::Proxy) => Ok("lo"),
            (None, Backend::Tc) => Err(UsageError(
                "inject delay: --dev IFACE is required (the interface whose egress is delayed)"
                    .into(),
            )),
        }
    }

    /// The typed spec, or a usage error naming the bad flag.
    pub fn spec(&self) -> Result<DelaySpec, UsageError> {
        let usage = |e: tc::SpecError| UsageError(format!("inject delay: {e}"));
        let ports =
            |flag: &'static str, lists: &[String]| -> Result<Vec<tc::PortRange>, UsageError> {
                let mut all = Vec::new();
                for text in lists {
                    for r in tc::parse_ports(flag, text).map_err(usage)? {
                        if !all.contains(&r) {
                            all.push(r);
                        }
                    }
                }
                Ok(all)
            };
        let ips = |flag: &'static str, lists: &[String]| -> Result<Vec<tc::IpNet>, UsageError> {
            let mut all = Vec::new();
            for text in lists {
                for n in tc::parse_ips(flag, text).map_err(usage)? {
                    if !all.contains(&n) {
                        all.push(n);
                    }
                }
            }
            Ok(all)
        };
        let spec = DelaySpec {
            dev: self.dev()?.to_string(),
            time_ms: self.time,
            offset_ms: self.offset,
            remote_ports: ports("--remote-port", &self.remote_port)?,
            local_ports: ports("--local-port", &self.local_port)?,
            destination_ips: ips("--destination-ip", &self.destination_ip)?,
            exclude_ports: ports("--exclude-port", &self.exclude_port)?,
            exclude_ips: ips("--exclude-ip", &self.exclude_ip)?,
            protocol: self.protocol,
            loss_pct: self.loss,
            limit: self.limit,
            duration_s: self.duration,
        };
        spec.validate().map_err(usage)?;
        Ok(spec)
    }
}

pub fn run(args: InjectArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    match args.command {
        InjectCommand::Delay(a) => delay(&a, &SysHost, out),
        InjectCommand::Status(a) => status(&a, &SysHost, out),
        InjectCommand::Clear(d) => clear(&d, &SysHost, out),
    }
}

fn sys_runner(host: &dyn Host) -> Option<apply::SysTc> {
    host.find_tc().map(|program| apply::SysTc { program })
}

fn status(args: &StatusArgs, host: &dyn Host, out: &mut dyn Write) -> anyhow::Result<()> {
    tc::validate_dev(&args.dev).map_err(|e| UsageError(format!("inject status: {e}")))?;
    let runner = sys_runner(host);
    let st = apply::status(
        &args.dev,
        host,
        runner.as_ref().map(|r| r as &dyn apply::TcRunner),
        &apply::state_dir(),
    )?;
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &st)?;
        writeln!(out)?;
    } else {
        out.write_all(apply::render_status(&st).as_bytes())?;
    }
    Ok(())
}

fn clear(args: &DevArgs, host: &dyn Host, out: &mut dyn Write) -> anyhow::Result<()> {
    tc::validate_dev(&args.dev).map_err(|e| UsageError(format!("inject clear: {e}")))?;
    let runner = sys_runner(host);
    let dev = &args.dev;
    match apply::clear(
        dev,
        host,
        runner.as_ref().map(|r| r as &dyn apply::TcRunner),
        &apply::state_dir(),
    )? {
        apply::Cleared::Nothing => writeln!(
            out,
            "nothing of wirelag's on {dev} (no state file in {}); nothing changed",
            apply::state_dir().display()
        )?,
        apply::Cleared::InterfaceGone => writeln!(
            out,
            "{dev} no longer exists (its qdiscs went with it); removed wirelag's stale state file"
        )?,
        apply::Cleared::Reverted(r) => writeln!(out, "{}", r.describe())?,
    }
    Ok(())
}

fn delay(args: &DelayArgs, host: &dyn Host, out: &mut dyn Write) -> anyhow::Result<()> {
    let spec = args.spec()?;
    if args.backend == Backend::Proxy {
        return backend::run_proxy(args, out);
    }
    let commands = tc::build(&spec).map_err(|e| UsageError(format!("inject delay: {e}")))?;
    if args.dry_run {
        out.write_all(tc::render(&commands).as_bytes())?;
        let revert = tc::render(&[tc::revert(&spec.dev)]);
        match spec.duration_s {
            Some(s) => write!(out, "# revert after {s} s: {revert}")?,
            None => write!(out, "# revert: {revert}")?,
        }
        return Ok(());
    }
    // Signals become a flag before anything changes, so that Ctrl-C while applying still
    // reverts instead of killing wirelag half-way.
    let stop = crate::signals::StopFlag::from_signals().context("installing signal handlers")?;
    let opts = apply::ApplyOptions {
        force: args.force,
        ..apply::ApplyOptions::default()
    };
    // The host checks run before tc is needed, so a missing tc is reported by them.
    check_interface(&spec.dev, host)?;
    let runner = apply::SysTc::find(host)?;
    apply::run_delay(&spec, &opts, host, &runner, &stop, out)
}

/// What the pre-flight checks need from the OS, behind a trait so tests can fake a host.
pub trait Host {
    /// Names of the network interfaces.
    fn interfaces(&self) -> anyhow::Result<Vec<String>>;
    /// Where `tc` is, if it is on PATH.
    fn find_tc(&self) -> Option<PathBuf>;
    /// Whether the running kernel can provide `module` (`sch_netem`, `sch_prio`, `cls_u32`):
    /// loaded, loadable or built in.
    fn has_module(&self, module: &str) -> anyhow::Result<bool>;
    /// Whether this process has CAP_NET_ADMIN in its effective set.
    fn has_cap_net_admin(&self) -> anyhow::Result<bool>;
    /// Whether the running kernel can provide sch_netem.
    fn has_netem(&self) -> anyhow::Result<bool> {
        self.has_module("sch_netem")
    }
}

/// A usage error naming the interfaces there are, unless `dev` is one.
pub fn check_interface(dev: &str, host: &dyn Host) -> anyhow::Result<()> {
    let mut names = host.interfaces()?;
    if !names.iter().any(|n| n == dev) {
        names.sort();
        return Err(UsageError(format!(
            "no interface named {dev} (available: {})",
            names.join(", ")
        ))
        .into());
    }
    Ok(())
}

/// An error naming CAP_NET_ADMIN unless this process has it.
pub fn check_cap_net_admin(dev: &str, host: &dyn Host) -> anyhow::Result<()> {
    if !host.has_cap_net_admin()? {
        anyhow::bail!(
            "changing qdiscs on {dev} needs CAP_NET_ADMIN, which this process lacks: run as root \
             (sudo); a file capability (setcap) on wirelag is not enough, since the tc that \
             wirelag runs does not inherit it; the userspace proxy needs no capability: \
             --backend proxy"
        );
    }
    Ok(())
}

/// The kernel modules `commands` need, each with what needs it.
fn modules_needed(commands: &[tc::TcCommand]) -> Vec<(&'static str, &'static str)> {
    let mut need = Vec::new();
    let mut add = |m: &'static str, why: &'static str| {
        if !need.iter().any(|(n, _)| *n == m) {
            need.push((m, why));
        }
    };
    for c in commands {
        match c {
            tc::TcCommand::AddRootNetem { .. } | tc::TcCommand::AddBandNetem { .. } => {
                add("sch_netem", "to delay packets with tc")
            }
            tc::TcCommand::AddRootPrio { .. } | tc::TcCommand::AddBandPrio { .. } => add(
                "sch_prio",
                "to delay only the targeted traffic (ports, addresses, protocol)",
            ),
            tc::TcCommand::AddU32Filter { .. } => {
                add("cls_u32", "to pick the targeted traffic (u32 filters)")
            }
            tc::TcCommand::DelRoot { .. } => {}
        }
    }
    // netem first: it is the one every tree needs.
    need.sort_by_key(|(m, _)| *m != "sch_netem");
    need
}

/// Checks, in order, that `dev` exists, `tc` is installed, the kernel has every module
/// `commands` need (naming `--backend proxy` when one is missing) and this process has
/// CAP_NET_ADMIN. The kernel comes before the capability: without netem, no capability helps.
pub fn preflight(dev: &str, commands: &[tc::TcCommand], host: &dyn Host) -> anyhow::Result<()> {
    check_interface(dev, host)?;
    if host.find_tc().is_none() {
        anyhow::bail!("tc not found: apt-get install iproute2");
    }
    for (module, why) in modules_needed(commands) {
        if !host.has_module(module)? {
            anyhow::bail!(
                "this kernel has no {module} (not loaded, no module to load, not built in), \
                 needed {why}; use the userspace proxy instead: --backend proxy"
            );
        }
    }
    check_cap_net_admin(dev, host)
}

/// CapEff from /proc/self/status: bit 12 is CAP_NET_ADMIN.
pub fn cap_net_admin_in(proc_status: &str) -> Option<bool> {
    let hex = proc_status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    let bits = u64::from_str_radix(hex, 16).ok()?;
    Some(bits & (1 << 12) != 0)
}

/// The real host: /sys, PATH and /lib/modules.
pub struct SysHost;

impl Host for SysHost {
    fn interfaces(&self) -> anyhow::Result<Vec<String>> {
        let dir = Path::new("/sys/class/net");
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }

    fn find_tc(&self) -> Option<PathBuf> {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|d| d.join("tc"))
            .find(|p| p.is_file())
    }

    fn has_cap_net_admin(&self) -> anyhow::Result<bool> {
        let path = Path::new("/proc/self/status");
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        cap_net_admin_in(&text)
            .with_context(|| format!("no readable CapEff line in {}", path.display()))
    }

    fn has_module(&self, module: &str) -> anyhow::Result<bool> {
        if Path::new("/sys/module").join(module).exists() {
            return Ok(true);
        }
        let ko = format!("/{module}.ko");
        let release_file = Path::new("/proc/sys/kernel/osrelease");
        let release = std::fs::read_to_string(release_file)
            .with_context(|| format!("reading {}", release_file.display()))?;
        let modules = Path::new("/lib/modules").join(release.trim());
        // Built in (a built-in module without parameters may be absent from /sys/module).
        if let Ok(builtin) = std::fs::read_to_string(modules.join("modules.builtin")) {
            if builtin.lines().any(|l| l.ends_with(&ko)) {
                return Ok(true);
            }
        }
        // Loadable: modprobe would find it through modules.dep.
        if let Ok(dep) = std::fs::read_to_string(modules.join("modules.dep")) {
            if dep
                .lines()
                .any(|l| l.split(':').next().is_some_and(|m| m.contains(&ko)))
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The tc backend for `experiment`: applies and verifies the rules (the guard reverts on drop,
/// so a panic or an early return still reverts).
pub(crate) fn tc_injection(
    args: &DelayArgs,
    spec: &tc::DelaySpec,
    _stop: &crate::signals::StopFlag,
) -> anyhow::Result<Box<dyn backend::Injection>> {
    check_interface(&spec.dev, &SysHost)?;
    // The guard borrows its runner for as long as the rules are in force; one small runner per
    // experiment lives for the rest of the process.
    let runner: &'static apply::SysTc = Box::leak(Box::new(apply::SysTc::find(&SysHost)?));
    let opts = apply::ApplyOptions {
        force: args.force,
        ..apply::ApplyOptions::default()
    };
    let applied = apply::apply(spec, &opts, &SysHost, runner)?;
    Ok(Box::new(TcInjection { applied }))
}

struct TcInjection {
    applied: apply::Applied<'static>,
}

impl backend::Injection for TcInjection {
    fn describe(&self) -> String {
        let v = self.applied.verification();
        format!(
            "tc rules applied on {} and verified ({} of {} checks passed; state file {})",
            self.applied.state().dev,
            v.checks.iter().filter(|c| c.ok).count(),
            v.checks.len(),
            self.applied.state_path().display()
        )
    }

    fn verification(&self) -> serde_json::Value {
        let mut v =
            serde_json::to_value(self.applied.verification()).unwrap_or(serde_json::Value::Null);
        if let Some(o) = v.as_object_mut() {
            o.insert("backend".into(), "tc".into());
            o.insert(
                "commands".into(),
                serde_json::to_value(&self.applied.state().commands)
                    .unwrap_or(serde_json::Value::Null),
            );
        }
        v
    }

    fn revert(self: Box<Self>) -> anyhow::Result<String> {
        Ok(match self.applied.revert()? {
            Some(r) => r.describe(),
            None => "the rules were already removed (wirelag inject clear)".to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeHost;
    use super::*;

    fn host(tc: bool, netem: bool) -> FakeHost {
        let mut h = FakeHost::capable(&["lo", "eth0"]);
        h.tc = tc;
        if !netem {
            h = h.without_module("sch_netem");
        }
        h
    }

    fn root_netem(dev: &str) -> Vec<tc::TcCommand> {
        tc::build(&DelaySpec::new(dev, 100)).unwrap()
    }

    fn targeted(dev: &str) -> Vec<tc::TcCommand> {
        let mut s = DelaySpec::new(dev, 100);
        s.remote_ports = tc::parse_ports("--remote-port", "3306").unwrap();
        tc::build(&s).unwrap()
    }

    #[test]
    fn preflight_names_each_missing_piece() {
        let e = preflight("eth9", &root_netem("eth9"), &host(true, true))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "no interface named eth9 (available: eth0, lo)");
        let e = preflight("lo", &root_netem("lo"), &host(false, true))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "tc not found: apt-get install iproute2");
        let e = preflight("lo", &root_netem("lo"), &host(true, false))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no sch_netem") && e.contains("--backend proxy"),
            "{e}"
        );
        assert!(preflight("lo", &root_netem("lo"), &host(true, true)).is_ok());
    }

    #[test]
    fn prio_and_u32_are_needed_only_by_a_targeted_tree() {
        let no_prio = host(true, true).without_module("sch_prio");
        assert!(preflight("lo", &root_netem("lo"), &no_prio).is_ok());
        let e = preflight("lo", &targeted("lo"), &no_prio)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no sch_prio") && e.contains("--backend proxy"),
            "{e}"
        );
        let no_u32 = host(true, true).without_module("cls_u32");
        let e = preflight("lo", &targeted("lo"), &no_u32)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no cls_u32") && e.contains("--backend proxy"),
            "{e}"
        );
        // Without netem either, netem is the one named.
        let neither = no_prio.without_module("sch_netem");
        let e = preflight("lo", &targeted("lo"), &neither)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no sch_netem"), "{e}");
    }

    #[test]
    fn missing_cap_net_admin_is_named() {
        let mut h = host(true, true);
        h.cap_net_admin = false;
        let e = preflight("lo", &root_netem("lo"), &h)
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs CAP_NET_ADMIN"), "{e}");
        assert!(e.contains("--backend proxy"), "{e}");
    }

    #[test]
    fn cap_eff_bit_12_is_cap_net_admin() {
        let root = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\n";
        assert_eq!(cap_net_admin_in(root), Some(true));
        let user = "CapEff:\t0000000000000000\n";
        assert_eq!(cap_net_admin_in(user), Some(false));
        let only_net_admin = "CapEff:\t0000000000001000\n";
        assert_eq!(cap_net_admin_in(only_net_admin), Some(true));
        let net_raw_only = "CapEff:\t0000000000002000\n";
        assert_eq!(cap_net_admin_in(net_raw_only), Some(false));
        assert_eq!(cap_net_admin_in("CapPrm:\t0\n"), None);
    }
}
