//! The two ways to delay traffic behind one interface, for `inject delay` and `experiment`:
//! kernel netem through tc ([`super::apply`]) and the userspace proxy ([`super::proxy`]).

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::ValueEnum;

use super::proxy::{DirectionDelay, ProxyConfig, ProxyHandle};
use super::tc::{DelaySpec, PortRange};
use super::{Backend, DelayArgs};
use crate::signals::StopFlag;
use crate::UsageError;

/// Which direction the proxy delays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProxyDirection {
    /// Both: client to server and server to client (a round trip pays the delay twice)
    Both,
    /// Requests only: client to server
    ToServer,
    /// Responses only: server to client (like netem with --local-port on the server's host)
    ToClient,
}

impl ProxyDirection {
    pub fn describe(self) -> &'static str {
        match self {
            ProxyDirection::Both => "both directions",
            ProxyDirection::ToServer => "requests (client to server)",
            ProxyDirection::ToClient => "responses (server to client)",
        }
    }

    pub fn count(self) -> u32 {
        match self {
            ProxyDirection::Both => 2,
            _ => 1,
        }
    }
}

/// A delay in force; reverting it must happen whatever else fails.
pub trait Injection {
    /// One line on what is in force (rules, listen address, delay).
    fn describe(&self) -> String;
    /// What was checked after applying (e.g. the kernel's qdiscs), for the report.
    fn verification(&self) -> serde_json::Value;
    /// Removes the delay; returns one line on what was undone.
    fn revert(self: Box<Self>) -> anyhow::Result<String>;
}

/// What a round trip pays and where the capture sits, for the report.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// How many times one request/response round trip pays the delay.
    pub directions_per_round_trip: u32,
    pub per_round_trip_us: u64,
    pub assumption: String,
}

/// The proxy's addresses and direction, checked.
pub struct ProxyPlan {
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
    pub direction: ProxyDirection,
}

pub fn proxy_plan(args: &DelayArgs) -> Result<ProxyPlan, UsageError> {
    let need = |flag: &str, v: &Option<String>| -> Result<SocketAddr, UsageError> {
        let text = v.as_deref().ok_or_else(|| {
            UsageError(format!(
                "--backend proxy needs {flag} ADDR:PORT (e.g. --listen 127.0.0.1:13306 \
                 --upstream 127.0.0.1:3306)"
            ))
        })?;
        text.parse().map_err(|_| {
            UsageError(format!(
                "{flag} {text:?}: expected ADDR:PORT, e.g. 127.0.0.1:3306 or [::1]:3306"
            ))
        })
    };
    Ok(ProxyPlan {
        listen: need("--listen", &args.listen)?,
        upstream: need("--upstream", &args.upstream)?,
        direction: args.direction,
    })
}

/// Flags that only mean something to netem are refused with the proxy instead of being ignored.
pub fn check_proxy_flags(args: &DelayArgs) -> Result<(), UsageError> {
    let netem_only = [
        ("--remote-port", !args.remote_port.is_empty()),
        ("--local-port", !args.local_port.is_empty()),
        ("--destination-ip", !args.destination_ip.is_empty()),
        ("--exclude-port", !args.exclude_port.is_empty()),
        ("--exclude-ip", !args.exclude_ip.is_empty()),
        ("--protocol", args.protocol.is_some()),
        ("--loss", args.loss.is_some()),
        ("--limit", args.limit.is_some()),
    ];
    if let Some((flag, _)) = netem_only.iter().find(|(_, set)| *set) {
        return Err(UsageError(format!(
            "{flag} is a netem rule and means nothing to --backend proxy, which delays every \
             connection made to --listen"
        )));
    }
    Ok(())
}

