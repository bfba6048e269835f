//! Live capture from a network interface through libpcap (the `pcap` crate).
//!
//! Frames come with nanosecond timestamps where the platform offers them (Linux always does) and
//! microsecond ones otherwise. A stop request and the duration limit take effect within one
//! `timeout_ms` even when the wire is quiet: libpcap on Linux keeps waiting past its own read
//! timeout in immediate mode, so a small watcher thread interrupts the read with
//! `pcap_breakloop` once the flag is set or the time is up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use wirelag_dissectors::link::{linktype_name, LinkType};
use wirelag_dissectors::Timestamp;

use super::{CaptureError, PacketSource, RawPacket, SourceSummary};

/// How to open an interface. `LiveOptions::new("eth0")` gives the defaults below.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveOptions {
    pub interface: String,
    /// A BPF filter in tcpdump syntax, compiled with optimisation.
    pub bpf: Option<String>,
    /// Bytes kept per frame; 262144 keeps every frame whole, as tcpdump does.
    pub snaplen: i32,
    /// Kernel buffer in bytes; larger buffers ride out bursts without drops.
    pub buffer_size: i32,
    pub promisc: bool,
    /// libpcap's read timeout, and how often the stop flag and the duration limit are checked
    /// while the interface is quiet. Values below 1 are raised to 1 (libpcap reads 0 as "never").
    pub timeout_ms: i32,
    /// Stop after this many frames.
    pub max_packets: Option<u64>,
    /// Stop this long after the capture was opened.
    pub duration: Option<Duration>,
}

impl LiveOptions {
    pub fn new(interface: impl Into<String>) -> LiveOptions {
        LiveOptions {
            interface: interface.into(),
            ..LiveOptions::default()
        }
    }
}

impl Default for LiveOptions {
    /// Every default except the interface, which is left empty and must be set.
    fn default() -> LiveOptions {
        LiveOptions {
            interface: String::new(),
            bpf: None,
            snaplen: 262_144,
            buffer_size: 4 * 1024 * 1024,
            promisc: false,
            timeout_ms: 100,
            max_packets: None,
            duration: None,
        }
    }
}

/// An open live capture. Frames are read one at a time with [`PacketSource::next_packet`], which
/// returns `Ok(None)` once the stop flag is set or a limit is reached.
pub struct LiveSource {
    interface: String,
    capture: pcap::Capture<pcap::Active>,
    link_type: LinkType,
    /// 1 when libpcap delivers ns in `tv_usec`, 1000 when it had to stay at µs.
    nanos_per_subsec_unit: i64,
    snaplen: u32,
    stop: Arc<AtomicBool>,
    max_packets: Option<u64>,
    deadline: Option<Instant>,
    packets: u64,
    /// The current frame. libpcap's own buffer cannot be lent out across the timeout loop in safe
    /// Rust, so each frame is copied once into this reused buffer.
    frame: Vec<u8>,
    stats: Option<pcap::Stat>,
    finished: bool,
    /// Dropped with the source, which tells the watcher thread to exit.
    _alive: Arc<()>,
}

/// Statistics are refreshed this often while frames keep coming (and on every idle timeout),
/// since `summary()` cannot query libpcap through a shared reference.
const STATS_EVERY_PACKETS: u64 = 4096;

