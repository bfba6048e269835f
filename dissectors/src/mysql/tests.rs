//! Hand-made byte sequences through a whole connection.

use std::io::Write;

use flate2::{write::ZlibEncoder, Compression};

use super::wire::{cap, status};
use super::*;

const BASE_CAPS: u32 = cap::LONG_PASSWORD
    | cap::CONNECT_WITH_DB
    | cap::PROTOCOL_41
    | cap::SECURE_CONNECTION
    | cap::MULTI_RESULTS
    | cap::PLUGIN_AUTH
    | cap::CONNECT_ATTRS
    | cap::PLUGIN_AUTH_LENENC_CLIENT_DATA;

fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u32).to_le_bytes()[..3].to_vec();
    v.push(seq);
    v.extend_from_slice(payload);
    v
}

fn lenenc(n: u64) -> Vec<u8> {
    match n {
        0..=250 => vec![n as u8],
        251..=0xffff => [&[0xfc][..], &(n as u16).to_le_bytes()].concat(),
        0x1_0000..=0xff_ffff => [&[0xfd][..], &(n as u32).to_le_bytes()[..3]].concat(),
        _ => [&[0xfe][..], &n.to_le_bytes()].concat(),
    }
}

fn lenenc_str(s: &[u8]) -> Vec<u8> {
    [lenenc(s.len() as u64), s.to_vec()].concat()
}

fn greeting(caps: u32, plugin: &str) -> Vec<u8> {
    let mut p = vec![10];
    p.extend_from_slice(b"8.0.36\0");
    p.extend_from_slice(&42u32.to_le_bytes());
    p.extend_from_slice(b"abcdefgh\0");
    p.extend_from_slice(&(caps as u16).to_le_bytes());
    p.push(0x21);
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    p.push(21);
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(b"ijklmnopqrst\0");
    p.extend_from_slice(plugin.as_bytes());
    p.push(0);
    p
}

fn handshake_response(caps: u32, user: &str, db: Option<&str>, plugin: &str) -> Vec<u8> {
    let mut p = caps.to_le_bytes().to_vec();
    p.extend_from_slice(&(16u32 << 20).to_le_bytes());
    p.push(0x21);
    p.extend_from_slice(&[0; 23]);
    p.extend_from_slice(user.as_bytes());
    p.push(0);
    p.extend(lenenc_str(&[7; 20]));
    if let Some(db) = db {
        p.extend_from_slice(db.as_bytes());
        p.push(0);
    }
    p.extend_from_slice(plugin.as_bytes());
    p.push(0);
    let attrs = [lenenc_str(b"_client_name"), lenenc_str(b"libmysql")].concat();
    p.extend(lenenc_str(&attrs));
    p
}

fn ok(affected: u64, server_status: u16) -> Vec<u8> {
    [
        &[0x00][..],
        &lenenc(affected),
        &[0],
        &server_status.to_le_bytes(),
        &[0, 0],
    ]
    .concat()
}

fn ok_terminator(server_status: u16) -> Vec<u8> {
    [&[0xfe, 0, 0][..], &server_status.to_le_bytes(), &[0, 0]].concat()
}

fn eof(server_status: u16) -> Vec<u8> {
    [&[0xfe, 0, 0][..], &server_status.to_le_bytes()].concat()
}

fn err(code: u16, state: &str, msg: &str) -> Vec<u8> {
    [
        &[0xff][..],
        &code.to_le_bytes(),
        b"#",
        state.as_bytes(),
        msg.as_bytes(),
    ]
    .concat()
}

fn coldef(name: &str) -> Vec<u8> {
    [
        lenenc_str(b"def"),
        lenenc_str(b"db"),
        lenenc_str(b"t"),
        lenenc_str(b"t"),
        lenenc_str(name.as_bytes()),
        lenenc_str(name.as_bytes()),
        vec![0x0c, 0x21, 0, 11, 0, 0, 0, 253, 0, 0, 0, 0, 0],
    ]
    .concat()
}

fn text_row(vals: &[&str]) -> Vec<u8> {
    vals.iter().flat_map(|v| lenenc_str(v.as_bytes())).collect()
}

fn com(code: u8, args: &[u8]) -> Vec<u8> {
    packet(0, &[&[code][..], args].concat())
}

/// A connection under test with a frame counter (one frame per segment, 1 ms apart).
struct Conn {
    c: MysqlConnection,
    frame: u64,
    events: Vec<MysqlEvent>,
}

impl Conn {
    fn new() -> Self {
        Conn {
            c: MysqlConnection::new(),
            frame: 0,
            events: Vec::new(),
        }
    }

    fn tick(&mut self) -> (u64, Timestamp) {
        self.frame += 1;
        (self.frame, Timestamp(self.frame as i64 * 1_000_000))
    }

    fn client(&mut self, bytes: &[u8]) -> u64 {
        let (f, ts) = self.tick();
        self.c
            .on_data(Direction::ToServer, bytes, f, ts, &mut self.events);
        f
    }

