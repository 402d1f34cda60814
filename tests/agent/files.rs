//! Files the service's account controls (its directory, its logs, its config) may be swapped
//! for a link, a device, a FIFO or a huge file at any moment: the agent never follows such a
//! link, reads only regular files, and reads them through a limit, so nothing the account
//! could not read itself reaches the console, and nothing pins the agent's memory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gatehouse_agent::buffer::Buffer;
use gatehouse_agent::tail::{LogConfig, Tailer};
use gatehouse_agent::{Agent, AgentConfig};
use gatehouse_events::Format;

/// The service's account in these tests.
const SERVICE_UID: u32 = 65534;
const NOW_US: i64 = 1_795_401_717_000_000;
/// What a root-only file holds; it must never reach the console.
const SECRET: &str = "root:$6$only-root-may-read-this$:19000:0:99999:7:::";

fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
}

/// A root-only file, like /etc/shadow, and a directory the service's account owns.
struct Host {
    tmp: tempfile::TempDir,
    secret: PathBuf,
    service: PathBuf,
}

fn host() -> Host {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("tempdir");
    let secret = tmp.path().join("shadow");
    std::fs::write(&secret, format!("{SECRET}\n")).expect("secret");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("mode");
    let service = tmp.path().join("service");
    std::fs::create_dir(&service).expect("service");
    if running_as_root() {
        std::os::unix::fs::chown(&service, Some(SERVICE_UID), Some(SERVICE_UID)).expect("chown");
    }
    Host {
        tmp,
        secret,
        service,
    }
}

fn agent(h: &Host, logs: Vec<LogConfig>) -> Agent {
    load_agent(
        AgentConfig::for_test(h.tmp.path().join("agent"))
            .with_service_dir(&h.service)
            .with_logs(logs),
    )
}

/// An initialised agent with `config`.
fn load_agent(config: AgentConfig) -> Agent {
    gatehouse_pki::install_provider();
    gatehouse_agent::initialise(
        &gatehouse_agent::state::StateDir::new(&config.state_dir),
        time::OffsetDateTime::now_utc(),
        Duration::from_secs(900),
        [3; 20],
    )
    .expect("agent init");
    Agent::load(config).expect("the agent starts")
}

fn log(path: &Path) -> LogConfig {
    LogConfig::file(
        path,
        Format::SekhaTracing,
        gatehouse_events::Source::Service,
    )
}

/// A key the service takes as a query parameter is in its access log whenever a request
/// carried it (the agent's own key check among them): the evidence bundle's log tail has it
/// redacted, as every line the agent reads has.
#[test]
fn evidence_redacts_a_key_in_a_query_string() {
    let h = host();
    let log_path = h.service.join("access.log");
    std::fs::write(
        &log_path,
        "127.0.0.1 - - [07/Dec/2026:10:00:00 +0000] \"GET /api/status?token=s3cret-key-value HTTP/1.1\" 200 2 \"-\" \"x\"\n",
    )
    .expect("log");
    let log = LogConfig::file(
        &log_path,
        Format::NginxCombined,
        gatehouse_events::Source::Proxy,
    );
    // The notes service as taking its token in the query string.
    let profiles = h.tmp.path().join("profiles");
    std::fs::create_dir_all(&profiles).expect("profiles");
    std::fs::write(
        profiles.join("notes.toml"),
        include_str!("../../demo/profiles/notes.toml").replace(
            "header = \"Authorization\"\nscheme = \"Bearer \"",
            "query = \"token\"",
        ),
    )
    .expect("profile");
    let mut config = AgentConfig::for_test(h.tmp.path().join("agent"))
        .with_profile("notes")
        .with_service_dir(&h.service)
        .with_logs(vec![log]);
    config.profiles_dir = Some(profiles);
    let report = load_agent(config).evidence(10);
    let text = serde_json::to_string(&report).expect("json");
    assert!(
        !text.contains("s3cret-key-value") && text.contains("token=[redacted]"),
        "the key is redacted in the bundle's log tail: {text}"
    );
}

#[test]
fn evidence_does_not_follow_a_log_swapped_for_a_link_to_a_root_only_file() {
    let h = host();
    // The service's account swaps its log and its config for links to a root-only file.
    let log_path = h.service.join("sekha.log");
    std::os::unix::fs::symlink(&h.secret, &log_path).expect("link");
    std::os::unix::fs::symlink(&h.secret, h.service.join("config.toml")).expect("link");
    let agent = agent(&h, vec![log(&log_path)]);
    let report = agent.evidence(100);
    let text = serde_json::to_string(&report).expect("json");
    assert!(
        !text.contains("only-root-may-read-this"),
        "the root-only file's content never reaches the evidence: {text}"
    );
    let tail = &report.logs[0];
    assert!(
        tail.lines.is_empty()
            && tail
                .error
                .as_deref()
                .is_some_and(|e| e.contains("symbolic link")),
        "the log is refused and the bundle says why: {tail:?}"
    );
    let config = report
        .files
        .iter()
        .find(|f| f.path.ends_with("config.toml"))
        .expect("the config is described");
    assert!(
        config.sha256.is_none() && config.size.is_none(),
        "nothing about the link's target is reported (not even its hash or size): {config:?}"
    );
    assert!(
        config
            .error
            .as_deref()
            .is_some_and(|e| e.contains("symbolic link")),
        "and the bundle says why: {config:?}"
    );
}

