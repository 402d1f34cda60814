//! The agent's modules depend on each other in layers, never in a circle: read every file
//! under `crates/agent/src`, collect the `crate::<module>` paths each one names (in `use`
//! items, in expressions, in `{…}` groups, and `super::` resolved from where it is written),
//! and check the graph of top-level modules (a directory module is one node).
//!
//! `lib.rs` and `main.rs` (which names the library as `gatehouse_agent::`) and `app.rs` are
//! the composition roots: they may use everything, and nothing may use them. Only they may
//! use `api`, the HTTP layer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// May depend on every module; no module may depend on them.
const ROOTS: [&str; 3] = ["lib", "main", "app"];
/// The HTTP layer: only the roots start it.
const HTTP: &str = "api";

#[test]
fn the_agent_s_modules_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = sources(&src);
    assert!(
        files.iter().any(|(path, _)| path == Path::new("agent.rs")),
        "the agent's sources are found under {}",
        src.display()
    );
    let graph = Graph::of(&files);
    assert!(
        graph
            .edges
            .get("lib")
            .is_some_and(|e| e.contains("service")),
        "the graph sees lib.rs declare its modules: {:?}",
        graph.edges
    );
    if let Some(cycle) = graph.cycle() {
        panic!(
            "the agent's modules depend on each other in a circle: {}\n{}",
            cycle.join(" -> "),
            graph.explain(&cycle)
        );
    }
    let wrong = graph.layer_violations();
    assert!(
        wrong.is_empty(),
        "only the composition roots ({}) may use {} or be used:\n{}",
        ROOTS.join(", "),
        HTTP,
        wrong.join("\n")
    );
}

#[test]
fn the_checker_names_a_cycle_through_groups_and_super() {
    let files = vec![
        (
            PathBuf::from("lib.rs"),
            "pub mod a;\npub mod b;\npub mod c;\n".to_owned(),
        ),
        (
            PathBuf::from("a.rs"),
            "// crate::c::x in a comment is no dependency\nuse crate::{b::X, fsutil};\nconst S: &str = \"crate::c\";\nfn f<'a>(_: &'a str) -> char { '\"' }\n".to_owned(),
        ),
        (
            PathBuf::from("b/mod.rs"),
            "mod inner;\n".to_owned(),
        ),
        (
            PathBuf::from("b/inner.rs"),
            "mod tests { use super::super::super::c::Y; }\n".to_owned(),
        ),
        (
            PathBuf::from("c.rs"),
            "fn g() { crate::a::f(\"x\"); }\n".to_owned(),
        ),
        (PathBuf::from("fsutil.rs"), "const Q: char = '\\'';\n".to_owned()),
    ];
    let graph = Graph::of(&files);
    assert_eq!(
        graph
            .edges
            .get("a")
            .map(|e| e.iter().cloned().collect::<Vec<_>>()),
        Some(vec!["b".to_owned(), "fsutil".to_owned()]),
        "a group names each of its modules; comments and strings name none"
    );
    assert_eq!(
        graph.cycle().map(|c| c.join(" -> ")),
        Some("a -> b -> c -> a".to_owned()),
        "super:: inside an inline module of a nested file resolves to the crate root's c"
    );
    let root_user = vec![
        (
            PathBuf::from("lib.rs"),
            "pub mod a;\npub mod app;\npub use a::X;\n".to_owned(),
        ),
        (PathBuf::from("app.rs"), "use crate::a::X;\n".to_owned()),
        (
            PathBuf::from("a.rs"),
            "use crate::AgentConfig;\n".to_owned(),
        ),
    ];
    assert_eq!(
        Graph::of(&root_user).cycle().map(|c| c.join(" -> ")),
        Some("a -> lib -> a".to_owned()),
        "an item taken from the crate root's re-exports is a dependency on the root"
    );
    let http_user = vec![
        (
            PathBuf::from("lib.rs"),
            "pub mod api;\npub mod ops;\n".to_owned(),
        ),
        (PathBuf::from("api.rs"), String::new()),
        (
            PathBuf::from("ops.rs"),
            "use crate::api::PeerAddr;\n".to_owned(),
        ),
    ];
    let wrong = Graph::of(&http_user).layer_violations();
    assert_eq!(wrong.len(), 1, "ops may not use the HTTP layer: {wrong:?}");
}

/// Every `.rs` file under `dir`, with its path relative to `dir`.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).expect("the source folder can be listed") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file is UTF-8");
                let relative = path.strip_prefix(dir).expect("under src").to_owned();
                out.push((relative, text));
            }
        }
    }
    out.sort();
    out
}

#[derive(Debug, Default)]
struct Graph {
    /// Top-level module → the top-level modules it names.
    edges: BTreeMap<String, BTreeSet<String>>,
    /// Where each edge was first seen, as `file:line`.
    sites: BTreeMap<(String, String), String>,
}