    fn server(&mut self, bytes: &[u8]) -> u64 {
        let (f, ts) = self.tick();
        self.c
            .on_data(Direction::ToClient, bytes, f, ts, &mut self.events);
        f
    }

    fn gap(&mut self, dir: Direction, len: u64) {
        let (f, ts) = self.tick();
        self.c.on_gap(dir, len, f, ts, &mut self.events);
    }

    fn close(&mut self) {
        let (f, ts) = self.tick();
        self.c.on_close(f, ts, &mut self.events);
    }

    fn exchanges(&self) -> Vec<&Exchange> {
        self.events
            .iter()
            .filter_map(|e| match e {
                MysqlEvent::Exchange(x) => Some(&**x),
                _ => None,
            })
            .collect()
    }

    fn anomalies(&self) -> Vec<MysqlAnomaly> {
        self.events
            .iter()
            .filter_map(|e| match e {
                MysqlEvent::Anomaly { kind, .. } => Some(*kind),
                _ => None,
            })
            .collect()
    }

    /// Greeting, login and its OK with the given capabilities on both sides.
    fn login(&mut self, caps: u32) {
        self.server(&packet(0, &greeting(caps, "mysql_native_password")));
        self.client(&packet(
            1,
            &handshake_response(caps, "app", Some("shop"), "mysql_native_password"),
        ));
        self.server(&packet(2, &ok(0, status::AUTOCOMMIT)));
    }
}

#[test]
fn greeting_login_query_result_set() {
    let mut t = Conn::new();
    t.login(BASE_CAPS);
    let q = t.client(&com(3, b"SELECT a, b FROM t"));
    let mut resp = packet(1, &[2]);
    resp.extend(packet(2, &coldef("a")));
    resp.extend(packet(3, &coldef("b")));
    resp.extend(packet(4, &eof(status::AUTOCOMMIT)));
    for (i, r) in [["1", "x"], ["2", "y"], ["3", "z"]].iter().enumerate() {
        resp.extend(packet(5 + i as u8, &text_row(r)));
    }
    resp.extend(packet(8, &eof(status::AUTOCOMMIT | status::IN_TRANS)));
    // The response arrives in two segments.
    let first = t.server(&resp[..30]);
    let last = t.server(&resp[30..]);
    t.client(&com(1, &[]));
    t.close();

    assert!(matches!(
        &t.events[0],
        MysqlEvent::Greeting { protocol_version: 10, server_version, connection_id: 42, auth_plugin: Some(p), .. }
            if server_version == "8.0.36" && p == "mysql_native_password"
    ));
    assert!(matches!(
        &t.events[1],
        MysqlEvent::Login { user, database: Some(db), client_attrs, ssl: false, compress: false, .. }
            if user == "app" && db == "shop" && client_attrs[0].1 == "libmysql"
    ));
    let x = t.exchanges();
    assert_eq!(x.len(), 3);
    assert_eq!(x[0].command, Command::Login);
    assert_eq!(x[0].status, ResponseStatus::Ok);
    let q_ex = x[1];
    assert_eq!(q_ex.command.name(), "COM_QUERY");
    assert_eq!(q_ex.command.code(), Some(3));
    assert_eq!(q_ex.statement.as_deref(), Some("SELECT a, b FROM t"));
    assert_eq!(q_ex.status, ResponseStatus::ResultSet);
    assert_eq!((q_ex.columns, q_ex.rows), (Some(2), Some(3)));
    assert_eq!(q_ex.result_sets, 1);
    assert_eq!(
        q_ex.server_status,
        Some(status::AUTOCOMMIT | status::IN_TRANS)
    );
    assert_eq!((q_ex.request_first_frame, q_ex.request_last_frame), (q, q));
    assert_eq!(q_ex.response_first_frame, Some(first));
    assert_eq!(q_ex.response_last_frame, Some(last));
    assert_eq!(q_ex.response_bytes, resp.len() as u64);
    assert_eq!(q_ex.response_time().map(|d| d.as_nanos()), Some(1_000_000));
    assert_eq!(x[2].command, Command::Quit);
    assert_eq!(x[2].status, ResponseStatus::NoResponse);
    assert!(t.anomalies().is_empty());
}

#[test]
fn deprecate_eof_result_sets() {
    let caps = BASE_CAPS | cap::DEPRECATE_EOF;
    let mut t = Conn::new();
    t.login(caps);
    t.client(&com(3, b"select 1"));
    let mut resp = packet(1, &[1]);
    resp.extend(packet(2, &coldef("1")));
    resp.extend(packet(3, &text_row(&["1"])));
    resp.extend(packet(4, &ok_terminator(status::AUTOCOMMIT)));
    t.server(&resp);
    // Zero rows: the OK terminator follows the definitions directly.
    t.client(&com(3, b"select 1 from dual where 0"));
    let mut resp = packet(1, &[1]);
    resp.extend(packet(2, &coldef("1")));
    resp.extend(packet(3, &ok_terminator(status::AUTOCOMMIT)));
    t.server(&resp);
    let x = t.exchanges();
    assert_eq!(x.len(), 3);
    assert_eq!(
        (x[1].status, x[1].rows),
        (ResponseStatus::ResultSet, Some(1))
    );
    assert_eq!(
        (x[2].status, x[2].rows),
        (ResponseStatus::ResultSet, Some(0))
    );
    assert!(t.anomalies().is_empty());
}

