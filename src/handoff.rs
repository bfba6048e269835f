//! Hands reassembled payload from the thread that reads, decodes and tracks a capture to the
//! thread that dissects and analyses it.
//!
//! [`Forwarder`] is a [`PayloadSink`] that records every call (`roles`, `payload`,
//! `direction_closed`) into a [`Batch`]: the events in order, and the bytes of `Chunk::Data`
//! copied into one arena (the pipeline's chunks borrow its read buffer, which the next frame
//! overwrites). Full batches go over a bounded channel, so at most [`QUEUED_BATCHES`] batches are
//! in flight however large the capture; [`replay`] delivers them to the real sink in exactly the
//! order they were recorded, so the analysis sees what it would have seen on one thread. Spent
//! batches come back on a second channel and are reused, so the steady state allocates nothing.

use std::cell::Cell;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use anyhow::Context;

use wirelag_dissectors::tcp::reassembly::{Chunk, GapReason};
use wirelag_dissectors::tcp::stream::{Direction, Endpoint, PayloadSink, StreamId};
use wirelag_dissectors::Timestamp;

use crate::capture::{PacketSource, SourceSummary};
use crate::pipeline::{self, Pipeline};

/// A batch is sent once it holds this many payload bytes...
const BATCH_BYTES: usize = 256 << 10;
/// ...or this many events (payload-less events such as gaps and closes add no bytes).
const BATCH_EVENTS: usize = 4096;
/// Batches queued between the threads; with the ones being filled and replayed, memory stays
/// under (QUEUED_BATCHES + 2) × (BATCH_BYTES + one chunk).
pub const QUEUED_BATCHES: usize = 4;

/// One recorded [`PayloadSink`] call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    Roles {
        stream: StreamId,
        client: Endpoint,
        server: Endpoint,
    },
    /// `Chunk::Data` whose bytes are `bytes[start..end]` of the batch.
    Data {
        stream: StreamId,
        dir: Direction,
        start: u32,
        end: u32,
        frame: u64,
        ts: Timestamp,
    },
    Gap {
        stream: StreamId,
        dir: Direction,
        len: u64,
        frame: u64,
        ts: Timestamp,
        reason: GapReason,
    },
    Closed {
        stream: StreamId,
        dir: Direction,
        frame: u64,
        ts: Timestamp,
    },
}

/// Recorded calls and the payload bytes they refer to.
#[derive(Default)]
pub struct Batch {
    events: Vec<Event>,
    bytes: Vec<u8>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    fn clear(&mut self) {
        self.events.clear();
        self.bytes.clear();
    }

    fn is_full(&self) -> bool {
        self.bytes.len() >= BATCH_BYTES || self.events.len() >= BATCH_EVENTS
    }

    /// Delivers the recorded calls to `sink`, in order.
    fn replay(&self, sink: &mut dyn PayloadSink) {
        for ev in &self.events {
            match *ev {
                Event::Roles {
                    stream,
                    client,
                    server,
                } => sink.roles(stream, client, server),
                Event::Data {
                    stream,
                    dir,
                    start,
                    end,
                    frame,
                    ts,
                } => {
                    let bytes = self
                        .bytes
                        .get(start as usize..end as usize)
                        .unwrap_or_default();
                    sink.payload(stream, dir, Chunk::Data { bytes, frame, ts });
                }
                Event::Gap {
                    stream,
                    dir,
                    len,
                    frame,
                    ts,
                    reason,
                } => sink.payload(
                    stream,
                    dir,
                    Chunk::Gap {
                        len,
                        frame,
                        ts,
                        reason,
                    },
                ),
                Event::Closed {
                    stream,
                    dir,
                    frame,
                    ts,
                } => sink.direction_closed(stream, dir, frame, ts),
            }
        }
    }
}

