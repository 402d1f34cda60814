//! The console's audit log: operator actions chained by an HMAC from the keychain; an edited,
//! removed or cut-off row is found and named.

use gatehouse_core::DetectionSettings;

use crate::lab::Lab;

fn three_actions(lab: &Lab) {
    let detection: DetectionSettings = lab.console.analytics.detection().expect("detection");
    lab.console
        .analytics
        .set_detection(&detection)
        .expect("set");
    lab.console.compliance.set_tls_minimum("1.2").expect("tls");
    lab.console.analytics.reset_detection().expect("reset");
}

fn tamper(lab: &Lab, sql: &str) {
    let db = rusqlite::Connection::open(lab.data.join("gatehouse.sqlite3")).expect("db");
    db.execute(sql, []).expect("tamper");
}

#[test]
fn operator_actions_are_chained_and_verify() {
    let lab = Lab::new();
    three_actions(&lab);
    let log = lab.console.audit.entries(10).expect("log");
    assert_eq!(
        log.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        [
            "detection_settings",
            "compliance_tls_minimum",
            "detection_settings"
        ],
        "each action is a row, newest first"
    );
    assert!(
        log.iter().all(|e| !e.actor.is_empty() && e.mac.len() == 64),
        "each row says who and carries its MAC"
    );
    let verdict = lab.console.audit.verify().expect("verify");
    assert!(verdict.intact, "an untouched log verifies: {verdict:?}");
    assert_eq!(verdict.rows, 3, "every row is checked");
}

#[test]
fn an_edited_row_is_the_first_broken_link() {
    let lab = Lab::new();
    three_actions(&lab);
    tamper(
        &lab,
        "UPDATE audit_log SET detail = 'TLS 1.3 or newer' WHERE id = 2",
    );
    let verdict = lab.console.audit.verify().expect("verify");
    assert!(!verdict.intact, "an edit is noticed");
    assert_eq!(verdict.first_broken, Some(2), "at the edited row");
    assert!(
        verdict
            .problem
            .as_deref()
            .is_some_and(|p| p.contains("edited")),
        "and says what kind of break: {verdict:?}"
    );
}

#[test]
fn a_removed_row_and_a_cut_off_end_are_found() {
    let lab = Lab::new();
    three_actions(&lab);
    tamper(&lab, "DELETE FROM audit_log WHERE id = 2");
    let verdict = lab.console.audit.verify().expect("verify");
    assert_eq!(
        verdict.first_broken,
        Some(2),
        "the gap is named: {verdict:?}"
    );
    assert!(
        verdict
            .problem
            .as_deref()
            .is_some_and(|p| p.contains("missing")),
        "as a missing row: {verdict:?}"
    );

    let lab = Lab::new();
    three_actions(&lab);
    tamper(&lab, "DELETE FROM audit_log WHERE id = 3");
    let verdict = lab.console.audit.verify().expect("verify");
    assert!(
        !verdict.intact,
        "cutting the newest row off is noticed: {verdict:?}"
    );
    assert_eq!(verdict.first_broken, Some(3), "where the log now ends");

    let lab = Lab::new();
    three_actions(&lab);
    tamper(
        &lab,
        "INSERT INTO audit_log (id, at_us, actor, action, target, detail, mac)
         VALUES (4, 0, 'mallory', 'block', 'fleet', 'forged', 'abcd')",
    );
    let verdict = lab.console.audit.verify().expect("verify");
    assert_eq!(
        verdict.first_broken,
        Some(4),
        "a row written without the key is refused"
    );
}

fn problem(verdict: &gatehouse_core::AuditVerdict) -> String {
    verdict.problem.clone().unwrap_or_default()
}

