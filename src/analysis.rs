//! Protocol analysis: routes reassembled payload to the MySQL dissector (by port, `--decode-as`
//! or content), pairs requests with responses, and accumulates what the `analyze` report shows:
//! per-stream session facts, latency distributions, transactions and the logical units whose
//! round trips an injected delay multiplies.
//!
//! Exchanges are written out, already in their final JSON form, to a spill (a small buffer that
//! overflows to a file) as they complete, so memory does not grow with the number of requests;
//! the report copies the spilled bytes back in.

use std::collections::HashMap;
use std::io::Write;

use hdrhistogram::Histogram;
use serde::Serialize;
use std::sync::Arc;
use wirelag_dissectors::mysql::{
    self, Command, Exchange, MysqlConnection, MysqlEvent, ResponseStatus,
};
use wirelag_dissectors::sql::{self, StatementClass};
use wirelag_dissectors::tcp::reassembly::Chunk;
use wirelag_dissectors::tcp::stream::{
    Direction, Endpoint, FxBuildHasher, PayloadSink, StreamId, StreamTable,
};
use wirelag_dissectors::Timestamp;

use crate::json_writer;

/// Maps on the per-exchange path, keyed by values the capture controls only within bounds
/// (their sizes are capped); their iteration order never reaches the report (it is sorted).
type FxHashMap<K, V> = HashMap<K, V, FxBuildHasher>;

/// A list of JSON objects written to an unlinked temporary file as they are produced, so that
/// report sections proportional to the capture's size do not live in memory.
///
/// The file holds the objects already in their final form, comma-separated (JSON strings
/// escape commas' meaning away only inside quotes, which [`Spill::for_each_object`] honours),
/// so that splicing them into the report is a plain byte copy.
pub struct Spill {
    file: std::fs::File,
    /// The file is the report's own output (see [`Spill::stream_to`]): what reaches it is
    /// already in place, and nothing is read back.
    direct: bool,
    /// Objects are counted and dropped (see [`Spill::discard`]).
    discard: bool,
    /// The newest objects; handed to the file when the next one would take it past `mem_cap`.
    /// A capture whose section fits stays in memory and never touches the file.
    buf: Vec<u8>,
    mem_cap: usize,
    in_file: bool,
    pub count: u64,
    error: Option<std::io::Error>,
    /// Writes full buffers to the file on a thread of its own (started at the first overflow):
    /// copying the bytes into the page cache measured about a tenth of `analyze`'s time on the
    /// analysis thread, and the other core has room for it.
    writer: Option<SpillWriter>,
    /// Encodes requests (and writes them) on a thread of its own, once a section is large
    /// enough for it to pay: see [`Spill::push_request`].
    encoder: Option<RequestEncoder>,
}

/// Requests queued for the encoder thread before a section is moved there.
const ENCODE_LOCALLY_FIRST: u64 = 1024;
/// Requests per batch handed to the encoder thread.
const REQUESTS_PER_BATCH: usize = 512;

/// A request as the encoder thread receives it: its JSON fields, with the borrowed texts
/// replaced by ranges of the batch's text.
struct RequestRecord {
    json: RequestJson<'static>,
    statement: Option<(u32, u32)>,
    fingerprint: Option<(u32, u32)>,
    error_message: Option<(u32, u32)>,
    sql_state: Option<(u32, u32)>,
}

#[derive(Default)]
struct RequestBatch {
    records: Vec<RequestRecord>,
    text: String,
}

impl RequestBatch {
    /// An empty batch with the room `full` grew to: filling it costs no reallocation.
    fn sized_like(full: &RequestBatch) -> RequestBatch {
        RequestBatch {
            records: Vec::with_capacity(full.records.capacity()),
            text: String::with_capacity(full.text.capacity()),
        }
    }

    fn push(&mut self, r: &RequestJson<'_>) {
        let mut keep = |t: Option<&str>| {
            t.map(|t| {
                let start = self.text.len();
                self.text.push_str(t);
                (
                    u32::try_from(start).unwrap_or(u32::MAX),
                    u32::try_from(self.text.len()).unwrap_or(u32::MAX),
                )
            })
        };
        let statement = keep(r.statement);
        let fingerprint = keep(r.fingerprint);
        let error_message = keep(r.error_message);
        let sql_state = keep(r.sql_state);
        self.records.push(RequestRecord {
            json: RequestJson {
                statement: None,
                fingerprint: None,
                error_message: None,
                sql_state: None,
                ..*r
            },
            statement,
            fingerprint,
            error_message,
            sql_state,
        });
    }

    /// Writes the request `r` of this batch as it was pushed.
    fn write_json(&self, r: &RequestRecord, out: &mut Vec<u8>) {
        let text = |range: Option<(u32, u32)>| {
            range.map(|(a, b)| self.text.get(a as usize..b as usize).unwrap_or_default())
        };
        RequestJson {
            statement: text(r.statement),
            fingerprint: text(r.fingerprint),
            error_message: text(r.error_message),
            sql_state: text(r.sql_state),
            ..r.json
        }
        .write_json(out);
    }

    fn clear(&mut self) {
        self.records.clear();
        self.text.clear();
    }
}

/// The thread that encodes a request section: it owns the section's in-memory buffer while it
/// runs and writes to the file what overflows, as [`Spill::push_with`] would.
struct RequestEncoder {
    batch: RequestBatch,
    to_encoder: Option<std::sync::mpsc::SyncSender<RequestBatch>>,
    spent: std::sync::mpsc::Receiver<RequestBatch>,
    thread: Option<std::thread::JoinHandle<std::io::Result<Encoded>>>,
}

/// What the encoder thread leaves: the section's in-memory buffer, and whether it wrote
/// anything to the file.
type Encoded = (Vec<u8>, bool);

impl RequestEncoder {
    fn start(
        file: &std::fs::File,
        mut buf: Vec<u8>,
        mut any: bool,
        mem_cap: usize,
    ) -> std::io::Result<RequestEncoder> {
        let mut file = file.try_clone()?;
        let (to_encoder, batches) = std::sync::mpsc::sync_channel::<RequestBatch>(4);
        let (spent_back, spent) = std::sync::mpsc::sync_channel(6);
        let thread = std::thread::Builder::new()
            .name("wirelag-requests".into())
            .spawn(move || {
                let mut in_file = false;
                buf.reserve(mem_cap + SPILL_SLACK);
                for mut batch in batches {
                    for r in &batch.records {
                        let before = buf.len();
                        if any {
                            buf.push(b',');
                        }
                        any = true;
                        batch.write_json(r, &mut buf);
                        if buf.len() > mem_cap && before > 0 {
                            file.write_all(buf.get(..before).unwrap_or_default())?;
                            in_file = true;
                            buf.drain(..before);
                        }
                    }
                    batch.clear();
                    let _ = spent_back.try_send(batch);
                }
                Ok((buf, in_file))
            })?;
        Ok(RequestEncoder {
            batch: RequestBatch::default(),
            to_encoder: Some(to_encoder),
            spent,
            thread: Some(thread),
        })
    }

    /// Hands over the current batch; false when the thread has stopped (on an error).
    fn send(&mut self) -> bool {
        if self.batch.records.is_empty() {
            return true;
        }
        let next = self
            .spent
            .try_recv()
            .unwrap_or_else(|_| RequestBatch::sized_like(&self.batch));
        let full = std::mem::replace(&mut self.batch, next);
        self.to_encoder
            .as_ref()
            .is_some_and(|tx| tx.send(full).is_ok())
    }

    /// Encodes what is left and returns the buffer and whether the file was written to.
    fn finish(&mut self) -> std::io::Result<Encoded> {
        self.send();
        self.to_encoder = None;
        match self.thread.take().map(std::thread::JoinHandle::join) {
            None => Ok((Vec::new(), false)),
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(std::io::Error::other("the request encoder thread panicked")),
        }
    }
}