/// The producer's side: a [`PayloadSink`] that batches calls for [`replay`] on another thread.
pub struct Forwarder<'a> {
    batch: Batch,
    to_consumer: SyncSender<Batch>,
    spent: Receiver<Batch>,
    /// Set when the consumer has gone (it failed or panicked): recording stops, and the reading
    /// loop can stop early.
    disconnected: &'a Cell<bool>,
    /// The last roles call forwarded: the table repeats a stream's roles before each of its
    /// segments, and a repeat of the previous call need not cross (the sink keeps the latest).
    last_roles: Option<(StreamId, Endpoint, Endpoint)>,
}

/// The channels between a [`Forwarder`] and [`replay`].
pub struct Link {
    pub to_consumer: SyncSender<Batch>,
    pub from_producer: Receiver<Batch>,
    pub spent: SyncSender<Batch>,
    pub spent_back: Receiver<Batch>,
}

impl Link {
    pub fn new() -> Link {
        let (to_consumer, from_producer) = std::sync::mpsc::sync_channel(QUEUED_BATCHES);
        // Room for every batch that can exist, so returning one never blocks the consumer.
        let (spent, spent_back) = std::sync::mpsc::sync_channel(QUEUED_BATCHES + 2);
        Link {
            to_consumer,
            from_producer,
            spent,
            spent_back,
        }
    }
}

impl Default for Link {
    fn default() -> Self {
        Link::new()
    }
}

impl<'a> Forwarder<'a> {
    pub fn new(
        to_consumer: SyncSender<Batch>,
        spent: Receiver<Batch>,
        disconnected: &'a Cell<bool>,
    ) -> Self {
        Forwarder {
            batch: Batch::default(),
            to_consumer,
            spent,
            disconnected,
            last_roles: None,
        }
    }

    fn push(&mut self, ev: Event) {
        if self.disconnected.get() {
            return;
        }
        self.batch.events.push(ev);
        if self.batch.is_full() {
            self.send();
        }
    }

    /// Sends the current batch (blocking while the queue is full) and starts a new one from a
    /// spent batch when one has come back.
    fn send(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let next = match self.spent.try_recv() {
            Ok(mut b) => {
                b.clear();
                b
            }
            Err(_) => Batch {
                events: Vec::with_capacity(self.batch.events.capacity()),
                bytes: Vec::with_capacity(self.batch.bytes.capacity()),
            },
        };
        let full = std::mem::replace(&mut self.batch, next);
        if self.to_consumer.send(full).is_err() {
            self.disconnected.set(true);
        }
    }

    /// Sends what is left; the consumer sees the end of input when the forwarder is dropped.
    pub fn flush(&mut self) {
        self.send();
    }
}

impl Drop for Forwarder<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

impl PayloadSink for Forwarder<'_> {
    fn roles(&mut self, stream: StreamId, client: Endpoint, server: Endpoint) {
        if self.last_roles == Some((stream, client, server)) {
            return;
        }
        self.last_roles = Some((stream, client, server));
        self.push(Event::Roles {
            stream,
            client,
            server,
        });
    }

    fn payload(&mut self, stream: StreamId, dir: Direction, chunk: Chunk<'_>) {
        match chunk {
            Chunk::Data { bytes, frame, ts } => {
                if self.disconnected.get() {
                    return;
                }
                // Offsets are u32: a batch is sent long before 4 GiB (chunks are bounded by the
                // capture's 64 MiB record cap).
                if self.batch.bytes.len() + bytes.len() > u32::MAX as usize {
                    self.send();
                }
                let start = self.batch.bytes.len();
                self.batch.bytes.extend_from_slice(bytes);
                let end = self.batch.bytes.len();
                self.push(Event::Data {
                    stream,
                    dir,
                    start: u32::try_from(start).unwrap_or(u32::MAX),
                    end: u32::try_from(end).unwrap_or(u32::MAX),
                    frame,
                    ts,
                });
            }
            Chunk::Gap {
                len,
                frame,
                ts,
                reason,
            } => self.push(Event::Gap {
                stream,
                dir,
                len,
                frame,
                ts,
                reason,
            }),
        }
    }

    fn direction_closed(&mut self, stream: StreamId, dir: Direction, frame: u64, ts: Timestamp) {
        self.push(Event::Closed {
            stream,
            dir,
            frame,
            ts,
        });
    }
}

