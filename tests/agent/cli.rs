//! The `gatehouse-agent` binary: config checks and `init`.

use std::process::Command;

use crate::ports::{free_port, wait_listening};

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

/// check-config says what the agent will use: the profile it resolved and from where, its
/// guides, each key as it reads it from the service's config (never the value), the restart
/// command; and a config file that does not read as the profile says is said at once.
#[test]
fn check_config_prints_the_resolved_profile_and_reads_each_config_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let service = tmp.path().join("service");
    std::fs::create_dir(&service).expect("service dir");
    let token = "a-token-of-the-notes-service-0123456789";
    std::fs::write(
        service.join("config.json"),
        format!("{{\"auth\": {{\"tokens\": [{{\"token\": \"{token}\"}}]}}, \"signing_secret\": \"short\"}}\n"),
    )
    .expect("config.json");
    let profiles = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../demo/profiles");
    let config = |profiles: &std::path::Path| {
        let path = tmp.path().join("agent.toml");
        std::fs::write(
            &path,
            format!(
                "listen = \"127.0.0.1:7443\"\nprofile = \"notes\"\nstate_dir = \"{}\"\n\
                 profiles_dir = \"{}\"\nservice_dir = \"{}\"\n",
                tmp.path().join("state").display(),
                profiles.display(),
                service.display()
            ),
        )
        .expect("agent.toml");
        let out = agent()
            .args(["check-config", "--config"])
            .arg(&path)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "the config is valid: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = config(&profiles);
    assert!(
        text.contains("profile notes (Notes; ")
            && text.contains("notes.toml): takes several keys at once"),
        "the resolved profile, where it was read from, and what it says of keys: {text}"
    );
    assert!(
        text.contains(&format!(
            "key auth.tokens[0].token in {}",
            service.join("config.json").display()
        )) && text.contains(&format!("({} characters)", token.len())),
        "each key as the agent reads it: {text}"
    );
    assert!(
        text.contains("key signing_secret in") && text.contains("(5 characters, weak)"),
        "a weak key is said: {text}"
    );
    assert!(
        !text.contains(token),
        "a key's value is never printed: {text}"
    );
    assert!(
        text.contains("restart: systemctl restart notes"),
        "the restart command it will run: {text}"
    );
    // The same file described as TOML: said now, not at the first rotation.
    let wrong = tmp.path().join("wrong-profiles");
    std::fs::create_dir(&wrong).expect("dir");
    std::fs::write(
        wrong.join("notes.toml"),
        std::fs::read_to_string(profiles.join("notes.toml"))
            .expect("profile")
            .replace(
                "format = \"json\"\nkey = \"signing_secret\"",
                "format = \"toml_root_key\"\nkey = \"signing_secret\"",
            ),
    )
    .expect("profile");
    let text = config(&wrong);
    assert!(
        text.contains("warning:") && text.contains("config.json: not valid TOML"),
        "a JSON file read as TOML is said by check-config: {text}"
    );
}

/// `check-config | head -1`: a reader that goes away ends the agent quietly with SIGPIPE's
/// status, as other tools do, never a panic.
#[test]
fn check_config_into_a_closed_pipe_ends_quietly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = tmp.path().join("agent.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:7443\"\nprofile = \"jelmore\"\nstate_dir = \"/var/lib/gatehouse-agent\"\n",
    )
    .expect("write config");
    let status = tmp.path().join("status");
    // The reader (`true`) is gone long before the agent writes its first line.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "(sleep 0.5; {} check-config --config {} 2>{}; echo $? > {}) | true",
            env!("CARGO_BIN_EXE_gatehouse-agent"),
            config.display(),
            tmp.path().join("stderr").display(),
            status.display()
        ))
        .output()
        .expect("runs");
    assert!(out.status.success(), "the pipeline ran");
    let stderr = std::fs::read_to_string(tmp.path().join("stderr")).expect("stderr");
    assert_eq!(
        std::fs::read_to_string(&status).expect("status").trim(),
        "141",
        "SIGPIPE's status; stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
}

