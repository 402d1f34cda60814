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
//!   case, `#` and `;` starting comment lines only, indented lines continuing a value (blank
//!   lines within it kept), a key twice in a section an error, `[DEFAULT]` seen from every
//!   section that exists. A value over several lines, one inherited from `[DEFAULT]` (changing
//!   it would change every section's) or one holding `%` (which configparser interpolates) is
//!   read but not rewritten. The INI crates at hand read comments and continuations
//!   differently and give no positions, so this is read here.

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
        ConfigFormat::TomlRootKey | ConfigFormat::Dotenv | ConfigFormat::Htpasswd => {
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
        /// `!tag value`: not a plain string to rewrite.
        tagged: bool,
    },
    /// An alias: its target is read, but not rewritten through it.
    Alias,
}

/// Deepest nesting read: a document nested deeper (a hostile one) is refused, before its tree
/// could be too deep to drop.
const MAX_DEPTH: usize = 64;

struct Builder<'t> {
    text: &'t str,
    stack: Vec<(Node, Option<Option<String>>)>,
    root: Option<Node>,
    done: bool,
    too_deep: bool,
    /// Where each line starts, in bytes.
    line_starts: Vec<usize>,
}

impl Builder<'_> {
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
        // yaml-rust2's index counts characters, and a block scalar's line by its bytes; its
        // line and column (characters since the line's start) are exact after that line.
        let Some(&start) = self.line_starts.get(mark.line().saturating_sub(1)) else {
            return self.text.len();
        };
        let line = &self.text[start..];
        let line = &line[..line.find('\n').unwrap_or(line.len())];
        start
            + line
                .char_indices()
                .nth(mark.col())
                .map_or(line.len(), |(i, _)| i)
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.done {
            return;
        }
        if matches!(event, Event::MappingStart(..) | Event::SequenceStart(..))
            && self.stack.len() >= MAX_DEPTH
        {
            self.too_deep = true;
            self.done = true;
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
            Event::Scalar(value, style, _, tag) => {
                let start = self.byte(mark);
                self.attach(Node::Scalar {
                    value,
                    style,
                    start,
                    tagged: tag.is_some(),
                });
            }
            Event::Alias(_) => self.attach(Node::Alias),
            _ => {}
        }
    }
}

