//! Conversion of literal text into typed values, once, at parse time.
//!
//! The accepted spellings follow tshark 4.0 (checked against it, see NOTES.md); a few forms
//! tshark accepts but that are almost always mistakes are rejected with a clear message instead
//! (negative numbers for unsigned fields, exponents in times).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::fields::Field;

/// A literal resolved to the representation the evaluator compares against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Lit {
    UInt(u64),
    Bool(bool),
    /// A time offset in whole nanoseconds.
    Nanos(i64),
    /// Address and netmask (all ones without a `/prefix`).
    Ipv4 {
        addr: u32,
        mask: u32,
    },
    /// Address and prefix mask (all ones without a `/prefix`).
    Ipv6 {
        addr: u128,
        mask: u128,
    },
    /// Strings and byte sequences alike: both compare as bytes.
    Bytes(Box<[u8]>),
}

/// Parses an unsigned integer the way Wireshark does: decimal, `0x` hex, `0b` binary, and a
/// leading `0` meaning octal (so `010` is 8).
pub(crate) fn uint(word: &str, field: Field) -> Result<u64, String> {
    let max = field.max_uint();
    if let Some(magnitude) = word.strip_prefix('-') {
        if parse_radix_prefixed(magnitude).is_ok() {
            // tshark 4.0 accepts this and wraps it to a huge value that never matches.
            return Err(format!(
                "\"{word}\" is negative, but {} is an unsigned integer (it could never match)",
                field.name()
            ));
        }
    }
    let value = parse_radix_prefixed(word).map_err(|overflow| {
        if overflow {
            format!("\"{word}\" causes an integer overflow")
        } else {
            format!("\"{word}\" is not a valid number for {}", field.name())
        }
    })?;
    if value > max {
        return Err(format!(
            "\"{word}\" is too big for {}, maximum {max}",
            field.name()
        ));
    }
    Ok(value)
}

/// `Err(true)` means the digits were valid but the value overflowed 64 bits.
fn parse_radix_prefixed(word: &str) -> Result<u64, bool> {
    let (digits, radix) =
        if let Some(hex) = word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
            (hex, 16)
        } else if let Some(bin) = word.strip_prefix("0b").or_else(|| word.strip_prefix("0B")) {
            (bin, 2)
        } else if let Some(octal) = word.strip_prefix('0').filter(|rest| !rest.is_empty()) {
            (octal, 8)
        } else {
            (word, 10)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(false);
    }
    u64::from_str_radix(digits, radix).map_err(|_| true)
}

/// Booleans accept `True`/`TRUE`/`False`/`FALSE`, any number (non-zero is true), and the field's
/// own labels ("Set"/"Not set" for TCP flags) — the forms tshark 4.0 accepts. tshark rejects
/// lowercase `true`, and so do we, to stay interchangeable.
pub(crate) fn boolean(text: &str, field: Field, quoted: bool) -> Result<bool, String> {
    if let Some((yes, no)) = field.bool_labels() {
        if text.eq_ignore_ascii_case(yes) {
            return Ok(true);
        }
        if text.eq_ignore_ascii_case(no) {
            return Ok(false);
        }
    }
    if !quoted {
        match text {
            "True" | "TRUE" => return Ok(true),
            "False" | "FALSE" => return Ok(false),
            _ => {}
        }
        if let Ok(n) = parse_radix_prefixed(text) {
            return Ok(n != 0);
        }
    }
    let labels = field
        .bool_labels()
        .map(|(yes, no)| format!(", \"{yes}\", \"{no}\""))
        .unwrap_or_default();
    Err(format!(
        "\"{text}\" is not a valid value for the boolean field {} (use 1, 0, True, False{labels})",
        field.name()
    ))
}

/// Time offsets in seconds, `[-]seconds[.fraction]`, exact to the nanosecond like Wireshark.
pub(crate) fn nanos(word: &str, field: Field) -> Result<i64, String> {
    let invalid = || {
        format!(
            "\"{word}\" is not a valid time for {} (write seconds, e.g. 1.5 or 0.000250)",
            field.name()
        )
    };
    let (negative, unsigned) = match word.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, word),
    };
    let (secs, frac) = match unsigned.split_once('.') {
        Some((secs, frac)) => (secs, Some(frac)),
        None => (unsigned, None),
    };
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let mut frac_nanos: i64 = 0;
    if let Some(frac) = frac {
        if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let (significant, beyond) = frac.split_at(frac.len().min(9));
        if beyond.bytes().any(|b| b != b'0') {
            return Err(format!(
                "\"{word}\" is more precise than the nanosecond resolution of {}",
                field.name()
            ));
        }
        // Pad to nine digits: "25" is 250000000 ns.
        let mut scale = 100_000_000;
        for digit in significant.bytes() {
            frac_nanos += i64::from(digit - b'0') * scale;
            scale /= 10;
        }
    }
    let total = secs
        .parse::<i64>()
        .ok()
        .and_then(|s| s.checked_mul(1_000_000_000))
        .and_then(|n| n.checked_add(frac_nanos))
        .ok_or_else(|| format!("\"{word}\" is too large a time"))?;
    Ok(if negative { -total } else { total })
}

