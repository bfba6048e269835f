//! The `matches` engine on its own: PCRE2 semantics as tshark 4.0 shows them (each expectation
//! below was checked with `tshark -Y 'tcp.payload matches "..."'` on a capture of these
//! payloads; `tests/conformance_filters.rs` re-checks a list of them against tshark), and the
//! refusals of what the `regex` crate cannot express. Filter-level error positions are in
//! `tests.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::Regex;

#[track_caller]
fn is_match(pattern: &str, hay: &[u8]) -> bool {
    match Regex::new(pattern.as_bytes()) {
        Ok(regex) => regex.is_match(hay),
        Err((at, message)) => panic!("{pattern:?} refused at {at}: {message}"),
    }
}

/// Checks a pattern against (payload, expected) pairs.
#[track_caller]
fn check(pattern: &str, cases: &[(&[u8], bool)]) {
    for &(hay, expected) in cases {
        assert_eq!(
            is_match(pattern, hay),
            expected,
            "{pattern:?} on {:?}",
            String::from_utf8_lossy(hay)
        );
    }
}

#[track_caller]
fn refused(pattern: &[u8]) -> (usize, String) {
    match Regex::new(pattern) {
        Ok(regex) => panic!(
            "{:?} should be refused: {regex:?}",
            String::from_utf8_lossy(pattern)
        ),
        Err(e) => e,
    }
}

#[test]
fn case_is_insensitive_unless_turned_off() {
    check(
        "select",
        &[(b"SELECT 1", true), (b"sElEcT", true), (b"selec", false)],
    );
    check("(?-i)SELECT", &[(b"SELECT", true), (b"select", false)]);
    check("(?-i)select", &[(b"SELECT", false), (b"select", true)]);
    // A flag lasts to the end of its group, across later alternatives, and no further.
    check("S(?-i)ELECT", &[(b"sELECT", true), (b"Select", false)]);
    check("(?-i)s(?i)elect", &[(b"sELECT", true), (b"SELECT", false)]);
    check("(?-i)(?i:S)ELECT", &[(b"sELECT", true), (b"Select", false)]);
    check(
        "(?-i)(a(?i)b|c)",
        &[(b"aB", true), (b"C", true), (b"AB", false)],
    );
    check("((?-i)a)b", &[(b"aB", true), (b"AB", false)]);
    // `(?^)` resets every flag, Wireshark's default caseless included.
    check("(?^)SELECT", &[(b"SELECT", true), (b"select", false)]);
    check("(?^i)SELECT", &[(b"select", true)]);
    // Classes and escapes fold too; only ASCII letters fold (PCRE2's default tables).
    check("[a-c]x", &[(b"BX", true)]);
    check("[^a]", &[(b"A", false), (b"aA", false), (b"ab", true)]);
    check("\\x41", &[(b"a", true)]);
    check("[[:upper:]]", &[(b"a", true), (b"1", false)]);
    check("(?-i)[[:upper:]]", &[(b"a", false), (b"A", true)]);
    check("\\xc9", &[(b"\xe9", false), (b"\xc9", true)]);
}

