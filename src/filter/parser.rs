//! Recursive-descent parser from tokens to the compiled tree, with Wireshark 4.0's grammar:
//!
//! ```text
//! expr    := and ( ("or" | "||") and )*
//! and     := unary ( ("and" | "&&") unary )*          -- "and" binds tighter than "or"
//! unary   := ("not" | "!") unary | "(" expr ")" | test
//! test    := operand [ cmp-op value | ["not" | "!"] "in" set ]
//! operand := field [ "[" slice "]" ] [ ("&" | "bitwise_and") number ]
//! set     := "{" item ( [","] item )* "}"              -- item := value [ ".." value ]
//! ```
//!
//! Literals are typed here, against the field they are compared with, so evaluation never sees
//! text.

use super::eval::{Compare, InSet, Kind, Node, Operand, Rhs, SetItem, Slice, Transform};
use super::fields::{Field, FieldType};
use super::lexer::{CmpOp, Spanned, Tok};
use super::literal::{self, Lit};
use super::regex::Regex;
use super::FilterError;

/// Deeper nesting (parentheses, `not`) than this is refused, which bounds the parser's and the
/// evaluator's recursion whatever the input.
pub(crate) const MAX_DEPTH: usize = 256;

pub(crate) fn parse(text: &str, tokens: &[Spanned<'_>]) -> Result<Node, FilterError> {
    let mut parser = Parser {
        text,
        tokens,
        pos: 0,
        depth: 0,
    };
    if matches!(parser.peek(), Tok::Eof) {
        return Err(FilterError::at_char(text, 0, "the display filter is empty"));
    }
    let node = parser.expr()?;
    match parser.peek() {
        Tok::Eof => Ok(node),
        Tok::RParen => Err(parser.error_here("unexpected \")\" without a matching \"(\"")),
        _ => Err(parser.unexpected("\"and\", \"or\" or the end of the filter")),
    }
}

struct Parser<'a, 't> {
    text: &'a str,
    tokens: &'a [Spanned<'t>],
    pos: usize,
    depth: usize,
}

/// A value as written, before it is typed against a field.
enum RawValue<'t> {
    Word(&'t str),
    Str(Vec<u8>),
    Char(u8),
}

impl<'a, 't> Parser<'a, 't> {
    fn current(&self) -> Option<&'a Spanned<'t>> {
        self.tokens.get(self.pos).or_else(|| self.tokens.last())
    }

    fn peek(&self) -> &'a Tok<'t> {
        self.current().map_or(&Tok::Eof, |s| &s.tok)
    }

    fn peek_at(&self, ahead: usize) -> &'a Tok<'t> {
        self.tokens
            .get(self.pos + ahead)
            .map_or(&Tok::Eof, |s| &s.tok)
    }

    fn start(&self) -> usize {
        self.current().map_or(self.text.len(), |s| s.start)
    }

    fn advance(&mut self) -> &'a Spanned<'t> {
        let token = self.current();
        if self.pos < self.tokens.len().saturating_sub(1) {
            self.pos += 1;
        }
        // The token list always ends with Eof, so there is always a current token.
        token.unwrap_or(&EOF)
    }

    fn error_at(&self, byte_pos: usize, message: impl Into<String>) -> FilterError {
        FilterError::at_byte(self.text, byte_pos, message)
    }

    fn error_here(&self, message: impl Into<String>) -> FilterError {
        self.error_at(self.start(), message)
    }

    fn unexpected(&self, expected: &str) -> FilterError {
        let message = match self.current() {
            Some(Spanned {
                tok: Tok::Unsupported(message),
                ..
            }) => (*message).to_string(),
            Some(Spanned { tok: Tok::Eof, .. }) | None => {
                format!("unexpected end of the filter: expected {expected}")
            }
            Some(token) => format!("unexpected {}: expected {expected}", token.describe()),
        };
        self.error_here(message)
    }

