//! The credential inventory from a real agent reading a service's config: fingerprints not
//! values, ages and due dates under the policy, a change on the host noticed, and due-date
//! warnings given once each.

use gatehouse_core::{CredentialKind, ErrorCode, EventFilter};
use time::{Duration, OffsetDateTime};

use crate::lab::{start_agent_config, Lab};

fn sha_prefix(value: &str) -> String {
    gatehouse_agent::credentials::fingerprint(value)
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
    let agent = start_agent_config(gatehouse_agent::AgentConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        profile: "sekha".into(),
        state_dir: dir,
        service_url: None,
        logs: Vec::new(),
        buffer_capacity: 1000,
        profiles_dir: None,
        restart_command: None,
        restart_timeout_secs: None,
        service_dir: Some(service.clone()),
    })
    .await;
    lab.add("sekha-1", &agent, &code).await.expect("enrolled");

    let inventory = lab.console.credentials().await.expect("inventory");
    assert!(inventory.problems.is_empty(), "{:?}", inventory.problems);
    let api = inventory
        .credentials
        .iter()
        .find(|c| c.kind == CredentialKind::ApiKey)
        .expect("Sekha's key is listed");
    assert_eq!(api.name, "mcp_api_key", "by the key that holds it");
    assert_eq!(
        api.fingerprint,
        sha_prefix(&key),
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
        .set_key_rotation_days("sekha-1", Some(6))
        .expect("policy saved");
    let err = lab
        .console
        .set_key_rotation_days("sekha-1", Some(0))
        .expect_err("zero days");
    assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
    let err = lab
        .console
        .set_key_rotation_days("nope", Some(30))
        .expect_err("no such instance");
    assert_eq!(err.code(), ErrorCode::InstanceNotFound, "{err}");

    // Warnings: 4.5 days before the due date is inside the 7-day threshold, told once.
    lab.set_clock(OffsetDateTime::from_unix_timestamp(set_at).expect("time") + Duration::hours(36));
    let notices = lab.console.due_warnings().await.expect("warnings");
    let about_key: Vec<_> = notices
        .iter()
        .filter(|n| n.credential.kind == CredentialKind::ApiKey)
        .collect();
    assert_eq!(about_key.len(), 1, "one warning for the key: {notices:?}");
    assert_eq!(about_key[0].days, 7, "at the 7-day threshold");
    assert!(
        lab.console
            .due_warnings()
            .await
            .expect("warnings")
            .iter()
            .all(|n| n.credential.kind != CredentialKind::ApiKey),
        "the same threshold is never told twice"
    );
    lab.set_clock(OffsetDateTime::from_unix_timestamp(set_at).expect("time") + Duration::days(7));
    let overdue = lab.console.due_warnings().await.expect("warnings");
    assert!(
        overdue
            .iter()
            .any(|n| n.credential.kind == CredentialKind::ApiKey && n.days == 0),
        "once past due, an overdue warning: {overdue:?}"
    );

    // The key is changed on the host: a new fingerprint, a change noticed and recorded.
    let new_key = "n".repeat(43);
    std::fs::write(
        service.join("config.toml"),
        format!("mcp_api_key = \"{new_key}\"\n"),
    )
    .expect("config");
    let inventory = lab.console.credentials().await.expect("inventory");
    let api = inventory
        .credentials
        .iter()
        .find(|c| c.kind == CredentialKind::ApiKey)
        .expect("still listed");
    assert_eq!(
        api.fingerprint,
        sha_prefix(&new_key),
        "the new value's fingerprint"
    );
    assert!(
        api.last_rotation.is_some(),
        "the change is known as a rotation"
    );
    let timeline = lab
        .console
        .events(
            &EventFilter {
                kind: Some("console".into()),
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
    let inventory = lab.console.credentials().await.expect("inventory");
    assert!(
        inventory
            .problems
            .iter()
            .any(|p| p.instance == "sekha-1" && p.message.contains("inside [server]")),
        "{:?}",
        inventory.problems
    );
    agent.stop().await;
}
