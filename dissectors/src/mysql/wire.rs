//! MySQL wire primitives: a checked byte cursor (little-endian integers, length-encoded
//! integers and strings, NUL-terminated strings), capability and status bits, and parsers for
//! the packets whose meaning does not depend on connection state (OK, ERR, EOF, greeting,
//! handshake response).
//!
//! Every accessor returns `None` instead of reading past the end, so no parser here can panic on
//! a short or corrupt packet.

/// Capability flags (`CLIENT_*`), as in the greeting and the handshake response.
pub mod cap {
    pub const LONG_PASSWORD: u32 = 1;
    pub const CONNECT_WITH_DB: u32 = 1 << 3;
    pub const COMPRESS: u32 = 1 << 5;
    pub const LOCAL_FILES: u32 = 1 << 7;
    pub const PROTOCOL_41: u32 = 1 << 9;
    pub const SSL: u32 = 1 << 11;
    pub const SECURE_CONNECTION: u32 = 1 << 15;
    pub const MULTI_RESULTS: u32 = 1 << 17;
    pub const PLUGIN_AUTH: u32 = 1 << 19;
    pub const CONNECT_ATTRS: u32 = 1 << 20;
    pub const PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 1 << 21;
    pub const SESSION_TRACK: u32 = 1 << 23;
    pub const DEPRECATE_EOF: u32 = 1 << 24;
    pub const OPTIONAL_RESULTSET_METADATA: u32 = 1 << 25;
    pub const ZSTD_COMPRESSION_ALGORITHM: u32 = 1 << 26;
    pub const QUERY_ATTRIBUTES: u32 = 1 << 27;
}

/// MariaDB's extended capabilities (sent in bytes MySQL reserves as filler).
pub mod mariadb_cap {
    pub const PROGRESS: u32 = 1;
    pub const CACHE_METADATA: u32 = 1 << 4;
}

/// Server status flags (`SERVER_*`), in OK and EOF packets.
pub mod status {
    pub const IN_TRANS: u16 = 0x0001;
    pub const AUTOCOMMIT: u16 = 0x0002;
    pub const MORE_RESULTS_EXISTS: u16 = 0x0008;
    pub const CURSOR_EXISTS: u16 = 0x0040;
}

/// Largest payload one physical packet carries; a packet of exactly this length continues in
/// the next one.
pub const MAX_PACKET_PAYLOAD: usize = 0x00ff_ffff;

/// A checked cursor over a packet payload.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    pub fn peek(&self) -> Option<u8> {
        self.buf.first().copied()
    }

    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let head = self.buf.get(..n)?;
        self.buf = self.buf.get(n..).unwrap_or(&[]);
        Some(head)
    }

    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    pub fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.buf.split_first()?;
        self.buf = rest;
        Some(b)
    }

    pub fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_le_bytes([*b.first()?, *b.get(1)?]))
    }

    pub fn u24(&mut self) -> Option<u32> {
        let b = self.take(3)?;
        Some(u32::from_le_bytes([*b.first()?, *b.get(1)?, *b.get(2)?, 0]))
    }

    pub fn u32(&mut self) -> Option<u32> {
        let b: [u8; 4] = self.take(4)?.try_into().ok()?;
        Some(u32::from_le_bytes(b))
    }

    pub fn u64(&mut self) -> Option<u64> {
        let b: [u8; 8] = self.take(8)?.try_into().ok()?;
        Some(u64::from_le_bytes(b))
    }

    /// A length-encoded integer. `0xfb` (NULL in rows) and `0xff` (an ERR marker) are not
    /// integers and yield `None`.
    pub fn lenenc(&mut self) -> Option<u64> {
        match self.u8()? {
            b @ 0..=0xfa => Some(u64::from(b)),
            0xfc => self.u16().map(u64::from),
            0xfd => self.u24().map(u64::from),
            0xfe => self.u64(),
            _ => None,
        }
    }

    /// A length-encoded string.
    pub fn lenenc_bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.lenenc()?).ok()?;
        self.take(n)
    }

    /// Bytes up to a NUL, which is consumed. `None` when there is no NUL.
    pub fn nul_terminated(&mut self) -> Option<&'a [u8]> {
        let at = self.buf.iter().position(|&b| b == 0)?;
        let s = self.buf.get(..at)?;
        self.buf = self.buf.get(at + 1..).unwrap_or(&[]);
        Some(s)
    }

    /// Bytes up to a NUL or the end of the packet (servers and clients may omit a final NUL).
    pub fn nul_or_eof(&mut self) -> &'a [u8] {
        match self.nul_terminated() {
            Some(s) => s,
            None => {
                let s = self.buf;
                self.buf = &[];
                s
            }
        }
    }
}

