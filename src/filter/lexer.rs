//! Tokenizer for display-filter text.
//!
//! Values are not typed here: like Wireshark, a bare word such as `10.0.0.0/8`, `0a:0b` or
//! `3306` is kept as text until the parser knows which field it is compared with, because the
//! same characters mean different things for different field types (`53` is a number for
//! `tcp.port` but the byte 0x53 for `tcp.payload`).

use super::FilterError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CmpOp {
    /// `==`, `eq`, `any_eq`: some occurrence equals.
    AnyEq,
    /// `!=`, `ne`, `all_ne`: the field is present and no occurrence equals.
    AllNe,
    /// `===`, `all_eq`: every occurrence equals.
    AllEq,
    /// `!==`, `~=`, `any_ne`: the field is present and not every occurrence equals.
    AnyNe,
    Gt,
    Ge,
    Lt,
    Le,
    Contains,
    Matches,
}

impl CmpOp {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            CmpOp::AnyEq => "==",
            CmpOp::AllNe => "!=",
            CmpOp::AllEq => "===",
            CmpOp::AnyNe => "!==",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Contains => "contains",
            CmpOp::Matches => "matches",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tok<'t> {
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
    DotDot,
    And,
    Or,
    Not,
    In,
    /// `&` or `bitwise_and`.
    BitAnd,
    Cmp(CmpOp),
    /// The text between `[` and `]`, parsed by the parser.
    Slice(&'t str),
    /// A double-quoted string after escape processing (may hold any byte, including NUL).
    Str(Vec<u8>),
    /// A single-quoted character constant.
    Char(u8),
    /// A field name or an unparsed literal.
    Word(&'t str),
    /// Syntax that is not accepted; the string is the complete error message.
    Unsupported(&'static str),
    Eof,
}

/// A token, where it starts in the filter text, and its text as written.
#[derive(Clone, Debug)]
pub(crate) struct Spanned<'t> {
    pub tok: Tok<'t>,
    pub start: usize,
    pub text: &'t str,
}

impl Spanned<'_> {
    /// How the token is named in "unexpected ..." errors: as the user wrote it.
    pub(crate) fn describe(&self) -> String {
        match &self.tok {
            Tok::Eof => "the end of the filter".into(),
            Tok::Str(_) => format!("the string {}", self.text),
            _ => format!("\"{}\"", self.text),
        }
    }
}

pub(crate) fn tokenize(text: &str) -> Result<Vec<Spanned<'_>>, FilterError> {
    let mut lexer = Lexer {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        tokens: Vec::new(),
        offsets: None,
    };
    lexer.run()?;
    Ok(lexer.tokens)
}

/// For a string token as written (`"..."` or `r"..."`), the byte offset in that text where each
/// byte of its value comes from, then the offset of the closing quote. Lets an error in a
/// regular expression point at the character in the filter.
pub(crate) fn string_source_offsets(written: &str) -> Vec<usize> {
    let raw = written.starts_with(['r', 'R']);
    let mut lexer = Lexer {
        text: written,
        bytes: written.as_bytes(),
        pos: if raw { 2 } else { 1 },
        tokens: Vec::new(),
        offsets: Some(Vec::new()),
    };
    // The token was lexed once already, so this cannot fail; an error leaves a shorter map.
    let _ = lexer.string(0, raw);
    let mut offsets = lexer.offsets.unwrap_or_default();
    offsets.push(written.len().saturating_sub(1));
    offsets
}

struct Lexer<'t> {
    text: &'t str,
    bytes: &'t [u8],
    pos: usize,
    tokens: Vec<Spanned<'t>>,
    /// When set, `string` records where each byte of the value comes from.
    offsets: Option<Vec<usize>>,
}

/// Characters a field name or unparsed literal is made of: field names (`tcp.flags.syn`),
/// numbers, IPv4/IPv6 addresses with prefixes (`fe80::/10`), byte strings (`0a:0b`, `0a-0b`).
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'/' | b'-')
}

impl<'t> Lexer<'t> {
    fn peek(&self, ahead: usize) -> u8 {
        self.bytes.get(self.pos + ahead).copied().unwrap_or(0)
    }

    fn push(&mut self, tok: Tok<'t>, start: usize) {
        self.tokens.push(Spanned {
            tok,
            start,
            text: self.text.get(start..self.pos).unwrap_or(""),
        });
    }

    fn error(&self, byte_pos: usize, message: impl Into<String>) -> FilterError {
        FilterError::at_byte(self.text, byte_pos, message)
    }

