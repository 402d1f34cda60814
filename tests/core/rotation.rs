//! The credential inventory from a real agent reading a service's config: fingerprints not
//! values, ages and due dates under the policy, a change on the host noticed, and due-date
//! warnings given once each.

use gatehouse_core::{CredentialKind, ErrorCode, EventFilter};
use time::{Duration, OffsetDateTime};

use crate::lab::{start_agent_config, Lab};
use crate::support::{contains, files_below, PidFile};

/// The keychain entry of a rotation's new key while it is pending: one per rotation.
fn pending_entry(new_fingerprint: &str) -> String {
    format!("instance/sekha-r/key/mcp_api_key.pending.{new_fingerprint}")
}

/// The new fingerprint of the newest rotation still pending.
fn pending_fingerprint(lab: &Lab) -> String {
    lab.console
        .rotation
        .rotation_history(10)
        .expect("history")
        .into_iter()
        .find(|r| r.state == gatehouse_core::RotationState::Pending)
        .map(|r| r.new_fingerprint)
        .expect("a rotation is pending")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inventory_lists_keys_by_fingerprint_with_due_dates_and_notices_changes() {
    let lab = Lab::new();
    let start = OffsetDateTime::now_utc();
    lab.set_clock(start);
    let service = lab.agents.join("sekha-service");
    std::fs::create_dir_all(&service).expect("service dir");
    let key = "k".repeat(43);
    std::fs::write(
        service.join("config.toml"),
        format!("mcp_api_key = \"{key}\"\n\n[server]\nport = 8080\n"),
    )
    .expect("config");
    let (dir, code) = lab.init_agent("sekha-1", OffsetDateTime::now_utc());
    let agent = start_agent_config(
        gatehouse_agent::AgentConfig::for_test(dir).with_service_dir(service.clone()),
    )
    .await;
    lab.add("sekha-1", &agent, &code).await.expect("enrolled");

    let inventory = lab.console.rotation.credentials().await.expect("inventory");
    assert!(
        inventory.problems.is_empty(),
        "the agent reads the service's config: {:?}",
        inventory.problems
    );
    let api = inventory
        .credentials
        .iter()
        .find(|c| c.kind == CredentialKind::ApiKey)
        .expect("Sekha's key is listed");
    assert_eq!(api.name, "mcp_api_key", "by the key that holds it");
    assert_eq!(
        api.fingerprint,
        lab.fingerprint(&key),
        "described by its fingerprint"
    );
    assert!(!api.weak, "a 43-character key is not weak");
    let set_at = api.set_at.expect("set time");
    assert_eq!(
        api.due_at,
        Some(set_at + 90 * 86_400),
        "due 90 days after it was set, by default"
    );
    for kind in [
        CredentialKind::AgentCertificate,
        CredentialKind::ClientCertificate,
        CredentialKind::FleetCa,
    ] {
        assert!(
            inventory.credentials.iter().any(|c| c.kind == kind),
            "{kind:?} is in the inventory"
        );
    }
    let text = serde_json::to_string(&inventory).expect("json");
    assert!(
        !text.contains(&key),
        "the key's value never reaches the console"
    );

    // A shorter period for this instance; bad periods and unknown instances are refused.
    lab.console
        .rotation
        .set_key_rotation_days("sekha-1", Some(6))
        .expect("policy saved");
    let err = lab
        .console
        .rotation
        .set_key_rotation_days("sekha-1", Some(0))
        .expect_err("zero days");
    assert_eq!(
        err.code(),
        ErrorCode::InvalidInput,
        "zero days is invalid input: {err}"
    );
    let err = lab
        .console
        .rotation
        .set_key_rotation_days("nope", Some(30))
        .expect_err("no such instance");
    assert_eq!(
        err.code(),
        ErrorCode::InstanceNotFound,
        "a policy needs an enrolled instance: {err}"
    );

    // Warnings: 4.5 days before the due date is inside the 7-day threshold, told once.
    lab.set_clock(OffsetDateTime::from_unix_timestamp(set_at).expect("time") + Duration::hours(36));
    let notices = lab.console.rotation.due_warnings().await.expect("warnings");
    let about_key: Vec<_> = notices
        .iter()
        .filter(|n| n.credential.kind == CredentialKind::ApiKey)
        .collect();
    assert_eq!(about_key.len(), 1, "one warning for the key: {notices:?}");
    assert_eq!(about_key[0].days, 7, "at the 7-day threshold");
    assert!(
        lab.console
            .rotation
            .due_warnings()
            .await
            .expect("warnings")
            .iter()
            .all(|n| n.credential.kind != CredentialKind::ApiKey),
        "the same threshold is never told twice"
    );
    lab.set_clock(OffsetDateTime::from_unix_timestamp(set_at).expect("time") + Duration::days(7));
    let overdue = lab.console.rotation.due_warnings().await.expect("warnings");
    assert!(
        overdue
            .iter()
            .any(|n| n.credential.kind == CredentialKind::ApiKey && n.days == 0),
        "once past due, an overdue warning: {overdue:?}"
    );
    let overview = lab.console.overview().expect("overview");
    assert!(
        overview
            .attention
            .iter()
            .any(|a| a.view == gatehouse_core::View::Rotation && a.title.contains("mcp_api_key")),
        "the first screen says the key needs rotating: {:?}",
        overview.attention
    );

    // The key is changed on the host: a new fingerprint, a change noticed and recorded.
    let new_key = "n".repeat(43);
    std::fs::write(
        service.join("config.toml"),
        format!("mcp_api_key = \"{new_key}\"\n"),
    )
    .expect("config");
    let inventory = lab.console.rotation.credentials().await.expect("inventory");
    let api = inventory
        .credentials
        .iter()
        .find(|c| c.kind == CredentialKind::ApiKey)
        .expect("still listed");
    assert_eq!(
        api.fingerprint,
        lab.fingerprint(&new_key),
        "the new value's fingerprint"
    );
    assert!(
        api.last_rotation.is_some(),
        "the change is known as a rotation"
    );
    let timeline = lab
        .console
        .timeline
        .events(
            &EventFilter {
                kind: Some(gatehouse_events::Kind::Console),
                text: Some("changed".into()),
                ..Default::default()
            },
            None,
            10,
        )
        .expect("timeline");
    assert!(
        timeline.events.iter().any(|e| e
            .message
            .as_deref()
            .is_some_and(|m| m.contains("mcp_api_key changed on the host"))),
        "the change is on the timeline: {:?}",
        timeline.events
    );

    // A key moved into a table is a problem the operator is told about.
    std::fs::write(
        service.join("config.toml"),
        format!("[server]\nmcp_api_key = \"{new_key}\"\n"),
    )
    .expect("config");
    let inventory = lab.console.rotation.credentials().await.expect("inventory");
    assert!(
        inventory
            .problems
            .iter()
            .any(|p| p.instance == "sekha-1" && p.message.contains("inside [server]")),
        "a key inside a table is reported for its instance: {:?}",
        inventory.problems
    );
    let last_reported = inventory
        .credentials
        .iter()
        .find(|c| c.kind == CredentialKind::ApiKey && c.name == "mcp_api_key")
        .map(|c| c.fingerprint.clone())
        .expect("the key in force (Sekha's default, with the configured one misplaced)");
    agent.stop().await;

    // The agent out of reach and the console a year on (a clock fault, or a long absence):
    // the key does not vanish from the inventory, it is listed as last reported, overdue.
    lab.set_clock(OffsetDateTime::from_unix_timestamp(set_at).expect("time") + Duration::days(400));
    let inventory = lab.console.rotation.credentials().await.expect("inventory");
    let api = inventory
        .credentials
        .iter()
        .find(|c| c.kind == CredentialKind::ApiKey && c.name == "mcp_api_key")
        .unwrap_or_else(|| {
            panic!(
                "a key whose agent cannot be reached is still listed: {:?}",
                inventory.credentials
            )
        });
    assert_eq!(api.fingerprint, last_reported, "as the value last reported");
    assert_eq!(
        api.status,
        gatehouse_core::Status::Failing,
        "a year on, it is overdue: {}",
        api.status_text
    );
    assert!(
        api.location.contains("cannot be reached"),
        "and the operator reads that it is as last reported: {}",
        api.location
    );
    assert!(
        inventory.problems.iter().any(|p| p.instance == "sekha-1"),
        "the unreachable agent is a problem of its own: {:?}",
        inventory.problems
    );
}

/// A Sekha fixture service restarted through `demo/restart_fixture.sh`, with an agent.
async fn sekha_with_agent(lab: &Lab, extra_env: &str) -> (crate::lab::Running, PidFile, String) {
    let (agent, pid, old, _) = sekha_with_agent_config(lab, "sekha-r", extra_env, "").await;
    (agent, pid, old)
}

/// As [`sekha_with_agent`], with a shell prefix before the restart (a hang) and the agent's
/// config, to start it again.
pub(crate) async fn sekha_with_agent_config(
    lab: &Lab,
    instance: &str,
    extra_env: &str,
    before_restart: &str,
) -> (
    crate::lab::Running,
    PidFile,
    String,
    gatehouse_agent::AgentConfig,
) {
    let service = lab.agents.join(format!("{instance}-svc"));
    std::fs::create_dir_all(&service).expect("service dir");
    let old = "o".repeat(43);
    std::fs::write(
        service.join("config.toml"),
        format!("mcp_api_key = \"{old}\"\n"),
    )
    .expect("config");
    let port = crate::ports::free_port();
    let script =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../demo/restart_fixture.sh");
    let pid = PidFile(lab.agents.join(format!("{instance}.pid")));
    let command = format!(
        "{extra_env} sh {} {} --profile sekha --port {port} --workdir {} --log {}",
        script.display(),
        pid.0.display(),
        service.display(),
        lab.agents.join(format!("{instance}.log")).display()
    );
    let started = std::process::Command::new("sh")
        .args(["-c", &command])
        .status()
        .expect("start");
    let restart = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        format!("{before_restart}{command}"),
    ];
    assert!(started.success(), "the fixture starts");
    let health = format!("http://127.0.0.1:{port}/health");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !reqwest::get(&health)
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(std::time::Instant::now() < deadline, "the fixture answers");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (dir, code) = lab.init_agent(instance, OffsetDateTime::now_utc());
    let config = gatehouse_agent::AgentConfig::for_test(dir)
        .with_service_url(health)
        .with_service_dir(service.clone())
        .with_restart(restart, 5);
    let agent = start_agent_config(config.clone()).await;
    lab.add(instance, &agent, &code).await.expect("enrolled");
    (agent, pid, old, config)
}