/// Lossy UTF-8 text, cut to `max` bytes (on a character boundary) so that a hostile peer cannot
/// make one event arbitrarily large.
pub fn text(bytes: &[u8], max: usize) -> String {
    let cut = bytes.get(..max).unwrap_or(bytes);
    // Valid UTF-8 (nearly always) is checked by the fast validator and copied once; the lossy
    // conversion walks the bytes chunk by chunk.
    let mut s = match std::str::from_utf8(cut) {
        Ok(valid) => valid.to_owned(),
        Err(_) => String::from_utf8_lossy(cut).into_owned(),
    };
    if bytes.len() > max {
        // A multi-byte character cut in half became U+FFFD; that is fine for a display string.
        s.push('…');
    }
    s
}

/// [`text`], shared: statement texts are handed from the prepared-statement map to every
/// execute of the statement, and on to the analysis, without copying.
pub fn shared_text(bytes: &[u8], max: usize) -> std::sync::Arc<str> {
    match std::str::from_utf8(bytes) {
        Ok(valid) if bytes.len() <= max => std::sync::Arc::from(valid),
        _ => std::sync::Arc::from(text(bytes, max)),
    }
}

/// An OK packet (`0x00`, or `0xfe` when it ends a result set under CLIENT_DEPRECATE_EOF).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OkPacket {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: u16,
    pub warnings: u16,
}

pub fn parse_ok(payload: &[u8]) -> Option<OkPacket> {
    let mut r = Reader::new(payload);
    r.u8()?;
    let affected_rows = r.lenenc()?;
    let last_insert_id = r.lenenc()?;
    // Pre-4.1 servers stop here; treat missing status as unknown (zero).
    let status = r.u16().unwrap_or(0);
    let warnings = r.u16().unwrap_or(0);
    Some(OkPacket {
        affected_rows,
        last_insert_id,
        status,
        warnings,
    })
}

/// An EOF packet: `0xfe`, warnings, status (protocol 4.1), exactly five bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EofPacket {
    pub warnings: u16,
    pub status: u16,
}

pub fn parse_eof(payload: &[u8]) -> EofPacket {
    let mut r = Reader::new(payload);
    let _ = r.u8();
    EofPacket {
        warnings: r.u16().unwrap_or(0),
        status: r.u16().unwrap_or(0),
    }
}

/// An ERR packet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrPacket {
    pub code: u16,
    pub sql_state: Option<String>,
    pub message: String,
}

/// Longest error message kept.
const MAX_ERROR_MESSAGE: usize = 1024;

pub fn parse_err(payload: &[u8]) -> Option<ErrPacket> {
    let mut r = Reader::new(payload);
    if r.u8()? != 0xff {
        return None;
    }
    let code = r.u16()?;
    let sql_state = if r.peek() == Some(b'#') {
        let _ = r.u8();
        r.take(5).map(|s| text(s, 5))
    } else {
        None
    };
    Some(ErrPacket {
        code,
        sql_state,
        message: text(r.rest(), MAX_ERROR_MESSAGE),
    })
}

/// MariaDB sends progress reports during long statements as ERR packets with code 0xffff.
pub fn is_progress_report(payload: &[u8]) -> bool {
    payload.get(..3) == Some(&[0xff, 0xff, 0xff])
}

