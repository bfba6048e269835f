//! `matches`: Wireshark's regular expressions (PCRE2 syntax), matched by the `regex` crate.
//!
//! Wireshark 4.0 compiles `matches` patterns with PCRE2, caseless, without UTF: a `.` is one
//! byte, any byte can be matched, and the search is unanchored. The `regex` crate matches in time
//! linear in the payload with bounded memory, but its syntax differs from PCRE2's in many small
//! ways (`$`, `\Z`, `\v`, `\h`, octal escapes, `\Q..\E`, nested classes and class set operators,
//! `{,n}`, group names...). So this module parses the pattern as PCRE2 syntax into a small tree
//! whose leaves are byte sets with the case flags already applied, and writes that tree back out
//! in a canonical subset of the crate's syntax: byte classes spelled `\xHH`, non-capturing
//! groups, alternation, repetition and a few assertions. No syntax difference can leak through;
//! what PCRE2 means that the crate cannot express is refused here, with its offset in the
//! pattern. There is no matching code here.
//!
//! Two PCRE2 assertions have no exact counterpart in the crate:
//! * `$` (not multiline) and `\Z` hold at the end *or before a newline that ends the subject*.
//!   They are written `(?:\n?\z)`, which consumes that newline: the same answer whenever only
//!   the end of the pattern, or something that must first consume a byte other than `\n`, can
//!   follow them. Anything else after them is refused.
//! * In multiline mode PCRE2's `^` does not hold after a newline that ends the subject (tshark:
//!   `(?m)^$` does not match `"a\n"`); the crate's `(?m:^)` does. The two agree whenever what
//!   follows `^` cannot match the empty string, so anything else is refused.

use std::fmt::Write as _;

/// Bound on the compiled program (`RegexBuilder::size_limit`): a hostile pattern such as
/// `(a{1000}){1000}` is an error, not a gigabyte of states.
const SIZE_LIMIT: usize = 1 << 20;
/// Bound on the lazy DFA's cache, per thread that matches (`RegexBuilder::dfa_size_limit`); when
/// it fills the crate clears it or falls back to a slower engine, memory stays put.
const DFA_SIZE_LIMIT: usize = 1 << 20;
/// Deepest group nesting accepted; bounds the parser's (and the writer's) recursion.
const MAX_GROUP_DEPTH: usize = 64;
/// PCRE2's largest repetition count ("number too big in {} quantifier" above it).
const MAX_REPEAT: u32 = 65535;

#[derive(Clone)]
pub(crate) struct Regex {
    compiled: regex::bytes::Regex,
    /// The pattern as written, for Debug output.
    source: String,
}

impl std::fmt::Debug for Regex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Regex({:?} as {:?})",
            self.source,
            self.compiled.as_str()
        )
    }
}

/// Why a pattern was refused: the byte offset in the pattern, and the message.
pub(crate) type RegexError = (usize, String);

impl Regex {
    /// Compiles a pattern (after the filter string's own escapes were processed).
    pub(crate) fn new(pattern: &[u8]) -> Result<Regex, RegexError> {
        let ast = parse(pattern)?;
        check_dollar(&ast, true)?;
        check_line_start(&ast, false)?;
        let mut translated = String::new();
        write_ast(&ast, &mut translated);
        let compiled = regex::bytes::RegexBuilder::new(&translated)
            .unicode(false)
            .size_limit(SIZE_LIMIT)
            .dfa_size_limit(DFA_SIZE_LIMIT)
            // The writer nests at most a few levels per group of the pattern.
            .nest_limit(u32::try_from(4 * MAX_GROUP_DEPTH + 16).unwrap_or(u32::MAX))
            .build()
            .map_err(|e| match e {
                regex::Error::CompiledTooBig(_) => (
                    0,
                    format!(
                        "the regular expression is too large (compiled, it exceeds {} KiB)",
                        SIZE_LIMIT / 1024
                    ),
                ),
                // The translation only writes syntax the crate accepts; this would be a bug
                // here, reported as a refusal rather than a panic.
                other => (0, format!("cannot be translated ({other})")),
            })?;
        Ok(Regex {
            compiled,
            source: String::from_utf8_lossy(pattern).into_owned(),
        })
    }

    /// Does the pattern match anywhere in `hay`? After a thread's first match the crate reuses
    /// its per-thread cache: no allocation per packet.
    pub(crate) fn is_match(&self, hay: &[u8]) -> bool {
        self.compiled.is_match(hay)
    }

    /// The pattern in the `regex` crate's syntax, as compiled.
    #[cfg(test)]
    pub(crate) fn translated(&self) -> &str {
        self.compiled.as_str()
    }
}

/// A set of bytes as a 256-bit map.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
struct ByteSet([u64; 4]);

impl std::fmt::Debug for ByteSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut class = String::new();
        write_set(self, &mut class);
        f.write_str(&class)
    }
}

impl ByteSet {
    fn of(bytes: &[u8]) -> ByteSet {
        let mut set = ByteSet::default();
        for &b in bytes {
            set.insert(b);
        }
        set
    }

