//! MySQL / MariaDB client/server protocol: one [`MysqlConnection`] per TCP stream turns the two
//! reassembled byte streams into typed events: the greeting, the login, one [`Exchange`] per
//! request paired with its response, and anomalies.
//!
//! Layers, bottom up:
//! - [`compress`]: the compressed protocol (zlib or zstd), switched on after the login's OK when
//!   both sides announced CLIENT_COMPRESS, or detected on a capture that starts mid-stream;
//! - [`framing`]: 4-byte packet headers, continuation packets (payloads >= 16 MiB), a bounded
//!   retained prefix of each payload;
//! - this module: the connection phases (greeting, authentication, TLS, commands) and the
//!   response state machine that decides where each response ends.
//!
//! Timing follows DESIGN.md: every exchange carries the frame and capture time of the first and
//! last byte of its request and of its response.
//!
//! Robustness: after a gap, or on a capture that starts mid-connection, each direction hunts for
//! a plausible packet boundary (a client packet with sequence id 0, a known command byte and a
//! length that fits what follows; a server packet whose sequence id answers the pending request)
//! instead of decoding garbage. Memory per connection is bounded: retained payload prefixes,
//! the pending-request queue, the prepared-statement map and the decompression buffers all have
//! caps.

pub mod compress;
pub mod framing;
pub mod wire;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::tcp::stream::Direction;
use crate::Timestamp;

use compress::{plausible_compressed_header, Decoded, Decompressor, Problem};
use framing::{header_at, header_chain, Assembler, ChainEnd, Flow, Packet, Pos};
use wire::{cap, status, Reader};

/// Client payload bytes retained per packet (statement text beyond this is cut and flagged).
const CLIENT_RETAIN: usize = 256 * 1024;
/// Server payload bytes retained per packet: enough for greetings, OK/ERR, column definitions,
/// prepare responses and public keys; rows are only classified by their first byte.
const SERVER_RETAIN: usize = 16 * 1024;
/// Requests waiting for a response (pipelining); beyond this the oldest is given up.
const MAX_PENDING: usize = 32;
/// Prepared statements remembered per connection, and the SQL bytes they may hold.
const MAX_PREPARED: usize = 1024;
const MAX_PREPARED_BYTES: usize = 1 << 20;
/// SQL text kept per prepared statement.
const MAX_PREPARED_SQL: usize = 16 * 1024;
/// Statement text held by requests still waiting for their response; beyond it a new pending
/// statement is cut to [`PENDING_SQL_CUT`] (a client pipelining huge statements cannot make one
/// connection hold MAX_PENDING × CLIENT_RETAIN bytes).
const MAX_PENDING_SQL_BYTES: usize = 1 << 20;
const PENDING_SQL_CUT: usize = 4096;
/// Anomaly events emitted per connection; later ones are only counted.
const MAX_ANOMALY_EVENTS: u64 = 64;
/// How far into a chunk a resynchronisation scan looks for a boundary.
const HUNT_WINDOW: usize = 4096;
/// Columns a result set may announce (MySQL's own limit is 4096).
const MAX_COLUMNS: u64 = 65_535;

/// A MySQL command, with the login and TLS turns as kinds of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    Sleep,
    Quit,
    InitDb,
    Query,
    FieldList,
    CreateDb,
    DropDb,
    Refresh,
    Shutdown,
    Statistics,
    ProcessInfo,
    Connect,
    ProcessKill,
    Debug,
    Ping,
    Time,
    DelayedInsert,
    ChangeUser,
    BinlogDump,
    TableDump,
    ConnectOut,
    RegisterSlave,
    StmtPrepare,
    StmtExecute,
    StmtSendLongData,
    StmtClose,
    StmtReset,
    SetOption,
    StmtFetch,
    Daemon,
    BinlogDumpGtid,
    ResetConnection,
    Clone,
    /// MariaDB's array binding (0xfa).
    StmtBulkExecute,
    /// A command byte with no known meaning.
    Other(u8),
    /// The HandshakeResponse and the server's answer to it.
    Login,
    /// A further authentication turn: auth-switch response, caching_sha2 public-key request or
    /// RSA-encrypted password, ed25519 signature, ...
    Auth,
    /// One client turn → server turn inside TLS (contents opaque).
    Tls,
}

impl Command {
    pub fn from_code(code: u8) -> Command {
        use Command::*;
        match code {
            0x00 => Sleep,
            0x01 => Quit,
            0x02 => InitDb,
            0x03 => Query,
            0x04 => FieldList,
            0x05 => CreateDb,
            0x06 => DropDb,
            0x07 => Refresh,
            0x08 => Shutdown,
            0x09 => Statistics,
            0x0a => ProcessInfo,
            0x0b => Connect,
            0x0c => ProcessKill,
            0x0d => Debug,
            0x0e => Ping,
            0x0f => Time,
            0x10 => DelayedInsert,
            0x11 => ChangeUser,
            0x12 => BinlogDump,
            0x13 => TableDump,
            0x14 => ConnectOut,
            0x15 => RegisterSlave,
            0x16 => StmtPrepare,
            0x17 => StmtExecute,
            0x18 => StmtSendLongData,
            0x19 => StmtClose,
            0x1a => StmtReset,
            0x1b => SetOption,
            0x1c => StmtFetch,
            0x1d => Daemon,
            0x1e => BinlogDumpGtid,
            0x1f => ResetConnection,
            0x20 => Clone,
            0xfa => StmtBulkExecute,
            n => Other(n),
        }
    }

    /// The protocol's own name (`COM_QUERY`, ...); `LOGIN`, `AUTH` and `TLS` for the others.
    pub fn name(self) -> &'static str {
        use Command::*;
        match self {
            Sleep => "COM_SLEEP",
            Quit => "COM_QUIT",
            InitDb => "COM_INIT_DB",
            Query => "COM_QUERY",
            FieldList => "COM_FIELD_LIST",
            CreateDb => "COM_CREATE_DB",
            DropDb => "COM_DROP_DB",
            Refresh => "COM_REFRESH",
            Shutdown => "COM_SHUTDOWN",
            Statistics => "COM_STATISTICS",
            ProcessInfo => "COM_PROCESS_INFO",
            Connect => "COM_CONNECT",
            ProcessKill => "COM_PROCESS_KILL",
            Debug => "COM_DEBUG",
            Ping => "COM_PING",
            Time => "COM_TIME",
            DelayedInsert => "COM_DELAYED_INSERT",
            ChangeUser => "COM_CHANGE_USER",
            BinlogDump => "COM_BINLOG_DUMP",
            TableDump => "COM_TABLE_DUMP",
            ConnectOut => "COM_CONNECT_OUT",
            RegisterSlave => "COM_REGISTER_SLAVE",
            StmtPrepare => "COM_STMT_PREPARE",
            StmtExecute => "COM_STMT_EXECUTE",
            StmtSendLongData => "COM_STMT_SEND_LONG_DATA",
            StmtClose => "COM_STMT_CLOSE",
            StmtReset => "COM_STMT_RESET",
            SetOption => "COM_SET_OPTION",
            StmtFetch => "COM_STMT_FETCH",
            Daemon => "COM_DAEMON",
            BinlogDumpGtid => "COM_BINLOG_DUMP_GTID",
            ResetConnection => "COM_RESET_CONNECTION",
            Clone => "COM_CLONE",
            StmtBulkExecute => "COM_STMT_BULK_EXECUTE",
            Other(_) => "COM_UNKNOWN",
            Login => "LOGIN",
            Auth => "AUTH",
            Tls => "TLS",
        }
    }

    /// The command byte on the wire (none for the login, auth and TLS turns).
    pub fn code(self) -> Option<u8> {
        use Command::*;
        Some(match self {
            Login | Auth | Tls => return None,
            Other(n) => n,
            Sleep => 0x00,
            Quit => 0x01,
            InitDb => 0x02,
            Query => 0x03,
            FieldList => 0x04,
            CreateDb => 0x05,
            DropDb => 0x06,
            Refresh => 0x07,
            Shutdown => 0x08,
            Statistics => 0x09,
            ProcessInfo => 0x0a,
            Connect => 0x0b,
            ProcessKill => 0x0c,
            Debug => 0x0d,
            Ping => 0x0e,
            Time => 0x0f,
            DelayedInsert => 0x10,
            ChangeUser => 0x11,
            BinlogDump => 0x12,
            TableDump => 0x13,
            ConnectOut => 0x14,
            RegisterSlave => 0x15,
            StmtPrepare => 0x16,
            StmtExecute => 0x17,
            StmtSendLongData => 0x18,
            StmtClose => 0x19,
            StmtReset => 0x1a,
            SetOption => 0x1b,
            StmtFetch => 0x1c,
            Daemon => 0x1d,
            BinlogDumpGtid => 0x1e,
            ResetConnection => 0x1f,
            Clone => 0x20,
            StmtBulkExecute => 0xfa,
        })
    }

    /// Commands a client sends in the command phase. `Sleep`, `Connect`, `Time`,
    /// `DelayedInsert` and `Daemon` are server-internal and never appear on the wire, so
    /// they are not plausible when hunting for a request.
    fn plausible_request(self, payload_len: usize) -> bool {
        use Command::*;
        match self {
            Quit | Ping | Statistics | ProcessInfo | Debug | ResetConnection => payload_len == 1,
            StmtClose | StmtReset | ProcessKill => payload_len == 5,
            SetOption => payload_len == 3,
            StmtFetch => payload_len == 9,
            StmtExecute | StmtBulkExecute => payload_len >= 10,
            StmtSendLongData => payload_len >= 7,
            Query | StmtPrepare | InitDb | FieldList | CreateDb | DropDb | ChangeUser => {
                payload_len >= 2
            }
            Refresh | Shutdown => payload_len <= 2,
            BinlogDump | BinlogDumpGtid | RegisterSlave | TableDump | Clone => payload_len >= 2,
            Sleep | Connect | Time | DelayedInsert | Daemon | ConnectOut | Other(_) | Login
            | Auth | Tls => false,
        }
    }
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResponseStatus {
    Ok,
    Error,
    ResultSet,
    /// The command has no response (COM_QUIT, COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA).
    NoResponse,
    /// A gap, a resynchronisation or the end of the capture cut the exchange.
    Incomplete,
    /// TLS: the contents are not visible.
    Opaque,
    /// An authentication turn the server answered by asking for more (auth switch, more data).
    AuthContinue,
}

