//! The compiled filter and its evaluation against one frame.
//!
//! Everything textual was resolved at parse time: the tree holds fields, typed literals and
//! compiled regexes, and evaluation walks it without allocating.

use std::cmp::Ordering;

use super::fields::{Field, FieldSource, Value};
use super::lexer::CmpOp;
use super::literal::Lit;
use super::regex::Regex;

#[derive(Clone, Debug)]
pub(crate) enum Node {
    And(Box<[Node]>),
    Or(Box<[Node]>),
    Not(Box<Node>),
    /// A bare field: true when it occurs (after its slice or mask, if any).
    Exists(Operand),
    Compare(Box<Compare>),
    /// `field in {...}`; `not in` is `Not(InSet)`.
    InSet(Box<InSet>),
}

/// How a field's values compare, after any slice (which always yields bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    UInt,
    Time,
    Ipv4,
    Ipv6,
    /// Ordered lexicographically, like Wireshark's strings.
    Str,
    /// Ordered by length first, then content, like Wireshark's byte fields (`tcp.payload > 0xff`
    /// is true for every payload longer than one byte).
    Bytes,
}

/// A field as used in a test, possibly sliced (`tcp.payload[0:4]`) or masked (`tcp.flags & 0x02`).
#[derive(Clone, Debug)]
pub(crate) struct Operand {
    pub field: Field,
    pub kind: Kind,
    pub transform: Transform,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transform {
    None,
    Slice(Slice),
    Mask(u64),
}

/// A byte range of a value, Wireshark's `[start:len]`, `[start-end]`, `[start]`, `[start:]`.
/// An occurrence too short for the range is dropped rather than truncated, as in Wireshark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slice {
    /// Negative counts from the end.
    pub start: i64,
    /// `None`: to the end.
    pub len: Option<u64>,
}

