//! A minimal JSON writer for the report's largest sections (requests, transactions), which are
//! written once per exchange: appending to a byte buffer is several times faster than going
//! through serde's serializer, and nearly every string needs no escaping at all, so it is copied
//! in one piece.
//!
//! The bytes are exactly what `serde_json::to_writer` produces for the same values (compact,
//! the same escapes: `\"`, `\\`, `\b \t \n \f \r`, other control characters as lowercase `\u00xx`;
//! everything else, DEL and non-ASCII included, as is). The tests in `analysis` compare both.

/// Appends `s` as a JSON string literal.
pub fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    // Fast path: a scan for a byte that needs escaping is cheaper than a per-byte table walk.
    if !any_needs_escape(bytes) {
        out.extend_from_slice(bytes);
    } else {
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if !needs_escape(b) {
                continue;
            }
            out.extend_from_slice(bytes.get(start..i).unwrap_or_default());
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                0x08 => out.extend_from_slice(b"\\b"),
                b'\t' => out.extend_from_slice(b"\\t"),
                b'\n' => out.extend_from_slice(b"\\n"),
                0x0c => out.extend_from_slice(b"\\f"),
                b'\r' => out.extend_from_slice(b"\\r"),
                _ => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 0xf)]);
                }
            }
            start = i + 1;
        }
        out.extend_from_slice(bytes.get(start..).unwrap_or_default());
    }
    out.push(b'"');
}

/// Scans 16 bytes at a time without early exit inside a block, which the compiler vectorizes.
fn any_needs_escape(bytes: &[u8]) -> bool {
    let mut blocks = bytes.chunks_exact(16);
    for block in &mut blocks {
        if block.iter().fold(false, |acc, &b| acc | needs_escape(b)) {
            return true;
        }
    }
    blocks.remainder().iter().any(|&b| needs_escape(b))
}