/// The server greeting (Protocol::Handshake v10 or v9).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Greeting {
    pub protocol_version: u8,
    pub server_version: String,
    pub connection_id: u32,
    pub capabilities: u32,
    pub mariadb_capabilities: u32,
    pub auth_plugin: Option<String>,
}

const MAX_NAME: usize = 256;

pub fn parse_greeting(payload: &[u8]) -> Option<Greeting> {
    let mut r = Reader::new(payload);
    let protocol_version = r.u8()?;
    if protocol_version != 10 && protocol_version != 9 {
        return None;
    }
    let server_version = text(r.nul_terminated()?, MAX_NAME);
    let connection_id = r.u32()?;
    let mut g = Greeting {
        protocol_version,
        server_version,
        connection_id,
        ..Greeting::default()
    };
    if protocol_version == 9 {
        return Some(g);
    }
    r.skip(8)?; // auth-plugin-data part 1
    r.skip(1)?; // filler
    let cap_low = r.u16()?;
    g.capabilities = u32::from(cap_low);
    let (Some(_charset), Some(_status), Some(cap_high)) = (r.u8(), r.u16(), r.u16()) else {
        return Some(g);
    };
    g.capabilities |= u32::from(cap_high) << 16;
    let auth_data_len = r.u8().unwrap_or(0);
    // Ten reserved bytes; MariaDB puts its extended capabilities in the last four when it
    // clears CLIENT_LONG_PASSWORD ("CLIENT_MYSQL") to announce itself.
    if let Some(reserved) = r.take(10) {
        if g.capabilities & cap::LONG_PASSWORD == 0 {
            let mut rr = Reader::new(reserved);
            let _ = rr.skip(6);
            g.mariadb_capabilities = rr.u32().unwrap_or(0);
        }
    }
    if g.capabilities & cap::SECURE_CONNECTION != 0 {
        let part2 = usize::from(auth_data_len).saturating_sub(8).max(13);
        let _ = r.take(part2.min(r.remaining()));
    }
    if g.capabilities & cap::PLUGIN_AUTH != 0 {
        let name = r.nul_or_eof();
        if !name.is_empty() {
            g.auth_plugin = Some(text(name, MAX_NAME));
        }
    }
    Some(g)
}

/// The client's answer to the greeting (HandshakeResponse41 or 320), or an SSLRequest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HandshakeResponse {
    pub capabilities: u32,
    pub mariadb_capabilities: u32,
    /// A 32-byte SSLRequest: TLS follows.
    pub ssl_request: bool,
    pub user: String,
    pub database: Option<String>,
    pub auth_plugin: Option<String>,
    pub attrs: Vec<(String, String)>,
}

/// Connect attributes kept per login.
const MAX_ATTRS: usize = 64;

pub fn parse_handshake_response(payload: &[u8]) -> Option<HandshakeResponse> {
    let mut r = Reader::new(payload);
    let low = r.u16()?;
    if u32::from(low) & cap::PROTOCOL_41 == 0 {
        return parse_handshake_response_320(payload);
    }
    let mut r = Reader::new(payload);
    let capabilities = r.u32()?;
    let _max_packet = r.u32()?;
    let _charset = r.u8()?;
    let filler = r.take(23)?;
    let mut hr = HandshakeResponse {
        capabilities,
        ..HandshakeResponse::default()
    };
    if capabilities & cap::LONG_PASSWORD == 0 {
        let mut f = Reader::new(filler);
        let _ = f.skip(19);
        hr.mariadb_capabilities = f.u32().unwrap_or(0);
    }
    if r.is_empty() {
        hr.ssl_request = capabilities & cap::SSL != 0;
        return Some(hr);
    }
    hr.user = text(r.nul_terminated()?, MAX_NAME);
    if capabilities & cap::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
        r.lenenc_bytes()?;
    } else if capabilities & cap::SECURE_CONNECTION != 0 {
        let n = r.u8()?;
        r.skip(usize::from(n))?;
    } else {
        r.nul_terminated()?;
    }
    if capabilities & cap::CONNECT_WITH_DB != 0 && !r.is_empty() {
        let db = r.nul_or_eof();
        if !db.is_empty() {
            hr.database = Some(text(db, MAX_NAME));
        }
    }
    if capabilities & cap::PLUGIN_AUTH != 0 && !r.is_empty() {
        let p = r.nul_or_eof();
        if !p.is_empty() {
            hr.auth_plugin = Some(text(p, MAX_NAME));
        }
    }
    if capabilities & cap::CONNECT_ATTRS != 0 && !r.is_empty() {
        hr.attrs = parse_attrs(&mut r);
    }
    Some(hr)
}

