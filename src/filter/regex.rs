//! A small regular-expression engine for `matches`, covering the common part of PCRE2 syntax
//! that Wireshark uses.
//!
//! Semantics follow Wireshark 4.0: case-insensitive by default (`(?-i)` turns that off),
//! byte-oriented (a `.` is one byte), unanchored search. Matching is a Pike VM, so it runs in
//! time linear in the payload whatever the pattern, and it keeps its state in fixed arrays on
//! the stack: no allocation per packet. Anything outside the subset (backreferences,
//! lookaround, possessive quantifiers, Unicode properties) is refused at parse time.

/// Program size limit; it also bounds the per-match state kept on the stack.
const MAX_INSTS: usize = 1024;
const SET_WORDS: usize = MAX_INSTS / 64 + 1;
/// Each instruction expanded while following jumps pushes at most two successors, so the
/// pending stack never exceeds twice the program size.
const STACK_SIZE: usize = 2 * MAX_INSTS + 2;

#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Regex {
    insts: Box<[Inst]>,
    /// The pattern as written, for Debug output.
    source: String,
}

impl std::fmt::Debug for Regex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Regex({:?}, {} instructions)",
            self.source,
            self.insts.len()
        )
    }
}

/// A set of bytes as a 256-bit map.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
struct ByteSet([u64; 4]);