impl LiveSource {
    pub fn open(opts: &LiveOptions) -> Result<LiveSource, CaptureError> {
        let iface = opts.interface.as_str();
        if iface.is_empty() {
            return Err(unknown_interface(iface, "no interface was given"));
        }
        check_interface(iface)?;
        let capture = pcap::Capture::from_device(iface)
            .map_err(|e| live_error(iface, e))?
            .immediate_mode(true)
            .precision(pcap::Precision::Nano)
            .snaplen(opts.snaplen)
            .buffer_size(opts.buffer_size)
            .promisc(opts.promisc)
            .timeout(opts.timeout_ms.max(1));
        let mut capture = capture.open().map_err(|e| live_error(iface, e))?;

        let linktype = capture.get_datalink().0;
        let link_type = u32::try_from(linktype)
            .ok()
            .and_then(LinkType::from_linktype)
            .ok_or_else(|| {
                let linktype = u32::try_from(linktype).unwrap_or(u32::MAX);
                CaptureError::UnsupportedLinkType {
                    path: iface.into(),
                    linktype,
                    name: linktype_name(linktype),
                    offset: 0,
                }
            })?;

        if let Some(program) = &opts.bpf {
            capture
                .filter(program, true)
                .map_err(|e| CaptureError::Live {
                    iface: iface.to_string(),
                    detail: format!("invalid BPF filter {program:?}: {}", pcap_message(&e)),
                })?;
        }

        let nanos_per_subsec_unit = match delivered_precision(&capture) {
            pcap::Precision::Nano => 1,
            pcap::Precision::Micro => 1000,
        };
        let snaplen = capture_snaplen(opts.snaplen);
        let stop = Arc::new(AtomicBool::new(false));
        let deadline = opts.duration.map(|d| Instant::now() + d);
        let alive = Arc::new(());
        let period = Duration::from_millis(u64::try_from(opts.timeout_ms.max(1)).unwrap_or(100));
        spawn_stop_watcher(
            capture.breakloop_handle(),
            Arc::clone(&stop),
            deadline,
            Arc::downgrade(&alive),
            period,
        )
        .map_err(|e| CaptureError::Live {
            iface: iface.to_string(),
            detail: format!("cannot start the capture's stop watcher thread: {e}"),
        })?;
        Ok(LiveSource {
            interface: iface.to_string(),
            capture,
            link_type,
            nanos_per_subsec_unit,
            snaplen,
            stop,
            max_packets: opts.max_packets,
            deadline,
            packets: 0,
            frame: Vec::new(),
            stats: None,
            finished: false,
            _alive: alive,
        })
    }

    /// The interface's link type (every frame of a live capture has it).
    pub fn link_type(&self) -> LinkType {
        self.link_type
    }

    /// Setting the returned flag (from any thread, e.g. a Ctrl-C handler) ends the capture:
    /// `next_packet` then returns `Ok(None)` within one read timeout.
    pub fn stop_handle(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    fn should_stop(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
            || self.max_packets.is_some_and(|max| self.packets >= max)
            || self
                .deadline
                .is_some_and(|deadline| Instant::now() >= deadline)
    }

    fn refresh_stats(&mut self) {
        // A failed query keeps the last known figures: statistics are informative only.
        if let Ok(stats) = self.capture.stats() {
            self.stats = Some(stats);
        }
    }

    fn finish(&mut self) {
        self.refresh_stats();
        self.finished = true;
    }
}

impl PacketSource for LiveSource {
    fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        let header = loop {
            if self.finished {
                return Ok(None);
            }
            if self.should_stop() {
                self.finish();
                return Ok(None);
            }
            match self.capture.next_packet() {
                Ok(packet) => {
                    self.frame.clear();
                    self.frame.extend_from_slice(packet.data);
                    break *packet.header;
                }
                Err(pcap::Error::TimeoutExpired) => self.refresh_stats(),
                // The watcher's pcap_breakloop surfaces as this: the stop flag or the deadline.
                Err(pcap::Error::NoMorePackets) => self.finish(),
                Err(error) => {
                    self.finish();
                    return Err(live_error(&self.interface, error));
                }
            }
        };
        self.packets += 1;
        if self.packets % STATS_EVERY_PACKETS == 0 {
            self.refresh_stats();
        }
        // time_t and suseconds_t are 32-bit on some targets; the conversions are for those.
        #[allow(clippy::useless_conversion)]
        let (secs, subsec) = (i64::from(header.ts.tv_sec), i64::from(header.ts.tv_usec));
        let nanos = secs
            .saturating_mul(1_000_000_000)
            .saturating_add(subsec.saturating_mul(self.nanos_per_subsec_unit));
        Ok(Some(RawPacket {
            ts: Timestamp::from_nanos(nanos),
            orig_len: header.len,
            link_type: self.link_type,
            interface: 0,
            data: &self.frame,
        }))
    }