/// The profiles' default log paths and `systemctl restart` units are guesses: none of the
/// services ships a unit, and a log that is not there is never read. check-config says so.
#[test]
fn check_config_warns_of_default_logs_that_do_not_exist_and_units_no_service_ships() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("agent.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:7443\"\nprofile = \"sekha\"\nstate_dir = \"/var/lib/gatehouse-agent\"\nservice_url = \"http://127.0.0.1:8080/health\"\n",
    )
    .expect("write config");
    let out = agent()
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "warnings do not fail the check: {text}"
    );
    assert!(
        text.contains("warning: /var/log/sekha/sekha.log (service) does not exist: it is the profile's default"),
        "a default log path that is not there is named: {text}"
    );
    assert!(
        text.contains(
            "`systemctl restart sekha` is the profile's default: Sekha ships no such unit"
        ),
        "the default restart command's unit is said to be the operator's to write: {text}"
    );
    let log = tmp.path().join("sekha.log");
    std::fs::write(&log, "").expect("log");
    std::fs::write(
        tmp.path().join("config.toml"),
        "mcp_api_key = \"a-strong-key-of-this-sekha-0123456789abcdef\"\n",
    )
    .expect("Sekha's config");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:7443\"\nprofile = \"sekha\"\nstate_dir = \"/x\"\nservice_url = \"http://127.0.0.1:8080/health\"\nservice_dir = \"{}\"\nrestart_command = [\"true\"]\n\n[[logs]]\npath = \"{}\"\nformat = \"sekha_tracing\"\nsource = \"service\"\n",
            tmp.path().display(),
            log.display()
        ),
    )
    .expect("write config");
    let out = agent()
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("warning"),
        "a config naming its own logs and restart has nothing to warn of: {text}"
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

fn write_config(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:{port}\"\nprofile = \"rae\"\nstate_dir = \"{}\"\n",
            dir.join("state").display()
        ),
    )
    .expect("write config");
    path
}

#[test]
fn init_prints_a_one_time_code_and_keeps_only_its_hash() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = write_config(tmp.path(), free_port());
    let out = agent()
        .arg("init")
        .arg("--config")
        .arg(&config)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "init succeeds: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let code = text
        .split_whitespace()
        .find(|w| w.starts_with("gh1."))
        .expect("the code is printed");
    assert_eq!(
        text.trim(),
        code,
        "standard output is the code alone: `init > code.txt` saves just it"
    );
    let parsed: gatehouse_protocol::EnrollmentCode = code.parse().expect("a valid code");
    let state = tmp.path().join("state");
    let stored = std::fs::read_to_string(state.join("enrollment.json")).expect("record");
    assert!(
        !stored.contains(&parsed.token),
        "the token itself is never stored, only its hash"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state.join("enroll.key"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the agent's key is private to its user"
        );
    }
}

#[test]
fn run_serves_tls_and_stops_cleanly_on_sigterm() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let config = write_config(tmp.path(), port);
    let init = agent()
        .arg("init")
        .arg("--config")
        .arg(&config)
        .output()
        .expect("init");
    assert!(
        init.status.success(),
        "init must succeed before the agent can run"
    );
    let mut child = agent()
        .arg("run")
        .arg("--config")
        .arg(&config)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run starts");
    wait_listening(port);
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success(), "kill must deliver SIGTERM to the agent");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the agent stops within its grace period"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut logs = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut logs)
        .expect("logs");
    assert!(
        status.success(),
        "SIGTERM is a clean shutdown, exit 0: {logs}"
    );
    let started = logs
        .lines()
        .find(|l| l.contains("agent started"))
        .expect("a start line is logged");
    let line: serde_json::Value = serde_json::from_str(started).expect("logs are JSON lines");
    assert_eq!(
        line["fields"]["profile"], "rae",
        "structured fields: {line}"
    );
    assert!(
        !logs.contains("gh1."),
        "the enrollment code never reaches the log"
    );
}

#[test]
fn the_example_config_in_packaging_is_valid() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/agent.toml.example");
    let out = agent()
        .arg("check-config")
        .arg("--config")
        .arg(&path)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "the documented example must pass check-config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn init_writes_the_code_to_a_file_named_relative_to_the_working_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = write_config(tmp.path(), free_port());
    let out = agent()
        .current_dir(tmp.path())
        .args(["init", "--config"])
        .arg(&config)
        .args(["--code-file", "code.txt"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "a bare file name is a file in the working directory: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = std::fs::read_to_string(tmp.path().join("code.txt")).expect("code.txt written");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(code.trim()),
        "the file holds the code init printed"
    );

    let out = agent()
        .current_dir(tmp.path())
        .args(["init", "--force", "--config"])
        .arg(&config)
        .args(["--code-file", "missing-dir/code.txt"])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a folder that is not there fails");
    assert!(
        err.contains("missing-dir/code.txt"),
        "and the message names the file it could not write: {err}"
    );
}