#[test]
fn anchors() {
    check("^a", &[(b"ab", true), (b"ba", false), (b"b\na", false)]);
    check("\\Aa", &[(b"ab", true), (b"ba", false)]);
    check("\\Ga", &[(b"ab", true), (b"ba", false)]);
    // `$` and `\Z`: the end, or before a newline that ends the subject, not before others.
    for pattern in ["two$", "two\\Z"] {
        check(
            pattern,
            &[
                (b"one\ntwo", true),
                (b"one\ntwo\n", true),
                (b"two\n\n", false),
                (b"two\r\n", false),
                (b"two x", false),
            ],
        );
    }
    check("one$", &[(b"one\ntwo\n", false)]);
    check("two\\z", &[(b"one\ntwo", true), (b"one\ntwo\n", false)]);
    check("^.$", &[(b"a\n", true), (b"\n", false), (b"ab", false)]);
    check("(?s)^.$", &[(b"\n", true)]);
    check("^$", &[(b"", true), (b"\n", true), (b"\n\n", false)]);
    check("a$$", &[(b"a\n", true)]);
    check("a$\\Z", &[(b"a\n", true)]);
    check("x$|abc", &[(b"abc", true), (b"x\n", true), (b"xa", false)]);
    check("(two$)", &[(b"two\n", true)]);
    check("$a", &[(b"a", false), (b"\na", false)]);
    check("(a|aa)+$b", &[(b"aab", false), (b"aa\nb", false)]);
    // Multiline: `^` after any newline but one ending the subject, `$` before any newline.
    check("(?m)one$", &[(b"one\ntwo\n", true)]);
    check("(?m)^two", &[(b"one\ntwo\n", true), (b"onetwo", false)]);
    check("(?m)^(GET|POST) ", &[(b"x\r\nPOST /", true)]);
    // Word boundaries, ASCII words.
    check(
        "\\bbar",
        &[(b"foo bar", true), (b"foobar", false), (b"foo_bar", false)],
    );
    check(
        "bar\\b",
        &[(b"bar-x", true), (b"barx", false), (b"bar\xe9", true)],
    );
    check(
        "\\Bbar",
        &[(b"bar", false), (b"a bar", false), (b"xbar", true)],
    );
    check("[[:<:]]bar", &[(b"a bar", true), (b"abar", false)]);
    check("bar[[:>:]]", &[(b"bar x", true), (b"barx", false)]);
}

#[test]
fn classes() {
    check("[a-c]{3}", &[(b"xcabx", true), (b"abd", false)]);
    check("[^a-z ]", &[(b"abc def", false), (b"abc1", true)]);
    check("[]a]", &[(b"]", true), (b"b", false)]);
    check("[^]a]", &[(b"]a", false), (b"b", true)]);
    check("[a-]", &[(b"-", true)]);
    check("[-a]", &[(b"-", true)]);
    check("[a\\-z]", &[(b"-", true), (b"m", false)]);
    check("[\\]]", &[(b"]", true)]);
    // What the regex crate would read as nested classes or set operations are plain bytes.
    check("[[]", &[(b"[", true)]);
    check("[a&&b]", &[(b"&", true), (b"b", true), (b"c", false)]);
    check("[~~]", &[(b"~", true)]);
    check("[[:alpha:]]{5}", &[(b"ab1cdefg", true), (b"ab1cd", false)]);
    check("[[:digit:]]+", &[(b"x7", true), (b"x", false)]);
    check(
        "[[:^alpha:][:space:]]x",
        &[(b"1x", true), (b" x", true), (b"ax", false)],
    );
    check(
        "[[:xdigit:][:punct:]]",
        &[(b"f", true), (b"!", true), (b"g", false)],
    );
    check(
        "[^\\x00-\\xff]|x",
        &[(b"abc", false), (b"\xff", false), (b"x", true)],
    );
    check("\\d{2}", &[(b"a42", true), (b"4a2", false)]);
    check("\\D", &[(b"42", false), (b"4a", true)]);
    check("\\w+-\\w+", &[(b"baz-qux", true), (b"baz - qux", false)]);
    check("\\W", &[(b"a_1", false), (b"a 1", true)]);
    check(
        "\\s\\d",
        &[(b"x\t1", true), (b"x\x0b1", true), (b"x1", false)],
    );
    check("\\S", &[(b" \t\r\n", false)]);
    // PCRE2's \h and \v are white-space classes (the regex crate's \v is one byte).
    check(
        "x\\hy",
        &[
            (b"x y", true),
            (b"x\ty", true),
            (b"x\xa0y", true),
            (b"x\ny", false),
        ],
    );
    check(
        "\\v",
        &[
            (b"\x0b", true),
            (b"\x85", true),
            (b"\r", true),
            (b" ", false),
        ],
    );
    check("[\\h]z", &[(b"\xa0z", true)]);
    check("\\R", &[(b"\r\n", true), (b"\x0c", true), (b"x", false)]);
    check("\\N", &[(b"\n", false), (b"\nx", true)]);
    check("\\C", &[(b"\n", true)]);
    check(".", &[(b"\n", false), (b"\x00", true)]);
    check("(?s).", &[(b"\n", true)]);
    // Escapes for bytes.
    check("x\\ty", &[(b"x\ty", true)]);
    check("\\e\\cM\\a\\f", &[(b"\x1b\r\x07\x0c", true)]);
    check("\\o{12}\\012\\0", &[(b"\n\n\x00", true)]);
    check("\\141bc", &[(b"abc", true)]);
    check("[\\1]", &[(b"\x01", true), (b"1", false)]);
    check("\\x{ff}\\xfe\\x", &[(b"\xff\xfe\x00", true)]);
    check("\\Qa{2}.\\E", &[(b"a{2}.", true), (b"aa", false)]);
    check("\\Qa\\E+b", &[(b"aaab", true)]);
    check("a\\Q\\E\\.", &[(b"a.", true), (b"ab", false)]);
}