impl ResponseStatus {
    pub fn name(self) -> &'static str {
        match self {
            ResponseStatus::Ok => "ok",
            ResponseStatus::Error => "error",
            ResponseStatus::ResultSet => "result_set",
            ResponseStatus::NoResponse => "no_response",
            ResponseStatus::Incomplete => "incomplete",
            ResponseStatus::Opaque => "opaque",
            ResponseStatus::AuthContinue => "auth_continue",
        }
    }
}

/// One request paired with its response (or with none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    pub command: Command,
    /// COM_QUERY / COM_STMT_PREPARE text; for statement commands the SQL the statement was
    /// prepared from; COM_INIT_DB / COM_CREATE_DB / COM_DROP_DB schema; COM_FIELD_LIST table.
    pub statement: Option<Arc<str>>,
    /// The statement text was longer than what is retained and was cut.
    pub statement_truncated: bool,
    pub statement_id: Option<u32>,
    pub request_first_frame: u64,
    pub request_last_frame: u64,
    pub request_first_ts: Timestamp,
    pub request_last_ts: Timestamp,
    pub response_first_frame: Option<u64>,
    pub response_last_frame: Option<u64>,
    pub response_first_ts: Option<Timestamp>,
    pub response_last_ts: Option<Timestamp>,
    /// MySQL packet bytes (headers included, after decompression) of each side; for TLS the
    /// TCP payload bytes.
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub status: ResponseStatus,
    pub error_code: Option<u16>,
    pub error_message: Option<String>,
    pub sql_state: Option<String>,
    /// Sum over the OK packets of the response.
    pub affected_rows: Option<u64>,
    pub last_insert_id: Option<u64>,
    pub warnings: Option<u16>,
    /// Columns of the first result set (COM_STMT_PREPARE: columns of the statement;
    /// COM_FIELD_LIST: fields listed).
    pub columns: Option<u64>,
    /// Rows over all result sets.
    pub rows: Option<u64>,
    /// Results in the response: result sets and OKs (> 1 with SERVER_MORE_RESULTS_EXISTS).
    pub result_sets: u32,
    /// Status flags of the final OK/EOF (SERVER_STATUS_IN_TRANS, _AUTOCOMMIT, ...).
    pub server_status: Option<u16>,
    /// COM_STMT_PREPARE: parameters of the statement.
    pub params: Option<u16>,
    /// LOCAL INFILE: file bytes the client uploaded within this exchange.
    pub infile_bytes: Option<u64>,
    /// Authentication: the plugin the server switched to.
    pub auth_switch_plugin: Option<String>,
}

impl Exchange {
    fn new(command: Command, first: Pos, last: Pos, bytes: u64) -> Self {
        Exchange {
            command,
            statement: None,
            statement_truncated: false,
            statement_id: None,
            request_first_frame: first.frame,
            request_last_frame: last.frame,
            request_first_ts: first.ts,
            request_last_ts: last.ts,
            response_first_frame: None,
            response_last_frame: None,
            response_first_ts: None,
            response_last_ts: None,
            request_bytes: bytes,
            response_bytes: 0,
            status: ResponseStatus::Incomplete,
            error_code: None,
            error_message: None,
            sql_state: None,
            affected_rows: None,
            last_insert_id: None,
            warnings: None,
            columns: None,
            rows: None,
            result_sets: 0,
            server_status: None,
            params: None,
            infile_bytes: None,
            auth_switch_plugin: None,
        }
    }

    fn extend_request(&mut self, last: Pos, bytes: u64) {
        self.request_last_frame = last.frame;
        self.request_last_ts = last.ts;
        self.request_bytes += bytes;
    }

    fn extend_response(&mut self, first: Pos, last: Pos, bytes: u64) {
        if self.response_first_frame.is_none() {
            self.response_first_frame = Some(first.frame);
            self.response_first_ts = Some(first.ts);
        }
        self.response_last_frame = Some(last.frame);
        self.response_last_ts = Some(last.ts);
        self.response_bytes += bytes;
    }

    /// Response time from the capture's vantage point: response first byte − request last byte.
    pub fn response_time(&self) -> Option<crate::time::Duration> {
        Some(self.response_first_ts?.since(self.request_last_ts))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MysqlAnomaly {
    /// The capture lost bytes of one direction.
    Gap,
    /// Bytes were skipped to find the next plausible packet boundary.
    Resync,
    /// A packet that does not fit the connection's state (a server packet with no request
    /// pending, a client packet with an unexpected sequence id, ...).
    UnexpectedPacket,
    /// A packet whose contents do not parse.
    MalformedPacket,
    /// A command byte with no known meaning.
    UnknownCommand,
    /// A compressed packet that does not inflate to its declared length.
    Decompression,
    /// A compressed packet that inflates beyond its declared length.
    DecompressionBomb,
    /// More pipelined requests than the connection tracks.
    TooManyPending,
}

impl MysqlAnomaly {
    pub fn name(self) -> &'static str {
        match self {
            MysqlAnomaly::Gap => "gap",
            MysqlAnomaly::Resync => "resync",
            MysqlAnomaly::UnexpectedPacket => "unexpected_packet",
            MysqlAnomaly::MalformedPacket => "malformed_packet",
            MysqlAnomaly::UnknownCommand => "unknown_command",
            MysqlAnomaly::Decompression => "decompression",
            MysqlAnomaly::DecompressionBomb => "decompression_bomb",
            MysqlAnomaly::TooManyPending => "too_many_pending",
        }
    }
}

// Exchanges are by far the most common event and are moved once into the caller's Vec:
// boxing them would add an allocation per exchange for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MysqlEvent {
    Greeting {
        frame: u64,
        ts: Timestamp,
        protocol_version: u8,
        server_version: String,
        connection_id: u32,
        capabilities: u32,
        auth_plugin: Option<String>,
    },
    /// The server refused the connection instead of greeting (e.g. "Host ... is not allowed").
    GreetingError {
        frame: u64,
        ts: Timestamp,
        error_code: u16,
        message: String,
    },
    /// A HandshakeResponse (or COM_CHANGE_USER). For an SSLRequest the real login travels
    /// inside TLS: `user` is empty and `ssl` is true.
    Login {
        frame: u64,
        ts: Timestamp,
        user: String,
        database: Option<String>,
        auth_plugin: Option<String>,
        client_attrs: Vec<(String, String)>,
        ssl: bool,
        /// CLIENT_COMPRESS negotiated (both sides, or the client's word when the greeting was
        /// not captured).
        compress: bool,
        change_user: bool,
    },
    TlsStarted {
        frame: u64,
    },
    /// Boxed: an exchange is some 300 bytes, and events are moved several times on their way.
    Exchange(Box<Exchange>),
    Anomaly {
        frame: u64,
        kind: MysqlAnomaly,
        detail: String,
    },
}

/// Counters for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MysqlStats {
    /// Logical packets decoded, [to server, to client].
    pub packets: [u64; 2],
    /// Bytes skipped while hunting for a packet boundary.
    pub skipped_bytes: [u64; 2],
    /// Payload bytes beyond the retained prefix (counted, not stored).
    pub unretained_payload_bytes: u64,
    pub gaps: u64,
    pub resyncs: u64,
    pub anomalies: u64,
    pub exchanges: u64,
    pub compressed_packets: u64,
    pub decompressed_bytes: u64,
    pub decompression_bombs: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Nothing decoded yet (or a capture that started mid-connection).
    Unknown,
    /// Greeting seen, login not yet.
    AwaitLogin,
    /// Login sent, authentication in progress.
    Auth,
    Command,
    /// After an SSLRequest: opaque.
    Tls,
}

/// What shape of response a request expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// OK, ERR, EOF, a result set, or LOCAL INFILE.
    Generic,
    /// COM_STMT_EXECUTE: like Generic, binary rows, and a cursor ends the response early.
    Execute,
    Prepare,
    FieldList,
    /// COM_STMT_FETCH: rows then EOF.
    Fetch,
    /// COM_STATISTICS: a bare string.
    Statistics,
    /// Authentication: OK, ERR, auth switch, more data.
    Auth,
    /// COM_QUIT: normally nothing (the server closes).
    Quit,
    /// Binlog dumps: packets until EOF or ERR.
    Stream,
    /// Unknown command: take a response if one comes, give up at the next request.
    Maybe,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resp {
    Start,
    ColumnDefs {
        left: u64,
    },
    ColumnsEof,
    Rows,
    PrepParams {
        left: u64,
        cols: u64,
    },
    PrepParamsEof {
        cols: u64,
    },
    PrepCols {
        left: u64,
    },
    PrepColsEof,
    FieldDefs,
    /// The server asked for a LOCAL INFILE: the client uploads, then an empty packet.
    Infile,
    /// After a resynchronisation inside a response: only terminators are recognised.
    Lenient,
}