#[test]
fn deprecate_eof_is_detected_without_a_handshake() {
    // Capture starts mid-connection: the capability is unknown.
    let mut t = Conn::new();
    t.client(&com(3, b"select 1 from dual where 0"));
    let mut resp = packet(1, &[1]);
    resp.extend(packet(2, &coldef("1")));
    resp.extend(packet(3, &ok_terminator(status::AUTOCOMMIT)));
    t.server(&resp);
    t.client(&com(3, b"select 2"));
    t.server(&packet(1, &err(1146, "42S02", "no")));
    let x = t.exchanges();
    assert_eq!(x.len(), 2);
    assert_eq!(
        (x[0].status, x[0].rows),
        (ResponseStatus::ResultSet, Some(0))
    );
    assert_eq!(x[1].error_code, Some(1146));
}

#[test]
fn multi_result_set() {
    let mut t = Conn::new();
    t.login(BASE_CAPS);
    t.client(&com(3, b"CALL p()"));
    let more = status::AUTOCOMMIT | status::MORE_RESULTS_EXISTS;
    let mut resp = packet(1, &[1]);
    resp.extend(packet(2, &coldef("a")));
    resp.extend(packet(3, &eof(more)));
    resp.extend(packet(4, &text_row(&["1"])));
    resp.extend(packet(5, &eof(more)));
    resp.extend(packet(6, &[1]));
    resp.extend(packet(7, &coldef("b")));
    resp.extend(packet(8, &eof(more)));
    resp.extend(packet(9, &text_row(&["2"])));
    resp.extend(packet(10, &text_row(&["3"])));
    resp.extend(packet(11, &eof(more)));
    resp.extend(packet(12, &ok(0, status::AUTOCOMMIT)));
    t.server(&resp);
    let x = t.exchanges();
    let call = x[1];
    assert_eq!(call.result_sets, 3);
    assert_eq!(call.rows, Some(3));
    assert_eq!(call.columns, Some(1));
    assert_eq!(call.status, ResponseStatus::ResultSet);
    assert_eq!(call.server_status, Some(status::AUTOCOMMIT));
}

#[test]
fn error_response() {
    let mut t = Conn::new();
    t.login(BASE_CAPS);
    t.client(&com(3, b"select * from nope"));
    t.server(&packet(
        1,
        &err(1146, "42S02", "Table 'shop.nope' doesn't exist"),
    ));
    let x = t.exchanges();
    assert_eq!(x[1].status, ResponseStatus::Error);
    assert_eq!(x[1].error_code, Some(1146));
    assert_eq!(x[1].sql_state.as_deref(), Some("42S02"));
    assert_eq!(
        x[1].error_message.as_deref(),
        Some("Table 'shop.nope' doesn't exist")
    );
}

#[test]
fn server_refuses_instead_of_greeting() {
    let mut t = Conn::new();
    let msg = b"Host '10.0.0.9' is not allowed to connect to this MySQL server";
    t.server(&packet(0, &[&[0xff, 0x6a, 0x04][..], msg].concat()));
    t.close();
    assert!(matches!(
        &t.events[0],
        MysqlEvent::GreetingError {
            error_code: 1130,
            ..
        }
    ));
}

#[test]
fn prepared_statement_lifecycle() {
    let mut t = Conn::new();
    t.login(BASE_CAPS);
    let sql = "SELECT name FROM users WHERE id = ?";
    t.client(&com(0x16, sql.as_bytes()));
    let mut prep_ok = vec![0x00];
    prep_ok.extend_from_slice(&7u32.to_le_bytes());
    prep_ok.extend_from_slice(&1u16.to_le_bytes()); // columns
    prep_ok.extend_from_slice(&1u16.to_le_bytes()); // params
    prep_ok.extend_from_slice(&[0, 0, 0]);
    let mut resp = packet(1, &prep_ok);
    resp.extend(packet(2, &coldef("?")));
    resp.extend(packet(3, &eof(status::AUTOCOMMIT)));
    resp.extend(packet(4, &coldef("name")));
    resp.extend(packet(5, &eof(status::AUTOCOMMIT)));
    t.server(&resp);

    // COM_STMT_EXECUTE id 7, no cursor, one iteration, one LONG parameter = 5.
    let mut exec = 7u32.to_le_bytes().to_vec();
    exec.extend_from_slice(&[0, 1, 0, 0, 0, 0, 1, 3, 0, 5, 0, 0, 0]);
    t.client(&com(0x17, &exec));
    let mut resp = packet(1, &[1]);
    resp.extend(packet(2, &coldef("name")));
    resp.extend(packet(3, &eof(status::AUTOCOMMIT)));
    resp.extend(packet(4, &[0x00, 0x00, 3, b'b', b'o', b'b']));
    resp.extend(packet(5, &eof(status::AUTOCOMMIT)));
    t.server(&resp);

    t.client(&com(0x19, &7u32.to_le_bytes()));
    t.client(&com(0x17, &exec));
    t.server(&packet(
        1,
        &err(1243, "HY000", "Unknown prepared statement handler"),
    ));

    let x = t.exchanges();
    assert_eq!(x[1].command, Command::StmtPrepare);
    assert_eq!(x[1].status, ResponseStatus::Ok);
    assert_eq!(x[1].statement_id, Some(7));
    assert_eq!((x[1].columns, x[1].params), (Some(1), Some(1)));
    assert_eq!(x[2].command, Command::StmtExecute);
    assert_eq!(x[2].statement.as_deref(), Some(sql));
    assert_eq!(
        (x[2].status, x[2].rows),
        (ResponseStatus::ResultSet, Some(1))
    );
    assert_eq!(x[3].command, Command::StmtClose);
    assert_eq!(x[3].status, ResponseStatus::NoResponse);
    assert_eq!(x[3].statement.as_deref(), Some(sql));
    assert_eq!(x[4].statement, None, "closed statements are forgotten");
    assert_eq!(x[4].error_code, Some(1243));
}

