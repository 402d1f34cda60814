//! Keys inside JSON, YAML and INI config files, found by a key path
//! (`gatehouse_events::KeyPath`), and the bytes that spell each one, so a rotation replaces
//! only those bytes: comments, order, indentation and every other value stay as they were.
//!
//! - JSON is read with serde_json; its `RawValue`s borrow from the text, which gives each
//!   value's place. A key written twice is read as the last, as most JSON readers do.
//! - YAML is read with yaml-rust2, whose parser events say where each scalar starts; only the
//!   first document is read, and a key reached through an alias, or a secret written as a
//!   block or across lines, is found but refused for rewriting.
//! - INI is read as Python's `configparser` reads it by default (the INI services here are
//!   Python): `[section]` headers, `key = value` or `key: value`, keys without regard to
//!   case, `#` and `;` starting comment lines only, indented lines continuing a value, a key
//!   twice in a section an error, `[DEFAULT]` seen from every section. The INI crates at hand
//!   read comments and continuations differently and give no positions, so this is read here.

use std::collections::HashMap;
use std::ops::Range;

use gatehouse_events::keypath::{KeyPath, Segment};
use gatehouse_events::profile::ConfigFormat;
use serde_json::value::RawValue;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A key found in a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The key's name: the path with each list element's index.
    pub name: String,
    /// The value as the service reads it.
    pub value: String,
    /// The bytes of the text that spell the value, quotes included; `None` when it cannot be
    /// replaced in place (a YAML block or alias, an INI value over several lines).
    pub span: Option<Range<usize>>,
}

/// Every key `path` finds in `text`, a document in `format` (empty: the path leads nowhere).
/// An error says the document cannot be read, or the path ends on something not a string.
pub fn find(format: ConfigFormat, text: &str, path: &KeyPath) -> Result<Vec<Found>, String> {
    let mut found = Vec::new();
    match format {
        ConfigFormat::Json => {
            let root: &RawValue =
                serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
            json(text, root, path.segments(), &mut Vec::new(), &mut found)?;
        }
        ConfigFormat::Yaml => {
            let root = yaml_document(text)?;
            yaml(text, &root, path.segments(), &mut Vec::new(), &mut found)?;
        }
        ConfigFormat::Ini => found.extend(ini(text, path)?),
        ConfigFormat::TomlRootKey | ConfigFormat::Dotenv => {
            return Err(format!("{format:?} is not read by key path"))
        }
    }
    Ok(found)
}

/// `text` with the value spelt at `span` replaced by `value`, spelt as `format` needs (a
/// JSON string, a double-quoted YAML scalar, an INI value as it is).
pub fn replace(format: ConfigFormat, text: &str, span: Range<usize>, value: &str) -> String {
    let spelt = match format {
        ConfigFormat::Json => serde_json::to_string(value).unwrap_or_default(),
        ConfigFormat::Yaml => format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\"")),
        _ => value.to_owned(),
    };
    let mut out = String::with_capacity(text.len() + spelt.len());
    out.push_str(&text[..span.start]);
    out.push_str(&spelt);
    out.push_str(&text[span.end..]);
    out
}

fn name(at: &[Segment]) -> String {
    KeyPath::of(at.to_vec()).to_string()
}

fn json<'a>(
    text: &'a str,
    node: &'a RawValue,
    rest: &[Segment],
    at: &mut Vec<Segment>,
    out: &mut Vec<Found>,
) -> Result<(), String> {
    let Some((first, rest)) = rest.split_first() else {
        let value: String = serde_json::from_str(node.get())
            .map_err(|_| format!("{} is not a string", name(at)))?;
        // The raw value borrows from `text`: its place is its distance from the start.
        let start = node.get().as_ptr() as usize - text.as_ptr() as usize;
        out.push(Found {
            name: name(at),
            value,
            span: Some(start..start + node.get().len()),
        });
        return Ok(());
    };
    let mut visit = |segment: Segment, child: &'a RawValue, out: &mut Vec<Found>| {
        at.push(segment);
        let result = json(text, child, rest, at, out);
        at.pop();
        result
    };
    match first {
        Segment::Key(key) => {
            if let Ok(map) = serde_json::from_str::<HashMap<String, &RawValue>>(node.get()) {
                if let Some(child) = map.get(key) {
                    visit(first.clone(), child, out)?;
                }
            }
        }
        Segment::Index(n) => {
            if let Ok(list) = serde_json::from_str::<Vec<&RawValue>>(node.get()) {
                if let Some(child) = list.get(*n) {
                    visit(first.clone(), child, out)?;
                }
            }
        }
        Segment::Every => {
            if let Ok(list) = serde_json::from_str::<Vec<&RawValue>>(node.get()) {
                for (i, child) in list.into_iter().enumerate() {
                    visit(Segment::Index(i), child, out)?;
                }
            }
        }
    }
    Ok(())
}

