//! A scanner for the flat JSON objects log lines are: it walks the top-level fields of one
//! object, borrowing every value, and decodes a string only when it has escapes. Nested arrays
//! and objects are skipped, not built. This is several times faster than deserializing the
//! whole object, which matters at millions of lines a second.
//!
//! It checks structure (quotes, nesting, separators, nothing after the object), not the fine
//! grammar of numbers: a log line is either a JSON object or unparsed.

use std::borrow::Cow;

/// A top-level value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// A string's contents between its quotes, still escaped if `escaped`.
    Str { raw: &'a str, escaped: bool },
    /// A number, `true`, `false` or `null`, as written.
    Scalar(&'a str),
    /// An array or object, skipped.
    Nested,
}

impl<'a> Value<'a> {
    /// The string value, decoded; `None` for other values or a broken escape.
    pub fn text(self) -> Option<Cow<'a, str>> {
        match self {
            Value::Str {
                raw,
                escaped: false,
            } => Some(Cow::Borrowed(raw)),
            Value::Str { raw, escaped: true } => {
                let quoted = format!("\"{raw}\"");
                serde_json::from_str::<String>(&quoted).ok().map(Cow::Owned)
            }
            _ => None,
        }
    }

    /// A status code written bare (`401`) or quoted (`"401"`).
    pub fn status(self) -> Option<u16> {
        match self {
            Value::Scalar(text)
            | Value::Str {
                raw: text,
                escaped: false,
            } => text.parse().ok(),
            _ => None,
        }
    }
}

/// Call `field` for each top-level `key: value` of the object in `line`. Returns `None` if
/// the line is not one well-formed JSON object.
pub fn for_each_field<'a>(line: &'a [u8], mut field: impl FnMut(&'a str, Value<'a>)) -> Option<()> {
    let text = simdutf8::basic::from_utf8(line).ok()?;
    let bytes = text.as_bytes();
    let mut pos = skip_ws(bytes, 0);
    if bytes.get(pos) != Some(&b'{') {
        return None;
    }
    pos = skip_ws(bytes, pos + 1);
    if bytes.get(pos) == Some(&b'}') {
        return (skip_ws(bytes, pos + 1) == bytes.len()).then_some(());
    }
    loop {
        if bytes.get(pos) != Some(&b'"') {
            return None;
        }
        // Keys are compared raw: one with escapes never matches a name the parsers want.
        let (key_end, _) = string_end(bytes, pos + 1)?;
        let key = &text[pos + 1..key_end];
        pos = skip_ws(bytes, key_end + 1);
        if bytes.get(pos) != Some(&b':') {
            return None;
        }
        pos = skip_ws(bytes, pos + 1);
        let value = match *bytes.get(pos)? {
            b'"' => {
                let (end, escaped) = string_end(bytes, pos + 1)?;
                let value = Value::Str {
                    raw: &text[pos + 1..end],
                    escaped,
                };
                pos = end + 1;
                value
            }
            b'{' | b'[' => {
                pos = skip_nested(bytes, pos)?;
                Value::Nested
            }
            _ => {
                let start = pos;
                while pos < bytes.len()
                    && !matches!(bytes[pos], b',' | b'}' | b' ' | b'\t' | b'\r' | b'\n')
                {
                    pos += 1;
                }
                if pos == start {
                    return None;
                }
                Value::Scalar(&text[start..pos])
            }
        };
        field(key, value);
        pos = skip_ws(bytes, pos);
        match bytes.get(pos)? {
            b',' => pos = skip_ws(bytes, pos + 1),
            b'}' => return (skip_ws(bytes, pos + 1) == bytes.len()).then_some(()),
            _ => return None,
        }
    }
}

fn skip_ws(bytes: &[u8], mut pos: usize) -> usize {
    while pos < bytes.len() && matches!(bytes[pos], b' ' | b'\t' | b'\r' | b'\n') {
        pos += 1;
    }
    pos
}

/// Index of the quote closing a string whose contents start at `pos`, and whether it has
/// escapes. Eight bytes at a time: one word, and the high bit of each of its bytes says
/// whether that byte is a quote or a backslash (a loop byte by byte takes a branch per byte).
/// Past 64 bytes (user agents, long paths) memchr takes over.
fn string_end(bytes: &[u8], mut pos: usize) -> Option<(usize, bool)> {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const LOW7: u64 = ONES * 0x7f;
    const HIGH: u64 = ONES * 0x80;
    // The high bit of each byte of `w` that equals `b` (exactly: no sum carries over).
    let equal = |w: u64, b: u8| {
        let x = w ^ (ONES * u64::from(b));
        !(((x & LOW7) + LOW7) | x) & HIGH
    };
    let mut escaped = false;
    let short_end = bytes.len().min(pos + 64);
    while pos + 8 <= short_end {
        let mut chunk = [0u8; 8];
        chunk.copy_from_slice(&bytes[pos..pos + 8]);
        let w = u64::from_le_bytes(chunk);
        let hits = equal(w, b'"') | equal(w, b'\\');
        if hits == 0 {
            pos += 8;
            continue;
        }
        let found = pos + hits.trailing_zeros() as usize / 8;
        if bytes[found] == b'"' {
            return Some((found, escaped));
        }
        escaped = true;
        pos = found + 2;
    }
    while pos < short_end {
        match bytes[pos] {
            b'"' => return Some((pos, escaped)),
            b'\\' => {
                escaped = true;
                pos += 2;
            }
            _ => pos += 1,
        }
    }
    while pos < bytes.len() {
        let found = pos + memchr::memchr2(b'"', b'\\', &bytes[pos..])?;
        if bytes[found] == b'"' {
            return Some((found, escaped));
        }
        escaped = true;
        pos = found + 2;
    }
    None
}