#[test]
fn prepare_response_without_eofs() {
    let mut t = Conn::new();
    t.login(BASE_CAPS | cap::DEPRECATE_EOF);
    t.client(&com(0x16, b"insert into t values (?, ?)"));
    let mut prep_ok = vec![0x00];
    prep_ok.extend_from_slice(&9u32.to_le_bytes());
    prep_ok.extend_from_slice(&0u16.to_le_bytes());
    prep_ok.extend_from_slice(&2u16.to_le_bytes());
    prep_ok.extend_from_slice(&[0, 0, 0]);
    let mut resp = packet(1, &prep_ok);
    resp.extend(packet(2, &coldef("?")));
    resp.extend(packet(3, &coldef("?")));
    t.server(&resp);
    t.client(&com(0x0e, &[]));
    t.server(&packet(1, &ok(0, 2)));
    let x = t.exchanges();
    assert_eq!(x.len(), 3);
    assert_eq!(x[1].statement_id, Some(9));
    assert_eq!(x[2].command, Command::Ping);
    assert_eq!(x[2].status, ResponseStatus::Ok);
}

#[test]
fn sixteen_mib_payload_spans_two_packets() {
    let mut t = Conn::new();
    t.login(BASE_CAPS);
    let mut big = vec![0x03];
    big.extend(std::iter::repeat_n(b'x', wire::MAX_PACKET_PAYLOAD - 1));
    let mut wire_bytes = packet(0, &big);
    wire_bytes.extend(packet(1, b"0123456789"));
    let first = t.client(&wire_bytes[..65_536]);
    let mut last = first;
    for chunk in wire_bytes[65_536..].chunks(1 << 20) {
        last = t.client(chunk);
    }
    t.server(&packet(2, &ok(1, 2)));
    let x = t.exchanges();
    let q = x[1];
    assert_eq!(q.command, Command::Query);
    assert_eq!((q.request_first_frame, q.request_last_frame), (first, last));
    assert_eq!(q.request_bytes, wire_bytes.len() as u64);
    assert!(q.statement_truncated);
    assert_eq!(
        q.statement.as_ref().map(|s| s.len() < 300 * 1024),
        Some(true)
    );
    assert_eq!(q.status, ResponseStatus::Ok);
    assert!(t.c.stats().unretained_payload_bytes > 16_000_000);
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn compressed(seq: u8, plain: &[u8]) -> Vec<u8> {
    let z = zlib(plain);
    let mut v = (z.len() as u32).to_le_bytes()[..3].to_vec();
    v.push(seq);
    v.extend_from_slice(&(plain.len() as u32).to_le_bytes()[..3]);
    v.extend(z);
    v
}

fn stored(seq: u8, plain: &[u8]) -> Vec<u8> {
    let mut v = (plain.len() as u32).to_le_bytes()[..3].to_vec();
    v.push(seq);
    v.extend_from_slice(&[0, 0, 0]);
    v.extend_from_slice(plain);
    v
}

#[test]
fn compressed_protocol_packs_and_splits_packets() {
    let caps = BASE_CAPS | cap::COMPRESS;
    let mut t = Conn::new();
    t.login(caps);
    assert!(matches!(
        &t.events[1],
        MysqlEvent::Login { compress: true, .. }
    ));
    t.client(&compressed(0, &com(3, b"select a from t")));
    // Compressed packet 1 holds two MySQL packets (count + definition); a row is split
    // across compressed packets 2 and 3; packet 3 also carries the EOF.
    let mut inner1 = packet(1, &[1]);
    inner1.extend(packet(2, &coldef("a")));
    inner1.extend(packet(3, &eof(2)));
    let row = packet(4, &text_row(&["hello world"]));
    let (row_a, row_b) = row.split_at(6);
    let inner3 = [row_b, &packet(5, &eof(2))].concat();
    t.server(&compressed(1, &inner1));
    t.server(&stored(2, row_a));
    let last = t.server(&compressed(3, &inner3));
    t.client(&compressed(0, &com(0x0e, &[])));
    t.server(&compressed(1, &packet(1, &ok(0, 2))));
    let x = t.exchanges();
    assert_eq!(x.len(), 3, "{:?}", t.events);
    assert_eq!(x[1].statement.as_deref(), Some("select a from t"));
    assert_eq!((x[1].rows, x[1].columns), (Some(1), Some(1)));
    assert_eq!(x[1].response_last_frame, Some(last));
    assert_eq!(x[2].command, Command::Ping);
    assert!(t.c.compressed());
    assert!(t.anomalies().is_empty());
    let s = t.c.stats();
    assert_eq!(s.compressed_packets, 6);
}

#[test]
fn compressed_mid_stream_is_detected() {
    // No handshake: a stored compressed packet carrying COM_QUERY, then a compressed answer.
    let mut t = Conn::new();
    t.client(&stored(0, &com(3, b"use `test`")));
    t.server(&stored(1, &packet(1, &ok(0, 2))));
    t.client(&stored(0, &com(3, b"select 1")));
    let mut inner = packet(1, &[1]);
    inner.extend(packet(2, &coldef("1")));
    inner.extend(packet(3, &eof(2)));
    inner.extend(packet(4, &text_row(&["1"])));
    inner.extend(packet(5, &eof(2)));
    t.server(&compressed(1, &inner));
    let x = t.exchanges();
    assert_eq!(x.len(), 2, "{:?}", t.events);
    assert_eq!(x[0].statement.as_deref(), Some("use `test`"));
    assert_eq!(x[1].rows, Some(1));
}

#[test]
fn decompression_bomb_is_bounded() {
    let caps = BASE_CAPS | cap::COMPRESS;
    let mut t = Conn::new();
    t.login(caps);
    t.client(&compressed(0, &com(3, b"select 1")));
    let z = zlib(&vec![0u8; 8 << 20]);
    let mut bomb = (z.len() as u32).to_le_bytes()[..3].to_vec();
    bomb.push(1);
    bomb.extend_from_slice(&[100, 0, 0]); // claims 100 bytes
    bomb.extend(z);
    t.server(&bomb);
    t.close();
    assert!(t.anomalies().contains(&MysqlAnomaly::DecompressionBomb));
    let s = t.c.stats();
    assert_eq!(s.decompression_bombs, 1);
    assert!(s.decompressed_bytes < 200);
    let x = t.exchanges();
    assert_eq!(x[1].status, ResponseStatus::Incomplete);
}

#[test]
fn local_infile() {
    let mut t = Conn::new();
    t.login(BASE_CAPS | cap::LOCAL_FILES);
    t.client(&com(3, b"LOAD DATA LOCAL INFILE '/tmp/a.csv' INTO TABLE t"));
    let asked = t.server(&packet(1, b"\xfb/tmp/a.csv"));
    t.client(&packet(2, b"1,a\n2,b\n"));
    t.client(&packet(3, b""));
    let done = t.server(&packet(4, &ok(2, 2)));
    t.client(&com(0x0e, &[]));
    t.server(&packet(1, &ok(0, 2)));
    let x = t.exchanges();
    assert_eq!(x.len(), 3);
    let load = x[1];
    assert_eq!(load.status, ResponseStatus::Ok);
    assert_eq!(load.affected_rows, Some(2));
    assert_eq!(load.infile_bytes, Some(8));
    assert_eq!(load.response_first_frame, Some(asked));
    assert_eq!(load.response_last_frame, Some(done));
    assert_eq!(x[2].command, Command::Ping);
    assert!(t.anomalies().is_empty());
}

#[test]
fn auth_switch() {
    let mut t = Conn::new();
    t.server(&packet(0, &greeting(BASE_CAPS, "caching_sha2_password")));
    t.client(&packet(
        1,
        &handshake_response(BASE_CAPS, "old", None, "caching_sha2_password"),
    ));
    t.server(&packet(
        2,
        &[&b"\xfemysql_native_password\0"[..], &[9; 20], &[0]].concat(),
    ));
    t.client(&packet(3, &[0xaa; 20]));
    t.server(&packet(4, &ok(0, 2)));
    t.client(&com(3, b"select 1"));
    t.server(&packet(1, &err(1, "HY000", "x")));
    let x = t.exchanges();
    assert_eq!(x.len(), 3);
    assert_eq!(x[0].command, Command::Login);
    assert_eq!(x[0].status, ResponseStatus::AuthContinue);
    assert_eq!(
        x[0].auth_switch_plugin.as_deref(),
        Some("mysql_native_password")
    );
    assert_eq!(x[1].command, Command::Auth);
    assert_eq!(x[1].status, ResponseStatus::Ok);
    assert_eq!(x[2].command, Command::Query);
    assert!(t.anomalies().is_empty());
}

#[test]
fn caching_sha2_full_path_is_not_a_command() {
    let mut t = Conn::new();
    t.server(&packet(0, &greeting(BASE_CAPS, "caching_sha2_password")));
    t.client(&packet(
        1,
        &handshake_response(BASE_CAPS, "root", Some("test"), "caching_sha2_password"),
    ));
    t.server(&packet(2, &[0x01, 0x04])); // perform full authentication
    t.client(&packet(3, &[0x02])); // request public key
    let mut pem = vec![0x01];
    pem.extend_from_slice(
        b"-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq...\n-----END PUBLIC KEY-----\n",
    );
    t.server(&packet(4, &pem));
    // The RSA-encrypted password: 256 bytes whose first byte tshark reads as a command.
    let mut rsa = vec![0xca];
    rsa.extend(std::iter::repeat_n(0x5a, 255));
    t.client(&packet(5, &rsa));
    t.server(&packet(6, &ok(0, 2)));
    t.client(&com(3, b"show databases"));
    t.server(&packet(1, &ok(0, 2)));
    let x = t.exchanges();
    let kinds: Vec<Command> = x.iter().map(|e| e.command).collect();
    assert_eq!(
        kinds,
        vec![Command::Login, Command::Auth, Command::Auth, Command::Query]
    );
    assert_eq!(x[2].status, ResponseStatus::Ok);
    assert!(t.anomalies().is_empty(), "{:?}", t.events);
}

#[test]
fn caching_sha2_fast_path_is_one_exchange() {
    let mut t = Conn::new();
    t.server(&packet(0, &greeting(BASE_CAPS, "caching_sha2_password")));
    t.client(&packet(
        1,
        &handshake_response(BASE_CAPS, "root", None, "caching_sha2_password"),
    ));
    t.server(&packet(2, &[0x01, 0x03]));
    let ok_frame = t.server(&packet(3, &ok(0, 2)));
    let x = t.exchanges();
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].status, ResponseStatus::Ok);
    assert_eq!(x[0].response_last_frame, Some(ok_frame));
}

