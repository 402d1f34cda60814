//! Alerts that respect the operator's attention: one attack is one alert whatever rules it
//! trips, history that arrives late is one summary and no notification, and clients still
//! presenting a key a rotation replaced are a notice, not an attack. Lines are written on a
//! host and read by a real agent; times come from the lab's clock.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use gatehouse_core::{Alert, AlertFilter, AlertNotice, Db, HISTORY_KIND, STALE_KEY_KIND};
use time::OffsetDateTime;

use crate::lab::{start_agent_config, Lab, Running};
use crate::support::append;

/// A Jelmore "Invalid API key" line stamped `second` seconds after `start`.
fn jelmore_line(start: OffsetDateTime, ip: &str, key: &str, second: i64) -> String {
    let at = (start + time::Duration::seconds(second))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("time");
    format!(
        "{{\"path\": \"/api/v1/v1/sessions\", \"key_prefix\": \"{key}\", \"client\": \"{ip}\", \"event\": \"Invalid API key\", \"timestamp\": \"{at}\", \"level\": \"warning\"}}\n"
    )
}

fn micros(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000) as i64
}

/// A Jelmore instance whose agent follows `jelmore.log` (its only log, so it is counted),
/// with every desktop notification collected.
async fn jelmore(
    lab: &Lab,
    name: &str,
) -> (Running, std::path::PathBuf, Arc<Mutex<Vec<AlertNotice>>>) {
    std::fs::create_dir_all(&lab.agents).expect("dir");
    let log = lab.agents.join(format!("{name}.log"));
    append(&log, "");
    let (dir, code) = lab.init_agent(name, OffsetDateTime::now_utc());
    let agent = start_agent_config(
        gatehouse_agent::AgentConfig::for_test(dir)
            .with_profile("jelmore")
            .with_logs(vec![gatehouse_agent::tail::LogConfig::file(
                log.clone(),
                gatehouse_events::Format::Structlog,
                gatehouse_events::Source::Service,
            )]),
    )
    .await;
    lab.add(name, &agent, &code).await.expect("enrolled");
    let notices = Arc::new(Mutex::new(Vec::new()));
    let seen = notices.clone();
    lab.console
        .analytics
        .on_alert(move |n| seen.lock().expect("notices").push(n));
    (agent, log, notices)
}

fn open_alerts(lab: &Lab) -> Vec<Alert> {
    lab.console
        .analytics
        .alerts(&AlertFilter::default())
        .expect("alerts")
}

