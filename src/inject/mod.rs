//! `wirelag inject`: chaosblade-style delay injection, done safely.
//!
//! This session builds the rule tree ([`tc`]) and `--dry-run`, and the pre-flight checks that
//! can run anywhere (interface, `tc`, `sch_netem`). Applying, `status` and `clear` are not built
//! yet and say so instead of pretending.

pub mod apply;
pub mod backend;
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
pub enum InjectCommand {
    /// Delay egress traffic on an interface (chaosblade's `network delay` vocabulary)
    #[command(
        long_about = "Delay egress traffic on an interface with tc netem, using chaosblade's \
`network delay` vocabulary and rule tree.\n\n\
Ports take lists and ranges (80,8080 or 8000-8010); --remote-port matches the destination port \
and --local-port the source port of outgoing packets. Addresses take comma-separated IPv4 or \
IPv6 addresses or CIDR networks. With no target and no exclusion the whole interface is delayed.\n\n\
--dry-run prints the exact tc commands and changes nothing."
    )]
    Delay(DelayArgs),
    /// Show wirelag's rules on an interface (not built yet)
    Status(DevArgs),
    /// Remove wirelag's rules from an interface (not built yet)
    Clear(DevArgs),
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
    /// Userspace delaying proxy (not built yet)
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
        InjectCommand::Status(d) => Err(UsageError(format!(
            "not built yet: `wirelag inject status --dev {}` (issue 4); `tc qdisc show dev {}` \
             and `tc filter show dev {}` show the kernel's rules meanwhile",
            d.dev, d.dev, d.dev
        ))
        .into()),
        InjectCommand::Clear(d) => Err(UsageError(format!(
            "not built yet: `wirelag inject clear --dev {}` (issue 4); wirelag has applied no \
             rules, since applying is not built either",
            d.dev
        ))
        .into()),
    }
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
    preflight(&spec.dev, host)?;
    Err(UsageError(
        "applying rules is not built yet; use --dry-run to print the tc commands".into(),
    )
    .into())
}

/// What the pre-flight checks need from the OS, behind a trait so tests can fake a host.
pub trait Host {
    /// Names of the network interfaces.
    fn interfaces(&self) -> anyhow::Result<Vec<String>>;
    /// Where `tc` is, if it is on PATH.
    fn find_tc(&self) -> Option<PathBuf>;
    /// Whether the running kernel can provide sch_netem (loaded, loadable or built in).
    fn has_netem(&self) -> anyhow::Result<bool>;
}

/// Checks, in order, that `dev` exists, `tc` is installed and the kernel has netem.
pub fn preflight(dev: &str, host: &dyn Host) -> anyhow::Result<()> {
    let mut names = host.interfaces()?;
    if !names.iter().any(|n| n == dev) {
        names.sort();
        return Err(UsageError(format!(
            "no interface named {dev} (available: {})",
            names.join(", ")
        ))
        .into());
    }
    if host.find_tc().is_none() {
        anyhow::bail!("tc not found: apt-get install iproute2");
    }
    if !host.has_netem()? {
        anyhow::bail!(
            "this kernel has no sch_netem (not loaded, no module to load, not built in), so tc \
             cannot delay packets here; use the userspace proxy instead: --backend proxy"
        );
    }
    Ok(())
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

    fn has_netem(&self) -> anyhow::Result<bool> {
        if Path::new("/sys/module/sch_netem").exists() {
            return Ok(true);
        }
        let release_file = Path::new("/proc/sys/kernel/osrelease");
        let release = std::fs::read_to_string(release_file)
            .with_context(|| format!("reading {}", release_file.display()))?;
        let modules = Path::new("/lib/modules").join(release.trim());
        // Built in (built-in netem has no parameters, so it may be absent from /sys/module).
        if let Ok(builtin) = std::fs::read_to_string(modules.join("modules.builtin")) {
            if builtin.lines().any(|l| l.ends_with("/sch_netem.ko")) {
                return Ok(true);
            }
        }
        // Loadable: modprobe would find it through modules.dep.
        if let Ok(dep) = std::fs::read_to_string(modules.join("modules.dep")) {
            if dep.lines().any(|l| {
                l.split(':')
                    .next()
                    .is_some_and(|m| m.contains("/sch_netem.ko"))
            }) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FakeHost {
        interfaces: Vec<&'static str>,
        tc: bool,
        netem: bool,
    }

    impl Host for FakeHost {
        fn interfaces(&self) -> anyhow::Result<Vec<String>> {
            Ok(self.interfaces.iter().map(|s| s.to_string()).collect())
        }
        fn find_tc(&self) -> Option<PathBuf> {
            self.tc.then(|| PathBuf::from("/usr/sbin/tc"))
        }
        fn has_netem(&self) -> anyhow::Result<bool> {
            Ok(self.netem)
        }
    }

    fn host(tc: bool, netem: bool) -> FakeHost {
        FakeHost {
            interfaces: vec!["lo", "eth0"],
            tc,
            netem,
        }
    }

    #[test]
    fn preflight_names_each_missing_piece() {
        let e = preflight("eth9", &host(true, true))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "no interface named eth9 (available: eth0, lo)");
        let e = preflight("lo", &host(false, true)).unwrap_err().to_string();
        assert_eq!(e, "tc not found: apt-get install iproute2");
        let e = preflight("lo", &host(true, false)).unwrap_err().to_string();
        assert!(e.contains("--backend proxy"), "{e}");
        assert!(preflight("lo", &host(true, true)).is_ok());
    }
}

pub(crate) fn tc_injection(
    _args: &DelayArgs,
    _spec: &tc::DelaySpec,
    _stop: &crate::signals::StopFlag,
) -> anyhow::Result<Box<dyn backend::Injection>> {
    anyhow::bail!("TEMP: tc apply is being merged")
}
