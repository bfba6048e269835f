//! SQL statement classification (for transaction tracking) and fingerprinting (for grouping
//! statements that differ only in their literals), in one pass over the bytes each, without
//! regular expressions.
//!
//! The fingerprint follows pt-query-digest's (Percona Toolkit `QueryRewriter::fingerprint`):
//! comments stripped, whitespace folded, everything lowercased, string / number / hex / bit /
//! boolean / NULL literals replaced by `?`, `IN (...)` and multi-row `VALUES (...), (...)` lists
//! of literals collapsed to `in(?+)` / `values(?+)`, `USE db` → `use ?`, `CALL p(...)` → `call p`.
//! Deliberate differences, each because pt's broad regexes damage identifiers:
//! - a number is only a number at the start of a token (pt turns `t1` into `t?` and `a-b` into
//!   `a?`); a sign belongs to a number only after an operator, `(`, `,` or a keyword;
//! - backquoted identifiers are kept (lowercased), digits and all;
//! - a comment separates tokens like whitespace (pt glues `a/**/b` into `ab`); executable
//!   comments (`/*! ... */`, `/*+ hints */`) are kept as code, like pt keeps `/*!`;
//! - pt's LIMIT (`limit ?, ?` / `limit ? offset ?` → `limit ?`) and ORDER BY ASC (`asc` dropped
//!   after `order by`) rewrites are done; its UNION collapsing is not.

/// What a statement does, as far as transaction and round-trip accounting care.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatementClass {
    /// `SET [SESSION|GLOBAL] TRANSACTION ...`
    SetTransaction,
    /// `SET autocommit = 0|1|ON|OFF` (also `@@autocommit`, `@@session.autocommit`,
    /// `SESSION autocommit`), anywhere in the SET's assignment list.
    SetAutocommit {
        value: bool,
    },
    /// `BEGIN`, `BEGIN WORK`, `START TRANSACTION ...`
    Begin,
    Commit,
    /// `ROLLBACK` (not `ROLLBACK TO SAVEPOINT`, which is [`StatementClass::Savepoint`]).
    Rollback,
    /// `SAVEPOINT`, `ROLLBACK [WORK] TO [SAVEPOINT]`, `RELEASE SAVEPOINT`.
    Savepoint,
    /// `SELECT`, and `WITH ...` / `TABLE` / `VALUES` statements.
    Select,
    Insert,
    Update,
    Delete,
    Replace,
    /// `CREATE`, `ALTER`, `DROP`, `TRUNCATE`, `RENAME`.
    Ddl,
    /// Any other `SET`.
    Set,
    /// `SHOW`, `DESCRIBE`, `DESC`.
    Show,
    Use,
    Call,
    Other,
}

impl StatementClass {
    pub fn name(self) -> &'static str {
        match self {
            StatementClass::SetTransaction => "set_transaction",
            StatementClass::SetAutocommit { value: true } => "set_autocommit_on",
            StatementClass::SetAutocommit { value: false } => "set_autocommit_off",
            StatementClass::Begin => "begin",
            StatementClass::Commit => "commit",
            StatementClass::Rollback => "rollback",
            StatementClass::Savepoint => "savepoint",
            StatementClass::Select => "select",
            StatementClass::Insert => "insert",
            StatementClass::Update => "update",
            StatementClass::Delete => "delete",
            StatementClass::Replace => "replace",
            StatementClass::Ddl => "ddl",
            StatementClass::Set => "set",
            StatementClass::Show => "show",
            StatementClass::Use => "use",
            StatementClass::Call => "call",
            StatementClass::Other => "other",
        }
    }
}

fn is_word_byte(b: u8) -> bool {
    WORD_BYTES.get(usize::from(b)).copied().unwrap_or(false)
}

/// Bytes of identifiers and keywords: ASCII letters and digits, `_`, `$`, and every non-ASCII
/// byte. A table: the tokenizer asks for every byte of every word. (Built at compile time: an
/// index out of bounds here would fail the build, not panic.)
#[allow(clippy::indexing_slicing)]
const WORD_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
        b += 1;
    }
    t
};