    fn enter(&mut self) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_here(format!(
                "the filter is nested too deeply (more than {MAX_DEPTH} levels)"
            )));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Node, FilterError> {
        let mut terms = vec![self.and()?];
        while matches!(self.peek(), Tok::Or) {
            self.advance();
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Node::Or(terms.into_boxed_slice())
        })
    }

    fn and(&mut self) -> Result<Node, FilterError> {
        let mut factors = vec![self.unary()?];
        while matches!(self.peek(), Tok::And) {
            self.advance();
            factors.push(self.unary()?);
        }
        Ok(if factors.len() == 1 {
            factors.remove(0)
        } else {
            Node::And(factors.into_boxed_slice())
        })
    }

    fn unary(&mut self) -> Result<Node, FilterError> {
        self.enter()?;
        let node = match self.peek() {
            Tok::Not => {
                self.advance();
                Node::Not(Box::new(self.unary()?))
            }
            Tok::LParen => {
                let open = self.advance().start;
                let inner = self.expr()?;
                if !matches!(self.peek(), Tok::RParen) {
                    return Err(match self.peek() {
                        Tok::Eof => self.error_at(open, "this \"(\" is never closed"),
                        _ => self.unexpected("\")\""),
                    });
                }
                self.advance();
                inner
            }
            _ => self.test()?,
        };
        self.depth -= 1;
        Ok(node)
    }

    fn test(&mut self) -> Result<Node, FilterError> {
        let lhs_start = self.start();
        let lhs = self.operand_lhs()?;
        match self.peek() {
            Tok::Cmp(op) => {
                let op = *op;
                self.advance();
                self.comparison(lhs, lhs_start, op)
            }
            Tok::In => {
                self.advance();
                self.set(lhs, lhs_start)
            }
            Tok::Not if matches!(self.peek_at(1), Tok::In) => {
                self.advance();
                self.advance();
                Ok(Node::Not(Box::new(self.set(lhs, lhs_start)?)))
            }
            _ => Ok(Node::Exists(lhs)),
        }
    }

    /// The left side of a test: a field, maybe sliced or masked.
    fn operand_lhs(&mut self) -> Result<Operand, FilterError> {
        let start = self.start();
        let field = match self.peek() {
            Tok::Word(word) => {
                if matches!(self.peek_at(1), Tok::LParen) {
                    return Err(
                        self.error_here(format!("functions such as {word}() are not supported"))
                    );
                }
                match Field::from_name(word) {
                    Some(field) => field,
                    None => return Err(self.error_here(unknown_field_message(word))),
                }
            }
            Tok::Str(_) | Tok::Char(_) => {
                let shown = self.current().map(Spanned::describe).unwrap_or_default();
                return Err(self.error_here(format!(
                    "{shown} is a value, but a test must start with a field name (e.g. tcp.port == 3306)"
                )));
            }
            _ => return Err(self.unexpected("a field name, \"not\" or \"(\"")),
        };
        self.advance();
        self.operand_rest(field, start)
    }

    /// The optional slice and mask after a field name.
    fn operand_rest(&mut self, field: Field, start: usize) -> Result<Operand, FilterError> {
        let mut operand = Operand {
            field,
            kind: Kind::Bytes,
            transform: Transform::None,
        };
        operand.kind = match field.ty() {
            FieldType::Bool => Kind::Bool,
            FieldType::UInt => Kind::UInt,
            FieldType::Float => Kind::Time,
            FieldType::Ipv4 => Kind::Ipv4,
            FieldType::Ipv6 => Kind::Ipv6,
            FieldType::String => Kind::Str,
            // Protocol and None fields have no value; Bytes is a placeholder that no operator
            // reaches, because `check_operator` refuses them first.
            FieldType::Bytes | FieldType::Protocol | FieldType::None => Kind::Bytes,
        };
        if let Tok::Slice(inner) = self.peek() {
            let slice_start = self.start();
            if !matches!(
                field.ty(),
                FieldType::Bytes | FieldType::String | FieldType::Ipv4 | FieldType::Ipv6
            ) {
                return Err(self.error_at(
                    start,
                    format!(
                        "\"{}\" is {} and cannot be sliced into bytes (slices work on byte, string and address fields)",
                        field.name(),
                        with_article(field.ty().describe())
                    ),
                ));
            }
            let slice =
                parse_slice(inner).map_err(|message| self.error_at(slice_start + 1, message))?;
            self.advance();
            operand.transform = Transform::Slice(slice);
            operand.kind = Kind::Bytes;
        }
        if matches!(self.peek(), Tok::BitAnd) {
            let amp = self.start();
            if field.ty() != FieldType::UInt || operand.transform != Transform::None {
                return Err(self.error_at(
                    amp,
                    format!(
                        "\"&\" (bitwise and) only applies to unsigned integer fields, not to {}",
                        field.name()
                    ),
                ));
            }
            self.advance();
            let mask = match self.peek() {
                Tok::Word(word) => literal::uint(word, field).map_err(|m| self.error_here(m))?,
                Tok::Char(c) => u64::from(*c),
                _ => return Err(self.unexpected("a number after \"&\"")),
            };
            self.advance();
            operand.transform = Transform::Mask(mask);
        }
        Ok(operand)
    }

    fn comparison(
        &mut self,
        lhs: Operand,
        lhs_start: usize,
        op: CmpOp,
    ) -> Result<Node, FilterError> {
        check_operator(&lhs, op).map_err(|m| self.error_at(lhs_start, m))?;
        let value_start = self.start();
        if op == CmpOp::Matches {
            let Tok::Str(pattern) = self.peek() else {
                return Err(self.unexpected("a double-quoted regular expression after \"matches\""));
            };
            // The pattern went through string unescaping: map the offset in the pattern back to
            // the character of the filter it came from.
            let regex = Regex::new(pattern).map_err(|(offset, message)| {
                let written = self.current().map_or("", |t| t.text);
                let in_token = super::lexer::string_source_offsets(written)
                    .get(offset)
                    .copied()
                    .unwrap_or(0);
                self.error_at(
                    value_start + in_token,
                    format!("invalid regular expression: {message}"),
                )
            })?;
            self.advance();
            return Ok(Node::Compare(Box::new(Compare {
                lhs,
                op,
                rhs: Rhs::Regex(regex),
            })));
        }
        // A word naming a field makes this a field-to-field comparison.
        if let Tok::Word(word) = self.peek() {
            if let Some(rhs_field) = Field::from_name(word) {
                self.advance();
                let rhs = self.operand_rest(rhs_field, value_start)?;
                check_compatible(&lhs, &rhs).map_err(|m| self.error_at(value_start, m))?;
                return Ok(Node::Compare(Box::new(Compare {
                    lhs,
                    op,
                    rhs: Rhs::Field(rhs),
                })));
            }
        }
        let raw = self.raw_value(&format!("a value after \"{}\"", op.symbol()))?;
        let lit = typed_literal(&lhs, &raw).map_err(|m| self.error_at(value_start, m))?;
        self.advance();
        Ok(Node::Compare(Box::new(Compare {
            lhs,
            op,
            rhs: Rhs::Lit(lit),
        })))
    }

    fn raw_value(&self, expected: &str) -> Result<RawValue<'t>, FilterError> {
        match self.peek() {
            Tok::Word(word) => Ok(RawValue::Word(word)),
            Tok::Str(s) => Ok(RawValue::Str(s.clone())),
            Tok::Char(c) => Ok(RawValue::Char(*c)),
            Tok::Slice(_) => Err(self.error_here("a slice must follow a field name")),
            _ => Err(self.unexpected(expected)),
        }
    }

    fn set(&mut self, lhs: Operand, lhs_start: usize) -> Result<Node, FilterError> {
        if lhs.transform != Transform::None {
            return Err(self.error_at(
                lhs_start,
                "only a plain field can be tested for membership in a set (no slice or mask)",
            ));
        }
        check_operator(&lhs, CmpOp::AnyEq).map_err(|m| self.error_at(lhs_start, m))?;
        if !matches!(self.peek(), Tok::LBrace) {
            return Err(self.unexpected("\"{\" after \"in\""));
        }
        self.advance();
        let mut items = Vec::new();
        loop {
            items.push(self.set_item(&lhs)?);
            match self.peek() {
                Tok::RBrace => {
                    self.advance();
                    break;
                }
                Tok::Comma => {
                    self.advance();
                }
                // Whitespace-separated members are Wireshark 3.x syntax that 4.0 rejects; they
                // cannot be read any other way, so accept them.
                Tok::Word(_) | Tok::Str(_) | Tok::Char(_) => {}
                _ => return Err(self.unexpected("\",\" or \"}\" in the set")),
            }
        }
        Ok(Node::InSet(Box::new(InSet {
            field: lhs,
            items: items.into_boxed_slice(),
        })))
    }

    fn set_item(&mut self, lhs: &Operand) -> Result<SetItem, FilterError> {
        let low = self.set_value(lhs)?;
        if !matches!(self.peek(), Tok::DotDot) {
            return Ok(SetItem::One(low));
        }
        self.advance();
        let high = self.set_value(lhs)?;
        Ok(SetItem::Range(low, high))
    }

    fn set_value(&mut self, lhs: &Operand) -> Result<Lit, FilterError> {
        if let Tok::Word(word) = self.peek() {
            if Field::from_name(word).is_some() {
                return Err(self.error_here("fields inside a set are not supported; only values"));
            }
        }
        let raw = self.raw_value("a value in the set")?;
        let lit = typed_literal(lhs, &raw).map_err(|m| self.error_here(m))?;
        self.advance();
        Ok(lit)
    }
}