fn kinds(alert: &Alert) -> BTreeSet<&str> {
    alert.facets.iter().map(|f| f.kind.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_key_spraying_and_a_baseline_jump_from_one_address_are_one_alert() {
    let lab = Lab::new();
    let (agent, log, notices) = jelmore(&lab, "jelmore-a").await;
    let start = lab.now() - time::Duration::minutes(5);
    // 32 failures in about three minutes, trying six keys: five failures are brute force,
    // five keys are spraying, and 30 in an hour on a quiet instance is a jump.
    append(
        &log,
        &(0..32)
            .map(|i| jelmore_line(start, "203.0.113.50", &format!("guess{:05}", i % 6), i * 5))
            .collect::<String>(),
    );
    lab.sync_until("jelmore-a", 32).await;
    let alerts = open_alerts(&lab);
    assert_eq!(
        alerts.len(),
        1,
        "one address, one attack, one alert, whatever rules it trips: {alerts:#?}"
    );
    let alert = &alerts[0];
    assert_eq!(
        kinds(alert),
        BTreeSet::from(["brute_force", "key_spraying", "baseline_jump"]),
        "each rule that fired says what it saw as a facet of the one alert: {:#?}",
        alert.facets
    );
    assert_eq!(
        alert.subject.as_deref(),
        Some("203.0.113.50"),
        "about the address"
    );
    assert_eq!(
        alert.addresses,
        ["203.0.113.50"],
        "and it lists the address"
    );
    assert_eq!(alert.count, 32, "every failure of the attack is counted");
    let spraying = alert
        .facets
        .iter()
        .find(|f| f.kind == "key_spraying")
        .expect("spraying facet");
    assert_eq!(spraying.distinct, 6, "the keys tried: {spraying:?}");
    let jump = alert
        .facets
        .iter()
        .find(|f| f.kind == "baseline_jump")
        .expect("baseline facet");
    assert!(
        // "none in the previous 7 days", or, when the burst straddles an hour boundary and its
        // first minutes already count as history, "N times its 7-day average".
        (jump.detail.contains("7 days") || jump.detail.contains("7-day average"))
            && jump.detail.contains("203.0.113.50"),
        "the jump says how it compares with the baseline and who is behind it: {}",
        jump.detail
    );
    assert_eq!(
        notices.lock().expect("notices").len(),
        1,
        "the desktop is told once about the attack, not once per rule"
    );
    let entries = lab.console.audit.entries(50).expect("audit log");
    let raised: Vec<_> = entries
        .iter()
        .filter(|e| e.detail.contains(&format!("Alert {}", alert.id)))
        .collect();
    assert!(
        !raised.is_empty()
            && raised
                .iter()
                .all(|e| e.action == "alert_raised" && e.actor == "Gatehouse detection"),
        "the audit log says the alert was raised by Gatehouse's detection, not done by the operator: {raised:#?}"
    );

    // It goes on: the same alert counts on and moves its last-seen.
    append(
        &log,
        &(0..10)
            .map(|i| jelmore_line(start, "203.0.113.50", "guess00001", 200 + i))
            .collect::<String>(),
    );
    lab.sync_until("jelmore-a", 10).await;
    let alerts = open_alerts(&lab);
    assert_eq!(
        alerts.len(),
        1,
        "failures that go on update the alert instead of raising new ones: {alerts:#?}"
    );
    assert_eq!(alerts[0].id, alert.id, "the same alert");
    assert_eq!(alerts[0].count, 42, "with the ten new failures counted");
    assert_eq!(
        alerts[0].last_us,
        micros(start + time::Duration::seconds(209)),
        "last seen is the newest failure"
    );
    assert_eq!(
        notices.lock().expect("notices").len(),
        1,
        "an attack going on is not a new notification"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distributed_attack_is_one_alert_listing_its_addresses() {
    let lab = Lab::new();
    let (agent, log, notices) = jelmore(&lab, "jelmore-d").await;
    let start = lab.now() - time::Duration::minutes(5);
    // 24 addresses, one failure each: under every per-address threshold.
    append(
        &log,
        &(1..=24)
            .map(|i| jelmore_line(start, &format!("198.51.100.{i}"), "samekey001", i * 5))
            .collect::<String>(),
    );
    lab.sync_until("jelmore-d", 24).await;
    let alerts = open_alerts(&lab);
    assert_eq!(
        alerts.len(),
        1,
        "one distributed attack, one alert: {alerts:#?}"
    );
    let alert = &alerts[0];
    assert_eq!(alert.kind, "distributed", "it is the distributed rule's");
    assert_eq!(alert.subject, None, "about the instance, not one address");
    let expected: Vec<String> = (1..=24).map(|i| format!("198.51.100.{i}")).collect();
    let mut listed = alert.addresses.clone();
    listed.sort();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(listed, want, "the alert lists every address of the attack");
    assert_eq!(
        notices.lock().expect("notices").len(),
        1,
        "one notification for the attack"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_week_old_events_are_one_history_summary_and_never_a_notification() {
    let lab = Lab::new();
    let (agent, log, notices) = jelmore(&lab, "jelmore-h").await;
    let then = lab.now() - time::Duration::days(21);
    // What would have been three alerts, had it been happening now.
    let mut lines = String::new();
    for i in 0..8 {
        lines.push_str(&jelmore_line(then, "203.0.113.9", "guess00001", i * 10));
    }
    for i in 0..6 {
        lines.push_str(&jelmore_line(
            then,
            "198.51.100.23",
            &format!("spray{i:05}"),
            100 + i,
        ));
    }
    for i in 0..6 {
        lines.push_str(&jelmore_line(
            then,
            "192.0.2.44",
            "other00001",
            3600 + i * 20,
        ));
    }
    append(&log, &lines);
    lab.sync_until("jelmore-h", 20).await;
    let alerts = open_alerts(&lab);
    assert_eq!(
        alerts.len(),
        1,
        "history raises one summary, not an alert per episode: {alerts:#?}"
    );
    let summary = &alerts[0];
    assert_eq!(summary.kind, HISTORY_KIND, "a history summary");
    assert!(
        summary.detail.starts_with("Found in history:"),
        "it says it is history: {}",
        summary.detail
    );
    for ip in ["203.0.113.9", "198.51.100.23", "192.0.2.44"] {
        assert!(
            summary.addresses.iter().any(|a| a == ip),
            "the summary names {ip}: {:?}",
            summary.addresses
        );
    }
    assert_eq!(
        kinds(summary),
        BTreeSet::from(["brute_force", "key_spraying"]),
        "and what the rules found in it"
    );
    assert!(
        summary.last_us < micros(lab.now() - time::Duration::days(20)),
        "its times are the events' times, three weeks ago"
    );
    assert!(
        notices.lock().expect("notices").is_empty(),
        "nothing from three weeks ago reaches the desktop"
    );

    // An attack happening now is still an alarm.
    let now = lab.now() - time::Duration::minutes(1);
    append(
        &log,
        &(0..6)
            .map(|i| jelmore_line(now, "203.0.113.77", "guess00002", i * 5))
            .collect::<String>(),
    );
    lab.sync_until("jelmore-h", 6).await;
    let alerts = open_alerts(&lab);
    assert_eq!(
        alerts.len(),
        2,
        "the summary and the live attack: {alerts:#?}"
    );
    let notices = notices.lock().expect("notices").clone();
    assert_eq!(notices.len(), 1, "the live attack is notified");
    assert_eq!(
        notices[0].alert.subject.as_deref(),
        Some("203.0.113.77"),
        "and it is the live one"
    );
    agent.stop().await;
}

/// Rotations in the console's history, as `rotate_key` records them: the first made the key
/// `old_prefix…` (a rotation by this console), the second replaced it an hour ago. Returns
/// the second's id.
fn rotations(lab: &Lab, instance: &str, old_prefix: Option<&str>) -> i64 {
    let db = Db::open(&lab.data.join("gatehouse.sqlite3")).expect("db");
    let r = db.rotations();
    let now = lab.now().unix_timestamp();
    let state = gatehouse_core::RotationState::Committed;
    if let Some(prefix) = old_prefix {
        let first = r
            .start(
                instance,
                "API_KEY_MAIN",
                "00aa",
                "11bb",
                now - 40 * 86_400,
                "op",
            )
            .expect("first");
        r.set_new_prefix(first, prefix).expect("prefix");
        r.finish(first, state, "", now - 40 * 86_400)
            .expect("finish");
    }
    let second = r
        .start(instance, "API_KEY_MAIN", "11bb", "22cc", now - 3600, "op")
        .expect("second");
    r.set_new_prefix(second, "NEWKEYnewk").expect("prefix");
    r.finish(second, state, "", now - 3600).expect("finish");
    second
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_with_the_key_a_rotation_replaced_are_a_notice_not_a_brute_force() {
    let lab = Lab::new();
    let (agent, log, notices) = jelmore(&lab, "jelmore-r").await;
    let rotation = rotations(&lab, "jelmore-r", Some("OLDKEYoldk"));
    let start = lab.now() - time::Duration::minutes(5);
    let mut lines = String::new();
    for i in 0..8 {
        lines.push_str(&jelmore_line(start, "10.0.0.5", "OLDKEYoldk", i * 10));
        lines.push_str(&jelmore_line(start, "10.0.0.6", "OLDKEYoldk", i * 10 + 3));
    }
    // And an attacker at the same time: still an attack.
    for i in 0..6 {
        lines.push_str(&jelmore_line(start, "203.0.113.9", "guess00001", 100 + i));
    }
    append(&log, &lines);
    lab.sync_until("jelmore-r", 22).await;
    let alerts = open_alerts(&lab);
    let notice: Vec<&Alert> = alerts.iter().filter(|a| a.kind == STALE_KEY_KIND).collect();
    assert_eq!(
        notice.len(),
        1,
        "clients with the old key are one notice: {alerts:#?}"
    );
    let notice = notice[0];
    assert_eq!(
        notice.rotation_id,
        Some(rotation),
        "linked to the rotation that replaced the key"
    );
    assert_eq!(
        notice.addresses,
        ["10.0.0.5", "10.0.0.6"],
        "listing the addresses still using it"
    );
    assert_eq!(notice.count, 16, "its failed sign-ins");
    assert!(
        notice.detail.contains("API_KEY_MAIN") && notice.detail.contains("OLDKEYoldk"),
        "it names the key and how it was recognised: {}",
        notice.detail
    );
    assert!(
        !alerts
            .iter()
            .any(|a| a.kind != STALE_KEY_KIND
                && a.addresses.iter().any(|ip| ip.starts_with("10.0.0."))),
        "the clients with the old key raise no attack alert: {alerts:#?}"
    );
    let attack: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.subject.as_deref() == Some("203.0.113.9"))
        .collect();
    assert_eq!(
        attack.len(),
        1,
        "the attacker guessing at the same time still raises its alert: {alerts:#?}"
    );
    let notices = notices.lock().expect("notices").clone();
    assert_eq!(
        notices.iter().map(|n| n.alert.id).collect::<Vec<_>>(),
        [attack[0].id],
        "only the attack reaches the desktop"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_old_keys_prefix_the_notice_says_what_it_matched_on() {
    let lab = Lab::new();
    let (agent, log, _notices) = jelmore(&lab, "jelmore-u").await;
    // The replaced key was never made by this console: only its fingerprint is known.
    let rotation = rotations(&lab, "jelmore-u", None);
    let start = lab.now() - time::Duration::minutes(5);
    append(
        &log,
        &(0..8)
            .map(|i| jelmore_line(start, "10.0.0.7", "STALEkey12", i * 10))
            .collect::<String>(),
    );
    lab.sync_until("jelmore-u", 8).await;
    let alerts = open_alerts(&lab);
    assert_eq!(
        alerts.len(),
        1,
        "one client retrying one key after a rotation: a notice, no brute force: {alerts:#?}"
    );
    let notice = &alerts[0];
    assert_eq!(notice.kind, STALE_KEY_KIND, "the notice");
    assert_eq!(notice.rotation_id, Some(rotation), "about the rotation");
    assert!(
        notice.detail.contains("fingerprint") && notice.detail.contains("11bb"),
        "it says that only the replaced key's fingerprint is known, and which: {}",
        notice.detail
    );
    assert!(
        notice.detail.contains("not by the key itself"),
        "and that the match is not by the key: {}",
        notice.detail
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_counts_new_alerts_and_says_its_one_detail_is_the_latest() {
    let lab = Lab::new();
    let (agent, log, _notices) = jelmore(&lab, "jelmore-o").await;
    let start = lab.now() - time::Duration::minutes(5);
    // Two addresses, each past the brute-force threshold: two attacks, two alerts.
    let lines: String = ["203.0.113.61", "203.0.113.62"]
        .iter()
        .enumerate()
        .flat_map(|(n, ip)| {
            (0..6).map(move |i| jelmore_line(start, ip, "guess00001", n as i64 * 60 + i * 5))
        })
        .collect();
    append(&log, &lines);
    lab.sync_until("jelmore-o", 12).await;
    let alerts = open_alerts(&lab);
    assert!(
        alerts.len() >= 2,
        "at least one alert per address: {alerts:#?}"
    );
    let overview = lab.console.overview().expect("overview");
    let line = overview
        .attention
        .iter()
        .find(|a| a.title.contains("new alert"))
        .unwrap_or_else(|| panic!("the overview has a line about alerts: {overview:?}"));
    assert_eq!(
        line.title,
        format!("{} new alerts, not yet acknowledged", alerts.len()),
        "the line counts the alerts and says what 'new' means"
    );
    assert_eq!(
        line.detail,
        format!("Latest: {}", alerts[0].detail),
        "its one detail is marked as the latest alert's, not passed off as all of them"
    );
    agent.stop().await;
}

/// Triage: many alerts acknowledged or resolved in one step (one audit row, the ids no alert
/// has named), and a rule snoozed on one instance with a reason: its firings there raise no
/// alert and no notification and are counted on the snooze, while the same attack on another
/// instance still alerts, and the rule alerts again once the snooze is ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_alerts_are_marked_at_once_and_a_snoozed_rule_raises_none_where_it_sleeps() {
    use gatehouse_core::{AlertState, SnoozeRequest};
    let lab = Lab::new();
    let (_a, log_a, _) = jelmore(&lab, "jelmore-a").await;
    let (_b, log_b, notices) = jelmore(&lab, "jelmore-b").await;
    let start = lab.now() - time::Duration::minutes(5);
    // Six failures with one key from each of three addresses: three brute-force alerts.
    let burst = |ip: &str, from: i64| {
        (0..6)
            .map(|i| jelmore_line(start, ip, "guess00001", from + i * 5))
            .collect::<String>()
    };
    append(
        &log_a,
        &[
            burst("203.0.113.1", 0),
            burst("203.0.113.2", 1),
            burst("203.0.113.3", 2),
        ]
        .concat(),
    );
    lab.sync_until("jelmore-a", 18).await;
    let raised = open_alerts(&lab);
    assert_eq!(raised.len(), 3, "one alert per address: {raised:#?}");
    let mut ids: Vec<i64> = raised.iter().map(|a| a.id).collect();
    ids.push(9_999);
    let audit_before = lab.console.audit.entries(1000).expect("audit").len();
    let marked = lab
        .console
        .analytics
        .set_alerts_state(&ids, AlertState::Acknowledged)
        .expect("marked");
    assert_eq!(
        marked.missing,
        [9_999],
        "the unknown id is named, not fatal"
    );
    assert!(
        marked.alerts.len() == 3
            && marked
                .alerts
                .iter()
                .all(|a| a.state == AlertState::Acknowledged),
        "all three are acknowledged: {:#?}",
        marked.alerts
    );
    assert_eq!(
        lab.console.audit.entries(1000).expect("audit").len(),
        audit_before + 1,
        "one audit row for the whole selection"
    );
    lab.console
        .analytics
        .set_alerts_state(&[raised[0].id], AlertState::Resolved)
        .expect("resolved");
    assert_eq!(
        open_alerts(&lab).len(),
        2,
        "a resolved alert leaves the open list"
    );
    assert!(
        lab.console
            .analytics
            .set_alerts_state(&[], AlertState::Resolved)
            .is_err(),
        "an empty selection is refused"
    );

    // Snoozing asks for a reason, a sane length, a rule and an instance that exist.
    let request = |rule: &str, instance: &str, hours: u32, reason: &str| SnoozeRequest {
        rule_id: rule.into(),
        instance: instance.into(),
        hours,
        reason: reason.into(),
    };
    for (bad, why) in [
        (request("brute-force", "jelmore-a", 8, "  "), "no reason"),
        (request("brute-force", "jelmore-a", 0, "scanner"), "0 hours"),
        (
            request("brute-force", "jelmore-a", 721, "scanner"),
            "over 30 days",
        ),
        (
            request("no-such-rule", "jelmore-a", 8, "scanner"),
            "unknown rule",
        ),
        (
            request("brute-force", "nowhere", 8, "scanner"),
            "unknown instance",
        ),
    ] {
        assert!(
            lab.console.analytics.snooze_rule(&bad).is_err(),
            "a snooze with {why} is refused"
        );
    }
    assert!(
        lab.console.analytics.snoozes().expect("snoozes").is_empty(),
        "and none was made"
    );
    let snooze = lab
        .console
        .analytics
        .snooze_rule(&request(
            "brute-force",
            "jelmore-a",
            8,
            "the uptime checker's old key, replaced on Monday",
        ))
        .expect("snoozed");
    assert_eq!(
        snooze.until_us,
        micros(lab.now()) + 8 * 3_600_000_000,
        "eight hours from the console's now"
    );
    let notified = notices.lock().expect("notices").len();
    append(&log_a, &burst("203.0.113.4", 60));
    append(&log_b, &burst("203.0.113.4", 60));
    lab.sync_until("jelmore-a", 6).await;
    lab.sync_until("jelmore-b", 6).await;
    let now_open = open_alerts(&lab);
    assert!(
        !now_open
            .iter()
            .any(|a| a.instance == "jelmore-a" && a.subject.as_deref() == Some("203.0.113.4")),
        "the snoozed rule raises nothing on jelmore-a: {now_open:#?}"
    );
    assert!(
        now_open
            .iter()
            .any(|a| a.instance == "jelmore-b" && a.subject.as_deref() == Some("203.0.113.4")),
        "the same attack on jelmore-b still alerts: {now_open:#?}"
    );
    let notices_now = notices.lock().expect("notices").clone();
    assert!(
        notices_now[notified..]
            .iter()
            .all(|n| n.alert.instance == "jelmore-b"),
        "no notification for the snoozed instance: {:#?}",
        &notices_now[notified..]
    );
    let snoozes = lab.console.analytics.snoozes().expect("snoozes");
    assert!(
        snoozes.len() == 1 && snoozes[0].held >= 1,
        "the snooze counts the firing it held back: {snoozes:#?}"
    );

    lab.console
        .analytics
        .unsnooze_rule("brute-force", "jelmore-a")
        .expect("ended");
    assert!(
        lab.console
            .analytics
            .unsnooze_rule("brute-force", "jelmore-a")
            .is_err(),
        "ending a snooze that is not running is refused"
    );
    append(&log_a, &burst("203.0.113.5", 120));
    lab.sync_until("jelmore-a", 6).await;
    assert!(
        open_alerts(&lab)
            .iter()
            .any(|a| a.instance == "jelmore-a" && a.subject.as_deref() == Some("203.0.113.5")),
        "once ended, the rule alerts on jelmore-a again"
    );
    let log = lab.console.audit.entries(1000).expect("audit");
    assert!(
        log.iter().any(
            |e| e.action == "rule_snoozed" && e.detail.contains("the uptime checker's old key")
        ),
        "the reason is in the audit log"
    );
}