/// A cursor for the few tokens classification needs.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn peek_at(&self, k: usize) -> Option<u8> {
        self.s.get(self.i + k).copied()
    }

    /// Skips whitespace and comments. The inside of an executable comment (`/*!` [version])
    /// is code, so only its opening is skipped.
    fn skip_trivia(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => self.i += 1,
                b'#' => self.skip_line(),
                b'-' if self.peek_at(1) == Some(b'-')
                    && self
                        .peek_at(2)
                        .is_none_or(|c| c.is_ascii_whitespace() || c.is_ascii_control()) =>
                {
                    self.skip_line()
                }
                b'/' if self.peek_at(1) == Some(b'*') => {
                    if self.peek_at(2) == Some(b'!') {
                        self.i += 3;
                        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                            self.i += 1;
                        }
                    } else {
                        self.skip_block_comment();
                    }
                }
                b'*' if self.peek_at(1) == Some(b'/') => self.i += 2,
                _ => return,
            }
        }
    }

    fn skip_line(&mut self) {
        while let Some(b) = self.peek() {
            self.i += 1;
            if b == b'\n' {
                return;
            }
        }
    }

    fn skip_block_comment(&mut self) {
        self.i += 2;
        while self.i < self.s.len() {
            if self.peek() == Some(b'*') && self.peek_at(1) == Some(b'/') {
                self.i += 2;
                return;
            }
            self.i += 1;
        }
    }

    /// The next word (letters, digits, `_`, `$`), after trivia.
    fn word(&mut self) -> &'a [u8] {
        self.skip_trivia();
        let start = self.i;
        while self.peek().is_some_and(is_word_byte) {
            self.i += 1;
        }
        self.s.get(start..self.i).unwrap_or(&[])
    }

    fn eat(&mut self, b: u8) -> bool {
        self.skip_trivia();
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Skips to just after the next `,` outside quotes and parentheses; false at the end.
    fn skip_past_comma(&mut self) -> bool {
        let mut depth = 0u32;
        while let Some(b) = self.peek() {
            match b {
                b'\'' | b'"' | b'`' => {
                    self.i = skip_quoted(self.s, self.i);
                    continue;
                }
                b'(' => depth += 1,
                b')' => depth = depth.saturating_sub(1),
                b',' if depth == 0 => {
                    self.i += 1;
                    return true;
                }
                b';' if depth == 0 => return false,
                _ => {}
            }
            self.i += 1;
        }
        false
    }
}

fn eq(word: &[u8], kw: &str) -> bool {
    word.eq_ignore_ascii_case(kw.as_bytes())
}

/// Index just past a quoted string / identifier starting at `i` (backslash escapes and doubled
/// quotes honoured; an unterminated quote runs to the end).
fn skip_quoted(s: &[u8], i: usize) -> usize {
    let Some(&q) = s.get(i) else {
        return s.len();
    };
    let mut j = i + 1;
    while let Some(&b) = s.get(j) {
        if b == b'\\' && q != b'`' {
            j += 2;
            continue;
        }
        if b == q {
            if s.get(j + 1) == Some(&q) {
                j += 2;
                continue;
            }
            return j + 1;
        }
        j += 1;
    }
    s.len()
}

/// Classifies a statement by its leading keywords (case-insensitive; leading whitespace,
/// comments and parentheses skipped).
pub fn classify(sql: &str) -> StatementClass {
    let mut c = Cursor {
        s: sql.as_bytes(),
        i: 0,
    };
    c.skip_trivia();
    while c.eat(b'(') {}
    let w = c.word();
    match w.len() {
        0 => StatementClass::Other,
        _ if eq(w, "select") || eq(w, "with") || eq(w, "table") || eq(w, "values") => {
            StatementClass::Select
        }
        _ if eq(w, "insert") => StatementClass::Insert,
        _ if eq(w, "update") => StatementClass::Update,
        _ if eq(w, "delete") => StatementClass::Delete,
        _ if eq(w, "replace") => StatementClass::Replace,
        _ if eq(w, "create")
            || eq(w, "alter")
            || eq(w, "drop")
            || eq(w, "truncate")
            || eq(w, "rename") =>
        {
            StatementClass::Ddl
        }
        _ if eq(w, "show") || eq(w, "describe") || eq(w, "desc") => StatementClass::Show,
        _ if eq(w, "use") => StatementClass::Use,
        _ if eq(w, "call") => StatementClass::Call,
        _ if eq(w, "commit") => StatementClass::Commit,
        _ if eq(w, "savepoint") => StatementClass::Savepoint,
        _ if eq(w, "release") => {
            if eq(c.word(), "savepoint") {
                StatementClass::Savepoint
            } else {
                StatementClass::Other
            }
        }
        _ if eq(w, "rollback") => {
            let mut next = c.word();
            if eq(next, "work") {
                next = c.word();
            }
            if eq(next, "to") {
                StatementClass::Savepoint
            } else {
                StatementClass::Rollback
            }
        }
        _ if eq(w, "begin") => {
            let next = c.word();
            // MariaDB's `BEGIN NOT ATOMIC` opens a compound statement, not a transaction.
            if eq(next, "not") {
                StatementClass::Other
            } else {
                StatementClass::Begin
            }
        }
        _ if eq(w, "start") => {
            if eq(c.word(), "transaction") {
                StatementClass::Begin
            } else {
                StatementClass::Other
            }
        }
        _ if eq(w, "set") => classify_set(&mut c),
        _ => StatementClass::Other,
    }
}