    fn all() -> ByteSet {
        ByteSet([u64::MAX; 4])
    }

    fn insert(&mut self, b: u8) {
        if let Some(word) = self.0.get_mut(usize::from(b >> 6)) {
            *word |= 1 << (b & 63);
        }
    }

    fn remove(&mut self, b: u8) {
        if let Some(word) = self.0.get_mut(usize::from(b >> 6)) {
            *word &= !(1 << (b & 63));
        }
    }

    fn insert_range(&mut self, low: u8, high: u8) {
        for b in low..=high {
            self.insert(b);
        }
    }

    fn contains(&self, b: u8) -> bool {
        self.0
            .get(usize::from(b >> 6))
            .is_some_and(|word| word & (1 << (b & 63)) != 0)
    }

    fn union(&mut self, other: &ByteSet) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a |= b;
        }
    }

    fn negate(&mut self) {
        for word in &mut self.0 {
            *word = !*word;
        }
    }

    /// Adds the other ASCII case of every letter in the set (PCRE2's default tables fold ASCII
    /// only).
    fn fold_case(&mut self) {
        for b in b'a'..=b'z' {
            let upper = b.to_ascii_uppercase();
            if self.contains(b) || self.contains(upper) {
                self.insert(b);
                self.insert(upper);
            }
        }
    }

    /// The set as maximal runs `(low, high)`.
    fn ranges(&self) -> impl Iterator<Item = (u8, u8)> + '_ {
        let mut next = 0u16;
        std::iter::from_fn(move || {
            let low = (next..=255).find(|&b| self.contains(b as u8))?;
            let high = (low..=255)
                .take_while(|&b| self.contains(b as u8))
                .last()
                .unwrap_or(low);
            next = high + 1;
            Some((low as u8, high as u8))
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Assertion {
    /// `^` without multiline, `\A`, `\G` (Wireshark matches once, from offset 0).
    Start,
    /// `^` in multiline mode: at the start, or after a newline that does not end the subject.
    LineStart,
    /// `\z`.
    End,
    /// `$` without multiline, `\Z`: the end, or before a newline that ends the subject.
    EndOrFinalNewline,
    /// `$` in multiline mode: the end, or before any newline.
    LineEnd,
    WordBoundary,
    NotWordBoundary,
    /// `[[:<:]]`.
    WordStart,
    /// `[[:>:]]`.
    WordEnd,
}

#[derive(Clone, Debug)]
enum Ast {
    Empty,
    Bytes(ByteSet),
    /// An assertion and its offset in the pattern.
    Assert(Assertion, usize),
    Concat(Vec<Ast>),
    Alt(Vec<Ast>),
    Repeat {
        node: Box<Ast>,
        min: u32,
        max: Option<u32>,
    },
}

impl Ast {
    /// Can it match only the empty string, seeing the same at the end and before a final
    /// newline? (What may follow `$` and `\Z`.)
    fn is_inert_at_end(&self) -> bool {
        match self {
            Ast::Empty => true,
            Ast::Assert(a, _) => matches!(a, Assertion::EndOrFinalNewline | Assertion::LineEnd),
            Ast::Bytes(_) => false,
            Ast::Concat(items) | Ast::Alt(items) => items.iter().all(Ast::is_inert_at_end),
            Ast::Repeat { node, .. } => node.is_inert_at_end(),
        }
    }

    /// Does every match consume at least one byte?
    fn consumes(&self) -> bool {
        match self {
            Ast::Empty | Ast::Assert(..) => false,
            Ast::Bytes(_) => true,
            Ast::Concat(items) => items.iter().any(Ast::consumes),
            Ast::Alt(branches) => branches.iter().all(Ast::consumes),
            Ast::Repeat { node, min, .. } => *min > 0 && node.consumes(),
        }
    }
}

/// Refuses a `$`/`\Z` that something other than the end of the pattern can follow.
/// `rest_inert`: what follows this node can only match the empty string (see `is_inert_at_end`).
fn check_dollar(ast: &Ast, rest_inert: bool) -> Result<(), RegexError> {
    match ast {
        Ast::Assert(Assertion::EndOrFinalNewline, at) if !rest_inert => Err((
            *at,
            "\"$\" (or \"\\Z\") followed by more of the pattern is not supported: it also \
             matches before a final newline, which is only expressible at the end of the \
             pattern (use \\z, or (?m)$)"
                .into(),
        )),
        Ast::Empty | Ast::Bytes(_) | Ast::Assert(..) => Ok(()),
        Ast::Concat(items) => {
            for (i, item) in items.iter().enumerate() {
                let tail = items.get(i + 1..).unwrap_or(&[]);
                let safe = match first_byte_is_not_newline(tail) {
                    // Something that must first consume a byte other than the newline: no
                    // match either way.
                    Some(first) => first,
                    None => rest_inert,
                };
                check_dollar(item, safe)?;
            }
            Ok(())
        }
        Ast::Alt(branches) => branches
            .iter()
            .try_for_each(|b| check_dollar(b, rest_inert)),
        Ast::Repeat { node, max, .. } => {
            // A node that can repeat follows itself.
            let repeats = max.is_none_or(|m| m > 1);
            check_dollar(node, rest_inert && (!repeats || node.is_inert_at_end()))
        }
    }
}

/// Does every match of the sequence start by consuming a byte other than `\n`? `None` when the
/// sequence is inert (see `is_inert_at_end`), so the answer depends on what follows it;
/// `Some(false)` when unsure.
fn first_byte_is_not_newline(items: &[Ast]) -> Option<bool> {
    for item in items {
        let first = match item {
            Ast::Bytes(set) => Some(!set.contains(b'\n')),
            Ast::Concat(inner) => first_byte_is_not_newline(inner),
            Ast::Alt(branches) => {
                let mut firsts = branches
                    .iter()
                    .map(|b| first_byte_is_not_newline(std::slice::from_ref(b)));
                let head = firsts.next().flatten();
                if firsts.all(|f| f == head) {
                    head
                } else {
                    Some(false)
                }
            }
            Ast::Repeat { node, min, .. } => {
                first_byte_is_not_newline(std::slice::from_ref(node)).map(|f| f && *min > 0)
            }
            _ if item.is_inert_at_end() => None,
            _ => Some(false),
        };
        if first.is_some() {
            return first;
        }
    }
    None
}

/// Refuses a multiline `^` that can be followed by an empty match.
/// `rest_consumes`: every way through what follows this node consumes a byte. (Every path out of
/// a repetition or group ends in what follows it, so passing it down is exact enough.)
fn check_line_start(ast: &Ast, rest_consumes: bool) -> Result<(), RegexError> {
    match ast {
        Ast::Assert(Assertion::LineStart, at) if !rest_consumes => Err((
            *at,
            "in multiline mode, \"^\" followed by something that can match the empty string is \
             not supported (PCRE2's does not match after a newline that ends the subject)"
                .into(),
        )),
        Ast::Empty | Ast::Bytes(_) | Ast::Assert(..) => Ok(()),
        Ast::Concat(items) => {
            let mut consumes = rest_consumes;
            for item in items.iter().rev() {
                check_line_start(item, consumes)?;
                consumes = consumes || item.consumes();
            }
            Ok(())
        }
        Ast::Alt(branches) => branches
            .iter()
            .try_for_each(|b| check_line_start(b, rest_consumes)),
        Ast::Repeat { node, .. } => check_line_start(node, rest_consumes),
    }
}

/// Writes the tree in the `regex` crate's syntax (Unicode off, case-sensitive: the case flags
/// were applied to the byte sets).
fn write_ast(ast: &Ast, out: &mut String) {
    match ast {
        Ast::Empty => out.push_str("(?:)"),
        Ast::Bytes(set) => write_set(set, out),
        Ast::Assert(assertion, _) => out.push_str(match assertion {
            Assertion::Start => r"\A",
            Assertion::LineStart => "(?m:^)",
            Assertion::End => r"\z",
            Assertion::EndOrFinalNewline => r"(?:\n?\z)",
            Assertion::LineEnd => "(?m:$)",
            Assertion::WordBoundary => r"\b",
            Assertion::NotWordBoundary => r"\B",
            Assertion::WordStart => r"\b{start}",
            Assertion::WordEnd => r"\b{end}",
        }),
        Ast::Concat(items) => {
            if items.is_empty() {
                out.push_str("(?:)");
            }
            for item in items {
                write_ast(item, out);
            }
        }
        Ast::Alt(branches) => {
            out.push_str("(?:");
            for (i, branch) in branches.iter().enumerate() {
                if i > 0 {
                    out.push('|');
                }
                write_ast(branch, out);
            }
            out.push(')');
        }
        Ast::Repeat { node, min, max } => {
            out.push_str("(?:");
            write_ast(node, out);
            out.push(')');
            // Writing to a String cannot fail.
            let _ = match (*min, *max) {
                (0, None) => write!(out, "*"),
                (1, None) => write!(out, "+"),
                (0, Some(1)) => write!(out, "?"),
                (min, None) => write!(out, "{{{min},}}"),
                (min, Some(max)) if min == max => write!(out, "{{{min}}}"),
                (min, Some(max)) => write!(out, "{{{min},{max}}}"),
            };
        }
    }
}

fn write_set(set: &ByteSet, out: &mut String) {
    let mut ranges = set.ranges();
    match (ranges.next(), ranges.next()) {
        (None, _) => out.push_str(r"[^\x00-\xFF]"),
        (Some((low, high)), None) if low == high => {
            let _ = write!(out, r"\x{low:02X}");
        }
        _ => {
            out.push('[');
            for (low, high) in set.ranges() {
                let _ = if low == high {
                    write!(out, r"\x{low:02X}")
                } else {
                    write!(out, r"\x{low:02X}-\x{high:02X}")
                };
            }
            out.push(']');
        }
    }
}

#[derive(Clone, Copy)]
struct Flags {
    caseless: bool,
    dot_all: bool,
    multiline: bool,
}

fn parse(pattern: &[u8]) -> Result<Ast, RegexError> {
    let mut parser = RegexParser {
        pattern,
        pos: 0,
        depth: 0,
        groups: 0,
        quoting: false,
        // Wireshark compiles with PCRE2_CASELESS.
        flags: Flags {
            caseless: true,
            dot_all: false,
            multiline: false,
        },
    };
    let ast = parser.alternation()?;
    if parser.pos < pattern.len() {
        return Err((parser.pos, "unmatched closing parenthesis".into()));
    }
    Ok(ast)
}

struct RegexParser<'p> {
    pattern: &'p [u8],
    pos: usize,
    depth: usize,
    /// Capturing groups opened so far (PCRE2 reads `\12` as octal unless 12 groups precede it).
    groups: usize,
    /// Inside `\Q...\E`: everything is a literal.
    quoting: bool,
    flags: Flags,
}

type ParseResult<T> = Result<T, RegexError>;

fn fail<T>(at: usize, message: impl Into<String>) -> ParseResult<T> {
    Err((at, message.into()))
}

impl RegexParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.pattern.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.pattern.get(self.pos + ahead).copied()
    }

    fn at(&self, text: &[u8]) -> bool {
        self.pattern
            .get(self.pos..)
            .is_some_and(|rest| rest.starts_with(text))
    }

    fn alternation(&mut self) -> ParseResult<Ast> {
        let mut branches = vec![self.concat()?];
        while self.peek() == Some(b'|') {
            self.pos += 1;
            branches.push(self.concat()?);
        }
        Ok(if branches.len() == 1 {
            branches.pop().unwrap_or(Ast::Empty)
        } else {
            Ast::Alt(branches)
        })
    }

    fn concat(&mut self) -> ParseResult<Ast> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if !self.quoting && (c == b'|' || c == b')') {
                break;
            }
            let atom_start = self.pos;
            let Some(atom) = self.atom()? else { continue };
            let atom = self.quantified(atom, atom_start)?;
            items.push(atom);
        }
        Ok(Ast::Concat(items))
    }

    /// One atom, or `None` for a construct that matches nothing by itself (a flag change, a
    /// comment, `\K`, `\Q`, `\E`).
    fn atom(&mut self) -> ParseResult<Option<Ast>> {
        let start = self.pos;
        let Some(c) = self.peek() else {
            return Ok(Some(Ast::Empty));
        };
        if self.quoting {
            if self.at(b"\\E") {
                self.pos += 2;
                self.quoting = false;
                return Ok(None);
            }
            self.pos += 1;
            return Ok(Some(self.literal(c)));
        }
        if self.at(b"[[:<:]]") || self.at(b"[[:>:]]") {
            self.pos += 7;
            let a = if self.pattern.get(start + 3) == Some(&b'<') {
                Assertion::WordStart
            } else {
                Assertion::WordEnd
            };
            return Ok(Some(Ast::Assert(a, start)));
        }
        self.pos += 1;
        let ast = match c {
            b'.' => {
                let mut set = ByteSet::all();
                if !self.flags.dot_all {
                    set.remove(b'\n');
                }
                Ast::Bytes(set)
            }
            b'^' => Ast::Assert(
                if self.flags.multiline {
                    Assertion::LineStart
                } else {
                    Assertion::Start
                },
                start,
            ),
            b'$' => Ast::Assert(
                if self.flags.multiline {
                    Assertion::LineEnd
                } else {
                    Assertion::EndOrFinalNewline
                },
                start,
            ),
            b'[' => Ast::Bytes(self.class(start)?),
            b'(' => return self.group(start),
            b'\\' => return self.escape(start),
            b'*' | b'+' | b'?' => {
                return fail(start, "quantifier does not follow a repeatable item")
            }
            b'{' if self.parse_counts(start)?.is_some() => {
                return fail(start, "quantifier does not follow a repeatable item")
            }
            _ => self.literal(c),
        };
        Ok(Some(ast))
    }

    fn literal(&self, b: u8) -> Ast {
        let mut set = ByteSet::of(&[b]);
        if self.flags.caseless {
            set.fold_case();
        }
        Ast::Bytes(set)
    }

    fn group(&mut self, start: usize) -> ParseResult<Option<Ast>> {
        self.depth += 1;
        if self.depth > MAX_GROUP_DEPTH {
            return fail(start, "parentheses are nested too deeply");
        }
        let saved = self.flags;
        if self.peek() == Some(b'*') {
            return fail(
                start,
                "backtracking control verbs and option settings such as (*UTF) are not supported",
            );
        }
        if self.peek() == Some(b'?') {
            self.pos += 1;
            match self.peek() {
                // Names and branch resets only matter to captures, which `matches` ignores.
                Some(b':' | b'|') => self.pos += 1,
                Some(b'<') if !matches!(self.peek_at(1), Some(b'=' | b'!')) => {
                    self.skip_group_name(b'>')?;
                    self.groups += 1;
                }
                Some(b'P') if self.peek_at(1) == Some(b'<') => {
                    self.pos += 1;
                    self.skip_group_name(b'>')?;
                    self.groups += 1;
                }
                Some(b'\'') => {
                    self.skip_group_name(b'\'')?;
                    self.groups += 1;
                }
                Some(b'P') if self.peek_at(1) == Some(b'=') => {
                    return fail(start, "backreferences are not supported")
                }
                Some(b'=' | b'!' | b'<') => {
                    return fail(start, "lookahead and lookbehind are not supported")
                }
                Some(b'>') => return fail(start, "atomic groups are not supported"),
                Some(b'(') => return fail(start, "conditional groups are not supported"),
                Some(b'C') => return fail(start, "callouts are not supported"),
                Some(b'R' | b'&' | b'0'..=b'9') | Some(b'P') => {
                    return fail(start, "recursion and subroutine calls are not supported")
                }
                Some(b'+' | b'-') if self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) => {
                    return fail(start, "recursion and subroutine calls are not supported")
                }
                Some(b'#') => {
                    // A comment: skip to the closing parenthesis.
                    self.depth -= 1;
                    self.pos = start;
                    self.skip_comment()?;
                    return Ok(None);
                }
                _ => {
                    // Flag setting: `(?i)`, `(?-i)`, or scoped `(?i:...)`.
                    let scoped = self.flag_letters(start)?;
                    if !scoped {
                        // `(?i)` lasts to the end of the enclosing group, so leave it set.
                        self.depth -= 1;
                        return Ok(None);
                    }
                }
            }
        } else {
            self.groups += 1;
        }
        let inner = self.alternation()?;
        if self.peek() != Some(b')') {
            return fail(start, "missing closing parenthesis");
        }
        self.pos += 1;
        self.flags = saved;
        self.depth -= 1;
        Ok(Some(inner))
    }

    /// Skips a `(?#...)` comment at the current position. PCRE2's comment ends at the first `)`.
    fn skip_comment(&mut self) -> ParseResult<()> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            self.pos += 1;
            if c == b')' {
                return Ok(());
            }
        }
        fail(start, "missing ) at the end of a (?# comment")
    }

    /// Comments, and the `\E` that ends a `\Q` quote, may stand between an item and its
    /// quantifier.
    fn skip_transparent(&mut self) -> ParseResult<()> {
        loop {
            if self.quoting && self.at(b"\\E") {
                self.pos += 2;
                self.quoting = false;
            } else if !self.quoting && self.at(b"(?#") {
                self.skip_comment()?;
            } else {
                return Ok(());
            }
        }
    }

    fn skip_group_name(&mut self, close: u8) -> ParseResult<()> {
        let start = self.pos;
        self.pos += 1;
        // PCRE2: a name is word characters, not starting with a digit.
        if self.peek().is_some_and(|c| c.is_ascii_digit()) {
            return fail(start, "malformed group name");
        }
        while let Some(c) = self.peek() {
            self.pos += 1;
            if c == close && self.pos > start + 2 {
                return Ok(());
            }
            if !(c.is_ascii_alphanumeric() || c == b'_') {
                break;
            }
        }
        fail(start, "malformed group name")
    }

    /// Parses flag letters after `(?`. Returns true for the scoped form `(?i:`.
    fn flag_letters(&mut self, start: usize) -> ParseResult<bool> {
        let mut on = true;
        if self.peek() == Some(b'^') {
            // `(?^)` unsets i, m, n, s and x, including Wireshark's default caseless.
            self.pos += 1;
            self.flags = Flags {
                caseless: false,
                dot_all: false,
                multiline: false,
            };
        }
        loop {
            let Some(c) = self.peek() else {
                return fail(start, "missing closing parenthesis");
            };
            self.pos += 1;
            match c {
                b'-' if on => on = false,
                b'i' => self.flags.caseless = on,
                b's' => self.flags.dot_all = on,
                b'm' => self.flags.multiline = on,
                // No automatic captures, ungreedy, duplicate names: the same answer to "is there
                // a match?".
                b'n' | b'U' | b'J' => {}
                b')' => return Ok(false),
                b':' => return Ok(true),
                _ => {
                    return fail(
                        self.pos - 1,
                        format!(
                            "the group option \"{}\" is not supported (only i, m, s, n, U and J)",
                            char::from(c)
                        ),
                    )
                }
            }
        }
    }

    /// Parses `{n}`, `{n,}`, `{n,m}` starting at the `{` at `at`: returns (min, max, length).
    /// Anything else (`{,n}` too, in PCRE2 10.42) is not a quantifier and the `{` is a literal.
    fn parse_counts(&self, at: usize) -> ParseResult<Option<(u32, Option<u32>, usize)>> {
        let Some(rest) = self.pattern.get(at..) else {
            return Ok(None);
        };
        let Some(close) = rest.iter().position(|&b| b == b'}') else {
            return Ok(None);
        };
        let inner = rest.get(1..close).unwrap_or(&[]);
        let number = |s: &[u8]| -> Option<u32> {
            (!s.is_empty() && s.iter().all(u8::is_ascii_digit)).then(|| {
                s.iter().fold(0u32, |n, d| {
                    n.saturating_mul(10).saturating_add(u32::from(d - b'0'))
                })
            })
        };
        let (min, max) = match inner.iter().position(|&b| b == b',') {
            None => match number(inner) {
                Some(n) => (n, Some(n)),
                None => return Ok(None),
            },
            Some(comma) => {
                let low = inner.get(..comma).unwrap_or(&[]);
                let high = inner.get(comma + 1..).unwrap_or(&[]);
                match (number(low), high.is_empty(), number(high)) {
                    (Some(low), true, _) => (low, None),
                    (Some(low), false, Some(high)) => (low, Some(high)),
                    _ => return Ok(None),
                }
            }
        };
        if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT) {
            return fail(
                at,
                format!("number too big in {{}} quantifier (above {MAX_REPEAT})"),
            );
        }
        if max.is_some_and(|max| max < min) {
            return fail(at, "numbers out of order in {} quantifier");
        }
        Ok(Some((min, max, close + 1)))
    }

    /// The quantifier at the current position, if any: (min, max, length).
    fn quantifier_here(&self) -> ParseResult<Option<(u32, Option<u32>, usize)>> {
        if self.quoting {
            return Ok(None);
        }
        Ok(match self.peek() {
            Some(b'*') => Some((0, None, 1)),
            Some(b'+') => Some((1, None, 1)),
            Some(b'?') => Some((0, Some(1), 1)),
            Some(b'{') => self.parse_counts(self.pos)?,
            _ => None,
        })
    }

    /// The atom with its quantifier, if one follows.
    fn quantified(&mut self, atom: Ast, atom_start: usize) -> ParseResult<Ast> {
        self.skip_transparent()?;
        let Some((min, max, len)) = self.quantifier_here()? else {
            return Ok(atom);
        };
        if matches!(atom, Ast::Assert(..)) {
            return fail(atom_start, "an anchor or word boundary cannot be repeated");
        }
        self.pos += len;
        match self.peek() {
            // Lazy: same answer to "is there a match?".
            Some(b'?') => self.pos += 1,
            Some(b'+') => return fail(self.pos, "possessive quantifiers are not supported"),
            _ => {}
        }
        self.skip_transparent()?;
        // PCRE's handling of stacked quantifiers (`a**`, `a{2}*`) is irregular; refuse them.
        if self.quantifier_here()?.is_some() {
            return fail(
                self.pos,
                "a quantifier cannot follow another quantifier (use a group)",
            );
        }
        Ok(Ast::Repeat {
            node: Box::new(atom),
            min,
            max,
        })
    }

    /// An escape outside a class, its backslash at `start`.
    fn escape(&mut self, start: usize) -> ParseResult<Option<Ast>> {
        let Some(c) = self.peek() else {
            return fail(start, "the pattern ends with a backslash");
        };
        self.pos += 1;
        let assertion = match c {
            b'A' | b'G' => Some(Assertion::Start),
            b'z' => Some(Assertion::End),
            b'Z' => Some(Assertion::EndOrFinalNewline),
            b'b' => Some(Assertion::WordBoundary),
            b'B' => Some(Assertion::NotWordBoundary),
            _ => None,
        };
        if let Some(a) = assertion {
            return Ok(Some(Ast::Assert(a, start)));
        }
        match c {
            // `\K` only moves the reported start of the match.
            b'K' | b'E' => return Ok(None),
            b'Q' => {
                self.quoting = true;
                return Ok(None);
            }
            b'R' => {
                // Any newline sequence; CRLF is tried first but either way is a match.
                return Ok(Some(Ast::Alt(vec![
                    Ast::Concat(vec![
                        Ast::Bytes(ByteSet::of(b"\r")),
                        Ast::Bytes(ByteSet::of(b"\n")),
                    ]),
                    Ast::Bytes(ByteSet::of(b"\n\x0b\x0c\r\x85")),
                ])));
            }
            b'N' if self.peek() == Some(b'{') => {
                return fail(start, "\\N{...} (a Unicode character) is not supported")
            }
            b'N' => {
                let mut set = ByteSet::all();
                set.remove(b'\n');
                return Ok(Some(Ast::Bytes(set)));
            }
            b'C' => return Ok(Some(Ast::Bytes(ByteSet::all()))),
            b'1'..=b'9' => {
                let b = self.numbered_escape(c, start)?;
                return Ok(Some(self.literal(b)));
            }
            b'g' | b'k' => {
                return fail(
                    start,
                    "backreferences and subroutine calls are not supported",
                )
            }
            _ => {}
        }
        Ok(Some(Ast::Bytes(self.escape_set(c, start)?)))
    }

    /// `\1`..`\9` and longer numbers outside a class: PCRE2 takes a number below 10, one
    /// starting with 8 or 9, or one not above the count of groups so far as a backreference, and
    /// anything else as up to three octal digits.
    fn numbered_escape(&mut self, first: u8, start: usize) -> ParseResult<u8> {
        let digits_start = self.pos - 1;
        let digits: Vec<u8> = self
            .pattern
            .get(digits_start..)
            .unwrap_or(&[])
            .iter()
            .take_while(|d| d.is_ascii_digit())
            .copied()
            .collect();
        let number = digits.iter().fold(0usize, |n, d| {
            n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
        });
        if number < 10 || matches!(first, b'8' | b'9') || number <= self.groups {
            return fail(start, "backreferences are not supported");
        }
        self.pos = digits_start;
        self.octal_digits(start, 3)
    }

    /// Up to `max` octal digits at the current position, as one byte.
    fn octal_digits(&mut self, start: usize, max: usize) -> ParseResult<u8> {
        let mut value = 0u32;
        for _ in 0..max {
            match self.peek() {
                Some(d @ b'0'..=b'7') => {
                    value = value * 8 + u32::from(d - b'0');
                    self.pos += 1;
                }
                _ => break,
            }
        }
        u8::try_from(value).or_else(|_| {
            fail(
                start,
                "octal values above \\377 are not supported (the match is byte by byte)",
            )
        })
    }

    /// An escape that stands for a set of bytes (usable inside and outside classes).
    fn escape_set(&mut self, c: u8, start: usize) -> ParseResult<ByteSet> {
        let mut set = match c {
            b'd' | b'D' => ByteSet::of(b"0123456789"),
            b'w' | b'W' => {
                let mut set = ByteSet::of(b"_");
                set.insert_range(b'a', b'z');
                set.insert_range(b'A', b'Z');
                set.insert_range(b'0', b'9');
                set
            }
            b's' | b'S' => ByteSet::of(b" \t\n\x0b\x0c\r"),
            // Horizontal and vertical white space, as PCRE2 without UTF defines them.
            b'h' | b'H' => ByteSet::of(b" \t\xa0"),
            b'v' | b'V' => ByteSet::of(b"\n\x0b\x0c\r\x85"),
            _ => {
                let b = self.escaped_byte(c, start)?;
                let mut set = ByteSet::of(&[b]);
                if self.flags.caseless {
                    set.fold_case();
                }
                return Ok(set);
            }
        };
        if c.is_ascii_uppercase() {
            set.negate();
        }
        Ok(set)
    }

    fn escaped_byte(&mut self, c: u8, start: usize) -> ParseResult<u8> {
        Ok(match c {
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'f' => 0x0c,
            b'a' => 0x07,
            b'e' => 0x1b,
            b'0' => self.octal_digits(start, 2)?,
            b'o' => {
                if self.peek() != Some(b'{') {
                    return fail(start, "\\o must be followed by {octal digits}");
                }
                self.pos += 1;
                let digits_start = self.pos;
                let value = self.octal_digits(start, 3)?;
                if self.pos == digits_start || self.peek() != Some(b'}') {
                    return fail(start, "malformed \\o{...} escape");
                }
                self.pos += 1;
                value
            }
            b'x' => {
                let braced = self.peek() == Some(b'{');
                if braced {
                    self.pos += 1;
                }
                let digits_start = self.pos;
                while self.peek().is_some_and(|d| d.is_ascii_hexdigit())
                    && (braced || self.pos - digits_start < 2)
                {
                    self.pos += 1;
                }
                let digits = self.pattern.get(digits_start..self.pos).unwrap_or(&[]);
                if braced {
                    if self.peek() != Some(b'}') || digits.is_empty() {
                        return fail(start, "malformed \\x{...} escape");
                    }
                    self.pos += 1;
                }
                // No digits: PCRE2 reads `\x` as NUL.
                let value = digits.iter().try_fold(0u8, |n, d| {
                    let digit = char::from(*d)
                        .to_digit(16)
                        .and_then(|d| u8::try_from(d).ok());
                    n.checked_mul(16)?.checked_add(digit?)
                });
                match value {
                    Some(value) => value,
                    None => {
                        return fail(
                            start,
                            "characters above \\xff are not supported (the match is byte by byte)",
                        )
                    }
                }
            }
            b'c' => match self.peek() {
                Some(x) if (0x20..0x7f).contains(&x) => {
                    self.pos += 1;
                    x.to_ascii_uppercase() ^ 0x40
                }
                _ => return fail(start, "\\c must be followed by a printable ASCII character"),
            },
            b'p' | b'P' | b'X' => {
                return fail(
                    start,
                    "Unicode properties are not supported (the match is byte by byte)",
                )
            }
            _ if c.is_ascii_alphanumeric() => {
                return fail(
                    start,
                    format!("the escape \\{} is not supported", char::from(c)),
                )
            }
            // Any other escaped character stands for itself (`\.`, `\\`, `\(`...).
            _ => c,
        })
    }

    /// One escape inside a class, its backslash at `start` already consumed: a set (`\d`) or
    /// one byte.
    fn class_escape(&mut self, start: usize) -> ParseResult<ClassItem> {
        let Some(e) = self.peek() else {
            return fail(start, "the pattern ends with a backslash");
        };
        self.pos += 1;
        Ok(match e {
            b'd' | b'D' | b'w' | b'W' | b's' | b'S' | b'h' | b'H' | b'v' | b'V' => {
                ClassItem::Set(self.escape_set(e, start)?)
            }
            b'b' => ClassItem::Byte(0x08),
            // In a class a number is octal.
            b'1'..=b'7' => {
                self.pos -= 1;
                ClassItem::Byte(self.octal_digits(start, 3)?)
            }
            b'Q' | b'E' => {
                return fail(start, "\\Q...\\E inside a character class is not supported")
            }
            _ => ClassItem::Byte(self.escaped_byte(e, start)?),
        })
    }

    fn class(&mut self, start: usize) -> ParseResult<ByteSet> {
        let mut set = ByteSet::default();
        let negated = self.peek() == Some(b'^');
        if negated {
            self.pos += 1;
        }
        let mut first = true;
        loop {
            let Some(c) = self.peek() else {
                return fail(start, "missing terminating ] for character class");
            };
            if c == b']' && !first {
                self.pos += 1;
                break;
            }
            first = false;
            let item_start = self.pos;
            self.pos += 1;
            let low = match c {
                b'[' if matches!(self.peek(), Some(b':' | b'.' | b'=')) => {
                    ClassItem::Set(self.posix_class(item_start)?)
                }
                b'\\' => self.class_escape(item_start)?,
                _ => ClassItem::Byte(c),
            };
            // A range `a-z`, unless the dash is last (`[a-]` is a literal dash).
            let is_range = self.peek() == Some(b'-') && self.peek_at(1).is_some_and(|n| n != b']');
            match (low, is_range) {
                (ClassItem::Set(s), false) => set.union(&s),
                (ClassItem::Byte(b), false) => set.insert(b),
                (ClassItem::Set(_), true) => {
                    // PCRE2 refuses what Perl only warns about.
                    return fail(item_start, "invalid range in character class");
                }
                (ClassItem::Byte(low), true) => {
                    self.pos += 1;
                    let high_start = self.pos;
                    let Some(h) = self.peek() else {
                        return fail(start, "missing terminating ] for character class");
                    };
                    self.pos += 1;
                    let high = match h {
                        b'[' if matches!(self.peek(), Some(b':' | b'.' | b'=')) => {
                            return fail(high_start, "invalid range in character class")
                        }
                        b'\\' => match self.class_escape(high_start)? {
                            ClassItem::Byte(b) => b,
                            ClassItem::Set(_) => {
                                return fail(high_start, "invalid range in character class")
                            }
                        },
                        _ => h,
                    };
                    if high < low {
                        return fail(item_start, "range out of order in character class");
                    }
                    set.insert_range(low, high);
                }
            }
        }
        if self.flags.caseless {
            set.fold_case();
        }
        if negated {
            set.negate();
        }
        Ok(set)
    }

    /// A POSIX class such as `[:alpha:]` or `[:^digit:]` whose `[` at `start` was consumed.
    fn posix_class(&mut self, start: usize) -> ParseResult<ByteSet> {
        let kind = self.peek();
        let rest = self.pattern.get(self.pos..).unwrap_or(&[]);
        let end = match kind {
            Some(k @ (b':' | b'.' | b'=')) => rest.windows(2).position(|w| w == [k, b']']),
            _ => None,
        };
        let Some(end) = end else {
            // No closing `:]`: the `[` is a literal, as in PCRE2.
            return Ok(ByteSet::of(b"["));
        };
        if kind != Some(b':') {
            return fail(start, "POSIX collating elements are not supported");
        }
        let name = rest.get(1..end).unwrap_or(&[]);
        let (negated, name) = match name.strip_prefix(b"^") {
            Some(name) => (true, name),
            None => (false, name),
        };
        let Some(mut set) = posix_set(name) else {
            return fail(
                start,
                format!("unknown POSIX class [:{}:]", String::from_utf8_lossy(name)),
            );
        };
        if negated {
            set.negate();
        }
        self.pos += end + 2;
        Ok(set)
    }
}