    fn run(&mut self) -> Result<(), FilterError> {
        loop {
            while self.peek(0).is_ascii_whitespace() {
                self.pos += 1;
            }
            let start = self.pos;
            let c = self.peek(0);
            if self.pos >= self.bytes.len() {
                self.push(Tok::Eof, start);
                return Ok(());
            }
            let (two, three) = (
                self.bytes.get(start..start + 2).unwrap_or(&[]),
                self.bytes.get(start..start + 3).unwrap_or(&[]),
            );
            // Longest operators first, so `!==` is not read as `!=` `=`.
            let simple = match (three, two, c) {
                (b"===", _, _) => Some((Tok::Cmp(CmpOp::AllEq), 3)),
                (b"!==", _, _) => Some((Tok::Cmp(CmpOp::AnyNe), 3)),
                (_, b"==", _) => Some((Tok::Cmp(CmpOp::AnyEq), 2)),
                (_, b"!=", _) => Some((Tok::Cmp(CmpOp::AllNe), 2)),
                (_, b"~=", _) => Some((Tok::Cmp(CmpOp::AnyNe), 2)),
                (_, b">=", _) => Some((Tok::Cmp(CmpOp::Ge), 2)),
                (_, b"<=", _) => Some((Tok::Cmp(CmpOp::Le), 2)),
                (_, b"&&", _) => Some((Tok::And, 2)),
                (_, b"||", _) => Some((Tok::Or, 2)),
                (_, b"..", _) => Some((Tok::DotDot, 2)),
                (_, b"^^", _) => Some((Tok::Unsupported(XOR), 2)),
                (_, _, b'>') => Some((Tok::Cmp(CmpOp::Gt), 1)),
                (_, _, b'<') => Some((Tok::Cmp(CmpOp::Lt), 1)),
                (_, _, b'~') => Some((Tok::Cmp(CmpOp::Matches), 1)),
                (_, _, b'!') => Some((Tok::Not, 1)),
                (_, _, b'&') => Some((Tok::BitAnd, 1)),
                (_, _, b'(') => Some((Tok::LParen, 1)),
                (_, _, b')') => Some((Tok::RParen, 1)),
                (_, _, b'{') => Some((Tok::LBrace, 1)),
                (_, _, b'}') => Some((Tok::RBrace, 1)),
                (_, _, b',') => Some((Tok::Comma, 1)),
                (_, _, b'=') => Some((
                    Tok::Unsupported("\"=\" is not an operator: use \"==\" to compare"),
                    1,
                )),
                (_, _, b'|') => Some((
                    Tok::Unsupported("\"|\" is not an operator: use \"||\" or \"or\""),
                    1,
                )),
                (_, _, b'$') => Some((
                    Tok::Unsupported("field references (\"$\") are not supported"),
                    1,
                )),
                (_, _, b'@') => Some((
                    Tok::Unsupported("raw field values (\"@\") are not supported"),
                    1,
                )),
                (_, _, b'#') => Some((
                    Tok::Unsupported("layer selection (\"#\") is not supported"),
                    1,
                )),
                (_, _, b'+' | b'*' | b'%') => Some((
                    Tok::Unsupported("arithmetic (+ - * / %) is not supported"),
                    1,
                )),
                _ => None,
            };
            if let Some((tok, len)) = simple {
                self.pos += len;
                self.push(tok, start);
                continue;
            }
            match c {
                b'"' => {
                    self.pos += 1;
                    let s = self.string(start, false)?;
                    self.push(Tok::Str(s), start);
                }
                b'r' | b'R' if self.peek(1) == b'"' => {
                    self.pos += 2;
                    let s = self.string(start, true)?;
                    self.push(Tok::Str(s), start);
                }
                b'\'' => {
                    self.pos += 1;
                    let value = self.char_constant(start)?;
                    self.push(Tok::Char(value), start);
                }
                b'[' => {
                    self.pos += 1;
                    let inner_start = self.pos;
                    let Some(len) = self
                        .bytes
                        .get(inner_start..)
                        .and_then(|rest| rest.iter().position(|&b| b == b']'))
                    else {
                        return Err(
                            self.error(start, "the right bracket \"]\" of this slice is missing")
                        );
                    };
                    let inner = self.text.get(inner_start..inner_start + len).unwrap_or("");
                    self.pos = inner_start + len + 1;
                    self.push(Tok::Slice(inner), start);
                }
                b']' => return Err(self.error(start, "unexpected \"]\" without a matching \"[\"")),
                _ if is_word_byte(c) => {
                    while is_word_byte(self.peek(0))
                        && !(self.peek(0) == b'.' && self.peek(1) == b'.')
                    {
                        self.pos += 1;
                    }
                    let word = self.text.get(start..self.pos).unwrap_or("");
                    self.push(keyword(word).unwrap_or(Tok::Word(word)), start);
                }
                _ => {
                    let ch = self
                        .text
                        .get(start..)
                        .and_then(|s| s.chars().next())
                        .unwrap_or('?');
                    return Err(self.error(start, format!("unexpected character {ch:?}")));
                }
            }
        }
    }

