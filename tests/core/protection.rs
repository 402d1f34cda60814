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

/// An nginx failed sign-in line stamped `at`.
fn failed_at(ip: &str, at: OffsetDateTime) -> String {
    let f = time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
    );
    format!(
        "{ip} - - [{}] \"POST /api/v1/login HTTP/1.1\" 401 35 \"-\" \"curl/8\"\n",
        at.format(&f).expect("time")
    )
}

/// A changed rule and allowlist tried before they are saved: over the failures stored for
/// the last 30 days, what the rule would have fired and blocked, and what the allowlist entry
/// would have kept quiet. Nothing is saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_and_an_allowlist_entry_are_replayed_over_the_stored_month_before_saving() {
    let lab = Lab::new();
    std::fs::create_dir_all(&lab.agents).expect("dir");
    let log = lab.agents.join("replay.log");
    let two_days_ago = lab.now() - time::Duration::days(2);
    let mut text = String::new();
    // An attacker: 8 failures within a minute. The office NAT: 6 within a minute (a stale
    // password on many laptops). A client failing twice.
    for i in 0..8 {
        text.push_str(&failed_at(
            "203.0.113.66",
            two_days_ago + time::Duration::seconds(i * 5),
        ));
    }
    for i in 0..6 {
        text.push_str(&failed_at(
            "198.51.100.20",
            two_days_ago + time::Duration::seconds(300 + i * 5),
        ));
    }
    for i in 0..2 {
        text.push_str(&failed_at(
            "192.0.2.5",
            two_days_ago + time::Duration::seconds(600 + i),
        ));
    }
    // Older than the month: not read.
    for i in 0..6 {
        text.push_str(&failed_at(
            "203.0.113.99",
            lab.now() - time::Duration::days(40) + time::Duration::seconds(i),
        ));
    }
    append(&log, &text);
    let (agent, code) = lab.agent_following("replay", &log, 10_000).await;
    lab.add("replay", &agent, &code).await.expect("enrolled");
    lab.sync_until("replay", 22).await;

    let before = lab.console.analytics.detection().expect("rules");
    let mut rules = before.rules.clone();
    for rule in &mut rules {
        if rule.id == "brute-force" {
            rule.response = gatehouse_core::detect::Response::Block { ttl_secs: 3600 };
        }
    }
    let report = lab
        .console
        .protection
        .replay(gatehouse_core::ReplayRequest {
            rules,
            allowlist: vec!["198.51.100.0/24".into()],
        })
        .await
        .expect("replayed");
    assert_eq!(
        report.failures, 16,
        "the month's failures are read, the older ones not"
    );
    let brute = report
        .rules
        .iter()
        .find(|r| r.rule_id == "brute-force")
        .expect("the rule is reported");
    assert_eq!(
        (brute.firings, brute.addresses, brute.blocks),
        (1, 1, 1),
        "it would have fired once, on the attacker, and blocked it: {brute:?}"
    );
    assert_eq!(brute.examples[0].ip, "203.0.113.66", "naming the attacker");
    let office = &report.allowlist[0];
    assert_eq!(
        (office.failures, office.firings_suppressed),
        (6, 1),
        "the allowlist entry would have kept one firing on the office quiet: {office:?}"
    );
    assert_eq!(
        lab.console.analytics.detection().expect("rules"),
        before,
        "a replay saves nothing"
    );
    agent.stop().await;
}

/// A block on every instance: each instance says what it did (here the host's firewall fails,
/// and that is said, not hidden), the address joins the policy each agent runs, so the agent
/// keeps trying to enforce it on its own, and "why blocked" names the fleet-wide block and
/// the agent's decision about it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_wide_block_reaches_every_agent_s_policy_and_each_instance_says_what_it_did() {
    let lab = Lab::new();
    let (dir, code) = lab.init_agent("edge-2", OffsetDateTime::now_utc());
    let agent = start_agent_config(
        gatehouse_agent::AgentConfig::for_test(dir.clone()).with_firewall(
            gatehouse_agent::FirewallSettings {
                nft_command: Some(vec!["false".into()]),
                never_block: vec![],
            },
        ),
    )
    .await;
    lab.add("edge-2", &agent, &code).await.expect("enrolled");
    let before = lab
        .console
        .protection
        .policy_overview()
        .expect("overview")
        .version;

    let refused = lab
        .console
        .protection
        .block_everywhere(&gatehouse_core::FleetBlockRequest {
            ip: "203.0.113.80".into(),
            ttl_secs: 3600,
            reason: String::new(),
        })
        .await
        .expect_err("a fleet-wide block needs a reason");
    assert!(
        refused.to_string().contains("why"),
        "the refusal asks for the reason: {refused}"
    );

    let outcomes = lab
        .console
        .protection
        .block_everywhere(&gatehouse_core::FleetBlockRequest {
            ip: "203.0.113.80".into(),
            ttl_secs: 3600,
            reason: "scanner seen on three hosts".into(),
        })
        .await
        .expect("sent to every instance");
    assert_eq!(outcomes.len(), 1, "one outcome per instance: {outcomes:?}");
    assert!(
        !outcomes[0].ok && !outcomes[0].message.is_empty(),
        "the host whose firewall fails says so: {outcomes:?}"
    );
    let overview = lab.console.protection.policy_overview().expect("overview");
    assert_eq!(overview.version, before + 1, "the block makes a new policy");
    assert_eq!(
        overview.agents[0].version,
        Some(overview.version),
        "which the agent runs at once"
    );
    let kept = gatehouse_agent::state::StateDir::new(&dir)
        .policy()
        .expect("read")
        .expect("kept");
    assert!(
        kept.policy.contains("203.0.113.80") && kept.policy.contains("scanner seen on three hosts"),
        "the agent's policy carries the block and its reason"
    );

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let why = loop {
        let why = lab
            .console
            .protection
            .why_blocked("203.0.113.80")
            .await
            .expect("asked");
        if why
            .decisions
            .iter()
            .any(|d| d.rule_name == "Blocked fleet-wide")
        {
            break why;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the agent applies the policy's block on its own within 15 s: {why:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    assert_eq!(
        why.fleet_block.as_ref().map(|b| b.reason.as_str()),
        Some("scanner seen on three hosts"),
        "why blocked names the fleet-wide block"
    );
    let decision = why
        .decisions
        .iter()
        .find(|d| d.rule_name == "Blocked fleet-wide")
        .expect("found above");
    assert!(
        !decision.verified && decision.note.contains("not here"),
        "the agent says the block does not bite on its host: {decision:?}"
    );
    assert!(
        why.instances.iter().all(|i| !i.blocked),
        "and the live answer agrees: {why:?}"
    );
    agent.stop().await;
}