    fn summary(&self) -> SourceSummary {
        SourceSummary {
            format: "live",
            link_types: vec![self.link_type],
            packets: self.packets,
            truncated: None,
            dropped: self.stats.map(|s| u64::from(s.dropped)),
            interface_dropped: self.stats.map(|s| u64::from(s.if_dropped)),
            snaplen: Some(self.snaplen),
        }
    }
}

/// Wakes a read blocked on a quiet interface once the stop flag is set or the deadline passes,
/// and exits by itself when the source is dropped.
fn spawn_stop_watcher(
    breaker: pcap::BreakLoop,
    stop: Arc<AtomicBool>,
    deadline: Option<Instant>,
    alive: Weak<()>,
    period: Duration,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("wirelag-capture-stop".to_string())
        .spawn(move || loop {
            let nap = deadline.map_or(period, |d| {
                d.saturating_duration_since(Instant::now()).min(period)
            });
            std::thread::sleep(nap);
            if alive.strong_count() == 0 {
                return;
            }
            if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
                breaker.breakloop();
                return;
            }
        })?;
    Ok(())
}

/// Names of the interfaces libpcap can capture on, in its order (usually the most useful first).
pub fn list_interfaces() -> Result<Vec<String>, CaptureError> {
    pcap::Device::list()
        .map(|devices| devices.into_iter().map(|d| d.name).collect())
        .map_err(|e| CaptureError::Live {
            iface: String::new(),
            detail: format!("cannot list interfaces: {}", pcap_message(&e)),
        })
}