#[test]
fn repetition_bounds() {
    check("a{2}", &[(b"xaax", true), (b"xax", false)]);
    check("^a{2}$", &[(b"aa", true), (b"aaa", false)]);
    check(
        "^a{2,}$",
        &[(b"a", false), (b"aa", true), (b"aaaaaaa", true)],
    );
    check(
        "^a{1,2}c",
        &[(b"ac", true), (b"aac", true), (b"aaac", false)],
    );
    check("^a{0}b", &[(b"b", true), (b"ab", false)]);
    check(
        "^(ab){2,3}$",
        &[(b"abab", true), (b"ababab", true), (b"ab", false)],
    );
    // Lazy quantifiers give the same answer.
    check("a+?b", &[(b"aaab", true), (b"aaa", false)]);
    check("^a{2,3}?$", &[(b"aaa", true), (b"aaaa", false)]);
    check("a??b", &[(b"b", true)]);
    // Not quantifiers, so literal (PCRE2 10.42): `{,3}`, `{x}`, an unclosed `{`.
    check("a{,3}c", &[(b"a{,3}c", true), (b"ac", false)]);
    check("{x}", &[(b"{x}", true)]);
    check("a{1", &[(b"a{1", true)]);
    // Comments and the end of a quote may sit between an item and its quantifier.
    check("^a(?#comment)+$", &[(b"aaa", true)]);
    check("ab(?#c)", &[(b"ab", true)]);
    // Counted repetition up to PCRE2's 65535, bounded by the compiled size.
    check("^a{1000}$", &[(&[b'a'; 1000], true), (&[b'a'; 999], false)]);
    for (pattern, at, needle) in [
        ("a{3,1}", 1, "out of order"),
        ("a{65536}", 1, "number too big"),
        ("a{99999999999}", 1, "number too big"),
        ("a**", 2, "cannot follow another quantifier"),
        ("a{2}{3}", 4, "cannot follow another quantifier"),
        ("a*?+", 3, "cannot follow another quantifier"),
        ("*a", 0, "does not follow a repeatable item"),
        ("a|?", 2, "does not follow a repeatable item"),
        ("(?i)*", 4, "does not follow a repeatable item"),
        ("^*", 0, "cannot be repeated"),
        ("\\b+", 0, "cannot be repeated"),
        ("(a{1000}){1000}", 0, "too large"),
        ("[^a][^b]{65535}", 0, "too large"),
    ] {
        let (got_at, message) = refused(pattern.as_bytes());
        assert_eq!(got_at, at, "{pattern}: {message}");
        assert!(message.contains(needle), "{pattern}: {message}");
    }
}