    /// Reads a double-quoted string whose opening quote has been consumed.
    fn string(&mut self, start: usize, raw: bool) -> Result<Vec<u8>, FilterError> {
        let mut out = Vec::new();
        let mut step_start = self.pos;
        loop {
            // The bytes the previous step added come from where it started.
            if let Some(offsets) = &mut self.offsets {
                offsets.resize(out.len(), step_start);
            }
            step_start = self.pos;
            let escape_pos = self.pos;
            match self.bytes.get(self.pos).copied() {
                None => {
                    return Err(self.error(
                        start,
                        "unterminated string: the closing double quote is missing",
                    ))
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') if raw => {
                    // Raw strings keep backslashes; the escape only stops `\"` from closing the
                    // string (Wireshark's rule, as in Python).
                    out.push(b'\\');
                    self.pos += 1;
                    if let Some(next @ (b'"' | b'\\')) = self.bytes.get(self.pos).copied() {
                        out.push(next);
                        self.pos += 1;
                    }
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape(escape_pos, &mut out)?;
                }
                Some(b) => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
    }

    /// Decodes one escape sequence whose backslash (at `escape_pos`) has been consumed.
    fn escape(&mut self, escape_pos: usize, out: &mut Vec<u8>) -> Result<(), FilterError> {
        let c = self.peek(0);
        let simple = match c {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'\\' | b'"' | b'\'' => Some(c),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            self.pos += 1;
            return Ok(());
        }
        match c {
            b'0'..=b'7' => {
                let digits = self.take_while_max(3, |b| matches!(b, b'0'..=b'7'));
                let value = u32::from_str_radix(digits, 8).unwrap_or(u32::MAX);
                let byte = u8::try_from(value).map_err(|_| {
                    self.error(escape_pos, format!("\\{digits} is larger than 255 (\\377)"))
                })?;
                out.push(byte);
            }
            b'x' => {
                self.pos += 1;
                let digits = self.take_while_max(2, |b| b.is_ascii_hexdigit());
                let byte = u8::from_str_radix(digits, 16).map_err(|_| {
                    self.error(
                        escape_pos,
                        "\\x must be followed by one or two hexadecimal digits",
                    )
                })?;
                out.push(byte);
            }
            b'u' | b'U' => {
                self.pos += 1;
                let want = if c == b'u' { 4 } else { 8 };
                let digits = self.take_while_max(want, |b| b.is_ascii_hexdigit());
                let ch = (digits.len() == want)
                    .then(|| u32::from_str_radix(digits, 16).ok())
                    .flatten()
                    .and_then(char::from_u32)
                    .ok_or_else(|| {
                        self.error(
                            escape_pos,
                            format!(
                                "\\{} must be followed by {want} hexadecimal digits naming a Unicode character",
                                char::from(c)
                            ),
                        )
                    })?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            _ => {
                return Err(
                    match self.text.get(self.pos..).and_then(|s| s.chars().next()) {
                        Some(ch) => self.error(
                            escape_pos,
                            format!("\\{ch} is not a valid character escape sequence"),
                        ),
                        None => self.error(
                            escape_pos,
                            "unterminated string: a backslash ends the filter",
                        ),
                    },
                );
            }
        }
        Ok(())
    }

    fn take_while_max(&mut self, max: usize, pred: impl Fn(u8) -> bool) -> &'t str {
        let start = self.pos;
        while self.pos - start < max && pred(self.peek(0)) && self.pos < self.bytes.len() {
            self.pos += 1;
        }
        self.text.get(start..self.pos).unwrap_or("")
    }

    /// Reads a character constant (`'a'`, `'\x41'`) whose opening quote has been consumed.
    fn char_constant(&mut self, start: usize) -> Result<u8, FilterError> {
        let mut value = Vec::new();
        loop {
            let escape_pos = self.pos;
            match self.bytes.get(self.pos).copied() {
                None => {
                    return Err(self.error(
                        start,
                        "unterminated character constant: the closing single quote is missing",
                    ))
                }
                Some(b'\'') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape(escape_pos, &mut value)?;
                }
                Some(b) => {
                    value.push(b);
                    self.pos += 1;
                }
            }
        }
        match value.as_slice() {
            [byte] => Ok(*byte),
            [] => Err(self.error(start, "empty character constant ''")),
            _ => Err(self.error(
                start,
                format!(
                    "{} is too long to be a character constant (use double quotes for a string)",
                    self.text.get(start..self.pos).unwrap_or("")
                ),
            )),
        }
    }
}

const XOR: &str = "there is no \"xor\" (\"^^\") in Wireshark 4.0: write (a or b) and not (a and b)";

fn keyword(word: &str) -> Option<Tok<'static>> {
    Some(match word {
        "and" => Tok::And,
        "or" => Tok::Or,
        "not" => Tok::Not,
        "in" => Tok::In,
        "eq" | "any_eq" => Tok::Cmp(CmpOp::AnyEq),
        "ne" | "all_ne" => Tok::Cmp(CmpOp::AllNe),
        "all_eq" => Tok::Cmp(CmpOp::AllEq),
        "any_ne" => Tok::Cmp(CmpOp::AnyNe),
        "gt" => Tok::Cmp(CmpOp::Gt),
        "ge" => Tok::Cmp(CmpOp::Ge),
        "lt" => Tok::Cmp(CmpOp::Lt),
        "le" => Tok::Cmp(CmpOp::Le),
        "contains" => Tok::Cmp(CmpOp::Contains),
        "matches" => Tok::Cmp(CmpOp::Matches),
        "bitwise_and" => Tok::BitAnd,
        "xor" => Tok::Unsupported(XOR),
        _ => return None,
    })
}
