//! Userspace delaying TCP proxy: `wirelag inject delay --backend proxy`, for hosts without
//! kernel netem or without CAP_NET_ADMIN.
//!
//! [`ProxyHandle::start`] listens on [`ProxyConfig::listen`] and, for every accepted client,
//! connects to [`ProxyConfig::upstream`] and relays both directions, each delayed on its own
//! ([`ProxyConfig::to_upstream`], [`ProxyConfig::to_client`]).
//!
//! # Timing
//! Every read (up to 64 KiB) is a *chunk*, stamped with the instant the read returned. A chunk
//! arriving at `t` is released (written to the other side) at `t + delay`, where `delay` is the
//! direction's base plus a jitter drawn uniformly from `[-jitter, +jitter]` and floored at zero,
//! so no chunk is ever released before it arrived. Delays do not accumulate: the release is
//! computed from the chunk's own arrival, not from the previous chunk's release. Order is always
//! kept: a chunk is released no earlier than the previous chunk of its direction, so with jitter
//! a chunk may leave later than its own draw (netem reorders instead; a byte stream cannot). The
//! FIN is scheduled like a chunk: a half-close reaches the other side one delay after it
//! arrived, after all the data before it. Reading starts once the upstream connect has
//! completed, so data a client sends earlier is stamped then (it waits in the kernel meanwhile).
//!
//! Both sockets get TCP_NODELAY, so the proxy adds no Nagle delay of its own.
//! [`DirectionStats::max_lateness`] reports how late the proxy started writing a chunk compared
//! to its scheduled release (scheduler slack, or backpressure from the receiver).
//!
//! # Closing
//! - A half-close (EOF from one side) is forwarded as `shutdown(Write)` toward the other side,
//!   after the queued data, at its scheduled time; the other direction keeps flowing.
//! - A read or write error (RST included) aborts the connection: queued data is dropped and both
//!   sockets are shut down. The std library cannot set `SO_LINGER 0`, so the peers see a FIN
//!   (or an RST from their own kernel if they still write), not a forwarded RST.
//! - An upstream connect failure (refused, unreachable, [`ProxyConfig::connect_timeout`]) closes
//!   the client connection and is counted in [`ProxyStats::upstream_connect_failures`].
//!
//! # Bounds
//! - Connections: at most [`ProxyConfig::max_connections`] are served at once; further accepts
//!   are closed at once and counted in [`ProxyStats::refused`].
//! - Memory: each direction of each connection holds at most
//!   [`ProxyConfig::max_buffered_bytes`] of data read and not yet written (plus one 64 KiB read
//!   buffer). At the cap the reader stops reading, so the sender gets TCP backpressure.
//! - Threads (std only, no async runtime): one acceptor, and per connection a supervisor that
//!   connects upstream and writes toward the client, a writer toward upstream and one reader per
//!   side: at most `1 + 4 * max_connections`.
//!
//! # Shutdown
//! [`ProxyHandle::shutdown`] (or dropping the handle) stops accepting, aborts every connection
//! (shutting both sockets down wakes any blocked read or write; queue waits are woken by their
//! condition variable), wakes the acceptor with a connection to itself, and joins every thread,
//! giving up after about a second. The only thread that can outlive that is one still inside a
//! blocking upstream connect (std has no interruptible connect); it ends on its own within
//! `connect_timeout` and is counted in [`ProxyStats::detached_threads`].
//!
//! ```no_run
//! use std::net::{Ipv4Addr, SocketAddr};
//! use std::time::Duration;
//! use wirelag::inject::proxy::{DirectionDelay, ProxyConfig, ProxyHandle};
//! use wirelag::signals::StopFlag;
//!
//! # fn main() -> std::io::Result<()> {
//! let listen = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 13306));
//! let mut cfg = ProxyConfig::new(listen, SocketAddr::from((Ipv4Addr::LOCALHOST, 3306)));
//! cfg.to_upstream = DirectionDelay::fixed(Duration::from_millis(20));
//! let proxy = ProxyHandle::start(cfg)?;
//! let stop = StopFlag::from_signals()?;
//! stop.wait_until(None);
//! println!("{}", proxy.shutdown());
//! # Ok(())
//! # }
//! ```

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Largest single read, hence largest chunk.
const READ_CHUNK: usize = 64 * 1024;
/// How long [`ProxyHandle::shutdown`] waits for threads before leaving them detached.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// Timeout of the connection that wakes the acceptor out of `accept()`.
const WAKE_TIMEOUT: Duration = Duration::from_millis(200);
/// Pause after a failed `accept()` (e.g. EMFILE), so a pending connection is not spun on.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(20);
/// The largest base delay or jitter accepted; beyond it a "delay" is an outage.
pub const MAX_DELAY: Duration = Duration::from_secs(3600);
/// Stack size of the proxy's threads: they keep no large data on the stack.
const THREAD_STACK: usize = 256 * 1024;

/// The delay applied to one direction's data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionDelay {
    /// Added to every chunk's arrival time.
    pub base: Duration,
    /// Uniform in `[-jitter, +jitter]` around `base`; the total is floored at zero and the
    /// release never precedes the previous chunk's (order is kept).
    pub jitter: Duration,
}

impl DirectionDelay {
    /// No delay: data is relayed as soon as it is read.
    pub const NONE: DirectionDelay = DirectionDelay {
        base: Duration::ZERO,
        jitter: Duration::ZERO,
    };

    /// A constant delay without jitter.
    pub fn fixed(base: Duration) -> Self {
        DirectionDelay {
            base,
            jitter: Duration::ZERO,
        }
    }

    /// One draw of this direction's delay.
    fn sample(&self, rng: &mut SplitMix64) -> Duration {
        if self.jitter.is_zero() {
            return self.base;
        }
        // Both are at most MAX_DELAY (validated), so nanoseconds fit easily in u64/i128.
        let jitter_ns = u64::try_from(self.jitter.as_nanos()).unwrap_or(u64::MAX / 4);
        let base_ns = i128::try_from(self.base.as_nanos()).unwrap_or(0);
        let offset = i128::from(rng.below(2 * jitter_ns + 1)) - i128::from(jitter_ns);
        let total = (base_ns + offset).max(0);
        Duration::from_nanos(u64::try_from(total).unwrap_or(u64::MAX))
    }
}