#[test]
fn matching_is_byte_by_byte_on_any_payload() {
    let binary: &[u8] = b"\xff\xfe\x00\x80abc\xc3";
    check("^\\xff\\xfe\\x00", &[(binary, true)]);
    check("^.{3}\\x80", &[(binary, true)]);
    check("\\x80[a-c]+\\xc3$", &[(binary, true)]);
    check("[\\x80-\\xff]{2}", &[(binary, true), (b"\x80a\x81", false)]);
    check("[^\\x00-\\x7f]\\x00", &[(binary, true)]);
    check("abc.$", &[(binary, true)]);
    // A non-ASCII character in the pattern is its UTF-8 bytes, quantifiers take the last one.
    check("^é$", &[("é".as_bytes(), true), (b"\xe9", false)]);
    check(
        "^é+$",
        &[(b"\xc3\xa9\xa9\xa9", true), (b"\xc3\xa9\xc3\xa9", false)],
    );
    check("^..$", &[("é".as_bytes(), true)]);
    // Raw bytes in the pattern itself, as a filter string's \xff escape leaves them.
    assert!(Regex::new(b"^\xff.\x00").unwrap().is_match(b"\xff\xfe\x00"));
    assert!(!Regex::new(b"^\xff").unwrap().is_match(b"\xfe"));
}

#[test]
fn features_the_regex_crate_lacks_are_refused_where_they_are() {
    for (pattern, at, needle) in [
        ("(a)\\1", 3, "backreferences"),
        ("(a)(b)\\2", 6, "backreferences"),
        ("\\k<n>", 0, "backreferences"),
        ("\\g1", 0, "backreferences"),
        ("(?P=n)", 0, "backreferences"),
        ("x(?=a)", 1, "lookahead"),
        ("x(?!a)", 1, "lookahead"),
        ("(?<=a)b", 0, "lookbehind"),
        ("(?<!a)b", 0, "lookbehind"),
        ("ab(?>a)", 2, "atomic"),
        ("a++", 2, "possessive"),
        ("a*+", 2, "possessive"),
        ("x{2}+", 4, "possessive"),
        ("\\p{L}", 0, "Unicode"),
        ("[\\P{L}]", 1, "Unicode"),
        ("a\\X", 1, "Unicode"),
        ("\\N{U+41}", 0, "Unicode"),
        ("(?R)", 0, "recursion"),
        ("(a)(?1)", 3, "recursion"),
        ("(?-1)", 0, "recursion"),
        ("(?&n)", 0, "recursion"),
        ("(?(1)a|b)", 0, "conditional"),
        ("(*UTF)a", 0, "verbs"),
        ("(?C1)", 0, "callouts"),
        ("(?x)a b", 2, "\"x\""),
        ("\\x{100}", 0, "above \\xff"),
        ("\\400", 0, "above \\377"),
        ("\\y", 0, "\\y is not supported"),
        ("[\\d-z]", 1, "invalid range"),
        ("[a-\\d]", 3, "invalid range"),
        ("[z-a]", 1, "out of order"),
        ("[[:foo:]]", 1, "unknown POSIX class"),
        ("[[.a.]]", 1, "collating"),
        ("[", 0, "missing terminating ]"),
        ("(a", 0, "missing closing parenthesis"),
        ("a)", 1, "unmatched closing parenthesis"),
        ("a\\", 1, "ends with a backslash"),
        ("(?<1>a)", 2, "malformed group name"),
        ("(?#unclosed", 0, "(?# comment"),
        // `$` and multiline `^` where the crate's assertions would answer differently.
        ("a$\\n", 1, "\"$\""),
        ("a\\Z\\s", 1, "\"$\""),
        ("a$x?", 1, "\"$\""),
        ("(two$)*", 4, "\"$\""),
        ("a$\\b", 1, "\"$\""),
        ("(?m)^$", 4, "multiline"),
        ("(?m)^\\s*$", 4, "multiline"),
        ("(?m)x|^", 6, "multiline"),
    ] {
        let (got_at, message) = refused(pattern.as_bytes());
        assert_eq!(got_at, at, "{pattern}: {message}");
        assert!(message.contains(needle), "{pattern}: {message}");
    }
    let deep = format!("{}a{}", "(".repeat(65), ")".repeat(65));
    assert!(refused(deep.as_bytes()).1.contains("nested too deeply"));
    let fine = format!("{}a{}", "(".repeat(64), ")".repeat(64));
    assert!(is_match(&fine, b"a"));
    // The deepest accepted nesting, each level an alternation under a quantifier, stays within
    // the crate's own nesting limit.
    let fine = format!("{}a{}", "(?:x|".repeat(64), ")*".repeat(64));
    assert!(is_match(&fine, b"a"));
}

