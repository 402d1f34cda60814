//! The `gatehouse` binary, run as a user would run it.

use std::path::Path;
use std::process::{Command, Output};

use gatehouse_testkit::{free_port, wait_listening};

mod faults;

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
    assert_eq!(
        report["keychain"]["state"], "available",
        "doctor reports the keychain available: {report}"
    );
    assert!(
        out.status.success(),
        "doctor exits 0 when healthy: {}",
        stderr(&out)
    );
}

/// Unmounts the small filesystem a test mounted, however the test ends.
struct SmallDisk(std::path::PathBuf);

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The disk holding the data directory fills up: every command says so in words (not "disk
/// I/O error"), with its own code, and `doctor` still diagnoses, naming the full disk.
#[test]
fn a_full_data_disk_is_named_and_doctor_still_answers() {
    if !Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n")
    {
        eprintln!("this test needs root to mount a small tmpfs; not run");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).expect("dir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&data)
        .status()
        .expect("mount");
    assert!(mounted.success(), "a small tmpfs is mounted");
    let _disk = SmallDisk(data.clone());
    let out = run(&mut gatehouse(&data, &["overview"]));
    assert!(
        out.status.success(),
        "a console on a disk with room works: {}",
        stderr(&out)
    );
    let mut filler = std::fs::File::create(data.join("filler")).expect("filler");
    let chunk = vec![0u8; 4096];
    while std::io::Write::write_all(&mut filler, &chunk).is_ok() {}
    drop(filler);

    let out = run(&mut gatehouse(&data, &["--json", "overview"]));
    let err = stderr(&out);
    assert!(!out.status.success(), "nothing can be done on a full disk");
    assert!(
        err.contains("disk_full") && err.contains("is full") && !err.contains("I/O error"),
        "the error says the disk is full, with its code: {err}"
    );
    let out = run(&mut gatehouse(&data, &["doctor"]));
    let text = stdout(&out);
    assert!(
        text.contains("failing  database") && text.contains("is full"),
        "doctor answers and names the full disk: {text}{}",
        stderr(&out)
    );
    assert!(
        text.contains("keychain"),
        "and still reports on the keychain: {text}"
    );
    assert!(!out.status.success(), "doctor fails while the disk is full");
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
        stdout(&out).lines().next(),
        Some("theme      dark"),
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
    assert_eq!(
        err["code"], "invalid_input",
        "a bad theme is invalid input: {err}"
    );
    assert!(
        err["message"].as_str().is_some_and(|m| m.contains("theme")),
        "the message names the bad field: {err}"
    );
}

#[test]
fn a_database_from_a_newer_gatehouse_is_refused_untouched() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run(&mut gatehouse(tmp.path(), &["info"]));
    assert!(
        out.status.success(),
        "a first run creates the database the test then ages"
    );
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
        "a newer schema is refused with its code: {}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(&db).expect("read db"),
        before,
        "the database is left untouched"
    );
}

/// The agent binary, built beside this one by the workspace build.
fn agent_binary() -> std::path::PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_gatehouse")).with_file_name("gatehouse-agent");
    assert!(
        path.is_file(),
        "build the workspace first: {} is missing",
        path.display()
    );
    path
}

/// `gatehouse-agent init` for the agent `config` describes, its enrollment code written to
/// `code_file`.
fn init_agent(config: &Path, code_file: &Path) {
    let init = Command::new(agent_binary())
        .args(["init", "--config"])
        .arg(config)
        .arg("--code-file")
        .arg(code_file)
        .output()
        .expect("init");
    assert!(
        init.status.success(),
        "the agent initialises: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let saved = std::fs::read_to_string(code_file).expect("the code file");
    assert_eq!(
        String::from_utf8_lossy(&init.stdout),
        saved,
        "standard output is the code alone, so `init > code.txt` saves what --code-file does"
    );
    assert!(
        String::from_utf8_lossy(&init.stderr).contains("Add instance"),
        "what to do with the code is on standard error"
    );
}

struct AgentProcess {
    child: std::process::Child,
    address: String,
    code_file: std::path::PathBuf,
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_agent(dir: &Path) -> AgentProcess {
    let port = free_port();
    std::fs::create_dir_all(dir).expect("agent dir");
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\nprofile = \"jelmore\"\nstate_dir = \"{}\"\n\n\
             [[logs]]\npath = \"{}\"\nformat = \"nginx_combined\"\nsource = \"proxy\"\n",
            dir.join("state").display(),
            dir.join("access.log").display()
        ),
    )
    .expect("config");
    let code_file = dir.join("code.txt");
    init_agent(&config, &code_file);
    let child = Command::new(agent_binary())
        .args(["run", "--config"])
        .arg(&config)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("agent runs");
    wait_listening(port);
    AgentProcess {
        child,
        address: format!("127.0.0.1:{port}"),
        code_file,
    }
}