impl fmt::Display for DirectionDelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", fmt_ms(self.base))?;
        if !self.jitter.is_zero() {
            write!(f, " ± {}", fmt_ms(self.jitter))?;
        }
        Ok(())
    }
}

/// What [`ProxyHandle::start`] needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Where clients connect; port 0 picks a free port (see [`ProxyHandle::local_addr`]).
    pub listen: SocketAddr,
    /// The real server.
    pub upstream: SocketAddr,
    /// Delay of client → server data (and of the client's FIN).
    pub to_upstream: DirectionDelay,
    /// Delay of server → client data (and of the server's FIN).
    pub to_client: DirectionDelay,
    /// Connections served at once; further accepts are closed at once and counted. At least 1.
    pub max_connections: usize,
    /// Bytes read and not yet written, per direction per connection; at the cap the reader
    /// stops reading (TCP backpressure). At least 1.
    pub max_buffered_bytes: usize,
    /// Limit on each upstream connect. Not zero.
    pub connect_timeout: Duration,
}

impl ProxyConfig {
    /// No delay either way, 128 connections, 1 MiB per direction, 5 s connect timeout.
    pub fn new(listen: SocketAddr, upstream: SocketAddr) -> Self {
        ProxyConfig {
            listen,
            upstream,
            to_upstream: DirectionDelay::NONE,
            to_client: DirectionDelay::NONE,
            max_connections: 128,
            max_buffered_bytes: 1 << 20,
            connect_timeout: Duration::from_secs(5),
        }
    }

    fn delay(&self, dir: Direction) -> DirectionDelay {
        match dir {
            Direction::ToUpstream => self.to_upstream,
            Direction::ToClient => self.to_client,
        }
    }

    /// The checks [`ProxyHandle::start`] makes before binding (`InvalidInput` errors).
    pub fn validate(&self) -> io::Result<()> {
        let invalid = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        if self.max_connections == 0 {
            return invalid("proxy: max_connections must be at least 1".into());
        }
        if self.max_buffered_bytes == 0 {
            return invalid("proxy: max_buffered_bytes must be at least 1".into());
        }
        if self.connect_timeout.is_zero() {
            return invalid("proxy: connect_timeout must not be zero".into());
        }
        for (name, d) in [
            ("to_upstream", self.to_upstream),
            ("to_client", self.to_client),
        ] {
            if d.base > MAX_DELAY || d.jitter > MAX_DELAY {
                return invalid(format!(
                    "proxy: {name} delay {d} is over the {} limit",
                    fmt_ms(MAX_DELAY)
                ));
            }
        }
        Ok(())
    }
}

/// Counters of one direction, summed over connections (maxima: over connections).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Bytes written to the receiving side.
    pub bytes: u64,
    /// Chunks (reads) written to the receiving side.
    pub chunks: u64,
    /// Highest number of bytes read and not yet written seen in one connection's direction;
    /// never above [`ProxyConfig::max_buffered_bytes`].
    pub max_buffered_bytes: usize,
    /// Largest gap between a chunk's scheduled release and the moment its write began.
    pub max_lateness: Duration,
}

/// A snapshot of the proxy's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections accepted and served (refused ones excluded).
    pub accepted: u64,
    /// Connections closed at once because `max_connections` were being served.
    pub refused: u64,
    /// Connections closed because the upstream connect failed or timed out.
    pub upstream_connect_failures: u64,
    /// Failed `accept()` calls, and connections dropped because a thread could not be spawned.
    pub accept_errors: u64,
    /// Connections being served now (including those still connecting upstream).
    pub active: u64,
    /// Connections ended by an error (upstream connect failures included), a reset or
    /// shutdown, rather than by both sides' FINs.
    pub aborted: u64,
    /// Threads [`ProxyHandle::shutdown`] gave up waiting for (stuck in an upstream connect).
    pub detached_threads: u64,
    pub to_upstream: DirectionStats,
    pub to_client: DirectionStats,
}

impl fmt::Display for ProxyStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "connections: {} accepted, {} refused (limit), {} upstream connect failures, \
             {} active, {} aborted",
            self.accepted, self.refused, self.upstream_connect_failures, self.active, self.aborted
        )?;
        if self.accept_errors > 0 {
            write!(f, ", {} accept errors", self.accept_errors)?;
        }
        if self.detached_threads > 0 {
            write!(f, ", {} threads left connecting", self.detached_threads)?;
        }
        writeln!(f)?;
        for (name, d) in [
            ("to upstream", &self.to_upstream),
            ("to client  ", &self.to_client),
        ] {
            writeln!(
                f,
                "{name}: {} bytes in {} chunks, max buffered {} bytes, max lateness {}",
                d.bytes,
                d.chunks,
                d.max_buffered_bytes,
                fmt_ms(d.max_lateness)
            )?;
        }
        Ok(())
    }
}

/// A running proxy. Dropping it shuts it down like [`ProxyHandle::shutdown`].
pub struct ProxyHandle {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
}

