//! Key rotation on the host, against the fixture services of all three profiles, restarted
//! for real: the new key works and the old one is refused, or everything is put back and the
//! old key works again. Faults: the service does not come back, the new key is refused (an
//! environment variable wins over the file), the config was edited by hand, and the agent is
//! stopped mid-way.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gatehouse_agent::Agent;
use gatehouse_agent::AgentConfig;
use gatehouse_protocol::{RotateOutcome, RotateRequest};

use crate::ports::free_port;

/// A fingerprint as an agent no console gave a fingerprint key to makes it: unkeyed.
fn fingerprint(value: &str) -> String {
    gatehouse_pki::Fingerprints::unkeyed().of(value)
}

fn demo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../demo")
}

/// A fixture service run through `restart_fixture.sh`, and an agent beside it.
struct Host {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    config_file: PathBuf,
    pid_file: PathBuf,
    agent: AgentConfig,
    key_name: &'static str,
    old_key: String,
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.pid_file) {
            let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// `extra` runs before the restart script: an environment override, a hang.
fn host(profile: &'static str, extra: &str) -> Host {
    host_run_by(profile, extra, None)
}

/// A host whose service runs as `uid` (its pid file and log in its own directory), or as the
/// test's user.
fn host_run_by(profile: &'static str, extra: &str, uid: Option<u32>) -> Host {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("service");
    std::fs::create_dir_all(&dir).expect("dir");
    let old_key = format!("{profile}-old-key-0123456789-abcdefghijklmnop");
    let (file, key_name, text) = match profile {
        "sekha" => ("config.toml", "mcp_api_key", format!("mcp_api_key = \"{old_key}\"\n\n[server]\nport = 8080\n")),
        "rae" => (
            ".env",
            "API_KEY",
            format!("API_KEY={old_key}\nENABLE_API_KEY_AUTH=true\nSECRET_KEY=change-this-secret-key-in-production\n"),
        ),
        "jelmore" => (".env", "API_KEY_CLIENT", format!("API_KEY_ADMIN=admin-key-that-stays-0123456789-abcdef\nAPI_KEY_CLIENT={old_key}\nPOSTGRES_PASSWORD=x\n")),
        "jupyter" => (
            "jupyter_server_config.json",
            "IdentityProvider.token",
            format!(
                "{{\n  \"ServerApp\": {{\"root_dir\": \"/srv/notebooks\"}},\n  \"IdentityProvider\": {{\"token\": \"{old_key}\"}}\n}}\n"
            ),
        ),
        // A service added by a profile file: the second of a list of tokens in a JSON config.
        _ => (
            "config.json",
            "auth.tokens[1].token",
            format!(
                "{{\n  \"listen\": 8090,\n  \"auth\": {{\n    \"tokens\": [\n      {{\"name\": \"ops\", \"token\": \"ops-token-that-stays-0123456789-abcdef\"}},\n      {{\"name\": \"app\", \"token\": \"{old_key}\"}}\n    ]\n  }},\n  \"signing_secret\": \"signing-secret-that-stays-0123456789ab\"\n}}\n"
            ),
        ),
    };
    let config_file = dir.join(file);
    std::fs::write(&config_file, text).expect("config");
    let port = free_port();
    let (pid_file, log, run_as) = match uid {
        None => (
            tmp.path().join("service.pid"),
            tmp.path().join("service.log"),
            String::new(),
        ),
        Some(uid) => (
            dir.join("service.pid"),
            dir.join("service.log"),
            // Without libfaketime (scripts/test-dates.sh): its per-process semaphore, made by
            // root under this pid before the exec, is not the other account's to open.
            format!("env -u LD_PRELOAD setpriv --reuid={uid} --regid={uid} --clear-groups "),
        ),
    };
    let script = demo_dir().join("restart_fixture.sh");
    let command = format!(
        "{extra} {run_as}sh {} {} --profile {profile} --port {port} --workdir {} --log {}",
        script.display(),
        pid_file.display(),
        dir.display(),
        log.display()
    );
    let mut agent = AgentConfig::for_test(tmp.path().join("agent"))
        .with_profile(profile)
        // Jupyter Server has no /health: /api answers without a token.
        .with_service_url(format!(
            "http://127.0.0.1:{port}{}",
            if profile == "jupyter" {
                "/api"
            } else {
                "/health"
            }
        ))
        .with_service_dir(dir.clone())
        .with_restart(vec!["sh".into(), "-c".into(), command], 5);
    if profile == "notes" {
        agent.profiles_dir = Some(demo_dir().join("profiles"));
    }
    Host {
        _tmp: tmp,
        dir,
        config_file,
        pid_file,
        agent,
        key_name,
        old_key,
    }
}

async fn healthy(url: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if reqwest::get(url)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{url} answers within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Start the service through the same script the agent restarts it with, and an agent whose
/// inventory finds nothing wrong.
async fn boot(h: &Host) -> Agent {
    let agent = start(h).await;
    let report = agent.credentials();
    assert!(
        report.problems.is_empty(),
        "the agent reads the config: {:?}",
        report.problems
    );
    agent
}

/// Start the service and an agent beside it.
async fn start(h: &Host) -> Agent {
    gatehouse_pki::install_provider();
    gatehouse_agent::initialise(
        &gatehouse_agent::state::StateDir::new(&h.agent.state_dir),
        time::OffsetDateTime::now_utc(),
        Duration::from_secs(900),
        [7; 20],
    )
    .expect("agent init");
    let cmd = h.agent.restart_command.clone().expect("restart command");
    let status = tokio::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .status()
        .await
        .expect("start the fixture");
    assert!(status.success(), "the fixture starts");
    healthy(h.agent.service_url.as_deref().expect("url")).await;
    Agent::load(h.agent.clone()).expect("agent")
}

fn request(agent: &Agent, name: &str, new_key: &str) -> RotateRequest {
    let report = agent.credentials();
    let c = report
        .credentials
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("{name} is in the inventory: {report:?}"));
    RotateRequest {
        name: name.into(),
        expected_fingerprint: c.fingerprint.clone(),
        expected_file_digest: c.file_digest.clone(),
        new_key: new_key.into(),
    }
}

/// Whether the service accepts `key` on its protected endpoint (as the profile says to ask).
async fn accepts(h: &Host, key: &str) -> bool {
    let profile = h.agent.service_profile().expect("a valid profile");
    let base = h
        .agent
        .service_url
        .as_deref()
        .expect("url")
        .trim_end_matches("/health")
        .trim_end_matches("/api")
        .to_owned();
    let probe = &profile.probes.protected;
    let mut req = reqwest::Client::new().request(
        reqwest::Method::from_bytes(probe.method.as_bytes()).expect("method"),
        format!("{base}{}", probe.path),
    );
    req = match profile.auth.present(key) {
        gatehouse_events::profile::Presented::Header { name, value } => req.header(name, value),
        gatehouse_events::profile::Presented::Query { name, value } => req.query(&[(name, value)]),
    };
    if let Some(body) = &probe.body {
        req = req
            .header("content-type", "application/json")
            .body(body.clone());
    }
    let status = req
        .send()
        .await
        .expect("the service answers")
        .status()
        .as_u16();
    !matches!(status, 401 | 403)
}

fn new_key(profile: &str) -> String {
    match profile {
        // Jupyter's keys are hex, as its own generated tokens are.
        "jupyter" => "5e1f".repeat(12),
        _ => format!("{profile}-NEW-key-zyxwvutsrqponmlkjihgfedcba-9876"),
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

const PROFILES: [&str; 3] = ["sekha", "rae", "jelmore"];

/// The built-in profiles (Jupyter Server's token in a JSON config among them) and `notes`, a
/// service added by a profile file alone (`demo/profiles/notes.toml`: a list of tokens in a
/// JSON config).
const EVERY_PROFILE: [&str; 5] = ["sekha", "rae", "jelmore", "jupyter", "notes"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_cuts_over_and_proves_it_on_every_profile() {
    for profile in EVERY_PROFILE {
        let h = host(profile, "");
        let agent = boot(&h).await;
        assert!(
            accepts(&h, &h.old_key).await,
            "{profile}: the old key works before"
        );
        let key = new_key(profile);
        let outcome: RotateOutcome = agent
            .rotate(request(&agent, h.key_name, &key))
            .await
            .expect("the rotation runs");
        assert!(outcome.committed, "{profile}: committed: {outcome:?}");
        assert_eq!(
            outcome.new_fingerprint,
            fingerprint(&key),
            "{profile}: reports the new key by fingerprint"
        );
        assert!(
            accepts(&h, &key).await,
            "{profile}: the new key is accepted"
        );
        assert!(
            !accepts(&h, &h.old_key).await,
            "{profile}: the old key is refused"
        );
        assert!(
            outcome.verified
                && outcome
                    .steps
                    .iter()
                    .any(|s| s.contains("the old key was not sent anywhere")
                        && s.contains("no config file holds it")
                        && s.contains("environment of the service's process (pid")),
            "{profile}: the old key's refusal is shown without presenting it: {:?}",
            outcome.steps
        );
        let text = std::fs::read_to_string(&h.config_file).expect("config");
        assert!(
            text.contains(&key) && !text.contains(&h.old_key),
            "{profile}: the file holds the new key only"
        );
        #[cfg(unix)]
        assert_eq!(
            mode(&h.config_file),
            0o600,
            "{profile}: the config is readable by its owner only"
        );
        let backup = PathBuf::from(outcome.backup.clone().expect("backup"));
        assert!(
            std::fs::read_to_string(&backup)
                .expect("backup kept")
                .contains(&h.old_key),
            "{profile}: the backup keeps the previous config"
        );
        if profile == "jelmore" {
            assert!(
                text.contains("API_KEY_ADMIN=admin-key-that-stays"),
                "the other keys are untouched"
            );
        }
        if profile == "notes" {
            let before = std::fs::read_to_string(&backup).expect("backup kept");
            assert_eq!(
                text,
                before.replace(&h.old_key, &key),
                "only the token's bytes changed in the JSON config: layout, the other token and \
                 the signing secret are as they were"
            );
            assert!(
                accepts(&h, "ops-token-that-stays-0123456789-abcdef").await,
                "the other token of the list still works"
            );
        }
        if profile == "sekha" {
            assert!(
                text.starts_with("mcp_api_key = "),
                "Sekha's key stays at the root: {text}"
            );
            assert!(
                outcome
                    .steps
                    .iter()
                    .any(|s| s.contains("DELETE FROM seaql_migrations;")),
                "Sekha's restart failed on its existing database and the profile's fix brought it back: {:?}",
                outcome.steps
            );
        }
        let log = serde_json::to_string(&outcome).expect("json");
        assert!(
            !log.contains(&key) && !log.contains(&h.old_key),
            "{profile}: no key in the outcome"
        );
        // The agent's own files (its journal, outcomes, event buffer) hold neither key; only
        // the backup of the previous config, in the agent's private directory, holds the old.
        let state = &h.agent.state_dir;
        let leaked: Vec<String> = gatehouse_testkit::files::files_below(state)
            .into_iter()
            .filter(|(path, _)| !path.starts_with(state.join("rotation-backups")))
            .filter(|(_, bytes)| {
                let text = String::from_utf8_lossy(bytes);
                text.contains(&key) || text.contains(&h.old_key)
            })
            .map(|(path, _)| path.display().to_string())
            .collect();
        assert!(
            leaked.is_empty(),
            "{profile}: no key in the agent's state outside the config backup: {leaked:?}"
        );
        assert!(
            gatehouse_testkit::files::files_below(state).len() > 2,
            "{profile}: the scan read the agent's files"
        );
        assert_eq!(
            agent.last_rotation(),
            Some(outcome),
            "{profile}: the outcome is kept for the console"
        );
    }
}

/// A service that takes its key in the query string or as an HTTP Basic password: the agent
/// presents the new key (and the old, to see it refused) as the profile says. (A key in a URL
/// is redacted from every line the agent reads: `logevent::tests`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_taken_in_the_query_or_as_a_basic_password_is_rotated_and_proven() {
    for (auth, how) in [
        ("query = \"token\"", "query parameter"),
        ("basic_user = \"ops\"", "Basic password"),
    ] {
        let mut h = host("notes", "");
        let profiles = h._tmp.path().join("profiles");
        std::fs::create_dir_all(&profiles).expect("profiles dir");
        std::fs::write(
            profiles.join("notes.toml"),
            std::fs::read_to_string(demo_dir().join("profiles/notes.toml"))
                .expect("the notes profile")
                .replace("header = \"Authorization\"\nscheme = \"Bearer \"", auth),
        )
        .expect("the variant");
        h.agent.profiles_dir = Some(profiles);
        let agent = boot(&h).await;
        assert!(
            accepts(&h, &h.old_key).await,
            "{how}: the old key works before"
        );
        let key = new_key("notes");
        let outcome = agent
            .rotate(request(&agent, h.key_name, &key))
            .await
            .expect("the rotation runs");
        assert!(
            outcome.committed && outcome.verified,
            "{how}: the new key is proven as the profile presents it: {outcome:?}"
        );
        assert!(accepts(&h, &key).await, "{how}: the new key works");
        assert!(
            !accepts(&h, &h.old_key).await,
            "{how}: the old key is refused"
        );
        let text = serde_json::to_string(&outcome).expect("json");
        assert!(
            !text.contains(&key) && !text.contains(&h.old_key),
            "{how}: no key in the outcome"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_does_not_come_back_is_rolled_back_on_every_profile() {
    for profile in EVERY_PROFILE {
        let h = host(profile, "");
        let agent = boot(&h).await;
        // Its next start fails once, as Sekha's can on an existing database.
        let flag = h.dir.join("fail-next-start");
        std::fs::write(&flag, "").expect("flag");
        let mut config = h.agent.clone();
        if let Some(cmd) = config.restart_command.as_mut() {
            cmd[2] = cmd[2].clone() + &format!(" --fail-start-flag {}", flag.display());
        }
        let agent = {
            drop(agent);
            Agent::load(config).expect("agent")
        };
        let outcome = agent
            .rotate(request(&agent, h.key_name, &new_key(profile)))
            .await
            .expect("the rotation runs");
        assert!(!outcome.committed, "{profile}: not committed");
        assert!(
            outcome.error.as_deref().is_some_and(|e| {
                e.contains("the service said: Error: Address already in use")
                    && !e.contains("within")
            }),
            "{profile}: says why in the service's own words, not as a timeout: {outcome:?}"
        );
        if profile == "sekha" {
            let db = rusqlite::Connection::open(h.dir.join("sekha.db")).expect("sekha.db");
            let rows: i64 = db
                .query_row("SELECT COUNT(*) FROM seaql_migrations", [], |r| r.get(0))
                .expect("count");
            assert!(
                rows > 0,
                "the migrations fix is for Sekha's own failure only: another failure leaves the table alone"
            );
        }
        assert!(outcome.rolled_back, "{profile}: rolled back");
        assert_eq!(
            outcome.old_key_works,
            Some(true),
            "{profile}: and the old key works again"
        );
        assert!(
            accepts(&h, &h.old_key).await,
            "{profile}: checked from outside too"
        );
        assert!(
            std::fs::read_to_string(&h.config_file)
                .expect("config")
                .contains(&h.old_key),
            "{profile}: the previous config is back"
        );
    }
}

/// Sekha's `/health` is 503 whenever Chroma is down although its API works, and every start
/// on its existing database fails until its migrations table is cleared: a restart must
/// judge it by its liveness probe and apply the fix, or every restart leaves Sekha down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sekha_restarts_with_chroma_down_and_its_migration_bug_fixed() {
    let mut chroma_down = host("sekha", "");
    if let Some(cmd) = chroma_down.agent.restart_command.as_mut() {
        cmd[2] = cmd[2].clone() + " --chroma-down";
    }
    let agent = {
        // The first start is healthy by /metrics; /health answers 503 from the start.
        gatehouse_pki::install_provider();
        gatehouse_agent::initialise(
            &gatehouse_agent::state::StateDir::new(&chroma_down.agent.state_dir),
            time::OffsetDateTime::now_utc(),
            Duration::from_secs(900),
            [7; 20],
        )
        .expect("agent init");
        let cmd = chroma_down.agent.restart_command.clone().expect("command");
        let started = tokio::process::Command::new(&cmd[0])
            .args(&cmd[1..])
            .status()
            .await
            .expect("start the fixture");
        assert!(started.success(), "the fixture starts");
        let url = chroma_down.agent.service_url.clone().expect("url");
        healthy(&url.replace("/health", "/metrics")).await;
        assert_eq!(
            reqwest::get(&url).await.expect("health").status().as_u16(),
            503,
            "Sekha's /health says 503 while Chroma is down"
        );
        Agent::load(chroma_down.agent.clone()).expect("agent")
    };
    let info = agent.info().await;
    assert_eq!(
        info.service.health,
        gatehouse_protocol::Health::Ok,
        "the Fleet view asks the liveness probe, not /health: {:?}",
        info.service
    );
    let restart = agent.restart_service().await.expect("restart runs");
    assert!(restart.ok, "Sekha came back: {restart:?}");
    assert!(
        restart.steps.iter().any(|s| s
            .contains("UNIQUE constraint failed: seaql_migrations.version")
            && s.contains("DELETE FROM seaql_migrations;")),
        "the start failed on the existing database and the profile's fix was applied: {:?}",
        restart.steps
    );
    assert!(
        accepts(&chroma_down, &chroma_down.old_key).await,
        "and its API answers with its key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_the_service_refuses_is_rolled_back_on_every_profile() {
    for profile in PROFILES {
        // An environment variable that wins over the config file pins the old key.
        let env = match profile {
            "sekha" => "SEKHA__MCP_API_KEY",
            "rae" => "API_KEY",
            _ => "API_KEY_CLIENT",
        };
        let old = format!("{profile}-old-key-0123456789-abcdefghijklmnop");
        let h = host(profile, &format!("{env}={old}"));
        let agent = boot(&h).await;
        let outcome = agent
            .rotate(request(&agent, h.key_name, &new_key(profile)))
            .await
            .expect("the rotation runs");
        assert!(!outcome.committed, "{profile}: not committed: {outcome:?}");
        assert!(
            outcome
                .error
                .as_deref()
                .is_some_and(|e| e.contains("refuses the new key")),
            "{profile}: says the new key was refused and why that may be: {outcome:?}"
        );
        assert!(outcome.rolled_back, "{profile}: rolled back");
        assert_eq!(
            outcome.old_key_works,
            Some(true),
            "{profile}: the old key works"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_edited_by_hand_since_the_last_read_is_left_alone_on_every_profile() {
    for profile in EVERY_PROFILE {
        let h = host(profile, "");
        let agent = boot(&h).await;
        let stale = request(&agent, h.key_name, &new_key(profile));
        let mut text = std::fs::read_to_string(&h.config_file).expect("config");
        text.push_str("# edited by hand\n");
        std::fs::write(&h.config_file, &text).expect("edit");
        let err = agent.rotate(stale).await.expect_err("refused");
        assert_eq!(err.code, "config_changed", "{profile}: {}", err.message);
        assert!(
            err.message.contains("nothing was changed"),
            "{profile}: {}",
            err.message
        );
        assert_eq!(
            std::fs::read_to_string(&h.config_file).expect("config"),
            text,
            "{profile}: the file is as the operator left it"
        );
        assert!(
            accepts(&h, &h.old_key).await,
            "{profile}: the service is untouched"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_stopped_mid_rotation_rolls_back_when_it_starts_on_every_profile() {
    for profile in EVERY_PROFILE {
        // The restart hangs once (the agent is stopped while it waits).
        let h = host(profile, "");
        let agent = boot(&h).await;
        let hang = h.dir.join("hang-once");
        std::fs::write(&hang, "").expect("flag");
        let mut config = h.agent.clone();
        if let Some(cmd) = config.restart_command.as_mut() {
            cmd[2] = format!(
                "if [ -f {hang} ]; then rm {hang}; sleep 30; fi; {}",
                cmd[2],
                hang = hang.display()
            );
        }
        drop(agent);
        let agent = std::sync::Arc::new(Agent::load(config.clone()).expect("agent"));
        let req = request(&agent, h.key_name, &new_key(profile));
        let running = {
            let agent = agent.clone();
            tokio::spawn(async move { agent.rotate(req).await })
        };
        let journal = config.state_dir.join("rotation.json");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !journal.exists() || hang.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "{profile}: the rotation reaches its restart"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The agent process goes away mid-restart.
        running.abort();
        let _ = running.await;
        drop(agent);
        assert!(
            std::fs::read_to_string(&h.config_file)
                .expect("config")
                .contains(&new_key(profile)),
            "{profile}: the new config was written before the stop"
        );
        let restarted = Agent::load(config).expect("agent starts again");
        let new_fingerprint = fingerprint(&new_key(profile));
        restarted.recover_rotation(1_795_401_700).await;
        // The console asks about its pending rotation by the new key's fingerprint.
        let status = restarted.rotation_status(Some(&new_fingerprint));
        assert!(
            !status.in_progress,
            "{profile}: once recovered, the rotation is no longer under way: {status:?}"
        );
        assert!(
            status.outcome.as_ref().is_some_and(|o| o.rolled_back
                && !o.committed
                && o.new_fingerprint == new_fingerprint),
            "{profile}: the answer for that fingerprint says rolled back: {status:?}"
        );
        let outcome = restarted.last_rotation().expect("the outcome is recorded");
        assert!(
            outcome.rolled_back,
            "{profile}: rolled back at start: {outcome:?}"
        );
        assert!(
            outcome
                .error
                .as_deref()
                .is_some_and(|e| e.contains("interrupted")),
            "{profile}: and says why"
        );
        assert_eq!(
            outcome.old_key_works,
            Some(true),
            "{profile}: the old key works again"
        );
        assert!(!journal.exists(), "{profile}: the journal is cleared");
        assert!(
            accepts(&h, &h.old_key).await,
            "{profile}: checked from outside"
        );
    }
}

/// A finding the console can fix offers the fix: Sekha's key written inside `[llm_bridge]`
/// (so its built-in default applies) moves to the root, and RAE's unset `SECRET_KEY` is set,
/// each by an ordinary rotation of the default the inventory reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_the_service_does_not_read_is_fixed_by_rotating_its_default() {
    let h = host("sekha", "");
    std::fs::write(
        &h.config_file,
        "[llm_bridge]\nurl = \"http://localhost:5001\"\nmcp_api_key = \"dev_api_key_12345678901234567890123456789012\"\n",
    )
    .expect("config as Sekha's sample has it");
    let agent = start(&h).await;
    let default = "dev_default_key_change_me_1234567890";
    assert!(
        accepts(&h, default).await,
        "the key in the table is ignored: Sekha uses its built-in default"
    );
    let req = request(&agent, "mcp_api_key", &new_key("sekha"));
    assert_eq!(
        req.expected_fingerprint,
        fingerprint(default),
        "the inventory offers the default in use"
    );
    let outcome = agent.rotate(req).await.expect("the rotation runs");
    assert!(
        outcome.committed && outcome.verified,
        "the key moved to the root: {outcome:?}"
    );
    let text = std::fs::read_to_string(&h.config_file).expect("config");
    assert!(
        text.starts_with(&format!("mcp_api_key = \"{}\"", new_key("sekha")))
            && !text.contains("dev_api_key_"),
        "the new key is at the root and the ignored copy is gone: {text}"
    );
    assert!(
        accepts(&h, &new_key("sekha")).await && !accepts(&h, default).await,
        "Sekha now uses the new key, not its default"
    );
    drop(agent);
    drop(h);

    let h = host("rae", "");
    std::fs::write(
        &h.config_file,
        format!("API_KEY={}\nENABLE_API_KEY_AUTH=true\n", h.old_key),
    )
    .expect("no SECRET_KEY");
    let agent = start(&h).await;
    let req = request(&agent, "SECRET_KEY", &new_key("rae"));
    assert_eq!(
        req.expected_fingerprint,
        fingerprint("change-this-secret-key-in-production"),
        "the unset secret is offered as the published default that applies"
    );
    let outcome = agent.rotate(req).await.expect("the rotation runs");
    assert!(outcome.committed, "the secret is set: {outcome:?}");
    let text = std::fs::read_to_string(&h.config_file).expect("config");
    assert!(
        text.contains(&format!("SECRET_KEY={}", new_key("rae")))
            && text.contains(&format!("API_KEY={}", h.old_key)),
        "SECRET_KEY is written and the API key untouched: {text}"
    );
}

/// Jelmore's API_KEY_HEADER is not a key: its value being accepted is the bug, and the fix is
/// removing it. A rotation of it is refused and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_header_is_never_rotated() {
    let h = host("jelmore", "");
    let mut text = std::fs::read_to_string(&h.config_file).expect("config");
    text.push_str("API_KEY_HEADER=X-API-Key\n");
    std::fs::write(&h.config_file, &text).expect("config");
    let agent = start(&h).await;
    let report = agent.credentials();
    assert!(
        report
            .credentials
            .iter()
            .all(|c| c.name != "API_KEY_HEADER"),
        "not offered as a key: {report:?}"
    );
    let digest = report.credentials[0].file_digest.clone();
    let err = agent
        .rotate(RotateRequest {
            name: "API_KEY_HEADER".into(),
            expected_fingerprint: fingerprint("X-API-Key"),
            expected_file_digest: digest,
            new_key: new_key("jelmore"),
        })
        .await
        .expect_err("refused");
    assert_eq!(err.code, "cannot_rotate", "refused: {}", err.message);
    assert!(
        err.message.contains("Remove the variable") && err.message.contains("nothing was changed"),
        "it says the fix: {}",
        err.message
    );
    assert_eq!(
        std::fs::read_to_string(&h.config_file).expect("config"),
        text,
        "the file is as it was"
    );
}

/// A key set in the service's environment with another value wins over the file: rotating the
/// file's key would restart the service for nothing and be refused by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_the_environment_overrides_is_not_rotated_in_the_file() {
    let h = host(
        "sekha",
        "SEKHA__MCP_API_KEY=environment-key-0123456789-abcdefghijklmn",
    );
    let agent = start(&h).await;
    let before = std::fs::read_to_string(&h.config_file).expect("config");
    let report = agent.credentials();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.starts_with("SEKHA__MCP_API_KEY in the environment")),
        "the inventory says which source wins: {:?}",
        report.problems
    );
    let err = agent
        .rotate(request(&agent, "mcp_api_key", &new_key("sekha")))
        .await
        .expect_err("refused before anything changes");
    assert_eq!(err.code, "cannot_rotate", "{}", err.message);
    assert!(
        err.message.contains("SEKHA__MCP_API_KEY"),
        "names the variable that wins: {}",
        err.message
    );
    assert_eq!(
        std::fs::read_to_string(&h.config_file).expect("config"),
        before,
        "nothing was changed"
    );
}

/// Backups hold retired keys: rolled-back rotations leave no more of them than committed ones
/// (the three newest).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_of_rolled_back_rotations_are_pruned_too() {
    let env = "SEKHA__MCP_API_KEY=sekha-old-key-0123456789-abcdefghijklmnop";
    let h = host("sekha", env);
    let agent = boot(&h).await;
    for n in 0..4 {
        let outcome = agent
            .rotate(request(
                &agent,
                "mcp_api_key",
                &format!("{}{n}", new_key("sekha")),
            ))
            .await
            .expect("the rotation runs");
        assert!(
            outcome.rolled_back,
            "rotation {n} is refused by the service and rolled back: {outcome:?}"
        );
    }
    let kept = std::fs::read_dir(h.agent.state_dir.join("rotation-backups"))
        .expect("backups")
        .count();
    assert_eq!(kept, 3, "the three newest backups are kept, not four");
}

/// A tmpfs mounted for the test (the agent's tests run as root in CI), unmounted after.
struct SmallDisk(PathBuf);

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_changes_nothing_on_every_profile() {
    // Mounting needs root (as in CI); elsewhere say so rather than pretend.
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if !root {
        eprintln!("a_full_disk_changes_nothing_on_every_profile needs root to mount a small tmpfs; not run");
        return;
    }
    for profile in EVERY_PROFILE {
        let h = host(profile, "");
        // Move the service's directory onto a 64 KiB tmpfs, then fill it.
        let original = std::fs::read(&h.config_file).expect("config");
        let disk = SmallDisk(h.dir.clone());
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(&h.dir)
            .status()
            .expect("mount");
        assert!(mounted.success(), "a tmpfs is mounted for the test");
        std::fs::write(&h.config_file, &original).expect("config on the small disk");
        let agent = boot(&h).await;
        let req = request(&agent, h.key_name, &new_key(profile));
        let mut filler = std::fs::File::create(h.dir.join("filler")).expect("filler");
        let chunk = vec![0u8; 4096];
        while std::io::Write::write_all(&mut filler, &chunk).is_ok() {}
        drop(filler);
        let err = agent.rotate(req).await.expect_err("nothing can be written");
        assert!(
            err.message.contains("nothing was changed"),
            "{profile}: says nothing changed: {}",
            err.message
        );
        assert_eq!(
            std::fs::read(&h.config_file).expect("config"),
            original,
            "{profile}: the config is untouched"
        );
        assert!(
            !h.agent.state_dir.join("rotation.json").exists(),
            "{profile}: no rotation is left under way"
        );
        assert!(
            accepts(&h, &h.old_key).await,
            "{profile}: the service still takes the old key"
        );
        drop(agent);
        if let Ok(pid) = std::fs::read_to_string(&h.pid_file) {
            let _ = std::process::Command::new("kill").arg(pid.trim()).status();
            std::thread::sleep(Duration::from_millis(200));
        }
        drop(disk);
        drop(h);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rae_s_jwt_secret_rotates_without_touching_its_api_key() {
    let h = host("rae", "");
    let agent = boot(&h).await;
    let secret = new_key("rae-jwt");
    let outcome = agent
        .rotate(request(&agent, "SECRET_KEY", &secret))
        .await
        .expect("the rotation runs");
    assert!(
        outcome.committed,
        "a signing secret commits once the service is back: {outcome:?}"
    );
    assert!(
        outcome
            .steps
            .iter()
            .any(|s| s.contains("cannot be checked on the protected endpoint")),
        "and says what could not be verified: {:?}",
        outcome.steps
    );
    let text = std::fs::read_to_string(&h.config_file).expect("config");
    assert!(
        text.contains(&format!("SECRET_KEY={secret}")),
        "the secret is replaced"
    );
    assert!(
        accepts(&h, &h.old_key).await,
        "the API key is untouched and still works"
    );
}

/// The uid of `nobody`: the service account in the tests that need one other than root.
const SERVICE_UID: u32 = 65534;

fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
}

/// As on a real host: the service's account owns its directory and its config (and can
/// reach them), so it can swap any file there for a link at any moment; the service runs as
/// that account (see [`host_run_by`]).
fn hand_to_the_service_account(h: &Host) {
    use std::os::unix::fs::PermissionsExt;
    let top = h.dir.parent().expect("the test's directory");
    std::fs::set_permissions(top, std::fs::Permissions::from_mode(0o711)).expect("search");
    for path in [&h.dir, &h.config_file] {
        std::os::unix::fs::chown(path, Some(SERVICE_UID), Some(SERVICE_UID)).expect("chown");
    }
}

/// Every file under `dir` (not following links), with its content if it can be read.
fn contents_below(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("list").flatten() {
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).expect("meta");
        if meta.is_dir() {
            out.extend(contents_below(&path));
        } else if meta.is_file() {
            let bytes = std::fs::read(&path).unwrap_or_default();
            out.push((path, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_swapped_for_a_link_to_the_agent_s_key_never_reaches_the_config() {
    if !running_as_root() {
        eprintln!("this test needs root to act as a second account; not run");
        return;
    }
    let h = host_run_by("sekha", "", Some(SERVICE_UID));
    hand_to_the_service_account(&h);
    let agent = boot(&h).await;
    let key = h.agent.state_dir.join("enroll.key");
    let key_pem = std::fs::read_to_string(&key).expect("the agent's key");
    let key_line = key_pem
        .lines()
        .nth(1)
        .expect("a line of the key")
        .to_owned();
    // The service account makes the next start fail and, while the agent restarts the
    // service, swaps every backup it can find for a link to the agent's private key.
    let flag = h.dir.join("fail-next-start");
    std::fs::write(&flag, "").expect("flag");
    let mut config = h.agent.clone();
    if let Some(cmd) = config.restart_command.as_mut() {
        cmd[2] = format!(
            "env -u LD_PRELOAD setpriv --reuid={SERVICE_UID} --regid={SERVICE_UID} --clear-groups sh -c \
             'for f in {dir}/*.bak {state}/*/*.bak; do [ -e \"$f\" ] && ln -sfn {key} \"$f\"; done; true'; \
             {command} --fail-start-flag {flag}",
            dir = h.dir.display(),
            state = h.agent.state_dir.display(),
            key = key.display(),
            command = cmd[2],
            flag = flag.display(),
        );
    }
    drop(agent);
    let agent = Agent::load(config).expect("agent");
    let outcome = agent
        .rotate(request(&agent, h.key_name, &new_key("sekha")))
        .await
        .expect("the rotation runs");
    assert!(
        !outcome.committed,
        "the service did not start, so nothing is committed: {outcome:?}"
    );
    for (path, text) in contents_below(&h.dir) {
        assert!(
            !text.contains(&key_line),
            "the agent's private key reached {}, which the service account can read",
            path.display()
        );
    }
    let text = std::fs::read_to_string(&h.config_file).expect("config");
    assert!(
        text.contains(&h.old_key),
        "the previous config is back: {text}"
    );
    assert!(outcome.rolled_back, "the rollback happened: {outcome:?}");
    assert_eq!(
        outcome.old_key_works,
        Some(true),
        "and the service works with its old key again"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(&h.config_file).expect("config").uid(),
        SERVICE_UID,
        "the config is still the service's own"
    );
}

#[test]
fn a_rotation_that_cannot_give_the_config_back_to_its_owner_changes_nothing() {
    if !running_as_root() {
        eprintln!("this test needs root to act as a second account; not run");
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let h = host_run_by("sekha", "", Some(SERVICE_UID));
    hand_to_the_service_account(&h);
    let agent = runtime.block_on(boot(&h));
    let original = std::fs::read(&h.config_file).expect("config");
    let req = request(&agent, h.key_name, &new_key("sekha"));
    // The agent without CAP_CHOWN (as under the packaged unit, which runs it as a user of
    // its own): it cannot give a file to the service account. Capabilities are per thread,
    // so only this thread loses it.
    let outcome = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let mut caps = rustix::thread::capabilities(None).expect("capabilities");
                caps.effective -= rustix::thread::CapabilitySet::CHOWN;
                rustix::thread::set_capabilities(None, caps).expect("drop CAP_CHOWN");
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(agent.rotate(req))
            })
            .join()
            .expect("the rotating thread")
    });
    match outcome {
        Ok(outcome) => {
            assert!(
                !outcome.committed,
                "a config the service can no longer read is never committed: {outcome:?}"
            );
            assert!(
                outcome.error.as_deref().is_some_and(|e| e.contains("uid")),
                "and the outcome names the owner it could not give the file: {outcome:?}"
            );
        }
        Err(e) => assert!(
            e.message.contains("uid"),
            "a refusal names the owner it could not give the file: {}",
            e.message
        ),
    }
    assert_eq!(
        std::fs::read(&h.config_file).expect("config"),
        original,
        "the config is as it was"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(&h.config_file).expect("config").uid(),
        SERVICE_UID,
        "and still the service's own"
    );
    assert!(
        runtime.block_on(accepts(&h, &h.old_key)),
        "the service still takes the old key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_with_shell_metacharacters_or_no_end_is_refused() {
    // A dotenv file is often sourced by a shell (`set -a; . ./.env`): a key is data there only
    // if it holds nothing a shell or a dotenv reader gives a meaning to.
    let h = host("jelmore", "");
    let agent = boot(&h).await;
    let original = std::fs::read(&h.config_file).expect("config");
    let pad = "a".repeat(40);
    for key in [
        format!("$(id>/tmp/gatehouse-pwned){pad}"),
        format!("`id`{pad}"),
        format!("{pad};reboot"),
        format!("{pad}|sh"),
        format!("{pad}&&id"),
        format!("{pad}#comment"),
        format!("{pad}$HOME"),
        format!("{pad}\u{0}x"),
        format!("{pad}é"),
        "A".repeat(10_000),
    ] {
        let err = agent
            .rotate(request(&agent, h.key_name, &key))
            .await
            .expect_err("refused before anything is touched");
        assert_eq!(
            err.code, "cannot_rotate",
            "a clear code for {key:.60?}: {}",
            err.message
        );
        assert!(
            err.message.contains("base64url"),
            "and a message naming the alphabet for {key:.60?}: {}",
            err.message
        );
    }
    assert_eq!(
        std::fs::read(&h.config_file).expect("config"),
        original,
        "the config is untouched"
    );
    assert!(
        agent.last_rotation().is_none(),
        "no rotation was even begun"
    );
}

/// A process of another local user, stopped when the test ends.
struct Impostor(PathBuf);

impl Drop for Impostor {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.0) {
            let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// What the impostor on the service's port runs: it answers everything, accepts the first
/// key it is shown and refuses the next (so a rotation that trusts it "verifies"), and
/// writes down every request with its headers.
const IMPOSTOR: &str = r#"
import http.server, json, sys
port, log = int(sys.argv[1]), sys.argv[2]
keyed = []
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        with open(log, "a") as f:
            f.write(json.dumps({"path": self.path, "headers": dict(self.headers)}) + "\n")
        status = 200
        if self.path.startswith("/v2/"):
            keyed.append(1)
            status = 200 if len(keyed) == 1 else 401
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
    do_GET = do_POST = answer
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_user_who_takes_the_service_port_during_the_restart_gets_no_key() {
    use std::os::unix::fs::PermissionsExt;
    if !running_as_root() {
        eprintln!("this test needs root to act as a second account; not run");
        return;
    }
    let h = host("rae", "");
    let agent = boot(&h).await;
    // Where the other user's program and its notes live.
    let top = h.dir.parent().expect("the test's directory").to_owned();
    std::fs::set_permissions(&top, std::fs::Permissions::from_mode(0o711)).expect("search");
    let den = top.join("impostor");
    std::fs::create_dir(&den).expect("den");
    std::os::unix::fs::chown(&den, Some(SERVICE_UID), Some(SERVICE_UID)).expect("chown");
    let script = den.join("impostor.py");
    std::fs::write(&script, IMPOSTOR).expect("script");
    let (log, pid) = (den.join("seen.jsonl"), den.join("impostor.pid"));
    let _impostor = Impostor(pid.clone());
    let port = reqwest::Url::parse(h.agent.service_url.as_deref().expect("url"))
        .expect("url")
        .port()
        .expect("port");
    // The restart stops the service, and the other user takes its port before it is back.
    let mut config = h.agent.clone();
    config.restart_command = Some(vec![
        "sh".into(),
        "-c".into(),
        format!(
            "old=$(cat {service_pid}); kill $old; while kill -0 $old 2>/dev/null; do sleep 0.05; done; \
             [ -s {pid} ] || {{ env -u LD_PRELOAD setpriv --reuid={SERVICE_UID} --regid={SERVICE_UID} --clear-groups \
             /usr/bin/python3 {script} {port} {log} >/dev/null 2>&1 & echo $! > {pid}; sleep 0.5; }}",
            service_pid = h.pid_file.display(),
            pid = pid.display(),
            script = script.display(),
            log = log.display(),
        ),
    ]);
    let req = request(&agent, h.key_name, &new_key("rae"));
    drop(agent);
    let agent = Agent::load(config).expect("agent");
    let outcome = agent.rotate(req).await.expect("the rotation runs");
    let seen = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !seen.contains(&new_key("rae")),
        "the other user's process never sees the new key: {seen}"
    );
    assert!(!seen.contains(&h.old_key), "nor the old one: {seen}");
    assert!(
        !outcome.committed && !outcome.verified,
        "nothing answered by another user counts as the service: {outcome:?}"
    );
    assert!(
        outcome
            .error
            .as_deref()
            .is_some_and(|e| e.contains(&format!("uid {SERVICE_UID}"))),
        "and the outcome names who holds the port: {outcome:?}"
    );
    assert!(
        std::fs::read_to_string(&h.config_file)
            .expect("config")
            .contains(&h.old_key),
        "the previous config is back"
    );
}

/// A tiny HTTP server on loopback: answers each request with `answer(head)` and keeps the
/// heads it saw.
async fn tiny_server(
    answer: fn(&str) -> String,
) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
                    match stream.read(&mut byte).await {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let reply = answer(&head);
                kept.lock().expect("lock").push(head);
                let _ = stream.write_all(reply.as_bytes()).await;
            });
        }
    });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_from_the_service_never_carries_a_key_elsewhere() {
    // Where the redirect leads: it must never be asked anything.
    let (thief, stolen) = tiny_server(|_| {
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".into()
    })
    .await;
    static THIEF: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
    THIEF.set(thief).expect("once");
    // The service: healthy, and its protected endpoint redirects elsewhere.
    let (port, _) = tiny_server(|head| {
        if head.starts_with("GET /health") {
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".into()
        } else {
            format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:{}/steal\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                THIEF.get().expect("thief")
            )
        }
    })
    .await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("service");
    std::fs::create_dir(&dir).expect("dir");
    let old = "rae-old-key-0123456789-abcdefghijklmnop";
    std::fs::write(
        dir.join(".env"),
        format!("API_KEY={old}\nENABLE_API_KEY_AUTH=true\n"),
    )
    .expect("config");
    gatehouse_pki::install_provider();
    let config = AgentConfig::for_test(tmp.path().join("agent"))
        .with_profile("rae")
        .with_service_url(format!("http://127.0.0.1:{port}/health"))
        .with_service_dir(dir.clone())
        .with_restart(vec!["true".into()], 5);
    gatehouse_agent::initialise(
        &gatehouse_agent::state::StateDir::new(&config.state_dir),
        time::OffsetDateTime::now_utc(),
        Duration::from_secs(900),
        [7; 20],
    )
    .expect("agent init");
    let agent = Agent::load(config).expect("agent");
    let outcome = agent
        .rotate(request(&agent, "API_KEY", &new_key("rae")))
        .await
        .expect("the rotation runs");
    let stolen = stolen.lock().expect("lock").clone();
    assert!(
        stolen.is_empty(),
        "no key (no request at all) followed the service's redirect: {stolen:?}"
    );
    assert!(
        !outcome.committed,
        "a redirect is neither an acceptance nor a refusal: {outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_key_still_in_the_service_s_environment_is_found_without_presenting_it() {
    // Jelmore takes every API_KEY_* variable of its environment as a key: the old one lives
    // on under another name, so the service still accepts it after the file changed.
    let old = "jelmore-old-key-0123456789-abcdefghijklmnop";
    let h = host("jelmore", &format!("API_KEY_LEGACY={old}"));
    let agent = boot(&h).await;
    let outcome = agent
        .rotate(request(&agent, h.key_name, &new_key("jelmore")))
        .await
        .expect("the rotation runs");
    assert!(!outcome.committed, "not committed: {outcome:?}");
    assert!(
        outcome
            .error
            .as_deref()
            .is_some_and(|e| e.contains("environment") && e.contains("API_KEY_LEGACY")),
        "the outcome names where the old key lives on: {outcome:?}"
    );
    assert!(outcome.rolled_back, "rolled back: {outcome:?}");
    assert_eq!(
        outcome.old_key_works,
        Some(true),
        "and the old key works (as the current key again)"
    );
}

/// The agent was killed while its restart command ran, and the command goes on (as an orphan
/// holding the service's port would): the next restart first waits for it, then ends its
/// whole process group once the restart timeout has passed, and only then starts the
/// service, saying so. Two starts of the service never race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_an_earlier_agent_left_running_is_ended_before_the_next() {
    let mut h = host("sekha", "");
    h.agent.restart_timeout_secs = Some(5);
    let agent = boot(&h).await;
    // The earlier run's restart command: a group of its own, still busy.
    let mut orphan = std::process::Command::new("sh");
    orphan.args(["-c", "sleep 60 & sleep 60; wait"]);
    std::os::unix::process::CommandExt::process_group(&mut orphan, 0);
    let mut orphan = orphan.spawn().expect("orphan");
    let pid = i32::try_from(orphan.id()).expect("pid");
    gatehouse_agent::service::restart::note_running(
        &gatehouse_agent::state::StateDir::new(&h.agent.state_dir),
        pid,
    )
    .expect("noted as the agent notes its own");
    let result = agent.restart_service().await.expect("restart");
    assert!(
        result.ok,
        "the service is started once the earlier restart is ended: {result:?}"
    );
    assert!(
        result
            .steps
            .iter()
            .any(|s| s.contains(&format!("pid {pid}")) && s.contains("ended")),
        "the steps say the earlier restart was ended: {:?}",
        result.steps
    );
    let ended = orphan.try_wait().expect("wait");
    assert!(
        ended.is_some(),
        "the earlier restart command no longer runs"
    );
    // What it started outlives it only as zombies awaiting their new parent's wait.
    let left: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields.get(2) == Some(&pid.to_string().as_str()) && fields.first() != Some(&"Z")
        })
        .collect();
    assert!(
        left.is_empty(),
        "nor anything it started (its whole process group was ended): {left:?}"
    );
    assert!(
        !h.agent.state_dir.join("restart-running.json").exists(),
        "the note of a running restart is gone once the restart ends"
    );
}

/// A console settling a rotation the agent never recorded cancels it: the agent notes the
/// new key's fingerprint and refuses that rotation should its request still arrive (late, from
/// a console killed mid-send), so the console may forget the key at once. A rotation the agent
/// did record is not cancelled: the answer says what became of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_rotation_is_refused_when_its_request_arrives_late() {
    let h = host("sekha", "");
    let agent = boot(&h).await;
    let late = new_key("sekha");
    let answer = agent
        .cancel_rotation(&fingerprint(&late))
        .await
        .expect("cancelled");
    assert!(
        answer.cancelled && !answer.in_progress && answer.outcome.is_none(),
        "no record, so it is cancelled: {answer:?}"
    );
    let before = std::fs::read_to_string(&h.config_file).expect("config");
    let refused = agent
        .rotate(request(&agent, h.key_name, &late))
        .await
        .expect_err("the late request is refused");
    assert_eq!(
        refused.code,
        gatehouse_protocol::codes::ROTATION_CANCELLED,
        "refused with its own code: {refused:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&h.config_file).expect("config"),
        before,
        "nothing changed on the host"
    );
    assert!(accepts(&h, &h.old_key).await, "the old key still works");

    let other = format!("{}-other", new_key("sekha"));
    let done = agent
        .rotate(request(&agent, h.key_name, &other))
        .await
        .expect("another key rotates");
    assert!(done.committed, "another rotation is not affected: {done:?}");
    let answer = agent
        .cancel_rotation(&fingerprint(&other))
        .await
        .expect("answered");
    assert!(
        !answer.cancelled && answer.outcome.as_ref().is_some_and(|o| o.committed),
        "a rotation the agent recorded is not cancelled; its outcome is said: {answer:?}"
    );
}