static EOF: Spanned<'static> = Spanned {
    tok: Tok::Eof,
    start: 0,
    text: "",
};

/// Which operators a field's type supports, with Wireshark's restrictions.
fn check_operator(lhs: &Operand, op: CmpOp) -> Result<(), String> {
    let name = lhs.field.name();
    match lhs.field.ty() {
        FieldType::Protocol => {
            return Err(format!(
                "\"{name}\" is a protocol: it can only be tested for presence (write just \"{name}\"); \
                 comparing a protocol's bytes is not supported"
            ))
        }
        FieldType::None => {
            return Err(format!(
                "\"{name}\" is a label without a value: it can only be tested for presence (write just \"{name}\")"
            ))
        }
        _ => {}
    }
    let textual = matches!(lhs.kind, Kind::Str | Kind::Bytes);
    if matches!(op, CmpOp::Contains | CmpOp::Matches) && !textual {
        return Err(format!(
            "{name} ({}) cannot be used with \"{}\", which needs a string or byte field",
            with_article(describe_kind(lhs.kind)),
            op.symbol()
        ));
    }
    Ok(())
}

fn describe_kind(kind: Kind) -> &'static str {
    match kind {
        Kind::Bool => "boolean",
        Kind::UInt => "unsigned integer",
        Kind::Time => "time offset",
        Kind::Ipv4 => "IPv4 address",
        Kind::Ipv6 => "IPv6 address",
        Kind::Str => "character string",
        Kind::Bytes => "byte sequence",
    }
}

