//! Wireshark display filters (`-Y`): parse once, evaluate per frame.
//!
//! The promise is that a filter means what it means in Wireshark 4.0, so results can be
//! cross-checked with tshark. Every rule below was checked against tshark 4.0.17 on the test
//! corpus (commands and counts in NOTES.md next to this file). Where tshark 4.0 surprised us:
//!
//! * `!=` means "the field is present and **no** occurrence equals" (`all_ne`), so
//!   `tcp.port != 3306` excludes a frame whose *other* port is 3306, and is false on frames
//!   without TCP. `!(tcp.port == 3306)` is the plain negation and is true on non-TCP frames.
//!   `!==`/`~=`/`any_ne` is "present and not every occurrence equals"; `===`/`all_eq` is "every
//!   occurrence equals".
//! * `and` binds tighter than `or` (`a or b and c` is `a or (b and c)`); `not` binds tighter
//!   than both, and a comparison tighter than `not` (`not tcp.port == 3306` negates the test).
//! * There is no `xor`/`^^` in 4.0. Keywords are lowercase only (`AND` is an error).
//! * Set members must be separated by commas in 4.0: `tcp.port in {3306 27017}` is a syntax
//!   error in tshark 4.0 (it was the 3.x syntax). wirelag accepts whitespace too, since it
//!   cannot mean anything else; write `{3306, 27017}` to paste into tshark. `not in` exists.
//!   `{a..b}` is inclusive and `{2..0}` matches nothing.
//! * A bare field tests presence: `tcp.flags.syn` matches every TCP frame, SYN or not.
//! * Booleans compare numerically: `tcp.flags.syn == 2` is true for a SYN (any non-zero is
//!   true); `True`/`TRUE`/`False`/`FALSE` and the labels `Set`/`Not set` are accepted, but
//!   lowercase `true` is not.
//! * Numbers: `0x` hex, `0b` binary, and a leading `0` is **octal** (`tcp.port == 010` is 8;
//!   `08` is an error). Values above the field's width are errors ("too big for this field").
//!   tshark silently accepts `tcp.port == -1` and wraps it to a value that never matches;
//!   wirelag rejects negative numbers for unsigned fields instead.
//! * Strings: `"..."` with C escapes (`\xhh`, `\ooo`, `\n`, `\u20ac`...; unknown escapes are
//!   errors), raw strings `r"..."`; `'c'` character constants. Quoted strings are refused for
//!   numeric and address fields (`tcp.port == "3306"` is an error in tshark too).
//! * Byte strings: `53:45:4c`, `53-45-4c`, `53.45.4c`, `53454c`, and an odd run of digits is
//!   read in pairs with the last digit alone (`534` is 53:04). Bytes order by **length first**
//!   (`tcp.payload > 0xff` matches every payload longer than one byte); strings order
//!   lexicographically.
//! * `ip.addr == 10.0.0.0/8` is a subnet test; ordering with a prefix compares only the prefix
//!   bits. Host names are not resolved (tshark refuses `localhost` too).
//! * `matches`/`~` is PCRE2 syntax, case-insensitive by default (`(?-i)` to turn it off),
//!   byte by byte (a `.` is one byte) and unanchored; `$` also matches before a final newline.
//!   The `regex` crate runs it, behind a translation (see `regex.rs`).
//! * Slices: an occurrence too short for `[i:n]` is dropped, not truncated. With `!=` a frame
//!   whose payload is too short still matches (present, and no occurrence equals), and `===`
//!   does not. Integers cannot be sliced; addresses can.
//! * Field-to-field comparisons compare every occurrence with every occurrence
//!   (`tcp.port == tcp.port` is true, `tcp.port != tcp.port` false).
//!
//! Deliberate differences from tshark 4.0 (none changes the meaning of a filter both accept):
//! accepted although tshark rejects: whitespace-separated set members, the alias
//! `tcp.flags.rst`, `'\n'`-style escapes in character constants, and bare words that tshark
//! resolves as one of its thousands of protocol names (`tcp.payload contains ff` is the byte
//! 0xff here; tshark says "ff" is a protocol). Rejected although tshark accepts: negative numbers
//! for unsigned fields, a leading `+`, exponents in times (`0.5e0`), colon-prefixed bytes
//! (`:12`), and an empty filter (tshark treats it as "no filter").
//!
//! Not supported (each gives a clear error): functions (`len()`, `count()`...), arithmetic,
//! field references `${...}`, layer selection `#`, slices with several ranges, comparing or
//! slicing protocols (`frame[0:4]`, `tcp contains ...`), fields inside sets, `&` on non-integers,
//! and in regexes: backreferences, lookaround, atomic groups, possessive and stacked quantifiers,
//! recursion, conditionals, callouts, `(*VERB)`s, Unicode properties, extended mode `(?x)`, and
//! the two places the `regex` crate's assertions answer differently: a `$`/`\Z` followed by
//! something that could see the final newline (`a$\n`), and a multiline `^` followed by
//! something that can match the empty string (`(?m)^$`).

mod eval;
mod fields;
mod lexer;
mod literal;
mod parser;
mod regex;

#[cfg(test)]
mod tests;

use std::fmt;

pub use fields::{Field, FieldSource, FieldType, Value};

/// A parsed display filter, ready to test frames.
#[derive(Clone, Debug)]
pub struct DisplayFilter {
    text: String,
    root: eval::Node,
    fields: Vec<Field>,
}

impl DisplayFilter {
    /// Parses Wireshark display-filter text.
    ///
    /// # Errors
    ///
    /// A [`FilterError`] pointing at the offending position in `text`: syntax errors, unknown
    /// fields, values of the wrong type for their field, and unsupported constructs.
    pub fn parse(text: &str) -> Result<DisplayFilter, FilterError> {
        let tokens = lexer::tokenize(text)?;
        let root = parser::parse(text, &tokens)?;
        let mut fields = Vec::new();
        root.collect_fields(&mut fields);
        Ok(DisplayFilter {
            text: text.to_owned(),
            root,
            fields,
        })
    }

    /// Does the frame pass the filter?
    pub fn matches(&self, src: &dyn FieldSource) -> bool {
        self.root.eval(src)
    }

    /// Every field the expression mentions (so the caller can skip computing unneeded ones),
    /// in order of first mention.
    pub fn fields(&self) -> Vec<Field> {
        self.fields.clone()
    }

    /// Does the expression mention this field?
    pub fn uses(&self, field: Field) -> bool {
        self.fields.contains(&field)
    }

    /// The filter as written.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Why a display filter was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// 0-based character (not byte) offset into `text`.
    pub position: usize,
    pub message: String,
    pub text: String,
}

impl FilterError {
    pub(crate) fn at_byte(text: &str, byte_pos: usize, message: impl Into<String>) -> FilterError {
        let prefix = text.get(..byte_pos.min(text.len())).unwrap_or(text);
        FilterError::at_char(text, prefix.chars().count(), message)
    }

    pub(crate) fn at_char(text: &str, position: usize, message: impl Into<String>) -> FilterError {
        FilterError {
            position,
            message: message.into(),
            text: text.to_owned(),
        }
    }
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "display filter error at column {}: {}",
            self.position + 1,
            self.message
        )?;
        // Control characters (newlines, tabs) would break the caret's alignment.
        let shown: String = self
            .text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        writeln!(f, "  {shown}")?;
        write!(f, "  {}^", " ".repeat(self.position))
    }
}

impl std::error::Error for FilterError {}
