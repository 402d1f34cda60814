//! The fault suite: the built agent and the `gatehouse` CLI as processes, killed with SIGKILL at
//! random points while they work, and counted afterwards.
//!
//! - Log lines: numbered lines written at 2,000 a second while the log is rotated (rename and
//!   copytruncate), the agent is killed and started again, and console syncs are killed
//!   mid-way. Every number must arrive in the console exactly once.
//! - Rotations: a key rotated again and again against the Sekha fixture (with its restart
//!   bug) while the console is killed mid-rotation, then while the agent is. After each, once
//!   the agent answers again: the service must answer with a key, the keychain's key must be
//!   one the service accepts, and no rotation may be left pending.
//!
//! The points are random and seeded; the seed is printed, and `GATEHOUSE_FAULT_SEED=N`
//! replays a run's schedule. `GATEHOUSE_FAULT_TRIALS=N` sets the kills per kind (20 by
//! default, as the acceptance asks; `scripts/test-dates.sh` runs fewer with the clock moved).
//! Counts are printed (`cargo nextest run -p gatehouse-cli faults --no-capture`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_testkit::{free_port, wait_listening};

use crate::{agent_binary, gatehouse, init_agent, run, stderr, stdout};

/// A small seeded generator (SplitMix64): the schedule of a run, replayable from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to.saturating_sub(from) + 1))
    }
}

/// The run's seed: `GATEHOUSE_FAULT_SEED`, or a fresh one, printed either way.
fn seed(suite: &str) -> u64 {
    let seed = std::env::var("GATEHOUSE_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(std::process::id());
            h.finish()
        });
    eprintln!("{suite}: seed {seed} (GATEHOUSE_FAULT_SEED={seed} replays this schedule)");
    seed
}

/// Kills per kind.
fn trials() -> usize {
    std::env::var("GATEHOUSE_FAULT_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

fn require_session() {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "run through scripts/test.sh, which provides gnome-keyring"
    );
}

/// A D-Bus session with a gnome-keyring of its own, for the console processes this suite
/// kills: a keychain daemon that a killed client upsets (it has happened, and then comes back
/// locked) upsets only this suite, never the tests sharing the run's keychain. Ended with the
/// test.
struct Keyring {
    session: Session,
    /// The session's placeholder process: ending it ends the bus, and the daemon with it.
    keeper: String,
    child: Child,
    _dirs: tempfile::TempDir,
}

/// What a process needs to use the private keychain.
#[derive(Debug, Clone)]
struct Session {
    env: Vec<(String, String)>,
}

impl Keyring {
    fn start() -> Keyring {
        use std::io::BufRead;
        use std::os::unix::fs::PermissionsExt;
        let dirs = tempfile::tempdir().expect("tempdir");
        let runtime = dirs.path().join("runtime");
        let data = dirs.path().join("data");
        std::fs::create_dir_all(&runtime).expect("runtime");
        std::fs::create_dir_all(&data).expect("data");
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700))
            .expect("runtime mode");
        let mut child = Command::new("dbus-run-session")
            .args([
                "--",
                "sh",
                "-c",
                "echo -n pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null; \
                 echo \"$DBUS_SESSION_BUS_ADDRESS $$\"; exec sleep 3600",
            ])
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("XDG_DATA_HOME", &data)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-run-session runs");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the session's address");
        let (address, keeper) = line.trim().rsplit_once(' ').expect("an address and a pid");
        Keyring {
            session: Session {
                env: vec![
                    ("DBUS_SESSION_BUS_ADDRESS".into(), address.to_owned()),
                    ("XDG_RUNTIME_DIR".into(), runtime.display().to_string()),
                    ("XDG_DATA_HOME".into(), data.display().to_string()),
                ],
            },
            keeper: keeper.to_owned(),
            child,
            _dirs: dirs,
        }
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        // The placeholder ends, so dbus-run-session ends the bus and waits.
        let _ = Command::new("kill").arg(&self.keeper).status();
        let _ = self.child.wait();
    }
}

impl Session {
    /// `gatehouse` with the private keychain.
    fn gatehouse(&self, data: &Path, args: &[&str]) -> Command {
        let mut cmd = gatehouse(data, args);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }
}