fn with_article(noun: &str) -> String {
    let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u', 'I']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {noun}")
}

fn check_compatible(lhs: &Operand, rhs: &Operand) -> Result<(), String> {
    if matches!(rhs.field.ty(), FieldType::Protocol | FieldType::None) || lhs.kind != rhs.kind {
        return Err(format!(
            "{} and {} cannot be compared: they are not of compatible types ({} and {})",
            lhs.field.name(),
            rhs.field.name(),
            describe_kind(lhs.kind),
            match rhs.field.ty() {
                FieldType::Protocol | FieldType::None => rhs.field.ty().describe(),
                _ => describe_kind(rhs.kind),
            }
        ));
    }
    Ok(())
}

/// Types a literal against the field it is compared with.
fn typed_literal(lhs: &Operand, raw: &RawValue<'_>) -> Result<Lit, String> {
    let field = lhs.field;
    let result = match (lhs.kind, raw) {
        // A masked field compares its masked value: still an unsigned integer.
        (Kind::UInt, RawValue::Word(w)) => literal::uint(w, field).map(Lit::UInt),
        (Kind::UInt, RawValue::Char(c)) => {
            let value = u64::from(*c);
            if value > field.max_uint() {
                Err(format!("{value} is too big for {}, maximum {}", field.name(), field.max_uint()))
            } else {
                Ok(Lit::UInt(value))
            }
        }
        (Kind::Bool, RawValue::Word(w)) => literal::boolean(w, field, false).map(Lit::Bool),
        (Kind::Bool, RawValue::Str(s)) => literal::boolean(&String::from_utf8_lossy(s), field, true).map(Lit::Bool),
        (Kind::Bool, RawValue::Char(c)) => Ok(Lit::Bool(*c != 0)),
        (Kind::Time, RawValue::Word(w)) => literal::nanos(w, field).map(Lit::Nanos),
        (Kind::Ipv4, RawValue::Word(w)) => literal::ipv4(w).map(|(addr, mask)| Lit::Ipv4 { addr, mask }),
        (Kind::Ipv6, RawValue::Word(w)) => literal::ipv6(w).map(|(addr, mask)| Lit::Ipv6 { addr, mask }),
        (Kind::Str, RawValue::Word(w)) => Ok(Lit::Bytes(w.as_bytes().into())),
        (Kind::Str | Kind::Bytes, RawValue::Str(s)) => Ok(Lit::Bytes(s.as_slice().into())),
        (Kind::Str | Kind::Bytes, RawValue::Char(c)) => Ok(Lit::Bytes(Box::new([*c]))),
        (Kind::Bytes, RawValue::Word(w)) => literal::bytes(w).map(|b| Lit::Bytes(b.into_boxed_slice())),
        (kind, RawValue::Str(s)) => Err(format!(
            "{} is {}, so it cannot be compared with the string \"{}\" (write the value without quotes)",
            field.name(),
            with_article(describe_kind(kind)),
            String::from_utf8_lossy(s)
        )),
        (kind, RawValue::Char(_)) => Err(format!(
            "{} is {}, so it cannot be compared with a character constant",
            field.name(),
            with_article(describe_kind(kind))
        )),
    };
    result.map_err(|message| match raw {
        RawValue::Word(w) if literal::looks_like_field_name(w) => {
            let hint = Field::suggest(w)
                .map(|s| format!("; did you mean the field \"{s}\"?"))
                .unwrap_or_default();
            format!("{message} (\"{w}\" is not a known field either{hint})")
        }
        _ => message,
    })
}