/// A YAML node with where its scalars start.
#[derive(Debug)]
enum Node {
    Map(Vec<(Option<String>, Node)>),
    Seq(Vec<Node>),
    Scalar {
        value: String,
        style: TScalarStyle,
        start: usize,
    },
    /// An alias: its target is read, but not rewritten through it.
    Alias,
}

#[derive(Default)]
struct Builder {
    stack: Vec<(Node, Option<Option<String>>)>,
    root: Option<Node>,
    done: bool,
    chars_to_bytes: Vec<usize>,
}

impl Builder {
    fn attach(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                self.done = true;
            }
            Some((Node::Map(_), key @ None)) => {
                // A key: a scalar's text, anything else (a complex key) matches no path.
                *key = Some(match node {
                    Node::Scalar { value, .. } => Some(value),
                    _ => None,
                });
            }
            Some((Node::Map(entries), key @ Some(_))) => {
                entries.push((key.take().flatten(), node));
            }
            Some((Node::Seq(items), _)) => items.push(node),
            Some(_) => {}
        }
    }

    fn byte(&self, mark: Marker) -> usize {
        // yaml-rust2 counts characters; the text is sliced by bytes.
        self.chars_to_bytes
            .get(mark.index())
            .copied()
            .unwrap_or_else(|| self.chars_to_bytes.last().copied().unwrap_or(0))
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.done {
            return;
        }
        match event {
            Event::MappingStart(..) => self.stack.push((Node::Map(Vec::new()), None)),
            Event::SequenceStart(..) => self.stack.push((Node::Seq(Vec::new()), None)),
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some((node, _)) = self.stack.pop() {
                    self.attach(node);
                }
            }
            Event::Scalar(value, style, _, _) => {
                let start = self.byte(mark);
                self.attach(Node::Scalar {
                    value,
                    style,
                    start,
                });
            }
            Event::Alias(_) => self.attach(Node::Alias),
            _ => {}
        }
    }
}

fn yaml_document(text: &str) -> Result<Node, String> {
    let mut chars_to_bytes: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    chars_to_bytes.push(text.len());
    let mut builder = Builder {
        chars_to_bytes,
        ..Builder::default()
    };
    Parser::new_from_str(text)
        .load(&mut builder, false)
        .map_err(|e| format!("not valid YAML: {e}"))?;
    Ok(builder.root.unwrap_or(Node::Map(Vec::new())))
}

/// The bytes of the scalar at `start`, as written: quotes included; `None` for a block scalar
/// or one written across lines.
fn scalar_span(text: &str, start: usize, style: TScalarStyle, value: &str) -> Option<Range<usize>> {
    let rest = text.get(start..)?;
    let end = match style {
        TScalarStyle::Plain => {
            (rest.starts_with(value) && !value.is_empty() && !value.contains('\n'))
                .then_some(value.len())?
        }
        TScalarStyle::DoubleQuoted => {
            let mut escaped = false;
            let close = rest.char_indices().skip(1).find(|&(_, c)| {
                let closes = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                closes
            })?;
            close.0 + 1
        }
        TScalarStyle::SingleQuoted => {
            let bytes = rest.as_bytes();
            let mut i = 1;
            loop {
                match bytes.get(i)? {
                    b'\'' if bytes.get(i + 1) == Some(&b'\'') => i += 2,
                    b'\'' => break i + 1,
                    _ => i += 1,
                }
            }
        }
        _ => return None,
    };
    let spelt = &rest[..end];
    // A quoted scalar folded over lines is read with its breaks changed: not rewritten.
    (!spelt.contains('\n')).then_some(start..start + end)
}

