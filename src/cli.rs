//! Command-line interface.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::commands;

#[derive(Parser, Debug)]
#[command(
    name = "wirelag",
    version,
    about = "Packet-capture and protocol-timing analyzer: where did the time go on the wire?",
    long_about = "Packet-capture and protocol-timing analyzer: where did the time go on the wire?\n\n\
Reads .pcap/.pcapng files (Ethernet, VLAN/QinQ, Linux cooked SLL/SLL2, BSD loopback, raw IP, PPP; \
IPv4 and IPv6) or captures live, follows TCP streams with Wireshark's numbering (tcp.stream) and \
filters frames with Wireshark display-filter syntax (-Y).\n\n\
Exit codes: 0 success, 2 bad input (unreadable or truncated capture, bad filter, no such stream, \
unknown interface), 1 other failures."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Never draw the progress bar (otherwise shown on stderr when it is a terminal and a capture
    /// file takes more than a second to read, unless the output goes to that terminal as it is
    /// read: frames, analyze --json); also WIRELAG_NO_PROGRESS=1
    #[arg(long, global = true)]
    pub no_progress: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The packet list, one line per frame (like tshark's default output)
    Frames {
        /// Capture file (.pcap or .pcapng)
        capture: PathBuf,
        /// Display filter in Wireshark syntax, e.g. 'tcp.stream eq 0' or 'tcp.flags.syn == 1 && tcp.flags.ack == 0'
        #[arg(short = 'Y', long = "display-filter", value_name = "FILTER")]
        filter: Option<String>,
        /// JSON output (schema wirelag.frames/v1)
        #[arg(long)]
        json: bool,
    },
    /// Conversations, one row per tcp.stream (like Statistics > Conversations > TCP)
    #[command(
        long_about = "Conversations, one row per tcp.stream (like Statistics > Conversations > TCP).\n\n\
With -Y, a stream is listed when at least one of its frames matches; its figures still count all of its frames."
    )]
    Streams {
        /// Capture file (.pcap or .pcapng)
        capture: PathBuf,
        /// Display filter in Wireshark syntax
        #[arg(short = 'Y', long = "display-filter", value_name = "FILTER")]
        filter: Option<String>,
        /// JSON output (schema wirelag.streams/v1)
        #[arg(long)]
        json: bool,
    },
    /// One connection as a timeline of payload messages, with sizes, times and gaps
    Follow {
        /// Capture file (.pcap or .pcapng)
        capture: PathBuf,
        /// The tcp.stream index to follow
        #[arg(long, value_name = "N")]
        stream: u32,
        /// JSON output (schema wirelag.follow/v1)
        #[arg(long)]
        json: bool,
    },
    /// Database request/response timing: latency per command and fingerprint, transactions and their round trips
    #[command(
        long_about = "Decode MySQL/MariaDB exchanges (port 3306, --decode-as ports, or any port by content: \
a server greeting or a client command), pair each request with its response, and report latency per command, \
per fingerprint (pt-query-digest style), per stream and per server; transactions (BEGIN/START TRANSACTION or \
SET autocommit=0 ... COMMIT/ROLLBACK) with their statement and round-trip counts; connection set-up and \
connection units; errors and anomalies.\n\nResponse time = response first byte − request last byte, as seen \
from the capture point. With -Y, only the streams with a matching frame are analysed."
    )]
    Analyze {
        /// Capture file (.pcap or .pcapng)
        capture: PathBuf,
        /// Display filter in Wireshark syntax: analyse the streams that have a matching frame
        #[arg(short = 'Y', long = "display-filter", value_name = "FILTER")]
        filter: Option<String>,
        /// JSON output (schema wirelag.report/v1, see docs/report-schema.md); the request list comes first, written as the capture is read, then the summary sections
        #[arg(long)]
        json: bool,
        /// Write the report to FILE (atomically: a temporary file, then a rename) instead of stdout
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
        /// List every exchange in the text report
        #[arg(long)]
        requests: bool,
        /// Decode a port as a protocol, e.g. 13001=mysql (repeatable)
        #[arg(long = "decode-as", value_name = "PORT=PROTO")]
        decode_as: Vec<String>,
        /// A capture of the same workload without the delay: each unit (set-up, transaction,
        /// statement, connection) is matched to its baseline twin and the added time measured
        #[arg(long, value_name = "CAPTURE")]
        baseline: Option<PathBuf>,
        /// The injected delay per round trip in milliseconds (e.g. netem's --time when one
        /// direction is delayed): attributes round trips × delay, and checks the traffic shows it
        #[arg(long, value_name = "MS")]
        delay: Option<f64>,
    },
    /// The host's network interfaces: index, name, MTU, MAC, flags, addresses
    #[command(
        long_about = "The host's network interfaces, the names `live -i` and `--dev` take: index, name, \
MTU, MAC address, flags (UP, RUNNING, LOOPBACK, BROADCAST, MULTICAST, POINTOPOINT) and addresses with \
their prefix length. Needs no privileges."
    )]
    Interfaces {
        /// JSON output (schema wirelag.interfaces/v1)
        #[arg(long)]
        json: bool,
    },
    /// Capture live on an interface and print frames as they arrive, then the stream table
    #[command(
        long_about = "Capture live on an interface (libpcap, immediate mode, nanosecond kernel timestamps) \
and print frames as they arrive, then the stream table. Needs CAP_NET_RAW (root, or \
`setcap cap_net_raw,cap_net_admin=eip` on the binary). Stops after --count packets or --duration seconds, \
or when interrupted."
    )]
    Live {
        /// Interface to capture on, e.g. lo or eth0
        #[arg(short = 'i', long = "interface", value_name = "IFACE")]
        interface: String,
        /// Capture filter in BPF syntax, e.g. 'tcp port 3306'
        #[arg(short = 'f', long = "bpf", value_name = "BPF")]
        bpf: Option<String>,
        /// Display filter in Wireshark syntax (applied after capture)
        #[arg(short = 'Y', long = "display-filter", value_name = "FILTER")]
        filter: Option<String>,
        /// Print one JSON object per frame (wirelag.frames/v1 frame objects) instead of text
        #[arg(long)]
        json_lines: bool,
        /// Accepted for compatibility with later versions: output is always plain text or JSON Lines for now
        #[arg(long)]
        no_tui: bool,
        /// Stop after this many packets
        #[arg(short = 'c', long = "count", value_name = "N")]
        count: Option<u64>,
        /// Stop after this many seconds
        #[arg(long, value_name = "SECONDS")]
        duration: Option<f64>,
        /// Snapshot length in bytes
        #[arg(short = 's', long, default_value_t = 262_144)]
        snaplen: i32,
    },
    /// Inject network delay with tc netem or a delaying proxy, chaosblade's vocabulary (delay|status|clear)
    Inject(crate::inject::InjectArgs),
    /// Baseline window, inject, delayed window, revert, and report what the delay did
    #[command(
        long_about = "Measure what a delay does to a service's traffic in one command: capture the service port for a baseline window, inject the delay (tc netem, or --backend proxy), capture a delayed window, revert, and analyse both captures as `analyze DELAYED --baseline BASELINE` would.\n\nEach logical unit (connection set-up, transaction, single statement, connection) is matched to its baseline twin: round trips, baseline and delayed duration, added time, added time per round trip, and the amplification factor (added time / injected delay). The verdict says whether the delay is visible in the traffic, so a rule that installed but delays nothing is caught.\n\nA window is one run of the workload given after `--`, or --window seconds of whatever traffic flows. With --backend proxy, clients must connect to --listen in both windows (the baseline runs through the proxy at zero delay) and --port is the --listen port.\n\nExample: wirelag experiment --dev lo --local-port 3306 --time 40 --port 3306 -- mariadb -h127.0.0.1 -e 'BEGIN; SELECT 1; COMMIT'"
    )]
    Experiment(crate::commands::experiment::ExperimentArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(
        long_about = "Print a shell completion script for wirelag on stdout, generated from its \
command-line definitions. For example:\n\n  \
wirelag completions bash > /etc/bash_completion.d/wirelag (or ~/.local/share/bash-completion/completions/wirelag)\n  \
wirelag completions zsh > \"${fpath[1]}/_wirelag\"\n  \
wirelag completions fish > ~/.config/fish/completions/wirelag.fish"
    )]
    Completions {
        /// The shell to complete for
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per subcommand with --out DIR
    #[command(
        long_about = "Print wirelag's man page (roff, with the list of subcommands) on stdout, \
generated from its command-line definitions; with --out DIR, write one page per command and \
subcommand into DIR (wirelag.1, wirelag-frames.1, wirelag-inject-delay.1, ...) and list them. For \
example: wirelag man --out /usr/local/share/man/man1 && mandb, or wirelag man | man -l -"
    )]
    Man {
        /// Write one page per subcommand into DIR instead of the main page on stdout
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    crate::progress::enable(crate::progress::wanted(
        cli.no_progress,
        writes_stdout_while_reading(&cli.command),
    ));
    let mut out = crate::report::Stdout::new();
    let result = dispatch(cli.command, &mut out);
    let flushed = out.flush();
    result?;
    flushed?;
    Ok(())
}