/// The attack: delete the newest rows, do one ordinary action, and the next append used to
/// chain from what was left and overwrite the keychain's head, so `verify` said intact.
#[test]
fn rows_cut_from_the_end_are_not_laundered_by_the_next_append() {
    let lab = Lab::new();
    three_actions(&lab);
    tamper(&lab, "DELETE FROM audit_log WHERE id >= 2");
    lab.console
        .compliance
        .set_tls_minimum("1.3")
        .expect("an ordinary action after the cut");
    let verdict = lab.console.audit.verify().expect("verify");
    assert!(
        !verdict.intact,
        "the cut is still seen after another append: {verdict:?}"
    );
    assert!(
        problem(&verdict).contains("row 3") && problem(&verdict).contains("removed"),
        "and says what the keychain remembered: {verdict:?}"
    );
    let log = lab.console.audit.entries(10).expect("log");
    assert!(
        log.iter().any(|e| e.action == "audit_chain_break"),
        "a signed chain break is in the log itself: {log:?}"
    );
    assert_eq!(
        log.first().map(|e| e.action.as_str()),
        Some("compliance_tls_minimum"),
        "and the action was still recorded after it"
    );
}

/// The attack: remove the HMAC key from the keychain; the next append used to make a new
/// one silently, with which every row could be re-signed.
#[test]
fn a_missing_key_is_never_recreated_and_actions_wait_for_the_log() {
    let lab = Lab::new();
    three_actions(&lab);
    lab.console
        .vault()
        .delete("audit-hmac.key")
        .expect("the key is removed");
    // As the console finds it at its next start.
    let console = lab.restarted();
    let before = console.compliance.tls_minimum().expect("tls minimum");
    let other = match before {
        gatehouse_protocol::TlsMinimum::Tls13 => "1.2",
        gatehouse_protocol::TlsMinimum::Tls12 => "1.3",
    };
    let refused = console
        .compliance
        .set_tls_minimum(other)
        .expect_err("an action is refused while the log cannot be written");
    assert_eq!(
        refused.code().as_str(),
        "audit_unavailable",
        "with its own code, so the window can say why: {refused}"
    );
    assert!(
        refused.to_string().contains("nothing was done"),
        "and says that nothing changed: {refused}"
    );
    assert_eq!(
        console.compliance.tls_minimum().expect("tls minimum"),
        before,
        "the setting is as it was"
    );
    assert!(
        lab.keychain_lookup("audit-hmac.key").is_empty(),
        "no new key was made while rows exist"
    );
    let verdict = console.audit.verify().expect("verify");
    assert!(
        !verdict.intact && problem(&verdict).contains("does not hold"),
        "verify says the current key is missing: {verdict:?}"
    );
}

/// Rows made with a key the keychain no longer holds are unverifiable, not tampered; rows of
/// the current key are checked as before, and no row can claim another generation.
#[test]
fn rows_of_a_rotated_away_key_read_as_unverifiable_not_tampered() {
    let lab = Lab::new();
    three_actions(&lab);
    let generation = lab
        .console
        .audit
        .rotate_key()
        .expect("rotate the audit key");
    assert_eq!(generation, 2, "the second generation");
    lab.console
        .compliance
        .set_tls_minimum("1.2")
        .expect("an action signed by the new key");
    let verdict = lab.console.audit.verify().expect("verify");
    assert!(
        verdict.intact && verdict.unverifiable == 0 && verdict.key_generation == 2,
        "with both keys every row checks out: {verdict:?}"
    );
    lab.console
        .vault()
        .delete("audit-hmac.key")
        .expect("the first key is given up");
    let console = lab.restarted();
    let verdict = console.audit.verify().expect("verify");
    assert!(
        verdict.intact,
        "rows of a key given up are not called tampered: {verdict:?}"
    );
    assert_eq!(
        verdict.unverifiable, 3,
        "the three rows of the first generation cannot be checked"
    );
    tamper(&lab, "UPDATE audit_log SET detail = 'forged' WHERE id = 5");
    let verdict = console.audit.verify().expect("verify");
    assert_eq!(
        verdict.first_broken,
        Some(5),
        "a row of the current key is still checked: {verdict:?}"
    );
    tamper(
        &lab,
        "UPDATE audit_log SET detail = 'TLS 1.2 or newer', key_gen = 1 WHERE id = 5",
    );
    let verdict = console.audit.verify().expect("verify");
    assert!(
        verdict.first_broken == Some(5) && problem(&verdict).contains("claims key generation"),
        "a row cannot escape its check by claiming the older generation: {verdict:?}"
    );
}