fn proxy_config(p: &ProxyPlan, time_ms: u32, offset_ms: Option<u32>) -> ProxyConfig {
    let delay = DirectionDelay {
        base: Duration::from_millis(u64::from(time_ms)),
        jitter: Duration::from_millis(u64::from(offset_ms.unwrap_or(0))),
    };
    let mut cfg = ProxyConfig::new(p.listen, p.upstream);
    cfg.to_upstream = if p.direction == ProxyDirection::ToClient {
        DirectionDelay::NONE
    } else {
        delay
    };
    cfg.to_client = if p.direction == ProxyDirection::ToServer {
        DirectionDelay::NONE
    } else {
        delay
    };
    cfg
}

/// How many times a round trip to `port` pays the delay under a tc rule, and where a capture on
/// the same interface sees it.
pub fn tc_plan(spec: &DelaySpec, port: u16) -> Plan {
    let matches = |ranges: &[PortRange]| ranges.iter().any(|r| (r.first..=r.last).contains(&port));
    let any_port_rule = !spec.local_ports.is_empty() || !spec.remote_ports.is_empty();
    let (directions, how) = if spec.dev == "lo" {
        if any_port_rule {
            let n = u32::from(matches(&spec.local_ports)) + u32::from(matches(&spec.remote_ports));
            (
                n,
                "on lo both ends are local: packets from the port match --local-port (server to \
                 client), packets to it match --remote-port (client to server)",
            )
        } else {
            (
                2,
                "on lo every packet leaves through lo's egress, so both directions are delayed",
            )
        }
    } else {
        (
            1,
            "netem delays this host's egress on the interface: one direction of each round trip",
        )
    };
    Plan {
        directions_per_round_trip: directions,
        per_round_trip_us: u64::from(spec.time_ms) * 1000 * u64::from(directions),
        assumption: format!(
            "tc netem {} ms on the egress of {}; {how}; a capture on {} sees each delayed packet \
             after netem released it, so a request/response round trip in the capture carries {} \
             x {} ms of injected delay",
            spec.time_ms, spec.dev, spec.dev, directions, spec.time_ms
        ),
    }
}

pub fn plan_for(args: &DelayArgs, spec: &DelaySpec, port: u16) -> anyhow::Result<Plan> {
    match args.backend {
        Backend::Tc => Ok(tc_plan(spec, port)),
        Backend::Proxy => {
            check_proxy_flags(args)?;
            let p = proxy_plan(args)?;
            if p.listen.port() != port {
                return Err(UsageError(format!(
                    "--port {port} must be the proxy's --listen port ({}): the experiment \
                     captures the clients' side of the proxy",
                    p.listen.port()
                ))
                .into());
            }
            let n = p.direction.count();
            Ok(Plan {
                directions_per_round_trip: n,
                per_round_trip_us: u64::from(args.time) * 1000 * u64::from(n),
                assumption: format!(
                    "userspace proxy on {} delaying {} by {} ms; the capture on {} sees the \
                     clients' side of the proxy (port {}), so a request/response round trip \
                     carries {n} x {} ms of injected delay plus the proxy's own forwarding time \
                     (also present in the baseline, which runs through the proxy at zero delay)",
                    p.listen,
                    p.direction.describe(),
                    args.time,
                    args.dev().unwrap_or("lo"),
                    p.listen.port(),
                    args.time
                ),
            })
        }
    }
}

struct ProxyInjection {
    handle: ProxyHandle,
    describe: String,
}

impl Injection for ProxyInjection {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn verification(&self) -> serde_json::Value {
        serde_json::json!({
            "backend": "proxy",
            "listening": self.handle.local_addr().to_string(),
            "verified": true,
            "detail": "the proxy is listening and schedules each chunk at arrival + delay",
        })
    }

    fn revert(self: Box<Self>) -> anyhow::Result<String> {
        let stats = self.handle.shutdown();
        Ok(format!(
            "proxy stopped: {} connections, {} bytes to the server, {} bytes to clients",
            stats.accepted, stats.to_upstream.bytes, stats.to_client.bytes
        ))
    }
}