impl Drop for RequestEncoder {
    fn drop(&mut self) {
        self.to_encoder = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Room past `mem_cap` in each buffer for the object that overflows it (it moves to the next
/// buffer), so a buffer is not reallocated on every overflow.
const SPILL_SLACK: usize = 64 << 10;
/// Full buffers queued for the writer thread (memory: this many more buffers, at most).
const SPILL_QUEUED: usize = 2;

/// The thread that writes a spill's full buffers to its file, in order, and hands each
/// buffer back for reuse.
struct SpillWriter {
    to_writer: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    spent: std::sync::mpsc::Receiver<Vec<u8>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl SpillWriter {
    fn start(file: &std::fs::File) -> std::io::Result<SpillWriter> {
        // A duplicate descriptor shares the file offset: the writes land where direct writes
        // would have.
        let mut file = file.try_clone()?;
        let (to_writer, full) = std::sync::mpsc::sync_channel::<Vec<u8>>(SPILL_QUEUED);
        let (spent_back, spent) = std::sync::mpsc::sync_channel(SPILL_QUEUED + 2);
        let thread = std::thread::Builder::new()
            .name("wirelag-spill".into())
            .spawn(move || {
                for mut buf in full {
                    file.write_all(&buf)?;
                    buf.clear();
                    let _ = spent_back.try_send(buf);
                }
                Ok(())
            })?;
        Ok(SpillWriter {
            to_writer: Some(to_writer),
            spent,
            thread: Some(thread),
        })
    }

    /// Waits until every buffer sent is written; the write error, if one happened.
    fn finish(&mut self) -> std::io::Result<()> {
        self.to_writer = None;
        match self.thread.take().map(std::thread::JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(std::io::Error::other("the spill writer thread panicked")),
        }
    }
}

impl Drop for SpillWriter {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

impl Spill {
    /// A spill holding up to `mem_cap` bytes in memory before it writes to its file.
    pub fn new(mem_cap: usize) -> std::io::Result<Spill> {
        Ok(Spill {
            file: unlinked_tempfile()?,
            direct: false,
            discard: false,
            buf: Vec::new(),
            mem_cap: mem_cap.max(1 << 16),
            in_file: false,
            count: 0,
            error: None,
            writer: None,
            encoder: None,
        })
    }

    /// From now on the objects go straight to `output` (a descriptor of the report's output,
    /// positioned just after the array's `[`) instead of to a temporary file: a section as large
    /// as the request list is then written once, as it is produced, rather than spilled and
    /// copied at the end. Only before the first object.
    pub fn stream_to(&mut self, output: std::fs::File) {
        debug_assert_eq!(self.count, 0, "stream_to after objects were pushed");
        self.file = output;
        self.direct = true;
    }

    /// From now on objects are only counted, neither encoded nor kept: for a section nobody
    /// will read (a baseline capture's requests, of which only the units are compared).
    pub fn discard(&mut self) {
        self.discard = true;
    }

    /// Appends one object already encoded as compact JSON.
    pub fn push_json(&mut self, object: &[u8]) {
        self.push_with(|buf| buf.extend_from_slice(object));
    }

    /// Appends one object that `encode` writes, as compact JSON, straight into the buffer.
    pub fn push_with(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        if self.discard {
            self.count += 1;
            return;
        }
        if self.error.is_some() {
            return;
        }
        if self.encoder.is_some() {
            // Requests still being encoded come first.
            if let Err(e) = self.stop_encoder() {
                self.error = Some(e);
                return;
            }
        }
        if self.buf.capacity() == 0 {
            // Reserved once: only the pages written are ever resident.
            self.buf.reserve_exact(self.mem_cap + SPILL_SLACK);
        }
        let before = self.buf.len();
        if self.count > 0 {
            self.buf.push(b',');
        }
        encode(&mut self.buf);
        self.count += 1;
        if self.buf.len() > self.mem_cap && before > 0 {
            // The objects before this one go to the file; this one (with its separator) starts
            // the next buffer.
            let mut next = self.fresh_buffer();
            next.extend_from_slice(self.buf.get(before..).unwrap_or_default());
            self.buf.truncate(before);
            let full = std::mem::replace(&mut self.buf, next);
            self.send_to_file(full);
        }
    }

    pub fn push<T: Serialize>(&mut self, value: &T) {
        match serde_json::to_vec(value) {
            Ok(v) => self.push_json(&v),
            Err(e) => {
                if self.error.is_none() {
                    self.error = Some(std::io::Error::other(e));
                }
            }
        }
    }

    /// Appends one request. Past the first requests of a section, they are encoded on a
    /// thread of their own: encoding measured a sixth of the analysis thread's time, which
    /// was the busier of the two.
    fn push_request(&mut self, r: &RequestJson<'_>) {
        if self.discard {
            self.count += 1;
            return;
        }
        if self.error.is_some() {
            return;
        }
        if self.encoder.is_none() {
            if self.count < ENCODE_LOCALLY_FIRST {
                self.push_with(|buf| r.write_json(buf));
                return;
            }
            // The encoder writes to the file itself: what the writer thread holds goes first.
            if let Err(e) = self.stop_writer() {
                self.error = Some(e);
                return;
            }
            let buf = std::mem::take(&mut self.buf);
            match RequestEncoder::start(&self.file, buf, self.count > 0, self.mem_cap) {
                Ok(e) => self.encoder = Some(e),
                Err(e) => {
                    self.error = Some(e);
                    return;
                }
            }
        }
        let Some(enc) = self.encoder.as_mut() else {
            return;
        };
        enc.batch.push(r);
        self.count += 1;
        if enc.batch.records.len() >= REQUESTS_PER_BATCH && !enc.send() {
            if let Err(e) = self.stop_encoder() {
                self.error = Some(e);
            }
            if self.error.is_none() {
                self.error = Some(std::io::Error::other("the request encoder stopped"));
            }
        }
    }

    /// Waits for the encoder thread to encode everything sent to it, and takes its buffer back.
    fn stop_encoder(&mut self) -> std::io::Result<()> {
        if let Some(mut enc) = self.encoder.take() {
            let (buf, in_file) = enc.finish()?;
            self.buf = buf;
            self.in_file |= in_file;
        }
        Ok(())
    }

    fn fresh_buffer(&mut self) -> Vec<u8> {
        self.writer
            .as_ref()
            .and_then(|w| w.spent.try_recv().ok())
            .unwrap_or_else(|| Vec::with_capacity(self.mem_cap + SPILL_SLACK))
    }

    fn send_to_file(&mut self, full: Vec<u8>) {
        self.in_file = true;
        if self.writer.is_none() {
            match SpillWriter::start(&self.file) {
                Ok(w) => self.writer = Some(w),
                Err(e) => {
                    self.error = Some(e);
                    return;
                }
            }
        }
        let sent = self
            .writer
            .as_ref()
            .and_then(|w| w.to_writer.as_ref())
            .is_some_and(|tx| tx.send(full).is_ok());
        if !sent {
            // The writer stopped: its error says why.
            let e = self
                .stop_writer()
                .err()
                .unwrap_or_else(|| std::io::Error::other("the spill writer stopped"));
            self.error = Some(e);
        }
    }

    /// Waits for the writer thread to write everything sent to it.
    fn stop_writer(&mut self) -> std::io::Result<()> {
        match self.writer.take() {
            Some(mut w) => w.finish(),
            None => Ok(()),
        }
    }

    /// Everything pushed so far is in `buf` or written to the file, or the error that stopped
    /// it is returned.
    fn settle(&mut self) -> anyhow::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e.into());
        }
        self.stop_writer()?;
        self.stop_encoder()?;
        Ok(())
    }

    /// The bytes of every object pushed so far, in order, in chunks.
    fn for_each_chunk(
        &mut self,
        mut f: impl FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        use std::io::{Read, Seek};
        self.settle()?;
        if self.direct {
            anyhow::bail!("a section streamed to the output cannot be read back");
        }
        if self.in_file {
            let mut file = &self.file;
            file.seek(std::io::SeekFrom::Start(0))?;
            let mut chunk = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                f(chunk.get(..n).unwrap_or_default())?;
            }
            file.seek(std::io::SeekFrom::End(0))?;
        }
        f(&self.buf)
    }

    /// Writes the objects as the elements of a JSON array.
    pub fn write_array(&mut self, out: &mut dyn crate::report::ReportOut) -> anyhow::Result<()> {
        out.write_all(b"[")?;
        self.write_array_rest(out)
    }

    /// Writes the objects not yet in `out` and the array's `]`: for a section streamed to the
    /// output ([`Spill::stream_to`], whose `[` was written before), the ones still in memory.
    pub fn write_array_rest(
        &mut self,
        out: &mut dyn crate::report::ReportOut,
    ) -> anyhow::Result<()> {
        use std::io::Seek;
        self.settle()?;
        if self.in_file && !self.direct {
            // The file part in the kernel where the output allows it (see ReportOut).
            let mut file = &self.file;
            file.seek(std::io::SeekFrom::Start(0))?;
            let mut handle = file.try_clone()?;
            out.append_file(&mut handle)?;
            file.seek(std::io::SeekFrom::End(0))?;
        }
        out.write_all(&self.buf)?;
        out.write_all(b"]")?;
        Ok(())
    }

    /// Reads the objects back one by one (each as its JSON bytes), in the order pushed.
    pub fn for_each_object(
        &mut self,
        mut f: impl FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut object = Vec::new();
        let (mut depth, mut in_string, mut escaped) = (0u32, false, false);
        self.for_each_chunk(|bytes| {
            for &b in bytes {
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_string = false;
                    }
                } else {
                    match b {
                        b'"' => in_string = true,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => depth = depth.saturating_sub(1),
                        b',' if depth == 0 => {
                            f(&object)?;
                            object.clear();
                            continue;
                        }
                        _ => {}
                    }
                }
                object.push(b);
            }
            Ok(())
        })?;
        if !object.is_empty() {
            f(&object)?;
        }
        Ok(())
    }
}