impl ProxyHandle {
    /// Binds `cfg.listen`, starts the acceptor thread and returns at once. Fails on a bad
    /// config (`InvalidInput`), a bind error, or an upstream that is this proxy itself.
    pub fn start(cfg: ProxyConfig) -> io::Result<ProxyHandle> {
        cfg.validate()?;
        let listener = TcpListener::bind(cfg.listen)?;
        let local_addr = listener.local_addr()?;
        if cfg.upstream == local_addr || cfg.upstream == wake_addr(local_addr) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("proxy: upstream {} is the proxy itself", cfg.upstream),
            ));
        }
        let shared = Arc::new(Shared {
            cfg,
            counters: Counters::default(),
            registry: Mutex::new(Registry::default()),
            supervisors: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("proxy-accept".into())
                .stack_size(THREAD_STACK)
                .spawn(move || accept_loop(&shared, &listener))?
        };
        Ok(ProxyHandle {
            shared,
            local_addr,
            acceptor: Some(acceptor),
        })
    }

    /// The bound address (with the real port when `listen` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn stats(&self) -> ProxyStats {
        self.shared.counters.snapshot()
    }

    /// Stops accepting, closes every connection (queued data is dropped), joins every thread
    /// within about a second and returns the final counters.
    pub fn shutdown(mut self) -> ProxyStats {
        self.stop();
        self.stats()
    }

    fn stop(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return; // already stopped
        };
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        let conns: Vec<Arc<Conn>> = {
            let mut reg = lock(&self.shared.registry);
            reg.stopping = true;
            reg.conns.values().cloned().collect()
        };
        for conn in &conns {
            conn.abort();
        }
        drop(conns);
        // The acceptor sees `stopping` on its next accept; give it one. Failure to connect
        // (it is gone already, or the backlog is full, which also wakes it) needs no handling.
        let _ = TcpStream::connect_timeout(&wake_addr(self.local_addr), WAKE_TIMEOUT);
        let counters = &self.shared.counters;
        if !join_by(acceptor, deadline) {
            counters.detached_threads.fetch_add(1, Ordering::Relaxed);
        }
        let supervisors = std::mem::take(&mut *lock(&self.shared.supervisors));
        for s in supervisors {
            if !join_by(s, deadline) {
                counters.detached_threads.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for ProxyHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyHandle")
            .field("local_addr", &self.local_addr)
            .field("upstream", &self.shared.cfg.upstream)
            .finish_non_exhaustive()
    }
}

/// Joins `h` if it finishes before `deadline`; false when it is left running (detached).
fn join_by(h: JoinHandle<()>, deadline: Instant) -> bool {
    loop {
        if h.is_finished() {
            // Our threads do not panic; if one did, its panic is not ours to propagate here.
            let _ = h.join();
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// Where to connect to reach a listener bound to `addr` (loopback for a wildcard bind).
fn wake_addr(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    ToUpstream = 0,
    ToClient = 1,
}

impl Direction {
    fn index(self) -> usize {
        self as usize
    }
}

struct Shared {
    cfg: ProxyConfig,
    counters: Counters,
    registry: Mutex<Registry>,
    /// Connection supervisors not yet joined; finished ones are reaped on each accept.
    supervisors: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Default)]
struct Registry {
    /// Set by shutdown; no connection is registered afterwards.
    stopping: bool,
    conns: HashMap<u64, Arc<Conn>>,
    next_id: u64,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    refused: AtomicU64,
    upstream_connect_failures: AtomicU64,
    accept_errors: AtomicU64,
    active: AtomicU64,
    aborted: AtomicU64,
    detached_threads: AtomicU64,
    dirs: [DirCounters; 2],
}

#[derive(Default)]
struct DirCounters {
    bytes: AtomicU64,
    chunks: AtomicU64,
    max_buffered: AtomicUsize,
    max_lateness_ns: AtomicU64,
}

impl DirCounters {
    fn snapshot(&self) -> DirectionStats {
        DirectionStats {
            bytes: self.bytes.load(Ordering::Relaxed),
            chunks: self.chunks.load(Ordering::Relaxed),
            max_buffered_bytes: self.max_buffered.load(Ordering::Relaxed),
            max_lateness: Duration::from_nanos(self.max_lateness_ns.load(Ordering::Relaxed)),
        }
    }
}

impl Counters {
    fn snapshot(&self) -> ProxyStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ProxyStats {
            accepted: get(&self.accepted),
            refused: get(&self.refused),
            upstream_connect_failures: get(&self.upstream_connect_failures),
            accept_errors: get(&self.accept_errors),
            active: get(&self.active),
            aborted: get(&self.aborted),
            detached_threads: get(&self.detached_threads),
            to_upstream: self.dirs[Direction::ToUpstream.index()].snapshot(),
            to_client: self.dirs[Direction::ToClient.index()].snapshot(),
        }
    }
}

/// A lock that survives a poisoned mutex: the state behind ours stays consistent at every
/// unlock, and the proxy must keep closing connections even if some thread panicked.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name(name.into())
        .stack_size(THREAD_STACK)
        .spawn(f)
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    let counters = &shared.counters;
    loop {
        let accepted = listener.accept();
        if lock(&shared.registry).stopping {
            return;
        }
        let client = match accepted {
            Ok((client, _peer)) => client,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                counters.accept_errors.fetch_add(1, Ordering::Relaxed);
                thread::sleep(ACCEPT_ERROR_BACKOFF);
                continue;
            }
        };
        reap_finished(shared);
        // Only this thread increments `active`, so the check cannot be raced past the cap.
        let active = counters.active.load(Ordering::SeqCst);
        if usize::try_from(active).unwrap_or(usize::MAX) >= shared.cfg.max_connections {
            counters.refused.fetch_add(1, Ordering::Relaxed);
            drop(client);
            continue;
        }
        let conn = {
            let mut reg = lock(&shared.registry);
            if reg.stopping {
                return;
            }
            let id = reg.next_id;
            reg.next_id += 1;
            let conn = Arc::new(Conn::new(id, client));
            reg.conns.insert(id, Arc::clone(&conn));
            conn
        };
        counters.active.fetch_add(1, Ordering::SeqCst);
        counters.accepted.fetch_add(1, Ordering::Relaxed);
        let spawned = {
            let (shared, conn) = (Arc::clone(shared), Arc::clone(&conn));
            spawn("proxy-conn", move || supervise(&shared, &conn))
        };
        match spawned {
            Ok(h) => lock(&shared.supervisors).push(h),
            Err(_) => {
                counters.accept_errors.fetch_add(1, Ordering::Relaxed);
                conn.abort();
                finish(shared, &conn);
            }
        }
    }
}

