//! The agents' own protection, seen from the console: each agent is handed the console's
//! signed policy when it is linked and again after every change of the rules, Settings says
//! which version each runs, and what an agent decided on its own reaches the timeline and
//! one alert when the console syncs.

use gatehouse_core::{AlertFilter, EventFilter};
use time::OffsetDateTime;

use crate::lab::{start_agent_config, Lab};
use crate::support::append;

/// An nginx line for a failed sign-in, stamped now (the time of writing).
fn failed_sign_in(ip: &str) -> String {
    let f = time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
    );
    let at = OffsetDateTime::now_utc().format(&f).expect("time");
    format!("{ip} - - [{at}] \"POST /api/v1/login HTTP/1.1\" 401 35 \"-\" \"curl/8\"\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_agent_runs_the_console_s_signed_policy_and_its_decisions_reach_the_console() {
    let lab = Lab::new();
    std::fs::create_dir_all(&lab.agents).expect("dir");
    let log = lab.agents.join("edge.log");
    append(&log, "");
    let (dir, code) = lab.init_agent("edge", OffsetDateTime::now_utc());
    // This host cannot block: its nft fails. The agent must say so, not claim a block.
    let agent = start_agent_config(
        gatehouse_agent::AgentConfig::for_test(dir.clone())
            .with_logs(vec![gatehouse_agent::tail::LogConfig::file(
                log.clone(),
                gatehouse_events::Format::NginxCombined,
                gatehouse_events::Source::Access,
            )])
            .with_firewall(gatehouse_agent::FirewallSettings {
                nft_command: Some(vec!["false".into()]),
                never_block: vec![],
            }),
    )
    .await;
    lab.add("edge", &agent, &code).await.expect("enrolled");

    let overview = lab.console.protection.policy_overview().expect("overview");
    let edge = overview
        .agents
        .iter()
        .find(|a| a.instance == "edge")
        .expect("the enrolled agent is listed");
    assert_eq!(
        (edge.version, edge.error.as_deref()),
        (Some(overview.version), None),
        "linking the agent handed it the current policy: {overview:?}"
    );
    let stored = gatehouse_agent::state::StateDir::new(&dir)
        .policy()
        .expect("read")
        .expect("the agent keeps the policy it runs");
    assert!(
        !lab.keychain_lookup("policy.key").is_empty(),
        "the signing key is in the keychain"
    );
    assert!(
        !stored.policy.contains("PRIVATE") && stored.key.len() == 64,
        "the agent holds the public key only"
    );

    // The operator makes brute force block on the hosts.
    let mut detection = lab.console.analytics.detection().expect("rules");
    for rule in &mut detection.rules {
        if rule.id == "brute-force" {
            rule.response = gatehouse_core::detect::Response::Block { ttl_secs: 600 };
        }
    }
    lab.console
        .analytics
        .set_detection(&detection)
        .expect("saved");
    let wanted = lab
        .console
        .protection
        .policy_overview()
        .expect("overview")
        .version;
    assert_eq!(wanted, overview.version + 1, "a change makes a new version");
    lab.console
        .timeline
        .sync_instance("edge")
        .await
        .expect("sync");
    let edge = lab
        .console
        .protection
        .policy_overview()
        .expect("overview")
        .agents
        .into_iter()
        .find(|a| a.instance == "edge")
        .expect("listed");
    assert_eq!(
        edge.version,
        Some(wanted),
        "the next sync hands over the new version"
    );
    assert_eq!(edge.blocking_rules, 1, "with its blocking rule: {edge:?}");

    // An attack while the console looks elsewhere.
    for _ in 0..6 {
        append(&log, &failed_sign_in("203.0.113.50"));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let summary = loop {
        // Decisions are pulled every few seconds of the console's clock: move it on.
        lab.set_clock(lab.now() + time::Duration::seconds(6));
        lab.console
            .timeline
            .sync_instance("edge")
            .await
            .expect("sync");
        let alerts = lab
            .console
            .analytics
            .alerts(&AlertFilter::default())
            .expect("alerts");
        if let Some(a) = alerts.into_iter().find(|a| a.kind == "agent_decisions") {
            break a;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the agent's decision reaches the console within 15 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(
        summary.detail.contains("203.0.113.50") && summary.detail.contains("could not be enforced"),
        "one alert says what the agent did and that it could not enforce it: {}",
        summary.detail
    );
    assert_eq!(
        summary.severity,
        gatehouse_events::Severity::High,
        "a block that did not bite is serious"
    );
    let said = lab
        .console
        .timeline
        .events(
            &EventFilter {
                instance: Some("edge".into()),
                text: Some("decided".into()),
                ..Default::default()
            },
            None,
            10,
        )
        .expect("timeline");
    assert!(
        said.events
            .iter()
            .any(|e| e.message.as_deref().is_some_and(|m| {
                m.contains("decided to block 203.0.113.50") && m.contains("not blocked")
            })),
        "the timeline carries the decision and why it did not bite: {:?}",
        said.events
    );
    agent.stop().await;
}