#[test]
fn instance_add_reads_the_code_from_stdin_and_the_fleet_lists_it() {
    use std::io::Write;
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "run through scripts/test.sh, which provides gnome-keyring"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let agent = start_agent(&tmp.path().join("agent"));
    let code = std::fs::read_to_string(&agent.code_file).expect("code");
    let data = tmp.path().join("console");
    let mut add = gatehouse(
        &data,
        &[
            "instance",
            "add",
            "--name",
            "edge-1",
            "--address",
            &agent.address,
        ],
    )
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("add runs");
    add.stdin
        .take()
        .expect("stdin")
        .write_all(code.as_bytes())
        .expect("write code");
    let out = add.wait_with_output().expect("add finishes");
    assert!(
        out.status.success(),
        "enrollment succeeds: {}",
        stderr(&out)
    );

    let out = run(&mut gatehouse(&data, &["--json", "instance", "list"]));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("list --json");
    assert_eq!(
        list[0]["name"], "edge-1",
        "the enrolled instance is listed: {list}"
    );
    assert_eq!(
        list[0]["profile"], "jelmore",
        "profile reported by the agent: {list}"
    );
    assert_eq!(list[0]["status"], "ok", "and reachable: {list}");

    let out = run(&mut gatehouse(&data, &["instance", "refresh", "edge-1"]));
    assert!(
        out.status.success(),
        "refresh over mutual TLS: {}",
        stderr(&out)
    );
    let out = run(&mut gatehouse(&data, &["instance", "remove", "edge-1"]));
    assert!(out.status.success(), "remove: {}", stderr(&out));
    let out = run(&mut gatehouse(&data, &["--json", "instance", "list"]));
    assert_eq!(stdout(&out).trim(), "[]", "nothing left after removal");
}

#[test]
fn instance_add_without_a_keychain_changes_nothing_and_says_why() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let agent = start_agent(&tmp.path().join("agent"));
    let data = tmp.path().join("console");
    let out = run(gatehouse(
        &data,
        &[
            "instance",
            "add",
            "--name",
            "edge-1",
            "--address",
            &agent.address,
            "--code-file",
        ],
    )
    .arg(&agent.code_file)
    .env(
        "DBUS_SESSION_BUS_ADDRESS",
        "unix:path=/nonexistent/gatehouse-test-bus",
    ));
    assert_eq!(out.status.code(), Some(1), "enrollment needs the keychain");
    assert!(
        stderr(&out).starts_with("error[keychain_unavailable]:"),
        "names the cause: {}",
        stderr(&out)
    );
    let out = run(&mut gatehouse(&data, &["--json", "instance", "list"]));
    assert_eq!(
        stdout(&out).trim(),
        "[]",
        "no partial instance is left behind"
    );
}