fn parse_attrs(r: &mut Reader<'_>) -> Vec<(String, String)> {
    let mut attrs = Vec::new();
    let Some(block) = r.lenenc_bytes() else {
        return attrs;
    };
    let mut a = Reader::new(block);
    while !a.is_empty() && attrs.len() < MAX_ATTRS {
        let (Some(k), Some(v)) = (a.lenenc_bytes(), a.lenenc_bytes()) else {
            break;
        };
        attrs.push((text(k, MAX_NAME), text(v, MAX_NAME)));
    }
    attrs
}

fn parse_handshake_response_320(payload: &[u8]) -> Option<HandshakeResponse> {
    let mut r = Reader::new(payload);
    let capabilities = u32::from(r.u16()?);
    let _max_packet = r.u24()?;
    let mut hr = HandshakeResponse {
        capabilities,
        ..HandshakeResponse::default()
    };
    if r.is_empty() {
        hr.ssl_request = capabilities & cap::SSL != 0;
        return Some(hr);
    }
    hr.user = text(r.nul_terminated()?, MAX_NAME);
    if capabilities & cap::CONNECT_WITH_DB != 0 {
        let _auth = r.nul_terminated()?;
        let db = r.nul_or_eof();
        if !db.is_empty() {
            hr.database = Some(text(db, MAX_NAME));
        }
    }
    Some(hr)
}

/// COM_CHANGE_USER's arguments (after the command byte).
pub fn parse_change_user(args: &[u8], capabilities: u32) -> Option<HandshakeResponse> {
    let mut r = Reader::new(args);
    let mut hr = HandshakeResponse {
        capabilities,
        ..HandshakeResponse::default()
    };
    hr.user = text(r.nul_terminated()?, MAX_NAME);
    if capabilities & cap::SECURE_CONNECTION != 0 {
        let n = r.u8()?;
        r.skip(usize::from(n))?;
    } else {
        r.nul_terminated()?;
    }
    let db = r.nul_or_eof();
    if !db.is_empty() {
        hr.database = Some(text(db, MAX_NAME));
    }
    if r.remaining() >= 2 {
        let _charset = r.u16();
        if capabilities & cap::PLUGIN_AUTH != 0 && !r.is_empty() {
            let p = r.nul_or_eof();
            if !p.is_empty() {
                hr.auth_plugin = Some(text(p, MAX_NAME));
            }
        }
        if capabilities & cap::CONNECT_ATTRS != 0 && !r.is_empty() {
            hr.attrs = parse_attrs(&mut r);
        }
    }
    Some(hr)
}

/// The column count packet that opens a result set; `metadata_follows` is false when the server
/// skips column definitions (CLIENT_OPTIONAL_RESULTSET_METADATA with RESULTSET_METADATA_NONE, or
/// MariaDB's cached metadata).
pub fn parse_column_count(payload: &[u8], metadata_flag_negotiated: bool) -> Option<(u64, bool)> {
    let mut r = Reader::new(payload);
    let n = r.lenenc()?;
    let follows = if metadata_flag_negotiated {
        r.u8() != Some(0)
    } else {
        true
    };
    Some((n, follows))
}

