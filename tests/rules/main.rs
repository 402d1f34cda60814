//! The rules the layout keeps, checked so they stay kept. Each is a sentence in
//! ARCHITECTURE.md ("Invariants of the layout"); each check reads the manifests or the
//! sources, and each has a twin test showing the checker finds a break of its rule.
//!
//! - Only `gatehouse-store` runs the console's SQL (the agent keeps its own buffer).
//! - Only the app crate builds with Tauri, so every other test builds without WebKitGTK.
//! - The agent and the console share only the wire (`protocol`), certificates (`pki`), the
//!   event vocabulary (`events`) and the detector (`detect`); neither links the other.
//! - Only `gatehouse-agent-client` speaks the agent's routes.
//! - The console reads the time from its clock (`crates/core/src/clock.rs`) and the agent
//!   from its own (`crates/agent/src/clock.rs`); elapsed time (`Instant`) is not a date.
//!
//! The UI's rules (the clock, the one module importing `@tauri-apps`, views that never call
//! the host) are lint rules in `ui/eslint.config.js`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root")
}

/// Each package of the workspace: its name, its directory of sources, its normal
/// dependencies (every target's) and its dev-dependencies.
#[derive(Debug)]
struct Package {
    name: String,
    sources: PathBuf,
    deps: Vec<String>,
    dev_deps: Vec<String>,
}

fn packages(root: &Path) -> Vec<Package> {
    let read = |path: &Path| -> toml::Table {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{} is readable: {e}", path.display()));
        text.parse()
            .unwrap_or_else(|e| panic!("{} is TOML: {e}", path.display()))
    };
    let workspace = read(&root.join("Cargo.toml"));
    let members = workspace["workspace"]["members"]
        .as_array()
        .expect("workspace members")
        .iter()
        .map(|m| root.join(m.as_str().expect("member path")));
    let mut out = Vec::new();
    for dir in members.chain([root.to_path_buf()]) {
        let manifest = read(&dir.join("Cargo.toml"));
        let Some(package) = manifest.get("package") else {
            continue;
        };
        let name = package["name"].as_str().expect("package name").to_owned();
        let sources = if dir == root {
            root.join("src-tauri/src")
        } else {
            dir.join("src")
        };
        let names = |table: Option<&toml::Value>| -> Vec<String> {
            table
                .and_then(toml::Value::as_table)
                .map(|t| t.keys().cloned().collect())
                .unwrap_or_default()
        };
        let mut deps = names(manifest.get("dependencies"));
        if let Some(targets) = manifest.get("target").and_then(toml::Value::as_table) {
            for target in targets.values() {
                deps.extend(names(target.get("dependencies")));
            }
        }
        out.push(Package {
            name,
            sources,
            deps,
            dev_deps: names(manifest.get("dev-dependencies")),
        });
    }
    out
}

/// Every `.rs` file below `dir`, with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a readable source");
                out.push((path, text));
            }
        }
    }
    out.sort();
    out
}

const CONSOLE: [&str; 5] = [
    "gatehouse-core",
    "gatehouse-cli",
    "gatehouse-store",
    "gatehouse-agent-client",
    "gatehouse-console",
];
const SHARED: [&str; 4] = [
    "gatehouse-protocol",
    "gatehouse-pki",
    "gatehouse-events",
    "gatehouse-detect",
];

/// Packages that name `dependency` among their normal dependencies, except `allowed`.
fn depending_on(packages: &[Package], dependency: &str, allowed: &[&str]) -> Vec<String> {
    packages
        .iter()
        .filter(|p| !allowed.contains(&p.name.as_str()))
        .filter(|p| p.deps.iter().any(|d| d == dependency))
        .map(|p| p.name.clone())
        .collect()
}

/// Lines of the given packages' sources containing any of `needles`, outside `allowed`
/// files (paths relative to the workspace root). Comment lines are skipped.
fn lines_with(
    root: &Path,
    packages: &[&Package],
    needles: &[&str],
    allowed: &[&str],
) -> Vec<String> {
    let mut out = Vec::new();
    for package in packages {
        for (path, text) in sources(&package.sources) {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            if allowed.iter().any(|a| relative == Path::new(a)) {
                continue;
            }
            for (n, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("//") {
                    continue;
                }
                if needles.iter().any(|needle| code.contains(needle)) {
                    out.push(format!("{}:{}: {}", relative.display(), n + 1, code));
                }
            }
        }
    }
    out
}

fn by_name<'a>(packages: &'a [Package], names: &[&str]) -> Vec<&'a Package> {
    let found: Vec<&Package> = packages
        .iter()
        .filter(|p| names.contains(&p.name.as_str()))
        .collect();
    assert_eq!(
        found.len(),
        names.len(),
        "every package a rule names exists (else the rule checks nothing): {names:?}"
    );
    found
}

#[test]
fn only_the_store_runs_the_console_s_sql() {
    let packages = packages(&root());
    let offenders = depending_on(
        &packages,
        "rusqlite",
        &["gatehouse-store", "gatehouse-agent"],
    );
    assert!(
        offenders.is_empty(),
        "only gatehouse-store runs the console's SQL (tests may tamper with a database as \
         a dev-dependency); these depend on rusqlite: {offenders:?}"
    );
    let store = by_name(&packages, &["gatehouse-store"]);
    assert!(
        store[0].deps.iter().any(|d| d == "rusqlite"),
        "the store is where the SQL is, so the rule above is about the right crate"
    );
}