/// Dotted-quad IPv4 with an optional `/bits` prefix. Host names are refused: wirelag does no
/// name resolution (and tshark refuses them too unless resolution is enabled).
pub(crate) fn ipv4(word: &str) -> Result<(u32, u32), String> {
    let (addr_text, prefix) = match word.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (word, None),
    };
    let addr = parse_dotted_quad(addr_text).ok_or_else(|| {
        if addr_text.starts_with(|c: char| c.is_ascii_alphabetic()) {
            format!("\"{addr_text}\" is not a valid IPv4 address (host names are not resolved)")
        } else {
            format!("\"{addr_text}\" is not a valid IPv4 address")
        }
    })?;
    let mask = match prefix {
        None => u32::MAX,
        Some(bits_text) => {
            let bits = parse_prefix_len(bits_text)
                .filter(|&b| b <= 32)
                .ok_or_else(|| prefix_error("netmask bits of an IPv4 address", 32, bits_text))?;
            // `checked_shl` because shifting a u32 by 32 is an overflow, and /0 is legal.
            u32::MAX.checked_shl(32 - bits).unwrap_or(0)
        }
    };
    Ok((addr, mask))
}

/// Strict dotted decimal: four parts of 0-255 without leading zeros, as tshark requires.
fn parse_dotted_quad(text: &str) -> Option<u32> {
    let mut parts = text.split('.');
    let mut octets = [0u8; 4];
    for octet in &mut octets {
        let part = parts.next()?;
        let well_formed = !part.is_empty()
            && part.len() <= 3
            && part.bytes().all(|b| b.is_ascii_digit())
            && !(part.len() > 1 && part.starts_with('0'));
        if !well_formed {
            return None;
        }
        *octet = part.parse().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(u32::from(Ipv4Addr::from(octets)))
}

fn prefix_error(what: &str, max: u32, bits_text: &str) -> String {
    if bits_text.is_empty() {
        format!(
            "the {what} is missing after \"/\" (write e.g. /{})",
            max / 4
        )
    } else {
        format!("the {what} must be a decimal number from 0 to {max}, not \"{bits_text}\"")
    }
}

fn parse_prefix_len(text: &str) -> Option<u32> {
    let well_formed = !text.is_empty()
        && text.len() <= 3
        && text.bytes().all(|b| b.is_ascii_digit())
        && !(text.len() > 1 && text.starts_with('0'));
    if well_formed {
        text.parse().ok()
    } else {
        None
    }
}

/// IPv6 text (including `::` compression and embedded IPv4) with an optional `/bits` prefix.
pub(crate) fn ipv6(word: &str) -> Result<(u128, u128), String> {
    let (addr_text, prefix) = match word.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (word, None),
    };
    let addr: Ipv6Addr = addr_text
        .parse()
        .map_err(|_| format!("\"{addr_text}\" is not a valid IPv6 address"))?;
    let mask = match prefix {
        None => u128::MAX,
        Some(bits_text) => {
            let bits = parse_prefix_len(bits_text)
                .filter(|&b| b <= 128)
                .ok_or_else(|| prefix_error("prefix length of an IPv6 address", 128, bits_text))?;
            u128::MAX.checked_shl(128 - bits).unwrap_or(0)
        }
    };
    Ok((u128::from(addr), mask))
}

/// Byte strings as tshark 4.0 reads them: `0a:0b:0c` (two digits per byte with colons),
/// `a-b` or `0a.0b` (one or two digits per byte), a plain run of hex digits read in pairs
/// (`53454c`; an odd final digit is a byte of its own, so `534` is 53:04), or `0xNN`.
pub(crate) fn bytes(word: &str) -> Result<Vec<u8>, String> {
    let invalid =
        || format!("\"{word}\" is not a valid byte string (write e.g. 0a:1b:2c or \"text\")");
    if let Some(hex) = word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
        return match hex.len() {
            2 => u8::from_str_radix(hex, 16)
                .map(|b| vec![b])
                .map_err(|_| invalid()),
            _ => Err(invalid()),
        };
    }
    let separator = word.bytes().find(|b| matches!(b, b':' | b'-' | b'.'));
    let Some(separator) = separator else {
        if word.is_empty() || !word.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid());
        }
        return Ok(word
            .as_bytes()
            .chunks(2)
            .map(|pair| pair.iter().fold(0u8, |acc, &d| (acc << 4) | hex_value(d)))
            .collect());
    };
    let mut out = Vec::new();
    for group in word.split(char::from(separator)) {
        let group_ok = match separator {
            b':' => group.len() == 2,
            _ => (1..=2).contains(&group.len()),
        } && group.bytes().all(|b| b.is_ascii_hexdigit());
        if !group_ok {
            return Err(invalid());
        }
        out.push(group.bytes().fold(0u8, |acc, d| (acc << 4) | hex_value(d)));
    }
    Ok(out)
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

/// Does this unparsed word look like someone meant a field name (so a failed literal parse can
/// mention that it is not a known field)?
pub(crate) fn looks_like_field_name(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_alphabetic())
        && word.contains('.')
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}