/// The names a capture can be opened on: the host's interfaces (pnet's enumeration), then the
/// pseudo-devices only libpcap offers (`any`, `nflog`, ...). Listing asks libpcap nothing that
/// needs privileges.
pub fn available_interfaces() -> Vec<String> {
    let mut names = crate::interfaces::names();
    if let Ok(pcap_names) = list_interfaces() {
        for name in pcap_names {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// A clear error, before libpcap is asked to open anything, when `iface` is no interface of
/// this host nor a libpcap pseudo-device: one line listing the names there are.
pub fn check_interface(iface: &str) -> Result<(), CaptureError> {
    let names = available_interfaces();
    // Nothing listed means enumeration failed, not that the host has no interfaces: libpcap
    // then has the last word.
    if names.is_empty() || names.iter().any(|n| n == iface) {
        return Ok(());
    }
    Err(unknown_interface_among(iface, None, &names))
}

/// libpcap substitutes its default when asked for a snaplen of 0 or less.
fn capture_snaplen(requested: i32) -> u32 {
    u32::try_from(requested)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(262_144)
}

/// Which precision libpcap actually delivers. Asking for ns is silently ignored where the
/// platform cannot provide it, and the `pcap` crate does not expose
/// `pcap_get_tstamp_precision`, but a savefile header records the handle's precision in its
/// magic number, so writing one to a scratch file tells without any unsafe code.
fn delivered_precision(capture: &pcap::Capture<pcap::Active>) -> pcap::Precision {
    static PROBES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let probe_path = std::env::temp_dir().join(format!(
        "wirelag-precision-{}-{}.pcap",
        std::process::id(),
        PROBES.fetch_add(1, Ordering::Relaxed)
    ));
    let magic = capture.savefile(&probe_path).ok().and_then(|mut savefile| {
        savefile.flush().ok()?;
        drop(savefile);
        let header = std::fs::read(&probe_path).ok()?;
        header.first_chunk::<4>().map(|m| u32::from_ne_bytes(*m))
    });
    let _ = std::fs::remove_file(&probe_path);
    match magic {
        Some(0xa1b2_3c4d) => pcap::Precision::Nano,
        Some(_) => pcap::Precision::Micro,
        // Linux libpcap always honours ns for live captures; elsewhere µs is the safe guess.
        None if cfg!(target_os = "linux") => pcap::Precision::Nano,
        None => pcap::Precision::Micro,
    }
}

fn pcap_message(error: &pcap::Error) -> String {
    match error {
        pcap::Error::PcapError(message) => message.clone(),
        other => other.to_string(),
    }
}

/// Turns libpcap's terse errors into ones that say what to do about them.
fn live_error(iface: &str, error: pcap::Error) -> CaptureError {
    let message = pcap_message(&error);
    let lower = message.to_lowercase();
    let denied =
        lower.contains("permission") || lower.contains("not permitted") || lower.contains("eperm");
    if denied && !interface_is_listed(iface) {
        // libpcap opens its socket before it looks the name up; privileges would not help here.
        return unknown_interface(iface, &message);
    }
    if denied {
        let binary = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "/path/to/wirelag".to_string());
        let detail = format!(
            "{message}. Capturing needs the CAP_NET_RAW capability (and CAP_NET_ADMIN for \
             promiscuous mode): run as root, or grant them once with \
             `sudo setcap cap_net_raw,cap_net_admin=eip {binary}`"
        );
        return CaptureError::Live {
            iface: iface.to_string(),
            detail,
        };
    }
    if lower.contains("no such device")
        || lower.contains("doesn't exist")
        || lower.contains("does not exist")
    {
        return unknown_interface(iface, &message);
    }
    CaptureError::Live {
        iface: iface.to_string(),
        detail: message,
    }
}

/// True unless the interface lists lack the name.
fn interface_is_listed(iface: &str) -> bool {
    available_interfaces().iter().any(|name| name == iface)
}

fn unknown_interface(iface: &str, message: &str) -> CaptureError {
    unknown_interface_among(iface, Some(message), &available_interfaces())
}

/// One line naming the interfaces there are. `libpcap`: what libpcap said when it refused the
/// name (or, for an empty name, why there is none); `None` when wirelag refused it first.
fn unknown_interface_among(iface: &str, libpcap: Option<&str>, names: &[String]) -> CaptureError {
    let available = if names.is_empty() {
        "no interfaces are listed".to_string()
    } else {
        format!(
            "available interfaces: {} (see `wirelag interfaces`)",
            names.join(", ")
        )
    };
    let detail = match (iface.is_empty(), libpcap) {
        (true, Some(message)) => format!("{message}; {available}"),
        (_, Some(message)) => {
            format!("there is no interface named {iface:?} (libpcap: {message}); {available}")
        }
        (_, None) => format!("there is no interface named {iface:?}; {available}"),
    };
    CaptureError::Live {
        iface: iface.to_string(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    fn capture_allowed(error: &CaptureError) -> bool {
        !matches!(error, CaptureError::Live { detail, .. } if detail.contains("CAP_NET_RAW"))
    }

    #[test]
    fn defaults_are_sensible() {
        let opts = LiveOptions::new("eth0");
        assert_eq!(opts.interface, "eth0");
        assert_eq!(opts.snaplen, 262_144);
        assert!(opts.timeout_ms > 0 && opts.buffer_size >= 1 << 20);
        assert!(opts.bpf.is_none() && opts.max_packets.is_none() && opts.duration.is_none());
    }

    #[test]
    fn permission_errors_explain_the_capability() {
        let error = live_error(
            "lo",
            pcap::Error::PcapError("socket: Operation not permitted".to_string()),
        );
        let text = error.to_string();
        assert!(
            text.starts_with("live capture on lo: socket: Operation not permitted"),
            "{text}"
        );
        assert!(
            text.contains("CAP_NET_RAW") && text.contains("setcap cap_net_raw,cap_net_admin=eip"),
            "{text}"
        );
    }

    #[test]
    fn unknown_interface_lists_the_available_ones() {
        let error = match LiveSource::open(&LiveOptions::new("wirelag-nosuch0")) {
            Ok(_) => panic!("opened a missing interface"),
            Err(e) => e,
        };
        // The name is checked before libpcap opens anything: no privileges needed.
        assert!(
            capture_allowed(&error),
            "capture not permitted here: {error}"
        );
        let text = error.to_string();
        assert!(
            text.contains("no interface named \"wirelag-nosuch0\""),
            "{text}"
        );
        assert!(
            text.contains("available interfaces:") && text.contains("lo"),
            "{text}"
        );

        let empty = LiveSource::open(&LiveOptions::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(empty.contains("no interface was given"), "{empty}");
    }

    #[test]
    fn lists_interfaces() {
        let names = list_interfaces().unwrap();
        assert!(names.iter().any(|n| n == "lo"), "{names:?}");
    }

    /// Real capture on the loopback interface: a TCP handshake and a payload the test sends
    /// itself, seen with ns timestamps. Fails where capturing is not permitted.
    #[test]
    fn captures_loopback_tcp_with_nanosecond_timestamps() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let opts = LiveOptions {
            bpf: Some(format!("tcp port {port}")),
            max_packets: Some(4),
            duration: Some(Duration::from_secs(5)),
            ..LiveOptions::new("lo")
        };
        let mut source = match LiveSource::open(&opts) {
            Ok(source) => source,
            // Needs CAP_NET_RAW (CI runs as root): without it this fails rather than skips.
            Err(error) => panic!("{error}"),
        };
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        let payload = b"wirelag live capture test payload";
        let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        client.write_all(payload).unwrap();
        let mut received = vec![0; payload.len()];
        server.read_exact(&mut received).unwrap();

        let mut frames = Vec::new();
        while let Some(packet) = source.next_packet().unwrap() {
            assert_eq!(packet.link_type, LinkType::Ethernet);
            frames.push((packet.ts.as_nanos(), packet.orig_len, packet.data.to_vec()));
        }
        let after = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;

        // Ethernet (14) + IPv4 header (IHL words) puts the TCP flags at byte 13 of the TCP header.
        let tcp_flags = |frame: &[u8]| {
            let ihl = usize::from(frame.get(14)? & 0x0f) * 4;
            frame.get(14 + ihl + 13).copied()
        };
        let syn = frames.iter().find(|(_, _, f)| tcp_flags(f) == Some(0x02));
        assert!(syn.is_some(), "no SYN among {} frames", frames.len());
        assert!(
            frames
                .iter()
                .any(|(_, _, f)| f.windows(payload.len()).any(|w| w == payload)),
            "payload not captured"
        );
        for (ns, orig_len, frame) in &frames {
            assert!(
                (before - 1_000_000_000..=after).contains(ns),
                "timestamp {ns} outside {before}..{after}"
            );
            assert_eq!(*orig_len as usize, frame.len());
        }
        // With µs timestamps every one would be a whole number of µs.
        assert!(
            frames.iter().any(|(ns, _, _)| ns % 1000 != 0),
            "timestamps look like µs"
        );

        let summary = source.summary();
        assert_eq!(summary.format, "live");
        assert_eq!(summary.packets, 4);
        assert_eq!(summary.link_types, vec![LinkType::Ethernet]);
        assert_eq!(summary.dropped, Some(0));
        assert!(source.next_packet().unwrap().is_none());
    }

    #[test]
    fn stop_flag_ends_a_quiet_capture() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let opts = LiveOptions {
            bpf: Some(format!("tcp port {port}")),
            timeout_ms: 20,
            ..LiveOptions::new("lo")
        };
        let mut source = LiveSource::open(&opts).unwrap_or_else(|e| panic!("{e}"));
        let stop = source.stop_handle();
        let started = Instant::now();
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            stop.store(true, Ordering::Relaxed);
        });
        assert!(source.next_packet().unwrap().is_none());
        stopper.join().unwrap();
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(source.summary().dropped.is_some());

        let opts = LiveOptions {
            duration: Some(Duration::from_millis(50)),
            ..opts
        };
        let mut source = LiveSource::open(&opts).unwrap_or_else(|e| panic!("{e}"));
        assert!(source.next_packet().unwrap().is_none());
    }

    #[test]
    fn bad_filter_is_a_clear_error() {
        let opts = LiveOptions {
            bpf: Some("tcp port banana".to_string()),
            ..LiveOptions::new("lo")
        };
        match LiveSource::open(&opts) {
            Ok(_) => panic!("accepted a bad filter"),
            Err(error) => assert!(
                error
                    .to_string()
                    .contains("invalid BPF filter \"tcp port banana\""),
                "{error}"
            ),
        }
    }
}