#[test]
fn features_with_no_effect_on_a_yes_no_answer_are_accepted() {
    check("\\Kab", &[(b"ab", true), (b"b", false)]);
    check("(?n)(a)b", &[(b"ab", true)]);
    check("(?U)a+b", &[(b"aab", true)]);
    check("(?J)(?<n>a)|(?<n>b)", &[(b"b", true)]);
    check("(?|(a)|(b))c", &[(b"bc", true), (b"c", false)]);
    check("(?<n>sel)ect", &[(b"select", true)]);
    check("(?P<n>sel)ect", &[(b"select", true)]);
    check("(?'n'sel)ect", &[(b"select", true)]);
    check("x*", &[(b"", true)]);
    check("", &[(b"", true), (b"abc", true)]);
    check("a|", &[(b"b", true)]);
    check("()", &[(b"b", true)]);
}

#[test]
fn the_translation_is_canonical() {
    let regex = Regex::new(b"(?-i)a.[b-d]+$|\\x{ff}\\b").unwrap();
    assert_eq!(
        regex.translated(),
        "(?:\\x61[\\x00-\\x09\\x0B-\\xFF](?:[\\x62-\\x64])+(?:\\n?\\z)|\\xFF\\b)"
    );
    let caseless = Regex::new(b"a(?m)^b$").unwrap();
    assert_eq!(
        caseless.translated(),
        "[\\x41\\x61](?m:^)[\\x42\\x62](?m:$)"
    );
}

/// Random patterns over PCRE2's syntax characters: never a panic, and never a translation the
/// `regex` crate rejects (which would be a bug here, not a refusal).
#[test]
fn random_patterns_translate_or_are_refused_cleanly() {
    use wirelag_dissectors::testutil::XorShift;
    let mut rng = XorShift(0x5eed_1234_abcd_ef01);
    let pieces: &[&[u8]] = &[
        b"a",
        b"B",
        b"0",
        b"\n",
        b"\xff",
        b".",
        b"^",
        b"$",
        b"|",
        b"(",
        b")",
        b"(?:",
        b"(?i)",
        b"(?-i)",
        b"(?m)",
        b"(?s)",
        b"(?#c)",
        b"[",
        b"]",
        b"[^",
        b"-",
        b"[:alpha:]",
        b"\\d",
        b"\\W",
        b"\\s",
        b"\\h",
        b"\\v",
        b"\\R",
        b"\\b",
        b"\\B",
        b"\\A",
        b"\\z",
        b"\\Z",
        b"\\x4",
        b"\\x{41}",
        b"\\Q",
        b"\\E",
        b"\\K",
        b"\\1",
        b"\\0",
        b"*",
        b"+",
        b"?",
        b"{2}",
        b"{1,3}",
        b"{2,}",
        b"{,2}",
        b"{",
        b"}",
        b"\\",
        b"&&",
        b"~~",
        b"--",
        b"[[:<:]]",
    ];
    let hays: &[&[u8]] = &[b"", b"a\n", b"aB0\xff\n", b"\n\nab"];
    let mut accepted = 0;
    for _ in 0..20_000 {
        let count = 1 + rng.below(10);
        let pattern: Vec<u8> = (0..count)
            .flat_map(|_| pieces[rng.below(pieces.len())].iter().copied())
            .collect();
        match Regex::new(&pattern) {
            Ok(regex) => {
                accepted += 1;
                for hay in hays {
                    regex.is_match(hay);
                }
            }
            Err((at, message)) => {
                assert!(
                    !message.contains("cannot be translated"),
                    "{:?}: {message}",
                    String::from_utf8_lossy(&pattern)
                );
                assert!(at <= pattern.len());
            }
        }
    }
    assert!(accepted > 2_000, "only {accepted} patterns accepted");
}