/// Joins the supervisors that have ended, so the list stays bounded by `max_connections`.
fn reap_finished(shared: &Shared) {
    let mut sups = lock(&shared.supervisors);
    let (done, running): (Vec<_>, Vec<_>) = sups.drain(..).partition(|h| h.is_finished());
    *sups = running;
    drop(sups);
    for h in done {
        let _ = h.join();
    }
}

/// Deregisters a connection whose threads have all ended.
fn finish(shared: &Shared, conn: &Conn) {
    lock(&shared.registry).conns.remove(&conn.id);
    if conn.aborted.load(Ordering::SeqCst) {
        shared.counters.aborted.fetch_add(1, Ordering::Relaxed);
    }
    shared.counters.active.fetch_sub(1, Ordering::SeqCst);
}

/// One connection: connect upstream, start the readers and the writer toward upstream, write
/// toward the client on this thread, then wait for all of them.
fn supervise(shared: &Arc<Shared>, conn: &Arc<Conn>) {
    relay(shared, conn);
    finish(shared, conn);
}

fn relay(shared: &Arc<Shared>, conn: &Arc<Conn>) {
    // A failure to set TCP_NODELAY leaves a working (if Nagle-delayed) socket: not fatal.
    let _ = conn.client.set_nodelay(true);
    let cfg = &shared.cfg;
    let upstream = match TcpStream::connect_timeout(&cfg.upstream, cfg.connect_timeout) {
        Ok(s) => Arc::new(s),
        Err(_) => {
            if !conn.aborted.load(Ordering::SeqCst) {
                shared
                    .counters
                    .upstream_connect_failures
                    .fetch_add(1, Ordering::Relaxed);
            }
            conn.abort();
            return;
        }
    };
    let _ = upstream.set_nodelay(true);
    if !conn.attach_upstream(&upstream) {
        return; // shut down while connecting
    }
    let spawned = [
        spawn("proxy-read-c", {
            let (shared, conn) = (Arc::clone(shared), Arc::clone(conn));
            move || read_side(&shared, &conn, Direction::ToUpstream, &conn.client)
        }),
        spawn("proxy-read-u", {
            let (shared, conn, up) = (Arc::clone(shared), Arc::clone(conn), Arc::clone(&upstream));
            move || read_side(&shared, &conn, Direction::ToClient, &up)
        }),
        spawn("proxy-write-u", {
            let (shared, conn, up) = (Arc::clone(shared), Arc::clone(conn), Arc::clone(&upstream));
            move || write_side(&shared, &conn, Direction::ToUpstream, &up)
        }),
    ];
    if spawned.iter().all(Result::is_ok) {
        write_side(shared, conn, Direction::ToClient, &conn.client);
    } else {
        shared
            .counters
            .accept_errors
            .fetch_add(1, Ordering::Relaxed);
        conn.abort();
    }
    for worker in spawned.into_iter().flatten() {
        let _ = worker.join();
    }
}

/// Reads `src` into the direction's queue until EOF (queued as a FIN), an error (abort) or
/// an abort.
fn read_side(shared: &Shared, conn: &Conn, dir: Direction, mut src: &TcpStream) {
    let delay = shared.cfg.delay(dir);
    let max = shared.cfg.max_buffered_bytes;
    let queue = &conn.queues[dir.index()];
    let high_water = &shared.counters.dirs[dir.index()].max_buffered;
    let mut rng = SplitMix64::seeded(conn.id.wrapping_mul(2).wrapping_add(dir as u64));
    let mut scratch = vec![0u8; READ_CHUNK];
    loop {
        let Some(room) = queue.wait_for_room(max) else {
            return;
        };
        let want = room.min(READ_CHUNK);
        match src.read(&mut scratch[..want]) {
            Ok(0) => {
                queue.push_fin(Instant::now(), delay.sample(&mut rng));
                return;
            }
            Ok(n) => {
                let arrival = Instant::now();
                let data = scratch[..n].to_vec();
                match queue.push(data, arrival, delay.sample(&mut rng)) {
                    Some(buffered) => {
                        high_water.fetch_max(buffered, Ordering::Relaxed);
                    }
                    None => return,
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                conn.abort();
                return;
            }
        }
    }
}

/// Writes the direction's queue to `dst`, each chunk at its release time, then forwards the
/// FIN; any write error aborts the connection.
fn write_side(shared: &Shared, conn: &Conn, dir: Direction, mut dst: &TcpStream) {
    let queue = &conn.queues[dir.index()];
    let counters = &shared.counters.dirs[dir.index()];
    loop {
        match queue.next_due() {
            Due::Chunk(chunk) => {
                let late = Instant::now().saturating_duration_since(chunk.release);
                let late_ns = u64::try_from(late.as_nanos()).unwrap_or(u64::MAX);
                counters
                    .max_lateness_ns
                    .fetch_max(late_ns, Ordering::Relaxed);
                if dst.write_all(&chunk.data).is_err() {
                    conn.abort();
                    return;
                }
                queue.written(chunk.data.len());
                let len = u64::try_from(chunk.data.len()).unwrap_or(u64::MAX);
                counters.bytes.fetch_add(len, Ordering::Relaxed);
                counters.chunks.fetch_add(1, Ordering::Relaxed);
            }
            Due::Fin => {
                if dst.shutdown(Shutdown::Write).is_err() {
                    conn.abort();
                }
                return;
            }
            Due::Aborted => return,
        }
    }
}

/// The state of one accepted client, shared by its threads and by shutdown.
struct Conn {
    id: u64,
    client: TcpStream,
    /// Set once connected; kept here so an abort can shut it down.
    upstream: Mutex<Option<Arc<TcpStream>>>,
    aborted: AtomicBool,
    /// Indexed by [`Direction::index`].
    queues: [Queue; 2],
}

impl Conn {
    fn new(id: u64, client: TcpStream) -> Self {
        Conn {
            id,
            client,
            upstream: Mutex::new(None),
            aborted: AtomicBool::new(false),
            queues: [Queue::default(), Queue::default()],
        }
    }

    /// Drops queued data, wakes every thread of the connection and shuts both sockets down,
    /// which also ends any read or write blocked on them. Idempotent.
    fn abort(&self) {
        self.aborted.store(true, Ordering::SeqCst);
        // Errors here mean the socket is already disconnected, which is the goal.
        let _ = self.client.shutdown(Shutdown::Both);
        if let Some(up) = lock(&self.upstream).as_ref() {
            let _ = up.shutdown(Shutdown::Both);
        }
        for q in &self.queues {
            q.abort();
        }
    }

    /// Records the upstream socket; false (and the socket shut down) if the connection was
    /// aborted meanwhile. `abort` sets the flag before taking the lock, so one of the two
    /// always sees the other.
    fn attach_upstream(&self, up: &Arc<TcpStream>) -> bool {
        *lock(&self.upstream) = Some(Arc::clone(up));
        if self.aborted.load(Ordering::SeqCst) {
            let _ = up.shutdown(Shutdown::Both);
            return false;
        }
        true
    }
}

struct Chunk {
    data: Vec<u8>,
    release: Instant,
}

/// One direction's byte-bounded queue, between its reader and its writer.
#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    /// Signalled on push, on write completion and on abort; reader and writer both wait on it.
    changed: Condvar,
}

