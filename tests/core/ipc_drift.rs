//! The TypeScript in ui/src/gen/ must match the Rust IPC types exactly.
//! Regenerate with `GATEHOUSE_BLESS=1 cargo nextest run -p gatehouse-core ipc_drift`.

use std::collections::BTreeSet;
use std::path::PathBuf;

fn gen_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/gen")
}

#[test]
fn generated_typescript_matches_rust_types() {
    let dir = gen_dir();
    let expected = gatehouse_core::ipc::typescript();
    if std::env::var_os("GATEHOUSE_BLESS").is_some() {
        std::fs::create_dir_all(&dir).expect("create ui/src/gen");
        for entry in std::fs::read_dir(&dir).expect("list ui/src/gen").flatten() {
            std::fs::remove_file(entry.path()).expect("remove stale file");
        }
        for (name, text) in &expected {
            std::fs::write(dir.join(name), text).expect("write generated file");
        }
    }
    let mut drift = Vec::new();
    for (name, text) in &expected {
        match std::fs::read_to_string(dir.join(name)) {
            Ok(on_disk) if &on_disk == text => {}
            Ok(_) => drift.push(format!("{name} differs from the Rust type")),
            Err(_) => drift.push(format!("{name} is missing")),
        }
    }
    let known: BTreeSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    for entry in std::fs::read_dir(&dir)
        .expect("ui/src/gen exists")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !known.contains(name.as_str()) {
            drift.push(format!("{name} has no Rust type any more"));
        }
    }
    assert!(
        drift.is_empty(),
        "ui/src/gen has drifted from the Rust IPC types; rerun with GATEHOUSE_BLESS=1 and \
         commit the result:\n  {}",
        drift.join("\n  ")
    );
}

#[test]
fn error_codes_reach_typescript_as_a_closed_union() {
    let (_, text) = gatehouse_core::ipc::typescript()
        .into_iter()
        .find(|(name, _)| name == "ErrorCode.ts")
        .expect("ErrorCode is exported");
    for code in ["keychain_unavailable", "schema_too_new", "invalid_input"] {
        assert!(
            text.contains(&format!("\"{code}\"")),
            "the UI branches on {code}, so it must be in the union: {text}"
        );
    }
}

/// Tauri refuses a command its capability does not allow ("not allowed by ACL"), at run time
/// only: every command of the list must be allowed to the window, and nothing else.
#[test]
fn the_window_s_capability_allows_exactly_the_declared_commands() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../src-tauri/capabilities/main.json");
    let text = std::fs::read_to_string(&path).expect("the window's capability");
    let capability: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let allowed: BTreeSet<String> = capability["permissions"]
        .as_array()
        .expect("a permissions list")
        .iter()
        .filter_map(|p| p.as_str())
        .filter_map(|p| p.strip_prefix("allow-"))
        .map(str::to_owned)
        .collect();
    let declared: BTreeSet<String> = gatehouse_core::ipc::commands()
        .iter()
        .map(|c| c.name.replace('_', "-"))
        .collect();
    let missing: Vec<&String> = declared.difference(&allowed).collect();
    let stray: Vec<&String> = allowed.difference(&declared).collect();
    assert!(
        missing.is_empty() && stray.is_empty(),
        "src-tauri/capabilities/main.json must allow every declared command and no other: \
         missing {missing:?}, not declared {stray:?}"
    );
}