#[test]
fn the_log_reader_does_not_follow_a_log_swapped_for_a_link_to_a_root_only_file() {
    let h = host();
    let log_path = h.service.join("sekha.log");
    std::os::unix::fs::symlink(&h.secret, &log_path).expect("link");
    let mut buffer = Buffer::open(&h.tmp.path().join("events.sqlite3"), 1000).expect("buffer");
    let mut tailer = Tailer::new(log(&log_path), &buffer).expect("tailer");
    tailer.poll(&mut buffer, NOW_US).expect("poll");
    tailer.poll(&mut buffer, NOW_US).expect("poll again");
    let events = buffer.page(0, 100).expect("page").events;
    assert!(
        events
            .iter()
            .all(|e| !e.raw.contains("only-root-may-read-this")),
        "no line of the root-only file becomes an event: {events:?}"
    );
    let said: Vec<&str> = events.iter().filter_map(|e| e.message.as_deref()).collect();
    assert_eq!(
        said.iter().filter(|m| m.contains("symbolic link")).count(),
        1,
        "the refusal is said once, not on every poll: {said:?}"
    );
    // Once the link is replaced by a real log, it is followed.
    std::fs::remove_file(&log_path).expect("rm");
    std::fs::write(
        &log_path,
        "2026-11-23T02:41:57.390647Z  INFO sekha_controller: started\n",
    )
    .expect("log");
    // Tried again with back-off (the first retry 1 s after the refusal), not on every poll.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut events = Vec::new();
    while std::time::Instant::now() < deadline {
        tailer.poll(&mut buffer, NOW_US).expect("poll");
        events = buffer.page(0, 100).expect("page").events;
        if events.iter().any(|e| e.raw.contains("started")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        events.iter().any(|e| e.raw.contains("started")),
        "a regular log in its place is read at the next try: {events:?}"
    );
}

#[test]
fn a_config_swapped_for_dev_zero_a_device_a_fifo_or_a_huge_file_is_refused_not_read() {
    let h = host();
    let config = h.service.join("config.toml");
    let agent = std::sync::Arc::new(agent(&h, Vec::new()));
    let mut cases = vec!["a link to /dev/zero", "a FIFO", "a 4 GiB file"];
    if running_as_root() {
        // The device itself, made where the config was (only root can make one).
        cases.push("the /dev/zero device");
    }
    let make = |case: &str| match case {
        "a link to /dev/zero" => std::os::unix::fs::symlink("/dev/zero", &config).expect("link"),
        "a FIFO" => rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &config,
            rustix::fs::Mode::from_raw_mode(0o644),
        )
        .expect("fifo"),
        "a 4 GiB file" => std::fs::File::create(&config)
            .and_then(|f| f.set_len(4 << 30))
            .expect("sparse file"),
        _ => rustix::fs::mknodat(
            rustix::fs::CWD,
            &config,
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o644),
            rustix::fs::makedev(1, 5),
        )
        .expect("mknod"),
    };
    {
        for case in cases {
            let _ = std::fs::remove_file(&config);
            make(case);
            // On a thread of its own, so a read that blocks (a FIFO without a writer) fails
            // the test instead of hanging it.
            let (tx, rx) = std::sync::mpsc::channel();
            let agent = agent.clone();
            std::thread::spawn(move || {
                let _ = tx.send((agent.credentials(), agent.evidence(10)));
            });
            let (report, evidence) =
                rx.recv_timeout(Duration::from_secs(30))
                    .unwrap_or_else(|_| {
                        panic!("{case}: the agent gave up on the file instead of waiting on it")
                    });
            assert!(
                report.credentials.is_empty()
                    && report.problems.iter().any(|p| p.contains("config.toml")
                        && (p.contains("not a regular file")
                            || p.contains("symbolic link")
                            || p.contains("larger than"))),
                "{case}: refused, and the inventory says why: {report:?}"
            );
            let facts = evidence
                .files
                .iter()
                .find(|f| f.path.ends_with("config.toml"))
                .expect("the config is described");
            assert!(
                facts.sha256.is_none() && facts.error.is_some(),
                "{case}: the evidence reads no hash of it either: {facts:?}"
            );
        }
    }
}

#[test]
fn a_log_path_with_a_nul_byte_is_refused_and_never_reported() {
    // In the agent's own config: refused when it is loaded, with a code.
    let text = "listen = \"127.0.0.1:7443\"\nprofile = \"sekha\"\nstate_dir = \"/var/lib/gh\"\n\
                [[logs]]\npath = \"/var/log/sekha\\u0000.log\"\nformat = \"nginx_combined\"\nsource = \"proxy\"\n";
    let err = AgentConfig::parse(text, Path::new("agent.toml"))
        .expect_err("no file can have a name with a NUL byte");
    assert_eq!(err.code(), "config_invalid", "a config error: {err}");
    assert!(err.to_string().contains("NUL"), "that says why: {err}");
    // In an operator-written profile: the log is not followed, and no report names it.
    let h = host();
    let profiles = h.tmp.path().join("profiles");
    std::fs::create_dir(&profiles).expect("profiles");
    let profile = include_str!("../../profiles/sekha.toml")
        .replace("name = \"sekha\"", "name = \"memo\"")
        .replace("/var/log/sekha/sekha.log", "/var/log/memo/me\\u0000mo.log");
    std::fs::write(profiles.join("memo.toml"), profile).expect("profile");
    let config = AgentConfig {
        profiles_dir: Some(profiles),
        ..AgentConfig::for_test(h.tmp.path().join("agent"))
            .with_profile("memo")
            .with_service_dir(&h.service)
    };
    let agent = load_agent(config);
    let report = agent.evidence(10);
    let paths: Vec<&str> = report
        .logs
        .iter()
        .map(|l| l.path.as_str())
        .chain(report.files.iter().map(|f| f.path.as_str()))
        .collect();
    assert!(
        paths.iter().all(|p| !p.contains('\0')),
        "no reported path holds a NUL byte (the console makes file names of them): {paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.ends_with("nginx/sekha.access.log")),
        "the profile's other log is still reported: {paths:?}"
    );
}
