//! A restore drill on a fixture database: Sekha's conversations in `sekha.db`, a snapshot
//! taken while it runs, a malicious delete and insert, then the snapshot restored (after a
//! safety snapshot) with the service restarted for real and answering; the safety snapshot
//! undoes the restore in turn.

use std::path::PathBuf;
use std::time::Duration;

use gatehouse_agent::Agent;
use gatehouse_agent::AgentConfig;
use gatehouse_protocol::RestoreRequest;

use crate::ports::free_port;

struct Sekha {
    tmp: tempfile::TempDir,
    port: u16,
    pid: PathBuf,
}

impl Drop for Sekha {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.pid) {
            let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        }
    }
}

fn sekha() -> (Sekha, AgentConfig) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let service = tmp.path().join("service");
    std::fs::create_dir_all(&service).expect("dir");
    std::fs::write(
        service.join("config.toml"),
        "mcp_api_key = \"kJ8dF3mN9pQ2wR5tY7uH0jK3lM6nP9qS2vT5wX8zA1b\"\n",
    )
    .expect("config");
    let port = free_port();
    let pid = tmp.path().join("sekha.pid");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../demo/restart_fixture.sh");
    let command = format!(
        "sh {} {} --profile sekha --port {port} --workdir {} --log {}",
        script.display(),
        pid.display(),
        service.display(),
        tmp.path().join("sekha.log").display()
    );
    let status = std::process::Command::new("sh")
        .args(["-c", &command])
        .status()
        .expect("start");
    assert!(status.success(), "the fixture starts");
    let config = AgentConfig::for_test(tmp.path().join("agent"))
        .with_service_url(format!("http://127.0.0.1:{port}/health"))
        .with_service_dir(service)
        .with_restart(vec!["sh".into(), "-c".into(), command], 10);
    (Sekha { tmp, port, pid }, config)
}

fn boot(config: &AgentConfig) -> Agent {
    gatehouse_pki::install_provider();
    gatehouse_agent::initialise(
        &gatehouse_agent::state::StateDir::new(&config.state_dir),
        time::OffsetDateTime::now_utc(),
        Duration::from_secs(900),
        [5; 20],
    )
    .expect("agent init");
    Agent::load(config.clone()).expect("agent")
}