#[derive(Default)]
struct QueueState {
    chunks: VecDeque<Chunk>,
    /// Bytes read and not yet written: the queued chunks plus the one being written.
    buffered: usize,
    /// Release time of the newest chunk (or FIN): the floor for the next one, to keep order.
    last_release: Option<Instant>,
    /// Release time of the FIN, once the reader has seen EOF.
    fin_release: Option<Instant>,
    aborted: bool,
}

enum Due {
    Chunk(Chunk),
    Fin,
    Aborted,
}

/// When data (or a FIN) arriving at `arrival` with a drawn `delay` is released: at
/// `arrival + delay`, but never before the direction's previous release, so order is kept.
fn release_time(arrival: Instant, delay: Duration, previous: Option<Instant>) -> Instant {
    // `delay` is at most 2 * MAX_DELAY, so the addition cannot overflow in practice.
    let own = arrival.checked_add(delay).unwrap_or(arrival);
    previous.map_or(own, |p| p.max(own))
}

impl Queue {
    fn wait<'a>(&self, guard: MutexGuard<'a, QueueState>) -> MutexGuard<'a, QueueState> {
        self.changed
            .wait(guard)
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Blocks until fewer than `max` bytes are buffered; the room left, or None once aborted.
    fn wait_for_room(&self, max: usize) -> Option<usize> {
        let mut st = lock(&self.state);
        loop {
            if st.aborted {
                return None;
            }
            if st.buffered < max {
                return Some(max - st.buffered);
            }
            st = self.wait(st);
        }
    }

    /// Queues a chunk; the bytes now buffered, or None once aborted.
    fn push(&self, data: Vec<u8>, arrival: Instant, delay: Duration) -> Option<usize> {
        let mut st = lock(&self.state);
        if st.aborted {
            return None;
        }
        let release = release_time(arrival, delay, st.last_release);
        st.last_release = Some(release);
        st.buffered += data.len();
        st.chunks.push_back(Chunk { data, release });
        let buffered = st.buffered;
        drop(st);
        self.changed.notify_all();
        Some(buffered)
    }

    fn push_fin(&self, arrival: Instant, delay: Duration) {
        let mut st = lock(&self.state);
        if st.aborted {
            return;
        }
        let release = release_time(arrival, delay, st.last_release);
        st.last_release = Some(release);
        st.fin_release = Some(release);
        drop(st);
        self.changed.notify_all();
    }

    /// Blocks until the front chunk (or, with the queue empty, the FIN) is due, or an abort.
    /// A chunk handed out stays counted in `buffered` until [`Queue::written`].
    fn next_due(&self) -> Due {
        let mut st = lock(&self.state);
        loop {
            if st.aborted {
                return Due::Aborted;
            }
            let due = match st.chunks.front() {
                Some(c) => Some(c.release),
                None => st.fin_release,
            };
            let Some(due) = due else {
                st = self.wait(st);
                continue;
            };
            let now = Instant::now();
            if now >= due {
                return match st.chunks.pop_front() {
                    Some(c) => Due::Chunk(c),
                    None => Due::Fin,
                };
            }
            st = self
                .changed
                .wait_timeout(st, due - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn written(&self, len: usize) {
        let mut st = lock(&self.state);
        st.buffered = st.buffered.saturating_sub(len);
        drop(st);
        self.changed.notify_all();
    }

    fn abort(&self) {
        let mut st = lock(&self.state);
        st.aborted = true;
        st.chunks.clear();
        st.buffered = 0;
        drop(st);
        self.changed.notify_all();
    }
}

/// SplitMix64: a small, fast generator for jitter draws (no dependency for a few random
/// numbers; statistical quality far beyond what a delay distribution needs).
struct SplitMix64(u64);

impl SplitMix64 {
    /// Seeded from std's per-process random hasher keys, mixed with `salt`.
    fn seeded(salt: u64) -> Self {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(salt);
        SplitMix64(h.finish())
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2^-20 for n < 2^44).
    fn below(&mut self, n: u64) -> u64 {
        let wide = u128::from(self.next_u64()) * u128::from(n);
        u64::try_from(wide >> 64).unwrap_or(0)
    }
}

/// Milliseconds with up to three decimals: "30 ms", "0.213 ms".
fn fmt_ms(d: Duration) -> String {
    let us = d.as_micros();
    if us % 1000 == 0 {
        format!("{} ms", us / 1000)
    } else {
        format!("{}.{:03} ms", us / 1000, us % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Socket timeouts in tests: nothing may block longer, whatever the proxy does.
    const IO_TIMEOUT: Duration = Duration::from_secs(10);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn loopback() -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
    }

    /// A test server: accepts (for at most 30 s, until dropped) and runs `handler` on each
    /// connection in its own thread; dropping it joins them all.
    struct Upstream {
        addr: SocketAddr,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl Upstream {
        fn spawn(handler: impl Fn(TcpStream) + Send + Sync + 'static) -> Self {
            let listener = TcpListener::bind(loopback()).unwrap();
            listener.set_nonblocking(true).unwrap();
            let addr = listener.local_addr().unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let handler = Arc::new(handler);
            let flag = Arc::clone(&stop);
            let thread = thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(30);
                let mut conns = Vec::new();
                while !flag.load(Ordering::SeqCst) && Instant::now() < deadline {
                    match listener.accept() {
                        Ok((s, _)) => {
                            s.set_nonblocking(false).unwrap();
                            s.set_nodelay(true).unwrap();
                            s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                            s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
                            let h = Arc::clone(&handler);
                            conns.push(thread::spawn(move || h(s)));
                        }
                        Err(_) => thread::sleep(ms(1)),
                    }
                }
                for c in conns {
                    c.join().unwrap();
                }
            });
            Upstream {
                addr,
                stop,
                thread: Some(thread),
            }
        }
    }

    impl Drop for Upstream {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn echo(mut s: TcpStream) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = s.shutdown(Shutdown::Write);
    }

    /// A server that reads `n` bytes and sends each byte with the instant it was read.
    fn recorder(n: usize, tx: mpsc::Sender<Vec<(u8, Instant)>>) -> Upstream {
        Upstream::spawn(move |mut s| {
            let mut seen = Vec::new();
            let mut buf = [0u8; 256];
            while seen.len() < n {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => {
                        let at = Instant::now();
                        seen.extend(buf[..k].iter().map(|&b| (b, at)));
                    }
                }
            }
            let _ = tx.send(seen);
        })
    }

    fn config(upstream: SocketAddr, to_upstream_ms: u64, to_client_ms: u64) -> ProxyConfig {
        let mut cfg = ProxyConfig::new(loopback(), upstream);
        cfg.to_upstream = DirectionDelay::fixed(ms(to_upstream_ms));
        cfg.to_client = DirectionDelay::fixed(ms(to_client_ms));
        cfg.connect_timeout = Duration::from_secs(2);
        cfg
    }

    fn client(addr: SocketAddr) -> TcpStream {
        let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        s
    }

    /// Polls `f` every 5 ms for at most 5 s.
    fn eventually(f: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if f() {
                return true;
            }
            thread::sleep(ms(5));
        }
        f()
    }

    /// One 8-byte message through an echo server; the time it took.
    fn echo_once(c: &mut TcpStream, tag: u8) -> Duration {
        let sent = Instant::now();
        c.write_all(&[tag; 8]).unwrap();
        let mut back = [0u8; 8];
        c.read_exact(&mut back).unwrap();
        assert_eq!(back, [tag; 8]);
        sent.elapsed()
    }

    fn median(mut v: Vec<Duration>) -> Duration {
        v.sort();
        v[v.len() / 2]
    }

    /// The peer closed: EOF or a reset, not a timeout.
    fn assert_closed(mut s: &TcpStream) {
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!("read {n} bytes from a connection that should be closed"),
            Err(e) => assert!(
                !matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ),
                "connection still open: {e}"
            ),
        }
    }

    fn round_trips(to_upstream_ms: u64, to_client_ms: u64) -> (Vec<Duration>, ProxyStats) {
        let up = Upstream::spawn(echo);
        let proxy = ProxyHandle::start(config(up.addr, to_upstream_ms, to_client_ms)).unwrap();
        let mut c = client(proxy.local_addr());
        let rts: Vec<Duration> = (0..6).map(|i| echo_once(&mut c, i)).collect();
        (rts, proxy.shutdown())
    }

    #[test]
    fn delays_client_to_server_only() {
        let (rts, stats) = round_trips(30, 0);
        for rt in &rts {
            assert!(*rt >= ms(30) && *rt < ms(1000), "{rts:?}");
        }
        // Delaying both directions would make every round trip at least 60 ms.
        assert!(median(rts.clone()) < ms(60), "{rts:?}");
        assert_eq!(stats.accepted, 1);
        assert_eq!((stats.to_upstream.bytes, stats.to_upstream.chunks), (48, 6));
        assert_eq!((stats.to_client.bytes, stats.to_client.chunks), (48, 6));
        assert_eq!((stats.active, stats.detached_threads), (0, 0));
    }

    #[test]
    fn delays_server_to_client_only() {
        let (rts, stats) = round_trips(0, 40);
        for rt in &rts {
            assert!(*rt >= ms(40) && *rt < ms(1000), "{rts:?}");
        }
        assert!(median(rts.clone()) < ms(80), "{rts:?}");
        assert_eq!(stats.to_client.bytes, 48);
    }

    #[test]
    fn delay_counts_from_each_chunks_arrival_not_the_previous_release() {
        let (tx, rx) = mpsc::channel();
        let up = recorder(50, tx);
        let proxy = ProxyHandle::start(config(up.addr, 20, 0)).unwrap();
        let mut c = client(proxy.local_addr());
        let mut sent = Vec::new();
        for i in 0..50u8 {
            sent.push(Instant::now());
            c.write_all(&[i]).unwrap();
            thread::sleep(ms(2));
        }
        let seen = rx.recv_timeout(IO_TIMEOUT).unwrap();
        let bytes: Vec<u8> = seen.iter().map(|&(b, _)| b).collect();
        assert_eq!(bytes, (0..50).collect::<Vec<u8>>());
        for (i, &(_, at)) in seen.iter().enumerate() {
            assert!(at >= sent[i] + ms(20), "byte {i} early");
        }
        // Accumulating delays would put the last byte 50 x 20 ms = 1 s behind.
        let last = seen[49].1 - sent[49];
        assert!(last < ms(170), "last byte {last:?} after it was sent");
        let stats = proxy.shutdown();
        assert!(stats.to_upstream.max_lateness < ms(150), "{stats}");
    }

    #[test]
    fn jitter_keeps_order_and_stays_in_bounds() {
        let (tx, rx) = mpsc::channel();
        let up = recorder(30, tx);
        let mut cfg = config(up.addr, 0, 0);
        cfg.to_upstream = DirectionDelay {
            base: ms(20),
            jitter: ms(15),
        };
        let proxy = ProxyHandle::start(cfg).unwrap();
        let mut c = client(proxy.local_addr());
        let mut sent = Vec::new();
        for i in 0..30u8 {
            sent.push(Instant::now());
            c.write_all(&[i]).unwrap();
            thread::sleep(ms(1));
        }
        let seen = rx.recv_timeout(IO_TIMEOUT).unwrap();
        let bytes: Vec<u8> = seen.iter().map(|&(b, _)| b).collect();
        assert_eq!(bytes, (0..30).collect::<Vec<u8>>());
        for (i, &(_, at)) in seen.iter().enumerate() {
            assert!(at >= sent[i] + ms(5), "byte {i} earlier than base - jitter");
        }
        assert!(seen[29].1 - sent[29] < ms(35 + 150));
        drop(proxy);
    }

    #[test]
    fn two_megabytes_arrive_intact_and_in_order_within_the_buffer_cap() {
        let up = Upstream::spawn(echo);
        let mut cfg = config(up.addr, 5, 5);
        cfg.max_buffered_bytes = 64 * 1024;
        let proxy = ProxyHandle::start(cfg).unwrap();
        let mut rng = SplitMix64(0x5eed);
        let data: Vec<u8> = (0..2_000_000).map(|_| rng.next_u64() as u8).collect();
        let c = client(proxy.local_addr());
        let mut w = c.try_clone().unwrap();
        let to_send = data.clone();
        let writer = thread::spawn(move || -> io::Result<()> {
            for part in to_send.chunks(10_007) {
                w.write_all(part)?;
            }
            w.shutdown(Shutdown::Write)
        });
        let mut got = Vec::new();
        (&c).read_to_end(&mut got).unwrap();
        writer.join().unwrap().unwrap();
        assert_eq!(got.len(), data.len());
        assert!(got == data, "bytes differ");
        assert!(eventually(|| proxy.stats().active == 0));
        let stats = proxy.shutdown();
        for d in [stats.to_upstream, stats.to_client] {
            assert_eq!(d.bytes, 2_000_000);
            assert!(
                d.max_buffered_bytes > 0 && d.max_buffered_bytes <= 64 * 1024,
                "{stats}"
            );
        }
        assert_eq!(stats.aborted, 0);
    }

    #[test]
    fn half_close_is_delayed_and_replies_still_flow() {
        let (tx, rx) = mpsc::channel();
        let up = Upstream::spawn(move |mut s| {
            let mut got = Vec::new();
            let clean = s.read_to_end(&mut got).is_ok();
            let eof_at = Instant::now();
            let reply = format!("got {}", got.len());
            let _ = tx.send((got, clean, eof_at));
            let _ = s.write_all(reply.as_bytes());
            let _ = s.shutdown(Shutdown::Write);
        });
        let proxy = ProxyHandle::start(config(up.addr, 30, 10)).unwrap();
        let mut c = client(proxy.local_addr());
        c.write_all(b"hello").unwrap();
        thread::sleep(ms(20));
        let fin_sent = Instant::now();
        c.shutdown(Shutdown::Write).unwrap();
        let mut reply = Vec::new();
        c.read_to_end(&mut reply).unwrap();
        let replied = Instant::now();
        let (got, clean, eof_at) = rx.recv_timeout(IO_TIMEOUT).unwrap();
        assert_eq!((got.as_slice(), clean), (&b"hello"[..], true));
        assert!(eof_at >= fin_sent + ms(30), "FIN not delayed");
        assert!(eof_at < fin_sent + ms(1000));
        assert_eq!(reply, b"got 5");
        assert!(replied >= eof_at + ms(10), "reply not delayed");
        assert!(eventually(|| proxy.stats().active == 0));
        let stats = proxy.shutdown();
        assert_eq!(
            (
                stats.aborted,
                stats.to_upstream.bytes,
                stats.to_client.bytes
            ),
            (0, 5, 5)
        );
    }

    #[test]
    fn a_client_that_never_reads_backpressures_the_server() {
        const CAP: usize = 64 * 1024;
        const GIVE_UP: usize = 256 << 20;
        let (tx, rx) = mpsc::channel();
        let up = Upstream::spawn(move |mut s| {
            s.set_write_timeout(Some(ms(300))).unwrap();
            let block = [0x5au8; 64 * 1024];
            let mut total = 0usize;
            let blocked = loop {
                if total >= GIVE_UP {
                    break None;
                }
                match s.write(&block) {
                    Ok(n) => total += n,
                    Err(e) => break Some(e.kind()),
                }
            };
            let _ = tx.send((total, blocked));
        });
        let mut cfg = config(up.addr, 0, 0);
        cfg.max_buffered_bytes = CAP;
        let proxy = ProxyHandle::start(cfg).unwrap();
        let c = client(proxy.local_addr());
        let (total, blocked) = rx.recv_timeout(Duration::from_secs(20)).unwrap();
        assert!(
            matches!(
                blocked,
                Some(io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
            ),
            "server wrote {total} bytes, then {blocked:?}"
        );
        let buffered = proxy.stats().to_client.max_buffered_bytes;
        assert!(buffered > 0 && buffered <= CAP, "{buffered}");
        // The proxy's writer is blocked on the full client socket: shutdown must still be quick.
        let t = Instant::now();
        let stats = proxy.shutdown();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!(
            (stats.active, stats.aborted, stats.detached_threads),
            (0, 1, 0)
        );
        drop(c);
    }

    #[test]
    fn connections_over_the_limit_are_closed_and_counted() {
        let up = Upstream::spawn(echo);
        let mut cfg = config(up.addr, 0, 0);
        cfg.max_connections = 2;
        let proxy = ProxyHandle::start(cfg).unwrap();
        let mut a = client(proxy.local_addr());
        let mut b = client(proxy.local_addr());
        echo_once(&mut a, 1);
        echo_once(&mut b, 2);
        let extra = client(proxy.local_addr());
        assert_closed(&extra);
        assert!(eventually(|| proxy.stats().refused == 1));
        echo_once(&mut a, 3);
        // A slot freed by a closed connection is usable again.
        drop(a);
        assert!(eventually(|| proxy.stats().active == 1));
        let mut d = client(proxy.local_addr());
        echo_once(&mut d, 4);
        let stats = proxy.shutdown();
        assert_eq!((stats.accepted, stats.refused), (3, 1), "{stats}");
    }

    #[test]
    fn upstream_refusing_closes_the_client_and_is_counted() {
        // A port that was just free: nothing listens there.
        let dead = TcpListener::bind(loopback()).unwrap().local_addr().unwrap();
        let proxy = ProxyHandle::start(config(dead, 0, 0)).unwrap();
        let c = client(proxy.local_addr());
        assert_closed(&c);
        assert!(eventually(|| proxy.stats().upstream_connect_failures == 1));
        assert!(eventually(|| proxy.stats().active == 0));
        let stats = proxy.shutdown();
        assert_eq!(stats.accepted, 1);
    }

    #[test]
    fn shutdown_closes_idle_and_queued_connections_quickly() {
        let up = Upstream::spawn(echo);
        let proxy = ProxyHandle::start(config(up.addr, 5000, 0)).unwrap();
        let clients: Vec<TcpStream> = (0..3).map(|_| client(proxy.local_addr())).collect();
        assert!(eventually(|| proxy.stats().active == 3));
        (&clients[0]).write_all(b"queued for 5 s").unwrap();
        assert!(eventually(
            || proxy.stats().to_upstream.max_buffered_bytes == 14
        ));
        let t = Instant::now();
        let stats = proxy.shutdown();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!(
            (stats.active, stats.aborted, stats.detached_threads),
            (0, 3, 0)
        );
        assert_eq!(stats.to_upstream.bytes, 0);
        for c in &clients {
            assert_closed(c);
        }
    }

    #[test]
    fn bad_configs_are_refused() {
        let up: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let kind = |cfg: ProxyConfig| ProxyHandle::start(cfg).unwrap_err().kind();
        let mut cfg = config(up, 0, 0);
        cfg.max_connections = 0;
        assert_eq!(kind(cfg), io::ErrorKind::InvalidInput);
        let mut cfg = config(up, 0, 0);
        cfg.max_buffered_bytes = 0;
        assert_eq!(kind(cfg), io::ErrorKind::InvalidInput);
        let mut cfg = config(up, 0, 0);
        cfg.connect_timeout = Duration::ZERO;
        assert_eq!(kind(cfg), io::ErrorKind::InvalidInput);
        let mut cfg = config(up, 0, 0);
        cfg.to_client.jitter = MAX_DELAY + ms(1);
        assert_eq!(kind(cfg), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn release_follows_arrival_and_keeps_order() {
        let t0 = Instant::now();
        assert_eq!(release_time(t0, ms(10), None), t0 + ms(10));
        // Behind a later release, a chunk waits for it (order is kept) ...
        assert_eq!(release_time(t0, ms(10), Some(t0 + ms(50))), t0 + ms(50));
        // ... but a chunk arriving after it counts from its own arrival (no accumulation).
        assert_eq!(
            release_time(t0 + ms(100), ms(10), Some(t0 + ms(50))),
            t0 + ms(110)
        );
    }

    #[test]
    fn jitter_draws_are_uniform_around_base_and_never_negative() {
        let mut rng = SplitMix64(7);
        assert_eq!(DirectionDelay::fixed(ms(3)).sample(&mut rng), ms(3));
        let d = DirectionDelay {
            base: ms(5),
            jitter: ms(10),
        };
        let draws: Vec<Duration> = (0..4000).map(|_| d.sample(&mut rng)).collect();
        assert!(draws.iter().all(|x| *x <= ms(15)));
        // A quarter of [-5, 15] ms is below zero, floored to zero.
        let zeros = draws.iter().filter(|x| x.is_zero()).count();
        assert!((800..1200).contains(&zeros), "{zeros}");
        assert!(draws.iter().any(|x| *x > ms(14)));
        let mean = draws.iter().sum::<Duration>() / 4000;
        // E[max(U(-5, 15), 0)] = 0.75 * 7.5 = 5.625 ms.
        assert!(mean > ms(5) && mean < ms(6), "{mean:?}");
    }

    #[test]
    fn stats_print_for_the_cli() {
        let stats = ProxyStats {
            accepted: 3,
            refused: 1,
            upstream_connect_failures: 0,
            accept_errors: 0,
            active: 2,
            aborted: 0,
            detached_threads: 0,
            to_upstream: DirectionStats {
                bytes: 1200,
                chunks: 4,
                max_buffered_bytes: 512,
                max_lateness: Duration::from_micros(250),
            },
            to_client: DirectionStats::default(),
        };
        assert_eq!(
            stats.to_string(),
            "connections: 3 accepted, 1 refused (limit), 0 upstream connect failures, 2 active, \
             0 aborted\n\
             to upstream: 1200 bytes in 4 chunks, max buffered 512 bytes, max lateness 0.250 ms\n\
             to client  : 0 bytes in 0 chunks, max buffered 0 bytes, max lateness 0 ms\n"
        );
        let d = DirectionDelay {
            base: ms(20),
            jitter: Duration::from_micros(1500),
        };
        assert_eq!(d.to_string(), "20 ms ± 1.500 ms");
    }
}