/// Types of binary-protocol values (query attributes, COM_STMT_EXECUTE parameters), for
/// skipping over them.
pub fn skip_binary_value(r: &mut Reader<'_>, field_type: u8) -> Option<()> {
    match field_type {
        // NULL
        6 => Some(()),
        // TINY
        1 => r.skip(1),
        // SHORT, YEAR
        2 | 13 => r.skip(2),
        // LONG, INT24, FLOAT
        3 | 9 | 4 => r.skip(4),
        // LONGLONG, DOUBLE
        8 | 5 => r.skip(8),
        // TIMESTAMP, DATE, TIME, DATETIME (and their *2 variants): a length byte and that many
        7 | 10 | 11 | 12 | 17 | 18 | 19 => {
            let n = r.u8()?;
            r.skip(usize::from(n))
        }
        // Everything else travels as a length-encoded string.
        _ => r.lenenc_bytes().map(|_| ()),
    }
}

/// Splits a COM_QUERY payload (after the command byte) carrying query attributes into the
/// query text. `None` when the attribute block does not parse.
pub fn strip_query_attributes(args: &[u8]) -> Option<&[u8]> {
    let mut r = Reader::new(args);
    let count = r.lenenc()?;
    let _set_count = r.lenenc()?;
    if count > 0 {
        // Attributes are bounded by what fits in a packet; refuse absurd counts early.
        let count = usize::try_from(count).ok().filter(|&c| c <= 65_535)?;
        let bitmap = r.take(count.div_ceil(8))?;
        let bind_flag = r.u8()?;
        let mut types = Vec::with_capacity(count.min(256));
        if bind_flag == 1 {
            for _ in 0..count {
                let t = r.u16()?;
                r.lenenc_bytes()?;
                types.push((t & 0xff) as u8);
            }
        } else {
            // Without types the values cannot be skipped.
            return None;
        }
        for (i, t) in types.iter().enumerate() {
            let is_null = bitmap
                .get(i / 8)
                .is_some_and(|byte| byte & (1 << (i % 8)) != 0);
            if !is_null {
                skip_binary_value(&mut r, *t)?;
            }
        }
    }
    Some(r.rest())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_forms() {
        let mut r = Reader::new(&[
            0xfa, 0xfc, 1, 2, 0xfd, 1, 2, 3, 0xfe, 1, 0, 0, 0, 0, 0, 0, 0,
        ]);
        assert_eq!(r.lenenc(), Some(250));
        assert_eq!(r.lenenc(), Some(0x0201));
        assert_eq!(r.lenenc(), Some(0x030201));
        assert_eq!(r.lenenc(), Some(1));
        assert_eq!(r.lenenc(), None);
        assert_eq!(Reader::new(&[0xfb]).lenenc(), None);
        assert_eq!(Reader::new(&[0xfe, 1]).lenenc(), None);
    }

    #[test]
    fn query_attributes_are_skipped() {
        // From zeek's mysql-9.0.0-query-attributes.pcap: four typed attributes.
        let args: Vec<u8> = [
            &[0x04, 0x01, 0x00, 0x01, 0x01, 0x80, 0x07][..],
            b"number1",
            &[0xfe, 0x00, 0x07],
            b"string1",
            &[0x0a, 0x00, 0x05],
            b"date1",
            &[0x0c, 0x00, 0x09],
            b"datetime1",
            &[0x2a, 0x08],
            b"a string",
            &[0x04, 0xc3, 0x07, 0x0a, 0x12],
            &[0x07, 0xc6, 0x07, 0x09, 0x1a, 0x0c, 0x0d, 0x0e],
            b"SELECT version()",
        ]
        .concat();
        assert_eq!(
            strip_query_attributes(&args),
            Some(&b"SELECT version()"[..])
        );
        assert_eq!(
            strip_query_attributes(b"\x00\x01select 1"),
            Some(&b"select 1"[..])
        );
        for n in 0..args.len() {
            let _ = strip_query_attributes(&args[..n]);
        }
    }
}