/// An unnamed temporary file (unlinked at once, so nothing is left behind even on a crash).
fn unlinked_tempfile() -> std::io::Result<std::fs::File> {
    let dir = std::env::temp_dir();
    for attempt in 0..100u32 {
        let p = dir.join(format!(".wirelag-spill-{}-{attempt}", std::process::id()));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(f) => {
                let _ = std::fs::remove_file(&p);
                return Ok(f);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temporary file name"))
}

/// What the display filter's `mysql.*` fields see in one frame (as in tshark: a request's fields
/// on the frame where the request completes, the error code on the response's first frame).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MysqlFrameFacts {
    pub command: Option<u8>,
    pub query: Option<String>,
    pub error_code: Option<u16>,
}

/// MySQL facts by frame number, and the streams decoded as MySQL.
#[derive(Default)]
pub struct MysqlFrameIndex {
    pub frames: HashMap<u64, MysqlFrameFacts>,
    pub streams: Vec<bool>,
}

impl MysqlFrameIndex {
    pub fn is_mysql_stream(&self, stream: StreamId) -> bool {
        self.streams.get(stream as usize).copied().unwrap_or(false)
    }
}

/// One exchange of a followed stream, for `follow`'s annotations.
#[derive(Clone, Debug, Serialize)]
pub struct FollowedExchange {
    #[serde(skip)]
    pub request_first_frame: u64,
    #[serde(skip)]
    pub request_last_frame: u64,
    #[serde(skip)]
    pub response_first_frame: Option<u64>,
    pub command: &'static str,
    pub statement: Option<String>,
    pub status: &'static str,
    pub error_code: Option<u16>,
    pub rows: Option<u64>,
    pub affected_rows: Option<u64>,
    pub latency_us: Option<i64>,
}

/// Bytes of spilled JSON buffered in memory before they are written to the spill's file (a
/// capture whose section fits never touches the file). Holding a whole small report in memory
/// measured no faster than the page-cache round trip, so the buffers stay small.
const SPILL_MEMORY_REQUESTS: usize = 1 << 20;
const SPILL_MEMORY_OTHER: usize = 256 << 10;

/// Transactions kept in memory for the text report's "longest" list.
const LONGEST_KEPT: usize = 15;

/// Ports decoded as MySQL without looking at the content (tshark's default, plus `--decode-as`).
pub const DEFAULT_MYSQL_PORTS: &[u16] = &[3306];

/// Distinct fingerprints tracked with their own histogram; the rest are pooled.
const MAX_FINGERPRINTS: usize = 5_000;
/// Open streams that may hold a latency histogram at once (it is summarised and freed when the
/// stream ends); past this, a stream keeps count, mean and max only.
const MAX_LIVE_STREAM_HISTOGRAMS: usize = 4_096;
/// Statement texts kept per transaction in the report.
const MAX_TXN_TEXTS: usize = 50;
const MAX_TEXT_CHARS: usize = 300;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetectedBy {
    Port,
    DecodeAs,
    Content,
}

impl DetectedBy {
    fn name(self) -> &'static str {
        match self {
            DetectedBy::Port => "port",
            DetectedBy::DecodeAs => "decode_as",
            DetectedBy::Content => "content",
        }
    }
}

enum Role {
    /// No payload yet, or only a server payload that was not a greeting.
    Undecided {
        server_seen: bool,
    },
    NotMysql,
    Mysql(Box<MysqlConnection>),
    /// Decoded as MySQL; the connection has ended and its dissector state is freed.
    Closed,
}

impl Role {
    fn is_mysql(&self) -> bool {
        matches!(self, Role::Mysql(_) | Role::Closed)
    }
}

/// Session facts of one MySQL stream.
#[derive(Default, Serialize, Clone)]
pub struct SessionJson {
    pub server_version: Option<String>,
    pub connection_id: Option<u32>,
    pub user: Option<String>,
    pub database: Option<String>,
    pub auth_plugin: Option<String>,
    pub tls: bool,
    pub compressed: bool,
    pub detected_by: &'static str,
    pub greeting_error: Option<u16>,
}

/// A logical unit whose round trips a delay multiplies.
#[derive(Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct UnitJson {
    pub stream: StreamId,
    /// connection, setup, transaction or statement (an autocommit statement outside both).
    pub kind: String,
    pub first_frame: u64,
    pub last_frame: u64,
    pub statements: u64,
    pub round_trips: u64,
    pub duration_us: i64,
    /// Hash (16 hex digits) of the unit's request shapes in order (statement fingerprints,
    /// command names otherwise): equal in two captures when the same work was done, which is
    /// how `--baseline` matches units.
    pub shape: String,
    /// A statement unit's fingerprint.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fingerprint: Option<String>,
}

/// A unit as the analysis produces it: borrowed, with the shape still a hash, written as the
/// JSON of the equivalent [`UnitJson`] without allocating (checked by a test).
struct UnitRecord<'a> {
    stream: StreamId,
    kind: &'static str,
    first_frame: u64,
    last_frame: u64,
    statements: u64,
    round_trips: u64,
    duration_us: i64,
    shape: ShapeHash,
    fingerprint: Option<&'a str>,
}

impl UnitRecord<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = json_writer::Object::begin(out);
        o.uint("stream", u64::from(self.stream));
        o.str("kind", self.kind);
        o.uint("first_frame", self.first_frame);
        o.uint("last_frame", self.last_frame);
        o.uint("statements", self.statements);
        o.uint("round_trips", self.round_trips);
        o.int("duration_us", self.duration_us);
        let hex = self.shape.hex_bytes();
        o.str("shape", std::str::from_utf8(&hex).unwrap_or_default());
        o.some_str("fingerprint", self.fingerprint);
        o.end();
    }
}

/// FNV-1a, folded over the shapes of a unit's requests in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShapeHash(u64);

impl ShapeHash {
    pub const EMPTY: ShapeHash = ShapeHash(0xcbf2_9ce4_8422_2325);

    pub fn of(text: &str) -> u64 {
        ShapeHash::EMPTY.with_bytes(text.as_bytes()).0
    }

    fn with_bytes(self, bytes: &[u8]) -> ShapeHash {
        let mut h = self.0;
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        ShapeHash(h)
    }

    /// Appends one request's shape (itself a hash).
    pub fn push(&mut self, shape: u64) {
        *self = self.with_bytes(&shape.to_le_bytes());
    }

    pub fn hex(self) -> String {
        format!("{:016x}", self.0)
    }

    /// [`ShapeHash::hex`]'s digits, without allocating.
    fn hex_bytes(self) -> [u8; 16] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 16];
        for (i, d) in out.iter_mut().enumerate() {
            let nibble = (self.0 >> (60 - 4 * i)) & 0xf;
            *d = HEX.get(nibble as usize).copied().unwrap_or(b'0');
        }
        out
    }
}

#[derive(Serialize, Clone)]
pub struct TransactionJson {
    pub stream: StreamId,
    pub first_frame: u64,
    pub last_frame: u64,
    pub statements: u64,
    pub round_trips: u64,
    pub duration_us: i64,
    /// Time spent waiting on the server and the network beyond the tap (sum of response times).
    pub response_time_us: i64,
    /// commit, rollback, implicit_commit (DDL, BEGIN or autocommit=1 ended it), open.
    pub end: &'static str,
    pub statements_text: Vec<String>,
}

impl TransactionJson {
    /// The same bytes as `serde_json::to_writer(self)` (checked by a test).
    #[cfg(test)]
    fn write_json(&self, out: &mut Vec<u8>) {
        self.write_json_with_texts(self.statements_text.iter().map(String::as_str), out);
    }

    /// The JSON of this transaction with `texts` as its `statements_text`.
    fn write_json_with_texts<'s>(
        &self,
        texts: impl IntoIterator<Item = &'s str>,
        out: &mut Vec<u8>,
    ) {
        let mut o = json_writer::Object::begin(out);
        o.uint("stream", u64::from(self.stream));
        o.uint("first_frame", self.first_frame);
        o.uint("last_frame", self.last_frame);
        o.uint("statements", self.statements);
        o.uint("round_trips", self.round_trips);
        o.int("duration_us", self.duration_us);
        o.int("response_time_us", self.response_time_us);
        o.str("end", self.end);
        o.str_array("statements_text", texts);
        o.end();
    }
}

struct TxnBuilder {
    first_frame: u64,
    first_ts: Timestamp,
    last_frame: u64,
    last_ts: Timestamp,
    statements: u64,
    round_trips: u64,
    response_ns: i64,
    texts: Texts,
    shape: ShapeHash,
}

/// A transaction's statement texts (folded and cut, as the report shows them), one after
/// another in one buffer: one allocation per transaction rather than one per statement.
#[derive(Default)]
struct Texts {
    buf: String,
    ends: Vec<usize>,
}

impl Texts {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }

    fn push_short(&mut self, s: &str) {
        push_short_text(&mut self.buf, s);
        self.ends.push(self.buf.len());
    }

    fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let t = self.buf.get(start..end).unwrap_or_default();
            start = end;
            t
        })
    }
}

/// A transaction that ended, before it is written.
struct FinishedTxn {
    /// Without its statement texts (`texts` holds them): only the "longest" list needs them
    /// as strings.
    json: TransactionJson,
    texts: Texts,
    shape: ShapeHash,
}

impl TxnBuilder {
    fn new(x: &Exchange, texts: Option<Texts>) -> Self {
        TxnBuilder {
            first_frame: x.request_first_frame,
            first_ts: x.request_first_ts,
            last_frame: x.request_last_frame,
            last_ts: x.request_last_ts,
            statements: 0,
            round_trips: 0,
            response_ns: 0,
            texts: texts.unwrap_or_default(),
            shape: ShapeHash::EMPTY,
        }
    }

    fn add(&mut self, x: &Exchange, shape: u64) {
        self.shape.push(shape);
        // Statements are the SQL the transaction ran; pings, prepares and resets still cost a
        // round trip each.
        if matches!(x.command, Command::Query | Command::StmtExecute) {
            self.statements += 1;
        }
        if costs_round_trip(x) {
            self.round_trips += 1;
        }
        self.response_ns += x.response_time().map_or(0, |d| d.as_nanos().max(0));
        let (frame, ts) = exchange_end(x);
        if ts >= self.last_ts {
            self.last_ts = ts;
            self.last_frame = frame;
        }
        if self.texts.len() < MAX_TXN_TEXTS {
            self.texts
                .push_short(x.statement.as_deref().unwrap_or(x.command.name()));
        }
    }