#[test]
fn change_user_runs_an_auth_exchange() {
    let mut t = Conn::new();
    t.login(BASE_CAPS);
    let mut args = b"other\0".to_vec();
    args.push(20);
    args.extend_from_slice(&[1; 20]);
    args.extend_from_slice(b"db2\0");
    args.extend_from_slice(&[0x21, 0]);
    args.extend_from_slice(b"mysql_native_password\0");
    t.client(&com(0x11, &args));
    t.server(&packet(
        1,
        &[&b"\xfemysql_native_password\0"[..], &[3; 20]].concat(),
    ));
    t.client(&packet(2, &[4; 20]));
    t.server(&packet(3, &ok(0, 2)));
    t.client(&com(0x0e, &[]));
    t.server(&packet(1, &ok(0, 2)));
    let x = t.exchanges();
    let kinds: Vec<(Command, ResponseStatus)> = x.iter().map(|e| (e.command, e.status)).collect();
    assert_eq!(
        kinds,
        vec![
            (Command::Login, ResponseStatus::Ok),
            (Command::ChangeUser, ResponseStatus::AuthContinue),
            (Command::Auth, ResponseStatus::Ok),
            (Command::Ping, ResponseStatus::Ok),
        ]
    );
    assert!(t.events.iter().any(|e| matches!(
        e,
        MysqlEvent::Login { user, change_user: true, database: Some(d), .. } if user == "other" && d == "db2"
    )));
}