#[derive(Clone, Copy)]
enum ClassItem {
    Byte(u8),
    Set(ByteSet),
}

fn posix_set(name: &[u8]) -> Option<ByteSet> {
    let test: fn(&u8) -> bool = match name {
        b"alpha" => u8::is_ascii_alphabetic,
        b"digit" => u8::is_ascii_digit,
        b"alnum" => u8::is_ascii_alphanumeric,
        b"upper" => u8::is_ascii_uppercase,
        b"lower" => u8::is_ascii_lowercase,
        b"space" => |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'),
        b"punct" => u8::is_ascii_punctuation,
        b"xdigit" => u8::is_ascii_hexdigit,
        b"word" => |b: &u8| b.is_ascii_alphanumeric() || *b == b'_',
        b"blank" => |b: &u8| matches!(b, b' ' | b'\t'),
        b"cntrl" => u8::is_ascii_control,
        b"print" => |b: &u8| (0x20..0x7f).contains(b),
        b"graph" => u8::is_ascii_graphic,
        b"ascii" => u8::is_ascii,
        _ => return None,
    };
    let mut set = ByteSet::default();
    for b in 0..=255u8 {
        if test(&b) {
            set.insert(b);
        }
    }
    Some(set)
}

#[cfg(test)]
#[path = "regex_tests.rs"]
mod tests;