/// The agent binary run from a config file; killed with SIGKILL and started again at will.
struct AgentProcess {
    config: PathBuf,
    state: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl AgentProcess {
    /// `gatehouse-agent init`, then `run`. `rest` is the config after `listen` and
    /// `state_dir`. Returns the agent and its enrollment code's file.
    fn start_new(dir: &Path, rest: &str) -> (AgentProcess, PathBuf) {
        std::fs::create_dir_all(dir).expect("agent dir");
        let port = free_port();
        let state = dir.join("state");
        let config = dir.join("agent.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\nstate_dir = \"{}\"\n{rest}",
                state.display()
            ),
        )
        .expect("agent config");
        let code_file = dir.join("code.txt");
        init_agent(&config, &code_file);
        let mut agent = AgentProcess {
            config,
            state,
            port,
            child: None,
        };
        agent.start();
        (agent, code_file)
    }

    fn start(&mut self) {
        assert!(self.child.is_none(), "one agent at a time");
        let child = Command::new(agent_binary())
            .args(["run", "--config"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the agent runs");
        self.child = Some(child);
        wait_listening(self.port);
    }

    /// SIGKILL, as a crash or the OOM killer would end it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Wait until the agent has no rotation or restart of its own under way (its journal and
    /// its restart note are gone): what it does without the console is done.
    fn wait_idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while self.state.join("rotation.json").exists()
            || self.state.join("restart-running.json").exists()
        {
            assert!(
                Instant::now() < deadline,
                "the agent finishes or rolls back its rotation within 90 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn enroll(s: &Session, data: &Path, name: &str, agent: &AgentProcess, code_file: &Path) {
    let out = run(s
        .gatehouse(
            data,
            &[
                "instance",
                "add",
                "--name",
                name,
                "--address",
                &agent.address(),
                "--code-file",
            ],
        )
        .arg(code_file));
    assert!(out.status.success(), "enrolled: {}", stderr(&out));
}

/// Kill `child` after `delay` unless it has ended by then. Whether it was killed.
fn kill_after(child: &mut Child, delay: Duration) -> bool {
    let until = Instant::now() + delay;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return false;
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

// ---------------------------------------------------------------------------------------------
// Log lines

const RATE: u64 = 2_000;
const SECONDS: u64 = 10;

#[derive(Debug, Clone, Copy)]
enum LogFault {
    /// logrotate's default: `.1` moves to `.2`, the log to `.1`, a new log is made.
    Rename,
    /// logrotate's copytruncate: the log copied to `.1`, then truncated in place.
    CopyTruncate,
}

/// Line `n`, an nginx combined line stamped with the time of writing.
fn numbered_line(n: u64) -> String {
    let now = time::OffsetDateTime::now_utc();
    let stamp = now
        .format(time::macros::format_description!(
            "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
        ))
        .expect("format");
    format!(
        "198.51.100.{} - - [{stamp}] \"GET /n/{n} HTTP/1.1\" 200 12 \"-\" \"fault-suite\"\n",
        n % 250 + 1
    )
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Write `RATE * SECONDS` numbered lines at `RATE` a second, rotating the log at the
/// scheduled instants (between two lines, as logrotate's own window is not the agent's).
fn write_lines(log: &Path, mut rotations: Vec<(Duration, LogFault)>) {
    rotations.sort_by_key(|(at, _)| *at);
    let mut rotations = rotations.into_iter().peekable();
    let open = |path: &Path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open the log")
    };
    let mut file = open(log);
    let start = Instant::now();
    let total = RATE * SECONDS;
    let batch = RATE / 100;
    let mut n = 0;
    while n < total {
        let due = start + Duration::from_millis(n * 1000 / RATE);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let mut text = String::new();
        for i in n..(n + batch).min(total) {
            text.push_str(&numbered_line(i));
        }
        file.write_all(text.as_bytes()).expect("write lines");
        n = (n + batch).min(total);
        while rotations
            .peek()
            .is_some_and(|(at, _)| start.elapsed() >= *at)
        {
            let (_, fault) = rotations.next().expect("peeked");
            let (one, two) = (with_suffix(log, ".1"), with_suffix(log, ".2"));
            if one.exists() {
                std::fs::rename(&one, &two).expect("shift .1 to .2");
            }
            match fault {
                LogFault::Rename => {
                    std::fs::rename(log, &one).expect("rename the log");
                    file = open(log);
                }
                LogFault::CopyTruncate => {
                    std::fs::copy(log, &one).expect("copy the log");
                    file.set_len(0).expect("truncate the log");
                }
            }
        }
    }
}

/// The numbers of every line the console holds, and the markers saying lines may be missing.
fn stored_lines(s: &Session, data: &Path) -> (Vec<u64>, Vec<String>) {
    let out = run(&mut s.gatehouse(data, &["events", "--format", "jsonl"]));
    assert!(out.status.success(), "events export: {}", stderr(&out));
    let mut numbers = Vec::new();
    let mut missing = Vec::new();
    for line in stdout(&out).lines() {
        let event: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let raw = event["raw"].as_str().unwrap_or_default();
        if let Some(rest) = raw.split("GET /n/").nth(1) {
            let number = rest.split(' ').next().and_then(|n| n.parse().ok());
            numbers.push(number.unwrap_or_else(|| panic!("a numbered line: {raw}")));
        } else if event["message"]
            .as_str()
            .is_some_and(|m| m.contains("may be missing") || m.contains("dropped"))
        {
            missing.push(event["message"].as_str().unwrap_or_default().to_owned());
        }
    }
    (numbers, missing)
}

#[test]
fn kills_and_log_rotations_at_2000_lines_a_second_lose_and_repeat_no_line() {
    require_session();
    let mut rng = Rng(seed("log lines"));
    let keyring = Keyring::start();
    let session = &keyring.session;
    let tmp = tempfile::tempdir().expect("tempdir");
    let agent_dir = tmp.path().join("agent");
    std::fs::create_dir_all(&agent_dir).expect("dir");
    let log = agent_dir.join("access.log");
    std::fs::write(&log, "").expect("log");
    let (mut agent, code) = AgentProcess::start_new(
        &agent_dir,
        &format!(
            "profile = \"jelmore\"\n\n[[logs]]\npath = \"{}\"\nformat = \"nginx_combined\"\nsource = \"proxy\"\n",
            log.display()
        ),
    );
    let data = tmp.path().join("console");
    enroll(session, &data, "edge-1", &agent, &code);

    // The schedule: rotations of each kind and agent kills at random instants of the run.
    // A log is rotated at most once in each quarter of the run, at least 1.5 s apart: two
    // rotations within one poll, or while the agent is down, can lose what the first new
    // file held before the second (nothing on disk says it was ever there), and logrotate
    // rotates a log once a day or an hour, not twice in a second.
    let span = SECONDS * 1000;
    let quarter = span / 4;
    let rotations: Vec<(Duration, LogFault)> = (0..4)
        .map(|i| {
            let fault = if rng.below(2) == 0 {
                LogFault::Rename
            } else {
                LogFault::CopyTruncate
            };
            (
                Duration::from_millis(i * quarter) + rng.millis(500, 1000),
                fault,
            )
        })
        .collect();
    let agent_kills = (trials() / 4).max(2);
    let mut kills: Vec<(Duration, Duration)> = (0..agent_kills)
        .map(|_| (rng.millis(300, span - 300), rng.millis(0, 600)))
        .collect();
    kills.sort();
    eprintln!("rotations at {rotations:?}; agent kills (at, down for) {kills:?}");

    let writer = {
        let log = log.clone();
        let rotations = rotations.clone();
        std::thread::spawn(move || write_lines(&log, rotations))
    };
    // Console syncs, half of them killed at a random point.
    let done = Arc::new(AtomicBool::new(false));
    let console_kills = Arc::new(AtomicUsize::new(0));
    let syncer = {
        let (done, console_kills, data) = (done.clone(), console_kills.clone(), data.clone());
        let session = session.clone();
        let mut rng = Rng(rng.next());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                let mut child = session
                    .gatehouse(&data, &["events", "--sync", "--limit", "1"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("gatehouse runs");
                let delay = if rng.below(2) == 0 {
                    rng.millis(0, 400)
                } else {
                    Duration::from_secs(60)
                };
                if kill_after(&mut child, delay) {
                    console_kills.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    };
    let start = Instant::now();
    for (at, down) in &kills {
        if let Some(wait) = (start + *at).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        agent.kill();
        std::thread::sleep(*down);
        agent.start();
    }
    writer.join().expect("the writer finishes");
    // Let the syncs go on a little past the end, then stop them.
    std::thread::sleep(Duration::from_secs(1));
    done.store(true, Ordering::SeqCst);
    syncer.join().expect("the syncer finishes");

    // Sync until everything has arrived or nothing more comes.
    let total = RATE * SECONDS;
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut numbers, mut missing);
    let mut last = (0, Instant::now());
    loop {
        let out = run(&mut session.gatehouse(&data, &["events", "--sync", "--limit", "1"]));
        assert!(out.status.success(), "sync: {}", stderr(&out));
        (numbers, missing) = stored_lines(session, &data);
        if numbers.len() != last.0 {
            last = (numbers.len(), Instant::now());
        }
        let stalled = last.1.elapsed() > Duration::from_secs(10);
        if numbers.len() as u64 >= total || stalled || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut seen = vec![0u32; total as usize];
    for &n in &numbers {
        assert!(n < total, "line {n} was never written");
        seen[n as usize] += 1;
    }
    let lost: Vec<usize> = (0..seen.len()).filter(|&n| seen[n] == 0).collect();
    let duplicated = seen.iter().filter(|&&c| c > 1).count();
    eprintln!(
        "log lines: {total} written at {RATE}/s with {} rotations ({} rename, {} copytruncate), \
         {} agent kills, {} console syncs killed: {} lost, {} duplicated, {} said missing",
        rotations.len(),
        rotations
            .iter()
            .filter(|(_, f)| matches!(f, LogFault::Rename))
            .count(),
        rotations
            .iter()
            .filter(|(_, f)| matches!(f, LogFault::CopyTruncate))
            .count(),
        kills.len(),
        console_kills.load(Ordering::SeqCst),
        lost.len(),
        duplicated,
        missing.len()
    );
    for said in &missing {
        eprintln!("  said: {said}");
    }
    assert!(
        lost.is_empty() && duplicated == 0,
        "no line is lost or stored twice across kills and rotations: {} lost ({}), \
         {duplicated} duplicated; markers: {missing:?}",
        lost.len(),
        ranges(&lost)
    );
    agent.kill();
}

/// `3-7, 12` for [3, 4, 5, 6, 7, 12].
fn ranges(numbers: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < numbers.len() {
        let mut j = i;
        while j + 1 < numbers.len() && numbers[j + 1] == numbers[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            numbers[i].to_string()
        } else {
            format!("{}-{}", numbers[i], numbers[j])
        });
        i = j + 1;
    }
    out.join(", ")
}

// ---------------------------------------------------------------------------------------------
// Rotations

/// A Sekha fixture restarted through `restart_fixture.sh`, as the agent restarts it.
struct Service {
    port: u16,
    config: PathBuf,
    pid_file: PathBuf,
    restart: Vec<String>,
    profile: gatehouse_events::Profile,
}

impl Service {
    fn new(dir: &Path) -> Service {
        let work = dir.join("service");
        std::fs::create_dir_all(&work).expect("service dir");
        let config = work.join("config.toml");
        std::fs::write(
            &config,
            "mcp_api_key = \"sekha-first-key-0123456789-abcdefghijklmnop\"\n\n[server]\nport = 8080\n",
        )
        .expect("config");
        let port = free_port();
        let pid_file = dir.join("service.pid");
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../demo/restart_fixture.sh");
        // Every probe of every trial stays well inside the fixture's rate limit.
        let restart = vec![
            "sh".to_owned(),
            script.display().to_string(),
            pid_file.display().to_string(),
            "--profile".into(),
            "sekha".into(),
            "--port".into(),
            port.to_string(),
            "--workdir".into(),
            work.display().to_string(),
            "--log".into(),
            dir.join("service.log").display().to_string(),
            "--rate-limit".into(),
            "1000000".into(),
        ];
        let status = Command::new(&restart[0])
            .args(&restart[1..])
            .status()
            .expect("start the fixture");
        assert!(status.success(), "the fixture starts");
        let profile = gatehouse_events::Profile::builtin("sekha")
            .expect("built in")
            .expect("valid");
        Service {
            port,
            config,
            pid_file,
            restart,
            profile,
        }
    }

    /// The key the service's config file holds.
    fn file_key(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.config).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("mcp_api_key = \""))
            .map(|k| k.trim_end_matches('"').to_owned())
    }

    /// Whether the service answers its protected endpoint with `key` as it does a good one.
    fn accepts(&self, key: &str) -> Option<bool> {
        let probe = &self.profile.probes.protected;
        let body = probe.body.clone().unwrap_or_default();
        let request = format!(
            "{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{}: {}{key}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            probe.method,
            probe.path,
            self.profile.auth.header,
            self.profile.auth.scheme,
            body.len()
        );
        let mut stream = std::net::TcpStream::connect_timeout(
            &([127, 0, 0, 1], self.port).into(),
            Duration::from_secs(2),
        )
        .ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        stream.write_all(request.as_bytes()).ok()?;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let head = String::from_utf8_lossy(&answer);
        let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
        Some(!matches!(status, 401 | 403))
    }

    /// Ask until the service answers (it may be starting), at most 15 s.
    fn accepts_when_up(&self, key: &str) -> Option<bool> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(answer) = self.accepts(key) {
                return Some(answer);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // A restart a killed agent began may still be starting the next fixture (its script
        // outlives the agent, and removes the pid file before it writes the new one): stop what
        // the pid file names until, for a while, it names nothing new and nothing alive.
        let read = || {
            std::fs::read_to_string(&self.pid_file)
                .ok()
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
        };
        let alive = |pid: &str| {
            Command::new("kill")
                .args(["-0", pid])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut quiet = 0;
        while quiet < 15 && Instant::now() < deadline {
            match read() {
                Some(pid) if alive(&pid) => {
                    let _ = Command::new("kill").arg(&pid).status();
                    quiet = 0;
                }
                _ => quiet += 1,
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[derive(Debug, Default)]
struct RotationCounts {
    trials: usize,
    killed_mid_way: usize,
    keyless_services: usize,
    refused_keychain_keys: usize,
    left_pending: usize,
    committed: usize,
    problems: Vec<String>,
}

/// What the keychain holds as the key's current value.
fn keychain_key(s: &Session, service: &str) -> Option<String> {
    let out = Command::new("secret-tool")
        .envs(s.env.iter().map(|(k, v)| (k, v)))
        .args([
            "lookup",
            "service",
            service,
            "username",
            "instance/sekha-1/key/mcp_api_key",
        ])
        .output()
        .expect("secret-tool runs");
    let key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (!key.is_empty()).then_some(key)
}

/// Once the agent answers again: settle (the inventory does), then count what is wrong.
fn settle_and_count(
    s: &Session,
    data: &Path,
    keychain: &str,
    service: &Service,
    counts: &mut RotationCounts,
    what: &str,
) {
    counts.trials += 1;
    let out = run(&mut s.gatehouse(data, &["credentials"]));
    if !out.status.success() {
        counts
            .problems
            .push(format!("{what}: credentials failed: {}", stderr(&out)));
    }
    let file_key = service.file_key();
    let file_works = match &file_key {
        Some(key) => service.accepts_when_up(key) == Some(true),
        None => false,
    };
    let keychain = keychain_key(s, keychain);
    let keychain_works = match &keychain {
        Some(key) => service.accepts_when_up(key) == Some(true),
        None => false,
    };
    if !file_works && !keychain_works {
        counts.keyless_services += 1;
        counts.problems.push(format!(
            "{what}: the service answers with no key (its file's key works: {file_works})"
        ));
    }
    if !keychain_works {
        counts.refused_keychain_keys += 1;
        counts.problems.push(format!(
            "{what}: the keychain's key is refused (or missing: {})",
            keychain.is_none()
        ));
    }
    let out = run(&mut s.gatehouse(
        data,
        &["--json", "credentials", "history", "--limit", "1000"],
    ));
    assert!(out.status.success(), "history: {}", stderr(&out));
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON history");
    let rows = history.as_array().expect("a list");
    let pending = rows.iter().filter(|r| r["state"] == "pending").count();
    if pending > 0 {
        counts.left_pending += pending;
        counts
            .problems
            .push(format!("{what}: {pending} rotation(s) left pending"));
    }
    counts.committed = rows.iter().filter(|r| r["state"] == "committed").count();
}

#[test]
fn kills_mid_rotation_leave_no_service_keyless_no_keychain_key_refused_and_nothing_pending() {
    require_session();
    let mut rng = Rng(seed("rotations"));
    let keyring = Keyring::start();
    let session = &keyring.session;
    let tmp = tempfile::tempdir().expect("tempdir");
    let service = Service::new(tmp.path());
    let restart = service
        .restart
        .iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let (mut agent, code) = AgentProcess::start_new(
        &tmp.path().join("agent"),
        &format!(
            "profile = \"sekha\"\nservice_url = \"http://127.0.0.1:{}/health\"\n\
             service_dir = \"{}\"\nrestart_command = [{restart}]\nrestart_timeout_secs = 15\n",
            service.port,
            service.config.parent().expect("dir").display()
        ),
    );
    let data = tmp.path().join("console");
    enroll(session, &data, "sekha-1", &agent, &code);
    let keychain = format!("Gatehouse cli test {}", std::process::id());

    // One rotation left alone: it commits, and says how long one takes.
    let started = Instant::now();
    let out = run(&mut session.gatehouse(&data, &["rotate", "sekha-1", "mcp_api_key", "--yes"]));
    let span = started.elapsed();
    assert!(
        out.status.success(),
        "an undisturbed rotation commits: {} {}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains(&format!(
            "`secret-tool lookup service '{keychain}' username 'instance/sekha-1/key/mcp_api_key'` prints it"
        )),
        "a rotation without --show-key says where the new key is to be read: {}",
        stdout(&out)
    );
    let mut counts = RotationCounts::default();
    settle_and_count(
        session,
        &data,
        &keychain,
        &service,
        &mut counts,
        "undisturbed",
    );
    assert!(
        counts.problems.is_empty() && counts.committed == 1,
        "the undisturbed rotation leaves everything right: {counts:?}"
    );
    let span_ms = span.as_millis() as u64;
    eprintln!("an undisturbed rotation took {span_ms} ms; kills fall within 0..{span_ms} ms");

    let rotate = |data: &Path| {
        session
            .gatehouse(data, &["rotate", "sekha-1", "mcp_api_key", "--yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gatehouse runs")
    };
    let n = trials();
    for i in 0..n {
        let mut child = rotate(&data);
        if kill_after(&mut child, rng.millis(0, span_ms)) {
            counts.killed_mid_way += 1;
        }
        agent.wait_idle();
        settle_and_count(
            session,
            &data,
            &keychain,
            &service,
            &mut counts,
            &format!("console kill {i}"),
        );
    }
    for i in 0..n {
        let mut child = rotate(&data);
        let delay = rng.millis(0, span_ms);
        let until = Instant::now() + delay;
        let mut mid_way = false;
        while Instant::now() < until {
            if child.try_wait().expect("wait").is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if child.try_wait().expect("wait").is_none() {
            mid_way = true;
        }
        agent.kill();
        agent.start();
        // The console's rotation ends by itself (failed or settled), never hangs.
        let deadline = Instant::now() + Duration::from_secs(90);
        while child.try_wait().expect("wait").is_none() {
            assert!(
                Instant::now() < deadline,
                "a rotation whose agent was killed ends within 90 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        counts.killed_mid_way += usize::from(mid_way);
        agent.wait_idle();
        settle_and_count(
            session,
            &data,
            &keychain,
            &service,
            &mut counts,
            &format!("agent kill {i}"),
        );
    }
    eprintln!(
        "rotations: {} console kills and {} agent kills ({} of them mid-rotation), {} committed \
         in all: {} keyless services, {} keychain keys the service refuses, {} left pending",
        n,
        n,
        counts.killed_mid_way,
        counts.committed,
        counts.keyless_services,
        counts.refused_keychain_keys,
        counts.left_pending
    );
    assert!(
        counts.keyless_services == 0
            && counts.refused_keychain_keys == 0
            && counts.left_pending == 0,
        "no keyless service, no refused keychain key, nothing pending once the agent answers: \
         {:?}",
        counts.problems
    );
    assert!(
        counts.killed_mid_way >= n / 2,
        "the kills fell mid-rotation often enough to mean something: {} of {}",
        counts.killed_mid_way,
        2 * n
    );
    agent.kill();
}
