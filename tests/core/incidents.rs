//! Incident response from the console: an alert from a real brute force becomes an incident
//! with its context; the block is verified by nftables (in a network namespace the test
//! makes, as root), the service is restarted and answers, the evidence bundle verifies with
//! `sha256sum -c` and holds no key, the report carries decisions and verified results, and
//! every action is in an intact audit log.

use std::process::Command;

use gatehouse_core::{AlertFilter, IncidentStatus};
use gatehouse_events::Outcome;
use time::OffsetDateTime;

use crate::lab::{start_agent_at, Lab};
use crate::support::append;

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

fn failed_line(ip: &str) -> String {
    let f = time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
    );
    let now = OffsetDateTime::now_utc().format(&f).expect("time");
    format!("{ip} - - [{now}] \"POST /mcp/tools/memory_stats HTTP/1.1\" 401 40 \"-\" \"curl/8\"\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_an_alert_to_a_contained_incident_with_evidence_and_a_report() {
    let lab = Lab::new();
    let netns = is_root().then(|| {
        let ns = Netns(format!("gh-inc-{}", std::process::id()));
        let made = Command::new("ip")
            .args(["netns", "add", &ns.0])
            .status()
            .expect("ip");
        assert!(made.success(), "the test makes its namespace");
        ns
    });
    let (agent, _service, old_key, mut config) =
        crate::rotation::sekha_with_agent_config(&lab, "sekha-i", "", "").await;
    let proxy = lab.agents.join("sekha-proxy.log");
    append(&proxy, "");
    config.logs = vec![gatehouse_agent::tail::LogConfig::file(
        proxy.clone(),
        gatehouse_events::Format::NginxCombined,
        gatehouse_events::Source::Proxy,
    )];
    config.firewall.nft_command = netns.as_ref().map(|ns| {
        ["ip", "netns", "exec", &ns.0, "nft"]
            .map(str::to_owned)
            .to_vec()
    });
    let health = config.service_url.clone().expect("health URL");
    let addr = agent.addr;
    agent.stop().await;
    let agent = start_agent_at(config, addr).await;

    for _ in 0..6 {
        append(&proxy, &failed_line("203.0.113.7"));
    }
    lab.sync_until("sekha-i", 6).await;
    let alerts = lab
        .console
        .analytics
        .alerts(&AlertFilter {
            subject: Some("203.0.113.7".into()),
            ..Default::default()
        })
        .expect("alerts");
    assert_eq!(
        alerts.len(),
        1,
        "the brute force raised one alert: {alerts:?}"
    );

    let incident = lab
        .console
        .incidents
        .incident_from_alert(alerts[0].id)
        .expect("incident");
    assert_eq!(incident.instances, ["sekha-i"], "the alert's instance");
    assert_eq!(incident.ips, ["203.0.113.7"], "the alert's address");
    assert!(
        incident.title.contains("203.0.113.7"),
        "its title names the address, so two attacks on one instance read apart: {}",
        incident.title
    );
    assert_eq!(
        incident.step.as_deref(),
        Some("detection"),
        "on the playbook's first step"
    );
    let view = lab.console.incidents.incident(incident.id).expect("view");
    assert_eq!(
        view.failed_attempts, 6,
        "the window holds the attack's failed sign-ins"
    );
    assert_eq!(
        incident.source,
        format!("from alert {}", alerts[0].id),
        "it says where it was opened from, in words that follow \"Opened\""
    );
    let opened = view.log.first().expect("the opening is logged");
    assert_eq!(
        (opened.kind, opened.text.clone()),
        (
            gatehouse_core::EntryKind::Opened,
            format!("from alert {}: {}", alerts[0].id, incident.title)
        ),
        "the log reads \"opened from alert N: …\" after its kind, not \"opened opened from\""
    );
    let from_offender = lab
        .console
        .incidents
        .open_incident(&gatehouse_core::OpenIncident {
            origin: gatehouse_core::IncidentOrigin::Offender,
            title: "Failed sign-ins from 203.0.113.7".into(),
            severity: gatehouse_core::Severity::Medium,
            instances: vec!["sekha-i".into()],
            ips: vec!["203.0.113.7".into()],
            from_us: incident.from_us,
            to_us: incident.to_us,
        })
        .expect("an incident from an offender");
    assert_eq!(
        from_offender.source, "from the offenders list (203.0.113.7)",
        "an incident opened from an offender says so, not \"by hand\""
    );
    let playbook = view.playbook.expect("Sekha's playbook");
    assert_eq!(playbook.steps.len(), 5, "Sekha's five steps");

    lab.console
        .incidents
        .incident_note(
            incident.id,
            true,
            "Block 203.0.113.7 for an hour; the key was not guessed.",
        )
        .expect("decision");

    if netns.is_some() {
        let view = lab
            .console
            .incidents
            .incident_block(incident.id, "sekha-i", "203.0.113.7", 3600, false)
            .await
            .expect("block");
        let action = view.log.last().expect("the action is logged");
        assert_eq!(
            action.ok,
            Some(true),
            "the block is verified: {:?}",
            action.steps
        );
        let blocked = lab
            .console
            .incidents
            .blocked("sekha-i")
            .await
            .expect("list");
        assert_eq!(
            blocked.blocked.len(),
            1,
            "the host's firewall holds the address"
        );
        let offenders = lab
            .console
            .analytics
            .offenders(&gatehouse_core::OffenderQuery::default())
            .expect("offenders");
        assert!(
            offenders.iter().any(|o| o.ip == "203.0.113.7" && o.blocked),
            "the offenders table shows the address as blocked"
        );
        let refused = lab
            .console
            .incidents
            .incident_block(incident.id, "sekha-i", "127.0.0.1", 60, false)
            .await;
        assert!(refused.is_err(), "loopback is never blocked");
        let view = lab.console.incidents.incident(incident.id).expect("view");
        assert_eq!(
            view.log.last().and_then(|e| e.ok),
            Some(false),
            "the refusal is in the incident's log too, as not verified"
        );
    } else {
        eprintln!("not root: the block is tested by the agent's firewall test only");
    }

    let view = lab
        .console
        .incidents
        .incident_restart(incident.id, "sekha-i")
        .await
        .expect("restart");
    let restart = view.log.last().expect("logged");
    assert_eq!(
        restart.ok,
        Some(true),
        "the service came back and answers: {:?}",
        restart.steps
    );
    assert!(
        reqwest::get(&health)
            .await
            .is_ok_and(|r| r.status().is_success()),
        "the fixture answers after the restart"
    );

    // Eradication and recovery: snapshot, a planted conversation, the snapshot restored.
    let base = health.trim_end_matches("/health").to_owned();
    let labels = || async {
        let body: serde_json::Value = reqwest::get(format!("{base}/api/v1/conversations"))
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        body["conversations"].as_array().expect("list").len()
    };
    let client = reqwest::Client::new();
    client
        .post(format!("{base}/api/v1/conversations"))
        .body("{\"label\": \"clean\"}")
        .send()
        .await
        .expect("post");
    let view = lab
        .console
        .incidents
        .incident_snapshot(incident.id, "sekha-i")
        .await
        .expect("snapshot");
    assert_eq!(
        view.log.last().and_then(|e| e.ok),
        Some(true),
        "the snapshot is logged"
    );
    client
        .post(format!("{base}/api/v1/conversations"))
        .body("{\"label\": \"planted\"}")
        .send()
        .await
        .expect("post");
    assert_eq!(labels().await, 2, "the planted conversation is there");
    let snapshots = lab
        .console
        .incidents
        .snapshots("sekha-i")
        .await
        .expect("snapshots");
    let name = snapshots.snapshots.first().expect("one").name.clone();
    let view = lab
        .console
        .incidents
        .incident_restore(incident.id, "sekha-i", &name)
        .await
        .expect("restore");
    let restore = view.log.last().expect("logged");
    assert_eq!(
        restore.ok,
        Some(true),
        "the restore is verified: {:?}",
        restore.steps
    );
    assert!(
        restore
            .steps
            .iter()
            .any(|s| s.starts_with("safety snapshot")),
        "after a safety snapshot"
    );
    assert_eq!(labels().await, 1, "the planted conversation is gone");

    lab.console
        .incidents
        .update_incident(
            incident.id,
            Some(IncidentStatus::Contained),
            Some("dana"),
            Some("containment"),
        )
        .expect("contained");

    let out = tempfile::tempdir().expect("out");
    let bundle = lab
        .console
        .incidents
        .evidence_bundle(incident.id, out.path())
        .await
        .expect("bundle");
    let check = Command::new("sha256sum")
        .args(["-c", "--quiet", "MANIFEST.sha256"])
        .current_dir(&bundle.path)
        .output()
        .expect("sha256sum");
    assert!(
        check.status.success(),
        "the manifest verifies: {}",
        String::from_utf8_lossy(&check.stdout)
    );
    let files = crate::support::files_below(std::path::Path::new(&bundle.path));
    assert!(
        files.iter().any(|(p, b)| p.ends_with("config-files.txt")
            && String::from_utf8_lossy(b).contains("mode 0")),
        "config files are described by hash and mode"
    );
    assert!(
        files
            .iter()
            .any(|(p, b)| p.to_string_lossy().contains("/logs/")
                && String::from_utf8_lossy(b).contains("203.0.113.7")),
        "the recent log lines are in the bundle"
    );
    assert!(
        files
            .iter()
            .all(|(_, b)| !String::from_utf8_lossy(b).contains(&old_key)),
        "no key value is in the bundle"
    );

    let markdown = lab
        .console
        .reports
        .incident(incident.id, true)
        .expect("markdown");
    assert!(
        markdown.contains("## Decisions") && markdown.contains("Block 203.0.113.7 for an hour"),
        "the decisions"
    );
    assert!(
        markdown.contains("restart the service on sekha-i**: verified"),
        "actions with their verified results:\n{markdown}"
    );
    assert!(markdown.contains("| Status | contained |"), "the status");
    let html = lab
        .console
        .reports
        .incident(incident.id, false)
        .expect("html");
    assert!(
        html.contains("<svg") && !html.contains("<script"),
        "the heatmap, and no script"
    );
    assert!(
        html.contains("max-width: 100%"),
        "the chart is held within the page"
    );
    // The incident's own failed sign-ins, listed with their address, in both reports.
    let (events, _) = lab
        .console
        .incidents
        .incident_events(incident.id, 200)
        .expect("events");
    let failures = events
        .iter()
        .filter(|e| e.ip.as_deref() == Some("203.0.113.7") && e.outcome == Outcome::Failure)
        .count();
    assert!(
        failures >= 6,
        "the attack's failed sign-ins are the incident's events: {events:?}"
    );
    assert!(
        events
            .iter()
            .all(|e| e.ip.as_deref() == Some("203.0.113.7")),
        "only its address's"
    );
    assert!(
        events.windows(2).all(|w| w[0].time_us <= w[1].time_us),
        "oldest first, as a report reads"
    );
    for (name, text) in [("markdown", &markdown), ("html", &html)] {
        let rows = text.matches("auth failure").count();
        assert!(
            rows >= failures,
            "the {name} report lists each of the {failures} failed sign-ins as an event ({rows} rows)"
        );
    }

    let audit = lab.console.audit.verify().expect("verify");
    assert!(
        audit.intact,
        "every action went into an intact audit log: {audit:?}"
    );
    let log = lab.console.audit.entries(100).expect("audit");
    assert!(
        log.iter()
            .any(|e| e.action == "incident_open" && e.detail.contains("from alert")),
        "opening the incident is audited, with where it came from: {log:?}"
    );
    for action in ["block_requested", "restart_requested"] {
        let request = log.iter().position(|e| e.action == action);
        assert!(
            request.is_some(),
            "{action}: the request is in the log before the action is taken"
        );
    }
    assert!(
        log.iter().any(|e| e.action == "incident_decision"),
        "and so is the decision"
    );
    agent.stop().await;
}