/// The message for a name in field position that is not a field.
fn unknown_field_message(word: &str) -> String {
    let keywords = [
        "and", "or", "not", "in", "eq", "ne", "gt", "ge", "lt", "le", "contains", "matches",
    ];
    if let Some(keyword) = keywords.iter().find(|k| k.eq_ignore_ascii_case(word)) {
        return format!("\"{word}\" is not a valid field name (operators are lowercase: did you mean \"{keyword}\"?)");
    }
    if word.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == ':') {
        return format!(
            "\"{word}\" is a value, but a test must start with a field name (e.g. tcp.port == {word})"
        );
    }
    match Field::suggest(word) {
        Some(suggestion) => {
            format!("\"{word}\" is not a valid field name (did you mean \"{suggestion}\"?)")
        }
        None => format!("\"{word}\" is not a valid field name, or not one wirelag can filter on"),
    }
}

/// Parses the inside of `[...]`: `i:len`, `i-j` (inclusive end), `i`, `:len`, `i:`.
fn parse_slice(inner: &str) -> Result<Slice, String> {
    let text = inner.trim();
    if text.contains(',') {
        return Err(format!(
            "slices with several ranges (\"[{text}]\") are not supported"
        ));
    }
    let number = |s: &str| -> Result<i64, String> {
        let s = s.trim();
        let digits = s.strip_prefix('-').unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "\"{s}\" is not a valid offset in the slice \"[{text}]\""
            ));
        }
        s.parse::<i64>()
            .map_err(|_| format!("\"{s}\" is too large an offset"))
    };
    let length = |len: i64| -> Result<u64, String> {
        u64::try_from(len).ok().filter(|&l| l > 0).ok_or_else(|| {
            format!("the slice \"[{text}]\" is not valid: its length must be positive")
        })
    };
    if let Some((start, len)) = text.split_once(':') {
        let start = if start.trim().is_empty() {
            0
        } else {
            number(start)?
        };
        let len = if len.trim().is_empty() {
            None
        } else {
            Some(length(number(len)?)?)
        };
        return Ok(Slice { start, len });
    }
    // `i-j`; a leading minus is a negative start, not the range dash.
    let dash = text.get(1..).and_then(|rest| rest.find('-')).map(|i| i + 1);
    if let Some(dash) = dash {
        let (start, end) = (number(&text[..dash])?, number(&text[dash + 1..])?);
        if start < 0 || end < start {
            return Err(format!(
                "the slice \"[{text}]\" is not valid: the end must not come before the start"
            ));
        }
        return Ok(Slice {
            start,
            len: Some(length(end - start + 1)?),
        });
    }
    Ok(Slice {
        start: number(text)?,
        len: Some(1),
    })
}