    fn finish(self, stream: StreamId, end: &'static str) -> FinishedTxn {
        let json = TransactionJson {
            stream,
            first_frame: self.first_frame,
            last_frame: self.last_frame,
            statements: self.statements,
            round_trips: self.round_trips,
            duration_us: self.last_ts.since(self.first_ts).as_micros(),
            response_time_us: (self.response_ns + 500) / 1000,
            end,
            statements_text: Vec::new(),
        };
        FinishedTxn {
            json,
            texts: self.texts,
            shape: self.shape,
        }
    }
}

/// Would [`fold_whitespace`] return `s` unchanged? Only single ASCII spaces between words, none
/// at either end, and no other whitespace (`char::is_whitespace` is ASCII whitespace, the C1
/// NEL and a few Unicode spaces, all of them outside ASCII except the ones checked here).
fn is_folded(s: &str) -> bool {
    let b = s.as_bytes();
    if b.first() == Some(&b' ') || b.last() == Some(&b' ') {
        return false;
    }
    // Whole blocks without an early exit inside, which the compiler vectorizes: every
    // statement of every transaction is checked.
    let other_space = |c: u8| (0x09..=0x0d).contains(&c) || c >= 0x80;
    let mut blocks = b.chunks_exact(16);
    for block in &mut blocks {
        if block.iter().fold(false, |acc, &c| acc | other_space(c)) {
            return false;
        }
    }
    if blocks.remainder().iter().any(|&c| other_space(c)) {
        return false;
    }
    let next = b.get(1..).unwrap_or_default();
    !b.iter()
        .zip(next)
        .fold(false, |acc, (&x, &y)| acc | (x == b' ' && y == b' '))
}

/// SQL on one line: runs of whitespace (newlines included) become one space.
pub fn fold_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn short_text(s: &str) -> String {
    let mut out = String::new();
    push_short_text(&mut out, s);
    out
}

/// Appends `s` folded onto one line and cut to MAX_TEXT_CHARS characters (with '…' when cut).
fn push_short_text(out: &mut String, s: &str) {
    if is_folded(s) && s.len() <= MAX_TEXT_CHARS {
        // Already on one line and short (bytes >= chars): nothing to fold or cut.
        out.push_str(s);
        return;
    }
    let folded = fold_whitespace(s);
    if folded.chars().count() > MAX_TEXT_CHARS {
        out.extend(folded.chars().take(MAX_TEXT_CHARS));
        out.push('…');
    } else {
        out.push_str(&folded);
    }
}

/// `SELECT @@...` (case-insensitive, after leading whitespace): the session reading server
/// variables, part of a connection's set-up.
fn starts_with_select_sysvar(s: &str) -> bool {
    s.trim_start()
        .as_bytes()
        .get(..9)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"select @@"))
}

/// A request costs a round trip when the client waits for an answer.
fn costs_round_trip(x: &Exchange) -> bool {
    x.status != ResponseStatus::NoResponse
}

fn exchange_end(x: &Exchange) -> (u64, Timestamp) {
    match (x.response_last_frame, x.response_last_ts) {
        (Some(f), Some(t)) => (f, t),
        _ => (x.request_last_frame, x.request_last_ts),
    }
}

/// Per-stream transaction and unit tracking.
struct StreamState {
    role: Role,
    session: SessionJson,
    autocommit: bool,
    txn: Option<TxnBuilder>,
    /// The text buffers of the stream's last written transaction, reused by its next one.
    spare_texts: Option<Texts>,
    /// `SET SESSION TRANSACTION ...` statements just before a transaction belong to it (with
    /// their shapes).
    prelude: Vec<(Exchange, u64)>,
    /// Set-up: greeting, login, auth and TLS turns plus the session's first SET/USE statements.
    setup_open: bool,
    setup_round_trips: u64,
    setup_statements: u64,
    setup_end: Option<(u64, Timestamp)>,
    setup_shape: ShapeHash,
    connection_shape: ShapeHash,
    /// The server greeting was seen: after the TCP handshake the client waits for it, a turn
    /// that pays a server-to-client delay like any response.
    greeting_turn: bool,
    exchanges: u64,
    round_trips: u64,
    first_request: Option<(u64, Timestamp)>,
    last_end: Option<(u64, Timestamp)>,
    latency: Option<Histogram<u32>>,
    /// The stream's latency summary, frozen (and the histogram dropped) when the stream ends.
    latency_summary: Option<LatencyJson>,
    /// Class, fingerprint and shape of each prepared statement, computed once per statement id
    /// (executes repeat the same SQL).
    prepared: FxHashMap<u32, (StatementClass, Arc<str>, u64)>,
    latency_count: u64,
    latency_sum_us: u64,
    latency_max_us: u64,
}

impl StreamState {
    fn new() -> Self {
        StreamState {
            role: Role::Undecided { server_seen: false },
            session: SessionJson::default(),
            autocommit: true,
            txn: None,
            spare_texts: None,
            prelude: Vec::new(),
            setup_open: true,
            setup_round_trips: 0,
            setup_statements: 0,
            setup_end: None,
            setup_shape: ShapeHash::EMPTY,
            connection_shape: ShapeHash::EMPTY,
            greeting_turn: false,
            exchanges: 0,
            round_trips: 0,
            first_request: None,
            last_end: None,
            latency: None,
            latency_summary: None,
            prepared: FxHashMap::default(),
            latency_count: 0,
            latency_sum_us: 0,
            latency_max_us: 0,
        }
    }
}

/// Latency summary of a group of exchanges.
#[derive(Serialize, Clone, Default)]
pub struct LatencyJson {
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

fn new_histogram(sigfig: u8) -> Histogram<u32> {
    // 1 µs .. 1 h; the bounds are constants that hdrhistogram accepts.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, 3_600_000_000, sigfig.clamp(1, 5))
        .expect("constant histogram bounds are valid")
}

fn summarize(h: &Histogram<u32>) -> LatencyJson {
    if h.is_empty() {
        return LatencyJson::default();
    }
    // hdrhistogram reports the highest value of a bucket; the bucket's middle is the honest
    // estimate (a single 29.7 ms sample must not read as 29.8 ms).
    let at = |q: f64| h.median_equivalent(h.value_at_quantile(q));
    LatencyJson {
        count: h.len(),
        p50_us: at(0.50),
        p90_us: at(0.90),
        p99_us: at(0.99),
        p999_us: at(0.999),
        max_us: h.median_equivalent(h.max()),
        mean_us: (h.mean() * 10.0).round() / 10.0,
    }
}

struct FingerprintStats {
    class: &'static str,
    example: String,
    hist: Histogram<u32>,
    total_us: u64,
}

/// Everything `analyze` accumulates; also the [`PayloadSink`] the pipeline feeds.
pub struct Analyzer {
    decode_as: Vec<u16>,
    streams: Vec<Option<StreamState>>,
    events: Vec<MysqlEvent>,
    pub requests: Spill,
    /// By command name; a handful of names, found by a scan (cheaper than hashing the name).
    by_command: Vec<(&'static str, Histogram<u32>)>,
    by_fingerprint: FxHashMap<String, FingerprintStats>,
    by_server: FxHashMap<Endpoint, Histogram<u32>>,
    pub transactions: Spill,
    /// The longest transactions, longest first (bounded).
    pub longest: Vec<TransactionJson>,
    pub units: Spill,
    /// Units, round trips and duration per unit kind, summed as units are written (so a report
    /// without a delay or baseline never reads the units back).
    pub unit_totals: std::collections::BTreeMap<String, crate::amplify::KindSummary>,
    pub anomalies: HashMap<&'static str, u64>,
    pub errors: Vec<(StreamId, u64, u16, String)>,
    /// Endpoints of each stream, filled when the stream is first seen (from the table).
    endpoints: Vec<Option<(Endpoint, Endpoint)>>,
    capture_start: Option<Timestamp>,
    /// When a display filter selected streams: only these are analysed.
    selected: Option<Vec<bool>>,
    /// Filled when a display filter needs `mysql.*` fields.
    frame_index: Option<MysqlFrameIndex>,
    /// Latency histograms held by open streams (bounded by MAX_LIVE_STREAM_HISTOGRAMS).
    live_stream_histograms: usize,
    /// `follow`: the stream whose exchanges are kept in memory, and those exchanges.
    follow: Option<StreamId>,
    pub followed: Vec<FollowedExchange>,
}

#[derive(Serialize, Clone, Copy)]
struct RequestJson<'a> {
    stream: StreamId,
    frame: u64,
    request_first_frame: u64,
    response_frame: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_last_frame: Option<u64>,
    time_rel_us: i64,
    protocol: &'static str,
    command: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    command_code: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    statement: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    statement_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    class: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fingerprint: Option<&'a str>,
    latency_us: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exchange_us: Option<i64>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sql_state: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rows: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    columns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    affected_rows: Option<u64>,
    result_sets: u32,
    request_bytes: u64,
    response_bytes: u64,
}

impl RequestJson<'_> {
    /// The same bytes as `serde_json::to_writer(self)` (checked by a test), several times faster.
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = json_writer::Object::begin(out);
        o.uint("stream", u64::from(self.stream));
        o.uint("frame", self.frame);
        o.uint("request_first_frame", self.request_first_frame);
        o.opt_uint("response_frame", self.response_frame);
        o.some_uint("response_last_frame", self.response_last_frame);
        o.int("time_rel_us", self.time_rel_us);
        o.name("protocol", self.protocol);
        o.name("command", self.command);
        o.some_uint("command_code", self.command_code.map(u64::from));
        o.some_str("statement", self.statement);
        o.some_uint("statement_id", self.statement_id.map(u64::from));
        o.some_name("class", self.class);
        o.some_str("fingerprint", self.fingerprint);
        o.opt_int("latency_us", self.latency_us);
        o.some_int("exchange_us", self.exchange_us);
        o.name("status", self.status);
        o.some_uint("error_code", self.error_code.map(u64::from));
        o.some_str("error_message", self.error_message);
        o.some_str("sql_state", self.sql_state);
        o.some_uint("rows", self.rows);
        o.some_uint("columns", self.columns);
        o.some_uint("affected_rows", self.affected_rows);
        o.uint("result_sets", u64::from(self.result_sets));
        o.uint("request_bytes", self.request_bytes);
        o.uint("response_bytes", self.response_bytes);
        o.end();
    }
}

