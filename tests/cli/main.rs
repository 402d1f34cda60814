//! The `gatehouse` binary, run as a user would run it.

use std::path::Path;
use std::process::{Command, Output};

fn gatehouse(data_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.arg("--data-dir").arg(data_dir).args(args);
    cmd.env(
        "GATEHOUSE_KEYCHAIN_SERVICE",
        format!("Gatehouse cli test {}", std::process::id()),
    );
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the gatehouse binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn info_json_reports_the_explicit_data_dir() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run(&mut gatehouse(tmp.path(), &["info", "--json"]));
    assert!(out.status.success(), "info must succeed: {}", stderr(&out));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).expect("info --json is JSON");
    assert_eq!(
        info["data_dir"].as_str(),
        Some(tmp.path().to_str().expect("utf-8 temp path")),
        "--data-dir must be honoured"
    );
    assert!(
        info["schema_version"].as_u64().is_some_and(|v| v >= 1),
        "schema reported: {info}"
    );
}

#[test]
fn the_data_dir_env_variable_is_honoured() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run(Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["info", "--json"])
        .env("GATEHOUSE_DATA_DIR", tmp.path()));
    assert!(out.status.success(), "info must succeed: {}", stderr(&out));
    assert!(
        tmp.path().join("gatehouse.sqlite3").is_file(),
        "GATEHOUSE_DATA_DIR must place the database there"
    );
}

#[test]
fn doctor_without_a_secret_service_fails_and_says_how_to_fix_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run(gatehouse(tmp.path(), &["doctor"]).env(
        "DBUS_SESSION_BUS_ADDRESS",
        "unix:path=/nonexistent/gatehouse-test-bus",
    ));
    assert_eq!(
        out.status.code(),
        Some(1),
        "doctor must fail when no keychain answers"
    );
    let text = stdout(&out);
    assert!(
        text.contains("failing  keychain"),
        "names the failing part: {text}"
    );
    assert!(
        text.contains("never falls back to a file"),
        "says secrets are not stored elsewhere: {text}"
    );
    assert!(
        text.contains("Secret Service"),
        "says what to start: {text}"
    );
}

#[test]
fn doctor_passes_with_a_real_secret_service() {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "run through scripts/test.sh, which provides gnome-keyring"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run(&mut gatehouse(tmp.path(), &["doctor", "--json"]));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("doctor --json");
    assert_eq!(report["keychain"]["state"], "available", "{report}");
    assert!(
        out.status.success(),
        "doctor exits 0 when healthy: {}",
        stderr(&out)
    );
}

#[test]
fn a_bad_theme_is_refused_with_its_code_and_nothing_changes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run(&mut gatehouse(tmp.path(), &["settings", "theme", "purple"]));
    assert_eq!(out.status.code(), Some(1), "invalid input must fail");
    assert!(
        stderr(&out).starts_with("error[invalid_input]:"),
        "scripts branch on the code: {}",
        stderr(&out)
    );
    let out = run(&mut gatehouse(tmp.path(), &["settings", "--json"]));
    let settings: serde_json::Value = serde_json::from_slice(&out.stdout).expect("settings json");
    assert_eq!(
        settings["theme"], "system",
        "a refused change leaves the setting alone"
    );
}

#[test]
fn a_theme_set_from_the_cli_is_kept() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run(&mut gatehouse(tmp.path(), &["settings", "theme", "dark"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&mut gatehouse(tmp.path(), &["settings"]));
    assert_eq!(
        stdout(&out).trim(),
        "theme  dark",
        "the choice persists in the database"
    );
}

#[test]
fn errors_are_json_in_json_mode() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run(&mut gatehouse(
        tmp.path(),
        &["--json", "settings", "theme", "x"],
    ));
    let err: serde_json::Value =
        serde_json::from_slice(&out.stderr).expect("error on stderr is JSON in --json mode");
    assert_eq!(err["code"], "invalid_input", "{err}");
    assert!(
        err["message"].as_str().is_some_and(|m| m.contains("theme")),
        "{err}"
    );
}

#[test]
fn a_database_from_a_newer_gatehouse_is_refused_untouched() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run(&mut gatehouse(tmp.path(), &["info"]));
    assert!(out.status.success());
    let db = tmp.path().join("gatehouse.sqlite3");
    // Pretend a newer build wrote it: bump user_version past what we know.
    rusqlite::Connection::open(&db)
        .and_then(|c| c.pragma_update(None, "user_version", 9999))
        .expect("bump user_version");
    let before = std::fs::read(&db).expect("read db");
    let out = run(&mut gatehouse(tmp.path(), &["info"]));
    assert_eq!(
        out.status.code(),
        Some(1),
        "must refuse, not migrate backwards"
    );
    assert!(
        stderr(&out).starts_with("error[schema_too_new]:"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(&db).expect("read db"),
        before,
        "the database is left untouched"
    );
}