#[inline]
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// "00" "01" ... "99": two digits per division.
const PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Appends an unsigned integer in decimal.
pub fn uint(out: &mut Vec<u8>, mut v: u64) {
    // Most numbers in a report are small (ids, counts, codes): one or two digits are written
    // directly.
    if v < 10 {
        out.push(b'0' + v as u8);
        return;
    }
    if v < 100 {
        let pair = v as usize * 2;
        out.extend_from_slice(&PAIRS[pair..pair + 2]);
        return;
    }
    // A fixed block of zeros is appended, the digits are written into it from the back and the
    // block is cut to length: a variable-length copy would be a call to memcpy, and copying
    // from a digit array written byte-pairwise just before stalls on store forwarding.
    let n = digits(v);
    let start = out.len();
    out.extend_from_slice(&[0u8; 20]);
    let digits = &mut out[start..start + n];
    let mut i = n;
    while v >= 100 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if v >= 10 {
        let pair = v as usize * 2;
        digits[..2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        digits[0] = b'0' + v as u8;
    }
    out.truncate(start + n);
}

/// Decimal digits of `v` (1 for 0): log10 estimated from the bit length (1233/4096 is just
/// above log10(2)), then corrected by one comparison.
fn digits(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    let t = (bits * 1233) >> 12;
    t + usize::from(v >= TENS[t])
}

/// 10^0 ..= 10^19.
const TENS: [u64; 20] = {
    let mut p = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// Appends a signed integer in decimal.
pub fn int(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    uint(out, v.unsigned_abs());
}

/// Appends `"key":` (the key must need no escaping; keys here are identifiers). Inlined so
/// that the constant keys become a few stores instead of a call to memcpy.
#[inline(always)]
pub fn key(out: &mut Vec<u8>, first: bool, k: &str) {
    if !first {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Builds one JSON object field by field.
pub struct Object<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Object<'a> {
    pub fn begin(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, first: true }
    }

    #[inline(always)]
    fn key(&mut self, k: &str) {
        key(self.out, self.first, k);
        self.first = false;
    }

    #[inline(always)]
    pub fn uint(&mut self, k: &str, v: u64) {
        self.key(k);
        uint(self.out, v);
    }

    #[inline(always)]
    pub fn int(&mut self, k: &str, v: i64) {
        self.key(k);
        int(self.out, v);
    }

    #[inline(always)]
    pub fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        string(self.out, v);
    }

    /// A name from the program's own tables (a command, a status, a class): such names need
    /// no escaping, so the scan for characters to escape is skipped.
    #[inline(always)]
    pub fn name(&mut self, k: &str, v: &'static str) {
        debug_assert!(!any_needs_escape(v.as_bytes()), "{v:?} needs escaping");
        self.key(k);
        self.out.push(b'"');
        self.out.extend_from_slice(v.as_bytes());
        self.out.push(b'"');
    }

    /// [`Object::name`] when present; nothing when absent.
    #[inline(always)]
    pub fn some_name(&mut self, k: &str, v: Option<&'static str>) {
        if let Some(v) = v {
            self.name(k, v);
        }
    }

    /// `null` when absent (serde's default for `Option`).
    #[inline(always)]
    pub fn opt_uint(&mut self, k: &str, v: Option<u64>) {
        self.key(k);
        match v {
            Some(v) => uint(self.out, v),
            None => self.out.extend_from_slice(b"null"),
        }
    }

    /// `null` when absent.
    #[inline(always)]
    pub fn opt_int(&mut self, k: &str, v: Option<i64>) {
        self.key(k);
        match v {
            Some(v) => int(self.out, v),
            None => self.out.extend_from_slice(b"null"),
        }
    }

    /// Omitted when absent (`skip_serializing_if = "Option::is_none"`).
    #[inline(always)]
    pub fn some_uint(&mut self, k: &str, v: Option<u64>) {
        if let Some(v) = v {
            self.uint(k, v);
        }
    }

    /// Omitted when absent.
    #[inline(always)]
    pub fn some_int(&mut self, k: &str, v: Option<i64>) {
        if let Some(v) = v {
            self.int(k, v);
        }
    }

    /// Omitted when absent.
    #[inline(always)]
    pub fn some_str(&mut self, k: &str, v: Option<&str>) {
        if let Some(v) = v {
            self.str(k, v);
        }
    }

    /// An array of strings.
    pub fn str_array<'s>(&mut self, k: &str, items: impl IntoIterator<Item = &'s str>) {
        self.key(k);
        self.out.push(b'[');
        for (i, s) in items.into_iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            string(self.out, s);
        }
        self.out.push(b']');
    }

    pub fn end(self) {
        self.out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_match_serde_json() {
        let mut all = String::new();
        for c in (0u8..0x80).map(char::from) {
            all.push(c);
        }
        let cases = [
            "",
            "plain",
            "SELECT c FROM sbtest1 WHERE id=?",
            "quote \" backslash \\ newline \n tab \t cr \r",
            "\u{0}\u{1}\u{8}\u{b}\u{c}\u{1f}\u{7f}",
            "héllo … 日本 \u{feff} \u{10ffff}",
            &all,
        ];
        for s in cases {
            let mut ours = Vec::new();
            string(&mut ours, s);
            assert_eq!(ours, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn integers_match_serde_json() {
        for v in [
            0u64,
            1,
            9,
            10,
            99,
            100,
            12345,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut ours = Vec::new();
            uint(&mut ours, v);
            assert_eq!(ours, serde_json::to_vec(&v).unwrap());
        }
        // Every digit-count boundary, where the bit-length estimate needs its correction.
        let mut v = 1u64;
        loop {
            for w in [v - 1, v, v + 1, v.saturating_mul(2), v.saturating_mul(5)] {
                let mut ours = Vec::new();
                uint(&mut ours, w);
                assert_eq!(ours, serde_json::to_vec(&w).unwrap(), "{w}");
            }
            match v.checked_mul(10) {
                Some(n) => v = n,
                None => break,
            }
        }
        for k in 0..64 {
            for w in [(1u64 << k) - 1, 1u64 << k] {
                let mut ours = Vec::new();
                uint(&mut ours, w);
                assert_eq!(ours, serde_json::to_vec(&w).unwrap(), "{w}");
            }
        }
        for v in [0i64, -1, 1, -10, 1_000_000, i64::MIN, i64::MAX] {
            let mut ours = Vec::new();
            int(&mut ours, v);
            assert_eq!(ours, serde_json::to_vec(&v).unwrap());
        }
    }
}
