//! The vault against a real Secret Service (gnome-keyring under dbus-run-session).

use std::process::Command;

use gatehouse_core::{Console, DataDir, ErrorCode, KeychainState, Sensitive, Vault};

use crate::support::{contains, files_below, require_secret_service, unique_service};

#[test]
fn secrets_round_trip_through_the_real_secret_service() {
    require_secret_service();
    let vault = Vault::new(unique_service("roundtrip"));
    let secret = Sensitive::new(b"fleet-ca-key: 9c1f3e6b0d".to_vec());
    vault
        .store("fleet-ca", &secret)
        .expect("store in the keychain");
    let loaded = vault.load("fleet-ca").expect("load from the keychain");
    assert_eq!(
        loaded.expose(),
        secret.expose(),
        "what was stored comes back"
    );

    // keyring 3 silently uses an in-memory mock when no platform store is compiled in. Ask
    // the Secret Service directly, through libsecret, to prove the entry is really there.
    let out = Command::new("secret-tool")
        .args(["lookup", "service", vault.service(), "username", "fleet-ca"])
        .output()
        .expect("secret-tool (libsecret-tools) must be installed");
    assert_eq!(
        out.stdout,
        secret.expose().as_slice(),
        "the secret must live in the OS keychain, not in keyring's mock store"
    );

    vault.delete("fleet-ca").expect("delete");
    let err = vault
        .load("fleet-ca")
        .expect_err("deleted secrets are gone");
    assert_eq!(err.code(), ErrorCode::SecretNotFound, "{err}");
    vault
        .delete("fleet-ca")
        .expect("deleting twice is not an error");
}

#[test]
fn status_reports_available_with_a_real_secret_service() {
    require_secret_service();
    let status = Vault::new(unique_service("status")).status();
    assert_eq!(
        status.state,
        KeychainState::Available,
        "gnome-keyring is running in this session: {}",
        status.message
    );
    assert!(status.message.is_empty(), "no complaint when available");
}

#[test]
fn stored_secrets_never_reach_the_data_directory() {
    require_secret_service();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data_dir = DataDir::at(tmp.path());
    let log = gatehouse_core::logging::init(&data_dir, "scan").expect("logging");
    let console =
        Console::open(data_dir.clone(), Vault::new(unique_service("scan"))).expect("console");
    let marker = b"SECRET-MARKER-7f3a9d1c4b2e";
    let secret = Sensitive::new(marker.to_vec());
    console.vault().store("audit-hmac", &secret).expect("store");
    tracing::info!(?secret, "a secret passed to a log call is redacted");
    console.overview().expect("exercise the store");
    console.vault().delete("audit-hmac").expect("clean up");
    drop(console);
    drop(log); // flushes the log file

    let files = files_below(tmp.path());
    assert!(
        files
            .iter()
            .any(|(p, _)| p.extension().is_some_and(|e| e == "sqlite3")),
        "the scan must cover the database"
    );
    assert!(
        files
            .iter()
            .any(|(p, bytes)| p.starts_with(data_dir.logs()) && contains(bytes, b"redacted")),
        "the scan must cover a log that saw the secret's Debug form"
    );
    for (path, bytes) in files {
        assert!(
            !contains(&bytes, marker),
            "secret bytes found in {}: secrets must live only in the keychain",
            path.display()
        );
    }
}
