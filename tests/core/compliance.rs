//! Compliance from the console: checks run over mutual TLS on a real fixture service, drift
//! re-opening an item with an alert and a timeline entry, manual items coming back on their
//! cadence, waivers expiring, evidence by SHA-256, and the report.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use gatehouse_core::{
    AlertFilter, Burst, ComplianceQuery, ErrorCode, EventFilter, EvidenceInput, EvidenceKind,
    ItemFilter, ItemState, ItemView, ReportFormat, WaiverInput, WaiverKind,
};
use time::OffsetDateTime;

use crate::lab::Lab;
use crate::lab::{start_agent_config, Running};
use crate::ports::{free_port, wait_listening};

struct Fixture(Child);

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A Sekha fixture with a strong root key, its config mode 0600, and an agent beside it.
async fn sekha(lab: &Lab) -> (Fixture, Running, PathBuf) {
    let service = lab.agents.join("sekha-service");
    std::fs::create_dir_all(&service).expect("service dir");
    let config = service.join("config.toml");
    std::fs::write(
        &config,
        "mcp_api_key = \"kJ8dF3mN9pQ2wR5tY7uH0jK3lM6nP9qS2vT5wX8zA1b\"\n[server]\nport = 8080\n",
    )
    .expect("config");
    set_mode(&config, 0o600);
    crate::support::stamp(&config, lab.now());
    let port = free_port();
    let child = Command::new("python3")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../demo/fixture_service.py"))
        .args([
            "--profile",
            "sekha",
            "--port",
            &port.to_string(),
            "--rate-limit",
            "20",
        ])
        .arg("--workdir")
        .arg(&service)
        .arg("--log")
        .arg(service.join("sekha.log"))
        .stderr(Stdio::null())
        .spawn()
        .expect("fixture");
    wait_listening(port);
    let (dir, code) = lab.init_agent("sekha-1", OffsetDateTime::now_utc());
    let agent = start_agent_config(
        gatehouse_agent::AgentConfig::for_test(dir)
            .with_service_url(format!("http://127.0.0.1:{port}/health"))
            .with_service_dir(service),
    )
    .await;
    lab.add("sekha-1", &agent, &code).await.expect("enrolled");
    (Fixture(child), agent, config)
}