#[test]
fn a_locked_keychain_is_reported_as_locked_and_nothing_is_enrolled() {
    // Locking is session-wide, so this test gets a D-Bus session and gnome-keyring of its own.
    let tmp = tempfile::tempdir().expect("tempdir");
    let agent = start_agent(&tmp.path().join("agent"));
    let data = tmp.path().join("console");
    let keyring_home = tmp.path().join("keyring");
    std::fs::create_dir_all(&keyring_home).expect("keyring home");
    // Its own runtime directory too: gnome-keyring finds a running daemon by the control
    // socket there, and would otherwise lock the keychain every other test is using.
    let runtime = tmp.path().join("runtime");
    std::fs::create_dir_all(&runtime).expect("runtime dir");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700))
            .expect("runtime dir mode");
    }
    let script = r#"
        echo -n pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null
        dbus-send --session --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets \
          org.freedesktop.Secret.Service.Lock array:objpath:/org/freedesktop/secrets/collection/login >/dev/null
        "$GH" --data-dir "$DATA" --json doctor; echo "doctor-exit=$?"
        "$GH" --data-dir "$DATA" instance add --name edge-1 --address "$ADDR" --code-file "$CODE"
        echo "add-exit=$?"
        "$GH" --data-dir "$DATA" --json instance list
    "#;
    let out = Command::new("dbus-run-session")
        .args(["--", "sh", "-c", script])
        .env("GH", env!("CARGO_BIN_EXE_gatehouse"))
        .env("DATA", &data)
        .env("ADDR", &agent.address)
        .env("CODE", &agent.code_file)
        .env("XDG_DATA_HOME", &keyring_home)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("GATEHOUSE_KEYCHAIN_SERVICE", "Gatehouse locked test")
        .output()
        .expect("dbus-run-session runs");
    let text = stdout(&out);
    let err = stderr(&out);
    assert!(
        text.contains(r#""state": "locked""#),
        "doctor reports the lock: {text}\n{err}"
    );
    assert!(
        text.contains("doctor-exit=1"),
        "doctor fails while locked: {text}"
    );
    assert!(
        err.contains("error[keychain_locked]"),
        "enrollment names the cause: {err}"
    );
    assert!(text.contains("add-exit=1"), "enrollment fails: {text}");
    assert!(
        text.trim_end().ends_with("[]"),
        "no instance is left behind: {text}"
    );
}