impl Analyzer {
    pub fn new(decode_as: Vec<u16>) -> std::io::Result<Self> {
        Ok(Analyzer {
            decode_as,
            streams: Vec::new(),
            events: Vec::new(),
            requests: Spill::new(SPILL_MEMORY_REQUESTS)?,
            by_command: Vec::new(),
            by_fingerprint: FxHashMap::default(),
            by_server: FxHashMap::default(),
            transactions: Spill::new(SPILL_MEMORY_OTHER)?,
            longest: Vec::new(),
            units: Spill::new(SPILL_MEMORY_OTHER)?,
            unit_totals: std::collections::BTreeMap::new(),
            anomalies: HashMap::new(),
            errors: Vec::new(),
            endpoints: Vec::new(),
            capture_start: None,
            selected: None,
            frame_index: None,
            live_stream_histograms: 0,
            follow: None,
            followed: Vec::new(),
        })
    }

    /// Keep the exchanges of one stream in memory (for `follow`), and decode only that stream.
    pub fn follow(&mut self, stream: StreamId) {
        self.follow = Some(stream);
        let mut only = vec![false; stream as usize + 1];
        if let Some(slot) = only.get_mut(stream as usize) {
            *slot = true;
        }
        self.selected = Some(only);
    }

    /// Collect the per-frame facts `mysql.*` display-filter fields need.
    pub fn index_frames(&mut self) {
        self.frame_index = Some(MysqlFrameIndex::default());
    }

    /// The per-frame index (after the run), with the MySQL streams marked.
    pub fn take_frame_index(&mut self) -> MysqlFrameIndex {
        let mut index = self.frame_index.take().unwrap_or_default();
        index.streams = self
            .streams
            .iter()
            .map(|s| s.as_ref().is_some_and(|s| s.role.is_mysql()))
            .collect();
        index
    }

    /// Analyse only the streams marked true (from a display filter's first pass).
    pub fn restrict_to(&mut self, selected: Vec<bool>) {
        self.selected = Some(selected);
    }

    /// The capture's first timestamp (for `time_rel_us`).
    pub fn set_capture_start(&mut self, ts: Timestamp) {
        self.capture_start.get_or_insert(ts);
    }

    fn state(&mut self, stream: StreamId) -> Option<&mut StreamState> {
        let i = stream as usize;
        if self.streams.len() <= i {
            self.streams.resize_with(i + 1, || None);
        }
        let slot = self.streams.get_mut(i)?;
        Some(slot.get_or_insert_with(StreamState::new))
    }

    fn forced(&self, stream: StreamId) -> Option<DetectedBy> {
        let (_, server) = self.endpoints.get(stream as usize).copied().flatten()?;
        if self.decode_as.contains(&server.port) {
            Some(DetectedBy::DecodeAs)
        } else if DEFAULT_MYSQL_PORTS.contains(&server.port) {
            Some(DetectedBy::Port)
        } else {
            None
        }
    }

    /// Is this stream MySQL? Decides on first payload and returns the connection.
    fn connection_for(&mut self, stream: StreamId, dir: Direction, first_bytes: &[u8]) -> bool {
        if self
            .selected
            .as_ref()
            .is_some_and(|s| !s.get(stream as usize).copied().unwrap_or(false))
        {
            return false;
        }
        let forced = self.forced(stream);
        let Some(st) = self.state(stream) else {
            return false;
        };
        match &st.role {
            Role::Mysql(_) => true,
            Role::Closed => false,
            Role::NotMysql => false,
            Role::Undecided { server_seen } => {
                let server_seen = *server_seen;
                let verdict = if let Some(by) = forced {
                    Some(by)
                } else if dir == Direction::ToClient {
                    if mysql::looks_like_mysql_greeting(first_bytes) {
                        Some(DetectedBy::Content)
                    } else {
                        st.role = Role::Undecided { server_seen: true };
                        return false;
                    }
                } else if mysql::looks_like_mysql_client_start(first_bytes) {
                    Some(DetectedBy::Content)
                } else {
                    None
                };
                match verdict {
                    Some(by) => {
                        st.session.detected_by = by.name();
                        st.role = Role::Mysql(Box::new(MysqlConnection::new()));
                        // A mid-stream start whose server data came first: that data is lost
                        // to the dissector (it belonged to a request not captured).
                        let _ = server_seen;
                        true
                    }
                    None => {
                        st.role = Role::NotMysql;
                        false
                    }
                }
            }
        }
    }

    fn drain_events(&mut self, stream: StreamId) {
        let events = std::mem::take(&mut self.events);
        for ev in &events {
            self.handle_event(stream, ev);
        }
        let mut events = events;
        events.clear();
        self.events = events;
    }

    fn handle_event(&mut self, stream: StreamId, ev: &MysqlEvent) {
        match ev {
            MysqlEvent::Greeting {
                server_version,
                connection_id,
                auth_plugin,
                ..
            } => {
                if let Some(st) = self.state(stream) {
                    // MariaDB prefixes its version with "5.5.5-" for old replication peers;
                    // clients strip it, and so does the report.
                    let v = server_version
                        .strip_prefix("5.5.5-")
                        .unwrap_or(server_version);
                    st.session.server_version = Some(v.to_string());
                    st.session.connection_id = Some(*connection_id);
                    st.greeting_turn = true;
                    if st.session.auth_plugin.is_none() {
                        st.session.auth_plugin.clone_from(auth_plugin);
                    }
                }
            }
            MysqlEvent::GreetingError {
                error_code,
                frame,
                message,
                ..
            } => {
                self.errors
                    .push((stream, *frame, *error_code, message.clone()));
                if let Some(index) = self.frame_index.as_mut() {
                    index.frames.entry(*frame).or_default().error_code = Some(*error_code);
                }
                if let Some(st) = self.state(stream) {
                    st.session.greeting_error = Some(*error_code);
                }
            }
            MysqlEvent::Login {
                user,
                database,
                auth_plugin,
                ssl,
                compress,
                ..
            } => {
                if let Some(st) = self.state(stream) {
                    if !user.is_empty() {
                        st.session.user = Some(user.clone());
                    }
                    if database.is_some() {
                        st.session.database.clone_from(database);
                    }
                    if auth_plugin.is_some() {
                        st.session.auth_plugin.clone_from(auth_plugin);
                    }
                    st.session.tls |= *ssl;
                    st.session.compressed |= *compress;
                }
            }
            MysqlEvent::TlsStarted { .. } => {
                if let Some(st) = self.state(stream) {
                    st.session.tls = true;
                }
            }
            MysqlEvent::Anomaly { kind, .. } => {
                *self.anomalies.entry(kind.name()).or_default() += 1;
            }
            MysqlEvent::Exchange(x) => self.handle_exchange(stream, x),
        }
    }