fn item(lab: &Lab, id: &str) -> ItemView {
    lab.console
        .compliance
        .compliance(&ComplianceQuery::default())
        .expect("view")
        .instances
        .into_iter()
        .flat_map(|i| i.items)
        .find(|i| i.id == id)
        .unwrap_or_else(|| panic!("{id} is on the checklist"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_run_over_mtls_and_drift_reopens_with_an_alert_and_a_timeline_entry() {
    let lab = Lab::new();
    let (_fixture, agent, config) = sekha(&lab).await;

    let before = lab
        .console
        .compliance
        .compliance(&ComplianceQuery::default())
        .expect("view");
    assert_eq!(
        before.instances[0]
            .items
            .iter()
            .filter(|i| i.state == ItemState::Unknown)
            .count(),
        before.instances[0]
            .items
            .iter()
            .filter(|i| i.automated)
            .count(),
        "before any run, every automated item is unknown, not passing"
    );

    let run = lab
        .console
        .compliance
        .run_checks(None, Burst::Always)
        .await
        .expect("checks run");
    assert!(run.errors.is_empty(), "the agent answers: {:?}", run.errors);
    assert_eq!(run.instances, 1, "the one instance was checked");
    assert!(run.reopened.is_empty(), "a first run re-opens nothing");
    for (id, want) in [
        ("pre.file-permissions", ItemState::Pass),
        ("pre.strong-key", ItemState::Pass),
        ("ongoing.rotate-keys", ItemState::Pass),
        ("probe.auth", ItemState::Pass),
        ("probe.rate-limit", ItemState::Pass),
        ("probe.data-endpoints", ItemState::Fail),
        ("post.backup-restore", ItemState::Due),
    ] {
        let view = item(&lab, id);
        assert_eq!(
            view.state, want,
            "{id}: {} {:?}",
            view.state_text, view.checks
        );
    }
    // No public_url, backup_dir or readable firewall in this setup: unknown, with the reason.
    let tls = item(&lab, "pre.tls13");
    assert_eq!(
        tls.state,
        ItemState::Unknown,
        "TLS cannot be judged without a public URL"
    );
    assert!(
        tls.state_text.contains("public_url"),
        "and says what to configure: {}",
        tls.state_text
    );

    set_mode(&config, 0o644);
    let run = lab
        .console
        .compliance
        .run_checks(None, Burst::Daily)
        .await
        .expect("second run");
    assert_eq!(
        run.reopened,
        vec!["sekha-1: Set file permissions (600 for configs)".to_owned()],
        "the item that passed and now fails is re-opened, and only it"
    );
    let reopened = item(&lab, "pre.file-permissions");
    assert!(
        reopened.state == ItemState::Fail && reopened.reopened,
        "shown as failing again: {reopened:?}"
    );
    assert!(
        reopened.checks[0]
            .evidence
            .iter()
            .any(|e| e.contains("mode 0644")),
        "with the evidence: {:?}",
        reopened.checks[0].evidence
    );
    let alerts = lab
        .console
        .analytics
        .alerts(&AlertFilter {
            subject: Some("pre.file-permissions".into()),
            ..Default::default()
        })
        .expect("alerts");
    assert_eq!(alerts.len(), 1, "drift raises one alert: {alerts:?}");
    assert_eq!(
        alerts[0].instance, "sekha-1",
        "on the instance that drifted"
    );
    assert_eq!(
        alerts[0].severity,
        gatehouse_core::Severity::Medium,
        "a drift is a medium-severity alert"
    );
    let timeline = lab
        .console
        .timeline
        .events(
            &EventFilter {
                source: Some(gatehouse_events::Source::Console),
                text: Some("re-opened".into()),
                ..Default::default()
            },
            None,
            50,
        )
        .expect("timeline");
    assert!(
        timeline.events.iter().any(|e| e
            .message
            .as_deref()
            .is_some_and(|m| m.contains("Set file permissions"))),
        "the re-opening is on the timeline: {:?}",
        timeline
            .events
            .iter()
            .map(|e| &e.message)
            .collect::<Vec<_>>()
    );
    let overview = lab.console.overview().expect("overview");
    assert!(
        overview
            .attention
            .iter()
            .any(|a| a.title.contains("Set file permissions") && a.title.contains("re-opened")),
        "the first screen names the re-opened item: {:?}",
        overview
            .attention
            .iter()
            .map(|a| &a.title)
            .collect::<Vec<_>>()
    );
    let history = lab
        .console
        .compliance
        .item_history("sekha-1", "pre.file-permissions")
        .expect("history");
    assert_eq!(
        history.iter().map(|h| h.kind.as_str()).collect::<Vec<_>>(),
        ["reopened", "check"],
        "the history shows it passed, then re-opened"
    );

    lab.console
        .compliance
        .run_checks(None, Burst::Daily)
        .await
        .expect("third run");
    let alerts = lab
        .console
        .analytics
        .alerts(&AlertFilter {
            subject: Some("pre.file-permissions".into()),
            ..Default::default()
        })
        .expect("alerts");
    assert_eq!(
        alerts.len(),
        1,
        "a failure that goes on raises no second alert"
    );

    set_mode(&config, 0o600);
    lab.console
        .compliance
        .run_checks(None, Burst::Daily)
        .await
        .expect("fixed");
    let fixed = item(&lab, "pre.file-permissions");
    assert!(
        fixed.state == ItemState::Pass && !fixed.reopened,
        "fixed, it passes and is no longer marked re-opened: {fixed:?}"
    );
    let open = lab
        .console
        .analytics
        .alerts(&AlertFilter {
            subject: Some("pre.file-permissions".into()),
            ..Default::default()
        })
        .expect("alerts");
    assert!(
        open.is_empty(),
        "its drift alert is resolved once the item passes again, not left new: {open:?}"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_items_recur_waivers_expire_and_evidence_is_kept_by_hash() {
    let lab = Lab::new();
    let (_fixture, agent, _config) = sekha(&lab).await;
    lab.console
        .compliance
        .run_checks(None, Burst::Always)
        .await
        .expect("run");
    let t0 = OffsetDateTime::now_utc();
    lab.set_clock(t0);

    // A weekly item: done now, due again after a week.
    let done = lab
        .console
        .compliance
        .sign_off_item(
            "sekha-1",
            "ongoing.review-logs",
            "looked at the week's 401s",
        )
        .expect("sign off");
    assert_eq!(
        done.state,
        ItemState::Done,
        "signed off: {}",
        done.state_text
    );
    assert_eq!(
        done.due_at,
        Some(t0.unix_timestamp() + 7 * 86_400),
        "due again in a week"
    );
    assert_eq!(
        done.evidence.len(),
        1,
        "the sign-off note is kept as evidence"
    );
    lab.set_clock(t0 + time::Duration::days(8));
    let again = item(&lab, "ongoing.review-logs");
    assert_eq!(
        again.state,
        ItemState::Due,
        "a week later it is due again: {}",
        again.state_text
    );
    assert!(again.overdue, "and overdue, its date having passed");
    let once = lab
        .console
        .compliance
        .sign_off_item("sekha-1", "post.incident-plan", "")
        .expect("once");
    lab.set_clock(t0 + time::Duration::days(800));
    assert_eq!(
        item(&lab, "post.incident-plan").state,
        ItemState::Done,
        "an item done once stays done: {}",
        once.state_text
    );
    lab.set_clock(t0);

    // A waiver counts until it expires, then the item counts again, and the history says so.
    let waived = lab
        .console
        .compliance
        .waive_item(
            "sekha-1",
            "probe.data-endpoints",
            &WaiverInput {
                kind: WaiverKind::AcceptedRisk,
                reason: "port 8080 is bound to loopback; nginx serves only /mcp".into(),
                approved_by: "Dana (security lead)".into(),
                expires_at: t0.unix_timestamp() + 30 * 86_400,
            },
        )
        .expect("waive");
    assert_eq!(
        waived.state,
        ItemState::Waived,
        "waived: {}",
        waived.state_text
    );
    let view = lab
        .console
        .compliance
        .compliance(&ComplianceQuery {
            instance: None,
            filter: Some(ItemFilter::Waived),
        })
        .expect("view");
    assert_eq!(
        view.instances[0]
            .items
            .iter()
            .map(|i| i.id.as_str())
            .collect::<Vec<_>>(),
        ["probe.data-endpoints"],
        "the waived filter shows exactly the waived item"
    );
    assert_eq!(view.fleet.waived, 1, "the scorecard counts it as waived");
    lab.set_clock(t0 + time::Duration::days(31));
    let expired = item(&lab, "probe.data-endpoints");
    assert_eq!(
        expired.state,
        ItemState::Fail,
        "an expired waiver re-opens the item"
    );
    assert!(
        lab.console
            .compliance
            .item_history("sekha-1", "probe.data-endpoints")
            .expect("history")
            .iter()
            .any(|h| h.kind == gatehouse_core::HistoryKind::WaiverExpired),
        "the expiry is in the item's history"
    );
    lab.set_clock(t0);

    // Bad input is refused with a reason and changes nothing.
    let refused = lab.console.compliance.waive_item(
        "sekha-1",
        "probe.cors",
        &WaiverInput {
            kind: WaiverKind::NotApplicable,
            reason: " ".into(),
            approved_by: "Dana".into(),
            expires_at: t0.unix_timestamp() + 86_400,
        },
    );
    assert_eq!(
        refused.expect_err("no reason").code(),
        ErrorCode::InvalidInput,
        "a waiver needs a reason"
    );
    assert_ne!(
        item(&lab, "probe.cors").state,
        ItemState::Waived,
        "and nothing was waived"
    );
    assert!(
        lab.console
            .compliance
            .sign_off_item("sekha-1", "pre.strong-key", "")
            .is_err(),
        "an automated item cannot be signed off by hand"
    );
    assert!(
        lab.console
            .compliance
            .sign_off_item("sekha-1", "no.such.item", "")
            .is_err(),
        "an unknown item is an error"
    );

    // A file is recorded by name, size and SHA-256 (compared with coreutils' sha256sum).
    let file = lab.agents.join("restore-drill.txt");
    std::fs::write(
        &file,
        "restored sekha.db from 2026-11-20, 1412 conversations\n",
    )
    .expect("file");
    let with_file = lab
        .console
        .compliance
        .add_item_evidence(
            "sekha-1",
            "post.backup-restore",
            &EvidenceInput {
                kind: EvidenceKind::File,
                text: file.display().to_string(),
            },
        )
        .expect("evidence");
    let sha = String::from_utf8(
        Command::new("sha256sum")
            .arg(&file)
            .output()
            .expect("sha256sum")
            .stdout,
    )
    .expect("utf-8");
    let recorded = &with_file.evidence[0];
    assert_eq!(
        recorded.sha256.as_deref(),
        sha.split_whitespace().next(),
        "the file's SHA-256 is recorded"
    );
    assert_eq!(
        recorded.text, "restore-drill.txt",
        "by its name, not its content"
    );
    assert!(
        lab.console
            .compliance
            .add_item_evidence(
                "sekha-1",
                "post.backup-restore",
                &EvidenceInput {
                    kind: EvidenceKind::Link,
                    text: "javascript:alert(1)".into(),
                },
            )
            .is_err(),
        "only http(s) links are evidence"
    );
    lab.console
        .compliance
        .add_item_evidence(
            "sekha-1",
            "post.backup-restore",
            &EvidenceInput {
                kind: EvidenceKind::Note,
                text: "<script>alert(1)</script> drill passed".into(),
            },
        )
        .expect("note");

    // The report carries the scorecard, every item and its evidence, escaped.
    let html = lab
        .console
        .reports
        .compliance(&ComplianceQuery::default(), ReportFormat::Html)
        .expect("html");
    assert!(
        html.contains("Compliance report") && html.contains("sekha-1"),
        "names the fleet"
    );
    assert!(html.contains("Test backup restoration"), "lists the items");
    assert!(
        html.contains(sha.split_whitespace().next().expect("hash")),
        "shows the file's hash"
    );
    assert!(
        html.contains("&lt;script&gt;") && !html.contains("<script>"),
        "operator and host text is escaped; the page runs no script"
    );
    assert!(html.contains("<svg"), "with the chart");
    let json: serde_json::Value = serde_json::from_str(
        &lab.console
            .reports
            .compliance(&ComplianceQuery::default(), ReportFormat::Json)
            .expect("json"),
    )
    .expect("valid JSON");
    let items = json["compliance"]["instances"][0]["items"]
        .as_array()
        .expect("items");
    assert_eq!(
        items.len() as u64,
        json["compliance"]["fleet"]["total"]
            .as_u64()
            .expect("total"),
        "the JSON holds every item the scorecard counts"
    );
    agent.stop().await;
}

/// A finding the console can fix offers the fix: Sekha's key sitting under a table (where
/// Sekha ignores it and falls back to its published default) fails the default-key check, and
/// the check names the key whose rotation writes a new one where Sekha reads it. The offer
/// survives the store, and goes once the finding does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_key_check_offers_the_rotation_that_fixes_it() {
    let lab = Lab::new();
    let (_fixture, _agent, config) = sekha(&lab).await;
    std::fs::write(
        &config,
        "[server]\nport = 8080\nmcp_api_key = \"kJ8dF3mN9pQ2wR5tY7uH0jK3lM6nP9qS2vT5wX8zA1b\"\n",
    )
    .expect("config");
    lab.console
        .compliance
        .run_checks(None, Burst::Always)
        .await
        .expect("checks run");
    let failing: Vec<_> = lab
        .console
        .compliance
        .compliance(&ComplianceQuery::default())
        .expect("view")
        .instances
        .into_iter()
        .flat_map(|i| i.items)
        .flat_map(|i| i.checks)
        .filter(|c| c.check == "default_key")
        .collect();
    assert!(
        !failing.is_empty()
            && failing
                .iter()
                .all(|c| c.status == gatehouse_core::CheckState::Fail
                    && c.fixes == ["mcp_api_key"]),
        "the default-key finding offers rotating mcp_api_key: {failing:?}"
    );
    std::fs::write(
        &config,
        "mcp_api_key = \"kJ8dF3mN9pQ2wR5tY7uH0jK3lM6nP9qS2vT5wX8zA1b\"\n[server]\nport = 8080\n",
    )
    .expect("config");
    lab.console
        .compliance
        .run_checks(None, Burst::Always)
        .await
        .expect("checks run again");
    let view = lab
        .console
        .compliance
        .compliance(&ComplianceQuery::default())
        .expect("view");
    assert!(
        view.instances
            .iter()
            .flat_map(|i| &i.items)
            .flat_map(|i| &i.checks)
            .all(|c| c.fixes.is_empty() || c.status == gatehouse_core::CheckState::Fail),
        "a passing check offers no fix"
    );
}