#[test]
fn events_from_an_agent_are_listed_and_exported_with_filters() {
    use std::io::Write;
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "run through scripts/test.sh, which provides gnome-keyring"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let agent_dir = tmp.path().join("agent");
    std::fs::create_dir_all(&agent_dir).expect("dir");
    let mut log = std::fs::File::create(agent_dir.join("access.log")).expect("log");
    for n in 0..3 {
        writeln!(log, "203.0.113.{n} - - [23/Nov/2026:02:41:5{n} +0000] \"POST /mcp/tools/memory_stats HTTP/1.1\" 401 35 \"-\" \"curl/8\"").expect("write");
    }
    writeln!(
        log,
        "10.0.0.9 - - [23/Nov/2026:02:42:00 +0000] \"GET /health HTTP/1.1\" 200 2 \"-\" \"probe\""
    )
    .expect("write");
    drop(log);
    let agent = start_agent(&agent_dir);
    let data = tmp.path().join("console");
    let out = run(gatehouse(
        &data,
        &[
            "instance",
            "add",
            "--name",
            "edge-1",
            "--address",
            &agent.address,
            "--code-file",
        ],
    )
    .arg(&agent.code_file));
    assert!(out.status.success(), "enrolled: {}", stderr(&out));

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let jsonl = loop {
        let out = run(&mut gatehouse(
            &data,
            &["events", "--sync", "--kind", "auth", "--format", "jsonl"],
        ));
        assert!(out.status.success(), "events: {}", stderr(&out));
        let text = stdout(&out);
        if text.lines().count() >= 3 {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the failed logins arrive within 15 s: {text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    let lines: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 3, "exactly the three failed logins: {jsonl}");
    assert!(
        lines
            .iter()
            .all(|l| l["status"] == 401 && l["instance"] == "edge-1"),
        "only failed logins of edge-1 are exported: {jsonl}"
    );
    assert!(
        lines[0]["raw"]
            .as_str()
            .is_some_and(|r| r.starts_with("203.0.113.2 - -")),
        "newest first, raw kept: {}",
        lines[0]
    );

    let out = run(&mut gatehouse(
        &data,
        &["events", "--ip", "10.0.0.9", "--format", "csv"],
    ));
    let csv = stdout(&out);
    assert!(csv.starts_with("time_utc,instance,"), "a header row: {csv}");
    assert_eq!(
        csv.lines().count(),
        2,
        "header and the one request from 10.0.0.9: {csv}"
    );

    let out = run(&mut gatehouse(&data, &["events", "--since", "yesterday"]));
    assert_eq!(out.status.code(), Some(1), "a bad age is refused");
    assert!(
        stderr(&out).starts_with("error[invalid_input]"),
        "a bad age is refused as invalid input: {}",
        stderr(&out)
    );

    let out = run(&mut gatehouse(&data, &["--json", "events", "--limit", "1"]));
    assert!(out.status.success(), "events --json: {}", stderr(&out));
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON page");
    assert_eq!(
        page["events"].as_array().map(Vec::len),
        Some(1),
        "--json honours --limit like the table does: {page}"
    );
    assert!(
        page["next"].is_object(),
        "and says more events match: {page}"
    );

    for args in [
        &["events", "--format", "csv"][..],
        &["events"][..],
        &["checks", "list"][..],
    ] {
        assert_eq!(
            closed_output(&data, args),
            Some(141),
            "`gatehouse {}` into a closed pipe (stdout and stderr) ends as SIGPIPE would, \
             neither as an error of its own nor as a panic (101)",
            args.join(" ")
        );
    }

    let out = run(&mut gatehouse(&data, &["checks", "list"]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "listing a checklist is not an error, even with items due: {}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("edge-1"),
        "the list names the instance: {}",
        stdout(&out)
    );
    let out = run(&mut gatehouse(&data, &["checks", "list", "--exit-code"]));
    assert_eq!(
        out.status.code(),
        Some(2),
        "--exit-code reports open items (the manual ones are due on day one) as 2, apart from \
         errors: {}",
        stderr(&out)
    );
}

/// Run `gatehouse ARGS` with standard output and standard error both pipes whose reading end
/// is closed before it writes (as `2>&1 | head -0` would leave them); its exit code.
fn closed_output(data: &Path, args: &[&str]) -> Option<i32> {
    let mut child = gatehouse(data, args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    drop(child.stderr.take());
    child.wait().expect("wait").code()
}

fn access_log(dir: &Path) -> std::path::PathBuf {
    let log = dir.join("access.log");
    let mut text = String::new();
    // A brute force from one address, a stale key from another, and normal use.
    for s in 0..8 {
        text.push_str(&format!("203.0.113.66 - - [23/Nov/2026:03:00:{:02} +0000] \"POST /mcp/tools/memory_store HTTP/1.1\" 401 35 \"-\" \"curl/8\"\n", s * 5));
    }
    text.push_str("10.0.0.9 - - [23/Nov/2026:03:01:00 +0000] \"POST /mcp/tools/memory_store HTTP/1.1\" 401 35 \"-\" \"app/1\"\n");
    for s in 0..20 {
        text.push_str(&format!("10.0.0.{} - - [23/Nov/2026:03:02:{s:02} +0000] \"GET /health HTTP/1.1\" 200 2 \"-\" \"probe\"\n", 1 + s % 5));
    }
    text.push_str("this line is not nginx\n");
    std::fs::write(&log, text).expect("write the log");
    log
}

#[test]
fn scan_counts_failed_lines_and_alerts_on_the_attacker_only() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = access_log(tmp.path());
    let out = run(Command::new(env!("CARGO_BIN_EXE_gatehouse")).args([
        "--json",
        "scan",
        "--service",
        "sekha",
        log.to_str().expect("utf-8 path"),
    ]));
    assert!(out.status.success(), "scan must succeed: {}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["lines"], 30, "every line is read: {report}");
    assert_eq!(
        report["unparsed"], 1,
        "the odd line is counted, not dropped"
    );
    assert_eq!(report["failures"], 9, "eight attacks and one stale key");
    assert_eq!(
        report["alerted_addresses"],
        serde_json::json!(["203.0.113.66"]),
        "the brute forcer alerts; one stale key does not"
    );
    let bad = run(Command::new(env!("CARGO_BIN_EXE_gatehouse")).args([
        "scan",
        "--format",
        "apache",
        log.to_str().expect("utf-8 path"),
    ]));
    assert!(!bad.status.success(), "an unknown format fails");
    assert!(
        stderr(&bad).contains("error[invalid_input]") && stderr(&bad).contains("apache"),
        "and says which: {}",
        stderr(&bad)
    );
}

#[test]
fn heatmap_offenders_and_alerts_work_on_an_empty_console() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let svg = tmp.path().join("map.svg");
    let png = tmp.path().join("map.png");
    let out = run(&mut gatehouse(
        tmp.path(),
        &[
            "heatmap",
            "--kind",
            "instances",
            "--window",
            "week",
            "--svg",
            svg.to_str().expect("utf-8"),
            "--png",
            png.to_str().expect("utf-8"),
        ],
    ));
    assert!(
        out.status.success(),
        "heatmap must succeed: {}",
        stderr(&out)
    );
    let text = std::fs::read_to_string(&svg).expect("the SVG was written");
    assert!(text.starts_with("<svg"), "an SVG document");
    assert!(
        text.contains("No failed sign-ins"),
        "an empty chart says so in the picture"
    );
    let bytes = std::fs::read(&png).expect("the PNG was written");
    assert_eq!(&bytes[..4], b"\x89PNG", "a PNG file");
    assert!(
        stdout(&out).contains("No failed sign-ins in this window."),
        "and in the terminal: {}",
        stdout(&out)
    );
    let offenders = run(&mut gatehouse(tmp.path(), &["--json", "offenders"]));
    assert!(offenders.status.success(), "{}", stderr(&offenders));
    assert_eq!(stdout(&offenders).trim(), "[]", "no offenders yet");
    let alerts = run(&mut gatehouse(tmp.path(), &["alerts"]));
    assert!(
        stdout(&alerts).contains("No open alerts."),
        "an empty console says there are no open alerts: {}",
        stdout(&alerts)
    );
    let missing = run(&mut gatehouse(tmp.path(), &["alerts", "ack", "7"]));
    assert!(!missing.status.success(), "no alert 7");
    assert!(
        stderr(&missing).contains("error[alert_not_found]"),
        "acknowledging a missing alert names the code: {}",
        stderr(&missing)
    );
    let neither = run(&mut gatehouse(tmp.path(), &["alerts", "resolve"]));
    assert!(
        stderr(&neither).contains("name alerts by id, or choose them with --source"),
        "resolving nothing named is refused with how to name alerts: {}",
        stderr(&neither)
    );
    let both = run(&mut gatehouse(
        tmp.path(),
        &["alerts", "ack", "3", "--source", "203.0.113.7"],
    ));
    assert!(
        !both.status.success() && stderr(&both).contains("not both"),
        "ids and a filter at once are refused: {}",
        stderr(&both)
    );
    let none = run(&mut gatehouse(
        tmp.path(),
        &["alerts", "ack", "--source", "203.0.113.7"],
    ));
    assert!(
        none.status.success() && stdout(&none).contains("No alert matches; nothing was changed."),
        "a filter nothing matches changes nothing and says so: {}",
        stdout(&none)
    );
    let snooze = run(&mut gatehouse(
        tmp.path(),
        &[
            "alerts",
            "snooze",
            "brute-force",
            "edge-1",
            "--reason",
            "pen test",
        ],
    ));
    assert!(
        stderr(&snooze).contains("error[instance_not_found]"),
        "a snooze on an instance that is not enrolled is refused with its code: {}",
        stderr(&snooze)
    );
    let snoozes = run(&mut gatehouse(tmp.path(), &["alerts", "snoozes"]));
    assert!(
        stdout(&snoozes).contains("No rule is snoozed."),
        "and none was made: {}",
        stdout(&snoozes)
    );
    let bad_window = run(&mut gatehouse(tmp.path(), &["heatmap", "--window", "year"]));
    assert!(
        stderr(&bad_window).contains("not one of day, week, month, quarter"),
        "the choices are named: {}",
        stderr(&bad_window)
    );
    let zone = run(&mut gatehouse(
        tmp.path(),
        &["settings", "time-zone", "Mars/Olympus"],
    ));
    assert!(!zone.status.success(), "an unknown zone is refused");
    assert!(stderr(&zone).contains("Mars/Olympus"), "{}", stderr(&zone));
    let zone = run(&mut gatehouse(
        tmp.path(),
        &["settings", "time-zone", "Asia/Kolkata"],
    ));
    assert!(
        stdout(&zone).contains("time zone  Asia/Kolkata"),
        "a known zone is kept: {}",
        stdout(&zone)
    );
}

#[test]
fn credentials_on_an_empty_console_say_what_to_do_and_policies_need_an_instance() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run(&mut gatehouse(tmp.path(), &["credentials"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("No credentials known yet"),
        "an empty inventory says what to do: {}",
        stdout(&out)
    );
    let policy = run(&mut gatehouse(
        tmp.path(),
        &["credentials", "policy", "ghost", "--days", "30"],
    ));
    assert!(!policy.status.success(), "no such instance");
    assert!(
        stderr(&policy).contains("error[instance_not_found]"),
        "a policy for an unknown instance is refused with its code: {}",
        stderr(&policy)
    );
    let neither = run(&mut gatehouse(
        tmp.path(),
        &["credentials", "policy", "ghost"],
    ));
    assert!(
        stderr(&neither).contains("--days N, or --default"),
        "the missing choice is named: {}",
        stderr(&neither)
    );
}

#[test]
fn checks_on_an_empty_fleet_say_so_and_export_valid_reports() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run(&mut gatehouse(tmp.path(), &["checks", "list"]));
    assert!(
        out.status.success(),
        "nothing enrolled is nothing failing: {}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("No instances enrolled"),
        "and says why the list is empty: {}",
        stdout(&out)
    );
    let out = run(&mut gatehouse(tmp.path(), &["checks", "run"]));
    assert!(
        stdout(&out).contains("No instances enrolled") && !stdout(&out).contains("Ran 0"),
        "a run with nothing enrolled says so, not that it ran nothing: {}",
        stdout(&out)
    );
    let out = run(&mut gatehouse(
        tmp.path(),
        &["checks", "export", "--json-report", "-"],
    ));
    assert!(
        out.status.success(),
        "the JSON report is written: {}",
        stderr(&out)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        report["report"], "gatehouse-compliance",
        "it says what it is"
    );
    assert_eq!(
        report["compliance"]["fleet"]["total"], 0,
        "an empty fleet has no items"
    );
    let html = tmp.path().join("report.html");
    let out = run(&mut gatehouse(
        tmp.path(),
        &["checks", "export", "--html", html.to_str().expect("utf-8")],
    ));
    assert!(
        out.status.success(),
        "the HTML report is written: {}",
        stderr(&out)
    );
    let text = std::fs::read_to_string(&html).expect("report file");
    assert!(text.starts_with("<!DOCTYPE html>"), "a whole page");
}

#[test]
fn checks_refuse_bad_input_with_a_reason() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run(&mut gatehouse(tmp.path(), &["checks", "tls", "1.1"]));
    assert!(
        !out.status.success(),
        "TLS 1.1 is not a policy Gatehouse offers"
    );
    assert!(
        stderr(&out).contains("choose 1.2 or 1.3"),
        "says what is allowed: {}",
        stderr(&out)
    );
    let out = run(&mut gatehouse(
        tmp.path(),
        &[
            "checks",
            "waive",
            "nobody",
            "pre.firewall",
            "--reason",
            "r",
            "--approved-by",
            "a",
            "--until",
            "next week",
        ],
    ));
    assert!(
        !out.status.success(),
        "a date that is not a date is refused"
    );
    assert!(
        stderr(&out).contains("2027-01-31"),
        "with an example of the form: {}",
        stderr(&out)
    );
}