#[test]
fn only_the_app_crate_builds_with_tauri() {
    let packages = packages(&root());
    let offenders: Vec<String> = packages
        .iter()
        .filter(|p| p.name != "gatehouse-console")
        .filter(|p| {
            p.deps
                .iter()
                .chain(&p.dev_deps)
                .any(|d| d == "tauri" || d.starts_with("tauri-"))
        })
        .map(|p| p.name.clone())
        .collect();
    assert!(
        offenders.is_empty(),
        "every crate but the thin app crate builds and tests without WebKitGTK; these \
         depend on Tauri: {offenders:?}"
    );
}

#[test]
fn the_agent_and_the_console_share_only_the_wire_certificates_and_events() {
    let packages = packages(&root());
    let agent = &by_name(&packages, &["gatehouse-agent"])[0];
    let linked: Vec<&String> = agent
        .deps
        .iter()
        .filter(|d| d.starts_with("gatehouse-") && !SHARED.contains(&d.as_str()))
        .collect();
    assert!(
        linked.is_empty(),
        "the agent runs on hosts without the console's code; it links {linked:?}"
    );
    for console in by_name(&packages, &CONSOLE) {
        assert!(
            !console.deps.iter().any(|d| d == "gatehouse-agent"),
            "{} does not link the agent (tests may start one, as a dev-dependency)",
            console.name
        );
    }
}

#[test]
fn only_the_agent_client_speaks_the_agent_s_routes() {
    let root = root();
    let packages = packages(&root);
    let others: Vec<&str> = CONSOLE
        .into_iter()
        .filter(|n| *n != "gatehouse-agent-client")
        .collect();
    let found = lines_with(
        &root,
        &by_name(&packages, &others),
        &["protocol::paths", "\"/v1/", "API_VERSION"],
        &[],
    );
    assert!(
        found.is_empty(),
        "the console reaches agents through gatehouse-agent-client's typed methods, not \
         by building URLs:\n{}",
        found.join("\n")
    );
}

/// Calls that read the wall clock (a date, not elapsed time).
const WALL_CLOCK: [&str; 8] = [
    "now_utc(",
    "now_local(",
    "SystemTime::now(",
    "Timestamp::now",
    "Zoned::now",
    "Utc::now",
    "Local::now",
    "UNIX_EPOCH.elapsed(",
];

#[test]
fn the_console_reads_the_time_from_its_clock() {
    let root = root();
    let packages = packages(&root);
    let found = lines_with(
        &root,
        &by_name(&packages, &CONSOLE),
        &WALL_CLOCK,
        &["crates/core/src/clock.rs"],
    );
    assert!(
        found.is_empty(),
        "the console asks its Clock for the time, so tests can move it:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_agent_reads_the_time_from_its_clock() {
    let root = root();
    let packages = packages(&root);
    let found = lines_with(
        &root,
        &by_name(&packages, &["gatehouse-agent"]),
        &WALL_CLOCK,
        &["crates/agent/src/clock.rs"],
    );
    assert!(
        found.is_empty(),
        "the agent asks its clock for the time, so tests can move it:\n{}",
        found.join("\n")
    );
}

/// The checkers themselves find what they look for, so a rule that passes is not a rule
/// that cannot fail.
#[test]
fn the_checkers_find_a_break_of_each_rule() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("deep")).expect("a source tree");
    std::fs::write(
        src.join("deep/when.rs"),
        "// Timestamp::now in a comment is fine\nlet t = jiff::Timestamp::now();\n\
         let u = format!(\"/v1/events\");\n",
    )
    .expect("a source file");
    let fake = Package {
        name: "gatehouse-fake".into(),
        sources: src.clone(),
        deps: vec!["rusqlite".into(), "tauri".into()],
        dev_deps: Vec::new(),
    };
    let clock = lines_with(dir.path(), &[&fake], &WALL_CLOCK, &[]);
    assert_eq!(
        clock,
        vec!["src/deep/when.rs:2: let t = jiff::Timestamp::now();".to_owned()],
        "the clock rule finds a read in a nested module and skips comments"
    );
    assert!(
        lines_with(dir.path(), &[&fake], &WALL_CLOCK, &["src/deep/when.rs"]).is_empty(),
        "an allowed file is allowed"
    );
    assert_eq!(
        lines_with(dir.path(), &[&fake], &["\"/v1/"], &[]).len(),
        1,
        "the route rule finds a URL built by hand"
    );
    let fakes = [fake];
    assert_eq!(
        depending_on(&fakes, "rusqlite", &[]),
        vec!["gatehouse-fake".to_owned()],
        "the dependency rule finds a crate linking rusqlite"
    );
    assert!(
        depending_on(&fakes, "rusqlite", &["gatehouse-fake"]).is_empty(),
        "an allowed crate is allowed"
    );
    let parsed: BTreeMap<String, usize> = packages(&root())
        .into_iter()
        .map(|p| (p.name, p.deps.len()))
        .collect();
    assert!(
        parsed.get("gatehouse-core").is_some_and(|n| *n > 5)
            && parsed.contains_key("gatehouse-console"),
        "the manifests are read, the app crate at the root included: {parsed:?}"
    );
}