#[derive(Debug)]
struct Pending {
    /// Boxed: a pending request is moved into the queue, out of it and into an event; a box
    /// moves as one pointer.
    ex: Box<Exchange>,
    expect: Expect,
    state: Resp,
    req_last_seq: u8,
    got_response: bool,
    incomplete: bool,
    ended_with_error: bool,
    saw_result_set: bool,
    /// Part of the connection's first authentication (its OK starts the command phase).
    initial_login: bool,
}

impl Pending {
    fn new(ex: Exchange, expect: Expect, req_last_seq: u8) -> Self {
        let ex = Box::new(ex);
        let state = if expect == Expect::Fetch {
            Resp::Rows
        } else {
            Resp::Start
        };
        Pending {
            ex,
            expect,
            state,
            req_last_seq,
            got_response: false,
            incomplete: false,
            ended_with_error: false,
            saw_result_set: false,
            initial_login: false,
        }
    }

    fn apply_ok(&mut self, ok: &wire::OkPacket) {
        self.ex.affected_rows = Some(
            self.ex
                .affected_rows
                .unwrap_or(0)
                .saturating_add(ok.affected_rows),
        );
        if ok.last_insert_id != 0 || self.ex.last_insert_id.is_none() {
            self.ex.last_insert_id = Some(ok.last_insert_id);
        }
        self.ex.warnings = Some(ok.warnings);
        self.ex.server_status = Some(ok.status);
        self.ended_with_error = false;
    }

    fn apply_err(&mut self, payload: &[u8]) {
        if let Some(e) = wire::parse_err(payload) {
            self.ex.error_code = Some(e.code);
            self.ex.sql_state = e.sql_state;
            self.ex.error_message = Some(e.message);
        }
        self.ended_with_error = true;
    }

    fn add_row(&mut self) {
        self.ex.rows = Some(self.ex.rows.unwrap_or(0).saturating_add(1));
    }

    fn final_status(&self) -> ResponseStatus {
        if self.incomplete {
            ResponseStatus::Incomplete
        } else if self.ended_with_error {
            ResponseStatus::Error
        } else if self.saw_result_set {
            ResponseStatus::ResultSet
        } else {
            ResponseStatus::Ok
        }
    }
}

/// What one response packet did to the exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    More,
    Done,
    /// The response ended before this packet, which belongs to the next one.
    DoneBefore,
    /// An authentication turn ended with the server asking for more.
    AuthWaiting,
}

/// Prepared statements of one connection: id → SQL, bounded in count and bytes.
#[derive(Debug, Default)]
struct StatementMap {
    sql: HashMap<u32, Arc<str>, crate::tcp::stream::FxBuildHasher>,
    order: VecDeque<u32>,
    bytes: usize,
}