async fn labels(port: u16) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/api/v1/conversations")).await {
            if let Ok(body) = r.json::<serde_json::Value>().await {
                let mut out: Vec<String> = body["conversations"]
                    .as_array()
                    .expect("a list")
                    .iter()
                    .map(|c| c["label"].as_str().unwrap_or("").to_owned())
                    .collect();
                out.sort();
                return out;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the service answers within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn post(port: u16, label: &str) -> String {
    let r: serde_json::Value = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/v1/conversations"))
        .body(format!("{{\"label\": \"{label}\"}}"))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    r["id"].as_str().expect("id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_is_restored_after_a_safety_snapshot_and_the_service_answers() {
    let (sekha, config) = sekha();
    let agent = boot(&config);
    labels(sekha.port).await;
    let first = post(sekha.port, "alpha").await;
    post(sekha.port, "beta").await;
    post(sekha.port, "gamma").await;

    let snapshot = agent.snapshot().await.expect("snapshot");
    assert!(
        snapshot.size > 0 && snapshot.sha256.len() == 64,
        "a snapshot with its hash: {snapshot:?}"
    );
    let file = config.state_dir.join("snapshots").join(&snapshot.name);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).expect("file").permissions().mode() & 0o777,
        0o600,
        "a snapshot holds the service's data: readable by the agent only"
    );

    // The incident: a conversation deleted and one planted, through the open endpoints.
    reqwest::Client::new()
        .delete(format!(
            "http://127.0.0.1:{}/api/v1/conversations/{first}",
            sekha.port
        ))
        .send()
        .await
        .expect("delete");
    post(sekha.port, "planted").await;
    assert_eq!(
        labels(sekha.port).await,
        ["beta", "gamma", "planted"],
        "the tampered state"
    );

    let restored = agent
        .restore(RestoreRequest {
            name: snapshot.name.clone(),
        })
        .await
        .expect("restore");
    assert!(restored.ok, "the restore is verified: {restored:?}");
    assert!(
        restored.steps.iter().any(|s| s.starts_with("verified")),
        "it says the service answers again: {:?}",
        restored.steps
    );
    assert_eq!(
        labels(sekha.port).await,
        ["alpha", "beta", "gamma"],
        "the clean data is back"
    );

    let safety = restored.safety_snapshot.expect("a safety snapshot");
    let undone = agent
        .restore(RestoreRequest { name: safety })
        .await
        .expect("undo");
    assert!(undone.ok, "the safety snapshot restores too: {undone:?}");
    assert_eq!(
        labels(sekha.port).await,
        ["beta", "gamma", "planted"],
        "so a restore can itself be undone"
    );
    let listed = agent.snapshots();
    assert_eq!(
        listed.snapshots.len(),
        3,
        "the snapshot and two safety snapshots: {listed:?}"
    );
    drop(sekha);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_snapshot_or_a_database_server_is_refused_and_nothing_changes() {
    let (sekha, config) = sekha();
    let agent = boot(&config);
    labels(sekha.port).await;
    post(sekha.port, "keep me").await;
    let missing = agent
        .restore(RestoreRequest {
            name: "20260101T000000Z-snapshot.sqlite3".into(),
        })
        .await
        .expect_err("there is no such snapshot");
    assert!(
        missing.message.contains("no snapshot"),
        "and it says so: {}",
        missing.message
    );
    assert!(
        agent.snapshots().snapshots.is_empty(),
        "not even a safety snapshot was taken"
    );
    assert_eq!(
        labels(sekha.port).await,
        ["keep me"],
        "the data is untouched"
    );
    // Ten snapshots, the most kept: restoring the oldest must not prune it away.
    let mut names = Vec::new();
    for _ in 0..10 {
        names.push(agent.snapshot().await.expect("snapshot").name);
        std::thread::sleep(Duration::from_millis(20));
    }
    let oldest = names.first().expect("ten").clone();
    let restored = agent
        .restore(RestoreRequest {
            name: oldest.clone(),
        })
        .await
        .expect("restore the oldest");
    assert!(restored.ok, "the oldest of ten restores: {restored:?}");
    assert!(
        agent.snapshots().snapshots.iter().any(|s| s.name == oldest),
        "and is still there after the safety snapshot pruned the list"
    );
    let escape = agent
        .restore(RestoreRequest {
            name: "../../etc/passwd".into(),
        })
        .await;
    assert!(escape.is_err(), "a path is not a snapshot name");

    let rae = AgentConfig {
        state_dir: sekha.tmp.path().join("agent-rae"),
        ..config.with_profile("rae")
    };
    let agent = boot(&rae);
    let refused = agent
        .snapshot()
        .await
        .expect_err("RAE's data lives in PostgreSQL");
    assert!(
        refused.message.contains("database server"),
        "the reason names it: {}",
        refused.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_into_a_database_swapped_for_a_link_writes_nothing_through_it() {
    let (sekha, config) = sekha();
    let agent = boot(&config);
    labels(sekha.port).await;
    post(sekha.port, "alpha").await;
    let snapshot = agent.snapshot().await.expect("snapshot");
    // A database the service's account may not touch (root's, here one made by the test).
    let victim = sekha.tmp.path().join("root-only.db");
    {
        let db = rusqlite::Connection::open(&victim).expect("victim");
        db.execute_batch(
            "CREATE TABLE secrets (v TEXT); INSERT INTO secrets VALUES ('root only');",
        )
        .expect("victim content");
    }
    let before = std::fs::read(&victim).expect("victim");
    // The service's account owns its directory and swaps its database for a link.
    let service = config.service_dir.clone().expect("service dir");
    std::os::unix::fs::chown(&service, Some(65534), Some(65534)).expect("chown");
    let db = service.join("sekha.db");
    std::fs::remove_file(&db).expect("rm");
    std::os::unix::fs::symlink(&victim, &db).expect("link");
    let outcome = agent
        .restore(RestoreRequest {
            name: snapshot.name.clone(),
        })
        .await;
    assert!(
        std::fs::read(&victim).expect("victim") == before,
        "the restore wrote nothing through the link: {outcome:?}"
    );
    match outcome {
        Err(e) => assert!(
            e.message.contains("symbolic link"),
            "the refusal says why: {}",
            e.message
        ),
        Ok(result) => panic!("a restore through a link must be refused, got {result:?}"),
    }
    assert!(
        std::fs::symlink_metadata(&db)
            .expect("db")
            .file_type()
            .is_symlink(),
        "and nothing was put in its place either"
    );
}