fn classify_set(c: &mut Cursor<'_>) -> StatementClass {
    let save = c.i;
    let first = c.word();
    let scoped = ["session", "global", "local", "persist", "persist_only"]
        .iter()
        .any(|k| eq(first, k));
    if eq(first, "transaction") || (scoped && eq(c.word(), "transaction")) {
        return StatementClass::SetTransaction;
    }
    c.i = save;
    // Walk the assignment list: `[@@][scope.]name = value, ...`.
    loop {
        c.skip_trivia();
        while c.peek() == Some(b'@') {
            c.i += 1;
        }
        let mut name = c.word();
        if ["session", "global", "local", "persist", "persist_only"]
            .iter()
            .any(|k| eq(name, k))
        {
            // `@@session.x` or `SESSION x`
            if c.peek() == Some(b'.') {
                c.i += 1;
            }
            while c.peek() == Some(b'@') {
                c.i += 1;
            }
            name = c.word();
        }
        if eq(name, "autocommit") {
            c.skip_trivia();
            if c.peek() == Some(b':') {
                c.i += 1;
            }
            if c.eat(b'=') {
                c.skip_trivia();
                let quoted = matches!(c.peek(), Some(b'\'' | b'"'));
                if quoted {
                    c.i += 1;
                }
                let v = c.word();
                if eq(v, "1") || eq(v, "on") || eq(v, "true") {
                    return StatementClass::SetAutocommit { value: true };
                }
                if eq(v, "0") || eq(v, "off") || eq(v, "false") {
                    return StatementClass::SetAutocommit { value: false };
                }
            }
        }
        if name.is_empty() && c.peek().is_none() {
            return StatementClass::Set;
        }
        if !c.skip_past_comma() {
            return StatementClass::Set;
        }
    }
}

/// State of `IN (...)` / `VALUES (...), (...)` collapsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum List {
    /// Not in a candidate list.
    None,
    /// Just emitted `in` / `value(s)`: a `(` starts a candidate.
    AfterKeyword { mark: usize },
    /// Inside a group of only literals and commas.
    InGroup { mark: usize },
    /// After a group's `)`: a `,` may introduce another group.
    AfterGroup { mark: usize },
    /// After `group ,`: only a `(` continues the list.
    AfterComma { mark: usize },
}

/// What the previous emitted token was, for spacing and sign handling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prev {
    Start,
    /// An identifier, keyword, literal or `)`: a following `-`/`+` is binary.
    Operand,
    /// An operator, `(` or `,`: a following `-`/`+` before a digit is a sign.
    Operator,
}

/// A word of up to eight bytes, lowercased and packed into an integer, for keyword tests
/// without allocating (built in a register: byte stores into a buffer followed by a wide load
/// stall store forwarding). Longer words map to 0, which matches no keyword.
fn word_key(w: &[u8]) -> u64 {
    if w.len() > 8 {
        return 0;
    }
    let mut k = 0u64;
    for (i, &b) in w.iter().enumerate() {
        k |= u64::from(b.to_ascii_lowercase()) << (8 * i);
    }
    k
}

// Evaluated at compile time for the keyword constants; `i < w.len()` guards the index.
#[allow(clippy::indexing_slicing)]
const fn key(w: &[u8]) -> u64 {
    let mut k = 0u64;
    let mut i = 0;
    while i < w.len() && i < 8 {
        k |= (w[i] as u64) << (8 * i);
        i += 1;
    }
    k
}

const K_NULL: u64 = key(b"null");
const K_TRUE: u64 = key(b"true");
const K_FALSE: u64 = key(b"false");
const K_IN: u64 = key(b"in");
const K_VALUES: u64 = key(b"values");
const K_VALUE: u64 = key(b"value");