    fn handle_exchange(&mut self, stream: StreamId, x: &Exchange) {
        if let Some(sp) = x.auth_switch_plugin.as_ref() {
            if let Some(st) = self.state(stream) {
                st.session.auth_plugin = Some(sp.clone());
            }
        }
        let is_sql = matches!(
            x.command,
            Command::Query | Command::StmtPrepare | Command::StmtExecute
        );
        let (class, fingerprint, shape) = match (is_sql, x.statement.as_deref()) {
            (true, Some(text)) => {
                let (c, f, shape) = self.class_and_fingerprint(stream, x, text);
                (Some(c), Some(f), shape)
            }
            _ => (None, None, ShapeHash::of(x.command.name())),
        };
        let latency = x.response_time();
        let latency_us = latency.map(|d| d.as_micros());
        let exchange_us = x
            .response_last_ts
            .map(|t| t.since(x.request_first_ts).as_micros());
        let start = self.capture_start.unwrap_or(x.request_first_ts);

        // The exchange, spilled.
        let rec = RequestJson {
            stream,
            frame: x.request_last_frame,
            request_first_frame: x.request_first_frame,
            response_frame: x.response_first_frame,
            response_last_frame: x.response_last_frame,
            time_rel_us: x.request_first_ts.since(start).as_micros(),
            protocol: "mysql",
            command: x.command.name(),
            command_code: x.command.code(),
            statement: x.statement.as_deref(),
            statement_id: x.statement_id,
            class: class.map(StatementClass::name),
            fingerprint: fingerprint.as_deref(),
            latency_us,
            exchange_us,
            status: x.status.name(),
            error_code: x.error_code,
            error_message: x.error_message.as_deref(),
            sql_state: x.sql_state.as_deref(),
            rows: x.rows,
            columns: x.columns,
            affected_rows: x.affected_rows,
            result_sets: x.result_sets,
            request_bytes: x.request_bytes,
            response_bytes: x.response_bytes,
        };
        self.requests.push_request(&rec);
        if self.follow == Some(stream) {
            self.followed.push(FollowedExchange {
                request_first_frame: x.request_first_frame,
                request_last_frame: x.request_last_frame,
                response_first_frame: x.response_first_frame,
                command: x.command.name(),
                statement: x.statement.as_deref().map(str::to_string),
                status: x.status.name(),
                error_code: x.error_code,
                rows: x.rows,
                affected_rows: x.affected_rows,
                latency_us,
            });
        }
        if let Some(index) = self.frame_index.as_mut() {
            let f = index.frames.entry(x.request_last_frame).or_default();
            f.command = x.command.code();
            if matches!(x.command, Command::Query | Command::StmtPrepare) {
                f.query = x.statement.as_deref().map(str::to_string);
            }
            if let (Some(code), Some(frame)) = (x.error_code, x.response_first_frame) {
                index.frames.entry(frame).or_default().error_code = Some(code);
            }
        }
        if let (Some(code), Some(msg)) = (x.error_code, x.error_message.as_ref()) {
            if self.errors.len() < 10_000 {
                self.errors
                    .push((stream, x.request_last_frame, code, msg.clone()));
            }
        }

        // Latency distributions (only exchanges that got a response).
        if let Some(us) = latency_us {
            let v = us.max(0).unsigned_abs();
            let name = x.command.name();
            let i = match self.by_command.iter().position(|(k, _)| *k == name) {
                Some(i) => i,
                None => {
                    self.by_command.push((name, new_histogram(3)));
                    self.by_command.len() - 1
                }
            };
            if let Some((_, h)) = self.by_command.get_mut(i) {
                h.saturating_record(v);
            }
            if let Some(fp) = fingerprint.as_deref() {
                // Look up by reference first: a known fingerprint costs no allocation.
                let e = match self.by_fingerprint.get_mut(fp) {
                    Some(e) => e,
                    None => {
                        let key = if self.by_fingerprint.len() < MAX_FINGERPRINTS {
                            fp
                        } else {
                            "(other fingerprints)"
                        };
                        self.by_fingerprint
                            .entry(key.to_string())
                            .or_insert_with(|| FingerprintStats {
                                class: class.map_or("other", StatementClass::name),
                                example: short_text(x.statement.as_deref().unwrap_or("")),
                                hist: new_histogram(2),
                                total_us: 0,
                            })
                    }
                };
                e.hist.saturating_record(v);
                e.total_us += v;
            }
            if let Some((_, server)) = self.endpoints.get(stream as usize).copied().flatten() {
                self.by_server
                    .entry(server)
                    .or_insert_with(|| new_histogram(3))
                    .saturating_record(v);
            }
            let room = self.live_stream_histograms < MAX_LIVE_STREAM_HISTOGRAMS;
            let mut created = false;
            if let Some(st) = self.state(stream) {
                if st.latency.is_none() && room {
                    st.latency = Some(new_histogram(2));
                    created = true;
                }
                if let Some(h) = st.latency.as_mut() {
                    h.saturating_record(v);
                }
                st.latency_count += 1;
                st.latency_sum_us += v;
                st.latency_max_us = st.latency_max_us.max(v);
            }
            if created {
                self.live_stream_histograms += 1;
            }
        }

        // Units and transactions.
        let mut finished: Vec<FinishedTxn> = Vec::new();
        let Some(st) = self.state(stream) else { return };
        st.connection_shape.push(shape);
        st.exchanges += 1;
        if costs_round_trip(x) {
            st.round_trips += 1;
        }
        st.first_request
            .get_or_insert((x.request_first_frame, x.request_first_ts));
        st.last_end = Some(exchange_end(x));

        let handshake_turn = matches!(x.command, Command::Login | Command::Auth | Command::Tls);
        let session_setting = matches!(
            class,
            Some(
                StatementClass::Set
                    | StatementClass::SetAutocommit { .. }
                    | StatementClass::SetTransaction
                    | StatementClass::Use
            )
        ) || matches!(x.command, Command::InitDb | Command::SetOption)
            || (is_sql
                && x.statement
                    .as_deref()
                    .is_some_and(starts_with_select_sysvar));
        let in_setup = st.setup_open && (handshake_turn || session_setting) && st.txn.is_none();
        if in_setup {
            st.setup_statements += u64::from(!handshake_turn);
            if costs_round_trip(x) {
                st.setup_round_trips += 1;
            }
            st.setup_end = Some(exchange_end(x));
            st.setup_shape.push(shape);
        } else if !handshake_turn {
            st.setup_open = false;
        }

        let Some(class) = class else {
            if let Some(t) = st.txn.as_mut() {
                if !handshake_turn {
                    t.add(x, shape);
                }
            }
            return;
        };
        // Whether this statement joined a transaction (or its prelude); if not, it is a unit
        // of its own.
        let mut joined = true;
        match class {
            StatementClass::SetTransaction if st.txn.is_none() => {
                st.prelude.push((x.clone(), shape));
                return;
            }
            StatementClass::Begin => {
                if let Some(t) = st.txn.take() {
                    finished.push(t.finish(stream, "implicit_commit"));
                }
                let mut t = TxnBuilder::new(
                    st.prelude.first().map_or(x, |p| &p.0),
                    st.spare_texts.take(),
                );
                for (p, sh) in st.prelude.drain(..) {
                    t.add(&p, sh);
                }
                t.add(x, shape);
                st.txn = Some(t);
            }
            StatementClass::SetAutocommit { value: false } => {
                st.autocommit = false;
                if st.txn.is_none() {
                    let mut t = TxnBuilder::new(
                        st.prelude.first().map_or(x, |p| &p.0),
                        st.spare_texts.take(),
                    );
                    for (p, sh) in st.prelude.drain(..) {
                        t.add(&p, sh);
                    }
                    t.add(x, shape);
                    st.txn = Some(t);
                } else if let Some(t) = st.txn.as_mut() {
                    t.add(x, shape);
                }
            }
            StatementClass::SetAutocommit { value: true } => {
                st.autocommit = true;
                match st.txn.take() {
                    Some(mut t) => {
                        t.add(x, shape);
                        finished.push(t.finish(stream, "implicit_commit"));
                    }
                    None => joined = false,
                }
            }
            StatementClass::Commit | StatementClass::Rollback => {
                if let Some(mut t) = st.txn.take() {
                    t.add(x, shape);
                    finished.push(t.finish(
                        stream,
                        if class == StatementClass::Commit {
                            "commit"
                        } else {
                            "rollback"
                        },
                    ));
                }
            }
            StatementClass::Ddl => match st.txn.take() {
                Some(mut t) => {
                    t.add(x, shape);
                    finished.push(t.finish(stream, "implicit_commit"));
                }
                None => joined = false,
            },
            _ => {
                if st.txn.is_none() && !st.autocommit {
                    // With autocommit off, the first statement after a commit opens the next
                    // transaction.
                    let mut t = TxnBuilder::new(
                        st.prelude.first().map_or(x, |p| &p.0),
                        st.spare_texts.take(),
                    );
                    for (p, sh) in st.prelude.drain(..) {
                        t.add(&p, sh);
                    }
                    st.txn = Some(t);
                }
                match st.txn.as_mut() {
                    Some(t) => t.add(x, shape),
                    None => joined = false,
                }
            }
        }
        st.prelude.clear();
        for t in finished {
            self.record_transaction(t);
        }
        let statement = matches!(x.command, Command::Query | Command::StmtExecute);
        if !joined && !in_setup && statement && costs_round_trip(x) {
            let (last_frame, end_ts) = exchange_end(x);
            self.push_unit(&UnitRecord {
                stream,
                kind: "statement",
                first_frame: x.request_first_frame,
                last_frame,
                statements: 1,
                round_trips: 1,
                duration_us: end_ts.since(x.request_first_ts).as_micros(),
                shape: ShapeHash(shape),
                fingerprint: fingerprint.as_deref(),
            });
        }
    }

    fn push_unit(&mut self, u: &UnitRecord<'_>) {
        self.units.push_with(|buf| u.write_json(buf));
        let k = match self.unit_totals.get_mut(u.kind) {
            Some(k) => k,
            None => self.unit_totals.entry(u.kind.to_string()).or_default(),
        };
        k.units += 1;
        k.round_trips += u.round_trips;
        k.duration_us += u.duration_us;
    }

    /// Statement class, fingerprint and shape; for prepared statements computed once per
    /// statement id.
    fn class_and_fingerprint(
        &mut self,
        stream: StreamId,
        x: &Exchange,
        text: &str,
    ) -> (StatementClass, Arc<str>, u64) {
        const MAX_PREPARED: usize = 1024;
        let compute = || {
            let fingerprint = sql::fingerprint(text);
            let shape = ShapeHash::of(&fingerprint);
            (sql::classify(text), Arc::from(fingerprint), shape)
        };
        let id = x
            .statement_id
            .filter(|_| matches!(x.command, Command::StmtExecute | Command::StmtPrepare));
        if let (Some(id), Some(st)) = (id, self.state(stream)) {
            if let Some((c, f, shape)) = st.prepared.get(&id) {
                return (*c, Arc::clone(f), *shape);
            }
            let computed = compute();
            if st.prepared.len() < MAX_PREPARED {
                st.prepared
                    .insert(id, (computed.0, Arc::clone(&computed.1), computed.2));
            }
            return computed;
        }
        compute()
    }