impl ByteSet {
    fn insert(&mut self, b: u8) {
        if let Some(word) = self.0.get_mut(usize::from(b >> 6)) {
            *word |= 1 << (b & 63);
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

    /// Adds the other ASCII case of every letter in the set.
    fn fold_case(&mut self) {
        for b in b'a'..=b'z' {
            let upper = b.to_ascii_uppercase();
            if self.contains(b) || self.contains(upper) {
                self.insert(b);
                self.insert(upper);
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Assertion {
    /// `^` without multiline, `\A`.
    Start,
    /// `^` in multiline mode.
    LineStart,
    /// `\z`.
    End,
    /// `$` without multiline, `\Z`: the end, or before a newline that ends the subject.
    EndOrFinalNewline,
    /// `$` in multiline mode.
    LineEnd,
    WordBoundary,
    NotWordBoundary,
}

impl Assertion {
    fn holds(self, hay: &[u8], pos: usize) -> bool {
        let before = pos.checked_sub(1).and_then(|i| hay.get(i)).copied();
        let after = hay.get(pos).copied();
        match self {
            Assertion::Start => pos == 0,
            Assertion::LineStart => pos == 0 || before == Some(b'\n'),
            Assertion::End => pos == hay.len(),
            Assertion::EndOrFinalNewline => {
                pos == hay.len() || (pos + 1 == hay.len() && after == Some(b'\n'))
            }
            Assertion::LineEnd => pos == hay.len() || after == Some(b'\n'),
            Assertion::WordBoundary | Assertion::NotWordBoundary => {
                let is_word =
                    |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
                let boundary = is_word(before) != is_word(after);
                boundary == (self == Assertion::WordBoundary)
            }
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
enum Inst {
    Bytes(ByteSet),
    Split(u16, u16),
    Jmp(u16),
    Assert(Assertion),
    Match,
}

#[derive(Clone, Debug)]
enum Ast {
    Empty,
    Bytes(ByteSetDebug),
    Assert(Assertion),
    Concat(Vec<Ast>),
    Alt(Vec<Ast>),
    Repeat {
        node: Box<Ast>,
        min: u32,
        max: Option<u32>,
    },
}

/// `ByteSet` wrapper so the AST can derive Debug without printing 256 bits.
#[derive(Clone, Copy)]
struct ByteSetDebug(ByteSet);

impl std::fmt::Debug for ByteSetDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ByteSet")
    }
}

#[derive(Clone, Copy)]
struct Flags {
    caseless: bool,
    dot_all: bool,
    multiline: bool,
}

/// Deepest group nesting accepted; bounds the parser's recursion.
const MAX_GROUP_DEPTH: usize = 64;
/// Largest counted repetition, as in PCRE2 (which allows 65535; the program limit is the real
/// bound).
const MAX_REPEAT: u32 = 1000;

impl Regex {
    /// Compiles a pattern (after the filter string's own escapes were processed).
    pub(crate) fn new(pattern: &[u8]) -> Result<Regex, String> {
        Regex::compile(pattern).map_err(|(offset, message)| {
            if pattern.len() > 1 {
                format!("{message} (at byte {offset} of the pattern)")
            } else {
                message
            }
        })
    }

    fn compile(pattern: &[u8]) -> Result<Regex, (usize, String)> {
        let mut parser = RegexParser {
            pattern,
            pos: 0,
            depth: 0,
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
        let mut insts = Vec::new();
        compile(&ast, &mut insts).map_err(|m| (0, m))?;
        insts.push(Inst::Match);
        if insts.len() > MAX_INSTS {
            return Err((0, "the regular expression is too large".into()));
        }
        Ok(Regex {
            insts: insts.into_boxed_slice(),
            source: String::from_utf8_lossy(pattern).into_owned(),
        })
    }

    /// Does the pattern match anywhere in `hay`?
    pub(crate) fn is_match(&self, hay: &[u8]) -> bool {
        let mut current = ThreadList::new();
        let mut next = ThreadList::new();
        let mut stack = [0u16; STACK_SIZE];
        for pos in 0..=hay.len() {
            // Unanchored search: a new thread starts at every position.
            if self.add_thread(&mut current, &mut stack, 0, hay, pos) {
                return true;
            }
            if current.len == 0 {
                continue;
            }
            let byte = hay.get(pos).copied();
            for &pc in current.dense.get(..current.len).unwrap_or(&[]) {
                let pc = usize::from(pc);
                if let (Some(Inst::Bytes(set)), Some(b)) = (self.insts.get(pc), byte) {
                    if set.contains(b)
                        && self.add_thread(&mut next, &mut stack, pc + 1, hay, pos + 1)
                    {
                        return true;
                    }
                }
            }
            std::mem::swap(&mut current, &mut next);
            next.clear();
        }
        false
    }

    /// Adds `pc` and everything reachable from it without consuming input. Returns true when
    /// that reaches `Match`.
    fn add_thread(
        &self,
        list: &mut ThreadList,
        stack: &mut [u16; STACK_SIZE],
        pc: usize,
        hay: &[u8],
        pos: usize,
    ) -> bool {
        let mut top = 0;
        let push = |stack: &mut [u16; STACK_SIZE], top: &mut usize, pc: usize| {
            if let (Some(slot), Ok(pc)) = (stack.get_mut(*top), u16::try_from(pc)) {
                *slot = pc;
                *top += 1;
            }
        };
        push(stack, &mut top, pc);
        while top > 0 {
            top -= 1;
            let pc = usize::from(stack.get(top).copied().unwrap_or(0));
            if !list.insert(pc) {
                continue;
            }
            match self.insts.get(pc) {
                Some(Inst::Match) => return true,
                Some(Inst::Jmp(target)) => push(stack, &mut top, usize::from(*target)),
                Some(Inst::Split(first, second)) => {
                    // Order does not matter: we only ask whether some thread matches.
                    push(stack, &mut top, usize::from(*second));
                    push(stack, &mut top, usize::from(*first));
                }
                Some(Inst::Assert(assertion)) => {
                    if assertion.holds(hay, pos) {
                        push(stack, &mut top, pc + 1);
                    }
                }
                Some(Inst::Bytes(_)) | None => {}
            }
        }
        false
    }
}

/// Sparse set of program counters, in insertion order.
struct ThreadList {
    dense: [u16; MAX_INSTS + 1],
    member: [u64; SET_WORDS],
    len: usize,
}

impl ThreadList {
    fn new() -> ThreadList {
        ThreadList {
            dense: [0; MAX_INSTS + 1],
            member: [0; SET_WORDS],
            len: 0,
        }
    }

    fn insert(&mut self, pc: usize) -> bool {
        let (Some(word), Ok(pc16)) = (self.member.get_mut(pc / 64), u16::try_from(pc)) else {
            return false;
        };
        let bit = 1u64 << (pc % 64);
        if *word & bit != 0 {
            return false;
        }
        *word |= bit;
        if let Some(slot) = self.dense.get_mut(self.len) {
            *slot = pc16;
            self.len += 1;
        }
        true
    }

    fn clear(&mut self) {
        self.member = [0; SET_WORDS];
        self.len = 0;
    }
}

fn compile(ast: &Ast, out: &mut Vec<Inst>) -> Result<(), String> {
    // Checked as we go so a pattern like `(a{1000}){1000}` fails fast instead of building a
    // million instructions first.
    if out.len() > MAX_INSTS {
        return Err("the regular expression is too large".into());
    }
    let here = |out: &Vec<Inst>| {
        u16::try_from(out.len()).map_err(|_| "the regular expression is too large".to_string())
    };
    match ast {
        Ast::Empty => {}
        Ast::Bytes(set) => out.push(Inst::Bytes(set.0)),
        Ast::Assert(a) => out.push(Inst::Assert(*a)),
        Ast::Concat(items) => {
            for item in items {
                compile(item, out)?;
            }
        }
        Ast::Alt(branches) => {
            // split L1, next; L1: branch; jmp end; next: split ...
            let mut jumps = Vec::new();
            for (i, branch) in branches.iter().enumerate() {
                if i + 1 < branches.len() {
                    let split_at = out.len();
                    out.push(Inst::Split(0, 0));
                    compile(branch, out)?;
                    jumps.push(out.len());
                    out.push(Inst::Jmp(0));
                    let next = here(out)?;
                    if let Some(inst) = out.get_mut(split_at) {
                        *inst = Inst::Split(u16::try_from(split_at + 1).unwrap_or(u16::MAX), next);
                    }
                } else {
                    compile(branch, out)?;
                }
            }
            let end = here(out)?;
            for j in jumps {
                if let Some(inst) = out.get_mut(j) {
                    *inst = Inst::Jmp(end);
                }
            }
        }
        Ast::Repeat { node, min, max } => {
            for _ in 0..*min {
                compile(node, out)?;
                if out.len() > MAX_INSTS {
                    return Err("the regular expression is too large".into());
                }
            }
            match max {
                None => {
                    // loop: split body, end; body; jmp loop
                    let loop_at = out.len();
                    out.push(Inst::Split(0, 0));
                    compile(node, out)?;
                    out.push(Inst::Jmp(u16::try_from(loop_at).unwrap_or(u16::MAX)));
                    let end = here(out)?;
                    if let Some(inst) = out.get_mut(loop_at) {
                        *inst = Inst::Split(u16::try_from(loop_at + 1).unwrap_or(u16::MAX), end);
                    }
                }
                Some(max) => {
                    // Each optional copy: split body, end.
                    let mut splits = Vec::new();
                    for _ in *min..*max {
                        splits.push(out.len());
                        out.push(Inst::Split(0, 0));
                        compile(node, out)?;
                        if out.len() > MAX_INSTS {
                            return Err("the regular expression is too large".into());
                        }
                    }
                    let end = here(out)?;
                    for s in splits {
                        if let Some(inst) = out.get_mut(s) {
                            *inst = Inst::Split(u16::try_from(s + 1).unwrap_or(u16::MAX), end);
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

struct RegexParser<'p> {
    pattern: &'p [u8],
    pos: usize,
    depth: usize,
    flags: Flags,
}

type ParseResult<T> = Result<T, (usize, String)>;

impl RegexParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.pattern.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.pattern.get(self.pos + ahead).copied()
    }

    #[allow(clippy::unused_self)] // reads as part of the parser's vocabulary: `self.fail(...)`
    fn fail<T>(&self, at: usize, message: impl Into<String>) -> ParseResult<T> {
        Err((at, message.into()))
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
            if c == b'|' || c == b')' {
                break;
            }
            let atom_start = self.pos;
            let Some(atom) = self.atom()? else { continue };
            let atom = self.quantified(atom, atom_start)?;
            items.push(atom);
        }
        Ok(Ast::Concat(items))
    }

    /// One atom, or `None` for a construct that only changed flags.
    fn atom(&mut self) -> ParseResult<Option<Ast>> {
        let start = self.pos;
        let Some(c) = self.peek() else {
            return Ok(Some(Ast::Empty));
        };
        self.pos += 1;
        let ast = match c {
            b'.' => {
                let mut set = ByteSet::default();
                set.negate();
                if !self.flags.dot_all {
                    set = without(set, b'\n');
                }
                Ast::Bytes(ByteSetDebug(set))
            }
            b'^' => Ast::Assert(if self.flags.multiline {
                Assertion::LineStart
            } else {
                Assertion::Start
            }),
            b'$' => Ast::Assert(if self.flags.multiline {
                Assertion::LineEnd
            } else {
                Assertion::EndOrFinalNewline
            }),
            b'[' => Ast::Bytes(ByteSetDebug(self.class(start)?)),
            b'(' => return self.group(start),
            b'\\' => self.escape(start)?,
            b'*' | b'+' | b'?' => {
                return self.fail(start, "quantifier does not follow a repeatable item")
            }
            b'{' if self.counted_repeat_at(start) => {
                return self.fail(start, "quantifier does not follow a repeatable item")
            }
            _ => self.literal(c),
        };
        Ok(Some(ast))
    }

    fn literal(&self, b: u8) -> Ast {
        let mut set = ByteSet::default();
        set.insert(b);
        if self.flags.caseless {
            set.fold_case();
        }
        Ast::Bytes(ByteSetDebug(set))
    }

    fn group(&mut self, start: usize) -> ParseResult<Option<Ast>> {
        self.depth += 1;
        if self.depth > MAX_GROUP_DEPTH {
            return self.fail(start, "parentheses are nested too deeply");
        }
        let saved = self.flags;
        if self.peek() == Some(b'?') {
            self.pos += 1;
            match self.peek() {
                Some(b':') => self.pos += 1,
                Some(b'<') if self.peek_at(1).is_some_and(|c| c.is_ascii_alphabetic()) => {
                    self.skip_group_name(b'>')?
                }
                Some(b'P') if self.peek_at(1) == Some(b'<') => {
                    self.pos += 1;
                    self.skip_group_name(b'>')?;
                }
                Some(b'\'') => self.skip_group_name(b'\'')?,
                Some(b'=' | b'!' | b'<') => {
                    return self.fail(start, "lookahead and lookbehind are not supported")
                }
                Some(b'>') => return self.fail(start, "atomic groups are not supported"),
                Some(b'#') => {
                    // A comment: skip to the closing parenthesis.
                    while let Some(c) = self.peek() {
                        self.pos += 1;
                        if c == b')' {
                            self.depth -= 1;
                            return Ok(None);
                        }
                    }
                    return self.fail(start, "missing closing parenthesis");
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
        }
        let inner = self.alternation()?;
        if self.peek() != Some(b')') {
            return self.fail(start, "missing closing parenthesis");
        }
        self.pos += 1;
        self.flags = saved;
        self.depth -= 1;
        Ok(Some(inner))
    }

    fn skip_group_name(&mut self, close: u8) -> ParseResult<()> {
        let start = self.pos;
        self.pos += 1;
        while let Some(c) = self.peek() {
            self.pos += 1;
            if c == close {
                return Ok(());
            }
            if !(c.is_ascii_alphanumeric() || c == b'_') {
                break;
            }
        }
        self.fail(start, "malformed group name")
    }

    /// Parses flag letters after `(?`. Returns true for the scoped form `(?i:`.
    fn flag_letters(&mut self, start: usize) -> ParseResult<bool> {
        let mut on = true;
        loop {
            let Some(c) = self.peek() else {
                return self.fail(start, "missing closing parenthesis");
            };
            self.pos += 1;
            match c {
                b'-' => on = false,
                b'i' => self.flags.caseless = on,
                b's' => self.flags.dot_all = on,
                b'm' => self.flags.multiline = on,
                b')' => return Ok(false),
                b':' => return Ok(true),
                _ => {
                    return self.fail(
                        self.pos - 1,
                        format!(
                            "the group option \"{}\" is not supported (only i, s and m)",
                            char::from(c)
                        ),
                    )
                }
            }
        }
    }

    /// Is there a `{n,m}` quantifier at `at`?
    fn counted_repeat_at(&self, at: usize) -> bool {
        self.pattern.get(at) == Some(&b'{') && self.parse_counts(at).is_some()
    }

    /// Parses `{n}`, `{n,}`, `{n,m}` starting at the `{` at `at`: returns (min, max, length).
    /// Anything else is not a quantifier and the `{` is a literal, as in PCRE.
    fn parse_counts(&self, at: usize) -> Option<(u32, Option<u32>, usize)> {
        let rest = self.pattern.get(at..)?;
        let close = rest.iter().position(|&b| b == b'}')?;
        let inner = std::str::from_utf8(rest.get(1..close)?).ok()?;
        let number = |s: &str| -> Option<u32> {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        let (min, max) = match inner.split_once(',') {
            None => {
                let n = number(inner)?;
                (n, Some(n))
            }
            Some((low, "")) => (number(low)?, None),
            Some((low, high)) => (number(low)?, Some(number(high)?)),
        };
        Some((min, max, close + 1))
    }

    /// The atom with its quantifier, if one follows.
    fn quantified(&mut self, atom: Ast, atom_start: usize) -> ParseResult<Ast> {
        let start = self.pos;
        let (min, max) = match self.peek() {
            Some(b'*') => (0, None),
            Some(b'+') => (1, None),
            Some(b'?') => (0, Some(1)),
            Some(b'{') => match self.parse_counts(self.pos) {
                Some((min, max, len)) => {
                    self.pos += len - 1;
                    if max.is_some_and(|max| max < min) {
                        return self.fail(start, "numbers out of order in {} quantifier");
                    }
                    if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT) {
                        return self.fail(
                            start,
                            format!("repetition counts above {MAX_REPEAT} are not supported"),
                        );
                    }
                    (min, max)
                }
                None => return Ok(atom),
            },
            _ => return Ok(atom),
        };
        self.pos += 1;
        if matches!(atom, Ast::Assert(_)) {
            return self.fail(atom_start, "an anchor or word boundary cannot be repeated");
        }
        match self.peek() {
            // Lazy: same answer to "is there a match?".
            Some(b'?') => self.pos += 1,
            Some(b'+') => return self.fail(self.pos, "possessive quantifiers are not supported"),
            _ => {}
        }
        // PCRE's handling of stacked quantifiers (`a**`, `a{2}*`) is irregular; refuse them.
        if matches!(self.peek(), Some(b'*' | b'+' | b'?')) || self.counted_repeat_at(self.pos) {
            return self.fail(
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

    fn escape(&mut self, start: usize) -> ParseResult<Ast> {
        let Some(c) = self.peek() else {
            return self.fail(start, "the pattern ends with a backslash");
        };
        self.pos += 1;
        let assertion = match c {
            b'A' => Some(Assertion::Start),
            b'z' => Some(Assertion::End),
            b'Z' => Some(Assertion::EndOrFinalNewline),
            b'b' => Some(Assertion::WordBoundary),
            b'B' => Some(Assertion::NotWordBoundary),
            _ => None,
        };
        if let Some(a) = assertion {
            return Ok(Ast::Assert(a));
        }
        let set = self.escape_set(c, start)?;
        Ok(Ast::Bytes(ByteSetDebug(set)))
    }

    /// An escape that stands for a set of bytes (usable inside and outside classes).
    fn escape_set(&mut self, c: u8, start: usize) -> ParseResult<ByteSet> {
        let mut set = ByteSet::default();
        match c {
            b'd' | b'D' => set.insert_range(b'0', b'9'),
            b'w' | b'W' => {
                set.insert_range(b'a', b'z');
                set.insert_range(b'A', b'Z');
                set.insert_range(b'0', b'9');
                set.insert(b'_');
            }
            b's' | b'S' => {
                for b in [b' ', b'\t', b'\n', 0x0b, 0x0c, b'\r'] {
                    set.insert(b);
                }
            }
            _ => {
                let b = self.escaped_byte(c, start)?;
                set.insert(b);
                if self.flags.caseless {
                    set.fold_case();
                }
                return Ok(set);
            }
        }
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
            b'0' => {
                let mut value = 0u32;
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            self.pos += 1;
                        }
                        _ => break,
                    }
                }
                u8::try_from(value).unwrap_or(0)
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
                let digits =
                    std::str::from_utf8(self.pattern.get(digits_start..self.pos).unwrap_or(&[]))
                        .unwrap_or("");
                if braced {
                    if self.peek() != Some(b'}') {
                        return self.fail(start, "malformed \\x{...} escape");
                    }
                    self.pos += 1;
                }
                if digits.is_empty() {
                    0
                } else {
                    u8::from_str_radix(digits, 16).or_else(|_| {
                        self.fail(
                            start,
                            "characters above \\xff are not supported (the match is byte by byte)",
                        )
                    })?
                }
            }
            b'1'..=b'9' => return self.fail(start, "backreferences are not supported"),
            _ if c.is_ascii_alphanumeric() => {
                return self.fail(
                    start,
                    format!("the escape \\{} is not supported", char::from(c)),
                )
            }
            // Any other escaped character stands for itself (`\.`, `\\`, `\(`...).
            _ => c,
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
                return self.fail(start, "missing terminating ] for character class");
            };
            if c == b']' && !first {
                self.pos += 1;
                break;
            }
            first = false;
            let item_start = self.pos;
            self.pos += 1;
            // POSIX classes such as [:alpha:].
            if c == b'[' && self.peek() == Some(b':') {
                let rest = self.pattern.get(self.pos..).unwrap_or(&[]);
                if let Some(end) = rest.windows(2).position(|w| w == b":]") {
                    let name = rest.get(1..end).unwrap_or(&[]);
                    set.union(&posix_class(name).ok_or_else(|| {
                        (
                            item_start,
                            format!("unknown POSIX class [:{}:]", String::from_utf8_lossy(name)),
                        )
                    })?);
                    self.pos += end + 2;
                    continue;
                }
            }
            let low = if c == b'\\' {
                let Some(e) = self.peek() else {
                    return self.fail(item_start, "the pattern ends with a backslash");
                };
                self.pos += 1;
                if matches!(e, b'd' | b'D' | b'w' | b'W' | b's' | b'S') {
                    set.union(&self.escape_set(e, item_start)?);
                    continue;
                }
                if e == b'b' {
                    0x08
                } else {
                    self.escaped_byte(e, item_start)?
                }
            } else {
                c
            };
            // A range `a-z`, unless the dash is last (`[a-]` is a literal dash).
            if self.peek() == Some(b'-') && self.peek_at(1).is_some_and(|n| n != b']') {
                self.pos += 1;
                let high_start = self.pos;
                let Some(h) = self.peek() else {
                    return self.fail(start, "missing terminating ] for character class");
                };
                self.pos += 1;
                let high = if h == b'\\' {
                    let Some(e) = self.peek() else {
                        return self.fail(high_start, "the pattern ends with a backslash");
                    };
                    self.pos += 1;
                    if matches!(e, b'd' | b'D' | b'w' | b'W' | b's' | b'S') {
                        return self.fail(high_start, "invalid range in character class");
                    }
                    self.escaped_byte(e, high_start)?
                } else {
                    h
                };
                if high < low {
                    return self.fail(item_start, "range out of order in character class");
                }
                set.insert_range(low, high);
            } else {
                set.insert(low);
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
}

fn without(mut set: ByteSet, b: u8) -> ByteSet {
    if let Some(word) = set.0.get_mut(usize::from(b >> 6)) {
        *word &= !(1 << (b & 63));
    }
    set
}

fn posix_class(name: &[u8]) -> Option<ByteSet> {
    let mut set = ByteSet::default();
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
        _ => return None,
    };
    for b in 0..=255u8 {
        if test(&b) {
            set.insert(b);
        }
    }
    Some(set)
}