fn yaml_document(text: &str) -> Result<Node, String> {
    let line_starts = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let mut builder = Builder {
        text,
        stack: Vec::new(),
        root: None,
        done: false,
        too_deep: false,
        line_starts,
    };
    // Event by event (yaml-rust2's `load` recurses once per level of nesting, which a hostile
    // document could take past the stack), until the first document ends.
    let mut parser = Parser::new_from_str(text);
    while !builder.done {
        let (event, mark) = parser
            .next_token()
            .map_err(|e| format!("not valid YAML: {e}"))?;
        if event == Event::StreamEnd {
            break;
        }
        builder.on_event(event, mark);
    }
    if builder.too_deep {
        return Err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    Ok(builder.root.unwrap_or(Node::Map(Vec::new())))
}

/// The bytes of the scalar at `start`, as written: quotes included; `None` for a block scalar
/// or one written across lines.
fn scalar_span(text: &str, start: usize, style: TScalarStyle, value: &str) -> Option<Range<usize>> {
    let rest = text.get(start..)?;
    let quote = match style {
        TScalarStyle::DoubleQuoted => Some('"'),
        TScalarStyle::SingleQuoted => Some('\''),
        _ => None,
    };
    if quote.is_some_and(|q| !rest.starts_with(q)) {
        return None;
    }
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
            // YAML's null is no key at all.
            Node::Scalar {
                value,
                style: TScalarStyle::Plain,
                ..
            } if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL") => Ok(()),
            Node::Scalar {
                value,
                style,
                start,
                tagged,
            } => {
                out.push(Found {
                    name: name(at),
                    value: value.clone(),
                    span: (!tagged)
                        .then(|| scalar_span(text, *start, *style, value))
                        .flatten(),
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
    // Blank lines since it: part of its value if a continuation follows.
    let mut blanks = 0;
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
            blanks += 1;
            continue;
        }
        if let (Some((option, level)), Some(section)) = (&open, &current) {
            if indent > *level {
                // A continuation: the value is now several lines, read but not rewritten.
                if let Some(v) = sections.get_mut(section).and_then(|s| s.get_mut(option)) {
                    for _ in 0..=blanks {
                        v.value.push('\n');
                    }
                    v.value.push_str(stripped);
                    v.span = None;
                }
                blanks = 0;
                continue;
            }
        }
        blanks = 0;
        // `[name]`, whatever follows the last `]` (configparser matches `\[(.+)\]` from the
        // start of the line).
        if let Some(header) = stripped
            .strip_prefix('[')
            .and_then(|s| s.rfind(']').map(|end| &s[..end]))
            .filter(|h| !h.is_empty())
        {
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
                // configparser reads `%` as interpolation: such a value is not rewritten.
                span: (!value.contains('%')).then_some(value_start..value_start + value.len()),
            },
        );
        open = Some((option, indent));
    }
    // A section that does not exist has no keys (configparser raises NoSectionError), and a
    // value inherited from [DEFAULT] is every section's: read, never rewritten from here.
    let Some(values) = sections.get(section.as_str()) else {
        return Ok(Vec::new());
    };
    let found = match values.get(&key) {
        Some(v) => Some((v, true)),
        None if section != "DEFAULT" => sections
            .get("DEFAULT")
            .and_then(|s| s.get(&key))
            .map(|v| (v, false)),
        None => None,
    };
    Ok(found
        .map(|(v, own)| Found {
            name: path.to_string(),
            value: v.value.clone(),
            span: v.span.clone().filter(|_| own),
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
        let after_block = "motd: |\n  Bienvenue sur le serveur de l'équipe\ntoken: \"s3cr3t-old\"\nnothing: ~\ntagged: !secret name\n";
        assert_eq!(
            rotate(ConfigFormat::Yaml, after_block, "token", "NEW"),
            after_block.replace("\"s3cr3t-old\"", "\"NEW\""),
            "a key after a block scalar with non-ASCII text is found at its bytes"
        );
        assert_eq!(
            find(ConfigFormat::Yaml, after_block, &path("nothing")),
            Ok(vec![]),
            "a null is no key"
        );
        let tagged = find(ConfigFormat::Yaml, after_block, &path("tagged")).expect("valid");
        assert_eq!(
            tagged[0].span, None,
            "a tagged value is not rewritten as a plain string"
        );
        let deep = format!("{}x\n", "- ".repeat(50_000));
        assert!(
            find(ConfigFormat::Yaml, &deep, &path("a")).is_err_and(|e| e.contains("nested deeper")),
            "a hostile document nested 50,000 deep is refused, not followed down"
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
        let inherited = find(ConfigFormat::Ini, text, &path("server.fallback")).expect("valid");
        assert_eq!(
            (inherited[0].value.as_str(), inherited[0].span.clone()),
            ("inherited", None),
            "[DEFAULT] is seen from every section, and not rewritten from one of them"
        );
        assert_eq!(
            find(ConfigFormat::Ini, text, &path("nosuch.fallback")),
            Ok(vec![]),
            "a section that does not exist has no keys, not even [DEFAULT]'s"
        );
        let spaced = "[a] ; the app\ntoken = abc\n\n    def\nother = 50%\n";
        let token = find(ConfigFormat::Ini, spaced, &path("a.token")).expect("valid");
        assert_eq!(
            (token[0].value.as_str(), token[0].span.clone()),
            ("abc\n\ndef", None),
            "a header with a note after it, and a blank line within a continued value, as configparser reads them"
        );
        assert_eq!(
            find(ConfigFormat::Ini, spaced, &path("a.other")).map(|f| f[0].span.clone()),
            Ok(None),
            "a value with % (interpolated by configparser) is not rewritten"
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