    /// A finished transaction: into the report, its unit, and the bounded "longest" list.
    fn record_transaction(&mut self, finished: FinishedTxn) {
        let FinishedTxn {
            json: mut t,
            texts,
            shape,
        } = finished;
        self.push_unit(&UnitRecord {
            stream: t.stream,
            kind: "transaction",
            first_frame: t.first_frame,
            last_frame: t.last_frame,
            statements: t.statements,
            round_trips: t.round_trips,
            duration_us: t.duration_us,
            shape,
            fingerprint: None,
        });
        self.transactions
            .push_with(|buf| t.write_json_with_texts(texts.iter(), buf));
        let slot = self
            .longest
            .partition_point(|x| x.duration_us >= t.duration_us);
        if slot < LONGEST_KEPT {
            t.statements_text = texts.iter().map(str::to_string).collect();
        }
        let stream = t.stream as usize;
        if slot < LONGEST_KEPT {
            self.longest.insert(slot, t);
            self.longest.truncate(LONGEST_KEPT);
        }
        if let Some(st) = self.streams.get_mut(stream).and_then(Option::as_mut) {
            let mut texts = texts;
            texts.clear();
            st.spare_texts = Some(texts);
        }
    }

    /// End of capture: closes open transactions and writes the set-up and connection units.
    pub fn finish(&mut self, table: &StreamTable) -> std::io::Result<()> {
        let mut open_txns = Vec::new();
        let mut units = Vec::new();
        for (i, slot) in self.streams.iter_mut().enumerate() {
            let Some(st) = slot.as_mut() else { continue };
            match &st.role {
                // Compression seen on the wire counts even when the login was not captured.
                Role::Mysql(conn) => st.session.compressed |= conn.compressed(),
                Role::Closed => {}
                _ => continue,
            }
            let stream = StreamId::try_from(i).unwrap_or(StreamId::MAX);
            let tcp = table.stream(stream);
            // The TCP handshake and the wait for the server greeting are turns of their own.
            let handshake =
                u64::from(tcp.is_some_and(|s| s.syn_seen)) + u64::from(st.greeting_turn);
            if let Some(t) = st.txn.take() {
                open_txns.push(t.finish(stream, "open"));
            }
            // The prelude of a transaction that never began ran on its own.
            st.prelude.clear();
            let (first_frame, first_ts) = match tcp {
                Some(s) => (s.first_frame, s.first_ts),
                None => st.first_request.unwrap_or_default(),
            };
            if let Some((end_frame, end_ts)) = st.setup_end {
                units.push(UnitRecord {
                    stream,
                    kind: "setup",
                    first_frame,
                    last_frame: end_frame,
                    statements: st.setup_statements,
                    round_trips: handshake + st.setup_round_trips,
                    duration_us: end_ts.since(first_ts).as_micros(),
                    shape: st.setup_shape,
                    fingerprint: None,
                });
            }
            let (last_frame, last_ts) = match tcp {
                Some(s) => (s.last_frame, s.last_ts),
                None => st.last_end.unwrap_or_default(),
            };
            // Closing with FIN both ways is a turn too: one side's FIN waits for the other's.
            let close = u64::from(tcp.is_some_and(|s| {
                s.stats(Direction::ToServer).fin && s.stats(Direction::ToClient).fin
            }));
            units.push(UnitRecord {
                stream,
                kind: "connection",
                first_frame,
                last_frame,
                statements: st.exchanges,
                round_trips: handshake + st.round_trips + close,
                duration_us: last_ts.since(first_ts).as_micros(),
                shape: st.connection_shape,
                fingerprint: None,
            });
        }
        for t in open_txns {
            self.record_transaction(t);
        }
        for u in &units {
            self.push_unit(u);
        }
        Ok(())
    }

    /// Session facts of a stream when it was decoded as MySQL.
    pub fn session(&self, stream: StreamId) -> Option<&SessionJson> {
        let st = self.streams.get(stream as usize)?.as_ref()?;
        st.role.is_mysql().then_some(&st.session)
    }

    pub fn stream_latency(&self, stream: StreamId) -> Option<LatencyJson> {
        let st = self.streams.get(stream as usize)?.as_ref()?;
        if st.latency_count == 0 {
            return None;
        }
        if let Some(frozen) = &st.latency_summary {
            return Some(frozen.clone());
        }
        Some(match &st.latency {
            Some(h) => summarize(h),
            None => LatencyJson {
                count: st.latency_count,
                max_us: st.latency_max_us,
                mean_us: st.latency_sum_us as f64 / st.latency_count as f64,
                ..LatencyJson::default()
            },
        })
    }

    pub fn by_command(&self) -> Vec<(&'static str, LatencyJson)> {
        let mut v: Vec<_> = self
            .by_command
            .iter()
            .map(|(k, h)| (*k, summarize(h)))
            .collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }

    pub fn by_server(&self) -> Vec<(Endpoint, LatencyJson)> {
        let mut v: Vec<_> = self
            .by_server
            .iter()
            .map(|(k, h)| (*k, summarize(h)))
            .collect();
        v.sort_by_key(|a| a.0);
        v
    }

    /// Fingerprints, slowest total first.
    pub fn by_fingerprint(&self) -> Vec<FingerprintJson> {
        let mut v: Vec<FingerprintJson> = self
            .by_fingerprint
            .iter()
            .map(|(fp, s)| {
                let l = summarize(&s.hist);
                FingerprintJson {
                    fingerprint: fp.clone(),
                    class: s.class,
                    example: s.example.clone(),
                    count: l.count,
                    total_us: s.total_us,
                    p50_us: l.p50_us,
                    p90_us: l.p90_us,
                    p99_us: l.p99_us,
                    max_us: l.max_us,
                    mean_us: l.mean_us,
                }
            })
            .collect();
        v.sort_by(|a, b| {
            b.total_us
                .cmp(&a.total_us)
                .then_with(|| a.fingerprint.cmp(&b.fingerprint))
        });
        v
    }
}

#[derive(Serialize, Clone)]
pub struct FingerprintJson {
    pub fingerprint: String,
    pub class: &'static str,
    pub example: String,
    pub count: u64,
    pub total_us: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

impl PayloadSink for Analyzer {
    fn roles(&mut self, stream: StreamId, client: Endpoint, server: Endpoint) {
        let i = stream as usize;
        if self.endpoints.len() <= i {
            self.endpoints.resize(i + 1, None);
        }
        if let Some(slot) = self.endpoints.get_mut(i) {
            *slot = Some((client, server));
        }
    }

    fn payload(&mut self, stream: StreamId, dir: Direction, chunk: Chunk<'_>) {
        let first = match chunk {
            Chunk::Data { bytes, .. } => bytes,
            Chunk::Gap { .. } => &[][..],
        };
        // Gaps before any data decide nothing.
        if matches!(chunk, Chunk::Gap { .. })
            && !matches!(
                self.streams.get(stream as usize),
                Some(Some(StreamState {
                    role: Role::Mysql(_),
                    ..
                }))
            )
        {
            return;
        }
        if !self.connection_for(stream, dir, first) {
            return;
        }
        let mut events = std::mem::take(&mut self.events);
        if let Some(Some(StreamState {
            role: Role::Mysql(conn),
            ..
        })) = self.streams.get_mut(stream as usize)
        {
            match chunk {
                Chunk::Data { bytes, frame, ts } => {
                    conn.on_data(dir, bytes, frame, ts, &mut events)
                }
                Chunk::Gap { len, frame, ts, .. } => conn.on_gap(dir, len, frame, ts, &mut events),
            }
        }
        self.events = events;
        self.drain_events(stream);
    }