/// Start a rotation of `sekha-r`'s key whose first restart takes `pause_secs`, and drop it
/// (the console going away) once the agent is inside that restart.
async fn console_leaves_mid_restart(
    lab: &Lab,
    pause_secs: u32,
) -> (
    crate::lab::Running,
    PidFile,
    String,
    gatehouse_agent::AgentConfig,
) {
    let flag = lab.agents.join("pause-once");
    let (agent, pid, old, config) = sekha_with_agent_config(
        lab,
        "sekha-r",
        "",
        &format!(
            "if [ -f {f} ]; then rm {f}; sleep {pause_secs}; fi; ",
            f = flag.display()
        ),
    )
    .await;
    std::fs::write(&flag, "").expect("flag");
    let journal = config.state_dir.join("rotation.json");
    tokio::select! {
        result = lab.console.rotation.rotate_key("sekha-r", "mcp_api_key") => {
            panic!("the console was meant to leave mid-restart: {:?}", result.map(|r| r.0));
        }
        () = async {
            while !journal.exists() || flag.exists() {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        } => {}
    }
    (agent, pid, old, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_rotates_a_key_and_keeps_the_new_one_only_in_the_keychain() {
    let lab = Lab::new();
    let (agent, pid, old) = sekha_with_agent(&lab, "").await;
    let preview = lab
        .console
        .rotation
        .rotation_preview("sekha-r", "mcp_api_key")
        .await
        .expect("preview");
    assert!(
        preview.impact.contains("cutting over at once"),
        "a single-key service's impact is said: {}",
        preview.impact
    );
    assert!(
        !preview.impact.contains("loses"),
        "Sekha keeps its data across a restart, so no loss is announced: {}",
        preview.impact
    );
    let (result, key) = lab
        .console
        .rotation
        .rotate_key("sekha-r", "mcp_api_key")
        .await
        .expect("rotation");
    assert!(result.committed, "the rotation commits: {result:?}");
    let key = key.expect("the new key is handed back once");
    assert_eq!(key.expose().len(), 43, "256 bits, base64url");
    assert_eq!(
        result.new_fingerprint,
        lab.fingerprint(key.expose()),
        "the fingerprint is the new key's"
    );
    let kept = lab
        .console
        .vault()
        .load("instance/sekha-r/key/mcp_api_key")
        .expect("the keychain holds the new key");
    assert_eq!(
        kept.expose().as_slice(),
        key.expose().as_bytes(),
        "the same key"
    );
    assert_eq!(
        lab.console
            .vault()
            .load(&pending_entry(&result.new_fingerprint))
            .expect_err("no pending key is left")
            .code(),
        ErrorCode::SecretNotFound,
        "pending is cleared on commit"
    );
    let inventory = lab.console.rotation.credentials().await.expect("inventory");
    let api = inventory
        .credentials
        .iter()
        .find(|c| c.kind == CredentialKind::ApiKey)
        .expect("listed");
    assert_eq!(
        api.fingerprint, result.new_fingerprint,
        "the host now holds the new key"
    );
    assert_ne!(
        api.fingerprint,
        lab.fingerprint(&old),
        "and not the old one"
    );
    let history = lab.console.rotation.rotation_history(10).expect("history");
    assert_eq!(history.len(), 1, "one rotation recorded");
    assert_eq!(
        history[0].state,
        gatehouse_core::RotationState::Committed,
        "as committed"
    );
    assert_eq!(
        (
            history[0].old_fingerprint.as_str(),
            history[0].new_fingerprint.as_str()
        ),
        (
            lab.fingerprint(&old).as_str(),
            result.new_fingerprint.as_str()
        ),
        "with both fingerprints"
    );
    assert!(!history[0].operator.is_empty(), "and who ran it");
    let committed = gatehouse_core::Db::open(&lab.data.join("gatehouse.sqlite3"))
        .expect("db")
        .rotations()
        .committed_since("sekha-r", 0)
        .expect("committed rotations");
    assert_eq!(
        committed[0].new_prefix.as_deref(),
        Some(&key.expose()[..10]),
        "the first ten characters of the new key are kept (what Jelmore logs of a refused \
         key), so once it is replaced in turn its stale clients are recognised"
    );
    // Nothing of the key in the console's files beyond those ten characters.
    let files = files_below(&lab.data);
    assert!(
        !files
            .iter()
            .any(|(_, bytes)| contains(bytes, key.expose().as_bytes())),
        "the new key is in no file of the data directory"
    );
    agent.stop().await;
    drop(pid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_the_service_refuses_leaves_the_old_key_and_nothing_pending() {
    let lab = Lab::new();
    let old = "o".repeat(43);
    // An environment variable wins over the file: the new key cannot take effect.
    let (agent, pid, _) = sekha_with_agent(&lab, &format!("SEKHA__MCP_API_KEY={old}")).await;
    let (result, key) = lab
        .console
        .rotation
        .rotate_key("sekha-r", "mcp_api_key")
        .await
        .expect("rotation ran");
    assert!(!result.committed, "not committed");
    assert!(
        key.is_none(),
        "no key is handed out for a rotation that did not happen"
    );
    assert!(result.rolled_back, "rolled back: {result:?}");
    assert_eq!(result.old_key_works, Some(true), "and the old key works");
    assert!(
        lab.console
            .vault()
            .load(&pending_entry(&result.new_fingerprint))
            .is_err(),
        "the pending key is dropped"
    );
    let timeline = lab
        .console
        .timeline
        .events(
            &EventFilter {
                kind: Some(gatehouse_events::Kind::Console),
                text: Some("Rotation".into()),
                ..Default::default()
            },
            None,
            10,
        )
        .expect("timeline");
    assert!(
        timeline.events.iter().any(|e| e
            .message
            .as_deref()
            .is_some_and(|m| m.contains("the old key works"))),
        "the failure and the rollback are on the timeline: {:?}",
        timeline.events
    );
    agent.stop().await;
    drop(pid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_stopped_mid_rotation_learns_the_outcome_from_the_agent() {
    let lab = Lab::new();
    // The console goes away while the agent is restarting the service (which hangs).
    let (agent, pid, old, config) = console_leaves_mid_restart(&lab, 30).await;
    let pending = pending_entry(&pending_fingerprint(&lab));
    assert!(
        lab.console.vault().load(&pending).is_ok(),
        "the new key waits in the keychain as pending"
    );
    // The agent went down with it; started again, it rolls back what it was doing.
    let addr = agent.addr;
    agent.stop().await;
    let agent = crate::lab::start_agent_at(config, addr).await;
    lab.console
        .fleet
        .refresh_instance("sekha-r")
        .await
        .expect("the agent is back");
    // As soon as the agent can say what became of this very key (it rolled back when it
    // started again), the rotation is settled: no waiting out a timeout.
    lab.console
        .rotation
        .resolve_pending_rotations()
        .await
        .expect("the console asks for the outcome");
    assert!(
        lab.console.vault().load(&pending).is_err(),
        "the pending key is dropped: the agent said the rotation did not complete"
    );
    let timeline = lab
        .console
        .timeline
        .events(
            &EventFilter {
                kind: Some(gatehouse_events::Kind::Console),
                text: Some("complete".into()),
                ..Default::default()
            },
            None,
            10,
        )
        .expect("timeline");
    assert!(
        timeline
            .events
            .iter()
            .any(|e| e.message.as_deref().is_some_and(|m| m
                .contains("did not complete on the host")
                && m.contains("interrupted"))),
        "the console says which way it went: {:?}",
        timeline.events
    );
    let inventory = lab.console.rotation.credentials().await.expect("inventory");
    let api = inventory
        .credentials
        .iter()
        .find(|c| c.kind == CredentialKind::ApiKey)
        .expect("listed");
    assert_eq!(
        api.fingerprint,
        lab.fingerprint(&old),
        "the host is back on the old key"
    );
    agent.stop().await;
    drop(pid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_rotation_reports_each_outcome_and_one_failure_stops_nothing() {
    let lab = Lab::new();
    let old = "o".repeat(43);
    let (a, pid_a, _, _) = sekha_with_agent_config(&lab, "sekha-a", "", "").await;
    let (b, pid_b, _, _) =
        sekha_with_agent_config(&lab, "sekha-b", &format!("SEKHA__MCP_API_KEY={old}"), "").await;
    let seen = std::sync::Mutex::new(Vec::new());
    let targets = vec![
        ("sekha-a".to_owned(), "mcp_api_key".to_owned()),
        ("sekha-b".to_owned(), "mcp_api_key".to_owned()),
        ("sekha-a".to_owned(), "no_such_key".to_owned()),
    ];
    let (items, keys) = lab
        .console
        .rotation
        .rotate_many(&targets, gatehouse_core::BULK_CONCURRENCY, |done, total| {
            seen.lock().expect("progress").push((done, total));
        })
        .await;
    let mut progress = seen.into_inner().expect("progress");
    progress.sort_unstable();
    assert_eq!(
        progress,
        vec![(1, 3), (2, 3), (3, 3)],
        "progress after each key"
    );
    assert_eq!(items.len(), 3, "every target has an outcome");
    let of = |instance: &str, name: &str| {
        items
            .iter()
            .find(|i| i.instance == instance && i.name == name)
            .expect("item")
    };
    assert!(
        of("sekha-a", "mcp_api_key")
            .result
            .as_ref()
            .is_some_and(|r| r.committed),
        "the healthy instance rotated: {items:?}"
    );
    let b_result = of("sekha-b", "mcp_api_key").result.as_ref().expect("ran");
    assert!(
        b_result.rolled_back && !b_result.committed,
        "the pinned one rolled back"
    );
    assert!(
        of("sekha-a", "no_such_key")
            .error
            .as_deref()
            .is_some_and(|e| e.contains("no key named")),
        "an unknown key is refused with the reason"
    );
    assert_eq!(keys.len(), 1, "only the committed rotation hands out a key");
    assert_eq!(
        keys[0].0, "mcp_api_key on sekha-a",
        "labelled by key and instance"
    );
    a.stop().await;
    b.stop().await;
    drop(pid_a);
    drop(pid_b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_the_console_walked_away_from_is_kept_when_the_host_finished_it() {
    let lab = Lab::new();
    // The console goes away while the service restarts (slowly); the agent carries on.
    let (agent, pid, _old, config) = console_leaves_mid_restart(&lab, 2).await;
    let journal = config.state_dir.join("rotation.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while journal.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent finishes the rotation on its own"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    lab.set_clock(OffsetDateTime::now_utc() + Duration::minutes(10));
    lab.console
        .rotation
        .resolve_pending_rotations()
        .await
        .expect("the console asks for the outcome");
    let current = lab
        .console
        .vault()
        .load("instance/sekha-r/key/mcp_api_key")
        .expect("the committed key is now the current one in the keychain");
    let inventory = lab.console.rotation.credentials().await.expect("inventory");
    let api = inventory
        .credentials
        .iter()
        .find(|c| c.kind == CredentialKind::ApiKey)
        .expect("listed");
    assert_eq!(
        api.fingerprint,
        lab.fingerprint(std::str::from_utf8(current.expose()).expect("text")),
        "the keychain holds exactly the key the host now uses"
    );
    agent.stop().await;
    drop(pid);
}

/// The attack on the key's only copy: the console goes away mid-rotation, the host commits the
/// new key (which the keychain holds only as pending), and a second rotation of the same key
/// rolls back. The second used to overwrite and then delete the pending entry, leaving the
/// keychain's current key one the service refuses. Now the pending rotation is settled first
/// (the agent says it committed), and the rollback gives back the key both sides hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_rotation_that_rolls_back_never_loses_the_key_the_first_committed() {
    let lab = Lab::new();
    let pause = lab.agents.join("pause-once");
    let fail = lab.agents.join("fail-once");
    // The first restart pauses (the console leaves meanwhile); a later one can be made to fail.
    let (agent, pid, old, config) = sekha_with_agent_config(
        &lab,
        "sekha-r",
        "",
        &format!(
            "if [ -f {p} ]; then rm {p}; sleep 2; fi; if [ -f {f} ]; then rm {f}; exit 1; fi; ",
            p = pause.display(),
            f = fail.display()
        ),
    )
    .await;
    std::fs::write(&pause, "").expect("flag");
    let journal = config.state_dir.join("rotation.json");
    tokio::select! {
        result = lab.console.rotation.rotate_key("sekha-r", "mcp_api_key") => {
            panic!("the console was meant to leave mid-restart: {:?}", result.map(|r| r.0));
        }
        () = async {
            while !journal.exists() || pause.exists() {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        } => {}
    }
    let first = pending_fingerprint(&lab);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while journal.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent finishes the first rotation on its own"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // At once (no waiting out any timeout), the same key again; its restart fails.
    std::fs::write(&fail, "").expect("flag");
    let (second, key) = lab
        .console
        .rotation
        .rotate_key("sekha-r", "mcp_api_key")
        .await
        .expect("the second rotation runs");
    assert!(
        !second.committed && key.is_none(),
        "the second rotation did not commit: {second:?}"
    );
    let current = lab
        .console
        .vault()
        .load("instance/sekha-r/key/mcp_api_key")
        .expect("the keychain holds a current key");
    let current = std::str::from_utf8(current.expose())
        .expect("text")
        .to_owned();
    assert_eq!(
        lab.fingerprint(&current),
        first,
        "the keychain's current key is the one the first rotation committed"
    );
    let inventory = lab.console.rotation.credentials().await.expect("inventory");
    let api = inventory
        .credentials
        .iter()
        .find(|c| c.kind == CredentialKind::ApiKey)
        .expect("listed");
    assert_eq!(
        api.fingerprint, first,
        "and the host holds that same key, so the service accepts the keychain's key"
    );
    assert_ne!(api.fingerprint, lab.fingerprint(&old), "not the old one");
    let history = lab.console.rotation.rotation_history(10).expect("history");
    let state_of = |fp: &str| {
        history
            .iter()
            .find(|r| r.new_fingerprint == fp)
            .map(|r| r.state)
    };
    assert_eq!(
        state_of(&first),
        Some(gatehouse_core::RotationState::Committed),
        "the history says the first rotation committed: {history:?}"
    );
    assert_eq!(
        state_of(&second.new_fingerprint),
        Some(gatehouse_core::RotationState::RolledBack),
        "and the second rolled back: {history:?}"
    );
    assert!(
        history
            .iter()
            .all(|r| r.state != gatehouse_core::RotationState::Pending),
        "nothing is left pending: {history:?}"
    );
    agent.stop().await;
    drop(pid);
}

/// The attack: a guessed key (Sekha's published default) confirmed offline from a
/// fingerprint in a stolen copy of the console's data directory, a report or a screenshot.
/// Fingerprints were a plain SHA-256 prefix anyone could compute; they are keyed with the
/// fleet's key, which only the keychain and the agents hold. An agent and a console from before
/// keyed fingerprints carry what they knew of each key over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guessed_key_cannot_be_confirmed_from_a_fingerprint_and_history_carries_over() {
    let lab = Lab::new();
    let service = lab.agents.join("sekha-service");
    std::fs::create_dir_all(&service).expect("service dir");
    // The key everyone knows: Sekha's documented development default.
    let guess = "dev_default_key_change_me_1234567890";
    std::fs::write(
        service.join("config.toml"),
        format!("mcp_api_key = \"{guess}\"\n"),
    )
    .expect("config");
    // Written as the lab's clock reads, so the key is first known by its first sighting
    // (the inventory takes the earlier of the file's time and the first sighting).
    crate::support::stamp(&service.join("config.toml"), lab.now());
    let (dir, code) = lab.init_agent("sekha-1", OffsetDateTime::now_utc());
    let config = gatehouse_agent::AgentConfig::for_test(dir.clone()).with_service_dir(service);
    let agent = start_agent_config(config.clone()).await;
    lab.add("sekha-1", &agent, &code).await.expect("enrolled");
    let inventory = lab.console.rotation.credentials().await.expect("inventory");
    let api = inventory
        .credentials
        .iter()
        .find(|c| c.name == "mcp_api_key")
        .unwrap_or_else(|| panic!("the key is listed: {inventory:?}"))
        .clone();
    let unkeyed = gatehouse_pki::secret_fingerprint(guess.as_bytes());
    assert_ne!(
        api.fingerprint, unkeyed,
        "the reported fingerprint is not the SHA-256 prefix an attacker can compute from a guess"
    );
    assert_eq!(
        api.fingerprint,
        lab.fingerprint(guess),
        "it is the fleet's keyed fingerprint, which the console can still recognise a key by"
    );
    let set_at = api.set_at.expect("first seen");
    let checks = lab
        .console
        .compliance
        .run_checks(None, gatehouse_core::Burst::Always)
        .await;
    assert!(checks.is_ok(), "checks run: {checks:?}");
    let leaks: Vec<_> = files_below(&lab.data)
        .into_iter()
        .chain(files_below(&dir))
        .filter(|(_, bytes)| contains(bytes, unkeyed.as_bytes()))
        .map(|(path, _)| path)
        .collect();
    assert!(
        leaks.is_empty(),
        "no file of the console or the agent holds the guessable fingerprint: {leaks:?}"
    );
    let addr = agent.addr;
    agent.stop().await;

    // As before keyed fingerprints: the agent never had the key, the console knew the key
    // by its unkeyed fingerprint, first seen a month ago.
    std::fs::remove_file(dir.join("fingerprint.key")).expect("the agent kept the fleet's key");
    {
        let db = rusqlite::Connection::open(lab.data.join("gatehouse.sqlite3")).expect("db");
        let renamed = db
            .execute(
                "UPDATE credentials_seen SET fingerprint = ?1, first_seen = first_seen - ?3
                 WHERE fingerprint = ?2",
                rusqlite::params![unkeyed, api.fingerprint, 30 * 86_400],
            )
            .expect("back to the unkeyed form");
        assert_eq!(renamed, 1, "the console had one record of the key");
    }
    let agent = crate::lab::start_agent_at(config.clone(), addr).await;
    // The console started again, as after an upgrade.
    let console = lab.restarted();
    let inventory = console.rotation.credentials().await.expect("inventory");
    assert!(
        inventory.problems.is_empty(),
        "the agent answers: {:?}",
        inventory.problems
    );
    let after = inventory
        .credentials
        .iter()
        .find(|c| c.name == "mcp_api_key")
        .expect("still listed");
    assert_eq!(
        (after.fingerprint.as_str(), after.set_at),
        (api.fingerprint.as_str(), Some(set_at - 30 * 86_400)),
        "the agent took the fleet's key again and the key's history carried over: first seen a month ago, not a new key today"
    );
    assert!(
        dir.join("fingerprint.key").exists(),
        "the agent keeps the fleet's key across restarts"
    );
    drop(console);
    agent.stop().await;

    // The answer lost on the way: the agent took the key, the console never heard and still
    // knows the key by its unkeyed fingerprint. Handed over again, the history carries over.
    {
        let db = rusqlite::Connection::open(lab.data.join("gatehouse.sqlite3")).expect("db");
        let renamed = db
            .execute(
                "UPDATE credentials_seen SET fingerprint = ?1 WHERE fingerprint = ?2",
                rusqlite::params![unkeyed, api.fingerprint],
            )
            .expect("back to the unkeyed form");
        assert_eq!(renamed, 1, "the console had one record of the key");
    }
    let agent = crate::lab::start_agent_at(config, addr).await;
    let console = lab.restarted();
    let inventory = console.rotation.credentials().await.expect("inventory");
    let again = inventory
        .credentials
        .iter()
        .find(|c| c.name == "mcp_api_key")
        .expect("still listed");
    assert_eq!(
        (again.fingerprint.as_str(), again.set_at),
        (api.fingerprint.as_str(), Some(set_at - 30 * 86_400)),
        "an agent that holds the key already still says what each key was known as before"
    );
    agent.stop().await;
}

/// A rotation whose request never reached the agent (the console was killed between noting
/// it and sending it, or the agent before recording it) used to stay pending until any request
/// on its way would have arrived: minutes, in the fault suite. The console now cancels it on
/// the agent, which refuses it from then on, and settles it as soon as the agent answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_the_agent_never_received_is_cancelled_there_and_settled_at_once() {
    let lab = Lab::new();
    let (agent, pid, old, config) = sekha_with_agent_config(&lab, "sekha-r", "", "").await;
    let old_fp = lab.fingerprint(&old);
    let now = lab.now().unix_timestamp();
    let (never, unknown) = {
        let db = gatehouse_core::Db::open(&lab.data.join("gatehouse.sqlite3")).expect("db");
        let rotations = db.rotations();
        // Noted by a console process that is gone (no process has this pid).
        let never = rotations
            .start(
                "sekha-r",
                "mcp_api_key",
                &old_fp,
                "aaaa1111aaaa1111",
                now,
                "op",
            )
            .expect("row");
        rotations.set_sender(never, "4000000000:1").expect("sender");
        // Noted just now by a process nobody can ask about: it may be sending it.
        let unknown = rotations
            .start(
                "sekha-r",
                "mcp_api_key",
                &old_fp,
                "bbbb2222bbbb2222",
                now,
                "op",
            )
            .expect("row");
        (never, unknown)
    };
    lab.console
        .rotation
        .resolve_pending_rotations()
        .await
        .expect("settled");
    let history = lab.console.rotation.rotation_history(10).expect("history");
    let row = history
        .iter()
        .find(|r| r.id == never)
        .expect("in the history");
    assert_eq!(
        row.state,
        gatehouse_core::RotationState::Failed,
        "settled at once, not after the rotation timeout: {row:?}"
    );
    assert!(
        row.detail.contains("never reached the agent") && row.detail.contains("refuses it"),
        "and says why: {}",
        row.detail
    );
    let cancelled: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(config.state_dir.join("rotation-cancelled.json"))
            .expect("the agent noted the cancellation"),
    )
    .expect("a list");
    assert_eq!(
        cancelled,
        ["aaaa1111aaaa1111"],
        "the agent refuses that rotation from now on, and only that one"
    );
    let waiting = history
        .iter()
        .find(|r| r.id == unknown)
        .expect("in the history");
    assert_eq!(
        waiting.state,
        gatehouse_core::RotationState::Pending,
        "a rotation another console process may be sending right now is left to it: {waiting:?}"
    );
    agent.stop().await;
    drop(pid);
}

/// The console's own rotations are not changes "on the host", and a hand edit back to an
/// earlier value is one. Tried on the real services, every rotation from the console came back
/// later as "changed on the host", while a key set back to a published default by hand (a
/// value seen before) was never reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_changes_the_console_did_not_make_are_reported_as_changed_on_the_host() {
    let lab = Lab::new();
    let (agent, pid, old, config) = sekha_with_agent_config(&lab, "sekha-r", "", "").await;
    let changes = |lab: &Lab| -> Vec<String> {
        lab.console
            .timeline
            .events(
                &EventFilter {
                    kind: Some(gatehouse_events::Kind::Console),
                    text: Some("changed on the host".into()),
                    ..Default::default()
                },
                None,
                50,
            )
            .expect("timeline")
            .events
            .into_iter()
            .filter_map(|e| e.message)
            .collect()
    };
    // Sightings are kept by the second: the lab's clock moves on between them, as time does.
    let tick = |lab: &Lab| lab.set_clock(lab.now() + Duration::seconds(5));
    lab.console.rotation.credentials().await.expect("inventory");
    tick(&lab);
    let (result, first_key) = lab
        .console
        .rotation
        .rotate_key("sekha-r", "mcp_api_key")
        .await
        .expect("rotated");
    assert!(result.committed, "the rotation commits: {result:?}");
    tick(&lab);
    lab.console.rotation.credentials().await.expect("inventory");
    tick(&lab);
    lab.console.rotation.credentials().await.expect("inventory");
    tick(&lab);
    assert!(
        changes(&lab).is_empty(),
        "the console's own rotation is not a change on the host: {:?}",
        changes(&lab)
    );
    // By hand, back to the old value (seen before).
    let service_config = config
        .service_dir
        .as_ref()
        .expect("dir")
        .join("config.toml");
    std::fs::write(&service_config, format!("mcp_api_key = \"{old}\"\n")).expect("config");
    lab.console.rotation.credentials().await.expect("inventory");
    let said = changes(&lab);
    assert!(
        said.len() == 1
            && said[0].contains(&format!(
                "{} → {}",
                result.new_fingerprint,
                lab.fingerprint(&old)
            )),
        "a hand edit back to an earlier value is a change on the host: {said:?}"
    );
    // Rotated again (old → C), then set back by hand to the value the first rotation made:
    // that rotation does not explain it.
    tick(&lab);
    let (again, key) = lab
        .console
        .rotation
        .rotate_key("sekha-r", "mcp_api_key")
        .await
        .expect("rotated again");
    assert!(again.committed && key.is_some(), "it commits: {again:?}");
    tick(&lab);
    lab.console.rotation.credentials().await.expect("inventory");
    tick(&lab);
    let first = std::fs::read_to_string(&service_config).expect("config");
    assert!(first.contains("mcp_api_key"), "the config holds the key");
    let first_key = first_key.expect("the first rotation's key");
    std::fs::write(
        &service_config,
        format!("mcp_api_key = \"{}\"\n", first_key.expose()),
    )
    .expect("config");
    lab.console.rotation.credentials().await.expect("inventory");
    let said = changes(&lab);
    assert!(
        said.iter().any(|m| m.contains(&format!(
            "{} → {}",
            again.new_fingerprint, result.new_fingerprint
        ))),
        "a key set back by hand to a value an earlier rotation made is a change on the host: \
         {said:?}"
    );
    agent.stop().await;
    drop(pid);
}

/// RAE's SECRET_KEY signs tokens; no client presents it. Its preview said "the service's one
/// key ... every client needs the new key" on the real RAE; it says what a new secret does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signing_secret_s_preview_speaks_of_tokens_not_of_clients() {
    let lab = Lab::new();
    let service = lab.agents.join("rae-service");
    std::fs::create_dir_all(&service).expect("service dir");
    std::fs::write(
        service.join(".env"),
        format!(
            "API_KEY={}\nSECRET_KEY={}\nENABLE_API_KEY_AUTH=true\n",
            "a".repeat(43),
            "s".repeat(43)
        ),
    )
    .expect("env");
    let (dir, code) = lab.init_agent("rae-1", OffsetDateTime::now_utc());
    let agent = start_agent_config(
        gatehouse_agent::AgentConfig::for_test(dir)
            .with_profile("rae")
            .with_service_dir(service),
    )
    .await;
    lab.add("rae-1", &agent, &code).await.expect("enrolled");
    let secret = lab
        .console
        .rotation
        .rotation_preview("rae-1", "SECRET_KEY")
        .await
        .expect("preview");
    assert!(
        secret.impact.contains("signs the service's tokens")
            && !secret.impact.contains("Every client needs"),
        "a signing secret is not a key clients hold: {}",
        secret.impact
    );
    let key = lab
        .console
        .rotation
        .rotation_preview("rae-1", "API_KEY")
        .await
        .expect("preview");
    assert!(
        key.impact.contains("client"),
        "the API key's clients need the new one: {}",
        key.impact
    );
    agent.stop().await;
}
