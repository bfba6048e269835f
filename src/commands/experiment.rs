//! `wirelag experiment`: capture a baseline window, inject the delay, capture a delayed window,
//! revert, and report what the delay did to every logical unit (round trips, added time, factor)
//! with a verdict on whether the delay is visible in the traffic at all.
//!
//! The two windows are captured with libpcap into pcap files (kept with `--keep-captures DIR`),
//! then analysed exactly as `wirelag analyze DELAYED --baseline BASELINE` would, with the delay
//! recorded by the injection and the capture point's assumption stated for this rule.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use crate::amplify::{DelaySource, KnownDelay};
use crate::capture::live::{LiveOptions, LiveSource};
use crate::capture::writer::PcapWriter;
use crate::capture::PacketSource;
use crate::commands::analyze::{self, AnalyzeArgs};
use crate::inject::backend::{self, Plan};
use crate::inject::DelayArgs;
use crate::signals::StopFlag;
use crate::UsageError;

#[derive(Args, Debug)]
pub struct ExperimentArgs {
    #[command(flatten)]
    pub delay: DelayArgs,
    /// The service port whose traffic is captured and compared (e.g. 3306); with the proxy
    /// backend, the port the proxy listens on
    #[arg(long, value_name = "PORT")]
    pub port: u16,
    /// Length of each window in seconds when no workload command is given
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    pub window: f64,
    /// Pause before and after each window, letting the capture start and the last packets land
    #[arg(long, value_name = "MS", default_value_t = 300)]
    pub settle_ms: u64,
    /// Keep the two captures (baseline.pcap, delayed.pcap) in this directory
    #[arg(long, value_name = "DIR")]
    pub keep_captures: Option<PathBuf>,
    /// JSON report (schema wirelag.report/v1 with an `experiment` section)
    #[arg(long)]
    pub json: bool,
    /// Write the report to FILE (atomically)
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Decode a port as a protocol, e.g. 13001=mysql (repeatable)
    #[arg(long = "decode-as", value_name = "PORT=PROTO")]
    pub decode_as: Vec<String>,
    /// A workload to run once in each window (after `--`), e.g. -- mariadb -h127.0.0.1 -e '...'
    #[arg(last = true, value_name = "COMMAND")]
    pub workload: Vec<String>,
}

/// A capture running in its own thread, writing a pcap file.
struct Recording {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<anyhow::Result<(u64, Option<u64>)>>,
    path: PathBuf,
}

fn start_recording(dev: &str, port: u16, path: &Path) -> anyhow::Result<Recording> {
    let opts = LiveOptions {
        interface: dev.to_string(),
        bpf: Some(format!("tcp port {port}")),
        ..LiveOptions::default()
    };
    let source = LiveSource::open(&opts)?;
    let stop = source.stop_handle();
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut writer = PcapWriter::new(std::io::BufWriter::new(file), source.link_type(), 262_144)
        .with_context(|| format!("writing {}", path.display()))?;
    let path_in = path.to_path_buf();
    let thread = std::thread::Builder::new()
        .name("experiment-capture".into())
        .spawn(move || -> anyhow::Result<(u64, Option<u64>)> {
            let mut source = source;
            while let Some(p) = source.next_packet()? {
                writer
                    .write(&p)
                    .with_context(|| format!("writing {}", path_in.display()))?;
            }
            let packets = writer.packets;
            writer.finish()?;
            Ok((packets, source.summary().dropped))
        })
        .context("cannot start the capture thread")?;
    Ok(Recording {
        stop,
        thread,
        path: path.to_path_buf(),
    })
}

impl Recording {
    fn finish(self) -> anyhow::Result<(u64, Option<u64>)> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.join() {
            Ok(r) => r.with_context(|| format!("capture into {}", self.path.display())),
            Err(_) => anyhow::bail!("the capture thread for {} failed", self.path.display()),
        }
    }
}