/// Keywords after which a sign is unary (`WHERE -1`, `SELECT -1`, `THEN -1`, ...).
fn keyword_takes_operand(k: u64) -> bool {
    const KW: [u64; 22] = [
        key(b"select"),
        key(b"where"),
        key(b"and"),
        key(b"or"),
        key(b"not"),
        key(b"on"),
        key(b"set"),
        key(b"values"),
        key(b"value"),
        key(b"in"),
        key(b"by"),
        key(b"having"),
        key(b"limit"),
        key(b"offset"),
        key(b"then"),
        key(b"else"),
        key(b"when"),
        key(b"case"),
        key(b"return"),
        key(b"like"),
        key(b"between"),
        key(b"is"),
    ];
    k != 0 && KW.contains(&k)
}

/// Normalises a statement for grouping; see the module documentation.
pub fn fingerprint(sql: &str) -> String {
    let s = sql.as_bytes();
    // Bytes, not a String: tokens are copied whole and cut only at ASCII bytes, so the result
    // is valid UTF-8 (checked once at the end).
    let mut out: Vec<u8> = Vec::with_capacity(s.len().min(4096));
    let mut i = 0usize;
    let mut prev = Prev::Start;
    let mut pending_space = false;
    let mut list = List::None;

    // pt: `use db` → `use ?`; `call p(...)` → `call p`.
    {
        let mut c = Cursor { s, i: 0 };
        let w = c.word();
        if eq(w, "use") {
            return "use ?".to_string();
        }
        if eq(w, "call") {
            let name_start = {
                c.skip_trivia();
                c.i
            };
            let mut j = name_start;
            while s
                .get(j)
                .is_some_and(|&b| is_word_byte(b) || b == b'.' || b == b'`')
            {
                j += 1;
            }
            let mut r = String::from("call");
            if let Some(name) = sql.get(name_start..j) {
                if !name.is_empty() {
                    r.push(' ');
                    r.push_str(&name.to_ascii_lowercase());
                }
            }
            return r;
        }
    }

    while let Some(&b) = s.get(i) {
        // Trivia: whitespace and comments become at most one space.
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {
                pending_space = true;
                i += 1;
                continue;
            }
            b'#' => {
                let mut c = Cursor { s, i };
                c.skip_line();
                i = c.i;
                pending_space = true;
                continue;
            }
            b'-' if s.get(i + 1) == Some(&b'-')
                && s.get(i + 2)
                    .is_none_or(|c| c.is_ascii_whitespace() || c.is_ascii_control()) =>
            {
                let mut c = Cursor { s, i };
                c.skip_line();
                i = c.i;
                pending_space = true;
                continue;
            }
            b'/' if s.get(i + 1) == Some(&b'*') && !matches!(s.get(i + 2), Some(b'!' | b'+')) => {
                let mut c = Cursor { s, i };
                c.skip_block_comment();
                i = c.i;
                pending_space = true;
                continue;
            }
            _ => {}
        }

        // One token: [start, end), and whether it is a literal.
        let start = i;
        let mut literal = false;
        let mut word = false;
        let end;
        match b {
            b'\'' | b'"' => {
                end = skip_quoted(s, i);
                literal = true;
            }
            b'`' => end = skip_quoted(s, i),
            b'0'..=b'9' => {
                end = scan_number(s, i);
                // `1abc` is an identifier in MySQL.
                if s.get(end).is_some_and(|&c| is_word_byte(c)) {
                    let mut j = end;
                    while s.get(j).is_some_and(|&c| is_word_byte(c)) {
                        j += 1;
                    }
                    i = j;
                    emit_token(&mut out, sql, start, i, &mut pending_space, true, prev);
                    prev = Prev::Operand;
                    list = list_after_other(list, &mut out);
                    continue;
                }
                literal = true;
            }
            b'.' if s.get(i + 1).is_some_and(u8::is_ascii_digit) && prev != Prev::Operand => {
                end = scan_number(s, i);
                literal = true;
            }
            b'+' | b'-'
                if prev != Prev::Operand
                    && s.get(i + 1)
                        .is_some_and(|c| c.is_ascii_digit() || *c == b'.') =>
            {
                end = scan_number(s, i + 1);
                literal = true;
            }
            b'?' => {
                end = i + 1;
                literal = true;
            }
            // An executable comment or optimizer hint is kept as code; its opening is one
            // token so that it stays recognisable on a second pass.
            b'/' if s.get(i + 1) == Some(&b'*') => end = i + 3,
            _ if is_word_byte(b) => {
                let mut j = i;
                while s.get(j).is_some_and(|&c| is_word_byte(c)) {
                    j += 1;
                }
                // X'..', B'..', N'..' and charset introducers are literals / their prefix.
                let w = s.get(i..j).unwrap_or(&[]);
                if s.get(j) == Some(&b'\'') && (eq(w, "x") || eq(w, "b") || eq(w, "n")) {
                    end = skip_quoted(s, j);
                    literal = true;
                } else {
                    end = j;
                    word = true;
                    let k = word_key(w);
                    if k == K_NULL || k == K_TRUE || k == K_FALSE {
                        literal = true;
                        word = false;
                    }
                }
            }
            _ => {
                // Any other byte is a one-byte punctuation token (non-ASCII bytes are word bytes).
                end = i + 1;
            }
        }
        i = end.max(start + 1).min(s.len());

        if literal {
            list = match list {
                List::AfterComma { mark } => {
                    // A `, literal` after a group: the list ended before the comma.
                    list_finish(&mut out, mark, true);
                    List::None
                }
                List::AfterGroup { mark } => {
                    list_finish(&mut out, mark, false);
                    List::None
                }
                List::AfterKeyword { .. } => List::None,
                l => l,
            };
            if pending_space && !out.is_empty() && prev != Prev::Start {
                out.push(b' ');
            }
            pending_space = false;
            out.push(b'?');
            prev = Prev::Operand;
            continue;
        }

        if word {
            let k = word_key(s.get(start..i).unwrap_or(&[]));
            list = list_after_other(list, &mut out);
            emit_token(&mut out, sql, start, i, &mut pending_space, true, prev);
            prev = if keyword_takes_operand(k) {
                Prev::Operator
            } else {
                Prev::Operand
            };
            if k == K_IN || k == K_VALUES || k == K_VALUE {
                list = List::AfterKeyword { mark: out.len() };
            }
            continue;
        }

        // Punctuation and quoted identifiers.
        match (b, list) {
            (b'(', List::AfterKeyword { mark }) | (b'(', List::AfterComma { mark }) => {
                emit_token(&mut out, sql, start, i, &mut pending_space, false, prev);
                list = List::InGroup { mark };
                prev = Prev::Operator;
            }
            (b',', List::InGroup { .. }) => {
                emit_token(&mut out, sql, start, i, &mut pending_space, false, prev);
                prev = Prev::Operator;
            }
            (b')', List::InGroup { mark }) => {
                emit_token(&mut out, sql, start, i, &mut pending_space, false, prev);
                list = List::AfterGroup { mark };
                prev = Prev::Operand;
            }
            (b',', List::AfterGroup { mark }) => {
                // Tentatively part of the list; `list_finish` restores it if no group follows.
                list = List::AfterComma { mark };
                pending_space = false;
            }
            _ => {
                list = list_after_other(list, &mut out);
                emit_token(&mut out, sql, start, i, &mut pending_space, b == b'`', prev);
                prev = match b {
                    // After `/*!` comes a version number, which is a literal, not a sign.
                    b')' | b'`' => Prev::Operand,
                    _ => Prev::Operator,
                };
            }
        }
    }
    list_after_other(list, &mut out);
    // A trailing `;` (and the space before it) carries no meaning.
    while matches!(out.last(), Some(b';' | b' ')) {
        out.pop();
    }
    if let Some(rewritten) = limit_and_asc(&out) {
        out = rewritten;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// pt's last two rewrites, on the folded fingerprint: `limit ?, ?` and `limit ? offset ?` become
/// `limit ?` (every page of a paginated query is one class), and `asc` after `order by` goes (it
/// is the default). None when neither applies, which is the common case and costs two scans.
fn limit_and_asc(fp: &[u8]) -> Option<Vec<u8>> {
    let has = |needle: &[u8]| fp.windows(needle.len()).any(|w| w == needle);
    if !has(b"limit ?") && !has(b"order by ") {
        return None;
    }
    let word_at = |i: usize| fp.get(i).is_some_and(|&b| is_word_byte(b) || b == b'`');
    let starts = |i: usize, pat: &[u8]| fp.get(i..).is_some_and(|rest| rest.starts_with(pat));
    let mut res = Vec::with_capacity(fp.len());
    let mut after_order_by = false;
    let mut i = 0usize;
    while let Some(&b) = fp.get(i) {
        let boundary_before = i == 0 || !word_at(i - 1);
        if boundary_before && starts(i, b"limit ?") && !word_at(i + 7) {
            res.extend_from_slice(b"limit ?");
            let mut j = i + 7;
            for tail in [&b", ?"[..], b",?", b" , ?", b" offset ?"] {
                if starts(j, tail) && !word_at(j + tail.len()) {
                    j += tail.len();
                    break;
                }
            }
            i = j;
            continue;
        }
        if boundary_before && starts(i, b"order by ") {
            after_order_by = true;
        }
        if after_order_by && starts(i, b" asc") && !word_at(i + 4) {
            i += 4;
            continue;
        }
        res.push(b);
        i += 1;
    }
    Some(res)
}

/// A token that is not a literal arrived: a candidate list made only of literals ends (and is
/// collapsed) or is abandoned.
fn list_after_other(list: List, out: &mut Vec<u8>) -> List {
    match list {
        List::AfterGroup { mark } => {
            list_finish(out, mark, false);
            List::None
        }
        List::AfterComma { mark } => {
            list_finish(out, mark, true);
            List::None
        }
        _ => List::None,
    }
}

/// Replaces everything after the keyword with `(?+)`; `comma` re-adds the comma that followed
/// the last group.
fn list_finish(out: &mut Vec<u8>, mark: usize, comma: bool) {
    if mark <= out.len() {
        out.truncate(mark);
        out.extend_from_slice(b"(?+)");
        if comma {
            out.push(b',');
        }
    }
}

#[inline]
fn emit_token(
    out: &mut Vec<u8>,
    sql: &str,
    start: usize,
    end: usize,
    pending_space: &mut bool,
    lowercase: bool,
    prev: Prev,
) {
    let tok = sql.as_bytes().get(start..end).unwrap_or(&[]);
    let dash_after_dash = out.last() == Some(&b'-') && tok.first() == Some(&b'-');
    if (*pending_space && !out.is_empty() && prev != Prev::Start) || dash_after_dash {
        // (Two adjacent dashes would read as a comment on a second pass.)
        out.push(b' ');
    }
    *pending_space = false;
    if lowercase {
        out.extend(tok.iter().map(u8::to_ascii_lowercase));
    } else {
        out.extend_from_slice(tok);
    }
}

/// End of a numeric literal starting at `i` (digits, fraction, exponent, 0x.. / 0b..).
fn scan_number(s: &[u8], i: usize) -> usize {
    let mut j = i;
    if s.get(j) == Some(&b'0') && matches!(s.get(j + 1), Some(b'x' | b'X' | b'b' | b'B')) {
        let hex = matches!(s.get(j + 1), Some(b'x' | b'X'));
        let mut k = j + 2;
        while s.get(k).is_some_and(|c| {
            if hex {
                c.is_ascii_hexdigit()
            } else {
                matches!(c, b'0' | b'1')
            }
        }) {
            k += 1;
        }
        if k > j + 2 {
            return k;
        }
    }
    while s.get(j).is_some_and(u8::is_ascii_digit) {
        j += 1;
    }
    if s.get(j) == Some(&b'.') {
        j += 1;
        while s.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
    }
    if matches!(s.get(j), Some(b'e' | b'E')) {
        let mut k = j + 1;
        if matches!(s.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        if s.get(k).is_some_and(u8::is_ascii_digit) {
            while s.get(k).is_some_and(u8::is_ascii_digit) {
                k += 1;
            }
            j = k;
        }
    }
    j
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        use StatementClass::*;
        let cases: &[(&str, StatementClass)] = &[
            (
                "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
                SetTransaction,
            ),
            ("set transaction read only", SetTransaction),
            (
                "SET GLOBAL TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                SetTransaction,
            ),
            ("SET autocommit=0", SetAutocommit { value: false }),
            ("set autocommit = 1", SetAutocommit { value: true }),
            (
                "SET @@session.autocommit = OFF",
                SetAutocommit { value: false },
            ),
            ("SET @@autocommit:=ON", SetAutocommit { value: true }),
            (
                "SET SESSION autocommit = 'OFF'",
                SetAutocommit { value: false },
            ),
            (
                "SET NAMES utf8mb4, autocommit=0",
                SetAutocommit { value: false },
            ),
            ("SET NAMES 'utf8mb4' COLLATE 'utf8mb4_0900_ai_ci'", Set),
            ("SET @x = 'autocommit=0', @y = 2", Set),
            ("BEGIN", Begin),
            ("begin work", Begin),
            ("START TRANSACTION READ ONLY", Begin),
            ("START SLAVE", Other),
            ("BEGIN NOT ATOMIC SELECT 1; END", Other),
            ("COMMIT", Commit),
            ("commit work", Commit),
            ("ROLLBACK", Rollback),
            ("ROLLBACK WORK", Rollback),
            ("ROLLBACK TO SAVEPOINT a", Savepoint),
            ("rollback work to b", Savepoint),
            ("SAVEPOINT a", Savepoint),
            ("RELEASE SAVEPOINT a", Savepoint),
            ("  /* hi */ SELECT 1", Select),
            ("-- c\nselect 1", Select),
            ("# c\nselect 1", Select),
            ("((SELECT 1) UNION (SELECT 2))", Select),
            ("WITH x AS (SELECT 1) SELECT * FROM x", Select),
            ("insert into t values (1)", Insert),
            ("UPDATE t SET a=1", Update),
            ("DELETE FROM t", Delete),
            ("REPLACE INTO t VALUES (1)", Replace),
            ("CREATE TABLE t (a int)", Ddl),
            ("alter table t add b int", Ddl),
            ("DROP TABLE t", Ddl),
            ("TRUNCATE t", Ddl),
            ("RENAME TABLE a TO b", Ddl),
            ("SHOW TABLES", Show),
            ("describe t", Show),
            ("USE db", Use),
            ("CALL p(1)", Call),
            ("/*!40101 SET NAMES utf8 */", Set),
            (
                "/*!40101 SET autocommit=0 */",
                SetAutocommit { value: false },
            ),
            ("", Other),
            ("   ", Other),
            ("--", Other),
            ("KILL 5", Other),
        ];
        for (sql, want) in cases {
            assert_eq!(classify(sql), *want, "{sql}");
        }
    }

    #[test]
    fn fingerprints() {
        let cases: &[(&str, &str)] = &[
            (
                "SELECT * FROM t WHERE id = 5",
                "select * from t where id = ?",
            ),
            (
                "select  *\n from t where a='x''y' and b=\"q\\\"\"",
                "select * from t where a=? and b=?",
            ),
            (
                "SELECT * FROM t1 WHERE c IN (1, 2, 3)",
                "select * from t1 where c in(?+)",
            ),
            (
                "select * from t where c in ('a')",
                "select * from t where c in(?+)",
            ),
            (
                "select * from t where c in (select a from u)",
                "select * from t where c in (select a from u)",
            ),
            (
                "INSERT INTO t (a,b) VALUES (1,'x'),(2,'y'), (3, NULL)",
                "insert into t (a,b) values(?+)",
            ),
            (
                "insert into t values (1, now())",
                "insert into t values (?, now())",
            ),
            (
                "SELECT 0x1F, X'ab', b'01', 0b11, 1.5e-3, .5, -2",
                "select ?, ?, ?, ?, ?, ?, ?",
            ),
            (
                "select a-1, a - 1, a -1 from t",
                "select a-?, a - ?, a -? from t",
            ),
            ("select `t1`.`c2` from `T1`", "select `t1`.`c2` from `t1`"),
            (
                "select * from t1 where x is null or y = true",
                "select * from t1 where x is ? or y = ?",
            ),
            ("select /* c */ 1 -- tail\n , 2 # x", "select ? , ?"),
            ("use `mydb`", "use ?"),
            ("CALL my_proc(1, 'a')", "call my_proc"),
            ("SELECT 1;", "select ?"),
            ("/*!40101 SET NAMES utf8 */", "/*!? set names utf8 */"),
            ("select 1abc from t", "select 1abc from t"),
            (
                "select * from t where a in (1,2) , (3)",
                "select * from t where a in(?+)",
            ),
            (
                "select * from t where (a) in ((1,2),(3,4))",
                "select * from t where (a) in ((?,?),(?,?))",
            ),
            ("SELECT 'ünïcode' , ünï FROM t", "select ? , ünï from t"),
        ];
        for (sql, want) in cases {
            assert_eq!(fingerprint(sql), *want, "{sql}");
            assert_eq!(fingerprint(want), *want, "idempotent: {want}");
        }
    }

    use crate::testutil::XorShift as Rng;

    const PIECES: &[&str] = &[
        "select",
        "SELECT",
        " ",
        "  ",
        "\n",
        "\t",
        "*",
        "from",
        "t",
        "t1",
        "`a b`",
        "`x1`",
        "where",
        "a",
        "=",
        "'",
        "'str'",
        "\"dq\"",
        "'it''s'",
        "'esc\\''",
        "1",
        "42",
        "-",
        "+",
        "3.14",
        "1e5",
        "0x1f",
        "x'0a'",
        "b'1'",
        "null",
        "NULL",
        "true",
        "in",
        "IN",
        "(",
        ")",
        ",",
        "values",
        "VALUE",
        "/*",
        "*/",
        "/* c */",
        "/*!40101",
        "/*+ hint */",
        "--",
        "-- c\n",
        "#",
        "# c\n",
        ";",
        "?",
        "(?+)",
        ".",
        ".5",
        "ü",
        "日本",
        "@@",
        ":=",
        "and",
        "or",
        "use",
        "call",
        "é",
        "\\",
        "\r\n",
        "e",
        "E",
        "0b",
        "0x",
        "X",
        "N'x'",
    ];

    fn random_sql(rng: &mut Rng) -> String {
        let n = rng.below(24);
        let mut s = String::new();
        for _ in 0..n {
            s.push_str(PIECES[rng.below(PIECES.len())]);
            if rng.below(3) == 0 {
                s.push(' ');
            }
        }
        s
    }

    #[test]
    fn never_panics_and_is_idempotent() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..50_000 {
            let sql = random_sql(&mut rng);
            let f = fingerprint(&sql);
            let _ = classify(&sql);
            assert_eq!(fingerprint(&f), f, "not idempotent for {sql:?} -> {f:?}");
        }
        // Arbitrary UTF-8 including control characters.
        for _ in 0..20_000 {
            let n = rng.below(40);
            let s: String = (0..n)
                .map(|_| char::from_u32(rng.below(0x3000) as u32).unwrap_or('x'))
                .collect();
            let f = fingerprint(&s);
            let _ = classify(&s);
            assert_eq!(fingerprint(&f), f, "not idempotent for {s:?} -> {f:?}");
        }
    }

    #[test]
    fn literal_values_do_not_change_the_fingerprint() {
        let mut rng = Rng(12345);
        let templates = [
            "SELECT * FROM orders WHERE id = {} AND name = {} LIMIT {}",
            "insert into t (a, b) values ({}, {})",
            "UPDATE t SET a = {} WHERE b IN ({}, {}, {})",
            "delete from t where x > {} or y = {}",
        ];
        let literal = |rng: &mut Rng| -> String {
            match rng.below(7) {
                0 => format!("{}", rng.next() % 100_000),
                1 => format!("'{}'", ["a", "it''s", "x\\'y", "日本", ""][rng.below(5)]),
                2 => format!("{}.{}", rng.below(100), rng.below(100)),
                3 => format!("0x{:x}", rng.next() % 4096),
                4 => "NULL".to_string(),
                5 => format!("-{}", rng.below(10)),
                _ => format!("\"{}\"", rng.below(1000)),
            }
        };
        for t in templates {
            let mut seen: Option<String> = None;
            for _ in 0..200 {
                let mut sql = String::new();
                let mut parts = t.split("{}");
                if let Some(first) = parts.next() {
                    sql.push_str(first);
                }
                for p in parts {
                    sql.push_str(&literal(&mut rng));
                    sql.push_str(p);
                }
                let f = fingerprint(&sql);
                match &seen {
                    None => seen = Some(f),
                    Some(prev) => assert_eq!(&f, prev, "{sql}"),
                }
            }
        }
        // Multi-row VALUES with any number of rows collapse to the same fingerprint.
        assert_eq!(
            fingerprint("INSERT INTO t VALUES (1,2)"),
            fingerprint("insert into t values (3,4),(5,6),(7,'8')")
        );
        assert_eq!(
            fingerprint("select * from t where a in (1)"),
            fingerprint("select * from t where a in (1,2,3,4,5)")
        );
    }

    #[test]
    fn limit_and_order_by_asc_are_rewritten_like_pt() {
        let cases = [
            (
                "SELECT * FROM t ORDER BY a ASC, b DESC LIMIT 10, 20",
                "select * from t order by a, b desc limit ?",
            ),
            (
                "select x from t limit 5 offset 10",
                "select x from t limit ?",
            ),
            ("select x from t LIMIT 5,10", "select x from t limit ?"),
            ("select x from t limit 5", "select x from t limit ?"),
            (
                "select `limit`, asc_col from t",
                "select `limit`, asc_col from t",
            ),
            (
                "select * from t order by `asc`",
                "select * from t order by `asc`",
            ),
            ("select a asc from t", "select a asc from t"),
            (
                "select * from t order by x asc) union (select 1 limit 1, 2)",
                "select * from t order by x) union (select ? limit ?)",
            ),
        ];
        for (sql, want) in cases {
            assert_eq!(fingerprint(sql), want, "{sql}");
        }
    }
}