/// The consumer's side: delivers every batch to `sink` until the producer's [`Forwarder`] is
/// dropped, returning each spent batch for reuse.
pub fn replay(
    from_producer: &Receiver<Batch>,
    spent: &SyncSender<Batch>,
    sink: &mut dyn PayloadSink,
) {
    for batch in from_producer {
        batch.replay(sink);
        // The producer may have finished (and dropped its end): the batch is simply freed.
        match spent.try_send(batch) {
            Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// The main pass on two threads: this one reads, decodes, tracks and reassembles (the
/// pipeline); a second one runs `sink` (for `analyze`, the dissection and analysis) on what
/// crosses over, in the order it was produced, so the result is the same as on one thread. The
/// queue between them is bounded, so memory does not grow with the capture. A panic in `sink`
/// stops the reading and is returned as an error.
pub fn run(
    source: &mut dyn PacketSource,
    pipeline: &mut Pipeline,
    sink: &mut (dyn PayloadSink + Send),
) -> anyhow::Result<SourceSummary> {
    let Link {
        to_consumer,
        from_producer,
        spent,
        spent_back,
    } = Link::new();
    std::thread::scope(|scope| {
        let consumer = std::thread::Builder::new()
            .name("wirelag-analysis".into())
            .spawn_scoped(scope, move || {
                replay(&from_producer, &spent, sink);
            })
            .context("cannot start the analysis thread")?;
        let consumer_gone = std::cell::Cell::new(false);
        let read = {
            let mut forwarder = Forwarder::new(to_consumer, spent_back, &consumer_gone);
            // Stop reading early if the analysis thread died: its panic is the error to report.
            pipeline::run(source, pipeline, &mut forwarder, &mut |_| {
                Ok(!consumer_gone.get())
            })
            // Dropping the forwarder sends the last batch and ends the consumer's loop.
        };
        match consumer.join() {
            Ok(()) => read,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                Err(anyhow::anyhow!("the analysis thread failed: {what}"))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    /// A sink that writes down every call, with the bytes of data chunks.
    #[derive(Default, Debug, PartialEq, Eq)]
    struct Recorder {
        calls: Vec<String>,
    }

    impl PayloadSink for Recorder {
        fn roles(&mut self, stream: StreamId, client: Endpoint, server: Endpoint) {
            self.calls
                .push(format!("roles {stream} {client:?} {server:?}"));
        }
        fn payload(&mut self, stream: StreamId, dir: Direction, chunk: Chunk<'_>) {
            match chunk {
                Chunk::Data { bytes, frame, ts } => {
                    // The bytes by their length and a position-weighted sum (Debug-printing
                    // them all is slow).
                    let sum = bytes.iter().enumerate().fold(0u64, |acc, (i, &b)| {
                        acc.wrapping_mul(31).wrapping_add(u64::from(b) ^ i as u64)
                    });
                    self.calls.push(format!(
                        "data {stream} {dir:?} {frame} {ts:?} {} {sum}",
                        bytes.len()
                    ));
                }
                gap => self.calls.push(format!("payload {stream} {dir:?} {gap:?}")),
            }
        }
        fn direction_closed(
            &mut self,
            stream: StreamId,
            dir: Direction,
            frame: u64,
            ts: Timestamp,
        ) {
            self.calls
                .push(format!("closed {stream} {dir:?} {frame} {ts:?}"));
        }
    }

    fn endpoint(last: u8, port: u16) -> Endpoint {
        Endpoint {
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)),
            port,
        }
    }

    /// A deterministic pseudo-random sequence of sink calls: roles (repeated, as the table
    /// repeats them, and changing), data of many sizes (empty, and larger than a batch), gaps
    /// of every reason, closes.
    fn drive(sink: &mut dyn PayloadSink, calls: usize, seed: u64) {
        let mut x = seed | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let data: Vec<u8> = (0..(BATCH_BYTES * 3)).map(|i| (i % 251) as u8).collect();
        for i in 0..calls {
            let r = next();
            let stream = (r % 7) as StreamId;
            let dir = if r & 8 == 0 {
                Direction::ToServer
            } else {
                Direction::ToClient
            };
            let frame = i as u64 + 1;
            let ts = Timestamp(1_000 * frame as i64);
            match (r >> 4) % 10 {
                0 | 1 => sink.roles(
                    stream,
                    endpoint(1, 40_000 + (r % 3) as u16),
                    endpoint(2, 3306),
                ),
                2 => {
                    let reason = match (r >> 8) % 4 {
                        0 => GapReason::AckedUnseen,
                        1 => GapReason::NeverFilled,
                        2 => GapReason::Snaplen,
                        _ => GapReason::MemoryBound,
                    };
                    sink.payload(
                        stream,
                        dir,
                        Chunk::Gap {
                            len: r >> 40,
                            frame,
                            ts,
                            reason,
                        },
                    );
                }
                3 => sink.direction_closed(stream, dir, frame, ts),
                _ => {
                    let len = match (r >> 8) % 50 {
                        0 => 0,
                        1 => BATCH_BYTES + 17 + (r >> 20) as usize % BATCH_BYTES,
                        _ => (r >> 20) as usize % 3000,
                    };
                    let start = (r >> 32) as usize % BATCH_BYTES;
                    let bytes = data.get(start..start + len).unwrap_or_default();
                    sink.payload(stream, dir, Chunk::Data { bytes, frame, ts });
                }
            }
        }
    }

    /// Runs `drive` through a forwarder and a replaying thread, returning what the sink saw.
    fn through_threads(calls: usize, seed: u64) -> Recorder {
        let link = Link::new();
        let mut seen = Recorder::default();
        std::thread::scope(|s| {
            let Link {
                to_consumer,
                from_producer,
                spent,
                spent_back,
            } = link;
            let consumer = s.spawn(move || {
                let mut r = Recorder::default();
                replay(&from_producer, &spent, &mut r);
                r
            });
            let gone = Cell::new(false);
            let mut fwd = Forwarder::new(to_consumer, spent_back, &gone);
            drive(&mut fwd, calls, seed);
            drop(fwd);
            seen = consumer.join().unwrap_or_default();
            assert!(!gone.get());
        });
        seen
    }

    /// Collapses consecutive identical roles calls for the same stream, which the forwarder
    /// legitimately skips (the analysis keeps the latest roles).
    fn without_repeated_roles(r: Recorder) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut last_roles: Option<String> = None;
        for c in r.calls {
            if c.starts_with("roles ") {
                if last_roles.as_ref() == Some(&c) {
                    continue;
                }
                last_roles = Some(c.clone());
            }
            out.push(c);
        }
        out
    }

    #[test]
    fn replay_equals_direct_delivery() {
        for (calls, seed) in [(0, 1), (1, 2), (10, 3), (5_000, 4), (40_000, 5)] {
            let mut direct = Recorder::default();
            drive(&mut direct, calls, seed);
            let replayed = through_threads(calls, seed);
            assert_eq!(
                without_repeated_roles(replayed),
                without_repeated_roles(direct),
                "calls {calls}, seed {seed}"
            );
        }
    }

    fn fixture_pipeline(name: &str) -> (crate::capture::file::FileSource, Pipeline) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name);
        let source = crate::commands::open_capture(&path).unwrap();
        let pipeline = Pipeline::new(wirelag_dissectors::tcp::stream::TrackerConfig {
            reassemble: true,
            ..Default::default()
        });
        (source, pipeline)
    }

    #[test]
    fn a_capture_run_on_two_threads_delivers_what_one_thread_delivers() {
        for name in [
            "mysql.pcap",
            "out-of-order.pcap",
            "missing-syn.pcap",
            "ssh-dups.pcap",
        ] {
            let (mut source, mut pipeline) = fixture_pipeline(name);
            let mut direct = Recorder::default();
            pipeline::run(&mut source, &mut pipeline, &mut direct, &mut |_| Ok(true)).unwrap();
            let (mut source, mut pipeline) = fixture_pipeline(name);
            let mut split = Recorder::default();
            run(&mut source, &mut pipeline, &mut split).unwrap();
            assert!(!direct.calls.is_empty(), "{name}");
            assert_eq!(
                without_repeated_roles(split),
                without_repeated_roles(direct),
                "{name}"
            );
        }
    }

    /// A sink that fails on its first payload.
    struct Panics;

    impl PayloadSink for Panics {
        fn payload(&mut self, _: StreamId, _: Direction, _: Chunk<'_>) {
            panic!("the dissector fell over");
        }
    }

    #[test]
    fn a_panic_on_the_analysis_thread_is_an_error_not_a_hang() {
        let (mut source, mut pipeline) = fixture_pipeline("mysql.pcap");
        let err = run(&mut source, &mut pipeline, &mut Panics).unwrap_err();
        assert!(
            err.to_string()
                .contains("the analysis thread failed: the dissector fell over"),
            "{err}"
        );
    }

    #[test]
    fn repeated_roles_cross_once_but_changes_all_cross() {
        let link = Link::new();
        let gone = Cell::new(false);
        let mut fwd = Forwarder::new(link.to_consumer.clone(), link.spent_back, &gone);
        let (a, b, c) = (endpoint(1, 1), endpoint(2, 3306), endpoint(3, 2));
        fwd.roles(0, a, b);
        fwd.roles(0, a, b);
        fwd.roles(1, c, b);
        fwd.roles(0, a, b);
        fwd.roles(0, b, a);
        fwd.flush();
        let batch = link.from_producer.try_recv().unwrap_or_default();
        assert_eq!(batch.events.len(), 4);
    }

    #[test]
    fn the_queue_is_bounded() {
        // Nobody consumes: the forwarder must block once QUEUED_BATCHES batches wait, so the
        // producer runs at most that far ahead.
        let link = Link::new();
        let queued = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            let Link {
                to_consumer,
                from_producer,
                spent: _,
                spent_back,
            } = link;
            let producer = s.spawn(|| {
                let gone = Cell::new(false);
                let mut fwd = Forwarder::new(to_consumer, spent_back, &gone);
                let data = vec![7u8; BATCH_BYTES];
                for i in 0..(QUEUED_BATCHES + 3) {
                    fwd.payload(
                        0,
                        Direction::ToServer,
                        Chunk::Data {
                            bytes: &data,
                            frame: i as u64,
                            ts: Timestamp(0),
                        },
                    );
                    queued.store(i + 1, std::sync::atomic::Ordering::SeqCst);
                }
            });
            // Wait until the producer stalls.
            let mut last = usize::MAX;
            loop {
                std::thread::sleep(std::time::Duration::from_millis(20));
                let now = queued.load(std::sync::atomic::Ordering::SeqCst);
                if now == last {
                    break;
                }
                last = now;
            }
            assert_eq!(last, QUEUED_BATCHES, "the producer ran ahead of the queue");
            let mut received = 0;
            for batch in from_producer {
                received += batch.events.len();
            }
            assert_eq!(received, QUEUED_BATCHES + 3);
            assert!(producer.join().is_ok());
        });
    }

    #[test]
    fn a_consumer_that_went_away_stops_recording_instead_of_hanging() {
        let link = Link::new();
        drop(link.from_producer);
        let gone = Cell::new(false);
        let mut fwd = Forwarder::new(link.to_consumer, link.spent_back, &gone);
        let data = vec![0u8; BATCH_BYTES];
        for i in 0..(QUEUED_BATCHES * 4) {
            fwd.payload(
                0,
                Direction::ToClient,
                Chunk::Data {
                    bytes: &data,
                    frame: i as u64,
                    ts: Timestamp(0),
                },
            );
        }
        assert!(gone.get());
        assert!(fwd.batch.is_empty());
    }
}