#[test]
fn tls_turns_are_counted() {
    let mut t = Conn::new();
    t.server(&packet(
        0,
        &greeting(BASE_CAPS | cap::SSL, "caching_sha2_password"),
    ));
    let mut ssl = (BASE_CAPS | cap::SSL).to_le_bytes().to_vec();
    ssl.extend_from_slice(&(16u32 << 20).to_le_bytes());
    ssl.push(0x21);
    ssl.extend_from_slice(&[0; 23]);
    let ssl_frame = t.client(&packet(1, &ssl));
    t.client(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]); // ClientHello
    let hello = t.server(&[0x16, 0x03, 0x03, 0x00, 0x02, 9, 9]);
    t.server(&[0x17, 0x03, 0x03, 0x00, 0x01, 9]);
    t.client(&[0x17, 0x03, 0x03, 0x00, 0x01, 8]);
    t.server(&[0x17, 0x03, 0x03, 0x00, 0x01, 7]);
    t.client(&[0x15, 0x03, 0x03, 0x00, 0x01, 0]);
    t.close();
    assert!(t
        .events
        .iter()
        .any(|e| matches!(e, MysqlEvent::TlsStarted { .. })));
    let x = t.exchanges();
    assert_eq!(x.len(), 3);
    assert!(x.iter().all(|e| e.command == Command::Tls));
    assert_eq!(x[0].request_first_frame, ssl_frame);
    assert_eq!(x[0].response_first_frame, Some(hello));
    assert_eq!(x[0].status, ResponseStatus::Opaque);
    assert_eq!(x[2].status, ResponseStatus::NoResponse);
}

