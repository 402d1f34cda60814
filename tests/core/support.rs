//! Helpers shared by the core tests.

/// A keychain service name unique to this test run, so parallel tests and reruns never see
/// each other's entries.
pub fn unique_service(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("Gatehouse test {tag} {}-{nanos}", std::process::id())
}

/// Fails (with the reason) unless the test harness provides a real Secret Service.
pub fn require_secret_service() {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "keychain tests need a real Secret Service: run them through scripts/test.sh, which \
         starts gnome-keyring under dbus-run-session"
    );
}

pub use gatehouse_testkit::files::{append, contains, files_below, stamp};
pub use gatehouse_testkit::process::PidFile;
