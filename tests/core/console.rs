//! The Console facade over a real SQLite file in a temp directory.

use gatehouse_core::{Console, DataDir, Status, Theme, Vault, View, SCHEMA_VERSION};

use crate::support::unique_service;

fn open(dir: &std::path::Path) -> Console {
    Console::open(DataDir::at(dir), Vault::new(unique_service("console"))).expect("console opens")
}

#[test]
fn a_new_console_creates_its_database_and_reports_where() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let console = open(&tmp.path().join("data"));
    let info = console.preferences.app_info().expect("app info");
    assert_eq!(
        info.schema_version, SCHEMA_VERSION,
        "migrated to the latest schema"
    );
    assert!(
        std::path::Path::new(&info.database).is_file(),
        "the database file must exist at the reported path {}",
        info.database
    );
    assert!(
        info.data_dir.starts_with(&tmp.path().display().to_string()),
        "an explicit data dir must be used, not the OS default: {}",
        info.data_dir
    );
}

#[test]
fn the_overview_asks_for_a_first_instance() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let overview = open(tmp.path()).overview().expect("overview");
    assert_eq!(overview.instances, 0, "a new console has no instances");
    let fleet = overview
        .attention
        .iter()
        .find(|a| a.view == View::Fleet)
        .expect("an empty fleet needs attention");
    assert_eq!(
        fleet.status,
        Status::Unknown,
        "nothing is known about an empty fleet"
    );
    assert!(
        fleet.detail.contains("demo"),
        "the empty state must say how to get started: {}",
        fleet.detail
    );
}

#[test]
fn the_theme_persists_across_restarts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    assert_eq!(
        open(tmp.path())
            .preferences
            .settings()
            .expect("settings")
            .theme,
        Theme::System,
        "the default follows the OS"
    );
    open(tmp.path())
        .preferences
        .set_theme(Theme::Dark)
        .expect("set theme");
    assert_eq!(
        open(tmp.path())
            .preferences
            .settings()
            .expect("settings")
            .theme,
        Theme::Dark,
        "a restart must keep the operator's choice"
    );
}

#[test]
fn logs_go_to_a_file_in_the_data_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data_dir = DataDir::at(tmp.path());
    data_dir.ensure().expect("ensure");
    let guard = gatehouse_core::logging::init(&data_dir, "logtest").expect("logging");
    tracing::info!(marker = "log-marker-51f2", "hello from the test");
    drop(guard);
    let logs: Vec<_> = std::fs::read_dir(data_dir.logs())
        .expect("logs dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    let found = logs.iter().any(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("logtest"))
            && std::fs::read_to_string(p).is_ok_and(|t| t.contains("log-marker-51f2"))
    });
    assert!(
        found,
        "the event must land in logs/logtest.*.log, found {logs:?}"
    );
}