#[test]
fn query_attributes_are_stripped() {
    let caps = BASE_CAPS | cap::QUERY_ATTRIBUTES;
    let mut t = Conn::new();
    t.login(caps);
    let mut args = vec![1, 1, 0, 1, 0xfe, 0x00];
    args.extend(lenenc_str(b"trace"));
    args.extend(lenenc_str(b"abc"));
    args.extend_from_slice(b"select now()");
    t.client(&com(3, &args));
    t.server(&packet(1, &ok(0, 2)));
    assert_eq!(t.exchanges()[1].statement.as_deref(), Some("select now()"));
}

#[test]
fn pipelined_prepare_and_execute() {
    // MariaDB connectors send PREPARE and EXECUTE(-1) before reading the first response.
    let mut t = Conn::new();
    t.login(BASE_CAPS | cap::DEPRECATE_EOF);
    let mut both = com(0x16, b"select ?");
    let mut exec = u32::MAX.to_le_bytes().to_vec();
    exec.extend_from_slice(&[0, 1, 0, 0, 0, 0, 1, 8, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    both.extend(com(0x17, &exec));
    t.client(&both);
    let mut prep_ok = vec![0x00];
    prep_ok.extend_from_slice(&3u32.to_le_bytes());
    prep_ok.extend_from_slice(&1u16.to_le_bytes());
    prep_ok.extend_from_slice(&1u16.to_le_bytes());
    prep_ok.extend_from_slice(&[0, 0, 0]);
    let mut resp = packet(1, &prep_ok);
    resp.extend(packet(2, &coldef("?")));
    resp.extend(packet(3, &coldef("?")));
    resp.extend(packet(1, &[1]));
    resp.extend(packet(2, &coldef("?")));
    resp.extend(packet(3, &[0, 0, 1, 0, 0, 0, 0, 0, 0, 0]));
    resp.extend(packet(4, &ok_terminator(2)));
    t.server(&resp);
    let x = t.exchanges();
    assert_eq!(x.len(), 3, "{:?}", t.events);
    assert_eq!(x[2].statement_id, Some(3));
    assert_eq!(x[2].statement.as_deref(), Some("select ?"));
    assert_eq!(x[2].rows, Some(1));
}

#[test]
fn gap_in_response_then_resync() {
    let mut t = Conn::new();
    t.login(BASE_CAPS);
    t.client(&com(3, b"select * from big"));
    let mut resp = packet(1, &[1]);
    resp.extend(packet(2, &coldef("a")));
    resp.extend(packet(3, &eof(2)));
    for i in 0..40u8 {
        resp.extend(packet(4 + i, &text_row(&["row-data-row-data"])));
    }
    resp.extend(packet(44, &eof(2)));
    t.server(&resp[..100]);
    t.gap(Direction::ToClient, 500);
    // The capture resumes mid-packet.
    let end = t.server(&resp[605..]);
    t.client(&com(3, b"select 1"));
    t.server(&packet(1, &err(1, "HY000", "x")));
    let x = t.exchanges();
    assert_eq!(x.len(), 3);
    assert_eq!(x[1].status, ResponseStatus::Incomplete);
    assert_eq!(
        x[1].response_last_frame,
        Some(end),
        "the terminator was still recognised"
    );
    assert_eq!(x[2].status, ResponseStatus::Error);
    let a = t.anomalies();
    assert!(a.contains(&MysqlAnomaly::Gap));
    assert!(a.contains(&MysqlAnomaly::Resync));
}

#[test]
fn gap_before_response_keeps_the_exchange_whole() {
    let mut t = Conn::new();
    t.login(BASE_CAPS);
    t.client(&com(3, b"select 1"));
    // Earlier server bytes lost; the response itself is captured from its start.
    t.gap(Direction::ToClient, 50);
    t.server(&packet(1, &ok(0, 2)));
    let x = t.exchanges();
    assert_eq!(x[1].status, ResponseStatus::Ok);
}

#[test]
fn gap_in_request_resyncs_on_next_command() {
    let mut t = Conn::new();
    t.login(BASE_CAPS);
    let q = com(3, b"select * from t where a = 'long enough to be split'");
    t.client(&q[..20]);
    t.gap(Direction::ToServer, (q.len() - 20) as u64);
    t.server(&packet(1, &ok(0, 2)));
    t.client(&[0xde, 0xad, 0xbe, 0xef]);
    t.client(&com(0x0e, &[]));
    t.server(&packet(1, &ok(0, 2)));
    let x = t.exchanges();
    assert_eq!(x.len(), 3, "{:?}", t.events);
    assert_eq!(x[1].command, Command::Query);
    assert_eq!(x[1].status, ResponseStatus::Incomplete);
    assert_eq!(x[2].command, Command::Ping);
    assert_eq!(x[2].status, ResponseStatus::Ok);
}

#[test]
fn mid_stream_start_skips_the_tail_of_what_came_before() {
    let mut t = Conn::new();
    // The tail of an earlier response, then a request and its response.
    t.server(&[0x05, 0x00, 0x00, 0x07, 0xfe, 0, 0, 2, 0]);
    t.client(&[0x33, 0x44, 0x55]);
    t.client(&com(3, b"select 1"));
    t.server(&packet(1, &ok(0, 2)));
    t.close();
    let x = t.exchanges();
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].status, ResponseStatus::Ok);
    assert!(
        t.anomalies().is_empty(),
        "mid-stream skipping is expected: {:?}",
        t.events
    );
    assert!(t.c.stats().skipped_bytes[0] == 3);
}