    fn direction_closed(&mut self, stream: StreamId, _dir: Direction, frame: u64, ts: Timestamp) {
        // Both directions close together (the table finishes a stream as a whole); flush once.
        let mut events = std::mem::take(&mut self.events);
        if let Some(Some(StreamState {
            role: Role::Mysql(conn),
            ..
        })) = self.streams.get_mut(stream as usize)
        {
            conn.on_close(frame, ts, &mut events);
        }
        self.events = events;
        self.drain_events(stream);
        // Free the dissector's buffers and the statement map: memory stays flat however many
        // connections a capture holds.
        if let Some(Some(st)) = self.streams.get_mut(stream as usize) {
            if let Role::Mysql(conn) = &st.role {
                st.session.compressed |= conn.compressed();
                st.role = Role::Closed;
                st.prepared = FxHashMap::default();
                if let Some(h) = st.latency.take() {
                    st.latency_summary = Some(summarize(&h));
                    self.live_stream_histograms = self.live_stream_histograms.saturating_sub(1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(statement: Option<&'static str>, absent: bool) -> RequestJson<'static> {
        let some = |v| if absent { None } else { Some(v) };
        RequestJson {
            stream: 7,
            frame: 12,
            request_first_frame: 11,
            response_frame: some(13),
            response_last_frame: some(14),
            time_rel_us: -5,
            protocol: "mysql",
            command: "COM_QUERY",
            command_code: if absent { None } else { Some(3) },
            statement,
            statement_id: if absent { None } else { Some(u32::MAX) },
            class: if absent { None } else { Some("select") },
            fingerprint: statement,
            latency_us: if absent { None } else { Some(i64::MIN) },
            exchange_us: if absent { None } else { Some(0) },
            status: "result_set",
            error_code: if absent { None } else { Some(1064) },
            error_message: if absent {
                None
            } else {
                Some("You have an error \"near\"\n")
            },
            sql_state: if absent { None } else { Some("42000") },
            rows: some(u64::MAX),
            columns: some(0),
            affected_rows: some(10),
            result_sets: 1,
            request_bytes: 22,
            response_bytes: 64,
        }
    }

    #[test]
    fn request_json_is_what_serde_json_writes() {
        for statement in [
            None,
            Some("SELECT c FROM sbtest1 WHERE id=?"),
            Some("INSERT INTO t VALUES ('a\tb\\c', \"\u{1}\u{7f}\", 'é…')"),
        ] {
            for absent in [false, true] {
                let r = request(statement, absent);
                let mut ours = Vec::new();
                r.write_json(&mut ours);
                assert_eq!(
                    String::from_utf8(ours).unwrap(),
                    serde_json::to_string(&r).unwrap()
                );
            }
        }
    }

    #[test]
    fn transaction_json_is_what_serde_json_writes() {
        for texts in [vec![], vec!["BEGIN".to_string(), "a \"q\"\n\\".to_string()]] {
            let t = TransactionJson {
                stream: 3,
                first_frame: 1,
                last_frame: 99,
                statements: 2,
                round_trips: 3,
                duration_us: -1,
                response_time_us: 123_456_789,
                end: "commit",
                statements_text: texts,
            };
            let mut ours = Vec::new();
            t.write_json(&mut ours);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&t).unwrap()
            );
        }
    }

    #[test]
    fn unit_record_json_is_what_serde_json_writes_for_the_unit() {
        for (shape, fingerprint) in [
            (ShapeHash::EMPTY, None),
            (ShapeHash(0), Some("select * from t where id = ?")),
            (ShapeHash(u64::MAX), Some("a \"q\"\n\\")),
            (ShapeHash(0x0123_4567_89ab_cdef), Some("")),
        ] {
            let r = UnitRecord {
                stream: u32::MAX,
                kind: "statement",
                first_frame: 1,
                last_frame: u64::MAX,
                statements: 0,
                round_trips: 7,
                duration_us: -3,
                shape,
                fingerprint,
            };
            let u = UnitJson {
                stream: r.stream,
                kind: r.kind.to_string(),
                first_frame: r.first_frame,
                last_frame: r.last_frame,
                statements: r.statements,
                round_trips: r.round_trips,
                duration_us: r.duration_us,
                shape: shape.hex(),
                fingerprint: fingerprint.map(str::to_string),
            };
            let mut ours = Vec::new();
            r.write_json(&mut ours);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&u).unwrap()
            );
        }
    }

    #[test]
    fn spill_written_by_its_thread_keeps_every_object_in_order_across_read_backs() {
        // Many overflows (the writer thread's queue fills and buffers are recycled), objects
        // larger than the cap, and pushes after each read-back.
        let mut spill = Spill::new(0).unwrap();
        let mut expected: Vec<String> = Vec::new();
        for round in 0..3 {
            for i in 0..20_000 {
                let pad = if i % 997 == 0 { 100_000 } else { i % 50 };
                let o = format!("{{\"r\":{round},\"i\":{i},\"p\":\"{}\"}}", "x".repeat(pad));
                spill.push_with(|buf| buf.extend_from_slice(o.as_bytes()));
                expected.push(o);
            }
            let mut out = Vec::new();
            spill.write_array(&mut out).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("[{}]", expected.join(","))
            );
        }
        assert_eq!(spill.count, expected.len() as u64);
    }

    #[test]
    fn requests_encoded_on_their_thread_are_the_bytes_serde_writes_in_order() {
        // Enough requests to move to the encoder thread, a cap small enough for it to write to
        // the file many times, an object pushed by other means while it runs, and pushes after
        // each read-back.
        let mut spill = Spill::new(0).unwrap();
        let mut expected: Vec<String> = Vec::new();
        let texts = ["SELECT 1", "a \"q\"\n\\ ,}{", ""];
        for round in 0..3 {
            for i in 0..(ENCODE_LOCALLY_FIRST as usize + 3 * REQUESTS_PER_BATCH + 7) {
                let mut r = request(Some(texts[i % texts.len()]), i % 5 == 0);
                r.frame = i as u64;
                r.stream = round;
                spill.push_request(&r);
                expected.push(serde_json::to_string(&r).unwrap());
                if i == ENCODE_LOCALLY_FIRST as usize + 100 {
                    spill.push_json(b"{\"other\":1}");
                    expected.push("{\"other\":1}".to_string());
                }
            }
            let mut out = Vec::new();
            spill.write_array(&mut out).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("[{}]", expected.join(","))
            );
            assert_eq!(spill.count, expected.len() as u64);
        }
    }

    #[test]
    fn requests_streamed_to_the_output_land_in_place_around_its_own_writes() {
        // The report's head goes through the output's buffer, the requests through a duplicate
        // descriptor (locally, then from the encoder thread, across several 1 MiB flushes),
        // the array's end and what follows through the buffer again.
        use std::io::Write;
        let path =
            std::env::temp_dir().join(format!("wirelag-stream-to-{}.json", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        let mut out = std::io::BufWriter::new(file);
        out.write_all(b"{\"schema\":\"x\",\"requests\":[").unwrap();
        let mut spill = Spill::new(1 << 16).unwrap();
        let handle = crate::report::ReportOut::stream_handle(&mut out)
            .unwrap()
            .unwrap();
        spill.stream_to(handle);
        let mut expected: Vec<String> = Vec::new();
        let long: &'static str = "SELECT 'padding' SELECT 'padding' SELECT 'padding' SELECT 'padding' SELECT 'padding' SELECT 'padding' SELECT 'padding' SELECT 'padding'";
        for i in 0..(ENCODE_LOCALLY_FIRST as usize + 5 * REQUESTS_PER_BATCH + 3) {
            let mut r = request(Some(if i % 3 == 0 { long } else { "SELECT 1" }), i % 7 == 0);
            r.frame = i as u64;
            spill.push_request(&r);
            expected.push(serde_json::to_string(&r).unwrap());
        }
        spill.write_array_rest(&mut out).unwrap();
        out.write_all(b",\"capture\":{}}").unwrap();
        out.flush().unwrap();
        drop(out);
        let written = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            written,
            format!(
                "{{\"schema\":\"x\",\"requests\":[{}],\"capture\":{{}}}}",
                expected.join(",")
            )
        );
        // A streamed section is not read back.
        assert!(spill.for_each_object(|_| Ok(())).is_err());
    }

    #[test]
    fn short_text_fast_path_agrees_with_folding() {
        let long = "x".repeat(MAX_TEXT_CHARS + 1);
        let exact = "y".repeat(MAX_TEXT_CHARS);
        for s in [
            "",
            " ",
            "a",
            "SELECT 1",
            " SELECT 1",
            "SELECT 1 ",
            "SELECT  1",
            "SELECT\t1",
            "SELECT\n1",
            "SELECT\u{b}1",
            "SELECT\u{85}1",
            "SELECT\u{a0}1",
            "é 1",
            // Past the first 16-byte block, and a double space across the block boundary.
            "SELECT c FROM sbtest1 WHERE  id=1",
            "SELECT c FROM sbtest1 WHERE\tid=1",
            "SELECT c FROM t WHERE id=\u{e9}",
            "0123456789abcde  x",
            "0123456789abcdef x",
            "SELECT c FROM sbtest1 WHERE id=1",
            &long,
            &exact,
        ] {
            let folded = fold_whitespace(s);
            let expected = if folded.chars().count() > MAX_TEXT_CHARS {
                let mut t: String = folded.chars().take(MAX_TEXT_CHARS).collect();
                t.push('…');
                t
            } else {
                folded
            };
            assert_eq!(short_text(s), expected, "{s:?}");
        }
    }

    #[test]
    fn select_sysvar_prefix_matches_lowercase_comparison() {
        for s in [
            "select @@x",
            "  SELECT @@version",
            "SeLeCt @@a",
            "select @x",
            "select",
            "",
            "\u{e9}select @@",
        ] {
            assert_eq!(
                starts_with_select_sysvar(s),
                s.trim_start().to_ascii_lowercase().starts_with("select @@"),
                "{s:?}"
            );
        }
    }

    #[test]
    fn spill_round_trips_objects_through_memory_and_file() {
        // A tiny memory cap forces the file path; objects contain commas and braces in strings.
        let mut spill = Spill::new(0).unwrap();
        let objects: Vec<String> = (0..5000)
            .map(|i| format!("{{\"i\":{i},\"s\":\"a,b}}{{\\\"\",\"l\":[1,2]}}"))
            .collect();
        for o in &objects {
            spill.push_json(o.as_bytes());
        }
        let mut out = Vec::new();
        spill.write_array(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("[{}]", objects.join(","))
        );
        let mut back = Vec::new();
        spill
            .for_each_object(|o| {
                back.push(String::from_utf8(o.to_vec()).unwrap());
                Ok(())
            })
            .unwrap();
        assert_eq!(back, objects);
        // Pushing after reading back appends at the end.
        spill.push_json(b"{}");
        let mut out = Vec::new();
        spill.write_array(&mut out).unwrap();
        assert!(out.ends_with(b",{}]"));
        let mut empty = Spill::new(1 << 20).unwrap();
        let mut out = Vec::new();
        empty.write_array(&mut out).unwrap();
        assert_eq!(out, b"[]");
    }
}