/// Runs one window: the workload once (or a pause of `window` seconds), between two settles.
fn run_window(args: &ExperimentArgs, stop: &StopFlag, name: &str) -> anyhow::Result<String> {
    let settle = Duration::from_millis(args.settle_ms);
    if stop.wait_until(Some(Instant::now() + settle)) {
        anyhow::bail!("interrupted before the {name} window");
    }
    let started = Instant::now();
    let outcome = match args.workload.split_first() {
        None => {
            let end = started + Duration::from_secs_f64(args.window);
            if stop.wait_until(Some(end)) {
                anyhow::bail!("interrupted during the {name} window");
            }
            format!("{:.1} s window", args.window)
        }
        Some((prog, rest)) => {
            let mut child = std::process::Command::new(prog)
                .args(rest)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .spawn()
                .with_context(|| format!("cannot run the workload {prog:?}"))?;
            let status = loop {
                if let Some(s) = child.try_wait()? {
                    break s;
                }
                if stop.is_set() {
                    let _ = child.kill();
                    let _ = child.wait();
                    anyhow::bail!("interrupted during the {name} window (workload killed)");
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            if !status.success() {
                anyhow::bail!("the workload failed in the {name} window: {status}");
            }
            format!(
                "workload ran {:.3} s",
                started.elapsed().as_secs_f64().max(0.0)
            )
        }
    };
    let _ = stop.wait_until(Some(Instant::now() + settle));
    Ok(outcome)
}

pub fn run(args: &ExperimentArgs, out: &mut dyn crate::report::ReportOut) -> anyhow::Result<()> {
    if !(args.window.is_finite() && args.window > 0.0 && args.window <= 86_400.0) {
        return Err(UsageError(format!(
            "--window {}: expected seconds, more than 0 and at most a day",
            args.window
        ))
        .into());
    }
    if args.delay.dry_run {
        return Err(UsageError(
            "experiment does not take --dry-run; `wirelag inject delay --dry-run` prints the rules"
                .into(),
        )
        .into());
    }
    if args.delay.duration.is_some() {
        return Err(UsageError(
            "experiment does not take --duration: it reverts as soon as the delayed window ends \
             (its length is --window or the workload's run)"
                .into(),
        )
        .into());
    }
    let spec = args.delay.spec()?;
    let plan = backend::plan_for(&args.delay, &spec, args.port)?;
    if plan.per_round_trip_us == 0 {
        return Err(UsageError(format!(
            "the rule never delays traffic of port {}: give --local-port {} (the server's \
             replies) or --remote-port {} (the requests), or no port rule",
            args.port, args.port, args.port
        ))
        .into());
    }
    backend::preflight(&args.delay, &spec)?;
    // The capture's interface (with the proxy backend nothing above looked at it): a clear
    // line naming the interfaces there are, before any window starts.
    crate::capture::live::check_interface(&spec.dev)?;
    let stop = StopFlag::from_signals().context("cannot install the signal handlers")?;

    let (dir, temp) = match &args.keep_captures {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            (d.clone(), false)
        }
        None => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let d = std::env::temp_dir()
                .join(format!("wirelag-experiment-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create {}", d.display()))?;
            (d, true)
        }
    };
    let result = run_in(args, &spec, &plan, &stop, &dir, !temp, out);
    if temp {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn run_in(
    args: &ExperimentArgs,
    spec: &crate::inject::tc::DelaySpec,
    plan: &Plan,
    stop: &StopFlag,
    dir: &Path,
    kept: bool,
    out: &mut dyn crate::report::ReportOut,
) -> anyhow::Result<()> {
    let baseline_path = dir.join("baseline.pcap");
    let delayed_path = dir.join("delayed.pcap");
    let capture_dev = spec.dev.clone();

    // Baseline: the same path as the delayed window (through the proxy, at zero delay, when the
    // proxy backend is used), without the delay.
    let zero = backend::start_baseline_path(&args.delay)?;
    eprintln!(
        "wirelag experiment: baseline window on {capture_dev} port {}",
        args.port
    );
    let rec = start_recording(&capture_dev, args.port, &baseline_path)?;
    let window = run_window(args, stop, "baseline");
    let captured = rec.finish();
    if let Some(z) = zero {
        z.revert()?;
    }
    let baseline_window = window?;
    let (baseline_packets, baseline_dropped) = captured?;

    let injection = backend::start_injection(&args.delay, spec, stop)?;
    eprintln!("wirelag experiment: {}", injection.describe());
    let verification = injection.verification();
    let delayed = (|| -> anyhow::Result<(String, (u64, Option<u64>))> {
        let rec = start_recording(&capture_dev, args.port, &delayed_path)?;
        let window = run_window(args, stop, "delayed");
        let captured = rec.finish();
        Ok((window?, captured?))
    })();
    let reverted = injection.revert();
    let (delayed_window, (delayed_packets, delayed_dropped)) = delayed?;
    let reverted = reverted.context("REVERTING THE DELAY FAILED: check `wirelag inject status`")?;
    eprintln!("wirelag experiment: {reverted}");

    let experiment = serde_json::json!({
        "backend": format!("{:?}", args.delay.backend).to_lowercase(),
        "dev": spec.dev,
        "port": args.port,
        "time_ms": args.delay.time,
        "directions_per_round_trip": plan.directions_per_round_trip,
        "per_round_trip_us": plan.per_round_trip_us,
        "verification": verification,
        "reverted": reverted,
        "captures_kept": kept,
        "baseline": { "capture": baseline_path.display().to_string(), "packets": baseline_packets,
                      "dropped": baseline_dropped, "window": baseline_window },
        "delayed": { "capture": delayed_path.display().to_string(), "packets": delayed_packets,
                     "dropped": delayed_dropped, "window": delayed_window },
    });
    let a = AnalyzeArgs {
        capture: delayed_path.clone(),
        filter: None,
        json: args.json,
        output: args.output.clone(),
        requests: false,
        decode_as: args.decode_as.clone(),
        baseline: Some(baseline_path.clone()),
        delay: Some(KnownDelay {
            per_round_trip_us: plan.per_round_trip_us,
            source: DelaySource::Recorded,
            assumption: Some(plan.assumption.clone()),
        }),
        experiment: Some(experiment),
    };
    analyze::run(&a, out)
}