/// Index just past the array or object starting at `pos`. Bracket kinds must match; nesting
/// deeper than 64 levels is refused (no log line needs it).
fn skip_nested(bytes: &[u8], mut pos: usize) -> Option<usize> {
    // One bit per open level: 1 for an object, 0 for an array.
    let (mut stack, mut depth) = (0u64, 0u32);
    while pos < bytes.len() {
        match bytes[pos] {
            b'"' => {
                pos = string_end(bytes, pos + 1)?.0 + 1;
                continue;
            }
            open @ (b'{' | b'[') => {
                if depth == 64 {
                    return None;
                }
                stack = (stack << 1) | u64::from(open == b'{');
                depth += 1;
            }
            close @ (b'}' | b']') => {
                if depth == 0 || (stack & 1 == 1) != (close == b'}') {
                    return None;
                }
                stack >>= 1;
                depth -= 1;
                if depth == 0 {
                    return Some(pos + 1);
                }
            }
            _ => {}
        }
        pos += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(line: &str) -> Option<Vec<(String, Value<'_>)>> {
        let mut out = Vec::new();
        for_each_field(line.as_bytes(), |k, v| out.push((k.to_owned(), v)))?;
        Some(out)
    }

    /// The word-at-a-time search finds the same closing quote as reading byte by byte, with
    /// a quote or an escape at every offset around the 8-byte words and the 64-byte switch
    /// to memchr.
    #[test]
    fn string_end_agrees_with_a_byte_by_byte_reading() {
        fn by_bytes(bytes: &[u8], mut pos: usize) -> Option<(usize, bool)> {
            let mut escaped = false;
            while pos < bytes.len() {
                match bytes[pos] {
                    b'"' => return Some((pos, escaped)),
                    b'\\' => {
                        escaped = true;
                        pos += 2;
                    }
                    _ => pos += 1,
                }
            }
            None
        }
        let mut checked = 0;
        for len in 0..90 {
            for special in [None, Some(b'"'), Some(b'\\')] {
                for at in 0..len.max(1) {
                    for tail in [&b""[..], b"\"", b"x\"y", b"\\\"", b"\\"] {
                        let mut text = vec![b'a'; len];
                        if let (Some(byte), Some(slot)) = (special, text.get_mut(at)) {
                            *slot = byte;
                        }
                        text.extend_from_slice(tail);
                        for start in [0, 1, 3] {
                            let start = start.min(text.len());
                            assert_eq!(
                                string_end(&text, start),
                                by_bytes(&text, start),
                                "{:?} from {start}",
                                String::from_utf8_lossy(&text)
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 10_000, "every case was compared ({checked})");
    }

    #[test]
    fn walks_flat_objects_and_skips_nested_values() {
        let got =
            fields(r#"{"a": "x", "n": 12, "arr": ["}", {"b": [1, 2]}], "t": true, "z": "y"}"#)
                .expect("valid");
        let keys: Vec<_> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["a", "n", "arr", "t", "z"],
            "nested values are skipped whole, even with brackets in strings"
        );
        assert_eq!(
            got[1].1,
            Value::Scalar("12"),
            "a number is a scalar, as written"
        );
        assert_eq!(got[2].1, Value::Nested, "an array is skipped as nested");
        assert_eq!(
            got[4].1.text().as_deref(),
            Some("y"),
            "the field after the nested value is still read"
        );
    }

    #[test]
    fn decodes_escapes_only_when_present() {
        let got = fields(r#"{"p": "/a\"b\u00e9\\", "q": "plain"}"#).expect("valid");
        assert_eq!(
            got[0].1.text().as_deref(),
            Some("/a\"bé\\"),
            "escapes are decoded"
        );
        assert!(
            matches!(got[1].1.text(), Some(Cow::Borrowed("plain"))),
            "no allocation without escapes"
        );
    }

    #[test]
    fn refuses_what_is_not_one_object() {
        for bad in [
            r#""#,
            r#"[]"#,
            r#"{"a": "x""#,
            r#"{"a" "x"}"#,
            r#"{"a": "x"} trailing"#,
            r#"{"a": ["x"}"#,
            r#"{"a": }"#,
            r#"{"a": "x\"}"#,
            r#"{"a": [[[["#,
        ] {
            assert!(fields(bad).is_none(), "{bad:?} must be refused");
        }
        assert_eq!(
            fields("{}").map(|f| f.len()),
            Some(0),
            "an empty object is fine"
        );
        assert!(
            for_each_field(b"{\"a\": \"\xff\"}", |_, _| {}).is_none(),
            "invalid UTF-8 is refused"
        );
    }

    #[test]
    fn agrees_with_serde_json_on_well_formed_lines() {
        let line = r#"{"path": "/api/v1/v1/sessions", "permissions": ["read", "write"], "status_code": 401, "nested": {"x": {"y": "}"}}, "event": "Request completed"}"#;
        let reference: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(line).expect("valid JSON");
        let got = fields(line).expect("valid");
        assert_eq!(got.len(), reference.len(), "same number of fields");
        for (key, value) in got {
            if let Some(text) = value.text() {
                assert_eq!(
                    reference[&key].as_str(),
                    Some(text.as_ref()),
                    "every value matches serde_json's reading: {key}"
                );
            }
        }
    }
}
