//! The `gatehouse-agent` binary: config checks and `init`.

use std::process::Command;

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gatehouse-agent"))
}

#[test]
fn check_config_accepts_a_valid_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("agent.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:7443\"\nprofile = \"jelmore\"\nstate_dir = \"/var/lib/gatehouse-agent\"\n",
    )
    .expect("write config");
    let out = agent()
        .arg("check-config")
        .arg("--config")
        .arg(&path)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "a valid config passes: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("profile jelmore"),
        "echoes what it understood: {text}"
    );
}

#[test]
fn check_config_explains_a_missing_file() {
    let out = agent()
        .args(["check-config", "--config", "/nonexistent/agent.toml"])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "config errors exit 2");
    assert!(
        err.starts_with("error[config_unreadable]") && err.contains("/nonexistent/agent.toml"),
        "names the code and the file: {err}"
    );
}