/// The attack: cut rows from the end of the log and rewrite the keychain's head to match
/// (the attacker owns both). An agent that was sent the newer head says so at the next sync,
/// and the console records it as a signed break.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_cut_back_with_its_keychain_is_told_so_by_an_agent() {
    let lab = Lab::new();
    let (agent, code) = lab.agent("anchor-1").await;
    lab.add("anchor-1", &agent, &code).await.expect("enrolled");
    three_actions(&lab);
    lab.console
        .timeline
        .sync_instance("anchor-1")
        .await
        .expect("a sync sends the head");
    let newest = lab.console.audit.entries(1).expect("log")[0].clone();
    tamper(
        &lab,
        &format!("DELETE FROM audit_log WHERE id >= {}", newest.id - 1),
    );
    let left = lab.console.audit.entries(1).expect("log")[0].clone();
    lab.console
        .vault()
        .store(
            "audit-head",
            &gatehouse_core::Sensitive::new(format!("{}:{}", left.id, left.mac).into_bytes()),
        )
        .expect("the attacker rewrites the keychain's head");
    assert!(
        lab.console.audit.verify().expect("verify").intact,
        "the log and the keychain agree with each other now, so the attack is a real one"
    );
    lab.console
        .timeline
        .sync_instance("anchor-1")
        .await
        .expect("the next sync");
    let verdict = lab.console.audit.verify().expect("verify");
    assert!(
        !verdict.intact
            && problem(&verdict).contains("anchor-1")
            && problem(&verdict).contains(&format!("row {}", newest.id)),
        "the agent's memory of row {} is recorded and reported: {verdict:?}",
        newest.id
    );
    lab.console
        .timeline
        .sync_instance("anchor-1")
        .await
        .expect("another sync");
    let breaks = lab
        .console
        .audit
        .entries(100)
        .expect("log")
        .into_iter()
        .filter(|e| e.action == "audit_chain_break")
        .count();
    assert_eq!(
        breaks, 1,
        "the same finding is recorded once, not every sync"
    );
    agent.stop().await;
}

/// An incident note or decision while the audit log cannot be written (its key gone from the
/// keychain, as when it is locked or wiped): refused with its code, and the incident's own log
/// does not gain it either: both or neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_note_the_audit_log_cannot_hold_is_not_written_anywhere() {
    let lab = Lab::new();
    let (agent, code) = lab.agent("note-1").await;
    lab.add("note-1", &agent, &code).await.expect("enrolled");
    let now_us = lab.now().unix_timestamp() * 1_000_000;
    let incident = lab
        .console
        .incidents
        .open_incident(&gatehouse_core::OpenIncident {
            origin: gatehouse_core::IncidentOrigin::Hand,
            title: "wrong keys from one address".into(),
            severity: gatehouse_core::Severity::Medium,
            instances: vec!["note-1".into()],
            ips: vec![],
            from_us: now_us - 3_600_000_000,
            to_us: now_us,
        })
        .expect("incident");
    let before = lab
        .console
        .incidents
        .incident(incident.id)
        .expect("view")
        .log
        .len();
    lab.console
        .vault()
        .delete("audit-hmac.key")
        .expect("the key is removed");
    let console = lab.restarted();
    for decision in [false, true] {
        let refused = console
            .incidents
            .incident_note(incident.id, decision, "blocked at the proxy")
            .expect_err("refused while the audit log cannot be written");
        assert_eq!(
            refused.code().as_str(),
            "audit_unavailable",
            "with the audit log's own code: {refused}"
        );
    }
    let log = console.incidents.incident(incident.id).expect("view").log;
    assert_eq!(
        log.len(),
        before,
        "the incident's log gained nothing the audit log could not hold: {log:?}"
    );
    agent.stop().await;
}