#[test]
fn quit_and_unanswered_requests_are_flushed_at_close() {
    let mut t = Conn::new();
    t.login(BASE_CAPS);
    t.client(&com(3, b"select sleep(100)"));
    t.close();
    let x = t.exchanges();
    assert_eq!(x[1].status, ResponseStatus::Incomplete);
    let mut t = Conn::new();
    t.login(BASE_CAPS);
    t.client(&com(1, &[]));
    t.close();
    assert_eq!(t.exchanges()[1].status, ResponseStatus::NoResponse);
}

#[test]
fn greeting_and_client_start_detection() {
    assert!(looks_like_mysql_greeting(&packet(
        0,
        &greeting(BASE_CAPS, "x")
    )));
    assert!(!looks_like_mysql_greeting(b"HTTP/1.1 200 OK\r\n\r\n"));
    assert!(!looks_like_mysql_greeting(&[]));
    assert!(looks_like_mysql_client_start(&com(3, b"select 1")));
    assert!(looks_like_mysql_client_start(&stored(
        0,
        &com(3, b"select 1")
    )));
    assert!(looks_like_mysql_client_start(&packet(
        1,
        &handshake_response(BASE_CAPS, "u", None, "p")
    )));
    assert!(!looks_like_mysql_client_start(b"GET / HTTP/1.1\r\n\r\n"));
}

use crate::testutil::XorShift as Rng;

#[test]
fn garbage_never_panics_and_stays_bounded() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    // A valid conversation to mutate.
    let mut valid: Vec<(bool, Vec<u8>)> = vec![
        (
            false,
            packet(
                0,
                &greeting(BASE_CAPS | cap::COMPRESS, "mysql_native_password"),
            ),
        ),
        (
            true,
            packet(1, &handshake_response(BASE_CAPS, "u", Some("d"), "p")),
        ),
        (false, packet(2, &ok(0, 2))),
        (true, com(3, b"select a from t")),
    ];
    let mut rs = packet(1, &[1]);
    rs.extend(packet(2, &coldef("a")));
    rs.extend(packet(3, &eof(2)));
    rs.extend(packet(4, &text_row(&["1"])));
    rs.extend(packet(5, &eof(2)));
    valid.push((false, rs));
    valid.push((true, com(0x16, b"select ?")));
    valid.push((true, stored(0, &com(3, b"x"))));
    valid.push((false, compressed(1, &packet(1, &ok(0, 2)))));

    for round in 0..3_000 {
        let mut t = Conn::new();
        let steps = rng.below(30);
        for _ in 0..steps {
            let to_server = rng.below(2) == 0;
            let dir = if to_server {
                Direction::ToServer
            } else {
                Direction::ToClient
            };
            match rng.below(6) {
                0 => {
                    let n = rng.below(300);
                    let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                    if to_server {
                        t.client(&bytes)
                    } else {
                        t.server(&bytes)
                    };
                }
                1 => t.gap(dir, rng.below(5000) as u64),
                _ => {
                    let (c, b) = &valid[rng.below(valid.len())];
                    let mut b = b.clone();
                    if round % 2 == 0 && !b.is_empty() {
                        let k = rng.below(b.len());
                        b[k] = rng.next() as u8;
                        let cut = rng.below(b.len() + 1);
                        b.truncate(cut);
                    }
                    if *c {
                        t.client(&b)
                    } else {
                        t.server(&b)
                    };
                }
            }
        }
        t.close();
        assert!(t.events.len() < 10_000);
        let anomalies = t
            .events
            .iter()
            .filter(|e| matches!(e, MysqlEvent::Anomaly { .. }))
            .count();
        assert!(anomalies as u64 <= MAX_ANOMALY_EVENTS);
        assert!(t.c.proto.pending.is_empty());
    }
}

#[test]
fn hostile_lengths_do_not_allocate() {
    // A client claiming a 16 MiB - 1 packet followed by continuation headers forever.
    let mut t = Conn::new();
    t.login(BASE_CAPS);
    let mut head = packet(0, &[3]);
    head[0] = 0xff;
    head[1] = 0xff;
    head[2] = 0xff;
    t.client(&head);
    let filler = vec![b'a'; 1 << 20];
    for _ in 0..40 {
        t.client(&filler);
    }
    // Retained bytes stay at the cap however long the logical packet grows.
    assert!(t.c.dirs[0].asm.partial().map_or(0, |p| p.1.len()) <= CLIENT_RETAIN);
}