/// Commands whose output goes to stdout while the capture is read (frame lines; a JSON report
/// on stdout, whose request list is written as the exchanges complete): on a terminal, a
/// progress bar there would be interleaved with those lines.
fn writes_stdout_while_reading(command: &Command) -> bool {
    match command {
        Command::Frames { .. } | Command::Live { .. } => true,
        Command::Analyze { json, output, .. } => *json && output.is_none(),
        Command::Experiment(a) => a.json && a.output.is_none(),
        Command::Streams { .. }
        | Command::Follow { .. }
        | Command::Interfaces { .. }
        | Command::Inject(_)
        | Command::Completions { .. }
        | Command::Man { .. } => false,
    }
}

fn dispatch(command: Command, out: &mut dyn crate::report::ReportOut) -> anyhow::Result<()> {
    match command {
        Command::Frames {
            capture,
            filter,
            json,
        } => commands::frames::run(&capture, filter.as_deref(), json, out),
        Command::Streams {
            capture,
            filter,
            json,
        } => commands::streams::run(&capture, filter.as_deref(), json, out),
        Command::Analyze {
            capture,
            filter,
            json,
            output,
            requests,
            decode_as,
            baseline,
            delay,
        } => {
            let delay = match delay {
                Some(ms) if !(ms.is_finite() && ms > 0.0 && ms < 3.6e6) => {
                    return Err(crate::UsageError(format!(
                        "--delay {ms}: expected milliseconds, more than 0"
                    ))
                    .into())
                }
                Some(ms) => Some(crate::amplify::KnownDelay {
                    per_round_trip_us: (ms * 1000.0).round() as u64,
                    source: crate::amplify::DelaySource::Given,
                    assumption: None,
                }),
                None => None,
            };
            let args = commands::analyze::AnalyzeArgs {
                capture,
                filter,
                json,
                output,
                requests,
                decode_as,
                baseline,
                delay,
                experiment: None,
            };
            commands::analyze::run(&args, out)
        }
        Command::Follow {
            capture,
            stream,
            json,
        } => commands::follow::run(&capture, stream, json, out),
        Command::Live {
            interface,
            bpf,
            filter,
            json_lines,
            no_tui: _,
            count,
            duration,
            snaplen,
        } => {
            let args = commands::live::LiveArgs {
                interface,
                bpf,
                display_filter: filter,
                json_lines,
                count,
                duration,
                snaplen,
            };
            commands::live::run(&args, out)
        }
        Command::Interfaces { json } => commands::interfaces::run(json, out),
        Command::Completions { shell } => commands::generated::completions(shell, out),
        Command::Man { out: dir } => commands::generated::man(dir.as_deref(), out),
        Command::Inject(a) => crate::inject::run(a, out),
        Command::Experiment(a) => crate::commands::experiment::run(&a, out),
    }
}
