//! Reading a string quoted the way Go's `%q` (strconv.Quote) writes it,
//! which is how the Downward API writes annotation values into a file
//! (kubernetes pkg/fieldpath/fieldpath.go, `FormatMap`: `"%v=%q\n"` per
//! key, sorted).
//!
//! Escapes (Go spec, "Rune literals" and "String literals"): `\a \b \f \n
//! \r \t \v \\ \"`, `\xHH` (a byte), `\NNN` (three octal digits, a byte),
//! `\uHHHH` and `\UHHHHHHHH` (a code point). Bytes from `\x`/octal escapes
//! are joined and must form UTF-8, as annotation values are.

/// Why a quoted string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnquoteError {
    /// It does not start and end with `"`.
    #[error("not a double-quoted string")]
    NotQuoted,
    /// An unknown or cut-short escape, at this byte offset.
    #[error("bad escape at byte {0}")]
    BadEscape(usize),
    /// A `"` inside the string that is not escaped, at this byte offset.
    #[error("unescaped quote at byte {0}")]
    StrayQuote(usize),
    /// A `\u`/`\U` escape that is not a Unicode scalar value.
    #[error("escape at byte {0} is not a Unicode character")]
    BadCodePoint(usize),
    /// The bytes given by escapes are not UTF-8.
    #[error("the escaped bytes are not UTF-8")]
    NotUtf8,
}

/// The string `quoted` (with its quotes) stands for.
pub fn unquote(quoted: &str) -> Result<String, UnquoteError> {
    let inner = quoted
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or(UnquoteError::NotQuoted)?;
    let b = inner.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => return Err(UnquoteError::StrayQuote(i + 1)),
            b'\\' => {
                let at = i + 1;
                let esc = *b.get(i + 1).ok_or(UnquoteError::BadEscape(at))?;
                i += 2;
                let simple = match esc {
                    b'a' => Some(0x07),
                    b'b' => Some(0x08),
                    b'f' => Some(0x0c),
                    b'n' => Some(b'\n'),
                    b'r' => Some(b'\r'),
                    b't' => Some(b'\t'),
                    b'v' => Some(0x0b),
                    b'\\' => Some(b'\\'),
                    b'"' => Some(b'"'),
                    _ => None,
                };
                if let Some(c) = simple {
                    out.push(c);
                    continue;
                }
                match esc {
                    b'x' => {
                        let v = hex(b, i, 2).ok_or(UnquoteError::BadEscape(at))?;
                        // Two hex digits are at most 0xff.
                        out.push(v as u8);
                        i += 2;
                    }
                    b'0'..=b'7' => {
                        let digits = b.get(i - 1..i + 2).ok_or(UnquoteError::BadEscape(at))?;
                        if !digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                            return Err(UnquoteError::BadEscape(at));
                        }
                        let v = digits
                            .iter()
                            .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                        out.push(u8::try_from(v).map_err(|_| UnquoteError::BadEscape(at))?);
                        i += 2;
                    }
                    b'u' | b'U' => {
                        let n = if esc == b'u' { 4 } else { 8 };
                        let v = hex(b, i, n).ok_or(UnquoteError::BadEscape(at))?;
                        let c = char::from_u32(v).ok_or(UnquoteError::BadCodePoint(at))?;
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        i += n;
                    }
                    _ => return Err(UnquoteError::BadEscape(at)),
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| UnquoteError::NotUtf8)
}

/// `n` hex digits of `b` from `at`, as a number.
fn hex(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let digits = b.get(at..at + n)?;
    let text = std::str::from_utf8(digits).ok()?;
    if !text.bytes().all(|d| d.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Quotes as Go's strconv.Quote does (for printable ASCII and the
    /// escapes it writes), to test the round trip.
    pub(crate) fn go_quote(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '\x07' => out.push_str("\\a"),
                '\x08' => out.push_str("\\b"),
                '\x0c' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\x0b' => out.push_str("\\v"),
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                c if c.is_control() && (c as u32) < 0x10000 => {
                    out.push_str(&format!("\\u{:04x}", c as u32))
                }
                c if c.is_control() => out.push_str(&format!("\\U{:08x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    #[test]
    fn escapes() {
        assert_eq!(unquote(r#""""#).unwrap(), "");
        assert_eq!(
            unquote(r#""[{\"name\": \"a\"}]\n""#).unwrap(),
            "[{\"name\": \"a\"}]\n"
        );
        assert_eq!(
            unquote(r#""\a\b\f\r\t\v\\""#).unwrap(),
            "\x07\x08\x0c\r\t\x0b\\"
        );
        assert_eq!(unquote(r#""\x41\101\u00e9\U0001F600""#).unwrap(), "AAé😀");
        assert_eq!(unquote(r#""\xc3\xa9""#).unwrap(), "é");
        assert_eq!(unquote("\"é\"").unwrap(), "é");
    }

    #[test]
    fn errors() {
        for (q, e) in [
            ("abc", UnquoteError::NotQuoted),
            ("\"", UnquoteError::NotQuoted),
            ("\"a\\\"", UnquoteError::BadEscape(2)),
            ("\"\\q\"", UnquoteError::BadEscape(1)),
            ("\"\\x4\"", UnquoteError::BadEscape(1)),
            ("\"\\400\"", UnquoteError::BadEscape(1)),
            ("\"\\u12\"", UnquoteError::BadEscape(1)),
            ("\"\\ud800\"", UnquoteError::BadCodePoint(1)),
            ("\"\\xff\"", UnquoteError::NotUtf8),
            ("\"a\"b\"", UnquoteError::StrayQuote(2)),
        ] {
            assert_eq!(unquote(q), Err(e), "{q}");
        }
    }

    proptest! {
        #[test]
        fn round_trip(s in "\\PC{0,64}|[\\x00-\\x7f]{0,64}") {
            prop_assert_eq!(unquote(&go_quote(&s)).unwrap(), s);
        }

        #[test]
        fn never_panics(s in ".{0,80}") {
            let _ = unquote(&s);
            let _ = unquote(&format!("\"{s}\""));
        }
    }
}