impl Slice {
    fn apply(self, data: &[u8]) -> Option<&[u8]> {
        let total = i64::try_from(data.len()).ok()?;
        let start = if self.start < 0 {
            total.checked_add(self.start)?
        } else {
            self.start
        };
        if start < 0 || start >= total {
            return None;
        }
        let start = usize::try_from(start).ok()?;
        match self.len {
            None => data.get(start..),
            Some(len) => data.get(start..start.checked_add(usize::try_from(len).ok()?)?),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Compare {
    pub lhs: Operand,
    pub op: CmpOp,
    pub rhs: Rhs,
}

#[derive(Clone, Debug)]
pub(crate) enum Rhs {
    Lit(Lit),
    Field(Operand),
    Regex(Regex),
}

#[derive(Clone, Debug)]
pub(crate) struct InSet {
    pub field: Operand,
    pub items: Box<[SetItem]>,
}

#[derive(Clone, Debug)]
pub(crate) enum SetItem {
    One(Lit),
    /// Inclusive at both ends.
    Range(Lit, Lit),
}

/// One occurrence, normalized for comparison.
#[derive(Clone, Copy, Debug)]
enum V<'a> {
    Bool(bool),
    UInt(u64),
    Nanos(i64),
    Ipv4(u32),
    Ipv6(u128),
    Str(&'a [u8]),
    Bytes(&'a [u8]),
}

impl Node {
    pub(crate) fn eval(&self, src: &dyn FieldSource) -> bool {
        match self {
            Node::And(children) => children.iter().all(|c| c.eval(src)),
            Node::Or(children) => children.iter().any(|c| c.eval(src)),
            Node::Not(child) => !child.eval(src),
            Node::Exists(operand) => exists(operand, src),
            Node::Compare(compare) => compare.eval(src),
            Node::InSet(set) => {
                let mut found = false;
                src.visit(set.field.field, &mut |value| {
                    if !found {
                        project(value, &set.field, &mut |v| {
                            found = found || set.items.iter().any(|item| item.contains(v));
                        });
                    }
                });
                found
            }
        }
    }

    /// Every field the tree mentions, in order of first mention.
    pub(crate) fn collect_fields(&self, out: &mut Vec<Field>) {
        let mut add = |f: Field| {
            if !out.contains(&f) {
                out.push(f);
            }
        };
        match self {
            Node::And(children) | Node::Or(children) => {
                for child in children {
                    child.collect_fields(out);
                }
            }
            Node::Not(child) => child.collect_fields(out),
            Node::Exists(operand) => add(operand.field),
            Node::Compare(compare) => {
                add(compare.lhs.field);
                if let Rhs::Field(rhs) = &compare.rhs {
                    add(rhs.field);
                }
            }
            Node::InSet(set) => add(set.field.field),
        }
    }
}

fn exists(operand: &Operand, src: &dyn FieldSource) -> bool {
    let mut found = false;
    src.visit(operand.field, &mut |value| {
        if found {
            return;
        }
        match operand.transform {
            Transform::None => found = true,
            // A mask alone is a test of the masked bits: `tcp.flags & 0x02` means "SYN set".
            Transform::Mask(_) => project(value, operand, &mut |v| {
                found = found || matches!(v, V::UInt(n) if n != 0);
            }),
            Transform::Slice(_) => project(value, operand, &mut |_| found = true),
        }
    });
    found
}

/// Hands `out` the comparable form of one occurrence (nothing if a slice does not fit, or if the
/// source gave a value of the wrong type, which then matches nothing).
fn project(value: Value<'_>, operand: &Operand, out: &mut dyn FnMut(V<'_>)) {
    match operand.transform {
        Transform::Slice(slice) => {
            let octets4;
            let octets16;
            let data: &[u8] = match value {
                Value::Bytes(b) => b,
                Value::Str(s) => s.as_bytes(),
                Value::Ipv4(a) => {
                    octets4 = a.octets();
                    &octets4
                }
                Value::Ipv6(a) => {
                    octets16 = a.octets();
                    &octets16
                }
                _ => return,
            };
            if let Some(part) = slice.apply(data) {
                out(V::Bytes(part));
            }
        }
        Transform::Mask(mask) => {
            if let Some(n) = as_uint(value) {
                out(V::UInt(n & mask));
            }
        }
        Transform::None => {
            let v = match (operand.kind, value) {
                (Kind::Bool, Value::Bool(b)) => V::Bool(b),
                (Kind::Bool, Value::UInt(n)) => V::Bool(n != 0),
                (Kind::UInt, _) => match as_uint(value) {
                    Some(n) => V::UInt(n),
                    None => return,
                },
                (Kind::Time, Value::Float(secs)) => V::Nanos(seconds_to_nanos(secs)),
                (Kind::Ipv4, Value::Ipv4(a)) => V::Ipv4(u32::from(a)),
                (Kind::Ipv6, Value::Ipv6(a)) => V::Ipv6(u128::from(a)),
                (Kind::Str, Value::Str(s)) => V::Str(s.as_bytes()),
                (Kind::Str, Value::Bytes(b)) => V::Str(b),
                (Kind::Bytes, Value::Bytes(b)) => V::Bytes(b),
                (Kind::Bytes, Value::Str(s)) => V::Bytes(s.as_bytes()),
                _ => return,
            };
            out(v);
        }
    }
}

fn as_uint(value: Value<'_>) -> Option<u64> {
    match value {
        Value::UInt(n) => Some(n),
        Value::Bool(b) => Some(u64::from(b)),
        _ => None,
    }
}

/// Wireshark compares times as exact nanosecond counts; the source hands us f64 seconds, so
/// round to the nanosecond to make `frame.time_relative <= 0.5` exact at the boundary.
fn seconds_to_nanos(secs: f64) -> i64 {
    // `as` saturates on overflow and maps NaN to 0, which is what we want here.
    #[allow(clippy::cast_possible_truncation)]
    let nanos = (secs * 1e9).round() as i64;
    nanos
}

/// Tallies how the occurrences (or pairs of occurrences) compared, for the four flavours of
/// equality Wireshark 4.0 has.
#[derive(Default)]
struct Tally {
    /// Some comparison was true.
    any: bool,
    /// Some comparison was false.
    some_false: bool,
    /// Number of comparisons made.
    count: usize,
}

impl Tally {
    fn record(&mut self, result: bool) {
        self.count += 1;
        if result {
            self.any = true;
        } else {
            self.some_false = true;
        }
    }

    /// Can stop early: the outcome is already decided.
    fn decided(&self, op: CmpOp) -> bool {
        match op {
            CmpOp::AllEq | CmpOp::AnyNe => self.some_false,
            _ => self.any,
        }
    }

    /// Wireshark 4.0 implements `!=` as "not ==" and `!==` as "not ===", but only once the
    /// field was found: a test on an absent field is false whatever the operator. `===` also
    /// needs at least one comparison (a slice out of range leaves none).
    fn outcome(&self, op: CmpOp, present: bool) -> bool {
        let all_eq = self.count > 0 && !self.some_false;
        match op {
            CmpOp::AllNe => present && !self.any,
            CmpOp::AllEq => all_eq,
            CmpOp::AnyNe => present && !all_eq,
            _ => self.any,
        }
    }
}

impl Compare {
    fn eval(&self, src: &dyn FieldSource) -> bool {
        match &self.rhs {
            Rhs::Lit(lit) => self.eval_with(src, |v| compare_lit(v, self.op, lit)),
            Rhs::Regex(regex) => self.eval_with(src, |v| match v {
                V::Str(b) | V::Bytes(b) => regex.is_match(b),
                _ => false,
            }),
            Rhs::Field(rhs) => self.eval_fields(rhs, src),
        }
    }

    fn eval_with(&self, src: &dyn FieldSource, test: impl Fn(V<'_>) -> bool) -> bool {
        let op = self.op;
        let mut present = false;
        let mut tally = Tally::default();
        src.visit(self.lhs.field, &mut |value| {
            present = true;
            if !tally.decided(op) {
                project(value, &self.lhs, &mut |v| tally.record(test(v)));
            }
        });
        tally.outcome(op, present)
    }

    /// Field against field: every occurrence of one against every occurrence of the other.
    fn eval_fields(&self, rhs: &Operand, src: &dyn FieldSource) -> bool {
        let op = self.op;
        let mut lhs_present = false;
        let mut rhs_present = false;
        let mut tally = Tally::default();
        src.visit(self.lhs.field, &mut |a| {
            lhs_present = true;
            if tally.decided(op) {
                return;
            }
            project(a, &self.lhs, &mut |va| {
                src.visit(rhs.field, &mut |b| {
                    rhs_present = true;
                    if !tally.decided(op) {
                        project(b, rhs, &mut |vb| tally.record(compare_values(va, op, vb)));
                    }
                });
            });
        });
        if lhs_present && !rhs_present {
            // Not yet known when every left occurrence was sliced away.
            src.visit(rhs.field, &mut |_| rhs_present = true);
        }
        lhs_present && rhs_present && tally.outcome(op, true)
    }
}

impl SetItem {
    fn contains(&self, v: V<'_>) -> bool {
        match self {
            SetItem::One(lit) => order_lit(v, lit) == Some(Ordering::Equal),
            SetItem::Range(low, high) => {
                matches!(order_lit(v, low), Some(Ordering::Greater | Ordering::Equal))
                    && matches!(order_lit(v, high), Some(Ordering::Less | Ordering::Equal))
            }
        }
    }
}

fn compare_lit(v: V<'_>, op: CmpOp, lit: &Lit) -> bool {
    if op == CmpOp::Contains {
        return match (v, lit) {
            (V::Str(hay) | V::Bytes(hay), Lit::Bytes(needle)) => contains(hay, needle),
            _ => false,
        };
    }
    ordering_satisfies(order_lit(v, lit), op)
}

fn compare_values(a: V<'_>, op: CmpOp, b: V<'_>) -> bool {
    if op == CmpOp::Contains {
        return match (a, b) {
            (V::Str(hay) | V::Bytes(hay), V::Str(needle) | V::Bytes(needle)) => {
                contains(hay, needle)
            }
            _ => false,
        };
    }
    let ordering = match (a, b) {
        (V::Bool(x), V::Bool(y)) => Some(x.cmp(&y)),
        (V::UInt(x), V::UInt(y)) => Some(x.cmp(&y)),
        (V::Nanos(x), V::Nanos(y)) => Some(x.cmp(&y)),
        (V::Ipv4(x), V::Ipv4(y)) => Some(x.cmp(&y)),
        (V::Ipv6(x), V::Ipv6(y)) => Some(x.cmp(&y)),
        (V::Str(x), V::Str(y)) => Some(x.cmp(y)),
        (V::Bytes(x), V::Bytes(y)) => Some(bytes_order(x, y)),
        _ => None,
    };
    ordering_satisfies(ordering, op)
}

fn ordering_satisfies(ordering: Option<Ordering>, op: CmpOp) -> bool {
    let Some(ordering) = ordering else {
        return false;
    };
    match op {
        // The "not equal" operators are evaluated as negated equality by the tally.
        CmpOp::AnyEq | CmpOp::AllNe | CmpOp::AllEq | CmpOp::AnyNe => ordering == Ordering::Equal,
        CmpOp::Gt => ordering == Ordering::Greater,
        CmpOp::Ge => ordering != Ordering::Less,
        CmpOp::Lt => ordering == Ordering::Less,
        CmpOp::Le => ordering != Ordering::Greater,
        CmpOp::Contains | CmpOp::Matches => false,
    }
}

/// Orders an occurrence against a literal. Addresses with a prefix compare only the prefix bits
/// (Wireshark masks both sides with the shorter prefix), so `ip.addr == 10.0.0.0/8` is a subnet
/// test and `ip.addr < 10.0.0.0/8` means "below the subnet".
fn order_lit(v: V<'_>, lit: &Lit) -> Option<Ordering> {
    Some(match (v, lit) {
        (V::Bool(x), Lit::Bool(y)) => x.cmp(y),
        (V::UInt(x), Lit::UInt(y)) => x.cmp(y),
        (V::Nanos(x), Lit::Nanos(y)) => x.cmp(y),
        (V::Ipv4(x), Lit::Ipv4 { addr, mask }) => (x & mask).cmp(&(addr & mask)),
        (V::Ipv6(x), Lit::Ipv6 { addr, mask }) => (x & mask).cmp(&(addr & mask)),
        (V::Str(x), Lit::Bytes(y)) => x.cmp(y),
        (V::Bytes(x), Lit::Bytes(y)) => bytes_order(x, y),
        _ => return None,
    })
}

fn bytes_order(x: &[u8], y: &[u8]) -> Ordering {
    x.len().cmp(&y.len()).then_with(|| x.cmp(y))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    match needle {
        [] => true,
        [byte] => haystack.contains(byte),
        [first, rest @ ..] => haystack
            .iter()
            .enumerate()
            .filter(|&(_, b)| b == first)
            .any(|(i, _)| haystack.get(i + 1..i + needle.len()) == Some(rest)),
    }
}