fn yaml(
    text: &str,
    node: &Node,
    rest: &[Segment],
    at: &mut Vec<Segment>,
    out: &mut Vec<Found>,
) -> Result<(), String> {
    let Some((first, rest)) = rest.split_first() else {
        return match node {
            Node::Scalar {
                value,
                style,
                start,
            } => {
                out.push(Found {
                    name: name(at),
                    value: value.clone(),
                    span: scalar_span(text, *start, *style, value),
                });
                Ok(())
            }
            Node::Alias => Err(format!(
                "{} is an alias (*name); set the key itself where it is defined",
                name(at)
            )),
            _ => Err(format!("{} is not a string", name(at))),
        };
    };
    let mut visit = |segment: Segment, child: &Node, out: &mut Vec<Found>| {
        at.push(segment);
        let result = yaml(text, child, rest, at, out);
        at.pop();
        result
    };
    match (first, node) {
        (Segment::Key(key), Node::Map(entries)) => {
            // The last of a key written twice, as the service's reader takes it.
            if let Some((_, child)) = entries
                .iter()
                .rev()
                .find(|(k, _)| k.as_deref() == Some(key.as_str()))
            {
                visit(first.clone(), child, out)?;
            }
        }
        (Segment::Index(n), Node::Seq(items)) => {
            if let Some(child) = items.get(*n) {
                visit(first.clone(), child, out)?;
            }
        }
        (Segment::Every, Node::Seq(items)) => {
            for (i, child) in items.iter().enumerate() {
                visit(Segment::Index(i), child, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// One `key = value` of an INI file.
struct IniValue {
    value: String,
    span: Option<Range<usize>>,
}

fn ini(text: &str, path: &KeyPath) -> Result<Vec<Found>, String> {
    let [Segment::Key(section), Segment::Key(key)] = path.segments() else {
        return Err(format!("an INI key is section.key, not {path}"));
    };
    let key = key.to_lowercase();
    let mut sections: HashMap<String, HashMap<String, IniValue>> = HashMap::new();
    let mut current: Option<String> = None;
    // The option a continuation line would add to, and its indentation.
    let mut open: Option<(String, usize)> = None;
    let mut offset = 0;
    for (number, raw_line) in text.split_inclusive('\n').enumerate() {
        let line_start = offset;
        offset += raw_line.len();
        let line = raw_line.trim_end_matches(['\n', '\r']);
        let stripped = line.trim();
        let indent = line.len() - line.trim_start().len();
        if stripped.starts_with('#') || stripped.starts_with(';') {
            continue;
        }
        if stripped.is_empty() {
            open = None;
            continue;
        }
        if let (Some((option, level)), Some(section)) = (&open, &current) {
            if indent > *level {
                // A continuation: the value is now several lines, read but not rewritten.
                if let Some(v) = sections.get_mut(section).and_then(|s| s.get_mut(option)) {
                    v.value.push('\n');
                    v.value.push_str(stripped);
                    v.span = None;
                }
                continue;
            }
        }
        if let Some(header) = stripped.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            sections.entry(header.to_owned()).or_default();
            current = Some(header.to_owned());
            open = None;
            continue;
        }
        let Some(section_name) = &current else {
            return Err(format!(
                "line {}: a value before any [section], which configparser refuses",
                number + 1
            ));
        };
        let Some(split) = stripped.find(['=', ':']) else {
            // configparser keeps a bare key only with allow_no_value; it is no secret either way.
            open = None;
            continue;
        };
        let option = stripped[..split].trim_end().to_lowercase();
        let value = stripped[split + 1..].trim_start();
        let value_start = line_start + indent + (stripped.len() - value.len());
        let values = sections.entry(section_name.clone()).or_default();
        if values.contains_key(&option) {
            return Err(format!(
                "line {}: {option} is set twice in [{section_name}], which configparser refuses",
                number + 1
            ));
        }
        values.insert(
            option.clone(),
            IniValue {
                value: value.to_owned(),
                span: Some(value_start..value_start + value.len()),
            },
        );
        open = Some((option, indent));
    }
    let found = sections
        .get(section.as_str())
        .and_then(|s| s.get(&key))
        .or_else(|| sections.get("DEFAULT").and_then(|s| s.get(&key)));
    Ok(found
        .map(|v| Found {
            name: path.to_string(),
            value: v.value.clone(),
            span: v.span.clone(),
        })
        .into_iter()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> KeyPath {
        KeyPath::parse(text).expect("a valid path")
    }

    fn rotate(format: ConfigFormat, text: &str, key: &str, new: &str) -> String {
        let found = find(format, text, &path(key)).expect("readable");
        let one = found
            .iter()
            .find(|f| f.name == key)
            .expect("the key is found");
        replace(format, text, one.span.clone().expect("replaceable"), new)
    }

    #[test]
    fn a_json_key_is_found_by_its_path_and_replaced_alone() {
        let text = "{\n  \"plugins\": {\"x.y\": {\"tokens\": [ {\"token\": \"old\\u002dA\"}, {\"token\": \"second\"} ]}},\n  \"signing\": \"keep\"\n}\n";
        let found = find(
            ConfigFormat::Json,
            text,
            &path(r#"plugins."x.y".tokens[*].token"#),
        )
        .expect("valid JSON");
        assert_eq!(
            found
                .iter()
                .map(|f| (f.name.as_str(), f.value.as_str()))
                .collect::<Vec<_>>(),
            [
                (r#"plugins."x.y".tokens[0].token"#, "old-A"),
                (r#"plugins."x.y".tokens[1].token"#, "second")
            ],
            "each element of the list is a key, named by its index, its escapes read"
        );
        let new = rotate(
            ConfigFormat::Json,
            text,
            r#"plugins."x.y".tokens[0].token"#,
            "NEW",
        );
        assert_eq!(
            new,
            text.replace("\"old\\u002dA\"", "\"NEW\""),
            "only the value's bytes change; layout, the other token and the signing secret stay"
        );
        assert!(
            find(ConfigFormat::Json, "{\"a\": 1}", &path("a"))
                .is_err_and(|e| e.contains("not a string")),
            "a number where a key should be is said"
        );
        assert_eq!(
            find(ConfigFormat::Json, "{\"a\": {}}", &path("a.b")),
            Ok(vec![]),
            "a path that leads nowhere finds nothing"
        );
        assert!(
            find(ConfigFormat::Json, "{\"a\": ", &path("a"))
                .is_err_and(|e| e.contains("not valid JSON")),
            "a broken document is said"
        );
    }

    #[test]
    fn a_yaml_key_keeps_its_comments_and_a_block_or_alias_is_not_rewritten() {
        let text = "# Ünïcode comment first\nauth:\n  # the API token\n  token: 'o''ld'   # inline\n  users:\n    - name: a\n      secret: plainvalue\n    - name: b\n      secret: \"dq\\\"x\"\nother: &anchor shared\nref: *anchor\nblock: |\n  multi\n";
        assert_eq!(
            rotate(ConfigFormat::Yaml, text, "auth.token", "NEW"),
            text.replace("'o''ld'", "\"NEW\""),
            "a single-quoted value is replaced, the comment after it stays"
        );
        let secrets =
            find(ConfigFormat::Yaml, text, &path("auth.users[*].secret")).expect("valid YAML");
        assert_eq!(
            secrets.iter().map(|f| f.value.as_str()).collect::<Vec<_>>(),
            ["plainvalue", "dq\"x"],
            "a list of keys, plain and double-quoted"
        );
        assert_eq!(
            rotate(ConfigFormat::Yaml, text, "auth.users[1].secret", "N2"),
            text.replace("\"dq\\\"x\"", "\"N2\""),
            "a double-quoted value with an escaped quote is replaced whole"
        );
        assert_eq!(
            rotate(ConfigFormat::Yaml, text, "auth.users[0].secret", "N3"),
            text.replace("plainvalue", "\"N3\""),
            "a plain value after non-ASCII text is found at its bytes"
        );
        let block = find(ConfigFormat::Yaml, text, &path("block")).expect("valid YAML");
        assert_eq!(
            block[0].span, None,
            "a block scalar is read but not rewritten"
        );
        assert!(
            find(ConfigFormat::Yaml, text, &path("ref")).is_err_and(|e| e.contains("alias")),
            "a key reached through an alias is said"
        );
    }

    #[test]
    fn an_ini_value_is_read_as_configparser_reads_it_and_replaced_alone() {
        let text = "; settings\n[DEFAULT]\nfallback = inherited\n\n[server]\nHost = 0.0.0.0\nAPI_Token : abc;def # not a comment\n\n[auth]\nnote = first\n  second\n";
        let found = find(ConfigFormat::Ini, text, &path("server.api_token")).expect("valid INI");
        assert_eq!(
            found[0].value, "abc;def # not a comment",
            "keys match without regard to case; configparser has no inline comments"
        );
        assert_eq!(
            rotate(ConfigFormat::Ini, text, "server.api_token", "NEW"),
            text.replace("abc;def # not a comment", "NEW"),
            "only the value changes"
        );
        assert_eq!(
            find(ConfigFormat::Ini, text, &path("server.fallback")).map(|f| f[0].value.clone()),
            Ok("inherited".into()),
            "[DEFAULT] is seen from every section"
        );
        let multi = find(ConfigFormat::Ini, text, &path("auth.note")).expect("valid INI");
        assert_eq!(
            (multi[0].value.as_str(), multi[0].span.clone()),
            ("first\nsecond", None),
            "an indented line continues the value, which is then not rewritten"
        );
        assert!(
            find(ConfigFormat::Ini, "[a]\nk = 1\nK = 2\n", &path("a.k"))
                .is_err_and(|e| e.contains("set twice")),
            "a key twice in a section is refused, as configparser does"
        );
        assert!(
            find(ConfigFormat::Ini, "k = 1\n", &path("a.k"))
                .is_err_and(|e| e.contains("before any [section]")),
            "a value outside a section is refused"
        );
    }
}
