//! Where a secret sits in a structured config file (JSON, YAML, INI): a key path such as
//! `auth.token`, `plugins."x.y".tokens[0].token` or `clients[*].secret`.
//!
//! Grammar: segments joined by `.`, each a bare key (letters, digits, `_`, `-`, `$`, `@`) or a
//! double-quoted one (`\"` and `\\` escaped), and array indexes `[N]`, or `[*]` for every
//! element (a list of keys). In an INI file the first segment is the section and the second
//! the key. A path with `[*]` names each value it finds by the path with that element's index,
//! which is the key's name everywhere else (the inventory, a rotation).

use std::fmt;

/// One step of a [`KeyPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    Key(String),
    Index(usize),
    /// `[*]`: every element of an array.
    Every,
}

/// A parsed key path; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyPath {
    segments: Vec<Segment>,
}

const MAX_SEGMENTS: usize = 32;

fn bare(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_-$@".contains(c)
}

impl KeyPath {
    /// Parse a path; the error says what is wrong and where.
    pub fn parse(text: &str) -> Result<KeyPath, String> {
        let bad = |at: usize, what: &str| format!("key path {text:?}, at {}: {what}", at + 1);
        let chars: Vec<char> = text.chars().collect();
        let mut segments = Vec::new();
        let mut i = 0;
        let mut expect_key = !text.starts_with('[');
        while i < chars.len() || expect_key {
            if expect_key {
                match chars.get(i) {
                    Some('"') => {
                        let mut key = String::new();
                        i += 1;
                        loop {
                            match chars.get(i) {
                                None => return Err(bad(i, "a quoted key is not closed")),
                                Some('"') => break,
                                Some('\\') => match chars.get(i + 1) {
                                    Some(c @ ('"' | '\\')) => {
                                        key.push(*c);
                                        i += 1;
                                    }
                                    _ => return Err(bad(i, "only \\\" and \\\\ are escapes")),
                                },
                                Some(c) => key.push(*c),
                            }
                            i += 1;
                        }
                        i += 1;
                        segments.push(Segment::Key(key));
                    }
                    Some(c) if bare(*c) => {
                        let start = i;
                        while chars.get(i).is_some_and(|c| bare(*c)) {
                            i += 1;
                        }
                        segments.push(Segment::Key(chars[start..i].iter().collect()));
                    }
                    _ => {
                        return Err(bad(
                            i,
                            "expected a key (quote it if it has other characters)",
                        ))
                    }
                }
                expect_key = false;
                continue;
            }
            match chars[i] {
                '.' => {
                    i += 1;
                    expect_key = true;
                }
                '[' => {
                    let end = chars[i..]
                        .iter()
                        .position(|c| *c == ']')
                        .map(|p| i + p)
                        .ok_or_else(|| bad(i, "[ is not closed"))?;
                    let inside: String = chars[i + 1..end].iter().collect();
                    segments.push(if inside == "*" {
                        Segment::Every
                    } else {
                        Segment::Index(
                            inside
                                .parse()
                                .ok()
                                .filter(|_| inside.chars().all(|c| c.is_ascii_digit()))
                                .ok_or_else(|| bad(i, "an index is a number or *"))?,
                        )
                    });
                    i = end + 1;
                }
                _ => return Err(bad(i, "expected . or [ between segments")),
            }
        }
        if segments.is_empty() {
            return Err(format!("key path {text:?} is empty"));
        }
        if segments.len() > MAX_SEGMENTS {
            return Err(format!(
                "key path {text:?} has more than {MAX_SEGMENTS} segments"
            ));
        }
        Ok(KeyPath { segments })
    }

    /// A path of the given segments.
    pub fn of(segments: Vec<Segment>) -> KeyPath {
        KeyPath { segments }
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Whether the path names a list of keys (`[*]`).
    pub fn is_list(&self) -> bool {
        self.segments.contains(&Segment::Every)
    }

    /// Whether `name`, a key's name (a path without `[*]`), is one this path finds.
    pub fn finds(&self, name: &str) -> bool {
        let Ok(concrete) = KeyPath::parse(name) else {
            return false;
        };
        concrete.segments.len() == self.segments.len()
            && self
                .segments
                .iter()
                .zip(&concrete.segments)
                .all(|(want, got)| match (want, got) {
                    (Segment::Every, Segment::Index(_)) => true,
                    (want, got) => want == got,
                })
    }
}

impl fmt::Display for KeyPath {
    /// The path written back: keys bare where they can be, quoted otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if !key.is_empty() && key.chars().all(bare) {
                        f.write_str(key)?;
                    } else {
                        write!(f, "\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""))?;
                    }
                }
                Segment::Index(n) => write!(f, "[{n}]")?,
                Segment::Every => f.write_str("[*]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_into_keys_indexes_and_lists_and_print_back() {
        let path = KeyPath::parse(r#"plugins."x.y".tokens[0].token"#).expect("a valid path");
        assert_eq!(
            path.segments(),
            [
                Segment::Key("plugins".into()),
                Segment::Key("x.y".into()),
                Segment::Key("tokens".into()),
                Segment::Index(0),
                Segment::Key("token".into()),
            ],
            "a quoted key keeps its dots; an index follows its key"
        );
        assert_eq!(
            path.to_string(),
            r#"plugins."x.y".tokens[0].token"#,
            "printed as written"
        );
        let list = KeyPath::parse("clients[*].secret").expect("a list of keys");
        assert!(list.is_list(), "[*] is a list of keys");
        assert!(
            list.finds("clients[3].secret"),
            "an element's key is one the list finds"
        );
        assert!(
            !list.finds("clients[3].name"),
            "another field of the element is not"
        );
        assert!(!list.finds("clients.secret"), "a key is not an element");
        assert_eq!(
            KeyPath::parse("[1]").map(|p| p.segments().to_vec()),
            Ok(vec![Segment::Index(1)]),
            "a root array's element"
        );
    }

    #[test]
    fn a_wrong_path_says_where() {
        for (text, says) in [
            ("", "expected a key"),
            ("a..b", "at 3: expected a key"),
            ("a[x]", "an index is a number or *"),
            ("a[1", "[ is not closed"),
            ("\"a", "not closed"),
            ("a b", "expected . or ["),
            ("a.", "expected a key"),
        ] {
            let err = KeyPath::parse(text).expect_err(text);
            assert!(
                err.contains(says),
                "{text:?} gives {err:?}, which should say {says:?}"
            );
        }
    }
}