impl Graph {
    fn of(files: &[(PathBuf, String)]) -> Graph {
        let modules: BTreeSet<String> = files
            .iter()
            .map(|(path, _)| node_of(path))
            .filter(|n| n != "lib" && n != "main")
            .collect();
        let mut graph = Graph::default();
        for (path, text) in files {
            let from = node_of(path);
            graph.edges.entry(from.clone()).or_default();
            for (target, line) in references(path, text) {
                // A name that is no top-level module is an item of the crate root (a
                // re-export, or an inline module of lib.rs).
                let to = if modules.contains(&target) {
                    target
                } else {
                    "lib".to_owned()
                };
                if to == from {
                    continue;
                }
                graph
                    .sites
                    .entry((from.clone(), to.clone()))
                    .or_insert_with(|| format!("{}:{line}", path.display()));
                graph.edges.entry(from.clone()).or_default().insert(to);
            }
        }
        graph
    }

    /// One cycle, as the nodes along it with the first repeated at the end.
    fn cycle(&self) -> Option<Vec<String>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        fn visit(
            graph: &Graph,
            node: &str,
            marks: &mut BTreeMap<String, Mark>,
            stack: &mut Vec<String>,
        ) -> Option<Vec<String>> {
            marks.insert(node.to_owned(), Mark::Open);
            stack.push(node.to_owned());
            for next in graph.edges.get(node).into_iter().flatten() {
                match marks.get(next).copied().unwrap_or(Mark::New) {
                    Mark::Open => {
                        let start = stack.iter().position(|n| n == next).expect("on the stack");
                        let mut cycle = stack[start..].to_vec();
                        cycle.push(next.clone());
                        return Some(cycle);
                    }
                    Mark::New => {
                        if let Some(cycle) = visit(graph, next, marks, stack) {
                            return Some(cycle);
                        }
                    }
                    Mark::Done => {}
                }
            }
            stack.pop();
            marks.insert(node.to_owned(), Mark::Done);
            None
        }
        let mut marks = BTreeMap::new();
        for node in self.edges.keys() {
            if marks.get(node).copied().unwrap_or(Mark::New) == Mark::New {
                if let Some(cycle) = visit(self, node, &mut marks, &mut Vec::new()) {
                    return Some(cycle);
                }
            }
        }
        None
    }

    /// Where each step of a cycle is written.
    fn explain(&self, cycle: &[String]) -> String {
        cycle
            .windows(2)
            .map(|pair| {
                let site = self
                    .sites
                    .get(&(pair[0].clone(), pair[1].clone()))
                    .map_or("(a `mod` declaration)", String::as_str);
                format!("  {} -> {} at {site}", pair[0], pair[1])
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Modules that use a composition root, or the HTTP layer without being a root.
    fn layer_violations(&self) -> Vec<String> {
        let mut wrong = Vec::new();
        for (from, targets) in &self.edges {
            if ROOTS.contains(&from.as_str()) {
                continue;
            }
            for to in targets {
                if ROOTS.contains(&to.as_str()) || to == HTTP {
                    let site = self
                        .sites
                        .get(&(from.clone(), to.clone()))
                        .map_or("", String::as_str);
                    wrong.push(format!("  {from} -> {to} at {site}"));
                }
            }
        }
        wrong
    }
}

/// The top-level module a file belongs to: `ops/rotate.rs` is `ops`, `tail.rs` is `tail`.
fn node_of(path: &Path) -> String {
    let first = path
        .components()
        .next()
        .expect("a relative path")
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.strip_suffix(".rs").unwrap_or(&first).to_owned()
}

/// The module path of a file: `ops/rotate.rs` is `[ops, rotate]`, `ops/mod.rs` is `[ops]`,
/// `lib.rs` is `[]`.
fn module_path(path: &Path) -> Vec<String> {
    let mut parts: Vec<String> = path
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    match last.as_str() {
        "mod.rs" => {}
        "lib.rs" | "main.rs" if parts.is_empty() => {}
        name => parts.push(name.trim_end_matches(".rs").to_owned()),
    }
    parts
}

/// The top-level modules `text` (the file at `path`) names, with the line of each mention.
/// `lib.rs` also names every module it declares.
fn references(path: &Path, text: &str) -> Vec<(String, usize)> {
    let tokens = tokens(text);
    let file_path = module_path(path);
    let is_main = path == Path::new("main.rs");
    let is_lib = path == Path::new("lib.rs");
    // Inline `mod name {` blocks open at the brace depth they started at.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let (token, line) = (&tokens[i].0, tokens[i].1);
        let next = |k: usize| tokens.get(i + k).map(|t| t.0.as_str());
        match token.as_str() {
            "{" => depth += 1,
            "}" => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            "mod" => {
                if let Some(name) = next(1).filter(|n| is_ident(n)) {
                    match next(2) {
                        Some("{") => inline.push((name.to_owned(), depth)),
                        Some(";") if is_lib => found.push((name.to_owned(), line)),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        let root_path = match token.as_str() {
            "crate" if !is_main => Some((Vec::new(), i + 1)),
            "gatehouse_agent" if is_main => Some((Vec::new(), i + 1)),
            "super" => {
                let mut here: Vec<String> = file_path.clone();
                here.extend(inline.iter().map(|(n, _)| n.clone()));
                let mut j = i;
                while tokens.get(j).is_some_and(|t| t.0 == "super")
                    && tokens.get(j + 1).is_some_and(|t| t.0 == "::")
                {
                    here.pop();
                    j += 2;
                }
                // Only a chain that starts here: `super::super::x` is seen once.
                let starts = i == 0 || tokens[i - 1].0 != "::";
                starts.then_some((here, j - 1))
            }
            _ => None,
        };
        if let Some((base, colons)) = root_path {
            if tokens.get(colons).is_some_and(|t| t.0 == "::") {
                let after = colons + 1;
                match base.first() {
                    Some(top) => found.push((top.clone(), line)),
                    None => match tokens.get(after).map(|t| t.0.as_str()) {
                        Some("{") => found.extend(group_heads(&tokens, after)),
                        Some(name) if is_ident(name) => found.push((name.to_owned(), line)),
                        _ => {}
                    },
                }
            }
        }
        i += 1;
    }
    found
}

/// The first name of each element of the `{…}` group opening at `open`.
fn group_heads(tokens: &[(String, usize)], open: usize) -> Vec<(String, usize)> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut expect_head = true;
    for (token, line) in &tokens[open..] {
        match token.as_str() {
            "{" => {
                depth += 1;
                if depth == 1 {
                    expect_head = true;
                }
            }
            "}" => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            "," if depth == 1 => expect_head = true,
            name if depth == 1 && expect_head && is_ident(name) => {
                heads.push((name.to_owned(), *line));
                expect_head = false;
            }
            _ => expect_head = false,
        }
    }
    heads
}

fn is_ident(token: &str) -> bool {
    token
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && token.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// Identifiers, `::` and single punctuation, with their line, from Rust source without its
/// comments, strings and character literals.
fn tokens(text: &str) -> Vec<(String, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let at = |k: usize| chars.get(k).copied();
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c == '/' && at(i + 1) == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == Some('*') {
            let mut nesting = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == Some('*') {
                    nesting += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == Some('/') {
                    nesting -= 1;
                    i += 2;
                    if nesting == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if (c == 'r' || c == 'b') && raw_string_start(&chars, i).is_some() {
            let (hashes, body) = raw_string_start(&chars, i).expect("checked");
            i = body;
            loop {
                match at(i) {
                    None => break,
                    Some('"') if (1..=hashes).all(|h| at(i + h) == Some('#')) => {
                        i += 1 + hashes;
                        break;
                    }
                    Some(ch) => {
                        if ch == '\n' {
                            line += 1;
                        }
                        i += 1;
                    }
                }
            }
        } else if c == '"' {
            i += 1;
            while let Some(ch) = at(i) {
                match ch {
                    '\\' => {
                        // A line continuation is still a new line.
                        if at(i + 1) == Some('\n') {
                            line += 1;
                        }
                        i += 2;
                    }
                    '"' => {
                        i += 1;
                        break;
                    }
                    _ => {
                        if ch == '\n' {
                            line += 1;
                        }
                        i += 1;
                    }
                }
            }
        } else if c == '\'' {
            // A character literal ('x', '\n', '\''), or else a lifetime ('a).
            if at(i + 1) == Some('\\') {
                // The quote, the backslash and the escaped character, then up to the close.
                i += 3;
                while at(i).is_some_and(|ch| ch != '\'') {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == Some('\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while at(i).is_some_and(|ch| ch.is_alphanumeric() || ch == '_') {
                i += 1;
            }
            out.push((chars[start..i].iter().collect(), line));
        } else if c == ':' && at(i + 1) == Some(':') {
            out.push(("::".to_owned(), line));
            i += 2;
        } else if c.is_whitespace() {
            i += 1;
        } else {
            out.push((c.to_string(), line));
            i += 1;
        }
    }
    out
}

/// For `r"`, `r#"`, `br"`…: how many `#` and where the body starts.
fn raw_string_start(chars: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    // Not the tail of an identifier such as `bar"`.
    if i > 0 && chars[i - 1].is_alphanumeric() {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while chars.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (chars.get(j) == Some(&'"')).then_some((hashes, j + 1))
}