/// A compromised agent reports log paths with a NUL byte, a parent directory and a bare
/// slash, and a second instance cannot be reached: the bundle is still written whole, every
/// file inside its folder and in the manifest, and what went wrong is in PROBLEMS.txt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_log_paths_from_a_compromised_agent_cannot_abort_the_evidence_bundle() {
    let lab = Lab::new();
    let (agent, code) = lab.agent("evil-1").await;
    lab.add("evil-1", &agent, &code).await.expect("enrolled");
    let (other, other_code) = lab.agent("gone-1").await;
    lab.add("gone-1", &other, &other_code)
        .await
        .expect("enrolled");
    let addr = agent.addr;
    agent.stop().await;
    other.stop().await;
    let evidence = serde_json::json!({
        "logs": [
            {"path": "/var/log/a\u{0}b.log", "source": "proxy", "lines": ["line with a NUL path"], "error": null},
            {"path": "../../../../outside.log", "source": "proxy", "lines": ["line from above"], "error": null},
            {"path": "/", "source": "service", "lines": [], "error": "no such file"}
        ],
        "files": [
            {"path": "/etc/sekha/\u{0}config.toml", "sha256": "00", "mode": 420, "size": 1, "modified": i64::MAX, "error": null}
        ],
        "collected_at": 0
    })
    .to_string();
    let _rogue =
        gatehouse_testkit::start_rogue(&lab.agents.join("evil-1"), addr, move |_, path, _| {
            path.starts_with("/v1/evidence")
                .then(|| (200, evidence.clone()))
        })
        .await;
    let now_us = lab.now().unix_timestamp() * 1_000_000;
    let incident = lab
        .console
        .incidents
        .open_incident(&gatehouse_core::OpenIncident {
            origin: gatehouse_core::IncidentOrigin::Hand,
            title: "hostile evidence".into(),
            severity: gatehouse_core::Severity::High,
            instances: vec!["evil-1".into(), "gone-1".into()],
            ips: vec![],
            from_us: now_us - 3_600_000_000,
            to_us: now_us,
        })
        .expect("incident");
    let out = tempfile::tempdir().expect("out");
    let bundle = lab
        .console
        .incidents
        .evidence_bundle(incident.id, &out.path().join("bundles"))
        .await
        .expect("a hostile answer from one agent does not abort the bundle");
    let check = Command::new("sha256sum")
        .args(["-c", "--quiet", "MANIFEST.sha256"])
        .current_dir(&bundle.path)
        .output()
        .expect("sha256sum");
    assert!(
        check.status.success(),
        "the manifest is written and verifies: {}",
        String::from_utf8_lossy(&check.stdout)
    );
    let everything = crate::support::files_below(out.path());
    assert!(
        everything
            .iter()
            .all(|(p, _)| p.starts_with(out.path().join("bundles"))),
        "no file lands outside the bundle's folder: {:?}",
        everything.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    let files = crate::support::files_below(std::path::Path::new(&bundle.path));
    let text = |suffix: &str| -> String {
        files
            .iter()
            .find(|(p, _)| p.ends_with(suffix))
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_else(|| panic!("{suffix} is in the bundle: {files:?}"))
    };
    assert!(
        text("instance-1/logs/1.log").contains("line with a NUL path")
            && text("instance-1/logs/2.log").contains("line from above"),
        "each reported log is kept, named by its index"
    );
    assert!(
        text("instance-1/logs/index.txt").contains(r#""/var/log/a\0b.log""#),
        "the index names each log's reported path, escaped"
    );
    assert!(
        text("PROBLEMS.txt").contains("gone-1"),
        "the unreachable instance is recorded as a problem"
    );
}

/// "Writes during the incident" are the requests the service's profile says change data, and
/// that the service did not refuse: Sekha's MCP tools are POSTs that only read, and a DELETE
/// answered 401 deleted nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_s_writes_are_the_profile_s_write_routes_the_service_accepted() {
    let lab = Lab::new();
    let proxy = lab.agents.join("writes-proxy.log");
    std::fs::create_dir_all(&lab.agents).expect("dir");
    append(&proxy, "");
    let (agent, code) = lab.agent_following("sekha-w", &proxy, 10_000).await;
    let view = lab.add("sekha-w", &agent, &code).await.expect("enrolled");
    assert_eq!(
        view.profile, "sekha",
        "enrolled as Sekha, whose profile names its writes"
    );
    let f = time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
    );
    let now = OffsetDateTime::now_utc().format(&f).expect("time");
    let line = |method: &str, path: &str, status: u16| {
        format!(
            "203.0.113.8 - - [{now}] \"{method} {path} HTTP/1.1\" {status} 40 \"-\" \"curl/8\"\n"
        )
    };
    append(
        &proxy,
        &[
            line("POST", "/mcp/tools/memory_stats", 200),
            line("POST", "/api/v1/conversations", 201),
            line("DELETE", "/api/v1/conversations/5", 401),
            line("DELETE", "/api/v1/conversations/5", 204),
        ]
        .concat(),
    );
    lab.sync_until("sekha-w", 4).await;
    let now_us = lab.now().unix_timestamp() * 1_000_000;
    let incident = lab
        .console
        .incidents
        .open_incident(&gatehouse_core::OpenIncident {
            origin: gatehouse_core::IncidentOrigin::Hand,
            title: "data changed".into(),
            severity: gatehouse_core::Severity::Medium,
            instances: vec!["sekha-w".into()],
            ips: vec![],
            from_us: now_us - 3_600_000_000,
            to_us: now_us + 3_600_000_000,
        })
        .expect("incident");
    let writes = lab
        .console
        .incidents
        .incident_writes(incident.id)
        .expect("writes");
    let mut seen: Vec<(String, String, Option<u16>)> = writes
        .iter()
        .map(|e| {
            (
                e.method.clone().unwrap_or_default(),
                e.path.clone().unwrap_or_default(),
                e.status,
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (
                "DELETE".to_owned(),
                "/api/v1/conversations/5".to_owned(),
                Some(204)
            ),
            (
                "POST".to_owned(),
                "/api/v1/conversations".to_owned(),
                Some(201)
            ),
        ],
        "the accepted create and delete, not the read-only tool call or the refused delete"
    );

    // A note's markup is text in the Markdown report, not HTML a viewer would run.
    lab.console
        .incidents
        .incident_note(
            incident.id,
            false,
            "<img src=x onerror=alert(1)> see [the log](javascript:alert(1))",
        )
        .expect("note");
    let report = lab
        .console
        .reports
        .incident(incident.id, true)
        .expect("markdown report");
    assert!(
        !report.replace("\\<", "").contains("<img")
            && !report.replace("\\]", "").contains("](javascript:"),
        "no HTML or link from a note survives in the Markdown report: {report}"
    );
    assert!(
        report.contains("\\<img src=x onerror=alert(1)\\>"),
        "the note is there, as text: {report}"
    );
    agent.stop().await;
}