impl StatementMap {
    fn insert(&mut self, id: u32, sql: Arc<str>) {
        self.remove(id);
        self.bytes += sql.len();
        self.sql.insert(id, sql);
        self.order.push_back(id);
        while self.order.len() > MAX_PREPARED || self.bytes > MAX_PREPARED_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(s) = self.sql.remove(&old) {
                self.bytes -= s.len();
            }
        }
    }

    fn remove(&mut self, id: u32) {
        if let Some(s) = self.sql.remove(&id) {
            self.bytes -= s.len();
            self.order.retain(|&x| x != id);
        }
    }

    fn get(&self, id: u32) -> Option<&Arc<str>> {
        self.sql.get(&id)
    }

    fn clear(&mut self) {
        *self = StatementMap::default();
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Switch {
    /// Login finished with CLIENT_COMPRESS: both directions are compressed from here.
    EnableCompression,
    /// A mid-stream client request turned out to be compressed.
    CompressionFound,
    StartTls,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Boundary {
    Plain(usize),
    Compressed(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HuntReason {
    /// Start of the capture: skipping the tail of whatever came before is expected.
    Start,
    /// After a gap or a protocol surprise: skipping is worth reporting.
    Lost,
}

#[derive(Debug)]
struct TlsTurn {
    ex: Box<Exchange>,
    has_response: bool,
    incomplete: bool,
}

/// Connection-level protocol state (everything above framing).
#[derive(Debug)]
struct Proto {
    phase: Phase,
    server_caps: Option<u32>,
    client_caps: Option<u32>,
    mariadb_caps: u32,
    pending: VecDeque<Pending>,
    tls: Option<TlsTurn>,
    statements: StatementMap,
    last_prepared: Option<u32>,
    switch: Option<Switch>,
    hunt_reason: [HuntReason; 2],
    skipped_run: [u64; 2],
    stats: MysqlStats,
}

#[derive(Debug)]
struct DirState {
    asm: Assembler,
    hunting: bool,
    decoder: Option<Box<Decompressor>>,
}

/// The state of one TCP connection (one per `tcp.stream`).
#[derive(Debug)]
pub struct MysqlConnection {
    proto: Proto,
    dirs: [DirState; 2],
}

impl Default for MysqlConnection {
    fn default() -> Self {
        Self::new()
    }
}

impl MysqlConnection {
    pub fn new() -> Self {
        MysqlConnection {
            proto: Proto {
                phase: Phase::Unknown,
                server_caps: None,
                client_caps: None,
                mariadb_caps: 0,
                pending: VecDeque::new(),
                tls: None,
                statements: StatementMap::default(),
                last_prepared: None,
                switch: None,
                hunt_reason: [HuntReason::Start; 2],
                skipped_run: [0; 2],
                stats: MysqlStats::default(),
            },
            // Both directions start by looking for a boundary: a capture may begin anywhere.
            dirs: [
                DirState {
                    asm: Assembler::new(CLIENT_RETAIN),
                    hunting: true,
                    decoder: None,
                },
                DirState {
                    asm: Assembler::new(SERVER_RETAIN),
                    hunting: true,
                    decoder: None,
                },
            ],
        }
    }

    pub fn stats(&self) -> MysqlStats {
        let mut s = self.proto.stats;
        s.unretained_payload_bytes = self.dirs.iter().map(|d| d.asm.skipped_payload).sum::<u64>();
        for d in &self.dirs {
            if let Some(dec) = &d.decoder {
                s.compressed_packets += dec.stats.packets;
                s.decompressed_bytes += dec.stats.decompressed_bytes;
                s.decompression_bombs += dec.stats.bombs;
            }
        }
        s
    }

    /// True once the connection has switched to the compressed protocol.
    pub fn compressed(&self) -> bool {
        self.dirs.iter().any(|d| d.decoder.is_some())
    }

    /// Reassembled bytes of one direction, in order, with the frame and capture time of the
    /// segment they came from.
    pub fn on_data(
        &mut self,
        dir: Direction,
        bytes: &[u8],
        frame: u64,
        ts: Timestamp,
        out: &mut Vec<MysqlEvent>,
    ) {
        let pos = Pos { frame, ts };
        let mut rest = bytes;
        // Each round consumes at least one byte or returns; framing switches at most a few
        // times per connection, so the bound is never reached by valid input.
        for _ in 0..16 {
            if rest.is_empty() {
                return;
            }
            if self.proto.phase == Phase::Tls {
                self.proto.tls_data(dir, rest.len() as u64, pos, out);
                return;
            }
            let i = dir.index();
            let proto = &mut self.proto;
            let Some(DirState {
                asm,
                hunting,
                decoder,
            }) = self.dirs.get_mut(i)
            else {
                return;
            };
            if let Some(dec) = decoder.as_mut() {
                dec.feed(rest, pos, &mut |d| match d {
                    Decoded::Data { bytes, first, cur } => {
                        feed_packets(proto, asm, hunting, dir, bytes, first, cur, true, out);
                    }
                    Decoded::Lost { len, problem } => {
                        proto.inner_lost(dir, len, problem, pos, out);
                        asm.reset();
                        *hunting = true;
                    }
                    Decoded::Skipped { len } => proto.skipped(dir, len),
                });
                return;
            }
            let used = feed_packets(proto, asm, hunting, dir, rest, pos, pos, false, out);
            rest = rest.get(used..).unwrap_or(&[]);
            self.apply_switch(dir);
        }
    }

    fn apply_switch(&mut self, dir: Direction) {
        match self.proto.switch.take() {
            None | Some(Switch::StartTls) => {}
            Some(Switch::EnableCompression) => {
                for d in &mut self.dirs {
                    d.asm.reset();
                    d.decoder = Some(Box::new(Decompressor::new(false)));
                }
            }
            Some(Switch::CompressionFound) => {
                for (i, d) in self.dirs.iter_mut().enumerate() {
                    d.asm.reset();
                    // The inner stream is validated again by the usual hunt; the other
                    // direction has not been located yet.
                    d.hunting = true;
                    d.decoder = Some(Box::new(Decompressor::new(i != dir.index())));
                }
            }
        }
    }

    /// `len` bytes of this direction were never captured: resynchronise and mark the exchange
    /// in progress as incomplete.
    pub fn on_gap(
        &mut self,
        dir: Direction,
        len: u64,
        frame: u64,
        ts: Timestamp,
        out: &mut Vec<MysqlEvent>,
    ) {
        let pos = Pos { frame, ts };
        self.proto.stats.gaps += 1;
        self.proto.anomaly(
            frame,
            MysqlAnomaly::Gap,
            format!("{len} bytes {} not captured", dir_name(dir)),
            out,
        );
        if self.proto.phase == Phase::Tls {
            if let Some(t) = self.proto.tls.as_mut() {
                t.incomplete = true;
            }
            return;
        }
        let Some(d) = self.dirs.get_mut(dir.index()) else {
            return;
        };
        // A request whose tail was lost still gets its exchange (so the server's answer pairs
        // with it), marked incomplete.
        if dir == Direction::ToServer && d.decoder.is_none() {
            if let Some((seq, data, start)) = d.asm.partial() {
                if seq == 0 {
                    let data = data.to_vec();
                    self.proto.partial_request(&data, start, pos, out);
                }
            }
        }
        let Some(d) = self.dirs.get_mut(dir.index()) else {
            return;
        };
        d.asm.reset();
        d.hunting = true;
        if let Some(dec) = d.decoder.as_mut() {
            dec.lose_sync();
        }
        self.proto.set_hunt_lost(dir);
        self.proto.gap_marks_incomplete(dir);
    }

    /// Connection ended (or capture ended): flush pending exchanges.
    pub fn on_close(&mut self, frame: u64, ts: Timestamp, out: &mut Vec<MysqlEvent>) {
        let _ = ts;
        if let Some(t) = self.proto.tls.take() {
            let mut ex = t.ex;
            ex.status = if t.incomplete {
                ResponseStatus::Incomplete
            } else if t.has_response {
                ResponseStatus::Opaque
            } else {
                ResponseStatus::NoResponse
            };
            self.proto.emit(ex, out);
        }
        while let Some(mut p) = self.proto.pending.pop_front() {
            p.ex.status = if p.expect == Expect::Quit && !p.got_response {
                ResponseStatus::NoResponse
            } else if p.expect == Expect::Auth && p.got_response && !p.incomplete {
                ResponseStatus::AuthContinue
            } else {
                ResponseStatus::Incomplete
            };
            self.proto.emit(p.ex, out);
        }
        for i in 0..2 {
            self.proto.flush_skipped_run(i, frame, out);
        }
    }
}

fn dir_name(dir: Direction) -> &'static str {
    match dir {
        Direction::ToServer => "client→server",
        Direction::ToClient => "server→client",
    }
}

/// Runs bytes of one direction through hunting and framing into the protocol. Returns the
/// bytes consumed: fewer than given only when the framing switches (`inner` false).
#[allow(clippy::too_many_arguments)]
fn feed_packets(
    proto: &mut Proto,
    asm: &mut Assembler,
    hunting: &mut bool,
    dir: Direction,
    bytes: &[u8],
    first: Pos,
    cur: Pos,
    inner: bool,
    out: &mut Vec<MysqlEvent>,
) -> usize {
    let mut at = 0usize;
    while at < bytes.len() {
        let Some(rest) = bytes.get(at..) else { break };
        if *hunting {
            match proto.find_boundary(dir, rest, inner) {
                None => {
                    proto.skipped(dir, rest.len() as u64);
                    return bytes.len();
                }
                Some(Boundary::Plain(off)) => {
                    proto.skipped(dir, off as u64);
                    at += off;
                    *hunting = false;
                    proto.resynced(dir, rest.get(off..).unwrap_or(&[]), cur, out);
                    continue;
                }
                Some(Boundary::Compressed(off)) => {
                    proto.skipped(dir, off as u64);
                    at += off;
                    *hunting = false;
                    proto.resynced(dir, &[], cur, out);
                    proto.switch = Some(Switch::CompressionFound);
                    return at;
                }
            }
        }
        let here = if at == 0 { first } else { cur };
        let (used, flow) = asm.feed(rest, here, cur, &mut |pkt| proto.on_packet(dir, pkt, out));
        at += used.max(usize::from(flow != Flow::Continue && used == 0));
        match flow {
            Flow::Continue => {}
            Flow::Stop => {
                if !inner {
                    return at;
                }
            }
            Flow::Desync => {
                asm.reset();
                *hunting = true;
                proto.set_hunt_lost(dir);
            }
        }
    }
    at
}

impl Proto {
    fn caps(&self) -> Option<u32> {
        match (self.client_caps, self.server_caps) {
            (Some(c), Some(s)) => Some(c & s),
            (Some(c), None) => Some(c),
            _ => None,
        }
    }

    fn set_hunt_lost(&mut self, dir: Direction) {
        if let Some(r) = self.hunt_reason.get_mut(dir.index()) {
            *r = HuntReason::Lost;
        }
    }

    fn has_cap(&self, bit: u32) -> Option<bool> {
        self.caps().map(|c| c & bit != 0)
    }

    fn anomaly(
        &mut self,
        frame: u64,
        kind: MysqlAnomaly,
        detail: String,
        out: &mut Vec<MysqlEvent>,
    ) {
        self.stats.anomalies += 1;
        if self.stats.anomalies <= MAX_ANOMALY_EVENTS {
            out.push(MysqlEvent::Anomaly {
                frame,
                kind,
                detail,
            });
        }
    }

    fn emit(&mut self, ex: Box<Exchange>, out: &mut Vec<MysqlEvent>) {
        self.stats.exchanges += 1;
        out.push(MysqlEvent::Exchange(ex));
    }

    fn skipped(&mut self, dir: Direction, len: u64) {
        if len == 0 {
            return;
        }
        let i = dir.index();
        if let Some(s) = self.stats.skipped_bytes.get_mut(i) {
            *s += len;
        }
        if let Some(s) = self.skipped_run.get_mut(i) {
            *s += len;
        }
    }

    fn flush_skipped_run(&mut self, i: usize, frame: u64, out: &mut Vec<MysqlEvent>) {
        let run = self.skipped_run.get(i).copied().unwrap_or(0);
        if run == 0 {
            return;
        }
        if let Some(s) = self.skipped_run.get_mut(i) {
            *s = 0;
        }
        if self.hunt_reason.get(i) == Some(&HuntReason::Lost) {
            self.stats.resyncs += 1;
            let d = if i == 0 {
                "client→server"
            } else {
                "server→client"
            };
            self.anomaly(
                frame,
                MysqlAnomaly::Resync,
                format!("skipped {run} bytes {d} to find a packet boundary"),
                out,
            );
        }
    }

    /// A boundary was found after hunting.
    fn resynced(&mut self, dir: Direction, bytes: &[u8], at: Pos, out: &mut Vec<MysqlEvent>) {
        let i = dir.index();
        self.flush_skipped_run(i, at.frame, out);
        if let Some(r) = self.hunt_reason.get_mut(i) {
            *r = HuntReason::Lost;
        }
        if dir != Direction::ToClient {
            return;
        }
        // Resynchronising inside a response: if the packet answers the pending request
        // directly (sequence id right after the request's), the response starts here and is
        // whole; otherwise only its terminator can still be recognised.
        let Some(p) = self.pending.front_mut() else {
            return;
        };
        if p.incomplete && p.expect != Expect::Auth {
            let starts_response = header_at(bytes, 0).is_some_and(|(len, seq)| {
                seq == p.req_last_seq.wrapping_add(1) && plausible_response_start(bytes, len)
            });
            if starts_response && p.ex.response_first_frame.is_none() {
                p.incomplete = false;
                p.got_response = false;
                p.state = if p.expect == Expect::Fetch {
                    Resp::Rows
                } else {
                    Resp::Start
                };
            } else {
                p.state = Resp::Lenient;
            }
        }
    }

    fn gap_marks_incomplete(&mut self, dir: Direction) {
        let Some(p) = self.pending.front_mut() else {
            return;
        };
        match dir {
            Direction::ToClient => {
                p.incomplete = true;
                p.got_response = true;
                p.state = Resp::Lenient;
            }
            Direction::ToServer => {
                // The client's bytes matter to the exchange in progress only while it is
                // still sending (a LOCAL INFILE upload, an authentication turn).
                if p.state == Resp::Infile || p.expect == Expect::Auth {
                    p.incomplete = true;
                }
            }
        }
    }

    /// A request whose tail fell into a gap: its exchange exists, incomplete.
    fn partial_request(&mut self, data: &[u8], start: Pos, at: Pos, out: &mut Vec<MysqlEvent>) {
        let Some(&code) = data.first() else { return };
        let command = Command::from_code(code);
        if !command.plausible_request(2.max(data.len())) && !matches!(command, Command::Query) {
            return;
        }
        self.settle_before_request(out);
        let mut ex = Exchange::new(command, start, at, data.len() as u64 + 4);
        self.describe_request(&mut ex, data, true);
        let mut p = Pending::new(ex, expect_for(command), 0);
        p.incomplete = true;
        self.push_pending(p, at.frame, out);
    }

    fn inner_lost(
        &mut self,
        dir: Direction,
        len: u64,
        problem: Problem,
        at: Pos,
        out: &mut Vec<MysqlEvent>,
    ) {
        let (kind, detail) = match problem {
            Problem::Bomb => (
                MysqlAnomaly::DecompressionBomb,
                "compressed packet inflates beyond its declared length; rest skipped".to_string(),
            ),
            Problem::TooLarge => (
                MysqlAnomaly::Decompression,
                format!("zstd payload too large to buffer ({len} bytes declared)"),
            ),
            Problem::Corrupt(d) => (MysqlAnomaly::Decompression, d),
            Problem::Gap => (MysqlAnomaly::Gap, format!("{len} bytes lost")),
        };
        self.anomaly(at.frame, kind, detail, out);
        self.set_hunt_lost(dir);
        self.gap_marks_incomplete(dir);
    }

    fn on_packet(&mut self, dir: Direction, pkt: Packet<'_>, out: &mut Vec<MysqlEvent>) -> Flow {
        if let Some(n) = self.stats.packets.get_mut(dir.index()) {
            *n += 1;
        }
        match dir {
            Direction::ToServer => self.client_packet(pkt, out),
            Direction::ToClient => self.server_packet(pkt, out),
        }
    }

    // ---- client side -------------------------------------------------------------------

    fn client_packet(&mut self, pkt: Packet<'_>, out: &mut Vec<MysqlEvent>) -> Flow {
        // A LOCAL INFILE upload: every packet is file content (sequence ids may wrap to 0)
        // until the empty packet that ends it.
        if let Some(p) = self.pending.front_mut() {
            if p.state == Resp::Infile {
                p.ex.request_bytes += pkt.wire_len;
                p.ex.infile_bytes = Some(p.ex.infile_bytes.unwrap_or(0) + pkt.len);
                if pkt.len == 0 {
                    p.state = Resp::Start;
                }
                return Flow::Continue;
            }
        }
        if pkt.seq != 0 {
            if self
                .pending
                .front()
                .is_some_and(|p| p.expect == Expect::Auth)
            {
                self.auth_turn(pkt, out);
                return Flow::Continue;
            }
            if pkt.seq == 1 && matches!(self.phase, Phase::Unknown | Phase::AwaitLogin) {
                return self.handshake_response(pkt, out);
            }
            self.anomaly(
                pkt.start.frame,
                MysqlAnomaly::UnexpectedPacket,
                format!(
                    "client packet with sequence id {} outside any exchange ({} bytes)",
                    pkt.seq, pkt.len
                ),
                out,
            );
            return Flow::Continue;
        }
        self.start_command(pkt, out)
    }

    fn handshake_response(&mut self, pkt: Packet<'_>, out: &mut Vec<MysqlEvent>) -> Flow {
        let Some(hr) = wire::parse_handshake_response(pkt.data) else {
            self.anomaly(
                pkt.start.frame,
                MysqlAnomaly::MalformedPacket,
                "handshake response does not parse".into(),
                out,
            );
            return Flow::Continue;
        };
        self.client_caps = Some(hr.capabilities);
        self.mariadb_caps = hr.mariadb_capabilities;
        let compress = self.has_cap(cap::COMPRESS).unwrap_or(false);
        out.push(MysqlEvent::Login {
            frame: pkt.end.frame,
            ts: pkt.end.ts,
            user: hr.user,
            database: hr.database,
            auth_plugin: hr.auth_plugin,
            client_attrs: hr.attrs,
            ssl: hr.ssl_request,
            compress,
            change_user: false,
        });
        if hr.ssl_request {
            out.push(MysqlEvent::TlsStarted {
                frame: pkt.end.frame,
            });
            self.phase = Phase::Tls;
            self.tls = Some(TlsTurn {
                ex: Box::new(Exchange::new(
                    Command::Tls,
                    pkt.start,
                    pkt.end,
                    pkt.wire_len,
                )),
                has_response: false,
                incomplete: false,
            });
            self.switch = Some(Switch::StartTls);
            return Flow::Stop;
        }
        self.phase = Phase::Auth;
        let ex = Exchange::new(Command::Login, pkt.start, pkt.end, pkt.wire_len);
        let mut p = Pending::new(ex, Expect::Auth, pkt.last_seq);
        p.initial_login = true;
        self.push_pending(p, pkt.start.frame, out);
        Flow::Continue
    }

    /// A client authentication packet after the first: it closes the previous turn (the
    /// server asked for more) and opens the next.
    fn auth_turn(&mut self, pkt: Packet<'_>, out: &mut Vec<MysqlEvent>) {
        let Some(front) = self.pending.front_mut() else {
            return;
        };
        if !front.got_response {
            front.ex.extend_request(pkt.end, pkt.wire_len);
            front.req_last_seq = pkt.last_seq;
            return;
        }
        let initial = front.initial_login;
        if let Some(mut prev) = self.pending.pop_front() {
            prev.ex.status = if prev.incomplete {
                ResponseStatus::Incomplete
            } else {
                ResponseStatus::AuthContinue
            };
            self.emit(prev.ex, out);
        }
        let ex = Exchange::new(Command::Auth, pkt.start, pkt.end, pkt.wire_len);
        let mut p = Pending::new(ex, Expect::Auth, pkt.last_seq);
        p.initial_login = initial;
        self.pending.push_front(p);
    }

    /// Closes pending exchanges that can no longer get (the rest of) a response, because the
    /// client moved on to a new request.
    fn settle_before_request(&mut self, out: &mut Vec<MysqlEvent>) {
        while let Some(front) = self.pending.front() {
            let status = if front.incomplete {
                ResponseStatus::Incomplete
            } else if !front.got_response {
                match front.expect {
                    Expect::Quit | Expect::Maybe => ResponseStatus::NoResponse,
                    // An authentication that the client abandoned: the OK was not seen.
                    Expect::Auth => ResponseStatus::Incomplete,
                    // Pipelining: keep waiting, responses come in order.
                    _ => break,
                }
            } else if front.expect == Expect::Auth {
                ResponseStatus::Incomplete
            } else {
                // A client cannot send a command while a response is still arriving: the
                // response ended somewhere we did not recognise.
                ResponseStatus::Incomplete
            };
            if let Some(mut p) = self.pending.pop_front() {
                p.ex.status = status;
                self.emit(p.ex, out);
            }
        }
    }

    fn push_pending(&mut self, mut p: Pending, frame: u64, out: &mut Vec<MysqlEvent>) {
        let held: usize = self
            .pending
            .iter()
            .map(|q| q.ex.statement.as_ref().map_or(0, |s| s.len()))
            .sum();
        let new = p.ex.statement.as_ref().map_or(0, |s| s.len());
        if held + new > MAX_PENDING_SQL_BYTES && new > PENDING_SQL_CUT {
            if let Some(sql) = p.ex.statement.as_mut() {
                *sql = wire::shared_text(sql.as_bytes(), PENDING_SQL_CUT);
                p.ex.statement_truncated = true;
            }
        }
        if self.pending.len() >= MAX_PENDING {
            if let Some(mut old) = self.pending.pop_front() {
                old.ex.status = ResponseStatus::Incomplete;
                self.emit(old.ex, out);
            }
            self.anomaly(
                frame,
                MysqlAnomaly::TooManyPending,
                format!("more than {MAX_PENDING} requests without a response"),
                out,
            );
        }
        self.pending.push_back(p);
    }

    /// Fills the statement fields of a request from its payload (command byte included).
    fn describe_request(&mut self, ex: &mut Exchange, data: &[u8], truncated: bool) {
        let args = data.get(1..).unwrap_or(&[]);
        match ex.command {
            Command::Query => {
                let text = self.query_text(args);
                ex.statement = Some(wire::shared_text(text, CLIENT_RETAIN));
                ex.statement_truncated = truncated;
            }
            Command::StmtPrepare | Command::InitDb | Command::CreateDb | Command::DropDb => {
                ex.statement = Some(wire::shared_text(args, CLIENT_RETAIN));
                ex.statement_truncated = truncated;
            }
            Command::FieldList => {
                let mut r = Reader::new(args);
                ex.statement = Some(wire::shared_text(r.nul_or_eof(), 256));
            }
            Command::StmtExecute
            | Command::StmtFetch
            | Command::StmtReset
            | Command::StmtClose
            | Command::StmtSendLongData
            | Command::StmtBulkExecute => {
                if let Some(mut id) = Reader::new(args).u32() {
                    // MariaDB: -1 means "the statement prepared last" (pipelined
                    // prepare + execute).
                    // Resolved when that prepare's answer arrives if it is still pending.
                    let prepare_pending = self
                        .pending
                        .iter()
                        .any(|p| p.ex.command == Command::StmtPrepare);
                    if id == u32::MAX && !prepare_pending {
                        id = self.last_prepared.unwrap_or(id);
                    }
                    ex.statement_id = Some(id);
                    ex.statement = self.statements.get(id).cloned();
                }
            }
            _ => {}
        }
    }

    /// COM_QUERY text, with query attributes stripped when they are present. When the
    /// capabilities are unknown (capture started after the login), attributes are assumed
    /// only if the text would otherwise start with a control byte and the block parses.
    fn query_text<'a>(&self, args: &'a [u8]) -> &'a [u8] {
        match self.has_cap(cap::QUERY_ATTRIBUTES) {
            Some(true) => wire::strip_query_attributes(args).unwrap_or(args),
            Some(false) => args,
            None => {
                let control = args
                    .first()
                    .is_some_and(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'));
                if control {
                    wire::strip_query_attributes(args).unwrap_or(args)
                } else {
                    args
                }
            }
        }
    }

    fn start_command(&mut self, pkt: Packet<'_>, out: &mut Vec<MysqlEvent>) -> Flow {
        let Some(&code) = pkt.data.first() else {
            self.anomaly(
                pkt.start.frame,
                MysqlAnomaly::MalformedPacket,
                "empty client packet with sequence id 0".into(),
                out,
            );
            return Flow::Continue;
        };
        let command = Command::from_code(code);
        if matches!(self.phase, Phase::Unknown | Phase::AwaitLogin | Phase::Auth) {
            self.phase = Phase::Command;
        }
        self.settle_before_request(out);
        if let Command::Other(n) = command {
            self.anomaly(
                pkt.start.frame,
                MysqlAnomaly::UnknownCommand,
                format!("unknown command byte 0x{n:02x} ({} bytes)", pkt.len),
                out,
            );
        }
        let mut ex = Exchange::new(command, pkt.start, pkt.end, pkt.wire_len);
        self.describe_request(&mut ex, pkt.data, pkt.truncated());
        match command {
            Command::ChangeUser => {
                let caps = self
                    .caps()
                    .unwrap_or(cap::PROTOCOL_41 | cap::SECURE_CONNECTION | cap::PLUGIN_AUTH);
                if let Some(hr) = wire::parse_change_user(pkt.data.get(1..).unwrap_or(&[]), caps) {
                    out.push(MysqlEvent::Login {
                        frame: pkt.end.frame,
                        ts: pkt.end.ts,
                        user: hr.user,
                        database: hr.database,
                        auth_plugin: hr.auth_plugin,
                        client_attrs: hr.attrs,
                        ssl: false,
                        compress: self.has_cap(cap::COMPRESS).unwrap_or(false),
                        change_user: true,
                    });
                }
                // The server forgets prepared statements on a user change.
                self.statements.clear();
            }
            Command::ResetConnection => self.statements.clear(),
            Command::StmtClose => {
                if let Some(id) = ex.statement_id {
                    self.statements.remove(id);
                }
            }
            _ => {}
        }
        if matches!(command, Command::StmtClose | Command::StmtSendLongData) {
            ex.status = ResponseStatus::NoResponse;
            self.emit(Box::new(ex), out);
            return Flow::Continue;
        }
        let p = Pending::new(ex, expect_for(command), pkt.last_seq);
        self.push_pending(p, pkt.start.frame, out);
        Flow::Continue
    }

    // ---- server side -------------------------------------------------------------------

    fn server_packet(&mut self, pkt: Packet<'_>, out: &mut Vec<MysqlEvent>) -> Flow {
        if self.pending.is_empty() {
            if pkt.seq == 0 && matches!(self.phase, Phase::Unknown) {
                return self.greeting(pkt, out);
            }
            self.anomaly(
                pkt.start.frame,
                MysqlAnomaly::UnexpectedPacket,
                format!(
                    "server packet (sequence id {}, {} bytes) with no request pending",
                    pkt.seq, pkt.len
                ),
                out,
            );
            return Flow::Desync;
        }
        self.response_packet(pkt, out)
    }

    fn greeting(&mut self, pkt: Packet<'_>, out: &mut Vec<MysqlEvent>) -> Flow {
        if pkt.first_byte() == Some(0xff) {
            if let Some(e) = wire::parse_err(pkt.data) {
                out.push(MysqlEvent::GreetingError {
                    frame: pkt.end.frame,
                    ts: pkt.end.ts,
                    error_code: e.code,
                    message: e.message,
                });
                self.phase = Phase::Command;
                return Flow::Continue;
            }
        }
        match wire::parse_greeting(pkt.data) {
            Some(g) => {
                self.server_caps = Some(g.capabilities);
                self.mariadb_caps = g.mariadb_capabilities;
                self.phase = Phase::AwaitLogin;
                out.push(MysqlEvent::Greeting {
                    frame: pkt.end.frame,
                    ts: pkt.end.ts,
                    protocol_version: g.protocol_version,
                    server_version: g.server_version,
                    connection_id: g.connection_id,
                    capabilities: g.capabilities,
                    auth_plugin: g.auth_plugin,
                });
                Flow::Continue
            }
            None => {
                self.anomaly(
                    pkt.start.frame,
                    MysqlAnomaly::MalformedPacket,
                    "server greeting does not parse".into(),
                    out,
                );
                Flow::Desync
            }
        }
    }

    fn response_packet(&mut self, pkt: Packet<'_>, out: &mut Vec<MysqlEvent>) -> Flow {
        let deprecate_eof = self.has_cap(cap::DEPRECATE_EOF);
        let Some(p) = self.pending.front_mut() else {
            return Flow::Continue;
        };
        let step = step_response(p, &pkt, deprecate_eof);
        if step == Step::DoneBefore {
            // The packet was not part of this response: close it and offer the packet to
            // the next request.
            if let Some(p) = self.pending.pop_front() {
                self.finish(p, out);
            }
            if self.pending.is_empty() {
                self.anomaly(
                    pkt.start.frame,
                    MysqlAnomaly::UnexpectedPacket,
                    format!(
                        "server packet (sequence id {}) after the response ended",
                        pkt.seq
                    ),
                    out,
                );
                return Flow::Desync;
            }
            return self.response_packet(pkt, out);
        }
        p.got_response = true;
        p.ex.extend_response(pkt.start, pkt.end, pkt.wire_len);
        match step {
            Step::More | Step::DoneBefore | Step::AuthWaiting => Flow::Continue,
            Step::Done => {
                let Some(p) = self.pending.pop_front() else {
                    return Flow::Continue;
                };
                let auth_ok = p.expect == Expect::Auth && !p.ended_with_error && !p.incomplete;
                let initial = p.initial_login;
                let change_user = p.ex.command == Command::ChangeUser;
                self.finish(p, out);
                if initial || self.phase == Phase::Auth {
                    self.phase = Phase::Command;
                    if auth_ok && self.has_cap(cap::COMPRESS) == Some(true) {
                        self.switch = Some(Switch::EnableCompression);
                        return Flow::Stop;
                    }
                }
                if change_user && auth_ok {
                    self.statements.clear();
                }
                Flow::Continue
            }
        }
    }

    fn finish(&mut self, mut p: Pending, out: &mut Vec<MysqlEvent>) {
        p.ex.status = p.final_status();
        if p.ex.command == Command::StmtPrepare && p.ex.status == ResponseStatus::Ok {
            if let (Some(id), Some(sql)) = (p.ex.statement_id, p.ex.statement.as_ref()) {
                let sql = if sql.len() <= MAX_PREPARED_SQL {
                    Arc::clone(sql)
                } else {
                    wire::shared_text(sql.as_bytes(), MAX_PREPARED_SQL)
                };
                // Pipelined executes of "the last prepared statement", up to the next prepare.
                for later in self.pending.iter_mut() {
                    if later.ex.command == Command::StmtPrepare {
                        break;
                    }
                    if later.ex.statement_id == Some(u32::MAX) {
                        later.ex.statement_id = Some(id);
                        later.ex.statement = Some(Arc::clone(&sql));
                    }
                }
                self.statements.insert(id, sql);
                self.last_prepared = Some(id);
            }
        }
        self.emit(p.ex, out);
    }

    // ---- TLS ---------------------------------------------------------------------------

    fn tls_data(&mut self, dir: Direction, len: u64, pos: Pos, out: &mut Vec<MysqlEvent>) {
        match dir {
            Direction::ToServer => match self.tls.as_mut() {
                Some(t) if !t.has_response => t.ex.extend_request(pos, len),
                _ => {
                    if let Some(t) = self.tls.take() {
                        let mut ex = t.ex;
                        ex.status = if t.incomplete {
                            ResponseStatus::Incomplete
                        } else {
                            ResponseStatus::Opaque
                        };
                        self.emit(ex, out);
                    }
                    self.tls = Some(TlsTurn {
                        ex: Box::new(Exchange::new(Command::Tls, pos, pos, len)),
                        has_response: false,
                        incomplete: false,
                    });
                }
            },
            Direction::ToClient => match self.tls.as_mut() {
                Some(t) => {
                    t.has_response = true;
                    t.ex.extend_response(pos, pos, len);
                }
                None => self.skipped(dir, len),
            },
        }
    }

    // ---- hunting -----------------------------------------------------------------------

    fn find_boundary(&self, dir: Direction, bytes: &[u8], inner: bool) -> Option<Boundary> {
        match dir {
            Direction::ToServer => self.find_client_boundary(bytes, inner),
            Direction::ToClient => self.find_server_boundary(bytes).map(Boundary::Plain),
        }
    }

    fn find_client_boundary(&self, bytes: &[u8], inner: bool) -> Option<Boundary> {
        let may_be_compressed = !inner && self.has_cap(cap::COMPRESS) != Some(false);
        let may_login = matches!(self.phase, Phase::Unknown | Phase::AwaitLogin);
        for off in 0..bytes.len().min(HUNT_WINDOW) {
            if may_login && plausible_handshake_response(bytes, off) {
                return Some(Boundary::Plain(off));
            }
            if plausible_request(bytes, off, off == 0) {
                return Some(Boundary::Plain(off));
            }
            if may_be_compressed && plausible_compressed_request(bytes, off) {
                return Some(Boundary::Compressed(off));
            }
            if self.phase == Phase::AwaitLogin {
                // Greeting seen: the only thing worth finding is the login, at a segment start.
                break;
            }
        }
        None
    }

    fn find_server_boundary(&self, bytes: &[u8]) -> Option<usize> {
        let Some(p) = self.pending.front() else {
            // Only a greeting can start the server's side without a request.
            if self.phase == Phase::Unknown && looks_like_mysql_greeting(bytes) {
                return Some(0);
            }
            return None;
        };
        let expected_seq = p.req_last_seq.wrapping_add(1);
        let fresh = !p.got_response || p.ex.response_first_frame.is_none();
        if fresh {
            if let Some((len, seq)) = header_at(bytes, 0) {
                let (_, end) = header_chain(bytes, 0, 64);
                let fits = end != ChainEnd::Broken;
                let first_ok = if p.expect == Expect::Auth {
                    true
                } else {
                    plausible_response_start(bytes, len)
                };
                if seq == expected_seq && fits && first_ok {
                    return Some(0);
                }
            }
            if !p.incomplete {
                return None;
            }
        }
        // Inside a response: a run of packets with consecutive sequence ids that ends exactly
        // at the end of the chunk (or at least three of them), or a lone terminator.
        for off in 0..bytes.len().min(HUNT_WINDOW) {
            let (n, end) = header_chain(bytes, off, 64);
            let exact = end == ChainEnd::Exact;
            if (n >= 2 && exact) || (n >= 3 && end == ChainEnd::Beyond) {
                return Some(off);
            }
            if n == 1 && exact {
                let first = bytes.get(off + 4).copied();
                let len = header_at(bytes, off).map_or(0, |h| h.0);
                if matches!(first, Some(0xfe) if len < 9) || first == Some(0xff) {
                    return Some(off);
                }
            }
        }
        None
    }
}

fn expect_for(command: Command) -> Expect {
    match command {
        Command::StmtExecute | Command::StmtBulkExecute => Expect::Execute,
        Command::StmtPrepare => Expect::Prepare,
        Command::FieldList => Expect::FieldList,
        Command::StmtFetch => Expect::Fetch,
        Command::Statistics => Expect::Statistics,
        Command::ChangeUser | Command::Login | Command::Auth => Expect::Auth,
        Command::Quit => Expect::Quit,
        Command::BinlogDump | Command::BinlogDumpGtid | Command::TableDump => Expect::Stream,
        Command::Other(_)
        | Command::Sleep
        | Command::Connect
        | Command::Time
        | Command::DelayedInsert
        | Command::Daemon
        | Command::ConnectOut => Expect::Maybe,
        _ => Expect::Generic,
    }
}

fn is_eof(pkt: &Packet<'_>) -> bool {
    pkt.first_byte() == Some(0xfe) && pkt.len < 9
}

/// The 0xfe packet that ends rows: EOF, or an OK under CLIENT_DEPRECATE_EOF. A text row that
/// starts with 0xfe (an 8-byte length) is at least 16 MiB long, so the length separates them.
fn is_terminator(pkt: &Packet<'_>) -> bool {
    pkt.first_byte() == Some(0xfe) && pkt.len < wire::MAX_PACKET_PAYLOAD as u64
}

/// Status and warnings of a terminator (EOF or OK-as-EOF).
fn terminator_status(pkt: &Packet<'_>) -> (u16, u16) {
    if pkt.len <= 5 {
        let e = wire::parse_eof(pkt.data);
        (e.status, e.warnings)
    } else {
        let ok = wire::parse_ok(pkt.data).unwrap_or_default();
        (ok.status, ok.warnings)
    }
}

/// Drives one response packet through the exchange's state machine.
fn step_response(p: &mut Pending, pkt: &Packet<'_>, deprecate_eof: Option<bool>) -> Step {
    let b0 = pkt.first_byte();
    match p.expect {
        Expect::Auth => {
            return match b0 {
                Some(0x00) => {
                    if let Some(ok) = wire::parse_ok(pkt.data) {
                        p.ex.server_status = Some(ok.status);
                        p.ex.warnings = Some(ok.warnings);
                    }
                    Step::Done
                }
                Some(0xff) => {
                    p.apply_err(pkt.data);
                    Step::Done
                }
                Some(0xfe) => {
                    let mut r = Reader::new(pkt.data.get(1..).unwrap_or(&[]));
                    let name = r.nul_or_eof();
                    p.ex.auth_switch_plugin = Some(if name.is_empty() {
                        // The pre-4.1 form: switch to mysql_old_password.
                        "mysql_old_password".to_string()
                    } else {
                        wire::text(name, 256)
                    });
                    Step::AuthWaiting
                }
                // AuthMoreData; caching_sha2's 0x03 (fast path ok) is followed by the OK
                // without a client turn, everything else waits for the client.
                _ => Step::AuthWaiting,
            };
        }
        Expect::Quit => {
            if b0 == Some(0xff) {
                p.apply_err(pkt.data);
            }
            return Step::Done;
        }
        Expect::Statistics => {
            if b0 == Some(0xff) {
                p.apply_err(pkt.data);
            }
            return Step::Done;
        }
        Expect::Stream => {
            return match b0 {
                Some(0xff) => {
                    p.apply_err(pkt.data);
                    Step::Done
                }
                Some(0xfe) if pkt.len < 9 => Step::Done,
                _ => {
                    p.add_row();
                    Step::More
                }
            };
        }
        _ => {}
    }
    if b0 == Some(0xff) && !matches!(p.state, Resp::Infile) {
        if wire::is_progress_report(pkt.data) {
            return Step::More;
        }
        p.apply_err(pkt.data);
        return Step::Done;
    }
    match p.state {
        Resp::Start => match b0 {
            Some(0x00) if p.expect == Expect::Prepare => {
                let mut r = Reader::new(pkt.data.get(1..).unwrap_or(&[]));
                let (Some(id), Some(cols), Some(params)) = (r.u32(), r.u16(), r.u16()) else {
                    return Step::Done;
                };
                p.ex.statement_id = Some(id);
                p.ex.columns = Some(u64::from(cols));
                p.ex.params = Some(params);
                let _reserved = r.u8();
                p.ex.warnings = r.u16();
                // CLIENT_OPTIONAL_RESULTSET_METADATA: a trailing 0 means no definitions.
                let metadata = r.u8() != Some(0);
                let (cols, params) = (u64::from(cols), u64::from(params));
                p.state = if !metadata {
                    return Step::Done;
                } else if params > 0 {
                    Resp::PrepParams { left: params, cols }
                } else if cols > 0 {
                    Resp::PrepCols { left: cols }
                } else {
                    return Step::Done;
                };
                Step::More
            }
            Some(0x00) => {
                match wire::parse_ok(pkt.data) {
                    Some(ok) => {
                        p.apply_ok(&ok);
                        p.ex.result_sets += 1;
                        if ok.status & status::MORE_RESULTS_EXISTS != 0 {
                            return Step::More;
                        }
                    }
                    None => p.ex.result_sets += 1,
                }
                Step::Done
            }
            Some(0xfe) if pkt.len < 9 => {
                let e = wire::parse_eof(pkt.data);
                p.ex.server_status = Some(e.status);
                p.ex.warnings = Some(e.warnings);
                Step::Done
            }
            Some(0xfb) if p.ex.command == Command::Query => {
                p.state = Resp::Infile;
                Step::More
            }
            _ if p.expect == Expect::FieldList => {
                p.ex.columns = Some(1);
                p.state = Resp::FieldDefs;
                Step::More
            }
            _ => {
                // A result set. A byte after the count is the metadata-follows flag.
                let Some((n, follows)) = wire::parse_column_count(pkt.data, pkt.len > 1) else {
                    p.incomplete = true;
                    return Step::Done;
                };
                if n == 0 || n > MAX_COLUMNS {
                    p.incomplete = true;
                    return Step::Done;
                }
                p.saw_result_set = true;
                p.ex.result_sets += 1;
                if p.ex.columns.is_none() {
                    p.ex.columns = Some(n);
                }
                if p.ex.rows.is_none() {
                    p.ex.rows = Some(0);
                }
                p.state = if follows {
                    Resp::ColumnDefs { left: n }
                } else {
                    Resp::ColumnsEof
                };
                Step::More
            }
        },
        Resp::ColumnDefs { left } => {
            if is_eof(pkt) {
                // Fewer definitions than announced: take it as their EOF.
                return after_columns_eof(p, pkt);
            }
            let left = left.saturating_sub(1);
            p.state = if left > 0 {
                Resp::ColumnDefs { left }
            } else if deprecate_eof == Some(true) {
                Resp::Rows
            } else {
                Resp::ColumnsEof
            };
            Step::More
        }
        Resp::ColumnsEof => {
            if pkt.first_byte() == Some(0xfe) && pkt.len <= 5 {
                return after_columns_eof(p, pkt);
            }
            // No EOF after the definitions (CLIENT_DEPRECATE_EOF): this is already a row or
            // the terminator.
            p.state = Resp::Rows;
            step_response(p, pkt, deprecate_eof)
        }
        Resp::Rows => {
            if is_terminator(pkt) {
                let (st, warnings) = terminator_status(pkt);
                p.ex.server_status = Some(st);
                p.ex.warnings = Some(warnings);
                if st & status::MORE_RESULTS_EXISTS != 0 {
                    p.state = Resp::Start;
                    return Step::More;
                }
                return Step::Done;
            }
            p.add_row();
            Step::More
        }
        Resp::PrepParams { left, cols } => {
            if is_eof(pkt) {
                return prep_columns_next(p, cols);
            }
            let left = left.saturating_sub(1);
            if left > 0 {
                p.state = Resp::PrepParams { left, cols };
                return Step::More;
            }
            if deprecate_eof == Some(true) {
                return prep_columns_next(p, cols);
            }
            p.state = Resp::PrepParamsEof { cols };
            Step::More
        }
        Resp::PrepParamsEof { cols } => {
            if is_eof(pkt) {
                return prep_columns_next(p, cols);
            }
            // No EOF (deprecated): this packet is already the first column definition.
            if cols == 0 {
                return Step::DoneBefore;
            }
            p.state = Resp::PrepCols { left: cols };
            step_response(p, pkt, deprecate_eof)
        }
        Resp::PrepCols { left } => {
            if is_eof(pkt) {
                return Step::Done;
            }
            let left = left.saturating_sub(1);
            if left > 0 {
                p.state = Resp::PrepCols { left };
                return Step::More;
            }
            if deprecate_eof == Some(true) {
                return Step::Done;
            }
            p.state = Resp::PrepColsEof;
            Step::More
        }
        Resp::PrepColsEof => {
            if is_eof(pkt) {
                Step::Done
            } else {
                Step::DoneBefore
            }
        }
        Resp::FieldDefs => {
            if is_terminator(pkt) {
                let (st, warnings) = terminator_status(pkt);
                p.ex.server_status = Some(st);
                p.ex.warnings = Some(warnings);
                return Step::Done;
            }
            p.ex.columns = Some(p.ex.columns.unwrap_or(0) + 1);
            Step::More
        }
        Resp::Infile => match b0 {
            // The server gave up on the upload.
            Some(0xff) => {
                p.apply_err(pkt.data);
                Step::Done
            }
            Some(0x00) => {
                if let Some(ok) = wire::parse_ok(pkt.data) {
                    p.apply_ok(&ok);
                }
                p.ex.result_sets += 1;
                Step::Done
            }
            _ => Step::More,
        },
        Resp::Lenient => {
            if is_terminator(pkt) {
                let (st, _) = terminator_status(pkt);
                p.ex.server_status = Some(st);
                if st & status::MORE_RESULTS_EXISTS == 0 {
                    return Step::Done;
                }
            }
            Step::More
        }
    }
}

fn after_columns_eof(p: &mut Pending, pkt: &Packet<'_>) -> Step {
    let e = wire::parse_eof(pkt.data);
    if p.expect == Expect::Execute && e.status & status::CURSOR_EXISTS != 0 {
        // A cursor was opened: rows come with COM_STMT_FETCH.
        p.ex.server_status = Some(e.status);
        return Step::Done;
    }
    p.state = Resp::Rows;
    Step::More
}

/// After a prepare response's parameter definitions: its column definitions, if any.
fn prep_columns_next(p: &mut Pending, cols: u64) -> Step {
    if cols == 0 {
        return Step::Done;
    }
    p.state = Resp::PrepCols { left: cols };
    Step::More
}

/// The first packet of a response: OK, ERR, EOF, LOCAL INFILE request, or a column count
/// followed by a column definition.
fn plausible_response_start(bytes: &[u8], len: usize) -> bool {
    let Some(&b0) = bytes.get(4) else {
        return false;
    };
    match b0 {
        0x00 => (7..=0x1000).contains(&len),
        0xff => (3..=0x1000).contains(&len),
        0xfe => len < 9,
        0xfb => len >= 2,
        1..=0xfa => {
            // Column count: the next packet should be a column definition ("\x03def").
            let next = 4 + len;
            len <= 3
                && bytes
                    .get(next + 4..next + 8)
                    .is_none_or(|d| d == b"\x03def")
        }
        _ => len <= 9,
    }
}

/// A client command packet at `off` whose length fits what follows.
fn plausible_request(bytes: &[u8], off: usize, segment_start: bool) -> bool {
    let Some((len, seq)) = header_at(bytes, off) else {
        return false;
    };
    if seq != 0 || len == 0 {
        return false;
    }
    let Some(&code) = bytes.get(off + 4) else {
        return false;
    };
    let command = Command::from_code(code);
    if !command.plausible_request(len) {
        return false;
    }
    let end = off + 4 + len;
    match end.cmp(&bytes.len()) {
        std::cmp::Ordering::Equal => true,
        // A long statement continuing in the next segments: only at a segment start.
        std::cmp::Ordering::Greater => {
            segment_start
                && bytes.len() - off >= 256
                && matches!(
                    command,
                    Command::Query
                        | Command::StmtPrepare
                        | Command::StmtExecute
                        | Command::StmtSendLongData
                )
                && printable_statement(bytes.get(off + 5..).unwrap_or(&[]), command)
        }
        // Pipelined requests: the next must be a request too.
        std::cmp::Ordering::Less => plausible_request(bytes, end, false),
    }
}

fn printable_statement(b: &[u8], command: Command) -> bool {
    if !matches!(command, Command::Query | Command::StmtPrepare) {
        return true;
    }
    let sample = b.get(..64).unwrap_or(b);
    sample
        .iter()
        .filter(|&&c| c >= 0x20 || matches!(c, b'\t' | b'\n' | b'\r'))
        .count()
        * 10
        >= sample.len() * 9
}

/// A compressed packet at `off` carrying a client command (stored, with a plausible command
/// inside, or zlib/zstd at the start of a segment).
fn plausible_compressed_request(bytes: &[u8], off: usize) -> bool {
    if !plausible_compressed_header(bytes, off, 1) {
        return false;
    }
    let Some(h) = bytes.get(off..off + 7) else {
        return false;
    };
    let declared = h.get(4..7).map_or(0, |d| {
        d.iter()
            .rev()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    });
    let seq = h.get(3).copied().unwrap_or(1);
    if seq != 0 {
        return false;
    }
    if declared == 0 {
        let comp = h.get(..3).map_or(0, |d| {
            d.iter()
                .rev()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        });
        let inner = bytes
            .get(off + 7..(off + 7 + comp).min(bytes.len()))
            .unwrap_or(&[]);
        let complete = off + 7 + comp <= bytes.len();
        return plausible_request(inner, 0, !complete || inner.len() >= 256) || {
            // The inner request may continue in the next compressed packet.
            let (len, s) = header_at(inner, 0).unwrap_or((0, 1));
            s == 0
                && len + 4 > inner.len()
                && inner.get(4).is_some_and(|&c| {
                    matches!(Command::from_code(c), Command::Query | Command::StmtPrepare)
                })
        };
    }
    off == 0
}

fn plausible_handshake_response(bytes: &[u8], off: usize) -> bool {
    let Some((len, seq)) = header_at(bytes, off) else {
        return false;
    };
    if seq != 1 || len < 32 || off + 4 + len != bytes.len() {
        return false;
    }
    let Some(p) = bytes.get(off + 4..off + 4 + len) else {
        return false;
    };
    let mut r = Reader::new(p);
    let caps = r.u32().unwrap_or(0);
    if caps & cap::PROTOCOL_41 == 0 {
        return false;
    }
    // 23 filler bytes, zero except MariaDB's last four.
    p.get(9..28).is_some_and(|f| f.iter().all(|&b| b == 0))
}

/// True when `bytes` (the start of a server→client stream) look like a MySQL server greeting
/// (protocol 9 or 10) or the ERR a server sends instead of one. For content-based detection of
/// MySQL on unknown ports.
pub fn looks_like_mysql_greeting(bytes: &[u8]) -> bool {
    let Some((len, seq)) = header_at(bytes, 0) else {
        return false;
    };
    if seq != 0 || !(5..=1024).contains(&len) || 4 + len > bytes.len() {
        return false;
    }
    let Some(p) = bytes.get(4..4 + len) else {
        return false;
    };
    match p.first() {
        Some(10) | Some(9) => {
            let Some(nul) = p.iter().skip(1).position(|&b| b == 0) else {
                return false;
            };
            let version = p.get(1..1 + nul).unwrap_or(&[]);
            !version.is_empty()
                && version.len() <= 64
                && version.first().is_some_and(u8::is_ascii_digit)
                && version.iter().all(|b| b.is_ascii_graphic() || *b == b' ')
                && wire::parse_greeting(p).is_some()
        }
        Some(0xff) => {
            let Some(e) = wire::parse_err(p) else {
                return false;
            };
            (1000..5000).contains(&e.code)
                && p.get(3..)
                    .is_some_and(|m| m.iter().all(|b| b.is_ascii_graphic() || *b == b' '))
        }
        _ => false,
    }
}

/// True when `bytes` (a client→server segment) plausibly start a MySQL client message: a
/// command (sequence id 0, a known command byte, a length that fits), a handshake response,
/// or a compressed-protocol command. For detecting MySQL on captures that start mid-stream.
pub fn looks_like_mysql_client_start(bytes: &[u8]) -> bool {
    plausible_request(bytes, 0, true)
        || plausible_handshake_response(bytes, 0)
        || plausible_compressed_request(bytes, 0)
}