fn start_proxy(p: &ProxyPlan, time_ms: u32, offset_ms: Option<u32>) -> anyhow::Result<ProxyHandle> {
    let cfg = proxy_config(p, time_ms, offset_ms);
    ProxyHandle::start(cfg).with_context(|| {
        format!(
            "cannot start the proxy on {} (upstream {})",
            p.listen, p.upstream
        )
    })
}

/// Everything that can be checked before the baseline window, so an experiment that cannot
/// inject fails at once instead of after its first window.
pub fn preflight(args: &DelayArgs, spec: &DelaySpec) -> anyhow::Result<()> {
    match args.backend {
        Backend::Tc => {
            let commands =
                super::tc::build(spec).map_err(|e| UsageError(format!("inject delay: {e}")))?;
            super::preflight(&spec.dev, &commands, &super::SysHost)
        }
        Backend::Proxy => {
            check_proxy_flags(args)?;
            proxy_plan(args)?;
            Ok(())
        }
    }
}

/// For the baseline window: the proxy at zero delay (so both windows take the same path);
/// nothing for tc.
pub fn start_baseline_path(args: &DelayArgs) -> anyhow::Result<Option<Box<dyn Injection>>> {
    match args.backend {
        Backend::Tc => Ok(None),
        Backend::Proxy => {
            let p = proxy_plan(args)?;
            let handle = start_proxy(&p, 0, None)?;
            Ok(Some(Box::new(ProxyInjection {
                describe: format!("proxy {} -> {} at zero delay", p.listen, p.upstream),
                handle,
            })))
        }
    }
}

/// Puts the delay in force (and verifies it, for tc).
pub fn start_injection(
    args: &DelayArgs,
    spec: &DelaySpec,
    stop: &StopFlag,
) -> anyhow::Result<Box<dyn Injection>> {
    match args.backend {
        Backend::Tc => super::tc_injection(args, spec, stop),
        Backend::Proxy => {
            let p = proxy_plan(args)?;
            let handle = start_proxy(&p, args.time, args.offset)?;
            Ok(Box::new(ProxyInjection {
                describe: format!(
                    "proxy {} -> {} delaying {} by {} ms",
                    p.listen,
                    p.upstream,
                    p.direction.describe(),
                    args.time
                ),
                handle,
            }))
        }
    }
}

/// `inject delay --backend proxy`: runs the proxy in the foreground until Ctrl-C, SIGTERM or
/// the --duration deadline, then stops it cleanly and prints its statistics.
pub fn run_proxy(args: &DelayArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    check_proxy_flags(args)?;
    let p = proxy_plan(args)?;
    if args.dry_run {
        let cfg = proxy_config(&p, args.time, args.offset);
        writeln!(
            out,
            "# proxy: listen {} -> upstream {}; to server: {}; to client: {}; at most {} \
             connections, {} bytes buffered per direction",
            cfg.listen,
            cfg.upstream,
            cfg.to_upstream,
            cfg.to_client,
            cfg.max_connections,
            cfg.max_buffered_bytes
        )?;
        return Ok(());
    }
    let stop = StopFlag::from_signals().context("cannot install the signal handlers")?;
    let handle = start_proxy(&p, args.time, args.offset)?;
    let deadline = args
        .duration
        .map(|s| Instant::now() + Duration::from_secs(u64::from(s)));
    writeln!(
        out,
        "wirelag: proxy {} -> {} delaying {} by {} ms{}; {}",
        handle.local_addr(),
        p.upstream,
        p.direction.describe(),
        args.time,
        args.offset.map_or(String::new(), |j| format!(" ± {j} ms")),
        match args.duration {
            Some(s) => format!("stops after {s} s or on Ctrl-C"),
            None => "Ctrl-C stops it".to_string(),
        }
    )?;
    out.flush()?;
    stop.wait_until(deadline);
    let stats = handle.shutdown();
    writeln!(out, "wirelag: proxy stopped\n{stats}")?;
    Ok(())
}
